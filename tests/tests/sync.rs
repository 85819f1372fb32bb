//! A fresh tab syncs a chain of a thousand blocks from the node without freezing the page, and
//! at what pace beside a native node syncing the same chain. Figures printed (`FIGURE …`, see
//! `docs/FIGURES.md`), none asserted: the worst long task (a PerformanceObserver, buffered, in
//! the page) while the tab synced, both sync rates, and the time from navigation to the first
//! screen that takes input. Asserted: both reach the node's tip, the same block.

use std::time::Duration;

use bitmesh_e2e::{within, Browser, Node, NodeOptions, STEP_TIMEOUT};

const TEST_TIMEOUT: Duration = Duration::from_secs(300);
/// The chain's length the figures are measured on.
const BLOCKS: u64 = 1_000;
/// Records each height `#tip-height` shows, with the page's clock, in `window.bitmeshHeights`.
const WATCH_HEIGHTS: &str = "window.bitmeshHeights = [];
    const record = () => {
        const shown = document.querySelector('#tip-height');
        const height = shown ? Number(shown.textContent) : 0;
        const heights = window.bitmeshHeights;
        if (heights.length === 0 || heights[heights.length - 1][1] !== height) {
            heights.push([performance.now(), height]);
        }
    };
    record();
    new MutationObserver(record)
        .observe(document.body, { subtree: true, childList: true, characterData: true });
    return true;";
/// The long tasks the page ran since it loaded (the browser keeps up to 200 for an observer
/// asking for buffered entries), as `[start, duration]` in the page's clock. An observer is
/// called only when there are entries; a page that ran none answers after a second.
const LONG_TASKS: &str = "const done = arguments[arguments.length - 1];
    const quiet = setTimeout(() => done([]), 1000);
    new PerformanceObserver((list, observer) => {
        clearTimeout(quiet);
        observer.disconnect();
        done(list.getEntries().map(task => [task.startTime, task.duration]));
    }).observe({ type: 'longtask', buffered: true });";

fn pairs(value: &serde_json::Value) -> Vec<(f64, f64)> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|pair| Some((pair.get(0)?.as_f64()?, pair.get(1)?.as_f64()?)))
        .collect()
}

#[tokio::test]
async fn a_fresh_tab_syncs_a_thousand_blocks_and_the_page_stays_responsive() {
    within(TEST_TIMEOUT, async {
        // The chain: mined as fast as one thread goes, then served by a node that mines no more.
        let data = tempfile::Builder::new().prefix("bitmesh-node-").tempdir()?;
        let options = NodeOptions {
            data_dir: Some(data.path().to_path_buf()),
            ..NodeOptions::test_network()
        };
        Node::mine_chain(&options, BLOCKS, TEST_TIMEOUT).await?;
        let source = Node::start(options).await?;
        let height = source.height().await?;
        let (_, tip) = source.get("/api/blocks/tip/hash").await?;

        // A native node with an empty store syncs it.
        let native = Node::start(NodeOptions {
            join: Some(source.signal_url()),
            ..NodeOptions::test_network()
        })
        .await?;
        let native_took = native.wait_for_height(height, STEP_TIMEOUT).await?;
        assert_eq!(native.get("/api/blocks/tip/hash").await?.1, tip);
        native.stop().await?;

        // A fresh tab syncs it.
        let tab = Browser::open().await?;
        tab.goto(source.url()).await?;
        tab.eval(WATCH_HEIGHTS).await?;
        tab.text("#create-wallet").await?;
        let interactive = tab
            .eval("return performance.getEntriesByName('bitmesh-interactive')[0].startTime")
            .await?;
        tab.wait_for_text("#tip-height", &height.to_string())
            .await?;
        let shown_tip = tab
            .eval("return document.querySelector('#tip-height').title")
            .await?;
        assert_eq!(shown_tip.as_str(), Some(tip.as_str()), "the tab's tip");
        let heights = pairs(&tab.eval("return window.bitmeshHeights").await?);
        let long_tasks = pairs(&tab.eval_async(LONG_TASKS).await?);
        tab.screenshot("sync-1000-blocks.png").await?;
        tab.close().await?;
        source.stop().await?;

        // The sync: from the first block above genesis the tab showed to the tip.
        let (first_at, first_height) = heights
            .iter()
            .copied()
            .find(|&(_, shown)| shown > 0.0)
            .ok_or("the tab never showed a block")?;
        let (done_at, _) = *heights.last().ok_or("no heights recorded")?;
        let tab_rate = (height as f64 - first_height) / ((done_at - first_at) / 1000.0);
        let native_rate = height as f64 / native_took.as_secs_f64();
        let during_sync: Vec<f64> = long_tasks
            .iter()
            .filter(|&&(start, duration)| start + duration >= first_at && start <= done_at)
            .map(|&(_, duration)| duration)
            .collect();
        let worst = during_sync.iter().copied().fold(0.0, f64::max);
        println!(
            "FIGURE sync of {height} blocks: tab {tab_rate:.0} blocks/s, native node {native_rate:.0} blocks/s ({:.2}x)",
            tab_rate / native_rate
        );
        println!(
            "FIGURE long tasks while the tab synced: {} (worst {worst:.0} ms; {} since the page loaded, worst {:.0} ms)",
            during_sync.len(),
            long_tasks.len(),
            long_tasks.iter().map(|&(_, duration)| duration).fold(0.0, f64::max)
        );
        println!(
            "FIGURE navigation to interactive (first visit, loopback): {:.0} ms",
            interactive.as_f64().ok_or("no interactive mark")?
        );
        Ok(())
    })
    .await;
}
