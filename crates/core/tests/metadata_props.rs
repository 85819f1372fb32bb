//! Property: wallet metadata merges like a CRDT — commutative, associative, idempotent — so any
//! order, duplication or grouping of merges leaves every device with the same value.
#![cfg(not(target_arch = "wasm32"))]

use bitcoin::hashes::Hash;
use bitcoin::{OutPoint, Txid};
use bitmesh_core::wallet::keys::{Keychain, Purpose};
use bitmesh_core::wallet::metadata::{DeviceId, LabelTarget, Metadata, Stamp};
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
}
