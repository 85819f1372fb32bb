//! The order-book crates of the registry that bitmesh's book is measured against, fed the
//! workload's plain operations: matchcore (slab + FxHash, the fastest found: `book-survey/`
//! runs every crate we could) and lobster. Shared by `benches/book.rs`, the profiling example
//! `examples/book_rounds.rs` and `book-survey/`.

use std::time::Instant;

use bitmesh_core::testkit::{BookWorkload, PlainOp};

/// Submits the workload's seed orders, then times its operations; returns the seconds they
/// took.
pub fn replay(workload: &BookWorkload, mut submit: impl FnMut(&PlainOp)) -> f64 {
    for op in &workload.plain_seed {
        submit(op);
    }
    let start = Instant::now();
    for op in &workload.plain_ops {
        submit(op);
    }
    start.elapsed().as_secs_f64()
}

/// matchcore, whose ids are the sequence numbers it assigns.
pub struct Matchcore {
    book: matchcore::OrderBook,
    /// matchcore's id of each plain id.
    ids: Vec<u64>,
    sequence: u64,
}

impl Matchcore {
    pub fn new(orders: usize) -> Matchcore {
        Matchcore {
            book: matchcore::OrderBook::new("BENCH"),
            ids: Vec::with_capacity(orders),
            sequence: 0,
        }
    }

    pub fn submit(&mut self, op: &PlainOp) {
        use matchcore::*;
        let kind = match *op {
            PlainOp::Add(order) | PlainOp::Cross(order) => {
                self.ids.push(self.sequence);
                CommandKind::Submit(SubmitCmd {
                    order: NewOrder::Limit(LimitOrder::new(
                        Price(order.price),
                        QuantityPolicy::Standard {
                            quantity: Quantity(order.quantity),
                        },
                        OrderFlags::new(
                            if order.bid { Side::Buy } else { Side::Sell },
                            false,
                            TimeInForce::Gtc,
                        ),
                    )),
                })
            }
            PlainOp::Cancel { id } => CommandKind::Cancel(CancelCmd {
                order_id: OrderId(self.ids[id as usize]),
                order_kind: OrderKind::Limit,
            }),
        };
        self.book.execute(&Command {
            meta: CommandMeta {
                sequence_number: SequenceNumber(self.sequence),
                timestamp: Timestamp(self.sequence),
            },
            kind,
        });
        self.sequence += 1;
    }
}

/// lobster, given its capacity up front.
pub struct Lobster(lobster::OrderBook);

impl Lobster {
    pub fn new(orders: usize) -> Lobster {
        Lobster(lobster::OrderBook::new(orders, 16, false))
    }

    pub fn submit(&mut self, op: &PlainOp) {
        use lobster::{OrderType, Side};
        let side = |bid| if bid { Side::Bid } else { Side::Ask };
        match *op {
            PlainOp::Add(order) | PlainOp::Cross(order) => {
                self.0.execute(OrderType::Limit {
                    id: u128::from(order.id),
                    side: side(order.bid),
                    qty: order.quantity,
                    price: order.price,
                });
            }
            PlainOp::Cancel { id } => {
                self.0.execute(OrderType::Cancel { id: u128::from(id) });
            }
        }
    }
}
