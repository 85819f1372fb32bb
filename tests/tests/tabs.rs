//! Two tabs of one browser profile: only one drives the profile's store and identity (a Web
//! Lock); the second says so and offers to take over; taking over stops the first, which says
//! why, and the second carries on with the profile's identity.

use std::time::Duration;

use bitmesh_e2e::{within, Browser, Node, NodeOptions};

const TEST_TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test]
async fn a_second_tab_offers_to_take_over_and_the_first_stops() {
    within(TEST_TIMEOUT, async {
        let node = Node::start(NodeOptions::test_network()).await?;
        let browser = Browser::open().await?;
        browser.goto(node.url()).await?;
        browser.wait_for_neighbours(1).await?;
        let identity = browser
            .eval("return document.querySelector('#peer-id').title")
            .await?;

        let first = browser.open_tab().await?;
        browser.goto(node.url()).await?;
        browser
            .wait_for_text(
                "#storage-note",
                "Another tab of this browser already runs bitmesh",
            )
            .await?;
        let temporary = browser
            .eval("return document.querySelector('#peer-id').title")
            .await?;
        assert_ne!(
            temporary, identity,
            "the second tab runs with a temporary identity"
        );
        browser.screenshot("tabs-second.png").await?;

        browser.click("#take-over").await?;
        browser.wait_for_neighbours(1).await?;
        let taken = browser
            .eval("return document.querySelector('#peer-id').title")
            .await?;
        assert_eq!(
            taken, identity,
            "the tab that took over has the profile's identity"
        );
        let notes = browser.texts("#storage-note").await?;
        assert!(
            notes.is_empty(),
            "the tab that took over keeps its state: {notes:?}"
        );

        browser.switch_to(first).await?;
        browser
            .wait_for_text(
                "#storage-note",
                "Another tab took over bitmesh in this browser",
            )
            .await?;
        browser.wait_for_text("#neighbour-count", "0").await?;
        browser.screenshot("tabs-first-stopped.png").await?;
        browser.close().await?;
        node.stop().await
    })
    .await;
}
