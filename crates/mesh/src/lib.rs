//! bitmesh-mesh: how peers reach each other.
//!
//! The framing that cuts messages into data-channel frames and puts them back together
//! ([`framing`]), the DTLS fingerprint of a session description ([`sdp`]), and the signaling
//! protocol ([`signaling`]): its messages, the server's state machine and the client's; the
//! events and settings both WebRTC transports share ([`transport`]), and the browser's
//! transport on web-sys (`browser`, wasm32 only). The native transport (webrtc-rs) is next.

#[cfg(target_arch = "wasm32")]
pub mod browser;
pub mod connector;
pub mod driver;
pub mod framing;
#[cfg(all(feature = "native", not(target_arch = "wasm32")))]
pub mod native;
pub mod sdp;
pub mod signaling;
pub mod transport;

pub use bitmesh_core::Network;
