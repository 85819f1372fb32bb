//! Unlocking a vault sealed with the default parameters (Argon2id 19 MiB, 2 passes, 1 lane).
//!
//! `cargo bench -p bitmesh-core --bench vault`; `scripts/bench-core.sh` runs it beside the same
//! measurement in headless Chromium.

use std::time::Instant;

use bitmesh_core::wallet::mnemonic;
use bitmesh_core::wallet::vault::{KdfParams, Secret, Vault};
use criterion::Criterion;

fn main() {
    let secret = Secret::new(&mnemonic::from_entropy(&[1; 16]).unwrap(), "");
    let vault = Vault::seal(&secret, "password", KdfParams::default(), [2; 16], [3; 12]).unwrap();
    let mut criterion = Criterion::default().sample_size(10).configure_from_args();
    criterion.bench_function("vault_unlock_owasp_argon2id", |bencher| {
        bencher.iter(|| vault.open("password").unwrap())
    });

    let best = (0..5)
        .map(|_| {
            let start = Instant::now();
            vault.open("password").unwrap();
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    println!(
        "vault unlock, native: {:.1} ms (Argon2id {} KiB, {} passes, {} lane)",
        best * 1e3,
        KdfParams::OWASP.memory_kib,
        KdfParams::OWASP.iterations,
        KdfParams::OWASP.parallelism
    );
}
