//! The book benchmark's timed part alone, for profilers: applies the workload to fresh seeded
//! books `ROUNDS` times (default 30) and prints the best time per operation. The timed part is
//! the function `book_rounds::timed`, so `valgrind --tool=callgrind --toggle-collect=...` can
//! count its instructions and simulated cache misses alone (`scripts/book-instructions.sh`):
//! figures that repeat exactly, where this machine's clock varies by ±20 %.

use bitmesh_core::market::book::Book;
use bitmesh_core::market::order::Order;
use bitmesh_core::testkit::{BookOp, BookWorkload};

#[inline(never)]
#[allow(clippy::vec_box)] // the boxed orders of the messages, kept as `BookWorkload::apply` keeps them
fn timed(book: &mut Book, ops: &mut Vec<BookOp>, takers: &mut Vec<Box<Order>>) -> usize {
    BookWorkload::apply(book, ops, takers)
}

fn main() {
    let rounds: usize = match std::env::var("ROUNDS") {
        Ok(rounds) => rounds.parse().expect("ROUNDS is a number"),
        Err(_) => 30,
    };
    let workload = BookWorkload::benchmark();
    let mut best = f64::MAX;
    for _ in 0..rounds {
        let mut book = workload.seeded_book();
        let mut ops = workload.fresh_ops();
        let mut takers = Vec::with_capacity(ops.len());
        let start = std::time::Instant::now();
        let fills = timed(&mut book, &mut ops, &mut takers);
        best = best.min(start.elapsed().as_secs_f64());
        assert_eq!(fills, workload.fills, "the replay matches as recorded");
    }
    let per_op = best * 1e9 / workload.operations() as f64;
    println!("book: best of {rounds} rounds {per_op:.1} ns per operation");
}
