//! The peer state machine: handshakes, gossip, routing, rate limits, misbehaviour and bans,
//! and the choice of neighbours, with the chain, the mempool and the market plugged in as
//! [`Protocol`]s.
//!
//! Sans-I/O: the driver feeds [`Input`]s with the time, and carries out the [`Output`]s (send
//! bytes on a link, close it, dial a peer, show an event). Randomness comes from a seed given
//! at start, so a simulation with the same seeds runs the same way every time.

mod fetch;
mod link;
mod protocol;
pub mod protocols;
mod routing;

pub use fetch::{MAX_IN_FLIGHT_PER_LINK, REQUEST_TIMEOUT_MILLIS};
pub use link::{Class, LinkId, LinkState, PeerInfo, TokenBucket};
pub use protocol::{Context, Notice, Offence, Protocol, BAN_SCORE};

use std::collections::BTreeMap;

use bitcoin::secp256k1::{Keypair, Secp256k1, VerifyOnly};
use bitcoin::{BlockHash, Txid};

use self::fetch::Fetcher;
use self::link::{Link, Ping};
use self::protocol::Action;
use self::routing::Seen;
use crate::chain::state::Chain;
use crate::encode::tagged_hash;
use crate::hashing::{KeyedHashing, KeyedMap};
use crate::market::order::OrderId;
use crate::wire::{
    DecodeError, Features, Fingerprint, Goodbye, GoodbyeReason, Hello, InvItem, InvKind,
    InvPurpose, Message, PeerId, PeerRecord, Routed, RoutedKind, SignedHello, MAX_INVENTORY,
    MAX_PEER_RECORDS, MAX_TTL, PROTOCOL_VERSION,
};
use crate::Network;

/// How the node behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    pub network: Network,
    pub features: Features,
    /// Neighbours the node dials until it has this many.
    pub target_neighbours: usize,
    /// Links at most (inbound ones beyond are told the node is full).
    pub max_links: usize,
}

impl NodeConfig {
    pub fn new(network: Network) -> NodeConfig {
        NodeConfig {
            network,
            features: Features::ALL,
            target_neighbours: 8,
            max_links: 24,
        }
    }
}

/// What the driver tells the node.
#[derive(Debug, Clone)]
pub enum Input {
    /// A channel opened; its DTLS fingerprints as the transport reports them.
    LinkUp {
        link: LinkId,
        /// The peer dialed, when this node dialed.
        dialed: Option<PeerId>,
        local_fingerprint: Fingerprint,
        remote_fingerprint: Fingerprint,
    },
    /// A whole message arrived.
    Received { link: LinkId, bytes: Vec<u8> },
    /// A channel closed.
    LinkDown { link: LinkId },
    /// Dialing a peer failed.
    ConnectFailed { peer: PeerId },
    /// A peer learnt elsewhere (the signaling server's list).
    Discovered { peer: PeerId },
    /// Time passed (drivers tick every 100 ms or so).
    Tick,
    /// A routed message to send from this node.
    SendRouted {
        to: PeerId,
        kind: RoutedKind,
        payload: Vec<u8>,
    },
    /// The node is about to stop: it says goodbye to every neighbour, so they route around it
    /// at once instead of after their pings time out, and takes no new link.
    Leave,
}

/// What the node asks the driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Send {
        link: LinkId,
        bytes: Vec<u8>,
    },
    Close {
        link: LinkId,
    },
    /// Open a channel to this peer (through the signaling server or the mesh).
    Connect {
        peer: PeerId,
    },
    Event(Event),
}

/// What happened, for the UI and the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    PeerReady {
        link: LinkId,
        peer: PeerId,
        outbound: bool,
    },
    PeerGone {
        link: LinkId,
        peer: Option<PeerId>,
    },
    /// A peer was banned (its link closed).
    Banned {
        peer: PeerId,
        until_millis: u64,
        reason: String,
    },
    /// A peer said goodbye, or the node refused a peer.
    Refused {
        link: LinkId,
        reason: String,
    },
    TipChanged {
        hash: BlockHash,
        height: u32,
    },
    /// Header-first sync: the best header known, and how far blocks are validated.
    SyncProgress {
        headers: u32,
        blocks: u32,
    },
    TxAccepted(Txid),
    /// Transactions left the mempool and the chain for good (a reorganisation, a conflict):
    /// a maker reopens the fills they settled.
    TransactionsDropped(Vec<Txid>),
    OrderAccepted(OrderId),
    OrderUpdated(OrderId),
    /// An order left the book: it expired, or a newer order on its coins replaced it.
    OrderDropped(OrderId),
    /// A maker marked unreachable is matched again: its mark lapsed, or it was heard from.
    MakerReachable(bitcoin::XOnlyPublicKey),
    /// A routed message for this node.
    Routed {
        from: PeerId,
        kind: RoutedKind,
        payload: Vec<u8>,
    },
    /// A peer announced that it follows a topic (or renewed its announcement).
    TopicAnnounced {
        topic: [u8; 32],
        peer: PeerId,
    },
    /// A round trip measured.
    Rtt {
        peer: PeerId,
        millis: u64,
    },
}

/// How long a new channel may take to say hello.
pub const HANDSHAKE_TIMEOUT_MILLIS: u64 = 10_000;
/// How often a neighbour is pinged, and how long its pong may take.
pub const PING_INTERVAL_MILLIS: u64 = 30_000;
pub const PONG_TIMEOUT_MILLIS: u64 = 60_000;
/// How long the pong may take when a link is in doubt: its peer's routed messages came
/// through another neighbour, so the peer no longer takes the link for alive.
pub const PROBE_TIMEOUT_MILLIS: u64 = 10_000;
/// How long a ban lasts.
pub const BAN_MILLIS: u64 = 24 * 3_600_000;
/// Peers remembered for dialing, and bans kept.
const MAX_KNOWN_PEERS: usize = 1_000;
const MAX_BANS: usize = 10_000;
/// Outbound dials in progress at most, and how long one may take.
const MAX_DIALS: usize = 4;
const DIAL_TIMEOUT_MILLIS: u64 = 30_000;
/// The longest wait before dialing a peer again.
const MAX_BACKOFF_MILLIS: u64 = 300_000;
/// How often a node with all its neighbours dials one more known peer anyway (a feeler), so
/// parts of the mesh that lost each other (a partition) find each other again.
const FEELER_INTERVAL_MILLIS: u64 = 60_000;

/// How much the node holds of what peers can make it hold. Each count has a fixed bound
/// ([`Footprint::bounds`]) whatever peers send: that is what keeps a node's memory bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Footprint {
    /// Links not closing.
    pub links: usize,
    pub known_peers: usize,
    pub bans: usize,
    pub dials: usize,
    /// Objects requested or waiting for a request.
    pub requests: usize,
    pub seen_routed: usize,
    /// Items one link remembers its peer knows (the most of any link).
    pub link_known_items: usize,
    /// New items waiting to be announced on one link (the most of any link). Holdings listed
    /// to a new neighbour are not counted: the node's own stores bound them.
    pub link_queued_items: usize,
}

impl Footprint {
    /// The bounds of a node with `config`.
    pub fn bounds(config: &NodeConfig) -> Footprint {
        Footprint {
            links: config.max_links + MAX_DIALS,
            known_peers: MAX_KNOWN_PEERS,
            bans: MAX_BANS,
            dials: MAX_DIALS,
            requests: fetch::MAX_TRACKED,
            seen_routed: routing::MAX_SEEN,
            link_known_items: link::KNOWN_CAPACITY,
            link_queued_items: link::MAX_PENDING_ANNOUNCEMENTS,
        }
    }

    /// The first count above its bound in `bounds`, by name.
    pub fn exceeded(&self, bounds: &Footprint) -> Option<&'static str> {
        [
            ("links", self.links, bounds.links),
            ("known peers", self.known_peers, bounds.known_peers),
            ("bans", self.bans, bounds.bans),
            ("dials", self.dials, bounds.dials),
            ("requests", self.requests, bounds.requests),
            ("routed ids", self.seen_routed, bounds.seen_routed),
            (
                "known items",
                self.link_known_items,
                bounds.link_known_items,
            ),
            (
                "queued items",
                self.link_queued_items,
                bounds.link_queued_items,
            ),
        ]
        .into_iter()
        .find(|(_, count, bound)| count > bound)
        .map(|(name, _, _)| name)
    }
}

#[derive(Debug, Clone)]
struct KnownPeer {
    failures: u32,
    next_attempt_millis: u64,
    last_seen_secs: u64,
    features: Features,
}

/// A peer node.
pub struct Node {
    config: NodeConfig,
    key: Keypair,
    id: PeerId,
    secp: Secp256k1<bitcoin::secp256k1::All>,
    verify: Secp256k1<VerifyOnly>,
    seed: [u8; 32],
    counter: u64,
    now_millis: u64,
    chain: Chain,
    protocols: Vec<Box<dyn Protocol>>,
    links: BTreeMap<LinkId, Link>,
    fetcher: Fetcher,
    seen_routed: Seen,
    /// Keys the maps of what peers pick (peer ids, announced items): from the seed.
    hashing: KeyedHashing,
    known_peers: KeyedMap<PeerId, KnownPeer>,
    dialing: KeyedMap<PeerId, u64>,
    last_feeler_millis: u64,
    bans: KeyedMap<PeerId, u64>,
    actions: Vec<Action>,
    outputs: Vec<Output>,
    /// Set by [`Input::Leave`]: no dialing, no new links.
    leaving: bool,
}

impl Node {
    /// A node of `config.network` with identity `key`, its chain `chain` (as loaded), and
    /// `seed`: 32 random bytes from the driver, which also key the maps of what peers pick
    /// (the chain's among them, [`Chain::rekey`]).
    pub fn new(
        config: NodeConfig,
        key: Keypair,
        mut chain: Chain,
        seed: [u8; 32],
        now_millis: u64,
    ) -> Node {
        let hashing = tagged_hash(b"bitmesh/node-hashing", &[&seed]);
        let hashing = KeyedHashing::new(u64::from_le_bytes(
            hashing[..8].try_into().expect("8 bytes"),
        ));
        chain.rekey(hashing.derive(6));
        Node {
            id: PeerId::of(&key.x_only_public_key().0),
            config,
            key,
            secp: Secp256k1::new(),
            verify: Secp256k1::verification_only(),
            seed,
            counter: 0,
            now_millis,
            chain,
            protocols: Vec::new(),
            links: BTreeMap::new(),
            fetcher: Fetcher::new(hashing.derive(0)),
            seen_routed: Seen::new(hashing.derive(1)),
            known_peers: KeyedMap::with_hasher(hashing.derive(2)),
            dialing: KeyedMap::with_hasher(hashing.derive(3)),
            last_feeler_millis: now_millis,
            bans: KeyedMap::with_hasher(hashing.derive(4)),
            actions: Vec::new(),
            outputs: Vec::new(),
            leaving: false,
            hashing,
        }
    }

    /// Adds a protocol (at start, before any input).
    pub fn register(&mut self, protocol: Box<dyn Protocol>) {
        self.protocols.push(protocol);
    }

    /// The peers this node knows of, for the driver to keep across restarts: neighbours as
    /// seen now, then the others, most recently seen first.
    pub fn known_peers(&self) -> Vec<PeerRecord> {
        let now_secs = self.now_millis / 1000;
        let mut records: Vec<PeerRecord> = self
            .known_peers
            .iter()
            .map(|(peer, known)| PeerRecord {
                peer: *peer,
                features: known.features,
                last_seen_secs: known.last_seen_secs,
            })
            .collect();
        for (_, info) in self.peers() {
            match records.iter_mut().find(|record| record.peer == info.peer) {
                Some(record) => record.last_seen_secs = now_secs,
                None => records.push(PeerRecord {
                    peer: info.peer,
                    features: info.features,
                    last_seen_secs: now_secs,
                }),
            }
        }
        records.sort_unstable_by_key(|record| {
            (core::cmp::Reverse(record.last_seen_secs), record.peer)
        });
        records.truncate(MAX_KNOWN_PEERS);
        records
    }

    /// Peers known from an earlier run (the driver's store), dialed like any known peer.
    pub fn remember(&mut self, records: impl IntoIterator<Item = PeerRecord>) {
        for record in records {
            if !self.is_banned(&record.peer) {
                self.learn(record.peer, record.features, record.last_seen_secs);
            }
        }
    }

    pub fn id(&self) -> PeerId {
        self.id
    }

    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// The registered protocol of type `P`.
    pub fn protocol<P: Protocol>(&self) -> Option<&P> {
        self.protocols
            .iter()
            .find_map(|protocol| protocol.as_any().downcast_ref())
    }

    /// Runs `f` on the protocol of type `P` with a context, as if a message had come (a local
    /// submission: a transaction, an order, a mined block), and returns what follows.
    pub fn with_protocol<P: Protocol, R>(
        &mut self,
        now_millis: u64,
        f: impl FnOnce(&mut P, &mut Context<'_>) -> R,
    ) -> (Option<R>, Vec<Output>) {
        self.now_millis = self.now_millis.max(now_millis);
        let Some(index) = self
            .protocols
            .iter()
            .position(|protocol| protocol.as_any().is::<P>())
        else {
            return (None, Vec::new());
        };
        let result = {
            let (protocol, mut ctx) = self.acting(index);
            let protocol = protocol
                .as_any_mut()
                .downcast_mut::<P>()
                .expect("checked above");
            f(protocol, &mut ctx)
        };
        self.run_actions();
        self.flush_all();
        (Some(result), core::mem::take(&mut self.outputs))
    }

    /// Neighbours past their handshake.
    pub fn peers(&self) -> impl Iterator<Item = (LinkId, &PeerInfo)> + '_ {
        self.links
            .iter()
            .filter(|(_, link)| link.is_ready())
            .filter_map(|(id, link)| link.peer().map(|peer| (*id, peer)))
    }

    /// What the node holds now, to compare with [`Footprint::bounds`].
    pub fn footprint(&self) -> Footprint {
        let open = || self.links.values().filter(|link| !link.closing);
        Footprint {
            links: open().count(),
            known_peers: self.known_peers.len(),
            bans: self.bans.len(),
            dials: self.dialing.len(),
            requests: self.fetcher.len(),
            seen_routed: self.seen_routed.len(),
            link_known_items: open().map(|link| link.known.len()).max().unwrap_or(0),
            link_queued_items: open()
                .map(|link| link.announce_new.len())
                .max()
                .unwrap_or(0),
        }
    }

    /// Whether `peer` is banned now.
    pub fn is_banned(&self, peer: &PeerId) -> bool {
        self.bans
            .get(peer)
            .is_some_and(|until| *until > self.now_millis)
    }

    /// Handles one input at `now_millis`; returns what the driver must do.
    pub fn handle(&mut self, now_millis: u64, input: Input) -> Vec<Output> {
        self.now_millis = self.now_millis.max(now_millis);
        match input {
            Input::LinkUp {
                link,
                dialed,
                local_fingerprint,
                remote_fingerprint,
            } => self.link_up(link, dialed, local_fingerprint, remote_fingerprint),
            Input::Received { link, bytes } => self.received(link, &bytes),
            Input::LinkDown { link } => self.link_down(link),
            Input::ConnectFailed { peer } => {
                self.dialing.remove(&peer);
                self.dial_failed(peer);
            }
            Input::Discovered { peer } => self.learn(peer, Features::default(), 0),
            Input::Tick => self.tick(),
            Input::SendRouted { to, kind, payload } => {
                let aux = self.random();
                let nonce = u64::from_le_bytes(self.random()[..8].try_into().expect("8 bytes"));
                let routed = Routed::sign(
                    &self.secp,
                    &self.key,
                    to,
                    MAX_TTL,
                    self.now_millis,
                    nonce,
                    kind,
                    payload,
                    &aux,
                );
                self.seen_routed.insert(routed.id(), self.now_millis);
                self.forward(None, routed);
            }
            Input::Leave => self.leave(),
        }
        self.run_actions();
        self.flush_all();
        core::mem::take(&mut self.outputs)
    }

    /// 32 bytes from the seed and a counter (BIP340 auxiliary randomness, nonces, choices).
    fn random(&mut self) -> [u8; 32] {
        self.counter += 1;
        tagged_hash(
            b"bitmesh/node-random",
            &[&self.seed, &self.counter.to_le_bytes()],
        )
    }

    fn send(&mut self, link: LinkId, message: &Message) {
        if let Some(state) = self.links.get_mut(&link) {
            if state.closing {
                return;
            }
            self.outputs.push(Output::Send {
                link,
                bytes: message.encode(),
            });
        }
    }

    fn leave(&mut self) {
        self.leaving = true;
        self.dialing.clear();
        let links: Vec<LinkId> = self.links.keys().copied().collect();
        for link in links {
            self.close(link, Some(leaving()));
        }
    }

    fn close(&mut self, link: LinkId, goodbye: Option<Goodbye>) {
        let Some(state) = self.links.get_mut(&link) else {
            return;
        };
        if state.closing {
            return;
        }
        if let Some(goodbye) = goodbye {
            self.outputs.push(Output::Send {
                link,
                bytes: Message::Goodbye(goodbye).encode(),
            });
        }
        state.closing = true;
        self.outputs.push(Output::Close { link });
    }

    fn hello(&mut self, link: LinkId) -> Message {
        let state = &self.links[&link];
        let hello = Hello {
            magic: self.config.network.params().magic,
            version: PROTOCOL_VERSION,
            peer: self.id,
            tip: self.chain.tip(),
            height: self.chain.height(),
            features: self.config.features,
            time_millis: self.now_millis,
            sender_fingerprint: state.local_fingerprint,
            receiver_fingerprint: state.remote_fingerprint,
        };
        let aux = self.random();
        Message::Hello(SignedHello::sign(&self.secp, hello, &self.key, &aux))
    }

    fn link_up(
        &mut self,
        link: LinkId,
        dialed: Option<PeerId>,
        local: Fingerprint,
        remote: Fingerprint,
    ) {
        if let Some(peer) = dialed {
            self.dialing.remove(&peer);
        }
        self.links.insert(
            link,
            Link::new(
                dialed.is_some(),
                dialed,
                local,
                remote,
                self.now_millis,
                // A key of its own for each link's map.
                self.hashing.derive(5).derive(link.0),
            ),
        );
        if self.leaving {
            self.close(link, Some(leaving()));
            return;
        }
        if dialed.is_none() && self.links.len() > self.config.max_links {
            self.close(
                link,
                Some(Goodbye::new(
                    GoodbyeReason::Full,
                    "this node has all the links it takes",
                )),
            );
            return;
        }
        let hello = self.hello(link);
        self.send(link, &hello);
    }

    fn link_down(&mut self, link: LinkId) {
        let Some(state) = self.links.remove(&link) else {
            return;
        };
        let peer = state.peer().map(|info| info.peer);
        if state.peer().is_some() {
            for (next, item) in self.fetcher.link_gone(link, self.now_millis) {
                self.request(next, vec![item]);
            }
            self.each_protocol(|protocol, ctx| protocol.on_link_gone(ctx, link));
        }
        if let Some(peer) = state.dialed.filter(|_| state.peer().is_none()) {
            self.dial_failed(peer);
        }
        self.outputs
            .push(Output::Event(Event::PeerGone { link, peer }));
    }

    /// Protocol `index` and the context it acts in: the mempool is read from the protocol
    /// that holds it, unless that is the one acting (it has its own).
    fn acting(&mut self, index: usize) -> (&mut dyn Protocol, Context<'_>) {
        let (before, rest) = self.protocols.split_at_mut(index);
        let (protocol, after) = rest.split_first_mut().expect("a protocol's index");
        let mempool = before
            .iter()
            .chain(after.iter())
            .find_map(|other| other.shared_mempool());
        let ctx = Context {
            now_millis: self.now_millis,
            chain: &mut self.chain,
            mempool,
            links: &self.links,
            actions: &mut self.actions,
        };
        (protocol.as_mut(), ctx)
    }

    /// Calls `f` on every protocol with a context.
    fn each_protocol(&mut self, mut f: impl FnMut(&mut dyn Protocol, &mut Context<'_>)) {
        for index in 0..self.protocols.len() {
            let (protocol, mut ctx) = self.acting(index);
            f(protocol, &mut ctx);
        }
    }

    fn owner(&self, kind: InvKind) -> Option<usize> {
        self.protocols
            .iter()
            .position(|protocol| protocol.kinds().contains(&kind))
    }

    fn received(&mut self, link: LinkId, bytes: &[u8]) {
        let Some(state) = self.links.get(&link) else {
            return;
        };
        if state.closing {
            return;
        }
        let message = match Message::decode(bytes) {
            Ok(message) => message,
            Err(err) => {
                let offence = match err {
                    DecodeError::TooLarge { .. } => Offence::Oversized,
                    other => Offence::Malformed(other.to_string()),
                };
                self.punish(link, offence);
                return;
            }
        };
        if let Message::Hello(hello) = message {
            self.on_hello(link, hello);
            return;
        }
        if let Message::Goodbye(goodbye) = &message {
            self.outputs.push(Output::Event(Event::Refused {
                link,
                reason: format!("the peer said goodbye: {}", goodbye.text),
            }));
            self.close(link, None);
            return;
        }
        if self.links[&link].peer().is_none() {
            self.punish(
                link,
                Offence::ProtocolViolation("a message before the hello"),
            );
            return;
        }
        let now = self.now_millis;
        let state = self.links.get_mut(&link).expect("checked above");
        let budget = match &message {
            Message::Inv { items, .. } | Message::GetData(items) | Message::NotFound(items) => {
                Some((Class::Inventory, items.len().max(1) as u64, "inventory"))
            }
            Message::GetHeaders(_) => Some((Class::Headers, 1, "header request")),
            Message::Routed(_) => Some((Class::Routed, 1, "routed")),
            Message::Ping(_) | Message::Pong(_) | Message::GetPeers | Message::Peers(_) => {
                Some((Class::Control, 1, "control"))
            }
            Message::Unknown(_) => Some((Class::Control, 1, "unknown")),
            _ => None,
        };
        if let Some((class, cost, what)) = budget {
            if !state.spend(class, cost, now) {
                self.punish(link, Offence::OverBudget(what));
                return;
            }
        }
        match message {
            Message::Hello(_) | Message::Goodbye(_) => unreachable!("handled above"),
            Message::Ping(nonce) => self.send(link, &Message::Pong(nonce)),
            Message::Pong(nonce) => self.on_pong(link, nonce),
            Message::Inv { purpose, items } => self.on_inv(link, purpose, items),
            Message::GetData(items) => self.on_get_data(link, items),
            Message::NotFound(items) => {
                for item in items {
                    if let Some((next, item)) = self.fetcher.not_found(&item, link, now) {
                        self.request(next, vec![item]);
                    }
                }
            }
            Message::GetPeers => self.on_get_peers(link),
            Message::Peers(records) => {
                for record in records {
                    self.learn(record.peer, record.features, record.last_seen_secs);
                }
            }
            Message::Routed(routed) => self.on_routed(link, routed),
            Message::Unknown(_) => {}
            other => self.dispatch(link, other),
        }
    }

    /// A message for a protocol: objects are checked against the node's requests first.
    fn dispatch(&mut self, link: LinkId, message: Message) {
        let requested = object_item(&message).and_then(|item| self.fetcher.delivered(&item, link));
        let Some(index) = self
            .protocols
            .iter()
            .position(|protocol| protocol.handles(&message))
        else {
            // Nothing here speaks it (a feature this node lacks): ignored.
            return;
        };
        let (protocol, mut ctx) = self.acting(index);
        protocol.on_message(&mut ctx, link, message, requested);
    }

    fn on_hello(&mut self, link: LinkId, hello: SignedHello) {
        let state = &self.links[&link];
        if state.peer().is_some() {
            self.punish(link, Offence::ProtocolViolation("a second hello"));
            return;
        }
        let (outbound, dialed) = (state.outbound, state.dialed);
        let checked = hello.check(
            &self.verify,
            self.config.network.params().magic,
            self.id,
            &state.local_fingerprint,
            &state.remote_fingerprint,
        );
        if let Err(err) = checked {
            let reason = match err {
                crate::wire::HelloError::WrongNetwork { .. } => GoodbyeReason::WrongNetwork,
                crate::wire::HelloError::UnsupportedVersion { .. } => {
                    GoodbyeReason::UnsupportedVersion
                }
                _ => GoodbyeReason::BadHello,
            };
            self.outputs.push(Output::Event(Event::Refused {
                link,
                reason: err.to_string(),
            }));
            self.close(link, Some(Goodbye::new(reason, &err)));
            return;
        }
        let hello = hello.hello;
        if self.is_banned(&hello.peer) {
            self.close(
                link,
                Some(Goodbye::new(
                    GoodbyeReason::Banned,
                    "the peer is banned for a while",
                )),
            );
            return;
        }
        if dialed.is_some_and(|dialed| dialed != hello.peer) {
            self.close(
                link,
                Some(Goodbye::new(GoodbyeReason::BadHello, "not the peer dialed")),
            );
            return;
        }
        // Two channels to one peer: dialed by both at once, both ends keep the one dialed by
        // the smaller peer id; dialed twice by one side, the newer wins (its dialer dials again
        // only when it gave the older up: a reload, a tab taking over).
        let existing = self
            .links
            .iter()
            .find(|(_, other)| other.is_ready() && other.peer().map(|p| p.peer) == Some(hello.peer))
            .map(|(id, other)| (*id, other.outbound));
        if let Some((other, other_outbound)) = existing {
            let smaller_dials = |outbound: bool| (self.id < hello.peer) == outbound;
            let keep_new = outbound == other_outbound || smaller_dials(outbound);
            let drop = if keep_new { other } else { link };
            self.close(
                drop,
                Some(Goodbye::new(GoodbyeReason::Duplicate, "already connected")),
            );
            if !keep_new {
                return;
            }
        }
        let info = PeerInfo {
            peer: hello.peer,
            version: hello.version.min(PROTOCOL_VERSION),
            features: hello.features,
            height: hello.height,
            since_millis: self.now_millis,
            rtt_millis: None,
        };
        self.links.get_mut(&link).expect("exists").state = LinkState::Ready(info);
        self.learn(hello.peer, hello.features, self.now_millis / 1000);
        if let Some(known) = self.known_peers.get_mut(&hello.peer) {
            known.failures = 0;
        }
        self.outputs.push(Output::Event(Event::PeerReady {
            link,
            peer: hello.peer,
            outbound,
        }));
        // Reconciliation: list what this node holds; ask for its neighbours.
        let mut holdings = Vec::new();
        for protocol in &self.protocols {
            holdings.extend(protocol.holdings(&self.chain));
        }
        let state = self.links.get_mut(&link).expect("exists");
        state.announce_holdings.extend(holdings);
        self.send(link, &Message::GetPeers);
        self.each_protocol(|protocol, ctx| protocol.on_link_ready(ctx, link));
    }

    /// Pings `link` (ready) now; without a pong within `timeout` it is closed. A ping under
    /// way is not repeated, only given the earlier deadline.
    fn ping(&mut self, link: LinkId, timeout: u64) {
        let now = self.now_millis;
        let due_millis = now + timeout;
        let state = self.links.get_mut(&link).expect("a live link");
        if let Some(ping) = &mut state.ping {
            ping.due_millis = ping.due_millis.min(due_millis);
            return;
        }
        let nonce = u64::from_le_bytes(self.random()[..8].try_into().expect("8 bytes"));
        let state = self.links.get_mut(&link).expect("a live link");
        state.ping = Some(Ping {
            nonce,
            sent_millis: now,
            due_millis,
        });
        state.last_ping_millis = now;
        self.send(link, &Message::Ping(nonce));
    }

    fn on_pong(&mut self, link: LinkId, nonce: u64) {
        let now = self.now_millis;
        let state = self.links.get_mut(&link).expect("checked by the caller");
        match state.ping {
            Some(ping) if ping.nonce == nonce => {
                state.ping = None;
                let rtt = now.saturating_sub(ping.sent_millis);
                let info = state.peer_mut().expect("ready");
                info.rtt_millis = Some(rtt);
                let peer = info.peer;
                self.outputs
                    .push(Output::Event(Event::Rtt { peer, millis: rtt }));
            }
            _ => self.punish(link, Offence::Unrequested("pong")),
        }
    }

    fn on_inv(&mut self, link: LinkId, purpose: InvPurpose, items: Vec<InvItem>) {
        let mut wanted = Vec::new();
        for item in items {
            self.links
                .get_mut(&link)
                .expect("checked by the caller")
                .known
                .insert(item);
            let Some(index) = self.owner(item.kind) else {
                continue;
            };
            let (protocol, mut ctx) = self.acting(index);
            if protocol.wants(&mut ctx, link, &item)
                && self.fetcher.announced(item, link, purpose, self.now_millis)
            {
                wanted.push(item);
            }
        }
        self.request(link, wanted);
    }

    fn request(&mut self, link: LinkId, items: Vec<InvItem>) {
        for chunk in items.chunks(MAX_INVENTORY) {
            self.send(link, &Message::GetData(chunk.to_vec()));
        }
    }

    fn on_get_data(&mut self, link: LinkId, items: Vec<InvItem>) {
        let mut missing = Vec::new();
        for item in items {
            let object = self
                .owner(item.kind)
                .and_then(|index| self.protocols[index].object(&self.chain, &item));
            match object {
                Some(message) => {
                    if let Some(state) = self.links.get_mut(&link) {
                        state.known.insert(item);
                    }
                    self.send(link, &message);
                }
                None => missing.push(item),
            }
        }
        if !missing.is_empty() {
            self.send(link, &Message::NotFound(missing));
        }
    }

    fn on_get_peers(&mut self, link: LinkId) {
        let asker = self.links[&link].peer().map(|info| info.peer);
        let mut records: Vec<PeerRecord> = self
            .peers()
            .filter(|(_, info)| Some(info.peer) != asker)
            .map(|(_, info)| PeerRecord {
                peer: info.peer,
                features: info.features,
                last_seen_secs: self.now_millis / 1000,
            })
            .collect();
        let mut others: Vec<(&PeerId, &KnownPeer)> = self
            .known_peers
            .iter()
            .filter(|(peer, known)| Some(**peer) != asker && known.last_seen_secs > 0)
            .collect();
        others.sort_unstable_by_key(|(peer, known)| {
            (core::cmp::Reverse(known.last_seen_secs), **peer)
        });
        for (peer, known) in others {
            if records.len() >= MAX_PEER_RECORDS {
                break;
            }
            if !records.iter().any(|record| record.peer == *peer) {
                records.push(PeerRecord {
                    peer: *peer,
                    features: known.features,
                    last_seen_secs: known.last_seen_secs,
                });
            }
        }
        records.truncate(MAX_PEER_RECORDS);
        self.send(link, &Message::Peers(records));
    }

    fn on_routed(&mut self, link: LinkId, routed: Routed) {
        use routing::MAX_ROUTED_AGE_MILLIS;
        if routed.ttl == 0 || routed.ttl > MAX_TTL {
            self.punish(link, Offence::ProtocolViolation("a routed message's ttl"));
            return;
        }
        if routed.sent_millis + MAX_ROUTED_AGE_MILLIS < self.now_millis
            || routed.sent_millis > self.now_millis + MAX_ROUTED_AGE_MILLIS
        {
            // Stale or from a skewed clock: dropped, nobody is blamed.
            return;
        }
        let id = routed.id();
        if self.seen_routed.contains(&id) {
            return;
        }
        if routed.verify(&self.verify).is_err() {
            self.punish(link, Offence::BadSignature("routed message"));
            return;
        }
        self.seen_routed.insert(id, self.now_millis);
        if routed.to == self.id {
            // A sender sends straight to an addressee it takes for a live neighbour: a message
            // for this node that came another way puts the direct link to its sender in doubt
            // (the sender restarted, or lost the link without a word).
            let doubted = self
                .peers()
                .find(|(other, info)| info.peer == routed.from && *other != link)
                .map(|(other, _)| other);
            if let Some(doubted) = doubted {
                self.ping(doubted, PROBE_TIMEOUT_MILLIS);
            }
            self.outputs.push(Output::Event(Event::Routed {
                from: routed.from,
                kind: routed.kind,
                payload: routed.payload,
            }));
            return;
        }
        self.forward(Some(link), routed);
    }

    /// Sends a routed message on: to its addressee if it is a neighbour, else (hops left) to
    /// every neighbour but the one it came from.
    fn forward(&mut self, from: Option<LinkId>, mut routed: Routed) {
        let direct = self
            .peers()
            .find(|(_, info)| info.peer == routed.to)
            .map(|(link, _)| link);
        if let Some(link) = direct {
            self.send(link, &Message::Routed(routed));
            return;
        }
        if from.is_some() {
            if routed.ttl <= 1 {
                return;
            }
            routed.ttl -= 1;
        }
        let targets: Vec<LinkId> = self
            .peers()
            .map(|(link, _)| link)
            .filter(|link| Some(*link) != from)
            .collect();
        let message = Message::Routed(routed);
        for link in targets {
            self.send(link, &message);
        }
    }

    fn punish(&mut self, link: LinkId, offence: Offence) {
        let Some(state) = self.links.get_mut(&link) else {
            return;
        };
        if state.closing {
            return;
        }
        state.score = state.score.saturating_add(offence.score());
        if state.score < BAN_SCORE {
            return;
        }
        let peer = state.peer().map(|info| info.peer);
        let reason = offence.to_string();
        if let Some(peer) = peer {
            let until = self.now_millis + BAN_MILLIS;
            if self.bans.len() >= MAX_BANS {
                let now = self.now_millis;
                self.bans.retain(|_, until| *until > now);
            }
            if self.bans.len() < MAX_BANS {
                self.bans.insert(peer, until);
            }
            self.outputs.push(Output::Event(Event::Banned {
                peer,
                until_millis: until,
                reason: reason.clone(),
            }));
        } else {
            self.outputs.push(Output::Event(Event::Refused {
                link,
                reason: reason.clone(),
            }));
        }
        self.close(
            link,
            Some(Goodbye::new(GoodbyeReason::Misbehaviour, reason)),
        );
    }

    /// Carries out what protocols asked, notices first to every protocol, until none is left.
    fn run_actions(&mut self) {
        // Each round's notices come from the previous round's protocols: a chain of a few
        // at most, bounded all the same.
        for _ in 0..16 {
            if self.actions.is_empty() {
                return;
            }
            let actions = core::mem::take(&mut self.actions);
            for action in actions {
                match action {
                    Action::Send(link, message) => self.send(link, &message),
                    Action::Announce(item) => {
                        for state in self.links.values_mut().filter(|link| link.is_ready()) {
                            state.queue_new(item);
                        }
                    }
                    Action::Offence(link, offence) => self.punish(link, offence),
                    Action::Event(event) => self.outputs.push(Output::Event(event)),
                    Action::Notice(notice) => {
                        self.each_protocol(|protocol, ctx| protocol.on_notice(ctx, &notice));
                    }
                }
            }
        }
        debug_assert!(self.actions.is_empty(), "notices did not settle");
        self.actions.clear();
    }

    /// Sends every link what waits to be announced, a batch of each purpose at a time.
    fn flush_all(&mut self) {
        let links: Vec<LinkId> = self.links.keys().copied().collect();
        for link in links {
            for purpose in [InvPurpose::New, InvPurpose::Holdings] {
                let state = self.links.get_mut(&link).expect("listed");
                if !state.is_ready() {
                    continue;
                }
                let queue = match purpose {
                    InvPurpose::New => &mut state.announce_new,
                    InvPurpose::Holdings => &mut state.announce_holdings,
                };
                // New objects go at once; holdings a batch per call, so a big book does not
                // flood a new neighbour's budget.
                let rounds = if purpose == InvPurpose::New {
                    usize::MAX
                } else {
                    1
                };
                for _ in 0..rounds {
                    let mut items = Vec::new();
                    while items.len() < MAX_INVENTORY {
                        let Some(item) = queue.pop_front() else { break };
                        if state.known.insert(item) {
                            items.push(item);
                        }
                    }
                    if items.is_empty() {
                        break;
                    }
                    self.outputs.push(Output::Send {
                        link,
                        bytes: Message::Inv { purpose, items }.encode(),
                    });
                }
            }
        }
    }

    fn tick(&mut self) {
        let now = self.now_millis;
        // Handshakes that take too long, pings, pongs that do not come.
        let links: Vec<LinkId> = self.links.keys().copied().collect();
        for link in links {
            let state = &self.links[&link];
            if state.closing {
                continue;
            }
            match &state.state {
                LinkState::Handshake { since_millis } => {
                    if now >= since_millis + HANDSHAKE_TIMEOUT_MILLIS {
                        self.close(link, None);
                    }
                }
                LinkState::Ready(_) => {
                    if let Some(ping) = state.ping {
                        if now >= ping.due_millis {
                            self.close(link, None);
                        }
                    } else if now >= state.last_ping_millis + PING_INTERVAL_MILLIS {
                        self.ping(link, PONG_TIMEOUT_MILLIS);
                    }
                }
            }
        }
        for (slow, next) in self.fetcher.expire(now) {
            let _ = slow;
            if let Some((link, item)) = next {
                self.request(link, vec![item]);
            }
        }
        self.seen_routed.expire(now);
        self.each_protocol(|protocol, ctx| protocol.on_tick(ctx));
        self.dial();
    }

    fn learn(&mut self, peer: PeerId, features: Features, last_seen_secs: u64) {
        if peer == self.id {
            return;
        }
        if let Some(known) = self.known_peers.get_mut(&peer) {
            known.last_seen_secs = known.last_seen_secs.max(last_seen_secs);
            if features != Features::default() {
                known.features = features;
            }
            return;
        }
        if self.known_peers.len() >= MAX_KNOWN_PEERS {
            // Forget the peer that failed most (then the one seen longest ago).
            let worst = self
                .known_peers
                .iter()
                .max_by_key(|(id, known)| {
                    (
                        known.failures,
                        core::cmp::Reverse(known.last_seen_secs),
                        **id,
                    )
                })
                .map(|(id, _)| *id)
                .expect("full");
            self.known_peers.remove(&worst);
        }
        self.known_peers.insert(
            peer,
            KnownPeer {
                failures: 0,
                next_attempt_millis: 0,
                last_seen_secs,
                features,
            },
        );
    }

    fn dial_failed(&mut self, peer: PeerId) {
        let now = self.now_millis;
        if let Some(known) = self.known_peers.get_mut(&peer) {
            known.failures = known.failures.saturating_add(1);
            let backoff = 1_000u64
                .saturating_mul(1 << known.failures.min(16))
                .min(MAX_BACKOFF_MILLIS);
            known.next_attempt_millis = now + backoff;
        }
    }

    /// Dials known peers while there are fewer neighbours than the target.
    fn dial(&mut self) {
        if self.leaving {
            return;
        }
        let now = self.now_millis;
        let timed_out: Vec<PeerId> = self
            .dialing
            .iter()
            .filter(|(_, since)| now >= **since + DIAL_TIMEOUT_MILLIS)
            .map(|(peer, _)| *peer)
            .collect();
        for peer in timed_out {
            self.dialing.remove(&peer);
            self.dial_failed(peer);
        }
        let connected: Vec<PeerId> = self
            .links
            .values()
            .filter(|link| !link.closing)
            .filter_map(|link| link.peer().map(|info| info.peer).or(link.dialed))
            .collect();
        let mut wanted = self
            .config
            .target_neighbours
            .saturating_sub(connected.len() + self.dialing.len())
            .min(MAX_DIALS.saturating_sub(self.dialing.len()));
        if wanted == 0
            && now >= self.last_feeler_millis + FEELER_INTERVAL_MILLIS
            && connected.len() < self.config.max_links
        {
            self.last_feeler_millis = now;
            wanted = 1;
        }
        if wanted == 0 {
            return;
        }
        let salt = self.random();
        let mut candidates: Vec<(u32, [u8; 32], PeerId)> = self
            .known_peers
            .iter()
            .filter(|(peer, known)| {
                known.next_attempt_millis <= now
                    && !connected.contains(peer)
                    && !self.dialing.contains_key(peer)
                    && !self.is_banned(peer)
            })
            .map(|(peer, known)| (known.failures, tagged_hash(&salt, &[&peer.0]), *peer))
            .collect();
        candidates.sort_unstable();
        for (_, _, peer) in candidates {
            if wanted == 0 {
                break;
            }
            self.dialing.insert(peer, now);
            self.outputs.push(Output::Connect { peer });
            wanted -= 1;
        }
    }
}

fn leaving() -> Goodbye {
    Goodbye::new(GoodbyeReason::ShuttingDown, "the peer is leaving")
}

/// The inventory item of an object message.
fn object_item(message: &Message) -> Option<InvItem> {
    use bitcoin::hashes::Hash;
    Some(match message {
        Message::Block(block) => InvItem::new(InvKind::Block, block.block_hash().to_byte_array()),
        Message::Tx(tx) => InvItem::new(InvKind::Tx, tx.compute_txid().to_byte_array()),
        Message::Order(order) => InvItem::new(InvKind::Order, order.order.id().0),
        Message::OrderUpdate(update) => InvItem::new(InvKind::OrderUpdate, update.update.digest()),
        Message::Topic(announcement) => InvItem::new(InvKind::Topic, announcement.id()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use core::hash::BuildHasher;

    use super::*;
    use crate::testkit::node_key;

    fn node(seed: u8) -> Node {
        Node::new(
            NodeConfig::new(Network::Test),
            node_key(0).keypair(),
            Chain::new(Network::Test),
            [seed; 32],
            0,
        )
    }

    /// A peer cannot aim ids at one place of a node's maps without knowing its seed, and a
    /// simulation with the same seeds hashes the same way every run.
    #[test]
    fn maps_of_what_peers_pick_are_keyed_by_the_seed() {
        let peer = PeerId::of(&node_key(1).keypair().x_only_public_key().0);
        let hash = |node: &Node| node.known_peers.hasher().hash_one(peer);
        assert_eq!(hash(&node(1)), hash(&node(1)));
        assert_ne!(hash(&node(1)), hash(&node(2)));
        let mut node = node(1);
        assert_ne!(
            node.known_peers.hasher().hash_one(peer),
            node.bans.hasher().hash_one(peer),
            "each map has a key of its own"
        );
        // The chain came with the key known to all; the node gave it its own.
        assert_ne!(node.chain.utxo().hashing(), &KeyedHashing::fixed());
        assert_ne!(node.chain.sigcache_mut().hashing(), &KeyedHashing::fixed());
    }
}
