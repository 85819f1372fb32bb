//! The market's views: pick a market, its book (bids and asks by price level, with makers that
//! did not answer marked offline) and depth chart, a limit order form, this wallet's open orders
//! with cancel, its trades, and each fill as it happens. They render what the driver reports and
//! turn what a person does into [`MarketCommand`]s; the desk's refusals come back as the notice.

use bitmesh_core::chain::assets::AssetId;
use bitmesh_core::market::order::Side;
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::market::{Level, MarketBook, MarketCommand, MarketView};
use crate::wallet::Notice;

#[derive(Properties, PartialEq)]
pub struct MarketCardProps {
    pub view: MarketView,
    pub notice: Option<Notice>,
    pub last_fill: Option<String>,
    /// Whether a wallet is unlocked (orders are paid from it).
    pub unlocked: bool,
    pub command: Callback<MarketCommand>,
}

#[function_component]
pub fn MarketCard(props: &MarketCardProps) -> Html {
    let chosen = use_state(|| None::<AssetId>);
    let markets = &props.view.markets;
    // The market chosen, or the first one known.
    let market = chosen
        .and_then(|asset| markets.iter().find(|market| market.asset == asset))
        .or_else(|| markets.first());
    let onchange = {
        let (chosen, assets) = (
            chosen.clone(),
            markets
                .iter()
                .map(|market| market.asset)
                .collect::<Vec<_>>(),
        );
        Callback::from(move |event: Event| {
            let select: HtmlSelectElement = event.target_unchecked_into();
            let picked = usize::try_from(select.selected_index())
                .ok()
                .and_then(|index| assets.get(index));
            if let Some(asset) = picked {
                chosen.set(Some(*asset));
            }
        })
    };
    let notice = props.notice.as_ref().map(|notice| match notice {
        Notice::Done(text) | Notice::Psbt(text) => {
            html! { <p id="market-notice" class="ok" role="status">{ text.clone() }</p> }
        }
        Notice::Refused(text) => {
            html! { <p id="market-notice" class="refused" role="alert">{ text.clone() }</p> }
        }
    });
    let body = if let Some(market) = market {
        html! {
            <>
                <label>{ "Market " }
                    <select id="market-select" {onchange}>
                        { for markets.iter().map(|m| html! {
                            <option key={m.asset.to_string()} selected={m.asset == market.asset}>
                                { format!("{} / BTC", m.name) }
                            </option>
                        }) }
                    </select>
                </label>
                <Book market={market.clone()} />
                if props.unlocked {
                    <OrderForm market={market.clone()} command={props.command.clone()} />
                }
            </>
        }
    } else {
        html! {
            <p class="note" id="no-market">
                { "No market yet: one opens when this wallet holds an asset (issue one, or ask the faucet) or an order for one reaches this tab." }
            </p>
        }
    };
    html! {
        <section class="card market" id="market" aria-live="polite">
            <h2>{ "Market" }</h2>
            { for props.last_fill.as_ref().map(|fill| html! {
                <p id="fill-alert" class="ok" role="status">{ fill.clone() }</p>
            }) }
            { body }
            if !props.unlocked {
                <p class="note" id="trade-locked">{ "Unlock a wallet to trade: orders are paid from it." }</p>
            }
            { for notice }
            if props.unlocked {
                <MyOrders view={props.view.clone()} command={props.command.clone()} />
            }
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct BookProps {
    market: MarketBook,
}

/// Bids and asks by price level, best first, and the depth chart.
#[function_component]
fn Book(props: &BookProps) -> Html {
    let market = &props.market;
    let side = |id: &'static str, title: &'static str, levels: &[Level]| {
        html! {
            <div class="book-side">
                <h3>{ title }</h3>
                if levels.is_empty() {
                    <p class="note" id={format!("{id}-empty")}>{ "None" }</p>
                } else {
                    <table id={id}>
                        <thead><tr><th>{ "Price (BTC)" }</th><th>{ format!("Amount ({})", market.name) }</th><th>{ "Orders" }</th></tr></thead>
                        <tbody>
                            { for levels.iter().map(|level| html! {
                                <tr key={level.price} data-price={level.price.to_string()}>
                                    <td class="price">{ level.price_text.clone() }</td>
                                    <td class="amount">{ level.amount_text.clone() }</td>
                                    <td class="orders">
                                        { level.orders }
                                        if level.offline > 0 {
                                            <span class="offline" title="Its maker did not answer a trade, or could not sign one; skipped when matching">{ format!(" · {} maker offline", level.offline) }</span>
                                        }
                                        if level.unfunded > 0 {
                                            <span class="unfunded" title="Its coins are spent (by a trade not settled here yet) or not in this tab yet; passed over when matching">{ format!(" · {} without coins", level.unfunded) }</span>
                                        }
                                    </td>
                                </tr>
                            }) }
                        </tbody>
                    </table>
                }
            </div>
        }
    };
    html! {
        <>
            <div class="book">
                { side("asks", "Asks (sell orders)", &market.asks) }
                { side("bids", "Bids (buy orders)", &market.bids) }
            </div>
            <Depth market={market.clone()} />
        </>
    }
}

/// The depth chart: the amount open at each price or better, bids left, asks right.
#[function_component]
fn Depth(props: &BookProps) -> Html {
    const WIDTH: f64 = 320.0;
    const HEIGHT: f64 = 120.0;
    let market = &props.market;
    let prices = market
        .bids
        .iter()
        .chain(&market.asks)
        .map(|level| level.price);
    let (Some(low), Some(high)) = (prices.clone().min(), prices.max()) else {
        return html! {};
    };
    let cumulative = |levels: &[Level]| -> Vec<(u64, u64)> {
        let mut total = 0u64;
        levels
            .iter()
            .map(|level| {
                total = total.saturating_add(level.amount);
                (level.price, total)
            })
            .collect()
    };
    let (bids, asks) = (cumulative(&market.bids), cumulative(&market.asks));
    let most = bids
        .iter()
        .chain(&asks)
        .map(|(_, total)| *total)
        .max()
        .unwrap_or(1)
        .max(1);
    let span = (high - low).max(1) as f64;
    let x = |price: u64| 10.0 + (price - low) as f64 / span * (WIDTH - 20.0);
    let y = |total: u64| HEIGHT - total as f64 / most as f64 * (HEIGHT - 10.0);
    // A step line from the best price outwards, on to the chart's edge (`end`).
    let steps = |points: &[(u64, u64)], end: f64| -> String {
        let mut path = Vec::new();
        let mut previous = 0u64;
        for (price, total) in points {
            path.push(format!("{:.1},{:.1}", x(*price), y(previous)));
            path.push(format!("{:.1},{:.1}", x(*price), y(*total)));
            previous = *total;
        }
        if !points.is_empty() {
            path.push(format!("{end:.1},{:.1}", y(previous)));
        }
        path.join(" ")
    };
    html! {
        <svg id="depth" class="depth" viewBox={format!("0 0 {WIDTH} {HEIGHT}")} role="img"
            aria-label={format!("Depth of the {} market: {} bid levels, {} ask levels", market.name, bids.len(), asks.len())}>
            <polyline class="bids" points={steps(&bids, 0.0)} />
            <polyline class="asks" points={steps(&asks, WIDTH)} />
        </svg>
    }
}

#[derive(Properties, PartialEq)]
struct OrderFormProps {
    market: MarketBook,
    command: Callback<MarketCommand>,
}

/// A limit order: buy or sell, price in BTC per unit, amount in units.
#[function_component]
fn OrderForm(props: &OrderFormProps) -> Html {
    let (side, price, amount) = (use_node_ref(), use_node_ref(), use_node_ref());
    let onsubmit = {
        let (side, price, amount) = (side.clone(), price.clone(), amount.clone());
        let (market, command) = (props.market.asset, props.command.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let side = match side
                .cast::<HtmlSelectElement>()
                .map(|select| select.value())
            {
                Some(value) if value == "sell" => Side::Ask,
                _ => Side::Bid,
            };
            let text = |node: &NodeRef| {
                node.cast::<HtmlInputElement>()
                    .map(|input| input.value())
                    .unwrap_or_default()
            };
            command.emit(MarketCommand::Place {
                market,
                side,
                price: text(&price),
                amount: text(&amount),
            });
        })
    };
    html! {
        <form class="order-form" {onsubmit}>
            <h3>{ "Place a limit order" }</h3>
            <label>{ "Side " }
                <select id="order-side" ref={side}>
                    <option value="buy">{ format!("Buy {}", props.market.name) }</option>
                    <option value="sell">{ format!("Sell {}", props.market.name) }</option>
                </select>
            </label>
            <label>{ format!("Price (BTC per {})", props.market.name) }
                <input id="order-price" ref={price} inputmode="decimal" autocomplete="off" placeholder="0.00001000" />
            </label>
            <label>{ format!("Amount ({})", props.market.name) }
                <input id="order-amount" ref={amount} inputmode="decimal" autocomplete="off" />
            </label>
            <button id="place-order" type="submit">{ "Place order" }</button>
            <p class="note">{ "An order that crosses the book trades at once at the makers' prices; the rest waits in the book for 24 hours. Each trade settles in one transaction: both sides or nothing." }</p>
        </form>
    }
}

#[derive(Properties, PartialEq)]
struct MyOrdersProps {
    view: MarketView,
    command: Callback<MarketCommand>,
}

/// This wallet's open orders with cancel, and its trades.
#[function_component]
fn MyOrders(props: &MyOrdersProps) -> Html {
    let view = &props.view;
    html! {
        <>
            <h3>{ "My open orders" }</h3>
            if view.my_orders.is_empty() {
                <p class="note" id="my-orders-empty">{ "None." }</p>
            } else {
                <table id="my-orders">
                    <thead><tr><th>{ "Side" }</th><th>{ "Price (BTC)" }</th><th>{ "Amount" }</th><th>{ "Left" }</th><th></th></tr></thead>
                    <tbody>
                        { for view.my_orders.iter().map(|order| {
                            let (id, command) = (order.id, props.command.clone());
                            let cancel = Callback::from(move |_| command.emit(MarketCommand::Cancel(id)));
                            html! {
                                <tr key={order.id.to_string()}>
                                    <td class="side">{ if order.side == Side::Bid { "buy" } else { "sell" } }</td>
                                    <td class="price">{ order.price_text.clone() }</td>
                                    <td class="amount">{ order.amount_text.clone() }</td>
                                    <td class="remaining">
                                        { order.remaining_text.clone() }
                                        if order.unfunded {
                                            <span class="unfunded" title="Its coins are spent (by a trade not settled yet) or no longer in this tab's mempool: takers pass it over">{ " · without coins" }</span>
                                        }
                                    </td>
                                    <td><button class="cancel secondary" onclick={cancel}>{ "Cancel" }</button></td>
                                </tr>
                            }
                        }) }
                    </tbody>
                </table>
            }
            if view.pending > 0 {
                <p class="note" id="pending-takes">{ format!("{} trade(s) waiting for their makers", view.pending) }</p>
            }
            <h3>{ "My trades" }</h3>
            if view.trades.is_empty() {
                <p class="note" id="trades-empty">{ "No trades yet." }</p>
            } else {
                <ul id="trades" class="history">
                    { for view.trades.iter().map(|trade| html! {
                        <li key={trade.txid.clone()}>
                            { trade.text.clone() }
                            { if trade.as_maker { " · as maker" } else { " · as taker" } }
                            <br /><code class="hash">{ trade.txid.clone() }</code>
                        </li>
                    }) }
                </ul>
            }
        </>
    }
}
