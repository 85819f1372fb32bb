//! What both transports (the browser's `RTCPeerConnection`, webrtc-rs natively) report to the
//! driver, and how they are configured. The driver turns these into the node's inputs:
//! `Open` into `LinkUp` with the two fingerprints the hello must sign, `Message` into
//! `Received`, `Closed` into `LinkDown`.

use bitmesh_core::wire::{Fingerprint, MAX_MESSAGE_BYTES};

/// What happened on one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportEvent {
    /// The data channel opened; the DTLS fingerprints of this end and the other.
    Open {
        local_fingerprint: Fingerprint,
        remote_fingerprint: Fingerprint,
    },
    /// A whole message arrived.
    Message(Vec<u8>),
    /// The connection is gone (closed by either end, failed, or refused by the framing).
    Closed { reason: String },
}

/// Why the WebRTC stack refused a step of a connection (its words).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportError(pub String);

impl core::fmt::Display for TransportError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "WebRTC: {}", self.0)
    }
}

impl std::error::Error for TransportError {}

/// How connections are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportConfig {
    /// The largest message taken from a peer.
    pub max_message: usize,
    /// Bytes of frames waiting to be sent on one connection at most.
    pub max_queued: usize,
    /// STUN/TURN URLs; none on a local network (host and mDNS candidates suffice).
    pub ice_servers: Vec<String>,
    /// Messages go as they are, one per channel message (each at most 16 KiB), without the
    /// framing: only to measure the raw channel beside the framing (`scripts/bench-mesh.sh`).
    pub unframed: bool,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            max_message: MAX_MESSAGE_BYTES,
            max_queued: 2 * MAX_MESSAGE_BYTES + 1024 * 1024,
            ice_servers: Vec::new(),
            unframed: false,
        }
    }
}

/// The data channel's label; both ends create it pre-negotiated with id 0, so neither waits
/// for the other to announce it.
pub const CHANNEL_LABEL: &str = "bitmesh";
pub const CHANNEL_ID: u16 = 0;
/// The transport's own send buffer is kept below this, and refilled when it falls under the
/// low mark (`bufferedamountlow`).
pub const HIGH_WATER: usize = 1024 * 1024;
pub const LOW_WATER: usize = 256 * 1024;
