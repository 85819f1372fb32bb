//! Device sync between the devices of one wallet, on an in-memory network this test controls:
//! proof of seed before anything is taken, sealed traffic a stranger can neither read nor join,
//! reservations acknowledged before a spend, catch-up part by part; and the property that any
//! order, loss and repetition of sync messages converges every device to the same metadata.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::BTreeMap;

use bitcoin::hashes::Hash;
use bitcoin::{OutPoint, Txid};
use bitmesh_core::encode::tagged_hash;
use bitmesh_core::wallet::device_group::{DeviceGroup, OpenError};
use bitmesh_core::wallet::device_sync::{
    DeviceSync, ReceiveError, ANTI_ENTROPY_MILLIS, DELTA_BUDGET,
};
use bitmesh_core::wallet::keys::{Keychain, Purpose};
use bitmesh_core::wallet::metadata::{LabelTarget, Metadata, Stamp};
use bitmesh_core::wire::PeerId;
use bitmesh_core::Network;
use proptest::prelude::*;

const START: u64 = 1_700_000_000_000;

struct Device {
    peer: PeerId,
    sync: DeviceSync,
    metadata: Metadata,
}

/// Devices on a network whose messages wait in `in_flight` until the test delivers them.
struct Mesh {
    devices: Vec<Device>,
    in_flight: Vec<(PeerId, PeerId, Vec<u8>)>,
    now: u64,
    draws: u64,
}

impl Mesh {
    /// Devices of wallets `seeds` (one device per entry), each peer `n` with id `[n + 1; 32]`.
    fn new(seeds: &[u8]) -> Mesh {
        let devices = seeds
            .iter()
            .enumerate()
            .map(|(n, seed)| {
                let peer = PeerId([n as u8 + 1; 32]);
                let group = DeviceGroup::from_seed(&[*seed; 64], Network::Test);
                Device {
                    peer,
                    sync: DeviceSync::new(group, peer),
                    metadata: Metadata::new(),
                }
            })
            .collect();
        Mesh {
            devices,
            in_flight: Vec::new(),
            now: START,
            draws: 0,
        }
    }

    fn random(&mut self) -> [u8; 32] {
        self.draws += 1;
        tagged_hash(b"test randomness", &[&self.draws.to_le_bytes()])
    }

    fn index(&self, peer: PeerId) -> Option<usize> {
        self.devices.iter().position(|device| device.peer == peer)
    }

    /// Moves what every device queued onto the network.
    fn collect(&mut self) {
        for device in &mut self.devices {
            for (to, payload) in device.sync.take_outbox() {
                self.in_flight.push((device.peer, to, payload));
            }
        }
    }

    /// Device `n` ticks with every device of the mesh following the topic of its own group.
    fn tick(&mut self, n: usize) {
        let topic = self.devices[n].sync.topic();
        let followers: Vec<PeerId> = self
            .devices
            .iter()
            .filter(|device| device.sync.topic() == topic)
            .map(|device| device.peer)
            .collect();
        let random = self.random();
        let (now, device) = (self.now, &mut self.devices[n]);
        device.sync.tick(now, &followers, &device.metadata, random);
        self.collect();
    }

    /// Delivers in-flight message `i`; returns what the receiver made of it.
    fn deliver(&mut self, i: usize) -> Result<bool, ReceiveError> {
        let (from, to, payload) = self.in_flight.remove(i);
        let random = self.random();
        let now = self.now;
        let n = self.index(to).expect("addressed to a device of the mesh");
        let device = &mut self.devices[n];
        let outcome = device
            .sync
            .receive(now, from, &payload, &mut device.metadata, random);
        self.collect();
        outcome
    }

    /// Delivers everything, in order, until nothing is in flight (bounded).
    fn settle(&mut self) {
        for _ in 0..10_000 {
            if self.in_flight.is_empty() {
                return;
            }
            let _ = self.deliver(0);
        }
        panic!("the devices never stop talking");
    }

    /// Device `n` writes (with a fresh stamp), the oracle takes the write, siblings are told.
    fn write(&mut self, oracle: &mut Metadata, n: usize, write: impl FnOnce(&mut Metadata, Stamp)) {
        let (now, random) = (self.now, self.random());
        let device = &mut self.devices[n];
        let stamp = device.metadata.next_stamp(device.sync.device(), now);
        write(&mut device.metadata, stamp);
        oracle.merge(&device.metadata);
        device.sync.changed(now, &device.metadata, random);
        self.collect();
    }

    fn label(&mut self, n: usize, target: u8, text: &str) {
        let now = self.now;
        let device = &mut self.devices[n];
        let stamp = device.metadata.next_stamp(device.sync.device(), now);
        device
            .metadata
            .set_label(tx_target(target), Some(text.into()), stamp);
        let random = self.random();
        let device = &mut self.devices[n];
        device.sync.changed(now, &device.metadata, random);
        self.collect();
    }
}

fn tx_target(n: u8) -> LabelTarget {
    LabelTarget::Transaction(Txid::from_byte_array([n; 32]))
}

fn coin(n: u8) -> OutPoint {
    OutPoint {
        txid: Txid::from_byte_array([n; 32]),
        vout: 0,
    }
}

/// Two devices of one wallet that have greeted each other.
fn siblings() -> Mesh {
    let mut mesh = Mesh::new(&[7, 7]);
    mesh.tick(0);
    mesh.tick(1);
    mesh.settle();
    mesh
}

#[test]
fn siblings_prove_the_seed_then_a_label_set_on_one_shows_on_the_other() {
    let mut mesh = siblings();
    let states = mesh.devices[0]
        .sync
        .siblings(mesh.now, &mesh.devices[0].metadata);
    assert_eq!(states.len(), 1);
    assert!(
        states[0].proven && states[0].online && states[0].in_sync,
        "{states:?}"
    );

    mesh.label(0, 1, "rent");
    assert_eq!(mesh.in_flight.len(), 1, "one delta to the one sibling");
    assert_eq!(mesh.deliver(0), Ok(true), "the label is news");
    assert_eq!(mesh.devices[1].metadata.label(&tx_target(1)), Some("rent"));
    mesh.settle();
    let states = mesh.devices[0]
        .sync
        .siblings(mesh.now, &mesh.devices[0].metadata);
    assert!(states[0].in_sync, "the summary acknowledged it: {states:?}");
}

#[test]
fn a_stranger_on_the_topic_reads_nothing_and_cannot_join() {
    // The stranger copies the group's topic (announcements are public) but not the seed.
    let mut mesh = Mesh::new(&[7, 7, 9]);
    let topic_followers = [
        mesh.devices[0].peer,
        mesh.devices[1].peer,
        mesh.devices[2].peer,
    ];
    let random = mesh.random();
    for n in 0..3 {
        let device = &mut mesh.devices[n];
        device
            .sync
            .tick(START, &topic_followers, &device.metadata, random);
    }
    mesh.collect();
    mesh.label(0, 1, "salary from ACME");
    for (_, _, payload) in &mesh.in_flight {
        assert!(
            !payload.windows(4).any(|window| window == b"ACME"),
            "sealed on the wire"
        );
    }
    let mut refused = 0;
    for _ in 0..100 {
        let Some(i) = mesh.in_flight.iter().position(|_| true) else {
            break;
        };
        let (from, to, _) = mesh.in_flight[i];
        let outcome = mesh.deliver(i);
        if to == mesh.devices[2].peer || from == mesh.devices[2].peer {
            assert_eq!(outcome, Err(ReceiveError::Open(OpenError::NotOurs)));
            refused += 1;
        }
    }
    assert!(refused >= 2, "both ways refused: {refused}");
    assert_eq!(
        mesh.devices[1].metadata.label(&tx_target(1)),
        Some("salary from ACME")
    );
    assert_eq!(
        mesh.devices[2].metadata,
        Metadata::new(),
        "the stranger learnt nothing"
    );
    let states = mesh.devices[0]
        .sync
        .siblings(mesh.now, &mesh.devices[0].metadata);
    let stranger = states
        .iter()
        .find(|state| state.peer == mesh.devices[2].peer)
        .expect("greeted");
    assert!(!stranger.proven && !stranger.online);
}

#[test]
fn only_a_proven_sibling_is_heard_and_proofs_are_checked() {
    let group = DeviceGroup::from_seed(&[7; 64], Network::Test);
    let (alice, mallory) = (PeerId([1; 32]), PeerId([2; 32]));
    let mut sync = DeviceSync::new(DeviceGroup::from_seed(&[7; 64], Network::Test), alice);
    let mut metadata = Metadata::new();
    let mut delta = vec![2u8, 1];
    let mut news = Metadata::new();
    news.mark_used(Purpose::Bip84, Keychain::External, 5);
    delta.extend_from_slice(&news.encode());
    let sealed = group.seal(mallory, alice, 1, [1; 12], &delta);
    assert_eq!(
        sync.receive(START, mallory, &sealed, &mut metadata, [0; 32]),
        Err(ReceiveError::Unproven)
    );

    let hello = |millis: u64, proof: &[u8], counter: u64| {
        let mut plaintext = vec![1u8];
        plaintext.extend_from_slice(&millis.to_le_bytes());
        plaintext.extend_from_slice(proof);
        plaintext.push(0);
        plaintext.extend_from_slice(&Metadata::new().summary().encode());
        group.seal(mallory, alice, counter, [counter as u8; 12], &plaintext)
    };
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let for_someone_else = group.prove(&secp, mallory, PeerId([3; 32]), START, &[0; 32]);
    assert_eq!(
        sync.receive(
            START,
            mallory,
            &hello(START, for_someone_else.as_ref(), 2),
            &mut metadata,
            [0; 32]
        ),
        Err(ReceiveError::BadProof)
    );
    let old = group.prove(&secp, mallory, alice, START - 3_600_000, &[0; 32]);
    assert_eq!(
        sync.receive(
            START,
            mallory,
            &hello(START - 3_600_000, old.as_ref(), 3),
            &mut metadata,
            [0; 32]
        ),
        Err(ReceiveError::StaleProof)
    );
    let proof = group.prove(&secp, mallory, alice, START, &[0; 32]);
    assert_eq!(
        sync.receive(
            START,
            mallory,
            &hello(START, proof.as_ref(), 4),
            &mut metadata,
            [0; 32]
        ),
        Ok(false)
    );
    let replayed = hello(START, proof.as_ref(), 4);
    assert_eq!(
        sync.receive(START, mallory, &replayed, &mut metadata, [0; 32]),
        Err(ReceiveError::Open(OpenError::Replayed))
    );
    let sealed = group.seal(mallory, alice, 5, [5; 12], &delta);
    assert_eq!(
        sync.receive(START, mallory, &sealed, &mut metadata, [0; 32]),
        Ok(true)
    );
    assert_eq!(metadata.next_index(Purpose::Bip84, Keychain::External), 5);

    let mut tampered = group.seal(mallory, alice, 6, [6; 12], &delta);
    *tampered.last_mut().unwrap() ^= 1;
    assert_eq!(
        sync.receive(START, mallory, &tampered, &mut metadata, [0; 32]),
        Err(ReceiveError::Open(OpenError::NotOurs))
    );
    let garbage = group.seal(mallory, alice, 7, [7; 12], &[9, 9, 9]);
    assert_eq!(
        sync.receive(START, mallory, &garbage, &mut metadata, [0; 32]),
        Err(ReceiveError::Malformed("message kind"))
    );
    let short = group.seal(mallory, alice, 8, [8; 12], &[2]);
    assert_eq!(
        sync.receive(START, mallory, &short, &mut metadata, [0; 32]),
        Err(ReceiveError::Malformed("message (truncated)"))
    );
}

#[test]
fn a_spend_waits_for_its_reservation_to_reach_the_online_siblings() {
    let mut mesh = siblings();
    let now = mesh.now;
    let device = &mut mesh.devices[0];
    let stamp = device.metadata.next_stamp(device.sync.device(), now);
    device
        .metadata
        .reserve(coin(1), stamp.device, now + 600_000, stamp);
    let sibling = mesh.devices[1].sync.device();
    assert_eq!(mesh.devices[0].sync.awaiting(now, &stamp), vec![sibling]);
    let random = mesh.random();
    let device = &mut mesh.devices[0];
    device.sync.changed(now, &device.metadata, random);
    mesh.collect();
    assert_eq!(mesh.deliver(0), Ok(true), "the delta");
    assert!(mesh.devices[1]
        .metadata
        .reservation(&coin(1), now)
        .is_some());
    assert_eq!(mesh.devices[0].sync.awaiting(now, &stamp), vec![sibling]);
    mesh.settle();
    assert!(
        mesh.devices[0].sync.awaiting(now, &stamp).is_empty(),
        "acknowledged"
    );

    // A sibling gone quiet for longer than the online window is not waited for.
    let later = now + 10 * ANTI_ENTROPY_MILLIS;
    let device = &mut mesh.devices[0];
    let stamp = device.metadata.next_stamp(device.sync.device(), later);
    device
        .metadata
        .reserve(coin(2), stamp.device, later + 1, stamp);
    assert!(mesh.devices[0].sync.awaiting(later, &stamp).is_empty());
}

#[test]
fn paused_devices_neither_send_nor_take_and_catch_up_when_resumed() {
    let mut mesh = siblings();
    mesh.devices[1].sync.set_paused(true);
    mesh.label(0, 1, "while apart");
    assert_eq!(mesh.deliver(0), Err(ReceiveError::Paused));
    mesh.label(1, 2, "also while apart");
    assert!(mesh.in_flight.is_empty(), "a paused device sends nothing");
    mesh.devices[1].sync.set_paused(false);
    mesh.now += ANTI_ENTROPY_MILLIS;
    mesh.tick(1);
    mesh.settle();
    for n in 0..2 {
        assert_eq!(
            mesh.devices[n].metadata.label(&tx_target(1)),
            Some("while apart")
        );
        assert_eq!(
            mesh.devices[n].metadata.label(&tx_target(2)),
            Some("also while apart")
        );
    }
}

#[test]
fn a_device_back_after_a_thousand_changes_catches_up_part_by_part() {
    let mut mesh = siblings();
    mesh.devices[1].sync.set_paused(true);
    for n in 0..1_000u32 {
        let now = mesh.now + u64::from(n);
        let device = &mut mesh.devices[0];
        let stamp = device.metadata.next_stamp(device.sync.device(), now);
        device.metadata.set_label(
            LabelTarget::Address(format!("bcrt1q{n:0>38}")),
            Some(format!("invoice {n} for a customer, paid by card")),
            stamp,
        );
    }
    mesh.now += 2_000;
    mesh.devices[1].sync.set_paused(false);
    mesh.tick(1);
    let mut deltas = 0;
    for _ in 0..1_000 {
        let Some((_, _, payload)) = mesh.in_flight.first() else {
            break;
        };
        assert!(
            payload.len() < DELTA_BUDGET + 4_096,
            "a routed message holds it"
        );
        if mesh.in_flight[0].0 == mesh.devices[0].peer && payload.len() > 10_000 {
            deltas += 1;
        }
        let _ = mesh.deliver(0);
    }
    assert!(mesh.in_flight.is_empty());
    assert!(deltas >= 2, "more than one part: {deltas}");
    assert_eq!(mesh.devices[1].metadata.labels().count(), 1_000);
}

/// What must agree between devices (last-seen times are local observations and may differ).
fn shared_view(metadata: &Metadata) -> impl PartialEq + std::fmt::Debug {
    let labels: BTreeMap<LabelTarget, String> = metadata
        .labels()
        .map(|(target, label)| (target.clone(), label.to_owned()))
        .collect();
    let reserved: Vec<bool> = (0..4)
        .map(|n| metadata.reservation(&coin(n), START).is_some())
        .collect();
    let names: Vec<Option<String>> = metadata
        .devices()
        .map(|(_, info)| info.name.as_ref().map(|(_, name)| name.clone()))
        .filter(Option::is_some)
        .collect();
    let indexes = [
        metadata.next_index(Purpose::Bip84, Keychain::External),
        metadata.next_index(Purpose::Bip84, Keychain::Internal),
    ];
    (
        labels,
        reserved,
        names,
        indexes,
        metadata.version_vector().clone(),
    )
}

#[derive(Debug, Clone)]
enum Step {
    Label(usize, u8, u8),
    Reserve(usize, u8),
    Use(usize, u32),
    Name(usize, u8),
    Tick(usize),
    Deliver(usize),
    Drop(usize),
    Repeat(usize),
    Wait(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => (0usize..3, 0u8..4, 0u8..3).prop_map(|(d, t, l)| Step::Label(d, t, l)),
        1 => (0usize..3, 0u8..4).prop_map(|(d, c)| Step::Reserve(d, c)),
        1 => (0usize..3, 0u32..20).prop_map(|(d, n)| Step::Use(d, n)),
        1 => (0usize..3, 0u8..3).prop_map(|(d, n)| Step::Name(d, n)),
        1 => (0usize..3).prop_map(Step::Tick),
        3 => any::<usize>().prop_map(Step::Deliver),
        1 => any::<usize>().prop_map(Step::Drop),
        1 => any::<usize>().prop_map(Step::Repeat),
        1 => (0u64..40_000).prop_map(Step::Wait),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Three devices write, tick and talk over a network that reorders, loses and repeats
    /// messages; then the network heals for a few anti-entropy rounds. Every device ends with
    /// the merge of every write.
    #[test]
    fn any_order_loss_and_repetition_of_sync_messages_converges(steps in prop::collection::vec(step(), 1..150)) {
        let mut mesh = Mesh::new(&[7, 7, 7]);
        let mut oracle = Metadata::new();
        for step in steps {
            match step {
                Step::Label(d, t, l) => mesh.write(&mut oracle, d, |metadata, stamp| {
                    metadata.set_label(tx_target(t), Some(format!("label {l}")), stamp)
                }),
                Step::Name(d, n) => mesh.write(&mut oracle, d, |metadata, stamp| {
                    metadata.set_device_name(stamp.device, format!("device {n}"), stamp)
                }),
                Step::Reserve(d, c) => mesh.write(&mut oracle, d, |metadata, stamp| {
                    metadata.reserve(coin(c), stamp.device, START + 3_600_000, stamp)
                }),
                Step::Use(d, n) => mesh.write(&mut oracle, d, |metadata, _| {
                    metadata.mark_used(Purpose::Bip84, Keychain::External, n)
                }),
                Step::Tick(d) => mesh.tick(d),
                Step::Deliver(i) if !mesh.in_flight.is_empty() => {
                    let i = i % mesh.in_flight.len();
                    let _ = mesh.deliver(i);
                }
                Step::Drop(i) if !mesh.in_flight.is_empty() => {
                    let i = i % mesh.in_flight.len();
                    mesh.in_flight.remove(i);
                }
                Step::Repeat(i) if !mesh.in_flight.is_empty() => {
                    let i = i % mesh.in_flight.len();
                    let copy = mesh.in_flight[i].clone();
                    mesh.in_flight.push(copy);
                }
                Step::Wait(millis) => mesh.now += millis,
                _ => {}
            }
            mesh.collect();
        }
        // The network heals: a few rounds of greetings, every message delivered.
        for _ in 0..4 {
            mesh.now += ANTI_ENTROPY_MILLIS;
            for d in 0..3 {
                mesh.tick(d);
            }
            mesh.settle();
        }
        let expected = shared_view(&oracle);
        for device in &mesh.devices {
            prop_assert_eq!(&shared_view(&device.metadata), &expected);
        }
    }
}
