//! Two node processes meet in the mesh: the second joins through the first's signaling server,
//! their webrtc-rs peers connect over loopback, shake hands, and each counts the other as a
//! neighbour.

mod common;

use common::{bundle, RunningNode};

#[test]
fn a_node_joining_through_anothers_signaling_becomes_its_neighbour() {
    let dist = bundle();
    let first = RunningNode::start(dist.path(), &["--network", "test"]);
    let url = format!("ws://{}/signal", first.host());
    let second = RunningNode::start(dist.path(), &["--network", "test", "--join", &url]);
    let first_id = first.json("/healthz")["peer"]
        .as_str()
        .expect("a peer id")
        .to_owned();
    let second_id = second.json("/healthz")["peer"]
        .as_str()
        .expect("a peer id")
        .to_owned();
    assert_ne!(first_id, second_id);
    assert_eq!(first_id.len(), 64);
    for node in [&first, &second] {
        node.wait_for("one neighbour", |health| health["neighbours"] == 1);
    }
}

/// A mining node's blocks reach a node that joined it, over their WebRTC link.
#[test]
fn mined_blocks_reach_the_joined_node() {
    let dist = bundle();
    let miner = RunningNode::start(dist.path(), &["--network", "test", "--mine", "1"]);
    let url = format!("ws://{}/signal", miner.host());
    let follower = RunningNode::start(dist.path(), &["--network", "test", "--join", &url]);
    miner.wait_for("blocks mined", |health| {
        health["mined"].as_u64().unwrap_or(0) >= 3 && health["hashes"].as_u64().unwrap_or(0) > 0
    });
    follower.wait_for("a neighbour", |health| health["neighbours"] == 1);
    // The test network's minimal difficulty lets the miner run far ahead: the follower only
    // has to be fed its blocks.
    follower.wait_for("the miner's blocks", |health| {
        health["height"].as_u64().unwrap_or(0) >= 20
    });
    assert_eq!(follower.json("/healthz")["mined"], 0);
}
