//! The app shell: product name, the network this page joins, its genesis block as computed by
//! bitmesh-core inside this tab, and the build version.

use bitmesh_core::chain::ParseNetworkError;
use bitmesh_core::Network;
use yew::prelude::*;

/// The page's network, from the `network` parameter of a query string such as `?network=test`.
/// Without one, the page joins the default local network.
pub fn network_from_query(query: &str) -> Result<Network, ParseNetworkError> {
    query
        .trim_start_matches('?')
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == "network")
        .map_or(Ok(Network::Local), |(_, value)| value.parse())
}

/// The STUN/TURN servers of the `ice` parameter (comma-separated, URL-encoded), as in
/// `?ice=stun%3Astun.example.org%3A3478`; none without it.
pub fn ice_servers_from_query(query: &str) -> Vec<String> {
    query
        .trim_start_matches('?')
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(key, _)| *key == "ice")
        .flat_map(|(_, value)| value.split(',').map(percent_decode).collect::<Vec<_>>())
        .filter(|url| !url.is_empty())
        .collect()
}

/// This page's address (its `query`) asking to take the profile over from another tab.
pub fn take_over_link(query: &str) -> String {
    let kept: Vec<&str> = query
        .trim_start_matches('?')
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.starts_with("takeover="))
        .collect();
    let mut link = String::from("?");
    for pair in kept {
        link.push_str(pair);
        link.push('&');
    }
    link.push_str("takeover=1");
    link
}

/// `%XX` escapes decoded (invalid ones kept as they are).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query string of the page's address (empty outside a browser).
fn page_query() -> String {
    #[cfg(target_arch = "wasm32")]
    {
        web_sys::window()
            .and_then(|window| window.location().search().ok())
            .unwrap_or_default()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        String::new()
    }
}

/// The root component.
#[function_component]
pub fn App() -> Html {
    let network = use_memo((), |_| network_from_query(&page_query()));
    let body = match &*network {
        Ok(network) => html! {
            <>
                <ChainCard network={*network} />
                <MeshCard network={*network} />
            </>
        },
        Err(err) => html! {
            <section class="card error" role="alert">
                <h2>{ "This address names no bitmesh network" }</h2>
                <p>{ err.to_string() }</p>
            </section>
        },
    };
    let badge = match &*network {
        Ok(network) => format!("{network} network"),
        Err(_) => "no network".to_owned(),
    };
    html! {
        <div class="shell">
            <header class="topbar">
                <span class="brand">
                    <img src="icon.svg" alt="" width="28" height="28" />
                    { "bitmesh" }
                </span>
                <span class="badge" id="network-name">{ badge }</span>
            </header>
            <main>
                <section class="intro">
                    <h1>{ "bitmesh" }</h1>
                    <p>{ "A peer-to-peer Bitcoin wallet and exchange that runs in your browser." }</p>
                </section>
                { body }
            </main>
            <footer class="footer">
                { "bitmesh " }<span id="build-version">{ crate::BUILD }</span>
            </footer>
        </div>
    }
}

#[derive(Properties, PartialEq)]
struct ChainCardProps {
    network: Network,
}

/// The tab's peer: started once per network; its status drives the wallet, faucet and network
/// cards.
#[cfg(target_arch = "wasm32")]
#[function_component]
fn MeshCard(props: &ChainCardProps) -> Html {
    use crate::devices::DevicesCommand;
    use crate::devices_card::DevicesCard;
    use crate::driver::{PageHandle, PageStatus};
    use crate::explorer_card::ExplorerCard;
    use crate::market::MarketCommand;
    use crate::market_card::MarketCard;
    use crate::wallet::{WalletCommand, WalletView};
    use crate::wallet_card::WalletCard;
    let status = use_state(PageStatus::default);
    let handle = use_state(|| None::<PageHandle>);
    {
        let (status, handle) = (status.clone(), handle.clone());
        use_effect_with(props.network, move |network| {
            let ice_servers = ice_servers_from_query(&page_query());
            let query = page_query();
            let take_over = query
                .trim_start_matches('?')
                .split('&')
                .any(|pair| pair == "takeover=1");
            let started = crate::driver::start(*network, ice_servers, take_over, move |update| {
                status.set(update)
            });
            handle.set(Some(started));
        });
    }
    let short = status.peer.get(..16).unwrap_or_default().to_owned();
    let ask = {
        let handle = (*handle).clone();
        Callback::from(move |address: String| {
            if let Some(handle) = &handle {
                handle.ask_faucet(address);
            }
        })
    };
    let command = {
        let handle = (*handle).clone();
        Callback::from(move |command: WalletCommand| {
            if let Some(handle) = &handle {
                handle.wallet(command);
            }
        })
    };
    let trade = {
        let handle = (*handle).clone();
        Callback::from(move |command: MarketCommand| {
            if let Some(handle) = &handle {
                handle.market(command);
            }
        })
    };
    let unlocked = matches!(status.wallet, WalletView::Unlocked(_));
    let explore = {
        let handle = (*handle).clone();
        Callback::from(move |query: String| {
            if let Some(handle) = &handle {
                handle.explore(query);
            }
        })
    };
    let devices = {
        let handle = (*handle).clone();
        Callback::from(move |command: DevicesCommand| {
            if let Some(handle) = &handle {
                handle.devices(command);
            }
        })
    };
    let mine = match &status.wallet {
        WalletView::Unlocked(summary) => Some(summary.receive.clone()),
        _ => None,
    };
    let headers = status.best_header;
    let sync = if headers > status.height {
        format!(
            "{} of {headers} blocks ({}%)",
            status.height,
            u64::from(status.height) * 100 / u64::from(headers.max(1))
        )
    } else {
        "up to date with its neighbours".to_owned()
    };
    let persisted = match status.persisted {
        None => "asking the browser…",
        Some(true) => "persistent (the browser will not evict it)",
        Some(false) => "best effort (the browser may evict it under storage pressure)",
    };
    html! {
        <>
            if let Some((done, total)) = status.restoring {
                <p class="note" id="restoring" role="status">{ format!("Restoring the kept chain: {done} of {total} blocks") }</p>
            }
            <WalletCard view={status.wallet.clone()} notice={status.notice.clone()} sent={status.spends_sent} {command} />
            <MarketCard view={status.market.clone()} notice={status.market_notice.clone()}
                last_fill={status.last_fill.clone()} placed={status.orders_placed} {unlocked} command={trade} />
            <FaucetCard state={status.faucet.clone()} {ask} {mine} />
            <DevicesCard view={status.devices.clone()} command={devices} />
            <section class="card" aria-live="polite">
                <h2>{ "Network" }</h2>
                <dl class="facts">
                    <dt>{ "This peer" }</dt>
                    <dd><code class="hash" id="peer-id" title={status.peer.clone()}>{ short }</code></dd>
                    <dt>{ "Signaling" }</dt>
                    <dd id="signaling-state">{ if status.signaling { "connected" } else { "connecting…" } }</dd>
                    <dt>{ "Neighbours" }</dt>
                    <dd id="neighbour-count">{ status.neighbours.len() }</dd>
                    <dt>{ "Chain height" }</dt>
                    <dd id="tip-height" title={status.tip.clone()}>{ status.height }</dd>
                    <dt>{ "Sync" }</dt>
                    <dd id="sync-state">{ sync }</dd>
                    <dt>{ "Mempool" }</dt>
                    <dd id="mempool-size">{ count(status.mempool as u64, "transaction", "transactions") }</dd>
                    <dt>{ "Storage" }</dt>
                    <dd id="storage-persisted">{ persisted }</dd>
                </dl>
                { for status.storage.iter().map(|why| html! {
                    <p class="note refused" id="storage-note" role="status">{ why.clone() }</p>
                }) }
                if status.storage.as_deref() == Some(crate::driver::SECOND_TAB) {
                    <a id="take-over" class="button" href={take_over_link(&page_query())}>{ "Use bitmesh in this tab instead" }</a>
                }
                <ul class="neighbours" id="neighbours">
                    { for status.neighbours.iter().map(|neighbour| html! {
                        <li>
                            <code>{ &neighbour.peer }</code>
                            { neighbour.rtt_millis.map(|rtt| format!(" · {rtt} ms")).unwrap_or_default() }
                        </li>
                    }) }
                </ul>
            </section>
            <ExplorerCard recent={status.recent_blocks.clone()} explored={status.explored.clone()} {explore} />
        </>
    }
}

/// Outside a browser there is no mesh to show.
#[cfg(not(target_arch = "wasm32"))]
#[function_component]
fn MeshCard(_props: &ChainCardProps) -> Html {
    Html::default()
}

#[cfg(target_arch = "wasm32")]
#[derive(Properties, PartialEq)]
struct FaucetCardProps {
    state: crate::driver::FaucetState,
    ask: Callback<String>,
    /// The unlocked wallet's receive address.
    mine: Option<String>,
}

/// Asks a faucet among the tab's neighbours (a node of a local or test network) for coins.
#[cfg(target_arch = "wasm32")]
#[function_component]
fn FaucetCard(props: &FaucetCardProps) -> Html {
    use crate::driver::FaucetState;
    let input = use_node_ref();
    let onsubmit = {
        let (input, ask) = (input.clone(), props.ask.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            if let Some(input) = input.cast::<web_sys::HtmlInputElement>() {
                ask.emit(input.value());
            }
        })
    };
    let result = match &props.state {
        FaucetState::Idle => Html::default(),
        FaucetState::Asking => html! { <p id="faucet-result">{ "Asking the faucet…" }</p> },
        FaucetState::Paid { sats, txid, asset } => {
            let asset = asset.as_ref().map(|(units, known)| match known {
                Some((ticker, decimals)) => {
                    format!(" and {} {ticker}", format_units(*units, *decimals))
                }
                None => format!(" and {units} units of its asset"),
            });
            html! {
                <p id="faucet-result" class="ok">
                    { format!("Paid {} BTC{}", format_units(*sats, 8), asset.unwrap_or_default()) }
                    <br />
                    <code class="hash">{ txid.clone() }</code>
                </p>
            }
        }
        FaucetState::Refused(reason) => html! {
            <p id="faucet-result" class="refused" role="alert">{ reason.clone() }</p>
        },
    };
    html! {
        <section class="card" aria-live="polite">
            <h2>{ "Faucet" }</h2>
            <form class="row" {onsubmit}>
                <label for="faucet-address">{ "Address" }</label>
                <input id="faucet-address" ref={input} type="text" autocomplete="off"
                    spellcheck="false" placeholder="bcrt1…" />
                <button id="faucet-ask" type="submit"
                    disabled={props.state == FaucetState::Asking}>{ "Ask for coins" }</button>
            </form>
            if let Some(address) = props.mine.clone() {
                <button id="faucet-mine" class="secondary" disabled={props.state == FaucetState::Asking}
                    onclick={props.ask.reform(move |_| address.clone())}>
                    { "Ask for coins to my wallet" }
                </button>
            }
            { result }
        </section>
    }
}

/// `n` things in words, singular for one: "1 confirmation", "3 confirmations".
pub fn count(n: impl Into<u64>, one: &str, many: &str) -> String {
    match n.into() {
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    }
}

/// `units` base units of something with `decimals` decimal places, as a person reads it:
/// `format_units(10_000_000, 8)` is `0.10000000`.
pub fn format_units(units: u64, decimals: u8) -> String {
    if decimals == 0 {
        return units.to_string();
    }
    let scale = 10u128.pow(u32::from(decimals));
    let (whole, fraction) = (u128::from(units) / scale, u128::from(units) % scale);
    format!("{whole}.{fraction:0width$}", width = usize::from(decimals))
}

/// The chain this page validates, starting from the genesis block computed right here.
#[function_component]
fn ChainCard(props: &ChainCardProps) -> Html {
    let genesis = use_memo(props.network, |network| network.genesis_block());
    let params = props.network.params();
    html! {
        <section class="card">
            <h2>{ "Chain" }</h2>
            <dl class="facts">
                <dt>{ "Network" }</dt>
                <dd>{ props.network.name() }</dd>
                <dt>{ "Genesis block" }</dt>
                <dd><code class="hash" id="genesis-hash">{ genesis.block_hash().to_string() }</code></dd>
                <dt>{ "Addresses" }</dt>
                <dd><code>{ "bcrt1…" }</code></dd>
                <dt>{ "Block spacing" }</dt>
                <dd>{ params.target_spacing_secs }{ " s target" }</dd>
            </dl>
            <p class="note">{ "The genesis hash above was computed in this tab by bitmesh-core, compiled to WebAssembly." }</p>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_picks_the_network() {
        assert_eq!(network_from_query(""), Ok(Network::Local));
        assert_eq!(network_from_query("?network=test"), Ok(Network::Test));
        assert_eq!(network_from_query("?x=1&network=local"), Ok(Network::Local));
        assert!(network_from_query("?network=mainnet").is_err());
    }

    #[test]
    fn taking_over_keeps_the_network() {
        assert_eq!(take_over_link(""), "?takeover=1");
        assert_eq!(take_over_link("?network=test"), "?network=test&takeover=1");
        assert_eq!(
            take_over_link("?network=test&takeover=1"),
            "?network=test&takeover=1"
        );
    }

    #[test]
    fn counts_are_singular_for_one() {
        assert_eq!(count(1u32, "block", "blocks"), "1 block");
        assert_eq!(count(0u32, "block", "blocks"), "0 blocks");
        assert_eq!(
            count(12u64, "confirmation", "confirmations"),
            "12 confirmations"
        );
    }

    #[test]
    fn units_read_as_a_person_reads_them() {
        assert_eq!(format_units(10_000_000, 8), "0.10000000");
        assert_eq!(format_units(100_000, 2), "1000.00");
        assert_eq!(format_units(7, 0), "7");
        assert_eq!(format_units(u64::MAX, 18), "18.446744073709551615");
    }

    #[test]
    fn query_names_the_ice_servers() {
        assert!(ice_servers_from_query("?network=test").is_empty());
        assert_eq!(
            ice_servers_from_query("?ice=stun%3Astun.example.org%3A3478,turn:t.example.org&x=1"),
            vec!["stun:stun.example.org:3478", "turn:t.example.org"]
        );
        assert_eq!(ice_servers_from_query("?ice=%zz"), vec!["%zz"]);
    }
}
