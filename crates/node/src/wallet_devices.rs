//! The wallet CLI as one device of its wallet (docs/devices.md). For the time of a command it
//! runs a mesh peer of its own (the node's peer, without miner or faucet) that joins through a
//! node's signaling server, announces the wallet's device topic and syncs the wallet's metadata
//! with the other devices (browsers, other CLIs) through routed messages sealed end to end, as
//! the page does. Its identity, the chain its peer followed and the metadata are kept in a
//! store beside the vault, so it is the same device from run to run and what it learned is
//! there offline.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitmesh_core::node::Event;
use bitmesh_core::wallet::device_group::DeviceGroup;
use bitmesh_core::wallet::device_sync::{DeviceRow, DeviceSync, SiblingState};
use bitmesh_core::wallet::metadata::{DeviceId, Metadata, Stamp};
use bitmesh_core::wire::{PeerId, RoutedKind};
use bitmesh_core::Network;
use bitmesh_mesh::native::NativeConfig;
use bitmesh_node::store::{Store, StoreError};
use tokio::sync::mpsc;

use crate::peer::{
    self, now_millis, random32, Mining, PeerHandle, PeerStatus, Restored, SignalSource,
};
use crate::wallet_cli::{fail, WalletError};

/// How long after its first neighbour the device waits for siblings to greet it before it
/// takes "no sibling" for an answer. Announcements already on the mesh reach a new peer with
/// the first inventory, and a page greets a new follower at once: well under this.
const DISCOVERY: Duration = Duration::from_secs(2);
/// How often the device looks at the topic's followers and greets the new ones.
const TICK: Duration = Duration::from_millis(200);
/// How long a spend waits for online siblings to acknowledge its reservation (as the page).
pub const CONFIRM_WAIT: Duration = Duration::from_secs(5);

/// A device session: the peer, the sync and this device's copy of the metadata.
pub struct DeviceSession {
    peer: PeerHandle,
    status: Arc<PeerStatus>,
    events: mpsc::UnboundedReceiver<Event>,
    sync: DeviceSync,
    metadata: Metadata,
    /// When the peer first had a neighbour.
    connected: Option<Instant>,
    /// Sync messages refused (a stranger's, a stale proof), with the last reason.
    refused: (usize, Option<String>),
}

fn store_error(err: StoreError) -> WalletError {
    fail(err.to_string())
}

/// The node's signaling WebSocket, from its page address (`http://host:port`).
fn signal_url(node: &str) -> String {
    let base = node.trim_end_matches('/');
    let base = base
        .strip_prefix("https://")
        .map(|rest| format!("wss://{rest}"))
        .or_else(|| {
            base.strip_prefix("http://")
                .map(|rest| format!("ws://{rest}"))
        })
        .unwrap_or_else(|| format!("ws://{base}"));
    format!("{base}/signal")
}

/// This device's copy of the metadata as its store keeps it (offline).
pub fn kept_metadata(store_dir: &Path, network: Network) -> Result<Metadata, WalletError> {
    Store::open(store_dir, network)
        .and_then(|store| store.wallet_metadata())
        .map_err(store_error)
}

impl DeviceSession {
    /// Opens the store in `store_dir` and joins the mesh through the node at `node` as a
    /// device of the wallet of `seed`.
    pub async fn join(
        store_dir: &Path,
        network: Network,
        node: &str,
        seed: &[u8],
    ) -> Result<DeviceSession, WalletError> {
        let store = Store::open(store_dir, network).map_err(store_error)?;
        let key = store.identity().map_err(store_error)?;
        let metadata = store.wallet_metadata().map_err(store_error)?;
        let now_secs = (now_millis() / 1000) as u32;
        let chain = store.load_chain(network, now_secs).map_err(store_error)?;
        let peers = store.peers().map_err(store_error)?;
        let restored = Restored {
            key,
            chain,
            peers,
            mempool: Vec::new(),
            faucet: None,
            store,
        };
        let status = Arc::new(PeerStatus::default());
        let mining = Mining {
            threads: 0,
            payout: bitcoin::ScriptBuf::new(),
            min_interval_millis: 0,
        };
        let peer = peer::start(
            network,
            restored,
            vec![SignalSource::Remote(signal_url(node))],
            NativeConfig::default(),
            mining,
            status.clone(),
        );
        let events = peer.subscribe();
        let me = *status.id.get().expect("set when the peer starts");
        let sync = DeviceSync::new(DeviceGroup::from_seed(seed, network), me);
        let topic = sync.topic();
        peer.query(move |view| view.announce_topic(topic))
            .await
            .ok_or_else(|| fail("the device's peer stopped"))?;
        Ok(DeviceSession {
            peer,
            status,
            events,
            sync,
            metadata,
            connected: None,
            refused: (0, None),
        })
    }

    pub fn device(&self) -> DeviceId {
        self.sync.device()
    }

    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The other devices and how they stand.
    pub fn siblings(&self) -> Vec<SiblingState> {
        self.sync.siblings(now_millis(), &self.metadata)
    }

    /// The wallet's other devices, as a device list shows them.
    pub fn rows(&self) -> Vec<DeviceRow> {
        self.sync.rows(now_millis(), &self.metadata)
    }

    /// Sync messages refused so far, and the last reason.
    pub fn refused(&self) -> &(usize, Option<String>) {
        &self.refused
    }

    /// Changes this device's copy (a label, a name, a reservation) and sends the online
    /// siblings what they lack.
    pub async fn write<T>(&mut self, change: impl FnOnce(&mut Metadata) -> T) -> T {
        let result = change(&mut self.metadata);
        self.sync.changed(now_millis(), &self.metadata, random32());
        self.flush().await;
        result
    }

    /// Syncs until every sibling found is in sync and the discovery time has passed since the
    /// first neighbour, or `limit` is reached. Returns whether it settled.
    pub async fn settle(&mut self, limit: Duration) -> bool {
        self.run_until(limit, |session| {
            let discovered = session
                .connected
                .is_some_and(|since| since.elapsed() >= DISCOVERY);
            discovered && session.siblings().iter().all(|sibling| sibling.in_sync)
        })
        .await
    }

    /// Waits (at most `limit`) until every online sibling acknowledged the write of `stamp`;
    /// returns the devices that did not.
    pub async fn await_acknowledged(&mut self, stamp: Stamp, limit: Duration) -> Vec<DeviceId> {
        self.run_until(limit, |session| {
            session.sync.awaiting(now_millis(), &stamp).is_empty()
        })
        .await;
        self.sync.awaiting(now_millis(), &stamp)
    }

    /// Keeps this device's copy in its store and leaves the mesh, saying goodbye (the next
    /// run of the device, with the same peer id, is then reached at once, not through a link
    /// its siblings still take for alive).
    pub async fn leave(&self) -> Result<(), WalletError> {
        let metadata = self.metadata.clone();
        let kept = self
            .peer
            .query(move |view| view.store().save_wallet_metadata(&metadata))
            .await
            .ok_or_else(|| fail("the device's peer stopped"))?
            .map_err(store_error);
        self.peer.leave().await;
        kept
    }

    /// Runs the sync (events, ticks) until `done` or `limit`; returns whether `done` held.
    async fn run_until(&mut self, limit: Duration, done: impl Fn(&DeviceSession) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        let mut tick = tokio::time::interval(TICK);
        loop {
            if self.connected.is_none() && self.status.neighbours.load(Ordering::Relaxed) > 0 {
                self.connected = Some(Instant::now());
            }
            if done(self) {
                return true;
            }
            tokio::select! {
                event = self.events.recv() => match event {
                    // A sibling appeared or renewed: greeted now rather than at the next tick.
                    Some(Event::TopicAnnounced { .. }) => self.tick().await,
                    Some(event) => self.on_event(event),
                    None => return false,
                },
                _ = tick.tick() => self.tick().await,
                _ = tokio::time::sleep_until(deadline) => return done(self),
            }
            self.flush().await;
        }
    }

    fn on_event(&mut self, event: Event) {
        let Event::Routed {
            from,
            kind: RoutedKind::DeviceSync,
            payload,
        } = event
        else {
            return;
        };
        let received =
            self.sync
                .receive(now_millis(), from, &payload, &mut self.metadata, random32());
        // A stranger's or a relay's bytes cost this device nothing; they are counted.
        if let Err(err) = received {
            self.refused.0 += 1;
            self.refused.1 = Some(err.to_string());
        }
    }

    /// Greets the topic's followers that are due a hello.
    async fn tick(&mut self) {
        let topic = self.sync.topic();
        let followers: Vec<PeerId> = self
            .peer
            .query(move |view| view.followers(&topic))
            .await
            .unwrap_or_default();
        self.sync
            .tick(now_millis(), &followers, &self.metadata, random32());
    }

    /// Sends what the sync has to send.
    async fn flush(&mut self) {
        let outbox = self.sync.take_outbox();
        if outbox.is_empty() {
            return;
        }
        self.peer
            .query(move |view| {
                for (to, payload) in outbox {
                    view.send_routed(to, RoutedKind::DeviceSync, payload);
                }
            })
            .await;
    }
}
