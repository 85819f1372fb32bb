//! Property: wallet metadata merges like a CRDT — commutative, associative, idempotent — so any
//! order, duplication or grouping of merges leaves every device with the same value; and delta
//! sync (each copy sends another what its version vector lacks) converges to the same value as
//! whole-state merges whatever deltas are lost, repeated, delayed or built from stale vectors.
#![cfg(not(target_arch = "wasm32"))]

use bitcoin::hashes::Hash;
use bitcoin::{OutPoint, Txid};
use bitmesh_core::wallet::keys::{Keychain, Purpose};
use bitmesh_core::wallet::metadata::{DeviceId, LabelTarget, Metadata, Stamp, VersionVector};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Use(bool, bool, u32),
    Label(u8, Option<u8>, u64),
    Reserve(u8, u64, u64),
    Release(u8, u64),
    Name(u8, u64),
    Seen(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (any::<bool>(), any::<bool>(), 0u32..50).prop_map(|(p, k, n)| Op::Use(p, k, n)),
        (0u8..4, proptest::option::of(0u8..3), 0u64..20).prop_map(|(t, l, m)| Op::Label(t, l, m)),
        (0u8..4, 0u64..50, 0u64..20).prop_map(|(c, u, m)| Op::Reserve(c, u, m)),
        (0u8..4, 0u64..20).prop_map(|(c, m)| Op::Release(c, m)),
        (0u8..3, 0u64..20).prop_map(|(n, m)| Op::Name(n, m)),
        (0u64..100).prop_map(Op::Seen),
    ]
}

/// A replica after `device` applied `ops`. Small value ranges make concurrent writes with equal
/// stamps and equal keys common.
fn replica(device: u8, ops: &[Op]) -> Metadata {
    let id = DeviceId([device; 16]);
    let mut state = Metadata::new();
    for op in ops {
        match *op {
            Op::Use(p, k, n) => state.mark_used(
                if p { Purpose::Bip84 } else { Purpose::Bip86 },
                if k {
                    Keychain::External
                } else {
                    Keychain::Internal
                },
                n,
            ),
            Op::Label(t, label, millis) => state.set_label(
                LabelTarget::Transaction(Txid::from_byte_array([t; 32])),
                label.map(|l| format!("label {l}")),
                Stamp { millis, device: id },
            ),
            Op::Reserve(c, until, millis) => {
                state.reserve(coin(c), id, until, Stamp { millis, device: id })
            }
            Op::Release(c, millis) => state.release(coin(c), Stamp { millis, device: id }),
            Op::Name(n, millis) => {
                state.set_device_name(id, format!("device {n}"), Stamp { millis, device: id })
            }
            Op::Seen(millis) => state.seen(id, millis),
        }
    }
    state
}

/// Applies `op` as `device` writes it now, to its copy `state` and to `oracle` (every write of
/// every device, applied directly), with the same stamp: from `state`, as a real device makes
/// them, never behind its earlier ones whatever `clock` says.
fn write(state: &mut Metadata, oracle: &mut Metadata, device: u8, op: &Op, clock: u64) {
    let id = DeviceId([device; 16]);
    let stamp = state.next_stamp(id, clock);
    for target in [state, oracle] {
        match *op {
            Op::Use(p, k, n) => target.mark_used(
                if p { Purpose::Bip84 } else { Purpose::Bip86 },
                if k {
                    Keychain::External
                } else {
                    Keychain::Internal
                },
                n,
            ),
            Op::Label(t, ref label, _) => target.set_label(
                LabelTarget::Transaction(Txid::from_byte_array([t; 32])),
                label.map(|l| format!("label {l}")),
                stamp,
            ),
            Op::Reserve(c, until, _) => target.reserve(coin(c), id, until, stamp),
            Op::Release(c, _) => target.release(coin(c), stamp),
            Op::Name(n, _) => target.set_device_name(id, format!("device {n}"), stamp),
            Op::Seen(millis) => target.seen(id, millis),
        }
    }
}

/// One step of the delta-sync scenario.
#[derive(Debug, Clone)]
enum Step {
    /// A device writes at a clock reading (which may step back).
    Write(usize, Op, u64),
    /// `from` builds a delta for `to` from the vector `to` had `stale` syncs ago (0: now);
    /// the network loses it, delivers it, delivers it twice, or holds it back.
    Sync {
        from: usize,
        to: usize,
        stale: usize,
        fate: Fate,
    },
}

#[derive(Debug, Clone, Copy)]
enum Fate {
    Lost,
    Delivered,
    Twice,
    Delayed,
}

const DEVICES: usize = 3;

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..DEVICES, op(), 0u64..40).prop_map(|(device, op, clock)| Step::Write(device, op, clock)),
        (0..DEVICES, 0..DEVICES, 0usize..4, 0u8..4).prop_map(|(from, to, stale, fate)| {
            Step::Sync {
                from,
                to,
                stale,
                fate: [Fate::Lost, Fate::Delivered, Fate::Twice, Fate::Delayed][usize::from(fate)],
            }
        }),
    ]
}

fn coin(n: u8) -> OutPoint {
    OutPoint::new(Txid::from_byte_array([n; 32]), 1)
}

fn merged(a: &Metadata, b: &Metadata) -> Metadata {
    let mut out = a.clone();
    out.merge(b);
    out
}

proptest! {
    #[test]
    fn merge_is_commutative_associative_and_idempotent(
        a in proptest::collection::vec(op(), 0..20),
        b in proptest::collection::vec(op(), 0..20),
        c in proptest::collection::vec(op(), 0..20),
    ) {
        let (a, b, c) = (replica(1, &a), replica(2, &b), replica(3, &c));
        prop_assert_eq!(merged(&a, &b), merged(&b, &a));
        prop_assert_eq!(merged(&merged(&a, &b), &c), merged(&a, &merged(&b, &c)));
        prop_assert_eq!(merged(&a, &a), a.clone());
        let all = merged(&merged(&a, &b), &c);
        prop_assert_eq!(merged(&all, &b), all.clone());
    }

    #[test]
    fn any_delivery_order_converges(
        ops in proptest::collection::vec(proptest::collection::vec(op(), 0..12), 3),
        order in proptest::collection::vec((0usize..3, 0usize..3), 0..30),
    ) {
        let mut replicas: Vec<Metadata> = ops.iter().enumerate().map(|(i, ops)| replica(i as u8 + 1, ops)).collect();
        // Random gossip, with repeats, then everyone hears from everyone.
        for (from, to) in order {
            let sent = replicas[from].clone();
            replicas[to].merge(&sent);
        }
        for from in 0..3 {
            for to in 0..3 {
                let sent = replicas[from].clone();
                replicas[to].merge(&sent);
            }
        }
        prop_assert_eq!(&replicas[0], &replicas[1]);
        prop_assert_eq!(&replicas[1], &replicas[2]);
    }

    #[test]
    fn delta_sync_converges_whatever_the_network_does(
        steps in proptest::collection::vec(step(), 0..60),
        delayed_order in proptest::collection::vec(any::<u16>(), 0..60),
    ) {
        let mut copies = vec![Metadata::new(); DEVICES];
        let mut oracle = Metadata::new();
        // The vectors each device had, newest last (what a sibling may hold of it).
        let mut vectors: Vec<Vec<VersionVector>> = vec![vec![VersionVector::default()]; DEVICES];
        let mut held_back: Vec<(usize, Metadata)> = Vec::new();
        for step in &steps {
            match step {
                Step::Write(device, op, clock) => {
                    write(&mut copies[*device], &mut oracle, *device as u8 + 1, op, *clock);
                }
                Step::Sync { from, to, stale, fate } => {
                    let known = &vectors[*to];
                    let vector = &known[known.len().saturating_sub(1 + stale)];
                    let delta = copies[*from].delta_since(vector);
                    match fate {
                        Fate::Lost => {}
                        Fate::Delivered => copies[*to].merge(&delta),
                        Fate::Twice => {
                            copies[*to].merge(&delta);
                            copies[*to].merge(&delta);
                        }
                        Fate::Delayed => held_back.push((*to, delta)),
                    }
                }
            }
            for (device, copy) in copies.iter().enumerate() {
                vectors[device].push(copy.version_vector().clone());
            }
        }
        // The delayed deltas arrive, in any order.
        let mut order: Vec<usize> = (0..held_back.len()).collect();
        for (i, swap) in delayed_order.iter().enumerate() {
            if order.len() > 1 {
                let (a, b) = (i % order.len(), usize::from(*swap) % order.len());
                order.swap(a, b);
            }
        }
        for index in order {
            let (to, delta) = &held_back[index];
            copies[*to].merge(delta);
        }
        // Then two rounds of anti-entropy with fresh vectors and no loss.
        for _ in 0..2 {
            for from in 0..DEVICES {
                for to in 0..DEVICES {
                    let delta = copies[from].delta_since(copies[to].version_vector());
                    copies[to].merge(&delta);
                }
            }
        }
        for copy in &copies {
            prop_assert_eq!(copy, &oracle);
        }
    }
}
