//! The wallet's other devices, as the Devices view shows them: this device's name, each sibling
//! with when it was last seen and how its sync stands, and the pause switch. The sync itself is
//! the core's [`DeviceSync`]; the driver feeds it and routes what it sends.

use bitmesh_core::wallet::device_sync::{device_name, short_id, DeviceRow, DeviceSync};
use bitmesh_core::wallet::metadata::Metadata;

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
    let others = sync.rows(now_millis, metadata);
    DevicesView {
        active: true,
        this_id: short_id(&me),
        this_name: device_name(metadata, &me),
        paused: sync.is_paused(),
        others,
        refused: refusals.0,
        last_refusal: refusals.1,
    }
}
