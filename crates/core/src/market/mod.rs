//! The market: signed orders for assets against BTC, a replicated order book every peer agrees
//! on without a server, price-time matching, and swaps that settle each fill in one atomic
//! transaction. See `docs/market.md`.

pub mod book;
pub mod desk;
pub mod ladder;
pub mod order;
pub mod record;
pub mod swap;
