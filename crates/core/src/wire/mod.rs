//! The peer protocol's messages and their one canonical binary encoding.
//!
//! A message is one type byte and its fields, fixed-width little-endian integers and counted
//! lists, with Bitcoin objects (blocks, headers, transactions) in Bitcoin's consensus encoding
//! and orders in the market's own (ADR 0005 gives every layout). The transport delivers whole
//! messages, so a message needs no length of its own; [`MAX_MESSAGE_BYTES`] bounds it and each
//! list has its own bound, checked before anything is allocated. Every malformed input gets a
//! [`DecodeError`] saying what was wrong; a type byte this version does not know decodes as
//! [`Message::Unknown`], which a node skips, so newer peers can add messages.

mod hello;
mod inventory;
mod message;
mod routed;
mod topic;

pub use hello::{Features, Fingerprint, Hello, HelloError, SignedHello};
pub use inventory::{InvItem, InvKind, InvPurpose};
pub use message::{DecodeError, GetHeaders, Goodbye, GoodbyeReason, Message, PeerRecord};
pub use routed::{Routed, RoutedError, RoutedKind};
pub use topic::{TopicAnnouncement, TopicError, TOPIC_ANNOUNCEMENT_LEN};

use core::fmt;

/// The protocol version this code speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// The oldest version it still talks to.
pub const MIN_PROTOCOL_VERSION: u32 = 1;

/// The largest message: a block of the maximum weight fits.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// Items in one inventory, request or not-found message.
pub const MAX_INVENTORY: usize = 1_000;
/// Headers in one headers message.
pub const MAX_HEADERS: usize = 2_000;
/// Hashes in a block locator.
pub const MAX_LOCATOR: usize = 64;
/// Peers in one peer-exchange message.
pub const MAX_PEER_RECORDS: usize = 100;
/// Bytes of a routed message's payload.
pub const MAX_ROUTED_PAYLOAD: usize = 64 * 1024;
/// Bytes of a goodbye's text.
pub const MAX_GOODBYE_TEXT: usize = 200;
/// Hops a routed message may take.
pub const MAX_TTL: u8 = 16;

/// A peer's identity: the x-only public key of its node key (not a wallet key), as sent.
/// Parsed into a key only where a signature is checked.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub [u8; 32]);

impl PeerId {
    /// The peer id of `key`.
    pub fn of(key: &bitcoin::XOnlyPublicKey) -> PeerId {
        PeerId(key.serialize())
    }

    /// The key, if the bytes are one.
    pub fn key(&self) -> Option<bitcoin::XOnlyPublicKey> {
        bitcoin::XOnlyPublicKey::from_slice(&self.0).ok()
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in &self.0[..8] {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({self})")
    }
}

/// Appends fixed-width little-endian fields.
pub(crate) struct Writer(pub Vec<u8>);

impl Writer {
    pub fn u8(&mut self, value: u8) {
        self.0.push(value);
    }
    pub fn u16(&mut self, value: u16) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }
    pub fn u32(&mut self, value: u32) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }
    pub fn u64(&mut self, value: u64) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }
}
