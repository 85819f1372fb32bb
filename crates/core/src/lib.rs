//! bitmesh-core: every piece of bitmesh's protocol logic, as plain state machines.
//!
//! Nothing in this crate does I/O. Time, randomness and stored data come in as inputs; messages to
//! send, batches to persist and events for the UI go out as values. The browser (`bitmesh-web`) and
//! the native node (`bitmesh-node`) are drivers that carry those out. The crate builds for native
//! targets and for `wasm32-unknown-unknown` alike.

pub mod chain;
pub mod encode;
pub mod faucet;
pub mod hashing;
pub mod market;
pub mod node;
pub mod sort;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod wallet;
pub mod wire;

pub use chain::Network;
