//! A bounded memory of transactions whose signatures already verified.
//!
//! A transaction's witness txid commits to its inputs' outpoints and witnesses, and an outpoint
//! always names the same output, so a transaction that verified once (in the mempool) verifies
//! again when its block connects: the check can be skipped. Entries are forgotten oldest first
//! when the cache is full.

use std::collections::VecDeque;

use bitcoin::Wtxid;

use crate::hashing::{KeyedHashing, KeyedSet};

/// Witness txids whose signatures verified.
#[derive(Debug, Clone)]
pub struct SigCache {
    capacity: usize,
    /// Keyed once a node holds the chain ([`SigCache::rekey`]): a peer grinds the wtxids of
    /// valid transactions for free (one the full mempool refuses is verified first).
    verified: KeyedSet<Wtxid>,
    order: VecDeque<Wtxid>,
}

impl SigCache {
    /// A cache remembering at most `capacity` transactions, hashed with
    /// [`KeyedHashing::fixed`] until rekeyed.
    pub fn new(capacity: usize) -> SigCache {
        SigCache {
            capacity,
            verified: KeyedSet::with_capacity_and_hasher(
                capacity.min(1 << 16),
                KeyedHashing::fixed(),
            ),
            order: VecDeque::with_capacity(capacity.min(1 << 16)),
        }
    }

    /// Whether `wtxid`'s signatures are known to verify.
    pub fn contains(&self, wtxid: &Wtxid) -> bool {
        self.verified.contains(wtxid)
    }

    /// Remembers that `wtxid`'s signatures verify.
    pub fn insert(&mut self, wtxid: Wtxid) {
        if self.capacity == 0 || !self.verified.insert(wtxid) {
            return;
        }
        self.order.push_back(wtxid);
        if self.order.len() > self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.verified.remove(&oldest);
            }
        }
    }

    /// The number of transactions remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    #[cfg(test)]
    pub(crate) fn hashing(&self) -> &KeyedHashing {
        self.verified.hasher()
    }

    /// The same entries, hashed with `hashing` from now on.
    pub fn rekey(&mut self, hashing: KeyedHashing) {
        let mut verified = KeyedSet::with_capacity_and_hasher(self.verified.capacity(), hashing);
        verified.extend(self.verified.drain());
        self.verified = verified;
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.verified.clear();
        self.order.clear();
    }
}

impl Default for SigCache {
    /// Room for 100,000 transactions (about 5 MB).
    fn default() -> Self {
        SigCache::new(100_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash;

    fn wtxid(n: u8) -> Wtxid {
        Wtxid::from_byte_array([n; 32])
    }

    #[test]
    fn remembers_up_to_capacity_then_forgets_the_oldest() {
        let mut cache = SigCache::new(2);
        cache.insert(wtxid(1));
        cache.insert(wtxid(2));
        cache.insert(wtxid(1)); // already there: no reordering, no growth
        assert_eq!(cache.len(), 2);
        cache.insert(wtxid(3));
        assert!(!cache.contains(&wtxid(1)));
        assert!(cache.contains(&wtxid(2)) && cache.contains(&wtxid(3)));
        cache.clear();
        assert!(cache.is_empty() && !cache.contains(&wtxid(2)));
    }

    #[test]
    fn rekeying_keeps_what_is_remembered_and_its_order() {
        let mut cache = SigCache::new(3);
        for n in 1..=3 {
            cache.insert(wtxid(n));
        }
        cache.rekey(KeyedHashing::new(7));
        assert!((1..=3).all(|n| cache.contains(&wtxid(n))));
        cache.insert(wtxid(4));
        assert!(!cache.contains(&wtxid(1)), "the oldest goes first still");
        assert!((2..=4).all(|n| cache.contains(&wtxid(n))));
    }

    #[test]
    fn zero_capacity_remembers_nothing() {
        let mut cache = SigCache::new(0);
        cache.insert(wtxid(1));
        assert!(!cache.contains(&wtxid(1)));
    }
}
