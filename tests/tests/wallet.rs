//! A person's wallet in the page, end to end: create a wallet (the words shown, three of them
//! confirmed, a password), get coins from the node's faucet through the mesh, see them
//! unconfirmed then confirmed in the node's next block, have bad sends refused with words,
//! send to another address (the node's API lists the payment), reload to a locked screen, be
//! refused a wrong password, unlock and find the same wallet; another profile restores the
//! same words and, once synced, shows the same addresses, history and balances.

use std::time::Duration;

use bitmesh_e2e::wallet::{balance, balance_row as row};
use bitmesh_e2e::{within, Browser, Node, NodeOptions, Result};
use serde_json::Value;

const TEST_TIMEOUT: Duration = Duration::from_secs(300);
const PASSWORD: &str = "correct horse battery";
/// Someone else's address (BIP84's test mnemonic, first receive address).
const STRANGER: &str = "bcrt1q6rz28mcfaxtmd6v789l9rrlrusdprr9pz3cppk";

/// Creates a wallet in `tab` the way a person does, a wrong word and differing passwords
/// refused first; returns its words.
async fn create_wallet(tab: &Browser) -> Result<Vec<String>> {
    let words = tab.start_new_wallet().await?;
    let asked = tab.asked_words().await?;
    assert_eq!(asked.len(), 3, "{asked:?}");

    // A wrong word is caught before anything is kept.
    for id in &asked {
        tab.fill(&format!("#{id}"), "zoo").await?;
    }
    tab.fill("#new-password", PASSWORD).await?;
    tab.fill("#new-password-again", PASSWORD).await?;
    tab.click("#create-confirm").await?;
    tab.wait_for_text("#wallet-problem", "is not the one shown")
        .await?;
    // What was typed stays where it was typed, to be corrected: the problem line appearing
    // once rebuilt the form, emptying some fields and moving a word into a password field.
    assert_eq!(
        tab.values(&["#new-password", "#new-password-again"])
            .await?,
        [PASSWORD, PASSWORD]
    );

    for id in &asked {
        let position: usize = id.trim_start_matches("confirm-").parse()?;
        tab.fill(&format!("#{id}"), &words[position - 1]).await?;
    }
    tab.fill("#new-password", PASSWORD).await?;
    tab.fill("#new-password-again", "something else").await?;
    tab.click("#create-confirm").await?;
    tab.wait_for_text("#wallet-problem", "The two passwords differ")
        .await?;
    tab.confirm_new_wallet(&words, PASSWORD).await?;
    Ok(words)
}

#[tokio::test]
async fn a_person_creates_a_wallet_gets_coins_sends_and_unlocks_after_a_reload() {
    within(TEST_TIMEOUT, async {
        // A fast mining run funds the node's faucet; the node then mines a block every two
        // seconds, so the tab's chain grows at a steady pace.
        let node = Node::start_with_funded_faucet(NodeOptions::mining_test_network()).await?;
        let tab = Browser::open().await?;
        tab.goto(node.url()).await?;
        tab.wait_for_neighbours(1).await?;
        tab.wait_for_text("#wallet", "keeps no wallet").await?;

        let words = create_wallet(&tab).await?;
        let receive = tab.text("#receive-address").await?;
        assert!(receive.starts_with("bcrt1q"), "{receive}");
        let qr = tab
            .eval("return document.querySelector('#receive-qr svg') !== null")
            .await?;
        assert_eq!(qr, Value::Bool(true), "a QR code is drawn");
        tab.wait_for_text("#history-empty", "No transactions yet")
            .await?;
        tab.screenshot("wallet-created.png").await?;

        tab.ask_faucet_for_my_wallet().await?;
        // 0.1 BTC, and the 294 sats of the output that carries the DEMO units: unconfirmed
        // until the node's next block, which may come at any moment, so the row is awaited and
        // then either column may hold them.
        tab.wait_for_text(&row("BTC"), "0.10000294").await?;
        tab.wait_for_text(&row("DEMO"), "1000.00").await?;
        let shown = [
            tab.text(&balance("BTC", "unconfirmed")).await?,
            tab.text(&balance("BTC", "confirmed")).await?,
        ];
        assert!(shown.contains(&"0.10000294".to_owned()), "{shown:?}");
        // The address was paid: the page shows a fresh one.
        let next = tab.text("#receive-address").await?;
        assert_ne!(next, receive, "the receive address moves on once paid");

        // Bad sends are refused in words and change nothing.
        tab.send("nope", "0.01").await?;
        tab.wait_for_text("#wallet-notice", "\"nope\" is not an address")
            .await?;
        // The form keeps what was typed, to be corrected.
        assert_eq!(
            tab.values(&["#send-to", "#send-amount"]).await?,
            ["nope", "0.01"]
        );
        tab.send(STRANGER, "1").await?;
        tab.wait_for_text("#wallet-notice", "insufficient funds")
            .await?;
        tab.send(STRANGER, "1.000000001").await?;
        tab.wait_for_text("#wallet-notice", "at most 8 decimal places")
            .await?;
        let row_text = tab.text(&row("BTC")).await?;
        assert!(row_text.contains("0.10000294"), "{row_text}");
        // A refused send keeps what was typed, to be corrected.
        assert_eq!(
            tab.values(&["#send-to", "#send-amount"]).await?,
            [STRANGER, "1.000000001"]
        );
        tab.screenshot("wallet-refused.png").await?;

        // The node's next block confirms the faucet's payment.
        tab.wait_for_text(&balance("BTC", "confirmed"), "0.10000294")
            .await?;
        tab.wait_for_text("#history", "confirmation").await?;

        // A payment to someone else: the node learns it through the mesh.
        tab.send(STRANGER, "0.01").await?;
        tab.wait_for_text("#spend-review-text", "Send 0.01000000 BTC to")
            .await?;
        let sent = tab.confirm_spend().await?;
        assert!(sent.starts_with("Sent 0.01000000 BTC"), "{sent}");
        assert!(
            tab.texts("#spend-review").await?.is_empty(),
            "review closed"
        );
        // The form starts afresh: a second click cannot send the same again unnoticed. The
        // fee rate stays.
        assert_eq!(
            tab.values(&["#send-to", "#send-amount", "#send-fee"])
                .await?,
            ["", "", "2"]
        );
        let txid = sent.rsplit(' ').next().unwrap_or_default().to_owned();
        node.wait_for_json(
            &format!("/api/address/{STRANGER}/utxo"),
            "the tab's payment in the node's mempool",
            |coins| {
                coins.as_array().is_some_and(|coins| {
                    coins
                        .iter()
                        .any(|coin| coin["txid"] == txid.as_str() && coin["value"] == 1_000_000)
                })
            },
        )
        .await?;
        tab.wait_for_text("#history", "-0.0100").await?;
        // The change confirms in one of the node's next blocks.
        tab.wait_for_text(&balance("BTC", "unconfirmed"), "0.00000000")
            .await?;
        let confirmed = tab.text(&balance("BTC", "confirmed")).await?;
        assert_ne!(confirmed, "0.10000294", "the payment and its fee left");
        tab.screenshot("wallet-sent.png").await?;

        // A reload: locked; a wrong password is refused; the right one opens the same wallet,
        // its chain restored from IndexedDB.
        tab.goto(node.url()).await?;
        tab.text("#unlock-password").await?;
        tab.fill("#unlock-password", "not my password").await?;
        tab.click("#unlock").await?;
        tab.wait_for_text("#wallet-notice", "Wrong password: the wallet stays locked")
            .await?;
        tab.screenshot("wallet-wrong-password.png").await?;
        tab.fill("#unlock-password", PASSWORD).await?;
        tab.click("#unlock").await?;
        tab.wait_for_text("#wallet-notice", "Unlocked").await?;
        assert_eq!(tab.text("#receive-address").await?, next);
        tab.wait_for_text(&balance("DEMO", "confirmed"), "1000.00")
            .await?;
        // The same confirmed balance, from the chain kept in IndexedDB.
        tab.wait_for_text(&balance("BTC", "confirmed"), &confirmed)
            .await?;
        tab.screenshot("wallet-unlocked-after-reload.png").await?;

        // Another profile restores the same words: after its sync it shows the same wallet,
        // the paid address passed over, the payment in its history, the same balances.
        let restored = Browser::open().await?;
        restored.goto(node.url()).await?;
        restored.restore_wallet(&words, PASSWORD).await?;
        restored
            .wait_for_text(&balance("BTC", "confirmed"), &confirmed)
            .await?;
        restored
            .wait_for_text(&balance("DEMO", "confirmed"), "1000.00")
            .await?;
        restored.wait_for_text("#history", "-0.0100").await?;
        // Both devices online: each shows an address of its own, neither the paid one.
        restored.wait_for_text("#devices .state", "in sync").await?;
        let shown = tab.receive_addresses_beside(&restored).await?;
        assert_ne!(shown.0, shown.1, "two devices, two addresses");
        assert!(shown.0 != receive && shown.1 != receive, "not the paid one");
        restored.screenshot("wallet-restored-elsewhere.png").await?;
        restored.close().await?;

        tab.close().await?;
        node.stop().await
    })
    .await;
}
