//! Inventory: the names of objects a peer has, announces or asks for.

use core::fmt;

/// What kind of object an inventory item names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InvKind {
    /// A block, by its hash.
    Block,
    /// A transaction, by its txid.
    Tx,
    /// A market order, by its id.
    Order,
    /// A maker's order update, by its digest.
    OrderUpdate,
    /// A topic announcement, by its id.
    Topic,
    /// A kind of a newer protocol version: never requested.
    Unknown(u8),
}

impl InvKind {
    pub fn code(self) -> u8 {
        match self {
            InvKind::Block => 1,
            InvKind::Tx => 2,
            InvKind::Order => 3,
            InvKind::OrderUpdate => 4,
            InvKind::Topic => 5,
            InvKind::Unknown(code) => code,
        }
    }

    pub fn from_code(code: u8) -> InvKind {
        match code {
            1 => InvKind::Block,
            2 => InvKind::Tx,
            3 => InvKind::Order,
            4 => InvKind::OrderUpdate,
            5 => InvKind::Topic,
            other => InvKind::Unknown(other),
        }
    }
}

/// One object's name: its kind and its 32-byte id (hash, txid, order id, update digest or
/// announcement id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InvItem {
    pub kind: InvKind,
    pub id: [u8; 32],
}

impl InvItem {
    pub fn new(kind: InvKind, id: [u8; 32]) -> InvItem {
        InvItem { kind, id }
    }
}

impl fmt::Display for InvItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ", self.kind)?;
        for byte in &self.id[..8] {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// Why an inventory is sent: the receiver applies freshness rules to new objects only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvPurpose {
    /// Objects the sender just validated (gossip).
    New,
    /// What the sender holds, listed for a neighbour that just connected (reconciliation).
    Holdings,
}
