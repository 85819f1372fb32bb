//! Following the chain: the wallet's transactions as the chain and the mempool report them, and
//! everything derived from them — unspent outputs with their asset units, history, balances.
//!
//! Only the transactions are state; outputs, conflicts and balances are computed from them, so a
//! reorganisation (a block disconnected, its transactions unconfirmed again) cannot leave stale
//! derived data behind. Addresses are watched up to a gap of 20 past the last one used on each
//! chain (BIP44's gap limit); an output to a watched address extends the window.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use bitcoin::{Amount, Block, OutPoint, Script, ScriptBuf, Transaction, Txid};

use super::keys::{Account, Keychain};
use crate::chain::assets::{AssetAmounts, AssetId, AssetRecord};

/// Addresses watched past the last used one on each chain.
pub const GAP_LIMIT: u32 = 20;

/// Where a wallet transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TxStatus {
    /// In the block at this height.
    Confirmed { height: u32 },
    /// In the mempool, seen at this time (Unix seconds).
    Unconfirmed { seen: u64 },
}

/// An output the wallet can spend (or will, once confirmed or mature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedOutput {
    /// Where it is.
    pub outpoint: OutPoint,
    /// Its value and script.
    pub value: Amount,
    /// Its script.
    pub script_pubkey: ScriptBuf,
    /// Its asset units.
    pub assets: AssetAmounts,
    /// The status of the transaction that made it.
    pub status: TxStatus,
    /// Whether a coinbase made it.
    pub is_coinbase: bool,
    /// Whether every input of the transaction that made it spent a coin of the wallet's own
    /// (a payment to itself, an asset transfer's remainder): nobody else can double-spend it.
    pub from_self: bool,
    /// Which key: account index in the tracker, chain and index.
    pub key: (usize, Keychain, u32),
}

/// One row of the wallet's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The transaction.
    pub txid: Txid,
    /// Where it stands.
    pub status: TxStatus,
    /// Whether a confirmed transaction spent one of its inputs: it will never confirm.
    pub conflicted: bool,
    /// BTC paid to the wallet.
    pub received: Amount,
    /// BTC of the wallet's outputs it spent.
    pub sent: Amount,
    /// The fee, when every input was the wallet's.
    pub fee: Option<Amount>,
    /// Net asset units in (positive) or out (negative) of the wallet.
    pub assets: BTreeMap<AssetId, i128>,
    /// A trade: a swap that moved assets, with inputs of the wallet and of a counterparty.
    pub trade: bool,
}

/// Amounts of one asset (BTC in satoshis) by how spendable they are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Balance {
    /// Confirmed and mature.
    pub confirmed: u64,
    /// In unconfirmed transactions.
    pub unconfirmed: u64,
    /// Coinbase outputs not yet mature.
    pub immature: u64,
}

/// What a balance is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Unit {
    /// Bitcoin, in satoshis.
    Btc,
    /// An issued asset, in its base units.
    Asset(AssetId),
}

impl core::fmt::Display for Unit {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Unit::Btc => f.write_str("BTC (satoshis)"),
            Unit::Asset(asset) => write!(f, "asset {asset}"),
        }
    }
}

/// The wallet's view of the chain.
#[derive(Debug, Clone)]
pub struct Tracker {
    accounts: Vec<Account>,
    scripts: HashMap<ScriptBuf, (usize, Keychain, u32)>,
    derived: HashMap<(usize, Keychain), u32>,
    txs: HashMap<Txid, (Arc<Transaction>, TxStatus)>,
    tip: u32,
    maturity: u32,
}

impl Tracker {
    /// A tracker of `accounts`' addresses on a chain whose coinbases mature after `maturity`.
    pub fn new(accounts: Vec<Account>, maturity: u32) -> Tracker {
        let mut tracker = Tracker {
            accounts,
            scripts: HashMap::new(),
            derived: HashMap::new(),
            txs: HashMap::new(),
            tip: 0,
            maturity,
        };
        for account in 0..tracker.accounts.len() {
            for keychain in [Keychain::External, Keychain::Internal] {
                tracker.watch_up_to(account, keychain, GAP_LIMIT);
            }
        }
        tracker
    }

    /// The accounts followed.
    pub fn accounts(&self) -> &[Account] {
        &self.accounts
    }

    /// The height of the chain's tip as last reported.
    pub fn tip(&self) -> u32 {
        self.tip
    }

    /// Whether `script` is one of the wallet's watched scripts.
    pub fn is_mine(&self, script: &ScriptBuf) -> bool {
        self.scripts.contains_key(script)
    }

    /// Watches `account`'s `keychain` scripts below `next` and [`GAP_LIMIT`] beyond: scripts
    /// handed out ahead of any payment to them (order scripts, new receive addresses) stay the
    /// wallet's however many went unpaid.
    /// Returns whether it watches scripts it did not before.
    pub fn watch_handed_out(&mut self, account: usize, keychain: Keychain, next: u32) -> bool {
        self.watch_up_to(account, keychain, next.saturating_add(GAP_LIMIT))
    }

    /// Watches the first `count` scripts; whether any is new.
    fn watch_up_to(&mut self, account: usize, keychain: Keychain, count: u32) -> bool {
        let derived = self.derived.entry((account, keychain)).or_default();
        let from = *derived;
        for index in from..count {
            let script = self.accounts[account].script_pubkey(keychain, index);
            self.scripts.insert(script, (account, keychain, index));
        }
        *derived = from.max(count);
        count > from
    }

    /// Whether `tx` pays or spends the wallet; extends the watched window for what it pays.
    fn take_if_relevant(&mut self, tx: &Transaction) -> bool {
        let mut relevant = tx
            .input
            .iter()
            .any(|txin| self.key_of(&txin.previous_output).is_some());
        for txout in &tx.output {
            if let Some(&(account, keychain, index)) = self.scripts.get(&txout.script_pubkey) {
                relevant = true;
                self.watch_up_to(account, keychain, index + 1 + GAP_LIMIT);
            }
        }
        relevant
    }

    /// The wallet key that can spend `outpoint`, if it is the wallet's.
    pub fn key_of(&self, outpoint: &OutPoint) -> Option<(usize, Keychain, u32)> {
        let (tx, _) = self.txs.get(&outpoint.txid)?;
        let txout = tx.output.get(outpoint.vout as usize)?;
        self.key_of_script(&txout.script_pubkey)
    }

    /// The wallet key that `script` pays, if it is one the tracker watches.
    pub fn key_of_script(&self, script: &Script) -> Option<(usize, Keychain, u32)> {
        self.scripts.get(script).copied()
    }

    /// A block connected at `height`.
    pub fn connect_block(&mut self, block: &Block, height: u32) {
        self.tip = height;
        for tx in &block.txdata {
            if self.take_if_relevant(tx) {
                self.txs.insert(
                    tx.compute_txid(),
                    (Arc::new(tx.clone()), TxStatus::Confirmed { height }),
                );
            }
        }
    }

    /// Looks through a block connected before, at `height`, for transactions of scripts watched
    /// since; whether it found any.
    pub fn look_through(&mut self, block: &Block, height: u32) -> bool {
        let mut found = false;
        for tx in &block.txdata {
            let txid = tx.compute_txid();
            if !self.txs.contains_key(&txid) && self.take_if_relevant(tx) {
                self.txs
                    .insert(txid, (Arc::new(tx.clone()), TxStatus::Confirmed { height }));
                found = true;
            }
        }
        found
    }

    /// The block at `height` disconnected: its transactions are unconfirmed again (the mempool
    /// reports later which ones it drops), its coinbase is gone.
    pub fn disconnect_block(&mut self, block: &Block, height: u32, now: u64) {
        self.tip = height.saturating_sub(1);
        for tx in &block.txdata {
            let txid = tx.compute_txid();
            if tx.is_coinbase() {
                self.txs.remove(&txid);
            } else if let Some((_, status)) = self.txs.get_mut(&txid) {
                *status = TxStatus::Unconfirmed { seen: now };
            }
        }
    }

    /// A transaction entered the mempool.
    pub fn mempool_added(&mut self, tx: &Transaction, now: u64) {
        let txid = tx.compute_txid();
        if self.txs.contains_key(&txid) {
            return;
        }
        if self.take_if_relevant(tx) {
            self.txs.insert(
                txid,
                (Arc::new(tx.clone()), TxStatus::Unconfirmed { seen: now }),
            );
        }
    }

    /// A transaction left the mempool without confirming (evicted, expired or conflicted).
    /// One that a confirmed transaction conflicts with stays, shown as conflicted: the person
    /// sees which spend lost. Returns whether it was dropped.
    pub fn mempool_removed(&mut self, txid: &Txid) -> bool {
        let unconfirmed = matches!(self.txs.get(txid), Some((_, TxStatus::Unconfirmed { .. })));
        if !unconfirmed || self.conflicted().contains(txid) {
            return false;
        }
        self.txs.remove(txid);
        true
    }

    /// Takes back transactions of the wallet that lost a double spend, as a driver kept them
    /// across a restart: each is followed again (shown as conflicted) only if a confirmed
    /// transaction spends one of its inputs or it spends such a loser; any other is left out
    /// (an evicted or expired transaction is not brought back to life). Parents may come after
    /// their children. Returns how many were taken back.
    pub fn restore_conflicted(&mut self, txs: &[Transaction], now: u64) -> usize {
        let mut restored = 0;
        let mut left: Vec<&Transaction> = txs.iter().collect();
        loop {
            let before = left.len();
            left.retain(|tx| {
                let txid = tx.compute_txid();
                if self.txs.contains_key(&txid) || !self.take_if_relevant(tx) {
                    return false;
                }
                self.txs.insert(
                    txid,
                    (Arc::new((*tx).clone()), TxStatus::Unconfirmed { seen: now }),
                );
                if self.conflicted().contains(&txid) {
                    restored += 1;
                    return false;
                }
                self.txs.remove(&txid);
                true
            });
            if left.len() == before {
                return restored;
            }
        }
    }

    /// An unconfirmed transaction the wallet follows.
    pub fn unconfirmed_tx(&self, txid: &Txid) -> Option<&Transaction> {
        match self.txs.get(txid) {
            Some((tx, TxStatus::Unconfirmed { .. })) => Some(tx),
            _ => None,
        }
    }

    /// The wallet's unconfirmed transactions.
    pub fn unconfirmed(&self) -> Vec<Txid> {
        self.txs
            .iter()
            .filter(|(_, (_, status))| matches!(status, TxStatus::Unconfirmed { .. }))
            .map(|(txid, _)| *txid)
            .collect()
    }

    /// Whether a followed transaction pays `script`.
    pub fn pays(&self, script: &ScriptBuf) -> bool {
        self.txs
            .values()
            .any(|(tx, _)| tx.output.iter().any(|txout| txout.script_pubkey == *script))
    }

    /// One past the highest index of `account`'s `keychain` that a followed transaction pays,
    /// if any pays it.
    pub fn next_unused(&self, account: usize, keychain: Keychain) -> Option<u32> {
        self.txs
            .values()
            .flat_map(|(tx, _)| &tx.output)
            .filter_map(|txout| self.scripts.get(&txout.script_pubkey))
            .filter(|(owner, chain, _)| *owner == account && *chain == keychain)
            .map(|(_, _, index)| index + 1)
            .max()
    }

    /// Unconfirmed transactions that spend an output a confirmed transaction already spent,
    /// and their descendants.
    fn conflicted(&self) -> HashSet<Txid> {
        let confirmed_spends: HashSet<OutPoint> = self
            .txs
            .values()
            .filter(|(_, status)| matches!(status, TxStatus::Confirmed { .. }))
            .flat_map(|(tx, _)| tx.input.iter().map(|txin| txin.previous_output))
            .collect();
        let mut conflicted: HashSet<Txid> = self
            .txs
            .iter()
            .filter(|(_, (tx, status))| {
                matches!(status, TxStatus::Unconfirmed { .. })
                    && tx
                        .input
                        .iter()
                        .any(|txin| confirmed_spends.contains(&txin.previous_output))
            })
            .map(|(txid, _)| *txid)
            .collect();
        loop {
            let more: Vec<Txid> = self
                .txs
                .iter()
                .filter(|(txid, (tx, _))| {
                    !conflicted.contains(*txid)
                        && tx
                            .input
                            .iter()
                            .any(|txin| conflicted.contains(&txin.previous_output.txid))
                })
                .map(|(txid, _)| *txid)
                .collect();
            if more.is_empty() {
                return conflicted;
            }
            conflicted.extend(more);
        }
    }

    /// The outputs spent by the wallet's conflicted transactions (losers of a double spend):
    /// those no confirmed transaction spent are the wallet's to spend again.
    pub fn conflicted_spends(&self) -> Vec<OutPoint> {
        let conflicted = self.conflicted();
        let mut spends: Vec<OutPoint> = conflicted
            .iter()
            .filter_map(|txid| self.txs.get(txid))
            .flat_map(|(tx, _)| tx.input.iter().map(|txin| txin.previous_output))
            .collect();
        crate::sort::sort(&mut spends);
        spends.dedup();
        spends
    }

    /// The wallet's unspent outputs, oldest first.
    pub fn unspent(&self) -> Vec<OwnedOutput> {
        let conflicted = self.conflicted();
        let live = || {
            self.txs
                .iter()
                .filter(|(txid, _)| !conflicted.contains(*txid))
        };
        let spent: HashSet<OutPoint> = live()
            .flat_map(|(_, (tx, _))| tx.input.iter().map(|txin| txin.previous_output))
            .collect();
        let ours = |outpoint: &OutPoint| {
            self.txs.get(&outpoint.txid).is_some_and(|(parent, _)| {
                parent
                    .output
                    .get(outpoint.vout as usize)
                    .is_some_and(|txout| self.scripts.contains_key(&txout.script_pubkey))
            })
        };
        let mut outputs: Vec<OwnedOutput> = live()
            .flat_map(|(txid, (tx, status))| {
                let assets = output_assets(tx);
                let from_self =
                    !tx.is_coinbase() && tx.input.iter().all(|txin| ours(&txin.previous_output));
                tx.output
                    .iter()
                    .enumerate()
                    .filter_map(move |(vout, txout)| {
                        let key = *self.scripts.get(&txout.script_pubkey)?;
                        Some(OwnedOutput {
                            outpoint: OutPoint::new(*txid, vout as u32),
                            value: txout.value,
                            script_pubkey: txout.script_pubkey.clone(),
                            assets: assets[vout].clone(),
                            status: *status,
                            is_coinbase: tx.is_coinbase(),
                            from_self,
                            key,
                        })
                    })
            })
            .filter(|output| !spent.contains(&output.outpoint))
            .collect();
        crate::sort::sort_by(&mut outputs, &|a, b| {
            a.status.cmp(&b.status).then(a.outpoint.cmp(&b.outpoint))
        });
        outputs
    }

    /// Balances per unit: BTC (always present) and each asset the wallet holds.
    pub fn balances(&self) -> BTreeMap<Unit, Balance> {
        let mut balances = BTreeMap::from([(Unit::Btc, Balance::default())]);
        for output in self.unspent() {
            let slot = |balance: &mut Balance, amount: u64| match output.status {
                TxStatus::Unconfirmed { .. } => balance.unconfirmed += amount,
                TxStatus::Confirmed { height }
                    if output.is_coinbase && self.tip + 1 - height < self.maturity =>
                {
                    balance.immature += amount
                }
                TxStatus::Confirmed { .. } => balance.confirmed += amount,
            };
            slot(
                balances.entry(Unit::Btc).or_default(),
                output.value.to_sat(),
            );
            for (asset, amount) in output.assets.iter() {
                slot(balances.entry(Unit::Asset(asset)).or_default(), amount);
            }
        }
        balances
    }

    /// Confirmations of a status: 0 when unconfirmed.
    pub fn confirmations(&self, status: TxStatus) -> u32 {
        match status {
            TxStatus::Confirmed { height } => self.tip + 1 - height,
            TxStatus::Unconfirmed { .. } => 0,
        }
    }

    /// Confirmations of the wallet's transaction `txid` (0 while unconfirmed), if it knows it.
    pub fn confirmations_of(&self, txid: &Txid) -> Option<u32> {
        self.txs
            .get(txid)
            .map(|(_, status)| self.confirmations(*status))
    }

    /// The wallet's transactions, newest first.
    pub fn history(&self) -> Vec<HistoryEntry> {
        let conflicted = self.conflicted();
        let mut entries: Vec<HistoryEntry> = self
            .txs
            .iter()
            .map(|(txid, (tx, status))| {
                let assets_out = output_assets(tx);
                let mut assets: BTreeMap<AssetId, i128> = BTreeMap::new();
                let mut received = Amount::ZERO;
                for (vout, txout) in tx.output.iter().enumerate() {
                    if self.scripts.contains_key(&txout.script_pubkey) {
                        received += txout.value;
                        for (asset, amount) in assets_out[vout].iter() {
                            *assets.entry(asset).or_default() += i128::from(amount);
                        }
                    }
                }
                let mut sent = Amount::ZERO;
                let mut all_inputs_ours = !tx.is_coinbase();
                let mut any_input_ours = false;
                for txin in &tx.input {
                    match self
                        .txs
                        .get(&txin.previous_output.txid)
                        .filter(|_| self.key_of(&txin.previous_output).is_some())
                    {
                        Some((parent, _)) => {
                            any_input_ours = true;
                            let vout = txin.previous_output.vout as usize;
                            sent += parent.output[vout].value;
                            for (asset, amount) in output_assets(parent)[vout].iter() {
                                *assets.entry(asset).or_default() -= i128::from(amount);
                            }
                        }
                        None => all_inputs_ours = false,
                    }
                }
                assets.retain(|_, change| *change != 0);
                let outputs: Amount = tx.output.iter().map(|txout| txout.value).sum();
                HistoryEntry {
                    txid: *txid,
                    status: *status,
                    conflicted: conflicted.contains(txid),
                    received,
                    sent,
                    fee: all_inputs_ours.then(|| sent.checked_sub(outputs)).flatten(),
                    trade: any_input_ours && !all_inputs_ours && !assets.is_empty(),
                    assets,
                }
            })
            .collect();
        crate::sort::sort_by(&mut entries, &|a, b| {
            b.status.cmp(&a.status).then(a.txid.cmp(&b.txid))
        });
        entries
    }
}

/// The asset units of each output of a valid transaction, read from its record.
fn output_assets(tx: &Transaction) -> Vec<AssetAmounts> {
    let mut outputs = vec![BTreeMap::<AssetId, u64>::new(); tx.output.len()];
    let record = tx.output.iter().find_map(|txout| {
        AssetRecord::from_script(&txout.script_pubkey)
            .ok()
            .flatten()
    });
    match record {
        Some(AssetRecord::Issue(issuance)) if !tx.is_coinbase() => {
            let id = AssetId::from_issuing_outpoint(&tx.input[0].previous_output);
            if let Some(slot) = outputs.get_mut(usize::from(issuance.output)) {
                slot.insert(id, issuance.supply);
            }
        }
        Some(AssetRecord::Transfer(transfers)) => {
            for transfer in transfers {
                for (output, amount) in transfer.allocations {
                    if let Some(slot) = outputs.get_mut(usize::from(output)) {
                        *slot.entry(transfer.asset).or_default() += amount;
                    }
                }
            }
        }
        _ => {}
    }
    outputs.into_iter().map(AssetAmounts::from_units).collect()
}
