//! Deduplication of routed messages: each id is remembered for as long as a copy may still be
//! accepted (its age window), and no more ids than a bound.

use std::collections::VecDeque;

use crate::hashing::{KeyedHashing, KeyedSet};

/// How old (or how far ahead) a routed message may be.
pub const MAX_ROUTED_AGE_MILLIS: u64 = 5 * 60_000;
/// Ids remembered at most (the oldest go first).
pub(super) const MAX_SEEN: usize = 100_000;

#[derive(Debug, Clone)]
pub struct Seen {
    /// Keyed: peers pick the ids.
    ids: KeyedSet<[u8; 32]>,
    order: VecDeque<([u8; 32], u64)>,
}

impl Seen {
    pub fn new(hashing: KeyedHashing) -> Seen {
        Seen {
            ids: KeyedSet::with_hasher(hashing),
            order: VecDeque::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn contains(&self, id: &[u8; 32]) -> bool {
        self.ids.contains(id)
    }

    pub fn insert(&mut self, id: [u8; 32], now_millis: u64) {
        if self.ids.insert(id) {
            self.order.push_back((id, now_millis));
            if self.order.len() > MAX_SEEN {
                let (oldest, _) = self.order.pop_front().expect("not empty");
                self.ids.remove(&oldest);
            }
        }
    }

    /// Forgets ids older than twice the window: a copy that old is refused by its age.
    pub fn expire(&mut self, now_millis: u64) {
        while let Some(&(id, seen)) = self.order.front() {
            if seen + 2 * MAX_ROUTED_AGE_MILLIS > now_millis {
                break;
            }
            self.order.pop_front();
            self.ids.remove(&id);
        }
    }
}
