//! What the order in which orders arrive costs the book: the same number of orders inserted
//! oldest first at one price (the common case: each goes behind the last), newest first at one
//! price (each sorts before every order resting there, as a peer may send them, or a book
//! sync may deliver them), and at a distinct price each (a new level each time), in one run.
//! The per-order times of the last two against the first tell whether arrival order or a
//! spread of prices can make the book's work grow faster than its size; checking an order's
//! signature, which every order costs its receiver before the book sees it, is timed beside
//! them.
//!
//! `cargo bench -p bitmesh-core --bench book_arrival` (`BOOK_ARRIVAL_ORDERS`, 200,000 by
//! default: a full book).

use std::time::Instant;

use bitcoin::hashes::Hash;
use bitmesh_core::chain::assets::AssetId;
use bitmesh_core::market::book::{Book, BookLimits};
use bitmesh_core::market::order::{Order, Side, SignedOrder, VerifiedOrder};
use bitmesh_core::testkit::TestKey;

/// How the orders of a run are priced and timed.
#[derive(Debug, Clone, Copy)]
enum Arrival {
    OldestFirst,
    NewestFirst,
    DistinctPrices,
}

fn orders(count: u64, arrival: Arrival) -> Vec<VerifiedOrder> {
    let maker = TestKey::new(5).xonly();
    let signature = bitcoin::secp256k1::schnorr::Signature::from_slice(&[1; 64]).expect("64 bytes");
    let script = TestKey::new(1).p2wpkh();
    let funding = vec![bitcoin::OutPoint::new(bitcoin::Txid::all_zeros(), 0)];
    (0..count)
        .map(|n| {
            let (price, created_millis) = match arrival {
                Arrival::OldestFirst => (1_000_000, 1_000_000 + n),
                Arrival::NewestFirst => (1_000_000, 1_000_000 + count - n),
                Arrival::DistinctPrices => (1_000 * (1 + n), 1_000_000 + n),
            };
            VerifiedOrder::assume_verified(SignedOrder {
                order: Order {
                    market: AssetId::from_byte_array([0; 32]),
                    side: Side::Ask,
                    price,
                    amount: 1_000_000,
                    created_millis,
                    expiry_millis: created_millis + 86_400_000,
                    nonce: n,
                    maker,
                    funding: funding.clone(),
                    receive: script.clone(),
                    change: script.clone(),
                },
                signature,
                proofs: Vec::new(),
            })
        })
        .collect()
}

/// Nanoseconds per order to insert `orders` into an empty book (the best of three).
fn nanos_per_order(count: u64, arrival: Arrival) -> f64 {
    (0..3)
        .map(|_| {
            let orders = orders(count, arrival);
            let mut book = Book::new(BookLimits::default(), 1);
            let start = Instant::now();
            for order in orders {
                book.insert_order(order).expect("within the book's limits");
            }
            start.elapsed().as_nanos() as f64 / count as f64
        })
        .fold(f64::MAX, f64::min)
}

/// Nanoseconds to check one signed order (rules, the maker's BIP340 signature and its one
/// funding coin's proof), over 2,000 orders.
fn nanos_per_check() -> f64 {
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let maker = TestKey::new(5);
    let signed: Vec<SignedOrder> = orders(2_000, Arrival::OldestFirst)
        .iter()
        .map(|order| maker.sign_order(order.order().clone(), &maker))
        .collect();
    let start = Instant::now();
    for order in signed {
        order.verify(&secp).expect("signed by its maker");
    }
    start.elapsed().as_nanos() as f64 / 2_000.0
}

fn main() {
    let count = match std::env::var("BOOK_ARRIVAL_ORDERS") {
        Ok(count) => count.parse().expect("a number of orders"),
        Err(_) => BookLimits::default().max_orders as u64,
    };
    let oldest_first = nanos_per_order(count, Arrival::OldestFirst);
    let newest_first = nanos_per_order(count, Arrival::NewestFirst);
    let distinct = nanos_per_order(count, Arrival::DistinctPrices);
    let check = nanos_per_check();
    let (newest_ratio, distinct_ratio) = (newest_first / oldest_first, distinct / oldest_first);
    println!(
        "order book, {count} orders inserted: oldest first at one price {oldest_first:.0} \
         ns/order; newest first {newest_first:.0} ns/order ({newest_ratio:.2} x); a price \
         each {distinct:.0} ns/order ({distinct_ratio:.2} x); checking an order's signature \
         {check:.0} ns"
    );
}
