//! Hashing for the maps whose keys a peer picks: announced ids, routed message ids, peer ids,
//! the ids of transactions (in the mempool, orphan or refused), update digests, outpoints.
//!
//! A peer that can compute where its keys land in a map can send keys that all land in one
//! place, and then every insert and lookup walks all of them (HashDoS): a few thousand such ids
//! hold a node's thread for seconds. Std's `RandomState` prevents it with a secret key drawn from
//! the system, but on `wasm32-unknown-unknown` std has no randomness to draw: there its keys
//! are the same on every page load. So these maps hash with SipHash-1-3 (std's own hash) keyed
//! by random bytes the driver gives, as every other random choice of the core.

use core::fmt;
use core::hash::BuildHasher;
use std::collections::{HashMap, HashSet};

use siphasher::sip::SipHasher13;

/// Builds SipHash-1-3 hashers with a secret key. It has no `Default`: a map of this kind
/// cannot be made without a key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyedHashing {
    k0: u64,
    k1: u64,
}

impl KeyedHashing {
    /// Hashing keyed by `key`: 64 random bits from the driver, more than a peer can search.
    pub fn new(key: u64) -> KeyedHashing {
        // SipHash takes 128 bits; the second half only has to differ from the first.
        KeyedHashing {
            k0: key,
            k1: key.rotate_left(32) ^ 0x6b65_7965_645f_6d61,
        }
    }

    /// A key known to all, for a map that holds nothing a peer sent until it is given a
    /// secret one (a chain being loaded from the store, or built in a test).
    pub const fn fixed() -> KeyedHashing {
        KeyedHashing { k0: 0, k1: 0 }
    }

    /// Another key derived from this one, for another map: maps that share a key iterate in
    /// the same order, and moving one's keys into a fuller other one in that order makes its
    /// probes collide.
    pub fn derive(&self, n: u64) -> KeyedHashing {
        KeyedHashing::new(self.hash_one(n))
    }
}

/// The key is a secret: it is never printed.
impl fmt::Debug for KeyedHashing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyedHashing(..)")
    }
}

impl BuildHasher for KeyedHashing {
    type Hasher = SipHasher13;

    fn build_hasher(&self) -> SipHasher13 {
        SipHasher13::new_with_keys(self.k0, self.k1)
    }
}

/// A map whose keys a peer picks.
pub type KeyedMap<K, V> = HashMap<K, V, KeyedHashing>;

/// A set whose values a peer picks.
pub type KeyedSet<T> = HashSet<T, KeyedHashing>;

#[cfg(test)]
mod tests {
    use super::*;

    /// Where 32-byte ids land in a table of `buckets` (a power of two) under `hashing`.
    fn buckets(hashing: &KeyedHashing, ids: &[[u8; 32]], buckets: u64) -> HashSet<u64> {
        ids.iter()
            .map(|id| hashing.hash_one(id) & (buckets - 1))
            .collect()
    }

    #[test]
    fn the_same_key_hashes_the_same_and_another_key_differently() {
        let id = [7u8; 32];
        assert_eq!(
            KeyedHashing::new(1).hash_one(id),
            KeyedHashing::new(1).hash_one(id)
        );
        assert_ne!(
            KeyedHashing::new(1).hash_one(id),
            KeyedHashing::new(2).hash_one(id)
        );
        let base = KeyedHashing::new(1);
        assert_ne!(base.derive(0).hash_one(id), base.hash_one(id));
        assert_ne!(base.derive(0).hash_one(id), base.derive(1).hash_one(id));
        assert_eq!(base.derive(5), KeyedHashing::new(1).derive(5));
    }

    /// Ids a peer made to share a bucket under a key it knows are spread under another key:
    /// the attack needs the key.
    #[test]
    fn ids_made_to_collide_under_one_key_spread_under_another() {
        let known = KeyedHashing::new(0x5eed);
        let mut colliding = Vec::new();
        let mut candidate = 0u64;
        while colliding.len() < 64 {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&candidate.to_le_bytes());
            if known.hash_one(id) & 255 == 0 {
                colliding.push(id);
            }
            candidate += 1;
        }
        assert_eq!(buckets(&known, &colliding, 256).len(), 1);
        let secret = KeyedHashing::new(0x5ec7e7);
        // 64 ids thrown into 256 buckets land in about 57 distinct ones.
        assert!(buckets(&secret, &colliding, 256).len() > 40);
    }

    #[test]
    fn the_key_is_not_printed() {
        let hashing = KeyedHashing::new(0x1234_5678);
        assert_eq!(format!("{hashing:?}"), "KeyedHashing(..)");
    }
}
