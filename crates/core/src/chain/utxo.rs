//! The set of unspent outputs, and the undo data that makes connecting a block reversible.

use bitcoin::{OutPoint, TxOut};

use super::assets::AssetAmounts;
use crate::hashing::{KeyedHashing, KeyedMap};

/// An unspent output with what consensus needs to know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coin {
    /// The output itself: value and script.
    pub output: TxOut,
    /// The height of the block that created it.
    pub height: u32,
    /// Whether a coinbase created it (such coins must mature before they are spent).
    pub is_coinbase: bool,
    /// The asset units it holds.
    pub assets: AssetAmounts,
}

/// The coins a connected block spent, per transaction after the coinbase, in input order.
/// Disconnecting the block puts them back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockUndo {
    /// `spent[i][j]` is the coin input `j` of transaction `i + 1` spent.
    pub spent: Vec<Vec<Coin>>,
}

/// The unspent outputs of the active chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UtxoSet {
    /// Keyed once a node holds the chain ([`UtxoSet::rekey`]): a peer grinds the txids of
    /// the transactions it has mined.
    coins: KeyedMap<OutPoint, Coin>,
}

impl Default for UtxoSet {
    fn default() -> UtxoSet {
        UtxoSet::new()
    }
}

impl UtxoSet {
    /// An empty set, hashed with [`KeyedHashing::fixed`] until rekeyed.
    pub fn new() -> UtxoSet {
        UtxoSet {
            coins: KeyedMap::with_hasher(KeyedHashing::fixed()),
        }
    }

    #[cfg(test)]
    pub(crate) fn hashing(&self) -> &KeyedHashing {
        self.coins.hasher()
    }

    /// The same coins, hashed with `hashing` from now on.
    pub fn rekey(&mut self, hashing: KeyedHashing) {
        let mut coins = KeyedMap::with_capacity_and_hasher(self.coins.len(), hashing);
        coins.extend(self.coins.drain());
        self.coins = coins;
    }

    /// The coin at `outpoint`, if unspent.
    pub fn get(&self, outpoint: &OutPoint) -> Option<&Coin> {
        self.coins.get(outpoint)
    }

    /// Whether `outpoint` is unspent.
    pub fn contains(&self, outpoint: &OutPoint) -> bool {
        self.coins.contains_key(outpoint)
    }

    /// The number of unspent outputs.
    pub fn len(&self) -> usize {
        self.coins.len()
    }

    /// Whether no output is unspent.
    pub fn is_empty(&self) -> bool {
        self.coins.is_empty()
    }

    /// Every unspent output, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&OutPoint, &Coin)> {
        self.coins.iter()
    }

    pub(crate) fn insert(&mut self, outpoint: OutPoint, coin: Coin) {
        self.coins.insert(outpoint, coin);
    }

    pub(crate) fn remove(&mut self, outpoint: &OutPoint) -> Option<Coin> {
        self.coins.remove(outpoint)
    }
}

#[cfg(test)]
mod tests {
    use bitcoin::hashes::Hash;
    use bitcoin::{Amount, ScriptBuf, Txid};

    use super::*;

    #[test]
    fn rekeying_keeps_every_coin() {
        let mut set = UtxoSet::new();
        for n in 0..100u32 {
            let coin = Coin {
                output: TxOut {
                    value: Amount::from_sat(n.into()),
                    script_pubkey: ScriptBuf::new(),
                },
                height: n,
                is_coinbase: false,
                assets: AssetAmounts::none(),
            };
            set.insert(OutPoint::new(Txid::from_byte_array([n as u8; 32]), n), coin);
        }
        let before = set.clone();
        set.rekey(KeyedHashing::new(7));
        assert_eq!(set, before);
        assert_eq!(set.len(), 100);
        let outpoint = OutPoint::new(Txid::from_byte_array([42; 32]), 42);
        assert_eq!(set.get(&outpoint).map(|coin| coin.height), Some(42));
        assert_eq!(set.remove(&outpoint).map(|coin| coin.height), Some(42));
        assert!(!set.contains(&outpoint));
    }
}
