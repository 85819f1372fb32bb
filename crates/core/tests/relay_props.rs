//! Properties of the market relay's rules on coins: whatever order a node receives the same
//! orders, updates and funding payment in (orders waiting for their coins, newer orders on a
//! coin replacing older ones, an update coming before its order), it never holds two orders on
//! one coin, and it ends with the same book.
#![cfg(not(target_arch = "wasm32"))]

use std::sync::OnceLock;

use bitcoin::hashes::Hash;
use bitcoin::{Block, OutPoint, Transaction, Txid};
use bitmesh_core::chain::state::Chain;
use bitmesh_core::market::book::BookSnapshot;
use bitmesh_core::market::order::{Change, OrderId, OrderUpdate, SignedOrder, SignedUpdate};
use bitmesh_core::node::protocols::MarketRelay;
use bitmesh_core::node::{Input, Node};
use bitmesh_core::testkit::{
    block_on, full_node, matured_payment, pay, test_order, ScriptedPeer, TestKey, START_MILLIS,
};
use bitmesh_core::wire::{InvItem, InvKind, Message};
use bitmesh_core::Network;
use proptest::prelude::*;

const NOW: u64 = START_MILLIS;

/// What a neighbour delivers: an order, an update, or the payment that funds two orders' coins.
#[derive(Debug, Clone)]
enum Delivery {
    Order(SignedOrder),
    Update(SignedUpdate),
    Payment(Transaction),
}

impl Delivery {
    fn item_and_message(&self) -> (InvItem, Message) {
        match self {
            Delivery::Order(order) => (
                InvItem::new(InvKind::Order, order.order.id().0),
                Message::Order(order.clone()),
            ),
            Delivery::Update(update) => (
                InvItem::new(InvKind::OrderUpdate, update.update.digest()),
                Message::OrderUpdate(update.clone()),
            ),
            Delivery::Payment(tx) => (
                InvItem::new(InvKind::Tx, tx.compute_txid().to_byte_array()),
                Message::Tx(tx.clone()),
            ),
        }
    }
}

struct Universe {
    /// The chain's blocks after genesis: the funder's coinbases, matured, and one paying
    /// maker B's coin.
    blocks: Vec<Block>,
    deliveries: Vec<Delivery>,
    /// Each order's funding coin, to check that no coin funds two orders of the book.
    coins: Vec<(OrderId, OutPoint)>,
    /// The book every node ends with.
    expected: Vec<OrderId>,
}

/// Maker A's orders on two coins of a payment the node has not seen (two on the first, the
/// newer of which A cancels, one on the second), maker B's two on a coin of the chain, and an
/// order on a coin that never comes.
fn universe() -> &'static Universe {
    static UNIVERSE: OnceLock<Universe> = OnceLock::new();
    UNIVERSE.get_or_init(|| {
        let (funder, a, b) = (TestKey::new(59), TestKey::new(60), TestKey::new(61));
        let (mut blocks, payment) = matured_payment(
            &funder,
            vec![pay(&a.p2wpkh(), 1_000_000), pay(&a.p2wpkh(), 1_000_000)],
        );
        // And a block paying B.
        let chain = chain_of(&blocks);
        blocks.push(block_on(&chain, chain.tip(), vec![], 0, &b.p2wpkh(), 99));
        let paid = |vout| OutPoint::new(payment.compute_txid(), vout);
        let b_coin = OutPoint::new(blocks.last().unwrap().txdata[0].compute_txid(), 0);
        let never = OutPoint::new(Txid::from_byte_array([0xee; 32]), 0);
        let orders = [
            test_order(&a, NOW, 1, paid(0)),
            test_order(&a, NOW + 1_000, 2, paid(0)),
            test_order(&a, NOW + 500, 3, paid(1)),
            test_order(&b, NOW, 4, b_coin),
            test_order(&b, NOW + 2_000, 5, b_coin),
            test_order(&a, NOW, 6, never),
        ];
        let cancel = a.sign_update(
            OrderUpdate {
                order: orders[1].order.id(),
                maker: a.xonly(),
                sequence: 1,
                change: Change::Cancel,
            },
            &a,
        );
        let coins = orders
            .iter()
            .map(|order| (order.order.id(), order.order.funding[0]))
            .collect();
        let mut expected: Vec<OrderId> = [1, 2, 4].map(|n| orders[n].order.id()).into();
        expected.sort_unstable();
        let mut deliveries: Vec<Delivery> = orders.into_iter().map(Delivery::Order).collect();
        deliveries.push(Delivery::Update(cancel));
        deliveries.push(Delivery::Payment(payment));
        Universe {
            blocks,
            deliveries,
            coins,
            expected,
        }
    })
}

/// A test chain holding `blocks`.
fn chain_of(blocks: &[Block]) -> Chain {
    let mut chain = Chain::new(Network::Test);
    for block in blocks {
        chain
            .accept_block(block.clone(), (NOW / 1000) as u32)
            .unwrap();
    }
    chain
}

/// A node on the universe's chain, with one neighbour.
fn node(universe: &Universe) -> (Node, ScriptedPeer) {
    let mut node = full_node(0, chain_of(&universe.blocks), NOW);
    let peer = ScriptedPeer::new(1);
    peer.connect(&mut node, NOW);
    assert_eq!(node.peers().count(), 1, "the neighbour is ready");
    (node, peer)
}

fn relay(node: &Node) -> &MarketRelay {
    node.protocol::<MarketRelay>().unwrap()
}

fn snapshot(node: &Node) -> BookSnapshot {
    relay(node).book().snapshot()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_arrival_order_holds_one_order_per_coin_and_ends_with_the_same_book(
        order in Just((0..universe().deliveries.len()).collect::<Vec<_>>()).prop_shuffle(),
        pauses in proptest::collection::vec(0u64..3_000, universe().deliveries.len()),
    ) {
        let universe = universe();
        let (mut node, peer) = node(universe);
        let mut now = NOW;
        for (n, pause) in order.iter().zip(&pauses) {
            now += pause;
            node.handle(now, Input::Tick);
            let (item, message) = universe.deliveries[*n].item_and_message();
            peer.delivers(&mut node, item, &message, now);
            let book = relay(&node).book();
            for (i, (id, coin)) in universe.coins.iter().enumerate() {
                for (other, other_coin) in &universe.coins[i + 1..] {
                    prop_assert!(
                        coin != other_coin || book.get(id).is_none() || book.get(other).is_none(),
                        "two orders on {coin}"
                    );
                }
            }
        }
        let mut held: Vec<OrderId> = relay(&node).book().orders().map(|view| view.order.id()).collect();
        held.sort_unstable();
        prop_assert_eq!(&held, &universe.expected);
        let cancelled = universe.expected[..]
            .iter()
            .filter(|id| relay(&node).book().update_of(id).is_some())
            .count();
        prop_assert_eq!(cancelled, 1, "the newer order on the first coin is cancelled");
        // The same as a node that received them in the order they were made.
        prop_assert_eq!(snapshot(&node), snapshot(&node_in_order(universe)));
    }
}

/// A node that received every delivery in the universe's order.
fn node_in_order(universe: &Universe) -> Node {
    let (mut node, peer) = node(universe);
    for delivery in &universe.deliveries {
        let (item, message) = delivery.item_and_message();
        peer.delivers(&mut node, item, &message, NOW);
    }
    node
}
