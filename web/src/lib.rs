//! bitmesh-web: the page a person opens.
//!
//! The yew app ([`app`]) renders what the core computes; the browser driver does the I/O the
//! core asks for: the mesh (`driver`: WebRTC connections, the signaling WebSocket, the timer)
//! and IndexedDB (`store`).

pub mod app;
pub mod depth;
pub mod devices;
#[cfg(target_arch = "wasm32")]
pub mod devices_card;
#[cfg(target_arch = "wasm32")]
pub mod driver;
pub mod explorer;
#[cfg(target_arch = "wasm32")]
pub mod explorer_card;
pub mod market;
#[cfg(target_arch = "wasm32")]
pub mod market_card;
#[cfg(target_arch = "wasm32")]
pub mod store;
pub mod wallet;
#[cfg(target_arch = "wasm32")]
pub mod wallet_card;

/// The version of this build: the crate version and, when known, the git commit.
pub const BUILD: &str = env!("BITMESH_BUILD");
