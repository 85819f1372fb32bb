//! An unlocked wallet following one chain: what a driver (the page, the wallet CLI) holds
//! between the keys, the tracker, the metadata and the transaction builders.
//!
//! The wallet follows the chain in bounded steps ([`Wallet::follow`]), so a driver can spread a
//! long catch-up over many short tasks, and reorganisations are followed by disconnecting back
//! to the fork. Payments are prepared from what a person typed, and every refusal says in words
//! what is wrong; preparing changes nothing, so a refused payment loses nothing.

use core::fmt;
use std::collections::BTreeMap;

use bitcoin::address::NetworkUnchecked;
use bitcoin::{Address, Amount, BlockHash, FeeRate, OutPoint, ScriptBuf, Transaction, TxOut};

use super::build::{
    build_issuance, build_payment, build_swap, build_sweep, build_transfer, sign, sign_inputs,
    spendable, BuildError, BuiltTx, IssueRequest, PaymentRequest, SwapTerms,
};
use super::device_sync::device_name;
use super::keys::{Account, DeriveError, Keychain, Purpose};
use super::metadata::{DeviceId, Metadata, Stamp};
use super::psbt;
use super::tracker::{Balance, HistoryEntry, OwnedOutput, Tracker, Unit};
use crate::chain::assets::AssetId;
use crate::chain::mempool::Mempool;
use crate::chain::state::Chain;
use crate::market::order::{FundingProof, Side, MAX_FUNDING};
use crate::Network;

/// Builds with those of `coins` no device of the wallet reserved at `now_millis`; when they
/// fall short and the reserved ones would have been enough, says who reserved them (a
/// sibling's spend in progress is why) instead of "insufficient funds". The page's wallet and
/// the wallet CLI refuse alike.
pub fn build_unreserved<T>(
    metadata: &Metadata,
    coins: &[OwnedOutput],
    now_millis: u64,
    build: impl Fn(&[OwnedOutput]) -> Result<T, BuildError>,
) -> Result<T, PayError> {
    let free: Vec<OwnedOutput> = coins
        .iter()
        .filter(|coin| metadata.reservation(&coin.outpoint, now_millis).is_none())
        .cloned()
        .collect();
    let err = match build(&free) {
        Ok(built) => return Ok(built),
        Err(err @ (BuildError::Selection(_) | BuildError::InsufficientAsset { .. })) => err,
        Err(err) => return Err(err.into()),
    };
    if free.len() == coins.len() || build(coins).is_err() {
        return Err(err.into());
    }
    let reservation = coins
        .iter()
        .filter_map(|coin| metadata.reservation(&coin.outpoint, now_millis))
        .max_by_key(|reservation| reservation.until_millis)
        .expect("only reservations set coins apart");
    Err(PayError::Reserved {
        device: reservation.device,
        name: device_name(metadata, &reservation.device),
        minutes_left: (reservation.until_millis - now_millis).div_ceil(60_000),
    })
}

/// The purpose of the wallet's one account (native segwit, as BIP84).
const PURPOSE: Purpose = Purpose::Bip84;

/// An order's funding ([`Wallet::prepare_order_funding`]).
#[derive(Debug, Clone)]
pub struct OrderFunding {
    /// The coins the order offers.
    pub coins: Vec<OutPoint>,
    /// The payment to itself that makes its one coin, when the wallet's coins held more than
    /// the order needs: to sign and submit before the order is published.
    pub split: Option<BuiltTx>,
}

/// A coin the wallet was asked to prove it owns is not one of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotOurs(pub OutPoint);

impl fmt::Display for NotOurs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "coin {} is not this wallet's", self.0)
    }
}

impl std::error::Error for NotOurs {}

/// An unlocked wallet: one BIP84 account following one chain.
#[derive(Debug, Clone)]
pub struct Wallet {
    network: Network,
    tracker: Tracker,
    metadata: Metadata,
    /// The blocks the tracker has connected, by height (genesis first).
    followed: Vec<BlockHash>,
    /// The receive index this device shows ([`Wallet::claim_receive_address`]).
    shown: Option<u32>,
    /// The next indexes (external, internal) when the metadata was last handed out for
    /// changes, until the next look at its hand-outs: what grew since is a sibling's (a merge),
    /// whose scripts may have been paid in blocks already followed. This device's own
    /// hand-outs are watched as they are made.
    merged_from: Option<[u32; 2]>,
    /// The next followed block to look through again for scripts watched since, if any.
    look_back_from: Option<u32>,
}

/// How far [`Wallet::follow`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Following {
    /// Whether anything the wallet shows may have changed.
    pub changed: bool,
    /// Blocks of the chain still to follow, or to look through again.
    pub behind: u32,
}

/// What to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendAmount {
    /// Exactly this many base units of the unit sent.
    Exact(u64),
    /// Everything spendable of it (for BTC: less the fee).
    Max,
}

/// Why a payment, an issuance or an amount is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PayError {
    /// The text is not an address.
    NotAnAddress(String),
    /// The address belongs to another network.
    WrongNetwork(String),
    /// Nothing to send.
    ZeroAmount,
    /// The fee rate is below the network's minimum relay rate.
    FeeRateTooLow { sat_per_vb: u64, minimum: u64 },
    /// The fee rate is far beyond any sensible one: surely a typo.
    FeeRateTooHigh { sat_per_vb: u64, maximum: u64 },
    /// The wallet holds none of this asset.
    UnknownAsset(AssetId),
    /// The builder refused.
    Build(BuildError),
    /// An order needs `needed` base units of `unit` (in at most eight coins, none reserved) and
    /// the wallet can put up only `available`.
    OrderUnfunded {
        unit: Unit,
        needed: u64,
        available: u64,
    },
    /// The coins the spend needs are reserved by a device of this wallet (this one or a
    /// sibling) for a spend it is about to sign.
    Reserved {
        /// The device, and its name if it has one.
        device: DeviceId,
        name: Option<String>,
        /// Minutes until the reservation lapses (rounded up).
        minutes_left: u64,
    },
}

impl fmt::Display for PayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PayError::NotAnAddress(text) => write!(f, "\"{text}\" is not an address"),
            PayError::WrongNetwork(text) => {
                write!(f, "{text} is an address of another network")
            }
            PayError::ZeroAmount => f.write_str("the amount is zero"),
            PayError::FeeRateTooLow {
                sat_per_vb,
                minimum,
            } => write!(
                f,
                "a fee rate of {sat_per_vb} sat/vB is below the network's minimum of {minimum} sat/vB"
            ),
            PayError::FeeRateTooHigh {
                sat_per_vb,
                maximum,
            } => write!(
                f,
                "a fee rate of {sat_per_vb} sat/vB is above {maximum} sat/vB: surely a typo"
            ),
            PayError::UnknownAsset(asset) => write!(f, "this wallet holds no units of {asset}"),
            PayError::Build(err) => write!(f, "{err}"),
            PayError::Reserved {
                device,
                name,
                minutes_left,
            } => {
                let device = match name {
                    Some(name) => format!("\"{name}\""),
                    None => format!("device {}", hex_prefix(&device.0)),
                };
                write!(
                    f,
                    "the coins it needs are reserved by {device} of this wallet for a spend it \
                     is about to sign (for {minutes_left} more minute{}); spending them here \
                     too would be a double spend",
                    if *minutes_left == 1 { "" } else { "s" }
                )
            }
            PayError::OrderUnfunded {
                unit,
                needed,
                available,
            } => write!(
                f,
                "insufficient funds for the order: it needs {needed} base units of {unit}, \
                 {available} can fund it"
            ),
        }
    }
}

impl std::error::Error for PayError {}

impl From<BuildError> for PayError {
    fn from(err: BuildError) -> Self {
        PayError::Build(err)
    }
}

/// Fee rates accepted, in sat/vB: the mempool's minimum relay rate (1 sat/vB) up to a rate no
/// one means to pay.
pub const MIN_FEE_RATE: u64 = 1;
pub const MAX_FEE_RATE: u64 = 10_000;

impl Wallet {
    /// The wallet of BIP39 `seed` on `network`, with the `metadata` it kept. It has followed
    /// nothing yet but the genesis block.
    pub fn new(seed: &[u8], network: Network, metadata: Metadata) -> Result<Wallet, DeriveError> {
        let account = Account::for_bitmesh(seed, PURPOSE, network)?;
        let mut wallet = Wallet {
            network,
            tracker: Tracker::new(vec![account], network.params().coinbase_maturity),
            metadata,
            followed: vec![network.genesis_hash()],
            shown: None,
            merged_from: None,
            look_back_from: None,
        };
        wallet.watch_handed_out();
        Ok(wallet)
    }

    /// Watches every script the metadata says was handed out (by this device or a sibling)
    /// and a gap beyond: a trader's orders take scripts with no payment to them, far past the
    /// tracker's window of the last one paid. Called before transactions are followed, so a
    /// payment to such a script is seen. Scripts a sibling handed out (merged metadata) may
    /// have been paid in blocks followed already: those are then looked through again.
    fn watch_handed_out(&mut self) {
        let merged_from = self.merged_from.take();
        let mut look_back = false;
        for (n, keychain) in [Keychain::External, Keychain::Internal]
            .into_iter()
            .enumerate()
        {
            let next = self.metadata.next_index(PURPOSE, keychain);
            let grew = self.tracker.watch_handed_out(0, keychain, next);
            look_back |= grew && merged_from.is_some_and(|before| next > before[n]);
        }
        if look_back && self.height() > 0 {
            self.look_back_from = Some(1);
        }
    }

    /// Hands scripts out through `allocate`, watched at once (so that a later look at the
    /// hand-outs takes no growth for a sibling's).
    fn handing_out<R>(&mut self, allocate: impl FnOnce(&mut Wallet) -> R) -> R {
        self.watch_handed_out();
        let result = allocate(self);
        self.watch_handed_out();
        result
    }

    /// The network.
    pub fn network(&self) -> Network {
        self.network
    }

    /// The account.
    pub fn account(&self) -> &Account {
        &self.tracker.accounts()[0]
    }

    /// The metadata, to keep it.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The tracker: unspent outputs, confirmations.
    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// The height of the last block followed.
    pub fn height(&self) -> u32 {
        (self.followed.len() - 1) as u32
    }

    /// Follows `chain`'s active chain by at most `max_blocks` blocks connected: first back to
    /// where the two agree (disconnecting what a reorganisation left), then forward.
    /// `now_secs` stamps transactions a disconnection makes unconfirmed.
    pub fn follow(&mut self, chain: &Chain, max_blocks: u32, now_secs: u64) -> Following {
        self.watch_handed_out();
        let mut changed = false;
        while self.followed.len() > 1 {
            let height = self.height();
            let hash = self.followed[height as usize];
            if chain.hash_at(height) == Some(hash) {
                break;
            }
            let block = chain
                .block(&hash)
                .expect("a chain keeps every block it connected");
            self.tracker.disconnect_block(block, height, now_secs);
            self.followed.pop();
            changed = true;
        }
        let mut connected = 0;
        if let Some(from) = self.look_back_from {
            let to = self.height();
            let mut height = from;
            while height <= to && connected < max_blocks {
                let block = chain
                    .block(&self.followed[height as usize])
                    .expect("a chain keeps every block it connected");
                changed |= self.tracker.look_through(block, height);
                height += 1;
                connected += 1;
            }
            self.look_back_from = (height <= to).then_some(height);
        }
        while connected < max_blocks && self.height() < chain.height() {
            let height = self.height() + 1;
            let hash = chain.hash_at(height).expect("below the tip");
            let block = chain
                .block(&hash)
                .expect("the active chain's blocks are held");
            self.tracker.connect_block(block, height);
            self.followed.push(hash);
            connected += 1;
            changed = true;
        }
        if changed {
            self.mark_used();
        }
        let looking_back = self
            .look_back_from
            .map_or(0, |from| self.height() + 1 - from);
        Following {
            changed,
            behind: chain.height() - self.height() + looking_back,
        }
    }

    /// Follows the mempool: takes its transactions that pay or spend the wallet, drops the
    /// wallet's unconfirmed transactions it no longer holds. Whether anything changed.
    pub fn follow_mempool(&mut self, mempool: &Mempool) -> bool {
        self.watch_handed_out();
        let mut dropped = false;
        for txid in self.tracker.unconfirmed() {
            if !mempool.contains(&txid) {
                dropped |= self.tracker.mempool_removed(&txid);
            }
        }
        let before = self.tracker.unconfirmed().len();
        for (_, entry) in mempool.entries() {
            self.tracker.mempool_added(&entry.tx, entry.entered);
        }
        let changed = dropped || self.tracker.unconfirmed().len() != before;
        if changed {
            self.mark_used();
        }
        changed
    }

    /// Takes back the wallet's transactions that lost a double spend, kept by the driver
    /// across a restart (the mempool refuses them, so following it cannot): shown as
    /// conflicted again ([`Tracker::restore_conflicted`]). Call once the wallet has caught up
    /// with the chain. Returns whether any came back.
    pub fn restore_conflicted(&mut self, txs: &[Transaction], now_secs: u64) -> bool {
        self.watch_handed_out();
        self.tracker.restore_conflicted(txs, now_secs) > 0
    }

    /// Records as used every address the chain or the mempool shows paid, so the receive
    /// address moves on after a payment.
    fn mark_used(&mut self) {
        for keychain in [Keychain::External, Keychain::Internal] {
            if let Some(next) = self.tracker.next_unused(0, keychain) {
                self.metadata.mark_used(PURPOSE, keychain, next);
            }
        }
    }

    /// The address to show for receiving: the one this device claimed, or (before it claimed
    /// one) the first one no one was given and nothing paid.
    pub fn receive_address(&self) -> Address {
        let index = self
            .shown
            .unwrap_or_else(|| self.metadata.next_index(PURPOSE, Keychain::External));
        self.account().address(Keychain::External, index)
    }

    /// Makes sure `device` shows a receive address of its own
    /// ([`Metadata::claim_receive_index`]: kept across reloads until paid, or taken by a
    /// device with a lower id). Returns whether the metadata changed (siblings are to be
    /// told).
    pub fn claim_receive_address(&mut self, device: DeviceId, now_millis: u64) -> bool {
        self.handing_out(|wallet| {
            let account = wallet.account().clone();
            let tracker = &wallet.tracker;
            let (index, changed) =
                wallet
                    .metadata
                    .claim_receive_index(device, now_millis, |index| {
                        tracker.pays(&account.script_pubkey(Keychain::External, index))
                    });
            wallet.shown = Some(index);
            changed
        })
    }

    /// Hands `device` a fresh receive address ("new address"), leaving the shown one to
    /// whoever it was given to.
    pub fn new_receive_address(&mut self, device: DeviceId, now_millis: u64) -> Address {
        self.handing_out(|wallet| {
            if wallet.shown.is_none() {
                // The address shown so far (the first unused) counts as given out.
                wallet.metadata.allocate_index(PURPOSE, Keychain::External);
            }
            wallet.shown = Some(
                wallet
                    .metadata
                    .claim_fresh_receive_index(device, now_millis),
            );
        });
        self.receive_address()
    }

    /// Balances per unit (BTC always present).
    pub fn balances(&self) -> BTreeMap<Unit, Balance> {
        self.tracker.balances()
    }

    /// The wallet's transactions, newest first.
    pub fn history(&self) -> Vec<HistoryEntry> {
        self.tracker.history()
    }

    /// The account's public descriptor (both chains), for watch-only wallets elsewhere.
    pub fn descriptor(&self) -> String {
        self.account().descriptor()
    }

    /// The coins a spend may use at `now_millis`, with those carrying assets.
    fn coins(&self, now_millis: u64) -> Vec<OwnedOutput> {
        spendable(
            &self.tracker,
            &self.metadata,
            now_millis,
            self.network.params().coinbase_maturity,
        )
    }

    /// Builds with the coins a spend may use ([`build_unreserved`]).
    fn build_with<T>(
        &self,
        now_millis: u64,
        build: impl Fn(&[OwnedOutput]) -> Result<T, BuildError>,
    ) -> Result<T, PayError> {
        let maturity = self.network.params().coinbase_maturity;
        let coins = spendable(&self.tracker, &Metadata::new(), now_millis, maturity);
        build_unreserved(&self.metadata, &coins, now_millis, build)
    }

    fn change_key(&self) -> (usize, u32) {
        (0, self.metadata.next_index(PURPOSE, Keychain::Internal))
    }

    /// Reads `text` as an address of this wallet's network.
    pub fn parse_address(&self, text: &str) -> Result<Address, PayError> {
        let text = text.trim();
        let unchecked: Address<NetworkUnchecked> = text
            .parse()
            .map_err(|_| PayError::NotAnAddress(text.to_owned()))?;
        unchecked
            .require_network(self.network.address_network())
            .map_err(|_| PayError::WrongNetwork(text.to_owned()))
    }

    /// Prepares (builds, does not sign) a payment of `amount` of `unit` to the address `to`.
    pub fn prepare_send(
        &self,
        to: &str,
        unit: Unit,
        amount: SendAmount,
        sat_per_vb: u64,
        now_millis: u64,
    ) -> Result<BuiltTx, PayError> {
        let to = self.parse_address(to)?.script_pubkey();
        let fee_rate = fee_rate(sat_per_vb)?;
        match (unit, amount) {
            (_, SendAmount::Exact(0)) => Err(PayError::ZeroAmount),
            (Unit::Btc, SendAmount::Max) => {
                self.build_with(now_millis, |coins| build_sweep(coins, to.clone(), fee_rate))
            }
            (Unit::Btc, SendAmount::Exact(sats)) => {
                let request = PaymentRequest {
                    recipients: vec![(to, Amount::from_sat(sats))],
                    fee_rate,
                };
                self.build_with(now_millis, |coins| {
                    build_payment(coins, &request, self.tracker.accounts(), self.change_key())
                })
            }
            (Unit::Asset(asset), amount) => {
                let units = match amount {
                    SendAmount::Exact(units) => units,
                    SendAmount::Max => self
                        .balances()
                        .get(&Unit::Asset(asset))
                        .map(|balance| balance.confirmed)
                        .filter(|units| *units > 0)
                        .ok_or(PayError::UnknownAsset(asset))?,
                };
                self.build_with(now_millis, |coins| {
                    build_transfer(
                        coins,
                        asset,
                        units,
                        to.clone(),
                        fee_rate,
                        self.tracker.accounts(),
                        (0, self.metadata.next_index(PURPOSE, Keychain::External)),
                        self.change_key(),
                    )
                })
            }
        }
    }

    /// Prepares (builds, does not sign) the issuance of a new asset, all of it paid to the
    /// wallet's receive address.
    pub fn prepare_issue(
        &self,
        request: &IssueRequest,
        sat_per_vb: u64,
        now_millis: u64,
    ) -> Result<BuiltTx, PayError> {
        let fee_rate = fee_rate(sat_per_vb)?;
        self.build_with(now_millis, |coins| {
            build_issuance(
                coins,
                request,
                fee_rate,
                self.tracker.accounts(),
                (0, self.metadata.next_index(PURPOSE, Keychain::External)),
                self.change_key(),
            )
        })
    }

    /// Signs a prepared transaction (`aux_rand`: fresh random bytes) and records the addresses
    /// it uses, so no later transaction pays to the same change or receive address.
    pub fn sign(&mut self, built: &BuiltTx, aux_rand: &[u8; 32]) -> Transaction {
        let tx = sign(built, self.tracker.accounts(), aux_rand);
        for txout in &tx.output {
            self.mark_script_used(&txout.script_pubkey);
        }
        tx
    }

    fn mark_script_used(&mut self, script: &ScriptBuf) {
        for keychain in [Keychain::External, Keychain::Internal] {
            let next = self.metadata.next_index(PURPOSE, keychain);
            // Builders pay the next two indexes of a chain at most (a swap's receive and its
            // asset remainder).
            for index in next..next + 2 {
                if self.account().script_pubkey(keychain, index) == *script {
                    self.metadata.mark_used(PURPOSE, keychain, index + 1);
                }
            }
        }
    }

    /// Whole coins to fund an order: for an ask, coins carrying `units` of `market`; for a bid,
    /// coins without assets worth `sats`. A coin of exactly that (one an earlier order's
    /// payment made), else the largest first, at most [`MAX_FUNDING`] coins, none reserved;
    /// and whether they hold more than it needs.
    fn order_coins(
        &self,
        side: Side,
        market: AssetId,
        units: u64,
        sats: u64,
        now_millis: u64,
    ) -> Result<(Vec<OutPoint>, bool), PayError> {
        let coins = self.coins(now_millis);
        let (mut candidates, needed): (Vec<(u64, OutPoint)>, u64) = match side {
            Side::Ask => (
                coins
                    .iter()
                    .filter(|coin| coin.assets.amount(&market) > 0)
                    .map(|coin| (coin.assets.amount(&market), coin.outpoint))
                    .collect(),
                units,
            ),
            Side::Bid => (
                coins
                    .iter()
                    .filter(|coin| coin.assets.is_empty())
                    .map(|coin| (coin.value.to_sat(), coin.outpoint))
                    .collect(),
                sats,
            ),
        };
        if let Some((_, exact)) = candidates.iter().find(|(value, _)| *value == needed) {
            return Ok((vec![*exact], false));
        }
        crate::sort::sort_by(&mut candidates, &|a, b| b.cmp(a));
        let available: u64 = candidates.iter().map(|(value, _)| value).sum();
        let mut funding = Vec::new();
        let mut gathered = 0u64;
        for (value, outpoint) in candidates.into_iter().take(MAX_FUNDING) {
            if gathered >= needed {
                break;
            }
            gathered += value;
            funding.push(outpoint);
        }
        if gathered < needed {
            let unit = match side {
                Side::Ask => Unit::Asset(market),
                Side::Bid => Unit::Btc,
            };
            return Err(PayError::OrderUnfunded {
                unit,
                needed,
                available: available.min(gathered),
            });
        }
        Ok((funding, gathered > needed))
    }

    /// The coins that fund an order: for an ask, `units` of `market`; for a bid, `sats` (none
    /// reserved). When the wallet's coins hold more than the order needs (a 1,000-unit coin for
    /// a 100-unit ask), it prepares a payment to itself of exactly what the order needs, whose
    /// output is then the order's one funding coin: the rest stays free to spend and to fund
    /// other orders, for the payment's fee (at `sat_per_vb`). Whole coins (the largest first,
    /// at most [`MAX_FUNDING`]) fund it when nothing would be freed or the payment cannot be
    /// built.
    pub fn prepare_order_funding(
        &self,
        side: Side,
        market: AssetId,
        units: u64,
        sats: u64,
        sat_per_vb: u64,
        now_millis: u64,
    ) -> Result<OrderFunding, PayError> {
        let (coins, excess) = self.order_coins(side, market, units, sats, now_millis)?;
        let split = excess
            .then(|| self.prepare_split(side, market, units, sats, sat_per_vb, now_millis))
            .flatten();
        Ok(match split {
            // The txid is the signed transaction's: the wallet's inputs are all segwit.
            Some((split, vout)) => OrderFunding {
                coins: vec![OutPoint::new(split.tx.compute_txid(), vout)],
                split: Some(split),
            },
            None => OrderFunding { coins, split: None },
        })
    }

    /// The payment of exactly what an order needs to this wallet's next change address (its
    /// change to the one after), and the output that receives it; None when it would free
    /// nothing or cannot be built.
    fn prepare_split(
        &self,
        side: Side,
        market: AssetId,
        units: u64,
        sats: u64,
        sat_per_vb: u64,
        now_millis: u64,
    ) -> Option<(BuiltTx, u32)> {
        let fee_rate = fee_rate(sat_per_vb).ok()?;
        let index = self.metadata.next_index(PURPOSE, Keychain::Internal);
        let to = self.account().script_pubkey(Keychain::Internal, index);
        let change = (0, index + 1);
        let accounts = self.tracker.accounts();
        let built = match side {
            Side::Ask => self.build_with(now_millis, |coins| {
                let remainder = (0, self.metadata.next_index(PURPOSE, Keychain::External));
                build_transfer(
                    coins,
                    market,
                    units,
                    to.clone(),
                    fee_rate,
                    accounts,
                    remainder,
                    change,
                )
            }),
            Side::Bid => self.build_with(now_millis, |coins| {
                let request = PaymentRequest {
                    recipients: vec![(to.clone(), Amount::from_sat(sats))],
                    fee_rate,
                };
                build_payment(coins, &request, accounts, change)
            }),
        }
        .ok()?;
        let frees = match side {
            Side::Ask => {
                let spent: u64 = built
                    .inputs
                    .iter()
                    .map(|coin| coin.assets.amount(&market))
                    .sum();
                spent > units
            }
            // Without change the excess would go to the fee.
            Side::Bid => built.change.is_some(),
        };
        let vout = built
            .tx
            .output
            .iter()
            .position(|output| output.script_pubkey == to)?;
        frees.then_some((built, vout as u32))
    }

    /// Fresh scripts for an order: where it is paid (external) and where its change returns
    /// (internal, so a fill's change can fund the next fill before it confirms). Hands both out.
    pub fn order_scripts(&mut self) -> (ScriptBuf, ScriptBuf) {
        let (receive, change) = self.handing_out(|wallet| {
            (
                wallet.metadata.allocate_index(PURPOSE, Keychain::External),
                wallet.metadata.allocate_index(PURPOSE, Keychain::Internal),
            )
        });
        (
            self.account().script_pubkey(Keychain::External, receive),
            self.account().script_pubkey(Keychain::Internal, change),
        )
    }

    /// Proofs that this wallet owns `coins` ([`FundingProof`]), for the order whose id (or the
    /// update whose digest) is `named_by`: each coin's key is found by the coin if the wallet
    /// follows it, else by its output in `made_by` (the transaction that makes it, signed and
    /// not followed yet: an order's funding payment, a swap whose change funds the rest).
    pub fn prove_funding(
        &self,
        named_by: &[u8; 32],
        coins: &[OutPoint],
        made_by: Option<&Transaction>,
        aux_rand: &[u8; 32],
    ) -> Result<Vec<FundingProof>, NotOurs> {
        let secp = bitcoin::secp256k1::Secp256k1::signing_only();
        coins
            .iter()
            .map(|coin| {
                let made_here = made_by
                    .filter(|tx| tx.compute_txid() == coin.txid)
                    .and_then(|tx| tx.output.get(coin.vout as usize))
                    .and_then(|txout| self.key_of_script(&txout.script_pubkey));
                let (_, keychain, index) = made_here
                    .or_else(|| self.tracker.key_of(coin))
                    .ok_or(NotOurs(*coin))?;
                let owner = self.account().signing_keypair(keychain, index);
                Ok(FundingProof::sign(&secp, named_by, coin, &owner, aux_rand))
            })
            .collect()
    }

    /// The wallet key `script` pays: one the tracker watches, or one this wallet handed out
    /// beyond what it watches yet (orders take their scripts ahead of any payment to them).
    fn key_of_script(&self, script: &ScriptBuf) -> Option<(usize, Keychain, u32)> {
        self.tracker.key_of_script(script).or_else(|| {
            [Keychain::External, Keychain::Internal]
                .into_iter()
                .find_map(|keychain| {
                    let next = self.metadata.next_index(PURPOSE, keychain);
                    (0..next.saturating_add(2))
                        .rev()
                        .find(|&index| self.account().script_pubkey(keychain, index) == *script)
                        .map(|index| (0, keychain, index))
                })
        })
    }

    /// Where this wallet receives what it takes in a swap (not handed out yet).
    pub fn swap_receive_script(&self) -> ScriptBuf {
        let index = self.metadata.next_index(PURPOSE, Keychain::External);
        self.account().script_pubkey(Keychain::External, index)
    }

    /// Prepares (builds, does not sign) this wallet's side of a swap: `terms` must pay it at
    /// [`Wallet::swap_receive_script`]; its asset remainder goes to the external address after
    /// that one.
    pub fn prepare_swap(
        &self,
        terms: &SwapTerms,
        sat_per_vb: u64,
        now_millis: u64,
    ) -> Result<BuiltTx, PayError> {
        let receive = self.metadata.next_index(PURPOSE, Keychain::External);
        Ok(build_swap(
            &self.coins(now_millis),
            terms,
            fee_rate(sat_per_vb)?,
            self.tracker.accounts(),
            (0, receive + 1),
            self.change_key(),
        )?)
    }

    /// Signs the inputs of a counterparty's `tx` that spend this wallet's coins `ours` (input
    /// index, outpoint); `prevouts` are the outputs every input spends.
    pub fn sign_inputs(
        &self,
        tx: &Transaction,
        prevouts: &[TxOut],
        ours: &[(usize, OutPoint)],
        aux_rand: &[u8; 32],
    ) -> Option<Transaction> {
        let keys = ours
            .iter()
            .map(|(input, outpoint)| Some((*input, self.tracker.key_of(outpoint)?)))
            .collect::<Option<Vec<_>>>()?;
        Some(sign_inputs(
            tx,
            prevouts,
            &keys,
            self.tracker.accounts(),
            aux_rand,
        ))
    }

    /// Holds `coins` back from spends until `until_millis` (0 releases them), for `device`
    /// at `now_millis`. The write is stamped after every write of `device` this copy has seen
    /// ([`Metadata::next_stamp`]), so a release in the same millisecond as its reservation
    /// still wins and siblings' deltas carry it; returns the stamp (siblings acknowledge it).
    pub fn reserve(
        &mut self,
        coins: &[OutPoint],
        device: DeviceId,
        until_millis: u64,
        now_millis: u64,
    ) -> Stamp {
        self.metadata
            .reserve_coins(coins, device, until_millis, now_millis)
    }

    /// Releases (as `device`) the reservations still holding coins that a conflicted
    /// transaction of the wallet spent: when the chain chose another spend, the loser's other
    /// coins are free again. Returns whether anything was released.
    pub fn release_conflicted(&mut self, device: DeviceId, now_millis: u64) -> bool {
        let held: Vec<OutPoint> = self
            .tracker
            .conflicted_spends()
            .into_iter()
            .filter(|coin| self.metadata.reservation(coin, now_millis).is_some())
            .collect();
        if !held.is_empty() {
            self.reserve(&held, device, 0, now_millis);
        }
        !held.is_empty()
    }

    /// The metadata, to merge what a sibling device sent or write labels and names.
    pub fn metadata_mut(&mut self) -> &mut Metadata {
        if self.merged_from.is_none() {
            self.merged_from = Some(
                [Keychain::External, Keychain::Internal]
                    .map(|keychain| self.metadata.next_index(PURPOSE, keychain)),
            );
        }
        &mut self.metadata
    }

    /// A prepared transaction as an unsigned PSBT (base64), for signing elsewhere.
    pub fn psbt(&self, built: &BuiltTx) -> String {
        psbt::to_base64(&psbt::export(built, self.tracker.accounts()))
    }
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes[..4]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The fee rate of `sat_per_vb`, if within what the wallet accepts.
fn fee_rate(sat_per_vb: u64) -> Result<FeeRate, PayError> {
    if sat_per_vb < MIN_FEE_RATE {
        return Err(PayError::FeeRateTooLow {
            sat_per_vb,
            minimum: MIN_FEE_RATE,
        });
    }
    if sat_per_vb > MAX_FEE_RATE {
        return Err(PayError::FeeRateTooHigh {
            sat_per_vb,
            maximum: MAX_FEE_RATE,
        });
    }
    Ok(FeeRate::from_sat_per_vb(sat_per_vb).expect("bounded above"))
}

/// Why a typed amount is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AmountError {
    /// Nothing typed.
    Empty,
    /// Not digits with at most one decimal point.
    NotANumber(String),
    /// More decimal places than the unit has.
    TooPrecise { decimals: u8 },
    /// More than 2^64 - 1 base units.
    TooLarge,
}

impl fmt::Display for AmountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AmountError::Empty => f.write_str("no amount given"),
            AmountError::NotANumber(text) => write!(f, "\"{text}\" is not an amount"),
            AmountError::TooPrecise { decimals: 0 } => {
                f.write_str("this unit has no decimal places")
            }
            AmountError::TooPrecise { decimals } => {
                write!(f, "this unit has at most {decimals} decimal places")
            }
            AmountError::TooLarge => f.write_str("the amount is too large"),
        }
    }
}

impl std::error::Error for AmountError {}

/// Reads an amount a person typed (`"0.1"`, `"1000"`, `"12.50"`) as base units of a unit with
/// `decimals` decimal places, exactly (no floating point).
pub fn parse_units(text: &str, decimals: u8) -> Result<u64, AmountError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(AmountError::Empty);
    }
    let not_a_number = || AmountError::NotANumber(text.to_owned());
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return Err(not_a_number());
    }
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > usize::from(decimals) {
        return Err(AmountError::TooPrecise { decimals });
    }
    let scale = 10u128
        .checked_pow(u32::from(decimals))
        .ok_or(AmountError::TooLarge)?;
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| AmountError::TooLarge)?
    };
    let padded = format!("{fraction:0<width$}", width = usize::from(decimals));
    let fraction: u128 = if padded.is_empty() {
        0
    } else {
        padded.parse().map_err(|_| not_a_number())?
    };
    whole
        .checked_mul(scale)
        .and_then(|units| units.checked_add(fraction))
        .and_then(|units| u64::try_from(units).ok())
        .ok_or(AmountError::TooLarge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_read_exactly() {
        assert_eq!(parse_units("0.1", 8), Ok(10_000_000));
        assert_eq!(parse_units(" 1000 ", 2), Ok(100_000));
        assert_eq!(parse_units("12.50", 2), Ok(1_250));
        assert_eq!(parse_units(".5", 1), Ok(5));
        assert_eq!(parse_units("5.", 0), Ok(5));
        assert_eq!(parse_units("0.000000010", 8), Ok(1));
        assert_eq!(parse_units("18446744073709551615", 0), Ok(u64::MAX));
        assert_eq!(parse_units("", 8), Err(AmountError::Empty));
        assert_eq!(
            parse_units("1e5", 8),
            Err(AmountError::NotANumber("1e5".into()))
        );
        assert_eq!(
            parse_units("-1", 8),
            Err(AmountError::NotANumber("-1".into()))
        );
        assert_eq!(
            parse_units(".", 8),
            Err(AmountError::NotANumber(".".into()))
        );
        assert_eq!(
            parse_units("1.2.3", 8),
            Err(AmountError::NotANumber("1.2.3".into()))
        );
        assert_eq!(
            parse_units("0.123456789", 8),
            Err(AmountError::TooPrecise { decimals: 8 })
        );
        assert_eq!(
            parse_units("18446744073709551616", 0),
            Err(AmountError::TooLarge)
        );
        assert_eq!(
            parse_units("99999999999999999999999999999999999999999", 8),
            Err(AmountError::TooLarge)
        );
    }

    #[test]
    fn fee_rates_are_bounded() {
        assert!(matches!(fee_rate(0), Err(PayError::FeeRateTooLow { .. })));
        assert!(matches!(
            fee_rate(10_001),
            Err(PayError::FeeRateTooHigh { .. })
        ));
        assert_eq!(fee_rate(2).unwrap(), FeeRate::from_sat_per_vb(2).unwrap());
    }
}
