//! The message-handling path: one node with eight neighbours takes the gossip of 2,000
//! transactions and 2,000 orders (each announced by all eight, sent by one, validated and
//! announced on), beside the validation alone of the same objects, in the same run.
//!
//! `cargo bench -p bitmesh-core --bench relay`; `scripts/bench-core.sh` runs the same stream in
//! headless Chromium and prints wasm ÷ native.

use std::time::Instant;

use bitmesh_core::testkit::RelayWorkload;

const TXS: usize = 2_000;
const ROUNDS: usize = 5;

fn main() {
    let workload = RelayWorkload::new(TXS);
    let origin = Instant::now();
    let clock = || origin.elapsed().as_secs_f64();
    let node = workload.node_seconds(ROUNDS, clock);
    let validation = workload.validation_seconds(ROUNDS, clock);
    println!(
        "message handling, native: {:.0} messages/s ({:.0} objects/s); validation alone is {:.0} % \
         of the node's time (state machine overhead {:.2}x)",
        workload.inputs.len() as f64 / node,
        workload.objects as f64 / node,
        100.0 * validation / node,
        node / validation
    );
}
