//! Bytes from a peer as a transaction: decoding, the context-free rules, the input and asset
//! rules against a small UTXO set, and signature verification must never panic.
#![no_main]

use std::sync::OnceLock;

use bitcoin::consensus::encode::{deserialize, serialize};
use bitcoin::{Transaction, TxOut};
use bitmesh_core::chain::assets::AssetRecord;
use bitmesh_core::chain::block::check_inputs;
use bitmesh_core::chain::spend::{verifier, verify_spends};
use bitmesh_core::chain::tx::check_transaction;
use bitmesh_core::chain::utxo::Coin;
use bitmesh_core::testkit::ConnectWorkload;
use libfuzzer_sys::fuzz_target;

fn workload() -> &'static ConnectWorkload {
    static WORKLOAD: OnceLock<ConnectWorkload> = OnceLock::new();
    WORKLOAD.get_or_init(|| ConnectWorkload::new(4, 2))
}

fuzz_target!(|data: &[u8]| {
    let Ok(tx) = deserialize::<Transaction>(data) else {
        return;
    };
    assert_eq!(serialize(&tx), data);
    for txout in &tx.output {
        let _ = AssetRecord::from_script(&txout.script_pubkey);
    }
    if check_transaction(&tx).is_err() || tx.is_coinbase() {
        return;
    }
    let workload = workload();
    // Inputs that name no coin of the set spend the set's coins in order instead, so the
    // deeper rules see real coins.
    let known: Vec<Coin> = workload.utxo.iter().map(|(_, coin)| coin.clone()).collect();
    let coins: Vec<Coin> = tx
        .input
        .iter()
        .enumerate()
        .map(|(i, txin)| {
            workload
                .utxo
                .get(&txin.previous_output)
                .cloned()
                .unwrap_or_else(|| known[i % known.len()].clone())
        })
        .collect();
    let coin_refs: Vec<&Coin> = coins.iter().collect();
    let _ = check_inputs(&tx, &coin_refs, workload.height, 0, workload.params);
    let prevouts: Vec<TxOut> = coins.into_iter().map(|coin| coin.output).collect();
    let _ = verify_spends(&verifier(), &tx, &prevouts);
});
