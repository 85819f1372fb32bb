//! The faucet of a running node over HTTP: a node mining to its own wallet issues the demo
//! asset, pays BTC and the asset to an address that asks, refuses the same address again and a
//! requester beyond its share with a Retry-After, refuses bad addresses in words, and keeps its
//! unconfirmed payments (the mempool) across a restart. A node started with `--no-faucet` says
//! it runs none.

mod common;

use bitcoin::Address;
use bitmesh_core::testkit::TestKey;
use common::{bundle, wait_until, RunningNode};
use serde_json::Value;

fn address(n: u64) -> String {
    Address::from_script(&TestKey::new(n).p2wpkh(), bitcoin::Network::Regtest)
        .expect("a standard script")
        .to_string()
}

/// `POST /api/faucet` for `address`: status, head, body.
fn ask(node: &RunningNode, address: &str) -> (u16, String, String) {
    let (status, head, body) = node.exchange("POST", "/api/faucet", address.as_bytes());
    (status, head, String::from_utf8_lossy(&body).into_owned())
}

fn paid(node: &RunningNode, address: &str) -> Value {
    let (status, _, body) = ask(node, address);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("JSON")
}

#[test]
fn pays_btc_and_the_demo_asset_within_its_limits_and_keeps_its_mempool() {
    let dist = bundle();
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    let common = ["--network", "test", "--data-dir", data_dir];

    // Mining to its own wallet, the node issues its asset once a reward matures.
    let miner = RunningNode::start(dist.path(), &[&common[..], &["--mine", "1"]].concat());
    miner.wait_for("the faucet's asset", |health| {
        health["faucet"]["asset"].is_string() && health["height"].as_u64() >= Some(5)
    });
    let health = miner.json("/healthz");
    let funding = health["faucet"]["address"].as_str().expect("an address");
    let asset = health["faucet"]["asset"].as_str().unwrap().to_owned();
    assert!(funding.starts_with("bcrt1q"), "{funding}");
    let rewards = miner.json(&format!("/api/address/{funding}/txs"));
    assert!(
        rewards.as_array().is_some_and(|txs| !txs.is_empty()),
        "the block rewards go to the node's wallet"
    );
    // Its issuance mined, the node stops mining and pays from what it has.
    wait_until("the asset's issuance mined", || {
        miner
            .json(&format!("/api/address/{funding}/utxo"))
            .as_array()
            .unwrap()
            .iter()
            .any(|coin| {
                coin["status"]["confirmed"] == true && coin["assets"][0]["asset"] == asset.as_str()
            })
    });
    assert!(miner.stop());
    let node = RunningNode::start(dist.path(), &common);

    let first = address(1);
    let answer = paid(&node, &first);
    assert_eq!(answer["sats"], 10_000_000);
    assert_eq!(answer["asset"]["asset"], asset.as_str());
    assert_eq!(answer["asset"]["units"], 100_000);
    let coins = node.json(&format!("/api/address/{first}/utxo"));
    let coins = coins.as_array().unwrap();
    let sats: u64 = coins
        .iter()
        .map(|coin| coin["value"].as_u64().unwrap())
        .sum();
    // The asset's output carries the dust limit's 294 sats.
    assert_eq!(sats, 10_000_000 + 294);
    assert!(coins
        .iter()
        .any(|coin| coin["assets"][0]["asset"] == asset.as_str()
            && coin["assets"][0]["amount"] == 100_000));

    // The same address again: refused, with how long to wait.
    let (status, head, body) = ask(&node, &first);
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("this address was paid recently"), "{body}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: "),
        "{head}"
    );

    // Bad addresses.
    let (status, _, body) = ask(&node, "not an address");
    assert_eq!(
        (status, body.as_str()),
        (400, "`not an address` is not an address")
    );
    let (status, _, body) = ask(&node, "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu");
    assert_eq!(status, 400);
    assert!(
        body.contains("not an address of the test network"),
        "{body}"
    );

    // Five payments an hour per requester (here, the loopback address).
    for n in 2..=5 {
        paid(&node, &address(n));
    }
    let (status, _, body) = ask(&node, &address(6));
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("you had the faucet's share"), "{body}");

    // Unconfirmed, the payments survive a restart.
    let txid = answer["txid"].as_str().unwrap().to_owned();
    assert_eq!(
        node.json(&format!("/api/tx/{txid}/status"))["confirmed"],
        false
    );
    assert!(node.stop());
    let restarted = RunningNode::start(dist.path(), &common);
    assert_eq!(
        restarted.json(&format!("/api/tx/{txid}/status"))["confirmed"],
        false
    );
    let coins = restarted.json(&format!("/api/address/{first}/utxo"));
    assert_eq!(coins.as_array().map(Vec::len), Some(2));
}

#[test]
fn a_node_without_a_faucet_says_so() {
    let dist = bundle();
    let node = RunningNode::start(dist.path(), &["--network", "test", "--no-faucet"]);
    let (status, _, body) = ask(&node, &address(1));
    assert_eq!((status, body.as_str()), (404, "this node runs no faucet"));
    assert!(node.json("/healthz")["faucet"].is_null());
}
