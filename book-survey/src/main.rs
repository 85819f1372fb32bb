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
use reference::{replay, Lobster, Matchcore};

/// orderbook-rs: a concurrent book (lock-free price levels, a concurrent map of orders).
struct OrderbookRs(orderbook_rs::OrderBook<()>);

impl OrderbookRs {
    fn submit(&mut self, op: &PlainOp) {
        use orderbook_rs::prelude::{Id, Side, TimeInForce};
        match *op {
            PlainOp::Add(order) | PlainOp::Cross(order) => {
                let side = if order.bid { Side::Buy } else { Side::Sell };
                self.0
                    .add_limit_order(
                        Id::Sequential(order.id),
                        u128::from(order.price),
                        order.quantity,
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

impl Lob {
    fn submit(&mut self, op: &PlainOp) {
        use lob::{Oid, Order, OrderSide, Price, Timestamp, Volume};
        self.time += 1;
        match *op {
            PlainOp::Add(plain) | PlainOp::Cross(plain) => {
                let side = if plain.bid {
                    OrderSide::Buy
                } else {
                    OrderSide::Sell
                };
                let order = Order::new_limit(
                    Oid::new(plain.id),
                    side,
                    Timestamp::new(self.time),
                    Price::from(plain.price as f64),
                    Volume::new(plain.quantity),
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

impl Limitbook {
    fn submit(&mut self, op: &PlainOp) {
        use limitbook::OrderSide;
        use rust_decimal::Decimal;
        match *op {
            PlainOp::Add(order) | PlainOp::Cross(order) => {
                let side = if order.bid {
                    OrderSide::Buy
                } else {
                    OrderSide::Sell
                };
                let (id, _fills) = self
                    .book
                    .add_limit_order(
                        side,
                        Decimal::from(order.price),
                        Decimal::from(order.quantity),
                    )
                    .expect("a valid limit order");
                self.ids.push(id);
            }
            PlainOp::Cancel { id } => {
                let _ = self.book.cancel_limit_order(self.ids[id as usize]);
            }
        }
    }
}

fn main() {
    let workload = BookWorkload::benchmark();
    let orders = workload.plain_seed.len() + workload.plain_ops.len();
    let books: [(&str, &dyn Fn() -> f64); 6] = [
        ("bitmesh", &|| {
            workload.operations() as f64 / workload.ops_per_second(1, seconds)
        }),
        ("matchcore 0.4", &|| {
            let mut book = Matchcore::new(orders);
            replay(&workload, |op| book.submit(op))
        }),
        ("lobster 0.7", &|| {
            let mut book = Lobster::new(orders);
            replay(&workload, |op| book.submit(op))
        }),
        ("orderbook-rs 0.15", &|| {
            let mut book = OrderbookRs(orderbook_rs::OrderBook::new("SURVEY"));
            replay(&workload, |op| book.submit(op))
        }),
        ("lob 0.1", &|| {
            let mut book = Lob {
                book: lob::OrderBook::default(),
                time: 0,
            };
            replay(&workload, |op| book.submit(op))
        }),
        ("limitbook 0.1", &|| {
            let mut book = Limitbook {
                book: limitbook::OrderBook::new(rust_decimal::Decimal::ONE).expect("a tick size"),
                ids: Vec::with_capacity(orders),
            };
            replay(&workload, |op| book.submit(op))
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
