//! bitmesh-web: the page a person opens.
//!
//! The yew app ([`app`]) renders what the core computes; the browser driver does the I/O the
//! core asks for: IndexedDB ([`store`]) today, WebRTC and timers as their issues land.

pub mod app;
#[cfg(target_arch = "wasm32")]
pub mod store;

/// The version of this build: the crate version and, when known, the git commit.
pub const BUILD: &str = env!("BITMESH_BUILD");
