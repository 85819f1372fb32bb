//! Many nodes in one process (tests/sim): propagation, partitions, attackers and sync, on a
//! simulated network. Native only (a hundred nodes are a lot for one test in a browser).
#![cfg(not(target_arch = "wasm32"))]

mod sim;

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::Secp256k1;
use bitcoin::{OutPoint, Txid};
use bitmesh_core::chain::assets::AssetId;
use bitmesh_core::market::order::{Order, OrderId, Side, SignedOrder};
use bitmesh_core::node::protocols::{ChainSync, MarketRelay};
use bitmesh_core::testkit::{block_on, TestKey};
use sim::{NetConfig, Sim};

/// 100 nodes, each dialing 4 others (8 links a node on average): a block mined on one and an
/// order placed on another reach every node.
#[test]
fn a_block_and_an_order_reach_all_of_a_hundred_nodes() {
    let mut sim = Sim::random_graph(100, 4, NetConfig::default(), 7);
    assert!(
        sim.run_until(10_000, |sim| sim.degrees().iter().all(|d| *d >= 4)),
        "every node has its neighbours: {:?}",
        sim.degrees()
    );

    // A block, mined on node 0.
    let miner = TestKey::new(1);
    let block = {
        let chain = sim.nodes[0].chain();
        block_on(chain, chain.tip(), vec![], 0, &miner.p2wpkh(), 1)
    };
    let hash = block.block_hash();
    let messages_before: u64 = sim.sent_messages.iter().sum();
    let start = sim.now;
    sim.with::<ChainSync, _>(0, |sync, ctx| sync.submit_block(ctx, block))
        .expect("a valid block");
    assert!(
        sim.run_until(30_000, |sim| sim
            .nodes
            .iter()
            .all(|node| node.chain().tip() == hash)),
        "the block reached {} nodes of 100",
        sim.nodes
            .iter()
            .filter(|node| node.chain().tip() == hash)
            .count()
    );
    let block_millis = sim.now - start;
    let block_messages = sim.sent_messages.iter().sum::<u64>() - messages_before;

    // An order, placed on node 50.
    let maker = TestKey::new(2);
    let order = SignedOrder::sign(
        &Secp256k1::new(),
        Order {
            market: AssetId::from_byte_array([7; 32]),
            side: Side::Ask,
            price: 50_000,
            amount: 100_000_000,
            created_millis: sim.now,
            expiry_millis: sim.now + 3_600_000,
            nonce: 1,
            maker: maker.xonly(),
            funding: vec![OutPoint::new(Txid::from_byte_array([1; 32]), 0)],
            receive: maker.p2tr(),
            change: maker.p2wpkh(),
        },
        &maker.keypair(),
        &[3; 32],
    );
    let id: OrderId = order.order.id();
    let messages_before: u64 = sim.sent_messages.iter().sum();
    let start = sim.now;
    sim.with::<MarketRelay, _>(50, |market, ctx| market.submit_order(ctx, order))
        .expect("a valid order");
    let has_order = |sim: &Sim, node: usize| {
        sim.nodes[node]
            .protocol::<MarketRelay>()
            .expect("registered")
            .book()
            .get(&id)
            .is_some()
    };
    assert!(
        sim.run_until(30_000, |sim| (0..100).all(|node| has_order(sim, node))),
        "the order reached {} nodes of 100",
        (0..100).filter(|node| has_order(&sim, *node)).count()
    );
    let order_millis = sim.now - start;
    let degrees = sim.degrees();
    let mean_degree = degrees.iter().sum::<usize>() as f64 / degrees.len() as f64;
    let order_messages = sim.sent_messages.iter().sum::<u64>() - messages_before;
    assert!(
        sim.events
            .iter()
            .all(|(_, _, event)| !matches!(event, bitmesh_core::node::Event::Banned { .. })),
        "honest nodes ban nobody"
    );
    println!(
        "propagation over 100 nodes (mean degree {mean_degree:.1}, latency 10–80 ms, 1 % loss): \
         block in {block_millis} ms with {:.1} messages per node; order in {order_millis} ms with \
         {:.1} messages per node",
        block_messages as f64 / 100.0,
        order_messages as f64 / 100.0
    );
}
