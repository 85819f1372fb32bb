//! The mempool: valid unconfirmed transactions waiting for a block.
//!
//! A transaction enters when it spends coins of the chain or of other mempool transactions,
//! conflicts with none of them (no replacement), pays at least the minimum fee rate and carries
//! valid signatures. The pool is bounded by size: when full, the transactions with the lowest
//! fee rate that nothing depends on leave first. Entries expire after a fixed time. Blocks
//! remove what they confirm and what conflicts with it; disconnected blocks give their
//! transactions back.

use core::fmt;
use std::collections::BTreeSet;
use std::sync::Arc;

use bitcoin::{Amount, Block, FeeRate, OutPoint, Transaction, TxOut, Txid, Weight};

use super::assets::AssetAmounts;
use super::block::{check_inputs, InputError};
use super::spend::{verify_spends, SpendError};
use super::state::{Chain, TipChange};
use super::tx::{check_transaction, TxError};
use super::utxo::Coin;
use crate::hashing::{KeyedHashing, KeyedMap, KeyedSet};

/// The heaviest transaction the mempool relays (as Bitcoin's standardness rule).
pub const MAX_STANDARD_TX_WEIGHT: Weight = Weight::from_wu(400_000);

/// The mempool's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MempoolConfig {
    /// The most virtual bytes of transactions kept.
    pub max_vbytes: u64,
    /// The lowest fee rate accepted.
    pub min_fee_rate: FeeRate,
    /// Seconds after which an unconfirmed transaction is dropped.
    pub expiry_secs: u64,
}

impl Default for MempoolConfig {
    /// 5 MB (small enough for a browser tab), 1 sat/vB, one day.
    fn default() -> Self {
        MempoolConfig {
            max_vbytes: 5_000_000,
            min_fee_rate: FeeRate::from_sat_per_kwu(250),
            expiry_secs: 24 * 60 * 60,
        }
    }
}

/// Why a transaction is not accepted into the mempool.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MempoolError {
    /// The transaction is already in the mempool.
    AlreadyKnown,
    /// A coinbase only ever appears in a block.
    Coinbase,
    /// It breaks a context-free rule.
    Invalid(TxError),
    /// It is heavier than the relay limit.
    NonStandardSize(Weight),
    /// An input spends a coin a mempool transaction already spends.
    DoubleSpend { outpoint: OutPoint, by: Txid },
    /// An input spends a coin that is neither unspent in the chain nor made by the mempool.
    MissingInput(OutPoint),
    /// Its inputs may not spend those coins (maturity, lock time, value, assets).
    Inputs(InputError),
    /// A witness does not unlock what it spends.
    Spend(SpendError),
    /// The fee rate is below the minimum.
    FeeTooLow { fee_rate: FeeRate, minimum: FeeRate },
    /// The mempool is full of transactions paying more.
    MempoolFull,
}

impl fmt::Display for MempoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MempoolError::AlreadyKnown => f.write_str("the transaction is already in the mempool"),
            MempoolError::Coinbase => f.write_str("a coinbase cannot be relayed"),
            MempoolError::Invalid(err) => write!(f, "{err}"),
            MempoolError::NonStandardSize(weight) => {
                write!(f, "the transaction weighs {weight}, above the relay limit of {MAX_STANDARD_TX_WEIGHT}")
            }
            MempoolError::DoubleSpend { outpoint, by } => {
                write!(
                    f,
                    "{outpoint} is already spent by unconfirmed transaction {by}"
                )
            }
            MempoolError::MissingInput(outpoint) => {
                write!(
                    f,
                    "{outpoint} is not an unspent output (unknown or already spent)"
                )
            }
            MempoolError::Inputs(err) => write!(f, "{err}"),
            MempoolError::Spend(err) => write!(f, "{err}"),
            MempoolError::FeeTooLow { fee_rate, minimum } => write!(
                f,
                "the fee rate {} sat/vB is below the minimum of {} sat/vB",
                fee_rate.to_sat_per_vb_floor(),
                minimum.to_sat_per_vb_ceil()
            ),
            MempoolError::MempoolFull => {
                f.write_str("the mempool is full of transactions paying more")
            }
        }
    }
}

impl std::error::Error for MempoolError {}

/// A transaction in the mempool.
#[derive(Debug, Clone)]
pub struct MempoolEntry {
    /// The transaction.
    pub tx: Arc<Transaction>,
    /// Its fee.
    pub fee: Amount,
    /// Its virtual size.
    pub vsize: u64,
    /// When it entered (Unix seconds).
    pub entered: u64,
    /// The asset units of each output.
    pub output_assets: Vec<AssetAmounts>,
    /// Mempool transactions it spends from.
    pub parents: KeyedSet<Txid>,
    /// Mempool transactions spending from it.
    pub children: KeyedSet<Txid>,
}

impl MempoolEntry {
    /// Its fee rate.
    pub fn fee_rate(&self) -> FeeRate {
        fee_rate(self.fee, self.vsize)
    }
}

/// The fee rate of `fee` for `vsize` virtual bytes.
pub(crate) fn fee_rate(fee: Amount, vsize: u64) -> FeeRate {
    // sat/kwu = fee * 1000 / (vsize * 4): exact enough for ordering, never zero-divided.
    FeeRate::from_sat_per_kwu(fee.to_sat().saturating_mul(250) / vsize.max(1))
}

/// Unconfirmed transactions, bounded in size.
#[derive(Debug, Clone)]
pub struct Mempool {
    config: MempoolConfig,
    /// Keys the maps and sets of transaction ids, which peers can grind ([`KeyedHashing`]).
    hashing: KeyedHashing,
    entries: KeyedMap<Txid, MempoolEntry>,
    spent_by: KeyedMap<OutPoint, Txid>,
    /// (fee rate, txid) of every entry, lowest first.
    by_fee_rate: BTreeSet<(FeeRate, Txid)>,
    vbytes: u64,
}

impl Mempool {
    /// An empty mempool with `config`'s limits, its maps keyed by `hash_key`: random bits
    /// from the driver.
    pub fn new(config: MempoolConfig, hash_key: u64) -> Mempool {
        Mempool::keyed(config, KeyedHashing::new(hash_key))
    }

    pub(crate) fn keyed(config: MempoolConfig, hashing: KeyedHashing) -> Mempool {
        Mempool {
            config,
            hashing,
            entries: KeyedMap::with_hasher(hashing.derive(0)),
            spent_by: KeyedMap::with_hasher(hashing.derive(1)),
            by_fee_rate: BTreeSet::new(),
            vbytes: 0,
        }
    }

    /// An empty set of transaction ids, keyed (the parents and children of entries).
    fn txid_set(&self) -> KeyedSet<Txid> {
        KeyedSet::with_hasher(self.hashing.derive(2))
    }

    /// An empty set for a walk over parents or children, under another key than theirs:
    /// moving a set's ids, in its own order, into a set of the same key makes probes collide.
    fn walk_set(&self) -> KeyedSet<Txid> {
        KeyedSet::with_hasher(self.hashing.derive(3))
    }

    /// The number of transactions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the mempool is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The total virtual size of its transactions.
    pub fn vbytes(&self) -> u64 {
        self.vbytes
    }

    /// The entry of `txid`.
    pub fn get(&self, txid: &Txid) -> Option<&MempoolEntry> {
        self.entries.get(txid)
    }

    /// Whether `txid` is in the mempool.
    pub fn contains(&self, txid: &Txid) -> bool {
        self.entries.contains_key(txid)
    }

    /// The mempool transaction spending `outpoint`.
    pub fn spender(&self, outpoint: &OutPoint) -> Option<Txid> {
        self.spent_by.get(outpoint).copied()
    }

    /// Every entry, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = (&Txid, &MempoolEntry)> {
        self.entries.iter()
    }

    /// The coin at `outpoint` if the chain has it unspent or a mempool transaction made it,
    /// spent by the mempool or not. A mempool coin's height is the next block's.
    fn lookup(&self, chain: &Chain, outpoint: &OutPoint) -> Option<Coin> {
        if let Some(coin) = chain.utxo().get(outpoint) {
            return Some(coin.clone());
        }
        let parent = self.entries.get(&outpoint.txid)?;
        let vout = outpoint.vout as usize;
        let output = parent.tx.output.get(vout)?;
        if output.script_pubkey.is_op_return() {
            return None;
        }
        Some(Coin {
            output: output.clone(),
            height: chain.height() + 1,
            is_coinbase: false,
            assets: parent.output_assets[vout].clone(),
        })
    }

    /// The output at `outpoint` if the chain holds it unspent or a mempool transaction made it,
    /// spent by another or not.
    pub fn output(&self, chain: &Chain, outpoint: &OutPoint) -> Option<TxOut> {
        self.lookup(chain, outpoint).map(|coin| coin.output)
    }

    /// The coin at `outpoint` as the chain and the mempool see it together: unspent in the
    /// chain or made by a mempool transaction, and not spent by one.
    pub fn coin(&self, chain: &Chain, outpoint: &OutPoint) -> Option<Coin> {
        if self.spent_by.contains_key(outpoint) {
            return None;
        }
        self.lookup(chain, outpoint)
    }

    /// Validates `tx` against the chain's tip and the mempool and adds it. Returns the
    /// transactions evicted to make room.
    pub fn accept(
        &mut self,
        tx: Transaction,
        chain: &mut Chain,
        now: u64,
    ) -> Result<Vec<Txid>, MempoolError> {
        let txid = tx.compute_txid();
        if self.entries.contains_key(&txid) {
            return Err(MempoolError::AlreadyKnown);
        }
        if tx.is_coinbase() {
            return Err(MempoolError::Coinbase);
        }
        check_transaction(&tx).map_err(MempoolError::Invalid)?;
        let weight = tx.weight();
        if weight > MAX_STANDARD_TX_WEIGHT {
            return Err(MempoolError::NonStandardSize(weight));
        }
        let next_height = chain.height() + 1;
        let mut coins = Vec::with_capacity(tx.input.len());
        let mut parents = self.txid_set();
        for txin in &tx.input {
            let outpoint = txin.previous_output;
            if let Some(&by) = self.spent_by.get(&outpoint) {
                return Err(MempoolError::DoubleSpend { outpoint, by });
            }
            let coin = self
                .lookup(chain, &outpoint)
                .ok_or(MempoolError::MissingInput(outpoint))?;
            if self.entries.contains_key(&outpoint.txid) {
                parents.insert(outpoint.txid);
            }
            coins.push(coin);
        }
        let coin_refs: Vec<&Coin> = coins.iter().collect();
        let checked = check_inputs(
            &tx,
            &coin_refs,
            next_height,
            chain.median_time_past(),
            chain.params(),
        )
        .map_err(MempoolError::Inputs)?;
        let vsize = tx.vsize() as u64;
        let rate = fee_rate(checked.fee, vsize);
        if rate < self.config.min_fee_rate {
            return Err(MempoolError::FeeTooLow {
                fee_rate: rate,
                minimum: self.config.min_fee_rate,
            });
        }
        let wtxid = tx.compute_wtxid();
        if !chain.sigcache_mut().contains(&wtxid) {
            let prevouts: Vec<TxOut> = coins.into_iter().map(|coin| coin.output).collect();
            verify_spends(chain.secp(), &tx, &prevouts).map_err(MempoolError::Spend)?;
            chain.sigcache_mut().insert(wtxid);
        }

        for parent in &parents {
            if let Some(entry) = self.entries.get_mut(parent) {
                entry.children.insert(txid);
            }
        }
        for txin in &tx.input {
            self.spent_by.insert(txin.previous_output, txid);
        }
        self.by_fee_rate.insert((rate, txid));
        self.vbytes += vsize;
        self.entries.insert(
            txid,
            MempoolEntry {
                tx: Arc::new(tx),
                fee: checked.fee,
                vsize,
                entered: now,
                output_assets: checked.allocation.outputs,
                parents,
                children: self.txid_set(),
            },
        );
        let evicted = self.trim();
        if evicted.contains(&txid) {
            return Err(MempoolError::MempoolFull);
        }
        Ok(evicted)
    }

    /// Evicts the lowest fee rate transactions nothing depends on until the pool fits.
    fn trim(&mut self) -> Vec<Txid> {
        let mut evicted = Vec::new();
        while self.vbytes > self.config.max_vbytes {
            let leaf = self
                .by_fee_rate
                .iter()
                .map(|(_, txid)| *txid)
                .find(|txid| self.entries[txid].children.is_empty())
                .expect("a non-empty pool has a transaction without children");
            self.remove_one(&leaf);
            evicted.push(leaf);
        }
        evicted
    }

    /// Removes `txid` alone; children left in the pool stop counting it as a parent.
    fn remove_one(&mut self, txid: &Txid) -> Option<MempoolEntry> {
        let entry = self.entries.remove(txid)?;
        for child in &entry.children {
            if let Some(child) = self.entries.get_mut(child) {
                child.parents.remove(txid);
            }
        }
        for txin in &entry.tx.input {
            self.spent_by.remove(&txin.previous_output);
        }
        for parent in &entry.parents {
            if let Some(parent) = self.entries.get_mut(parent) {
                parent.children.remove(txid);
            }
        }
        self.by_fee_rate.remove(&(entry.fee_rate(), *txid));
        self.vbytes -= entry.vsize;
        Some(entry)
    }

    /// Removes `txid` and everything that spends from it; returns the removed txids.
    pub fn remove_with_descendants(&mut self, txid: &Txid) -> Vec<Txid> {
        let mut order = Vec::new();
        let mut pending = vec![*txid];
        let mut seen = self.walk_set();
        while let Some(txid) = pending.pop() {
            if let Some(entry) = self.entries.get(&txid) {
                if seen.insert(txid) {
                    order.push(txid);
                    pending.extend(entry.children.iter().copied());
                }
            }
        }
        for txid in &order {
            self.remove_one(txid);
        }
        order
    }

    /// Removes what `block` confirms and what conflicts with it.
    pub fn remove_for_block(&mut self, block: &Block) -> Vec<Txid> {
        let mut removed = Vec::new();
        for tx in &block.txdata {
            let txid = tx.compute_txid();
            // Confirmed: its children now spend chain coins and stay.
            if self.remove_one(&txid).is_some() {
                removed.push(txid);
            }
            for txin in &tx.input {
                if let Some(conflict) = self.spent_by.get(&txin.previous_output).copied() {
                    removed.extend(self.remove_with_descendants(&conflict));
                }
            }
        }
        removed
    }

    /// Follows a change of the active chain: transactions of disconnected blocks come back
    /// (when still valid), then those the connected blocks confirm or conflict with leave.
    /// Returns the transactions gone for good: they were in the mempool or in a disconnected
    /// block and are now in neither the mempool nor the active chain (conflicted, or no longer
    /// valid). Wallets forget them; makers reopen the fills they settled.
    pub fn apply_tip_change(
        &mut self,
        change: &TipChange,
        chain: &mut Chain,
        now: u64,
    ) -> Vec<Txid> {
        let mut confirmed = self.txid_set();
        confirmed.extend(
            change
                .connected
                .iter()
                .flat_map(|block| block.txdata.iter().map(Transaction::compute_txid)),
        );
        let mut candidates = Vec::new();
        if change.disconnected.is_empty() {
            for block in &change.connected {
                candidates.extend(self.remove_for_block(block));
            }
        } else {
            // Re-validate everything against the new tip: keep the old pool aside.
            let previous = std::mem::replace(self, Mempool::keyed(self.config, self.hashing));
            for block in change.disconnected.iter().rev() {
                for tx in block.txdata.iter().skip(1) {
                    candidates.push(tx.compute_txid());
                    let _ = self.accept(tx.clone(), chain, now);
                }
            }
            // Parents before children: a transaction has more in-pool ancestors than each parent.
            let mut old: Vec<(usize, &Txid, &MempoolEntry)> = previous
                .entries
                .iter()
                .map(|(txid, entry)| (previous.ancestors(txid), txid, entry))
                .collect();
            crate::sort::sort_by(&mut old, &|a, b| {
                a.0.cmp(&b.0)
                    .then(a.2.entered.cmp(&b.2.entered))
                    .then(a.1.cmp(b.1))
            });
            for (_, txid, entry) in old {
                candidates.push(*txid);
                let _ = self.accept((*entry.tx).clone(), chain, entry.entered);
            }
        }
        candidates.retain(|txid| !confirmed.contains(txid) && !self.entries.contains_key(txid));
        candidates
    }

    /// The number of in-pool ancestors of `txid`.
    pub fn ancestors(&self, txid: &Txid) -> usize {
        let mut seen = self.walk_set();
        let mut pending: Vec<Txid> = self
            .entries
            .get(txid)
            .map_or_else(Vec::new, |entry| entry.parents.iter().copied().collect());
        while let Some(parent) = pending.pop() {
            if seen.insert(parent) {
                if let Some(entry) = self.entries.get(&parent) {
                    pending.extend(entry.parents.iter().copied());
                }
            }
        }
        seen.len()
    }

    /// Drops transactions older than the expiry; returns their txids.
    pub fn expire(&mut self, now: u64) -> Vec<Txid> {
        let expiry = self.config.expiry_secs;
        let old: Vec<Txid> = self
            .entries
            .iter()
            .filter(|(_, entry)| now.saturating_sub(entry.entered) > expiry)
            .map(|(txid, _)| *txid)
            .collect();
        let mut removed = Vec::new();
        for txid in old {
            removed.extend(self.remove_with_descendants(&txid));
        }
        removed
    }
}
