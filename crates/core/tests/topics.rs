//! The topic board on a simulated network (tests/sim): an announcement reaches every node and
//! expires everywhere; a peer's topics are bounded and its renewals rate-limited (forgeries:
//! the unit tests of `node::protocols::topics`). Native only, like the other simulations.
#![cfg(not(target_arch = "wasm32"))]

mod sim;

use bitmesh_core::node::protocols::{
    AnnounceError, TopicBoard, MAX_TOPICS_PER_PEER, MAX_TOPIC_TTL_MILLIS, MIN_RENEW_MILLIS,
};
use bitmesh_core::node::Event;
use bitmesh_core::wire::PeerId;
use sim::{node_key, NetConfig, Sim};

const TOPIC: [u8; 32] = [0x70; 32];

fn board(sim: &Sim, node: usize) -> &TopicBoard {
    sim.nodes[node]
        .protocol::<TopicBoard>()
        .expect("registered")
}

fn followers(sim: &Sim, node: usize, topic: &[u8; 32]) -> Vec<PeerId> {
    board(sim, node).followers(topic, sim.now)
}

fn connected(nodes: usize) -> Sim {
    let mut sim = Sim::random_graph(nodes, 3, NetConfig::default(), 11);
    assert!(
        sim.run_until(10_000, |sim| sim.degrees().iter().all(|d| *d >= 3)),
        "every node has its neighbours"
    );
    sim
}

#[test]
fn an_announcement_reaches_every_node_and_expires_everywhere() {
    let mut sim = connected(30);
    let announcer = 7;
    let peer = sim.nodes[announcer].id();
    sim.with::<TopicBoard, _>(announcer, |board, ctx| {
        board.announce(ctx, &node_key(announcer), TOPIC, 60_000, &[1; 32])
    })
    .expect("announced");
    assert!(
        sim.run_until(10_000, |sim| (0..sim.nodes.len()).all(|node| followers(
            sim, node, &TOPIC
        ) == vec![
            peer
        ])),
        "every node finds the announcer"
    );
    assert!(
        followers(&sim, 3, &[0x71; 32]).is_empty(),
        "other topics: nobody"
    );

    // Past its time to live, nobody lists it, and the boards let it go.
    assert!(
        sim.run_until(70_000, |sim| (0..sim.nodes.len())
            .all(|node| followers(sim, node, &TOPIC).is_empty())),
        "it expires everywhere"
    );
    assert!(sim.run_until(1_000, |sim| (0..sim.nodes.len())
        .all(|node| board(sim, node).is_empty())));
}

#[test]
fn a_peer_follows_a_bounded_number_of_topics_and_renews_no_faster_than_the_limit() {
    let mut sim = connected(10);
    let key = node_key(2);
    for topic in 0..MAX_TOPICS_PER_PEER as u8 {
        sim.with::<TopicBoard, _>(2, |board, ctx| {
            board.announce(ctx, &key, [topic; 32], 60_000, &[1; 32])
        })
        .expect("within the bound");
    }
    let over = sim.with::<TopicBoard, _>(2, |board, ctx| {
        board.announce(ctx, &key, [0xee; 32], 60_000, &[1; 32])
    });
    assert_eq!(over, Err(AnnounceError::TooManyTopics));
    let soon = sim.with::<TopicBoard, _>(2, |board, ctx| {
        board.announce(ctx, &key, [0; 32], 60_000, &[2; 32])
    });
    assert_eq!(soon, Err(AnnounceError::TooSoon));
    let long = sim.with::<TopicBoard, _>(3, |board, ctx| {
        board.announce(ctx, &node_key(3), TOPIC, MAX_TOPIC_TTL_MILLIS + 1, &[1; 32])
    });
    assert_eq!(long, Err(AnnounceError::TooLong));

    let peer = sim.nodes[2].id();
    assert!(
        sim.run_until(10_000, |sim| (0..sim.nodes.len()).all(|node| {
            (0..MAX_TOPICS_PER_PEER as u8)
                .all(|topic| followers(sim, node, &[topic; 32]) == vec![peer])
        }))
    );
    assert!(followers(&sim, 5, &[0xee; 32]).is_empty());

    // After the limit a renewal goes through, and reaches the others.
    sim.run_until(MIN_RENEW_MILLIS, |_| false);
    sim.with::<TopicBoard, _>(2, |board, ctx| {
        board.announce(ctx, &key, [0; 32], 60_000, &[3; 32])
    })
    .expect("renewed after the limit");
    let renewed_until = sim.now + 60_000;
    let mut events = 0;
    assert!(sim.run_until(10_000, |sim| {
        events = sim
            .events
            .iter()
            .filter(|(_, _, event)| matches!(event, Event::TopicAnnounced { topic, .. } if *topic == [0; 32]))
            .count();
        (0..sim.nodes.len()).all(|node| board(sim, node).expires(&[0; 32], &peer) == Some(renewed_until))
    }));
    assert!(
        events >= sim.nodes.len() - 1,
        "each node heard of the renewal"
    );
}
