//! A trader's desk: what a driver holding an unlocked wallet and a node does on the market. It
//! places orders (funded by coins it reserves, signed by the node's key, which is the maker's
//! identity and peer id), takes the orders an incoming one crosses (one swap proposal per fill,
//! routed to the maker), answers proposals made to its own orders, cancels them, and remembers
//! the trades that settled. While the wallet is locked there is no desk: [`answer_locked`]
//! tells takers at once that the maker cannot sign. Sans-I/O like the rest of the core: the
//! driver submits the orders, updates and transactions it returns, and routes the messages.

use core::fmt;
use std::collections::{HashMap, VecDeque};

use bitcoin::secp256k1::{Keypair, Secp256k1};
use bitcoin::{OutPoint, Transaction, TxOut, Txid, XOnlyPublicKey};

use super::book::{Book, OrderView};
use super::order::{
    value_sats, Change, Order, OrderError, OrderId, OrderUpdate, Rounding, Side, SignedOrder,
    SignedUpdate, MAX_CLOCK_SKEW_MILLIS,
};
use super::record::DeskRecord;
use super::swap::{
    fill_terms, Maker, SettledFill, SwapError, SwapProposal, SwapResponse, TakerState, TakerSwap,
    UndoneFills, SWAP_TIMEOUT_MILLIS,
};
use crate::chain::assets::AssetId;
use crate::chain::utxo::Coin;
use crate::wallet::build::ForeignCoin;
use crate::wallet::metadata::DeviceId;
use crate::wallet::session::{NotOurs, OrderFunding, PayError, Wallet};
use crate::wire::{PeerId, RoutedKind};

/// Trades remembered for the history (the oldest are forgotten first).
pub const MAX_TRADES: usize = 1_000;
/// Fills one incoming order may take at once.
pub const MAX_TAKES: usize = 8;
/// How many times the part a failed swap was taking is placed again, at most: a maker that
/// refuses every proposal cannot keep a taker proposing to it.
pub const MAX_RETAKES: u8 = 2;
/// How many unanswered swaps a desk watches for a late completion ([`UnansweredTake`]); the
/// oldest is forgotten first.
pub const MAX_UNANSWERED: usize = 64;

/// What a person asks to trade: a limit order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderRequest {
    pub market: AssetId,
    pub side: Side,
    /// Satoshis per 10^8 base units.
    pub price: u64,
    /// Base units of the asset.
    pub amount: u64,
    /// How long the rest may wait in the book.
    pub lifetime_millis: u64,
    /// The fee rate of the swaps this order takes (a maker pays no fee).
    pub sat_per_vb: u64,
}

/// A message for another peer, to route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub to: PeerId,
    pub kind: RoutedKind,
    pub payload: Vec<u8>,
}

/// What placing an order did.
#[derive(Debug, Clone, Default)]
pub struct Placed {
    /// Swap proposals to the makers of the orders it crosses.
    pub proposals: Vec<Outgoing>,
    /// Base units those proposals take.
    pub taking: u64,
    /// The order for the rest, to submit to the book.
    pub resting: Option<SignedOrder>,
    /// The wallet's payment to itself that makes the rest's funding coin (when its coins held
    /// more than the rest needs), to submit to the mempool before the order goes to the book.
    /// Should the mempool refuse it, [`Desk::unplace`] the order.
    pub funding_tx: Option<Transaction>,
    /// Why the rest does not rest, when some was taken but the rest could not be placed.
    pub unplaced: Option<PlaceError>,
    /// Crossing orders matching passed over because their funding coins are spent or unknown
    /// here.
    pub passed_over: usize,
}

/// Why an order cannot be placed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlaceError {
    /// The order breaks a rule (zero, over-precise, too small, too long-lived...).
    Order(OrderError),
    /// The wallet cannot fund it.
    Funding(PayError),
    /// Taking a crossing order failed before anything was proposed.
    Take(SwapError),
    /// The wallet cannot prove it owns the order's coins.
    Proof(NotOurs),
}

impl fmt::Display for PlaceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlaceError::Order(err) => write!(f, "{err}"),
            PlaceError::Funding(err) => write!(f, "{err}"),
            PlaceError::Take(err) => write!(f, "a crossing order cannot be taken: {err}"),
            PlaceError::Proof(err) => write!(f, "the order's coins cannot be proven: {err}"),
        }
    }
}

impl std::error::Error for PlaceError {}

/// Why an order cannot be cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelError {
    UnknownOrder,
    /// Only its maker can cancel an order.
    NotMine,
    /// It is filled, cancelled or expired already.
    Closed,
    /// A swap of it is being settled; try again in a moment.
    Busy,
}

impl fmt::Display for CancelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CancelError::UnknownOrder => "no such order in the book",
            CancelError::NotMine => "only its maker can cancel an order",
            CancelError::Closed => "the order is filled, cancelled or expired already",
            CancelError::Busy => "a trade of this order is settling; try again in a moment",
        })
    }
}

impl std::error::Error for CancelError {}

/// A fill that settled: its transaction went to the mempool (and is [`Trade::undone`] if it
/// left the chain and the mempool for good).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trade {
    pub txid: Txid,
    pub order: OrderId,
    pub market: AssetId,
    /// Whether this wallet bought the asset (else it sold).
    pub bought: bool,
    /// Base units traded.
    pub quantity: u64,
    /// Satoshis paid for them.
    pub sats: u64,
    /// The maker's price.
    pub price: u64,
    /// Whether this wallet was the maker.
    pub as_maker: bool,
    pub millis: u64,
    /// Its transaction left the chain and the mempool for good (a reorganisation, a double
    /// spend): nothing was traded after all.
    pub undone: bool,
}

/// How a swap this desk proposed ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TakeOutcome {
    /// The maker signed: the transaction to submit (harmless if the mempool has it).
    Settled { trade: Trade, tx: Transaction },
    /// The maker refused; the coins are free again, and the part it was taking waits in
    /// [`Desk::take_retakes`].
    Refused { order: OrderId, reason: String },
    /// The maker cannot sign now (its wallet is locked); the coins are free again and the part
    /// waits in [`Desk::take_retakes`]. Its orders are to be skipped a while, as a maker that
    /// does not answer.
    Unavailable {
        order: OrderId,
        maker: XOnlyPublicKey,
    },
}

/// What the maker side makes of a proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The proposal keeps the order's promise: submit the signed transaction to the mempool,
    /// then report with [`Desk::answered`].
    Submit(Transaction),
    /// Send this refusal back.
    Refuse(Outgoing),
    /// Unreadable: nothing to answer.
    Ignore,
}

/// A swap this desk proposed, waiting for the maker.
#[derive(Debug, Clone)]
struct Take {
    swap: TakerSwap,
    trade: Trade,
    maker: XOnlyPublicKey,
    /// See [`UnansweredTake::until_millis`].
    until_millis: u64,
    /// The order it takes for, and how many times its part was placed again already.
    request: OrderRequest,
    retakes: u8,
}

impl Take {
    fn unanswered(&self) -> UnansweredTake {
        UnansweredTake {
            trade: self.trade.clone(),
            until_millis: self.until_millis,
        }
    }

    /// The part this swap was taking, to place again now that it failed; None once it was
    /// placed again [`MAX_RETAKES`] times.
    fn retake(&self) -> Option<Retake> {
        (self.retakes < MAX_RETAKES).then_some(Retake {
            request: OrderRequest {
                amount: self.trade.quantity,
                ..self.request
            },
            retakes: self.retakes + 1,
        })
    }
}

/// A swap this desk proposed that its maker did not answer in time, or that was still waiting
/// for its answer when the desk's record was kept (a reload came before the answer): the maker
/// holds the signed proposal and may still complete it. Its trade is listed once the wallet
/// sees its transaction ([`Desk::on_chain`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnansweredTake {
    pub trade: Trade,
    /// Past this no maker signs the proposal: its order's expiry, plus the clock skew receivers
    /// allow and a swap's timeout for the transaction to reach this wallet.
    pub until_millis: u64,
}

/// The part of an order that a swap its maker turned down (refused, or unavailable) was
/// taking: a limit order does not lose it, [`Desk::place_again`] matches it against the book
/// again (makers marked unreachable skipped) and rests the rest. A swap that timed out has no
/// such part: its maker may still complete it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retake {
    pub request: OrderRequest,
    retakes: u8,
}

/// How long a desk watches the orders that placing one of its orders passed over (their coins
/// not found): the fill update of another taker's swap, or a payment on its way, comes within
/// seconds; a maker that never had the coins does not make them later.
pub const PASSED_OVER_WATCH_MILLIS: u64 = 60_000;

/// A resting order of this desk placed past orders whose coins were not found, which it would
/// have taken: [`Desk::take_passed_over`] takes them once they can be taken.
#[derive(Debug, Clone)]
struct Watch {
    resting: OrderId,
    passed_over: Vec<OrderId>,
    /// The resting order's terms (its amount is what rests of it when it is placed again).
    request: OrderRequest,
    retakes: u8,
    until_millis: u64,
}

/// A resting order of this desk placed again by [`Desk::take_passed_over`].
#[derive(Debug, Clone)]
pub struct PlacedAgain {
    /// Cancels the resting order: to publish before what placing again made.
    pub cancel: SignedUpdate,
    /// The resting order's terms, for what rested of it.
    pub request: OrderRequest,
    pub placed: Placed,
}

/// A proposal to one of this desk's orders, signed and being submitted.
#[derive(Debug, Clone)]
struct Answering {
    from: PeerId,
    tx: Transaction,
    trade: Trade,
    expiry_millis: u64,
}

/// The trader's side of the market for one wallet and one node key.
#[derive(Debug)]
pub struct Desk {
    secp: Secp256k1<bitcoin::secp256k1::All>,
    key: Keypair,
    maker_key: XOnlyPublicKey,
    device: DeviceId,
    maker: Maker,
    takes: Vec<Take>,
    /// Parts of orders whose swaps failed, for the driver to place again.
    retakes: Vec<Retake>,
    watches: Vec<Watch>,
    answering: HashMap<Txid, Answering>,
    trades: VecDeque<Trade>,
    /// Oldest first; at most [`MAX_UNANSWERED`].
    unanswered: Vec<UnansweredTake>,
    nonce: u64,
}

impl Desk {
    /// The desk of the node whose identity is `key` (it signs orders and updates), for the
    /// wallet device `device` (its coin reservations are stamped with it).
    pub fn new(key: Keypair, device: DeviceId) -> Desk {
        Desk {
            secp: Secp256k1::new(),
            maker_key: key.x_only_public_key().0,
            key,
            device,
            maker: Maker::new(),
            takes: Vec::new(),
            retakes: Vec::new(),
            watches: Vec::new(),
            answering: HashMap::new(),
            trades: VecDeque::new(),
            unanswered: Vec::new(),
            nonce: 0,
        }
    }

    /// The key orders of this desk are made by.
    pub fn maker_key(&self) -> XOnlyPublicKey {
        self.maker_key
    }

    /// Trades that settled, oldest first.
    pub fn trades(&self) -> impl DoubleEndedIterator<Item = &Trade> + '_ {
        self.trades.iter()
    }

    /// What this desk keeps across a reload ([`Desk::restore`]): its trades, its orders'
    /// settled fills that a reorganisation could still reopen or (undone) fill again, and its
    /// swaps whose makers have not answered (the newest [`MAX_UNANSWERED`], those waiting now
    /// included).
    pub fn record(&self) -> DeskRecord {
        let mut settled: Vec<(OrderId, Vec<SettledFill>)> = self
            .maker
            .settled()
            .map(|(order, fills)| (*order, fills.to_vec()))
            .collect();
        settled.sort_unstable_by_key(|(order, _)| *order);
        // Sorted already.
        let undone: Vec<(OrderId, UndoneFills)> = self
            .maker
            .undone()
            .map(|(order, undone)| (*order, undone.clone()))
            .collect();
        let older = (self.unanswered.len() + self.takes.len()).saturating_sub(MAX_UNANSWERED);
        let unanswered: Vec<UnansweredTake> = self
            .unanswered
            .iter()
            .cloned()
            .chain(self.takes.iter().map(Take::unanswered))
            .skip(older)
            .collect();
        DeskRecord {
            trades: self.trades.iter().cloned().collect(),
            settled,
            unanswered,
            undone,
        }
    }

    /// Takes back what [`Desk::record`] kept, into a desk just made (at unlock).
    pub fn restore(&mut self, record: DeskRecord) {
        self.trades = record.trades.into();
        while self.trades.len() > MAX_TRADES {
            self.trades.pop_front();
        }
        for (order, fills) in record.settled {
            self.maker.restore_settled(order, fills);
        }
        for (order, undone) in record.undone {
            self.maker.restore_undone(order, undone);
        }
        for unanswered in record.unanswered {
            self.watch_unanswered(unanswered);
        }
    }

    /// The fills of this desk's orders whose settlement a reorganisation could still undo
    /// (fewer than [`REOPEN_DEPTH`] confirmations).
    ///
    /// [`REOPEN_DEPTH`]: crate::market::swap::REOPEN_DEPTH
    pub fn reopenable_fills(&self) -> usize {
        self.maker.settled_txids().count()
    }

    /// The wallet followed the chain or the mempool: fills settled deep enough to be final are
    /// forgotten, so the record of them stays as small as the last few blocks' trades. An
    /// undone trade whose transaction a block holds after all (another reorganisation) is done
    /// again, and the order of this desk it filled is filled again ([`Maker::on_redone`]): the
    /// updates returned are to publish. An unanswered swap whose
    /// transaction the wallet sees was completed by its maker after all: its trade is listed.
    /// Once the wallet has `caught_up` with the chain, the unanswered swaps no maker can sign
    /// any more are forgotten.
    pub fn on_chain(
        &mut self,
        wallet: &mut Wallet,
        book: &Book,
        caught_up: bool,
        now_millis: u64,
        aux_rand: &[u8; 32],
    ) -> Vec<SignedUpdate> {
        let settled: Vec<Txid> = self.maker.settled_txids().collect();
        for txid in settled {
            let depth = wallet.tracker().confirmations_of(&txid).unwrap_or(0);
            self.maker.on_confirmed(&txid, depth);
        }
        for trade in self.trades.iter_mut().filter(|trade| trade.undone) {
            trade.undone = !in_a_block(wallet, &trade.txid);
        }
        let mut completed = Vec::new();
        self.unanswered.retain(|take| {
            if wallet
                .tracker()
                .confirmations_of(&take.trade.txid)
                .is_some()
            {
                completed.push(take.trade.clone());
                return false;
            }
            !caught_up || take.until_millis > now_millis
        });
        for trade in completed {
            self.remember(trade);
        }
        let mut updates = Vec::new();
        let undone: Vec<OrderId> = self.maker.undone_orders().collect();
        for order in undone {
            let Some(view) = book.get(&order) else {
                self.maker.forget(&order);
                continue;
            };
            let Some(update) = self.maker.on_redone(&view, |txid| in_a_block(wallet, txid)) else {
                continue;
            };
            // The coins that fund the rest are held for the order, as after its swap.
            let expiry_millis = view.order.order().expiry_millis;
            wallet.reserve(
                update.change.funding(),
                self.device,
                expiry_millis,
                now_millis,
            );
            updates.push(self.sign_update(wallet, update, None, aux_rand));
        }
        updates
    }

    /// Swaps proposed and not answered yet.
    pub fn pending_takes(&self) -> usize {
        self.takes.len()
    }

    /// The open orders of this desk in `book`.
    pub fn my_orders<'b>(&self, book: &'b Book) -> Vec<OrderView<'b>> {
        book.orders()
            .filter(|view| view.order.order().maker == self.maker_key && view.remaining() > 0)
            .collect()
    }

    /// Places the limit order `request`: takes what it crosses in `book` (each fill proposed
    /// to its maker, the wallet's coins for it reserved until the swap's timeout) and rests the
    /// rest, funded by reserved coins. `coin` looks an outpoint up in the chain and mempool.
    /// Nothing is changed when it is refused.
    pub fn place(
        &mut self,
        wallet: &mut Wallet,
        book: &Book,
        coin: impl Fn(&OutPoint) -> Option<Coin>,
        request: OrderRequest,
        now_millis: u64,
        aux_rand: &[u8; 32],
    ) -> Result<Placed, PlaceError> {
        self.place_part(wallet, book, &coin, request, 0, now_millis, aux_rand)
    }

    /// The parts of orders whose swaps failed since the last call, to [`Desk::place_again`]
    /// (after marking the makers that did not answer, so that matching skips them).
    pub fn take_retakes(&mut self) -> Vec<Retake> {
        std::mem::take(&mut self.retakes)
    }

    /// Whether some resting order of this desk waits for orders it passed over
    /// ([`Desk::take_passed_over`] has anything to do).
    pub fn is_watching(&self) -> bool {
        !self.watches.is_empty()
    }

    /// Takes what placing passed over once it can be taken: when an order of this desk rests
    /// past orders whose coins were not found (another taker's swap had spent them, its fill
    /// update not here yet; or their payment had not come), and within
    /// [`PASSED_OVER_WATCH_MILLIS`] one of them is open again with its coins found and still
    /// crosses it, the desk cancels the resting order and places what rests of it again, as
    /// [`Desk::place`] does. Returns, for each, the cancel to publish first and what placing
    /// again did; when placing again fails the order stays as it was (no cancel). The driver
    /// calls it when its book or mempool moves.
    pub fn take_passed_over(
        &mut self,
        wallet: &mut Wallet,
        book: &Book,
        coin: impl Fn(&OutPoint) -> Option<Coin>,
        now_millis: u64,
        aux_rand: &[u8; 32],
    ) -> Vec<PlacedAgain> {
        self.watches.retain(|watch| watch.until_millis > now_millis);
        let mut taken = Vec::new();
        for watch in std::mem::take(&mut self.watches) {
            let Some(resting) = book.get(&watch.resting) else {
                // Not in the book yet: the driver submits it after placing.
                self.watches.push(watch);
                continue;
            };
            let remaining = resting.remaining();
            if remaining == 0 {
                continue;
            }
            // Would matching what rests take one of them now? Matching's own rules decide
            // (price, expiry, unreachable makers, partial fills too small), with the coins found.
            let incoming = Order {
                amount: remaining,
                ..resting.order.order().clone()
            };
            let matched = book.match_takeable(&incoming, now_millis, |view| {
                watch.passed_over.contains(&view.order.id()) && view.is_funded(&coin)
            });
            if matched.fills.is_empty() {
                self.watches.push(watch);
                continue;
            }
            // A taker may be taking it meanwhile (Busy): tried again at the next call.
            let Ok(cancel) = self.cancel(wallet, book, &watch.resting, now_millis, aux_rand) else {
                self.watches.push(watch);
                continue;
            };
            let request = OrderRequest {
                amount: remaining,
                ..watch.request
            };
            let placed = self.place_part(
                wallet,
                book,
                &coin,
                request,
                watch.retakes,
                now_millis,
                aux_rand,
            );
            match placed {
                Ok(placed) => taken.push(PlacedAgain {
                    cancel,
                    request,
                    placed,
                }),
                // The cancel is not published: the order rests on, its coins reserved again.
                Err(_) => {
                    wallet.reserve(
                        resting.funding,
                        self.device,
                        resting.order.order().expiry_millis,
                        now_millis,
                    );
                }
            }
        }
        taken
    }

    /// Places again the part of an order a failed swap was taking, as [`Desk::place`] does.
    pub fn place_again(
        &mut self,
        wallet: &mut Wallet,
        book: &Book,
        coin: impl Fn(&OutPoint) -> Option<Coin>,
        retake: Retake,
        now_millis: u64,
        aux_rand: &[u8; 32],
    ) -> Result<Placed, PlaceError> {
        let Retake { request, retakes } = retake;
        self.place_part(wallet, book, &coin, request, retakes, now_millis, aux_rand)
    }

    /// [`Desk::place`], for an order whose part was placed again `retakes` times.
    #[allow(clippy::too_many_arguments)]
    fn place_part(
        &mut self,
        wallet: &mut Wallet,
        book: &Book,
        coin: &dyn Fn(&OutPoint) -> Option<Coin>,
        request: OrderRequest,
        retakes: u8,
        now_millis: u64,
        aux_rand: &[u8; 32],
    ) -> Result<Placed, PlaceError> {
        let receive = wallet.swap_receive_script();
        let incoming = Order {
            market: request.market,
            side: request.side,
            price: request.price,
            amount: request.amount,
            created_millis: now_millis,
            expiry_millis: now_millis.saturating_add(request.lifetime_millis),
            nonce: self.nonce,
            maker: self.maker_key,
            funding: vec![OutPoint::null()],
            receive: receive.clone(),
            change: receive,
        };
        incoming.check().map_err(PlaceError::Order)?;
        let mut placed = Placed::default();
        // An order whose coins this tab cannot find cannot be taken (`OrderView::is_funded`).
        // Passed over, it does not stand between the taker and the orders behind it.
        let mut passed_over = Vec::new();
        let matched = book.match_takeable(&incoming, now_millis, |view| {
            let funded = view.is_funded(coin);
            if !funded {
                passed_over.push(view.order.id());
            }
            funded
        });
        placed.passed_over = passed_over.len();
        for fill in matched.fills.iter().take(MAX_TAKES) {
            match self.take(
                wallet, book, coin, fill, &request, retakes, now_millis, aux_rand,
            ) {
                Ok(proposal) => {
                    placed.taking += fill.quantity;
                    placed.proposals.push(proposal);
                }
                // Nothing taken yet: the person hears why.
                Err(err) if placed.proposals.is_empty() => return Err(err),
                // Some taken: the rest waits in the book.
                Err(_) => break,
            }
        }
        let rest = request.amount - placed.taking;
        if rest > 0 {
            match self.rest(wallet, book, &request, rest, now_millis, aux_rand) {
                Ok((order, funding_tx)) => {
                    if !passed_over.is_empty() && retakes < MAX_RETAKES {
                        self.watches.push(Watch {
                            resting: order.order.id(),
                            passed_over,
                            request,
                            retakes: retakes + 1,
                            until_millis: now_millis.saturating_add(PASSED_OVER_WATCH_MILLIS),
                        });
                    }
                    placed.resting = Some(order);
                    placed.funding_tx = funding_tx;
                }
                Err(err) if placed.proposals.is_empty() => return Err(err),
                Err(err) => placed.unplaced = Some(err),
            }
        }
        Ok(placed)
    }

    /// Proposes the fill `fill` of `book`'s order to its maker.
    #[allow(clippy::too_many_arguments)]
    fn take(
        &mut self,
        wallet: &mut Wallet,
        book: &Book,
        coin: &dyn Fn(&OutPoint) -> Option<Coin>,
        fill: &super::book::Fill,
        request: &OrderRequest,
        retakes: u8,
        now_millis: u64,
        aux_rand: &[u8; 32],
    ) -> Result<Outgoing, PlaceError> {
        let view = book
            .get(&fill.order)
            .ok_or(PlaceError::Take(SwapError::OrderClosed))?;
        let maker_coins = view
            .funding
            .iter()
            .map(|outpoint| {
                let coin = coin(outpoint).ok_or(SwapError::UnknownInput(*outpoint))?;
                Ok(ForeignCoin {
                    outpoint: *outpoint,
                    txout: coin.output,
                    assets: coin.assets,
                })
            })
            .collect::<Result<Vec<_>, SwapError>>()
            .map_err(PlaceError::Take)?;
        let terms = fill_terms(
            &view,
            &maker_coins,
            fill.quantity,
            wallet.swap_receive_script(),
        )
        .map_err(PlaceError::Take)?;
        let built = wallet
            .prepare_swap(&terms, request.sat_per_vb, now_millis)
            .map_err(PlaceError::Funding)?;
        let tx = wallet.sign(&built, aux_rand);
        let mine = built.own_coins();
        wallet.reserve(
            &mine,
            self.device,
            now_millis + SWAP_TIMEOUT_MILLIS,
            now_millis,
        );
        let proposal = SwapProposal {
            order: fill.order,
            sequence: fill.sequence,
            quantity: fill.quantity,
            tx,
        };
        let outgoing = Outgoing {
            to: PeerId::of(&fill.maker),
            kind: RoutedKind::SwapProposal,
            payload: proposal.encode(),
        };
        let swap = TakerSwap::new(proposal, mine, now_millis);
        self.takes.push(Take {
            trade: Trade {
                txid: swap.txid(),
                order: fill.order,
                market: request.market,
                bought: request.side == Side::Bid,
                quantity: fill.quantity,
                sats: fill.sats,
                price: fill.price,
                as_maker: false,
                millis: now_millis,
                undone: false,
            },
            swap,
            maker: fill.maker,
            until_millis: view
                .order
                .order()
                .expiry_millis
                .saturating_add(MAX_CLOCK_SKEW_MILLIS + SWAP_TIMEOUT_MILLIS),
            request: *request,
            retakes,
        });
        Ok(outgoing)
    }

    /// Signs the order for `rest` of `request`, funded by reserved coins, and the payment that
    /// makes its funding coin if there is one.
    fn rest(
        &mut self,
        wallet: &mut Wallet,
        book: &Book,
        request: &OrderRequest,
        rest: u64,
        now_millis: u64,
        aux_rand: &[u8; 32],
    ) -> Result<(SignedOrder, Option<Transaction>), PlaceError> {
        let sats = value_sats(rest, request.price, Rounding::Up)
            .ok_or(PlaceError::Order(OrderError::TooLarge))?;
        let OrderFunding {
            coins: funding,
            split,
        } = wallet
            .prepare_order_funding(
                request.side,
                request.market,
                rest,
                sats,
                request.sat_per_vb,
                now_millis,
            )
            .map_err(PlaceError::Funding)?;
        let created_millis = created_after_holders(book, &funding, now_millis);
        let expiry_millis = created_millis.saturating_add(request.lifetime_millis);
        let mut order = Order {
            market: request.market,
            side: request.side,
            price: request.price,
            amount: rest,
            created_millis,
            expiry_millis,
            nonce: self.nonce,
            maker: self.maker_key,
            funding: funding.clone(),
            receive: wallet.swap_receive_script(),
            change: wallet.swap_receive_script(),
        };
        order.check().map_err(PlaceError::Order)?;
        // Signed first, so that the order's scripts come after the ones the payment uses.
        let funding_tx = split.map(|split| wallet.sign(&split, aux_rand));
        (order.receive, order.change) = wallet.order_scripts();
        let proofs = wallet
            .prove_funding(&order.id().0, &funding, funding_tx.as_ref(), aux_rand)
            .map_err(PlaceError::Proof)?;
        self.nonce += 1;
        wallet.reserve(&funding, self.device, expiry_millis, now_millis);
        Ok((
            SignedOrder::sign(&self.secp, order, &self.key, proofs, aux_rand),
            funding_tx,
        ))
    }

    /// An order [`Desk::place`] made that did not reach the book (its funding payment or the
    /// order itself was refused): its coins are free again.
    pub fn unplace(&mut self, wallet: &mut Wallet, order: &SignedOrder, now_millis: u64) {
        wallet.reserve(&order.order.funding, self.device, 0, now_millis);
    }

    /// Cancels this desk's order `id`; its coins are free again.
    pub fn cancel(
        &mut self,
        wallet: &mut Wallet,
        book: &Book,
        id: &OrderId,
        now_millis: u64,
        aux_rand: &[u8; 32],
    ) -> Result<SignedUpdate, CancelError> {
        let view = book.get(id).ok_or(CancelError::UnknownOrder)?;
        if view.order.order().maker != self.maker_key {
            return Err(CancelError::NotMine);
        }
        if view.remaining() == 0 || view.order.order().expiry_millis <= now_millis {
            return Err(CancelError::Closed);
        }
        if self.maker.is_busy(id) {
            return Err(CancelError::Busy);
        }
        wallet.reserve(view.funding, self.device, 0, now_millis);
        let update = OrderUpdate {
            order: *id,
            maker: self.maker_key,
            sequence: view.sequence + 1,
            change: Change::Cancel,
        };
        Ok(SignedUpdate::sign(
            &self.secp,
            update,
            &self.key,
            Vec::new(),
            aux_rand,
        ))
    }

    /// A routed swap proposal from `from`: checked against this desk's order and, when it
    /// keeps the order's promise, signed.
    #[allow(clippy::too_many_arguments)]
    pub fn answer(
        &mut self,
        wallet: &Wallet,
        book: &Book,
        coin: impl Fn(&OutPoint) -> Option<Coin>,
        from: PeerId,
        payload: &[u8],
        now_millis: u64,
        aux_rand: &[u8; 32],
    ) -> Answer {
        let Ok(proposal) = SwapProposal::decode(payload) else {
            return Answer::Ignore;
        };
        let txid = proposal.tx.compute_txid();
        let refuse = |err: &dyn fmt::Display| {
            Answer::Refuse(Outgoing {
                to: from,
                kind: RoutedKind::SwapResponse,
                payload: SwapResponse::refusal(txid, err).encode(),
            })
        };
        let Some(view) = book.get(&proposal.order) else {
            return refuse(&SwapError::OrderClosed);
        };
        let order = view.order.order();
        if order.maker != self.maker_key {
            return refuse(&SwapError::WrongOrder);
        }
        let tracker = wallet.tracker();
        let checked = match self.maker.on_proposal(
            &view,
            &proposal,
            &coin,
            |outpoint| tracker.key_of(outpoint).is_some(),
            now_millis,
        ) {
            Ok(checked) => checked,
            Err(err) => return refuse(&err),
        };
        let prevouts: Option<Vec<TxOut>> = proposal
            .tx
            .input
            .iter()
            .map(|txin| coin(&txin.previous_output).map(|coin| coin.output))
            .collect();
        let signed = prevouts.and_then(|prevouts| {
            wallet.sign_inputs(&proposal.tx, &prevouts, &checked.maker_inputs, aux_rand)
        });
        let Some(signed) = signed else {
            self.maker.fail(&txid);
            return refuse(&SwapError::WrongFunding);
        };
        let sats = order.fill_value(checked.quantity).unwrap_or(0);
        self.answering.insert(
            txid,
            Answering {
                from,
                tx: signed.clone(),
                trade: Trade {
                    txid,
                    order: proposal.order,
                    market: order.market,
                    bought: order.side == Side::Bid,
                    quantity: checked.quantity,
                    sats,
                    price: order.price,
                    as_maker: true,
                    millis: now_millis,
                    undone: false,
                },
                expiry_millis: order.expiry_millis,
            },
        );
        Answer::Submit(signed)
    }

    /// The mempool's verdict on the transaction of an [`Answer::Submit`]: the answer to route
    /// back, and on acceptance the fill update to submit to the book and the trade.
    pub fn answered(
        &mut self,
        wallet: &mut Wallet,
        txid: &Txid,
        accepted: Result<(), String>,
        now_millis: u64,
        aux_rand: &[u8; 32],
    ) -> Option<(Outgoing, Option<(SignedUpdate, Trade)>)> {
        let answering = self.answering.remove(txid)?;
        let respond = |response: SwapResponse| Outgoing {
            to: answering.from,
            kind: RoutedKind::SwapResponse,
            payload: response.encode(),
        };
        if let Err(reason) = accepted {
            self.maker.fail(txid);
            return Some((respond(SwapResponse::refusal(*txid, &reason)), None));
        }
        let update = self.maker.settle(txid)?;
        if let Change::Fill { funding, .. } = &update.change {
            // The change that funds the rest is held back like the coins before it.
            wallet.reserve(funding, self.device, answering.expiry_millis, now_millis);
        }
        let signed = self.sign_update(wallet, update, Some(&answering.tx), aux_rand);
        self.remember(answering.trade.clone());
        Some((
            respond(SwapResponse::Accepted(answering.tx)),
            Some((signed, answering.trade)),
        ))
    }

    /// A routed swap answer from `from` to a proposal of this desk.
    pub fn on_response(
        &mut self,
        wallet: &mut Wallet,
        from: PeerId,
        payload: &[u8],
        now_millis: u64,
    ) -> Option<TakeOutcome> {
        let response = SwapResponse::decode(payload).ok()?;
        let txid = response.txid();
        let at = self
            .takes
            .iter()
            .position(|take| take.swap.txid() == txid && PeerId::of(&take.maker) == from)?;
        // An answer that is not the proposed transaction signed is ignored; the swap times out.
        let state = self.takes[at].swap.on_response(response).ok()?.clone();
        let take = self.takes.remove(at);
        let turned_down = match state {
            TakerState::Settled(tx) => {
                self.remember(take.trade.clone());
                return Some(TakeOutcome::Settled {
                    trade: take.trade,
                    tx,
                });
            }
            TakerState::Refused(reason) => TakeOutcome::Refused {
                order: take.trade.order,
                reason,
            },
            TakerState::Unavailable => TakeOutcome::Unavailable {
                order: take.trade.order,
                maker: take.maker,
            },
            TakerState::Proposed | TakerState::TimedOut => return None,
        };
        // The maker turned it down: the coins are free again, and its part is to place again.
        wallet.reserve(take.swap.reserved(), self.device, 0, now_millis);
        self.retakes.extend(take.retake());
        Some(turned_down)
    }

    /// Time passes: swaps unanswered past their deadline are given up and their coins freed
    /// (and watched: [`UnansweredTake`]). Returns the makers that did not answer, to mark
    /// unreachable.
    pub fn on_tick(&mut self, wallet: &mut Wallet, now_millis: u64) -> Vec<XOnlyPublicKey> {
        let mut silent = Vec::new();
        let mut given_up = Vec::new();
        let device = self.device;
        // Their parts are not placed again: the maker holds the signed proposal and may still
        // complete it, and the part would trade twice.
        self.takes.retain_mut(|take| {
            if take.swap.on_tick(now_millis) {
                wallet.reserve(take.swap.reserved(), device, 0, now_millis);
                silent.push(take.maker);
                given_up.push(take.unanswered());
                return false;
            }
            true
        });
        for take in given_up {
            self.watch_unanswered(take);
        }
        silent
    }

    /// Swaps given up whose makers may still complete them.
    pub fn unanswered(&self) -> impl DoubleEndedIterator<Item = &UnansweredTake> + '_ {
        self.unanswered.iter()
    }

    /// Transactions left the chain and the mempool for good: their trades are undone, and the
    /// updates that reopen the fills of this desk's orders they settled are returned, on the
    /// coins the orders had before. An order one of whose old coins is gone too (`coin` does
    /// not find it: the payment that made it went with the swap, or lost a double spend) is
    /// cancelled instead, as nobody could take it. An order cancelled since stays so: the
    /// coins it had are the wallet's again, not held. A transaction the wallet has in a block
    /// (a report that came late, or a later reorganisation put it back) is not dropped. Call
    /// it once the wallet has caught up with the chain: its proofs need the coins' payments.
    pub fn on_dropped(
        &mut self,
        wallet: &mut Wallet,
        book: &Book,
        coin: impl Fn(&OutPoint) -> Option<Coin>,
        dropped: &[Txid],
        now_millis: u64,
        aux_rand: &[u8; 32],
    ) -> Vec<SignedUpdate> {
        let dropped: Vec<Txid> = dropped
            .iter()
            .filter(|txid| !in_a_block(wallet, txid))
            .copied()
            .collect();
        let dropped = &dropped[..];
        // One update per order: two swaps of one order dropped together reopen from the first.
        let mut orders: Vec<OrderId> = Vec::new();
        for trade in self
            .trades
            .iter_mut()
            .filter(|trade| dropped.contains(&trade.txid))
        {
            trade.undone = true;
            if !orders.contains(&trade.order) {
                orders.push(trade.order);
            }
        }
        let mut updates = Vec::new();
        for order in orders {
            let Some(view) = book.get(&order) else {
                // Expired: its fills would otherwise stay in the record for good.
                self.maker.forget(&order);
                continue;
            };
            let Some(mut update) = self.maker.on_dropped(dropped, &view) else {
                continue;
            };
            if view.cancelled {
                wallet.reserve(update.change.funding(), self.device, 0, now_millis);
                continue;
            }
            if update.change.funding().iter().any(|at| coin(at).is_none()) {
                update.change = Change::Cancel;
            }
            updates.push(self.sign_update(wallet, update, None, aux_rand));
        }
        updates
    }

    /// Signs an update of this desk's order, with the proofs of the coins that fund its rest
    /// (`made_by`: the transaction that makes some of them, if the wallet does not follow it
    /// yet). Those coins pay the wallet's own scripts, so the proofs cannot fail; were they to,
    /// the rest is withdrawn (a cancel) rather than published with coins nobody can check.
    fn sign_update(
        &self,
        wallet: &Wallet,
        update: OrderUpdate,
        made_by: Option<&Transaction>,
        aux_rand: &[u8; 32],
    ) -> SignedUpdate {
        let proofs =
            wallet.prove_funding(&update.digest(), update.change.funding(), made_by, aux_rand);
        let (update, proofs) = match proofs {
            Ok(proofs) => (update, proofs),
            Err(_) => (
                OrderUpdate {
                    change: Change::Cancel,
                    ..update
                },
                Vec::new(),
            ),
        };
        SignedUpdate::sign(&self.secp, update, &self.key, proofs, aux_rand)
    }

    fn watch_unanswered(&mut self, take: UnansweredTake) {
        if self.unanswered.len() == MAX_UNANSWERED {
            self.unanswered.remove(0);
        }
        self.unanswered.push(take);
    }

    fn remember(&mut self, trade: Trade) {
        if self.trades.len() == MAX_TRADES {
            self.trades.pop_front();
        }
        self.trades.push_back(trade);
    }
}

/// Whether the wallet has `txid` in a block of the chain it follows.
fn in_a_block(wallet: &Wallet, txid: &Txid) -> bool {
    wallet.tracker().confirmations_of(txid).unwrap_or(0) > 0
}

/// When an order on `funding` is made: now, or just after the newest order of the book on one
/// of those coins if that one is not older. Relays keep one order per coin, the newest of its
/// owner's, so an order dated before a sibling device's cancelled one (whose clock runs ahead
/// of this one's), or in the same millisecond as this desk's last, would be refused until
/// that one expires. Never more than [`MAX_CLOCK_SKEW_MILLIS`] ahead, which receivers refuse.
fn created_after_holders(book: &Book, funding: &[OutPoint], now_millis: u64) -> u64 {
    let newest = book
        .orders()
        .filter(|view| {
            let own = &view.order.order().funding;
            own.iter()
                .chain(view.funding)
                .any(|coin| funding.contains(coin))
        })
        .map(|view| view.order.order().created_millis)
        .max();
    match newest {
        Some(newest) if newest >= now_millis => newest
            .saturating_add(1)
            .min(now_millis.saturating_add(MAX_CLOCK_SKEW_MILLIS)),
        _ => now_millis,
    }
}

/// What a maker whose wallet is locked (it has no desk) answers a routed swap proposal from
/// `from`: that it cannot sign now, so the taker frees its coins and skips the maker's orders
/// at once rather than after [`SWAP_TIMEOUT_MILLIS`]. None for bytes that are no proposal.
pub fn answer_locked(from: PeerId, payload: &[u8]) -> Option<Outgoing> {
    let proposal = SwapProposal::decode(payload).ok()?;
    Some(Outgoing {
        to: from,
        kind: RoutedKind::SwapResponse,
        payload: SwapResponse::Unavailable {
            txid: proposal.tx.compute_txid(),
        }
        .encode(),
    })
}
