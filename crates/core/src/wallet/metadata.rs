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

use core::fmt;
use std::collections::BTreeMap;

use bitcoin::hashes::Hash;
use bitcoin::{OutPoint, Txid};

use crate::encode::{truncated, EndOfInput, Reader};

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
    /// The receive address index the device shows (only it writes this, stamped; it only
    /// grows; every delta carries it, being small).
    pub receive_index: Option<u32>,
}

/// The metadata all devices of a wallet share.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    next_index: BTreeMap<(Purpose, Keychain), u32>,
    labels: BTreeMap<LabelTarget, (Stamp, Option<String>)>,
    reservations: BTreeMap<OutPoint, (Stamp, Reservation)>,
    devices: BTreeMap<DeviceId, DeviceInfo>,
    /// The latest stamp time of each writer this copy has seen (a write that lost counts).
    versions: VersionVector,
}

/// How far a copy has seen each device's writes: the latest stamp time per writer. A device's
/// stamps only grow ([`Metadata::next_stamp`]), and a copy takes deltas whole, so a copy that
/// has seen a device's write at `t` holds every write of that device up to `t` (or what
/// replaced it): a sibling sends it only what is newer ([`Metadata::delta_since`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct VersionVector(BTreeMap<DeviceId, u64>);

impl VersionVector {
    /// The latest write of `device` seen (0: none).
    pub fn get(&self, device: &DeviceId) -> u64 {
        self.0.get(device).copied().unwrap_or(0)
    }

    fn saw(&mut self, stamp: &Stamp) {
        let seen = self.0.entry(stamp.device).or_default();
        *seen = (*seen).max(stamp.millis);
    }

    fn merge(&mut self, other: &VersionVector) {
        for (device, millis) in &other.0 {
            let seen = self.0.entry(*device).or_default();
            *seen = (*seen).max(*millis);
        }
    }

    /// Whether `stamp` is newer than what this vector has seen of its writer.
    fn lacks(&self, stamp: &Stamp) -> bool {
        stamp.millis > self.get(&stamp.device)
    }

    /// Count (u16) then (device `[u8; 16]`, millis u64) in device order.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + self.0.len() * 24);
        out.extend_from_slice(&(self.0.len() as u16).to_le_bytes());
        for (device, millis) in &self.0 {
            out.extend_from_slice(&device.0);
            out.extend_from_slice(&millis.to_le_bytes());
        }
        out
    }

    /// Reads what [`VersionVector::encode`] wrote from the start of `reader`.
    pub fn decode_from(reader: &mut Reader<'_>) -> Result<VersionVector, MetadataDecodeError> {
        let mut vector = VersionVector::default();
        for _ in 0..reader.u16()? {
            let device = DeviceId(reader.array()?);
            let millis = reader.u64()?;
            vector.saw(&Stamp { millis, device });
        }
        Ok(vector)
    }
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

    /// A stamp for `device`'s next write: its clock, but always after every write of that
    /// device this copy has seen, so a device's stamps grow even if its clock steps back.
    pub fn next_stamp(&self, device: DeviceId, now_millis: u64) -> Stamp {
        Stamp {
            millis: now_millis.max(self.versions.get(&device) + 1),
            device,
        }
    }

    /// How far this copy has seen each device's writes.
    pub fn version_vector(&self) -> &VersionVector {
        &self.versions
    }

    /// What a copy that has seen `seen` lacks of this one: the writes newer than `seen` of
    /// their writer, with the address indexes and last-seen times (small, always sent) and
    /// this copy's version vector. Merging it gives that copy everything this one holds.
    pub fn delta_since(&self, seen: &VersionVector) -> Metadata {
        // Copies thinned out, not maps collected afresh: `collect` into a `BTreeMap` sorts
        // its entries first, a copy of the sort in the page for each map type.
        let newer = |stamp: &Stamp| seen.lacks(stamp);
        let mut labels = self.labels.clone();
        labels.retain(|_, (stamp, _)| newer(stamp));
        let mut reservations = self.reservations.clone();
        reservations.retain(|_, (stamp, _)| newer(stamp));
        let mut devices = self.devices.clone();
        for info in devices.values_mut() {
            info.name = info.name.take().filter(|(stamp, _)| newer(stamp));
        }
        Metadata {
            next_index: self.next_index.clone(),
            labels,
            reservations,
            devices,
            versions: self.versions.clone(),
        }
    }

    /// [`Metadata::delta_since`] cut to about `budget` encoded bytes (never less than the
    /// writes of one stamp, so every part makes progress), and whether it is all of it. A part
    /// claims of each writer only what it carries in full: writes are taken oldest first, and
    /// a writer with writes left out is claimed up to just before the first of them, so the
    /// other copy asks again for exactly what is missing.
    pub fn delta_since_bounded(&self, seen: &VersionVector, budget: usize) -> (Metadata, bool) {
        let mut delta = self.delta_since(seen);
        let mut writes: Vec<(Stamp, usize, Write)> = Vec::new();
        for (target, (stamp, label)) in &delta.labels {
            let size = 1
                + 36
                + 2
                + MAX_TEXT_LEN.min(label_target_len(target))
                + label.as_ref().map_or(1, |label| 3 + label.len())
                + STAMP_LEN;
            writes.push((*stamp, size, Write::Label(target.clone())));
        }
        for (coin, (stamp, _)) in &delta.reservations {
            writes.push((*stamp, 36 + STAMP_LEN + 24, Write::Reservation(*coin)));
        }
        for (device, info) in &delta.devices {
            if let Some((stamp, name)) = &info.name {
                writes.push((
                    *stamp,
                    STAMP_LEN + 3 + name.len(),
                    Write::DeviceName(*device),
                ));
            }
        }
        writes.sort_unstable_by_key(|write| write.0);
        let mut used = 0usize;
        let mut cut = writes.len();
        for (position, (stamp, size, _)) in writes.iter().enumerate() {
            // Writes of one stamp stay together (one reservation of several coins).
            let same_as_previous = position > 0 && writes[position - 1].0 == *stamp;
            if used + size > budget && position > 0 && !same_as_previous {
                cut = position;
                break;
            }
            used += size;
        }
        if cut == writes.len() {
            return (delta, true);
        }
        for (stamp, _, write) in &writes[cut..] {
            match write {
                Write::Label(target) => {
                    delta.labels.remove(target);
                }
                Write::Reservation(coin) => {
                    delta.reservations.remove(coin);
                }
                Write::DeviceName(device) => {
                    if let Some(info) = delta.devices.get_mut(device) {
                        info.name = None;
                    }
                }
            }
            let claimed = delta.versions.0.entry(stamp.device).or_default();
            *claimed = (*claimed).min(stamp.millis.saturating_sub(1));
        }
        (delta, false)
    }

    /// What a copy holds, in short: its version vector and used address indexes (no entries).
    /// A sibling compares it with [`Metadata::has_news_for`]; it is never merged.
    pub fn summary(&self) -> Metadata {
        Metadata {
            next_index: self.next_index.clone(),
            versions: self.versions.clone(),
            ..Metadata::default()
        }
    }

    /// Whether this copy holds something a copy summed up as `summary` lacks: a newer write of
    /// some device, or a higher used address index.
    pub fn has_news_for(&self, summary: &Metadata) -> bool {
        self.versions
            .0
            .iter()
            .any(|(device, millis)| *millis > summary.versions.get(device))
            || self
                .next_index
                .iter()
                .any(|(key, next)| *next > summary.next_index.get(key).copied().unwrap_or(0))
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
        let target = match target {
            LabelTarget::Address(address) => LabelTarget::Address(truncated(address, MAX_TEXT_LEN)),
            other => other,
        };
        let label = label.map(|label| truncated(label, MAX_TEXT_LEN));
        self.versions.saw(&stamp);
        lww_insert(&mut self.labels, target, (stamp, label));
    }

    /// Reserves `coin` for `device` until `until_millis`.
    pub fn reserve(&mut self, coin: OutPoint, device: DeviceId, until_millis: u64, stamp: Stamp) {
        self.versions.saw(&stamp);
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

    /// Reserves `coins` for `device` until `until_millis` (0 releases them) in one write,
    /// stamped at `now_millis` after every write of `device` seen; returns the stamp.
    pub fn reserve_coins(
        &mut self,
        coins: &[OutPoint],
        device: DeviceId,
        until_millis: u64,
        now_millis: u64,
    ) -> Stamp {
        let stamp = self.next_stamp(device, now_millis);
        for coin in coins {
            self.reserve(*coin, device, until_millis, stamp);
        }
        stamp
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
        self.versions.saw(&stamp);
        let info = self.devices.entry(device).or_default();
        let candidate = (stamp, truncated(name, MAX_TEXT_LEN));
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

    /// Records that the device of `stamp` shows the receive address of `index`. The claim is
    /// a write of that device (its stamp enters the version vector), so a sibling whose
    /// summary has the same used indexes still learns of it: two devices that claimed the same
    /// index before they synced find out.
    pub fn set_receive_index(&mut self, index: u32, stamp: Stamp) {
        self.raise_receive_index(stamp.device, index);
        self.versions.saw(&stamp);
    }

    fn raise_receive_index(&mut self, device: DeviceId, index: u32) {
        let info = self.devices.entry(device).or_default();
        info.receive_index = info.receive_index.max(Some(index));
    }

    /// The receive index `device` is to show: the one it claimed, kept while `paid` says no
    /// payment reached it and no device with a lower id claimed it too (two devices may claim
    /// the same index before they sync: the lower id keeps it); otherwise the next index no
    /// device handed out, claimed now. Returns the index and whether the metadata changed.
    pub fn claim_receive_index(
        &mut self,
        device: DeviceId,
        now_millis: u64,
        paid: impl Fn(u32) -> bool,
    ) -> (u32, bool) {
        let keep = self.receive_index(&device).filter(|index| {
            let taken = self
                .devices
                .iter()
                .any(|(other, info)| *other < device && info.receive_index == Some(*index));
            !taken && !paid(*index)
        });
        match keep {
            Some(index) => (index, false),
            None => (self.claim_fresh_receive_index(device, now_millis), true),
        }
    }

    /// Claims for `device` the next receive index no device handed out.
    pub fn claim_fresh_receive_index(&mut self, device: DeviceId, now_millis: u64) -> u32 {
        let index = self.allocate_index(Purpose::Bip84, Keychain::External);
        let stamp = self.next_stamp(device, now_millis);
        self.set_receive_index(index, stamp);
        index
    }

    /// The receive address index `device` shows, if it claimed one.
    pub fn receive_index(&self, device: &DeviceId) -> Option<u32> {
        self.devices.get(device).and_then(|info| info.receive_index)
    }

    /// What the wallet knows of `device`.
    pub fn device(&self, device: &DeviceId) -> Option<&DeviceInfo> {
        self.devices.get(device)
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
            if let Some(index) = info.receive_index {
                self.raise_receive_index(*device, index);
            }
        }
        self.versions.merge(&other.versions);
    }
}

/// One stamped write, as [`Metadata::delta_since_bounded`] orders them.
enum Write {
    Label(LabelTarget),
    Reservation(OutPoint),
    DeviceName(DeviceId),
}

/// Encoded bytes of a stamp.
const STAMP_LEN: usize = 24;

fn label_target_len(target: &LabelTarget) -> usize {
    match target {
        LabelTarget::Transaction(_) | LabelTarget::Output(_) => 36,
        LabelTarget::Address(address) => address.len(),
    }
}

/// The version of [`Metadata::encode`]'s format: 2 added the version vector, 3 each device's
/// receive index (older versions are still read: the vector is rebuilt from the stamps, and
/// no device has claimed an index).
const ENCODING_VERSION: u8 = 3;
/// The longest label, address text or device name kept, in bytes.
pub const MAX_TEXT_LEN: usize = 1_000;

/// Why bytes are not encoded metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetadataDecodeError {
    /// The bytes end inside a field.
    Truncated,
    /// A format version this code does not read.
    UnsupportedVersion(u8),
    /// A field holds a value no encoder writes.
    Invalid(&'static str),
    /// Bytes follow the last field.
    TrailingBytes,
}

impl fmt::Display for MetadataDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataDecodeError::Truncated => f.write_str("wallet metadata: truncated"),
            MetadataDecodeError::UnsupportedVersion(version) => {
                write!(f, "wallet metadata: unknown format version {version}")
            }
            MetadataDecodeError::Invalid(what) => write!(f, "wallet metadata: invalid {what}"),
            MetadataDecodeError::TrailingBytes => {
                f.write_str("wallet metadata: bytes after the end")
            }
        }
    }
}

impl std::error::Error for MetadataDecodeError {}

impl From<EndOfInput> for MetadataDecodeError {
    fn from(_: EndOfInput) -> Self {
        MetadataDecodeError::Truncated
    }
}

impl Metadata {
    /// The canonical bytes of the metadata (equal values, equal bytes), to keep or to send.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![ENCODING_VERSION];
        put_len(&mut out, self.next_index.len());
        for ((purpose, keychain), next) in &self.next_index {
            out.push(purpose_code(*purpose));
            out.push(keychain_code(*keychain));
            out.extend_from_slice(&next.to_le_bytes());
        }
        put_len(&mut out, self.labels.len());
        for (target, (stamp, label)) in &self.labels {
            match target {
                LabelTarget::Transaction(txid) => {
                    out.push(0);
                    out.extend_from_slice(txid.as_byte_array());
                }
                LabelTarget::Address(address) => {
                    out.push(1);
                    put_text(&mut out, address);
                }
                LabelTarget::Output(outpoint) => {
                    out.push(2);
                    put_outpoint(&mut out, outpoint);
                }
            }
            put_stamp(&mut out, stamp);
            put_optional_text(&mut out, label.as_deref());
        }
        put_len(&mut out, self.reservations.len());
        for (coin, (stamp, reservation)) in &self.reservations {
            put_outpoint(&mut out, coin);
            put_stamp(&mut out, stamp);
            out.extend_from_slice(&reservation.device.0);
            out.extend_from_slice(&reservation.until_millis.to_le_bytes());
        }
        put_len(&mut out, self.devices.len());
        for (device, info) in &self.devices {
            out.extend_from_slice(&device.0);
            match &info.name {
                Some((stamp, name)) => {
                    out.push(1);
                    put_stamp(&mut out, stamp);
                    put_text(&mut out, name);
                }
                None => out.push(0),
            }
            out.extend_from_slice(&info.last_seen_millis.to_le_bytes());
            // 0: none; else the index plus one.
            let receive = info
                .receive_index
                .map_or(0, |index| index.saturating_add(1));
            out.extend_from_slice(&receive.to_le_bytes());
        }
        out.extend_from_slice(&self.versions.encode());
        out
    }

    /// Reads bytes [`Metadata::encode`] wrote, refusing anything else with the reason.
    pub fn decode(bytes: &[u8]) -> Result<Metadata, MetadataDecodeError> {
        let mut reader = Reader::new(bytes);
        let version = reader.u8()?;
        if !(1..=ENCODING_VERSION).contains(&version) {
            return Err(MetadataDecodeError::UnsupportedVersion(version));
        }
        let mut metadata = Metadata::new();
        for _ in 0..reader.u32()? {
            let purpose = match reader.u8()? {
                84 => Purpose::Bip84,
                86 => Purpose::Bip86,
                _ => return Err(MetadataDecodeError::Invalid("purpose")),
            };
            let keychain = match reader.u8()? {
                0 => Keychain::External,
                1 => Keychain::Internal,
                _ => return Err(MetadataDecodeError::Invalid("keychain")),
            };
            metadata.mark_used(purpose, keychain, reader.u32()?);
        }
        for _ in 0..reader.u32()? {
            let target = match reader.u8()? {
                0 => LabelTarget::Transaction(Txid::from_byte_array(reader.array()?)),
                1 => LabelTarget::Address(read_text(&mut reader)?),
                2 => LabelTarget::Output(read_outpoint(&mut reader)?),
                _ => return Err(MetadataDecodeError::Invalid("label target")),
            };
            let stamp = read_stamp(&mut reader)?;
            let label = match reader.u8()? {
                0 => None,
                1 => Some(read_text(&mut reader)?),
                _ => return Err(MetadataDecodeError::Invalid("label")),
            };
            metadata.set_label(target, label, stamp);
        }
        for _ in 0..reader.u32()? {
            let coin = read_outpoint(&mut reader)?;
            let stamp = read_stamp(&mut reader)?;
            let device = DeviceId(reader.array()?);
            let until_millis = reader.u64()?;
            metadata.reserve(coin, device, until_millis, stamp);
        }
        for _ in 0..reader.u32()? {
            let device = DeviceId(reader.array()?);
            match reader.u8()? {
                0 => {}
                1 => {
                    let stamp = read_stamp(&mut reader)?;
                    let name = read_text(&mut reader)?;
                    metadata.set_device_name(device, name, stamp);
                }
                _ => return Err(MetadataDecodeError::Invalid("device name")),
            }
            metadata.seen(device, reader.u64()?);
            if version >= 3 {
                if let Some(index) = reader.u32()?.checked_sub(1) {
                    metadata.raise_receive_index(device, index);
                }
            }
        }
        if version >= 2 {
            let versions = VersionVector::decode_from(&mut reader)?;
            metadata.versions.merge(&versions);
        }
        if !reader.rest().is_empty() {
            return Err(MetadataDecodeError::TrailingBytes);
        }
        Ok(metadata)
    }
}

fn purpose_code(purpose: Purpose) -> u8 {
    match purpose {
        Purpose::Bip84 => 84,
        Purpose::Bip86 => 86,
    }
}

fn keychain_code(keychain: Keychain) -> u8 {
    match keychain {
        Keychain::External => 0,
        Keychain::Internal => 1,
    }
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&(len as u32).to_le_bytes());
}

/// Texts are cut to [`MAX_TEXT_LEN`] when set, so this writes them whole.
fn put_text(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u16).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

fn put_optional_text(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(text) => {
            out.push(1);
            put_text(out, text);
        }
        None => out.push(0),
    }
}

fn put_outpoint(out: &mut Vec<u8>, outpoint: &OutPoint) {
    out.extend_from_slice(outpoint.txid.as_byte_array());
    out.extend_from_slice(&outpoint.vout.to_le_bytes());
}

fn put_stamp(out: &mut Vec<u8>, stamp: &Stamp) {
    out.extend_from_slice(&stamp.millis.to_le_bytes());
    out.extend_from_slice(&stamp.device.0);
}

fn read_text(reader: &mut Reader<'_>) -> Result<String, MetadataDecodeError> {
    let len = usize::from(reader.u16()?);
    if len > MAX_TEXT_LEN {
        return Err(MetadataDecodeError::Invalid("text length"));
    }
    String::from_utf8(reader.take(len)?.to_vec())
        .map_err(|_| MetadataDecodeError::Invalid("text (not UTF-8)"))
}

fn read_outpoint(reader: &mut Reader<'_>) -> Result<OutPoint, MetadataDecodeError> {
    Ok(OutPoint::new(
        Txid::from_byte_array(reader.array()?),
        reader.u32()?,
    ))
}

fn read_stamp(reader: &mut Reader<'_>) -> Result<Stamp, MetadataDecodeError> {
    Ok(Stamp {
        millis: reader.u64()?,
        device: DeviceId(reader.array()?),
    })
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
    fn encoding_round_trips_and_refuses_what_no_encoder_writes() {
        let mut state = Metadata::new();
        assert_eq!(Metadata::decode(&state.encode()), Ok(state.clone()));
        state.mark_used(Purpose::Bip84, Keychain::External, 7);
        state.mark_used(Purpose::Bip86, Keychain::Internal, 2);
        let txid = Txid::from_byte_array([3; 32]);
        state.set_label(
            LabelTarget::Transaction(txid),
            Some("rent".into()),
            at(1, A),
        );
        state.set_label(LabelTarget::Address("bcrt1q…".into()), None, at(2, B));
        state.set_label(
            LabelTarget::Output(coin(4)),
            Some("é".repeat(600)),
            at(3, A),
        );
        state.reserve(coin(1), A, 1_000, at(100, A));
        state.set_device_name(B, "phone".into(), at(5, B));
        state.seen(A, 50);
        let bytes = state.encode();
        let decoded = Metadata::decode(&bytes).unwrap();
        assert_eq!(decoded, state);
        assert_eq!(decoded.encode(), bytes, "canonical");
        assert_eq!(
            decoded.label(&LabelTarget::Output(coin(4))).map(str::len),
            Some(MAX_TEXT_LEN),
            "long labels are cut at a character boundary"
        );

        for end in 0..bytes.len() {
            assert_eq!(
                Metadata::decode(&bytes[..end]),
                Err(MetadataDecodeError::Truncated),
                "cut at {end}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            Metadata::decode(&longer),
            Err(MetadataDecodeError::TrailingBytes)
        );
        let mut newer = bytes.clone();
        newer[0] = 4;
        assert_eq!(
            Metadata::decode(&newer),
            Err(MetadataDecodeError::UnsupportedVersion(4))
        );
        // Without devices, versions 2 and 3 are laid out alike, and version 1 had no version
        // vector either: the stamps rebuild it.
        let mut older = Metadata::new();
        older.set_label(
            LabelTarget::Transaction(coin(3).txid),
            Some("rent".into()),
            at(1, A),
        );
        older.reserve(coin(1), A, 1_000, at(100, A));
        let mut second = older.encode();
        second[0] = 2;
        assert_eq!(Metadata::decode(&second), Ok(older.clone()));
        let mut first = second[..second.len() - older.version_vector().encode().len()].to_vec();
        first[0] = 1;
        assert_eq!(Metadata::decode(&first), Ok(older.clone()));
        assert_eq!(older.version_vector().get(&A), 100);
        assert_eq!(state.version_vector().get(&A), 100);
        assert_eq!(state.version_vector().get(&B), 5);
        let mut bad_purpose = bytes;
        bad_purpose[5] = 44;
        assert_eq!(
            Metadata::decode(&bad_purpose),
            Err(MetadataDecodeError::Invalid("purpose"))
        );
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

    #[test]
    fn stamps_of_a_device_only_grow() {
        let mut state = Metadata::new();
        assert_eq!(state.next_stamp(A, 10), at(10, A));
        state.set_label(LabelTarget::Address("x".into()), None, at(10, A));
        assert_eq!(state.next_stamp(A, 10), at(11, A), "same millisecond");
        assert_eq!(state.next_stamp(A, 3), at(11, A), "the clock stepped back");
        assert_eq!(
            state.next_stamp(B, 3),
            at(3, B),
            "another device's writes do not count"
        );
    }

    #[test]
    fn a_delta_carries_what_the_other_copy_has_not_seen() {
        let mut laptop = Metadata::new();
        laptop.set_label(
            LabelTarget::Address("a".into()),
            Some("one".into()),
            at(1, A),
        );
        laptop.reserve(coin(1), A, 500, at(2, A));
        let mut phone = Metadata::new();
        phone.merge(&laptop.delta_since(phone.version_vector()));
        assert_eq!(phone, laptop);

        laptop.set_label(
            LabelTarget::Address("b".into()),
            Some("two".into()),
            at(3, A),
        );
        laptop.set_device_name(A, "laptop".into(), at(4, A));
        laptop.mark_used(Purpose::Bip84, Keychain::External, 3);
        phone.set_label(
            LabelTarget::Address("c".into()),
            Some("three".into()),
            at(2, B),
        );
        let delta = laptop.delta_since(phone.version_vector());
        assert_eq!(delta.labels().count(), 1, "only the new label");
        assert_eq!(delta.reservations.len(), 0);
        phone.merge(&delta);
        laptop.merge(&phone.delta_since(laptop.version_vector()));
        assert_eq!(phone, laptop);
        assert_eq!(laptop.labels().count(), 3);
        assert_eq!(laptop.next_index(Purpose::Bip84, Keychain::External), 3);
        assert!(laptop
            .delta_since(phone.version_vector())
            .labels()
            .next()
            .is_none());
    }

    #[test]
    fn bounded_deltas_catch_a_copy_up_part_by_part() {
        let mut laptop = Metadata::new();
        for n in 0..300u64 {
            let device = if n % 3 == 0 { B } else { A };
            laptop.set_label(
                LabelTarget::Address(format!("address {n}")),
                Some(format!("label {n}")),
                at(1 + n / 2, device),
            );
        }
        laptop.reserve(coin(1), A, 10_000, at(500, A));
        laptop.reserve(coin(2), A, 10_000, at(500, A));
        let mut phone = Metadata::new();
        assert!(laptop.has_news_for(&phone.summary()));
        let mut parts = 0;
        loop {
            let (part, complete) = laptop.delta_since_bounded(phone.version_vector(), 1_000);
            assert!(part.encode().len() < 2_000, "about the budget");
            phone.merge(&part);
            parts += 1;
            if complete {
                break;
            }
            assert!(parts < 100, "every part makes progress");
        }
        assert!(parts > 10, "{parts} parts");
        assert_eq!(phone, laptop);
        assert!(!laptop.has_news_for(&phone.summary()));
        phone.mark_used(Purpose::Bip84, Keychain::Internal, 1);
        assert!(
            phone.has_news_for(&laptop.summary()),
            "an index alone is news"
        );
    }

    #[test]
    fn a_receive_claim_is_news_even_when_the_used_indexes_agree() {
        // Both devices handed out index 0 before they synced: same used indexes, no labels.
        let mut laptop = Metadata::new();
        let mut phone = Metadata::new();
        let index = laptop.allocate_index(Purpose::Bip84, Keychain::External);
        laptop.set_receive_index(index, at(1, A));
        let index = phone.allocate_index(Purpose::Bip84, Keychain::External);
        phone.set_receive_index(index, at(1, B));
        assert!(laptop.has_news_for(&phone.summary()));
        assert!(phone.has_news_for(&laptop.summary()));
        phone.merge(&laptop.delta_since(phone.version_vector()));
        assert_eq!(phone.receive_index(&A), Some(0), "the phone sees the clash");
    }
}
