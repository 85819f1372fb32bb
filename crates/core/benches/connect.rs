//! Connecting a block of 1,000 transactions × 2 P2WPKH inputs, with the signature cache cold
//! (every signature verified) and warm (all transactions verified before, in the mempool).
//!
//! `cargo bench -p bitmesh-core --bench connect` prints criterion's statistics, then one line
//! comparing the two in the same run, and the goal.

use std::hint::black_box;
use std::time::Instant;

use bitmesh_core::chain::block::connect_block;
use bitmesh_core::chain::spend::verifier;
use bitmesh_core::testkit::ConnectWorkload;
use criterion::{BatchSize, Criterion, Throughput};

fn main() {
    let workload = ConnectWorkload::new(1_000, 2);
    let secp = verifier();
    let mut criterion = Criterion::default().sample_size(10).configure_from_args();
    let mut group = criterion.benchmark_group("connect_block_1000x2_p2wpkh");
    group.throughput(Throughput::Elements(workload.inputs() as u64));
    for warm in [false, true] {
        let sigcache = workload.sigcache(warm);
        let context = workload.context(&secp, &sigcache);
        let name = if warm {
            "sigcache_warm"
        } else {
            "sigcache_cold"
        };
        group.bench_function(name, |bencher| {
            bencher.iter_batched(
                || workload.utxo.clone(),
                |mut utxo| connect_block(&mut utxo, black_box(&workload.block), &context).unwrap(),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();

    let origin = Instant::now();
    let clock = || origin.elapsed().as_secs_f64();
    let cold = workload.inputs_per_second(false, 5, clock);
    let warm = workload.inputs_per_second(true, 5, clock);
    let ceiling = raw_ecdsa_verifications_per_second();
    println!(
        "connect 1000 tx x 2 P2WPKH inputs, native, one core: cold {cold:.0} inputs/s, warm {warm:.0} inputs/s, \
         warm/cold {:.1}x; this core verifies {ceiling:.0} bare ECDSA signatures/s, so cold runs at {:.0}% of \
         that ceiling; goal >= 30000 inputs/s cold (Bitcoin Core ~44000 on its reference machine)",
        warm / cold,
        100.0 * cold / ceiling
    );
}

/// How many ECDSA signatures libsecp256k1 alone verifies per second on this core: the upper
/// bound of any P2WPKH validation.
fn raw_ecdsa_verifications_per_second() -> f64 {
    use bitcoin::secp256k1::{Message, Secp256k1, SecretKey};
    let signer = Secp256k1::signing_only();
    let key = SecretKey::from_slice(&[7; 32]).unwrap();
    let public = key.public_key(&Secp256k1::new());
    let messages: Vec<Message> = (0..2_000u32)
        .map(|i| {
            let mut digest = [1u8; 32];
            digest[..4].copy_from_slice(&i.to_le_bytes());
            Message::from_digest(digest)
        })
        .collect();
    let signatures: Vec<_> = messages
        .iter()
        .map(|m| signer.sign_ecdsa(m, &key))
        .collect();
    let verifier = verifier();
    let best = (0..5)
        .map(|_| {
            let start = Instant::now();
            for (message, signature) in messages.iter().zip(&signatures) {
                verifier.verify_ecdsa(message, signature, &public).unwrap();
            }
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    messages.len() as f64 / best
}
