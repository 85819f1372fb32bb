//! The core's benchmarks in the browser: the same work as `benches/connect.rs`,
//! `benches/vault.rs`, `benches/book.rs` and `benches/relay.rs`, timed by the page's clock. Ignored in test runs; `scripts/bench-core.sh`
//! runs them beside the native benchmarks and prints wasm ÷ native.
#![cfg(target_arch = "wasm32")]

use bitmesh_core::testkit::{BookWorkload, ConnectWorkload, RelayWorkload};
use bitmesh_core::wallet::mnemonic;
use bitmesh_core::wallet::vault::{KdfParams, Secret, Vault};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen]
extern "C" {
    /// The page's high-resolution clock, in milliseconds (`Date.now()` counts whole ones, a
    /// step of 3 % of a book round).
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
}

/// Seconds on the page's high-resolution clock.
fn seconds() -> f64 {
    performance_now() / 1_000.0
}

#[wasm_bindgen_test]
#[ignore]
fn connect_benchmark() {
    let workload = ConnectWorkload::new(1_000, 2);
    let cold = workload.inputs_per_second(false, 5, seconds);
    let warm = workload.inputs_per_second(true, 5, seconds);
    console_log!("wasm connect 1000x2 P2WPKH: cold {cold:.0} inputs/s, warm {warm:.0} inputs/s");
    assert!(cold.is_finite() && cold > 0.0 && warm > cold);
}

#[wasm_bindgen_test]
#[ignore]
fn vault_unlock_benchmark() {
    let secret = Secret::new(&mnemonic::from_entropy(&[1; 16]).unwrap(), "");
    let vault = Vault::seal(&secret, "password", KdfParams::default(), [2; 16], [3; 12]).unwrap();
    let best = (0..5)
        .map(|_| {
            let start = performance_now();
            vault.open("password").unwrap();
            performance_now() - start
        })
        .fold(f64::INFINITY, f64::min);
    console_log!("wasm vault unlock: {best:.1} ms");
    assert!(best > 0.0);
}

#[wasm_bindgen_test]
#[ignore]
fn book_benchmark() {
    let workload = BookWorkload::benchmark();
    let rate = workload.ops_per_second(BookWorkload::ROUNDS, seconds);
    console_log!("wasm order book: {rate:.0} ops/s");
    assert!(rate.is_finite() && rate > 0.0);
}

#[wasm_bindgen_test]
#[ignore]
fn relay_benchmark() {
    // The same stream as benches/relay.rs: 2,000 transactions and 2,000 orders.
    let workload = RelayWorkload::new(2_000);
    let node = workload.node_seconds(5, seconds);
    let validation = workload.validation_seconds(5, seconds);
    let rate = workload.inputs.len() as f64 / node;
    console_log!(
        "wasm message handling: {rate:.0} messages/s; validation alone {:.0} %",
        100.0 * validation / node
    );
    assert!(rate.is_finite() && rate > 0.0);
}
