//! One wallet on two devices (issue 10), in real browsers on one mesh: profiles A and B restore
//! the same words, find each other through the topic board, and sync end to end encrypted
//! through routed messages. Each shows a receive address of its own; a label set on A shows on
//! B (the latency is measured); a spend A has under review holds its coins, and B, asked to
//! spend them, refuses in words. Cut apart (both pause sync, both stay on the mesh), both spend
//! the same coin: exactly one confirms, the other device shows its spend conflicted, and once
//! they sync again their balances agree. A third profile with other words on the same mesh
//! never becomes one of their devices, and nothing its data channels received holds their
//! label or their names in the clear.

use std::time::{Duration, Instant};

use bitmesh_e2e::wallet::{balance, history_row, tab_with_coins};
use bitmesh_e2e::{within, Browser, Node, NodeOptions, Result};

const TEST_TIMEOUT: Duration = Duration::from_secs(600);
const PASSWORD: &str = "correct horse battery";
/// The first BIP84 address of the "abandon … about" words on regtest: nobody's here.
const STRANGER: &str = "bcrt1q6rz28mcfaxtmd6v789l9rrlrusdprr9pz3cppk";
const LABELS_MEASURED: usize = 20;

/// What a tab's Devices view says of refused sync messages (for failure reports).
async fn refusals(tab: &Browser) -> Result<String> {
    let value = tab
        .eval("const card = document.querySelector('#devices-card'); return card.dataset.refused + ' refused, last: ' + card.dataset.lastRefusal + '; ' + card.textContent")
        .await?;
    Ok(value.as_str().unwrap_or_default().to_owned())
}

/// The wallet notice once a confirmed spend settled: sent, or refused.
async fn settled_notice(tab: &Browser) -> Result<String> {
    tab.wait_for_text_starting("#wallet-notice", &["Sent", "The transaction was refused"])
        .await
}

/// Whether the node's chain confirmed `txid`.
async fn confirmed(node: &Node, txid: &str) -> Result<bool> {
    let (status, body) = node.get(&format!("/api/tx/{txid}/status")).await?;
    Ok(status == 200 && serde_json::from_str::<serde_json::Value>(&body)?["confirmed"] == true)
}

#[tokio::test]
async fn two_devices_of_one_wallet_share_labels_refuse_reserved_coins_and_settle_a_double_spend() {
    within(TEST_TIMEOUT, async {
        let node = Node::start_with_funded_faucet(NodeOptions::mining_test_network()).await?;
        let (a, words) = tab_with_coins(&node, PASSWORD).await?;
        a.name_device("Laptop").await?;

        let b = Browser::open().await?;
        b.goto(node.url()).await?;
        b.wait_for_neighbours(1).await?;
        b.restore_wallet(&words, PASSWORD).await?;
        b.name_device("Phone").await?;
        // They find each other on the topic board and prove the seed.
        b.wait_for_text("#devices", "Laptop").await?;
        if let Err(err) = a.wait_for_text("#devices", "Phone").await {
            return Err(format!(
                "{err}; A: {}; B: {}",
                refusals(&a).await?,
                refusals(&b).await?
            )
            .into());
        }
        b.wait_for_text("#devices .state", "in sync").await?;
        b.wait_for_text(&balance("BTC", "confirmed"), "0.10000294")
            .await?;
        a.screenshot("devices-a.png").await?;
        b.screenshot("devices-b.png").await?;

        // Each shows a receive address of its own.
        let addresses = a.receive_addresses_beside(&b).await?;
        assert_ne!(addresses.0, addresses.1, "two devices, two addresses");

        // A label set on A shows on B.
        let faucet_tx = a.newest_txid().await?;
        let mut latencies = Vec::with_capacity(LABELS_MEASURED);
        for n in 0..LABELS_MEASURED {
            if n > 0 {
                // As a person would: the previous label shows here before the next is typed.
                let previous = format!("from the faucet #{}", n - 1);
                a.wait_for_text(&format!("{} .label", history_row(&faucet_tx)), &previous)
                    .await?;
            }
            let label = format!("from the faucet #{n}");
            a.fill(&format!("{} .label-input", history_row(&faucet_tx)), &label)
                .await?;
            let start = Instant::now();
            a.click(&format!("{} .label-save", history_row(&faucet_tx)))
                .await?;
            if let Err(err) = b
                .wait_for_text(&format!("{} .label", history_row(&faucet_tx)), &label)
                .await
            {
                let shown_a = a
                    .text(&format!("{} .label", history_row(&faucet_tx)))
                    .await?;
                let notice = a.text("#wallet-notice").await?;
                return Err(format!(
                    "{err}; A shows {shown_a:?}, notice {notice:?}; A: {}; B: {}",
                    refusals(&a).await?,
                    refusals(&b).await?
                )
                .into());
            }
            latencies.push(start.elapsed());
        }
        latencies.sort_unstable();
        println!(
            "label set on A shown on B ({LABELS_MEASURED} labels): p50 {:?}, p99 {:?}",
            latencies[LABELS_MEASURED / 2],
            latencies[LABELS_MEASURED - 1]
        );

        // A starts a spend: its coins are held; B, asked to spend them, refuses.
        a.send(STRANGER, "0.05").await?;
        a.wait_for_text("#spend-review-text", "Send 0.05000000 BTC to")
            .await?;
        b.wait_for_text("#devices .state", "in sync").await?;
        b.send(STRANGER, "0.05").await?;
        let refusal = b
            .wait_for_text("#wallet-notice", "reserved by \"Laptop\"")
            .await?;
        assert!(refusal.contains("about to sign"), "{refusal}");
        b.screenshot("devices-b-refuses.png").await?;
        let sent = a.confirm_spend().await?;
        assert!(sent.starts_with("Sent 0.05000000 BTC"), "{sent}");
        // The change confirms on both.
        a.wait_for_text(&balance("BTC", "unconfirmed"), "0.00000000")
            .await?;
        let change = a.text(&balance("BTC", "confirmed")).await?;
        b.wait_for_text(&balance("BTC", "confirmed"), &change)
            .await?;

        // A third profile, other words, same mesh: it never joins their group.
        let c = Browser::open().await?;
        c.record_received_messages().await?;
        c.goto(node.url()).await?;
        c.wait_for_neighbours(1).await?;
        c.create_wallet(PASSWORD).await?;
        let c_address = c.text("#receive-address").await?;

        // Cut apart, both spend the same change coin.
        a.click("#sync-paused").await?;
        b.click("#sync-paused").await?;
        a.wait_for_text("#devices .state", "paused here").await?;
        b.wait_for_text("#devices .state", "paused here").await?;
        a.send(STRANGER, "0.01").await?;
        a.wait_for_text("#spend-review-text", "Send 0.01000000 BTC")
            .await?;
        b.send(&c_address, "0.02").await?;
        b.wait_for_text("#spend-review-text", "Send 0.02000000 BTC")
            .await?;
        let from_a = a.confirm_spend().await?;
        b.click("#spend-confirm").await?;
        let from_b = settled_notice(&b).await?;
        let txid = |notice: &str| notice.rsplit(' ').next().unwrap_or_default().to_owned();
        let tx_a = txid(&from_a);
        if from_b.starts_with("The transaction was refused") {
            // A's spend reached B (through the node) before B's: B's own mempool names it as
            // the conflict, or, if a block took it already, names the coin it spent. Nothing
            // of B's was spent.
            node.wait_for_json(
                &format!("/api/tx/{tx_a}/status"),
                "A's spend confirms",
                |status| status["confirmed"] == true,
            )
            .await?;
            let spent_by_a: Vec<String> = node.json(&format!("/api/tx/{tx_a}")).await?["vin"]
                .as_array()
                .ok_or("A's spend lists no inputs")?
                .iter()
                .map(|input| format!("{}:{}", input["txid"].as_str().unwrap_or(""), input["vout"]))
                .collect();
            assert!(
                from_b.contains("already spent")
                    && (from_b.contains(&tx_a)
                        || spent_by_a.iter().any(|coin| from_b.contains(coin.as_str()))),
                "{from_b}; A's spend {tx_a} spent {spent_by_a:?}"
            );
            b.screenshot("devices-conflict.png").await?;
        } else {
            // Both spends went out: the chain takes exactly one, the other device shows its
            // spend conflicted.
            assert!(from_b.starts_with("Sent 0.02000000 BTC"), "{from_b}");
            let tx_b = txid(&from_b);
            let deadline = Instant::now() + Duration::from_secs(90);
            let (loser, loser_tab) = loop {
                if confirmed(&node, &tx_a).await? {
                    break (tx_b.clone(), &b);
                }
                if confirmed(&node, &tx_b).await? {
                    break (tx_a.clone(), &a);
                }
                if Instant::now() > deadline {
                    return Err("neither spend confirmed within 90 s".into());
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            assert!(!confirmed(&node, &loser).await?, "exactly one confirms");
            loser_tab
                .wait_for_text(
                    &format!("{} .confirmations", history_row(&loser)),
                    "conflicted",
                )
                .await?;
            loser_tab.screenshot("devices-conflict.png").await?;
            // A reload keeps it: the mempool refuses it now, the wallet takes it back.
            loser_tab.goto(node.url()).await?;
            loser_tab.fill("#unlock-password", PASSWORD).await?;
            loser_tab.click("#unlock").await?;
            loser_tab
                .wait_for_text(
                    &format!("{} .confirmations", history_row(&loser)),
                    "conflicted",
                )
                .await?;
        }

        // Together again: the same balances.
        a.click("#sync-paused").await?;
        b.click("#sync-paused").await?;
        a.wait_for_text(&balance("BTC", "unconfirmed"), "0.00000000")
            .await?;
        b.wait_for_text(&balance("BTC", "unconfirmed"), "0.00000000")
            .await?;
        let settled = a.text(&balance("BTC", "confirmed")).await?;
        b.wait_for_text(&balance("BTC", "confirmed"), &settled)
            .await?;
        b.wait_for_text("#devices .state", "in sync").await?;

        // A label set while the third profile is on the mesh reaches B...
        let secret_label = "kept between Laptop and Phone";
        a.fill(
            &format!("{} .label-input", history_row(&faucet_tx)),
            secret_label,
        )
        .await?;
        a.click(&format!("{} .label-save", history_row(&faucet_tx)))
            .await?;
        b.wait_for_text(&format!("{} .label", history_row(&faucet_tx)), secret_label)
            .await?;
        // ...and nothing the third profile received holds it, or their names, in the clear,
        // though it took its share of the mesh's traffic.
        let (messages, bytes, holds_label) = c.received_contains(secret_label.as_bytes()).await?;
        assert!(!holds_label, "the third profile read the label");
        for name in ["Laptop", "Phone"] {
            let (_, _, holds_name) = c.received_contains(name.as_bytes()).await?;
            assert!(!holds_name, "the third profile read the name {name}");
        }
        // The recorder does see what is there: every link opens with a hello carrying the
        // network's magic bytes.
        let magic = bitmesh_core::Network::Test.params().magic;
        let (_, _, holds_magic) = c.received_contains(&magic).await?;
        assert!(holds_magic, "the recorder saw none of the mesh's bytes");
        println!("the third profile received {messages} messages ({bytes} bytes), none readable");

        // It saw their announcements go by and knows no device of theirs.
        c.wait_for_text("#devices-none", "No other device").await?;

        for tab in [a, b, c] {
            tab.close().await?;
        }
        node.stop().await
    })
    .await;
}
