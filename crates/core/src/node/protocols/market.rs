//! Order relay: announced orders and maker updates are fetched, their signatures checked once,
//! merged into the book, and announced on. Orders announced as new must be fresh; those listed
//! as a neighbour's holdings may be older (ADR 0004's time rule). Expired orders are dropped.
//!
//! An order enters the book only once the node finds its coins, in its chain or its mempool,
//! locked to its funding proofs' keys — or, for an order whose own coins a swap spent in a
//! block, those of a fill update of its maker's that came with it: each order held costs a
//! coin. One whose coins have not come (its funding payment is relayed beside it and may come
//! later) waits, [`COINS_WAIT_MILLIS`] at most, and goes in when they do; past the wait it is
//! forgotten, so a neighbour's holdings bring it again once its coins are there. An order or
//! update naming a coin locked to another key than its proof's is refused and not fetched
//! again: what an output is locked to never changes, so it can never be good.

use std::collections::VecDeque;

use bitcoin::secp256k1::{Secp256k1, VerifyOnly};
use bitcoin::{OutPoint, Txid};

use crate::chain::state::Chain;
use crate::hashing::{KeyedHashing, KeyedMap, KeyedSet};
use crate::market::book::{Applied, Book, BookLimits, Inserted};
use crate::market::order::{
    Arrival, FundingProof, FundingProofError, OrderError, OrderId, SignedOrder, SignedUpdate,
    UpdateError, VerifiedOrder,
};
use crate::node::link::LinkId;
use crate::node::protocol::{Context, Notice, Offence, Protocol};
use crate::node::Event;
use crate::wire::{InvItem, InvKind, InvPurpose, Message};

/// How often expired orders are dropped.
const EXPIRE_EVERY_MILLIS: u64 = 1_000;

/// How long matching skips the orders of a maker that did not answer a trade, unless the maker
/// is heard from sooner (a fresh order or update of its own, gossiped): long enough that a
/// taker does not wait on a gone maker trade after trade, short enough that a maker whose tab
/// slept through one trade is tried again.
pub const MAKER_OFFLINE_MILLIS: u64 = 10 * 60_000;

/// How many refused orders and updates the relay remembers, so as not to fetch them again
/// (the oldest are forgotten first).
const MAX_REFUSED: usize = 10_000;

/// How long an order whose coins the node has not found waits for them (its funding payment
/// may be relayed after it, or be waiting for its own parents) before it is forgotten. The
/// bound is the time rule's (ADR 0004): an order that went in whenever its coins came could
/// be placed in every node's waiting pool with a payment held back, and released hours
/// later ahead of the orders placed at its price meanwhile.
pub const COINS_WAIT_MILLIS: u64 = 10 * 60_000;

/// Orders waiting for their coins, at most: a full pool forgets one picked at random (keyed
/// hashing), so that a flood of orders on coins that never come cannot keep honest ones out
/// for long.
const MAX_WAITING: usize = 5_000;

/// Why a local order or update is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitError {
    Order(OrderError),
    Update(UpdateError),
    Book(crate::market::book::BookError),
    /// This coin, in the node's chain or mempool, is locked to another key than its funding
    /// proof's.
    NotTheOwners(OutPoint),
    /// This funding coin is neither unspent in the node's chain nor made by a transaction of its
    /// mempool.
    CoinNotFound(OutPoint),
    /// This funding coin funds a newer order of its owner's.
    CoinHeld {
        coin: OutPoint,
        by: OrderId,
    },
}

impl core::fmt::Display for SubmitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SubmitError::Order(err) => write!(f, "order refused: {err}"),
            SubmitError::Update(err) => write!(f, "update refused: {err}"),
            SubmitError::Book(err) => write!(f, "the book refused it: {err}"),
            SubmitError::NotTheOwners(coin) => {
                write!(
                    f,
                    "funding coin {coin} belongs to another key than its proof's"
                )
            }
            SubmitError::CoinNotFound(coin) => write!(
                f,
                "funding coin {coin} is neither unspent in the chain nor made by a transaction \
                 of the mempool"
            ),
            SubmitError::CoinHeld { coin, by } => {
                write!(
                    f,
                    "funding coin {coin} funds a newer order ({by}) of its owner's"
                )
            }
        }
    }
}

impl std::error::Error for SubmitError {}

/// What the relay did with an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Taken {
    /// It is in the book now.
    New,
    /// The book had it, or it was waiting already.
    Known,
    /// It waits for its coins.
    Waiting,
}

/// What the node's chain and mempool say of the coins that fund an order or an update.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Coins {
    /// Every one is there, locked to its proof's key: the coins that let the order in.
    Found(Vec<OutPoint>),
    /// This one is locked to another key: the order can never be good.
    Disowned(OutPoint),
    /// This one is not there (yet).
    Missing(OutPoint),
}

/// An order whose coins the node has not found yet.
#[derive(Debug)]
struct Waiting {
    order: VerifiedOrder,
    since_millis: u64,
}

/// The market protocol.
#[derive(Debug)]
pub struct MarketRelay {
    book: Book,
    secp: Secp256k1<VerifyOnly>,
    /// Winning update digests, to serve them by name (keyed: makers pick the updates).
    updates: KeyedMap<[u8; 32], OrderId>,
    /// Orders (ids) and updates (digests) refused for a coin that is not their proof's, not
    /// fetched again; `refused_order` forgets the oldest beyond [`MAX_REFUSED`].
    refused: KeyedSet<[u8; 32]>,
    refused_order: VecDeque<[u8; 32]>,
    /// Orders waiting for their coins, and which of them each transaction may fund (ids of
    /// orders gone since are skipped). Sets, not lists: a new tip judges every waiting order
    /// again and indexes it anew, and with lists 5,000 orders on one transaction's outputs
    /// made that quadratic (`examples/waiting_flood.rs`: a block took 6 × as long with them as
    /// with 5,000 on as many transactions; with sets, about as long).
    waiting: KeyedMap<OrderId, Waiting>,
    waiting_on: KeyedMap<Txid, KeyedSet<OrderId>>,
    waiting_hashing: KeyedHashing,
    /// The order of the book that holds each coin (one at most), and the coins of each order:
    /// those that let it in, held until it expires or a newer order on them replaces it.
    holders: KeyedMap<OutPoint, OrderId>,
    held: KeyedMap<OrderId, Vec<OutPoint>>,
    last_expiry_millis: u64,
}

impl MarketRelay {
    /// A relay whose book holds at most `limits`; `hash_key`: random bytes from the driver,
    /// which key the book's maps ([`Book::new`]) and the relay's own ([`KeyedHashing`]).
    pub fn new(limits: BookLimits, hash_key: u64) -> MarketRelay {
        MarketRelay {
            book: Book::new(limits, hash_key),
            secp: Secp256k1::verification_only(),
            updates: KeyedMap::with_hasher(KeyedHashing::new(hash_key).derive(0)),
            refused: KeyedSet::with_hasher(KeyedHashing::new(hash_key).derive(2)),
            refused_order: VecDeque::new(),
            waiting: KeyedMap::with_hasher(KeyedHashing::new(hash_key).derive(3)),
            waiting_on: KeyedMap::with_hasher(KeyedHashing::new(hash_key).derive(4)),
            waiting_hashing: KeyedHashing::new(hash_key).derive(7),
            holders: KeyedMap::with_hasher(KeyedHashing::new(hash_key).derive(5)),
            held: KeyedMap::with_hasher(KeyedHashing::new(hash_key).derive(6)),
            last_expiry_millis: 0,
        }
    }

    pub fn book(&self) -> &Book {
        &self.book
    }

    /// The order `id` and its winning update as a store keeps them ([`Table::BOOK`]), if the
    /// book holds it.
    ///
    /// [`Table::BOOK`]: crate::store::Table::BOOK
    pub fn kept(&self, id: &OrderId) -> Option<Vec<u8>> {
        let view = self.book.get(id)?;
        let order = view.order.signed().encode();
        let mut entry = Vec::with_capacity(2 + order.len() + 128);
        entry.extend_from_slice(&(order.len() as u16).to_le_bytes());
        entry.extend_from_slice(&order);
        if let Some(update) = self.book.update_of(id) {
            entry.extend_from_slice(&update.signed().encode());
        }
        Some(entry)
    }

    /// The id of the order in a kept entry, if it can be read (to delete an entry
    /// [`MarketRelay::restore`] refused).
    pub fn kept_id(entry: &[u8]) -> Option<OrderId> {
        let (len, rest) = entry.split_first_chunk::<2>()?;
        let order = rest.get(..usize::from(u16::from_le_bytes(*len)))?;
        SignedOrder::decode(order)
            .ok()
            .map(|order| order.order.id())
    }

    /// Takes back an order a store kept (see [`MarketRelay::kept`]): checked like one from a
    /// neighbour's book (so it may wait for its coins). Expired or damaged entries are
    /// refused, to be deleted.
    pub fn restore(&mut self, ctx: &mut Context<'_>, entry: &[u8]) -> Result<OrderId, SubmitError> {
        let malformed = || SubmitError::Order(OrderError::Malformed("a damaged stored entry"));
        let (len, rest) = entry.split_first_chunk::<2>().ok_or_else(malformed)?;
        let (order, update) = rest
            .split_at_checked(usize::from(u16::from_le_bytes(*len)))
            .ok_or_else(malformed)?;
        let order = SignedOrder::decode(order)
            .map_err(SubmitError::Order)?
            .verify(&self.secp)
            .map_err(SubmitError::Order)?;
        order
            .check_time(ctx.now_millis, Arrival::BookSync)
            .map_err(SubmitError::Order)?;
        let id = order.id();
        self.insert(ctx, order)?;
        if !update.is_empty() {
            let update = SignedUpdate::decode(update)
                .map_err(SubmitError::Update)?
                .verify(&self.secp)
                .map_err(SubmitError::Update)?;
            self.apply(ctx, update)?;
        }
        Ok(id)
    }

    /// Marks `maker` unreachable (it did not answer a trade): matching skips its orders for
    /// [`MAKER_OFFLINE_MILLIS`], or until it is heard from ([`Event::MakerReachable`] then).
    pub fn mark_unreachable(&mut self, ctx: &mut Context<'_>, maker: bitcoin::XOnlyPublicKey) {
        self.book
            .mark_unreachable(maker, ctx.now_millis.saturating_add(MAKER_OFFLINE_MILLIS));
    }

    /// The maker of something fresh that arrived (gossiped as new, and new here) is back, if
    /// it was marked unreachable.
    fn heard_from(&mut self, ctx: &mut Context<'_>, maker: bitcoin::XOnlyPublicKey) {
        if self.book.mark_reachable(&maker) {
            ctx.event(Event::MakerReachable(maker));
        }
    }

    /// An order of this node's wallet.
    pub fn submit_order(
        &mut self,
        ctx: &mut Context<'_>,
        order: SignedOrder,
    ) -> Result<OrderId, SubmitError> {
        let verified = order.verify(&self.secp).map_err(SubmitError::Order)?;
        verified
            .check_time(ctx.now_millis, Arrival::Gossip)
            .map_err(SubmitError::Order)?;
        if let Coins::Missing(coin) = self.judge(ctx, &verified) {
            return Err(SubmitError::CoinNotFound(coin));
        }
        let id = verified.id();
        self.insert(ctx, verified)?;
        Ok(id)
    }

    /// Whether order `id` waits for its coins.
    pub fn is_waiting(&self, id: &OrderId) -> bool {
        self.waiting.contains_key(id)
    }

    /// An update of this node's wallet (a fill it settled, a cancel).
    pub fn submit_update(
        &mut self,
        ctx: &mut Context<'_>,
        update: SignedUpdate,
    ) -> Result<Applied, SubmitError> {
        let verified = update.verify(&self.secp).map_err(SubmitError::Update)?;
        self.apply(ctx, verified)
    }

    /// What the node's chain and mempool say of `funding`, proven by `proofs`.
    fn coins(ctx: &Context<'_>, funding: &[OutPoint], proofs: &[FundingProof]) -> Coins {
        let mut missing = None;
        for (coin, proof) in funding.iter().zip(proofs) {
            match ctx.output(coin) {
                Some(output) if !proof.owns(&output.script_pubkey) => {
                    return Coins::Disowned(*coin)
                }
                Some(_) => {}
                None => missing = missing.or(Some(*coin)),
            }
        }
        missing.map_or_else(|| Coins::Found(funding.to_vec()), Coins::Missing)
    }

    /// Whether `order` may go in the book: its coins, or, should one be missing (a swap may
    /// have spent it in a block), those of a waiting fill update of its maker's.
    fn judge(&self, ctx: &Context<'_>, order: &VerifiedOrder) -> Coins {
        let signed = order.signed();
        let own = Self::coins(ctx, &signed.order.funding, &signed.proofs);
        if !matches!(own, Coins::Missing(_)) {
            return own;
        }
        // Any of them: the book then applies the best.
        self.book
            .waiting_updates(&order.id())
            .iter()
            .filter(|update| update.maker_bytes() == order.maker_bytes())
            .filter(|update| !update.update().change.funding().is_empty())
            .map(|update| {
                let signed = update.signed();
                Self::coins(ctx, signed.update.change.funding(), &signed.proofs)
            })
            .find(|coins| matches!(coins, Coins::Found(_)))
            .unwrap_or(own)
    }

    /// Forgets the waiting orders whose coins did not come in [`COINS_WAIT_MILLIS`], or that
    /// expired, and the transactions that only orders gone from the pool waited for. They
    /// are not refused: once its coins are there, a neighbour's holdings bring an order again
    /// (a refused one stayed out of this node's book for good when its payment came late).
    fn give_up_waiting(&mut self, now_millis: u64) {
        self.waiting.retain(|_, waiting| {
            waiting.since_millis.saturating_add(COINS_WAIT_MILLIS) > now_millis
                && waiting.order.order().expiry_millis > now_millis
        });
        let waiting = &self.waiting;
        self.waiting_on.retain(|_, ids| {
            ids.retain(|id| waiting.contains_key(id));
            !ids.is_empty()
        });
    }

    /// Remembers a refused order id or update digest, forgetting the oldest beyond
    /// [`MAX_REFUSED`].
    fn refuse(&mut self, name: [u8; 32]) {
        if self.refused.insert(name) {
            self.refused_order.push_back(name);
        }
        if self.refused_order.len() > MAX_REFUSED {
            if let Some(oldest) = self.refused_order.pop_front() {
                self.refused.remove(&oldest);
            }
        }
    }

    /// Takes an order: into the book if its coins are here, into the waiting pool if one is
    /// not yet.
    fn insert(
        &mut self,
        ctx: &mut Context<'_>,
        order: VerifiedOrder,
    ) -> Result<Taken, SubmitError> {
        if self.has(&order.id()) {
            return Ok(Taken::Known);
        }
        self.settle(ctx, order, ctx.now_millis)
    }

    /// Whether order `id` is in the book or waits for its coins.
    fn has(&self, id: &OrderId) -> bool {
        self.book.get(id).is_some() || self.waiting.contains_key(id)
    }

    /// Judges an order that is neither in the book nor waiting (waiting since `since_millis`).
    fn settle(
        &mut self,
        ctx: &mut Context<'_>,
        order: VerifiedOrder,
        since_millis: u64,
    ) -> Result<Taken, SubmitError> {
        let id = order.id();
        match self.judge(ctx, &order) {
            Coins::Disowned(coin) => {
                self.refuse(id.0);
                Err(SubmitError::NotTheOwners(coin))
            }
            Coins::Missing(_) => {
                self.wait(order, since_millis);
                Ok(Taken::Waiting)
            }
            Coins::Found(coins) => self.admit(ctx, order, coins),
        }
    }

    /// Puts an order whose `coins` were found in the book, as the one order that holds each:
    /// an order holding one of them that is older (by creation time, then id) is replaced —
    /// dropped, and not fetched again —; a newer one keeps it, and this order is refused.
    /// Only the coins' owner can have made both (the proofs are checked against the coins).
    fn admit(
        &mut self,
        ctx: &mut Context<'_>,
        order: VerifiedOrder,
        coins: Vec<OutPoint>,
    ) -> Result<Taken, SubmitError> {
        let id = order.id();
        let rank = |order: &VerifiedOrder| (order.order().created_millis, order.id());
        let mut older = Vec::new();
        for coin in &coins {
            let Some(holder) = self.holders.get(coin).copied() else {
                continue;
            };
            let held_by = self.book.get(&holder);
            debug_assert!(
                held_by.is_some(),
                "an order left the book holding its coins"
            );
            if held_by.is_some_and(|held_by| rank(held_by.order) > rank(&order)) {
                self.refuse(id.0);
                return Err(SubmitError::CoinHeld {
                    coin: *coin,
                    by: holder,
                });
            }
            if !older.contains(&holder) {
                older.push(holder);
            }
        }
        if self.book.insert_order(order).map_err(SubmitError::Book)? == Inserted::Known {
            return Ok(Taken::Known);
        }
        for old in older {
            self.replace(ctx, old);
        }
        for coin in &coins {
            self.holders.insert(*coin, id);
        }
        self.held.insert(id, coins);
        ctx.event(Event::OrderAccepted(id));
        ctx.announce(InvItem::new(InvKind::Order, id.0));
        // Updates that waited for it may have applied.
        if let Some(update) = self.book.update_of(&id) {
            self.updates.insert(update.digest(), id);
        }
        Ok(Taken::New)
    }

    /// Drops order `old`, whose coin a newer order of its owner's holds now.
    fn replace(&mut self, ctx: &mut Context<'_>, old: OrderId) {
        if let Some(update) = self.book.update_of(&old) {
            self.updates.remove(&update.digest());
        }
        self.book.remove(&old);
        self.release(&old);
        self.refuse(old.0);
        ctx.event(Event::OrderDropped(old));
    }

    /// Frees the coins order `id` held (it left the book).
    fn release(&mut self, id: &OrderId) {
        for coin in self.held.remove(id).unwrap_or_default() {
            if self.holders.get(&coin) == Some(id) {
                self.holders.remove(&coin);
            }
        }
    }

    /// Puts an order in the waiting pool, found again by the transactions that make its
    /// coins and its waiting updates' coins.
    fn wait(&mut self, order: VerifiedOrder, since_millis: u64) {
        let id = order.id();
        if self.waiting.len() >= MAX_WAITING {
            if let Some(dropped) = self.waiting.keys().next().copied() {
                self.waiting.remove(&dropped);
            }
        }
        let updates = self.book.waiting_updates(&id);
        let coins = order.order().funding.iter().chain(
            updates
                .iter()
                .flat_map(|update| update.update().change.funding()),
        );
        let hashing = self.waiting_hashing;
        for coin in coins {
            self.waiting_on
                .entry(coin.txid)
                .or_insert_with(|| KeyedSet::with_hasher(hashing))
                .insert(id);
        }
        self.waiting.insert(
            id,
            Waiting {
                order,
                since_millis,
            },
        );
    }

    /// Judges the waiting order `id` again, if it waits (a coin or an update of it came).
    fn recheck(&mut self, ctx: &mut Context<'_>, id: &OrderId) {
        if let Some(waiting) = self.waiting.remove(id) {
            // A refusal is remembered by `settle`; nobody is there to hear it.
            let _ = self.settle(ctx, waiting.order, waiting.since_millis);
        }
    }

    fn apply(
        &mut self,
        ctx: &mut Context<'_>,
        update: crate::market::order::VerifiedUpdate,
    ) -> Result<Applied, SubmitError> {
        let id = update.update().order;
        let digest = update.digest();
        let signed = update.signed();
        if let Coins::Disowned(coin) =
            Self::coins(ctx, signed.update.change.funding(), &signed.proofs)
        {
            self.refuse(digest);
            return Err(SubmitError::NotTheOwners(coin));
        }
        let previous = self.book.update_of(&id).map(|update| update.digest());
        let applied = self.book.apply_update(update).map_err(SubmitError::Book)?;
        match applied {
            Applied::Changed => {
                if let Some(previous) = previous {
                    self.updates.remove(&previous);
                }
                self.updates.insert(digest, id);
                ctx.event(Event::OrderUpdated(id));
                ctx.announce(InvItem::new(InvKind::OrderUpdate, digest));
            }
            // Held until its order comes; relayed with it (as holdings) if it wins. An order
            // waiting for coins a swap spent may go in on this fill's.
            Applied::Orphaned => self.recheck(ctx, &id),
            Applied::Superseded => {}
        }
        Ok(applied)
    }
}

impl Protocol for MarketRelay {
    fn name(&self) -> &'static str {
        "market"
    }

    fn kinds(&self) -> &'static [InvKind] {
        &[InvKind::Order, InvKind::OrderUpdate]
    }

    fn handles(&self, message: &Message) -> bool {
        matches!(message, Message::Order(_) | Message::OrderUpdate(_))
    }

    fn on_message(
        &mut self,
        ctx: &mut Context<'_>,
        link: LinkId,
        message: Message,
        requested: Option<InvPurpose>,
    ) {
        let Some(purpose) = requested else {
            ctx.punish(link, Offence::Unrequested("order message"));
            return;
        };
        match message {
            Message::Order(order) => {
                let verified = match order.verify(&self.secp) {
                    Ok(verified) => verified,
                    Err(
                        OrderError::BadSignature
                        | OrderError::FundingProof(FundingProofError::BadSignature(_)),
                    ) => {
                        ctx.punish(link, Offence::BadSignature("order"));
                        return;
                    }
                    // Breaks a rule every peer checks: only a broken peer relays it.
                    Err(_) => {
                        ctx.punish(
                            link,
                            Offence::Malformed("an order breaking the rules".into()),
                        );
                        return;
                    }
                };
                let arrival = match purpose {
                    InvPurpose::New => Arrival::Gossip,
                    InvPurpose::Holdings => Arrival::BookSync,
                };
                // Expired or stale: clocks differ, nobody is blamed.
                if verified.check_time(ctx.now_millis, arrival).is_err() {
                    return;
                }
                let maker = verified.order().maker;
                let is_new = matches!(self.insert(ctx, verified), Ok(Taken::New | Taken::Waiting));
                // A neighbour's holdings may be old news; a fresh order is a sign of life.
                if is_new && arrival == Arrival::Gossip {
                    self.heard_from(ctx, maker);
                }
            }
            Message::OrderUpdate(update) => match update.verify(&self.secp) {
                Ok(verified) => {
                    let maker = verified.update().maker;
                    match self.apply(ctx, verified) {
                        Ok(Applied::Changed) if purpose == InvPurpose::New => {
                            self.heard_from(ctx, maker);
                        }
                        Err(SubmitError::Book(crate::market::book::BookError::WrongMaker(_))) => {
                            ctx.punish(link, Offence::BadSignature("order update"));
                        }
                        _ => {}
                    }
                }
                Err(
                    UpdateError::BadSignature
                    | UpdateError::FundingProof(FundingProofError::BadSignature(_)),
                ) => {
                    ctx.punish(link, Offence::BadSignature("order update"));
                }
                Err(_) => ctx.punish(link, Offence::Malformed("an invalid order update".into())),
            },
            _ => {}
        }
    }

    fn wants(&mut self, _ctx: &mut Context<'_>, _link: LinkId, item: &InvItem) -> bool {
        match item.kind {
            InvKind::Order => !self.has(&OrderId(item.id)) && !self.refused.contains(&item.id),
            InvKind::OrderUpdate => {
                !self.updates.contains_key(&item.id) && !self.refused.contains(&item.id)
            }
            _ => false,
        }
    }

    fn object(&self, _chain: &Chain, item: &InvItem) -> Option<Message> {
        match item.kind {
            InvKind::Order => self
                .book
                .get(&OrderId(item.id))
                .map(|view| Message::Order(view.order.signed().clone())),
            InvKind::OrderUpdate => self
                .updates
                .get(&item.id)
                .and_then(|id| self.book.update_of(id))
                .map(|update| Message::OrderUpdate(update.signed().clone())),
            _ => None,
        }
    }

    fn holdings(&self, _chain: &Chain) -> Vec<InvItem> {
        let mut items: Vec<InvItem> = self
            .book
            .orders()
            .map(|view| InvItem::new(InvKind::Order, view.order.id().0))
            .collect();
        items.sort_unstable();
        let mut updates: Vec<InvItem> = self
            .updates
            .keys()
            .map(|digest| InvItem::new(InvKind::OrderUpdate, *digest))
            .collect();
        updates.sort_unstable();
        items.extend(updates);
        items
    }

    fn on_tick(&mut self, ctx: &mut Context<'_>) {
        if ctx.now_millis >= self.last_expiry_millis + EXPIRE_EVERY_MILLIS {
            self.last_expiry_millis = ctx.now_millis;
            // One pass over the updates for all the orders that lapsed together.
            let mut expired = KeyedSet::with_hasher(self.updates.hasher().derive(1));
            expired.extend(self.book.expire(ctx.now_millis));
            for id in &expired {
                self.release(id);
                ctx.event(Event::OrderDropped(*id));
            }
            if !expired.is_empty() {
                self.updates.retain(|_, order| !expired.contains(order));
            }
            for maker in self.book.lapse_marks(ctx.now_millis) {
                ctx.event(Event::MakerReachable(maker));
            }
            self.give_up_waiting(ctx.now_millis);
        }
    }

    fn on_notice(&mut self, ctx: &mut Context<'_>, notice: &Notice) {
        match notice {
            Notice::TransactionAccepted(txid) => {
                for id in self.waiting_on.remove(txid).into_iter().flatten() {
                    self.recheck(ctx, &id);
                }
            }
            // A block may bring coins the mempool never had (and make others spent).
            Notice::TipChanged(_) => {
                let ids: Vec<OrderId> = self.waiting.keys().copied().collect();
                for id in ids {
                    self.recheck(ctx, &id);
                }
            }
            Notice::TransactionsDropped(_) => {}
        }
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn core::any::Any {
        self
    }
}
