//! Orders and updates: encoding, signatures, the rules every receiver checks, and matching in
//! price-time priority. Natively and in headless Chromium.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::Secp256k1;
use bitcoin::{Amount, OutPoint, TxOut, Txid};
use bitmesh_core::chain::assets::{AssetAmounts, AssetId};
use bitmesh_core::chain::utxo::Coin;
use bitmesh_core::market::book::{Applied, Book, BookError, BookLimits, Inserted};
use bitmesh_core::market::order::{
    Arrival, Change, FundingProof, FundingProofError, Order, OrderError, OrderUpdate, Side,
    SignedOrder, SignedUpdate, UpdateError, MAX_CLOCK_SKEW_MILLIS, MAX_GOSSIP_AGE_MILLIS,
    PRICE_SCALE,
};
use bitmesh_core::testkit::TestKey;

const NOW: u64 = 1_800_000_000_000;

fn market() -> AssetId {
    AssetId::from_byte_array([7; 32])
}

fn order(maker: &TestKey, side: Side, price: u64, amount: u64, created: u64) -> Order {
    Order {
        market: market(),
        side,
        price,
        amount,
        created_millis: created,
        expiry_millis: created + 3_600_000,
        nonce: 0,
        maker: maker.xonly(),
        funding: vec![OutPoint::new(Txid::from_byte_array([1; 32]), 0)],
        receive: maker.p2tr(),
        change: maker.p2wpkh(),
    }
}

/// `order` signed by `maker`, which owns its funding coins.
fn signed(maker: &TestKey, order: Order) -> SignedOrder {
    maker.sign_order(order, maker)
}

/// An update signed by `maker`, which owns its funding coins.
fn update(maker: &TestKey, order: &Order, sequence: u32, change: Change) -> SignedUpdate {
    maker.sign_update(
        OrderUpdate {
            order: order.id(),
            maker: maker.xonly(),
            sequence,
            change,
        },
        maker,
    )
}

fn fill(filled: u64) -> Change {
    Change::Fill {
        filled,
        funding: vec![OutPoint::new(Txid::from_byte_array([2; 32]), 1)],
    }
}

#[test]
fn orders_and_updates_round_trip_and_verify() {
    let secp = Secp256k1::new();
    let maker = TestKey::new(1);
    let order = signed(&maker, order(&maker, Side::Ask, 50_000, 10_000_000, NOW));
    let bytes = order.encode();
    assert_eq!(SignedOrder::decode(&bytes).unwrap(), order);
    let verified = order.clone().verify(&secp).unwrap();
    assert_eq!(verified.id(), order.order.id());
    let update = update(&maker, &order.order, 1, fill(10));
    assert_eq!(SignedUpdate::decode(&update.encode()).unwrap(), update);
    update.verify(&secp).unwrap();
}

#[test]
fn forged_orders_and_updates_are_refused() {
    let secp = Secp256k1::new();
    let maker = TestKey::new(1);
    let thief = TestKey::new(2);
    // Someone changes the price after the maker signed.
    let mut forged = signed(&maker, order(&maker, Side::Ask, 50_000, 10_000_000, NOW));
    forged.order.price = 40_000;
    assert_eq!(forged.verify(&secp), Err(OrderError::BadSignature));
    // Someone signs an order in the maker's name.
    let mut impostor = signed(&thief, order(&maker, Side::Ask, 50_000, 10_000_000, NOW));
    impostor.order.maker = maker.xonly();
    assert_eq!(impostor.verify(&secp), Err(OrderError::BadSignature));
    // An update signed by a key other than the one it names.
    let victim = order(&maker, Side::Ask, 50_000, 10_000_000, NOW);
    let mut cancel = update(&thief, &victim, 9, Change::Cancel);
    cancel.update.maker = maker.xonly();
    assert_eq!(cancel.verify(&secp), Err(UpdateError::BadSignature));
    assert_eq!(
        update(&maker, &victim, 0, Change::Cancel).verify(&secp),
        Err(UpdateError::ZeroSequence)
    );
}

/// Naming a coin as funding takes its owner's signature: nobody can offer someone else's coins
/// (which would make takers propose swaps that cannot settle, and let anyone shadow an honest
/// order's coins). The signature is checked with the message; whether its key is the one the
/// coin's script pays, by whoever looks the coin up.
#[test]
fn funding_coins_need_their_owners_proof() {
    let secp = Secp256k1::new();
    let (maker, squatter) = (TestKey::new(1), TestKey::new(2));
    let coin = OutPoint::new(Txid::from_byte_array([1; 32]), 0);
    let honest = signed(&maker, order(&maker, Side::Ask, 50_000, 10_000_000, NOW));

    // Proofs missing, or taken from another order.
    let mut bare = honest.clone();
    bare.proofs.clear();
    assert_eq!(
        bare.verify(&secp),
        Err(OrderError::FundingProof(FundingProofError::Count {
            coins: 1,
            proofs: 0
        }))
    );
    let other = signed(
        &maker,
        Order {
            nonce: 1,
            ..honest.order.clone()
        },
    );
    let mut replayed = honest.clone();
    replayed.proofs = other.proofs.clone();
    assert_eq!(
        replayed.verify(&secp),
        Err(OrderError::FundingProof(FundingProofError::BadSignature(
            coin
        )))
    );
    // A copy of the order whose proof someone swapped for one by its own key over the same
    // id (which no taker would take, and a relay that checks the coin would refuse by id,
    // shadowing the maker's own): the maker's signature covers the proofs' keys.
    let mut swapped = honest.clone();
    swapped.proofs = squatter.prove(&honest.order.id().0, &[coin]);
    assert_eq!(swapped.verify(&secp), Err(OrderError::BadSignature));
    // A proof's signature that is not its key's.
    let mut garbled = honest.clone();
    garbled.proofs[0].signature = other.proofs[0].signature;
    assert_eq!(
        garbled.verify(&secp),
        Err(OrderError::FundingProof(FundingProofError::BadSignature(
            coin
        )))
    );

    // A squatter that proves the maker's coin with its own key gets a valid message, which no
    // taker takes: the coin's script does not pay that key.
    let squatting = signed(
        &squatter,
        Order {
            maker: squatter.xonly(),
            ..honest.order.clone()
        },
    )
    .verify(&secp)
    .unwrap();
    let mut book = Book::new(BookLimits::default(), 1);
    let honest = honest.verify(&secp).unwrap();
    book.insert_order(honest.clone()).unwrap();
    book.insert_order(squatting.clone()).unwrap();
    // The coins as a chain holds them: `owner`'s P2WPKH output at any outpoint.
    let paying = |owner: &TestKey| {
        let script_pubkey = owner.p2wpkh();
        move |_: &OutPoint| {
            Some(Coin {
                output: TxOut {
                    value: Amount::from_sat(10_000),
                    script_pubkey: script_pubkey.clone(),
                },
                height: 1,
                is_coinbase: false,
                assets: AssetAmounts::none(),
            })
        }
    };
    assert!(book.get(&honest.id()).unwrap().is_funded(paying(&maker)));
    assert!(!book.get(&squatting.id()).unwrap().is_funded(paying(&maker)));

    // A fill's new funding takes the same proof, over the update's digest; a maker that moves
    // its rest onto someone else's coin proves nothing.
    let refill = update(&maker, honest.order(), 1, fill(10));
    book.apply_update(refill.verify(&secp).unwrap()).unwrap();
    assert!(book.get(&honest.id()).unwrap().is_funded(paying(&maker)));
    assert!(!book.get(&honest.id()).unwrap().is_funded(paying(&squatter)));
    let mut unproven = update(&maker, honest.order(), 2, fill(10));
    unproven.proofs.clear();
    assert_eq!(
        unproven.verify(&secp),
        Err(UpdateError::FundingProof(FundingProofError::Count {
            coins: 1,
            proofs: 0
        }))
    );
    let mut swapped = update(&maker, honest.order(), 2, fill(10));
    swapped.proofs = squatter.prove(&swapped.update.digest(), swapped.update.change.funding());
    assert_eq!(swapped.verify(&secp), Err(UpdateError::BadSignature));
}

/// What a proof's key owns: the P2WPKH script of the key, or the P2TR script whose output key
/// it is (the owner signs with the tweaked key pair, as it spends).
#[test]
fn a_proof_owns_the_scripts_of_its_key() {
    let secp = Secp256k1::new();
    let owner = TestKey::new(1);
    let coin = OutPoint::new(Txid::from_byte_array([1; 32]), 0);
    let segwit = FundingProof::sign(&secp, &[7; 32], &coin, &owner.keypair(), &[0; 32]);
    assert!(segwit.owns(&owner.p2wpkh()));
    assert!(!segwit.owns(&owner.p2tr()));
    assert!(!segwit.owns(&TestKey::new(2).p2wpkh()));
    let taproot = FundingProof::sign(&secp, &[7; 32], &coin, &owner.tweaked_keypair(), &[0; 32]);
    assert!(taproot.owns(&owner.p2tr()));
    assert!(!taproot.owns(&owner.p2wpkh()));
    assert!(!taproot.owns(&TestKey::new(2).p2tr()));
    assert!(!segwit.owns(&bitcoin::ScriptBuf::new_op_return([1u8; 4])));
}

#[test]
fn the_book_accepts_updates_from_the_maker_only() {
    let secp = Secp256k1::new();
    let maker = TestKey::new(1);
    let thief = TestKey::new(2);
    let order = order(&maker, Side::Ask, 50_000, 10_000_000, NOW);
    let mut book = Book::new(BookLimits::default(), 1);
    let verified = signed(&maker, order.clone()).verify(&secp).unwrap();
    assert_eq!(book.insert_order(verified.clone()), Ok(Inserted::New));
    assert_eq!(book.insert_order(verified), Ok(Inserted::Known));
    // A thief's properly signed cancel of someone else's order.
    let cancel = update(&thief, &order, 5, Change::Cancel)
        .verify(&secp)
        .unwrap();
    assert_eq!(
        book.apply_update(cancel),
        Err(BookError::WrongMaker(order.id()))
    );
    let overfill = update(&maker, &order, 1, fill(10_000_001))
        .verify(&secp)
        .unwrap();
    assert!(matches!(
        book.apply_update(overfill),
        Err(BookError::Overfilled { .. })
    ));
    let unfunded = update(
        &maker,
        &order,
        1,
        Change::Fill {
            filled: 10,
            funding: vec![],
        },
    );
    assert_eq!(
        book.apply_update(unfunded.verify(&secp).unwrap()),
        Err(BookError::NoFunding(order.id()))
    );
    let two = update(&maker, &order, 2, fill(400_000))
        .verify(&secp)
        .unwrap();
    let one = update(&maker, &order, 1, fill(100_000))
        .verify(&secp)
        .unwrap();
    assert_eq!(book.apply_update(two), Ok(Applied::Changed));
    assert_eq!(book.apply_update(one), Ok(Applied::Superseded));
    assert_eq!(book.get(&order.id()).unwrap().remaining(), 9_600_000);
    let cancel = update(&maker, &order, 3, Change::Cancel)
        .verify(&secp)
        .unwrap();
    assert_eq!(book.apply_update(cancel), Ok(Applied::Changed));
    assert!(book.open(&market(), Side::Ask).is_empty());
}

/// A flood of updates of orders that never come fills the pool of waiting updates; the update
/// that merely overtook its order still gets in (a random waiting order's updates make room),
/// and the order takes it when it comes.
#[test]
fn a_flood_of_orphan_updates_does_not_shut_out_an_update_that_overtook_its_order() {
    const POOL: usize = 8;
    let secp = Secp256k1::new();
    let (maker, flooder) = (TestKey::new(1), TestKey::new(2));
    let limits = BookLimits {
        max_orders: 100,
        max_orphans: POOL,
    };
    let mut book = Book::new(limits, 1);
    for nonce in 0..3 * POOL as u64 {
        let never = Order {
            nonce,
            ..order(&flooder, Side::Bid, 40_000, 1_000_000, NOW)
        };
        let update = update(&flooder, &never, 1, Change::Cancel);
        assert_eq!(
            book.apply_update(update.verify(&secp).unwrap()),
            Ok(Applied::Orphaned)
        );
        assert!(book.snapshot().orphans.len() <= POOL);
    }
    assert_eq!(book.snapshot().orphans.len(), POOL);

    let order = order(&maker, Side::Ask, 50_000, 10_000_000, NOW);
    let early = update(&maker, &order, 1, fill(4_000_000))
        .verify(&secp)
        .unwrap();
    assert_eq!(book.apply_update(early.clone()), Ok(Applied::Orphaned));
    // A second copy is not held twice.
    assert_eq!(book.apply_update(early), Ok(Applied::Orphaned));
    assert_eq!(book.snapshot().orphans.len(), POOL);
    let verified = signed(&maker, order.clone()).verify(&secp).unwrap();
    assert_eq!(book.insert_order(verified), Ok(Inserted::New));
    assert_eq!(book.get(&order.id()).unwrap().remaining(), 6_000_000);
    assert_eq!(book.snapshot().orphans.len(), POOL - 1);

    // A book that keeps no waiting update says so.
    let limits = BookLimits {
        max_orders: 100,
        max_orphans: 0,
    };
    let mut strict = Book::new(limits, 1);
    let late = update(&maker, &order, 2, Change::Cancel)
        .verify(&secp)
        .unwrap();
    assert_eq!(strict.apply_update(late), Err(BookError::TooManyOrphans));
    assert!(strict.snapshot().orphans.is_empty());
}

#[test]
fn order_rules_give_exact_reasons() {
    let maker = TestKey::new(1);
    let base = order(&maker, Side::Bid, 50_000, 10_000_000, NOW);
    let check = |change: &dyn Fn(&mut Order)| {
        let mut order = base.clone();
        change(&mut order);
        order.check()
    };
    assert_eq!(check(&|_| {}), Ok(()));
    assert_eq!(check(&|o| o.amount = 0), Err(OrderError::ZeroAmount));
    assert_eq!(check(&|o| o.price = 0), Err(OrderError::ZeroPrice));
    // 10,000,001 units at 50,000 sat per 10^8 units is 5,000.0005 sat.
    assert_eq!(
        check(&|o| o.amount = 10_000_001),
        Err(OrderError::OverPrecise {
            amount: 10_000_001,
            price: 50_000
        })
    );
    assert_eq!(
        check(&|o| o.amount = 200_000),
        Err(OrderError::TooSmall { sats: 100 })
    );
    assert_eq!(
        check(&|o| {
            o.amount = u64::MAX;
            o.price = PRICE_SCALE;
        }),
        Err(OrderError::TooLarge)
    );
    assert_eq!(
        check(&|o| o.receive = bitcoin::ScriptBuf::new_op_return([1u8; 4])),
        Err(OrderError::NonStandardScript("receive"))
    );
    assert_eq!(
        check(&|o| o.funding.clear()),
        Err(OrderError::Malformed("no funding coin"))
    );
    assert_eq!(
        check(&|o| o.expiry_millis = o.created_millis),
        Err(OrderError::ExpiresBeforeCreated)
    );
    assert_eq!(
        check(&|o| o.expiry_millis = o.created_millis + 31 * 24 * 3_600_000),
        Err(OrderError::LifetimeTooLong)
    );
}

#[test]
fn time_rules_bound_what_a_maker_can_claim() {
    let secp = Secp256k1::new();
    let maker = TestKey::new(1);
    let verified = |created| {
        signed(
            &maker,
            order(&maker, Side::Bid, 50_000, 10_000_000, created),
        )
        .verify(&secp)
        .unwrap()
    };
    let fresh = verified(NOW);
    assert_eq!(fresh.check_time(NOW, Arrival::Gossip), Ok(()));
    assert!(matches!(
        fresh.check_time(NOW + 3_600_000, Arrival::BookSync),
        Err(OrderError::Expired { .. })
    ));
    let future = verified(NOW + MAX_CLOCK_SKEW_MILLIS + 1);
    assert!(matches!(
        future.check_time(NOW, Arrival::Gossip),
        Err(OrderError::FromTheFuture { .. })
    ));
    // Backdating to jump the queue: refused as news, accepted when syncing an old book.
    let backdated = verified(NOW - MAX_GOSSIP_AGE_MILLIS - 1);
    assert!(matches!(
        backdated.check_time(NOW, Arrival::Gossip),
        Err(OrderError::Stale { .. })
    ));
    assert_eq!(backdated.check_time(NOW, Arrival::BookSync), Ok(()));
}

#[test]
fn truncated_or_padded_messages_are_malformed_never_a_panic() {
    let maker = TestKey::new(1);
    let order = signed(&maker, order(&maker, Side::Ask, 50_000, 10_000_000, NOW));
    let bytes = order.encode();
    for len in 0..bytes.len() {
        assert!(SignedOrder::decode(&bytes[..len]).is_err(), "prefix {len}");
    }
    let mut padded = bytes.clone();
    padded.push(0);
    assert_eq!(
        SignedOrder::decode(&padded),
        Err(OrderError::Malformed("trailing bytes"))
    );
    let mut future = bytes;
    future[0] = 3;
    assert_eq!(
        SignedOrder::decode(&future),
        Err(OrderError::UnknownVersion(3))
    );
    let update = update(&maker, &order.order, 1, fill(5)).encode();
    for len in 0..update.len() {
        assert!(
            SignedUpdate::decode(&update[..len]).is_err(),
            "prefix {len}"
        );
    }
}

#[test]
fn matching_walks_best_price_then_time_skipping_what_it_must() {
    let secp = Secp256k1::new();
    let makers: Vec<TestKey> = (1..=4).map(TestKey::new).collect();
    let taker = TestKey::new(9);
    let mut book = Book::new(BookLimits::default(), 1);
    let mut add = |maker: &TestKey, price, amount, created| {
        let order = order(maker, Side::Ask, price, amount, created);
        book.insert_order(signed(maker, order.clone()).verify(&secp).unwrap())
            .unwrap();
        order.id()
    };
    let late_cheap = add(&makers[0], 40_000, 10_000_000, NOW + 5);
    let early_cheap = add(&makers[1], 40_000, 10_000_000, NOW + 1);
    let dear = add(&makers[2], 60_000, 10_000_000, NOW);
    let offline = add(&makers[3], 30_000, 10_000_000, NOW);
    let too_dear = add(&makers[3], 90_000, 10_000_000, NOW);
    // The taker's own order as a peer sends it back: its key parsed from the wire, where the
    // crossing order's comes from the taker's key pair.
    let own_order = order(&taker, Side::Ask, 35_000, 10_000_000, NOW);
    let own = own_order.id();
    let echoed = SignedOrder::decode(&signed(&taker, own_order).encode()).unwrap();
    book.insert_order(echoed.verify(&secp).unwrap()).unwrap();
    book.mark_unreachable(makers[3].xonly(), NOW + 600_000);

    let buy = order(&taker, Side::Bid, 60_000, 25_000_000, NOW + 10);
    let matched = book.match_order(&buy, NOW + 10);
    let walked: Vec<_> = matched
        .fills
        .iter()
        .map(|f| (f.order, f.quantity))
        .collect();
    assert_eq!(
        walked,
        [
            (early_cheap, 10_000_000),
            (late_cheap, 10_000_000),
            (dear, 5_000_000)
        ]
    );
    assert_eq!(matched.rest, 0);
    assert_eq!(matched.fills[2].sats, 3_000, "at the maker's price");
    assert!(!walked
        .iter()
        .any(|(id, _)| [offline, too_dear, own].contains(id)));

    // Once the offline maker is back, it comes first; a buy limited to 35,000 stops there.
    let limited = order(&taker, Side::Bid, 35_000, 15_000_000, NOW + 10);
    let back = |book: &Book, now_millis| {
        let matched = book.match_order(&limited, now_millis);
        matched.fills.len() == 1 && matched.fills[0].order == offline && matched.rest == 5_000_000
    };
    assert!(
        !back(&book, NOW + 599_999),
        "skipped while its mark is in force"
    );
    assert!(!book.is_reachable(&makers[3].xonly(), NOW + 599_999));
    // Its mark lapses by itself...
    assert!(
        back(&book, NOW + 600_000),
        "matched again once its mark lapsed"
    );
    assert!(book.is_reachable(&makers[3].xonly(), NOW + 600_000));
    assert_eq!(book.lapse_marks(NOW + 599_999), []);
    assert_eq!(book.lapse_marks(NOW + 600_000), [makers[3].xonly()]);
    assert_eq!(
        book.lapse_marks(NOW + 600_000),
        [],
        "lapsed marks are dropped"
    );
    // ...or is lifted when the maker is heard from.
    book.mark_unreachable(makers[3].xonly(), NOW + 600_000);
    assert!(book.mark_reachable(&makers[3].xonly()));
    assert!(!book.mark_reachable(&makers[3].xonly()), "no mark left");
    assert!(back(&book, NOW + 10));

    // An order past its expiry is skipped.
    let matched = book.match_order(&buy, NOW + 3_600_005);
    assert!(matched.fills.is_empty());
    assert_eq!(book.expire(NOW + 3_600_005).len(), 6);
    assert!(book.is_empty());
}

#[test]
fn partial_fills_round_in_the_makers_favour_and_tiny_partials_are_skipped() {
    let secp = Secp256k1::new();
    let seller = TestKey::new(1);
    let buyer = TestKey::new(2);
    let taker = TestKey::new(9);
    let mut book = Book::new(BookLimits::default(), 1);
    // 33,333 sat per 10^8 units.
    let ask = order(&seller, Side::Ask, 33_333, 300_000_000, NOW);
    let bid = order(&buyer, Side::Bid, 33_333, 300_000_000, NOW);
    for (key, order) in [(&seller, &ask), (&buyer, &bid)] {
        book.insert_order(signed(key, order.clone()).verify(&secp).unwrap())
            .unwrap();
    }
    // 10,000,001 units are worth 3,333.3003 sat: the selling maker gets 3,334, the buying
    // maker pays 3,333.
    let take = |side, amount| book.match_order(&order(&taker, side, 33_333, amount, NOW), NOW);
    assert_eq!(take(Side::Bid, 10_000_001).fills[0].sats, 3_334);
    assert_eq!(take(Side::Ask, 10_000_001).fills[0].sats, 3_333);
    // A partial fill worth under 1,000 sat is not proposed.
    let small = take(Side::Bid, 1_000_000);
    assert!(small.fills.is_empty());
    assert_eq!(small.rest, 1_000_000);
}

/// Orders closed in the middle of a queue stay linked until the ladder unlinks them; an order
/// whose fill is undone rests again in its place by time; an expired order's record is freed
/// and reused by a newer order, and the queue stays in price-time order throughout.
#[test]
fn the_queue_survives_cancels_reopened_fills_expiry_and_reuse() {
    let secp = Secp256k1::new();
    let maker = TestKey::new(1);
    let mut book = Book::new(BookLimits::default(), 1);
    let price = 50_000;
    // The seventh comes later; the third lapses early.
    let orders: Vec<_> = [0, 1, 2, 3, 4, 5, 10]
        .into_iter()
        .map(|n| {
            let mut made = order(&maker, Side::Ask, price, 10_000_000, NOW + n);
            if n == 2 {
                made.expiry_millis = NOW + 1_000;
            }
            (made.id(), made)
        })
        .collect();
    let insert = |book: &mut Book, n: usize| {
        let verified = signed(&maker, orders[n].1.clone()).verify(&secp).unwrap();
        book.insert_order(verified).unwrap()
    };
    for n in 0..6 {
        assert_eq!(insert(&mut book, n), Inserted::New);
    }
    let open = |book: &Book| -> Vec<usize> {
        book.open(&market(), Side::Ask)
            .iter()
            .map(|view| {
                orders
                    .iter()
                    .position(|(id, _)| *id == view.order.id())
                    .unwrap()
            })
            .collect()
    };
    let apply = |book: &mut Book, n: usize, sequence, change| {
        let update = update(&maker, &orders[n].1, sequence, change);
        book.apply_update(update.verify(&secp).unwrap()).unwrap()
    };
    assert_eq!(apply(&mut book, 1, 1, Change::Cancel), Applied::Changed);
    assert_eq!(apply(&mut book, 3, 1, fill(10_000_000)), Applied::Changed);
    assert_eq!(open(&book), [0, 2, 4, 5]);
    // Order 3's swap was dropped by a reorganisation: its maker reopens it.
    assert_eq!(apply(&mut book, 3, 2, fill(4_000_000)), Applied::Changed);
    assert_eq!(open(&book), [0, 2, 3, 4, 5]);
    let depth = book.ladder(&market()).unwrap().best(Side::Ask).unwrap();
    assert_eq!((depth.orders, depth.total), (5, 46_000_000));

    assert_eq!(book.expire(NOW + 1_000), [orders[2].0]);
    assert_eq!(open(&book), [0, 3, 4, 5]);
    // A newer order takes the freed record and queues last.
    assert_eq!(insert(&mut book, 6), Inserted::New);
    assert_eq!(open(&book), [0, 3, 4, 5, 6]);
    for n in [0, 4, 5] {
        apply(&mut book, n, 1, Change::Cancel);
    }
    assert_eq!(open(&book), [3, 6]);
    let matched = book.match_order(
        &order(&TestKey::new(9), Side::Bid, price, 20_000_000, NOW + 20),
        NOW + 20,
    );
    let filled: Vec<_> = matched.fills.iter().map(|fill| fill.order).collect();
    assert_eq!(filled, [orders[3].0, orders[6].0]);
    assert_eq!(matched.fills[0].maker, maker.xonly());
    assert_eq!(matched.rest, 4_000_000);
    // Into a kept buffer: the same fills, the buffer's old contents gone.
    let mut fills = matched.fills.clone();
    fills.extend(matched.fills.clone());
    let incoming = order(&TestKey::new(9), Side::Bid, price, 20_000_000, NOW + 20);
    let rest = book.match_into(&incoming, NOW + 20, &mut fills);
    assert_eq!((&fills, rest), (&matched.fills, matched.rest));
    // An order the taker cannot take (its coins not found) is passed over for the next.
    let mut shown = Vec::new();
    let takeable = book.match_takeable(&incoming, NOW + 20, |view| {
        shown.push(view.order.id());
        view.order.id() != orders[3].0
    });
    assert_eq!(shown, [orders[3].0, orders[6].0]);
    let filled: Vec<_> = takeable.fills.iter().map(|fill| fill.order).collect();
    assert_eq!(filled, [orders[6].0]);
    assert_eq!(takeable.rest, 20_000_000 - matched.fills[1].quantity);
}
