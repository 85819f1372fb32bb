//! What the node keeps per link: where the handshake stands, what the peer knows, what waits
//! to be announced to it, its rate budgets and its misbehaviour score. Everything bounded.

use std::collections::VecDeque;

use crate::hashing::{KeyedHashing, KeyedSet};
use crate::wire::{Features, Fingerprint, InvItem, PeerId};

/// The driver's name for one channel to one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId(pub u64);

/// A peer after its hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    pub peer: PeerId,
    pub version: u32,
    pub features: Features,
    /// The best height it told of (hello, then headers it sent).
    pub height: u32,
    pub since_millis: u64,
    /// The last round-trip time measured by ping.
    pub rtt_millis: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// Hellos not yet exchanged.
    Handshake {
        since_millis: u64,
    },
    Ready(PeerInfo),
}

/// Items the peer has or was sent, the oldest forgotten first beyond `capacity`.
#[derive(Debug, Clone)]
pub struct KnownSet {
    /// Keyed: the peer announces the items.
    items: KeyedSet<InvItem>,
    order: VecDeque<InvItem>,
    capacity: usize,
}

impl KnownSet {
    pub fn new(capacity: usize, hashing: KeyedHashing) -> KnownSet {
        KnownSet {
            items: KeyedSet::with_hasher(hashing),
            order: VecDeque::new(),
            capacity,
        }
    }

    /// Records `item`; returns whether it was new.
    pub fn insert(&mut self, item: InvItem) -> bool {
        if !self.items.insert(item) {
            return false;
        }
        self.order.push_back(item);
        if self.order.len() > self.capacity {
            let oldest = self.order.pop_front().expect("not empty");
            self.items.remove(&oldest);
        }
        true
    }

    pub fn contains(&self, item: &InvItem) -> bool {
        self.items.contains(item)
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }
}

/// A rate budget: `burst` tokens at most, `per_second` more each second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenBucket {
    tokens: u64,
    burst: u64,
    per_second: u64,
    last_millis: u64,
}

impl TokenBucket {
    pub fn new(burst: u64, per_second: u64, now_millis: u64) -> TokenBucket {
        TokenBucket {
            tokens: burst,
            burst,
            per_second,
            last_millis: now_millis,
        }
    }

    /// Takes `cost` tokens if there are that many.
    pub fn take(&mut self, cost: u64, now_millis: u64) -> bool {
        let elapsed = now_millis.saturating_sub(self.last_millis);
        let refill = elapsed.saturating_mul(self.per_second) / 1000;
        if refill > 0 {
            self.tokens = self.tokens.saturating_add(refill).min(self.burst);
            self.last_millis = now_millis;
        }
        if self.tokens < cost {
            return false;
        }
        self.tokens -= cost;
        true
    }
}

/// The classes of what a peer may ask of or announce to the node, each with its own budget.
/// Objects (blocks, transactions, orders, headers) need none: only requested ones are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Pings, peer requests, hellos, unknown messages: per message.
    Control,
    /// Announced and requested items: per item.
    Inventory,
    /// Header requests: per message.
    Headers,
    /// Routed messages: per message.
    Routed,
}

impl Class {
    const COUNT: usize = 4;

    fn index(self) -> usize {
        self as usize
    }

    /// (burst, per second).
    fn budget(self) -> (u64, u64) {
        match self {
            Class::Control => (50, 10),
            Class::Inventory => (40_000, 10_000),
            Class::Headers => (50, 20),
            Class::Routed => (200, 50),
        }
    }
}

/// Items waiting to be announced to a peer at most.
pub const MAX_PENDING_ANNOUNCEMENTS: usize = 50_000;
/// Items a link remembers the peer knows.
pub const KNOWN_CAPACITY: usize = 100_000;

/// One channel.
#[derive(Debug, Clone)]
pub struct Link {
    pub outbound: bool,
    /// The peer dialed, for outbound links.
    pub dialed: Option<PeerId>,
    pub local_fingerprint: Fingerprint,
    pub remote_fingerprint: Fingerprint,
    pub state: LinkState,
    pub known: KnownSet,
    /// New objects to announce, and holdings to list, flushed a batch at a time.
    pub announce_new: VecDeque<InvItem>,
    pub announce_holdings: VecDeque<InvItem>,
    buckets: [TokenBucket; Class::COUNT],
    pub score: u32,
    /// The ping awaiting its pong.
    pub ping: Option<Ping>,
    pub last_ping_millis: u64,
    /// Set once the node decided to close it: nothing more is processed.
    pub closing: bool,
}

/// A ping sent on a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ping {
    pub nonce: u64,
    pub sent_millis: u64,
    /// When the link is taken for dead if no pong came.
    pub due_millis: u64,
}

impl Link {
    pub fn new(
        outbound: bool,
        dialed: Option<PeerId>,
        local_fingerprint: Fingerprint,
        remote_fingerprint: Fingerprint,
        now_millis: u64,
        hashing: KeyedHashing,
    ) -> Link {
        let bucket = |class: Class| {
            let (burst, rate) = class.budget();
            TokenBucket::new(burst, rate, now_millis)
        };
        Link {
            outbound,
            dialed,
            local_fingerprint,
            remote_fingerprint,
            state: LinkState::Handshake {
                since_millis: now_millis,
            },
            known: KnownSet::new(KNOWN_CAPACITY, hashing),
            announce_new: VecDeque::new(),
            announce_holdings: VecDeque::new(),
            buckets: [
                bucket(Class::Control),
                bucket(Class::Inventory),
                bucket(Class::Headers),
                bucket(Class::Routed),
            ],
            score: 0,
            ping: None,
            last_ping_millis: now_millis,
            closing: false,
        }
    }

    pub fn peer(&self) -> Option<&PeerInfo> {
        match &self.state {
            LinkState::Ready(info) => Some(info),
            LinkState::Handshake { .. } => None,
        }
    }

    pub fn peer_mut(&mut self) -> Option<&mut PeerInfo> {
        match &mut self.state {
            LinkState::Ready(info) => Some(info),
            LinkState::Handshake { .. } => None,
        }
    }

    pub fn is_ready(&self) -> bool {
        !self.closing && self.peer().is_some()
    }

    /// Spends `cost` of the class's budget; false when the peer is over it.
    pub fn spend(&mut self, class: Class, cost: u64, now_millis: u64) -> bool {
        self.buckets[class.index()].take(cost, now_millis)
    }

    /// Queues `item` for announcement unless the peer knows it (or the queue is full: the
    /// item then reaches the peer through others or the next reconciliation).
    pub fn queue_new(&mut self, item: InvItem) {
        if !self.known.contains(&item) && self.announce_new.len() < MAX_PENDING_ANNOUNCEMENTS {
            self.announce_new.push_back(item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::InvKind;

    #[test]
    fn a_bucket_refills_with_time_up_to_its_burst() {
        let mut bucket = TokenBucket::new(10, 5, 0);
        assert!(bucket.take(10, 0));
        assert!(!bucket.take(1, 0));
        assert!(!bucket.take(1, 100), "half a token is not a token");
        assert!(bucket.take(5, 1_000));
        assert!(!bucket.take(1, 1_000));
        assert!(bucket.take(10, 60_000));
        assert!(!bucket.take(1, 60_000), "the burst caps the refill");
    }

    #[test]
    fn the_known_set_forgets_the_oldest() {
        let mut known = KnownSet::new(2, KeyedHashing::new(1));
        let item = |n| InvItem::new(InvKind::Tx, [n; 32]);
        assert!(known.insert(item(1)));
        assert!(!known.insert(item(1)));
        known.insert(item(2));
        known.insert(item(3));
        assert!(!known.contains(&item(1)));
        assert!(known.contains(&item(2)) && known.contains(&item(3)));
    }
}
