//! The protocols a full peer runs: chain sync and block relay, transaction relay, the market,
//! and the topic board other protocols find each other's peers on.

mod chain;
mod market;
mod mempool;
mod topics;

pub use chain::{ChainSync, BLOCK_TIMEOUT_MILLIS, MAX_BLOCKS_IN_FLIGHT, WINDOW};
pub use market::{MarketRelay, SubmitError, COINS_WAIT_MILLIS, MAKER_OFFLINE_MILLIS};
pub use mempool::MempoolRelay;
pub use topics::{
    AnnounceError, TopicBoard, MAX_ANNOUNCEMENTS, MAX_CLOCK_SKEW_MILLIS, MAX_TOPICS_PER_PEER,
    MAX_TOPIC_TTL_MILLIS, MIN_RENEW_MILLIS,
};
