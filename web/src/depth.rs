//! What the market card draws above its book: the best prices and the spread between them in
//! words, and the depth chart (the amount open at each price or better, bids to the left of the
//! spread, asks to the right) as SVG geometry, with the prices at its two edges and its largest
//! depth written on it. Pure, so that it is tested natively; `market_card` only renders it.

use crate::app::format_units;
use crate::market::{price_text, Level, MarketBook};

/// The chart's drawing size (its SVG view box); the page scales it to the card's width.
pub const WIDTH: f64 = 640.0;
pub const HEIGHT: f64 = 150.0;
/// The plot inside it: room above for the depth label and below for the price labels.
const LEFT: f64 = 8.0;
const RIGHT: f64 = WIDTH - 8.0;
const TOP: f64 = 16.0;
/// The baseline (no depth).
pub const BASE: f64 = HEIGHT - 22.0;

/// The depth chart of one market.
#[derive(Debug, Clone, PartialEq)]
pub struct DepthChart {
    /// The bids' filled area as SVG polygon points (empty when there are none).
    pub bids: String,
    pub asks: String,
    /// The prices at the chart's two ends (the outermost levels are a margin inside them).
    pub low: String,
    pub high: String,
    /// The largest depth, at the top: "100.00 DEMO".
    pub most: String,
}

/// The best bid and ask and the spread between them, in words; None for an empty book.
pub fn spread(book: &MarketBook) -> Option<String> {
    let price = |level: &Level| price_text(level.price, book.decimals);
    match (book.bids.first(), book.asks.first()) {
        (None, None) => None,
        (Some(bid), None) => Some(format!("Best bid {} BTC · no asks", price(bid))),
        (None, Some(ask)) => Some(format!("Best ask {} BTC · no bids", price(ask))),
        (Some(bid), Some(ask)) if bid.price >= ask.price => Some(format!(
            "Best bid {} · best ask {} BTC: they cross, so some of those orders cannot trade \
             now (makers offline, or coins not here)",
            price(bid),
            price(ask)
        )),
        (Some(bid), Some(ask)) => {
            let gap = ask.price - bid.price;
            // Of the midpoint, in hundredths of a percent, rounded: 2·gap / (bid + ask) × 10⁴.
            let sum = u128::from(bid.price) + u128::from(ask.price);
            let basis_points = (u128::from(gap) * 40_000 + sum) / (2 * sum);
            Some(format!(
                "Best bid {} · best ask {} · spread {} BTC ({}.{:02} %)",
                price(bid),
                price(ask),
                price_text(gap, book.decimals),
                basis_points / 100,
                basis_points % 100
            ))
        }
    }
}

/// The chart of `book`'s levels; None for an empty book.
pub fn depth_chart(book: &MarketBook) -> Option<DepthChart> {
    let prices = book.bids.iter().chain(&book.asks).map(|level| level.price);
    let (low, high) = (prices.clone().min()?, prices.max()?);
    // A margin on either side, so that the outermost levels do not sit on the chart's edges; a
    // book of one price gets a tenth of it.
    let margin = match (high - low) / 20 {
        0 => (low / 10).max(1),
        margin => margin,
    };
    let (from, to) = (low.saturating_sub(margin), high.saturating_add(margin));
    let span = (to - from) as f64;
    let x = |price: u64| LEFT + (price - from) as f64 / span * (RIGHT - LEFT);
    // The deeper side's whole depth is the chart's height.
    let whole = |levels: &[Level]| {
        levels
            .iter()
            .map(|level| level.amount)
            .fold(0u64, u64::saturating_add)
    };
    let most = whole(&book.bids).max(whole(&book.asks)).max(1);
    let y = |depth: u64| BASE - depth as f64 / most as f64 * (BASE - TOP);
    // From the best price outwards: up a step at each level, then on to the chart's edge
    // (`edge`) and down to the baseline.
    let area = |levels: &[Level], edge: f64| -> String {
        let mut points = Vec::with_capacity(2 * levels.len() + 2);
        let mut depth = 0u64;
        for level in levels {
            points.push((x(level.price), y(depth)));
            depth = depth.saturating_add(level.amount);
            points.push((x(level.price), y(depth)));
        }
        if !levels.is_empty() {
            points.push((edge, y(depth)));
            points.push((edge, BASE));
        }
        points
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    Some(DepthChart {
        bids: area(&book.bids, LEFT),
        asks: area(&book.asks, RIGHT),
        low: price_text(from, book.decimals),
        high: price_text(to, book.decimals),
        most: format!("{} {}", format_units(most, book.decimals), book.name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitmesh_core::chain::assets::AssetId;

    /// DEMO (2 decimals): prices in satoshis per 10^8 base units, 10^9 = 0.00001 BTC per DEMO.
    fn book(bids: &[(u64, u64)], asks: &[(u64, u64)]) -> MarketBook {
        let levels = |levels: &[(u64, u64)]| {
            levels
                .iter()
                .map(|&(price, amount)| Level {
                    price,
                    price_text: price_text(price, 2),
                    amount,
                    amount_text: format_units(amount, 2),
                    orders: 1,
                    offline: 0,
                    unfunded: 0,
                })
                .collect()
        };
        MarketBook {
            asset: AssetId::from_issuing_outpoint(&bitcoin::OutPoint::null()),
            name: "DEMO".into(),
            decimals: 2,
            bids: levels(bids),
            asks: levels(asks),
        }
    }

    fn points(polygon: &str) -> Vec<(f64, f64)> {
        polygon
            .split(' ')
            .map(|point| {
                let (x, y) = point.split_once(',').expect("x,y");
                (x.parse().expect("x"), y.parse().expect("y"))
            })
            .collect()
    }

    #[test]
    fn the_spread_is_told_in_words_with_its_share_of_the_midpoint() {
        assert_eq!(spread(&book(&[], &[])), None);
        assert_eq!(
            spread(&book(&[(500_000_000, 1_000)], &[(1_000_000_000, 6_000)])).as_deref(),
            Some("Best bid 0.00000500 · best ask 0.00001000 · spread 0.00000500 BTC (66.67 %)")
        );
        assert_eq!(
            spread(&book(&[], &[(1_000_000_000, 6_000)])).as_deref(),
            Some("Best ask 0.00001000 BTC · no bids")
        );
        assert_eq!(
            spread(&book(&[(500_000_000, 1_000)], &[])).as_deref(),
            Some("Best bid 0.00000500 BTC · no asks")
        );
        // Orders of offline makers rest crossing: said so, not shown as a negative spread.
        let crossed = spread(&book(&[(500_000_000, 1_000)], &[(500_000_000, 1_000)]));
        assert!(crossed.expect("a line").contains("they cross"));
    }

    #[test]
    fn the_depth_chart_steps_out_from_the_best_prices_to_its_edges() {
        // Bids 10.00 at 0.000009 and 20.00 at 0.000008; asks 15.00 at 0.000011.
        let chart = depth_chart(&book(
            &[(900_000_000, 1_000), (800_000_000, 2_000)],
            &[(1_100_000_000, 1_500)],
        ))
        .expect("a chart");
        // The edges: a twentieth of the levels' span (0.000003) beyond the outermost ones.
        assert_eq!(chart.low, "0.00000785");
        assert_eq!(chart.high, "0.00001115");
        assert_eq!(chart.most, "30.00 DEMO");
        let (bids, asks) = (points(&chart.bids), points(&chart.asks));
        // Bids: from the best bid at the baseline, up 10.00, left to the next price, up to all
        // 30.00 (the top: the largest depth), on to the left edge and down.
        assert_eq!(bids.len(), 6);
        assert_eq!(bids[0].1, BASE);
        assert!(bids[2].0 < bids[1].0, "the next bid is to the left");
        assert_eq!(bids[3].1, TOP);
        assert_eq!(bids[4], (LEFT, TOP));
        assert_eq!(bids[5], (LEFT, BASE));
        // Asks: to the right of every bid, at half the largest depth, out to the right edge.
        assert_eq!(asks.len(), 4);
        assert!(asks[0].0 > bids[0].0);
        assert_eq!(asks[1].1, (BASE + TOP) / 2.0);
        assert_eq!(asks[3], (RIGHT, BASE));
        // The outermost levels stay off the edges.
        assert!(bids[3].0 > LEFT && asks[0].0 < RIGHT);
    }

    #[test]
    fn a_book_of_one_price_or_one_side_is_drawn_too() {
        let chart = depth_chart(&book(&[], &[(1_000_000_000, 10_000)])).expect("a chart");
        assert_eq!(chart.bids, "");
        let asks = points(&chart.asks);
        assert!(asks[0].0 > LEFT && asks[0].0 < RIGHT, "the level is inside");
        assert_eq!(asks[1].1, TOP);
        assert_eq!(
            (chart.low.as_str(), chart.high.as_str()),
            ("0.00000900", "0.00001100"),
            "a tenth of the price on either side"
        );
        assert_eq!(depth_chart(&book(&[], &[])), None);
        // The smallest price there is: the margin is still a price step.
        let tiny = depth_chart(&book(&[(1, 5)], &[])).expect("a chart");
        assert!(points(&tiny.bids)
            .iter()
            .all(|(x, y)| x.is_finite() && y.is_finite()));
    }
}
