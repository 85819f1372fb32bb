//! Properties of the replicated book: any interleaving, duplication or reordering of the same
//! orders and updates gives every replica the identical book; matching trades at the maker's
//! price or better for the maker and accounts for every unit.
#![cfg(not(target_arch = "wasm32"))]

use std::sync::OnceLock;

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::Secp256k1;
use bitcoin::{OutPoint, Txid};
use bitmesh_core::chain::assets::AssetId;
use bitmesh_core::market::book::{Book, BookLimits};
use bitmesh_core::market::order::{
    Change, Order, OrderUpdate, Side, SignedOrder, VerifiedOrder, VerifiedUpdate, PRICE_SCALE,
};
use bitmesh_core::testkit::TestKey;
use proptest::prelude::*;

const NOW: u64 = 1_800_000_000_000;

#[derive(Debug, Clone)]
enum Message {
    Order(VerifiedOrder),
    Update(VerifiedUpdate),
}

fn apply(book: &mut Book, message: &Message) {
    // Refusals are part of the merge too: they must be the same everywhere.
    let _ = match message {
        Message::Order(order) => book.insert_order(order.clone()).map(|_| ()),
        Message::Update(update) => book.apply_update(update.clone()).map(|_| ()),
    };
}

fn order(maker: &TestKey, n: u64) -> Order {
    Order {
        market: AssetId::from_byte_array([(n % 2) as u8; 32]),
        side: if n % 3 == 0 { Side::Bid } else { Side::Ask },
        price: 10_000 * (1 + n % 4),
        amount: 100_000_000,
        // Equal times are common, so ids break ties.
        created_millis: NOW + n % 3,
        expiry_millis: NOW + 3_600_000,
        nonce: n,
        maker: maker.xonly(),
        funding: vec![OutPoint::new(Txid::from_byte_array([n as u8; 32]), 0)],
        receive: maker.p2tr(),
        change: maker.p2wpkh(),
    }
}

/// Orders of the crowd at one price, beyond the 12 with histories: more than a level lets a
/// late order walk past, so that some arrive too far out of time order to be queued.
const CROWD: u64 = 24;

/// Every message the replicas may receive: 12 orders of 3 makers, each with a history of
/// fills and a cancel, equivocating updates (two different updates with one sequence number),
/// and invalid ones (overfilled, signed by another maker); and a crowd of orders at one price
/// with times in no order, a third of them cancelled.
fn universe() -> &'static [Message] {
    static UNIVERSE: OnceLock<Vec<Message>> = OnceLock::new();
    UNIVERSE.get_or_init(|| {
        let secp = Secp256k1::new();
        let makers: Vec<TestKey> = (1..=3).map(TestKey::new).collect();
        let mut messages = Vec::new();
        for n in 0..12 + CROWD {
            let maker = &makers[(n % 3) as usize];
            let order = if n < 12 {
                order(maker, n)
            } else {
                Order {
                    market: AssetId::from_byte_array([0; 32]),
                    side: Side::Ask,
                    price: 10_000,
                    created_millis: NOW + (n * 5) % 11,
                    ..order(maker, n)
                }
            };
            let id = order.id();
            messages.push(Message::Order(
                maker.sign_order(order, maker).verify(&secp).unwrap(),
            ));
            let mut update = |key: &TestKey, sequence, change| {
                let update = OrderUpdate {
                    order: id,
                    maker: key.xonly(),
                    sequence,
                    change,
                };
                messages.push(Message::Update(
                    key.sign_update(update, key).verify(&secp).unwrap(),
                ));
            };
            let fill = |filled| Change::Fill {
                filled,
                funding: vec![OutPoint::new(
                    Txid::from_byte_array([99; 32]),
                    filled as u32,
                )],
            };
            if n >= 12 {
                if n % 3 == 0 {
                    update(maker, 1, Change::Cancel);
                }
                continue;
            }
            update(maker, 1, fill(10_000_000));
            update(maker, 2, fill(30_000_000 + n));
            update(maker, 2, fill(40_000_000));
            update(maker, 3, fill(20_000_000));
            if n % 4 == 0 {
                update(maker, 4, Change::Cancel);
            }
            update(maker, 5, fill(200_000_000));
            update(&makers[((n + 1) % 3) as usize], 6, Change::Cancel);
        }
        messages
    })
}

/// The book of `messages` in that order, its maps keyed by the order too: replicas hash alike
/// only by chance, as on the network.
fn book_of(messages: &[usize]) -> Book {
    let hash_key = messages.iter().fold(17u64, |key, &index| {
        key.wrapping_mul(31).wrapping_add(index as u64)
    });
    let mut book = Book::new(BookLimits::default(), hash_key);
    for &index in messages {
        apply(&mut book, &universe()[index]);
    }
    book
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn replicas_converge_whatever_the_order_and_duplicates(
        (chosen, shuffled, duplicated) in proptest::sample::subsequence(
            (0..universe().len()).collect::<Vec<_>>(),
            0..=universe().len(),
        )
        .prop_flat_map(|chosen| {
            let shuffled = Just(chosen.clone()).prop_shuffle();
            let duplicated = proptest::collection::vec(proptest::sample::select(
                if chosen.is_empty() { vec![usize::MAX] } else { chosen.clone() },
            ), 0..30);
            (Just(chosen), shuffled, duplicated)
        })
    ) {
        let a = book_of(&chosen);
        let b = book_of(&shuffled);
        // Replica c sees everything twice, some things more, interleaved.
        let mut twice: Vec<usize> = shuffled.iter().rev().copied().collect();
        twice.extend(duplicated.into_iter().filter(|&i| i != usize::MAX));
        twice.extend(chosen.iter().copied());
        let c = book_of(&twice);
        prop_assert_eq!(a.snapshot(), b.snapshot());
        prop_assert_eq!(a.snapshot(), c.snapshot());
    }

    #[test]
    fn fills_trade_at_the_makers_price_or_better_and_account_for_every_unit(
        resting in proptest::collection::vec((any::<bool>(), 1u64..200, 1u64..50), 1..40),
        side_is_bid in any::<bool>(),
        limit in 1u64..200,
        amount in 1u64..2_000,
    ) {
        let makers: Vec<TestKey> = (1..=3).map(TestKey::new).collect();
        let mut book = Book::new(BookLimits::default(), 1);
        for (n, (bid, price, lots)) in resting.iter().enumerate() {
            let maker = &makers[n % 3];
            let order = Order { market: AssetId::from_byte_array([0; 32]), ..order_at(maker, n, *bid, *price, *lots) };
            let signed = SignedOrder { order, signature: dummy_signature(), proofs: Vec::new() };
            book.insert_order(VerifiedOrder::assume_verified(signed)).unwrap();
        }
        let taker = TestKey::new(9);
        let incoming = Order {
            market: AssetId::from_byte_array([0; 32]),
            side: if side_is_bid { Side::Bid } else { Side::Ask },
            price: limit * 7_919,
            amount: amount * 100_000,
            ..order(&taker, 0)
        };
        let matched = book.match_order(&incoming, NOW);
        let traded: u64 = matched.fills.iter().map(|fill| fill.quantity).sum();
        prop_assert_eq!(traded + matched.rest, incoming.amount);
        let mut last_price = None;
        for fill in &matched.fills {
            let exact = u128::from(fill.quantity) * u128::from(fill.price);
            let paid = u128::from(fill.sats) * u128::from(PRICE_SCALE);
            match incoming.side {
                // The taker buys from a selling maker: the maker gets at least its price, and
                // the taker pays no more than its limit (within the one satoshi of rounding).
                Side::Bid => {
                    prop_assert!(paid >= exact);
                    prop_assert!(fill.price <= incoming.price);
                    prop_assert!(last_price.is_none_or(|last| last <= fill.price));
                }
                Side::Ask => {
                    prop_assert!(paid <= exact);
                    prop_assert!(fill.price >= incoming.price);
                    prop_assert!(last_price.is_none_or(|last| last >= fill.price));
                }
            }
            prop_assert!(paid.abs_diff(exact) < u128::from(PRICE_SCALE));
            let maker_order = book.get(&fill.order).unwrap();
            prop_assert!(fill.quantity <= maker_order.remaining());
            prop_assert!(maker_order.order.order().maker != taker.xonly());
            last_price = Some(fill.price);
        }
    }
}

fn order_at(maker: &TestKey, n: usize, bid: bool, price: u64, lots: u64) -> Order {
    Order {
        side: if bid { Side::Bid } else { Side::Ask },
        price: price * 7_919,
        amount: lots * 1_000_000,
        created_millis: NOW + n as u64,
        ..order(maker, n as u64)
    }
}

fn dummy_signature() -> bitcoin::secp256k1::schnorr::Signature {
    bitcoin::secp256k1::schnorr::Signature::from_slice(&[1; 64]).unwrap()
}
