//! Device sync: how the devices of one wallet keep their [`Metadata`] equal over the mesh, end
//! to end encrypted, with no device in charge. Sans-I/O: the driver hands in the followers of
//! the group's topic (from the node's topic board), the payloads of routed messages of kind
//! `DeviceSync`, the clock and randomness, and sends what [`DeviceSync::take_outbox`] returns
//! as routed messages. Relays see sealed bytes addressed to a peer id, nothing more.
//!
//! Three messages, each sealed for one sibling ([`DeviceGroup::seal`]):
//! - **Hello** (proof of seed, and a summary of what the sender holds): sent to every new
//!   follower of the topic, then every [`ANTI_ENTROPY_MILLIS`] to each sibling still following
//!   it. Nothing else is taken from a peer before its proof checks.
//! - **Delta**: what the other copy lacks according to its last summary, cut to
//!   [`DELTA_BUDGET`] bytes; `complete` says whether more follows.
//! - **Summary**: the answer to a delta. It acknowledges what arrived (a device waiting for
//!   its reservation to reach its siblings reads it) and pulls the next part of a long delta.
//!
//! Any loss, repetition or reordering only delays convergence: every message is idempotent
//! (metadata merges are), and the next hello repairs what was lost.

use core::fmt;
use std::collections::BTreeMap;

use bitcoin::secp256k1::{schnorr, All, Secp256k1};

use super::device_group::{DeviceGroup, OpenError, ReplayWindow};
use super::metadata::{DeviceId, Metadata, MetadataDecodeError, Stamp};
use crate::encode::{tagged_hash, EndOfInput, Reader};
use crate::wire::PeerId;

/// How often a device greets each sibling that follows the topic (anti-entropy, last seen).
pub const ANTI_ENTROPY_MILLIS: u64 = 30_000;
/// A sibling heard within this long is online (three greetings).
pub const ONLINE_MILLIS: u64 = 3 * ANTI_ENTROPY_MILLIS;
/// How far a proof's time may be from the receiver's clock.
pub const MAX_PROOF_SKEW_MILLIS: u64 = 10 * 60_000;
/// Bytes of metadata per delta: well under a routed message's 64 KiB payload.
pub const DELTA_BUDGET: usize = 48 * 1024;
/// Peers tracked at most (siblings and followers not yet proven).
pub const MAX_SIBLINGS: usize = 32;

const HELLO: u8 = 1;
const DELTA: u8 = 2;
const SUMMARY: u8 = 3;

/// The wallet device a peer runs: the first 16 bytes of its peer id (a tab keeps its identity
/// in its profile, so a device keeps its id).
pub fn device_of(peer: &PeerId) -> DeviceId {
    let mut device = [0u8; 16];
    device.copy_from_slice(&peer.0[..16]);
    DeviceId(device)
}

/// Why a device-sync message is not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReceiveError {
    /// Sync is paused on this device.
    Paused,
    /// Not sealed by this wallet's devices for us, or a replay.
    Open(OpenError),
    /// Sealed by the group but not a message this code writes.
    Malformed(&'static str),
    /// Metadata in it that does not decode.
    Metadata(MetadataDecodeError),
    /// A hello whose proof of seed does not check.
    BadProof,
    /// A hello whose proof was made too far from our clock.
    StaleProof,
    /// A message other than a hello from a peer that has not proven it holds the seed.
    Unproven,
}

impl fmt::Display for ReceiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReceiveError::Paused => f.write_str("device sync is paused"),
            ReceiveError::Open(err) => write!(f, "{err}"),
            ReceiveError::Malformed(what) => write!(f, "a malformed device-sync {what}"),
            ReceiveError::Metadata(err) => write!(f, "device sync: {err}"),
            ReceiveError::BadProof => f.write_str("a device-sync hello whose proof does not check"),
            ReceiveError::StaleProof => {
                f.write_str("a device-sync hello proven too far from this device's clock")
            }
            ReceiveError::Unproven => {
                f.write_str("device sync from a peer that has not proven it holds the seed")
            }
        }
    }
}

impl std::error::Error for ReceiveError {}

impl From<EndOfInput> for ReceiveError {
    fn from(_: EndOfInput) -> Self {
        ReceiveError::Malformed("message (truncated)")
    }
}

impl From<MetadataDecodeError> for ReceiveError {
    fn from(err: MetadataDecodeError) -> Self {
        ReceiveError::Metadata(err)
    }
}

/// One other device of the wallet, as a device list (the page's Devices view, the wallet
/// CLI's `sync`) shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRow {
    /// The first bytes of its id, in hex.
    pub id: String,
    pub name: Option<String>,
    /// When this device last heard from it (ms since the epoch; 0: never).
    pub last_seen_millis: u64,
    pub state: SyncState,
}

/// How a sibling's sync stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncState {
    /// Both copies hold the same metadata.
    InSync,
    /// Online, and one copy still lacks something of the other.
    Syncing,
    /// Not heard from lately: it catches up when it comes back.
    Offline,
    /// Sync is paused on this device.
    Paused,
}

impl SyncState {
    pub fn words(self) -> &'static str {
        match self {
            SyncState::InSync => "in sync",
            SyncState::Syncing => "syncing",
            SyncState::Offline => "offline",
            SyncState::Paused => "paused here",
        }
    }
}

/// The first bytes of `device`'s id, in hex (how a device without a name is called).
pub fn short_id(device: &DeviceId) -> String {
    device.0[..4]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The name `metadata` gives `device`, if any.
pub fn device_name(metadata: &Metadata, device: &DeviceId) -> Option<String> {
    metadata
        .device(device)
        .and_then(|info| info.name.as_ref().map(|(_, name)| name.clone()))
}

/// How a sibling stands, for the Devices view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiblingState {
    pub peer: PeerId,
    pub device: DeviceId,
    /// It proved it holds the seed.
    pub proven: bool,
    /// It was heard within [`ONLINE_MILLIS`].
    pub online: bool,
    /// Neither copy has news for the other (as of its last summary).
    pub in_sync: bool,
}

#[derive(Debug, Clone, Default)]
struct Sibling {
    proven: bool,
    /// Its announcement on the topic board is live.
    following: bool,
    /// When we last greeted it.
    greeted_millis: Option<u64>,
    /// When its last authentic message came.
    heard_millis: Option<u64>,
    /// What it last said it holds (a summary: version vector and indexes).
    summary: Metadata,
}

/// One device's side of the sync with its siblings.
pub struct DeviceSync {
    group: DeviceGroup,
    secp: Secp256k1<All>,
    me: PeerId,
    siblings: BTreeMap<PeerId, Sibling>,
    window: ReplayWindow,
    last_counter: u64,
    paused: bool,
    outbox: Vec<(PeerId, Vec<u8>)>,
}

impl fmt::Debug for DeviceSync {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceSync")
            .field("me", &self.me)
            .field("siblings", &self.siblings.len())
            .field("paused", &self.paused)
            .finish_non_exhaustive()
    }
}

impl DeviceSync {
    /// The sync of the device running peer `me` in `group`.
    pub fn new(group: DeviceGroup, me: PeerId) -> DeviceSync {
        DeviceSync {
            group,
            secp: Secp256k1::new(),
            me,
            siblings: BTreeMap::new(),
            window: ReplayWindow::default(),
            last_counter: 0,
            paused: false,
            outbox: Vec::new(),
        }
    }

    /// The topic this device announces and whose followers it greets.
    pub fn topic(&self) -> [u8; 32] {
        self.group.topic()
    }

    /// This device's id in the metadata.
    pub fn device(&self) -> DeviceId {
        device_of(&self.me)
    }

    /// Pausing cuts this device off its siblings (nothing sent, nothing taken) while it stays
    /// on the mesh; resuming greets them again.
    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
        if paused {
            self.outbox.clear();
        } else {
            for sibling in self.siblings.values_mut() {
                sibling.greeted_millis = None;
            }
        }
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// The messages to send, each to a sibling, as routed `DeviceSync` payloads.
    pub fn take_outbox(&mut self) -> Vec<(PeerId, Vec<u8>)> {
        core::mem::take(&mut self.outbox)
    }

    /// Periodic work, with the topic's current `followers`: greets the new ones and, every
    /// [`ANTI_ENTROPY_MILLIS`], the known ones (their answers bring what either copy lacks).
    pub fn tick(
        &mut self,
        now_millis: u64,
        followers: &[PeerId],
        metadata: &Metadata,
        random: [u8; 32],
    ) {
        for sibling in self.siblings.values_mut() {
            sibling.following = false;
        }
        for peer in followers.iter().filter(|peer| **peer != self.me) {
            if !self.siblings.contains_key(peer) && self.siblings.len() >= MAX_SIBLINGS {
                // Forget a peer that never proved itself to make room.
                let Some(stranger) = self
                    .siblings
                    .iter()
                    .find(|(_, sibling)| !sibling.proven)
                    .map(|(peer, _)| *peer)
                else {
                    continue;
                };
                self.siblings.remove(&stranger);
            }
            self.siblings.entry(*peer).or_default().following = true;
        }
        self.siblings
            .retain(|_, sibling| sibling.following || sibling.proven);
        if self.paused {
            return;
        }
        let due: Vec<(PeerId, bool)> = self
            .siblings
            .iter()
            .filter(|(_, sibling)| sibling.following)
            .filter(|(_, sibling)| {
                sibling
                    .greeted_millis
                    .is_none_or(|greeted| now_millis >= greeted + ANTI_ENTROPY_MILLIS)
            })
            .map(|(peer, sibling)| (*peer, !sibling.proven))
            .collect();
        for (n, (peer, want_hello)) in due.into_iter().enumerate() {
            let random = tagged_hash(b"bitmesh/device-sync/tick", &[&random, &n.to_le_bytes()]);
            self.hello(peer, want_hello, now_millis, metadata, random);
        }
    }

    /// After a write on this device: sends each online sibling what it lacks.
    pub fn changed(&mut self, now_millis: u64, metadata: &Metadata, random: [u8; 32]) {
        if self.paused {
            return;
        }
        let lacking: Vec<PeerId> = self
            .siblings
            .iter()
            .filter(|(_, sibling)| sibling.proven && is_online(sibling, now_millis))
            .filter(|(_, sibling)| metadata.has_news_for(&sibling.summary))
            .map(|(peer, _)| *peer)
            .collect();
        for (n, peer) in lacking.into_iter().enumerate() {
            let random = tagged_hash(b"bitmesh/device-sync/push", &[&random, &n.to_le_bytes()]);
            self.send_delta(peer, now_millis, metadata, random);
        }
    }

    /// A routed `DeviceSync` payload from `from`: merged into `metadata` if it carries news.
    /// Returns whether `metadata` changed (beyond the sender's last-seen time).
    pub fn receive(
        &mut self,
        now_millis: u64,
        from: PeerId,
        payload: &[u8],
        metadata: &mut Metadata,
        random: [u8; 32],
    ) -> Result<bool, ReceiveError> {
        if self.paused {
            return Err(ReceiveError::Paused);
        }
        let (_, plaintext) = self
            .group
            .open(from, self.me, payload, &mut self.window)
            .map_err(ReceiveError::Open)?;
        let mut reader = Reader::new(&plaintext);
        let kind = reader.u8()?;
        if kind == HELLO {
            let millis = reader.u64()?;
            let proof = schnorr::Signature::from_slice(reader.take(64)?)
                .map_err(|_| ReceiveError::Malformed("proof"))?;
            let want_hello = match reader.u8()? {
                0 => false,
                1 => true,
                _ => return Err(ReceiveError::Malformed("hello")),
            };
            let summary = Metadata::decode(reader.rest())?;
            if millis.abs_diff(now_millis) > MAX_PROOF_SKEW_MILLIS {
                return Err(ReceiveError::StaleProof);
            }
            if !self
                .group
                .check_proof(&self.secp, from, self.me, millis, &proof)
            {
                return Err(ReceiveError::BadProof);
            }
            let sibling = self.heard(from, now_millis, metadata);
            sibling.proven = true;
            sibling.summary = summary;
            let greet = want_hello || sibling.greeted_millis.is_none();
            if greet {
                self.hello(from, false, now_millis, metadata, random);
            }
            let random = tagged_hash(b"bitmesh/device-sync/answer", &[&random]);
            self.send_news(from, now_millis, metadata, random);
            return Ok(false);
        }
        if !self
            .siblings
            .get(&from)
            .is_some_and(|sibling| sibling.proven)
        {
            return Err(ReceiveError::Unproven);
        }
        match kind {
            DELTA => {
                let _complete = match reader.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(ReceiveError::Malformed("delta")),
                };
                let delta = Metadata::decode(reader.rest())?;
                let news = delta.has_news_for(&metadata.summary());
                metadata.merge(&delta);
                let sibling = self.heard(from, now_millis, metadata);
                sibling.summary.merge(&delta.summary());
                // The acknowledgement, and the pull of what is left.
                let summary = metadata.summary().encode();
                self.seal_to(from, now_millis, random, |plaintext| {
                    plaintext.push(SUMMARY);
                    plaintext.extend_from_slice(&summary);
                });
                let random = tagged_hash(b"bitmesh/device-sync/answer", &[&random]);
                self.send_news(from, now_millis, metadata, random);
                Ok(news)
            }
            SUMMARY => {
                let summary = Metadata::decode(reader.rest())?;
                self.heard(from, now_millis, metadata).summary = summary;
                self.send_news(from, now_millis, metadata, random);
                Ok(false)
            }
            _ => Err(ReceiveError::Malformed("message kind")),
        }
    }

    /// The siblings online now whose last summary does not show `stamp`'s write yet: a device
    /// waits for this to empty before signing a spend of coins it reserved under `stamp`.
    /// None while sync is paused: the person chose to act alone.
    pub fn awaiting(&self, now_millis: u64, stamp: &Stamp) -> Vec<DeviceId> {
        if self.paused {
            return Vec::new();
        }
        self.siblings
            .iter()
            .filter(|(_, sibling)| sibling.proven && is_online(sibling, now_millis))
            .filter(|(_, sibling)| {
                sibling.summary.version_vector().get(&stamp.device) < stamp.millis
            })
            .map(|(peer, _)| device_of(peer))
            .collect()
    }

    /// Every peer this device syncs with or greets, and how it stands.
    pub fn siblings(&self, now_millis: u64, metadata: &Metadata) -> Vec<SiblingState> {
        self.siblings
            .iter()
            .map(|(peer, sibling)| SiblingState {
                peer: *peer,
                device: device_of(peer),
                proven: sibling.proven,
                online: is_online(sibling, now_millis),
                in_sync: sibling.proven
                    && !metadata.has_news_for(&sibling.summary)
                    && !sibling.summary.has_news_for(&metadata.summary()),
            })
            .collect()
    }

    /// Every device `metadata` knows or that proved itself this session, this one apart,
    /// in id order, with its name, when it was last heard and how its sync stands.
    pub fn rows(&self, now_millis: u64, metadata: &Metadata) -> Vec<DeviceRow> {
        let me = self.device();
        let siblings = self.siblings(now_millis, metadata);
        let mut devices: Vec<DeviceId> = metadata
            .devices()
            .map(|(device, _)| *device)
            .chain(
                siblings
                    .iter()
                    .filter(|sibling| sibling.proven)
                    .map(|sibling| sibling.device),
            )
            .filter(|device| *device != me)
            .collect();
        devices.sort_unstable();
        devices.dedup();
        devices
            .iter()
            .map(|device| {
                let sibling = siblings
                    .iter()
                    .find(|sibling| sibling.proven && sibling.device == *device);
                let state = match sibling {
                    _ if self.paused => SyncState::Paused,
                    Some(sibling) if sibling.online && sibling.in_sync => SyncState::InSync,
                    Some(sibling) if sibling.online => SyncState::Syncing,
                    _ => SyncState::Offline,
                };
                DeviceRow {
                    id: short_id(device),
                    name: device_name(metadata, device),
                    last_seen_millis: metadata
                        .device(device)
                        .map_or(0, |info| info.last_seen_millis),
                    state,
                }
            })
            .collect()
    }

    fn heard(&mut self, peer: PeerId, now_millis: u64, metadata: &mut Metadata) -> &mut Sibling {
        metadata.seen(device_of(&peer), now_millis);
        let sibling = self.siblings.entry(peer).or_default();
        sibling.heard_millis = sibling.heard_millis.max(Some(now_millis));
        sibling
    }

    fn hello(
        &mut self,
        to: PeerId,
        want_hello: bool,
        now_millis: u64,
        metadata: &Metadata,
        random: [u8; 32],
    ) {
        if let Some(sibling) = self.siblings.get_mut(&to) {
            sibling.greeted_millis = Some(now_millis);
        }
        let aux = tagged_hash(b"bitmesh/device-sync/aux", &[&random]);
        let proof = self.group.prove(&self.secp, self.me, to, now_millis, &aux);
        let summary = metadata.summary().encode();
        self.seal_to(to, now_millis, random, |plaintext| {
            plaintext.push(HELLO);
            plaintext.extend_from_slice(&now_millis.to_le_bytes());
            plaintext.extend_from_slice(proof.as_ref());
            plaintext.push(u8::from(want_hello));
            plaintext.extend_from_slice(&summary);
        });
    }

    /// Sends `to` a delta if this copy holds something its last summary lacks.
    fn send_news(&mut self, to: PeerId, now_millis: u64, metadata: &Metadata, random: [u8; 32]) {
        let lacks = self
            .siblings
            .get(&to)
            .is_some_and(|sibling| metadata.has_news_for(&sibling.summary));
        if lacks {
            self.send_delta(to, now_millis, metadata, random);
        }
    }

    fn send_delta(&mut self, to: PeerId, now_millis: u64, metadata: &Metadata, random: [u8; 32]) {
        let Some(sibling) = self.siblings.get(&to) else {
            return;
        };
        let (delta, complete) =
            metadata.delta_since_bounded(sibling.summary.version_vector(), DELTA_BUDGET);
        let delta = delta.encode();
        self.seal_to(to, now_millis, random, |plaintext| {
            plaintext.push(DELTA);
            plaintext.push(u8::from(complete));
            plaintext.extend_from_slice(&delta);
        });
    }

    /// Seals what `write` puts in a message for `to` and queues it. The counter follows the
    /// clock (so it grows across reloads without being kept); the nonce mixes fresh randomness
    /// with the counter, so no two seals share one even if the clock steps back.
    fn seal_to(
        &mut self,
        to: PeerId,
        now_millis: u64,
        random: [u8; 32],
        write: impl FnOnce(&mut Vec<u8>),
    ) {
        let counter = (now_millis << 16).max(self.last_counter + 1);
        self.last_counter = counter;
        let mut plaintext = Vec::new();
        write(&mut plaintext);
        let digest = tagged_hash(
            b"bitmesh/device-sync/nonce",
            &[&random, &counter.to_le_bytes()],
        );
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&digest[..12]);
        let sealed = self.group.seal(self.me, to, counter, nonce, &plaintext);
        self.outbox.push((to, sealed));
    }
}

fn is_online(sibling: &Sibling, now_millis: u64) -> bool {
    sibling
        .heard_millis
        .is_some_and(|heard| heard + ONLINE_MILLIS > now_millis)
}
