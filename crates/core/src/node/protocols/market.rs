//! Order relay: announced orders and maker updates are fetched, their signatures checked once,
//! merged into the book, and announced on. Orders announced as new must be fresh; those listed
//! as a neighbour's holdings may be older (ADR 0004's time rule). Expired orders are dropped.
//! An order or update that names a coin of this node's chain or mempool locked to another key
//! than its funding proof's is refused and not fetched again: what an output is locked to never
//! changes, so it can never be good. (Coins neither holds — spent and confirmed, not arrived, or
//! never made — are not judged here: takers look them up before they propose a swap.)

use std::collections::VecDeque;

use bitcoin::secp256k1::{Secp256k1, VerifyOnly};
use bitcoin::OutPoint;

use crate::chain::state::Chain;
use crate::hashing::{KeyedHashing, KeyedMap, KeyedSet};
use crate::market::book::{Applied, Book, BookLimits, Inserted};
use crate::market::order::{
    Arrival, FundingProof, FundingProofError, OrderError, OrderId, SignedOrder, SignedUpdate,
    UpdateError, VerifiedOrder,
};
use crate::node::link::LinkId;
use crate::node::protocol::{Context, Offence, Protocol};
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

/// Why a local order or update is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitError {
    Order(OrderError),
    Update(UpdateError),
    Book(crate::market::book::BookError),
    /// This coin, in the node's chain or mempool, is locked to another key than its funding
    /// proof's.
    NotTheOwners(OutPoint),
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
        }
    }
}

impl std::error::Error for SubmitError {}

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
    /// neighbour's book. Expired or damaged entries are refused, to be deleted.
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
        let id = verified.id();
        self.insert(ctx, verified)?;
        Ok(id)
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

    /// The first of `funding` that this node's chain or mempool holds locked to another key
    /// than its proof's, if one is.
    fn disowned(
        ctx: &Context<'_>,
        funding: &[OutPoint],
        proofs: &[FundingProof],
    ) -> Option<OutPoint> {
        funding
            .iter()
            .zip(proofs)
            .find(|(coin, proof)| {
                ctx.output(coin)
                    .is_some_and(|output| !proof.owns(&output.script_pubkey))
            })
            .map(|(coin, _)| *coin)
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

    fn insert(
        &mut self,
        ctx: &mut Context<'_>,
        order: VerifiedOrder,
    ) -> Result<Inserted, SubmitError> {
        let id = order.id();
        let signed = order.signed();
        if let Some(coin) = Self::disowned(ctx, &signed.order.funding, &signed.proofs) {
            self.refuse(id.0);
            return Err(SubmitError::NotTheOwners(coin));
        }
        let inserted = self.book.insert_order(order).map_err(SubmitError::Book)?;
        if inserted == Inserted::New {
            ctx.event(Event::OrderAccepted(id));
            ctx.announce(InvItem::new(InvKind::Order, id.0));
            // Updates that waited for it may have applied.
            if let Some(update) = self.book.update_of(&id) {
                self.updates.insert(update.digest(), id);
            }
        }
        Ok(inserted)
    }

    fn apply(
        &mut self,
        ctx: &mut Context<'_>,
        update: crate::market::order::VerifiedUpdate,
    ) -> Result<Applied, SubmitError> {
        let id = update.update().order;
        let digest = update.digest();
        let signed = update.signed();
        if let Some(coin) = Self::disowned(ctx, signed.update.change.funding(), &signed.proofs) {
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
            // Held until its order comes; relayed with it (as holdings) if it wins.
            Applied::Orphaned | Applied::Superseded => {}
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
                let is_new = self.insert(ctx, verified) == Ok(Inserted::New);
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
            InvKind::Order => {
                self.book.get(&OrderId(item.id)).is_none() && !self.refused.contains(&item.id)
            }
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
            if !expired.is_empty() {
                self.updates.retain(|_, order| !expired.contains(order));
            }
            for maker in self.book.lapse_marks(ctx.now_millis) {
                ctx.event(Event::MakerReachable(maker));
            }
        }
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn core::any::Any {
        self
    }
}
