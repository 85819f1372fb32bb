//! The block index: every header the node accepted, as a tree rooted at genesis, with the
//! height, cumulative work and validation status of each.

use std::collections::HashMap;

use bitcoin::block::Header;
use bitcoin::{BlockHash, Work};

/// How far a block got through validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockStatus {
    /// Only the header is known and valid.
    Header,
    /// The full block is stored and passed the context-free checks.
    Data,
    /// The block connected to the chain at least once.
    Connected,
    /// The block, or an ancestor, broke a rule: never build on it.
    Invalid,
}

/// One header of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// The header.
    pub header: Header,
    /// Its height (genesis is 0).
    pub height: u32,
    /// The work of the chain from genesis up to and including this block.
    pub chain_work: Work,
    /// How far it got through validation.
    pub status: BlockStatus,
}

/// Every header known, keyed by hash.
#[derive(Debug, Clone)]
pub struct BlockIndex {
    entries: HashMap<BlockHash, IndexEntry>,
    children: HashMap<BlockHash, Vec<BlockHash>>,
    /// The valid header with the most work (the first seen among equals).
    best: BlockHash,
}

impl BlockIndex {
    /// An index holding only `genesis`, with its data.
    pub fn new(genesis: Header) -> BlockIndex {
        let mut index = BlockIndex {
            entries: HashMap::new(),
            children: HashMap::new(),
            best: genesis.block_hash(),
        };
        index.entries.insert(
            genesis.block_hash(),
            IndexEntry {
                header: genesis,
                height: 0,
                chain_work: genesis.work(),
                status: BlockStatus::Connected,
            },
        );
        index
    }

    /// The entry of `hash`, if known.
    pub fn get(&self, hash: &BlockHash) -> Option<&IndexEntry> {
        self.entries.get(hash)
    }

    /// Whether `hash` is known.
    pub fn contains(&self, hash: &BlockHash) -> bool {
        self.entries.contains_key(hash)
    }

    /// The number of headers known.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the index is empty (never: it holds at least genesis).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds `header`, whose parent must be known; returns its entry.
    pub(crate) fn insert(&mut self, header: Header) -> &IndexEntry {
        let hash = header.block_hash();
        if self.entries.contains_key(&hash) {
            return &self.entries[&hash];
        }
        let parent = &self.entries[&header.prev_blockhash];
        let entry = IndexEntry {
            header,
            height: parent.height + 1,
            chain_work: parent.chain_work + header.work(),
            status: if parent.status == BlockStatus::Invalid {
                BlockStatus::Invalid
            } else {
                BlockStatus::Header
            },
        };
        self.children
            .entry(header.prev_blockhash)
            .or_default()
            .push(hash);
        if entry.status != BlockStatus::Invalid && entry.chain_work > self.best_entry().chain_work {
            self.best = hash;
        }
        self.entries.entry(hash).or_insert(entry)
    }

    pub(crate) fn set_status(&mut self, hash: &BlockHash, status: BlockStatus) {
        if let Some(entry) = self.entries.get_mut(hash) {
            entry.status = status;
        }
    }

    /// Marks `hash` and every descendant invalid.
    pub(crate) fn invalidate(&mut self, hash: &BlockHash) {
        let mut pending = vec![*hash];
        while let Some(hash) = pending.pop() {
            self.set_status(&hash, BlockStatus::Invalid);
            pending.extend(self.children.get(&hash).into_iter().flatten().copied());
        }
        if self.best_entry().status == BlockStatus::Invalid {
            let (best, _) = self
                .entries
                .iter()
                .filter(|(_, entry)| entry.status != BlockStatus::Invalid)
                .max_by(|(a_hash, a), (b_hash, b)| {
                    a.chain_work
                        .cmp(&b.chain_work)
                        .then_with(|| b_hash.cmp(a_hash))
                })
                .expect("genesis is valid");
            self.best = *best;
        }
    }

    /// The hash of the valid header with the most work: where sync heads.
    pub fn best_header(&self) -> BlockHash {
        self.best
    }

    fn best_entry(&self) -> &IndexEntry {
        &self.entries[&self.best]
    }

    /// The children of `hash`.
    pub fn children(&self, hash: &BlockHash) -> &[BlockHash] {
        self.children.get(hash).map_or(&[], Vec::as_slice)
    }

    /// The ancestor of `hash` at `height` (`hash` itself at its own height).
    pub fn ancestor(&self, hash: &BlockHash, height: u32) -> Option<BlockHash> {
        let mut current = *hash;
        let mut entry = self.get(&current)?;
        if height > entry.height {
            return None;
        }
        while entry.height > height {
            current = entry.header.prev_blockhash;
            entry = self.get(&current)?;
        }
        Some(current)
    }

    /// The median of the timestamps of `hash` and up to ten of its ancestors (BIP113).
    pub fn median_time_past(&self, hash: &BlockHash) -> u32 {
        let mut times = Vec::with_capacity(11);
        let mut current = self.get(hash);
        while let Some(entry) = current {
            times.push(entry.header.time);
            if times.len() == 11 || entry.height == 0 {
                break;
            }
            current = self.get(&entry.header.prev_blockhash);
        }
        times.sort_unstable();
        times[times.len() / 2]
    }

    /// The last common ancestor of `a` and `b`.
    pub fn fork_point(&self, a: &BlockHash, b: &BlockHash) -> Option<BlockHash> {
        let height = self.get(a)?.height.min(self.get(b)?.height);
        let mut a = self.ancestor(a, height)?;
        let mut b = self.ancestor(b, height)?;
        while a != b {
            a = self.get(&a)?.header.prev_blockhash;
            b = self.get(&b)?.header.prev_blockhash;
        }
        Some(a)
    }
}
