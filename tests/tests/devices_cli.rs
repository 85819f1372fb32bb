//! The wallet CLI as a device of a wallet a browser uses too (issue 10): the CLI restores the
//! words of profile A's wallet, joins the mesh through the node for the time of each command,
//! and syncs with A end to end encrypted. Each shows the other's name; a label set on A reaches
//! the CLI's store and one set by the CLI shows on A; the CLI's receive address is neither A's
//! nor a paid one; while A holds its coin for a spend under review, the CLI refuses to spend it
//! and says who holds it; once A cancels, the CLI spends and A shows the payment. With the node
//! gone, the CLI still lists the labels from its store.

use std::time::Duration;

use bitmesh_e2e::wallet::{history_row, tab_with_coins};
use bitmesh_e2e::{wallet_cli, within, Node, NodeOptions};

const TEST_TIMEOUT: Duration = Duration::from_secs(600);
const PASSWORD: &str = "correct horse battery";
/// The first BIP84 address of the "abandon … about" words on regtest: nobody's here.
const STRANGER: &str = "bcrt1q6rz28mcfaxtmd6v789l9rrlrusdprr9pz3cppk";

#[tokio::test]
async fn the_wallet_cli_is_one_of_the_wallets_devices() {
    within(TEST_TIMEOUT, async {
        let node = Node::start_with_funded_faucet(NodeOptions::mining_test_network()).await?;
        let (a, words) = tab_with_coins(&node, PASSWORD).await?;
        a.name_device("Laptop").await?;
        let faucet_tx = a.newest_txid().await?;

        let dir = tempfile::tempdir()?;
        let vault = dir.path().join("cli.vault");
        let vault = vault.to_str().ok_or("a UTF-8 path")?;
        let base = node.base_url();
        let cli = |args: &[&str]| -> Vec<String> {
            let mut all: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
            all.extend(["--wallet", vault, "--network", "test"].map(String::from));
            all
        };
        let mesh = |args: &[&str]| -> Vec<String> {
            let mut all = cli(args);
            all.extend(["--node".to_owned(), base.clone()]);
            all
        };
        let (ok, _, err) = wallet_cli(
            &cli(&["restore"]),
            PASSWORD,
            &format!("{}\n", words.join(" ")),
        )
        .await?;
        assert!(ok, "restore: {err}");

        // The CLI joins, names itself, and each device shows the other.
        let (ok, shown, err) =
            wallet_cli(&mesh(&["sync", "--name", "Terminal"]), PASSWORD, "").await?;
        assert!(ok, "sync: {err}");
        assert!(shown.contains("this device"), "{shown}");
        assert!(shown.contains("Laptop, in sync"), "{shown}");
        a.wait_for_text("#devices", "Terminal").await?;

        // A label set on A reaches the CLI (and its store).
        let row = history_row(&faucet_tx);
        a.fill(&format!("{row} .label-input"), "from the faucet")
            .await?;
        a.click(&format!("{row} .label-save")).await?;
        a.wait_for_text(&format!("{row} .label"), "from the faucet")
            .await?;
        let (ok, shown, err) = wallet_cli(&mesh(&["sync"]), PASSWORD, "").await?;
        assert!(ok, "sync: {err}");
        assert!(shown.contains("labels: 1"), "{shown}");
        let (ok, labels, err) = wallet_cli(&cli(&["labels"]), PASSWORD, "").await?;
        assert!(ok, "labels: {err}");
        assert_eq!(labels, format!("tx {faucet_tx}\tfrom the faucet"));

        // A label set by the CLI shows on A.
        let (ok, _, err) = wallet_cli(
            &mesh(&[
                "label",
                "--tx",
                &faucet_tx,
                "--text",
                "kept by the terminal",
            ]),
            PASSWORD,
            "",
        )
        .await?;
        assert!(ok, "label: {err}");
        a.wait_for_text(&format!("{row} .label"), "kept by the terminal")
            .await?;

        // The CLI's receive address is its own.
        let (ok, address, err) = wallet_cli(&mesh(&["receive"]), PASSWORD, "").await?;
        assert!(ok, "receive: {err}");
        assert!(address.starts_with("bcrt1q"), "{address}");
        let shown_on_a = a.text("#receive-address").await?;
        assert_ne!(
            address, shown_on_a,
            "the CLI and A show different addresses"
        );
        let (ok, again, err) = wallet_cli(&mesh(&["receive"]), PASSWORD, "").await?;
        assert!(ok, "receive: {err}");
        assert_eq!(again, address, "kept from run to run while unpaid");

        // A holds its coin for a spend under review: the CLI refuses to spend it, in words.
        a.send(STRANGER, "0.05").await?;
        a.wait_for_text("#spend-review-text", "Send 0.05000000 BTC to")
            .await?;
        let send = mesh(&["send", "--to", STRANGER, "--amount", "100000"]);
        let (ok, _, err) = wallet_cli(&send, PASSWORD, "").await?;
        assert!(!ok, "the CLI spent a coin A holds");
        assert!(err.contains("reserved by \"Laptop\""), "{err}");
        assert!(err.contains("about to sign"), "{err}");

        // A cancels: the coin is free, the CLI spends it, and A shows the payment.
        a.click("#spend-cancel").await?;
        a.wait_for_text("#wallet-notice", "Cancelled").await?;
        let (ok, txid, err) = wallet_cli(&send, PASSWORD, "").await?;
        assert!(ok, "send: {err}");
        a.wait_for_text(&format!("{} .changes", history_row(&txid)), "-0.00100")
            .await?;

        // Offline, the CLI's store still holds what it learned.
        a.close().await?;
        node.stop().await?;
        let (ok, labels, err) = wallet_cli(&cli(&["labels"]), PASSWORD, "").await?;
        assert!(ok, "labels: {err}");
        assert_eq!(labels, format!("tx {faucet_tx}\tkept by the terminal"));
        Ok(())
    })
    .await;
}
