//! The market's views: pick a market, its book (bids and asks by price level, with makers that
//! did not answer marked offline) and depth chart, a limit order form, this wallet's open orders
//! with cancel, its trades, and each fill as it happens. They render what the driver reports and
//! turn what a person does into [`MarketCommand`]s; the desk's refusals come back as the notice.

use bitmesh_core::chain::assets::AssetId;
use bitmesh_core::market::order::Side;
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::depth::{depth_chart, spread, BASE, HEIGHT, WIDTH};
use crate::market::{order_total, price_text, Level, MarketBook, MarketCommand, MarketView};
use crate::wallet::Notice;
use crate::wallet_card::use_emptied_on;

#[derive(Properties, PartialEq)]
pub struct MarketCardProps {
    pub view: MarketView,
    pub notice: Option<Notice>,
    pub last_fill: Option<String>,
    /// Orders placed: the order form empties its amount at each.
    pub placed: u32,
    /// Whether a wallet is unlocked (orders are paid from it).
    pub unlocked: bool,
    pub command: Callback<MarketCommand>,
}

#[function_component]
pub fn MarketCard(props: &MarketCardProps) -> Html {
    let chosen = use_state(|| None::<AssetId>);
    // A price level a person clicked, for the order form to take up.
    let picked = use_state(|| None::<Pick>);
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
    let pick = {
        let picked = picked.clone();
        Callback::from(move |(side, price): (Side, u64)| {
            let serial = picked.map_or(0, |pick| pick.serial.wrapping_add(1));
            picked.set(Some(Pick {
                side,
                price,
                serial,
            }));
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
                <label class="market-pick">{ "Market" }
                    <select id="market-select" {onchange}>
                        { for markets.iter().map(|m| html! {
                            <option key={m.asset.to_string()} selected={m.asset == market.asset}>
                                { format!("{} / BTC", m.name) }
                            </option>
                        }) }
                    </select>
                </label>
                <Book market={market.clone()} pick={props.unlocked.then(|| pick.clone())} />
                if props.unlocked {
                    <OrderForm market={market.clone()} picked={*picked} placed={props.placed} command={props.command.clone()} />
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
            if let Some(fill) = &props.last_fill {
                <p id="fill-alert" class="ok" role="status">{ fill.clone() }</p>
            }
            { body }
            if !props.unlocked {
                <p class="note" id="trade-locked">{ "Unlock a wallet to trade: orders are paid from it." }</p>
            }
            if let Some(notice) = notice {
                { notice }
            }
            if props.unlocked {
                <MyOrders view={props.view.clone()} command={props.command.clone()} />
            }
        </section>
    }
}

/// A price level a person clicked: the order that would take it (buy at an ask's price, sell at
/// a bid's). `serial` tells two clicks on the same level apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pick {
    side: Side,
    price: u64,
    serial: u32,
}

#[derive(Properties, PartialEq)]
struct BookProps {
    market: MarketBook,
    /// Where a click on a level goes (the order form), when there is one.
    pick: Option<Callback<(Side, u64)>>,
}

/// Bids and asks by price level, best first, the spread and the depth chart.
#[function_component]
fn Book(props: &BookProps) -> Html {
    let market = &props.market;
    let side = |id: &'static str, title: &'static str, levels: &[Level]| {
        // A click on an ask fills the form to buy at its price, on a bid to sell at its price.
        let taker = if id == "asks" { Side::Bid } else { Side::Ask };
        let hint = match (&props.pick, taker) {
            (None, _) => None,
            (Some(_), Side::Bid) => Some("Buy at this price: fills in the order form"),
            (Some(_), Side::Ask) => Some("Sell at this price: fills in the order form"),
        };
        html! {
            <div class="book-side">
                <h3>{ title }</h3>
                if levels.is_empty() {
                    <p class="note" id={format!("{id}-empty")}>{ "None" }</p>
                } else {
                    <table id={id}>
                        <thead><tr><th>{ "Price (BTC)" }</th><th>{ format!("Amount ({})", market.name) }</th><th>{ "Orders" }</th></tr></thead>
                        <tbody>
                            { for levels.iter().map(|level| {
                                let price = level.price;
                                let onclick = props.pick.clone().map(|pick| {
                                    Callback::from(move |_: MouseEvent| pick.emit((taker, price)))
                                });
                                // From the keyboard too: a focusable row, Enter or Space picks it.
                                let onkeydown = props.pick.clone().map(|pick| {
                                    Callback::from(move |event: KeyboardEvent| {
                                        if matches!(event.key().as_str(), "Enter" | " ") {
                                            event.prevent_default();
                                            pick.emit((taker, price));
                                        }
                                    })
                                });
                                let tabindex = props.pick.is_some().then_some("0");
                                html! {
                                <tr key={level.price} data-price={level.price.to_string()}
                                    class={classes!(onclick.is_some().then_some("pick"))} title={hint}
                                    {tabindex} {onclick} {onkeydown}>
                                    <td class="price">{ level.price_text.clone() }</td>
                                    <td class="amount">{ level.amount_text.clone() }</td>
                                    <td class="orders">
                                        { level.orders }
                                        if level.offline > 0 {
                                            <span class="offline" title="Its maker did not answer a trade, or could not sign one; skipped when matching">{ format!(" · {} maker offline", level.offline) }</span>
                                        }
                                        if level.unfunded > 0 {
                                            <span class="unfunded" title="Their coins are spent (by a trade not settled here yet), not in this tab yet, or not their makers'; passed over when matching">{ format!(" · {} without coins", level.unfunded) }</span>
                                        }
                                    </td>
                                </tr>
                            }}) }
                        </tbody>
                    </table>
                }
            </div>
        }
    };
    html! {
        <>
            if let Some(line) = spread(market) {
                <p id="spread" class="note">{ line }</p>
            }
            <div class="book">
                { side("asks", "Asks (sell orders)", &market.asks) }
                { side("bids", "Bids (buy orders)", &market.bids) }
            </div>
            <Depth market={market.clone()} />
        </>
    }
}

#[derive(Properties, PartialEq)]
struct DepthProps {
    market: MarketBook,
}

/// The depth chart ([`depth_chart`]): the amount open at each price or better, bids left of
/// the spread and asks right.
#[function_component]
fn Depth(props: &DepthProps) -> Html {
    let market = &props.market;
    let Some(chart) = depth_chart(market) else {
        return html! {};
    };
    let label = format!(
        "Depth of the {} market: {} bid levels, {} ask levels, from {} to {} BTC",
        market.name,
        market.bids.len(),
        market.asks.len(),
        chart.low,
        chart.high
    );
    html! {
        <svg id="depth" class="depth" viewBox={format!("0 0 {WIDTH} {HEIGHT}")} role="img" aria-label={label}>
            <line class="axis" x1="0" y1={BASE.to_string()} x2={WIDTH.to_string()} y2={BASE.to_string()} />
            <polygon class="bids" points={chart.bids} />
            <polygon class="asks" points={chart.asks} />
            <text class="axis" x="8" y="10">{ chart.most }</text>
            <text class="axis" x="8" y={(HEIGHT - 6.0).to_string()}>{ chart.low }</text>
            <text class="axis end" x={(WIDTH - 8.0).to_string()} y={(HEIGHT - 6.0).to_string()}>{ chart.high }</text>
        </svg>
    }
}

#[derive(Properties, PartialEq)]
struct OrderFormProps {
    market: MarketBook,
    /// The level a person clicked last, to take up.
    picked: Option<Pick>,
    placed: u32,
    command: Callback<MarketCommand>,
}

/// A limit order: buy or sell, price in BTC per unit, amount in units, and what it comes to as
/// it is typed ([`order_total`]).
#[function_component]
fn OrderForm(props: &OrderFormProps) -> Html {
    let (side, price, amount) = (use_node_ref(), use_node_ref(), use_node_ref());
    let total = use_state(|| None::<Result<String, String>>);
    // A placed order empties the amount and its total; side and price stay, for the next
    // order at the same price.
    use_emptied_on(props.placed, core::slice::from_ref(&amount));
    {
        let total = total.clone();
        use_effect_with(props.placed, move |_| total.set(None));
    }
    let read = {
        let (side, price, amount) = (side.clone(), price.clone(), amount.clone());
        move || {
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
            (side, text(&price), text(&amount))
        }
    };
    let retotal = {
        let (read, total, decimals) = (read.clone(), total.clone(), props.market.decimals);
        move || {
            let (side, price, amount) = read();
            total.set(order_total(side, &price, &amount, decimals));
        }
    };
    // A clicked level: its side and price into the form, the cursor to the amount.
    {
        let (side, price, amount) = (side.clone(), price.clone(), amount.clone());
        let (retotal, decimals) = (retotal.clone(), props.market.decimals);
        use_effect_with(props.picked, move |picked| {
            if let Some(pick) = picked {
                if let Some(select) = side.cast::<HtmlSelectElement>() {
                    select.set_value(if pick.side == Side::Ask {
                        "sell"
                    } else {
                        "buy"
                    });
                }
                if let Some(input) = price.cast::<HtmlInputElement>() {
                    input.set_value(&price_text(pick.price, decimals));
                }
                if let Some(input) = amount.cast::<HtmlInputElement>() {
                    let _ = input.focus();
                }
                retotal();
            }
        });
    }
    let oninput = {
        let retotal = retotal.clone();
        Callback::from(move |_: InputEvent| retotal())
    };
    let onchange = Callback::from(move |_: Event| retotal());
    let onsubmit = {
        let (market, command) = (props.market.asset, props.command.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let (side, price, amount) = read();
            command.emit(MarketCommand::Place {
                market,
                side,
                price,
                amount,
            });
        })
    };
    let name = &props.market.name;
    html! {
        <form class="order-form" {onsubmit} {oninput} {onchange}>
            <h3>{ "Place a limit order" }</h3>
            <div class="fields">
                <label>{ "Side" }
                    <select id="order-side" ref={side}>
                        <option value="buy">{ format!("Buy {name}") }</option>
                        <option value="sell">{ format!("Sell {name}") }</option>
                    </select>
                </label>
                <label>{ format!("Price (BTC per {name})") }
                    <input id="order-price" ref={price} inputmode="decimal" autocomplete="off" placeholder="0.00001000" />
                </label>
                <label>{ format!("Amount ({name})") }
                    <input id="order-amount" ref={amount} inputmode="decimal" autocomplete="off" placeholder="0" />
                </label>
            </div>
            if let Some(total) = &*total {
                <p id="order-total" class={classes!("total", total.is_err().then_some("refused"))}>
                    { total.clone().unwrap_or_else(|why| why) }
                </p>
            }
            <button id="place-order" type="submit">{ "Place order" }</button>
            <p class="note">{ "An order that crosses the book trades at once at the makers' prices; the rest waits in the book for 24 hours. Each trade settles in one transaction: both sides or nothing. Click a price in the book to fill it in." }</p>
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
                <p class="note" id="pending-takes">{ match view.pending {
                    1 => "1 trade waiting for its maker".to_owned(),
                    n => format!("{n} trades waiting for their makers"),
                } }</p>
            }
            if !view.unanswered.is_empty() {
                <p class="note" id="unanswered-takes">{ match view.unanswered.len() {
                    1 => "1 trade given up unanswered: listed in My trades if its maker completes it"
                        .to_owned(),
                    n => format!(
                        "{n} trades given up unanswered: listed in My trades if their makers complete them"
                    ),
                } }</p>
                <ul id="unanswered-list" class="history">
                    { for view.unanswered.iter().map(|take| html! {
                        <li key={take.txid.clone()}>
                            { take.text.clone() }
                            <br /><code class="hash">{ take.txid.clone() }</code>
                        </li>
                    }) }
                </ul>
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
                            if trade.undone {
                                <span class="undone" title="A reorganisation or a double spend took its transaction out of the chain: nothing was traded, and an order of yours it filled is open again">{ " · undone" }</span>
                            }
                            <br /><code class="hash">{ trade.txid.clone() }</code>
                        </li>
                    }) }
                </ul>
            }
        </>
    }
}
