//! The protocols a full peer runs: chain sync and block relay, transaction relay, the market.

mod chain;
mod market;
mod mempool;

pub use chain::{ChainSync, BLOCK_TIMEOUT_MILLIS, MAX_BLOCKS_IN_FLIGHT, WINDOW};
pub use market::{MarketRelay, SubmitError};
pub use mempool::MempoolRelay;
