//! Settling a fill: one transaction, built by the taker and completed by the maker, that pays
//! each side exactly what the maker's order says. Either all of it confirms or nothing moves.
//!
//! 1. The taker turns the fill into [`SwapTerms`] ([`fill_terms`]), has its wallet build and
//!    sign its own inputs (`wallet::build::build_swap`), reserves those coins, and sends the
//!    [`SwapProposal`] to the maker ([`TakerSwap`] follows it).
//! 2. The maker checks that it gets what its order promised and spends nothing else of its own
//!    ([`check_proposal`], run by [`Maker::on_proposal`]), signs its inputs, hands the
//!    transaction to its mempool and, once accepted, publishes the fill as a signed update
//!    ([`Maker::settle`]). It answers with a [`SwapResponse`].
//! 3. If a reorganisation (or a double spend by the taker) drops the transaction, the maker
//!    publishes an update that reopens the fill ([`Maker::on_dropped`]).

use core::fmt;
use std::collections::{BTreeMap, HashMap};

use bitcoin::consensus::encode;
use bitcoin::hashes::Hash;
use bitcoin::{Amount, OutPoint, ScriptBuf, Transaction, Txid};

use super::book::OrderView;
use super::order::{Change, OrderId, OrderUpdate, Side, VERSION};
use crate::chain::assets::{allocate, AssetAmounts, AssetError, AssetId};
use crate::chain::mempool::MAX_STANDARD_TX_WEIGHT;
use crate::chain::tx::{check_transaction, TxError};
use crate::chain::utxo::Coin;
use crate::encode::{EndOfInput, Reader};
use crate::wallet::build::{dust_limit, ForeignCoin, SwapOutput, SwapTerms};

/// How long a taker waits for the maker's answer before it gives its coins back.
pub const SWAP_TIMEOUT_MILLIS: u64 = 60_000;
/// The longest refusal reason carried.
pub const MAX_REASON_LEN: usize = 200;
/// How deep a swap must be buried before the maker forgets how to reopen it.
pub const REOPEN_DEPTH: u32 = 6;
/// How many proposals a maker remembers, to refuse replays.
pub const MAX_REMEMBERED: usize = 10_000;

/// Why a swap cannot go ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SwapError {
    /// A message's bytes are malformed; the text says where.
    Malformed(&'static str),
    UnknownVersion(u8),
    /// The proposal names another order.
    WrongOrder,
    /// The order is cancelled, filled or expired.
    OrderClosed,
    /// The proposal was made against an older state of the order.
    Stale {
        sequence: u32,
        current: u32,
    },
    /// A quantity the order cannot fill (zero, more than is left, or a partial fill that is
    /// too small or leaves too little).
    BadQuantity {
        quantity: u64,
        remaining: u64,
    },
    /// The maker's coins given are not the order's funding.
    WrongFunding,
    /// An input spends a coin that is unknown or already spent.
    UnknownInput(OutPoint),
    /// A coin of the order's funding is not spent (its value would be unaccounted).
    FundingNotSpent(OutPoint),
    /// An input spends a coin of the maker's that the order does not offer.
    SpendsBeyondOrder(OutPoint),
    /// The transaction breaks a rule every node checks whatever its chain holds (outputs
    /// worth more than the supply, an input spent twice...): no chain would take it.
    Invalid(TxError),
    /// The transaction breaks the asset rules.
    Assets(AssetError),
    /// The maker would get fewer satoshis than its order says.
    Underpaid {
        expected: u64,
        got: u64,
    },
    /// The maker would get fewer units of an asset than its order says.
    AssetShort {
        asset: AssetId,
        expected: u64,
        got: u64,
    },
    /// What is left of the order would have no coin paying for it.
    StrandedRemainder,
    /// The transaction exceeds the standard weight.
    TooLarge,
    /// This proposal was seen before.
    Replayed(Txid),
    /// Another swap of this order is being settled.
    Busy,
    /// The answer does not complete the transaction proposed.
    NotOurs,
    /// A payment would be below the dust limit.
    Dust,
}

impl fmt::Display for SwapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SwapError::Malformed(what) => write!(f, "malformed swap message: {what}"),
            SwapError::UnknownVersion(version) => write!(f, "swap message version {version} is unknown"),
            SwapError::WrongOrder => f.write_str("the proposal names another order"),
            SwapError::OrderClosed => f.write_str("the order is cancelled, filled or expired"),
            SwapError::Stale { sequence, current } => write!(
                f,
                "the proposal is for update {sequence} of the order, which is at {current}"
            ),
            SwapError::BadQuantity { quantity, remaining } => write!(
                f,
                "{quantity} units cannot be filled ({remaining} remain; partial fills must be worth 1,000 sat and leave as much)"
            ),
            SwapError::WrongFunding => f.write_str("the maker coins given are not the order's funding"),
            SwapError::UnknownInput(outpoint) => write!(f, "input {outpoint} is unknown or spent"),
            SwapError::FundingNotSpent(outpoint) => {
                write!(f, "the order's coin {outpoint} is not spent")
            }
            SwapError::SpendsBeyondOrder(outpoint) => {
                write!(f, "input {outpoint} is the maker's but not the order's")
            }
            SwapError::Invalid(err) => write!(f, "the swap transaction is invalid: {err}"),
            SwapError::Assets(err) => write!(f, "{err}"),
            SwapError::Underpaid { expected, got } => {
                write!(f, "the maker would get {got} sat instead of {expected}")
            }
            SwapError::AssetShort { asset, expected, got } => write!(
                f,
                "the maker would get {got} units of {asset} instead of {expected}"
            ),
            SwapError::StrandedRemainder => {
                f.write_str("what is left of the order would have no coin paying for it")
            }
            SwapError::TooLarge => f.write_str("the swap transaction is too large"),
            SwapError::Replayed(txid) => write!(f, "swap {txid} was proposed before"),
            SwapError::Busy => f.write_str("another swap of this order is being settled"),
            SwapError::NotOurs => f.write_str("the answer does not complete the proposed transaction"),
            SwapError::Dust => f.write_str("a payment of the swap would be dust"),
        }
    }
}

impl std::error::Error for SwapError {}

impl From<EndOfInput> for SwapError {
    fn from(_: EndOfInput) -> SwapError {
        SwapError::Malformed("the message ends early")
    }
}

/// The terms of a fill of `quantity` units of the order in `view`, for the taker's wallet:
/// `maker_coins` are the order's funding as the taker's chain view has them, `receive` is where
/// the taker is paid.
pub fn fill_terms(
    view: &OrderView,
    maker_coins: &[ForeignCoin],
    quantity: u64,
    receive: ScriptBuf,
) -> Result<SwapTerms, SwapError> {
    let order = view.order.order();
    let remaining = view.remaining();
    let sats = order
        .fill_allowed(remaining, quantity)
        .ok_or(SwapError::BadQuantity {
            quantity,
            remaining,
        })?;
    let mut given: Vec<OutPoint> = maker_coins.iter().map(|coin| coin.outpoint).collect();
    let mut funding = view.funding.to_vec();
    crate::sort::sort(&mut given);
    crate::sort::sort(&mut funding);
    if given != funding {
        return Err(SwapError::WrongFunding);
    }
    let sats_in: Amount = maker_coins.iter().map(|coin| coin.txout.value).sum();
    let mut units_in = AssetAmounts::total(maker_coins.iter().map(|coin| &coin.assets));
    let rest = remaining - quantity;
    let sats = Amount::from_sat(sats);
    let paid = |script: &ScriptBuf, value: Amount, assets: Vec<(AssetId, u64)>| SwapOutput {
        value: value.max(dust_limit(script)),
        script: script.clone(),
        assets,
    };
    let (theirs, ours, give) = match order.side {
        // The maker sells: its asset coins go in; it gets the sats, its remainder returns.
        Side::Ask => {
            let market_in = units_in.remove(&order.market).unwrap_or(0);
            let left = market_in
                .checked_sub(quantity)
                .ok_or(SwapError::WrongFunding)?;
            let mut change_assets: Vec<(AssetId, u64)> = units_in.into_iter().collect();
            if left > 0 {
                change_assets.push((order.market, left));
                change_assets.sort_unstable();
            }
            let theirs = if change_assets.is_empty() && rest == 0 {
                vec![paid(&order.receive, sats + sats_in, vec![])]
            } else {
                vec![
                    paid(&order.receive, sats, vec![]),
                    paid(&order.change, sats_in, change_assets),
                ]
            };
            let ours = paid(&receive, Amount::ZERO, vec![(order.market, quantity)]);
            (theirs, ours, None)
        }
        // The maker buys: its BTC coins go in; it gets the asset, its change returns.
        Side::Bid => {
            let change = sats_in.checked_sub(sats).ok_or(SwapError::WrongFunding)?;
            let other_assets: Vec<(AssetId, u64)> = units_in.into_iter().collect();
            let keep_change =
                rest > 0 || !other_assets.is_empty() || change >= dust_limit(&order.change);
            let mut theirs = vec![paid(
                &order.receive,
                if keep_change { Amount::ZERO } else { change },
                vec![(order.market, quantity)],
            )];
            if keep_change {
                theirs.push(paid(&order.change, change, other_assets));
            }
            if sats < dust_limit(&receive) {
                return Err(SwapError::Dust);
            }
            let ours = SwapOutput {
                script: receive,
                value: sats,
                assets: vec![],
            };
            (theirs, ours, Some((order.market, quantity)))
        }
    };
    Ok(SwapTerms {
        foreign: maker_coins.to_vec(),
        theirs,
        ours,
        give,
    })
}

/// The taker's transaction for one fill, signed by the taker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwapProposal {
    pub order: OrderId,
    /// The order's sequence number the fill is made against.
    pub sequence: u32,
    /// Base units traded.
    pub quantity: u64,
    pub tx: Transaction,
}

fn encode_tx(out: &mut Vec<u8>, tx: &Transaction) {
    let bytes = encode::serialize(tx);
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(&bytes);
}

fn decode_tx(reader: &mut Reader) -> Result<Transaction, SwapError> {
    let len = reader.u32()? as usize;
    if len > MAX_STANDARD_TX_WEIGHT.to_wu() as usize {
        return Err(SwapError::TooLarge);
    }
    encode::deserialize(reader.take(len)?).map_err(|_| SwapError::Malformed("not a transaction"))
}

fn finish<T>(reader: Reader, value: T) -> Result<T, SwapError> {
    if reader.rest().is_empty() {
        Ok(value)
    } else {
        Err(SwapError::Malformed("trailing bytes"))
    }
}

fn check_version(reader: &mut Reader) -> Result<(), SwapError> {
    match reader.u8()? {
        VERSION => Ok(()),
        version => Err(SwapError::UnknownVersion(version)),
    }
}

impl SwapProposal {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        out.push(VERSION);
        out.extend_from_slice(&self.order.0);
        out.extend_from_slice(&self.sequence.to_le_bytes());
        out.extend_from_slice(&self.quantity.to_le_bytes());
        encode_tx(&mut out, &self.tx);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<SwapProposal, SwapError> {
        let mut reader = Reader::new(bytes);
        check_version(&mut reader)?;
        let proposal = SwapProposal {
            order: OrderId(reader.array()?),
            sequence: reader.u32()?,
            quantity: reader.u64()?,
            tx: decode_tx(&mut reader)?,
        };
        finish(reader, proposal)
    }
}

/// The maker's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwapResponse {
    /// The transaction with the maker's inputs signed too; the maker has broadcast it.
    Accepted(Transaction),
    /// The maker will not sign, and why.
    Refused { txid: Txid, reason: String },
    /// The maker cannot sign anything now (its wallet is locked): the proposal may be sound,
    /// but none of the maker's orders can be taken until it unlocks.
    Unavailable { txid: Txid },
}

impl SwapResponse {
    /// The transaction this answers the proposal of.
    pub fn txid(&self) -> Txid {
        match self {
            SwapResponse::Accepted(tx) => tx.compute_txid(),
            SwapResponse::Refused { txid, .. } | SwapResponse::Unavailable { txid } => *txid,
        }
    }

    /// A refusal of the proposal of `txid` for `error`.
    pub fn refusal(txid: Txid, error: &dyn fmt::Display) -> SwapResponse {
        let reason = crate::encode::truncated(error.to_string(), MAX_REASON_LEN);
        SwapResponse::Refused { txid, reason }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![VERSION];
        match self {
            SwapResponse::Accepted(tx) => {
                out.push(0);
                encode_tx(&mut out, tx);
            }
            SwapResponse::Refused { txid, reason } => {
                out.push(1);
                out.extend_from_slice(txid.as_byte_array());
                out.push(reason.len() as u8);
                out.extend_from_slice(reason.as_bytes());
            }
            SwapResponse::Unavailable { txid } => {
                out.push(2);
                out.extend_from_slice(txid.as_byte_array());
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<SwapResponse, SwapError> {
        let mut reader = Reader::new(bytes);
        check_version(&mut reader)?;
        let response = match reader.u8()? {
            0 => SwapResponse::Accepted(decode_tx(&mut reader)?),
            1 => {
                let txid = Txid::from_byte_array(reader.array()?);
                let len = usize::from(reader.u8()?);
                if len > MAX_REASON_LEN {
                    return Err(SwapError::Malformed("the reason is too long"));
                }
                let reason = core::str::from_utf8(reader.take(len)?)
                    .map_err(|_| SwapError::Malformed("the reason is not UTF-8"))?
                    .to_owned();
                SwapResponse::Refused { txid, reason }
            }
            2 => SwapResponse::Unavailable {
                txid: Txid::from_byte_array(reader.array()?),
            },
            _ => return Err(SwapError::Malformed("unknown response")),
        };
        finish(reader, response)
    }
}

/// A proposal the maker found to keep its order's promise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedFill {
    pub txid: Txid,
    pub quantity: u64,
    /// The inputs the maker signs (its funding coins), by index.
    pub maker_inputs: Vec<(usize, OutPoint)>,
    /// The update to sign and publish once the transaction is in the mempool.
    pub update: OrderUpdate,
}

/// Checks that `proposal` gives the maker of the order in `view` exactly what the order
/// promises: its price for the quantity (rounded its way), every unit of its funding not sold
/// back to its change, nothing of its own spent beyond the order's funding. `coin` looks an
/// outpoint up in the maker's chain and mempool; `is_mine` says whether a coin is the maker's.
pub fn check_proposal(
    view: &OrderView,
    proposal: &SwapProposal,
    coin: impl Fn(&OutPoint) -> Option<Coin>,
    is_mine: impl Fn(&OutPoint) -> bool,
    now_millis: u64,
) -> Result<CheckedFill, SwapError> {
    let txid = proposal.tx.compute_txid();
    check(view, proposal, txid, coin, is_mine, now_millis)
}

/// [`check_proposal`] of a proposal whose transaction's id is `txid`.
fn check(
    view: &OrderView,
    proposal: &SwapProposal,
    txid: Txid,
    coin: impl Fn(&OutPoint) -> Option<Coin>,
    is_mine: impl Fn(&OutPoint) -> bool,
    now_millis: u64,
) -> Result<CheckedFill, SwapError> {
    let order = view.order.order();
    if proposal.order != view.order.id() {
        return Err(SwapError::WrongOrder);
    }
    let remaining = view.remaining();
    if remaining == 0 || order.expiry_millis <= now_millis {
        return Err(SwapError::OrderClosed);
    }
    if proposal.sequence != view.sequence {
        return Err(SwapError::Stale {
            sequence: proposal.sequence,
            current: view.sequence,
        });
    }
    let quantity = proposal.quantity;
    let sats = order
        .fill_allowed(remaining, quantity)
        .ok_or(SwapError::BadQuantity {
            quantity,
            remaining,
        })?;
    let tx = &proposal.tx;
    if tx.weight() > MAX_STANDARD_TX_WEIGHT {
        return Err(SwapError::TooLarge);
    }
    // First, so that the sums below stay within the supply (a peer's outputs could add up
    // past what a u64 holds).
    check_transaction(tx).map_err(SwapError::Invalid)?;
    let mut input_assets = Vec::with_capacity(tx.input.len());
    let mut maker_inputs = Vec::new();
    let mut sats_in = 0u64;
    for (index, txin) in tx.input.iter().enumerate() {
        let outpoint = txin.previous_output;
        let spent = coin(&outpoint).ok_or(SwapError::UnknownInput(outpoint))?;
        if view.funding.contains(&outpoint) {
            if maker_inputs.iter().any(|(_, seen)| *seen == outpoint) {
                return Err(SwapError::Malformed("an input is spent twice"));
            }
            maker_inputs.push((index, outpoint));
            sats_in += spent.output.value.to_sat();
        } else if is_mine(&outpoint) {
            return Err(SwapError::SpendsBeyondOrder(outpoint));
        }
        input_assets.push(spent.assets);
    }
    if let Some(unspent) = view
        .funding
        .iter()
        .find(|outpoint| !maker_inputs.iter().any(|(_, spent)| spent == *outpoint))
    {
        return Err(SwapError::FundingNotSpent(*unspent));
    }
    let mut units_in =
        AssetAmounts::total(maker_inputs.iter().map(|(index, _)| &input_assets[*index]));
    let refs: Vec<&AssetAmounts> = input_assets.iter().collect();
    let allocation = allocate(tx, &refs).map_err(SwapError::Assets)?;
    let mut sats_out = 0u64;
    let mut units_out: BTreeMap<AssetId, u64> = BTreeMap::new();
    let mut new_funding = Vec::new();
    let mut rest_units = 0u64;
    let mut rest_sats = 0u64;
    for (vout, txout) in tx.output.iter().enumerate() {
        let script = &txout.script_pubkey;
        if *script != order.receive && *script != order.change {
            continue;
        }
        sats_out += txout.value.to_sat();
        for (asset, units) in allocation.outputs[vout].iter() {
            *units_out.entry(asset).or_default() += units;
        }
        if *script == order.change {
            new_funding.push(OutPoint::new(txid, vout as u32));
            rest_units += allocation.outputs[vout].amount(&order.market);
            rest_sats += txout.value.to_sat();
        }
    }
    // What the maker must end with, per unit.
    let market_in = units_in.get(&order.market).copied().unwrap_or(0);
    let (sats_expected, market_expected) = match order.side {
        Side::Ask => (
            sats_in + sats,
            market_in
                .checked_sub(quantity)
                .ok_or(SwapError::WrongFunding)?,
        ),
        Side::Bid => (
            sats_in.checked_sub(sats).ok_or(SwapError::WrongFunding)?,
            market_in
                .checked_add(quantity)
                .ok_or(SwapError::WrongFunding)?,
        ),
    };
    units_in.insert(order.market, market_expected);
    for (asset, expected) in units_in {
        let got = units_out.get(&asset).copied().unwrap_or(0);
        if got < expected {
            return Err(SwapError::AssetShort {
                asset,
                expected,
                got,
            });
        }
    }
    if sats_out < sats_expected {
        return Err(SwapError::Underpaid {
            expected: sats_expected,
            got: sats_out,
        });
    }
    // The rest of the order must stay paid for by the new funding.
    let rest = remaining - quantity;
    if rest > 0 {
        let covered = match order.side {
            Side::Ask => rest_units >= rest,
            Side::Bid => order
                .fill_value(rest)
                .is_some_and(|needed| rest_sats >= needed),
        };
        if !covered || new_funding.is_empty() {
            return Err(SwapError::StrandedRemainder);
        }
    } else {
        new_funding.clear();
    }
    Ok(CheckedFill {
        txid,
        quantity,
        maker_inputs,
        update: OrderUpdate {
            order: proposal.order,
            maker: order.maker,
            sequence: view.sequence + 1,
            change: Change::Fill {
                filled: view.filled + quantity,
                funding: new_funding,
            },
        },
    })
}

/// A fill the maker signed: how to undo it if its transaction disappears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettledFill {
    pub txid: Txid,
    /// The order's fill and coins before it.
    pub filled_before: u64,
    pub funding_before: Vec<OutPoint>,
}

/// Fills of an order that left the chain for good (the earliest and those built on it), kept
/// in case another reorganisation puts their transactions in a block after all
/// ([`Maker::on_redone`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndoneFills {
    /// In the order they were made.
    pub fills: Vec<SettledFill>,
    /// The order's fill and coins after the last of them.
    pub filled_after: u64,
    pub funding_after: Vec<OutPoint>,
}

#[derive(Debug, Clone)]
struct Pending {
    checked: CheckedFill,
    filled_before: u64,
    funding_before: Vec<OutPoint>,
}

/// The maker's side of its swaps: proposals being settled, settled fills that a reorganisation
/// could still undo, fills undone that another could bring back, and the proposals seen
/// (replays are refused).
#[derive(Debug, Clone, Default)]
pub struct Maker {
    pending: HashMap<Txid, Pending>,
    settled: HashMap<OrderId, Vec<SettledFill>>,
    /// Sorted by order (a few orders at most; no map or sort of its own in the page).
    undone: Vec<(OrderId, UndoneFills)>,
    seen: HashMap<Txid, u64>,
}

impl Maker {
    pub fn new() -> Maker {
        Maker::default()
    }

    /// Checks a proposal (see [`check_proposal`]); if it keeps the order's promise, the maker
    /// signs the returned inputs, submits the transaction to its mempool, then calls
    /// [`Maker::settle`] or [`Maker::fail`].
    pub fn on_proposal(
        &mut self,
        view: &OrderView,
        proposal: &SwapProposal,
        coin: impl Fn(&OutPoint) -> Option<Coin>,
        is_mine: impl Fn(&OutPoint) -> bool,
        now_millis: u64,
    ) -> Result<CheckedFill, SwapError> {
        let txid = proposal.tx.compute_txid();
        if self.seen.contains_key(&txid) {
            return Err(SwapError::Replayed(txid));
        }
        if self.is_busy(&proposal.order) {
            return Err(SwapError::Busy);
        }
        self.remember(txid, now_millis);
        let checked = check(view, proposal, txid, coin, is_mine, now_millis)?;
        self.pending.insert(
            txid,
            Pending {
                checked: checked.clone(),
                filled_before: view.filled,
                funding_before: view.funding.to_vec(),
            },
        );
        Ok(checked)
    }

    fn remember(&mut self, txid: Txid, now_millis: u64) {
        if self.seen.len() >= MAX_REMEMBERED {
            // Forget the oldest half; a replay of those is refused by the order's sequence.
            let mut times: Vec<u64> = self.seen.values().copied().collect();
            times.sort_unstable();
            let cutoff = times[times.len() / 2];
            self.seen.retain(|_, seen| *seen > cutoff);
        }
        self.seen.insert(txid, now_millis);
    }

    /// The mempool took the transaction: the fill counts. Returns the update to sign, apply to
    /// the book and publish.
    pub fn settle(&mut self, txid: &Txid) -> Option<OrderUpdate> {
        let pending = self.pending.remove(txid)?;
        self.settled
            .entry(pending.checked.update.order)
            .or_default()
            .push(SettledFill {
                txid: *txid,
                filled_before: pending.filled_before,
                funding_before: pending.funding_before,
            });
        Some(pending.checked.update)
    }

    /// The mempool refused the transaction (a bad taker signature, a double spend...): the
    /// order stays as it was.
    pub fn fail(&mut self, txid: &Txid) {
        self.pending.remove(txid);
    }

    /// Transactions left the chain and the mempool for good. Returns the update that reopens
    /// the order's earliest fill they settled (and the fills built on it, whose inputs went
    /// with it), whatever order `dropped` names them in; `view` is the order's current state.
    /// Those fills are kept as undone (an order's earlier undone fills, which a swap on the
    /// coins they gave back has replaced, are forgotten).
    pub fn on_dropped(&mut self, dropped: &[Txid], view: &OrderView) -> Option<OrderUpdate> {
        let order = view.order.id();
        let fills = self.settled.get_mut(&order)?;
        let at = fills.iter().position(|fill| dropped.contains(&fill.txid))?;
        let undone: Vec<SettledFill> = fills.drain(at..).collect();
        if fills.is_empty() {
            // An order with no fill left is no entry: a record lists orders with fills.
            self.settled.remove(&order);
        }
        let first = &undone[0];
        let change = Change::Fill {
            filled: first.filled_before,
            funding: first.funding_before.clone(),
        };
        self.put_undone(
            order,
            UndoneFills {
                fills: undone,
                filled_after: view.filled,
                funding_after: view.funding.to_vec(),
            },
        );
        Some(OrderUpdate {
            order,
            maker: view.order.order().maker,
            sequence: view.sequence + 1,
            change,
        })
    }

    /// Orders with undone fills.
    pub fn undone_orders(&self) -> impl Iterator<Item = OrderId> + '_ {
        self.undone.iter().map(|(order, _)| *order)
    }

    /// Another reorganisation may have put undone fills of the order in `view` back in a
    /// block (`confirmed` says which transactions a block holds). Returns the update that
    /// fills the order again up to the last of them back in a block (the fills built on one
    /// still out stay undone); those fills count as settled again. Fills made since on the
    /// coins their undoing gave back spent those coins too: with the first undone fill in a
    /// block they are gone, and forgotten. An order cancelled since keeps nothing undone.
    pub fn on_redone(
        &mut self,
        view: &OrderView,
        confirmed: impl Fn(&Txid) -> bool,
    ) -> Option<OrderUpdate> {
        let order = view.order.id();
        if view.cancelled {
            self.take_undone(&order);
            return None;
        }
        let at = self.undone_at(&order).ok()?;
        let undone = &self.undone[at].1;
        let back = undone
            .fills
            .iter()
            .take_while(|fill| confirmed(&fill.txid))
            .count();
        if back == 0 {
            return None;
        }
        let mut undone = self.undone.remove(at).1;
        let still_out = undone.fills.split_off(back);
        let (filled, funding) = match still_out.first() {
            Some(next) => (next.filled_before, next.funding_before.clone()),
            None => (undone.filled_after, undone.funding_after.clone()),
        };
        // Each fill raises `filled`: those before the undone ones start below where they did.
        let reopened_at = undone.fills[0].filled_before;
        let settled = self.settled.entry(order).or_default();
        settled.retain(|fill| fill.filled_before < reopened_at);
        settled.extend(undone.fills);
        if !still_out.is_empty() {
            undone.fills = still_out;
            self.put_undone(order, undone);
        }
        Some(OrderUpdate {
            order,
            maker: view.order.order().maker,
            sequence: view.sequence + 1,
            change: Change::Fill { filled, funding },
        })
    }

    /// A settled swap is `depth` blocks deep: past [`REOPEN_DEPTH`] it and the fills before it
    /// are final.
    pub fn on_confirmed(&mut self, txid: &Txid, depth: u32) {
        if depth < REOPEN_DEPTH {
            return;
        }
        for fills in self.settled.values_mut() {
            if let Some(at) = fills.iter().position(|fill| fill.txid == *txid) {
                fills.drain(..=at);
            }
        }
        self.settled.retain(|_, fills| !fills.is_empty());
    }

    /// The transactions of settled fills a reorganisation could still reopen.
    pub fn settled_txids(&self) -> impl Iterator<Item = Txid> + '_ {
        self.settled.values().flatten().map(|fill| fill.txid)
    }

    /// The settled fills a reorganisation could still undo, by order, in the order they were
    /// made: what a maker keeps across a reload ([`Maker::restore_settled`]).
    pub fn settled(&self) -> impl Iterator<Item = (&OrderId, &[SettledFill])> + '_ {
        self.settled
            .iter()
            .map(|(order, fills)| (order, &fills[..]))
    }

    /// The undone fills that a reorganisation could bring back, sorted by order: what a maker keeps
    /// across a reload ([`Maker::restore_undone`]).
    pub fn undone(&self) -> impl Iterator<Item = (&OrderId, &UndoneFills)> + '_ {
        self.undone.iter().map(|(order, undone)| (order, undone))
    }

    fn undone_at(&self, order: &OrderId) -> Result<usize, usize> {
        self.undone.binary_search_by_key(order, |(at, _)| *at)
    }

    fn put_undone(&mut self, order: OrderId, undone: UndoneFills) {
        match self.undone_at(&order) {
            Ok(at) => self.undone[at].1 = undone,
            Err(at) => self.undone.insert(at, (order, undone)),
        }
    }

    fn take_undone(&mut self, order: &OrderId) -> Option<UndoneFills> {
        let at = self.undone_at(order).ok()?;
        Some(self.undone.remove(at).1)
    }

    /// Forgets the settled and undone fills of `order`, which left the book (expired): nothing
    /// of it is left to reopen or fill again.
    pub fn forget(&mut self, order: &OrderId) {
        self.settled.remove(order);
        self.take_undone(order);
    }

    /// Takes back the settled fills of `order` that [`Maker::settled`] gave.
    pub fn restore_settled(&mut self, order: OrderId, fills: Vec<SettledFill>) {
        if !fills.is_empty() {
            self.settled.insert(order, fills);
        }
    }

    /// Takes back the undone fills of `order` that [`Maker::undone`] gave.
    pub fn restore_undone(&mut self, order: OrderId, undone: UndoneFills) {
        if !undone.fills.is_empty() {
            self.put_undone(order, undone);
        }
    }

    /// Whether a swap of the order is being settled.
    pub fn is_busy(&self, order: &OrderId) -> bool {
        self.pending
            .values()
            .any(|pending| pending.checked.update.order == *order)
    }
}

/// Where a taker's swap stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TakerState {
    /// Sent; waiting for the maker.
    Proposed,
    /// The maker signed and broadcast it.
    Settled(Transaction),
    /// The maker refused, for the reason given; the coins are free again.
    Refused(String),
    /// The maker cannot sign now (its wallet is locked); the coins are free again.
    Unavailable,
    /// No answer in time; the coins are free again (should the maker still broadcast, the
    /// swap simply happens: both sides get what the order said).
    TimedOut,
}

/// The taker's side of one swap.
#[derive(Debug, Clone)]
pub struct TakerSwap {
    pub proposal: SwapProposal,
    txid: Txid,
    reserved: Vec<OutPoint>,
    deadline_millis: u64,
    state: TakerState,
}

impl TakerSwap {
    /// A swap just proposed, whose own inputs `reserved` the taker's wallet holds back.
    pub fn new(proposal: SwapProposal, reserved: Vec<OutPoint>, now_millis: u64) -> TakerSwap {
        TakerSwap {
            txid: proposal.tx.compute_txid(),
            proposal,
            reserved,
            deadline_millis: now_millis + SWAP_TIMEOUT_MILLIS,
            state: TakerState::Proposed,
        }
    }

    pub fn txid(&self) -> Txid {
        self.txid
    }

    pub fn state(&self) -> &TakerState {
        &self.state
    }

    /// The coins to hold back until the swap is settled, and to release if it is not.
    pub fn reserved(&self) -> &[OutPoint] {
        &self.reserved
    }

    /// When the taker stops waiting.
    pub fn deadline_millis(&self) -> u64 {
        self.deadline_millis
    }

    /// The maker's answer, which must name the proposed transaction (its txid); an accepted
    /// one must also keep the taker's signatures untouched and have every input signed.
    pub fn on_response(&mut self, response: SwapResponse) -> Result<&TakerState, SwapError> {
        if self.state != TakerState::Proposed {
            return Ok(&self.state);
        }
        if response.txid() != self.txid {
            return Err(SwapError::NotOurs);
        }
        self.state = match response {
            SwapResponse::Accepted(tx) => {
                let ours_untouched = tx
                    .input
                    .iter()
                    .zip(&self.proposal.tx.input)
                    .all(|(got, sent)| sent.witness.is_empty() || got.witness == sent.witness);
                if !ours_untouched || tx.input.iter().any(|txin| txin.witness.is_empty()) {
                    return Err(SwapError::NotOurs);
                }
                TakerState::Settled(tx)
            }
            SwapResponse::Refused { reason, .. } => TakerState::Refused(reason),
            SwapResponse::Unavailable { .. } => TakerState::Unavailable,
        };
        Ok(&self.state)
    }

    /// Time passes: past the deadline an unanswered swap times out. Returns whether it did now.
    pub fn on_tick(&mut self, now_millis: u64) -> bool {
        if self.state == TakerState::Proposed && now_millis >= self.deadline_millis {
            self.state = TakerState::TimedOut;
            return true;
        }
        false
    }
}
