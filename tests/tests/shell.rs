//! The app shell in a real browser: the page a node serves renders, and the genesis hash that
//! bitmesh-core computes inside the tab equals the one it computes natively.

use std::time::Duration;

use bitmesh_core::Network;
use bitmesh_e2e::{within, Browser, Node, NodeOptions};

const TEST_TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test]
async fn the_page_shows_the_genesis_hash_computed_in_wasm() {
    within(TEST_TIMEOUT, async {
        let node = Node::start(NodeOptions::default()).await?;
        let browser = Browser::open().await?;
        browser.goto(node.url()).await?;

        let shown = browser.text("#genesis-hash").await?;
        assert_eq!(shown, Network::Local.genesis_hash().to_string());
        assert_eq!(browser.text("#network-name").await?, "local network");
        assert!(browser.text("#build-version").await?.starts_with(env!("CARGO_PKG_VERSION")));
        browser.screenshot("shell-desktop.png").await?;

        // Readable on a phone: nothing wider than the screen.
        browser.resize(390, 844).await?;
        let overflow = browser
            .eval("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
            .await?;
        assert_eq!(overflow.as_i64(), Some(0), "the page scrolls sideways on a phone");
        browser.screenshot("shell-phone.png").await?;

        browser.close().await?;
        node.stop().await
    })
    .await;
}

#[tokio::test]
async fn the_test_network_page_shows_its_own_genesis() {
    within(TEST_TIMEOUT, async {
        let node = Node::start(NodeOptions::test_network()).await?;
        let browser = Browser::open().await?;
        // The node's URL names its network; the page reads it from there.
        assert!(node.url().ends_with("?network=test"), "{}", node.url());
        browser.goto(node.url()).await?;
        let shown = browser
            .wait_for_text("#genesis-hash", &Network::Test.genesis_hash().to_string())
            .await?;
        assert_eq!(shown, Network::Test.genesis_hash().to_string());
        assert_eq!(browser.text("#network-name").await?, "test network");

        let base = node.url().split('?').next().unwrap_or_default();
        browser.goto(&format!("{base}?network=mainnet")).await?;
        let refusal = browser.wait_for_text("[role=alert]", "mainnet").await?;
        assert!(refusal.contains("unknown bitmesh network"), "{refusal}");

        browser.close().await?;
        node.stop().await
    })
    .await;
}

/// The tab's identity is kept in the profile's IndexedDB: a reload comes back as the same peer.
#[tokio::test]
async fn a_reload_keeps_the_tabs_identity() {
    within(TEST_TIMEOUT, async {
        let node = Node::start(NodeOptions::test_network()).await?;
        let browser = Browser::open().await?;
        browser.goto(node.url()).await?;
        browser
            .wait_for_text("#signaling-state", "connected")
            .await?;
        let before = browser.text("#peer-id").await?;
        assert_eq!(before.len(), 16, "{before}");
        browser.goto(node.url()).await?;
        browser
            .wait_for_text("#signaling-state", "connected")
            .await?;
        assert_eq!(browser.text("#peer-id").await?, before);
        let note = browser
            .eval("return document.querySelector('#storage-note') === null")
            .await?;
        assert_eq!(
            note.as_bool(),
            Some(true),
            "the identity is kept without a warning"
        );
        browser.close().await?;
        node.stop().await
    })
    .await;
}
