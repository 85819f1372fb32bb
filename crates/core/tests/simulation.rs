//! Many nodes in one process (tests/sim): propagation, partitions, attackers and sync, on a
//! simulated network. Native only (a hundred nodes are a lot for one test in a browser).
#![cfg(not(target_arch = "wasm32"))]

mod sim;

use bitcoin::secp256k1::Secp256k1;
use bitcoin::OutPoint;
use bitmesh_core::chain::state::Chain;
use bitmesh_core::market::order::{Change, OrderId, OrderUpdate};
use bitmesh_core::node::protocols::{
    ChainSync, MarketRelay, BLOCK_TIMEOUT_MILLIS, MAKER_OFFLINE_MILLIS,
};
use bitmesh_core::node::{Event, Input, Output};
use bitmesh_core::testkit::{block_on, test_order, TestCoins, TestKey};
use bitmesh_core::Network;
use sim::{NetConfig, Sim};

/// 100 nodes, each dialing 4 others (8 links a node on average): a block mined on one and an
/// order placed on another reach every node.
#[test]
fn a_block_and_an_order_reach_all_of_a_hundred_nodes() {
    let maker = TestKey::new(2);
    let coins = TestCoins::new(&[&maker]);
    let mut sim = Sim::random_graph_on(|| coins.chain(), 100, 4, NetConfig::default(), 7);
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
    let order = test_order(&maker, sim.now, 1, coins.coins[0]);
    let id: OrderId = order.order.id();
    let messages_before: u64 = sim.sent_messages.iter().sum();
    let start = sim.now;
    sim.with::<MarketRelay, _>(50, |market, ctx| market.submit_order(ctx, order))
        .expect("a valid order");
    let has_order = |sim: &Sim, node: usize| sim.book(node).get(&id).is_some();
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

/// A maker that did not answer a trade is skipped until it is heard from: its fresh order,
/// gossiped, lifts the mark at once; its older order, learnt from a neighbour's holdings, does
/// not (old news is no sign of life); and a mark lapses by itself after
/// [`MAKER_OFFLINE_MILLIS`]. Each time, the node says so, for the views that showed it offline.
#[test]
fn a_maker_marked_unreachable_is_matched_again_when_heard_from_or_after_a_while() {
    let maker = TestKey::new(2);
    let coins = TestCoins::new(&[&maker, &maker]);
    let nodes = (0..3)
        .map(|n| sim::full_node(n, coins.chain(), sim::START_MILLIS))
        .collect();
    let mut sim = Sim::new(nodes, NetConfig::default(), 11);
    let back = |sim: &Sim| {
        sim.events
            .iter()
            .filter(|(node, _, event)| *node == 2 && *event == Event::MakerReachable(maker.xonly()))
            .count()
    };
    let reachable = |sim: &Sim| sim.book(2).is_reachable(&maker.xonly(), sim.now);
    sim.connect(0, 1);
    assert!(sim.run_until(10_000, |sim| sim.degrees()[..2] == [1, 1]));
    let old = test_order(&maker, sim.now, 1, coins.coins[0]);
    let old_id = old.order.id();
    sim.with::<MarketRelay, _>(1, |market, ctx| market.submit_order(ctx, old))
        .expect("a valid order");

    // Node 2 marks the maker, then joins and learns its order from node 1's holdings.
    sim.with::<MarketRelay, _>(2, |market, ctx| market.mark_unreachable(ctx, maker.xonly()));
    assert!(!reachable(&sim));
    sim.connect(2, 1);
    assert!(
        sim.run_until(30_000, |sim| sim.book(2).get(&old_id).is_some()),
        "node 2 syncs the book"
    );
    assert!(
        !reachable(&sim),
        "an order from a neighbour's holdings is old news"
    );
    assert_eq!(back(&sim), 0);

    // The maker places a new order: gossiped, it reaches node 2 as fresh.
    let fresh = test_order(&maker, sim.now, 2, coins.coins[1]);
    let fresh_id = fresh.order.id();
    sim.with::<MarketRelay, _>(0, |market, ctx| market.submit_order(ctx, fresh))
        .expect("a valid order");
    assert!(sim.run_until(30_000, |sim| sim.book(2).get(&fresh_id).is_some()));
    assert!(reachable(&sim), "a fresh order of the maker lifts its mark");
    assert_eq!(back(&sim), 1);

    // Marked again: the maker cancels its old order, and the cancel, gossiped, lifts it too.
    sim.with::<MarketRelay, _>(2, |market, ctx| market.mark_unreachable(ctx, maker.xonly()));
    let cancel = maker.sign_update(
        OrderUpdate {
            order: old_id,
            maker: maker.xonly(),
            sequence: 1,
            change: Change::Cancel,
        },
        &maker,
    );
    sim.with::<MarketRelay, _>(0, |market, ctx| market.submit_update(ctx, cancel))
        .expect("the maker's update");
    assert!(sim.run_until(30_000, |sim| sim
        .book(2)
        .get(&old_id)
        .is_some_and(|view| view.cancelled)));
    assert!(
        reachable(&sim),
        "a fresh update of the maker lifts its mark"
    );
    assert_eq!(back(&sim), 2);

    // Marked again, and not heard from: the mark lapses after its time, not before (node 2's
    // clock moved straight there; the relay looks at its marks once a second).
    let marked_at = sim.now;
    sim.with::<MarketRelay, _>(2, |market, ctx| market.mark_unreachable(ctx, maker.xonly()));
    let mut lapses_at = |now_millis| {
        sim.nodes[2]
            .handle(now_millis, Input::Tick)
            .contains(&Output::Event(Event::MakerReachable(maker.xonly())))
    };
    assert!(!lapses_at(marked_at + MAKER_OFFLINE_MILLIS - 1_000));
    assert!(lapses_at(marked_at + MAKER_OFFLINE_MILLIS));
    assert!(sim
        .book(2)
        .is_reachable(&maker.xonly(), marked_at + MAKER_OFFLINE_MILLIS));
}

/// A chain of `length` empty blocks on the test network.
fn test_chain(length: u32) -> Vec<bitcoin::Block> {
    test_chain_paying(length, &TestKey::new(1))
}

/// A chain of `length` blocks whose coinbases pay `miner`: other miners make other branches.
fn test_chain_paying(length: u32, miner: &TestKey) -> Vec<bitcoin::Block> {
    let mut chain = Chain::new(Network::Test);
    let payout = miner.p2wpkh();
    let mut blocks = Vec::new();
    for n in 0..length {
        let block = block_on(&chain, chain.tip(), vec![], 0, &payout, u64::from(n));
        chain
            .accept_block(block.clone(), u32::MAX / 2)
            .expect("a valid block");
        blocks.push(block);
    }
    blocks
}

fn chain_of(blocks: &[bitcoin::Block]) -> Chain {
    let mut chain = Chain::new(Network::Test);
    for block in blocks {
        chain
            .accept_block(block.clone(), u32::MAX / 2)
            .expect("a valid block");
    }
    chain
}

/// A fresh node joins five peers that hold a 2,000-block chain: it syncs headers first, then
/// blocks from several peers at once, and finishes when the peer it downloads most from
/// disappears halfway.
#[test]
fn a_fresh_node_syncs_two_thousand_blocks_from_several_peers_and_survives_losing_one() {
    let blocks = test_chain(2_000);
    let tip = blocks.last().expect("blocks").block_hash();
    let mut nodes: Vec<_> = (0..5)
        .map(|n| sim::full_node(n, chain_of(&blocks), sim::START_MILLIS))
        .collect();
    nodes.push(sim::full_node(
        5,
        Chain::new(Network::Test),
        sim::START_MILLIS,
    ));
    let mut sim = Sim::new(nodes, NetConfig::default(), 11);
    for peer in 0..5 {
        sim.connect(5, peer);
    }
    assert!(sim.run_until(60_000, |sim| sim.nodes[5].chain().height() >= 1_000));
    // Which peers served blocks so far: more than one.
    let served: Vec<u64> = (0..5).map(|peer| sim.sent_bytes[peer]).collect();
    let busiest = (0..5).max_by_key(|peer| served[*peer]).expect("five");
    assert!(
        served.iter().filter(|bytes| **bytes > 100_000).count() >= 2,
        "blocks came from several peers: {served:?}"
    );
    sim.drop_node_links(busiest);
    assert!(
        sim.run_until(120_000, |sim| sim.nodes[5].chain().tip() == tip),
        "synced to {} of 2000",
        sim.nodes[5].chain().height()
    );
    let progress: Vec<(u32, u32)> = sim
        .events
        .iter()
        .filter(|(node, _, _)| *node == 5)
        .filter_map(|(_, _, event)| match event {
            bitmesh_core::node::Event::SyncProgress { headers, blocks } => {
                Some((*headers, *blocks))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        progress.first().map(|p| p.0),
        Some(2_000),
        "headers came first"
    );
    assert_eq!(progress.last(), Some(&(2_000, 2_000)));
    assert!(progress.windows(2).all(|pair| pair[0].1 <= pair[1].1));
}

/// A node and a neighbour on a 25-block branch meet a peer of a 400-block branch of its own
/// (forked at genesis). The node asks the new branch's blocks of that peer alone: the
/// neighbour's height covers the branch's first 25 blocks, but it is on the other branch and
/// has none of them, and each block asked of it would wait out its timeout. So the node is on
/// the heavier branch before the first timeout could have passed.
#[test]
fn blocks_of_another_branch_are_asked_only_of_neighbours_on_it() {
    let ours = test_chain_paying(25, &TestKey::new(1));
    let theirs = test_chain_paying(400, &TestKey::new(2));
    let heavier = theirs.last().expect("blocks").block_hash();
    let nodes = vec![
        sim::full_node(0, chain_of(&ours), sim::START_MILLIS),
        sim::full_node(1, chain_of(&ours), sim::START_MILLIS),
        sim::full_node(2, chain_of(&theirs), sim::START_MILLIS),
    ];
    let mut sim = Sim::new(nodes, NetConfig::default(), 3);
    sim.connect(0, 1);
    assert!(sim.run_until(5_000, |sim| sim.degrees()[0] == 1));
    let met = sim.now;
    sim.connect(0, 2);
    assert!(
        sim.run_until(60_000, |sim| sim.nodes[0].chain().tip() == heavier),
        "the node is at {} of the heavier branch's 400",
        sim.nodes[0].chain().height()
    );
    let took = sim.now - met;
    assert!(
        took < BLOCK_TIMEOUT_MILLIS,
        "{took} ms: a block was asked of a neighbour without it"
    );
}

/// Twenty nodes split in two halves that mine separately (the second more), each with an
/// order and one with a transaction; once healed, every node is on the heavier branch and
/// holds both orders and the transaction.
#[test]
fn a_partition_heals_onto_the_heavier_branch_and_reconciles_mempools_and_books() {
    let count = 20;
    let makers = [TestKey::new(2), TestKey::new(3)];
    let coins = TestCoins::new(&[&makers[0], &makers[1]]);
    let mut sim = Sim::random_graph_on(|| coins.chain(), count, 3, NetConfig::default(), 5);
    assert!(sim.run_until(10_000, |sim| sim.degrees().iter().all(|d| *d >= 3)));
    // Three blocks everybody has (after the makers' coins), paying a key whose first coinbase
    // the transaction spends.
    let miner = TestKey::new(1);
    for n in 0..3 {
        let block = {
            let chain = sim.nodes[0].chain();
            block_on(chain, chain.tip(), vec![], 0, &miner.p2wpkh(), n)
        };
        sim.with::<ChainSync, _>(0, |sync, ctx| sync.submit_block(ctx, block))
            .expect("valid");
        let hash = sim.nodes[0].chain().tip();
        assert!(sim.run_until(10_000, |sim| sim
            .nodes
            .iter()
            .all(|node| node.chain().tip() == hash)));
    }
    let groups: Vec<u8> = (0..count).map(|n| (n >= count / 2) as u8).collect();
    sim.partition(groups);
    assert!(sim.run_until(5_000, |sim| (0..count).all(
        |a| (0..count).all(|b| sim.group_of(a) == sim.group_of(b) || !sim.linked(a, b))
    )));

    // Half A: a transaction, an order, two blocks. Half B: an order, four blocks.
    let first_coinbase = {
        let chain = sim.nodes[0].chain();
        let block = chain
            .block(&chain.hash_at(2).expect("height 2"))
            .expect("stored");
        block.txdata[0].clone()
    };
    let mut tx = bitmesh_core::testkit::spend(
        &[OutPoint::new(first_coinbase.compute_txid(), 0)],
        vec![bitmesh_core::testkit::pay(
            &miner.p2tr(),
            first_coinbase.output[0].value.to_sat() - 10_000,
        )],
    );
    bitmesh_core::testkit::sign_all(&miner, &mut tx, &first_coinbase.output);
    let txid = sim
        .with::<bitmesh_core::node::protocols::MempoolRelay, _>(0, |relay, ctx| {
            relay.submit(ctx, tx)
        })
        .expect("a valid transaction");
    let order_a = test_order(&makers[0], sim.now, 1, coins.coins[0]);
    let order_b = test_order(&makers[1], sim.now, 2, coins.coins[1]);
    let ids = [order_a.order.id(), order_b.order.id()];
    sim.with::<MarketRelay, _>(1, |market, ctx| market.submit_order(ctx, order_a))
        .expect("valid");
    sim.with::<MarketRelay, _>(count - 1, |market, ctx| market.submit_order(ctx, order_b))
        .expect("valid");
    for (miner_node, blocks) in [(0, 2), (count - 1, 4)] {
        for n in 0..blocks {
            let block = {
                let chain = sim.nodes[miner_node].chain();
                block_on(
                    chain,
                    chain.tip(),
                    vec![],
                    0,
                    &miner.p2wpkh(),
                    100 + n + miner_node as u64,
                )
            };
            sim.with::<ChainSync, _>(miner_node, |sync, ctx| sync.submit_block(ctx, block))
                .expect("valid");
            // A while for the half to take it.
            sim.run_until(2_000, |_| false);
        }
    }
    let heavier = sim.nodes[count - 1].chain().tip();
    assert_eq!(sim.nodes[count - 1].chain().height(), 8);
    assert_eq!(sim.nodes[0].chain().height(), 6);

    sim.heal();
    let healed_at = sim.now;
    let converged = |sim: &Sim| {
        sim.nodes.iter().all(|node| {
            node.chain().tip() == heavier
                && sim::mempool(node).contains(&txid)
                && ids.iter().all(|id| sim::book(node).get(id).is_some())
        })
    };
    assert!(
        sim.run_until(600_000, converged),
        "{} nodes of {count} on the heavier branch",
        sim.nodes
            .iter()
            .filter(|node| node.chain().tip() == heavier)
            .count()
    );
    println!(
        "partition of 20 nodes healed: all on the heavier branch with both orders and the \
         transaction {} ms after the heal (feelers dial across every {} s)",
        sim.now - healed_at,
        60
    );
}

/// 50 nodes, 10 of them attackers that send garbage, oversized messages, ping floods, invalid
/// unrequested blocks, routed messages with forged signatures and announcements of objects
/// they never deliver: every honest neighbour bans them, every honest node's footprint stays
/// within its bounds throughout, and a block and an order from honest nodes still reach every
/// honest node, whose books and mempools hold nothing the attackers sent.
#[test]
fn honest_nodes_converge_and_ban_a_fifth_of_attackers() {
    use bitmesh_core::node::{Footprint, NodeConfig};
    use bitmesh_core::wire::{
        InvItem, InvKind, InvPurpose, Message, PeerId, Routed, RoutedKind, MAX_MESSAGE_BYTES,
    };

    let count = 50;
    let attackers: Vec<usize> = (0..count).filter(|n| n % 5 == 4).collect();
    let honest: Vec<usize> = (0..count).filter(|n| n % 5 != 4).collect();
    let maker = TestKey::new(2);
    let coins = TestCoins::new(&[&maker]);
    let mut sim = Sim::random_graph_on(|| coins.chain(), count, 4, NetConfig::default(), 13);
    assert!(sim.run_until(10_000, |sim| sim.degrees().iter().all(|d| *d >= 4)));
    let bad_block = {
        let chain = coins.chain();
        let mut block = block_on(
            &chain,
            chain.tip(),
            vec![],
            0,
            &TestKey::new(9).p2wpkh(),
            99,
        );
        block.txdata[0].output[0].value = bitcoin::Amount::from_sat(1);
        Message::Block(Box::new(block)).encode()
    };
    let victims_of = |sim: &Sim, attacker: usize| -> Vec<(LinkId, usize, LinkId)> {
        sim.links_of(attacker)
            .into_iter()
            .filter(|(_, other, _)| other % 5 != 4)
            .collect()
    };
    use bitmesh_core::node::LinkId;
    let mut attacked: Vec<(usize, PeerId)> = Vec::new();
    let bounds = Footprint::bounds(&NodeConfig::new(Network::Test));
    let mut largest_requests = 0;
    for round in 0..40u64 {
        for &attacker in &attackers {
            for (link, victim, victim_link) in victims_of(&sim, attacker) {
                let id = sim.nodes[attacker].id();
                let ready = sim.nodes[victim]
                    .peers()
                    .any(|(link, info)| link == victim_link && info.peer == id);
                // Recorded while six rounds (every kind of attack) remain.
                if ready && round < 34 && !attacked.contains(&(victim, id)) {
                    attacked.push((victim, id));
                }
                let attack: Vec<Vec<u8>> = match (attacker / 5 + round as usize) % 6 {
                    0 => vec![vec![0x21, 0xff, 0xff, 1, 2, 3]],
                    1 => vec![vec![0x22; MAX_MESSAGE_BYTES + 1]],
                    2 => (0..100).map(|n| Message::Ping(n).encode()).collect(),
                    3 => vec![bad_block.clone()],
                    4 => {
                        // A thousand transactions announced, never delivered.
                        let items = (0..1_000u64)
                            .map(|n| {
                                let mut id = [0xa5; 32];
                                id[..8].copy_from_slice(&(round * 1_000 + n).to_le_bytes());
                                id[8..16].copy_from_slice(&(attacker as u64).to_le_bytes());
                                InvItem::new(InvKind::Tx, id)
                            })
                            .collect();
                        vec![Message::Inv {
                            purpose: InvPurpose::New,
                            items,
                        }
                        .encode()]
                    }
                    _ => {
                        let mut routed = Routed::sign(
                            &Secp256k1::new(),
                            &sim::node_key(attacker),
                            PeerId([1; 32]),
                            8,
                            sim.now,
                            round,
                            RoutedKind::Signal,
                            vec![1, 2, 3],
                            &[0; 32],
                        );
                        routed.payload[0] = 9;
                        vec![Message::Routed(routed).encode()]
                    }
                };
                for bytes in attack {
                    sim.inject(attacker, link, bytes);
                }
            }
        }
        sim.run_until(200, |_| false);
        for n in &honest {
            let footprint = sim.nodes[*n].footprint();
            assert_eq!(footprint.exceeded(&bounds), None, "node {n}: {footprint:?}");
            largest_requests = largest_requests.max(footprint.requests);
        }
    }
    // Oversized messages take seconds on a link: let what was sent arrive.
    sim.run_until(60_000, |_| false);
    println!(
        "attack: at most {largest_requests} objects tracked by an honest node (bound {})",
        bounds.requests
    );
    // Every honest node an attacker reached as a neighbour banned it.
    for (victim, attacker) in &attacked {
        assert!(
            sim.nodes[*victim].is_banned(attacker),
            "node {victim} did not ban {attacker}"
        );
    }
    assert!(
        attacked.len() >= attackers.len(),
        "the attackers had victims"
    );
    // (The attackers' own nodes ban honest ones: they get pongs for pings they did not send.)
    let banned_honest = sim.events.iter().any(|(node, _, event)| match event {
        Event::Banned { peer, .. } => {
            honest.contains(node) && honest.iter().any(|n| sim.nodes[*n].id() == *peer)
        }
        _ => false,
    });
    assert!(!banned_honest, "no honest node bans an honest one");

    // The honest network still works.
    let block = {
        let chain = sim.nodes[0].chain();
        block_on(chain, chain.tip(), vec![], 0, &TestKey::new(1).p2wpkh(), 1)
    };
    let hash = block.block_hash();
    sim.with::<ChainSync, _>(0, |sync, ctx| sync.submit_block(ctx, block))
        .expect("valid");
    let order = test_order(&maker, sim.now, 1, coins.coins[0]);
    let id = order.order.id();
    sim.with::<MarketRelay, _>(1, |market, ctx| market.submit_order(ctx, order))
        .expect("valid");
    let converged = |sim: &Sim| {
        honest.iter().all(|n| {
            let node = &sim.nodes[*n];
            node.chain().tip() == hash && sim::book(node).get(&id).is_some()
        })
    };
    assert!(
        sim.run_until(60_000, converged),
        "the honest nodes converge"
    );
    for n in &honest {
        let node = &sim.nodes[*n];
        assert_eq!(node.chain().height(), 2);
        assert_eq!(sim::book(node).len(), 1);
        assert!(sim::mempool(node).is_empty());
    }
}
