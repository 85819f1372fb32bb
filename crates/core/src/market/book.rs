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
use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};

use hashbrown::HashTable;

use bitcoin::{OutPoint, XOnlyPublicKey};

use super::ladder::{Ladder, Resting, Slot};
use super::order::{fill_allowed, Change, Order, OrderId, Side, VerifiedOrder, VerifiedUpdate};
use crate::chain::assets::AssetId;

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
    /// [`BookLimits::max_orphans`] updates already wait for their orders.
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
                f.write_str("too many updates are waiting for orders not yet received")
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

/// Where nothing rests.
const NOT_RESTING: Slot = Slot::MAX;

/// An order's place in the book: the order and its winning update (shared, cold), and what
/// the hot paths read, inline (its state, interned maker and market, ladder slot), so that
/// applying an update or walking the ladder touches one cache line per order.
#[derive(Debug, Clone)]
struct Entry {
    /// The order's id, inline: the index compares it.
    id: OrderId,
    order: VerifiedOrder,
    update: Option<VerifiedUpdate>,
    amount: u64,
    filled: u64,
    expiry_millis: u64,
    sequence: u32,
    maker: u32,
    market: u32,
    slot: Slot,
    cancelled: bool,
}

impl Entry {
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

/// Values shared by many orders (makers, markets), numbered and counted so that entries hold a
/// small number and the numbers are freed when their last order goes.
#[derive(Debug, Clone)]
struct Interner<K> {
    numbers: HashMap<K, u32, IdHashing>,
    keys: Vec<Option<(K, u32)>>,
    free: Vec<u32>,
}

impl<K> Default for Interner<K> {
    fn default() -> Self {
        Interner {
            numbers: HashMap::default(),
            keys: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<K: core::hash::Hash + Eq + Clone> Interner<K> {
    fn get(&self, key: &K) -> Option<u32> {
        self.numbers.get(key).copied()
    }

    /// The number of `key`, counting one more user.
    fn acquire(&mut self, key: &K) -> u32 {
        if let Some(&number) = self.numbers.get(key) {
            self.keys[number as usize]
                .as_mut()
                .expect("a live number")
                .1 += 1;
            return number;
        }
        let number = match self.free.pop() {
            Some(number) => {
                self.keys[number as usize] = Some((key.clone(), 1));
                number
            }
            None => {
                self.keys.push(Some((key.clone(), 1)));
                (self.keys.len() - 1) as u32
            }
        };
        self.numbers.insert(key.clone(), number);
        number
    }

    /// One user fewer; the number is freed with the last.
    fn release(&mut self, number: u32) {
        let slot = &mut self.keys[number as usize];
        let (key, users) = slot.as_mut().expect("a live number");
        *users -= 1;
        if *users == 0 {
            self.numbers.remove(key);
            *slot = None;
            self.free.push(number);
        }
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
}

impl OrderView<'_> {
    pub fn remaining(&self) -> u64 {
        if self.cancelled {
            0
        } else {
            self.order.order().amount - self.filled
        }
    }
}

fn view(entry: &Entry) -> OrderView<'_> {
    let funding = match entry.update.as_ref().map(|update| &update.update().change) {
        None => &entry.order.order().funding[..],
        Some(Change::Fill { funding, .. }) => &funding[..],
        Some(Change::Cancel) => &[][..],
    };
    OrderView {
        order: &entry.order,
        sequence: entry.sequence,
        filled: entry.filled,
        cancelled: entry.cancelled,
        funding,
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
/// points): one multiply per eight bytes mixes them with a per-book random key, so a peer
/// cannot aim its values at one bucket.
#[derive(Debug, Clone, Copy)]
struct IdHashing(u64);

impl Default for IdHashing {
    fn default() -> IdHashing {
        IdHashing(RandomState::new().hash_one(0x0062_6974_6d65_7368_u64) | 1)
    }
}

impl BuildHasher for IdHashing {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher(self.0)
    }
}

struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }
}

/// The order books of every market.
#[derive(Debug, Clone, Default)]
pub struct Book {
    limits: BookLimits,
    /// Orders in a slab (freed places are reused), found by id through `index`, which holds
    /// slab numbers only (a quarter of a map keyed by id: more of it stays in cache).
    entries: Vec<Option<Entry>>,
    free: Vec<u32>,
    index: HashTable<u32>,
    hashing: IdHashing,
    makers: Interner<[u8; 32]>,
    markets: Interner<AssetId>,
    /// One ladder per market number.
    ladders: Vec<Ladder>,
    orphans: HashMap<OrderId, Vec<VerifiedUpdate>>,
    orphan_count: usize,
    /// Serialized keys of makers the driver cannot reach.
    unreachable: HashSet<[u8; 32]>,
}

impl Book {
    pub fn new(limits: BookLimits) -> Book {
        Book {
            limits,
            ..Book::default()
        }
    }

    /// Makes room for `orders` more orders at once (a driver that knows its load avoids the
    /// book growing step by step).
    pub fn reserve(&mut self, orders: usize) {
        self.entries.reserve(orders);
        let (entries, hashing) = (&self.entries, &self.hashing);
        self.index
            .reserve(orders, |&at| hashing.hash_one(slab_id(entries, at)));
    }

    /// How many orders the book holds (open or not).
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn entry(&self, at: u32) -> &Entry {
        self.entries[at as usize]
            .as_ref()
            .expect("indexed entries exist")
    }

    fn find(&self, id: &OrderId) -> Option<&Entry> {
        self.position(id).map(|at| self.entry(at))
    }

    /// Where `id` is in the slab.
    fn position(&self, id: &OrderId) -> Option<u32> {
        let entries = &self.entries;
        self.index
            .find(self.hashing.hash_one(id), |&at| slab_id(entries, at) == id)
            .copied()
    }

    /// Every entry, in slab order.
    fn all(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().flatten()
    }

    /// Adds a verified order (a second copy changes nothing).
    pub fn insert_order(&mut self, order: VerifiedOrder) -> Result<Inserted, BookError> {
        let id = order.id();
        let hash = self.hashing.hash_one(id);
        let entries = &self.entries;
        if self
            .index
            .find(hash, |&at| slab_id(entries, at) == &id)
            .is_some()
        {
            return Ok(Inserted::Known);
        }
        if self.index.len() >= self.limits.max_orders {
            return Err(BookError::Full);
        }
        let maker = self.makers.acquire(order.maker_bytes());
        let market = self.markets.acquire(&order.order().market);
        if market as usize == self.ladders.len() {
            self.ladders.push(Ladder::new());
        }
        let fields = order.order();
        let mut entry = Entry {
            id,
            amount: fields.amount,
            expiry_millis: fields.expiry_millis,
            order,
            update: None,
            filled: 0,
            sequence: 0,
            maker,
            market,
            slot: NOT_RESTING,
            cancelled: false,
        };
        // Updates that came first: the best valid one of this maker's wins.
        if !self.orphans.is_empty() {
            if let Some(waiting) = self.orphans.remove(&id) {
                self.orphan_count -= waiting.len();
                let makers = &self.makers;
                let best = waiting
                    .into_iter()
                    .filter(|update| {
                        check_update(&entry, update, makers.get(update.maker_bytes())).is_ok()
                    })
                    .max_by_key(|update| update.rank());
                if let Some(best) = best {
                    entry.adopt(best);
                }
            }
        }
        let at = match self.free.pop() {
            Some(at) => at,
            None => {
                self.entries.push(None);
                (self.entries.len() - 1) as u32
            }
        };
        self.entries[at as usize] = Some(entry);
        let (entries, hashing) = (&self.entries, &self.hashing);
        self.index
            .insert_unique(hash, at, |&at| hashing.hash_one(slab_id(entries, at)));
        self.place(at);
        Ok(Inserted::New)
    }

    /// Applies a verified update of the order's maker.
    pub fn apply_update(&mut self, update: VerifiedUpdate) -> Result<Applied, BookError> {
        let id = update.update().order;
        let Some(at) = self.position(&id) else {
            let waiting = self.orphans.entry(id).or_default();
            if waiting.contains(&update) {
                return Ok(Applied::Orphaned);
            }
            if self.orphan_count >= self.limits.max_orphans {
                return Err(BookError::TooManyOrphans);
            }
            waiting.push(update);
            self.orphan_count += 1;
            return Ok(Applied::Orphaned);
        };
        let maker = self.makers.get(update.maker_bytes());
        let entry = self.entries[at as usize]
            .as_mut()
            .expect("indexed entries exist");
        check_update(entry, &update, maker)?;
        if !entry.is_superseded_by(&update) {
            return Ok(Applied::Superseded);
        }
        entry.adopt(update);
        self.place(at);
        Ok(Applied::Changed)
    }

    /// Puts the order where its state says: resting with what is left, or out of the ladder.
    fn place(&mut self, at: u32) {
        let entry = self.entries[at as usize]
            .as_mut()
            .expect("placed entries exist");
        let remaining = entry.remaining();
        let ladder = &mut self.ladders[entry.market as usize];
        match (entry.slot, remaining) {
            (NOT_RESTING, 0) => {}
            (slot, 0) => {
                ladder.remove(slot);
                entry.slot = NOT_RESTING;
            }
            (NOT_RESTING, remaining) => {
                let order = entry.order.order();
                entry.slot = ladder.insert(Resting {
                    id: entry.id,
                    entry: at,
                    side: order.side,
                    price: order.price,
                    created_millis: order.created_millis,
                    remaining,
                });
            }
            (slot, remaining) => ladder.set_remaining(slot, remaining),
        }
    }

    /// Drops every order that has expired by `now_millis`; returns their ids.
    pub fn expire(&mut self, now_millis: u64) -> Vec<OrderId> {
        let mut expired = Vec::new();
        for at in 0..self.entries.len() {
            let lapsed = self.entries[at]
                .as_ref()
                .is_some_and(|entry| entry.expiry_millis <= now_millis);
            if !lapsed {
                continue;
            }
            let entry = self.entries[at].take().expect("checked above");
            if entry.slot != NOT_RESTING {
                self.ladders[entry.market as usize].remove(entry.slot);
            }
            self.makers.release(entry.maker);
            self.markets.release(entry.market);
            self.index
                .find_entry(self.hashing.hash_one(entry.id), |&other| {
                    other as usize == at
                })
                .expect("indexed")
                .remove();
            self.free.push(at as u32);
            expired.push(entry.id);
        }
        expired
    }

    /// Marks a maker reachable or not (the driver knows); matching skips unreachable makers.
    pub fn set_reachable(&mut self, maker: XOnlyPublicKey, reachable: bool) {
        if reachable {
            self.unreachable.remove(&maker.serialize());
        } else {
            self.unreachable.insert(maker.serialize());
        }
    }

    pub fn is_reachable(&self, maker: &XOnlyPublicKey) -> bool {
        !self.unreachable.contains(&maker.serialize())
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
            .flat_map(|ladder| ladder.priority(side))
            .map(|(_, resting)| view(self.entry(resting.entry)))
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
                // The handle is this replica's own business.
                let side = |side| {
                    ladder
                        .priority(side)
                        .map(|(_, resting)| Resting {
                            entry: 0,
                            ..*resting
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
        let mut rest = incoming.amount;
        let mut fills = Vec::new();
        let Some(ladder) = self.ladder(&incoming.market) else {
            return Matched { fills, rest };
        };
        let taker = self.makers.get(&incoming.maker.serialize());
        let unreachable: Vec<u32> = self
            .unreachable
            .iter()
            .filter_map(|maker| self.makers.get(maker))
            .collect();
        let crosses = |price: u64| match incoming.side {
            Side::Bid => price <= incoming.price,
            Side::Ask => price >= incoming.price,
        };
        for (_, resting) in ladder.priority(incoming.side.opposite()) {
            if rest == 0 || !crosses(resting.price) {
                break;
            }
            let entry = self.entry(resting.entry);
            if Some(entry.maker) == taker
                || entry.expiry_millis <= now_millis
                || unreachable.contains(&entry.maker)
            {
                continue;
            }
            let quantity = rest.min(resting.remaining);
            let Some(sats) = fill_allowed(resting.side, resting.price, resting.remaining, quantity)
            else {
                continue;
            };
            fills.push(Fill {
                order: resting.id,
                maker: entry.order.order().maker,
                quantity,
                price: resting.price,
                sats,
                sequence: entry.sequence,
            });
            rest -= quantity;
        }
        Matched { fills, rest }
    }
}

/// The id of the order in slab place `at` (indexed places hold orders).
fn slab_id(entries: &[Option<Entry>], at: u32) -> &OrderId {
    &entries[at as usize]
        .as_ref()
        .expect("indexed entries exist")
        .id
}

/// Whether `update`, signed by the maker numbered `maker` (if any order of its is in the book),
/// may apply to the order of `entry` at all (whatever else was received).
fn check_update(
    entry: &Entry,
    update: &VerifiedUpdate,
    maker: Option<u32>,
) -> Result<(), BookError> {
    let id = entry.id;
    if maker != Some(entry.maker) {
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
