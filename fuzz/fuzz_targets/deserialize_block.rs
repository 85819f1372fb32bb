//! Bytes from a peer as a block: decoding, the context-free checks, and connection to a small
//! UTXO set must never panic, and a block that connects must disconnect exactly.
#![no_main]

use std::sync::OnceLock;

use bitcoin::consensus::encode::{deserialize, serialize};
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

fuzz_target!(|data: &[u8]| {
    let Ok(block) = deserialize::<Block>(data) else { return };
    // What decodes re-encodes to the same bytes.
    assert_eq!(serialize(&block), data);
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
