//! Bytes from a peer as a block: decoding, the context-free checks, and connection to a small
//! UTXO set must never panic, and a block that connects must disconnect exactly.
#![no_main]

use std::sync::OnceLock;

use bitcoin::consensus::encode::{deserialize, serialize};
use bitcoin::hashes::Hash;
use bitcoin::Block;
use bitmesh_core::chain::block::{check_block, connect_block, disconnect_block};
use bitmesh_core::chain::sigcache::SigCache;
use bitmesh_core::chain::spend::verifier;
use bitmesh_core::testkit::ConnectWorkload;
use libfuzzer_sys::fuzz_target;

fn workload() -> &'static ConnectWorkload {
    static WORKLOAD: OnceLock<ConnectWorkload> = OnceLock::new();
    WORKLOAD.get_or_init(|| ConnectWorkload::new(4, 2))
}

/// Makes the commitments of a mutated block match its transactions again, so that the fuzzer
/// reaches the rules behind them instead of stopping at a hash mismatch.
fn recommit(block: &mut Block) {
    const MAGIC: [u8; 6] = [0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed];
    let reserved = block.txdata.first().and_then(|coinbase| {
        let witness = &coinbase.input.first()?.witness;
        (witness.len() == 1 && witness[0].len() == 32).then(|| witness[0].to_vec())
    });
    if let (Some(reserved), Some(root)) = (reserved, block.witness_root()) {
        let commitment = Block::compute_witness_commitment(&root, &reserved);
        let coinbase = &mut block.txdata[0];
        if let Some(output) = coinbase.output.iter_mut().rev().find(|output| {
            output.script_pubkey.as_bytes().starts_with(&MAGIC) && output.script_pubkey.len() >= 38
        }) {
            let mut script = output.script_pubkey.to_bytes();
            script[6..38].copy_from_slice(commitment.as_byte_array());
            output.script_pubkey = script.into();
        }
    }
    if let Some(root) = block.compute_merkle_root() {
        block.header.merkle_root = root;
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(mut block) = deserialize::<Block>(data) else {
        return;
    };
    // What decodes re-encodes to the same bytes.
    assert_eq!(serialize(&block), data);
    recommit(&mut block);
    if check_block(&block).is_err() {
        return;
    }
    let workload = workload();
    let secp = verifier();
    let sigcache = SigCache::new(0);
    let context = workload.context(&secp, &sigcache);
    let mut utxo = workload.utxo.clone();
    if let Ok(connected) = connect_block(&mut utxo, &block, &context) {
        disconnect_block(&mut utxo, &block, &connected.undo).expect("its own undo data");
        assert_eq!(&utxo, &workload.utxo);
    } else {
        assert_eq!(&utxo, &workload.utxo, "a failed connection changes nothing");
    }
});
