//! The wallet's other devices, as the Devices view shows them: this device's name, each sibling
//! with when it was last seen and how its sync stands, and the pause switch. The sync itself is
//! the core's [`DeviceSync`]; the driver feeds it and routes what it sends.

use bitmesh_core::wallet::device_sync::DeviceSync;
use bitmesh_core::wallet::metadata::{DeviceId, Metadata};

/// How often a device renews its announcement of the group's topic (announcements live 10
/// minutes: a renewal every 5 survives one lost).
pub const RENEW_MILLIS: u64 = 5 * 60_000;
/// How long a spend waits for its online siblings to acknowledge its reservation before it is
/// signed anyway (a sibling that went away without a word must not block its owner).
pub const CONFIRM_WAIT_MILLIS: u64 = 5_000;

/// What a person asks of the Devices view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevicesCommand {
    /// Name this device.
    Rename(String),
    /// Stop (or resume) syncing with the other devices.
    Pause(bool),
}

/// The Devices view.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DevicesView {
    /// Whether a wallet is unlocked (devices sync only then).
    pub active: bool,
    /// This device's short id and name.
    pub this_id: String,
    pub this_name: Option<String>,
    pub paused: bool,
    pub others: Vec<DeviceRow>,
    /// Device-sync messages refused this session, and the last reason (strangers' bytes,
    /// replays): shown for diagnosis, they cost nothing.
    pub refused: u32,
    pub last_refusal: Option<String>,
}

/// One other device of the wallet.
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

fn short_id(device: &DeviceId) -> String {
    device.0[..4]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The view of `sync` (when a wallet is unlocked) over its `metadata` at `now_millis`: every
/// device the metadata knows or that proved itself this session, this one apart.
pub fn view(
    sync: Option<(&DeviceSync, &Metadata)>,
    refusals: (u32, Option<String>),
    now_millis: u64,
) -> DevicesView {
    let Some((sync, metadata)) = sync else {
        return DevicesView::default();
    };
    let me = sync.device();
    let info_of = |device: &DeviceId| {
        metadata
            .devices()
            .find(|(id, _)| *id == device)
            .map(|(_, info)| info)
    };
    let name_of = |device: &DeviceId| {
        info_of(device).and_then(|info| info.name.as_ref().map(|(_, name)| name.clone()))
    };
    let siblings = sync.siblings(now_millis, metadata);
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
    let others = devices
        .iter()
        .map(|device| {
            let sibling = siblings
                .iter()
                .find(|sibling| sibling.proven && sibling.device == *device);
            let state = match sibling {
                _ if sync.is_paused() => SyncState::Paused,
                Some(sibling) if sibling.online && sibling.in_sync => SyncState::InSync,
                Some(sibling) if sibling.online => SyncState::Syncing,
                _ => SyncState::Offline,
            };
            DeviceRow {
                id: short_id(device),
                name: name_of(device),
                last_seen_millis: info_of(device).map_or(0, |info| info.last_seen_millis),
                state,
            }
        })
        .collect();
    DevicesView {
        active: true,
        this_id: short_id(&me),
        this_name: name_of(&me),
        paused: sync.is_paused(),
        others,
        refused: refusals.0,
        last_refusal: refusals.1,
    }
}
