//! The replicated order book: every verified order and the winning update of each, and the
//! price-time ladders derived from them.
//!
//! Merging is order-free: an order's state is a function of the order and the update with the
//! highest (sequence, digest) among those received, and an update that arrives before its order
//! waits for it. So replicas that received the same orders and updates, in any order and with
//! any duplicates, hold the same book. The clock plays no part in the merge: expiry is applied
//! by [`Book::expire`] and skipped by matching, both with the time given.

use core::fmt;
use core::hash::{BuildHasher, Hasher};
use core::ops::ControlFlow;
use std::collections::HashMap;

use hashbrown::{hash_table, HashTable};

use bitcoin::{OutPoint, XOnlyPublicKey};

use super::ladder::{Ladder, Node, Nodes, Resting, Slot};
use super::order::{
    fill_allowed, Change, FundingProof, Order, OrderId, Side, VerifiedOrder, VerifiedUpdate,
};
use crate::chain::assets::AssetId;
use crate::chain::utxo::Coin;

/// How much a book holds at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookLimits {
    /// Orders of all markets, open or not (until they expire).
    pub max_orders: usize,
    /// Updates waiting for their order.
    pub max_orphans: usize,
}

impl Default for BookLimits {
    fn default() -> BookLimits {
        BookLimits {
            max_orders: 200_000,
            max_orphans: 20_000,
        }
    }
}

/// Why the book refuses an order or an update.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BookError {
    /// The book holds [`BookLimits::max_orders`] orders.
    Full,
    /// The book keeps no update that comes before its order ([`BookLimits::max_orphans`] is
    /// 0).
    TooManyOrphans,
    /// The update is signed by someone other than the order's maker.
    WrongMaker(OrderId),
    /// The update claims more filled than the order's amount.
    Overfilled {
        order: OrderId,
        filled: u64,
        amount: u64,
    },
    /// The update leaves part of the order open with no coin to pay for it.
    NoFunding(OrderId),
}

impl fmt::Display for BookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BookError::Full => f.write_str("the order book is full"),
            BookError::TooManyOrphans => {
                f.write_str("this book keeps no update of an order it has not received")
            }
            BookError::WrongMaker(order) => {
                write!(f, "the update of order {order} is not signed by its maker")
            }
            BookError::Overfilled {
                order,
                filled,
                amount,
            } => write!(f, "order {order}: {filled} filled of an amount of {amount}"),
            BookError::NoFunding(order) => {
                write!(
                    f,
                    "order {order}: the update leaves the rest without funding"
                )
            }
        }
    }
}

impl std::error::Error for BookError {}

/// What inserting an order did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    New,
    /// The book had it already.
    Known,
}

/// What applying an update did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// It is now the order's state.
    Changed,
    /// A later (or the same) update was applied before: nothing changed.
    Superseded,
    /// The order is not known yet: the update waits for it.
    Orphaned,
}

/// An order's record in the book: the order and its winning update (shared, cold), and what
/// the hot paths read, inline (its state, interned maker and market, its place in the ladder),
/// so that finding an order, applying an update or walking the ladder touches this record
/// only: two cache lines, aligned.
#[derive(Debug, Clone)]
#[repr(align(64))]
struct Entry {
    /// The order's id, inline: the index compares it.
    id: OrderId,
    node: Node,
    amount: u64,
    filled: u64,
    expiry_millis: u64,
    sequence: u32,
    maker: u32,
    market: u32,
    cancelled: bool,
    /// None while the record's place in the slab is free.
    order: Option<VerifiedOrder>,
    update: Option<VerifiedUpdate>,
}

const _: () = assert!(core::mem::size_of::<Entry>() == 128);

impl Entry {
    /// A free place in the slab.
    const VACANT: Entry = Entry {
        id: OrderId([0; 32]),
        node: Node::new(Side::Bid, 0, 0),
        amount: 0,
        filled: 0,
        expiry_millis: 0,
        sequence: 0,
        maker: 0,
        market: 0,
        cancelled: false,
        order: None,
        update: None,
    };

    fn order(&self) -> &VerifiedOrder {
        self.order.as_ref().expect("a live entry")
    }

    fn remaining(&self) -> u64 {
        if self.cancelled {
            0
        } else {
            self.amount - self.filled
        }
    }

    fn adopt(&mut self, update: VerifiedUpdate) {
        let change = &update.update().change;
        self.sequence = update.update().sequence;
        match change {
            Change::Fill { filled, .. } => {
                self.filled = *filled;
                self.cancelled = false;
            }
            Change::Cancel => {
                self.filled = 0;
                self.cancelled = true;
            }
        }
        self.update = Some(update);
    }

    /// Whether `update` (valid for this order) beats the current one.
    fn is_superseded_by(&self, update: &VerifiedUpdate) -> bool {
        let sequence = update.update().sequence;
        match &self.update {
            None => true,
            Some(_) if sequence != self.sequence => sequence > self.sequence,
            Some(current) => update.rank() > current.rank(),
        }
    }
}

/// A maker's mark: matching skips its orders until `until_millis`.
#[derive(Debug, Clone, Copy)]
struct Unreachable {
    maker: XOnlyPublicKey,
    until_millis: u64,
}

impl Unreachable {
    /// Whether matching at `now_millis` still skips the maker.
    fn in_force(&self, now_millis: u64) -> bool {
        self.until_millis > now_millis
    }
}

/// Values shared by many orders (makers, markets), numbered and counted so that entries hold a
/// small number and the numbers are freed when their last order goes. Each number may carry a
/// value derived from its key (a maker's parsed key), kept where the hot paths find it.
#[derive(Debug, Clone)]
struct Interner<K, V = ()> {
    numbers: HashMap<K, u32, IdHashing>,
    interned: Vec<Option<Interned<K, V>>>,
    free: Vec<u32>,
    /// The number acquired last, tried before the map: orders come in runs of one market, and
    /// often of one maker.
    last: u32,
}

#[derive(Debug, Clone)]
struct Interned<K, V> {
    key: K,
    value: V,
    users: u32,
}

impl<K, V> Interner<K, V> {
    fn new(hashing: IdHashing) -> Self {
        Interner {
            numbers: HashMap::with_hasher(hashing),
            interned: Vec::new(),
            free: Vec::new(),
            last: 0,
        }
    }
}

impl<K: core::hash::Hash + Eq + Clone, V> Interner<K, V> {
    fn get(&self, key: &K) -> Option<u32> {
        self.numbers.get(key).copied()
    }

    fn value(&self, number: u32) -> &V {
        &self.live(number).value
    }

    fn key(&self, number: u32) -> &K {
        &self.live(number).key
    }

    fn live(&self, number: u32) -> &Interned<K, V> {
        self.interned[number as usize]
            .as_ref()
            .expect("a live number")
    }

    /// The number of `key` (its value made by `value` if it is new), counting one more user.
    fn acquire(&mut self, key: &K, value: impl FnOnce() -> V) -> u32 {
        // A freed number's place is empty, or holds another key: either way not a hit.
        if let Some(Some(last)) = self.interned.get_mut(self.last as usize) {
            if last.key == *key {
                last.users += 1;
                return self.last;
            }
        }
        if let Some(&number) = self.numbers.get(key) {
            self.interned[number as usize]
                .as_mut()
                .expect("a live number")
                .users += 1;
            self.last = number;
            return number;
        }
        let interned = Some(Interned {
            key: key.clone(),
            value: value(),
            users: 1,
        });
        let number = match self.free.pop() {
            Some(number) => {
                self.interned[number as usize] = interned;
                number
            }
            None => {
                self.interned.push(interned);
                (self.interned.len() - 1) as u32
            }
        };
        self.numbers.insert(key.clone(), number);
        self.last = number;
        number
    }

    /// One user fewer; the number is freed with the last.
    fn release(&mut self, number: u32) {
        let slot = &mut self.interned[number as usize];
        let interned = slot.as_mut().expect("a live number");
        interned.users -= 1;
        if interned.users == 0 {
            self.numbers.remove(&interned.key);
            *slot = None;
            self.free.push(number);
        }
    }
}

/// The orders, in places reused once freed. A free place holds [`Entry::VACANT`] (no
/// order), so reading a live entry checks nothing beyond the bounds: the index and the ladders
/// hold live places only.
#[derive(Debug, Clone, Default)]
struct Slab {
    entries: Vec<Entry>,
    free: Vec<u32>,
}

impl Slab {
    fn get(&self, at: u32) -> &Entry {
        &self.entries[at as usize]
    }

    fn get_mut(&mut self, at: u32) -> &mut Entry {
        &mut self.entries[at as usize]
    }

    /// Puts the entry `make` gives in a free place; `make` runs where the entry goes, so the
    /// record is written there once, not built aside and copied in.
    fn add(&mut self, make: impl FnOnce() -> Entry) -> u32 {
        match self.free.pop() {
            Some(at) => {
                self.entries[at as usize] = make();
                at
            }
            None => {
                self.entries.push(make());
                (self.entries.len() - 1) as u32
            }
        }
    }

    /// Takes the entry out of place `at`, which is free again.
    fn take(&mut self, at: u32) -> Entry {
        self.free.push(at);
        core::mem::replace(&mut self.entries[at as usize], Entry::VACANT)
    }

    /// The live entries, in slab order.
    fn live(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|entry| entry.order.is_some())
    }

    /// Makes room for `more` entries, and touches it: a slab that grows into memory the
    /// system has not handed out yet pays a page fault every 32 orders.
    fn reserve(&mut self, more: usize) {
        let len = self.entries.len();
        self.entries.resize(len + more, Entry::VACANT);
        self.entries.truncate(len);
    }
}

impl Nodes for Slab {
    fn node(&self, slot: Slot) -> &Node {
        &self.get(slot).node
    }

    fn node_mut(&mut self, slot: Slot) -> &mut Node {
        &mut self.get_mut(slot).node
    }

    fn id(&self, slot: Slot) -> &OrderId {
        &self.get(slot).id
    }
}

/// An order and where it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderView<'a> {
    pub order: &'a VerifiedOrder,
    /// The latest update's sequence number, 0 before any.
    pub sequence: u32,
    pub filled: u64,
    pub cancelled: bool,
    /// The coins that pay for what is left.
    pub funding: &'a [OutPoint],
    /// Their owners' proofs, one per coin.
    pub proofs: &'a [FundingProof],
}

impl OrderView<'_> {
    pub fn remaining(&self) -> u64 {
        if self.cancelled {
            0
        } else {
            self.order.order().amount - self.filled
        }
    }

    /// Whether `coin` (a node's chain and mempool) finds every coin that pays for what is
    /// left, each locked to the key of its proof. When it does not, they were spent (by a swap
    /// whose fill update has not come yet), have not come yet, were never made, or are someone
    /// else's, and the order cannot be taken now.
    pub fn is_funded(&self, coin: impl Fn(&OutPoint) -> Option<Coin>) -> bool {
        self.funding.len() == self.proofs.len()
            && self
                .funding
                .iter()
                .zip(self.proofs)
                .all(|(outpoint, proof)| {
                    coin(outpoint).is_some_and(|coin| proof.owns(&coin.output.script_pubkey))
                })
    }
}

fn view(entry: &Entry) -> OrderView<'_> {
    let (funding, proofs) = match &entry.update {
        None => {
            let signed = entry.order().signed();
            (&signed.order.funding[..], &signed.proofs[..])
        }
        Some(update) => {
            let signed = update.signed();
            (signed.update.change.funding(), &signed.proofs[..])
        }
    };
    OrderView {
        order: entry.order(),
        sequence: entry.sequence,
        filled: entry.filled,
        cancelled: entry.cancelled,
        funding,
        proofs,
    }
}

/// One proposed trade against a resting order, at the maker's price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fill {
    pub order: OrderId,
    pub maker: XOnlyPublicKey,
    /// Base units traded.
    pub quantity: u64,
    /// The maker's price.
    pub price: u64,
    /// Satoshis paid for them, rounded in the maker's favour.
    pub sats: u64,
    /// The maker's sequence number the fill was proposed against.
    pub sequence: u32,
}

/// The result of walking the book with an incoming order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    /// Fills in priority order.
    pub fills: Vec<Fill>,
    /// What is left of the incoming order's amount.
    pub rest: u64,
}

/// Hashes order ids, keys and asset ids, which are uniformly random already (hash outputs, curve
/// points): one multiply mixes their first eight bytes with a per-book random key (an input:
/// std's own `RandomState` has no entropy on wasm32-unknown-unknown), so a peer cannot aim its
/// values at one bucket. Eight bytes spread such keys as well as all of them:
/// keys sharing their first eight bytes cost a peer about 2^32 tries for each pair, and they
/// still differ where the map compares them. Not for values a peer picks freely: those that
/// differ only in high bits would share a bucket whatever the key (a multiply carries
/// differences upwards only). Those maps use [`StrongHashing`].
#[derive(Debug, Clone, Copy)]
pub(super) struct IdHashing(u64);

impl IdHashing {
    pub(super) fn new(key: u64) -> IdHashing {
        IdHashing(key | 1)
    }
}

/// Hashes values a peer picks freely (the prices of levels, the order ids that waiting
/// updates name) with foldhash, keyed by the book's random key: every bit of a value reaches
/// every bit of its hash, so a peer that does not know the key cannot make its values share
/// buckets.
pub(super) type StrongHashing = foldhash::fast::SeedableRandomState;

/// The [`StrongHashing`] of a book whose hash key is `key`.
pub(super) fn strong_hashing(key: u64) -> StrongHashing {
    // Another key than the id hasher's, in case the weaker hash ever gave its key away.
    let seed = key.rotate_left(32) ^ 0x6f72_6465_7262_6f6f;
    StrongHashing::with_seed(seed, foldhash::SharedSeed::global_fixed())
}

impl BuildHasher for IdHashing {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher(self.0)
    }
}

pub(super) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut word = [0u8; 8];
        let len = bytes.len().min(8);
        word[..len].copy_from_slice(&bytes[..len]);
        self.write_u64(u64::from_le_bytes(word));
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    /// Lengths are not mixed: every key of a map hashed here has the same size (a slice's
    /// hash writes its length first).
    fn write_usize(&mut self, _: usize) {}

    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }
}

/// The order books of every market.
#[derive(Debug, Clone)]
pub struct Book {
    limits: BookLimits,
    /// Orders in a slab, found by id through `index`, which holds slab numbers only (a
    /// quarter of a map keyed by id: more of it stays in cache).
    slab: Slab,
    index: HashTable<u32>,
    hashing: IdHashing,
    strong_hashing: StrongHashing,
    /// Makers by serialized key, each with its parsed key (for fills).
    makers: Interner<[u8; 32], XOnlyPublicKey>,
    markets: Interner<AssetId>,
    /// One ladder per market number.
    ladders: Vec<Ladder>,
    orphans: HashMap<OrderId, Vec<VerifiedUpdate>, StrongHashing>,
    orphan_count: usize,
    /// Makers the driver could not reach (serialized keys): skipped by matching until the
    /// time beside each.
    unreachable: HashMap<[u8; 32], Unreachable, IdHashing>,
}

impl Book {
    /// An empty book. `hash_key` keys its maps: random bytes from the driver, so that no peer
    /// can aim ids at one bucket of them.
    pub fn new(limits: BookLimits, hash_key: u64) -> Book {
        let (hashing, strong_hashing) = (IdHashing::new(hash_key), strong_hashing(hash_key));
        Book {
            limits,
            slab: Slab::default(),
            index: HashTable::new(),
            hashing,
            strong_hashing: strong_hashing.clone(),
            makers: Interner::new(hashing),
            markets: Interner::new(hashing),
            ladders: Vec::new(),
            orphans: HashMap::with_hasher(strong_hashing),
            orphan_count: 0,
            unreachable: HashMap::with_hasher(hashing),
        }
    }

    /// Makes room for `orders` more orders at once (a driver that knows its load avoids the
    /// book growing step by step).
    pub fn reserve(&mut self, orders: usize) {
        self.slab.reserve(orders);
        let (slab, hashing) = (&self.slab, &self.hashing);
        self.index
            .reserve(orders, |&at| hashing.hash_one(slab.get(at).id));
    }

    /// How many orders the book holds (open or not).
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn find(&self, id: &OrderId) -> Option<&Entry> {
        self.position(id).map(|at| self.slab.get(at))
    }

    /// Where `id` is in the slab.
    fn position(&self, id: &OrderId) -> Option<u32> {
        let slab = &self.slab;
        self.index
            .find(self.hashing.hash_one(id), |&at| &slab.get(at).id == id)
            .copied()
    }

    /// Every entry, in slab order.
    fn all(&self) -> impl Iterator<Item = &Entry> {
        self.slab.live()
    }

    /// Adds a verified order (a second copy changes nothing).
    pub fn insert_order(&mut self, order: VerifiedOrder) -> Result<Inserted, BookError> {
        let id = order.id();
        let full = self.index.len() >= self.limits.max_orders;
        let (slab, hashing) = (&self.slab, &self.hashing);
        // One probe finds the id or where it goes.
        let vacant = match self.index.entry(
            hashing.hash_one(id),
            |&at| slab.get(at).id == id,
            |&at| hashing.hash_one(slab.get(at).id),
        ) {
            hash_table::Entry::Occupied(_) => return Ok(Inserted::Known),
            hash_table::Entry::Vacant(_) if full => return Err(BookError::Full),
            hash_table::Entry::Vacant(vacant) => vacant,
        };
        let fields = order.order();
        let maker = self.makers.acquire(order.maker_bytes(), || fields.maker);
        let market = self.markets.acquire(&fields.market, || ());
        if market as usize == self.ladders.len() {
            self.ladders.push(Ladder::new(self.strong_hashing.clone()));
        }
        let (side, price, created_millis) = (fields.side, fields.price, fields.created_millis);
        let (amount, expiry_millis) = (fields.amount, fields.expiry_millis);
        let at = self.slab.add(|| Entry {
            id,
            node: Node::new(side, price, created_millis),
            amount,
            filled: 0,
            expiry_millis,
            sequence: 0,
            maker,
            market,
            cancelled: false,
            order: Some(order),
            update: None,
        });
        vacant.insert(at);
        // Updates that came first: the best valid one of this maker's wins.
        if !self.orphans.is_empty() {
            if let Some(waiting) = self.orphans.remove(&id) {
                self.orphan_count -= waiting.len();
                let entry = self.slab.get_mut(at);
                let maker_key = self.makers.key(maker);
                let best = waiting
                    .into_iter()
                    .filter(|update| check_update(entry, update, maker_key).is_ok())
                    .max_by_key(|update| update.rank());
                if let Some(best) = best {
                    entry.adopt(best);
                }
            }
        }
        self.place(at);
        Ok(Inserted::New)
    }

    /// Applies a verified update of the order's maker.
    pub fn apply_update(&mut self, update: VerifiedUpdate) -> Result<Applied, BookError> {
        let id = update.update().order;
        let Some(at) = self.position(&id) else {
            return self.hold_orphan(id, update);
        };
        let entry = self.slab.get_mut(at);
        check_update(entry, &update, self.makers.key(entry.maker))?;
        if !entry.is_superseded_by(&update) {
            return Ok(Applied::Superseded);
        }
        entry.adopt(update);
        self.place(at);
        Ok(Applied::Changed)
    }

    /// Keeps an update of order `id`, which has not come yet. A full pool makes room by
    /// dropping the updates of one waiting order picked at random (as Bitcoin Core's orphan
    /// pool does): a peer that floods updates of orders that never come cannot shut out the
    /// updates that merely overtook their orders, and the pool takes updates again as soon as
    /// the flood stops. What is dropped comes back with the next book sync.
    fn hold_orphan(&mut self, id: OrderId, update: VerifiedUpdate) -> Result<Applied, BookError> {
        if self
            .orphans
            .get(&id)
            .is_some_and(|waiting| waiting.contains(&update))
        {
            return Ok(Applied::Orphaned);
        }
        if self.limits.max_orphans == 0 {
            return Err(BookError::TooManyOrphans);
        }
        // Each turn drops at least one update: no order waits with none.
        while self.orphan_count >= self.limits.max_orphans {
            let dropped = *self.orphans.keys().next().expect("a full pool holds some");
            let waiting = self.orphans.remove(&dropped).expect("listed");
            self.orphan_count -= waiting.len();
        }
        self.orphans.entry(id).or_default().push(update);
        self.orphan_count += 1;
        Ok(Applied::Orphaned)
    }

    /// Puts the order where its state says: resting with what is left, or out of the ladder.
    fn place(&mut self, at: u32) {
        let entry = self.slab.get(at);
        let remaining = entry.remaining();
        let ladder = &mut self.ladders[entry.market as usize];
        match (entry.node.is_resting(), remaining) {
            (false, 0) => {}
            (true, 0) => ladder.remove(&mut self.slab, at),
            (false, remaining) => ladder.insert(&mut self.slab, at, remaining),
            (true, remaining) => ladder.set_remaining(&mut self.slab, at, remaining),
        }
    }

    /// Drops every order that has expired by `now_millis`; returns their ids.
    pub fn expire(&mut self, now_millis: u64) -> Vec<OrderId> {
        let mut expired = Vec::new();
        for at in 0..self.slab.entries.len() as u32 {
            let entry = &self.slab.entries[at as usize];
            let lapsed = entry.order.is_some() && entry.expiry_millis <= now_millis;
            if !lapsed {
                continue;
            }
            expired.push(self.drop_at(at));
        }
        expired
    }

    /// Drops order `id` and its winning update, whatever its state (a relay's rule replaced
    /// it); whether the book held it. Updates of it that come later wait as orphans.
    pub fn remove(&mut self, id: &OrderId) -> bool {
        let Some(at) = self.position(id) else {
            return false;
        };
        self.drop_at(at);
        true
    }

    /// Takes the order at `at` out of its ladder, the slab and the index; returns its id.
    fn drop_at(&mut self, at: u32) -> OrderId {
        let market = self.slab.get(at).market;
        self.ladders[market as usize].forget(&mut self.slab, at);
        let entry = self.slab.take(at);
        self.makers.release(entry.maker);
        self.markets.release(entry.market);
        self.index
            .find_entry(self.hashing.hash_one(entry.id), |&other| other == at)
            .expect("indexed")
            .remove();
        entry.id
    }

    /// Skips `maker`'s orders in matching until `until_millis` (the driver's mark: the maker
    /// did not answer a trade). A later mark replaces an earlier one.
    pub fn mark_unreachable(&mut self, maker: XOnlyPublicKey, until_millis: u64) {
        self.unreachable.insert(
            maker.serialize(),
            Unreachable {
                maker,
                until_millis,
            },
        );
    }

    /// Lifts `maker`'s mark (it was heard from); whether it had one.
    pub fn mark_reachable(&mut self, maker: &XOnlyPublicKey) -> bool {
        self.unreachable.remove(&maker.serialize()).is_some()
    }

    /// Lifts the marks that lapsed by `now_millis`; returns their makers.
    pub fn lapse_marks(&mut self, now_millis: u64) -> Vec<XOnlyPublicKey> {
        let mut lapsed = Vec::new();
        self.unreachable.retain(|_, mark| {
            let lapses = !mark.in_force(now_millis);
            if lapses {
                lapsed.push(mark.maker);
            }
            !lapses
        });
        lapsed
    }

    /// Whether matching at `now_millis` takes `maker`'s orders (no mark in force).
    pub fn is_reachable(&self, maker: &XOnlyPublicKey, now_millis: u64) -> bool {
        self.unreachable
            .get(&maker.serialize())
            .is_none_or(|mark| !mark.in_force(now_millis))
    }

    /// An order and where it stands.
    pub fn get(&self, id: &OrderId) -> Option<OrderView<'_>> {
        self.find(id).map(view)
    }

    /// Every order, in no particular order (to send a neighbour the whole book).
    pub fn orders(&self) -> impl Iterator<Item = OrderView<'_>> {
        self.all().map(view)
    }

    /// The winning update of an order, if it has one.
    pub fn update_of(&self, id: &OrderId) -> Option<&VerifiedUpdate> {
        self.find(id).and_then(|entry| entry.update.as_ref())
    }

    /// The updates waiting for order `id`, which the book does not hold (yet).
    pub fn waiting_updates(&self, id: &OrderId) -> &[VerifiedUpdate] {
        self.orphans.get(id).map_or(&[], Vec::as_slice)
    }

    /// The winning update of every order that has one.
    pub fn updates(&self) -> impl Iterator<Item = &VerifiedUpdate> {
        self.all().filter_map(|entry| entry.update.as_ref())
    }

    /// The ladder of `market`, while it has orders.
    pub fn ladder(&self, market: &AssetId) -> Option<&Ladder> {
        self.markets
            .get(market)
            .map(|number| &self.ladders[number as usize])
    }

    /// Open orders of `market` on `side` in priority order.
    pub fn open(&self, market: &AssetId, side: Side) -> Vec<OrderView<'_>> {
        self.ladder(market)
            .into_iter()
            .flat_map(|ladder| ladder.priority(&self.slab, side))
            .map(|at| view(self.slab.get(at)))
            .collect()
    }

    /// The book's state in a canonical form: every order with its winning update's rank,
    /// and every market's priority order. Two replicas hold the same book exactly when these
    /// are equal.
    pub fn snapshot(&self) -> BookSnapshot {
        let mut orders: Vec<(OrderId, Option<UpdateRank>)> = self
            .all()
            .map(|entry| (entry.id, entry.update.as_ref().map(VerifiedUpdate::rank)))
            .collect();
        orders.sort_unstable();
        let mut orphans: Vec<UpdateRank> = self
            .orphans
            .values()
            .flatten()
            .map(VerifiedUpdate::rank)
            .collect();
        orphans.sort_unstable();
        let mut ladders: Vec<(AssetId, Vec<Resting>, Vec<Resting>)> = self
            .markets
            .numbers
            .iter()
            .map(|(market, &number)| {
                let ladder = &self.ladders[number as usize];
                let side = |side| {
                    ladder
                        .priority(&self.slab, side)
                        .into_iter()
                        .map(|at| {
                            let entry = self.slab.get(at);
                            Resting {
                                id: entry.id,
                                side: entry.node.side,
                                price: entry.node.price,
                                created_millis: entry.node.created_millis,
                                remaining: entry.node.remaining(),
                            }
                        })
                        .collect::<Vec<Resting>>()
                };
                (*market, side(Side::Bid), side(Side::Ask))
            })
            .filter(|(_, bids, asks)| !bids.is_empty() || !asks.is_empty())
            .collect();
        ladders.sort_unstable_by_key(|(market, _, _)| *market);
        BookSnapshot {
            orders,
            orphans,
            ladders,
        }
    }

    /// Walks the book with `incoming` (not inserted): the fills it would make, best first, at
    /// each maker's price. Skipped: the taker's own orders, expired ones, unreachable makers,
    /// and partial fills [`fill_allowed`] refuses (worth less than
    /// [`super::order::MIN_ORDER_SATS`], or leaving less than that).
    pub fn match_order(&self, incoming: &Order, now_millis: u64) -> Matched {
        let mut fills = Vec::new();
        let rest = self.match_into(incoming, now_millis, &mut fills);
        Matched { fills, rest }
    }

    /// [`Book::match_order`] taking only the orders `takeable` accepts, shown each crossing
    /// order that matching would otherwise take: a taker's desk passes over those whose funding
    /// coins it cannot find, so that an order funded by coins already spent, or not seen yet,
    /// or never made, does not stop it from taking the next.
    pub fn match_takeable(
        &self,
        incoming: &Order,
        now_millis: u64,
        mut takeable: impl FnMut(&OrderView<'_>) -> bool,
    ) -> Matched {
        let mut fills = Vec::new();
        let rest = self.match_with(incoming, now_millis, &mut fills, Some(&mut takeable));
        Matched { fills, rest }
    }

    /// [`Book::match_order`] into `fills` (cleared first), for a caller that matches often and
    /// keeps one buffer; returns what is left of the incoming order's amount.
    pub fn match_into(&self, incoming: &Order, now_millis: u64, fills: &mut Vec<Fill>) -> u64 {
        self.match_with(incoming, now_millis, fills, None)
    }

    /// [`Book::match_into`], taking only what `takeable` accepts, if given (the benchmarked
    /// path takes every order, and reads no order's view for it).
    fn match_with(
        &self,
        incoming: &Order,
        now_millis: u64,
        fills: &mut Vec<Fill>,
        mut takeable: Option<&mut dyn FnMut(&OrderView<'_>) -> bool>,
    ) -> u64 {
        fills.clear();
        let mut rest = incoming.amount;
        let Some(ladder) = self.ladder(&incoming.market) else {
            return rest;
        };
        let unreachable: Vec<u32> = self
            .unreachable
            .iter()
            .filter(|(_, mark)| mark.in_force(now_millis))
            .filter_map(|(maker, _)| self.makers.get(maker))
            .collect();
        let crosses = |price: u64| match incoming.side {
            Side::Bid => price <= incoming.price,
            Side::Ask => price >= incoming.price,
        };
        if rest == 0 {
            return rest;
        }
        ladder.walk(&self.slab, incoming.side.opposite(), |at| {
            let entry = self.slab.get(at);
            let Node { side, price, .. } = entry.node;
            if !crosses(price) {
                return ControlFlow::Break(());
            }
            // The taker's own order: parsed keys, compared as they are held (the same point
            // has one representation in the library; serializing the taker's key instead cost
            // a twentieth of the book benchmark).
            let maker = self.makers.value(entry.maker);
            if maker.eq_fast_unstable(&incoming.maker)
                || entry.expiry_millis <= now_millis
                || unreachable.contains(&entry.maker)
            {
                return ControlFlow::Continue(());
            }
            let remaining = entry.node.remaining();
            let quantity = rest.min(remaining);
            let Some(sats) = fill_allowed(side, price, remaining, quantity) else {
                return ControlFlow::Continue(());
            };
            if let Some(takeable) = takeable.as_mut() {
                if !takeable(&view(entry)) {
                    return ControlFlow::Continue(());
                }
            }
            fills.push(Fill {
                order: entry.id,
                maker: *maker,
                quantity,
                price,
                sats,
                sequence: entry.sequence,
            });
            rest -= quantity;
            if rest == 0 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        rest
    }
}

/// Whether `update` may apply to the order of `entry`, whose maker's key is `maker`, at all
/// (whatever else was received).
fn check_update(entry: &Entry, update: &VerifiedUpdate, maker: &[u8; 32]) -> Result<(), BookError> {
    let id = entry.id;
    if update.maker_bytes() != maker {
        return Err(BookError::WrongMaker(id));
    }
    if let Change::Fill { filled, funding } = &update.update().change {
        if *filled > entry.amount {
            return Err(BookError::Overfilled {
                order: id,
                filled: *filled,
                amount: entry.amount,
            });
        }
        if *filled < entry.amount && funding.is_empty() {
            return Err(BookError::NoFunding(id));
        }
    }
    Ok(())
}

/// An update's (sequence number, digest): the higher wins.
pub type UpdateRank = (u32, [u8; 32]);

/// A book's state in canonical form (see [`Book::snapshot`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookSnapshot {
    /// Every order with the rank of its winning update.
    pub orders: Vec<(OrderId, Option<UpdateRank>)>,
    /// Updates waiting for their order.
    pub orphans: Vec<UpdateRank>,
    /// Each market's bids and asks in priority order.
    pub ladders: Vec<(AssetId, Vec<Resting>, Vec<Resting>)>,
}

#[cfg(test)]
mod tests {
    use core::hash::BuildHasher;

    use super::{strong_hashing, IdHashing, Interner};

    /// Prices that differ only in their high bits: the id hasher puts them all in one bucket
    /// of a small table whatever its key, the strong one spreads them.
    #[test]
    fn prices_a_peer_picks_are_spread_by_the_strong_hasher_only() {
        let prices: Vec<u64> = (1..=64).map(|i| 1_000 + (i << 44)).collect();
        let low_bits = |hash: u64| hash & 0x3f;
        for key in [1, 0x1234_5678_9abc_def0] {
            let weak = IdHashing::new(key);
            let weak_buckets: std::collections::HashSet<u64> =
                prices.iter().map(|&p| low_bits(weak.hash_one(p))).collect();
            assert_eq!(
                weak_buckets.len(),
                1,
                "the multiply carries differences upwards only"
            );
            let strong = strong_hashing(key);
            let strong_buckets: std::collections::HashSet<u64> = prices
                .iter()
                .map(|&p| low_bits(strong.hash_one(p)))
                .collect();
            assert!(
                strong_buckets.len() > 32,
                "{} buckets of 64",
                strong_buckets.len()
            );
        }
    }

    /// The number tried first may have been freed, or given to another key since: neither
    /// may be taken for a hit.
    #[test]
    fn an_interner_reuses_numbers_and_never_mistakes_a_freed_one() {
        let mut interner: Interner<[u8; 32], u8> = Interner::new(IdHashing::new(3));
        let a = interner.acquire(&[1; 32], || 1);
        assert_eq!(interner.acquire(&[1; 32], || 9), a, "a hit on the last");
        interner.release(a);
        interner.release(a);
        assert_eq!(interner.get(&[1; 32]), None, "freed with its last user");

        // The freed number goes to another key; the first comes back under a new number.
        let b = interner.acquire(&[2; 32], || 2);
        assert_eq!(b, a, "the freed number is reused");
        let c = interner.acquire(&[1; 32], || 3);
        assert_ne!(c, b);
        assert_eq!((*interner.value(b), *interner.value(c)), (2, 3));
        assert_eq!(interner.acquire(&[2; 32], || 9), b, "found in the map");
        assert_eq!(interner.key(b), &[2; 32]);

        // The number acquired last, then freed: a lookup, not a hit.
        assert_eq!(interner.acquire(&[1; 32], || 9), c);
        interner.release(c);
        interner.release(c);
        assert_eq!(interner.acquire(&[1; 32], || 4), c);
        assert_eq!(*interner.value(c), 4, "made anew");
    }
}
