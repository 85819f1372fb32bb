//! The Devices view: this device's name (editable), the wallet's other devices with when they
//! were last seen and how their sync stands, the switch that pauses sync, and what removing a
//! device can and cannot do.

use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::devices::{DevicesCommand, DevicesView};

#[derive(Properties, PartialEq)]
pub struct DevicesCardProps {
    pub view: DevicesView,
    pub command: Callback<DevicesCommand>,
}

/// "12 s ago", "5 min ago", "3 h ago", "2 days ago".
fn ago(millis: u64, now_millis: u64) -> String {
    if millis == 0 {
        return "not seen yet".into();
    }
    let secs = now_millis.saturating_sub(millis) / 1000;
    match secs {
        0..=59 => format!("{secs} s ago"),
        60..=3_599 => format!("{} min ago", secs / 60),
        3_600..=86_399 => format!("{} h ago", secs / 3_600),
        _ => format!("{} days ago", secs / 86_400),
    }
}

#[function_component]
pub fn DevicesCard(props: &DevicesCardProps) -> Html {
    let view = &props.view;
    let name = use_node_ref();
    let rename = {
        let (name, command) = (name.clone(), props.command.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            if let Some(input) = name.cast::<HtmlInputElement>() {
                command.emit(DevicesCommand::Rename(input.value()));
            }
        })
    };
    let pause = {
        let command = props.command.clone();
        Callback::from(move |event: Event| {
            if let Some(input) = event.target_dyn_into::<HtmlInputElement>() {
                command.emit(DevicesCommand::Pause(input.checked()));
            }
        })
    };
    let now = js_sys::Date::now() as u64;
    let body = if !view.active {
        html! { <p class="note" id="devices-locked">{ "Unlock the wallet to sync it with your other devices." }</p> }
    } else {
        html! {
            <>
                <form class="row" id="device-name-form" onsubmit={rename}>
                    <label for="device-name">{ format!("This device ({})", view.this_id) }</label>
                    <input id="device-name" ref={name} type="text" maxlength="64" autocomplete="off"
                        placeholder={view.this_name.clone().unwrap_or_else(|| "Name it, e.g. Laptop".into())} />
                    <button id="device-name-save" type="submit" class="secondary">{ "Save" }</button>
                </form>
                if let Some(name) = &view.this_name {
                    <p class="note" id="device-name-saved">{ format!("Your other devices know this one as “{name}”.") }</p>
                }
                if view.others.is_empty() {
                    <p class="note" id="devices-none">{ "No other device of this wallet yet: restore the same recovery phrase elsewhere and it appears here." }</p>
                } else {
                    <table id="devices">
                        <thead><tr><th>{ "Device" }</th><th>{ "Last seen" }</th><th>{ "Sync" }</th></tr></thead>
                        <tbody>
                            { for view.others.iter().map(|row| html! {
                                <tr data-device={row.id.clone()}>
                                    <td class="name">{ row.name.clone().unwrap_or_else(|| format!("device {}", row.id)) }</td>
                                    <td class="seen">{ ago(row.last_seen_millis, now) }</td>
                                    <td class="state">{ row.state.words() }</td>
                                </tr>
                            }) }
                        </tbody>
                    </table>
                }
                <label><input id="sync-paused" type="checkbox" checked={view.paused} onchange={pause} />{ " Pause sync on this device" }</label>
            </>
        }
    };
    html! {
        <section class="card" id="devices-card" aria-live="polite"
            data-refused={view.refused.to_string()} data-last-refusal={view.last_refusal.clone().unwrap_or_default()}>
            <h2>{ "Devices" }</h2>
            { body }
            <p class="note" id="device-revocation">
                { "Every device that knows your recovery phrase is a full owner of this wallet: it can spend its coins and read what your devices share (labels, addresses, names). Removing a device from this list cannot take that back. To shut a device out, send your coins to a wallet with a new recovery phrase." }
            </p>
        </section>
    }
}
