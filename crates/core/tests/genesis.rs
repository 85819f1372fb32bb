//! The genesis blocks are fixed: the same hash, merkle root and proof of work natively and in
//! wasm (this file runs under `cargo test` and under `wasm-pack test --headless --chrome`).

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use bitmesh_core::Network;

/// (network, block hash, merkle root), as `examples/mine_genesis.rs` found them.
const EXPECTED: [(Network, &str, &str); 2] = [
    (
        Network::Local,
        "0000d87272e733092b928dfe2abfc980e7b60852a3e6e77e9e7518c9a174c7b8",
        "a39a14f76456b17061b3fce81ca1ad50fdb1146224a6c76446acfb95a94fda6b",
    ),
    (
        Network::Test,
        "473c97f194eedffae1a3427ef14eef899874a656637cfa91a52ed78a49c1a75b",
        "327d798a6024c20ae27f644c1a6313adec8784e9a1b3f79f0fcf87af8cd28aa5",
    ),
];

#[test]
fn genesis_hash_and_merkle_root_are_fixed() {
    for (network, hash, merkle_root) in EXPECTED {
        let block = network.genesis_block();
        assert_eq!(block.block_hash().to_string(), hash, "{network} hash");
        assert_eq!(network.genesis_hash().to_string(), hash, "{network} hash");
        assert_eq!(
            block.header.merkle_root.to_string(),
            merkle_root,
            "{network} merkle root"
        );
        assert!(
            block.check_merkle_root(),
            "{network}: merkle root matches txdata"
        );
    }
}

#[test]
fn genesis_meets_the_easiest_target() {
    for network in Network::ALL {
        let header = network.genesis_block().header;
        let target = network.params().pow_limit();
        assert_eq!(header.target(), target, "{network} bits");
        assert!(
            header.validate_pow(target).is_ok(),
            "{network} proof of work"
        );
    }
}

#[test]
fn a_wrong_nonce_fails_the_local_proof_of_work() {
    let mut header = Network::Local.genesis_block().header;
    header.nonce = header.nonce.wrapping_add(1);
    assert!(header.validate_pow(header.target()).is_err());
}
