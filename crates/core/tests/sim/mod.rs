//! A deterministic network of node state machines in one process: simulated clock, latency,
//! bandwidth, loss (as a reliable channel shows it: a retransmission delay) and partitions.
//! Every byte between nodes goes through the wire encoding; the same seed gives the same run.

#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use bitcoin::secp256k1::Keypair;
use bitmesh_core::chain::mempool::Mempool;
use bitmesh_core::chain::state::Chain;
use bitmesh_core::market::book::Book;
use bitmesh_core::node::protocols::{MarketRelay, MempoolRelay};
use bitmesh_core::node::{Event, Input, LinkId, Node, Output, Protocol};
use bitmesh_core::wire::PeerId;
use bitmesh_core::Network;

/// The network's behaviour.
#[derive(Debug, Clone, Copy)]
pub struct NetConfig {
    pub latency_min_millis: u64,
    pub latency_max_millis: u64,
    /// Bytes per millisecond each way on every link.
    pub bytes_per_milli: u64,
    /// Percent of messages that need a retransmission.
    pub loss_percent: u64,
    pub retransmit_millis: u64,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            latency_min_millis: 10,
            latency_max_millis: 80,
            bytes_per_milli: 1_000,
            loss_percent: 1,
            retransmit_millis: 200,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct End {
    node: usize,
    link: LinkId,
    open: bool,
}

/// The simulated network.
pub struct Sim {
    pub now: u64,
    pub nodes: Vec<Node>,
    ids: HashMap<PeerId, usize>,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    pending: HashMap<u64, (usize, Input)>,
    seq: u64,
    ends: HashMap<(usize, LinkId), End>,
    busy_until: HashMap<(usize, LinkId), u64>,
    next_link: u64,
    next_tick: u64,
    rng: u64,
    pub net: NetConfig,
    /// Partition group of each node: links only form and last within a group.
    group: Vec<u8>,
    /// Messages and bytes each node sent.
    pub sent_messages: Vec<u64>,
    pub sent_bytes: Vec<u64>,
    pub events: Vec<(usize, u64, Event)>,
}

pub const TICK_MILLIS: u64 = 100;
pub use bitmesh_core::testkit::START_MILLIS;

/// The node key of simulated node `n`.
pub fn node_key(n: usize) -> Keypair {
    bitmesh_core::testkit::node_key(n as u64).keypair()
}

/// The order book of a full node.
pub fn book(node: &Node) -> &Book {
    node.protocol::<MarketRelay>().expect("registered").book()
}

/// The mempool of a full node.
pub fn mempool(node: &Node) -> &Mempool {
    node.protocol::<MempoolRelay>()
        .expect("registered")
        .mempool()
}

/// A full peer of the test network: chain, mempool and market.
pub fn full_node(n: usize, chain: Chain, now: u64) -> Node {
    bitmesh_core::testkit::full_node(n as u64, chain, now)
}

impl Sim {
    pub fn new(nodes: Vec<Node>, net: NetConfig, seed: u64) -> Sim {
        let ids = nodes
            .iter()
            .enumerate()
            .map(|(n, node)| (node.id(), n))
            .collect();
        let count = nodes.len();
        Sim {
            now: START_MILLIS,
            nodes,
            ids,
            queue: BinaryHeap::new(),
            pending: HashMap::new(),
            seq: 0,
            ends: HashMap::new(),
            busy_until: HashMap::new(),
            next_link: 1,
            next_tick: START_MILLIS + TICK_MILLIS,
            rng: seed | 1,
            net,
            group: vec![0; count],
            sent_messages: vec![0; count],
            sent_bytes: vec![0; count],
            events: Vec::new(),
        }
    }

    /// A network of `count` full peers on fresh chains, each dialing `dials` random others.
    #[allow(dead_code)] // each test binary that has the module uses one or the other
    pub fn random_graph(count: usize, dials: usize, net: NetConfig, seed: u64) -> Sim {
        Sim::random_graph_on(|| Chain::new(Network::Test), count, dials, net, seed)
    }

    /// The same, each peer starting on the chain `chain` makes.
    pub fn random_graph_on(
        chain: impl Fn() -> Chain,
        count: usize,
        dials: usize,
        net: NetConfig,
        seed: u64,
    ) -> Sim {
        let nodes = (0..count)
            .map(|n| full_node(n, chain(), START_MILLIS))
            .collect();
        let mut sim = Sim::new(nodes, net, seed);
        for a in 0..count {
            let mut made = 0;
            while made < dials {
                let b = sim.random(count as u64) as usize;
                if b != a && !sim.linked(a, b) && !sim.linked(b, a) {
                    sim.connect(a, b);
                    made += 1;
                }
            }
        }
        sim
    }

    pub fn random(&mut self, bound: u64) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % bound
    }

    fn latency(&mut self) -> u64 {
        let spread = self.net.latency_max_millis - self.net.latency_min_millis + 1;
        self.net.latency_min_millis + self.random(spread)
    }

    fn schedule(&mut self, at: u64, node: usize, input: Input) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq)));
        self.pending.insert(self.seq, (node, input));
    }

    pub fn linked(&self, a: usize, b: usize) -> bool {
        self.ends
            .iter()
            .any(|((from, _), end)| *from == a && end.node == b && end.open)
    }

    /// Opens a channel from `a` (dialing) to `b`.
    pub fn connect(&mut self, a: usize, b: usize) {
        let (la, lb) = (LinkId(self.next_link), LinkId(self.next_link + 1));
        self.next_link += 2;
        let mut fingerprint = || {
            let mut bytes = [0u8; 32];
            for chunk in bytes.chunks_mut(8) {
                chunk.copy_from_slice(&self.random(u64::MAX).to_le_bytes());
            }
            bytes
        };
        let (fa, fb) = (fingerprint(), fingerprint());
        self.ends.insert(
            (a, la),
            End {
                node: b,
                link: lb,
                open: true,
            },
        );
        self.ends.insert(
            (b, lb),
            End {
                node: a,
                link: la,
                open: true,
            },
        );
        let at = self.now + 2 * self.latency();
        let peer_b = self.nodes[b].id();
        self.schedule(
            at,
            a,
            Input::LinkUp {
                link: la,
                dialed: Some(peer_b),
                local_fingerprint: fa,
                remote_fingerprint: fb,
            },
        );
        self.schedule(
            at,
            b,
            Input::LinkUp {
                link: lb,
                dialed: None,
                local_fingerprint: fb,
                remote_fingerprint: fa,
            },
        );
    }

    /// Closes a channel from both ends.
    fn cut(&mut self, node: usize, link: LinkId) {
        let Some(end) = self.ends.get(&(node, link)).copied() else {
            return;
        };
        if !end.open {
            return;
        }
        self.ends.get_mut(&(node, link)).expect("exists").open = false;
        if let Some(other) = self.ends.get_mut(&(end.node, end.link)) {
            other.open = false;
        }
        // What was sent before the close arrives before it.
        let sent = self.busy_until.get(&(node, link)).copied().unwrap_or(0);
        let later = (self.now + self.latency()).max(sent);
        self.schedule(self.now, node, Input::LinkDown { link });
        self.schedule(later, end.node, Input::LinkDown { link: end.link });
    }

    /// Splits the network: nodes of different groups lose their links and cannot dial.
    pub fn partition(&mut self, group: Vec<u8>) {
        self.group = group;
        let across: Vec<(usize, LinkId)> = self
            .ends
            .iter()
            .filter(|((from, _), end)| end.open && self.group[*from] != self.group[end.node])
            .map(|(key, _)| *key)
            .collect();
        for (node, link) in across {
            self.cut(node, link);
        }
    }

    pub fn group_of(&self, node: usize) -> u8 {
        self.group[node]
    }

    /// Takes a node off the network: all its links close.
    pub fn drop_node_links(&mut self, node: usize) {
        let links: Vec<LinkId> = self
            .ends
            .iter()
            .filter(|((from, _), end)| *from == node && end.open)
            .map(|((_, link), _)| *link)
            .collect();
        for link in links {
            self.cut(node, link);
        }
        self.group[node] = u8::MAX;
    }

    pub fn heal(&mut self) {
        self.group = vec![0; self.nodes.len()];
    }

    /// Carries out a node's outputs.
    pub fn apply(&mut self, node: usize, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Send { link, bytes } => {
                    self.sent_messages[node] += 1;
                    self.sent_bytes[node] += bytes.len() as u64;
                    let Some(end) = self.ends.get(&(node, link)).copied() else {
                        continue;
                    };
                    if !end.open {
                        continue;
                    }
                    let mut delay = self.latency() + bytes.len() as u64 / self.net.bytes_per_milli;
                    if self.random(100) < self.net.loss_percent {
                        delay += self.net.retransmit_millis;
                    }
                    // A channel delivers in order: nothing overtakes what was sent before.
                    let busy = self.busy_until.entry((node, link)).or_insert(0);
                    let at = (self.now + delay).max(*busy);
                    *busy = at;
                    self.schedule(
                        at,
                        end.node,
                        Input::Received {
                            link: end.link,
                            bytes,
                        },
                    );
                }
                Output::Close { link } => self.cut(node, link),
                Output::Connect { peer } => {
                    let target = self.ids.get(&peer).copied();
                    match target {
                        Some(other) if self.group[other] == self.group[node] => {
                            self.connect(node, other)
                        }
                        _ => {
                            let at = self.now + self.latency();
                            self.schedule(at, node, Input::ConnectFailed { peer });
                        }
                    }
                }
                Output::Event(event) => self.events.push((node, self.now, event)),
            }
        }
    }

    /// Runs `f` on protocol `P` of `node` (a local submission) and carries out what follows.
    pub fn with<P: Protocol, R>(
        &mut self,
        node: usize,
        f: impl FnOnce(&mut P, &mut bitmesh_core::node::Context<'_>) -> R,
    ) -> R {
        let (result, outputs) = self.nodes[node].with_protocol::<P, R>(self.now, f);
        self.apply(node, outputs);
        result.expect("the protocol is registered")
    }

    /// Runs until `done` holds (checked after every event and tick) or `max_millis` of
    /// simulated time pass; returns whether `done` held.
    pub fn run_until(&mut self, max_millis: u64, mut done: impl FnMut(&Sim) -> bool) -> bool {
        let end = self.now + max_millis;
        loop {
            if done(self) {
                return true;
            }
            let next_event = self.queue.peek().map(|Reverse((at, _))| *at);
            if next_event.is_none_or(|at| at > self.next_tick) {
                if self.next_tick > end {
                    return false;
                }
                self.now = self.next_tick;
                self.next_tick += TICK_MILLIS;
                for node in 0..self.nodes.len() {
                    let outputs = self.nodes[node].handle(self.now, Input::Tick);
                    self.apply(node, outputs);
                }
                continue;
            }
            let Reverse((at, seq)) = self.queue.pop().expect("peeked");
            if at > end {
                self.queue.push(Reverse((at, seq)));
                return false;
            }
            self.now = at;
            let (node, input) = self.pending.remove(&seq).expect("scheduled");
            let outputs = self.nodes[node].handle(self.now, input);
            self.apply(node, outputs);
        }
    }

    /// Every open link of `node` to a node outside `others`: (its link, the other node, the
    /// other's link).
    pub fn links_of(&self, node: usize) -> Vec<(LinkId, usize, LinkId)> {
        let mut links: Vec<(LinkId, usize, LinkId)> = self
            .ends
            .iter()
            .filter(|((from, _), end)| *from == node && end.open)
            .map(|((_, link), end)| (*link, end.node, end.link))
            .collect();
        links.sort_unstable();
        links
    }

    /// Delivers raw bytes on a link as if its other end had sent them (an attacker's own).
    pub fn inject(&mut self, from: usize, link: LinkId, bytes: Vec<u8>) {
        self.apply(from, vec![Output::Send { link, bytes }]);
    }

    /// The order book of node `node`.
    pub fn book(&self, node: usize) -> &Book {
        book(&self.nodes[node])
    }

    /// How many neighbours each node has (past the handshake).
    pub fn degrees(&self) -> Vec<usize> {
        self.nodes.iter().map(|node| node.peers().count()).collect()
    }
}
