//! Consensus: network parameters and genesis blocks (more rules land here: header and block
//! checks, the UTXO set, fork choice, difficulty, assets, the mempool and mining).

pub mod assets;
pub mod difficulty;
pub mod genesis;
mod params;
pub mod pow;
pub mod spend;
pub mod tx;

pub use params::{Network, Params, ParseNetworkError};
