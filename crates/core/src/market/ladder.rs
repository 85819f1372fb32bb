//! Price-time priority for one market: resting orders grouped in price levels, each level a
//! queue ordered by (creation time, id).
//!
//! Each side lists its levels sorted so that the best level is last (cheap to reach, cheap to
//! add and drop near the top, where the action is): their sort keys in one compact vector and
//! their numbers beside them, searched only when a new price is added. A level keeps its
//! number while it has orders: an order coming to rest finds it by price in a hash map, and
//! each linked order holds it, so taking an order out or changing what rests of it goes
//! straight to its level.
//!
//! The queues are linked through the orders' own records in the book's slab ([`Nodes`]): the
//! ladder holds levels only, so placing, cancelling and matching an order touch its record and
//! no node elsewhere. Removing an order from the middle of a queue only marks it (its
//! neighbours stay untouched, which saves two cache misses on a cancel); marked orders are
//! unlinked when they reach the head, when their level empties, when they outnumber the live
//! ones, when they rest again or when the book frees them, so the work stays O(1) amortized.
//! Nothing here allocates per operation once the vectors have grown.

use core::ops::ControlFlow;
use std::collections::HashMap;

use super::book::StrongHashing;
use super::order::{OrderId, Side};

/// An order's number in the book's slab.
pub type Slot = u32;

const NIL: u32 = u32::MAX;

/// An order's place in a ladder, kept in the order's record in the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    pub side: Side,
    pub price: u64,
    pub created_millis: u64,
    /// What its level's total counts for it while it rests.
    remaining: u64,
    prev: u32,
    next: u32,
    /// Its level's number while it is linked.
    level: u32,
    /// In its level's queue: resting, or removed and not yet unlinked.
    linked: bool,
    /// Removed, not yet unlinked.
    dead: bool,
}

impl Node {
    /// The node of an order that does not rest yet.
    pub const fn new(side: Side, price: u64, created_millis: u64) -> Node {
        Node {
            side,
            price,
            created_millis,
            remaining: 0,
            prev: NIL,
            next: NIL,
            level: NIL,
            linked: false,
            dead: false,
        }
    }

    pub fn is_resting(&self) -> bool {
        self.linked && !self.dead
    }

    /// What rests of the order (0 when it does not rest).
    pub fn remaining(&self) -> u64 {
        if self.is_resting() {
            self.remaining
        } else {
            0
        }
    }
}

/// The book's slab of orders, as the ladders link them.
pub trait Nodes {
    fn node(&self, slot: Slot) -> &Node;
    fn node_mut(&mut self, slot: Slot) -> &mut Node;
    /// The id of the order in `slot` (it breaks ties of creation time).
    fn id(&self, slot: Slot) -> &OrderId;
}

/// A resting order as a snapshot shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resting {
    pub id: OrderId,
    pub side: Side,
    pub price: u64,
    pub created_millis: u64,
    pub remaining: u64,
}

/// One price on one side: the sum of what rests there and its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Level {
    price: u64,
    head: u32,
    tail: u32,
    total: u128,
    /// Live orders.
    count: u32,
    /// Removed orders still linked.
    dead: u32,
}

/// How many removed orders a level may keep linked beyond its live ones.
const DEAD_SLACK: u32 = 16;

/// A price level as the UI shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Depth {
    pub price: u64,
    /// Base units resting at this price.
    pub total: u128,
    /// How many orders.
    pub orders: u32,
}

/// One side's levels, best last: their sort keys (ascending) and, beside them, their numbers;
/// and the numbers by price.
#[derive(Debug, Clone)]
struct Sorted {
    keys: Vec<u64>,
    numbers: Vec<u32>,
    by_price: HashMap<u64, u32, StrongHashing>,
}

/// Both sides of one market.
#[derive(Debug, Clone)]
pub struct Ladder {
    bids: Sorted,
    asks: Sorted,
    /// The levels of both sides by number; an emptied level's number is reused.
    levels: Vec<Level>,
    free: Vec<u32>,
    live: usize,
}

/// Sorts levels so the best is last: the price for bids, its complement for asks.
fn level_key(side: Side, price: u64) -> u64 {
    match side {
        Side::Bid => price,
        Side::Ask => !price,
    }
}

impl Ladder {
    /// An empty ladder, its prices hashed by `hashing` (the book's).
    pub(super) fn new(hashing: StrongHashing) -> Ladder {
        let sorted = || Sorted {
            keys: Vec::new(),
            numbers: Vec::new(),
            by_price: HashMap::with_hasher(hashing.clone()),
        };
        Ladder {
            bids: sorted(),
            asks: sorted(),
            levels: Vec::new(),
            free: Vec::new(),
            live: 0,
        }
    }

    fn sorted(&self, side: Side) -> &Sorted {
        match side {
            Side::Bid => &self.bids,
            Side::Ask => &self.asks,
        }
    }

    /// A side's levels, best first.
    fn best_first(&self, side: Side) -> impl Iterator<Item = &Level> + '_ {
        self.sorted(side)
            .numbers
            .iter()
            .rev()
            .map(|&number| &self.levels[number as usize])
    }

    /// How many orders rest on both sides.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of the level of `price` on `side`, made if there is none.
    fn level_of(&mut self, side: Side, price: u64) -> u32 {
        let key = level_key(side, price);
        let Ladder {
            bids,
            asks,
            levels,
            free,
            ..
        } = self;
        let sorted = match side {
            Side::Bid => bids,
            Side::Ask => asks,
        };
        if let Some(&number) = sorted.by_price.get(&price) {
            return number;
        }
        let level = Level {
            price,
            head: NIL,
            tail: NIL,
            total: 0,
            count: 0,
            dead: 0,
        };
        let number = match free.pop() {
            Some(number) => {
                levels[number as usize] = level;
                number
            }
            None => {
                levels.push(level);
                (levels.len() - 1) as u32
            }
        };
        let at = sorted.keys.partition_point(|&other| other < key);
        sorted.keys.insert(at, key);
        sorted.numbers.insert(at, number);
        sorted.by_price.insert(price, number);
        number
    }

    /// Drops the emptied level `number` (of `price` on `side`); its number is free again.
    fn drop_level(&mut self, side: Side, price: u64, number: u32) {
        let sorted = match side {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
        };
        let at = sorted
            .keys
            .binary_search(&level_key(side, price))
            .expect("a level in use is listed");
        sorted.keys.remove(at);
        sorted.numbers.remove(at);
        sorted.by_price.remove(&price);
        self.free.push(number);
    }

    /// Rests the order in `slot` (not resting) with `remaining` at its price: behind every
    /// order there made earlier (or at the same time with a smaller id).
    pub fn insert(&mut self, nodes: &mut impl Nodes, slot: Slot, remaining: u64) {
        let Node {
            side,
            price,
            created_millis,
            linked,
            level: linked_level,
            ..
        } = *nodes.node(slot);
        debug_assert!(!nodes.node(slot).is_resting(), "an order rests once");
        if linked {
            // Removed, still linked, and back: unlinked first.
            self.unlink(nodes, linked_level, slot);
        }
        let number = self.level_of(side, price);
        let level = &mut self.levels[number as usize];
        level.total += u128::from(remaining);
        level.count += 1;
        // Orders mostly arrive in time order: walk back from the tail to the first that sorts
        // before the new one.
        let mut before = level.tail;
        while before != NIL {
            let node = nodes.node(before);
            if node.created_millis < created_millis
                || (node.created_millis == created_millis && nodes.id(before) < nodes.id(slot))
            {
                break;
            }
            before = node.prev;
        }
        let after = if before == NIL {
            level.head
        } else {
            nodes.node(before).next
        };
        if before == NIL {
            level.head = slot;
        } else {
            nodes.node_mut(before).next = slot;
        }
        if after == NIL {
            level.tail = slot;
        } else {
            nodes.node_mut(after).prev = slot;
        }
        self.live += 1;
        let node = nodes.node_mut(slot);
        node.prev = before;
        node.next = after;
        node.level = number;
        node.remaining = remaining;
        node.linked = true;
        node.dead = false;
    }

    /// Takes the resting order in `slot` out.
    pub fn remove(&mut self, nodes: &mut impl Nodes, slot: Slot) {
        let node = nodes.node_mut(slot);
        debug_assert!(node.is_resting(), "only a resting order is removed");
        node.dead = true;
        let Node {
            side,
            price,
            remaining,
            prev,
            level: number,
            ..
        } = *node;
        let level = &mut self.levels[number as usize];
        level.total -= u128::from(remaining);
        level.count -= 1;
        level.dead += 1;
        let level = *level;
        self.live -= 1;
        if level.count == 0 {
            // Every order in the queue is dead now: all unlinked with the level.
            let mut slot = level.head;
            while slot != NIL {
                let node = nodes.node_mut(slot);
                node.linked = false;
                node.level = NIL;
                slot = node.next;
            }
            self.drop_level(side, price, number);
        } else if prev == NIL {
            self.unlink_dead_heads(nodes, number);
        } else if level.dead > level.count + DEAD_SLACK {
            self.compact(nodes, number);
        }
    }

    /// Takes the order in `slot` out for good (its record is about to be freed).
    pub fn forget(&mut self, nodes: &mut impl Nodes, slot: Slot) {
        if nodes.node(slot).is_resting() {
            self.remove(nodes, slot);
        }
        let node = nodes.node(slot);
        if node.linked {
            self.unlink(nodes, node.level, slot);
        }
    }

    /// Unlinks the dead order in `slot` from level `number`.
    fn unlink(&mut self, nodes: &mut impl Nodes, number: u32, slot: Slot) {
        let node = nodes.node_mut(slot);
        let (prev, next) = (node.prev, node.next);
        node.linked = false;
        node.level = NIL;
        if prev != NIL {
            nodes.node_mut(prev).next = next;
        }
        if next != NIL {
            nodes.node_mut(next).prev = prev;
        }
        let level = &mut self.levels[number as usize];
        if prev == NIL {
            level.head = next;
        }
        if next == NIL {
            level.tail = prev;
        }
        level.dead -= 1;
    }

    fn unlink_dead_heads(&mut self, nodes: &mut impl Nodes, number: u32) {
        loop {
            let head = self.levels[number as usize].head;
            if head == NIL || !nodes.node(head).dead {
                return;
            }
            self.unlink(nodes, number, head);
        }
    }

    /// Unlinks every dead order of level `number`.
    fn compact(&mut self, nodes: &mut impl Nodes, number: u32) {
        let mut slot = self.levels[number as usize].head;
        while slot != NIL {
            let next = nodes.node(slot).next;
            if nodes.node(slot).dead {
                self.unlink(nodes, number, slot);
            }
            slot = next;
        }
    }

    /// Changes what is left of the resting order in `slot` (it keeps its place in the queue).
    pub fn set_remaining(&mut self, nodes: &mut impl Nodes, slot: Slot, remaining: u64) {
        let node = nodes.node_mut(slot);
        debug_assert!(node.is_resting());
        let (number, before) = (node.level, node.remaining);
        node.remaining = remaining;
        let level = &mut self.levels[number as usize];
        level.total = level.total - u128::from(before) + u128::from(remaining);
    }

    /// The best price of a side and what rests there.
    pub fn best(&self, side: Side) -> Option<Depth> {
        self.best_first(side).next().map(depth)
    }

    /// A side's levels, best first.
    pub fn depth(&self, side: Side) -> impl Iterator<Item = Depth> + '_ {
        self.best_first(side).map(depth)
    }

    /// Shows `visit` the resting orders of `side` in priority order (best price first, then
    /// earliest), until it breaks. Matching runs it for every crossing order.
    pub fn walk<N: Nodes>(
        &self,
        nodes: &N,
        side: Side,
        mut visit: impl FnMut(Slot) -> ControlFlow<()>,
    ) {
        for level in self.best_first(side) {
            let mut slot = level.head;
            while slot != NIL {
                let node = nodes.node(slot);
                let next = node.next;
                if !node.dead && visit(slot).is_break() {
                    return;
                }
                slot = next;
            }
        }
    }

    /// A side's resting orders in priority order, by slot: all that [`Ladder::walk`] shows.
    pub fn priority<N: Nodes>(&self, nodes: &N, side: Side) -> Vec<Slot> {
        let mut slots = Vec::new();
        self.walk(nodes, side, |slot| {
            slots.push(slot);
            ControlFlow::Continue(())
        });
        slots
    }
}

fn depth(level: &Level) -> Depth {
    Depth {
        price: level.price,
        total: level.total,
        orders: level.count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::book::strong_hashing;

    /// A slab of orders numbered by their first id byte.
    #[derive(Default)]
    struct Slab(Vec<(OrderId, Node)>);

    impl Nodes for Slab {
        fn node(&self, slot: Slot) -> &Node {
            &self.0[slot as usize].1
        }
        fn node_mut(&mut self, slot: Slot) -> &mut Node {
            &mut self.0[slot as usize].1
        }
        fn id(&self, slot: Slot) -> &OrderId {
            &self.0[slot as usize].0
        }
    }

    impl Slab {
        /// Adds order `n` (slot `n`; slots are numbered in the order they are added).
        fn add(&mut self, n: u8, side: Side, price: u64, created_millis: u64) -> Slot {
            assert_eq!(self.0.len(), usize::from(n));
            self.0
                .push((OrderId([n; 32]), Node::new(side, price, created_millis)));
            Slot::from(n)
        }
    }

    fn ids(ladder: &Ladder, slab: &Slab, side: Side) -> Vec<u8> {
        ladder
            .priority(slab, side)
            .into_iter()
            .map(|slot| slab.id(slot).0[0])
            .collect()
    }

    fn linked(ladder: &Ladder, side: Side) -> u32 {
        ladder.best_first(side).map(|level| level.dead).sum()
    }

    #[test]
    fn best_price_first_then_earliest_then_smallest_id() {
        let (mut ladder, mut slab) = (Ladder::new(strong_hashing(7)), Slab::default());
        for (n, side, price, created) in [
            (0, Side::Ask, 105, 10),
            (1, Side::Ask, 100, 30),
            (2, Side::Ask, 100, 20),
            (3, Side::Ask, 100, 20),
            (4, Side::Bid, 90, 5),
            (5, Side::Bid, 95, 50),
        ] {
            let slot = slab.add(n, side, price, created);
            ladder.insert(&mut slab, slot, 10);
        }
        // Same time as 2 and 3, an id smaller than 2's: before both.
        slab.0
            .push((OrderId([2; 32]), Node::new(Side::Ask, 100, 20)));
        slab.0[6].0 .0[31] = 1;
        ladder.insert(&mut slab, 6, 10);
        assert_eq!(ids(&ladder, &slab, Side::Ask), [2, 2, 3, 1, 0]);
        assert_eq!(ladder.priority(&slab, Side::Ask)[..2], [6, 2]);
        let mut first_two = Vec::new();
        ladder.walk(&slab, Side::Ask, |slot| {
            first_two.push(slot);
            if first_two.len() == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        assert_eq!(first_two, [6, 2], "the walk stops where it is told");
        assert_eq!(ids(&ladder, &slab, Side::Bid), [5, 4]);
        assert_eq!(ladder.best(Side::Ask).unwrap().price, 100);
        assert_eq!(ladder.best(Side::Ask).unwrap().total, 40);
        assert_eq!(ladder.best(Side::Bid).unwrap().price, 95);
    }

    #[test]
    fn removed_orders_in_the_middle_are_skipped_then_compacted() {
        let (mut ladder, mut slab) = (Ladder::new(strong_hashing(7)), Slab::default());
        for n in 0..100u8 {
            let slot = slab.add(n, Side::Ask, 100, u64::from(n));
            ladder.insert(&mut slab, slot, 10);
        }
        // Remove every order but the first and the last, from the middle outwards.
        for slot in 1..99 {
            ladder.remove(&mut slab, slot);
        }
        assert_eq!(ids(&ladder, &slab, Side::Ask), [0, 99]);
        assert_eq!(ladder.len(), 2);
        assert_eq!(ladder.best(Side::Ask).unwrap().total, 20);
        assert!(
            linked(&ladder, Side::Ask) <= DEAD_SLACK + 2,
            "compaction unlinked the removed orders"
        );
        // The head goes: the removed behind it go too.
        ladder.remove(&mut slab, 0);
        assert_eq!(ids(&ladder, &slab, Side::Ask), [99]);
        assert_eq!(linked(&ladder, Side::Ask), 0);
        ladder.remove(&mut slab, 99);
        assert!(ladder.is_empty() && ladder.best(Side::Ask).is_none());
        assert!(slab.0.iter().all(|(_, node)| !node.linked), "all unlinked");
    }

    #[test]
    fn emptied_levels_give_their_numbers_to_new_prices_on_either_side() {
        let (mut ladder, mut slab) = (Ladder::new(strong_hashing(7)), Slab::default());
        let a = slab.add(0, Side::Ask, 110, 0);
        let b = slab.add(1, Side::Bid, 90, 1);
        ladder.insert(&mut slab, a, 5);
        ladder.insert(&mut slab, b, 6);
        ladder.remove(&mut slab, a);
        assert!(ladder.best(Side::Ask).is_none());
        // The ask level's number goes to a new bid price, above the old one.
        let c = slab.add(2, Side::Bid, 95, 2);
        ladder.insert(&mut slab, c, 7);
        let d = slab.add(3, Side::Ask, 100, 3);
        ladder.insert(&mut slab, d, 8);
        let bids: Vec<(u64, u128)> = ladder
            .depth(Side::Bid)
            .map(|level| (level.price, level.total))
            .collect();
        assert_eq!(bids, [(95, 7), (90, 6)]);
        assert_eq!(ladder.best(Side::Ask).map(|level| level.total), Some(8));
        // Resizing and removing reach the right levels without a search.
        ladder.set_remaining(&mut slab, b, 2);
        ladder.remove(&mut slab, c);
        assert_eq!(
            ladder
                .best(Side::Bid)
                .map(|level| (level.price, level.total)),
            Some((90, 2))
        );
        assert_eq!(ids(&ladder, &slab, Side::Bid), [1]);
        assert_eq!(ids(&ladder, &slab, Side::Ask), [3]);
        assert_eq!(ladder.len(), 2);
    }

    #[test]
    fn removing_resizing_and_resting_again_keep_levels_and_totals_right() {
        let (mut ladder, mut slab) = (Ladder::new(strong_hashing(7)), Slab::default());
        for n in 0..3 {
            let slot = slab.add(n, Side::Bid, 100, u64::from(n));
            ladder.insert(&mut slab, slot, 10);
        }
        ladder.set_remaining(&mut slab, 1, 4);
        assert_eq!(ladder.best(Side::Bid).unwrap().total, 24);
        assert_eq!(slab.node(1).remaining(), 4);
        ladder.remove(&mut slab, 1);
        assert_eq!(slab.node(1).remaining(), 0);
        assert_eq!(ids(&ladder, &slab, Side::Bid), [0, 2]);
        // Back (a fill undone): in its place by time, not at the end.
        ladder.insert(&mut slab, 1, 7);
        assert_eq!(ids(&ladder, &slab, Side::Bid), [0, 1, 2]);
        assert_eq!(ladder.best(Side::Bid).unwrap().total, 27);
        // Forgotten: out, unlinked, its neighbours joined.
        ladder.forget(&mut slab, 1);
        assert!(!slab.node(1).linked);
        assert_eq!(ids(&ladder, &slab, Side::Bid), [0, 2]);
        ladder.remove(&mut slab, 0);
        ladder.remove(&mut slab, 2);
        assert!(ladder.best(Side::Bid).is_none());
        assert!(ladder.is_empty());
    }
}
