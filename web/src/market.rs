//! The page's market: what each thing a person asks of it does (place a limit order, cancel
//! one), and what the views show (each market's book by price level, the depth, this wallet's
//! open orders and trades). Runs, and is tested, natively too.
//!
//! Prices are typed and shown in BTC per whole unit of the asset; the core counts them in
//! satoshis per 10^8 base units (`market::order::PRICE_SCALE`). Converting is exact or refused.

use std::collections::BTreeSet;

use bitcoin::{OutPoint, Transaction, Txid};
use bitmesh_core::chain::assets::AssetId;
use bitmesh_core::chain::state::Chain;
use bitmesh_core::chain::utxo::Coin;
use bitmesh_core::market::book::{Book, OrderView};
use bitmesh_core::market::desk::{Desk, OrderRequest, Outgoing, PlaceError, Placed, Retake, Trade};
use bitmesh_core::market::order::{
    order_sats, OrderError, OrderId, Side, SignedOrder, SignedUpdate, MIN_ORDER_SATS,
};
use bitmesh_core::wallet::session::{parse_units, PayError, Wallet};
use bitmesh_core::wallet::tracker::Unit;

use crate::app::format_units;
use crate::wallet::{unit_name, Notice};

/// How long an order rests in the book unless filled or cancelled.
pub const ORDER_LIFETIME_MILLIS: u64 = 24 * 3_600_000;
/// The fee rate of the swaps an order takes.
pub const TAKER_SAT_PER_VB: u64 = 2;
/// Price levels shown per side.
pub const LEVELS_SHOWN: usize = 20;
/// Trades shown, newest first.
pub const TRADES_SHOWN: usize = 50;
/// Dropped transactions a tab remembers for its desk while it cannot judge them (a
/// reorganisation drops a few; a flood keeps the latest).
pub const MAX_DROPS_TO_JUDGE: usize = 10_000;

/// Transactions the node reported dropped that the desk has not judged yet. It judges them
/// once the wallet is unlocked and has caught up with the chain: a locked tab has no desk, and
/// a wallet still catching up cannot prove an order's old coins, which would cancel the order.
#[derive(Debug, Default)]
pub struct Drops(Vec<Txid>);

impl Drops {
    /// Remembers `dropped`, the latest [`MAX_DROPS_TO_JUDGE`] at most.
    pub fn push(&mut self, dropped: &[Txid]) {
        self.0.extend_from_slice(dropped);
        let excess = self.0.len().saturating_sub(MAX_DROPS_TO_JUDGE);
        self.0.drain(..excess);
    }

    /// The drops to judge now if the desk is `ready`, all of them once; none while it is not.
    /// What the mempool has again (`in_mempool`) is no longer dropped.
    pub fn take(&mut self, ready: bool, in_mempool: impl Fn(&Txid) -> bool) -> Vec<Txid> {
        if !ready {
            return Vec::new();
        }
        let mut dropped = std::mem::take(&mut self.0);
        dropped.retain(|txid| !in_mempool(txid));
        dropped
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What a person asks of the market.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarketCommand {
    /// A limit order: `price` in BTC per whole unit, `amount` in whole units (decimals allowed).
    Place {
        market: AssetId,
        side: Side,
        price: String,
        amount: String,
    },
    Cancel(OrderId),
}

/// What a command asks the driver to do besides showing its notice.
#[derive(Debug, Default)]
pub struct MarketEffects {
    /// An order to submit to the book and announce.
    pub order: Option<SignedOrder>,
    /// The wallet's payment to itself that makes the order's funding coin: to submit to the
    /// mempool first (the order is withdrawn if it is refused).
    pub funding_tx: Option<Transaction>,
    /// An update (a cancel) to submit to the book and announce.
    pub update: Option<SignedUpdate>,
    /// Swap proposals to route to makers.
    pub proposals: Vec<Outgoing>,
}

/// What the market views show.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MarketView {
    pub markets: Vec<MarketBook>,
    pub my_orders: Vec<MyOrder>,
    pub trades: Vec<TradeRow>,
    /// Swaps this tab proposed that wait for their makers.
    pub pending: usize,
    /// Swaps given up unanswered, whose makers may still complete them, newest first.
    pub unanswered: Vec<TradeRow>,
}

/// One market (an asset against BTC) and its book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketBook {
    pub asset: AssetId,
    pub name: String,
    pub decimals: u8,
    /// Best first.
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
}

/// The open orders at one price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Level {
    /// Satoshis per 10^8 base units.
    pub price: u64,
    pub price_text: String,
    /// Base units open at this price.
    pub amount: u64,
    pub amount_text: String,
    pub orders: usize,
    /// Orders whose makers did not answer a swap (skipped when matching).
    pub offline: usize,
    /// Orders whose funding coins this tab cannot find: spent (their fill update not here
    /// yet), not here yet, or never made (passed over when matching).
    pub unfunded: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MyOrder {
    pub id: OrderId,
    pub market: String,
    pub side: Side,
    pub price_text: String,
    pub amount_text: String,
    pub remaining_text: String,
    /// Its coins are not in the tab's chain or mempool (spent by a trade not settled yet, or
    /// the payment that made them dropped): takers pass it over.
    pub unfunded: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradeRow {
    pub txid: String,
    /// "Bought 100.00 DEMO for 0.00100000 BTC".
    pub text: String,
    pub as_maker: bool,
    /// Its transaction left the chain for good: nothing was traded.
    pub undone: bool,
}

/// Carries out `command` with the unlocked `wallet`'s desk on `book`; `coin` looks outpoints up
/// in the tab's chain and mempool. Refusals are notices, and change nothing.
#[allow(clippy::too_many_arguments)]
pub fn run(
    command: MarketCommand,
    desk: &mut Desk,
    wallet: &mut Wallet,
    book: &Book,
    chain: &Chain,
    coin: impl Fn(&OutPoint) -> Option<Coin>,
    now_millis: u64,
    aux_rand: &[u8; 32],
) -> (Notice, MarketEffects) {
    let mut effects = MarketEffects::default();
    let notice = match command {
        MarketCommand::Place {
            market,
            side,
            price,
            amount,
        } => {
            let (_, decimals) = unit_name(chain, Unit::Asset(market));
            let request = parse_price(&price, decimals).and_then(|price| {
                let amount =
                    parse_units(&amount, decimals).map_err(|err| format!("Amount: {err}"))?;
                Ok(OrderRequest {
                    market,
                    side,
                    price,
                    amount,
                    lifetime_millis: ORDER_LIFETIME_MILLIS,
                    sat_per_vb: TAKER_SAT_PER_VB,
                })
            });
            match request.and_then(|request| {
                desk.place(wallet, book, coin, request, now_millis, aux_rand)
                    .map_err(|err| place_refusal(&err, chain))
                    .map(|placed| (request, placed))
            }) {
                Err(reason) => Notice::Refused(reason),
                Ok((request, placed)) => {
                    Notice::Done(placed_effects(&request, placed, chain, &mut effects))
                }
            }
        }
        MarketCommand::Cancel(id) => match desk.cancel(wallet, book, &id, now_millis, aux_rand) {
            Ok(update) => {
                effects.update = Some(update);
                Notice::Done("Order cancelled: its coins are free again".into())
            }
            Err(err) => Notice::Refused(format!("Cannot cancel: {err}")),
        },
    };
    (notice, effects)
}

/// Places again, with the unlocked `wallet`'s desk, the part of an order a failed swap was
/// taking ([`Desk::take_retakes`]); says what became of it ("placed again: …" or "not placed
/// again: …").
#[allow(clippy::too_many_arguments)]
pub fn run_again(
    retake: Retake,
    desk: &mut Desk,
    wallet: &mut Wallet,
    book: &Book,
    chain: &Chain,
    coin: impl Fn(&OutPoint) -> Option<Coin>,
    now_millis: u64,
    aux_rand: &[u8; 32],
) -> (String, MarketEffects) {
    let mut effects = MarketEffects::default();
    let request = retake.request;
    let said = match desk.place_again(wallet, book, coin, retake, now_millis, aux_rand) {
        Ok(placed) => format!(
            "placed again: {}",
            placed_effects(&request, placed, chain, &mut effects)
        ),
        Err(err) => format!("not placed again: {}", place_refusal(&err, chain)),
    };
    (said, effects)
}

/// Takes, with the unlocked `wallet`'s desk, what its resting orders passed over once it can
/// be taken ([`Desk::take_passed_over`]): for each order placed again, what became of it in
/// words, and what the driver is to do (the cancel of the resting order first).
#[allow(clippy::too_many_arguments)]
pub fn run_passed_over(
    desk: &mut Desk,
    wallet: &mut Wallet,
    book: &Book,
    chain: &Chain,
    coin: impl Fn(&OutPoint) -> Option<Coin>,
    now_millis: u64,
    aux_rand: &[u8; 32],
) -> Vec<(String, MarketEffects)> {
    desk.take_passed_over(wallet, book, coin, now_millis, aux_rand)
        .into_iter()
        .map(|again| {
            let mut effects = MarketEffects {
                update: Some(again.cancel),
                ..MarketEffects::default()
            };
            let said = placed_effects(&again.request, again.placed, chain, &mut effects);
            (said, effects)
        })
        .collect()
}

/// What placing `request` did, in words; what the driver is to do goes into `effects`.
fn placed_effects(
    request: &OrderRequest,
    placed: Placed,
    chain: &Chain,
    effects: &mut MarketEffects,
) -> String {
    let (name, decimals) = unit_name(chain, Unit::Asset(request.market));
    let units = |units| format!("{} {name}", format_units(units, decimals));
    let mut parts = Vec::new();
    if placed.taking > 0 {
        parts.push(format!(
            "Taking {} from the book: waiting for the makers",
            units(placed.taking)
        ));
    }
    match placed.passed_over {
        0 => {}
        1 => parts.push("1 crossing order passed over: its coins are spent or not here yet".into()),
        n => parts.push(format!(
            "{n} crossing orders passed over: their coins are spent or not here yet"
        )),
    }
    if let Some(order) = &placed.resting {
        parts.push(format!(
            "Order placed: {} {} at {} BTC",
            if request.side == Side::Bid {
                "buy"
            } else {
                "sell"
            },
            units(order.order.amount),
            price_text(request.price, decimals)
        ));
    }
    if let Some(err) = &placed.unplaced {
        parts.push(format!(
            "the rest is not placed: {}",
            place_refusal(err, chain)
        ));
    }
    effects.order = placed.resting;
    effects.funding_tx = placed.funding_tx;
    effects.proposals = placed.proposals;
    parts.join("; ")
}

/// Why an order is refused, in words, amounts in the unit's own decimals.
fn place_refusal(err: &PlaceError, chain: &Chain) -> String {
    match err {
        PlaceError::Funding(PayError::OrderUnfunded {
            unit,
            needed,
            available,
        }) => {
            let (name, decimals) = unit_name(chain, *unit);
            format!(
                "Insufficient funds: the order needs {} {name}, this wallet can put up {} {name}",
                format_units(*needed, decimals),
                format_units(*available, decimals)
            )
        }
        other => {
            let mut text = other.to_string();
            if let Some(first) = text.get_mut(..1) {
                first.make_ascii_uppercase();
            }
            text
        }
    }
}

/// Reads a price typed in BTC per whole unit of an asset of `decimals` as satoshis per 10^8
/// base units.
pub fn parse_price(text: &str, decimals: u8) -> Result<u64, String> {
    let sats_per_unit = parse_units(text, 8).map_err(|err| format!("Price: {err}"))?;
    if sats_per_unit == 0 {
        return Err("Price: it must be above zero".into());
    }
    let price = if decimals <= 8 {
        10u64
            .checked_pow(u32::from(8 - decimals))
            .and_then(|scale| sats_per_unit.checked_mul(scale))
    } else {
        let scale = 10u64.pow(u32::from(decimals - 8));
        (sats_per_unit % scale == 0).then(|| sats_per_unit / scale)
    };
    price.ok_or_else(|| format!("Price: {} cannot be priced that finely", text.trim()))
}

/// A price (satoshis per 10^8 base units) in BTC per whole unit of an asset of `decimals`,
/// with at least eight decimals and no more than it needs.
pub fn price_text(price: u64, decimals: u8) -> String {
    // BTC per unit = price × 10^decimals / 10^16.
    let scaled = u128::from(price) * 10u128.pow(u32::from(decimals));
    let scale = 10u128.pow(16);
    let fraction = format!("{:016}", scaled % scale);
    let fraction = fraction.trim_end_matches('0');
    let shown = if fraction.len() < 8 {
        format!("{fraction:0<8}")
    } else {
        fraction.to_owned()
    };
    format!("{}.{shown}", scaled / scale)
}

/// What an order of `amount` at `price` (both as typed, in whole units and BTC per unit) is
/// worth at its limit, for the form to show as a person types: what a buy pays at most (asks it
/// crosses may be cheaper) or a sell receives at least; or why it cannot be placed (the rules
/// the order itself is checked by). None until both are typed.
pub fn order_total(
    side: Side,
    price: &str,
    amount: &str,
    decimals: u8,
) -> Option<Result<String, String>> {
    if price.trim().is_empty() || amount.trim().is_empty() {
        return None;
    }
    let total = order_value(price, amount, decimals).map(|sats| {
        let btc = format_units(sats, 8);
        match side {
            Side::Bid => format!("You pay at most {btc} BTC, fees aside"),
            Side::Ask => format!("You receive at least {btc} BTC, fees aside"),
        }
    });
    Some(total)
}

/// The satoshis `amount` at `price` come to, exactly, or why no order can be made of them.
fn order_value(price: &str, amount: &str, decimals: u8) -> Result<u64, String> {
    let price = parse_price(price, decimals)?;
    let amount = parse_units(amount, decimals).map_err(|err| format!("Amount: {err}"))?;
    if amount == 0 {
        return Err("Amount: it must be above zero".into());
    }
    // The order's own rules (`Order::check`), in the form's words.
    order_sats(amount, price).map_err(|err| match err {
        OrderError::TooLarge => "Worth more than 21 million BTC: a smaller amount".into(),
        OrderError::OverPrecise { .. } => {
            "Not a whole number of satoshis at this price: change the amount or the price a little"
                .into()
        }
        OrderError::TooSmall { sats } => format!(
            "Worth {} BTC: an order is worth {} BTC at least",
            format_units(sats, 8),
            format_units(MIN_ORDER_SATS, 8)
        ),
        other => other.to_string(),
    })
}

/// What the market views show: every market the book or the wallet knows, and, with a trader
/// (an unlocked wallet and its desk), its open orders and trades. Without one the book is still
/// shown: a person can look before creating or unlocking a wallet. `now_millis` tells which
/// makers matching skips now, `coin` (the tab's chain and mempool) which orders it passes over.
pub fn view(
    book: &Book,
    trader: Option<(&Desk, &Wallet)>,
    chain: &Chain,
    coin: impl Fn(&OutPoint) -> Option<Coin>,
    now_millis: u64,
) -> MarketView {
    let mut assets: BTreeSet<AssetId> = book
        .orders()
        .map(|view| view.order.order().market)
        .collect();
    if let Some((_, wallet)) = trader {
        assets.extend(wallet.balances().keys().filter_map(|unit| match unit {
            Unit::Asset(asset) => Some(*asset),
            Unit::Btc => None,
        }));
    }
    let markets = assets
        .into_iter()
        .map(|asset| {
            let (name, decimals) = unit_name(chain, Unit::Asset(asset));
            let levels = |side| levels(book, &book.open(&asset, side), decimals, &coin, now_millis);
            MarketBook {
                asset,
                bids: levels(Side::Bid),
                asks: levels(Side::Ask),
                name,
                decimals,
            }
        })
        .collect();
    let Some((desk, _)) = trader else {
        return MarketView {
            markets,
            ..MarketView::default()
        };
    };
    let my_orders = desk
        .my_orders(book)
        .into_iter()
        .map(|view| {
            let order = view.order.order();
            let (name, decimals) = unit_name(chain, Unit::Asset(order.market));
            MyOrder {
                id: view.order.id(),
                market: name.clone(),
                side: order.side,
                price_text: price_text(order.price, decimals),
                amount_text: format!("{} {name}", format_units(order.amount, decimals)),
                remaining_text: format!("{} {name}", format_units(view.remaining(), decimals)),
                unfunded: !view.is_funded(&coin),
            }
        })
        .collect();
    let trades = desk
        .trades()
        .rev()
        .take(TRADES_SHOWN)
        .map(|trade| trade_row(trade, chain))
        .collect();
    MarketView {
        markets,
        my_orders,
        trades,
        pending: desk.pending_takes(),
        unanswered: desk
            .unanswered()
            .rev()
            .map(|take| trade_row(&take.trade, chain))
            .collect(),
    }
}

/// A trade in words: "Bought 100.00 DEMO for 0.00100000 BTC".
pub fn trade_row(trade: &Trade, chain: &Chain) -> TradeRow {
    let (name, decimals) = unit_name(chain, Unit::Asset(trade.market));
    TradeRow {
        txid: trade.txid.to_string(),
        text: format!(
            "{} {} {name} for {} BTC",
            if trade.bought { "Bought" } else { "Sold" },
            format_units(trade.quantity, decimals),
            format_units(trade.sats, 8)
        ),
        as_maker: trade.as_maker,
        undone: trade.undone,
    }
}

/// Open orders (in priority order) grouped by price, best first, at most [`LEVELS_SHOWN`].
fn levels(
    book: &Book,
    open: &[OrderView],
    decimals: u8,
    coin: &impl Fn(&OutPoint) -> Option<Coin>,
    now_millis: u64,
) -> Vec<Level> {
    let mut levels: Vec<Level> = Vec::new();
    for view in open {
        let order = view.order.order();
        let offline = usize::from(!book.is_reachable(&order.maker, now_millis));
        match levels.last_mut() {
            Some(level) if level.price == order.price => {
                level.amount += view.remaining();
                level.orders += 1;
                level.offline += offline;
                level.unfunded += usize::from(!view.is_funded(coin));
            }
            _ => {
                if levels.len() == LEVELS_SHOWN {
                    break;
                }
                levels.push(Level {
                    price: order.price,
                    price_text: price_text(order.price, decimals),
                    amount: view.remaining(),
                    amount_text: String::new(),
                    orders: 1,
                    offline,
                    unfunded: usize::from(!view.is_funded(coin)),
                });
            }
        }
    }
    for level in &mut levels {
        level.amount_text = format_units(level.amount, decimals);
    }
    levels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_wait_until_the_desk_can_judge_them_and_a_flood_keeps_the_latest() {
        use bitcoin::hashes::Hash as _;
        let txid = |n: u32| {
            let mut bytes = [0; 32];
            bytes[..4].copy_from_slice(&n.to_le_bytes());
            Txid::from_byte_array(bytes)
        };
        let mut drops = Drops::default();
        drops.push(&[txid(1), txid(2)]);
        assert!(
            drops.take(false, |_| false).is_empty(),
            "locked or catching up"
        );
        assert!(!drops.is_empty(), "kept for later");
        drops.push(&[txid(3)]);
        let back = txid(2);
        assert_eq!(
            drops.take(true, |txid| *txid == back),
            [txid(1), txid(3)],
            "the mempool has the second again"
        );
        assert!(drops.is_empty());
        assert!(drops.take(true, |_| false).is_empty(), "judged once");

        let flood: Vec<Txid> = (0..MAX_DROPS_TO_JUDGE as u32 + 5).map(txid).collect();
        drops.push(&flood);
        let kept = drops.take(true, |_| false);
        assert_eq!(kept.len(), MAX_DROPS_TO_JUDGE);
        assert_eq!(kept[0], txid(5));
    }

    #[test]
    fn prices_convert_exactly_or_are_refused() {
        // DEMO has 2 decimals: 0.00001 BTC per DEMO is 1,000 sats per 100 base units.
        assert_eq!(parse_price("0.00001", 2), Ok(1_000 * 1_000_000));
        assert_eq!(price_text(1_000 * 1_000_000, 2), "0.00001000");
        assert_eq!(parse_price("1", 8), Ok(100_000_000));
        assert_eq!(price_text(100_000_000, 8), "1.00000000");
        // A price finer than a satoshi per 10^8 base units is refused.
        assert!(parse_price("0.00000001", 10)
            .unwrap_err()
            .contains("finely"));
        assert_eq!(parse_price("0.00000100", 10), Ok(1));
        assert_eq!(price_text(1, 10), "0.00000100");
        assert!(parse_price("0", 2).unwrap_err().contains("above zero"));
        assert!(parse_price("abc", 2).unwrap_err().starts_with("Price:"));
        // A book price from elsewhere that is finer than 8 decimals still shows exactly.
        assert_eq!(price_text(1, 2), "0.00000000000001");
    }

    #[test]
    fn the_order_form_tells_what_an_order_is_worth_or_why_it_cannot_be_placed() {
        // DEMO has 2 decimals.
        assert_eq!(order_total(Side::Bid, "", "40", 2), None);
        assert_eq!(order_total(Side::Bid, "0.00001", " ", 2), None);
        assert_eq!(
            order_total(Side::Bid, "0.00001", "40", 2),
            Some(Ok("You pay at most 0.00040000 BTC, fees aside".into()))
        );
        assert_eq!(
            order_total(Side::Ask, "0.00001", "40.5", 2),
            Some(Ok("You receive at least 0.00040500 BTC, fees aside".into()))
        );
        let refused = |price, amount| {
            order_total(Side::Bid, price, amount, 2)
                .unwrap()
                .unwrap_err()
        };
        assert!(refused("0.00001", "4.001").starts_with("Amount:"));
        assert!(refused("0", "40").starts_with("Price:"));
        assert!(refused("0.00001", "0").contains("above zero"));
        // 0.01 DEMO at 0.00000101 BTC is 1.01 satoshis.
        assert!(refused("0.00000101", "0.01").contains("whole number of satoshis"));
        // 1 DEMO at 0.00000999 BTC is 999 satoshis, under the 1,000 an order needs.
        assert_eq!(
            refused("0.00000999", "1"),
            "Worth 0.00000999 BTC: an order is worth 0.00001000 BTC at least"
        );
        assert!(refused("1000", "30000").contains("21 million"));
    }

    #[test]
    fn offline_makers_and_orders_without_coins_show_in_levels_and_in_my_orders() {
        use bitcoin::hashes::Hash as _;
        use bitcoin::secp256k1::Secp256k1;
        use bitmesh_core::market::book::BookLimits;
        use bitmesh_core::testkit::{test_order, TestKey};
        use bitmesh_core::wallet::metadata::DeviceId;

        const NOW: u64 = 1_800_000_000_000;
        let (silent, other) = (TestKey::new(2), TestKey::new(3));
        let mut book = Book::new(BookLimits::default(), 1);
        for (maker, nonce) in [(&silent, 1), (&other, 2)] {
            let coin = OutPoint::new(bitcoin::Txid::from_byte_array([nonce; 32]), 0);
            let order = test_order(maker, NOW, nonce.into(), coin).verify(&Secp256k1::new());
            book.insert_order(order.expect("a valid order"))
                .expect("room");
        }
        book.mark_unreachable(silent.xonly(), NOW + 600_000);
        let chain = Chain::new(bitmesh_core::Network::Test);
        // The tab finds the coin of one order (each order's funding txid is its nonce's byte,
        // repeated; its maker owns it), or of none.
        let scripts = [silent.p2wpkh(), other.p2wpkh()];
        let found = |nonce: Option<u8>| {
            let scripts = scripts.clone();
            move |outpoint: &OutPoint| {
                let byte = outpoint.txid.as_byte_array()[0];
                (Some(byte) == nonce).then(|| Coin {
                    output: bitcoin::TxOut {
                        value: bitcoin::Amount::from_sat(10_000),
                        script_pubkey: scripts[usize::from(byte) - 1].clone(),
                    },
                    height: 1,
                    is_coinbase: false,
                    assets: Default::default(),
                })
            }
        };
        let asks = |now_millis, nonce| {
            let view = view(&book, None, &chain, found(nonce), now_millis);
            let level = &view.markets[0].asks[0];
            (level.orders, level.offline, level.unfunded)
        };
        assert_eq!(asks(NOW + 599_999, Some(2)), (2, 1, 1));
        assert_eq!(asks(NOW + 600_000, Some(2)), (2, 0, 1));
        assert_eq!(asks(NOW + 600_000, Some(1)), (2, 0, 1));
        assert_eq!(asks(NOW + 600_000, None), (2, 0, 2));

        // The maker of the first order sees it among its own, and whether it has its coins.
        let desk = Desk::new(silent.keypair(), DeviceId([2; 16]));
        let wallet = test_wallet();
        let mine = |nonce| {
            let view = view(&book, Some((&desk, &wallet)), &chain, found(nonce), NOW);
            let [order] = &view.my_orders[..] else {
                panic!("one order of its own: {:?}", view.my_orders);
            };
            order.unfunded
        };
        assert!(!mine(Some(1)));
        assert!(mine(Some(2)));
    }

    fn test_wallet() -> Wallet {
        use bitmesh_core::wallet::metadata::Metadata;
        use bitmesh_core::wallet::mnemonic;
        let words = mnemonic::from_entropy(&[2; 16]).expect("16 bytes");
        Wallet::new(
            &words.to_seed_normalized(""),
            bitmesh_core::Network::Test,
            Metadata::new(),
        )
        .expect("a wallet")
    }

    #[test]
    fn swaps_given_up_unanswered_are_listed_newest_first() {
        use bitcoin::hashes::Hash as _;
        use bitmesh_core::market::book::BookLimits;
        use bitmesh_core::testkit::{desk_record_sample, TestKey};
        use bitmesh_core::wallet::metadata::DeviceId;

        let mut record = desk_record_sample();
        let older = record.unanswered[0].clone();
        let mut newer = older.clone();
        newer.trade.txid = Txid::from_byte_array([11; 32]);
        newer.trade.bought = false;
        record.unanswered.push(newer.clone());
        let mut desk = Desk::new(TestKey::new(2).keypair(), DeviceId([2; 16]));
        desk.restore(record);
        let book = Book::new(BookLimits::default(), 1);
        let chain = Chain::new(bitmesh_core::Network::Test);
        let wallet = test_wallet();
        let view = view(&book, Some((&desk, &wallet)), &chain, |_| None, 0);
        let listed: Vec<(String, bool)> = view
            .unanswered
            .iter()
            .map(|row| (row.txid.clone(), row.text.starts_with("Bought")))
            .collect();
        assert_eq!(
            listed,
            [
                (newer.trade.txid.to_string(), false),
                (older.trade.txid.to_string(), true)
            ]
        );
        // Not among the trades: the maker has not completed them.
        assert!(view
            .trades
            .iter()
            .all(|row| listed.iter().all(|(txid, _)| *txid != row.txid)));
    }

    #[test]
    fn the_notice_says_how_many_crossing_orders_were_passed_over() {
        let chain = Chain::new(bitmesh_core::Network::Test);
        let request = OrderRequest {
            market: bitmesh_core::chain::assets::AssetId::from_issuing_outpoint(&OutPoint::null()),
            side: Side::Bid,
            price: 1_000,
            amount: 100,
            lifetime_millis: ORDER_LIFETIME_MILLIS,
            sat_per_vb: TAKER_SAT_PER_VB,
        };
        let said = |passed_over| {
            let placed = Placed {
                passed_over,
                ..Placed::default()
            };
            placed_effects(&request, placed, &chain, &mut MarketEffects::default())
        };
        assert_eq!(said(0), "");
        assert_eq!(
            said(1),
            "1 crossing order passed over: its coins are spent or not here yet"
        );
        assert_eq!(
            said(3),
            "3 crossing orders passed over: their coins are spent or not here yet"
        );
    }
}
