//! The Esplora-compatible API of a mining node: tip, blocks, transactions and their status,
//! address history and unspent outputs in Esplora's formats; a payment posted through
//! `POST /api/tx` is accepted and mined; bad requests get Esplora's errors in words.

mod common;

use bitcoin::consensus::{deserialize, serialize};
use bitcoin::hex::DisplayHex;
use bitcoin::{Address, Block, OutPoint, Transaction};
use bitmesh_core::testkit::{pay, sign_all, spend, TestKey};
use common::{bundle, wait_until, RunningNode};

#[test]
fn a_wallet_can_follow_and_pay_through_the_api() {
    let dist = bundle();
    let miner = TestKey::new(5);
    let address = Address::from_script(&miner.p2wpkh(), bitcoin::Network::Regtest).unwrap();
    let address = address.to_string();
    let node = RunningNode::start(
        dist.path(),
        &["--network", "test", "--mine", "1", "--pay-to", &address],
    );
    // Enough blocks for a full page of the miner's history (25 coinbases): the node mines as
    // fast as it can, but on a busy machine not always 25 blocks by the time the test asks.
    wait_until("25 blocks", || {
        node.text("/api/blocks/tip/height")
            .parse::<u32>()
            .unwrap_or(0)
            >= 25
    });

    // Blocks.
    let hash = node.text("/api/block-height/1");
    let block = node.json(&format!("/api/block/{hash}"));
    assert_eq!(block["id"], hash.as_str());
    assert_eq!(block["height"], 1);
    assert_eq!(node.text(&format!("/api/block/{hash}/header")).len(), 160);
    let (status, raw) = node.request("GET", &format!("/api/block/{hash}/raw"), b"");
    assert_eq!(status, 200);
    let raw: Block = deserialize(&raw).expect("a block");
    assert_eq!(raw.block_hash().to_string(), hash);
    assert_eq!(
        node.json(&format!("/api/block/{hash}/status"))["in_best_chain"],
        true
    );
    let txids = node.json(&format!("/api/block/{hash}/txids"));
    let coinbase_id = txids[0].as_str().unwrap().to_owned();

    // The coinbase paid the miner's address.
    let coinbase = node.json(&format!("/api/tx/{coinbase_id}"));
    assert_eq!(
        coinbase["vout"][0]["scriptpubkey_address"],
        address.as_str()
    );
    assert_eq!(coinbase["status"]["confirmed"], true);
    assert_eq!(coinbase["status"]["block_height"], 1);
    assert_eq!(coinbase["vin"][0]["is_coinbase"], true);
    let coinbase_hex = node.text(&format!("/api/tx/{coinbase_id}/hex"));
    let coinbase_bytes: Vec<u8> = bitcoin::hex::FromHex::from_hex(&coinbase_hex).unwrap();
    let coinbase_tx: Transaction = deserialize(&coinbase_bytes).unwrap();
    let history = node.json(&format!("/api/address/{address}/txs"));
    assert_eq!(history.as_array().unwrap().len(), 25, "a page of 25");
    let utxos = node.json(&format!("/api/address/{address}/utxo"));
    assert!(utxos
        .as_array()
        .unwrap()
        .iter()
        .any(|coin| coin["txid"] == coinbase_id.as_str()));
    let fees = node.json("/api/fee-estimates");
    assert_eq!(fees["1"], 1.0);

    // A payment from the first coinbase, posted as hex, accepted, then mined.
    let mut payment = spend(
        &[OutPoint::new(coinbase_tx.compute_txid(), 0)],
        vec![pay(
            &TestKey::new(6).p2wpkh(),
            coinbase_tx.output[0].value.to_sat() - 10_000,
        )],
    );
    sign_all(&miner, &mut payment, &coinbase_tx.output);
    let body = serialize(&payment).to_lower_hex_string();
    let (status, txid) = node.request("POST", "/api/tx", body.as_bytes());
    let txid = String::from_utf8(txid).unwrap();
    assert_eq!(status, 200, "{txid}");
    assert_eq!(txid, payment.compute_txid().to_string());
    wait_until("the payment mined", || {
        node.json(&format!("/api/tx/{txid}/status"))["confirmed"] == true
    });
    let paid = node.json(&format!("/api/tx/{txid}"));
    assert_eq!(paid["fee"], 10_000);
    let outspends = node.json(&format!("/api/tx/{coinbase_id}/outspends"));
    assert_eq!(outspends[0]["spent"], true);
    assert_eq!(outspends[0]["txid"], txid.as_str());

    // The same payment again: refused with the mempool's reason.
    let (status, again) = node.request("POST", "/api/tx", body.as_bytes());
    let again = String::from_utf8_lossy(&again);
    assert_eq!(status, 400, "{again}");
    assert!(again.contains("sendrawtransaction RPC error"), "{again}");
}

#[test]
fn bad_requests_are_answered_in_words() {
    let dist = bundle();
    let node = RunningNode::start(dist.path(), &["--network", "test"]);
    let cases: [(&str, u16, &str); 6] = [
        ("/api/tx/nothex", 400, "Invalid txid"),
        (
            &format!("/api/tx/{}", "ab".repeat(32)),
            404,
            "Transaction not found",
        ),
        ("/api/block-height/999999", 404, "Block not found"),
        (
            &format!("/api/block/{}", "cd".repeat(32)),
            404,
            "Block not found",
        ),
        (
            "/api/address/notanaddress/txs",
            400,
            "Invalid Bitcoin address",
        ),
        (
            "/api/address/bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu/utxo",
            400,
            "another network",
        ),
    ];
    for (path, status, words) in cases {
        let (got, body) = node.get(path);
        assert_eq!(got, status, "{path}: {body}");
        assert!(body.contains(words), "{path}: {body}");
    }
    let (status, body) = node.request("POST", "/api/tx", b"zz");
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("TX decode failed"));
    let nowhere = spend(
        &[OutPoint::null()],
        vec![pay(&TestKey::new(1).p2wpkh(), 1_000)],
    );
    let (status, body) = node.request(
        "POST",
        "/api/tx",
        serialize(&nowhere).to_lower_hex_string().as_bytes(),
    );
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    // An unknown transaction's status is unconfirmed, as Esplora says.
    assert_eq!(
        node.json(&format!("/api/tx/{}/status", "ab".repeat(32)))["confirmed"],
        false
    );
}
