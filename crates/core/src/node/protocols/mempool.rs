//! Transaction relay: announced transactions are fetched, validated against the chain and the
//! mempool, and announced on; those whose parents have not arrived wait in a small orphan pool.
//! The mempool follows the chain's tip changes.

use std::collections::VecDeque;

use bitcoin::hashes::Hash;
use bitcoin::{Transaction, Txid};

use crate::chain::mempool::{Mempool, MempoolConfig, MempoolError};
use crate::chain::state::Chain;
use crate::hashing::{KeyedHashing, KeyedMap, KeyedSet};
use crate::node::link::LinkId;
use crate::node::protocol::{Context, Notice, Offence, Protocol};
use crate::node::Event;
use crate::wire::{InvItem, InvKind, InvPurpose, Message};

/// Transactions waiting for a parent, at most.
const MAX_ORPHANS: usize = 100;
/// Refused transactions remembered (so they are not fetched again), at most.
const MAX_REJECTED: usize = 10_000;
/// How often unconfirmed transactions are checked for expiry.
const EXPIRE_EVERY_MILLIS: u64 = 60_000;

/// The mempool protocol.
#[derive(Debug)]
pub struct MempoolRelay {
    mempool: Mempool,
    /// Keyed, as `rejected`: peers make the transactions up.
    orphans: KeyedMap<Txid, Transaction>,
    rejected: KeyedSet<Txid>,
    rejected_order: VecDeque<Txid>,
    last_expiry_millis: u64,
}

impl MempoolRelay {
    /// A relay whose maps of what peers send are keyed by `hash_key`: random bits from the
    /// driver ([`KeyedHashing`]).
    pub fn new(config: MempoolConfig, hash_key: u64) -> MempoolRelay {
        let hashing = KeyedHashing::new(hash_key);
        MempoolRelay {
            mempool: Mempool::keyed(config, hashing.derive(2)),
            orphans: KeyedMap::with_hasher(hashing.derive(0)),
            rejected: KeyedSet::with_hasher(hashing.derive(1)),
            rejected_order: VecDeque::new(),
            last_expiry_millis: 0,
        }
    }

    pub fn mempool(&self) -> &Mempool {
        &self.mempool
    }

    /// A transaction of this node's wallet: accepted and announced, or refused with the
    /// mempool's reason.
    pub fn submit(&mut self, ctx: &mut Context<'_>, tx: Transaction) -> Result<Txid, MempoolError> {
        let txid = tx.compute_txid();
        self.mempool.accept(tx, ctx.chain, ctx.now_secs())?;
        self.accepted(ctx, txid);
        Ok(txid)
    }

    fn accepted(&mut self, ctx: &mut Context<'_>, txid: Txid) {
        ctx.event(Event::TxAccepted(txid));
        ctx.announce(InvItem::new(InvKind::Tx, txid.to_byte_array()));
        ctx.notify(Notice::TransactionAccepted(txid));
        // Orphans whose parent this was may go in now.
        let waiting: Vec<Txid> = self
            .orphans
            .iter()
            .filter(|(_, tx)| {
                tx.input
                    .iter()
                    .any(|input| input.previous_output.txid == txid)
            })
            .map(|(orphan, _)| *orphan)
            .collect();
        for orphan in waiting {
            if let Some(tx) = self.orphans.remove(&orphan) {
                if self.mempool.accept(tx, ctx.chain, ctx.now_secs()).is_ok() {
                    self.accepted(ctx, orphan);
                }
            }
        }
    }

    fn reject(&mut self, txid: Txid) {
        if self.rejected.insert(txid) {
            self.rejected_order.push_back(txid);
            if self.rejected_order.len() > MAX_REJECTED {
                let oldest = self.rejected_order.pop_front().expect("not empty");
                self.rejected.remove(&oldest);
            }
        }
    }

    fn on_tx(&mut self, ctx: &mut Context<'_>, link: LinkId, tx: Transaction) {
        let txid = tx.compute_txid();
        match self.mempool.accept(tx.clone(), ctx.chain, ctx.now_secs()) {
            Ok(_) => self.accepted(ctx, txid),
            Err(MempoolError::AlreadyKnown) => {}
            Err(MempoolError::MissingInput(_)) => {
                if self.orphans.len() >= MAX_ORPHANS {
                    // Drop one at random-ish (the smallest txid): bounded, not fair.
                    let evict = *self.orphans.keys().min().expect("full");
                    self.orphans.remove(&evict);
                }
                self.orphans.insert(txid, tx);
            }
            Err(
                err @ (MempoolError::Invalid(_)
                | MempoolError::Inputs(_)
                | MempoolError::Spend(_)
                | MempoolError::Coinbase),
            ) => {
                self.reject(txid);
                ctx.punish(link, Offence::InvalidTransaction(err.to_string()));
            }
            // Policy (fee, size, conflicts, room): not the peer's fault.
            Err(_) => self.reject(txid),
        }
    }
}

impl Protocol for MempoolRelay {
    fn name(&self) -> &'static str {
        "mempool"
    }

    fn kinds(&self) -> &'static [InvKind] {
        &[InvKind::Tx]
    }

    fn handles(&self, message: &Message) -> bool {
        matches!(message, Message::Tx(_))
    }

    fn on_message(
        &mut self,
        ctx: &mut Context<'_>,
        link: LinkId,
        message: Message,
        requested: Option<InvPurpose>,
    ) {
        let Message::Tx(tx) = message else { return };
        if requested.is_none() {
            ctx.punish(link, Offence::Unrequested("transaction"));
            return;
        }
        self.on_tx(ctx, link, tx);
    }

    fn wants(&mut self, _ctx: &mut Context<'_>, _link: LinkId, item: &InvItem) -> bool {
        let txid = Txid::from_byte_array(item.id);
        !self.mempool.contains(&txid)
            && !self.orphans.contains_key(&txid)
            && !self.rejected.contains(&txid)
    }

    fn object(&self, _chain: &Chain, item: &InvItem) -> Option<Message> {
        self.mempool
            .get(&Txid::from_byte_array(item.id))
            .map(|entry| Message::Tx(entry.tx.as_ref().clone()))
    }

    fn holdings(&self, _chain: &Chain) -> Vec<InvItem> {
        // Sorted as inventory items, not txids: the page then carries one sort of them.
        let mut items: Vec<InvItem> = self
            .mempool
            .entries()
            .map(|(txid, _)| InvItem::new(InvKind::Tx, txid.to_byte_array()))
            .collect();
        items.sort_unstable();
        items
    }

    fn on_notice(&mut self, ctx: &mut Context<'_>, notice: &Notice) {
        if let Notice::TipChanged(change) = notice {
            let dropped = self
                .mempool
                .apply_tip_change(change, ctx.chain, ctx.now_secs());
            if !dropped.is_empty() {
                ctx.event(Event::TransactionsDropped(dropped.clone()));
                ctx.notify(Notice::TransactionsDropped(dropped));
            }
        }
    }

    fn on_tick(&mut self, ctx: &mut Context<'_>) {
        if ctx.now_millis >= self.last_expiry_millis + EXPIRE_EVERY_MILLIS {
            self.last_expiry_millis = ctx.now_millis;
            self.mempool.expire(ctx.now_secs());
        }
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn core::any::Any {
        self
    }

    fn shared_mempool(&self) -> Option<&Mempool> {
        Some(&self.mempool)
    }
}
