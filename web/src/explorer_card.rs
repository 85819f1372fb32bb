//! The block explorer's view: the recent blocks of the tab's chain, a search by height, block
//! hash or txid, a block's transactions and a transaction's inputs, outputs and assets. Every
//! hash shown is a link to look it up.

use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::app::count;
use crate::explorer::{BlockRow, Explored};

#[derive(Properties, PartialEq)]
pub struct ExplorerCardProps {
    pub recent: Vec<BlockRow>,
    pub explored: Explored,
    pub explore: Callback<String>,
}

#[function_component]
pub fn ExplorerCard(props: &ExplorerCardProps) -> Html {
    let query = use_node_ref();
    let onsubmit = {
        let (query, explore) = (query.clone(), props.explore.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            if let Some(input) = query.cast::<HtmlInputElement>() {
                explore.emit(input.value());
            }
        })
    };
    let look_up = |what: String, label: String| {
        let explore = props.explore.clone();
        let target = what.clone();
        html! {
            <button class="link hash" onclick={Callback::from(move |_| explore.emit(target.clone()))}>{ label }</button>
        }
    };
    let explored = match &props.explored {
        Explored::Nothing => html! {},
        Explored::NotFound(why) => {
            html! { <p id="explored" class="refused" role="alert">{ why.clone() }</p> }
        }
        Explored::Block { block, txs } => html! {
            <div id="explored">
                <h3>{ format!("Block {}", block.height) }</h3>
                <code class="hash">{ block.hash.clone() }</code>
                <p class="note">{ count(block.txs as u64, "transaction", "transactions") }</p>
                <ul class="history" id="block-txs">
                    { for txs.iter().map(|tx| html! {
                        <li key={tx.txid.clone()}>
                            { look_up(tx.txid.clone(), tx.txid.clone()) }
                            <br />{ format!("{} in, {} out, {} BTC", tx.inputs, tx.outputs, tx.value) }
                        </li>
                    }) }
                </ul>
            </div>
        },
        Explored::Tx(tx) => html! {
            <div id="explored">
                <h3>{ "Transaction" }</h3>
                <code class="hash">{ tx.txid.clone() }</code>
                <p class="note" id="tx-place">{ tx.place.clone() }</p>
                { for tx.issues.iter().map(|issues| html! { <p id="tx-issues">{ issues.clone() }</p> }) }
                <h4>{ "Inputs" }</h4>
                <ul class="history" id="tx-inputs">
                    { for tx.inputs.iter().map(|input| html! {
                        <li><code class="hash">{ input.clone() }</code></li>
                    }) }
                </ul>
                <h4>{ "Outputs" }</h4>
                <ul class="history" id="tx-outputs">
                    { for tx.outputs.iter().map(|output| html! {
                        <li>
                            { format!("{} BTC", output.value) }
                            { for output.assets.iter().map(|units| html! { <span class="assets">{ format!(" · {units}") }</span> }) }
                            { if output.spent { " · spent" } else { "" } }
                            <br /><code class="hash">{ output.to.clone() }</code>
                        </li>
                    }) }
                </ul>
            </div>
        },
    };
    html! {
        <section class="card" id="explorer">
            <h2>{ "Explorer" }</h2>
            <form class="row" {onsubmit}>
                <input id="explore-query" ref={query} placeholder="Height, block hash or txid" autocomplete="off" spellcheck="false" />
                <button id="explore" type="submit">{ "Look up" }</button>
            </form>
            <h3>{ "Recent blocks" }</h3>
            <ul class="history" id="recent-blocks">
                { for props.recent.iter().map(|block| html! {
                    <li key={block.hash.clone()}>
                        { look_up(block.hash.clone(), format!("#{}", block.height)) }
                        { format!(" · {} · ", count(block.txs as u64, "transaction", "transactions")) }
                        <code class="hash">{ block.hash.get(..16).unwrap_or_default().to_owned() }</code>
                    </li>
                }) }
            </ul>
            { explored }
        </section>
    }
}
