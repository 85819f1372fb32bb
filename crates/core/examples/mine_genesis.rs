//! Finds the nonce of each network's genesis block: the documented, one-time procedure whose
//! results are fixed in `crates/core/src/chain/genesis.rs`.
//!
//! `cargo run -p bitmesh-core --release --example mine_genesis`

use bitmesh_core::chain::genesis;
use bitmesh_core::Network;

fn main() {
    for network in Network::ALL {
        let mut block = genesis::unmined(network);
        let target = network.params().pow_limit();
        let nonce = (0..=u32::MAX)
            .find(|&nonce| {
                block.header.nonce = nonce;
                block.header.validate_pow(target).is_ok()
            })
            .expect("the easiest target is met within the nonce range");
        block.header.nonce = nonce;
        println!(
            "{network}: nonce {nonce}, hash {}, merkle root {}",
            block.block_hash(),
            block.header.merkle_root
        );
    }
}
