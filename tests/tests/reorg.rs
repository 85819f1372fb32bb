//! A reorganisation that takes a swap out of the chain for good, end to end. A rival node mines
//! a longer chain of its own first. Then the node of the test mines, funds two profiles from its
//! faucet, and A sells, B buys, and the node mines the swap. The rival then joins: its chain
//! has more work (every block of the test network carries the least), so the node and both
//! tabs reorganise onto it. The faucet's coins, and with them the swap's, never existed there,
//! so nothing can mine the swap again. Both tabs list the trade as undone, both wallets are
//! empty, and A's order, whose coins are gone, is cancelled and leaves both books.

use std::time::Duration;

use bitmesh_e2e::wallet::{balance, funded_tab, place_order, place_picked};
use bitmesh_e2e::{within, Browser, Node, NodeOptions, STEP_TIMEOUT};

const TEST_TIMEOUT: Duration = Duration::from_secs(600);
const PASSWORD: &str = "correct horse battery";
/// The rival chain's height: more than the test's node mines before the rival joins (a block
/// every two seconds, and at most 2 × STEP_TIMEOUT of waiting per step).
const RIVAL_HEIGHT: u64 = 400;

#[tokio::test]
async fn a_swap_a_reorganisation_drops_for_good_is_undone_in_both_tabs() {
    within(TEST_TIMEOUT, async {
        // The rival chain: mined as fast as one thread goes, kept in its own data directory.
        let rival_data = tempfile::Builder::new()
            .prefix("bitmesh-rival-")
            .tempdir()?;
        let rival_options = NodeOptions {
            data_dir: Some(rival_data.path().to_path_buf()),
            ..NodeOptions::test_network()
        };
        Node::mine_chain(&rival_options, RIVAL_HEIGHT, TEST_TIMEOUT).await?;

        // A sells 100.00 DEMO; B takes 40.00 of them; the node mines the swap.
        let node = Node::start_with_funded_faucet(NodeOptions::mining_test_network()).await?;
        let a = funded_tab(&node, PASSWORD).await?;
        let b = funded_tab(&node, PASSWORD).await?;
        a.wait_for_text("#neighbour-count", "2").await?;
        place_order(&a, "sell", "0.00001", "100").await?;
        a.wait_for_text("#my-orders .remaining", "100.00 DEMO")
            .await?;
        b.wait_for_text("#asks .amount", "100.00").await?;
        b.wait_for_text_without("#asks", "without coins").await?;
        b.click("#asks tr.pick").await?;
        place_picked(
            &b,
            "40",
            "You pay at most 0.00040000 BTC",
            "buy",
            "0.00001000",
        )
        .await?;
        b.wait_for_text(&balance("DEMO", "confirmed"), "1040.00")
            .await?;
        a.wait_for_text(&balance("DEMO", "confirmed"), "960.00")
            .await?;
        a.wait_for_text("#my-orders .remaining", "60.00 DEMO")
            .await?;
        let swap = b.text("#trades code.hash").await?;
        assert_eq!(a.text("#trades code.hash").await?, swap);
        Browser::screenshots("reorg", &a, &b, "1-mined").await?;

        // The rival joins, mining no more: the node and the tabs take its chain.
        let height = node.height().await?;
        assert!(
            height < RIVAL_HEIGHT,
            "the node's chain ({height} blocks) must be shorter than the rival's"
        );
        let rival = Node::start(NodeOptions {
            join: Some(node.signal_url()),
            ..rival_options
        })
        .await?;
        let took = node.wait_for_height(RIVAL_HEIGHT, STEP_TIMEOUT * 4).await?;
        println!("FIGURE the node took the rival's {RIVAL_HEIGHT}-block branch in {took:?}");
        // Neither in a block nor in the mempool: its inputs do not exist on this chain.
        let (status, body) = node.get(&format!("/api/tx/{swap}")).await?;
        assert_eq!(status, 404, "the node knows the swap still: {body}");

        // Both tabs list the trade as undone and say so instead of its fill, their coins gone.
        for tab in [&a, &b] {
            let trades = tab.wait_for_text("#trades", "undone").await?;
            assert!(trades.contains(&swap), "{trades}");
            tab.wait_for_text("#market-notice", "Trade undone: ")
                .await?;
            assert_eq!(tab.texts("#fill-alert").await?, Vec::<String>::new());
            tab.wait_for_text(&balance("BTC", "confirmed"), "0.00000000")
                .await?;
        }
        // A's order lost its coins with the chain: cancelled, it leaves both books.
        a.wait_for_text("#my-orders-empty", "None").await?;
        b.wait_for_text("#asks-empty", "None").await?;
        Browser::screenshots("reorg", &a, &b, "2-undone").await?;

        // The undone trade is kept: it is still listed after a reload.
        b.goto(node.url()).await?;
        b.fill("#unlock-password", PASSWORD).await?;
        b.click("#unlock").await?;
        let trades = b.wait_for_text("#trades", "undone").await?;
        assert!(trades.contains(&swap), "{trades}");

        a.close().await?;
        b.close().await?;
        rival.stop().await?;
        node.stop().await
    })
    .await;
}
