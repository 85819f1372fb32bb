//! The order book under a mixed workload — 70 % adds, 20 % cancels, 10 % orders that cross
//! the book — on ~50 price levels, with signatures verified beforehand (as the node does, once
//! per order). The same operations run through two order-book crates of the registry, in the
//! same run: matchcore (slab + FxHash, the fastest found) and lobster (`reference/`).
//!
//! `cargo bench -p bitmesh-core --bench book`; `scripts/bench-core.sh` runs it beside the same
//! workload in headless Chromium. `BOOK_SEED_ORDERS` and `BOOK_OPS` change the workload's size
//! (10,000 and 200,000 by default): a small one fits in the cache, and compares the books'
//! computation alone.

use std::time::Instant;

use bitmesh_core::testkit::BookWorkload;
use criterion::{Criterion, Throughput};

mod reference;
use reference::{replay, Lobster, Matchcore};

/// A size from the environment, or the default.
fn size(variable: &str, default: usize) -> usize {
    match std::env::var(variable) {
        Ok(value) => value.parse().expect("a number of orders"),
        Err(_) => default,
    }
}

const ROUNDS: usize = BookWorkload::ROUNDS;

fn best_rate(ops: usize, mut run: impl FnMut() -> f64) -> f64 {
    (0..ROUNDS).map(|_| ops as f64 / run()).fold(0.0, f64::max)
}

/// Runs the plain operations through lobster; returns the seconds the timed part took.
fn lobster_run(workload: &BookWorkload) -> f64 {
    let mut book = Lobster::new(workload.plain_seed.len() + workload.plain_ops.len());
    replay(workload, |op| book.submit(op))
}

/// Runs the plain operations through matchcore; returns the seconds the timed part took.
fn matchcore_run(workload: &BookWorkload) -> f64 {
    let mut book = Matchcore::new(workload.plain_seed.len() + workload.plain_ops.len());
    replay(workload, |op| book.submit(op))
}

fn main() {
    let seed_orders = size("BOOK_SEED_ORDERS", BookWorkload::SEED_ORDERS);
    let workload = BookWorkload::new(
        seed_orders,
        size("BOOK_OPS", BookWorkload::OPS),
        BookWorkload::SEED,
    );
    let ops = workload.operations();
    let mut criterion = Criterion::default().sample_size(10).configure_from_args();
    let mut group = criterion.benchmark_group("book_mixed_70_20_10");
    group.throughput(Throughput::Elements(ops as u64));
    group.bench_function("bitmesh", |bencher| {
        bencher.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            for _ in 0..iters {
                let mut book = workload.seeded_book();
                let mut batch = workload.fresh_ops();
                let mut takers = Vec::with_capacity(batch.len());
                let start = Instant::now();
                BookWorkload::apply(&mut book, &mut batch, &mut takers);
                total += start.elapsed();
            }
            total
        })
    });
    group.finish();

    let clock = {
        let origin = Instant::now();
        move || origin.elapsed().as_secs_f64()
    };
    let ours = workload.ops_per_second(ROUNDS, clock);
    let matchcore = best_rate(ops, || matchcore_run(&workload));
    let lobster = best_rate(ops, || lobster_run(&workload));
    let fastest = matchcore.max(lobster);
    println!(
        "order book, native: bitmesh {ours:.0} ops/s, matchcore {matchcore:.0} ops/s, lobster {lobster:.0} ops/s \
         ({ops} ops after {seed_orders} seed orders, {} fills, {} levels a side); \
         bitmesh / fastest reference {:.2}",
        workload.fills,
        BookWorkload::LEVELS,
        ours / fastest
    );
}
