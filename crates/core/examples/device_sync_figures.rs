//! Figures of device sync (issue 10), printed, not asserted: the bytes of each message kind on
//! the wire (sealed payload, before the routed envelope), and a device's catch-up after 1,000
//! labels written while it was away, beside sending the whole metadata each time.
//!
//! `cargo run --release -p bitmesh-core --example device_sync_figures`

use std::time::Instant;

use bitmesh_core::wallet::device_group::DeviceGroup;
use bitmesh_core::wallet::device_sync::DeviceSync;
use bitmesh_core::wallet::metadata::{LabelTarget, Metadata};
use bitmesh_core::wire::PeerId;
use bitmesh_core::Network;

const START: u64 = 1_700_000_000_000;

struct Device {
    peer: PeerId,
    sync: DeviceSync,
    metadata: Metadata,
}

fn device(n: u8) -> Device {
    let peer = PeerId([n; 32]);
    Device {
        peer,
        sync: DeviceSync::new(DeviceGroup::from_seed(&[7; 64], Network::Test), peer),
        metadata: Metadata::new(),
    }
}

/// Delivers every message between the two until they are quiet; returns (messages, bytes).
fn settle(devices: &mut [Device; 2], now: u64) -> (usize, usize) {
    let (mut messages, mut bytes) = (0, 0);
    let mut in_flight: Vec<(usize, Vec<u8>)> = Vec::new();
    for _ in 0..100_000 {
        for (n, device) in devices.iter_mut().enumerate() {
            for (_, payload) in device.sync.take_outbox() {
                in_flight.push((1 - n, payload));
            }
        }
        if in_flight.is_empty() {
            return (messages, bytes);
        }
        let (to, payload) = in_flight.remove(0);
        messages += 1;
        bytes += payload.len();
        let from = devices[1 - to].peer;
        let receiver = &mut devices[to];
        let _ = receiver.sync.receive(
            now,
            from,
            &payload,
            &mut receiver.metadata,
            [messages as u8; 32],
        );
    }
    panic!("never quiet");
}

fn main() {
    let mut devices = [device(1), device(2)];
    let followers = [devices[0].peer, devices[1].peer];
    let mut now = START;
    for device in devices.iter_mut() {
        device.metadata.set_device_name(
            device.sync.device(),
            "laptop".into(),
            device.metadata.next_stamp(device.sync.device(), now),
        );
    }
    devices[0]
        .sync
        .tick(now, &followers, &devices[0].metadata, [1; 32]);
    let hello = devices[0].sync.take_outbox()[0].1.len();
    devices[1]
        .sync
        .tick(now, &followers, &devices[1].metadata, [2; 32]);
    let (greeting, greeting_bytes) = settle(&mut devices, now);

    now += 1_000;
    let device = &mut devices[0];
    let stamp = device.metadata.next_stamp(device.sync.device(), now);
    device.metadata.set_label(
        LabelTarget::Address("bcrt1q6rz28mcfaxtmd6v789l9rrlrusdprr9pz3cppk".into()),
        Some("rent, March".into()),
        stamp,
    );
    device.sync.changed(now, &device.metadata, [2; 32]);
    let delta = device.sync.take_outbox()[0].1.clone();
    let laptop = devices[0].peer;
    let receiver = &mut devices[1];
    receiver
        .sync
        .receive(now, laptop, &delta, &mut receiver.metadata, [3; 32])
        .unwrap();
    let summary = devices[1].sync.take_outbox()[0].1.len();
    println!("FIGURE sealed bytes: hello {hello}, delta of one label {}, summary {summary} (a routed envelope adds about 150)", delta.len());
    println!("greeting both ways: {greeting} messages, {greeting_bytes} bytes");

    // The phone goes away; the laptop writes 1,000 labels.
    devices[1].sync.set_paused(true);
    for n in 0..1_000u32 {
        now += 10;
        let device = &mut devices[0];
        let stamp = device.metadata.next_stamp(device.sync.device(), now);
        device.metadata.set_label(
            LabelTarget::Address(format!("bcrt1q{n:0>38}")),
            Some(format!("invoice {n}, paid by card")),
            stamp,
        );
    }
    let whole = devices[0].metadata.encode().len();
    devices[0].sync.take_outbox();
    devices[1].sync.set_paused(false);
    now += 60_000;
    let started = Instant::now();
    devices[1]
        .sync
        .tick(now, &followers, &devices[1].metadata, [4; 32]);
    let (messages, bytes) = settle(&mut devices, now);
    let took = started.elapsed();
    assert_eq!(devices[1].metadata.labels().count(), 1_001);
    println!(
        "FIGURE catch-up after 1,000 labels: {messages} messages ({} round trips), {bytes} bytes, {:.1} ms of processing natively; the whole metadata is {whole} bytes (delta/whole {:.2})",
        messages / 2,
        took.as_secs_f64() * 1000.0,
        bytes as f64 / whole as f64
    );
}
