//! The chain state: the block tree, the active chain with its UTXO set and asset registry, and
//! fork choice. A block that gives a branch more cumulative work than the active chain makes
//! that branch active: blocks are disconnected back to the fork and the branch's blocks
//! connected. If one of them turns out invalid, it and its descendants are marked so and the
//! best remaining valid chain becomes active again.

use core::fmt;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bitcoin::block::Header;
use bitcoin::secp256k1::{Secp256k1, VerifyOnly};
use bitcoin::{Block, BlockHash, CompactTarget, Transaction, Txid};

use super::assets::{AssetId, AssetRecord, Issuance};
use super::block::{check_block, connect_block, disconnect_block, BlockError, ConnectContext};
use super::difficulty::{next_bits, Anchor, Schedule};
use super::genesis::GENESIS_TIME;
use super::index::{BlockIndex, BlockStatus, IndexEntry};
use super::sigcache::SigCache;
use super::utxo::{BlockUndo, UtxoSet};
use super::{Network, Params};
use crate::hashing::KeyedHashing;

/// How far ahead of the local clock a block's time may be, in seconds.
pub const MAX_FUTURE_BLOCK_TIME: u32 = 2 * 60 * 60;

/// Why a header is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderError {
    /// The previous block is unknown.
    UnknownParent(BlockHash),
    /// The previous block is invalid, so this one is too.
    InvalidParent(BlockHash),
    /// This header is already known, as invalid.
    KnownInvalid(BlockHash),
    /// The header's version is below 1.
    ObsoleteVersion(i32),
    /// `bits` is not what the difficulty algorithm requires here.
    BadBits {
        expected: CompactTarget,
        found: CompactTarget,
    },
    /// The hash does not meet the target.
    BadProofOfWork,
    /// The time is not above the median of the previous eleven blocks.
    TimeTooOld { time: u32, median: u32 },
    /// The time is more than two hours ahead of the local clock.
    TimeTooNew { time: u32, limit: u32 },
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::UnknownParent(hash) => write!(f, "the previous block {hash} is unknown"),
            HeaderError::InvalidParent(hash) => write!(f, "the previous block {hash} is invalid"),
            HeaderError::KnownInvalid(hash) => write!(f, "block {hash} is known to be invalid"),
            HeaderError::ObsoleteVersion(version) => {
                write!(f, "block version {version} is obsolete")
            }
            HeaderError::BadBits { expected, found } => write!(
                f,
                "bits {:#010x} differ from the required {:#010x}",
                found.to_consensus(),
                expected.to_consensus()
            ),
            HeaderError::BadProofOfWork => f.write_str("the hash does not meet the target"),
            HeaderError::TimeTooOld { time, median } => {
                write!(f, "time {time} is not above the median time past {median}")
            }
            HeaderError::TimeTooNew { time, limit } => {
                write!(
                    f,
                    "time {time} is more than two hours ahead (limit {limit})"
                )
            }
        }
    }
}

impl std::error::Error for HeaderError {}

/// Why a block is refused outright.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AcceptError {
    /// Its header is invalid.
    Header(HeaderError),
    /// It breaks a rule that needs no context.
    Block(BlockError),
    /// It is already known to be invalid.
    KnownInvalid,
}

impl fmt::Display for AcceptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcceptError::Header(err) => write!(f, "invalid header: {err}"),
            AcceptError::Block(err) => write!(f, "invalid block: {err}"),
            AcceptError::KnownInvalid => f.write_str("the block is known to be invalid"),
        }
    }
}

impl std::error::Error for AcceptError {}

impl From<HeaderError> for AcceptError {
    fn from(err: HeaderError) -> Self {
        AcceptError::Header(err)
    }
}

/// How the active chain changed: blocks left it (tip first) and entered it (oldest first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TipChange {
    /// Blocks no longer in the active chain, from the old tip down.
    pub disconnected: Vec<Arc<Block>>,
    /// Blocks now in the active chain, from the fork up to the new tip.
    pub connected: Vec<Arc<Block>>,
}

impl TipChange {
    /// Whether the active chain did not change.
    pub fn is_empty(&self) -> bool {
        self.disconnected.is_empty() && self.connected.is_empty()
    }

    /// Transactions that were in the chain and no longer are (in disconnected blocks and not
    /// in connected ones), in chain order.
    pub fn transactions_left(&self) -> Vec<Txid> {
        let entered = txids(&self.connected);
        let mut left: Vec<Txid> = self
            .disconnected
            .iter()
            .rev()
            .flat_map(|block| block_txids(block))
            .collect();
        left.retain(|txid| !entered.contains(txid));
        left
    }

    /// Transactions that entered the chain (in connected blocks and not in disconnected ones),
    /// in chain order.
    pub fn transactions_entered(&self) -> Vec<Txid> {
        let left = txids(&self.disconnected);
        let mut entered: Vec<Txid> = self
            .connected
            .iter()
            .flat_map(|block| block_txids(block))
            .collect();
        entered.retain(|txid| !left.contains(txid));
        entered
    }
}

fn block_txids(block: &Block) -> impl Iterator<Item = Txid> + '_ {
    block.txdata.iter().map(Transaction::compute_txid)
}

fn txids(blocks: &[Arc<Block>]) -> HashSet<Txid> {
    blocks.iter().flat_map(|block| block_txids(block)).collect()
}

/// The outcome of accepting a block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accepted {
    /// How the active chain changed.
    pub change: TipChange,
    /// Blocks that failed to connect while trying a heavier branch, with the reason.
    pub invalid: Vec<(BlockHash, BlockError)>,
}

/// The validated chain of one network.
pub struct Chain {
    params: &'static Params,
    anchor: Anchor,
    schedule: Schedule,
    index: BlockIndex,
    active: Vec<BlockHash>,
    blocks: HashMap<BlockHash, Arc<Block>>,
    undo: HashMap<BlockHash, BlockUndo>,
    utxo: UtxoSet,
    assets: HashMap<AssetId, Issuance>,
    /// Blocks with data whose ancestors all have data: where the active chain may move.
    candidates: HashSet<BlockHash>,
    secp: Secp256k1<VerifyOnly>,
    sigcache: SigCache,
}

impl Chain {
    /// A chain holding only the genesis block of `network`.
    pub fn new(network: Network) -> Chain {
        let params = network.params();
        let genesis = network.genesis_block();
        let hash = genesis.block_hash();
        Chain {
            params,
            anchor: Anchor::genesis(params, GENESIS_TIME),
            schedule: Schedule::of(params),
            index: BlockIndex::new(genesis.header),
            active: vec![hash],
            blocks: HashMap::from([(hash, Arc::new(genesis))]),
            undo: HashMap::new(),
            utxo: UtxoSet::new(),
            assets: HashMap::new(),
            candidates: HashSet::new(),
            secp: Secp256k1::verification_only(),
            sigcache: SigCache::default(),
        }
    }

    /// The network's parameters.
    pub fn params(&self) -> &'static Params {
        self.params
    }

    /// The hash of the active chain's tip.
    pub fn tip(&self) -> BlockHash {
        *self.active.last().expect("genesis is always active")
    }

    /// The height of the active chain's tip.
    pub fn height(&self) -> u32 {
        (self.active.len() - 1) as u32
    }

    /// The index entry of the tip.
    pub fn tip_entry(&self) -> &IndexEntry {
        self.index.get(&self.tip()).expect("the tip is indexed")
    }

    /// The hash of the active block at `height`.
    pub fn hash_at(&self, height: u32) -> Option<BlockHash> {
        self.active.get(height as usize).copied()
    }

    /// Whether `hash` is in the active chain.
    pub fn is_active(&self, hash: &BlockHash) -> bool {
        self.index
            .get(hash)
            .is_some_and(|entry| self.hash_at(entry.height) == Some(*hash))
    }

    /// Hashes from the tip back to genesis, the ten latest one by one and then ever sparser,
    /// so a peer finds the last block both have in one round trip (at most 64 hashes).
    pub fn locator(&self) -> Vec<BlockHash> {
        let mut locator = Vec::new();
        let mut height = i64::from(self.height());
        let mut step = 1;
        while height > 0 && locator.len() < 63 {
            locator.push(self.active[height as usize]);
            if locator.len() >= 10 {
                step *= 2;
            }
            height -= step;
        }
        locator.push(self.active[0]);
        locator
    }

    /// Up to `max` headers of the active chain after the first `locator` hash in it (genesis
    /// if none), ending at `stop` if it comes first.
    pub fn headers_after(
        &self,
        locator: &[BlockHash],
        stop: &BlockHash,
        max: usize,
    ) -> Vec<Header> {
        let start = locator
            .iter()
            .find_map(|hash| self.is_active(hash).then(|| self.index.get(hash)))
            .flatten()
            .map_or(0, |entry| entry.height as usize);
        let mut headers = Vec::new();
        for hash in self.active.iter().skip(start + 1).take(max) {
            headers.push(
                self.index
                    .get(hash)
                    .expect("active blocks are indexed")
                    .header,
            );
            if hash == stop {
                break;
            }
        }
        headers
    }

    /// Whether the block's data is stored.
    pub fn has_block(&self, hash: &BlockHash) -> bool {
        self.blocks.contains_key(hash)
    }

    /// Up to `max` blocks to fetch, oldest first: those on the way from the active chain to the
    /// best header whose data is missing.
    pub fn missing_blocks(&self, max: usize) -> Vec<BlockHash> {
        let best = self.index.best_header();
        let Some(fork) = self.index.fork_point(&self.tip(), &best) else {
            return Vec::new();
        };
        let fork_height = self.index.get(&fork).expect("indexed").height;
        let mut path = Vec::new();
        let mut current = best;
        while current != fork {
            let entry = self.index.get(&current).expect("indexed");
            path.push(current);
            current = entry.header.prev_blockhash;
        }
        debug_assert!(
            path.len() as u32 == self.index.get(&best).map_or(0, |e| e.height) - fork_height
        );
        path.into_iter()
            .rev()
            .filter(|hash| !self.blocks.contains_key(hash))
            .take(max)
            .collect()
    }

    /// The block index (every accepted header).
    pub fn index(&self) -> &BlockIndex {
        &self.index
    }

    /// A stored block.
    pub fn block(&self, hash: &BlockHash) -> Option<&Arc<Block>> {
        self.blocks.get(hash)
    }

    /// The unspent outputs of the active chain.
    pub fn utxo(&self) -> &UtxoSet {
        &self.utxo
    }

    /// What the active chain says about asset `id`.
    pub fn asset(&self, id: &AssetId) -> Option<&Issuance> {
        self.assets.get(id)
    }

    /// Hashes the maps whose keys a peer can grind for little (the UTXO set, the signature
    /// cache) with `hashing` from now on: a node does so with a key from its seed when it
    /// takes the chain. The block maps are left as they are: their keys cost proof of work.
    pub fn rekey(&mut self, hashing: KeyedHashing) {
        self.utxo.rekey(hashing.derive(0));
        self.sigcache.rekey(hashing.derive(1));
    }

    /// The transactions known to verify, shared with the mempool.
    pub fn sigcache_mut(&mut self) -> &mut SigCache {
        &mut self.sigcache
    }

    /// The secp256k1 context the chain verifies with.
    pub fn secp(&self) -> &Secp256k1<VerifyOnly> {
        &self.secp
    }

    /// The median time past of the tip: a transaction for the next block must be final by it.
    pub fn median_time_past(&self) -> u32 {
        self.index.median_time_past(&self.tip())
    }

    /// The `bits` a child of `parent` must carry.
    pub fn next_bits(&self, parent: &BlockHash) -> Option<CompactTarget> {
        let entry = self.index.get(parent)?;
        Some(next_bits(
            &self.anchor,
            &self.schedule,
            entry.height,
            i64::from(entry.header.time),
        ))
    }

    /// Checks `header` against its parent and the clock `now` (Unix seconds) and adds it to the
    /// index. A known header is accepted again without change.
    pub fn accept_header(&mut self, header: &Header, now: u32) -> Result<BlockHash, HeaderError> {
        let hash = header.block_hash();
        if let Some(entry) = self.index.get(&hash) {
            return match entry.status {
                BlockStatus::Invalid => Err(HeaderError::KnownInvalid(hash)),
                _ => Ok(hash),
            };
        }
        let parent = self
            .index
            .get(&header.prev_blockhash)
            .ok_or(HeaderError::UnknownParent(header.prev_blockhash))?;
        if parent.status == BlockStatus::Invalid {
            return Err(HeaderError::InvalidParent(header.prev_blockhash));
        }
        if header.version.to_consensus() < 1 {
            return Err(HeaderError::ObsoleteVersion(header.version.to_consensus()));
        }
        let expected = self
            .next_bits(&header.prev_blockhash)
            .expect("the parent is indexed");
        if header.bits != expected {
            return Err(HeaderError::BadBits {
                expected,
                found: header.bits,
            });
        }
        if header.validate_pow(header.target()).is_err() {
            return Err(HeaderError::BadProofOfWork);
        }
        let median = self.index.median_time_past(&header.prev_blockhash);
        if header.time <= median {
            return Err(HeaderError::TimeTooOld {
                time: header.time,
                median,
            });
        }
        let limit = now.saturating_add(MAX_FUTURE_BLOCK_TIME);
        if header.time > limit {
            return Err(HeaderError::TimeTooNew {
                time: header.time,
                limit,
            });
        }
        self.index.insert(*header);
        Ok(hash)
    }

    /// Accepts `block` (checking its header first) and moves the active chain to the branch
    /// with the most work. `now` is the local clock in Unix seconds.
    pub fn accept_block(&mut self, block: Block, now: u32) -> Result<Accepted, AcceptError> {
        let hash = self
            .accept_header(&block.header, now)
            .map_err(|err| match err {
                HeaderError::KnownInvalid(_) => AcceptError::KnownInvalid,
                other => AcceptError::Header(other),
            })?;
        if self.blocks.contains_key(&hash) {
            return Ok(Accepted::default());
        }
        if let Err(err) = check_block(&block) {
            // A header's proof of work does not vouch for the transactions: the same header
            // with the right transactions may still come, so the header stays valid.
            return Err(AcceptError::Block(err));
        }
        self.blocks.insert(hash, Arc::new(block));
        self.index.set_status(&hash, BlockStatus::Data);
        self.add_candidates(hash);
        Ok(self.activate_best_chain())
    }

    /// Whether every block from `hash` back to the active chain is stored and not invalid.
    fn is_connectable(&self, hash: &BlockHash) -> bool {
        let mut current = *hash;
        while !self.is_active(&current) {
            match self.index.get(&current) {
                Some(entry)
                    if entry.status != BlockStatus::Invalid
                        && self.blocks.contains_key(&current) =>
                {
                    current = entry.header.prev_blockhash;
                }
                _ => return false,
            }
        }
        true
    }

    /// Adds `hash` and its descendants with data as candidates, if `hash` is connectable.
    fn add_candidates(&mut self, hash: BlockHash) {
        if !self.is_connectable(&hash) {
            return;
        }
        let mut pending = vec![hash];
        while let Some(hash) = pending.pop() {
            self.candidates.insert(hash);
            pending.extend(
                self.index
                    .children(&hash)
                    .iter()
                    .filter(|child| self.blocks.contains_key(*child))
                    .copied(),
            );
        }
    }

    /// The valid candidate with the most work (the first seen wins ties, by keeping the tip).
    fn best_candidate(&self) -> Option<BlockHash> {
        let tip_work = self.tip_entry().chain_work;
        self.candidates
            .iter()
            .filter_map(|hash| self.index.get(hash).map(|entry| (hash, entry)))
            .filter(|(_, entry)| {
                entry.status != BlockStatus::Invalid && entry.chain_work > tip_work
            })
            .max_by(|(a_hash, a), (b_hash, b)| {
                a.chain_work
                    .cmp(&b.chain_work)
                    .then_with(|| b_hash.cmp(a_hash))
            })
            .map(|(hash, _)| *hash)
    }

    fn activate_best_chain(&mut self) -> Accepted {
        let old_tip = self.tip();
        let mut invalid = Vec::new();
        while let Some(best) = self.best_candidate() {
            let fork = self.index.fork_point(&self.tip(), &best).expect("one tree");
            let fork_height = self.index.get(&fork).expect("indexed").height;
            while self.height() > fork_height {
                self.disconnect_tip();
            }
            let best_height = self.index.get(&best).expect("indexed").height;
            for height in fork_height + 1..=best_height {
                let hash = self.index.ancestor(&best, height).expect("on the branch");
                if let Err(err) = self.connect_tip(hash) {
                    self.index.invalidate(&hash);
                    invalid.push((hash, err));
                    break;
                }
            }
        }
        let tip_work = self.tip_entry().chain_work;
        let index = &self.index;
        self.candidates.retain(|hash| {
            index.get(hash).is_some_and(|entry| {
                entry.status != BlockStatus::Invalid && entry.chain_work > tip_work
            })
        });
        Accepted {
            change: self.change_since(old_tip),
            invalid,
        }
    }

    /// The net change of the active chain from `old_tip` to the current tip.
    fn change_since(&self, old_tip: BlockHash) -> TipChange {
        let tip = self.tip();
        if tip == old_tip {
            return TipChange::default();
        }
        let fork = self.index.fork_point(&old_tip, &tip).expect("one tree");
        let fork_height = self.index.get(&fork).expect("indexed").height;
        let old_height = self.index.get(&old_tip).expect("indexed").height;
        let disconnected = (fork_height + 1..=old_height)
            .rev()
            .map(|height| {
                let hash = self
                    .index
                    .ancestor(&old_tip, height)
                    .expect("on the old chain");
                Arc::clone(&self.blocks[&hash])
            })
            .collect();
        let connected = (fork_height + 1..=self.height())
            .map(|height| Arc::clone(&self.blocks[&self.active[height as usize]]))
            .collect();
        TipChange {
            disconnected,
            connected,
        }
    }

    fn connect_tip(&mut self, hash: BlockHash) -> Result<(), BlockError> {
        let block = Arc::clone(&self.blocks[&hash]);
        let entry = self.index.get(&hash).expect("indexed");
        debug_assert_eq!(entry.header.prev_blockhash, self.tip());
        let context = ConnectContext {
            params: self.params,
            height: entry.height,
            median_time_past: self.index.median_time_past(&entry.header.prev_blockhash),
            secp: &self.secp,
            sigcache: &self.sigcache,
        };
        let connected = connect_block(&mut self.utxo, &block, &context)?;
        for issued in connected.issued {
            self.assets.insert(issued.id, issued.issuance);
        }
        self.undo.insert(hash, connected.undo);
        self.active.push(hash);
        self.index.set_status(&hash, BlockStatus::Connected);
        self.candidates.remove(&hash);
        Ok(())
    }

    fn disconnect_tip(&mut self) {
        let hash = self.active.pop().expect("never below genesis");
        assert!(!self.active.is_empty(), "genesis cannot be disconnected");
        let block = Arc::clone(&self.blocks[&hash]);
        let undo = self
            .undo
            .remove(&hash)
            .expect("connected blocks have undo data");
        disconnect_block(&mut self.utxo, &block, &undo)
            .expect("undo data made by connecting this block");
        for tx in &block.txdata {
            let issued = tx.output.iter().any(|txout| {
                matches!(
                    AssetRecord::from_script(&txout.script_pubkey),
                    Ok(Some(AssetRecord::Issue(_)))
                )
            });
            if issued {
                self.assets.remove(&AssetId::from_issuing_outpoint(
                    &tx.input[0].previous_output,
                ));
            }
        }
        // It connected once: if the branch replacing it fails, the chain comes back to it.
        self.candidates.insert(hash);
    }
}
