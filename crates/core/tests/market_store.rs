//! The market's orders as a store keeps them: an order and its winning update come back into a
//! fresh node's book exactly as they were; damaged and expired entries are refused; an order
//! that expires leaves the node with its update.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use bitcoin::hashes::Hash;
use bitcoin::{OutPoint, Txid};
use bitmesh_core::chain::assets::AssetId;
use bitmesh_core::chain::state::Chain;
use bitmesh_core::market::book::BookLimits;
use bitmesh_core::market::order::{
    Change, Order, OrderId, OrderUpdate, Side, SignedOrder, SignedUpdate,
};
use bitmesh_core::node::protocols::MarketRelay;
use bitmesh_core::node::{Input, Node, NodeConfig, Protocol};
use bitmesh_core::testkit::{TestCoins, TestKey};
use bitmesh_core::wire::{InvItem, InvKind};
use bitmesh_core::Network;

const NOW_MS: u64 = 2_000_000_000_000;

/// The coins of the makers' orders (the relay takes an order once it finds its coins): three
/// of `TestKey::new(3)`'s.
fn coins() -> TestCoins {
    let maker = TestKey::new(3);
    TestCoins::new(&[&maker, &maker, &maker])
}

fn node() -> Node {
    let key = TestKey::new(9).keypair();
    let mut node = Node::new(
        NodeConfig::new(Network::Test),
        key,
        coins().chain(),
        [1; 32],
        NOW_MS,
    );
    node.register(Box::new(MarketRelay::new(BookLimits::default(), 1)));
    node
}

/// An ask of `maker`'s, valid until `expiry_millis`, funded by coin `nonce` of [`coins`].
fn ask(maker: &TestKey, nonce: u64, expiry_millis: u64) -> SignedOrder {
    let order = Order {
        market: AssetId::from_issuing_outpoint(&OutPoint::null()),
        side: Side::Ask,
        price: 50_000,
        amount: 600_000_000,
        created_millis: NOW_MS,
        expiry_millis,
        nonce,
        maker: maker.xonly(),
        funding: vec![coins().coins[nonce as usize]],
        receive: maker.p2wpkh(),
        change: maker.p2wpkh(),
    };
    maker.sign_order(order, maker)
}

/// `maker`'s first update of order `id`: a third of its 6 BTC filled.
fn fill(maker: &TestKey, id: OrderId) -> SignedUpdate {
    maker.sign_update(
        OrderUpdate {
            order: id,
            maker: maker.xonly(),
            sequence: 1,
            change: Change::Fill {
                filled: 200_000_000,
                funding: vec![OutPoint::new(Txid::all_zeros(), 2)],
            },
        },
        maker,
    )
}

#[test]
fn kept_orders_come_back_with_their_updates() {
    let maker = TestKey::new(3);
    let signed = ask(&maker, 0, NOW_MS + 3_600_000);
    let id = signed.order.id();
    let update = fill(&maker, id);
    let mut first = node();
    first.with_protocol::<MarketRelay, _>(NOW_MS, |relay, ctx| {
        relay.submit_order(ctx, signed).unwrap();
        relay.submit_update(ctx, update).unwrap();
    });
    let relay = first.protocol::<MarketRelay>().unwrap();
    let entry = relay.kept(&id).unwrap();

    let mut second = node();
    let (restored, _) = second
        .with_protocol::<MarketRelay, _>(NOW_MS + 60_000, |relay, ctx| relay.restore(ctx, &entry));
    assert_eq!(restored.unwrap().unwrap(), id);
    let book = second.protocol::<MarketRelay>().unwrap().book();
    assert_eq!(book.get(&id).unwrap().remaining(), 400_000_000);
    assert_eq!(book.snapshot(), relay.book().snapshot());

    // Damaged: cut short, or flipped; expired: refused.
    let mut third = node();
    for bad in [&entry[..1], &entry[..40]] {
        let (result, _) =
            third.with_protocol::<MarketRelay, _>(NOW_MS, |relay, ctx| relay.restore(ctx, bad));
        assert!(result.unwrap().is_err());
    }
    let mut flipped = entry.clone();
    flipped[10] ^= 1;
    let (result, _) =
        third.with_protocol::<MarketRelay, _>(NOW_MS, |relay, ctx| relay.restore(ctx, &flipped));
    assert!(result.unwrap().is_err());
    let (result, _) = third.with_protocol::<MarketRelay, _>(NOW_MS + 7_200_000, |relay, ctx| {
        relay.restore(ctx, &entry)
    });
    let err = result.unwrap().unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
    assert!(third.protocol::<MarketRelay>().unwrap().book().is_empty());
}

#[test]
fn an_expired_order_leaves_the_node_with_its_update() {
    let maker = TestKey::new(3);
    let (soon, later) = (
        ask(&maker, 1, NOW_MS + 60_000),
        ask(&maker, 2, NOW_MS + 3_600_000),
    );
    let (soon_id, later_id) = (soon.order.id(), later.order.id());
    let (soon_fill, later_fill) = (fill(&maker, soon_id), fill(&maker, later_id));
    let (soon_fill_item, later_fill_item) = (
        InvItem::new(InvKind::OrderUpdate, soon_fill.update.digest()),
        InvItem::new(InvKind::OrderUpdate, later_fill.update.digest()),
    );
    let mut node = node();
    node.with_protocol::<MarketRelay, _>(NOW_MS, |relay, ctx| {
        for (order, update) in [(soon, soon_fill), (later, later_fill)] {
            relay.submit_order(ctx, order).unwrap();
            relay.submit_update(ctx, update).unwrap();
        }
    });
    let chain = Chain::new(Network::Test);
    let holdings = |node: &Node| {
        let mut items = node.protocol::<MarketRelay>().unwrap().holdings(&chain);
        items.sort_unstable();
        items
    };
    let mut both = vec![
        InvItem::new(InvKind::Order, soon_id.0),
        InvItem::new(InvKind::Order, later_id.0),
        soon_fill_item,
        later_fill_item,
    ];
    both.sort_unstable();
    assert_eq!(holdings(&node), both);

    node.handle(NOW_MS + 60_000, Input::Tick);
    let mut left = vec![InvItem::new(InvKind::Order, later_id.0), later_fill_item];
    left.sort_unstable();
    assert_eq!(holdings(&node), left);
    let relay = node.protocol::<MarketRelay>().unwrap();
    assert!(relay.book().get(&soon_id).is_none());
    assert!(relay.object(&chain, &soon_fill_item).is_none());
    assert!(relay.object(&chain, &later_fill_item).is_some());
}
