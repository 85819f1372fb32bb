//! bitmesh-mesh: how peers reach each other.
//!
//! The framing that cuts messages into data-channel frames and puts them back together
//! ([`framing`]), the DTLS fingerprint of a session description ([`sdp`]), and the signaling
//! protocol ([`signaling`]): its messages, the server's state machine and the client's. The
//! WebRTC transports (web-sys in the browser, webrtc-rs natively) build on these.

pub mod framing;
pub mod sdp;
pub mod signaling;

pub use bitmesh_core::Network;
