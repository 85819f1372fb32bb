//! The storage model: named key-value tables and atomic write batches.
//!
//! The core never touches a database. Its state machines produce [`WriteBatch`]es and consume
//! data the driver loaded; the browser applies a batch in one IndexedDB read-write transaction,
//! the native node in one embedded-database transaction. A batch is applied whole or not at all.

use core::fmt;

use bitcoin::BlockHash;

use crate::chain::state::Chain;

/// A named key-value table. Keys and values are bytes; their encodings belong to the module
/// that owns the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Table(&'static str);

impl Table {
    /// Facts about the store itself (schema version, network), and the peer's identity key.
    pub const META: Table = Table("meta");
    /// The active chain's blocks: [`block_key`] (the height) to the consensus-encoded block.
    pub const BLOCKS: Table = Table("blocks");
    /// The wallet: its vault (the encrypted seed) and its metadata.
    pub const WALLET: Table = Table("wallet");
    /// The market's open orders: order id to the order and its winning update, as
    /// `MarketRelay::kept` encodes them.
    pub const BOOK: Table = Table("book");

    /// Every table, in the order a driver creates them.
    pub const ALL: [Table; 4] = [Table::META, Table::BLOCKS, Table::WALLET, Table::BOOK];

    /// The table's name, as drivers name it in their database.
    pub fn name(self) -> &'static str {
        self.0
    }
}

/// The version of the schema the tables above form. A driver that finds an older version
/// upgrades the store before use: version 2 added `blocks` and `wallet`, version 3 `book`
/// (created empty).
pub const SCHEMA_VERSION: u32 = 3;

/// The key of the block at `height` in [`Table::BLOCKS`]: big-endian, so keys sort by height.
pub fn block_key(height: u32) -> [u8; 4] {
    height.to_be_bytes()
}

/// Keys of [`Table::WALLET`].
pub const VAULT_KEY: &[u8] = b"vault";
pub const METADATA_KEY: &[u8] = b"metadata";
/// The wallet's own unconfirmed transactions (consensus-encoded, one after another), so a reload
/// shows them before any peer is reached.
pub const UNCONFIRMED_KEY: &[u8] = b"unconfirmed";
/// The trader's desk: its trades and the fills a reorganisation could reopen
/// ([`crate::market::record::DeskRecord`]).
pub const DESK_KEY: &[u8] = b"desk";

/// Keeps a store's [`Table::BLOCKS`] in step with a chain: knows which blocks the store holds
/// and writes only what changed, dropping what a reorganisation left.
#[derive(Debug, Clone, Default)]
pub struct ChainSaver {
    /// The hashes of the stored blocks, by height (genesis, never stored, first).
    saved: Vec<BlockHash>,
}

impl ChainSaver {
    /// A saver for a store holding exactly `chain`'s active blocks (as just loaded).
    pub fn holding(chain: &Chain) -> ChainSaver {
        ChainSaver {
            saved: (0..=chain.height())
                .map(|height| chain.hash_at(height).expect("at most the tip"))
                .collect(),
        }
    }

    /// The writes that bring the store to `chain`'s active chain: deletes above the last
    /// block both agree on, puts of the blocks after it. Empty when nothing changed.
    pub fn batch(&mut self, chain: &Chain) -> WriteBatch {
        let mut batch = WriteBatch::new();
        if self.saved.is_empty() {
            self.saved.push(chain.hash_at(0).expect("genesis"));
        }
        let mut common = (self.saved.len() - 1).min(chain.height() as usize);
        while common > 0 && chain.hash_at(common as u32) != Some(self.saved[common]) {
            common -= 1;
        }
        for height in common + 1..self.saved.len() {
            batch.delete(Table::BLOCKS, block_key(height as u32).to_vec());
        }
        self.saved.truncate(common + 1);
        for height in common as u32 + 1..=chain.height() {
            let hash = chain.hash_at(height).expect("at most the tip");
            let block = chain
                .block(&hash)
                .expect("the active chain's blocks are held");
            batch.put(
                Table::BLOCKS,
                block_key(height).to_vec(),
                bitcoin::consensus::serialize(block.as_ref()),
            );
            self.saved.push(hash);
        }
        batch
    }
}

/// Why stored blocks do not rebuild a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoadError {
    /// A stored value is not a block.
    NotABlock { height: u32 },
    /// A stored block does not connect as the next block of the chain.
    Rejected { height: u32, reason: String },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::NotABlock { height } => {
                write!(f, "the stored block {height} is not a block")
            }
            LoadError::Rejected { height, reason } => {
                write!(f, "the stored block {height} is not valid: {reason}")
            }
        }
    }
}

impl std::error::Error for LoadError {}

/// Connects the stored block `bytes` as the next block of `chain` (loading is the same
/// validation as receiving, so a damaged or altered store cannot slip in a bad block).
pub fn load_block(chain: &mut Chain, bytes: &[u8], now_secs: u32) -> Result<(), LoadError> {
    let height = chain.height() + 1;
    let block: bitcoin::Block =
        bitcoin::consensus::deserialize(bytes).map_err(|_| LoadError::NotABlock { height })?;
    let rejected = |reason: String| LoadError::Rejected { height, reason };
    let accepted = chain
        .accept_block(block, now_secs)
        .map_err(|err| rejected(err.to_string()))?;
    if let Some((_, err)) = accepted.invalid.first() {
        return Err(rejected(err.to_string()));
    }
    if chain.height() != height {
        return Err(rejected("it does not extend the stored chain".into()));
    }
    Ok(())
}

/// One change to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Set `key` in `table` to `value`.
    Put {
        table: Table,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    /// Remove `key` from `table`, if present.
    Delete { table: Table, key: Vec<u8> },
}

/// Changes that must be applied together, in order, or not at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    writes: Vec<Write>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put of `value` at `key` in `table`.
    pub fn put(&mut self, table: Table, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.writes.push(Write::Put {
            table,
            key: key.into(),
            value: value.into(),
        });
    }

    /// Adds a delete of `key` in `table`.
    pub fn delete(&mut self, table: Table, key: impl Into<Vec<u8>>) {
        self.writes.push(Write::Delete {
            table,
            key: key.into(),
        });
    }

    /// Appends the writes of `other` after this batch's own.
    pub fn merge(&mut self, other: WriteBatch) {
        self.writes.extend(other.writes);
    }

    /// Whether the batch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// The writes, in the order they must be applied.
    pub fn writes(&self) -> &[Write] {
        &self.writes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{block_on, TestKey};
    use crate::Network;

    const NOW: u32 = 2_000_000_000;

    /// Applies `batch` to a map standing in for the table.
    fn apply(table: &mut std::collections::BTreeMap<Vec<u8>, Vec<u8>>, batch: WriteBatch) {
        for write in batch.writes() {
            match write {
                Write::Put { key, value, .. } => {
                    table.insert(key.clone(), value.clone());
                }
                Write::Delete { key, .. } => {
                    table.remove(key);
                }
            }
        }
    }

    #[test]
    fn the_saver_follows_a_reorganisation_and_the_blocks_load_back() {
        let mut chain = Chain::new(Network::Test);
        let payout = TestKey::new(1).p2wpkh();
        for tag in 0..3 {
            let block = block_on(&chain, chain.tip(), vec![], 0, &payout, tag);
            chain.accept_block(block, NOW).unwrap();
        }
        let mut saver = ChainSaver::default();
        let mut table = std::collections::BTreeMap::new();
        apply(&mut table, saver.batch(&chain));
        assert_eq!(table.len(), 3);
        assert!(saver.batch(&chain).is_empty(), "nothing changed");

        // A longer branch from height 1 replaces blocks 2 and 3.
        let mut parent = chain.hash_at(1).unwrap();
        for tag in 10..13 {
            let block = block_on(&chain, parent, vec![], 0, &payout, tag);
            parent = block.block_hash();
            chain.accept_block(block, NOW).unwrap();
        }
        assert_eq!(chain.height(), 4);
        let batch = saver.batch(&chain);
        let deletes = batch
            .writes()
            .iter()
            .filter(|write| matches!(write, Write::Delete { .. }))
            .count();
        assert_eq!((deletes, batch.writes().len() - deletes), (2, 3));
        apply(&mut table, batch);

        let mut loaded = Chain::new(Network::Test);
        for bytes in table.values() {
            load_block(&mut loaded, bytes, NOW).unwrap();
        }
        assert_eq!(loaded.tip(), chain.tip());
        assert!(ChainSaver::holding(&loaded).batch(&chain).is_empty());

        let mut again = Chain::new(Network::Test);
        assert_eq!(
            load_block(&mut again, b"junk", NOW),
            Err(LoadError::NotABlock { height: 1 })
        );
        let second = table.values().nth(1).unwrap();
        assert!(matches!(
            load_block(&mut again, second, NOW),
            Err(LoadError::Rejected { height: 1, .. })
        ));
    }

    #[test]
    fn merge_keeps_order() {
        let mut first = WriteBatch::new();
        first.put(Table::META, b"a".to_vec(), b"1".to_vec());
        let mut second = WriteBatch::new();
        second.delete(Table::META, b"a".to_vec());
        first.merge(second);
        assert_eq!(first.writes().len(), 2);
        assert!(matches!(first.writes()[1], Write::Delete { .. }));
        assert!(!first.is_empty());
        assert!(WriteBatch::new().is_empty());
    }
}
