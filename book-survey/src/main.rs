//! Every order-book crate of the registry we could run, fed the book benchmark's plain
//! operations (10,000 seed orders, then 200,000 operations: 70 % adds, 20 % cancels, 10 %
//! crossing orders on 25 levels a side), beside bitmesh's book on the same workload. Each
//! figure is the best of `BookWorkload::ROUNDS` rounds, the books taking turns round by round,
//! so a drift of the machine's speed falls on all of them alike.
//!
//! `cargo run --release --manifest-path book-survey/Cargo.toml`

use std::time::Instant;

use bitmesh_core::testkit::{BookWorkload, PlainOp};

#[path = "../../crates/core/benches/reference/mod.rs"]
mod reference;

/// A book of the survey, fresh for each round.
trait Submit {
    fn submit(&mut self, op: &PlainOp);
}

impl Submit for reference::Matchcore {
    fn submit(&mut self, op: &PlainOp) {
        reference::Matchcore::submit(self, op)
    }
}

impl Submit for reference::Lobster {
    fn submit(&mut self, op: &PlainOp) {
        reference::Lobster::submit(self, op)
    }
}

/// orderbook-rs: a concurrent book (lock-free price levels, a concurrent map of orders).
struct OrderbookRs(orderbook_rs::OrderBook<()>);

impl Submit for OrderbookRs {
    fn submit(&mut self, op: &PlainOp) {
        use orderbook_rs::prelude::{Id, Side, TimeInForce};
        match *op {
            PlainOp::Add {
                id,
                bid,
                price,
                quantity,
            }
            | PlainOp::Cross {
                id,
                bid,
                price,
                quantity,
            } => {
                let side = if bid { Side::Buy } else { Side::Sell };
                self.0
                    .add_limit_order(
                        Id::Sequential(id),
                        u128::from(price),
                        quantity,
                        side,
                        TimeInForce::Gtc,
                        None,
                    )
                    .expect("a valid limit order");
            }
            PlainOp::Cancel { id } => {
                // An order filled before its cancel is gone: not an error of the survey.
                let _ = self.0.cancel_order(Id::Sequential(id));
            }
        }
    }
}

/// lob: prices as `f64`, levels in a stable vector, orders in a std `HashMap`.
struct Lob {
    book: lob::OrderBook,
    time: u64,
}

impl Submit for Lob {
    fn submit(&mut self, op: &PlainOp) {
        use lob::{Oid, Order, OrderSide, Price, Timestamp, Volume};
        self.time += 1;
        match *op {
            PlainOp::Add {
                id,
                bid,
                price,
                quantity,
            }
            | PlainOp::Cross {
                id,
                bid,
                price,
                quantity,
            } => {
                let side = if bid { OrderSide::Buy } else { OrderSide::Sell };
                let order = Order::new_limit(
                    Oid::new(id),
                    side,
                    Timestamp::new(self.time),
                    Price::from(price as f64),
                    Volume::new(quantity),
                );
                self.book.execute(&order).expect("a valid limit order");
            }
            PlainOp::Cancel { id } => {
                let _ = self.book.cancel_order(Oid::new(id));
            }
        }
    }
}

/// limitbook: decimal prices and amounts; it numbers the orders itself.
struct Limitbook {
    book: limitbook::OrderBook,
    /// limitbook's number of each plain id.
    ids: Vec<u64>,
}

impl Submit for Limitbook {
    fn submit(&mut self, op: &PlainOp) {
        use limitbook::OrderSide;
        use rust_decimal::Decimal;
        match *op {
            PlainOp::Add {
                bid,
                price,
                quantity,
                ..
            }
            | PlainOp::Cross {
                bid,
                price,
                quantity,
                ..
            } => {
                let side = if bid { OrderSide::Buy } else { OrderSide::Sell };
                let (id, _fills) = self
                    .book
                    .add_limit_order(side, Decimal::from(price), Decimal::from(quantity))
                    .expect("a valid limit order");
                self.ids.push(id);
            }
            PlainOp::Cancel { id } => {
                let _ = self.book.cancel_limit_order(self.ids[id as usize]);
            }
        }
    }
}

/// Seconds the timed part of one round took on a fresh book.
fn round<B: Submit>(workload: &BookWorkload, mut book: B) -> f64 {
    for op in &workload.plain_seed {
        book.submit(op);
    }
    let start = Instant::now();
    for op in &workload.plain_ops {
        book.submit(op);
    }
    start.elapsed().as_secs_f64()
}

fn main() {
    let workload = BookWorkload::benchmark();
    let orders = workload.plain_seed.len() + workload.plain_ops.len();
    let books: [(&str, &dyn Fn() -> f64); 6] = [
        ("bitmesh", &|| {
            workload.operations() as f64 / workload.ops_per_second(1, seconds)
        }),
        ("matchcore 0.4", &|| {
            round(&workload, reference::Matchcore::new(orders))
        }),
        ("lobster 0.7", &|| {
            round(&workload, reference::Lobster::new(orders))
        }),
        ("orderbook-rs 0.15", &|| {
            round(
                &workload,
                OrderbookRs(orderbook_rs::OrderBook::new("SURVEY")),
            )
        }),
        ("lob 0.1", &|| {
            round(
                &workload,
                Lob {
                    book: lob::OrderBook::default(),
                    time: 0,
                },
            )
        }),
        ("limitbook 0.1", &|| {
            round(
                &workload,
                Limitbook {
                    book: limitbook::OrderBook::new(rust_decimal::Decimal::ONE)
                        .expect("a tick size"),
                    ids: Vec::with_capacity(orders),
                },
            )
        }),
    ];
    let mut best = [f64::MAX; 6];
    for _ in 0..BookWorkload::ROUNDS {
        for (best, (_, run)) in best.iter_mut().zip(&books) {
            *best = best.min(run());
        }
    }
    let rate = |seconds: f64| workload.operations() as f64 / seconds;
    let matchcore = rate(best[1]);
    for (best, (name, _)) in best.iter().zip(&books) {
        println!(
            "{name:<18} {:>10.0} ops/s  {:>5.2} x matchcore",
            rate(*best),
            rate(*best) / matchcore
        );
    }
}

/// Seconds since the first call (the clock `BookWorkload::ops_per_second` is given).
fn seconds() -> f64 {
    use std::sync::OnceLock;
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_secs_f64()
}
