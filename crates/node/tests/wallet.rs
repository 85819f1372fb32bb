//! The wallet CLI: a wallet restored from BIP84's test mnemonic shows BIP84's addresses on
//! Bitcoin's network (as other wallets do), its descriptors carry key origins and checksums;
//! creating shows words that restore to the same addresses; a wrong password, a damaged vault,
//! an existing file and bad words are refused with words. Vectors: `crates/core/tests/data/`
//! (bip84_test_vectors.json, from bitcoin/bips).

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

const ABOUT: &str =
    "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";

/// Runs `bitmesh-node wallet <args>` with `stdin`; (success, stdout, stderr).
fn wallet(args: &[&str], stdin: &str, password: Option<&str>) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bitmesh-node"));
    command
        .arg("wallet")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command.env_remove("BITMESH_WALLET_PASSWORD");
    if let Some(password) = password {
        command.env("BITMESH_WALLET_PASSWORD", password);
    }
    let mut child = command.spawn().expect("run bitmesh-node");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let output = child.wait_with_output().expect("it exits");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_restored_test_mnemonic_shows_the_bip84_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let vault = dir.path().join("w.vault");
    let vault = vault.to_str().unwrap();
    // The words, then the password, on standard input.
    let (ok, _, err) = wallet(
        &["restore", "--wallet", vault],
        &format!("{ABOUT}\nhunter22\n"),
        None,
    );
    assert!(ok, "{err}");
    let address = |extra: &[&str]| {
        let mut args = vec!["address", "--wallet", vault, "--network", "bitcoin"];
        args.extend(extra);
        let (ok, out, err) = wallet(&args, "", Some("hunter22"));
        assert!(ok, "{err}");
        out
    };
    assert_eq!(address(&[]), "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu");
    assert_eq!(
        address(&["--index", "1"]),
        "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g"
    );
    assert_eq!(
        address(&["--change"]),
        "bc1q8c6fshw2dlwun7ekn9qwf37cu2rn755upcp6el"
    );
    // bitmesh's networks use regtest-style addresses.
    let (ok, local, _) = wallet(&["address", "--wallet", vault], "", Some("hunter22"));
    assert!(ok && local.starts_with("bcrt1q"), "{local}");

    let (ok, descriptors, err) = wallet(
        &["descriptor", "--wallet", vault, "--network", "bitcoin"],
        "",
        Some("hunter22"),
    );
    assert!(ok, "{err}");
    let lines: Vec<&str> = descriptors.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0].starts_with("wpkh([73c5da0a/84'/0'/0']xpub"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("tr([73c5da0a/86'/0'/0']xpub"),
        "{}",
        lines[1]
    );
    assert!(lines.iter().all(|line| line.contains("/<0;1>/*)#")));
}

#[test]
fn created_words_restore_the_same_wallet() {
    let dir = tempfile::tempdir().unwrap();
    let created = dir.path().join("created.vault");
    let restored = dir.path().join("restored.vault");
    let (created, restored) = (created.to_str().unwrap(), restored.to_str().unwrap());
    let (ok, words, err) = wallet(
        &["create", "--wallet", created, "--words", "24"],
        "",
        Some("pw-one"),
    );
    assert!(ok, "{err}");
    assert_eq!(words.split_whitespace().count(), 24);
    assert!(err.contains("Write these 24 words down"), "{err}");
    let (ok, _, err) = wallet(
        &["restore", "--wallet", restored],
        &format!("{words}\n"),
        Some("pw-two"),
    );
    assert!(ok, "{err}");
    let (_, a, _) = wallet(&["address", "--wallet", created], "", Some("pw-one"));
    let (_, b, _) = wallet(&["address", "--wallet", restored], "", Some("pw-two"));
    assert_eq!(a, b);
    assert!(a.starts_with("bcrt1q"));
}

#[test]
fn mistakes_are_refused_with_words() {
    let dir = tempfile::tempdir().unwrap();
    let vault = dir.path().join("w.vault");
    let vault = vault.to_str().unwrap();
    let (ok, _, _) = wallet(
        &["restore", "--wallet", vault],
        &format!("{ABOUT}\n"),
        Some("right"),
    );
    assert!(ok);
    let refused = |args: &[&str], stdin: &str, password: Option<&str>, words: &str| {
        let (ok, _, err) = wallet(args, stdin, password);
        assert!(!ok, "{args:?} succeeded");
        assert!(err.contains(words), "{args:?}: {err}");
    };
    refused(
        &["address", "--wallet", vault],
        "",
        Some("wrong"),
        "password",
    );
    refused(
        &["create", "--wallet", vault],
        "",
        Some("x"),
        "never overwritten",
    );
    let other = dir.path().join("other.vault");
    let other = other.to_str().unwrap();
    refused(
        &["restore", "--wallet", other],
        "abandon abandon\n",
        Some("x"),
        "words",
    );
    refused(
        &["restore", "--wallet", other],
        &format!("{ABOUT}\n"),
        Some(""),
        "empty password",
    );
    refused(
        &["create", "--wallet", other, "--words", "13"],
        "",
        Some("x"),
        "12 or 24",
    );
    std::fs::write(other, b"not a vault").unwrap();
    refused(
        &["address", "--wallet", other],
        "",
        Some("x"),
        "is not a wallet vault",
    );
    let missing = dir.path().join("missing.vault");
    refused(
        &["address", "--wallet", missing.to_str().unwrap()],
        "",
        Some("x"),
        "wallet create",
    );
}

/// The balance of a wallet a node mined to, read through the node's API: mined coins, less the
/// youngest (immature) coinbase, as the node's own UTXO listing says; a node of another
/// network is refused.
#[test]
fn the_balance_is_what_the_node_says() {
    let dir = tempfile::tempdir().unwrap();
    let vault = dir.path().join("w.vault");
    let vault = vault.to_str().unwrap();
    assert!(
        wallet(
            &["restore", "--wallet", vault],
            &format!("{ABOUT}\n"),
            Some("pw")
        )
        .0
    );
    let (_, address, _) = wallet(
        &["address", "--wallet", vault, "--network", "test"],
        "",
        Some("pw"),
    );

    let data = tempfile::tempdir().unwrap();
    let data = data.path().to_str().unwrap();
    let dist = common::bundle();
    {
        let miner = common::RunningNode::start(
            dist.path(),
            &[
                "--network",
                "test",
                "--mine",
                "1",
                "--pay-to",
                &address,
                "--data-dir",
                data,
            ],
        );
        let deadline = std::time::Instant::now() + common::WAIT;
        while miner
            .get("/api/blocks/tip/height")
            .1
            .parse::<u32>()
            .unwrap_or(0)
            < 5
        {
            assert!(std::time::Instant::now() < deadline, "five blocks");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    // The same chain, no longer growing.
    let node = common::RunningNode::start(dist.path(), &["--network", "test", "--data-dir", data]);
    let url = format!("http://{}", node.host());
    let (ok, balance, err) = wallet(
        &[
            "balance",
            "--wallet",
            vault,
            "--network",
            "test",
            "--node",
            &url,
        ],
        "",
        Some("pw"),
    );
    assert!(ok, "{err}");
    let sats = |line: &str| -> u64 {
        let line = balance.lines().find(|l| l.starts_with(line)).expect(line);
        line.rsplit('(')
            .next()
            .unwrap()
            .trim_end_matches(" sat)")
            .parse()
            .unwrap()
    };
    let (status, body) = node.get(&format!("/api/address/{address}/utxo"));
    assert_eq!(status, 200);
    let utxos: serde_json::Value = serde_json::from_str(&body).unwrap();
    let total: u64 = utxos
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["value"].as_u64().unwrap())
        .sum();
    assert_eq!(sats("confirmed") + sats("immature"), total, "{balance}");
    assert!(sats("confirmed") > 0 && sats("immature") > 0, "{balance}");
    assert_eq!(sats("unconfirmed"), 0);

    let (ok, _, err) = wallet(
        &[
            "balance",
            "--wallet",
            vault,
            "--network",
            "local",
            "--node",
            &url,
        ],
        "",
        Some("pw"),
    );
    assert!(!ok && err.contains("serves another chain"), "{err}");

    // A payment through the node: in its mempool, paying exactly the amount.
    let recipient = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
    let send = |amount: &str| {
        wallet(
            &[
                "send",
                "--wallet",
                vault,
                "--network",
                "test",
                "--node",
                &url,
                "--to",
                recipient,
                "--amount",
                amount,
            ],
            "",
            Some("pw"),
        )
    };
    let (ok, txid, err) = send("123456");
    assert!(ok, "{err}");
    let (status, body) = node.get(&format!("/api/tx/{txid}"));
    assert_eq!(status, 200, "{body}");
    let tx: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(tx["status"]["confirmed"], false);
    assert!(tx["vout"]
        .as_array()
        .unwrap()
        .iter()
        .any(|output| output["scriptpubkey_address"] == recipient && output["value"] == 123_456));
    assert!(tx["fee"].as_u64().unwrap() > 0);
    // More than the wallet holds: refused with words.
    let (ok, _, err) = send("2100000000000000");
    assert!(!ok && err.contains("cannot pay"), "{err}");

    // An asset issued to the wallet's next receive address (index 1: mining used index 0).
    let (ok, issued, err) = wallet(
        &[
            "issue",
            "--wallet",
            vault,
            "--network",
            "test",
            "--node",
            &url,
            "--ticker",
            "GOLD",
            "--supply",
            "21000",
        ],
        "",
        Some("pw"),
    );
    assert!(ok, "{err}");
    let asset = issued
        .lines()
        .find_map(|line| line.strip_prefix("asset "))
        .expect("an asset id");
    let issue_txid = issued
        .lines()
        .find_map(|line| line.strip_prefix("tx "))
        .expect("a txid");
    let (status, body) = node.get(&format!("/api/tx/{issue_txid}"));
    assert_eq!(status, 200, "{body}");
    let issue: serde_json::Value = serde_json::from_str(&body).unwrap();
    let (_, next, _) = wallet(
        &[
            "address",
            "--wallet",
            vault,
            "--network",
            "test",
            "--index",
            "1",
        ],
        "",
        Some("pw"),
    );
    assert!(
        issue["vout"]
            .as_array()
            .unwrap()
            .iter()
            .any(|output| output["scriptpubkey_address"] == next.as_str()),
        "{issue}"
    );
    assert_eq!(asset.len(), 64);
    // The node lists the new (unconfirmed) coin with its units, and the BTC balance leaves it
    // out.
    let (_, body) = node.get(&format!("/api/address/{next}/utxo"));
    let coins: serde_json::Value = serde_json::from_str(&body).unwrap();
    let carrying = coins
        .as_array()
        .unwrap()
        .iter()
        .find(|coin| coin["txid"] == issue_txid)
        .unwrap_or_else(|| panic!("the issued coin: {coins}"));
    assert_eq!(carrying["assets"][0]["asset"], asset);
    assert_eq!(carrying["assets"][0]["amount"], 21_000);
    let (ok, _, err) = wallet(
        &[
            "balance",
            "--wallet",
            vault,
            "--network",
            "test",
            "--node",
            &url,
        ],
        "",
        Some("pw"),
    );
    assert!(
        ok && err.contains("carrying asset units are not counted"),
        "{err}"
    );
}
