//! The node's store across restarts: the chain and the identity come back; a kill -9 at any
//! moment of mining (block connection and writes included) leaves a database that opens and
//! whose chain and UTXO set equal those of a clean rebuild (a fresh node syncing the same
//! blocks); another network's data directory is refused.

mod common;

use std::time::{Duration, Instant};

use common::{bundle, RunningNode, WAIT};

fn json(node: &RunningNode, path: &str) -> serde_json::Value {
    let (status, body) = node.get(path);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).expect("JSON")
}

/// Polls until `ready` holds (no event crosses the process boundary to await).
fn wait_for(node: &RunningNode, what: &str, ready: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        let health = json(node, "/healthz");
        if ready(&health) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {health}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn height(node: &RunningNode) -> u64 {
    json(node, "/healthz")["height"].as_u64().expect("a height")
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
        wait_for(&node, "five blocks", |health| {
            health["height"].as_u64() >= Some(5)
        });
        let id = json(&node, "/healthz")["peer"].clone();
        (id, height(&node), json(&node, "/api/utxo-summary"))
    };
    let node = RunningNode::start(dist.path(), &["--network", "test", "--data-dir", dir]);
    let health = json(&node, "/healthz");
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
        wait_for(&node, "new blocks", |health| {
            health["height"].as_u64().unwrap_or(0) > reached
        });
        // Somewhere in the middle of mining, connecting and writing blocks.
        std::thread::sleep(Duration::from_millis(37 * (round + 1)));
        reached = height(&node);
        drop(node); // SIGKILL
    }
    let restored = RunningNode::start(dist.path(), &["--network", "test", "--data-dir", dir]);
    let summary = json(&restored, "/api/utxo-summary");
    assert!(summary["height"].as_u64().unwrap() >= reached);

    // A clean rebuild: a fresh node validates the same blocks from scratch.
    let url = format!("ws://{}/signal", restored.host());
    let fresh = RunningNode::start(dist.path(), &["--network", "test", "--join", &url]);
    let target = summary["height"].as_u64().unwrap();
    wait_for(&fresh, "the restored chain", |health| {
        health["height"].as_u64() == Some(target)
    });
    assert_eq!(
        json(&fresh, "/api/utxo-summary").to_string(),
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
