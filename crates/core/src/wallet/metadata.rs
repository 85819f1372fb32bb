//! The wallet's metadata shared by every device of one wallet, as a state-based CRDT: any two
//! copies merge into the same value whatever the order, repetition or grouping of merges
//! (commutative, associative, idempotent), so devices converge without coordination.
//!
//! - used address indexes: one max-register per account chain;
//! - labels: a last-writer-wins map (a removed label is kept as a tombstone);
//! - coin reservations: last-writer-wins per coin, each with an expiry (a device releases its
//!   reservation by writing one that has already expired);
//! - devices: a last-writer-wins name and a max-register "last seen" per device.
//!
//! "Last writer" is decided by a [`Stamp`] (time, then device id) and, were two writes to carry
//! the same stamp, by their values: the outcome never depends on arrival order. Time is an input.

use std::collections::BTreeMap;

use bitcoin::{OutPoint, Txid};

use super::keys::{Keychain, Purpose};

/// A device of the wallet: 16 random bytes drawn when it joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(pub [u8; 16]);

/// When and by whom a value was written: orders concurrent writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Stamp {
    /// The writer's clock, in milliseconds since the Unix epoch.
    pub millis: u64,
    /// The writer.
    pub device: DeviceId,
}

/// What a label is attached to (as in BIP329's types).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LabelTarget {
    /// A transaction.
    Transaction(Txid),
    /// An address, as text.
    Address(String),
    /// One output.
    Output(OutPoint),
}

/// A coin kept aside for a spend a device is about to sign.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reservation {
    /// The device spending it.
    pub device: DeviceId,
    /// Until when (milliseconds since the epoch) the reservation holds.
    pub until_millis: u64,
}

/// What the wallet knows of one device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Its name and when it was set.
    pub name: Option<(Stamp, String)>,
    /// The latest time it was seen.
    pub last_seen_millis: u64,
}

/// The metadata all devices of a wallet share.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    next_index: BTreeMap<(Purpose, Keychain), u32>,
    labels: BTreeMap<LabelTarget, (Stamp, Option<String>)>,
    reservations: BTreeMap<OutPoint, (Stamp, Reservation)>,
    devices: BTreeMap<DeviceId, DeviceInfo>,
}

impl Metadata {
    /// Empty metadata.
    pub fn new() -> Metadata {
        Metadata::default()
    }

    /// The first index of `purpose`/`keychain` no device has handed out.
    pub fn next_index(&self, purpose: Purpose, keychain: Keychain) -> u32 {
        self.next_index
            .get(&(purpose, keychain))
            .copied()
            .unwrap_or(0)
    }

    /// Records that every index below `next` of `purpose`/`keychain` is used.
    pub fn mark_used(&mut self, purpose: Purpose, keychain: Keychain, next: u32) {
        let slot = self.next_index.entry((purpose, keychain)).or_default();
        *slot = (*slot).max(next);
    }

    /// Hands out the next unused index of `purpose`/`keychain` and records it as used.
    pub fn allocate_index(&mut self, purpose: Purpose, keychain: Keychain) -> u32 {
        let index = self.next_index(purpose, keychain);
        self.mark_used(purpose, keychain, index + 1);
        index
    }

    /// The label of `target`, if any.
    pub fn label(&self, target: &LabelTarget) -> Option<&str> {
        self.labels
            .get(target)
            .and_then(|(_, label)| label.as_deref())
    }

    /// Every label, by target.
    pub fn labels(&self) -> impl Iterator<Item = (&LabelTarget, &str)> {
        self.labels
            .iter()
            .filter_map(|(target, (_, label))| label.as_deref().map(|label| (target, label)))
    }

    /// Sets (or with `None` removes) the label of `target`.
    pub fn set_label(&mut self, target: LabelTarget, label: Option<String>, stamp: Stamp) {
        lww_insert(&mut self.labels, target, (stamp, label));
    }

    /// Reserves `coin` for `device` until `until_millis`.
    pub fn reserve(&mut self, coin: OutPoint, device: DeviceId, until_millis: u64, stamp: Stamp) {
        lww_insert(
            &mut self.reservations,
            coin,
            (
                stamp,
                Reservation {
                    device,
                    until_millis,
                },
            ),
        );
    }

    /// Releases `coin` (a reservation that expired at once).
    pub fn release(&mut self, coin: OutPoint, stamp: Stamp) {
        self.reserve(coin, stamp.device, 0, stamp);
    }

    /// The reservation holding `coin` at `now_millis`, if any.
    pub fn reservation(&self, coin: &OutPoint, now_millis: u64) -> Option<&Reservation> {
        self.reservations
            .get(coin)
            .map(|(_, reservation)| reservation)
            .filter(|reservation| reservation.until_millis > now_millis)
    }

    /// Names `device`.
    pub fn set_device_name(&mut self, device: DeviceId, name: String, stamp: Stamp) {
        let info = self.devices.entry(device).or_default();
        let candidate = (stamp, name);
        if info
            .name
            .as_ref()
            .is_none_or(|current| candidate > *current)
        {
            info.name = Some(candidate);
        }
    }

    /// Records that `device` was seen at `millis`.
    pub fn seen(&mut self, device: DeviceId, millis: u64) {
        let info = self.devices.entry(device).or_default();
        info.last_seen_millis = info.last_seen_millis.max(millis);
    }

    /// Every device the wallet knows.
    pub fn devices(&self) -> impl Iterator<Item = (&DeviceId, &DeviceInfo)> {
        self.devices.iter()
    }

    /// Merges `other` into this copy.
    pub fn merge(&mut self, other: &Metadata) {
        for (key, next) in &other.next_index {
            let slot = self.next_index.entry(*key).or_default();
            *slot = (*slot).max(*next);
        }
        for (target, value) in &other.labels {
            lww_insert(&mut self.labels, target.clone(), value.clone());
        }
        for (coin, value) in &other.reservations {
            lww_insert(&mut self.reservations, *coin, value.clone());
        }
        for (device, info) in &other.devices {
            if let Some((stamp, name)) = &info.name {
                self.set_device_name(*device, name.clone(), *stamp);
            }
            self.seen(*device, info.last_seen_millis);
        }
    }
}

/// Keeps the greater of the present value and `value` (stamp first, then the value itself).
fn lww_insert<K: Ord, V: Ord>(map: &mut BTreeMap<K, V>, key: K, value: V) {
    match map.get_mut(&key) {
        Some(current) if value > *current => *current = value,
        Some(_) => {}
        None => {
            map.insert(key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash;

    const A: DeviceId = DeviceId([1; 16]);
    const B: DeviceId = DeviceId([2; 16]);

    fn at(millis: u64, device: DeviceId) -> Stamp {
        Stamp { millis, device }
    }

    fn coin(n: u8) -> OutPoint {
        OutPoint::new(Txid::from_byte_array([n; 32]), 0)
    }

    #[test]
    fn devices_never_hand_out_the_same_index_after_merging() {
        let mut laptop = Metadata::new();
        let mut phone = Metadata::new();
        assert_eq!(laptop.allocate_index(Purpose::Bip84, Keychain::External), 0);
        phone.merge(&laptop);
        assert_eq!(phone.allocate_index(Purpose::Bip84, Keychain::External), 1);
        assert_eq!(
            phone.next_index(Purpose::Bip84, Keychain::Internal),
            0,
            "chains are apart"
        );
        laptop.merge(&phone);
        assert_eq!(laptop.next_index(Purpose::Bip84, Keychain::External), 2);
    }

    #[test]
    fn the_later_label_wins_and_removals_stick() {
        let target = LabelTarget::Transaction(Txid::from_byte_array([3; 32]));
        let mut laptop = Metadata::new();
        let mut phone = Metadata::new();
        laptop.set_label(target.clone(), Some("rent".into()), at(10, A));
        phone.set_label(target.clone(), Some("groceries".into()), at(20, B));
        laptop.merge(&phone);
        assert_eq!(laptop.label(&target), Some("groceries"));
        phone.set_label(target.clone(), None, at(30, B));
        laptop.merge(&phone);
        assert_eq!(laptop.label(&target), None);
        assert_eq!(laptop.labels().count(), 0);
    }

    #[test]
    fn reservations_expire_and_release() {
        let mut state = Metadata::new();
        state.reserve(coin(1), A, 1_000, at(100, A));
        assert_eq!(state.reservation(&coin(1), 999).map(|r| r.device), Some(A));
        assert_eq!(state.reservation(&coin(1), 1_000), None, "expired");
        state.reserve(coin(2), A, 5_000, at(100, A));
        state.release(coin(2), at(200, A));
        assert_eq!(state.reservation(&coin(2), 300), None);
    }

    #[test]
    fn device_names_and_last_seen() {
        let mut state = Metadata::new();
        state.set_device_name(A, "laptop".into(), at(5, A));
        state.set_device_name(A, "old name".into(), at(1, B));
        state.seen(A, 50);
        state.seen(A, 40);
        let info = state.devices().next().unwrap().1;
        assert_eq!(
            info.name.as_ref().map(|(_, name)| name.as_str()),
            Some("laptop")
        );
        assert_eq!(info.last_seen_millis, 50);
    }
}
