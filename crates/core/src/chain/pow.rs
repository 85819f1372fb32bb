//! Proof of work: the block subsidy and the nonce search miners run.

use bitcoin::block::Header;
use bitcoin::consensus::encode::serialize;
use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::{Amount, BlockHash};

use super::Params;

/// The subsidy of a block at `height`: 50 BTC, halved every `subsidy_halving_interval` blocks.
pub fn block_subsidy(height: u32, params: &Params) -> Amount {
    let halvings = height / params.subsidy_halving_interval;
    if halvings >= 64 {
        return Amount::ZERO;
    }
    Amount::from_sat((50 * 100_000_000) >> halvings)
}

/// Searches `nonces` for one that makes `header` meet its own target, and returns the first.
///
/// The first 64 bytes of the 80-byte header do not change with the nonce, so their SHA-256 state
/// (the midstate) is computed once; each nonce then costs two compressions: the header's last 16
/// bytes with padding, and the second SHA-256 of the 32-byte first hash.
pub fn search_nonce(header: &Header, nonces: core::ops::RangeInclusive<u32>) -> Option<u32> {
    let bytes = serialize(header);
    let mut midstate = sha256::HashEngine::default();
    midstate.input(&bytes[..64]);
    let mut tail = [0u8; 16];
    tail[..12].copy_from_slice(&bytes[64..76]);
    let target = header.target();
    nonces.into_iter().find(|nonce| {
        tail[12..].copy_from_slice(&nonce.to_le_bytes());
        let mut engine = midstate.clone();
        engine.input(&tail);
        let first = sha256::Hash::from_engine(engine);
        let hash = sha256::Hash::hash(first.as_byte_array());
        target.is_met_by(BlockHash::from_byte_array(hash.to_byte_array()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::genesis;
    use crate::Network;

    #[test]
    fn subsidy_halves_on_schedule() {
        let params = Network::Local.params();
        let interval = params.subsidy_halving_interval;
        assert_eq!(block_subsidy(0, params), Amount::from_sat(5_000_000_000));
        assert_eq!(
            block_subsidy(interval - 1, params),
            Amount::from_sat(5_000_000_000)
        );
        assert_eq!(
            block_subsidy(interval, params),
            Amount::from_sat(2_500_000_000)
        );
        assert_eq!(block_subsidy(interval * 33, params), Amount::ZERO);
        assert_eq!(block_subsidy(u32::MAX, params), Amount::ZERO);
    }

    #[test]
    fn the_search_finds_the_genesis_nonce() {
        for network in Network::ALL {
            let unmined = genesis::unmined(network);
            let expected = network.genesis_block().header.nonce;
            let found = search_nonce(&unmined.header, 0..=u32::MAX);
            assert_eq!(found, Some(expected), "{network}");
        }
    }

    #[test]
    fn the_search_agrees_with_the_block_hash() {
        let mut header = genesis::unmined(Network::Local).header;
        let expected = Network::Local.genesis_block().header.nonce;
        // A range that stops short of the only solution below it finds nothing.
        assert_eq!(search_nonce(&header, 0..=expected - 1), None);
        let nonce = search_nonce(&header, expected..=u32::MAX).expect("found");
        header.nonce = nonce;
        assert!(header.target().is_met_by(header.block_hash()));
    }
}
