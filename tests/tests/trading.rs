//! Trading between two browsers, end to end: the node mines and runs the faucet; profiles A
//! and B create wallets and get coins and DEMO units through the mesh; A places a sell order; B
//! sees it in its book and buys part of it; the swap settles in one transaction the node mines;
//! both see the fill, the new balances, and the remainder in the book; an order beyond B's
//! balance is refused in words; B's explorer shows the swap's outputs and assets; B's resting
//! bid, balances, trade in its history and in My trades come back after a reload; while B is locked, A's sell into B's bid
//! is answered at once that B cannot sign, and B's bid shows offline; A cancels the rest.
//! Screenshots of both at each step under `target/e2e/trading-*.png`.

use std::time::{Duration, Instant};

use bitmesh_e2e::wallet::{balance, funded_tab, place_order, place_picked};
use bitmesh_e2e::{within, Browser, Node, NodeOptions};
use fantoccini::key::Key;
use fantoccini::Locator;

const TEST_TIMEOUT: Duration = Duration::from_secs(600);
const PASSWORD: &str = "correct horse battery";
/// Orders placed for the visibility figure.
const ORDERS_MEASURED: usize = 100;
/// Records in `window.bitmeshSeen` when an ask appears in the book.
const WATCH_ASKS: &str = "window.bitmeshSeen = []; let shown = false;
    new MutationObserver(() => {
        const row = document.querySelector('#asks .amount');
        if (row && !shown) { window.bitmeshSeen.push(Date.now()); }
        shown = row !== null;
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
    return true;";
/// Cancels the one of the tab's orders that has 10.00 DEMO left.
const CANCEL_TEN: &str = "const row = [...document.querySelectorAll('#my-orders tbody tr')]
        .find((row) => row.querySelector('.remaining').textContent === '10.00 DEMO');
    row.querySelector('.cancel').click();
    return true;";
/// Counts the orders the profile's IndexedDB keeps.
const KEPT_ORDERS: &str = "const done = arguments[arguments.length - 1];
    const open = indexedDB.open('bitmesh-test');
    open.onsuccess = () => {
        const count = open.result.transaction('book').objectStore('book').count();
        count.onsuccess = () => done(count.result);
        count.onerror = () => done(-1);
    };
    open.onerror = () => done(-2);";

#[tokio::test]
async fn two_browsers_trade_an_asset_through_the_mesh_and_settle_on_chain() {
    within(TEST_TIMEOUT, async {
        let node = Node::start_with_funded_faucet(NodeOptions::mining_test_network())
        .await?;
        let a = funded_tab(&node, PASSWORD).await?;
        let b = funded_tab(&node, PASSWORD).await?;
        a.wait_for_text("#neighbour-count", "2").await?;
        a.wait_for_text("#market-select", "DEMO / BTC").await?;
        Browser::screenshots("trading", &a, &b, "1-funded").await?;

        // A sells 100.00 DEMO at 0.00001 BTC each; B's book shows it.
        place_order(&a, "sell", "0.00001", "100").await?;
        a.wait_for_text("#market-notice", "Order placed: sell 100.00 DEMO")
            .await?;
        let placed = Instant::now();
        // The form starts afresh for the next order: its amount emptied, side and price kept.
        assert_eq!(
            a.values(&["#order-side", "#order-price", "#order-amount"])
                .await?,
            ["sell", "0.00001", ""]
        );
        a.wait_for_text("#my-orders .remaining", "100.00 DEMO")
            .await?;
        b.wait_for_text("#asks .amount", "100.00").await?;
        let seen = placed.elapsed();
        println!(
            "A's order was in B's book {} ms after A saw it placed",
            seen.as_millis()
        );
        assert_eq!(b.text("#asks .price").await?, "0.00001000");
        // The payment that made the ask's coin reaches B too (it travels apart from the
        // order): until then B's book says the order has no coins, and B would pass it over.
        b.wait_for_text_without("#asks", "without coins").await?;
        Browser::screenshots("trading", &a, &b, "2-order-placed").await?;

        // An order beyond B's balance is refused and changes nothing.
        place_order(&b, "sell", "0.00001", "5000").await?;
        b.wait_for_text(
            "#market-notice",
            "Insufficient funds: the order needs 5000.00 DEMO",
        )
        .await?;
        b.wait_for_text("#my-orders-empty", "None").await?;
        // A refused order keeps what was typed, to be corrected.
        assert_eq!(b.values(&["#order-amount"]).await?, ["5000"]);

        // B buys 40.00 of them: one swap, settled by A, relayed to the node. B clicks the
        // ask in its book, which fills in the form to buy at its price, and the form tells
        // what the order comes to before B places it.
        b.click("#asks tr.pick").await?;
        place_picked(&b, "40", "You pay at most 0.00040000 BTC", "buy", "0.00001000").await?;
        b.wait_for_text(
            "#fill-alert",
            "Trade settled: Bought 40.00 DEMO for 0.00040000 BTC",
        )
        .await?;
        a.wait_for_text(
            "#fill-alert",
            "Your order was filled: Sold 40.00 DEMO for 0.00040000 BTC",
        )
        .await?;
        a.wait_for_text("#my-orders .remaining", "60.00 DEMO")
            .await?;
        b.wait_for_text("#asks .amount", "60.00").await?;
        a.wait_for_text("#trades", "as maker").await?;
        b.wait_for_text("#trades", "as taker").await?;
        Browser::screenshots("trading", &a, &b, "3-filled").await?;

        // The node mines the swap: both wallets' balances follow.
        b.wait_for_text(&balance("DEMO", "confirmed"), "1040.00")
            .await?;
        a.wait_for_text(&balance("DEMO", "confirmed"), "960.00")
            .await?;
        // A's BTC: the price, less the 620-sat fee of the payment to itself that made its
        // order's 100.00-DEMO coin (the other 900.00 DEMO stayed free).
        a.wait_for_text(&balance("BTC", "confirmed"), "0.10039674")
            .await?;
        b.wait_for_text("#history", "trade").await?;
        Browser::screenshots("trading", &a, &b, "4-mined").await?;

        // B's explorer shows the swap: mined, its outputs and the DEMO units they carry.
        let swap = b.text("#trades code.hash").await?;
        b.fill("#explore-query", &swap).await?;
        b.click("#explore").await?;
        b.wait_for_text("#tx-place", "in block").await?;
        b.wait_for_text("#tx-outputs", "40.00 DEMO").await?;
        b.click("#recent-blocks button").await?;
        b.wait_for_text("#explored", "transaction").await?;

        // B bids (nothing to take: it rests), then reloads: locked; the orders, the balances
        // and the trade come back from IndexedDB.
        place_order(&b, "buy", "0.000005", "10").await?;
        b.wait_for_text("#market-notice", "Order placed: buy 10.00 DEMO")
            .await?;
        b.wait_for_text("#my-orders .remaining", "10.00 DEMO")
            .await?;
        a.wait_for_text("#bids .amount", "10.00").await?;
        b.goto(node.url()).await?;
        b.text("#unlock-password").await?;
        let kept = b.eval_async(KEPT_ORDERS).await?;
        assert_eq!(
            kept.as_u64(),
            Some(2),
            "A's ask and B's bid are kept: {kept}"
        );

        // While B is locked, A sells into B's bid (with DEMO its resting ask does not hold):
        // B cannot sign and says so at once, so A's coins are free again and B's bid is
        // skipped as offline, without waiting a minute; A's sell is placed again, skips B's
        // bid and rests. A cancels it.
        // A picks B's bid from the keyboard: the level's row takes the focus, and Enter fills
        // in the form to sell at its price.
        b.wait_for_neighbours(2).await?;
        a.client()
            .find(Locator::Css("#bids tr.pick"))
            .await?
            .send_keys(&Key::Enter.to_string())
            .await?;
        place_picked(&a, "10", "You receive at least 0.00005000 BTC", "sell", "0.00000500").await?;
        a.wait_for_text("#market-notice", "The maker's wallet is locked")
            .await?;
        a.wait_for_text("#market-notice", "placed again: Order placed: sell 10.00 DEMO")
            .await?;
        a.wait_for_text("#bids .offline", "1 maker offline").await?;
        assert_eq!(a.text("#bids .amount").await?, "10.00", "B's bid is not taken");
        a.wait_for_text("#asks", "0.00000500").await?;
        Browser::screenshots("trading", &a, &b, "5-maker-locked").await?;
        a.eval(CANCEL_TEN).await?;
        a.wait_for_text("#market-notice", "Order cancelled").await?;
        a.wait_for_text_without("#asks", "0.00000500").await?;

        b.fill("#unlock-password", PASSWORD).await?;
        b.click("#unlock").await?;
        b.wait_for_text("#my-orders .remaining", "10.00 DEMO")
            .await?;
        b.wait_for_text(&balance("DEMO", "confirmed"), "1040.00")
            .await?;
        b.wait_for_text("#history", "trade").await?;
        // The desk's trades were kept: My trades lists the swap again.
        let trades = b
            .wait_for_text("#trades", "Bought 40.00 DEMO for 0.00040000 BTC")
            .await?;
        assert!(trades.contains("as taker"), "{trades}");
        assert!(trades.contains(&swap), "{trades}");
        Browser::screenshots("trading", &a, &b, "6-reloaded").await?;

        // A cancels the rest: gone from both books.
        a.click("#my-orders .cancel").await?;
        a.wait_for_text("#market-notice", "Order cancelled").await?;
        a.wait_for_text("#my-orders-empty", "None").await?;
        b.wait_for_text("#asks-empty", "None").await?;
        Browser::screenshots("trading", &a, &b, "7-cancelled").await?;

        // Figure: how soon an order placed in A shows in B's book, over 100 orders (placed,
        // seen, cancelled, seen gone). Both clocks are the machine's.
        b.eval(WATCH_ASKS).await?;
        let mut placed_at = Vec::new();
        for _ in 0..ORDERS_MEASURED {
            a.fill("#order-price", "0.00001").await?;
            a.fill("#order-amount", "10").await?;
            let at = a.eval("const at = Date.now(); document.querySelector('#place-order').click(); return at").await?;
            placed_at.push(at.as_f64().unwrap_or_default());
            b.wait_for_text("#asks .amount", "10.00").await?;
            a.click("#my-orders .cancel").await?;
            b.wait_for_text("#asks-empty", "None").await?;
        }
        let seen_at = b.eval("return window.bitmeshSeen").await?;
        let seen_at: Vec<f64> = seen_at
            .as_array()
            .map(|times| times.iter().filter_map(|time| time.as_f64()).collect())
            .unwrap_or_default();
        assert_eq!(seen_at.len(), ORDERS_MEASURED, "B saw each order once");
        let mut latencies: Vec<f64> = seen_at
            .iter()
            .zip(&placed_at)
            .map(|(seen, placed)| seen - placed)
            .collect();
        latencies.sort_by(f64::total_cmp);
        let at = |quantile: f64| latencies[((latencies.len() - 1) as f64 * quantile).round() as usize];
        println!(
            "FIGURE order placed in A visible in B over {ORDERS_MEASURED} orders: p50 {} ms, p99 {} ms, max {} ms",
            at(0.5),
            at(0.99),
            at(1.0)
        );

        a.close().await?;
        b.close().await?;
        node.stop().await
    })
    .await;
}
