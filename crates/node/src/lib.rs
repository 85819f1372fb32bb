//! bitmesh-node's library half: what its benchmarks and tests reach directly (the miner, the
//! store, the transaction index). The binary (`main.rs`) is the node itself.

pub mod faucet;
pub mod miner;
pub mod store;
pub mod txindex;
