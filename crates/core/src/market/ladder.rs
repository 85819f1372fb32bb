//! Price-time priority for one market: resting orders grouped in price levels, each level a
//! queue ordered by (creation time, id).
//!
//! Levels live in a vector sorted so that the best level is last (cheap to reach, cheap to add
//! and drop near the top, where the action is); orders live in a slab of nodes linked into
//! their level's queue. Removing an order from the middle of a queue only marks its node (its
//! neighbours stay untouched, which saves two cache misses on a cancel); marked nodes are
//! unlinked when they reach the head, when their level empties, or when they outnumber the live
//! ones, so the work stays O(1) amortized and memory stays bounded. Nothing here allocates per
//! operation once the slab and level vectors have grown.

use super::order::{OrderId, Side};

/// A resting order's place in the ladder.
pub type Slot = u32;

const NIL: u32 = u32::MAX;

/// A resting order as the ladder sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resting {
    pub id: OrderId,
    /// The book's handle of the order (the ladder only carries it).
    pub entry: u32,
    pub side: Side,
    pub price: u64,
    pub created_millis: u64,
    pub remaining: u64,
}

#[derive(Debug, Clone)]
struct Node {
    resting: Resting,
    prev: u32,
    next: u32,
    /// Removed, not yet unlinked.
    dead: bool,
}

/// One price on one side: the sum of what rests there and its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Level {
    /// Sorts levels so the best is last: the price for bids, its complement for asks.
    key: u64,
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

/// Both sides of one market.
#[derive(Debug, Clone, Default)]
pub struct Ladder {
    bids: Vec<Level>,
    asks: Vec<Level>,
    nodes: Vec<Node>,
    free: Vec<u32>,
    live: usize,
}

fn level_key(side: Side, price: u64) -> u64 {
    match side {
        Side::Bid => price,
        Side::Ask => !price,
    }
}

impl Ladder {
    pub fn new() -> Ladder {
        Ladder::default()
    }

    fn levels(&self, side: Side) -> &Vec<Level> {
        match side {
            Side::Bid => &self.bids,
            Side::Ask => &self.asks,
        }
    }

    fn levels_mut(&mut self, side: Side) -> &mut Vec<Level> {
        match side {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
        }
    }

    /// How many orders rest on both sides.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Puts an order in its place: behind every order at its price made earlier (or at the same
    /// time with a smaller id).
    pub fn insert(&mut self, resting: Resting) -> Slot {
        let slot = match self.free.pop() {
            Some(slot) => {
                self.nodes[slot as usize] = Node {
                    resting,
                    prev: NIL,
                    next: NIL,
                    dead: false,
                };
                slot
            }
            None => {
                self.nodes.push(Node {
                    resting,
                    prev: NIL,
                    next: NIL,
                    dead: false,
                });
                (self.nodes.len() - 1) as u32
            }
        };
        let key = level_key(resting.side, resting.price);
        let levels = match resting.side {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
        };
        let at = match levels.binary_search_by_key(&key, |level| level.key) {
            Ok(at) => at,
            Err(at) => {
                levels.insert(
                    at,
                    Level {
                        key,
                        price: resting.price,
                        head: NIL,
                        tail: NIL,
                        total: 0,
                        count: 0,
                        dead: 0,
                    },
                );
                at
            }
        };
        let level = &mut levels[at];
        level.total += u128::from(resting.remaining);
        level.count += 1;
        self.live += 1;
        // Orders mostly arrive in time order: walk back from the tail to the first that sorts
        // before the new one.
        let rank = (resting.created_millis, resting.id);
        let mut before = level.tail;
        while before != NIL {
            let node = &self.nodes[before as usize].resting;
            if (node.created_millis, node.id) < rank {
                break;
            }
            before = self.nodes[before as usize].prev;
        }
        let after = if before == NIL {
            level.head
        } else {
            self.nodes[before as usize].next
        };
        if before == NIL {
            level.head = slot;
        } else {
            self.nodes[before as usize].next = slot;
        }
        if after == NIL {
            level.tail = slot;
        } else {
            self.nodes[after as usize].prev = slot;
        }
        let node = &mut self.nodes[slot as usize];
        node.prev = before;
        node.next = after;
        slot
    }

    fn level_index(&self, side: Side, price: u64) -> usize {
        self.levels(side)
            .binary_search_by_key(&level_key(side, price), |level| level.key)
            .expect("a resting order's level exists")
    }

    /// Takes an order out.
    pub fn remove(&mut self, slot: Slot) -> Resting {
        let node = &mut self.nodes[slot as usize];
        debug_assert!(!node.dead, "a slot is removed once");
        node.dead = true;
        let resting = node.resting;
        let at_head = node.prev == NIL;
        let side = resting.side;
        let at = self.level_index(side, resting.price);
        let level = &mut self.levels_mut(side)[at];
        level.total -= u128::from(resting.remaining);
        level.count -= 1;
        level.dead += 1;
        let level = *level;
        self.live -= 1;
        if level.count == 0 {
            // Free the whole queue: every node in it is dead now.
            let mut slot = level.head;
            while slot != NIL {
                self.free.push(slot);
                slot = self.nodes[slot as usize].next;
            }
            self.levels_mut(side).remove(at);
        } else if at_head {
            self.unlink_dead_heads(side, at);
        } else if level.dead > level.count + DEAD_SLACK {
            self.compact(side, at);
        }
        resting
    }

    /// Unlinks `slot` from level `at` of `side` and frees it.
    fn unlink(&mut self, side: Side, at: usize, slot: Slot) {
        let Node { prev, next, .. } = self.nodes[slot as usize];
        if prev != NIL {
            self.nodes[prev as usize].next = next;
        }
        if next != NIL {
            self.nodes[next as usize].prev = prev;
        }
        let level = &mut self.levels_mut(side)[at];
        if prev == NIL {
            level.head = next;
        }
        if next == NIL {
            level.tail = prev;
        }
        level.dead -= 1;
        self.free.push(slot);
    }

    fn unlink_dead_heads(&mut self, side: Side, at: usize) {
        loop {
            let head = self.levels(side)[at].head;
            if head == NIL || !self.nodes[head as usize].dead {
                return;
            }
            self.unlink(side, at, head);
        }
    }

    /// Unlinks every dead node of level `at`.
    fn compact(&mut self, side: Side, at: usize) {
        let mut slot = self.levels(side)[at].head;
        while slot != NIL {
            let next = self.nodes[slot as usize].next;
            if self.nodes[slot as usize].dead {
                self.unlink(side, at, slot);
            }
            slot = next;
        }
    }

    /// Changes what is left of a resting order (it keeps its place in the queue).
    pub fn set_remaining(&mut self, slot: Slot, remaining: u64) {
        let resting = self.nodes[slot as usize].resting;
        let at = self.level_index(resting.side, resting.price);
        let level = &mut self.levels_mut(resting.side)[at];
        level.total = level.total - u128::from(resting.remaining) + u128::from(remaining);
        self.nodes[slot as usize].resting.remaining = remaining;
    }

    /// The resting order in `slot`.
    pub fn get(&self, slot: Slot) -> &Resting {
        &self.nodes[slot as usize].resting
    }

    /// The best price of a side and what rests there.
    pub fn best(&self, side: Side) -> Option<Depth> {
        self.levels(side).last().map(depth)
    }

    /// A side's levels, best first.
    pub fn depth(&self, side: Side) -> impl Iterator<Item = Depth> + '_ {
        self.levels(side).iter().rev().map(depth)
    }

    /// A side's orders in priority order: best price first, then earliest.
    pub fn priority(&self, side: Side) -> impl Iterator<Item = (Slot, &Resting)> + '_ {
        self.levels(side).iter().rev().flat_map(move |level| {
            let mut slot = level.head;
            core::iter::from_fn(move || loop {
                if slot == NIL {
                    return None;
                }
                let node = &self.nodes[slot as usize];
                let here = slot;
                slot = node.next;
                if !node.dead {
                    return Some((here, &node.resting));
                }
            })
        })
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

    fn resting(n: u8, side: Side, price: u64, created_millis: u64) -> Resting {
        Resting {
            id: OrderId([n; 32]),
            entry: u32::from(n),
            side,
            price,
            created_millis,
            remaining: 10,
        }
    }

    fn ids(ladder: &Ladder, side: Side) -> Vec<u8> {
        ladder.priority(side).map(|(_, r)| r.id.0[0]).collect()
    }

    #[test]
    fn best_price_first_then_earliest_then_smallest_id() {
        let mut ladder = Ladder::new();
        ladder.insert(resting(1, Side::Ask, 105, 10));
        ladder.insert(resting(2, Side::Ask, 100, 30));
        ladder.insert(resting(3, Side::Ask, 100, 20));
        ladder.insert(resting(5, Side::Ask, 100, 20));
        ladder.insert(resting(4, Side::Ask, 100, 20));
        ladder.insert(resting(6, Side::Bid, 90, 5));
        ladder.insert(resting(7, Side::Bid, 95, 50));
        assert_eq!(ids(&ladder, Side::Ask), [3, 4, 5, 2, 1]);
        assert_eq!(ids(&ladder, Side::Bid), [7, 6]);
        assert_eq!(ladder.best(Side::Ask).unwrap().price, 100);
        assert_eq!(ladder.best(Side::Ask).unwrap().total, 40);
        assert_eq!(ladder.best(Side::Bid).unwrap().price, 95);
    }

    #[test]
    fn removed_orders_in_the_middle_are_skipped_then_compacted() {
        let mut ladder = Ladder::new();
        let slots: Vec<Slot> = (0..100u8)
            .map(|n| ladder.insert(resting(n, Side::Ask, 100, u64::from(n))))
            .collect();
        // Remove every order but the first and the last, from the middle outwards.
        for &slot in &slots[1..99] {
            ladder.remove(slot);
        }
        assert_eq!(ids(&ladder, Side::Ask), [0, 99]);
        assert_eq!(ladder.len(), 2);
        assert_eq!(ladder.best(Side::Ask).unwrap().total, 20);
        assert!(
            ladder.free.len() >= 98 - DEAD_SLACK as usize - 2,
            "compaction freed the dead nodes"
        );
        // The head goes: the dead behind it go too.
        ladder.remove(slots[0]);
        assert_eq!(ids(&ladder, Side::Ask), [99]);
        assert_eq!(ladder.levels(Side::Ask)[0].dead, 0);
        ladder.remove(slots[99]);
        assert!(ladder.is_empty() && ladder.best(Side::Ask).is_none());
        assert_eq!(ladder.free.len(), 100, "every slot is free again");
    }

    #[test]
    fn removing_and_resizing_keeps_levels_and_totals_right() {
        let mut ladder = Ladder::new();
        let a = ladder.insert(resting(1, Side::Bid, 100, 1));
        let b = ladder.insert(resting(2, Side::Bid, 100, 2));
        let c = ladder.insert(resting(3, Side::Bid, 100, 3));
        ladder.set_remaining(b, 4);
        assert_eq!(ladder.best(Side::Bid).unwrap().total, 24);
        assert_eq!(ladder.remove(b).id, OrderId([2; 32]));
        assert_eq!(ids(&ladder, Side::Bid), [1, 3]);
        ladder.remove(a);
        ladder.remove(c);
        assert!(ladder.best(Side::Bid).is_none());
        assert!(ladder.is_empty());
        // Slots are reused.
        let d = ladder.insert(resting(4, Side::Bid, 99, 1));
        assert!(d <= 2);
        assert_eq!(ids(&ladder, Side::Bid), [4]);
    }
}
