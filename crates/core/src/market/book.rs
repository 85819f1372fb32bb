//! The replicated order book: every verified order and the winning update of each, and the
//! price-time ladders derived from them.
//!
//! Merging is order-free: an order's state is a function of the order and the update with the
//! highest (sequence, digest) among those received, and an update that arrives before its order
//! waits for it. So replicas that received the same orders and updates, in any order and with
//! any duplicates, hold the same book. The clock plays no part in the merge: expiry is applied
//! by [`Book::expire`] and skipped by matching, both with the time given.

use core::fmt;
use std::collections::{BTreeMap, HashMap, HashSet};

use bitcoin::{OutPoint, XOnlyPublicKey};

use super::ladder::{Ladder, Resting, Slot};
use super::order::{Change, Order, OrderId, Side, VerifiedOrder, VerifiedUpdate};
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

#[derive(Debug, Clone)]
struct Entry {
    order: VerifiedOrder,
    update: Option<VerifiedUpdate>,
    slot: Option<Slot>,
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
    let order = entry.order.order();
    let (sequence, filled, cancelled, funding) = match &entry.update {
        None => (0, 0, false, &order.funding[..]),
        Some(update) => {
            let update = update.update();
            match &update.change {
                Change::Fill { filled, funding } => (update.sequence, *filled, false, &funding[..]),
                Change::Cancel => (update.sequence, 0, true, &[][..]),
            }
        }
    };
    OrderView {
        order: &entry.order,
        sequence,
        filled,
        cancelled,
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

/// The order books of every market.
#[derive(Debug, Clone, Default)]
pub struct Book {
    limits: BookLimits,
    entries: HashMap<OrderId, Entry>,
    ladders: BTreeMap<AssetId, Ladder>,
    orphans: HashMap<OrderId, Vec<VerifiedUpdate>>,
    orphan_count: usize,
    unreachable: HashSet<XOnlyPublicKey>,
}

impl Book {
    pub fn new(limits: BookLimits) -> Book {
        Book {
            limits,
            ..Book::default()
        }
    }

    /// How many orders the book holds (open or not).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a verified order (a second copy changes nothing).
    pub fn insert_order(&mut self, order: VerifiedOrder) -> Result<Inserted, BookError> {
        let id = order.id();
        if self.entries.contains_key(&id) {
            return Ok(Inserted::Known);
        }
        if self.entries.len() >= self.limits.max_orders {
            return Err(BookError::Full);
        }
        let maker = order.order().maker;
        self.entries.insert(
            id,
            Entry {
                order,
                update: None,
                slot: None,
            },
        );
        // Updates that came first: the best valid one of this maker's wins.
        if let Some(waiting) = self.orphans.remove(&id) {
            self.orphan_count -= waiting.len();
            let best = waiting
                .into_iter()
                .filter(|update| update.update().maker == maker)
                .filter(|update| self.check_update(&self.entries[&id], update).is_ok())
                .max_by_key(|update| update.rank());
            self.entries.get_mut(&id).expect("just inserted").update = best;
        }
        self.place(id);
        Ok(Inserted::New)
    }

    fn check_update(&self, entry: &Entry, update: &VerifiedUpdate) -> Result<(), BookError> {
        let id = entry.order.id();
        let order = entry.order.order();
        let update = update.update();
        if update.maker != order.maker {
            return Err(BookError::WrongMaker(id));
        }
        if let Change::Fill { filled, funding } = &update.change {
            if *filled > order.amount {
                return Err(BookError::Overfilled {
                    order: id,
                    filled: *filled,
                    amount: order.amount,
                });
            }
            if *filled < order.amount && funding.is_empty() {
                return Err(BookError::NoFunding(id));
            }
        }
        Ok(())
    }

    /// Applies a verified update of the order's maker.
    pub fn apply_update(&mut self, update: VerifiedUpdate) -> Result<Applied, BookError> {
        let id = update.update().order;
        let Some(entry) = self.entries.get(&id) else {
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
        self.check_update(entry, &update)?;
        if entry
            .update
            .as_ref()
            .is_some_and(|current| current.rank() >= update.rank())
        {
            return Ok(Applied::Superseded);
        }
        self.entries.get_mut(&id).expect("found above").update = Some(update);
        self.place(id);
        Ok(Applied::Changed)
    }

    /// Puts the order where its state says: resting with what is left, or out of the ladder.
    fn place(&mut self, id: OrderId) {
        let entry = self.entries.get_mut(&id).expect("placed orders exist");
        let remaining = view(entry).remaining();
        let order = entry.order.order();
        let ladder = self.ladders.entry(order.market).or_default();
        match (entry.slot, remaining) {
            (Some(slot), 0) => {
                ladder.remove(slot);
                entry.slot = None;
            }
            (Some(slot), remaining) => ladder.set_remaining(slot, remaining),
            (None, 0) => {}
            (None, remaining) => {
                entry.slot = Some(ladder.insert(Resting {
                    id,
                    side: order.side,
                    price: order.price,
                    created_millis: order.created_millis,
                    remaining,
                }));
            }
        }
    }

    /// Drops every order that has expired by `now_millis` (and anything waiting for them);
    /// returns their ids.
    pub fn expire(&mut self, now_millis: u64) -> Vec<OrderId> {
        let expired: Vec<OrderId> = self
            .entries
            .iter()
            .filter(|(_, entry)| entry.order.order().expiry_millis <= now_millis)
            .map(|(id, _)| *id)
            .collect();
        for id in &expired {
            let entry = self.entries.remove(id).expect("listed above");
            if let Some(slot) = entry.slot {
                self.ladders
                    .get_mut(&entry.order.order().market)
                    .expect("a resting order's market has a ladder")
                    .remove(slot);
            }
        }
        expired
    }

    /// Marks a maker reachable or not (the driver knows); matching skips unreachable makers.
    pub fn set_reachable(&mut self, maker: XOnlyPublicKey, reachable: bool) {
        if reachable {
            self.unreachable.remove(&maker);
        } else {
            self.unreachable.insert(maker);
        }
    }

    pub fn is_reachable(&self, maker: &XOnlyPublicKey) -> bool {
        !self.unreachable.contains(maker)
    }

    /// An order and where it stands.
    pub fn get(&self, id: &OrderId) -> Option<OrderView<'_>> {
        self.entries.get(id).map(view)
    }

    /// Every order, in no particular order (to send a neighbour the whole book).
    pub fn orders(&self) -> impl Iterator<Item = OrderView<'_>> {
        self.entries.values().map(view)
    }

    /// The winning update of every order that has one.
    pub fn updates(&self) -> impl Iterator<Item = &VerifiedUpdate> {
        self.entries
            .values()
            .filter_map(|entry| entry.update.as_ref())
    }

    /// The ladder of `market`, if any order of it was ever placed.
    pub fn ladder(&self, market: &AssetId) -> Option<&Ladder> {
        self.ladders.get(market)
    }

    /// Open orders of `market` on `side` in priority order.
    pub fn open(&self, market: &AssetId, side: Side) -> Vec<OrderView<'_>> {
        self.ladders
            .get(market)
            .into_iter()
            .flat_map(|ladder| ladder.priority(side))
            .map(|(_, resting)| view(&self.entries[&resting.id]))
            .collect()
    }

    /// The book's state in a canonical form: every order with its winning update's rank,
    /// and every market's priority order. Two replicas hold the same book exactly when these
    /// are equal.
    pub fn snapshot(&self) -> BookSnapshot {
        let mut orders: Vec<(OrderId, Option<UpdateRank>)> = self
            .entries
            .iter()
            .map(|(id, entry)| (*id, entry.update.as_ref().map(VerifiedUpdate::rank)))
            .collect();
        orders.sort_unstable();
        let mut orphans: Vec<UpdateRank> = self
            .orphans
            .values()
            .flatten()
            .map(VerifiedUpdate::rank)
            .collect();
        orphans.sort_unstable();
        let ladders = self
            .ladders
            .iter()
            .map(|(market, ladder)| {
                let side = |side| ladder.priority(side).map(|(_, resting)| *resting).collect();
                (*market, side(Side::Bid), side(Side::Ask))
            })
            .filter(|(_, bids, asks): &(_, Vec<Resting>, Vec<Resting>)| {
                !bids.is_empty() || !asks.is_empty()
            })
            .collect();
        BookSnapshot {
            orders,
            orphans,
            ladders,
        }
    }

    /// Walks the book with `incoming` (not inserted): the fills it would make, best first, at
    /// each maker's price. Skipped: the taker's own orders, expired ones, unreachable makers,
    /// and partial fills [`Order::fill_allowed`] refuses (worth less than [`super::order::MIN_ORDER_SATS`], or
    /// leaving less than that).
    pub fn match_order(&self, incoming: &Order, now_millis: u64) -> Matched {
        let mut rest = incoming.amount;
        let mut fills = Vec::new();
        let Some(ladder) = self.ladders.get(&incoming.market) else {
            return Matched { fills, rest };
        };
        let crosses = |price: u64| match incoming.side {
            Side::Bid => price <= incoming.price,
            Side::Ask => price >= incoming.price,
        };
        for (_, resting) in ladder.priority(incoming.side.opposite()) {
            if rest == 0 || !crosses(resting.price) {
                break;
            }
            let entry = &self.entries[&resting.id];
            let order = entry.order.order();
            if order.maker == incoming.maker
                || order.expiry_millis <= now_millis
                || self.unreachable.contains(&order.maker)
            {
                continue;
            }
            let quantity = rest.min(resting.remaining);
            let Some(sats) = order.fill_allowed(resting.remaining, quantity) else {
                continue;
            };
            fills.push(Fill {
                order: resting.id,
                maker: order.maker,
                quantity,
                price: order.price,
                sats,
                sequence: view(entry).sequence,
            });
            rest -= quantity;
        }
        Matched { fills, rest }
    }
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
