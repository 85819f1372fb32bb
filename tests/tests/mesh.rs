//! The mesh between real browsers and the node: two Chromium profiles open the page a node
//! serves, register with its signaling server, and connect over WebRTC to each other and to the
//! node's own webrtc-rs peer; every handshake completes (each tab counts two neighbours, the
//! node two).

use std::time::Duration;

use bitmesh_e2e::{within, Browser, Node, NodeOptions};

const TEST_TIMEOUT: Duration = Duration::from_secs(180);

#[tokio::test]
async fn two_browsers_and_the_node_connect_through_its_signaling() {
    within(TEST_TIMEOUT, async {
        let node = Node::start(NodeOptions::test_network()).await?;
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

/// Tabs A and B meet through node N1's signaling; node N2 joins N1's server too. N1 stops, and
/// with it the only server A and B know. Tab C opens N2's page: it reaches N2 through N2's
/// server, learns A and B from N2, and connects to both with signals routed through the mesh.
#[tokio::test]
async fn a_third_tab_joins_through_the_mesh_after_the_signaling_server_stops() {
    within(TEST_TIMEOUT, async {
        let test = NodeOptions::test_network();
        let first_node = Node::start(test.clone()).await?;
        let a = Browser::open().await?;
        let b = Browser::open().await?;
        a.goto(first_node.url()).await?;
        b.goto(first_node.url()).await?;
        let second_node = Node::start(NodeOptions {
            join: Some(first_node.signal_url()),
            ..test
        })
        .await?;
        // A and B: each other, N1's peer and N2's.
        for tab in [&a, &b] {
            tab.wait_for_text("#neighbour-count", "3").await?;
        }
        first_node.stop().await?;
        for tab in [&a, &b] {
            tab.wait_for_text("#signaling-state", "connecting").await?;
        }

        let c = Browser::open().await?;
        c.goto(second_node.url()).await?;
        // C: N2's peer (through N2's server), then A and B (through the mesh).
        c.wait_for_text("#neighbour-count", "3").await?;
        let c_id = c.text("#peer-id").await?;
        for tab in [&a, &b] {
            tab.wait_for_text("#neighbours", &c_id).await?;
        }
        c.screenshot("mesh-joined-through-the-mesh.png").await?;
        for tab in [a, b, c] {
            tab.close().await?;
        }
        second_node.stop().await
    })
    .await;
}
