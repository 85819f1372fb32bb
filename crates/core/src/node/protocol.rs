//! The one small trait through which a protocol (chain sync, mempool relay, the market...)
//! plugs into the node, and the context it acts through. A protocol owns its state, reads and
//! changes the chain through the context, reads the mempool that the mempool protocol shares
//! ([`Protocol::shared_mempool`]), and asks the node to send, announce, punish or tell: it never
//! sees another protocol, so adding one touches no other.

use core::any::Any;
use core::fmt;
use std::collections::BTreeMap;

use bitcoin::{OutPoint, TxOut, Txid};

use super::link::{Link, LinkId, PeerInfo};
use super::Event;
use crate::chain::mempool::Mempool;
use crate::chain::state::{Chain, TipChange};
use crate::wire::{InvItem, InvKind, InvPurpose, Message};

/// What a peer did wrong, and how much it costs it: at [`BAN_SCORE`] the link closes and the
/// peer is banned for a while.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offence {
    /// Bytes that are not a message (the decoder's words).
    Malformed(String),
    /// A message larger than the maximum.
    Oversized,
    /// Broke the protocol's sequence (a message before the hello, a second hello).
    ProtocolViolation(&'static str),
    /// A block or header that breaks a consensus rule.
    InvalidBlock(String),
    /// A transaction that breaks a consensus rule.
    InvalidTransaction(String),
    /// A signature that does not verify (order, update, routed message).
    BadSignature(&'static str),
    /// An object nobody asked it for.
    Unrequested(&'static str),
    /// More than its budget of a class of messages.
    OverBudget(&'static str),
    /// Headers that do not connect to anything known.
    Disconnected,
}

/// The score at which a peer is banned.
pub const BAN_SCORE: u32 = 100;

impl Offence {
    pub fn score(&self) -> u32 {
        match self {
            Offence::Malformed(_) => 20,
            Offence::Oversized => 50,
            Offence::ProtocolViolation(_) => BAN_SCORE,
            Offence::InvalidBlock(_) => BAN_SCORE,
            Offence::InvalidTransaction(_) => 20,
            Offence::BadSignature(_) => 50,
            Offence::Unrequested(_) => 10,
            Offence::OverBudget(_) => 5,
            Offence::Disconnected => 10,
        }
    }
}

impl fmt::Display for Offence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Offence::Malformed(reason) => write!(f, "malformed message: {reason}"),
            Offence::Oversized => f.write_str("a message above the size limit"),
            Offence::ProtocolViolation(what) => write!(f, "protocol violation: {what}"),
            Offence::InvalidBlock(reason) => write!(f, "invalid block: {reason}"),
            Offence::InvalidTransaction(reason) => write!(f, "invalid transaction: {reason}"),
            Offence::BadSignature(what) => write!(f, "a bad signature on a {what}"),
            Offence::Unrequested(what) => write!(f, "an unrequested {what}"),
            Offence::OverBudget(what) => write!(f, "too many {what} messages"),
            Offence::Disconnected => f.write_str("headers that connect to nothing known"),
        }
    }
}

/// What one protocol tells the others (through the node) about a change of shared state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The active chain moved.
    TipChanged(TipChange),
    /// Transactions left the mempool and the chain for good (conflicted or invalid now).
    TransactionsDropped(Vec<Txid>),
    /// The mempool took a transaction: its outputs can be read ([`Context::output`]).
    TransactionAccepted(Txid),
}

/// What a protocol asks the node to do.
#[derive(Debug, Clone)]
pub(crate) enum Action {
    Send(LinkId, Box<Message>),
    /// Announce a newly validated object to every peer that does not know it.
    Announce(InvItem),
    Offence(LinkId, Offence),
    Notice(Notice),
    Event(Event),
}

/// How a protocol acts: the clock, the chain, the unconfirmed transactions another protocol
/// shares, the links, and the node's hands.
pub struct Context<'a> {
    pub now_millis: u64,
    pub chain: &'a mut Chain,
    /// The mempool, to read, when a protocol other than this one holds it.
    pub mempool: Option<&'a Mempool>,
    pub(crate) links: &'a BTreeMap<LinkId, Link>,
    pub(crate) actions: &'a mut Vec<Action>,
}

impl Context<'_> {
    pub fn send(&mut self, link: LinkId, message: Message) {
        self.actions.push(Action::Send(link, Box::new(message)));
    }

    pub fn announce(&mut self, item: InvItem) {
        self.actions.push(Action::Announce(item));
    }

    pub fn punish(&mut self, link: LinkId, offence: Offence) {
        self.actions.push(Action::Offence(link, offence));
    }

    pub fn notify(&mut self, notice: Notice) {
        self.actions.push(Action::Notice(notice));
    }

    pub fn event(&mut self, event: Event) {
        self.actions.push(Action::Event(event));
    }

    /// Links past their handshake, with their peers.
    pub fn peers(&self) -> impl Iterator<Item = (LinkId, &PeerInfo)> + '_ {
        self.links
            .iter()
            .filter(|(_, link)| link.is_ready())
            .filter_map(|(id, link)| link.peer().map(|peer| (*id, peer)))
    }

    pub fn peer(&self, link: LinkId) -> Option<&PeerInfo> {
        self.links
            .get(&link)
            .filter(|link| link.is_ready())
            .and_then(Link::peer)
    }

    /// The output at `outpoint`, if the chain holds it unspent or a mempool transaction made
    /// it (spent or not: what it is locked to never changes).
    pub fn output(&self, outpoint: &OutPoint) -> Option<TxOut> {
        match self.mempool {
            Some(mempool) => mempool.output(self.chain, outpoint),
            None => self
                .chain
                .utxo()
                .get(outpoint)
                .map(|coin| coin.output.clone()),
        }
    }

    /// The unix time in seconds (what chain and mempool rules take).
    pub fn now_secs(&self) -> u64 {
        self.now_millis / 1000
    }
}

/// A protocol of the node.
pub trait Protocol: Any + Send {
    fn name(&self) -> &'static str;

    /// The inventory kinds whose objects it serves, judges and lists.
    fn kinds(&self) -> &'static [InvKind];

    /// Whether `message` (other than the node's own: hello, goodbye, ping, pong, inv, getdata,
    /// notfound, getpeers, peers, routed) is for it.
    fn handles(&self, message: &Message) -> bool;

    /// A message for it. `requested` says how the node asked for it if it did (objects nobody
    /// asked for are the protocol's to judge).
    fn on_message(
        &mut self,
        ctx: &mut Context<'_>,
        link: LinkId,
        message: Message,
        requested: Option<InvPurpose>,
    );

    /// Whether the node should fetch an announced object of its kinds.
    fn wants(&mut self, ctx: &mut Context<'_>, link: LinkId, item: &InvItem) -> bool;

    /// The message carrying an object it has, to answer a request.
    fn object(&self, chain: &Chain, item: &InvItem) -> Option<Message>;

    /// What it holds, listed to a neighbour that just connected.
    fn holdings(&self, _chain: &Chain) -> Vec<InvItem> {
        Vec::new()
    }

    fn on_link_ready(&mut self, _ctx: &mut Context<'_>, _link: LinkId) {}

    fn on_link_gone(&mut self, _ctx: &mut Context<'_>, _link: LinkId) {}

    fn on_notice(&mut self, _ctx: &mut Context<'_>, _notice: &Notice) {}

    fn on_tick(&mut self, _ctx: &mut Context<'_>) {}

    /// The unconfirmed transactions it holds, for the other protocols to read (the mempool
    /// protocol's).
    fn shared_mempool(&self) -> Option<&Mempool> {
        None
    }

    fn as_any(&self) -> &dyn Any;

    fn as_any_mut(&mut self) -> &mut dyn Any;
}
