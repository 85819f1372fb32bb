//! The mesh between real browsers and the node: two Chromium profiles open the page a node
//! serves, register with its signaling server, and connect over WebRTC to each other and to the
//! node's own webrtc-rs peer; every handshake completes (each tab counts two neighbours, the
//! node two).

use std::time::Duration;

use bitmesh_core::Network;
use bitmesh_e2e::{within, Browser, Node, NodeOptions};

const TEST_TIMEOUT: Duration = Duration::from_secs(180);

#[tokio::test]
async fn two_browsers_and_the_node_connect_through_its_signaling() {
    within(TEST_TIMEOUT, async {
        let node = Node::start(NodeOptions {
            network: Network::Test,
            ..NodeOptions::default()
        })
        .await?;
        let first = Browser::open().await?;
        let second = Browser::open().await?;
        first.goto(node.url()).await?;
        second.goto(node.url()).await?;
        for browser in [&first, &second] {
            browser
                .wait_for_text("#signaling-state", "connected")
                .await?;
        }
        // Each tab: the node's peer and the other tab.
        for browser in [&first, &second] {
            let count = browser.wait_for_text("#neighbour-count", "2").await?;
            assert_eq!(count, "2");
        }
        let ids = [
            first.text("#peer-id").await?,
            second.text("#peer-id").await?,
        ];
        assert_ne!(ids[0], ids[1]);
        // Each tab lists the other among its neighbours.
        assert!(first.text("#neighbours").await?.contains(&ids[1]));
        assert!(second.text("#neighbours").await?.contains(&ids[0]));
        first.screenshot("mesh-two-tabs.png").await?;
        first.close().await?;
        second.close().await?;
        node.stop().await
    })
    .await;
}
