//! The block-connection benchmark in the browser: the same workload and measurement as
//! `benches/connect.rs`, timed by the page's clock. Ignored in test runs;
//! `scripts/bench-chain.sh` runs it beside the native benchmark and prints wasm ÷ native.
#![cfg(target_arch = "wasm32")]

use bitmesh_core::testkit::ConnectWorkload;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
#[ignore]
fn connect_benchmark() {
    let workload = ConnectWorkload::new(1_000, 2);
    let clock = || js_sys::Date::now() / 1_000.0;
    let cold = workload.inputs_per_second(false, 5, clock);
    let warm = workload.inputs_per_second(true, 5, clock);
    console_log!("wasm connect 1000x2 P2WPKH: cold {cold:.0} inputs/s, warm {warm:.0} inputs/s");
    assert!(cold.is_finite() && cold > 0.0 && warm > cold);
}
