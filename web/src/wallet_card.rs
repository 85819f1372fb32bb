//! The wallet's views: create (the words shown, a few confirmed) or restore, unlock, and the
//! unlocked wallet — balances per asset, receive address with its QR code, send, issue, history,
//! descriptor. They render what the driver reports and turn what a person does into
//! [`WalletCommand`]s; checks that need no wallet (confirmation words, password repeated) are
//! made here, everything else by the wallet, whose refusals come back as the notice.

use bitmesh_core::wallet::mnemonic;
use bitmesh_core::wallet::tracker::Unit;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::app::{count, format_units};
use crate::wallet::{Notice, Summary, WalletCommand, WalletView, MIN_PASSWORD_LEN};

#[derive(Properties, PartialEq)]
pub struct WalletCardProps {
    pub view: WalletView,
    pub notice: Option<Notice>,
    /// Spends sent: the send and issue forms empty at each.
    pub sent: u32,
    pub command: Callback<WalletCommand>,
}

/// The wallet, on whichever screen it is.
#[function_component]
pub fn WalletCard(props: &WalletCardProps) -> Html {
    let interactive = !matches!(props.view, WalletView::Loading);
    use_effect_with(interactive, |interactive| {
        if *interactive {
            mark_interactive();
        }
    });
    let body = match &props.view {
        WalletView::Loading => html! { <p class="note">{ "Reading this browser's store…" }</p> },
        WalletView::Absent => html! { <NewWallet command={props.command.clone()} /> },
        WalletView::Locked => html! { <Unlock command={props.command.clone()} /> },
        WalletView::Unlocked(summary) => html! {
            <Unlocked summary={summary.clone()} sent={props.sent} command={props.command.clone()} />
        },
    };
    let notice = props.notice.as_ref().map(|notice| match notice {
        Notice::Done(text) => {
            html! { <p id="wallet-notice" class="ok" role="status">{ text.clone() }</p> }
        }
        Notice::Psbt(psbt) => html! {
            <div id="wallet-notice" class="ok" role="status">
                <p>{ "The unsigned transaction, as a PSBT for another signer:" }</p>
                <textarea id="psbt" readonly=true rows="4" value={psbt.clone()} />
            </div>
        },
        Notice::Refused(text) => html! {
            <p id="wallet-notice" class="refused" role="alert">{ text.clone() }</p>
        },
    });
    html! {
        <section class="card wallet" id="wallet" aria-live="polite">
            <h2>{ "Wallet" }</h2>
            { body }
            if let Some(notice) = notice {
                { notice }
            }
        </section>
    }
}

/// The name of the performance mark set when the page first takes input.
pub const INTERACTIVE_MARK: &str = "bitmesh-interactive";

/// Marks, once, the moment the wallet screen (create, restore or unlock) first takes input:
/// what the navigation-to-interactive figure measures (`docs/FIGURES.md`).
fn mark_interactive() {
    let Some(performance) = web_sys::window().and_then(|window| window.performance()) else {
        return;
    };
    if performance.get_entries_by_name(INTERACTIVE_MARK).length() == 0 {
        let _ = performance.mark(INTERACTIVE_MARK);
    }
}

/// The value of the input behind `node`.
/// Empties the inputs `fields` whenever `done` changes (a count of what the form sent that
/// went through): a form starts afresh after its spend or order, so a second click cannot send
/// it again unnoticed, while a refused one keeps what was typed to be corrected.
#[hook]
pub fn use_emptied_on(done: u32, fields: &[NodeRef]) {
    let fields = fields.to_vec();
    use_effect_with(done, move |_| {
        for field in &fields {
            if let Some(input) = field.cast::<HtmlInputElement>() {
                input.set_value("");
                input.set_checked(false);
            }
        }
    });
}

fn value(node: &NodeRef) -> String {
    node.cast::<HtmlInputElement>()
        .map(|input| input.value())
        .unwrap_or_default()
}

fn checked(node: &NodeRef) -> bool {
    node.cast::<HtmlInputElement>()
        .is_some_and(|input| input.checked())
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).expect("the browser's randomness");
    bytes
}

/// Three distinct word positions (0-based, ascending) to confirm out of `count`.
fn positions_to_confirm(count: usize) -> Vec<usize> {
    let mut positions: Vec<usize> = Vec::new();
    while positions.len() < 3.min(count) {
        let pick = usize::from(u16::from_le_bytes(random_bytes())) % count;
        if !positions.contains(&pick) {
            positions.push(pick);
        }
    }
    positions.sort_unstable();
    positions
}

#[derive(Properties, PartialEq)]
struct CommandProps {
    command: Callback<WalletCommand>,
}

#[derive(Clone, PartialEq)]
enum Step {
    Choose,
    /// The new words shown, then a few of them confirmed.
    Show(Vec<String>),
    Confirm(Vec<String>, Vec<usize>),
    Restore,
}

/// A first visit: make a wallet or restore one.
#[function_component]
fn NewWallet(props: &CommandProps) -> Html {
    let step = use_state(|| Step::Choose);
    let problem = use_state(|| None::<String>);
    let password = use_node_ref();
    let again = use_node_ref();
    let phrase = use_node_ref();
    let confirm_refs = use_memo((), |_| {
        (0..3).map(|_| NodeRef::default()).collect::<Vec<_>>()
    });

    // The password twice, checked alike on both paths.
    let passwords = {
        let (password, again) = (password.clone(), again.clone());
        move || -> Result<String, String> {
            let chosen = value(&password);
            if chosen.chars().count() < MIN_PASSWORD_LEN {
                return Err(format!(
                    "Choose a password of at least {MIN_PASSWORD_LEN} characters"
                ));
            }
            if chosen != value(&again) {
                return Err("The two passwords differ".into());
            }
            Ok(chosen)
        }
    };
    let password_fields = html! {
        <>
            <label for="new-password">{ "Password (encrypts the wallet in this browser)" }</label>
            <input id="new-password" ref={password.clone()} type="password" autocomplete="new-password" />
            <label for="new-password-again">{ "The same password again" }</label>
            <input id="new-password-again" ref={again.clone()} type="password" autocomplete="new-password" />
        </>
    };
    let problem_line = problem.as_ref().map(|text| {
        html! { <p id="wallet-problem" class="refused" role="alert">{ text.clone() }</p> }
    });

    let body = match &*step {
        Step::Choose => {
            let create = {
                let step = step.clone();
                Callback::from(move |_| {
                    let words = mnemonic::from_entropy(&random_bytes::<16>())
                        .expect("16 bytes make 12 words")
                        .words()
                        .map(str::to_owned)
                        .collect();
                    step.set(Step::Show(words));
                })
            };
            let restore = {
                let step = step.clone();
                Callback::from(move |_| step.set(Step::Restore))
            };
            html! {
                <>
                    <p>{ "This browser keeps no wallet for this network yet." }</p>
                    <div class="row">
                        <button id="create-wallet" onclick={create}>{ "Create a new wallet" }</button>
                        <button id="restore-wallet" class="secondary" onclick={restore}>{ "Restore from a recovery phrase" }</button>
                    </div>
                </>
            }
        }
        Step::Show(words) => {
            let next = {
                let (step, words) = (step.clone(), words.clone());
                Callback::from(move |_| {
                    let positions = positions_to_confirm(words.len());
                    step.set(Step::Confirm(words.clone(), positions));
                })
            };
            html! {
                <>
                    <p>{ "Write these 12 words down, in order, and keep them offline. They are the only way to recover the wallet: anyone who has them has the coins." }</p>
                    <ol class="words" id="mnemonic-words">
                        { for words.iter().map(|word| html! { <li>{ word.clone() }</li> }) }
                    </ol>
                    <button id="words-written" onclick={next}>{ "I wrote them down" }</button>
                </>
            }
        }
        Step::Confirm(words, positions) => {
            let onsubmit = {
                let (words, positions, command, problem) = (
                    words.clone(),
                    positions.clone(),
                    props.command.clone(),
                    problem.clone(),
                );
                let confirm_refs = confirm_refs.clone();
                let passwords = passwords.clone();
                Callback::from(move |event: SubmitEvent| {
                    event.prevent_default();
                    let wrong =
                        positions
                            .iter()
                            .zip(confirm_refs.iter())
                            .find(|(position, input)| {
                                value(input).trim().to_lowercase() != words[**position]
                            });
                    if let Some((position, _)) = wrong {
                        problem.set(Some(format!(
                            "Word {} is not the one shown: check what you wrote down",
                            position + 1
                        )));
                        return;
                    }
                    match passwords() {
                        Ok(password) => {
                            problem.set(None);
                            command.emit(WalletCommand::Create {
                                phrase: words.join(" "),
                                password,
                            });
                        }
                        Err(why) => problem.set(Some(why)),
                    }
                })
            };
            html! {
                <form class="stack" {onsubmit}>
                    <p>{ "Type these words of your recovery phrase to show it is written down:" }</p>
                    { for positions.iter().zip(confirm_refs.iter()).map(|(position, input)| html! {
                        <>
                            <label for={format!("confirm-{}", position + 1)}>{ format!("Word {}", position + 1) }</label>
                            <input id={format!("confirm-{}", position + 1)} ref={input.clone()}
                                type="text" autocomplete="off" spellcheck="false" />
                        </>
                    }) }
                    { password_fields }
                    <button id="create-confirm" type="submit">{ "Create the wallet" }</button>
                    if let Some(problem) = problem_line.clone() {
                        { problem }
                    }
                </form>
            }
        }
        Step::Restore => {
            let onsubmit = {
                let (phrase, command, problem) =
                    (phrase.clone(), props.command.clone(), problem.clone());
                let passwords = passwords.clone();
                Callback::from(move |event: SubmitEvent| {
                    event.prevent_default();
                    let text = phrase
                        .cast::<web_sys::HtmlTextAreaElement>()
                        .map(|area| area.value())
                        .unwrap_or_default();
                    match passwords() {
                        Ok(password) => {
                            problem.set(None);
                            command.emit(WalletCommand::Restore {
                                phrase: text,
                                password,
                            });
                        }
                        Err(why) => problem.set(Some(why)),
                    }
                })
            };
            html! {
                <form class="stack" {onsubmit}>
                    <label for="restore-phrase">{ "Recovery phrase (12 or 24 words)" }</label>
                    <textarea id="restore-phrase" ref={phrase.clone()} rows="3" spellcheck="false" autocomplete="off" />
                    { password_fields }
                    <button id="restore-confirm" type="submit">{ "Restore the wallet" }</button>
                    if let Some(problem) = problem_line.clone() {
                        { problem }
                    }
                </form>
            }
        }
    };
    body
}

/// A later visit: the password opens the vault.
#[function_component]
fn Unlock(props: &CommandProps) -> Html {
    let password = use_node_ref();
    let onsubmit = {
        let (password, command) = (password.clone(), props.command.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            command.emit(WalletCommand::Unlock {
                password: value(&password),
            });
        })
    };
    html! {
        <form class="row" id="unlock-form" {onsubmit}>
            <label for="unlock-password">{ "Password" }</label>
            <input id="unlock-password" ref={password} type="password" autocomplete="current-password" />
            <button id="unlock" type="submit">{ "Unlock" }</button>
        </form>
    }
}

#[derive(Properties, PartialEq)]
struct UnlockedProps {
    summary: Summary,
    sent: u32,
    command: Callback<WalletCommand>,
}

/// The unlocked wallet.
#[function_component]
fn Unlocked(props: &UnlockedProps) -> Html {
    let summary = &props.summary;
    let command = props.command.clone();
    let emit = |command: &Callback<WalletCommand>, what: WalletCommand| {
        let command = command.clone();
        Callback::from(move |_| command.emit(what.clone()))
    };
    let sync = (summary.behind > 0).then(|| {
        html! { <p class="note" id="wallet-sync">{ format!("Following the chain: {} to go", count(summary.behind, "block", "blocks")) }</p> }
    });
    html! {
        <>
            if let Some(sync) = sync {
                { sync }
            }
            <table class="balances" id="balances">
                <thead><tr><th>{ "Asset" }</th><th>{ "Confirmed" }</th><th>{ "Unconfirmed" }</th><th>{ "Immature" }</th></tr></thead>
                <tbody>
                    { for summary.balances.iter().map(|row| html! {
                        <tr data-unit={row.name.clone()}>
                            <td>{ row.name.clone() }</td>
                            <td class="confirmed">{ format_units(row.confirmed, row.decimals) }</td>
                            <td class="unconfirmed">{ format_units(row.unconfirmed, row.decimals) }</td>
                            <td class="immature">{ format_units(row.immature, row.decimals) }</td>
                        </tr>
                    }) }
                </tbody>
            </table>
            <Receive address={summary.receive.clone()} new_address={emit(&command, WalletCommand::NewAddress)} />
            if let Some(review) = &summary.pending {
                <div class="review" id="spend-review" role="dialog" aria-label="Confirm the spend">
                    <p id="spend-review-text">{ review.clone() }</p>
                    <div class="row">
                        <button id="spend-confirm" onclick={emit(&command, WalletCommand::ConfirmSpend)}>{ "Confirm and send" }</button>
                        <button id="spend-cancel" class="secondary" onclick={emit(&command, WalletCommand::CancelSpend)}>{ "Cancel" }</button>
                    </div>
                </div>
            }
            <Send summary={summary.clone()} sent={props.sent} command={command.clone()} />
            <Issue sent={props.sent} command={command.clone()} />
            <h3>{ "History" }</h3>
            if summary.history.is_empty() {
                <p class="note" id="history-empty">{ "No transactions yet." }</p>
            } else {
                <ul class="history" id="history">
                    { for summary.history.iter().map(|row| html! {
                        <li key={row.txid.clone()} class={classes!(row.conflicted.then_some("conflicted"))} data-txid={row.txid.clone()}>
                            <span class="changes">{ row.changes.join(", ") }</span>
                            { " · " }
                            <span class="confirmations">{
                                if row.conflicted { "conflicted: another spend of its coins confirmed, this one never will".to_owned() }
                                else if row.confirmations == 0 { "unconfirmed".to_owned() }
                                else { count(row.confirmations, "confirmation", "confirmations") }
                            }</span>
                            { row.fee.as_ref().map(|fee| format!(" · fee {fee}")).unwrap_or_default() }
                            { if row.trade { " · trade" } else { "" } }
                            <br /><code class="hash">{ row.txid.clone() }</code>
                            <LabelEditor txid={row.txid.clone()} label={row.label.clone()} command={command.clone()} />
                        </li>
                    }) }
                </ul>
            }
            <details>
                <summary>{ "Descriptor (for a watch-only wallet elsewhere)" }</summary>
                <code class="hash" id="descriptor">{ summary.descriptor.clone() }</code>
            </details>
            <button id="lock" class="secondary" onclick={emit(&command, WalletCommand::Lock)}>{ "Lock" }</button>
        </>
    }
}

#[derive(Properties, PartialEq)]
struct LabelEditorProps {
    txid: String,
    label: Option<String>,
    command: Callback<WalletCommand>,
}

/// A transaction's label (shared with the wallet's other devices), editable in place.
#[function_component]
fn LabelEditor(props: &LabelEditorProps) -> Html {
    let input = use_node_ref();
    let onsubmit = {
        let (input, txid, command) = (input.clone(), props.txid.clone(), props.command.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            if let Some(input) = input.cast::<HtmlInputElement>() {
                command.emit(WalletCommand::Label {
                    txid: txid.clone(),
                    label: input.value(),
                });
            }
        })
    };
    html! {
        <form class="row label-form" {onsubmit}>
            <span class="label">{ props.label.clone().unwrap_or_default() }</span>
            <input class="label-input" ref={input} type="text" maxlength="200" autocomplete="off"
                aria-label="Label" placeholder={props.label.clone().unwrap_or_else(|| "Label".into())} />
            <button class="label-save secondary" type="submit">{ "Save label" }</button>
        </form>
    }
}

#[derive(Properties, PartialEq)]
struct ReceiveProps {
    address: String,
    new_address: Callback<MouseEvent>,
}

/// The receive address, its QR code and a copy button.
#[function_component]
fn Receive(props: &ReceiveProps) -> Html {
    let qr = use_memo(props.address.clone(), |address| {
        // Upper case uses QR's compact alphanumeric mode (BIP173 allows either case).
        qrcode::QrCode::new(address.to_uppercase().as_bytes())
            .map(|code| {
                code.render::<qrcode::render::svg::Color>()
                    .min_dimensions(160, 160)
                    .build()
            })
            .unwrap_or_default()
    });
    let copied = use_state(|| false);
    let copy = {
        let (address, copied) = (props.address.clone(), copied.clone());
        Callback::from(move |_| {
            if let Some(window) = web_sys::window() {
                let _ = window.navigator().clipboard().write_text(&address);
                copied.set(true);
            }
        })
    };
    html! {
        <div class="receive">
            <h3>{ "Receive" }</h3>
            <div class="qr" id="receive-qr">{ Html::from_html_unchecked(AttrValue::from((*qr).clone())) }</div>
            <code class="hash" id="receive-address">{ props.address.clone() }</code>
            <div class="row">
                <button id="copy-address" class="secondary" onclick={copy}>{ if *copied { "Copied" } else { "Copy" } }</button>
                <button id="new-address" class="secondary" onclick={props.new_address.clone()}>{ "New address" }</button>
            </div>
        </div>
    }
}

#[derive(Properties, PartialEq)]
struct SendProps {
    summary: Summary,
    sent: u32,
    command: Callback<WalletCommand>,
}

/// Pay an address: amount or everything, fee rate, or export the unsigned PSBT.
#[function_component]
fn Send(props: &SendProps) -> Html {
    let (to, unit, amount, max, fee) = (
        use_node_ref(),
        use_node_ref(),
        use_node_ref(),
        use_node_ref(),
        use_node_ref(),
    );
    // The fee rate stays: a person sending again likely wants the same.
    use_emptied_on(props.sent, &[to.clone(), amount.clone(), max.clone()]);
    let units: Vec<(Unit, String)> = props
        .summary
        .balances
        .iter()
        .map(|row| (row.unit, row.name.clone()))
        .collect();
    // The unit chosen, held here: the list grows as assets arrive, and the browser's own
    // selection would follow an option element, not the unit.
    let chosen = use_state(|| Unit::Btc);
    let onchange = {
        let (unit, chosen, units) = (unit.clone(), chosen.clone(), units.clone());
        Callback::from(move |_| {
            let picked = unit
                .cast::<web_sys::HtmlSelectElement>()
                .map(|select| select.selected_index())
                .unwrap_or(0);
            let picked = usize::try_from(picked)
                .ok()
                .and_then(|index| units.get(index));
            if let Some((picked, _)) = picked {
                chosen.set(*picked);
            }
        })
    };
    let submit = |psbt_only: bool| {
        let (to, amount, max, fee) = (to.clone(), amount.clone(), max.clone(), fee.clone());
        let (chosen, command) = (chosen.clone(), props.command.clone());
        move || {
            let unit = *chosen;
            command.emit(WalletCommand::Send {
                to: value(&to),
                unit,
                amount: value(&amount),
                max: checked(&max),
                fee_rate: value(&fee),
                psbt_only,
            });
        }
    };
    let onsubmit = {
        let send = submit(false);
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            send();
        })
    };
    let export = {
        let export = submit(true);
        Callback::from(move |_| export())
    };
    html! {
        <form class="stack send" id="send-form" {onsubmit}>
            <h3>{ "Send" }</h3>
            <label for="send-to">{ "To address" }</label>
            <input id="send-to" ref={to} type="text" autocomplete="off" spellcheck="false" placeholder="bcrt1…" />
            <div class="row">
                <label for="send-amount">{ "Amount" }</label>
                <input id="send-amount" ref={amount} type="text" inputmode="decimal" autocomplete="off" />
                <select id="send-unit" ref={unit} {onchange}>
                    { for units.iter().map(|(unit, name)| html! {
                        <option key={format!("{unit:?}")} selected={*unit == *chosen}>{ name.clone() }</option>
                    }) }
                </select>
                <label><input id="send-max" ref={max} type="checkbox" />{ " Max" }</label>
            </div>
            <div class="row">
                <label for="send-fee">{ "Fee rate (sat/vB)" }</label>
                <input id="send-fee" ref={fee} type="text" inputmode="numeric" value="2" />
            </div>
            <div class="row">
                <button id="send" type="submit">{ "Send" }</button>
                <button id="send-psbt" type="button" class="secondary" onclick={export}>{ "Export PSBT" }</button>
            </div>
        </form>
    }
}

#[derive(Properties, PartialEq)]
struct IssueProps {
    sent: u32,
    command: Callback<WalletCommand>,
}

/// Issue a new asset to the wallet.
#[function_component]
fn Issue(props: &IssueProps) -> Html {
    let (ticker, decimals, supply) = (use_node_ref(), use_node_ref(), use_node_ref());
    use_emptied_on(props.sent, &[ticker.clone(), supply.clone()]);
    let onsubmit = {
        let (ticker, decimals, supply, command) = (
            ticker.clone(),
            decimals.clone(),
            supply.clone(),
            props.command.clone(),
        );
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            command.emit(WalletCommand::Issue {
                ticker: value(&ticker),
                decimals: value(&decimals),
                supply: value(&supply),
                fee_rate: "2".into(),
            });
        })
    };
    html! {
        <details>
            <summary>{ "Issue an asset" }</summary>
            <form class="stack" id="issue-form" {onsubmit}>
                <label for="issue-ticker">{ "Ticker (1–8 of A–Z, 0–9)" }</label>
                <input id="issue-ticker" ref={ticker} type="text" autocomplete="off" />
                <label for="issue-decimals">{ "Decimal places" }</label>
                <input id="issue-decimals" ref={decimals} type="text" inputmode="numeric" value="2" />
                <label for="issue-supply">{ "Supply" }</label>
                <input id="issue-supply" ref={supply} type="text" inputmode="decimal" />
                <button id="issue" type="submit">{ "Issue" }</button>
            </form>
        </details>
    }
}
