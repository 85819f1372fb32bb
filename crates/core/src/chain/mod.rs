//! Consensus: network parameters and genesis blocks (more rules land here: header and block
//! checks, the UTXO set, fork choice, difficulty, assets, the mempool and mining).

pub mod assets;
pub mod block;
pub mod difficulty;
pub mod genesis;
pub mod index;
pub mod mempool;
mod params;
pub mod pow;
pub mod sigcache;
pub mod spend;
pub mod state;
pub mod template;
pub mod tx;
pub mod utxo;

pub use params::{Network, Params, ParseNetworkError};
