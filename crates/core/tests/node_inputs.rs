//! A node fed scripts of neighbour input ([`NodeScript`]): the fuzz target `node_inputs`'s
//! seeds do what they say (so the fuzzer starts deep in the relay, not at the handshake), and
//! any mutation of them — bytes flipped, dropped, repeated, scripts spliced — never panics the
//! node, which sends only well-formed messages and never books two orders on one coin.
#![cfg(not(target_arch = "wasm32"))] // proptest is a native dev-dependency

use std::sync::OnceLock;

use bitmesh_core::market::order::OrderId;
use bitmesh_core::node::protocols::MarketRelay;
use bitmesh_core::node::{Event, Node, Output};
use bitmesh_core::testkit::{events, node_script_seeds, NodeScript, TestCoins};
use proptest::prelude::*;

fn coins() -> &'static TestCoins {
    static COINS: OnceLock<TestCoins> = OnceLock::new();
    COINS.get_or_init(NodeScript::coins)
}

fn seeds() -> &'static [(&'static str, Vec<u8>)] {
    static SEEDS: OnceLock<Vec<(&'static str, Vec<u8>)>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        node_script_seeds()
            .into_iter()
            .map(|(name, steps)| (name, NodeScript::encode(&steps)))
            .collect()
    })
}

fn seed(name: &str) -> &'static [u8] {
    &seeds()
        .iter()
        .find(|(seed, _)| *seed == name)
        .expect("a seed")
        .1
}

fn book_ids(node: &Node) -> Vec<OrderId> {
    let relay = node.protocol::<MarketRelay>().expect("a market relay");
    relay.book().orders().map(|view| view.order.id()).collect()
}

/// Plays `script` on a fresh node; checks what holds whatever the script: every message sent
/// decodes, and no coin funds two orders of the book.
fn play(script: &[u8]) -> (NodeScript, Vec<Output>) {
    let mut played = NodeScript::new(coins());
    let outputs = played.play(script);
    for peer in 0..2 {
        played.sent_to(&outputs, peer);
    }
    let relay = played
        .node
        .protocol::<MarketRelay>()
        .expect("a market relay");
    let mut coins: Vec<_> = relay
        .book()
        .orders()
        .flat_map(|view| view.order.order().funding.clone())
        .collect();
    let count = coins.len();
    coins.sort_unstable();
    coins.dedup();
    assert_eq!(coins.len(), count, "a coin funds two orders");
    (played, outputs)
}

fn accepted(outputs: &[Output]) -> Vec<OrderId> {
    events(outputs)
        .into_iter()
        .filter_map(|event| match event {
            Event::OrderAccepted(id) => Some(*id),
            _ => None,
        })
        .collect()
}

#[test]
fn an_order_delivered_then_cancelled_goes_in_and_leaves_when_it_expires() {
    let (played, outputs) = play(seed("order_cancel_expiry"));
    let id = NodeScript::order(coins(), 1).order.id();
    assert_eq!(accepted(&outputs), vec![id]);
    assert!(events(&outputs).contains(&&Event::OrderDropped(id)));
    assert!(book_ids(&played.node).is_empty());
}

#[test]
fn an_update_before_its_order_applies_when_the_order_comes() {
    let (played, _) = play(seed("update_before_order"));
    let id = NodeScript::order(coins(), 1).order.id();
    assert_eq!(book_ids(&played.node), vec![id]);
    let relay = played.node.protocol::<MarketRelay>().unwrap();
    assert!(relay.book().update_of(&id).is_some(), "the cancel applied");
}

#[test]
fn a_newer_order_on_the_coin_replaces_the_first() {
    let (played, outputs) = play(seed("newer_order_replaces"));
    let first = NodeScript::order(coins(), 1).order.id();
    let accepted = accepted(&outputs);
    assert_eq!(accepted.len(), 2);
    assert!(events(&outputs).contains(&&Event::OrderDropped(first)));
    assert_eq!(book_ids(&played.node), vec![accepted[1]]);
}

#[test]
fn an_order_on_a_coin_of_a_later_block_goes_in_with_the_block() {
    let (played, outputs) = play(seed("order_waits_for_its_block"));
    assert_eq!(played.node.chain().height(), 2, "the block connected");
    let accepted = accepted(&outputs);
    assert_eq!(accepted.len(), 1);
    assert_eq!(book_ids(&played.node), accepted);
}

#[test]
fn holdings_announced_after_a_reconnect_are_fetched() {
    let (played, _) = play(seed("holdings_after_reconnect"));
    assert_eq!(
        book_ids(&played.node),
        vec![NodeScript::order(coins(), 1).order.id()]
    );
}

#[test]
fn every_message_kind_is_handled() {
    let (_, outputs) = play(seed("every_message"));
    assert!(!outputs.is_empty());
}

/// A change to a script, as a fuzzer makes them.
#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bits: u8 },
    Drop { at: usize, len: usize },
    Repeat { at: usize, len: usize },
    Splice { other: usize, at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, bits)| Mutation::Flip { at, bits }),
        (any::<usize>(), 1..64usize).prop_map(|(at, len)| Mutation::Drop { at, len }),
        (any::<usize>(), 1..256usize).prop_map(|(at, len)| Mutation::Repeat { at, len }),
        (any::<usize>(), any::<usize>()).prop_map(|(other, at)| Mutation::Splice { other, at }),
    ]
}

fn mutate(script: &mut Vec<u8>, mutation: &Mutation) {
    if script.is_empty() {
        return;
    }
    let at = |at: usize| at % script.len();
    match *mutation {
        Mutation::Flip { at: i, bits } => {
            let i = at(i);
            script[i] ^= bits;
        }
        Mutation::Drop { at: i, len } => {
            let i = at(i);
            let end = (i + len).min(script.len());
            script.drain(i..end);
        }
        Mutation::Repeat { at: i, len } => {
            let i = at(i);
            let end = (i + len).min(script.len());
            let copy = script[i..end].to_vec();
            script.splice(end..end, copy);
        }
        Mutation::Splice { other, at: i } => {
            let i = at(i);
            let other = &seeds()[other % seeds().len()].1;
            script.truncate(i);
            script.extend_from_slice(&other[i.min(other.len())..]);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn mutated_scripts_never_panic_the_node(
        seed in 0..6usize,
        mutations in proptest::collection::vec(mutation(), 1..8),
    ) {
        prop_assume!(seed < seeds().len());
        let mut script = seeds()[seed].1.clone();
        for mutation in &mutations {
            mutate(&mut script, mutation);
        }
        play(&script);
    }
}
