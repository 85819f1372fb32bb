//! The genesis block of each network.
//!
//! A genesis block is built from fixed inputs: a coinbase whose script carries the network's
//! message, a single zero-value OP_RETURN output (so the genesis creates no spendable coin), a
//! fixed time, and the network's easiest target. Its nonce was found once by
//! `cargo run -p bitmesh-core --release --example mine_genesis` and is fixed here; `tests/genesis.rs`
//! checks the resulting hash, merkle root and proof of work, natively and in wasm.

use bitcoin::block::{Header, Version};
use bitcoin::hashes::Hash;
use bitcoin::script::{Builder, PushBytesBuf};
use bitcoin::transaction::{self, Transaction, TxIn, TxOut};
use bitcoin::{
    absolute, Amount, Block, BlockHash, CompactTarget, OutPoint, ScriptBuf, Sequence, TxMerkleNode,
    Witness,
};

use super::Network;

/// 2026-11-21T00:00:00Z, the day bitmesh's chains began.
pub const GENESIS_TIME: u32 = 1_795_219_200;

/// The nonce that gives the genesis block of `network` a valid proof of work.
fn nonce(network: Network) -> u32 {
    match network {
        Network::Local => 60_063,
        Network::Test => 0,
    }
}

/// The message in the genesis coinbase of `network`.
fn message(network: Network) -> &'static str {
    match network {
        Network::Local => "bitmesh local 2026-11-21: a web page is a full peer",
        Network::Test => "bitmesh test 2026-11-21: a web page is a full peer",
    }
}

/// The genesis block of `network`.
pub fn block(network: Network) -> Block {
    let mut block = unmined(network);
    block.header.nonce = nonce(network);
    block
}

/// The genesis block of `network` with nonce zero: the input of the mining procedure.
pub fn unmined(network: Network) -> Block {
    let message = PushBytesBuf::try_from(message(network).as_bytes().to_vec())
        .expect("genesis message is shorter than a push's limit");
    // Height 0 first, as BIP34 asks of every coinbase.
    let script_sig = Builder::new().push_int(0).push_slice(message).into_script();
    let coinbase = Transaction {
        version: transaction::Version::ONE,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig,
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: vec![TxOut {
            value: Amount::ZERO,
            script_pubkey: ScriptBuf::new_op_return(b"bitmesh"),
        }],
    };
    let mut block = Block {
        header: Header {
            version: Version::ONE,
            prev_blockhash: BlockHash::all_zeros(),
            merkle_root: TxMerkleNode::all_zeros(),
            time: GENESIS_TIME,
            bits: CompactTarget::from_consensus(network.params().pow_limit_bits),
            nonce: 0,
        },
        txdata: vec![coinbase],
    };
    block.header.merkle_root = block
        .compute_merkle_root()
        .expect("a block with one transaction has a merkle root");
    block
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genesis_coinbase_creates_no_spendable_coin() {
        for network in Network::ALL {
            let block = network.genesis_block();
            assert_eq!(block.txdata.len(), 1);
            let coinbase = &block.txdata[0];
            assert!(coinbase.is_coinbase());
            assert_eq!(coinbase.output.len(), 1);
            assert_eq!(coinbase.output[0].value, Amount::ZERO);
            assert!(coinbase.output[0].script_pubkey.is_op_return());
        }
    }

    #[test]
    fn networks_have_distinct_genesis_blocks() {
        assert_ne!(Network::Local.genesis_hash(), Network::Test.genesis_hash());
    }
}
