//! The page's driver: the mesh driver state machine (`bitmesh_mesh::driver::MeshDriver`: the
//! node, the connector, the signaling routes) with the browser's WebRTC connections, a
//! signaling WebSocket to the node that served the page, and a 100 ms timer. Everything that
//! happens becomes a report on one channel, handled by one task, so the state machine never
//! sees two things at once (a transport event during a send, say).

use std::collections::HashMap;

use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};
use bitmesh_core::chain::mempool::MempoolConfig;
use bitmesh_core::chain::state::Chain;
use bitmesh_core::chain::utxo::Coin;
use bitmesh_core::faucet::{FaucetAnswer, FaucetRequest, Payment};
use bitmesh_core::market::book::BookLimits;
use bitmesh_core::node::protocols::{
    ChainSync, MarketRelay, MempoolRelay, TopicBoard, MAKER_OFFLINE_MILLIS, MAX_TOPIC_TTL_MILLIS,
};
use bitmesh_core::node::{Event, Input, LinkId, Node, NodeConfig};
use bitmesh_core::store::{Table, WriteBatch};
use bitmesh_core::wire::{Features, Message, PeerId, RoutedKind};
use bitmesh_core::Network;
use bitmesh_mesh::browser::BrowserConnection;
use bitmesh_mesh::connector::Step;
use bitmesh_mesh::driver::{Action, DriverInput, MeshDriver};
use bitmesh_mesh::signaling::{Backoff, ClientEvent, SignalingClient};
use bitmesh_mesh::transport::TransportConfig;
use futures_channel::mpsc;
use futures_util::StreamExt;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{MessageEvent, WebSocket};

use bitmesh_core::store::{
    load_block, ChainSaver, LoadError, DESK_KEY, METADATA_KEY, UNCONFIRMED_KEY, VAULT_KEY,
};
use bitmesh_core::wallet::metadata::Metadata;

use bitcoin::{Transaction, Txid, XOnlyPublicKey};
use bitmesh_core::market::desk::{answer_locked, Answer, Desk, Outgoing, TakeOutcome, MAX_RETAKES};
use bitmesh_core::market::order::{SignedOrder, SignedUpdate};
use bitmesh_core::market::record::DeskRecord;
use bitmesh_core::wallet::device_sync::{device_of, DeviceSync};
use bitmesh_core::wallet::metadata::DeviceId;

use crate::devices::{
    self as page_devices, DevicesCommand, DevicesView, CONFIRM_WAIT_MILLIS, RENEW_MILLIS,
};
use crate::explorer::{self, BlockRow, Explored};
use crate::market::{self as page_market, MarketCommand, MarketView};
use crate::store::{IdbStore, StoreError};
use crate::wallet::{
    keep_metadata, CommandContext, Notice, PageWallet, Randomness, WalletCommand, WalletView,
};

/// How often the node ticks, and the server's peers are listed again.
const TICK_MILLIS: i32 = 100;
const LIST_EVERY_MILLIS: f64 = 10_000.0;
/// The page's one signaling server: the node that served it.
const SERVER: bitmesh_mesh::connector::ServerId = 0;

/// What the page shows of its place in the mesh.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PageStatus {
    /// This tab's peer id (hex).
    pub peer: String,
    /// Registered with the node's signaling server.
    pub signaling: bool,
    pub neighbours: Vec<Neighbour>,
    /// The tab's active chain: height and tip.
    pub height: u32,
    pub tip: String,
    /// The last request to a faucet.
    pub faucet: FaucetState,
    /// Why the tab keeps nothing across reloads, when it cannot, or what went wrong keeping it.
    pub storage: Option<String>,
    /// Whether the browser granted persistent storage (not evicted under pressure), once known.
    pub persisted: Option<bool>,
    /// Restoring the kept chain: blocks done and kept.
    pub restoring: Option<(u32, u32)>,
    /// Header-first sync: the height of the best header known.
    pub best_header: u32,
    /// Transactions in the tab's mempool.
    pub mempool: usize,
    pub wallet: WalletView,
    /// The outcome of the last wallet command.
    pub notice: Option<Notice>,
    pub market: MarketView,
    /// The outcome of the last market command, or what became of a swap.
    pub market_notice: Option<Notice>,
    /// Orders this tab placed (the order form empties its amount at each).
    pub orders_placed: u32,
    /// Spends this tab signed and sent (the send and issue forms empty at each).
    pub spends_sent: u32,
    /// The last fill of this wallet's orders or takes, as it happened.
    pub last_fill: Option<String>,
    /// Another tab took over: this one stopped.
    pub stopped: bool,
    pub recent_blocks: Vec<BlockRow>,
    /// What the explorer was last asked.
    pub explored: Explored,
    /// The wallet's other devices.
    pub devices: DevicesView,
}

/// Where the tab's last request to a faucet is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum FaucetState {
    #[default]
    Idle,
    Asking,
    /// Paid: BTC in `txid`, and the asset's units (with its ticker and decimals, when the
    /// tab's chain knows the asset) in another transaction.
    Paid {
        sats: u64,
        txid: String,
        asset: Option<(u64, Option<(String, u8)>)>,
    },
    Refused(String),
}

/// What the page's views may ask of its peer.
#[derive(Clone)]
pub struct PageHandle(mpsc::UnboundedSender<Report>);

impl PageHandle {
    /// Asks a faucet among the tab's neighbours to pay `address`.
    pub fn ask_faucet(&self, address: String) {
        let _ = self.0.unbounded_send(Report::AskFaucet(address));
    }

    /// Gives the wallet a command; the outcome comes back as the status's notice.
    pub fn wallet(&self, command: WalletCommand) {
        let _ = self.0.unbounded_send(Report::Wallet(command));
    }

    /// Looks a height, block hash or txid up in the tab's chain and mempool.
    pub fn explore(&self, query: String) {
        let _ = self.0.unbounded_send(Report::Explore(query));
    }

    /// Gives the market a command; the outcome comes back as the status's market notice.
    pub fn market(&self, command: MarketCommand) {
        let _ = self.0.unbounded_send(Report::Market(command));
    }

    /// Renames this device or pauses its sync.
    pub fn devices(&self, command: DevicesCommand) {
        let _ = self.0.unbounded_send(Report::Devices(command));
    }
}

impl PartialEq for PageHandle {
    fn eq(&self, other: &Self) -> bool {
        self.0.same_receiver(&other.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    /// The first 16 hex digits of its peer id.
    pub peer: String,
    pub rtt_millis: Option<u64>,
}

enum Report {
    Tick,
    AskFaucet(String),
    Wallet(WalletCommand),
    Devices(DevicesCommand),
    Market(MarketCommand),
    Explore(String),
    /// A write batch failed: why.
    StoreFailed(String),
    Persisted(bool),
    ServerText(String),
    ServerClosed,
    Reconnect,
    Driver(DriverInput),
    Ready(LinkId, BrowserConnection),
    /// Another tab took the profile's lock: this one stops.
    TakenOver,
}

type Handler = Closure<dyn FnMut(JsValue)>;

struct Page {
    network: Network,
    driver: MeshDriver,
    connections: HashMap<LinkId, BrowserConnection>,
    steps: HashMap<LinkId, mpsc::UnboundedSender<Step>>,
    reports: mpsc::UnboundedSender<Report>,
    url: String,
    client: SignalingClient,
    socket: Option<(WebSocket, Vec<Handler>)>,
    backoff: Backoff,
    last_list: f64,
    status: PageStatus,
    on_status: Box<dyn Fn(PageStatus)>,
    /// STUN/TURN servers from the page's `ice` parameter (none by default).
    ice_servers: Vec<String>,
    /// The faucet the tab asked last, whose answer it awaits, and where that request is.
    faucet: Option<PeerId>,
    faucet_state: FaucetState,
    /// The profile's store, when this tab drives it: what it holds of the chain, and the
    /// writer task's inbox (batches are applied one after another, in order).
    saver: Option<ChainSaver>,
    writer: Option<mpsc::UnboundedSender<WriteBatch>>,
    wallet: PageWallet,
    /// The wallet's metadata as last written.
    kept_metadata: Vec<u8>,
    /// The desk's record as last written ([`DeskRecord`]): read when the wallet unlocks.
    kept_desk: Vec<u8>,
    /// The mempool's size when the wallet last followed it.
    mempool_seen: usize,
    /// The wallet's view, recomputed only when something it shows may have changed.
    wallet_view: WalletView,
    notice: Option<Notice>,
    persisted: Option<bool>,
    best_header: u32,
    /// The node's identity: it signs this tab's orders.
    key: Keypair,
    /// The unlocked wallet's market desk.
    desk: Option<Desk>,
    market_view: MarketView,
    market_notice: Option<Notice>,
    orders_placed: u32,
    spends_sent: u32,
    last_fill: Option<String>,
    /// Whether the book or the desk changed since the market view was computed.
    market_moved: bool,
    /// The wallet's unconfirmed transactions and the known peers as last written.
    kept_unconfirmed: Vec<u8>,
    /// Kept transactions the mempool refused at start: the wallet takes back those that lost
    /// a double spend (shown as conflicted) once it is unlocked and caught up.
    losers_to_restore: Vec<Transaction>,
    /// Transactions the node reported dropped that the desk has not judged yet.
    drops_to_judge: page_market::Drops,
    /// Whether the unlocked wallet has followed the chain to its tip.
    wallet_caught_up: bool,
    kept_peers: Vec<u8>,
    explored: Explored,
    explore_query: Option<String>,
    /// Orders the book took or changed, to keep.
    orders_to_keep: Vec<bitmesh_core::market::order::OrderId>,
    /// When the market's view was last computed (ms).
    market_refreshed_at: f64,
    /// The unlocked wallet's sync with its other devices.
    device_sync: Option<DeviceSync>,
    /// When the group's topic was last announced, and the sync last ticked (ms).
    announced_at: u64,
    device_ticked_at: u64,
    /// A confirmed spend waiting for the siblings to acknowledge its reservation: since when.
    confirming: Option<u64>,
    /// Device-sync messages refused, and why the last one was.
    sync_refusals: (u32, Option<String>),
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).expect("the browser's randomness");
    bytes
}

fn now() -> u64 {
    js_sys::Date::now() as u64
}

/// How long a maker marked offline stays so, in the page's words.
fn offline_for() -> String {
    format!(
        "skipped for {} minutes, or until it is heard from",
        MAKER_OFFLINE_MILLIS / 60_000
    )
}

/// The signaling WebSocket of the node that served this page.
fn signaling_url() -> Option<String> {
    let location = web_sys::window()?.location();
    let scheme = match location.protocol().ok()?.as_str() {
        "https:" => "wss",
        _ => "ws",
    };
    Some(format!("{scheme}://{}/signal", location.host().ok()?))
}

/// Starts the page's peer on `network` with STUN/TURN servers `ice_servers` (none on a local
/// network: Chromium's host and mDNS candidates suffice); `on_status` hears every change.
pub fn start(
    network: Network,
    ice_servers: Vec<String>,
    take_over: bool,
    on_status: impl Fn(PageStatus) + 'static,
) -> PageHandle {
    let (reports, inbox) = mpsc::unbounded();
    let handle = PageHandle(reports.clone());
    wasm_bindgen_futures::spawn_local(async move {
        let on_status: Box<dyn Fn(PageStatus)> = Box::new(on_status);
        let profile = open_profile(network, take_over, reports.clone()).await;
        let mut chain = Chain::new(network);
        let mut storage = profile.storage;
        if let Some(kept) = &profile.kept {
            if let Err(err) = restore_chain(&mut chain, &kept.blocks, &*on_status).await {
                storage = Some(format!("{err}: the chain is fetched again from peers"));
            }
        }
        request_persistence(reports.clone());
        run(
            network,
            profile.key,
            chain,
            profile.kept,
            storage,
            ice_servers,
            on_status,
            reports,
            inbox,
        )
        .await;
    });
    handle
}

/// What the profile's store held at start, and the open store.
struct Kept {
    store: IdbStore,
    blocks: Vec<Vec<u8>>,
    vault: Option<Vec<u8>>,
    metadata: Option<Vec<u8>>,
    desk: Option<Vec<u8>>,
    /// The book's orders ([`MarketRelay::kept`] entries).
    book: Vec<Vec<u8>>,
    /// The wallet's unconfirmed transactions, one after another.
    unconfirmed: Option<Vec<u8>>,
    /// Known peers, as a `Peers` message.
    peers: Option<Vec<u8>>,
}

/// The page's identity, and the profile's store when this tab drives it.
struct Profile {
    key: Keypair,
    kept: Option<Kept>,
    /// Why nothing is kept, in words, when it is not.
    storage: Option<String>,
}

/// Opens this profile's store for `network` if this tab holds its lock; reads the identity key
/// (making one the first time), the chain's blocks and the wallet. Only the tab holding the
/// profile's lock uses the store: two tabs with one identity would fight over the same peer id,
/// and two writers over the same chain.
async fn open_profile(
    network: Network,
    take_over: bool,
    reports: mpsc::UnboundedSender<Report>,
) -> Profile {
    let name = format!("bitmesh-{}", network.name());
    let lost = move || drop(reports.unbounded_send(Report::TakenOver));
    if !hold_lock(&name, take_over, lost).await {
        return Profile {
            key: fresh_key(),
            kept: None,
            storage: Some(SECOND_TAB.into()),
        };
    }
    match read_profile(&name).await {
        Ok((key, kept)) => Profile {
            key,
            kept: Some(kept),
            storage: None,
        },
        Err(err) => Profile {
            key: fresh_key(),
            kept: None,
            storage: Some(format!("This tab keeps nothing across reloads: {err}")),
        },
    }
}

async fn read_profile(name: &str) -> Result<(Keypair, Kept), StoreError> {
    let store = IdbStore::open(name).await?;
    let kept = store.get(Table::META, IDENTITY).await?;
    let secret = kept.and_then(|bytes| SecretKey::from_slice(&bytes).ok());
    let key = match secret {
        Some(secret) => Keypair::from_secret_key(&Secp256k1::new(), &secret),
        None => {
            let key = fresh_key();
            let mut batch = WriteBatch::new();
            batch.put(Table::META, IDENTITY.to_vec(), key.secret_bytes().to_vec());
            store.apply(&batch).await?;
            key
        }
    };
    let blocks = store.values(Table::BLOCKS).await?;
    let vault = store.get(Table::WALLET, VAULT_KEY).await?;
    let metadata = store.get(Table::WALLET, METADATA_KEY).await?;
    let desk = store.get(Table::WALLET, DESK_KEY).await?;
    let book = store.values(Table::BOOK).await?;
    let unconfirmed = store.get(Table::WALLET, UNCONFIRMED_KEY).await?;
    let peers = store.get(Table::META, PEERS).await?;
    Ok((
        key,
        Kept {
            store,
            blocks,
            vault,
            metadata,
            desk,
            book,
            unconfirmed,
            peers,
        },
    ))
}

/// How long the page works (validating kept blocks, handling reports) before letting the
/// browser run its other tasks.
const SLICE_MILLIS: f64 = 20.0;

/// Rebuilds the kept chain into `chain`, validating each block, in slices of about 20 ms so the
/// page stays responsive. Stops at the first block that does not load.
async fn restore_chain(
    chain: &mut Chain,
    blocks: &[Vec<u8>],
    on_status: &dyn Fn(PageStatus),
) -> Result<(), LoadError> {
    let total = blocks.len() as u32;
    let mut slice_start = js_sys::Date::now();
    for (done, bytes) in blocks.iter().enumerate() {
        load_block(chain, bytes, (now() / 1000) as u32)?;
        if js_sys::Date::now() - slice_start > SLICE_MILLIS {
            on_status(PageStatus {
                restoring: Some((done as u32 + 1, total)),
                ..PageStatus::default()
            });
            yield_to_browser().await;
            slice_start = js_sys::Date::now();
        }
    }
    Ok(())
}

/// Lets the browser run its other tasks (input, rendering) before going on.
async fn yield_to_browser() {
    let (done, wait) = futures_channel::oneshot::channel::<()>();
    let resume = Closure::once_into_js(move || {
        let _ = done.send(());
    });
    if let Some(window) = web_sys::window() {
        let _ =
            window.set_timeout_with_callback_and_timeout_and_arguments_0(resume.unchecked_ref(), 0);
    }
    let _ = wait.await;
}

/// Asks the browser to keep this origin's storage under pressure; the answer comes back as a
/// report.
fn request_persistence(reports: mpsc::UnboundedSender<Report>) {
    let Some(promise) =
        web_sys::window().and_then(|window| window.navigator().storage().persist().ok())
    else {
        return;
    };
    wasm_bindgen_futures::spawn_local(async move {
        let granted = wasm_bindgen_futures::JsFuture::from(promise)
            .await
            .ok()
            .and_then(|granted| granted.as_bool())
            .unwrap_or(false);
        let _ = reports.unbounded_send(Report::Persisted(granted));
    });
}

/// Applies batches to `store` one after another; a failure is reported in words (a full quota
/// included) and the next batch is still tried.
fn spawn_writer(
    store: IdbStore,
    reports: mpsc::UnboundedSender<Report>,
) -> mpsc::UnboundedSender<WriteBatch> {
    let (batches, mut inbox) = mpsc::unbounded::<WriteBatch>();
    wasm_bindgen_futures::spawn_local(async move {
        while let Some(batch) = inbox.next().await {
            if let Err(err) = store.apply(&batch).await {
                let _ = reports.unbounded_send(Report::StoreFailed(err.to_string()));
            }
        }
    });
    batches
}

/// What a second tab of one browser profile says (the view offers to take over).
pub const SECOND_TAB: &str = "Another tab of this browser already runs bitmesh on this network: \
    this tab runs with a temporary identity and keeps nothing";

/// A key of this page's life only.
fn fresh_key() -> Keypair {
    loop {
        if let Ok(secret) = SecretKey::from_slice(&random_bytes::<32>()) {
            return Keypair::from_secret_key(&Secp256k1::new(), &secret);
        }
    }
}

/// The book of the node's market protocol.
fn market_book(node: &Node) -> &bitmesh_core::market::book::Book {
    market_relay(node).book()
}

fn market_relay(node: &Node) -> &MarketRelay {
    node.protocol::<MarketRelay>().expect("registered")
}

/// Looks an outpoint up in the node's chain and mempool: the `coin` the desk places, answers
/// and marks orders with.
fn tab_coin(node: &Node) -> impl Fn(&bitcoin::OutPoint) -> Option<Coin> + '_ {
    let (chain, mempool) = (node.chain(), tab_mempool(node));
    move |outpoint| mempool.coin(chain, outpoint)
}

/// The mempool of the node's mempool protocol.
fn tab_mempool(node: &Node) -> &bitmesh_core::chain::mempool::Mempool {
    node.protocol::<MempoolRelay>()
        .expect("registered")
        .mempool()
}

/// What a desk operation works with: the desk and the unlocked wallet, beside the tab's book,
/// chain, and its coins in the chain and mempool.
struct Trading<'a, C> {
    desk: &'a mut Desk,
    wallet: &'a mut bitmesh_core::wallet::session::Wallet,
    book: &'a bitmesh_core::market::book::Book,
    chain: &'a Chain,
    /// Looks outpoints up in the chain and mempool ([`tab_coin`]).
    coin: C,
}

/// Where the identity key is kept in the store's facts, and the known peers.
const IDENTITY: &[u8] = b"identity";
const PEERS: &[u8] = b"peers";

/// Takes back into `node` what the store kept besides the chain: known peers, the wallet's
/// unconfirmed transactions (checked by the mempool) and the book's orders (checked like a
/// neighbour's, expired ones dropped; after the transactions, which may make their coins).
/// Returns the deletions of entries that did not come back, and the wallet's transactions the
/// mempool refused (the losers of a double spend among them: the wallet takes those back once
/// it is unlocked and caught up).
fn restore_kept(node: &mut Node, kept: &Kept) -> (WriteBatch, Vec<Transaction>) {
    let mut cleanup = WriteBatch::new();
    let mut refused = Vec::new();
    if let Some(Ok(Message::Peers(records))) = kept.peers.as_deref().map(Message::decode) {
        node.remember(records);
    }
    let now = now();
    let mut unconfirmed = kept.unconfirmed.as_deref().unwrap_or_default();
    let _ = node.with_protocol::<MempoolRelay, _>(now, |relay, ctx| {
        while !unconfirmed.is_empty() {
            let Ok((tx, used)) =
                bitcoin::consensus::deserialize_partial::<Transaction>(unconfirmed)
            else {
                break;
            };
            unconfirmed = &unconfirmed[used..];
            // Confirmed or conflicted since: the mempool says no, and that is fine.
            if relay.submit(ctx, tx.clone()).is_err() {
                refused.push(tx);
            }
        }
    });
    let (_, _) = node.with_protocol::<MarketRelay, _>(now, |relay, ctx| {
        for entry in &kept.book {
            if relay.restore(ctx, entry).is_err() {
                if let Some(id) = MarketRelay::kept_id(entry) {
                    cleanup.delete(Table::BOOK, id.0.to_vec());
                }
            }
        }
    });
    (cleanup, refused)
}

/// Asks the browser's Web Locks for `name` without waiting — or, with `steal`, takes it from
/// the tab holding it; when granted, the lock is held for the page's life, and `lost` runs if
/// another tab takes it over. Browsers without Web Locks have nothing to coordinate with:
/// granted.
pub async fn hold_lock(name: &str, steal: bool, lost: impl FnOnce() + 'static) -> bool {
    use js_sys::{Function, Object, Promise, Reflect};
    let Some(window) = web_sys::window() else {
        return false;
    };
    let navigator = Reflect::get(&window, &"navigator".into()).unwrap_or(JsValue::UNDEFINED);
    let locks = Reflect::get(&navigator, &"locks".into()).unwrap_or(JsValue::UNDEFINED);
    let Some(request) = Reflect::get(&locks, &"request".into())
        .ok()
        .and_then(|request| request.dyn_into::<Function>().ok())
    else {
        return true;
    };
    let (granted, answer) = futures_channel::oneshot::channel::<bool>();
    let callback = Closure::once_into_js(move |lock: JsValue| -> Promise {
        let held = !lock.is_null();
        let _ = granted.send(held);
        if held {
            // Never settles: the lock is released when the page goes.
            Promise::new(&mut |_, _| {})
        } else {
            Promise::resolve(&JsValue::UNDEFINED)
        }
    });
    let options = Object::new();
    let mode = if steal { "steal" } else { "ifAvailable" };
    let _ = Reflect::set(&options, &mode.into(), &JsValue::TRUE);
    let Ok(held) = request.call3(&locks, &name.into(), &options, &callback) else {
        return false;
    };
    // The request settles only when the lock goes: stolen by another tab.
    if let Ok(held) = held.dyn_into::<Promise>() {
        let on_lost = Closure::<dyn FnMut(JsValue)>::once(move |_: JsValue| lost());
        let _ = held.catch(&on_lost);
        // Lives as long as the page: the lock may be taken at any time.
        on_lost.forget();
    }
    answer.await.unwrap_or(false)
}

/// Runs the page's peer with identity `key` until the page goes.
#[allow(clippy::too_many_arguments)]
async fn run(
    network: Network,
    key: Keypair,
    chain: Chain,
    kept: Option<Kept>,
    storage: Option<String>,
    ice_servers: Vec<String>,
    on_status: Box<dyn Fn(PageStatus)>,
    reports: mpsc::UnboundedSender<Report>,
    mut inbox: mpsc::UnboundedReceiver<Report>,
) {
    let seed = random_bytes::<32>();
    let saver = kept.as_ref().map(|_| ChainSaver::holding(&chain));
    let mut node = Node::new(NodeConfig::new(network), key, chain, seed, now());
    node.register(Box::new(ChainSync::new()));
    node.register(Box::new(MempoolRelay::new(
        MempoolConfig::default(),
        u64::from_le_bytes(random_bytes::<8>()),
    )));
    node.register(Box::new(MarketRelay::new(
        BookLimits::default(),
        u64::from_le_bytes(random_bytes::<8>()),
    )));
    node.register(Box::new(TopicBoard::new(u64::from_le_bytes(
        random_bytes::<8>(),
    ))));
    let (cleanup, losers) = match kept.as_ref().map(|kept| restore_kept(&mut node, kept)) {
        Some((cleanup, losers)) => (Some(cleanup), losers),
        None => (None, Vec::new()),
    };
    let (wallet, kept_metadata, kept_desk, writer, storage) = match kept {
        Some(kept) => {
            let writer = spawn_writer(kept.store, reports.clone());
            match PageWallet::from_store(kept.vault) {
                Ok(wallet) => (
                    wallet,
                    kept.metadata.unwrap_or_default(),
                    kept.desk.unwrap_or_default(),
                    Some(writer),
                    storage,
                ),
                Err(err) => (
                    PageWallet::Absent,
                    Vec::new(),
                    Vec::new(),
                    Some(writer),
                    Some(err),
                ),
            }
        }
        // Nothing is kept: a wallet made here lives as long as the tab.
        None => (PageWallet::Absent, Vec::new(), Vec::new(), None, storage),
    };
    if let (Some(writer), Some(cleanup)) = (&writer, cleanup) {
        if !cleanup.is_empty() {
            let _ = writer.unbounded_send(cleanup);
        }
    }
    let peer = bitcoin::hex::DisplayHex::to_lower_hex_string(&node.id().0[..]);
    let session_seed = u64::from_le_bytes(random_bytes::<8>());
    let mut page = Page {
        network,
        driver: MeshDriver::new(node, session_seed),
        connections: HashMap::new(),
        steps: HashMap::new(),
        reports: reports.clone(),
        url: signaling_url().unwrap_or_default(),
        client: SignalingClient::new(key, network.name()),
        socket: None,
        backoff: Backoff::default(),
        last_list: 0.0,
        status: PageStatus {
            peer,
            storage,
            ..PageStatus::default()
        },
        on_status,
        ice_servers,
        faucet: None,
        faucet_state: FaucetState::Idle,
        saver,
        writer,
        wallet,
        kept_metadata,
        kept_desk,
        mempool_seen: 0,
        wallet_view: WalletView::Loading,
        notice: None,
        persisted: None,
        best_header: 0,
        key,
        desk: None,
        market_view: MarketView::default(),
        market_notice: None,
        orders_placed: 0,
        spends_sent: 0,
        last_fill: None,
        market_moved: true,
        kept_unconfirmed: Vec::new(),
        losers_to_restore: losers,
        drops_to_judge: page_market::Drops::default(),
        wallet_caught_up: false,
        kept_peers: Vec::new(),
        explored: Explored::Nothing,
        explore_query: None,
        orders_to_keep: Vec::new(),
        market_refreshed_at: 0.0,
        device_sync: None,
        announced_at: 0,
        device_ticked_at: 0,
        confirming: None,
        sync_refusals: (0, None),
    };
    page.refresh_wallet(true);
    (page.on_status)(page.status.clone());
    page.open_socket();
    let tick = Closure::<dyn FnMut()>::new(move || {
        let _ = reports.unbounded_send(Report::Tick);
    });
    if let Some(window) = web_sys::window() {
        let _ = window.set_interval_with_callback_and_timeout_and_arguments_0(
            tick.as_ref().unchecked_ref(),
            TICK_MILLIS,
        );
    }
    // The timer lives as long as the page.
    tick.forget();
    // Reports that arrive together (a sync's blocks) run in one browser task unless the loop
    // lets go: it does every SLICE_MILLIS, so input and rendering are never held up long.
    let mut slice_start = js_sys::Date::now();
    while let Some(report) = inbox.next().await {
        if matches!(report, Report::TakenOver) {
            page.stop();
            return;
        }
        page.report(report);
        if js_sys::Date::now() - slice_start > SLICE_MILLIS {
            yield_to_browser().await;
            slice_start = js_sys::Date::now();
        }
    }
}

impl Page {
    fn report(&mut self, report: Report) {
        let input = match report {
            Report::Tick => {
                if self.client.is_registered()
                    && js_sys::Date::now() - self.last_list > LIST_EVERY_MILLIS
                {
                    self.last_list = js_sys::Date::now();
                    self.send_text(self.client.list());
                    self.keep_peers();
                }
                self.tick_desk();
                self.tick_devices(false);
                self.check_confirming();
                DriverInput::Tick
            }
            Report::ServerText(text) => match self.server_text(&text) {
                Some(input) => input,
                None => return self.update_status(),
            },
            Report::ServerClosed => {
                self.socket = None;
                self.client.reset();
                let wait = self
                    .backoff
                    .next_delay_millis(u64::from_le_bytes(random_bytes::<8>()));
                let reports = self.reports.clone();
                let again = Closure::once_into_js(move || {
                    let _ = reports.unbounded_send(Report::Reconnect);
                });
                if let Some(window) = web_sys::window() {
                    let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(
                        again.unchecked_ref(),
                        wait.min(i32::MAX as u64) as i32,
                    );
                }
                DriverInput::Server {
                    server: SERVER,
                    registered: false,
                }
            }
            Report::Reconnect => {
                self.open_socket();
                return;
            }
            Report::AskFaucet(address) => {
                self.ask_faucet(&address);
                return self.update_status();
            }
            Report::Wallet(command) => {
                self.wallet_command(command);
                self.refresh_market();
                return self.update_status();
            }
            Report::Devices(command) => {
                self.devices_command(command);
                return self.update_status();
            }
            Report::Market(command) => {
                self.market_command(command);
                self.keep_orders();
                self.refresh_market();
                return self.update_status();
            }
            Report::Explore(query) => {
                self.explore(query);
                return self.update_status();
            }
            Report::StoreFailed(reason) => {
                self.status.storage = Some(format!(
                    "This tab could not keep its latest state, and keeps running on what it \
                     holds in memory: {reason}"
                ));
                return self.update_status();
            }
            Report::Persisted(granted) => {
                self.persisted = Some(granted);
                return self.update_status();
            }
            Report::Driver(input) => input,
            Report::TakenOver => return,
            Report::Ready(link, connection) => {
                if self.steps.contains_key(&link) {
                    self.connections.insert(link, connection);
                } else {
                    connection.close();
                }
                return;
            }
        };
        let ticked = matches!(input, DriverInput::Tick);
        let tip = self.driver.node().chain().tip();
        let actions = self.driver.handle(now(), input);
        let tip_changed = self.driver.node().chain().tip() != tip;
        let wallet_events = actions
            .iter()
            .any(|action| matches!(action, Action::Event(Event::TxAccepted(_))));
        self.act(actions);
        if tip_changed {
            self.keep_chain();
            if let Some(query) = self.explore_query.take() {
                self.explore(query);
            }
        }
        self.refresh_wallet(tip_changed || wallet_events);
        self.keep_orders();
        // A lone order shows at once; a burst (a book sync) at most every tick.
        if ticked || js_sys::Date::now() - self.market_refreshed_at >= f64::from(TICK_MILLIS) {
            if self.market_moved {
                self.take_passed_over();
            }
            self.refresh_market();
        }
        self.update_status();
    }

    /// Another tab took over the profile: it holds the same identity and drives the same
    /// store, so this tab closes its connections, writes nothing more and says so.
    fn stop(&mut self) {
        self.writer = None;
        self.saver = None;
        for (_, connection) in self.connections.drain() {
            connection.close();
        }
        self.steps.clear();
        if let Some((socket, _)) = self.socket.take() {
            let _ = socket.close();
        }
        let status = PageStatus {
            peer: self.status.peer.clone(),
            storage: Some(
                "Another tab took over bitmesh in this browser: this tab stopped. Reload it to \
                 take over again."
                    .into(),
            ),
            stopped: true,
            ..PageStatus::default()
        };
        (self.on_status)(status);
    }

    /// Looks `query` up for the explorer (again when the tip moves, so confirmations follow).
    fn explore(&mut self, query: String) {
        let node = self.driver.node();
        let mempool = tab_mempool(node);
        self.explored = explorer::explore(node.chain(), mempool, self.network, &query);
        self.explore_query = Some(query);
    }

    /// Writes what the chain's tip change changed.
    fn keep_chain(&mut self) {
        if let (Some(saver), Some(writer)) = (&mut self.saver, &self.writer) {
            let batch = saver.batch(self.driver.node().chain());
            if !batch.is_empty() {
                let _ = writer.unbounded_send(batch);
            }
        }
    }

    /// Lets an unlocked wallet follow the chain (a bounded step, so a long catch-up is spread
    /// over ticks) and, when it may have changed, the mempool; keeps the metadata when that
    /// moved it, and recomputes what the views show when `changed` or the wallet moved. Runs
    /// after every report, so a caught-up wallet costs one hash comparison here.
    fn refresh_wallet(&mut self, changed: bool) {
        const BLOCKS_PER_STEP: u32 = 200;
        let node = self.driver.node();
        let chain = node.chain();
        let mempool = tab_mempool(node);
        // New transactions come with events (`changed`); expired ones only shrink the mempool.
        let mempool_moved = changed || mempool.len() != self.mempool_seen;
        self.mempool_seen = mempool.len();
        let device = device_of(&node.id());
        let mut moved = false;
        let mut tell = false;
        self.wallet_caught_up = false;
        if let Some(wallet) = self.wallet.unlocked() {
            let following = wallet.follow(chain, BLOCKS_PER_STEP, now() / 1000);
            self.wallet_caught_up = following.behind == 0;
            moved = following.changed;
            if mempool_moved {
                moved |= wallet.follow_mempool(mempool);
            }
            if following.behind == 0 && !self.losers_to_restore.is_empty() {
                let losers = std::mem::take(&mut self.losers_to_restore);
                moved |= wallet.restore_conflicted(&losers, now() / 1000);
            }
            if (moved || changed) && following.behind == 0 {
                // Caught up: this device shows an address of its own (a sibling's claim or a
                // payment may have taken the one it showed).
                tell |= wallet.claim_receive_address(device, now());
            }
            if moved {
                // The losers of a double spend free the coins the winner left alone.
                tell |= wallet.release_conflicted(device, now());
            }
        }
        if tell {
            self.tell_siblings();
        }
        let anything_moved = changed || moved;
        let mut filled_again = false;
        if anything_moved {
            let caught_up = self.wallet_caught_up;
            let aux = random_bytes();
            let updates = match self.trading() {
                Some(Trading {
                    desk, wallet, book, ..
                }) => desk.on_chain(wallet, book, caught_up, now(), &aux),
                None => Vec::new(),
            };
            // Orders of this tab whose undone swaps a block holds after all: filled again.
            for update in updates {
                filled_again = true;
                let _ = self.submit_to_book(None, Some(update));
            }
        }
        // Keeping the metadata keeps the desk's record too: one encoding of it per refresh.
        if moved || tell || filled_again {
            self.keep_wallet_metadata();
        } else if anything_moved {
            let mut batch = WriteBatch::new();
            self.keep_desk_record(&mut batch);
            self.write(batch);
        }
        if anything_moved {
            self.wallet_view = self.wallet.view(self.driver.node().chain());
            self.market_moved = true;
        }
        if !self.drops_to_judge.is_empty() {
            self.judge_drops();
        }
    }

    /// Recomputes the market's view if the book, the desk or the wallet moved. It walks the
    /// whole book, so during a burst of messages (a book sync) it runs at most once per tick,
    /// and after a person's command.
    fn refresh_market(&mut self) {
        if !self.market_moved {
            return;
        }
        self.market_moved = false;
        self.market_refreshed_at = js_sys::Date::now();
        let node = self.driver.node();
        let trader = match (&self.desk, &self.wallet) {
            (Some(desk), PageWallet::Unlocked { wallet, .. }) => Some((desk, &**wallet)),
            _ => None,
        };
        self.market_view = page_market::view(
            market_book(node),
            trader,
            node.chain(),
            tab_coin(node),
            now(),
        );
    }

    /// Carries out a wallet command. A confirmed spend first waits (at most
    /// [`CONFIRM_WAIT_MILLIS`]) for the online sibling devices to acknowledge the reservation
    /// of its coins, so none of them spends the same coins meanwhile.
    fn wallet_command(&mut self, command: WalletCommand) {
        if command == WalletCommand::ConfirmSpend && !self.awaiting_siblings().is_empty() {
            self.confirming = Some(now());
            self.notice = Some(Notice::Done(
                "Waiting for your other devices to see that these coins are held…".into(),
            ));
            self.refresh_wallet(true);
            return;
        }
        self.run_wallet_command(command);
    }

    /// The online sibling devices that have not acknowledged the reservation of the spend
    /// under review.
    fn awaiting_siblings(&self) -> Vec<DeviceId> {
        match (&self.device_sync, self.wallet.pending()) {
            (Some(sync), Some(spend)) => sync.awaiting(now(), &spend.stamp),
            _ => Vec::new(),
        }
    }

    /// Signs the spend waiting for its siblings once they acknowledged it, or once waiting
    /// longer would only hold its owner up (a sibling that left says nothing).
    fn check_confirming(&mut self) {
        let Some(since) = self.confirming else {
            return;
        };
        let awaiting = self.awaiting_siblings();
        let waited_out = now() >= since + CONFIRM_WAIT_MILLIS;
        if !awaiting.is_empty() && !waited_out {
            return;
        }
        self.confirming = None;
        self.run_wallet_command(WalletCommand::ConfirmSpend);
        if let (false, Some(Notice::Done(text))) = (awaiting.is_empty(), &mut self.notice) {
            text.push_str(&format!(
                " ({} of your devices did not answer within {} s: they were told, and refuse \
                 these coins once they hear)",
                awaiting.len(),
                CONFIRM_WAIT_MILLIS / 1000
            ));
        }
        self.update_status();
    }

    /// Carries out a wallet command: keeps what it wrote, submits what it signed, tells the
    /// sibling devices what changed.
    fn run_wallet_command(&mut self, command: WalletCommand) {
        let device = device_of(&self.driver.node().id());
        let random = Randomness {
            salt: random_bytes(),
            nonce: random_bytes(),
            aux: random_bytes(),
        };
        // What a locked wallet kept; unreadable metadata (only used indexes and labels) starts
        // afresh rather than locking the person out.
        let metadata = Metadata::decode(&self.kept_metadata).ok();
        let context = CommandContext {
            network: self.network,
            chain: self.driver.node().chain(),
            metadata,
            device,
            now_millis: now(),
            random,
        };
        let (mut notice, effects) = self.wallet.command(command, context);
        let mut metadata_changed = effects.metadata_changed;
        if let Some(tx) = effects.submit {
            let coins: Vec<_> = tx.input.iter().map(|txin| txin.previous_output).collect();
            match self.submit_tx(tx) {
                Ok(_) => self.spends_sent = self.spends_sent.wrapping_add(1),
                Err(err) => {
                    notice = Notice::Refused(format!(
                        "The transaction was refused, nothing was spent: {err}"
                    ));
                    // Its coins are not held for a spend that will not happen.
                    if let Some(wallet) = self.wallet.unlocked() {
                        wallet.reserve(&coins, device, 0, now());
                        metadata_changed = true;
                    }
                }
            }
        }
        if !effects.writes.is_empty() {
            if let Some(writer) = &self.writer {
                let _ = writer.unbounded_send(effects.writes);
            }
        }
        if let Some(wallet) = self.wallet.unlocked() {
            self.kept_metadata = wallet.metadata().encode();
        }
        // The desk and the device sync live as long as the wallet is unlocked.
        match (self.wallet.unlocked().is_some(), self.desk.is_some()) {
            (true, false) => {
                let mut desk = Desk::new(self.key, device);
                if effects.fresh_wallet {
                    self.kept_desk.clear();
                }
                if !self.kept_desk.is_empty() {
                    match DeskRecord::decode(&self.kept_desk) {
                        Ok(record) => desk.restore(record),
                        Err(err) => {
                            self.market_notice = Some(Notice::Refused(format!(
                                "The record of your trades kept in this browser cannot be read \
                                 ({err}): the list of trades starts afresh"
                            )))
                        }
                    }
                }
                self.desk = Some(desk);
            }
            (false, true) => self.desk = None,
            _ => {}
        }
        if let Some(group) = effects.group {
            self.device_sync = Some(DeviceSync::new(group, self.driver.node().id()));
            self.announced_at = 0;
            self.tick_devices(true);
        }
        if self.wallet.unlocked().is_none() {
            self.device_sync = None;
            self.confirming = None;
        } else if metadata_changed {
            self.keep_wallet_metadata();
            self.tell_siblings();
        }
        self.market_moved = true;
        self.notice = Some(notice);
        self.refresh_wallet(true);
    }

    /// Announces the wallet's topic when due, and lets the device sync greet the topic's
    /// followers (at once with `now_please`, else at most once a second).
    fn tick_devices(&mut self, now_please: bool) {
        let Some(topic) = self.device_sync.as_ref().map(DeviceSync::topic) else {
            return;
        };
        let now = now();
        if !now_please && now < self.device_ticked_at + 1_000 {
            return;
        }
        self.device_ticked_at = now;
        if now >= self.announced_at + RENEW_MILLIS {
            self.announced_at = now;
            let (key, aux) = (self.key, random_bytes());
            let (_, actions) = self
                .driver
                .with_protocol::<TopicBoard, _>(now, |board, ctx| {
                    board.announce(ctx, &key, topic, MAX_TOPIC_TTL_MILLIS, &aux)
                });
            self.act(actions);
        }
        let followers = self
            .driver
            .node()
            .protocol::<TopicBoard>()
            .map(|board| board.followers(&topic, now))
            .unwrap_or_default();
        let (Some(sync), Some(wallet)) = (self.device_sync.as_mut(), self.wallet.unlocked()) else {
            return;
        };
        sync.tick(now, &followers, wallet.metadata(), random_bytes());
        self.route_device_sync();
    }

    /// A sealed message from a sibling device (or something posing as one).
    fn device_sync_message(&mut self, from: PeerId, payload: &[u8]) {
        let (Some(sync), Some(wallet)) = (self.device_sync.as_mut(), self.wallet.unlocked()) else {
            return;
        };
        let received = sync.receive(now(), from, payload, wallet.metadata_mut(), random_bytes());
        self.route_device_sync();
        match received {
            Ok(changed) => {
                self.keep_wallet_metadata();
                if changed {
                    self.refresh_wallet(true);
                }
                self.check_confirming();
            }
            // A stranger's or a relay's bytes are dropped: they cost this device nothing.
            Err(err) => {
                self.sync_refusals.0 += 1;
                self.sync_refusals.1 = Some(err.to_string());
            }
        }
    }

    /// Sends the siblings what this device's metadata gained.
    fn tell_siblings(&mut self) {
        let (Some(sync), Some(wallet)) = (self.device_sync.as_mut(), self.wallet.unlocked()) else {
            return;
        };
        sync.changed(now(), wallet.metadata(), random_bytes());
        self.route_device_sync();
    }

    fn route_device_sync(&mut self) {
        let Some(sync) = self.device_sync.as_mut() else {
            return;
        };
        for (to, payload) in sync.take_outbox() {
            self.route(Outgoing {
                to,
                kind: RoutedKind::DeviceSync,
                payload,
            });
        }
    }

    /// Renames this device, or pauses (resumes) its sync.
    fn devices_command(&mut self, command: DevicesCommand) {
        let device = device_of(&self.driver.node().id());
        match command {
            DevicesCommand::Rename(name) => {
                let Some(wallet) = self.wallet.unlocked() else {
                    return;
                };
                let name = name.trim().to_owned();
                let stamp = wallet.metadata().next_stamp(device, now());
                wallet.metadata_mut().set_device_name(device, name, stamp);
                self.keep_wallet_metadata();
                self.tell_siblings();
            }
            DevicesCommand::Pause(paused) => {
                if let Some(sync) = self.device_sync.as_mut() {
                    sync.set_paused(paused);
                }
                if !paused {
                    self.tick_devices(true);
                }
            }
        }
    }

    /// Submits a transaction to the tab's mempool, which relays it.
    fn submit_tx(&mut self, tx: Transaction) -> Result<Txid, String> {
        let now = now();
        let (result, actions) = self
            .driver
            .with_protocol::<MempoolRelay, _>(now, |relay, ctx| relay.submit(ctx, tx));
        self.act(actions);
        match result {
            Some(Ok(txid)) => Ok(txid),
            Some(Err(err)) => Err(err.to_string()),
            None => Err("the tab runs no mempool".into()),
        }
    }

    /// Submits one of this tab's orders or updates to its book, which announces it.
    fn submit_to_book(
        &mut self,
        order: Option<SignedOrder>,
        update: Option<SignedUpdate>,
    ) -> Result<(), String> {
        let now = now();
        let (result, actions) = self
            .driver
            .with_protocol::<MarketRelay, _>(now, |relay, ctx| {
                if let Some(order) = order {
                    relay
                        .submit_order(ctx, order)
                        .map_err(|err| err.to_string())?;
                }
                if let Some(update) = update {
                    relay
                        .submit_update(ctx, update)
                        .map_err(|err| err.to_string())?;
                }
                Ok(())
            });
        self.act(actions);
        self.market_moved = true;
        result.unwrap_or_else(|| Err("the tab runs no market".into()))
    }

    /// Sends a message through the mesh to another peer.
    fn route(&mut self, outgoing: Outgoing) {
        let actions = self.driver.node_input(
            now(),
            Input::SendRouted {
                to: outgoing.to,
                kind: outgoing.kind,
                payload: outgoing.payload,
            },
        );
        self.act(actions);
    }

    /// The desk and the unlocked wallet with the tab's book, chain and coins; none while
    /// the wallet is locked.
    fn trading(&mut self) -> Option<Trading<'_, impl Fn(&bitcoin::OutPoint) -> Option<Coin> + '_>> {
        let node = self.driver.node();
        Some(Trading {
            desk: self.desk.as_mut()?,
            wallet: self.wallet.unlocked()?,
            book: market_book(node),
            chain: node.chain(),
            coin: tab_coin(node),
        })
    }

    /// Carries out a market command with the unlocked wallet's desk.
    fn market_command(&mut self, command: MarketCommand) {
        let aux = random_bytes();
        let Some(Trading {
            desk,
            wallet,
            book,
            chain,
            coin,
        }) = self.trading()
        else {
            self.market_notice = Some(Notice::Refused(
                "Unlock the wallet first: orders are paid from it".into(),
            ));
            return;
        };
        let placing = matches!(command, MarketCommand::Place { .. });
        let (mut notice, effects) =
            page_market::run(command, desk, wallet, book, chain, coin, now(), &aux);
        if let Some(refusal) = self.market_effects(effects) {
            notice = Notice::Refused(refusal);
        }
        if placing && matches!(notice, Notice::Done(_)) {
            self.orders_placed = self.orders_placed.wrapping_add(1);
        }
        self.keep_wallet_metadata();
        self.market_moved = true;
        self.market_notice = Some(notice);
    }

    /// Does what a market operation asks of the tab: routes its swap proposals, submits its
    /// order's funding payment, then its order or update. Returns why the order or update did
    /// not reach the book, if it did not.
    fn market_effects(&mut self, mut effects: page_market::MarketEffects) -> Option<String> {
        for proposal in effects.proposals {
            self.route(proposal);
        }
        if let Some(tx) = effects.funding_tx {
            if let Err(err) = self.submit_tx(tx) {
                self.unplace(effects.order.take());
                return Some(format!(
                    "Not placed in the book: the payment that funds it was refused ({err})"
                ));
            }
        }
        if effects.order.is_none() && effects.update.is_none() {
            return None;
        }
        let order = effects.order.clone();
        let err = self.submit_to_book(effects.order, effects.update).err()?;
        self.unplace(order);
        Some(format!("The book refused it: {err}"))
    }

    /// Places again the parts of orders whose swaps failed (a limit order does not lose them);
    /// says what became of them.
    fn place_again(&mut self) -> String {
        let retakes = self
            .desk
            .as_mut()
            .map(|desk| desk.take_retakes())
            .unwrap_or_default();
        if retakes.is_empty() {
            return format!("not placed again (it was placed again {MAX_RETAKES} times already)");
        }
        let mut said = Vec::new();
        for retake in retakes {
            let aux = random_bytes();
            let Some(Trading {
                desk,
                wallet,
                book,
                chain,
                coin,
            }) = self.trading()
            else {
                return "not placed again: the wallet is locked".into();
            };
            let (words, effects) =
                page_market::run_again(retake, desk, wallet, book, chain, coin, now(), &aux);
            let refused = self.market_effects(effects);
            said.push(refused.map_or(words, |refusal| format!("not placed again: {refusal}")));
        }
        said.join("; ")
    }

    /// Takes what this tab's resting orders passed over (their coins were not here) once it
    /// can be taken: each such order is cancelled and placed again.
    fn take_passed_over(&mut self) {
        // Most refreshes have nothing to watch: no randomness drawn for them.
        if !self.desk.as_ref().is_some_and(Desk::is_watching) {
            return;
        }
        let aux = random_bytes();
        let Some(Trading {
            desk,
            wallet,
            book,
            chain,
            coin,
        }) = self.trading()
        else {
            return;
        };
        let placed_again =
            page_market::run_passed_over(desk, wallet, book, chain, coin, now(), &aux);
        for (words, mut effects) in placed_again {
            // The cancel first: our own, it is not refused.
            let cancel = page_market::MarketEffects {
                update: effects.update.take(),
                ..page_market::MarketEffects::default()
            };
            let _ = self.market_effects(cancel);
            let refused = self.market_effects(effects);
            self.market_notice = Some(match refused {
                None => Notice::Done(format!(
                    "An order yours passed over has its coins now: yours is placed again. {words}"
                )),
                Some(refusal) => Notice::Refused(format!(
                    "An order yours passed over has its coins now: yours was cancelled to take \
                     it, and placing it again failed: {refusal}"
                )),
            });
            self.market_moved = true;
        }
    }

    /// Frees the coins of an order of this tab that did not reach the book.
    fn unplace(&mut self, order: Option<SignedOrder>) {
        if let (Some(order), Some(desk), Some(wallet)) =
            (order, self.desk.as_mut(), self.wallet.unlocked())
        {
            desk.unplace(wallet, &order, now());
        }
    }

    /// A swap proposal to one of this tab's orders: checked, signed, submitted, answered; on
    /// success the fill is published.
    fn swap_proposal(&mut self, from: PeerId, payload: &[u8]) {
        let aux = random_bytes();
        let Some(Trading {
            desk,
            wallet,
            book,
            coin,
            ..
        }) = self.trading()
        else {
            // A locked wallet cannot sign: the taker hears so at once, rather than waiting.
            if let Some(answer) = answer_locked(from, payload) {
                self.route(answer);
            }
            return;
        };
        let tx = match desk.answer(wallet, book, coin, from, payload, now(), &aux) {
            Answer::Submit(tx) => tx,
            Answer::Refuse(refusal) => return self.route(refusal),
            Answer::Ignore => return,
        };
        let txid = tx.compute_txid();
        let accepted = self.submit_tx(tx).map(|_| ());
        let (Some(desk), Some(wallet)) = (self.desk.as_mut(), self.wallet.unlocked()) else {
            return;
        };
        let Some((response, settled)) = desk.answered(wallet, &txid, accepted, now(), &aux) else {
            return;
        };
        let trade = settled.and_then(|(update, trade)| {
            self.submit_to_book(None, Some(update)).ok().map(|()| trade)
        });
        self.route(response);
        if let Some(trade) = trade {
            let row = page_market::trade_row(&trade, self.driver.node().chain());
            self.last_fill = Some(format!("Your order was filled: {}", row.text));
        }
        self.keep_wallet_metadata();
        self.market_moved = true;
        self.refresh_wallet(true);
    }

    /// A maker's answer to a swap this tab proposed.
    fn swap_response(&mut self, from: PeerId, payload: &[u8]) {
        let (Some(desk), Some(wallet)) = (self.desk.as_mut(), self.wallet.unlocked()) else {
            return;
        };
        let Some(outcome) = desk.on_response(wallet, from, payload, now()) else {
            return;
        };
        match outcome {
            TakeOutcome::Settled { trade, tx } => {
                // The maker relayed it; submitting it too makes sure this tab holds it.
                let _ = self.submit_tx(tx);
                let row = page_market::trade_row(&trade, self.driver.node().chain());
                self.last_fill = Some(format!("Trade settled: {}", row.text));
                self.market_notice = Some(Notice::Done(format!("Trade settled: {}", row.text)));
            }
            TakeOutcome::Refused { reason, .. } => {
                let again = self.place_again();
                self.market_notice = Some(Notice::Refused(format!(
                    "The maker refused the trade: {reason}; your coins are free again, and its \
                     part of your order was {again}"
                )));
            }
            TakeOutcome::Unavailable { maker, .. } => {
                // Marked first, so that placing again skips its orders.
                self.mark_offline(&[maker]);
                let again = self.place_again();
                self.market_notice = Some(Notice::Refused(format!(
                    "The maker's wallet is locked: its orders are marked offline ({}); your \
                     coins are free again, and its part of your order was {again}",
                    offline_for()
                )));
            }
        }
        self.keep_wallet_metadata();
        self.market_moved = true;
        self.refresh_wallet(true);
    }

    /// Gives up swaps whose makers did not answer in time; their orders are marked offline.
    fn tick_desk(&mut self) {
        let (Some(desk), Some(wallet)) = (self.desk.as_mut(), self.wallet.unlocked()) else {
            return;
        };
        let silent = desk.on_tick(wallet, now());
        if silent.is_empty() {
            return;
        }
        self.mark_offline(&silent);
        self.market_notice = Some(Notice::Refused(format!(
            "A maker did not answer in time: its orders are marked offline ({}) and your coins \
             are free again. Its part of your order is not placed again: the maker may still \
             complete the trade, which My trades then lists",
            offline_for()
        )));
        self.keep_wallet_metadata();
        self.market_moved = true;
    }

    /// Skips `makers`' orders a while: they did not answer a swap, or cannot sign.
    fn mark_offline(&mut self, makers: &[XOnlyPublicKey]) {
        let (_, actions) = self
            .driver
            .with_protocol::<MarketRelay, _>(now(), |relay, ctx| {
                for maker in makers {
                    relay.mark_unreachable(ctx, *maker);
                }
            });
        self.act(actions);
    }

    /// Transactions that left the chain for good: the desk judges them once it can, in
    /// `refresh_wallet`, which runs after every report. Not here: the tip change that dropped
    /// them came in the same report, and until the wallet follows it, it still counts them in
    /// a block (and its `wallet_caught_up` is of the tip before), so they would be judged no
    /// drop and forgotten.
    fn transactions_dropped(&mut self, dropped: &[Txid]) {
        self.drops_to_judge.push(dropped);
    }

    /// Swaps of this tab's that left the chain for good: their trades are undone, and the fills
    /// they made of this tab's orders reopen (or the orders are cancelled, their coins gone).
    /// Waits while the wallet is locked or catching up; what the mempool has again is no drop.
    fn judge_drops(&mut self) {
        let unlocked = self.wallet.unlocked_ref().is_some() && self.desk.is_some();
        let mempool = tab_mempool(self.driver.node());
        let dropped = self
            .drops_to_judge
            .take(unlocked && self.wallet_caught_up, |txid| {
                mempool.contains(txid)
            });
        if dropped.is_empty() {
            return;
        }
        let aux = random_bytes();
        let Some(Trading {
            desk,
            wallet,
            book,
            chain,
            coin,
        }) = self.trading()
        else {
            return;
        };
        let updates = desk.on_dropped(wallet, book, coin, &dropped, now(), &aux);
        let undone: Vec<String> = desk
            .trades()
            .filter(|trade| trade.undone && dropped.contains(&trade.txid))
            .map(|trade| page_market::trade_row(trade, chain).text)
            .collect();
        for update in updates {
            let _ = self.submit_to_book(None, Some(update));
        }
        // A cancelled order's coins, free again.
        self.keep_wallet_metadata();
        // Its trades show as undone, and the news of their fills goes.
        self.market_moved = true;
        if let Some(first) = undone.first() {
            self.last_fill = None;
            let more = match undone.len() {
                1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            };
            self.market_notice = Some(Notice::Refused(format!(
                "Trade undone: {first}{more}. A reorganisation took its transaction out of the \
                 chain for good, so nothing was traded; an order of yours it filled is open \
                 again, or cancelled if its coins went too"
            )));
        }
    }

    /// Keeps the unlocked wallet's metadata (reservations, used addresses) and its unconfirmed
    /// transactions when they changed.
    fn keep_wallet_metadata(&mut self) {
        let Some(wallet) = self.wallet.unlocked() else {
            return;
        };
        let mut batch = WriteBatch::new();
        let metadata = wallet.metadata().encode();
        if metadata != self.kept_metadata {
            keep_metadata(&mut batch, wallet);
            self.kept_metadata = metadata;
        }
        // The tracker's, conflicted ones included (so they are shown again after a reload).
        let tracker = wallet.tracker();
        let unconfirmed: Vec<u8> = tracker
            .unconfirmed()
            .iter()
            .filter_map(|txid| tracker.unconfirmed_tx(txid))
            .flat_map(bitcoin::consensus::serialize)
            .collect();
        if unconfirmed != self.kept_unconfirmed {
            batch.put(Table::WALLET, UNCONFIRMED_KEY.to_vec(), unconfirmed.clone());
            self.kept_unconfirmed = unconfirmed;
        }
        self.keep_desk_record(&mut batch);
        self.write(batch);
    }

    /// Puts the desk's record (its trades, the fills a reorganisation could reopen) in `batch`
    /// if it changed since it was last kept.
    fn keep_desk_record(&mut self, batch: &mut WriteBatch) {
        let Some(desk) = &self.desk else {
            return;
        };
        let record = desk.record().encode();
        if record != self.kept_desk {
            batch.put(Table::WALLET, DESK_KEY.to_vec(), record.clone());
            self.kept_desk = record;
        }
    }

    /// Keeps the orders the book took, changed or dropped since the last call, as it holds
    /// them now (a dropped one is deleted), in one batch (a book sync brings many at once).
    fn keep_orders(&mut self) {
        if self.orders_to_keep.is_empty() {
            return;
        }
        let relay = market_relay(self.driver.node());
        let mut batch = WriteBatch::new();
        for id in std::mem::take(&mut self.orders_to_keep) {
            match relay.kept(&id) {
                Some(entry) => batch.put(Table::BOOK, id.0.to_vec(), entry),
                None => batch.delete(Table::BOOK, id.0.to_vec()),
            }
        }
        self.write(batch);
    }

    /// Keeps the most recently seen known peers when they changed.
    fn keep_peers(&mut self) {
        let mut records = self.driver.node().known_peers();
        records.sort_unstable_by_key(|record| std::cmp::Reverse(record.last_seen_secs));
        records.truncate(bitmesh_core::wire::MAX_PEER_RECORDS);
        let encoded = Message::Peers(records).encode();
        if encoded != self.kept_peers {
            let mut batch = WriteBatch::new();
            batch.put(Table::META, PEERS.to_vec(), encoded.clone());
            self.kept_peers = encoded;
            self.write(batch);
        }
    }

    /// Hands `batch` to the writer task, if this tab keeps anything.
    fn write(&self, batch: WriteBatch) {
        if let Some(writer) = &self.writer {
            if !batch.is_empty() {
                let _ = writer.unbounded_send(batch);
            }
        }
    }

    /// Sends a faucet request for `address` to a neighbour that runs a faucet.
    fn ask_faucet(&mut self, address: &str) {
        let faucet = self
            .driver
            .node()
            .peers()
            .find(|(_, info)| info.features.contains(Features::FAUCET))
            .map(|(_, info)| info.peer);
        let (Some(faucet), Some(request)) = (faucet, FaucetRequest::new(address.trim())) else {
            self.faucet_state = FaucetState::Refused(if faucet.is_none() {
                "No faucet among this tab's neighbours yet: wait until the node's peer is \
                 connected"
                    .into()
            } else {
                "That is too long to be an address".into()
            });
            return;
        };
        self.faucet = Some(faucet);
        self.faucet_state = FaucetState::Asking;
        let now = now();
        let actions = self.driver.node_input(
            now,
            Input::SendRouted {
                to: faucet,
                kind: RoutedKind::FaucetRequest,
                payload: request.encode(),
            },
        );
        self.act(actions);
    }

    /// A faucet's answer, if it is from the faucet the tab asked.
    fn faucet_answer(&mut self, from: PeerId, payload: &[u8]) {
        if self.faucet != Some(from) {
            return;
        }
        self.faucet = None;
        self.faucet_state = match FaucetAnswer::decode(payload) {
            Ok(FaucetAnswer::Paid(Payment { sats, txid, asset })) => FaucetState::Paid {
                sats,
                txid: txid.to_string(),
                asset: asset.map(|grant| {
                    let known = self.driver.node().chain().asset(&grant.asset);
                    let known = known.map(|issue| (issue.ticker.clone(), issue.decimals));
                    (grant.units, known)
                }),
            },
            Ok(FaucetAnswer::Refused(reason)) => FaucetState::Refused(reason),
            Err(err) => FaucetState::Refused(format!("The faucet's answer is unreadable: {err}")),
        };
    }

    fn update_status(&mut self) {
        let node = self.driver.node();
        let status = PageStatus {
            peer: self.status.peer.clone(),
            signaling: self.client.is_registered(),
            neighbours: node
                .peers()
                .map(|(_, info)| Neighbour {
                    peer: bitcoin::hex::DisplayHex::to_lower_hex_string(&info.peer.0[..8]),
                    rtt_millis: info.rtt_millis,
                })
                .collect(),
            height: node.chain().height(),
            tip: node.chain().tip().to_string(),
            faucet: self.faucet_state.clone(),
            storage: self.status.storage.clone(),
            persisted: self.persisted,
            restoring: None,
            best_header: self.best_header,
            mempool: node
                .protocol::<MempoolRelay>()
                .map_or(0, |relay| relay.mempool().len()),
            wallet: self.wallet_view.clone(),
            notice: self.notice.clone(),
            market: self.market_view.clone(),
            market_notice: self.market_notice.clone(),
            orders_placed: self.orders_placed,
            spends_sent: self.spends_sent,
            last_fill: self.last_fill.clone(),
            stopped: false,
            recent_blocks: explorer::recent_blocks(node.chain()),
            explored: self.explored.clone(),
            devices: page_devices::view(
                self.device_sync
                    .as_ref()
                    .zip(self.wallet.unlocked_ref().map(|wallet| wallet.metadata())),
                self.sync_refusals.clone(),
                now(),
            ),
        };
        if status != self.status {
            self.status = status;
            (self.on_status)(self.status.clone());
        }
    }

    /// Runs a server message through the signaling client: what the driver must hear, if
    /// anything.
    fn server_text(&mut self, text: &str) -> Option<DriverInput> {
        match self.client.on_text(text, &random_bytes::<32>()) {
            Ok(ClientEvent::Send(answer)) => {
                self.send_text(answer);
                None
            }
            Ok(ClientEvent::Registered) => {
                self.backoff.reset();
                self.last_list = js_sys::Date::now();
                self.send_text(self.client.list());
                Some(DriverInput::Server {
                    server: SERVER,
                    registered: true,
                })
            }
            Ok(ClientEvent::Peers(peers)) => Some(DriverInput::Discovered {
                server: SERVER,
                peers,
            }),
            Ok(ClientEvent::Signal { from, signal }) => Some(DriverInput::ServerSignal {
                server: SERVER,
                from,
                signal,
            }),
            Ok(ClientEvent::Refused { .. }) => None,
            Err(_) => {
                // A server that speaks nonsense: drop it and try again later.
                if let Some((socket, _)) = &self.socket {
                    let _ = socket.close();
                }
                None
            }
        }
    }

    fn send_text(&self, text: String) {
        if let Some((socket, _)) = &self.socket {
            let _ = socket.send_with_str(&text);
        }
    }

    fn open_socket(&mut self) {
        let Ok(socket) = WebSocket::new(&self.url) else {
            let _ = self.reports.unbounded_send(Report::ServerClosed);
            return;
        };
        let texts = self.reports.clone();
        let on_message = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
            let event: MessageEvent = event.unchecked_into();
            if let Some(text) = event.data().as_string() {
                let _ = texts.unbounded_send(Report::ServerText(text));
            }
        });
        let closes = self.reports.clone();
        let on_close = Closure::<dyn FnMut(JsValue)>::new(move |_| {
            let _ = closes.unbounded_send(Report::ServerClosed);
        });
        socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        self.socket = Some((socket, vec![on_message, on_close]));
    }

    fn act(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Connect {
                    link,
                    session,
                    offer,
                } => self.connect(link, session, offer),
                Action::Step { link, step } => {
                    if let Some(steps) = self.steps.get(&link) {
                        let _ = steps.unbounded_send(step);
                    }
                }
                Action::Send { link, bytes } => {
                    let full = self
                        .connections
                        .get(&link)
                        .and_then(|connection| connection.send(&bytes).err());
                    if let Some(full) = full {
                        let reason = full.to_string();
                        let _ = self
                            .reports
                            .unbounded_send(Report::Driver(DriverInput::Failed { link, reason }));
                    }
                }
                Action::Close { link } => {
                    self.steps.remove(&link);
                    if let Some(connection) = self.connections.remove(&link) {
                        connection.close();
                    }
                }
                Action::Signal { to, signal, .. } => self.send_text(self.client.signal(to, signal)),
                Action::Event(Event::Routed {
                    from,
                    kind: RoutedKind::FaucetAnswer,
                    payload,
                }) => self.faucet_answer(from, &payload),
                Action::Event(Event::SyncProgress { headers, .. }) => {
                    self.best_header = headers;
                }
                Action::Event(Event::Routed {
                    from,
                    kind: RoutedKind::SwapProposal,
                    payload,
                }) => self.swap_proposal(from, &payload),
                Action::Event(Event::Routed {
                    from,
                    kind: RoutedKind::SwapResponse,
                    payload,
                }) => self.swap_response(from, &payload),
                Action::Event(Event::Routed {
                    from,
                    kind: RoutedKind::DeviceSync,
                    payload,
                }) => self.device_sync_message(from, &payload),
                Action::Event(Event::TopicAnnounced { topic, .. })
                    if self
                        .device_sync
                        .as_ref()
                        .is_some_and(|sync| sync.topic() == topic) =>
                {
                    // A sibling appeared (or renewed): greet it now rather than at the next
                    // round.
                    self.tick_devices(true);
                }
                Action::Event(Event::TransactionsDropped(dropped)) => {
                    self.transactions_dropped(&dropped)
                }
                Action::Event(
                    Event::OrderAccepted(id) | Event::OrderUpdated(id) | Event::OrderDropped(id),
                ) => {
                    self.orders_to_keep.push(id);
                    self.market_moved = true;
                }
                // Its orders are no longer shown offline.
                Action::Event(Event::MakerReachable(_)) => self.market_moved = true,
                Action::Event(_) => {}
            }
        }
    }

    /// Makes the connection for `link`, its offer (or its answer to `offer`), then applies the
    /// link's steps in order.
    fn connect(&mut self, link: LinkId, session: u64, offer: Option<String>) {
        let (steps, mut pending) = mpsc::unbounded();
        self.steps.insert(link, steps);
        let reports = self.reports.clone();
        let config = TransportConfig {
            ice_servers: self.ice_servers.clone(),
            ..TransportConfig::default()
        };
        wasm_bindgen_futures::spawn_local(async move {
            let failed = |reason: String| Report::Driver(DriverInput::Failed { link, reason });
            let (events, signals) = (reports.clone(), reports.clone());
            let made = BrowserConnection::new(
                &config,
                session,
                move |event| {
                    let _ = events
                        .unbounded_send(Report::Driver(DriverInput::Transport { link, event }));
                },
                move |signal| {
                    let _ = signals
                        .unbounded_send(Report::Driver(DriverInput::LocalSignal { link, signal }));
                },
            );
            let connection = match made {
                Ok(connection) => connection,
                Err(err) => return drop(reports.unbounded_send(failed(err.to_string()))),
            };
            let signal = match &offer {
                None => connection.offer().await,
                Some(offer) => connection.answer(offer).await,
            };
            match signal {
                Ok(signal) => {
                    let _ = reports
                        .unbounded_send(Report::Driver(DriverInput::LocalSignal { link, signal }));
                    let _ = reports.unbounded_send(Report::Ready(link, connection.clone()));
                }
                Err(err) => {
                    connection.close();
                    let _ = reports.unbounded_send(failed(err.to_string()));
                    return;
                }
            }
            while let Some(step) = pending.next().await {
                let done = match step {
                    Step::AcceptAnswer { sdp, .. } => connection.accept_answer(&sdp).await,
                    Step::AddCandidate {
                        candidate,
                        sdp_mid,
                        sdp_m_line_index,
                        ..
                    } => {
                        connection
                            .add_candidate(&candidate, sdp_mid.as_deref(), sdp_m_line_index)
                            .await
                    }
                    Step::Answer { .. } => Ok(()),
                };
                if let Err(err) = done {
                    let _ = reports.unbounded_send(failed(err.to_string()));
                    return;
                }
            }
        });
    }
}
