//! bitmesh-node's library half: what its benchmarks and tests reach directly (the miner's hash
//! search). The binary (`main.rs`) is the node itself.

pub mod miner;
