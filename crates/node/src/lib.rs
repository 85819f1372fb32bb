//! bitmesh-node's library half: what its benchmarks and tests reach directly (the miner, the
//! store). The binary (`main.rs`) is the node itself.

pub mod miner;
pub mod store;
