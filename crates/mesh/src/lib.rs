//! bitmesh-mesh: how peers reach each other.
//!
//! This crate will hold the WebRTC transport (web-sys in the browser, webrtc-rs natively), the
//! framing that chunks messages into data-channel frames, and the signaling protocol with its
//! client. It depends on `bitmesh-core` only for the types both ends share.

pub use bitmesh_core::Network;
