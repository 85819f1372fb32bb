//! Losing the server: the node that mined, ran the faucet and the only signaling server A and B
//! knew stops (a second node had joined it). A, B and a new profile D, who opens the second
//! node's page and reaches A and B through the mesh, keep gossiping orders: an ask from A and a
//! bid from B, both placed after the stop, reach the two others; D, with no wallet yet, sees
//! the book and is told that trading needs one. Screenshots under `target/e2e/server-loss-*`.

use std::time::Duration;

use bitmesh_e2e::wallet::{funded_tab, place_order};
use bitmesh_e2e::{within, Browser, Node, NodeOptions, STEP_TIMEOUT};

const TEST_TIMEOUT: Duration = Duration::from_secs(300);
const PASSWORD: &str = "correct horse battery";

#[tokio::test]
async fn orders_keep_spreading_through_the_mesh_after_the_server_stops() {
    within(TEST_TIMEOUT, async {
        let node = Node::start_with_funded_faucet(NodeOptions::mining_test_network()).await?;
        let a = funded_tab(&node, PASSWORD).await?;
        let b = funded_tab(&node, PASSWORD).await?;
        let second = Node::start(NodeOptions {
            join: Some(node.signal_url()),
            ..NodeOptions::test_network()
        })
        .await?;
        // A and B: each other and both nodes' peers. The second node holds the chain (the
        // asset's issuance names the market for D).
        for tab in [&a, &b] {
            tab.wait_for_text("#neighbour-count", "3").await?;
        }
        second
            .wait_for_height(node.height().await?, STEP_TIMEOUT)
            .await?;

        node.stop().await?;
        for tab in [&a, &b] {
            tab.wait_for_text("#signaling-state", "connecting").await?;
        }
        let d = Browser::open().await?;
        d.goto(second.url()).await?;
        // D: the second node's peer (through its server), A and B (through the mesh).
        d.wait_for_text("#neighbour-count", "3").await?;
        let d_id = d.text("#peer-id").await?;
        for tab in [&a, &b] {
            tab.wait_for_text("#neighbours", &d_id).await?;
        }

        place_order(&a, "sell", "0.00002", "25").await?;
        a.wait_for_text("#market-notice", "Order placed: sell 25.00 DEMO")
            .await?;
        b.wait_for_text("#asks .amount", "25.00").await?;
        d.wait_for_text("#asks .amount", "25.00").await?;

        place_order(&b, "buy", "0.00001", "7").await?;
        b.wait_for_text("#market-notice", "Order placed: buy 7.00 DEMO")
            .await?;
        a.wait_for_text("#bids .amount", "7.00").await?;
        d.wait_for_text("#bids .amount", "7.00").await?;
        assert_eq!(d.text("#market-select").await?, "DEMO / BTC");
        d.wait_for_text("#trade-locked", "Unlock a wallet to trade")
            .await?;
        for (tab, name) in [(&a, "a"), (&b, "b"), (&d, "d")] {
            tab.screenshot(&format!("server-loss-{name}.png")).await?;
        }

        for tab in [a, b, d] {
            tab.close().await?;
        }
        second.stop().await
    })
    .await;
}
