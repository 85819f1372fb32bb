//! A tab asks the node's faucet for coins through the mesh: the node (which mined to its own
//! wallet and issued its demo asset) is a neighbour of the tab with the faucet feature; the tab
//! sends a routed faucet request, shows the answer in words, and the node's API lists the
//! coins at the address. The same address again, and text that is not an address, are refused
//! with words.

use std::time::Duration;

use bitmesh_e2e::{within, Browser, Node, NodeOptions};
use fantoccini::Locator;

const TEST_TIMEOUT: Duration = Duration::from_secs(180);

/// BIP84's test mnemonic's first two receive addresses on bitmesh's test network.
const ADDRESSES: [&str; 2] = [
    "bcrt1q6rz28mcfaxtmd6v789l9rrlrusdprr9pz3cppk",
    "bcrt1qd7spv5q28348xl4myc8zmh983w5jx32cs707jh",
];

async fn ask(tab: &Browser, address: &str) -> bitmesh_e2e::Result<()> {
    let input = tab.client().find(Locator::Css("#faucet-address")).await?;
    input.clear().await?;
    input.send_keys(address).await?;
    tab.client()
        .find(Locator::Css("#faucet-ask"))
        .await?
        .click()
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_tab_gets_coins_from_the_nodes_faucet_through_the_mesh() {
    within(TEST_TIMEOUT, async {
        // A mining run funds the node's wallet and mines the asset's issuance; the node then
        // serves without mining, so the tab's chain stays small.
        let node = Node::start_with_funded_faucet(NodeOptions::test_network()).await?;
        let height = node.json("/healthz").await?["height"].as_u64().unwrap_or(0);

        let tab = Browser::open().await?;
        tab.goto(node.url()).await?;
        tab.wait_for_neighbours(1).await?;
        tab.wait_for_text("#tip-height", &height.to_string())
            .await?;

        ask(&tab, ADDRESSES[0]).await?;
        let paid = tab.wait_for_text("#faucet-result", "Paid").await?;
        assert!(
            paid.starts_with("Paid 0.10000000 BTC and 1000.00 DEMO"),
            "{paid}"
        );
        tab.screenshot("faucet-paid.png").await?;
        let coins = node
            .json(&format!("/api/address/{}/utxo", ADDRESSES[0]))
            .await?;
        let coins = coins.as_array().cloned().unwrap_or_default();
        let sats: u64 = coins.iter().filter_map(|coin| coin["value"].as_u64()).sum();
        assert_eq!(sats, 10_000_000 + 294, "{coins:?}");
        assert!(
            coins
                .iter()
                .any(|coin| coin["assets"][0]["amount"] == 100_000),
            "{coins:?}"
        );

        ask(&tab, ADDRESSES[0]).await?;
        let refused = tab
            .wait_for_text("#faucet-result", "this address was paid recently")
            .await?;
        assert!(refused.contains("ask again in"), "{refused}");
        ask(&tab, "bcrt1-not-an-address").await?;
        tab.wait_for_text("#faucet-result", "`bcrt1-not-an-address` is not an address")
            .await?;
        // Another address is paid: the refusals changed nothing.
        ask(&tab, ADDRESSES[1]).await?;
        tab.wait_for_text("#faucet-result", "Paid 0.10000000 BTC")
            .await?;
        tab.screenshot("faucet-refused-then-paid.png").await?;

        tab.close().await?;
        node.stop().await
    })
    .await;
}
