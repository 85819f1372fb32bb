//! The set of unspent outputs, and the undo data that makes connecting a block reversible.

use std::collections::HashMap;

use bitcoin::{OutPoint, TxOut};

use super::assets::AssetAmounts;

/// An unspent output with what consensus needs to know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coin {
    /// The output itself: value and script.
    pub output: TxOut,
    /// The height of the block that created it.
    pub height: u32,
    /// Whether a coinbase created it (such coins must mature before they are spent).
    pub is_coinbase: bool,
    /// The asset units it holds.
    pub assets: AssetAmounts,
}

/// The coins a connected block spent, per transaction after the coinbase, in input order.
/// Disconnecting the block puts them back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockUndo {
    /// `spent[i][j]` is the coin input `j` of transaction `i + 1` spent.
    pub spent: Vec<Vec<Coin>>,
}

/// The unspent outputs of the active chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UtxoSet {
    coins: HashMap<OutPoint, Coin>,
}

impl UtxoSet {
    /// An empty set.
    pub fn new() -> UtxoSet {
        UtxoSet::default()
    }

    /// The coin at `outpoint`, if unspent.
    pub fn get(&self, outpoint: &OutPoint) -> Option<&Coin> {
        self.coins.get(outpoint)
    }

    /// Whether `outpoint` is unspent.
    pub fn contains(&self, outpoint: &OutPoint) -> bool {
        self.coins.contains_key(outpoint)
    }

    /// The number of unspent outputs.
    pub fn len(&self) -> usize {
        self.coins.len()
    }

    /// Whether no output is unspent.
    pub fn is_empty(&self) -> bool {
        self.coins.is_empty()
    }

    /// Every unspent output, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&OutPoint, &Coin)> {
        self.coins.iter()
    }

    pub(crate) fn insert(&mut self, outpoint: OutPoint, coin: Coin) {
        self.coins.insert(outpoint, coin);
    }

    pub(crate) fn remove(&mut self, outpoint: &OutPoint) -> Option<Coin> {
        self.coins.remove(outpoint)
    }
}
