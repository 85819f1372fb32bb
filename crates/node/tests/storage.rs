//! The node's store across restarts: the chain, the identity and the known peers come back; a kill -9 at any
//! moment of mining (block connection and writes included) leaves a database that opens and
//! whose chain and UTXO set equal those of a clean rebuild (a fresh node syncing the same
//! blocks); another network's data directory is refused.

mod common;

use std::time::Duration;

use common::{bundle, RunningNode};

fn height(node: &RunningNode) -> u64 {
    node.json("/healthz")["height"].as_u64().expect("a height")
}

/// A node stopped and started again knows the peers it knew: it lists the node it had joined
/// before dialing anyone.
#[test]
fn a_restart_remembers_the_known_peers() {
    let dist = bundle();
    let first = RunningNode::start(dist.path(), &["--network", "test"]);
    let first_id = first.json("/healthz")["peer"].clone();
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let url = format!("ws://{}/signal", first.host());
    let second = RunningNode::start(
        dist.path(),
        &["--network", "test", "--data-dir", dir, "--join", &url],
    );
    second.wait_for("a neighbour", |health| health["neighbours"] == 1);
    assert!(second.stop());
    drop(first);
    let second = RunningNode::start(dist.path(), &["--network", "test", "--data-dir", dir]);
    let peers = second.json("/api/peers");
    let peers = peers.as_array().expect("a list");
    assert_eq!(peers.len(), 1, "{peers:?}");
    assert_eq!(peers[0]["peer"], first_id);
    assert!(peers[0]["last_seen"].as_u64() > Some(1_700_000_000));
}

#[test]
fn a_restart_restores_the_chain_and_the_identity() {
    let dist = bundle();
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let (id, reached, summary) = {
        let node = RunningNode::start(
            dist.path(),
            &["--network", "test", "--mine", "1", "--data-dir", dir],
        );
        node.wait_for("five blocks", |health| health["height"].as_u64() >= Some(5));
        let id = node.json("/healthz")["peer"].clone();
        (id, height(&node), node.json("/api/utxo-summary"))
    };
    let node = RunningNode::start(dist.path(), &["--network", "test", "--data-dir", dir]);
    let health = node.json("/healthz");
    assert_eq!(health["peer"], id, "the same identity");
    assert!(
        health["height"].as_u64().unwrap() >= reached,
        "{health} < {reached}"
    );
    assert!(summary["coins"].as_u64().unwrap() >= 5);
}

#[test]
fn kill_9_during_mining_leaves_a_consistent_database() {
    let dist = bundle();
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let mut reached = 0;
    for round in 0..6u64 {
        let node = RunningNode::start(
            dist.path(),
            &["--network", "test", "--mine", "1", "--data-dir", dir],
        );
        // It opened what the last kill left, with at least what it had shown.
        let restored = height(&node);
        assert!(
            restored >= reached,
            "round {round}: restored {restored} < {reached}"
        );
        node.wait_for("new blocks", |health| {
            health["height"].as_u64().unwrap_or(0) > reached
        });
        // Somewhere in the middle of mining, connecting and writing blocks.
        std::thread::sleep(Duration::from_millis(37 * (round + 1)));
        reached = height(&node);
        drop(node); // SIGKILL
    }
    let restored = RunningNode::start(dist.path(), &["--network", "test", "--data-dir", dir]);
    let summary = restored.json("/api/utxo-summary");
    assert!(summary["height"].as_u64().unwrap() >= reached);

    // A clean rebuild: a fresh node validates the same blocks from scratch.
    let url = format!("ws://{}/signal", restored.host());
    let fresh = RunningNode::start(dist.path(), &["--network", "test", "--join", &url]);
    let target = summary["height"].as_u64().unwrap();
    fresh.wait_for(&format!("the restored chain {summary}"), |health| {
        health["height"].as_u64() == Some(target)
    });
    assert_eq!(
        fresh.json("/api/utxo-summary").to_string(),
        summary.to_string()
    );
}

#[test]
fn another_networks_data_is_refused_clearly() {
    let dist = bundle();
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    drop(RunningNode::start(
        dist.path(),
        &["--network", "test", "--data-dir", dir],
    ));
    let dist_path = dist.path().to_str().unwrap();
    let output = common::run_to_exit(&[
        "--port",
        "0",
        "--mine",
        "0",
        "--network",
        "local",
        "--dist",
        dist_path,
        "--data-dir",
        dir,
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("holds the test network's data"), "{stderr}");
}
