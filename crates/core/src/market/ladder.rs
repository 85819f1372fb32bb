//! Price-time priority for one market: resting orders grouped in price levels, each level a
//! queue ordered by (creation time, id).
//!
//! Each side lists its levels sorted so that the best level is last (cheap to reach, cheap to
//! add and drop near the top, where the action is): their sort keys in one compact vector and
//! their numbers beside them, searched only when a new price is added. A price far from the
//! top shifts the vector: filling a book to its limit of 200,000 orders with a new price each
//! time costs about 19 µs an order natively, under half of checking the order's signature
//! (`cargo bench --bench book_arrival`), and a B-tree would cost the common case more (2.6 %
//! more instructions in the book benchmark). A level keeps its number while it has orders: an
//! order coming to rest finds it by price in a hash map, and each resting order holds it, so
//! taking an order out or changing what rests of it goes straight to its level.
//!
//! The queues are linked through the orders' own records in the book's slab ([`Nodes`]): the
//! ladder holds levels only, so placing, cancelling and matching an order touch its record and
//! no node elsewhere. Removing an order from the middle of a queue only marks it (its
//! neighbours stay untouched, which saves two cache misses on a cancel); marked orders are
//! unlinked when they reach the head, when their level empties, when they outnumber the live
//! ones, when they rest again or when the book frees them, so the work stays O(1) amortized.
//!
//! Orders mostly arrive in time order, so a new one goes at the tail of its queue, or a few
//! places before it. One that sorts before more than [`MAX_WALK_BACK`] queued orders (a peer
//! can send a level's orders newest first, and a book sync delivers old ones) goes into its
//! level's late set instead, a B-tree by (creation time, id) that a walk merges with the queue:
//! O(log n) whatever the order of arrival, where searching the queue would make a level of n
//! orders cost O(n²) to fill. Nothing here allocates per operation in the common case once the
//! vectors have grown.

use core::iter::Peekable;
use core::ops::ControlFlow;
use std::collections::{BTreeMap, HashMap};

use super::book::StrongHashing;
use super::order::{OrderId, Side};

/// An order's number in the book's slab.
pub type Slot = u32;

const NIL: u32 = u32::MAX;

/// How many queued orders a new one may sort before and still be linked into its queue;
/// beyond, it joins its level's late set.
pub const MAX_WALK_BACK: u32 = 8;

/// Where an order is in its level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// In no level: it does not rest.
    Out,
    /// Linked in its level's queue, resting.
    Queued,
    /// Linked in its level's queue, removed and not yet unlinked.
    Dead,
    /// In its level's late set, resting.
    Late,
}

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
    /// Its level's number while it is in the level (not [`Place::Out`]).
    level: u32,
    place: Place,
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
            place: Place::Out,
        }
    }

    pub fn is_resting(&self) -> bool {
        matches!(self.place, Place::Queued | Place::Late)
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

/// Where the order in `slot` goes in its level's queue: earliest first, then smallest id.
fn time_key(nodes: &impl Nodes, slot: Slot) -> (u64, &OrderId) {
    (nodes.node(slot).created_millis, nodes.id(slot))
}

/// Whether the order in `a` goes before the one in `b` in their level (their ids only read on
/// a tie of time).
fn precedes(nodes: &impl Nodes, a: Slot, b: Slot) -> bool {
    let (a_millis, b_millis) = (nodes.node(a).created_millis, nodes.node(b).created_millis);
    a_millis < b_millis || (a_millis == b_millis && nodes.id(a) < nodes.id(b))
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
    /// Resting orders, queued or late.
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
    /// Each level's late orders, by number: those that came after more than
    /// [`MAX_WALK_BACK`] queued orders they sort before.
    late: Vec<BTreeMap<(u64, OrderId), Slot>>,
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
            late: Vec::new(),
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

    /// A side's level numbers, best first.
    fn best_first(&self, side: Side) -> impl Iterator<Item = u32> + '_ {
        self.sorted(side).numbers.iter().rev().copied()
    }

    /// A side's levels, best first.
    fn levels_best_first(&self, side: Side) -> impl Iterator<Item = &Level> + '_ {
        self.best_first(side)
            .map(|number| &self.levels[number as usize])
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
            late,
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
                debug_assert!(late[number as usize].is_empty(), "an emptied level");
                levels[number as usize] = level;
                number
            }
            None => {
                levels.push(level);
                late.push(BTreeMap::new());
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
            place,
            level: linked_level,
            ..
        } = *nodes.node(slot);
        debug_assert!(!nodes.node(slot).is_resting(), "an order rests once");
        if place == Place::Dead {
            // Removed, still linked, and back: unlinked first.
            self.unlink(nodes, linked_level, slot);
        }
        let number = self.level_of(side, price);
        let level = &mut self.levels[number as usize];
        level.total += u128::from(remaining);
        level.count += 1;
        self.live += 1;
        // Walk back from the tail, a few orders at most, to the first that sorts before the
        // new one.
        let mut before = level.tail;
        let mut passed = 0;
        while before != NIL && !precedes(nodes, before, slot) {
            if passed == MAX_WALK_BACK {
                let (created_millis, id) = time_key(nodes, slot);
                self.late[number as usize].insert((created_millis, *id), slot);
                let node = nodes.node_mut(slot);
                node.level = number;
                node.remaining = remaining;
                node.place = Place::Late;
                return;
            }
            passed += 1;
            before = nodes.node(before).prev;
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
        let node = nodes.node_mut(slot);
        node.prev = before;
        node.next = after;
        node.level = number;
        node.remaining = remaining;
        node.place = Place::Queued;
    }

    /// Takes the resting order in `slot` out.
    pub fn remove(&mut self, nodes: &mut impl Nodes, slot: Slot) {
        let Node {
            side,
            price,
            remaining,
            prev,
            level: number,
            place,
            ..
        } = *nodes.node(slot);
        debug_assert!(
            nodes.node(slot).is_resting(),
            "only a resting order is removed"
        );
        if place == Place::Late {
            let (created_millis, id) = time_key(nodes, slot);
            self.late[number as usize].remove(&(created_millis, *id));
            let node = nodes.node_mut(slot);
            node.place = Place::Out;
            node.level = NIL;
        } else {
            nodes.node_mut(slot).place = Place::Dead;
            self.levels[number as usize].dead += 1;
        }
        let level = &mut self.levels[number as usize];
        level.total -= u128::from(remaining);
        level.count -= 1;
        let level = *level;
        self.live -= 1;
        if level.count == 0 {
            // Every order in the queue is dead now: all unlinked with the level.
            let mut slot = level.head;
            while slot != NIL {
                let node = nodes.node_mut(slot);
                node.place = Place::Out;
                node.level = NIL;
                slot = node.next;
            }
            self.drop_level(side, price, number);
        } else if place == Place::Late {
            // The queue is as it was.
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
        if node.place == Place::Dead {
            self.unlink(nodes, node.level, slot);
        }
    }

    /// Unlinks the dead order in `slot` from level `number`.
    fn unlink(&mut self, nodes: &mut impl Nodes, number: u32, slot: Slot) {
        let node = nodes.node_mut(slot);
        let (prev, next) = (node.prev, node.next);
        node.place = Place::Out;
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
            if head == NIL || nodes.node(head).place != Place::Dead {
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
            if nodes.node(slot).place == Place::Dead {
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
        self.levels_best_first(side).next().map(depth)
    }

    /// A side's levels, best first.
    pub fn depth(&self, side: Side) -> impl Iterator<Item = Depth> + '_ {
        self.levels_best_first(side).map(depth)
    }

    /// Shows `visit` the resting orders of `side` in priority order (best price first, then
    /// earliest), until it breaks. Matching runs it for every crossing order.
    pub fn walk<N: Nodes>(
        &self,
        nodes: &N,
        side: Side,
        mut visit: impl FnMut(Slot) -> ControlFlow<()>,
    ) {
        for number in self.best_first(side) {
            let mut slot = self.levels[number as usize].head;
            let late = &self.late[number as usize];
            let mut late = (!late.is_empty()).then(|| late.iter().peekable());
            loop {
                let next = match late.as_mut() {
                    None => {
                        let queued = first_queued(nodes, slot);
                        if queued != NIL {
                            slot = nodes.node(queued).next;
                        }
                        queued
                    }
                    Some(late) => next_merged(nodes, &mut slot, late),
                };
                if next == NIL {
                    break;
                }
                if visit(next).is_break() {
                    return;
                }
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

/// The first order from `slot` on in its queue that is not dead; NIL if none.
fn first_queued(nodes: &impl Nodes, mut slot: Slot) -> Slot {
    while slot != NIL && nodes.node(slot).place == Place::Dead {
        slot = nodes.node(slot).next;
    }
    slot
}

/// The next order of a level whose queue (at `queued`, which it moves on) and late set
/// (`late`) are merged by time; NIL after the last.
#[cold]
fn next_merged<'a>(
    nodes: &impl Nodes,
    queued: &mut Slot,
    late: &mut Peekable<impl Iterator<Item = (&'a (u64, OrderId), &'a Slot)>>,
) -> Slot {
    *queued = first_queued(nodes, *queued);
    match late.peek() {
        Some(&(&(created_millis, ref id), &late_slot))
            if *queued == NIL || time_key(nodes, *queued) > (created_millis, id) =>
        {
            late.next();
            late_slot
        }
        _ if *queued == NIL => NIL,
        _ => {
            let next = *queued;
            *queued = nodes.node(next).next;
            next
        }
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
        ladder.levels_best_first(side).map(|level| level.dead).sum()
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
        assert!(
            slab.0.iter().all(|(_, node)| node.place == Place::Out),
            "all unlinked"
        );
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
        assert_eq!(slab.node(1).place, Place::Out);
        assert_eq!(ids(&ladder, &slab, Side::Bid), [0, 2]);
        ladder.remove(&mut slab, 0);
        ladder.remove(&mut slab, 2);
        assert!(ladder.best(Side::Bid).is_none());
        assert!(ladder.is_empty());
    }

    #[test]
    fn orders_that_arrive_newest_first_go_late_and_keep_their_priority() {
        let (mut ladder, mut slab) = (Ladder::new(strong_hashing(7)), Slab::default());
        let count = 3 * MAX_WALK_BACK as u8;
        for n in 0..count {
            let slot = slab.add(n, Side::Bid, 100, u64::from(count - n));
            ladder.insert(&mut slab, slot, 1);
        }
        let late = slab.0.iter().filter(|(_, node)| node.place == Place::Late);
        assert_eq!(
            late.count(),
            usize::from(count) - 1 - MAX_WALK_BACK as usize
        );
        let newest_last: Vec<u8> = (0..count).rev().collect();
        assert_eq!(ids(&ladder, &slab, Side::Bid), newest_last);
        // Out of the late set and of the queue, from the front: the rest keeps its order.
        for n in (count - 4..count).rev() {
            ladder.remove(&mut slab, Slot::from(n));
        }
        ladder.remove(&mut slab, 0);
        assert_eq!(ids(&ladder, &slab, Side::Bid), newest_last[4..][..19]);
        assert_eq!(ladder.best(Side::Bid).unwrap().orders, u32::from(count) - 5);
    }

    /// The ladder against a model (proptest runs natively only, as in the crate's other
    /// property tests).
    #[cfg(not(target_arch = "wasm32"))]
    mod model {
        use super::*;

        /// What the ladder is asked to do, on few prices and times so that orders tie, arrive out
        /// of order and fill levels past [`MAX_WALK_BACK`].
        #[derive(Debug, Clone)]
        enum Op {
            Add {
                bid: bool,
                price: u64,
                created: u64,
                id: u8,
                remaining: u64,
            },
            Remove(usize),
            Rest(usize, u64),
            Resize(usize, u64),
            Forget(usize),
        }

        fn op() -> impl proptest::strategy::Strategy<Value = Op> {
            use proptest::prelude::*;
            let add = (any::<bool>(), 0..3u64, 0..24u64, any::<u8>(), 1..9u64).prop_map(
                |(bid, price, created, id, remaining)| Op::Add {
                    bid,
                    price,
                    created,
                    id,
                    remaining,
                },
            );
            prop_oneof![
                4 => add,
                2 => any::<usize>().prop_map(Op::Remove),
                1 => (any::<usize>(), 1..9u64).prop_map(|(at, left)| Op::Rest(at, left)),
                1 => (any::<usize>(), 1..9u64).prop_map(|(at, left)| Op::Resize(at, left)),
                1 => any::<usize>().prop_map(Op::Forget),
            ]
        }

        /// An order as the model keeps it.
        #[derive(Debug, Clone, Copy)]
        struct Model {
            remaining: u64,
            resting: bool,
            forgotten: bool,
        }

        proptest::proptest! {
            /// Whatever the order of arrival, removals and returns, the ladder lists exactly the
            /// resting orders, by price and then by (creation time, id), with the right totals.
            #[test]
            fn the_ladder_agrees_with_a_sorted_model(
                ops in proptest::collection::vec(op(), 1..200)
            ) {
                agrees_with_model(ops)?;
            }
        }

        fn agrees_with_model(ops: Vec<Op>) -> Result<(), proptest::test_runner::TestCaseError> {
            let (mut ladder, mut slab) = (Ladder::new(strong_hashing(7)), Slab::default());
            let mut model: Vec<Model> = Vec::new();
            let pick = |model: &[Model], at: usize, wanted: &dyn Fn(&Model) -> bool| {
                let found: Vec<usize> = (0..model.len()).filter(|&n| wanted(&model[n])).collect();
                (!found.is_empty()).then(|| found[at % found.len()])
            };
            for op in ops {
                match op {
                    Op::Add {
                        bid,
                        price,
                        created,
                        id,
                        remaining,
                    } => {
                        let slot = slab.0.len() as Slot;
                        let mut order_id = OrderId([id; 32]);
                        order_id.0[28..].copy_from_slice(&slot.to_be_bytes());
                        let side = if bid { Side::Bid } else { Side::Ask };
                        slab.0
                            .push((order_id, Node::new(side, 100 + price, created)));
                        ladder.insert(&mut slab, slot, remaining);
                        model.push(Model {
                            remaining,
                            resting: true,
                            forgotten: false,
                        });
                    }
                    Op::Remove(at) => {
                        if let Some(n) = pick(&model, at, &|order| order.resting) {
                            ladder.remove(&mut slab, n as Slot);
                            model[n].resting = false;
                        }
                    }
                    Op::Rest(at, remaining) => {
                        let out = |order: &Model| !order.resting && !order.forgotten;
                        if let Some(n) = pick(&model, at, &out) {
                            ladder.insert(&mut slab, n as Slot, remaining);
                            model[n] = Model {
                                remaining,
                                resting: true,
                                forgotten: false,
                            };
                        }
                    }
                    Op::Resize(at, remaining) => {
                        if let Some(n) = pick(&model, at, &|order| order.resting) {
                            ladder.set_remaining(&mut slab, n as Slot, remaining);
                            model[n].remaining = remaining;
                        }
                    }
                    Op::Forget(at) => {
                        if let Some(n) = pick(&model, at, &|order| !order.forgotten) {
                            ladder.forget(&mut slab, n as Slot);
                            model[n] = Model {
                                remaining: 0,
                                resting: false,
                                forgotten: true,
                            };
                        }
                    }
                }
                for side in [Side::Bid, Side::Ask] {
                    let resting = |slot: Slot| model[slot as usize].resting;
                    let mut expected: Vec<Slot> = (0..model.len() as Slot)
                        .filter(|&slot| resting(slot) && slab.node(slot).side == side)
                        .collect();
                    // Best first: the highest level key, then the smallest time key.
                    expected.sort_by_key(|&slot| {
                        let level = level_key(side, slab.node(slot).price);
                        (core::cmp::Reverse(level), time_key(&slab, slot))
                    });
                    proptest::prop_assert_eq!(ladder.priority(&slab, side), expected.clone());
                    let mut levels: Vec<Depth> = Vec::new();
                    for slot in expected {
                        let price = slab.node(slot).price;
                        let remaining = u128::from(model[slot as usize].remaining);
                        match levels.last_mut() {
                            Some(level) if level.price == price => {
                                level.total += remaining;
                                level.orders += 1;
                            }
                            _ => levels.push(Depth {
                                price,
                                total: remaining,
                                orders: 1,
                            }),
                        }
                    }
                    proptest::prop_assert_eq!(ladder.depth(side).collect::<Vec<_>>(), levels);
                }
                let resting = model.iter().filter(|order| order.resting).count();
                proptest::prop_assert_eq!(ladder.len(), resting);
            }
            Ok(())
        }
    }
}
