//! The node's own peer: the core's node state machine driven by tokio, with webrtc-rs
//! connections, signaling clients (of this node's own server, and of another node's with
//! `--join`), and the mesh as the signaling path to peers no server lists.
//!
//! One task owns the driver state machine (`bitmesh_mesh::driver::MeshDriver`: the node, the
//! connector, the routes) and the connections, and carries out its actions; everything slow
//! (making a connection, an offer, an answer) runs in tasks that report back on one channel, so
//! the state machine only ever sees one input at a time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bitcoin::secp256k1::Keypair;
use bitmesh_core::chain::assets::AssetId;
use bitmesh_core::chain::mempool::MempoolConfig;
use bitmesh_core::chain::mempool::{Mempool, MempoolError};
use bitmesh_core::chain::state::Chain;
use bitmesh_core::chain::template::build_template;
use bitmesh_core::chain::template::select_transactions;
use bitmesh_core::faucet::{FaucetAnswer, FaucetRequest, Payment, Requester};
use bitmesh_core::market::book::BookLimits;
use bitmesh_core::node::protocols::{
    ChainSync, MarketRelay, MempoolRelay, TopicBoard, MAX_TOPIC_TTL_MILLIS,
};
use bitmesh_core::node::{Event, Input, LinkId, Node, NodeConfig};
use bitmesh_core::wire::{Features, PeerId, PeerRecord, RoutedKind};
use bitmesh_core::Network;
use bitmesh_mesh::connector::{ServerId, Step};
use bitmesh_mesh::driver::{Action, DriverInput, MeshDriver};
use bitmesh_mesh::native::{NativeConfig, NativeConnection};
use bitmesh_mesh::signaling::{Backoff, ClientEvent, Signal, SignalingClient};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::signaling::Signaling;
use bitmesh_node::faucet::{Faucet, FaucetError, Ledger};
use bitmesh_node::miner::Miner;
use bitmesh_node::store::{Store, StoreError};
use bitmesh_node::txindex::TxIndex;

const TICK: Duration = Duration::from_millis(100);
/// How often the registered peers are listed again.
const LIST_EVERY: Duration = Duration::from_secs(10);

/// Where the peer finds its signaling server.
#[derive(Clone)]
pub enum SignalSource {
    /// This node's own.
    Local(Signaling),
    /// Another node's, at this WebSocket URL (`ws://host:port/signal`).
    Remote(String),
}

/// What the HTTP side shows of the peer.
#[derive(Debug, Default)]
pub struct PeerStatus {
    pub neighbours: AtomicUsize,
    pub id: std::sync::OnceLock<PeerId>,
    /// The active chain's height.
    pub height: std::sync::atomic::AtomicU32,
    /// Blocks this node mined, and header hashes its miner tried.
    pub mined: std::sync::atomic::AtomicU64,
    pub hashes: std::sync::atomic::AtomicU64,
}

/// What the store gave back: the identity key, the chain, the peers and the mempool of the last
/// run, the faucet (with the node's wallet), and the store to keep them in.
pub struct Restored {
    pub key: Keypair,
    pub chain: Chain,
    pub peers: Vec<PeerRecord>,
    pub mempool: Vec<bitcoin::Transaction>,
    pub faucet: Option<Faucet>,
    pub store: Store,
}

/// How the node's peer mines.
#[derive(Debug, Clone)]
pub struct Mining {
    /// Worker threads (0: no mining).
    pub threads: usize,
    /// Where block rewards go.
    pub payout: bitcoin::ScriptBuf,
    /// The least time between two blocks this node mines (0: as fast as it can), so a test or
    /// demo network grows at a steady pace instead of racing to the future-time limit.
    pub min_interval_millis: u64,
}

/// How often the known peers and the mempool are saved (and when the node stops).
const PERSIST_EVERY_MILLIS: u64 = 30_000;
/// How often writes are tried again after one failed (a full disk).
const RETRY_WRITES_MILLIS: u64 = 5_000;

/// How long a template is worked on before it is rebuilt (new transactions, a later time).
const TEMPLATE_MAX_AGE_MILLIS: u64 = 5_000;

/// The longest [`PeerHandle::leave`] waits for the connections to close.
const LEAVE_LIMIT: Duration = Duration::from_secs(2);

/// What the peer's tasks report to its loop.
enum Report {
    /// Registered with a signaling server: signals for it go here.
    SignalReady(ServerId, mpsc::Sender<(PeerId, Signal)>),
    /// Anything else, for the driver state machine.
    Driver(DriverInput),
    /// A connection was made for a link.
    Ready(LinkId, NativeConnection),
    /// The miner solved a block of work number `.0`.
    Mined(u64, bitcoin::Block),
    /// The HTTP side asks something of the node (run on the peer's task).
    Query(Box<dyn FnOnce(&mut View<'_>) + Send>),
    /// An application on the peer (the wallet CLI's device sync) wants its events.
    Subscribe(mpsc::UnboundedSender<Event>),
}

/// What an HTTP request may read and do on the running peer.
pub struct View<'a> {
    peer: &'a mut Peer,
}

impl View<'_> {
    pub fn chain(&self) -> &Chain {
        self.peer.driver.node().chain()
    }

    pub fn index(&self) -> &TxIndex {
        &self.peer.index
    }

    pub fn mempool(&self) -> &Mempool {
        self.peer.mempool()
    }

    /// Validates `tx` into the mempool and announces it, as the page's wallet does.
    pub fn submit(
        &mut self,
        tx: bitcoin::Transaction,
    ) -> Result<bitcoin::Txid, bitmesh_core::chain::mempool::MempoolError> {
        self.peer.submit(tx)
    }

    /// The peers the node knows (neighbours first).
    pub fn known_peers(&self) -> Vec<PeerRecord> {
        self.peer.driver.node().known_peers()
    }

    /// The faucet's answer to `requester`'s request for `address`; None when the node runs no
    /// faucet.
    pub fn faucet(
        &mut self,
        address: &str,
        requester: Requester,
    ) -> Option<Result<Payment, FaucetError>> {
        self.peer.faucet(address, requester)
    }

    /// The node wallet's address and the faucet's asset, when it runs one.
    pub fn faucet_status(&self) -> Option<(String, Option<AssetId>)> {
        let faucet = self.peer.faucet.as_ref()?;
        let asset = faucet.asset(self.chain(), self.mempool());
        Some((faucet.wallet().address().to_string(), asset))
    }

    /// Saves the known peers and the mempool now (the node is stopping).
    pub fn persist(&mut self) {
        self.peer.persist(now_millis());
    }

    /// Says goodbye to every neighbour and takes no new one; returns the closing connections.
    fn leave(&mut self) -> Vec<JoinHandle<()>> {
        let actions = self.peer.driver.node_input(now_millis(), Input::Leave);
        self.peer.act(actions);
        std::mem::take(&mut self.peer.closing)
    }

    /// The peer's store.
    pub fn store(&self) -> &Store {
        &self.peer.store
    }

    /// Announces that this peer follows `topic` (signed by its key, for the longest life).
    pub fn announce_topic(&mut self, topic: [u8; 32]) {
        let key = self.peer.key;
        let aux = random32();
        let (_, actions) = self
            .peer
            .driver
            .with_protocol::<TopicBoard, _>(now_millis(), |board, ctx| {
                board.announce(ctx, &key, topic, MAX_TOPIC_TTL_MILLIS, &aux)
            });
        self.peer.act(actions);
    }

    /// The peers that announced `topic` and whose announcement still holds.
    pub fn followers(&self, topic: &[u8; 32]) -> Vec<PeerId> {
        self.peer
            .driver
            .node()
            .protocol::<TopicBoard>()
            .map(|board| board.followers(topic, now_millis()))
            .unwrap_or_default()
    }

    /// Sends `payload` through the mesh to `to`.
    pub fn send_routed(&mut self, to: PeerId, kind: RoutedKind, payload: Vec<u8>) {
        let input = Input::SendRouted { to, kind, payload };
        let actions = self.peer.driver.node_input(now_millis(), input);
        self.peer.act(actions);
    }
}

/// The node's chain and mempool as the faucet's wallet sees them.
struct PeerLedger<'a>(&'a mut Peer);

impl Ledger for PeerLedger<'_> {
    fn chain(&self) -> &Chain {
        self.0.driver.node().chain()
    }

    fn mempool(&self) -> &Mempool {
        self.0.mempool()
    }

    fn index(&self) -> &TxIndex {
        &self.0.index
    }

    fn submit(&mut self, tx: bitcoin::Transaction) -> Result<bitcoin::Txid, MempoolError> {
        self.0.submit(tx)
    }
}

/// The UTXO set in brief: enough to compare two nodes' sets.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UtxoSummary {
    pub tip: String,
    pub height: u32,
    pub coins: usize,
    /// SHA-256 of every coin (outpoint, value, script, height, coinbase flag, assets) in
    /// outpoint order.
    pub digest: String,
}

/// What the HTTP side may ask of the running peer.
#[derive(Clone)]
pub struct PeerHandle {
    reports: mpsc::UnboundedSender<Report>,
}

impl PeerHandle {
    /// Runs `f` on the peer's task; None when the peer is gone.
    pub async fn query<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut View<'_>) -> R + Send + 'static,
    ) -> Option<R> {
        let (answer, result) = tokio::sync::oneshot::channel();
        let query = Box::new(move |view: &mut View<'_>| {
            let _ = answer.send(f(view));
        });
        self.reports.send(Report::Query(query)).ok()?;
        result.await.ok()
    }

    pub async fn utxo_summary(&self) -> Option<UtxoSummary> {
        self.query(|view| utxo_summary(view.chain())).await
    }

    /// Saves what the store keeps besides the chain (the node is stopping).
    pub async fn persist(&self) {
        self.query(|view| view.persist()).await;
    }

    /// Says goodbye to every neighbour and waits (at most [`LEAVE_LIMIT`]) for the connections
    /// to close, so the neighbours route around this peer at once rather than after their
    /// pings go unanswered: the last thing a stopping peer does.
    pub async fn leave(&self) {
        let Some(closing) = self.query(|view| view.leave()).await else {
            return;
        };
        let all_closed = async {
            for connection in closing {
                let _ = connection.await;
            }
        };
        let _ = tokio::time::timeout(LEAVE_LIMIT, all_closed).await;
    }

    /// The events an application on the peer handles: routed messages of the kinds the node
    /// does not answer itself (device sync) and topic announcements.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<Event> {
        let (events, receiver) = mpsc::unbounded_channel();
        let _ = self.reports.send(Report::Subscribe(events));
        receiver
    }
}

fn utxo_summary(chain: &Chain) -> UtxoSummary {
    use bitcoin::hashes::{sha256, Hash, HashEngine};
    let mut coins: Vec<_> = chain.utxo().iter().collect();
    coins.sort_by_key(|(outpoint, _)| **outpoint);
    let mut engine = sha256::HashEngine::default();
    for (outpoint, coin) in &coins {
        engine.input(&bitcoin::consensus::serialize(*outpoint));
        engine.input(&bitcoin::consensus::serialize(&coin.output));
        engine.input(&coin.height.to_le_bytes());
        engine.input(&[u8::from(coin.is_coinbase)]);
        engine.input(format!("{:?}", coin.assets).as_bytes());
    }
    UtxoSummary {
        tip: chain.tip().to_string(),
        height: chain.height(),
        coins: coins.len(),
        digest: sha256::Hash::from_engine(engine).to_string(),
    }
}

/// Starts the peer, registered with each signaling server of `sources`; it runs until the
/// process ends.
pub fn start(
    network: Network,
    restored: Restored,
    sources: Vec<SignalSource>,
    config: NativeConfig,
    mining: Mining,
    status: Arc<PeerStatus>,
) -> PeerHandle {
    let Restored {
        key,
        chain,
        peers,
        mempool,
        faucet,
        store,
    } = restored;
    let seed = random32();
    let now = now_millis();
    let saved_tip = chain.tip();
    let mut node_config = NodeConfig::new(network);
    if faucet.is_some() {
        node_config.features = Features(node_config.features.0 | Features::FAUCET.0);
    }
    let mut node = Node::new(node_config, key, chain, seed, now);
    node.register(Box::new(ChainSync::new()));
    node.register(Box::new(MempoolRelay::new(
        MempoolConfig::default(),
        u64::from_le_bytes(random32()[..8].try_into().expect("8 bytes")),
    )));
    node.register(Box::new(MarketRelay::new(
        BookLimits::default(),
        u64::from_le_bytes(random32()[..8].try_into().expect("8 bytes")),
    )));
    node.register(Box::new(TopicBoard::new(u64::from_le_bytes(
        random32()[..8].try_into().expect("8 bytes"),
    ))));
    node.remember(peers.iter().copied());
    let _ = status.id.set(node.id());
    // Shown from the first request on, before the peer's loop has run.
    status
        .height
        .store(node.chain().height(), Ordering::Relaxed);
    tracing::info!(peer = %node.id(), "the node's peer starts");
    let session_seed = u64::from_le_bytes(seed[..8].try_into().expect("8 bytes"));
    let (reports, inbox) = mpsc::unbounded_channel();
    for (server, source) in sources.into_iter().enumerate() {
        let server = ServerId::try_from(server).expect("a few servers");
        tokio::spawn(signal_loop(server, source, key, network, reports.clone()));
    }
    let miner = (mining.threads > 0).then(|| {
        let reports = reports.clone();
        Miner::start(mining.threads, move |(work, block)| {
            let _ = reports.send(Report::Mined(work, block));
        })
    });
    let mut index = TxIndex::default();
    index.update(node.chain());
    let mut peer = Peer {
        key,
        app: None,
        index,
        store,
        saved_tip,
        saved_peers: peers,
        saved_mempool: Vec::new(),
        persisted_millis: now,
        saved_faucet_asset: faucet.as_ref().and_then(Faucet::issued),
        write_failed_millis: None,
        faucet,
        miner,
        payout: mining.payout,
        min_interval_millis: mining.min_interval_millis,
        last_mined_millis: 0,
        work: None,
        driver: MeshDriver::new(node, session_seed),
        connections: HashMap::new(),
        closing: Vec::new(),
        steps: HashMap::new(),
        servers: HashMap::new(),
        reports,
        status,
        config,
    };
    let restored = mempool.len();
    let accepted = mempool
        .into_iter()
        .filter(|tx| peer.submit(tx.clone()).is_ok())
        .count();
    if restored > 0 {
        tracing::info!("{accepted} of the {restored} saved mempool transactions are still valid");
    }
    peer.saved_mempool = peer.mempool_order();
    peer.maintain_faucet();
    let handle = PeerHandle {
        reports: peer.reports.clone(),
    };
    tokio::spawn(peer.run(inbox));
    handle
}

/// 32 bytes from the system's randomness (the wallet CLI's device sync takes them here too).
pub(crate) fn random32() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).expect("the system's randomness");
    bytes
}

/// The clock, in milliseconds since the epoch (the wallet CLI reads it here too).
pub(crate) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

struct Peer {
    /// The identity key (signs the peer's topic announcements).
    key: Keypair,
    /// Where the events of an application on the peer go ([`PeerHandle::subscribe`]).
    app: Option<mpsc::UnboundedSender<Event>>,
    index: TxIndex,
    store: Store,
    /// The tip the store holds, and the peers and mempool it holds.
    saved_tip: bitcoin::BlockHash,
    saved_peers: Vec<PeerRecord>,
    saved_mempool: Vec<bitcoin::Txid>,
    persisted_millis: u64,
    saved_faucet_asset: Option<(AssetId, bitcoin::Txid)>,
    /// When a write last failed, while writes fail.
    write_failed_millis: Option<u64>,
    /// The faucet and the node's wallet (None with `--no-faucet`, or while it pays).
    faucet: Option<Faucet>,
    miner: Option<Miner>,
    payout: bitcoin::ScriptBuf,
    /// The current work: its number, the tip it extends, when it was built.
    work: Option<(u64, bitcoin::BlockHash, u64)>,
    min_interval_millis: u64,
    /// When this node last mined a block.
    last_mined_millis: u64,
    driver: MeshDriver,
    connections: HashMap<LinkId, NativeConnection>,
    /// Connections closing (their queued messages going out first).
    closing: Vec<JoinHandle<()>>,
    /// Each link's answer and candidates, applied in order by the link's task (an answer must
    /// be taken before the candidates that follow it).
    steps: HashMap<LinkId, mpsc::UnboundedSender<Step>>,
    servers: HashMap<ServerId, mpsc::Sender<(PeerId, Signal)>>,
    reports: mpsc::UnboundedSender<Report>,
    status: Arc<PeerStatus>,
    config: NativeConfig,
}

impl Peer {
    async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Report>) {
        let mut tick = tokio::time::interval(TICK);
        loop {
            let input = tokio::select! {
                report = inbox.recv() => match report {
                    Some(Report::Driver(input)) => input,
                    Some(Report::SignalReady(server, sender)) => {
                        self.servers.insert(server, sender);
                        DriverInput::Server { server, registered: true }
                    }
                    Some(Report::Query(query)) => {
                        query(&mut View { peer: &mut self });
                        self.save();
                        self.update_status();
                        continue;
                    }
                    Some(Report::Subscribe(events)) => {
                        self.app = Some(events);
                        continue;
                    }
                    Some(Report::Mined(work, block)) => {
                        self.mined(work, block);
                        continue;
                    }
                    Some(Report::Ready(link, connection)) => {
                        if self.steps.contains_key(&link) {
                            self.connections.insert(link, connection);
                        } else {
                            // Dropped while it was being made.
                            tokio::spawn(async move { connection.close().await });
                        }
                        continue;
                    }
                    None => return,
                },
                _ = tick.tick() => DriverInput::Tick,
            };
            if let DriverInput::Server {
                server,
                registered: false,
            } = input
            {
                self.servers.remove(&server);
            }
            let now = now_millis();
            let actions = self.driver.handle(now, input);
            self.act(actions);
            self.save();
            if now >= self.persisted_millis + PERSIST_EVERY_MILLIS {
                self.persist(now);
            }
            self.retry_writes(now);
            self.refresh_work();
            self.update_status();
        }
    }

    fn mempool(&self) -> &Mempool {
        self.driver
            .node()
            .protocol::<MempoolRelay>()
            .expect("registered")
            .mempool()
    }

    /// Validates `tx` into the mempool and announces it.
    fn submit(&mut self, tx: bitcoin::Transaction) -> Result<bitcoin::Txid, MempoolError> {
        let now = now_millis();
        let (result, actions) = self
            .driver
            .with_protocol::<MempoolRelay, _>(now, |relay, ctx| relay.submit(ctx, tx));
        self.act(actions);
        result.expect("registered")
    }

    /// The mempool's transactions, parents first.
    fn mempool_order(&self) -> Vec<bitcoin::Txid> {
        let (txs, _) = select_transactions(self.mempool(), bitcoin::Weight::MAX);
        txs.iter().map(bitcoin::Transaction::compute_txid).collect()
    }

    /// Saves the known peers and the mempool when they changed.
    fn persist(&mut self, now: u64) {
        self.persisted_millis = now;
        let peers = self.driver.node().known_peers();
        if peers != self.saved_peers {
            let result = self.store.save_peers(&peers);
            if self.stored(result) {
                self.saved_peers = peers;
            }
        }
        let order = self.mempool_order();
        if order != self.saved_mempool {
            let mempool = self.mempool();
            let txs = order
                .iter()
                .filter_map(|txid| mempool.get(txid))
                .map(|entry| entry.tx.as_ref());
            let result = self.store.save_mempool(txs);
            if self.stored(result) {
                self.saved_mempool = order;
            }
        }
        self.save_faucet_asset();
    }

    /// Keeps the faucet's asset in the store (a node that forgot it would issue another).
    fn save_faucet_asset(&mut self) {
        let issued = self.faucet.as_ref().and_then(Faucet::issued);
        if issued == self.saved_faucet_asset {
            return;
        }
        if let Some((asset, txid)) = issued {
            let result = self.store.set_faucet_asset(asset, txid);
            if self.stored(result) {
                self.saved_faucet_asset = issued;
            }
        }
    }

    /// Issues the faucet's demo asset once it can (and again if its issuance was lost).
    fn maintain_faucet(&mut self) {
        let Some(mut faucet) = self.faucet.take() else {
            return;
        };
        let issued = faucet.issue_if_needed(&mut PeerLedger(self)).is_some();
        self.faucet = Some(faucet);
        if issued {
            self.save_faucet_asset();
        }
    }

    /// The faucet's answer to `requester` for `address` (None: no faucet here).
    fn faucet(
        &mut self,
        address: &str,
        requester: Requester,
    ) -> Option<Result<Payment, FaucetError>> {
        let mut faucet = self.faucet.take()?;
        let answer = faucet.pay(&mut PeerLedger(self), now_millis(), address, requester);
        self.faucet = Some(faucet);
        Some(answer)
    }

    /// Answers a faucet request that came through the mesh.
    fn faucet_request(&mut self, from: PeerId, payload: &[u8]) {
        let answer = match FaucetRequest::decode(payload) {
            Ok(request) => match self.faucet(&request.address, Requester::Peer(from)) {
                Some(Ok(payment)) => FaucetAnswer::Paid(payment),
                Some(Err(err)) => {
                    tracing::info!(peer = %from, "the faucet refused: {err}");
                    FaucetAnswer::refusal(&err)
                }
                None => FaucetAnswer::refusal(&"this node runs no faucet"),
            },
            Err(err) => FaucetAnswer::refusal(&err),
        };
        let now = now_millis();
        let actions = self.driver.node_input(
            now,
            Input::SendRouted {
                to: from,
                kind: RoutedKind::FaucetAnswer,
                payload: answer.encode(),
            },
        );
        self.act(actions);
    }

    /// Keeps the store's chain the active one; a failed write is logged and tried again at the
    /// next change (the store keeps the last good state).
    fn save(&mut self) {
        let chain = self.driver.node().chain();
        let tip = chain.tip();
        if tip == self.saved_tip {
            return;
        }
        self.index.update(chain);
        let result = self.store.save(chain);
        if self.stored(result) {
            self.saved_tip = tip;
        }
        self.maintain_faucet();
    }

    /// Whether a write succeeded. The first failure is logged with what the node does about
    /// it: it keeps running on what it holds in memory (nothing is lost while it runs) and
    /// tries again every few seconds, reopening the database (redb refuses writes after an I/O
    /// error until then).
    fn stored(&mut self, result: Result<(), StoreError>) -> bool {
        match result {
            Ok(()) => {
                if self.write_failed_millis.take().is_some() {
                    tracing::info!("the database is written again");
                }
                true
            }
            Err(err) => {
                if self.write_failed_millis.is_none() {
                    tracing::error!(
                        "{err}. The node keeps running on what it holds in memory and tries \
                         again every {} s",
                        RETRY_WRITES_MILLIS / 1000
                    );
                    self.write_failed_millis = Some(now_millis());
                }
                false
            }
        }
    }

    /// After a failed write: reopens the database and writes what it lacks, now and then.
    fn retry_writes(&mut self, now: u64) {
        let Some(failed) = self.write_failed_millis else {
            return;
        };
        if now < failed + RETRY_WRITES_MILLIS {
            return;
        }
        self.write_failed_millis = Some(now);
        if let Err(err) = self.store.reopen() {
            tracing::debug!("the database cannot be reopened yet: {err}");
            return;
        }
        let chain = self.driver.node().chain();
        let tip = chain.tip();
        if tip != self.saved_tip {
            let result = self.store.save(chain);
            if self.stored(result) {
                self.saved_tip = tip;
            }
        }
        self.persist(now);
    }

    fn update_status(&self) {
        let node = self.driver.node();
        self.status
            .neighbours
            .store(node.peers().count(), Ordering::Relaxed);
        self.status
            .height
            .store(node.chain().height(), Ordering::Relaxed);
        if let Some(miner) = &self.miner {
            self.status.hashes.store(miner.hashes(), Ordering::Relaxed);
        }
    }

    /// Gives the miner a new template when the tip moved or the current one aged.
    fn refresh_work(&mut self) {
        let Some(miner) = &self.miner else {
            return;
        };
        let now = now_millis();
        if now < self.last_mined_millis + self.min_interval_millis {
            // The workers idle: the last work was solved and no new work is given yet.
            return;
        }
        let node = self.driver.node();
        let tip = node.chain().tip();
        let fresh = self
            .work
            .is_some_and(|(_, on, built)| on == tip && now < built + TEMPLATE_MAX_AGE_MILLIS);
        if fresh {
            return;
        }
        let Some(relay) = node.protocol::<MempoolRelay>() else {
            return;
        };
        let extra_nonce = self.work.map_or(0, |(work, _, _)| work + 1);
        let template = build_template(
            node.chain(),
            relay.mempool(),
            &self.payout,
            (now / 1000) as u32,
            extra_nonce,
        );
        let work = miner.set_work(template.block);
        self.work = Some((work, tip, now));
    }

    /// A solved block: submitted like any other, announced if it is valid.
    fn mined(&mut self, work: u64, block: bitcoin::Block) {
        if self.work.map(|(current, _, _)| current) != Some(work) {
            return;
        }
        let hash = block.block_hash();
        let now = now_millis();
        let (result, actions) = self
            .driver
            .with_protocol::<ChainSync, _>(now, |sync, ctx| sync.submit_block(ctx, block));
        match result {
            Some(Ok(())) => {
                self.last_mined_millis = now;
                self.status.mined.fetch_add(1, Ordering::Relaxed);
                tracing::info!(%hash, height = self.driver.node().chain().height(), "mined a block");
            }
            Some(Err(err)) => tracing::warn!(%hash, "a mined block was refused: {err}"),
            None => {}
        }
        self.act(actions);
        self.save();
        self.work = None;
        self.refresh_work();
        self.update_status();
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
                        let _ = steps.send(step);
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
                            .send(Report::Driver(DriverInput::Failed { link, reason }));
                    }
                }
                Action::Close { link } => {
                    self.steps.remove(&link);
                    if let Some(connection) = self.connections.remove(&link) {
                        self.closing.retain(|closing| !closing.is_finished());
                        self.closing
                            .push(tokio::spawn(async move { connection.close().await }));
                    }
                }
                Action::Signal { server, to, signal } => {
                    if let Some(server) = self.servers.get(&server) {
                        let _ = server.try_send((to, signal));
                    }
                }
                Action::Event(Event::Routed {
                    from,
                    kind: RoutedKind::FaucetRequest,
                    payload,
                }) => self.faucet_request(from, &payload),
                Action::Event(
                    event @ (Event::Routed {
                        kind: RoutedKind::DeviceSync,
                        ..
                    }
                    | Event::TopicAnnounced { .. }),
                ) => {
                    if let Some(app) = &self.app {
                        let _ = app.send(event);
                    }
                }
                Action::Event(event) => tracing::debug!(?event, "node event"),
            }
        }
    }

    /// Makes the connection for `link` in a task, then its offer (or its answer to `offer`),
    /// then applies the link's steps in order.
    fn connect(&mut self, link: LinkId, session: u64, offer: Option<String>) {
        let (steps, mut pending) = mpsc::unbounded_channel();
        self.steps.insert(link, steps);
        let (reports, config) = (self.reports.clone(), self.config.clone());
        tokio::spawn(async move {
            let failed = |reason: String| Report::Driver(DriverInput::Failed { link, reason });
            let events = reports.clone();
            let signals = reports.clone();
            let made = NativeConnection::new(
                &config,
                session,
                move |event| {
                    drop(events.send(Report::Driver(DriverInput::Transport { link, event })))
                },
                move |signal| {
                    drop(signals.send(Report::Driver(DriverInput::LocalSignal { link, signal })))
                },
            )
            .await;
            let connection = match made {
                Ok(connection) => connection,
                Err(err) => return drop(reports.send(failed(err.to_string()))),
            };
            let signal = match &offer {
                None => connection.offer().await,
                Some(offer) => connection.answer(offer).await,
            };
            match signal {
                Ok(signal) => {
                    let _ = reports.send(Report::Driver(DriverInput::LocalSignal { link, signal }));
                    let _ = reports.send(Report::Ready(link, connection.clone()));
                }
                Err(err) => {
                    connection.close().await;
                    let _ = reports.send(failed(err.to_string()));
                    return;
                }
            }
            while let Some(step) = pending.recv().await {
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
                    let _ = reports.send(failed(err.to_string()));
                    return;
                }
            }
        });
    }
}

/// Keeps the peer registered with its signaling server: connects, answers the challenge,
/// lists the registered peers now and then, carries signals both ways, and reconnects with
/// backoff when the connection ends.
async fn signal_loop(
    server: ServerId,
    source: SignalSource,
    key: Keypair,
    network: Network,
    reports: mpsc::UnboundedSender<Report>,
) {
    let mut backoff = Backoff::default();
    loop {
        if let Some((to_server, mut from_server)) = connect(&source).await {
            let mut client = SignalingClient::new(key, network.name());
            let (signals, mut outgoing) = mpsc::channel::<(PeerId, Signal)>(256);
            let mut list = tokio::time::interval(LIST_EVERY);
            loop {
                let text = tokio::select! {
                    text = from_server.recv() => match text {
                        Some(text) => text,
                        None => break,
                    },
                    Some((to, signal)) = outgoing.recv() => {
                        if to_server.send(client.signal(to, signal)).await.is_err() {
                            break;
                        }
                        continue;
                    }
                    _ = list.tick(), if client.is_registered() => {
                        if to_server.send(client.list()).await.is_err() {
                            break;
                        }
                        continue;
                    }
                };
                let mut aux = [0u8; 32];
                let _ = getrandom::getrandom(&mut aux);
                let answer = match client.on_text(&text, &aux) {
                    Ok(ClientEvent::Send(answer)) => Some(answer),
                    Ok(ClientEvent::Registered) => {
                        backoff.reset();
                        let _ = reports.send(Report::SignalReady(server, signals.clone()));
                        Some(client.list())
                    }
                    Ok(ClientEvent::Peers(peers)) => {
                        let _ =
                            reports.send(Report::Driver(DriverInput::Discovered { server, peers }));
                        None
                    }
                    Ok(ClientEvent::Signal { from, signal }) => {
                        let _ = reports.send(Report::Driver(DriverInput::ServerSignal {
                            server,
                            from,
                            signal,
                        }));
                        None
                    }
                    Ok(ClientEvent::Refused { code, message }) => {
                        tracing::debug!(?code, "the signaling server refused: {message}");
                        None
                    }
                    Err(err) => {
                        tracing::warn!("signaling: {err}");
                        break;
                    }
                };
                if let Some(answer) = answer {
                    if to_server.send(answer).await.is_err() {
                        break;
                    }
                }
            }
            let _ = reports.send(Report::Driver(DriverInput::Server {
                server,
                registered: false,
            }));
        }
        let mut random = [0u8; 8];
        let _ = getrandom::getrandom(&mut random);
        let wait = backoff.next_delay_millis(u64::from_le_bytes(random));
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
}

/// A connection to the signaling server as two channels of texts.
async fn connect(source: &SignalSource) -> Option<(mpsc::Sender<String>, mpsc::Receiver<String>)> {
    let (to_server, mut outgoing) = mpsc::channel::<String>(256);
    let (incoming, from_server) = mpsc::channel::<String>(256);
    match source {
        SignalSource::Local(signaling) => {
            let mut client = signaling.connect_local().await?;
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        text = client.next() => match text {
                            Some(text) => if incoming.send(text).await.is_err() { return },
                            None => return,
                        },
                        text = outgoing.recv() => match text {
                            Some(text) => if !client.send(text).await { return },
                            None => return,
                        },
                    }
                }
            });
        }
        SignalSource::Remote(url) => {
            let (socket, _) = match tokio_tungstenite::connect_async(url.as_str()).await {
                Ok(connected) => connected,
                Err(err) => {
                    tracing::debug!(url, "cannot reach the signaling server: {err}");
                    return None;
                }
            };
            let (mut sink, mut stream) = socket.split();
            tokio::spawn(async move {
                use tokio_tungstenite::tungstenite::Message;
                loop {
                    tokio::select! {
                        message = stream.next() => match message {
                            Some(Ok(Message::Text(text))) => {
                                if incoming.send(text.as_str().to_owned()).await.is_err() { return }
                            }
                            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                            Some(Ok(_)) => {}
                        },
                        text = outgoing.recv() => match text {
                            Some(text) => {
                                if sink.send(Message::Text(text.into())).await.is_err() { return }
                            }
                            None => return,
                        },
                    }
                }
            });
        }
    }
    Some((to_server, from_server))
}
