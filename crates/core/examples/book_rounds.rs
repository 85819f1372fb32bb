//! The book benchmark's timed part alone, for profilers: applies the workload to fresh seeded
//! books `ROUNDS` times (default 30) and prints the best time per operation. The timed part is
//! the function `book_rounds::timed`, so `valgrind --tool=callgrind --toggle-collect=...` can
//! count its instructions and simulated cache misses alone (`scripts/book-instructions.sh`):
//! figures that repeat exactly, where this machine's clock varies by ±20 %. `BOOK=matchcore`
//! runs the fastest reference crate on the same operations instead, in `book_rounds::matchcore`.

use bitmesh_core::market::book::Book;
use bitmesh_core::market::order::Order;
#[cfg(not(target_arch = "wasm32"))]
use bitmesh_core::testkit::PlainOp;
use bitmesh_core::testkit::{BookOp, BookWorkload};

// The reference books are native dev-dependencies: the wasm build of this example (which
// `cargo test --target wasm32-unknown-unknown` makes, as of every example) has ours alone.
#[cfg(not(target_arch = "wasm32"))]
#[path = "../benches/reference/mod.rs"]
#[allow(dead_code)] // lobster and replay are the benchmark's and the survey's
mod reference;

#[inline(never)]
#[allow(clippy::vec_box)] // the boxed orders of the messages, kept as `BookWorkload::apply` keeps them
fn timed(book: &mut Book, ops: &mut Vec<BookOp>, takers: &mut Vec<Box<Order>>) -> usize {
    BookWorkload::apply(book, ops, takers)
}

#[cfg(not(target_arch = "wasm32"))]
#[inline(never)]
fn matchcore(book: &mut reference::Matchcore, ops: &[PlainOp]) {
    for op in ops {
        book.submit(op);
    }
}

/// Seconds matchcore's timed part of one round took.
#[cfg(not(target_arch = "wasm32"))]
fn matchcore_round(workload: &BookWorkload) -> f64 {
    let mut book = reference::Matchcore::new(workload.plain_seed.len() + workload.plain_ops.len());
    for op in &workload.plain_seed {
        book.submit(op);
    }
    let start = std::time::Instant::now();
    matchcore(&mut book, &workload.plain_ops);
    start.elapsed().as_secs_f64()
}

#[cfg(target_arch = "wasm32")]
fn matchcore_round(_: &BookWorkload) -> f64 {
    panic!("matchcore is measured natively only")
}

fn main() {
    let rounds: usize = match std::env::var("ROUNDS") {
        Ok(rounds) => rounds.parse().expect("ROUNDS is a number"),
        Err(_) => 30,
    };
    let name = std::env::var("BOOK").unwrap_or_else(|_| "bitmesh".into());
    let reference = match name.as_str() {
        "bitmesh" => false,
        "matchcore" => true,
        other => panic!("BOOK is bitmesh or matchcore, not {other}"),
    };
    let workload = BookWorkload::benchmark();
    let rate = if reference {
        let best = (0..rounds)
            .map(|_| matchcore_round(&workload))
            .fold(f64::MAX, f64::min);
        workload.operations() as f64 / best
    } else {
        let origin = std::time::Instant::now();
        workload.ops_per_second_with(rounds, || origin.elapsed().as_secs_f64(), timed)
    };
    let per_op = 1e9 / rate;
    println!("{name}: best of {rounds} rounds {per_op:.1} ns per operation ({rate:.0} ops/s)");
}
