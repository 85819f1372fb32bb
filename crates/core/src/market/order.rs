//! Orders and the maker's updates to them: what they say, their one canonical encoding, and the
//! checks every receiver makes before an order or update reaches its book.
//!
//! Prices are integers: satoshis per [`PRICE_SCALE`] base units of the asset. An order's whole
//! value (`amount × price / PRICE_SCALE`) must be a whole number of satoshis; a fill of part of
//! an order is rounded in the maker's favour (up when the maker sells, down when it buys), so a
//! maker always trades at its price or better. See `docs/market.md`.

use core::fmt;
use std::sync::Arc;

use bitcoin::hashes::Hash;
use bitcoin::key::CompressedPublicKey;
use bitcoin::secp256k1::{schnorr, Keypair, Message, Secp256k1, Signing, Verification};
use bitcoin::{Amount, OutPoint, Script, ScriptBuf, Txid, XOnlyPublicKey};

use crate::chain::assets::AssetId;
use crate::encode::{tagged_hash, EndOfInput, Reader};

/// Prices are satoshis per this many base units.
pub const PRICE_SCALE: u64 = 100_000_000;
/// The smallest order, in satoshis of value; also the smallest fill, unless a fill takes all
/// that is left of an order. Smaller trades would pay dust outputs.
pub const MIN_ORDER_SATS: u64 = 1_000;
/// The most coins one order or update may name as its funding.
pub const MAX_FUNDING: usize = 8;
/// How far in the future an order's creation time may be, by the receiver's clock.
pub const MAX_CLOCK_SKEW_MILLIS: u64 = 30_000;
/// How old a newly gossiped order may be, by the receiver's clock (orders fetched when syncing a
/// book are exempt: they are old by nature).
pub const MAX_GOSSIP_AGE_MILLIS: u64 = 120_000;
/// The longest an order may live.
pub const MAX_LIFETIME_MILLIS: u64 = 30 * 24 * 3600 * 1000;
/// The encoding version written and read (2: every funding coin carries a
/// [`FundingProof`]).
pub const VERSION: u8 = 2;

const ORDER_TAG: &[u8] = b"bitmesh/order";
const UPDATE_TAG: &[u8] = b"bitmesh/order-update";
const FUNDING_TAG: &[u8] = b"bitmesh/funding-proof";
const SIGNED_TAG: &[u8] = b"bitmesh/signed-with-funding-keys";

/// Which way the maker trades the market's asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// The maker buys the asset and pays BTC.
    Bid,
    /// The maker sells the asset for BTC.
    Ask,
}

impl Side {
    /// The side a crossing order takes.
    pub fn opposite(self) -> Side {
        match self {
            Side::Bid => Side::Ask,
            Side::Ask => Side::Bid,
        }
    }
}

/// An offer to trade `amount` base units of the asset `market` against BTC at `price`.
///
/// Laid out in the order written (`repr(C)`): what a book reads of a new order (market, side,
/// price, amount, times) comes first, next to the id and key that [`VerifiedOrder`] keeps in
/// front of it, so inserting reads fewer cache lines of the message (callgrind: 11 % fewer
/// last-level read misses in the book benchmark, for 1.8 % more instructions).
#[derive(Debug, Clone, PartialEq, Eq)]
#[repr(C)]
pub struct Order {
    /// The asset traded against BTC.
    pub market: AssetId,
    /// Buy or sell, for the maker.
    pub side: Side,
    /// Satoshis per [`PRICE_SCALE`] base units.
    pub price: u64,
    /// Base units of the asset.
    pub amount: u64,
    /// When the maker made it (unix milliseconds); the "time" of price-time priority.
    pub created_millis: u64,
    /// When it lapses (unix milliseconds).
    pub expiry_millis: u64,
    /// Makes otherwise equal orders distinct.
    pub nonce: u64,
    /// The maker's peer id: it signs the order and its updates and settles its fills.
    pub maker: XOnlyPublicKey,
    /// The maker's coins that pay for the order (asset coins for an ask, BTC for a bid).
    pub funding: Vec<OutPoint>,
    /// Where the maker is paid (BTC for an ask, the asset for a bid).
    pub receive: ScriptBuf,
    /// Where the maker's unspent remainder goes.
    pub change: ScriptBuf,
}

/// How a fill's BTC value is rounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    Down,
    Up,
}

/// The satoshi value of `amount` base units at `price`, rounded as asked; `None` above 21
/// million BTC.
pub fn value_sats(amount: u64, price: u64, rounding: Rounding) -> Option<u64> {
    let product = u128::from(amount) * u128::from(price);
    let scale = u128::from(PRICE_SCALE);
    let value = match rounding {
        Rounding::Down => product / scale,
        Rounding::Up => product.div_ceil(scale),
    };
    u64::try_from(value)
        .ok()
        .filter(|sats| *sats <= Amount::MAX_MONEY.to_sat())
}

/// What `amount` base units at `price` are worth, exactly: an order's value obeys this
/// whoever checks it (the book, or a form before placing). Refused when it is not a whole
/// number of satoshis, under [`MIN_ORDER_SATS`] or over 21 million BTC.
pub fn order_sats(amount: u64, price: u64) -> Result<u64, OrderError> {
    let value = value_sats(amount, price, Rounding::Down).ok_or(OrderError::TooLarge)?;
    if value_sats(amount, price, Rounding::Up) != Some(value) {
        return Err(OrderError::OverPrecise { amount, price });
    }
    if value < MIN_ORDER_SATS {
        return Err(OrderError::TooSmall { sats: value });
    }
    Ok(value)
}

/// The satoshi value of a fill of `quantity` base units of an order on `side` at `price`,
/// rounded in the maker's favour (up when it sells, down when it buys).
pub fn fill_value(side: Side, price: u64, quantity: u64) -> Option<u64> {
    let rounding = match side {
        Side::Ask => Rounding::Up,
        Side::Bid => Rounding::Down,
    };
    value_sats(quantity, price, rounding)
}

/// Whether a fill of `quantity` of the `remaining` base units of an order on `side` at `price`
/// may be proposed: the whole rest, or a part worth at least [`MIN_ORDER_SATS`] that leaves at
/// least as much (so no fill pays a dust output and no order is left too small to settle).
/// Returns the fill's value in satoshis.
pub fn fill_allowed(side: Side, price: u64, remaining: u64, quantity: u64) -> Option<u64> {
    if quantity == 0 || quantity > remaining {
        return None;
    }
    let sats = fill_value(side, price, quantity)?;
    if quantity == remaining {
        return Some(sats);
    }
    let rest = fill_value(side, price, remaining - quantity)?;
    (sats >= MIN_ORDER_SATS && rest >= MIN_ORDER_SATS).then_some(sats)
}

impl Order {
    /// The satoshi value of a fill of `quantity` base units (see [`fill_value`]).
    pub fn fill_value(&self, quantity: u64) -> Option<u64> {
        fill_value(self.side, self.price, quantity)
    }

    /// Whether a fill of `quantity` of the `remaining` units may be proposed (see
    /// [`fill_allowed`]).
    pub fn fill_allowed(&self, remaining: u64, quantity: u64) -> Option<u64> {
        fill_allowed(self.side, self.price, remaining, quantity)
    }

    /// The canonical encoding, which the maker signs.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.push(VERSION);
        out.extend_from_slice(&self.market.to_byte_array());
        out.push(match self.side {
            Side::Bid => 0,
            Side::Ask => 1,
        });
        for field in [
            self.price,
            self.amount,
            self.created_millis,
            self.expiry_millis,
            self.nonce,
        ] {
            out.extend_from_slice(&field.to_le_bytes());
        }
        out.extend_from_slice(&self.maker.serialize());
        encode_outpoints(&mut out, &self.funding);
        for script in [&self.receive, &self.change] {
            out.push(script.len() as u8);
            out.extend_from_slice(script.as_bytes());
        }
        out
    }

    fn decode(reader: &mut Reader) -> Result<Order, OrderError> {
        let version = reader.u8()?;
        if version != VERSION {
            return Err(OrderError::UnknownVersion(version));
        }
        let market = AssetId::from_byte_array(reader.array()?);
        let side = match reader.u8()? {
            0 => Side::Bid,
            1 => Side::Ask,
            _ => return Err(OrderError::Malformed("unknown side")),
        };
        let price = reader.u64()?;
        let amount = reader.u64()?;
        let created_millis = reader.u64()?;
        let expiry_millis = reader.u64()?;
        let nonce = reader.u64()?;
        let maker = XOnlyPublicKey::from_slice(&reader.array::<32>()?)
            .map_err(|_| OrderError::Malformed("the maker key is not a valid x-only key"))?;
        let funding = decode_outpoints(reader).map_err(OrderError::Malformed)?;
        let mut script = || -> Result<ScriptBuf, OrderError> {
            let len = usize::from(reader.u8()?);
            Ok(ScriptBuf::from_bytes(reader.take(len)?.to_vec()))
        };
        let receive = script()?;
        let change = script()?;
        Ok(Order {
            market,
            side,
            price,
            amount,
            created_millis,
            expiry_millis,
            nonce,
            maker,
            funding,
            receive,
            change,
        })
    }

    /// The order's id: the tagged hash of its encoding, which is also what the maker signs.
    pub fn id(&self) -> OrderId {
        OrderId(tagged_hash(ORDER_TAG, &[&self.encode()]))
    }

    /// The rules an order obeys whatever the time: amounts, precision, funding, scripts.
    pub fn check(&self) -> Result<(), OrderError> {
        if self.amount == 0 {
            return Err(OrderError::ZeroAmount);
        }
        if self.price == 0 {
            return Err(OrderError::ZeroPrice);
        }
        order_sats(self.amount, self.price)?;
        check_funding_count(self.funding.len(), false).map_err(OrderError::Malformed)?;
        for (which, script) in [("receive", &self.receive), ("change", &self.change)] {
            if !(script.is_p2wpkh() || script.is_p2tr()) {
                return Err(OrderError::NonStandardScript(which));
            }
        }
        if self.expiry_millis <= self.created_millis {
            return Err(OrderError::ExpiresBeforeCreated);
        }
        if self.expiry_millis - self.created_millis > MAX_LIFETIME_MILLIS {
            return Err(OrderError::LifetimeTooLong);
        }
        Ok(())
    }
}

fn encode_outpoints(out: &mut Vec<u8>, outpoints: &[OutPoint]) {
    out.push(outpoints.len() as u8);
    for outpoint in outpoints {
        out.extend_from_slice(outpoint.txid.as_byte_array());
        out.extend_from_slice(&outpoint.vout.to_le_bytes());
    }
}

fn decode_outpoints(reader: &mut Reader) -> Result<Vec<OutPoint>, &'static str> {
    const ENDS_EARLY: &str = "the message ends early";
    let count = usize::from(reader.u8().map_err(|_| ENDS_EARLY)?);
    if count > MAX_FUNDING {
        return Err("more than 8 funding coins");
    }
    (0..count)
        .map(|_| {
            let txid = Txid::from_byte_array(reader.array().map_err(|_| ENDS_EARLY)?);
            let vout = reader.u32().map_err(|_| ENDS_EARLY)?;
            Ok(OutPoint { txid, vout })
        })
        .collect()
}

fn check_funding_count(count: usize, may_be_empty: bool) -> Result<(), &'static str> {
    match count {
        0 if !may_be_empty => Err("no funding coin"),
        n if n > MAX_FUNDING => Err("more than 8 funding coins"),
        _ => Ok(()),
    }
}

/// An order's id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct OrderId(pub [u8; 32]);

impl core::hash::Hash for OrderId {
    /// Ids are SHA-256 outputs: eight of their bytes spread keys as well as all 32, in a
    /// quarter of the hashing (maps keyed by ids still mix these with their own random keys).
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(u64::from_le_bytes(
            self.0[..8].try_into().expect("8 of 32 bytes"),
        ));
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl fmt::Debug for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrderId({self})")
    }
}

/// Why an order is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OrderError {
    /// The bytes are not an order; the text says where.
    Malformed(&'static str),
    /// An encoding version this code does not know.
    UnknownVersion(u8),
    /// The signature is not the maker's over this order.
    BadSignature,
    /// A funding coin's proof of ownership is missing or does not verify.
    FundingProof(FundingProofError),
    ZeroAmount,
    ZeroPrice,
    /// The order's value is not a whole number of satoshis.
    OverPrecise {
        amount: u64,
        price: u64,
    },
    /// The order is worth less than [`MIN_ORDER_SATS`].
    TooSmall {
        sats: u64,
    },
    /// The order is worth more than 21 million BTC.
    TooLarge,
    /// A receive or change script that is neither P2WPKH nor P2TR.
    NonStandardScript(&'static str),
    ExpiresBeforeCreated,
    /// The order would live longer than [`MAX_LIFETIME_MILLIS`].
    LifetimeTooLong,
    /// The order has lapsed.
    Expired {
        expiry_millis: u64,
        now_millis: u64,
    },
    /// The order claims to be made later than the receiver's clock allows.
    FromTheFuture {
        created_millis: u64,
        now_millis: u64,
    },
    /// A newly gossiped order claims to be older than [`MAX_GOSSIP_AGE_MILLIS`]: an attempt to
    /// jump the queue.
    Stale {
        created_millis: u64,
        now_millis: u64,
    },
}

impl fmt::Display for OrderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OrderError::Malformed(what) => write!(f, "malformed order: {what}"),
            OrderError::UnknownVersion(version) => write!(f, "order version {version} is unknown"),
            OrderError::BadSignature => f.write_str("the order's signature is not its maker's"),
            OrderError::FundingProof(err) => write!(f, "{err}"),
            OrderError::ZeroAmount => f.write_str("the order's amount is zero"),
            OrderError::ZeroPrice => f.write_str("the order's price is zero"),
            OrderError::OverPrecise { amount, price } => write!(
                f,
                "{amount} units at {price} sat per {PRICE_SCALE} units is not a whole number of satoshis"
            ),
            OrderError::TooSmall { sats } => {
                write!(f, "the order is worth {sats} sat, less than the minimum of {MIN_ORDER_SATS}")
            }
            OrderError::TooLarge => f.write_str("the order is worth more than 21 million BTC"),
            OrderError::NonStandardScript(which) => {
                write!(f, "the {which} script is neither P2WPKH nor P2TR")
            }
            OrderError::ExpiresBeforeCreated => f.write_str("the order expires before it is made"),
            OrderError::LifetimeTooLong => f.write_str("the order lives longer than 30 days"),
            OrderError::Expired { expiry_millis, now_millis } => {
                write!(f, "the order expired at {expiry_millis} (now {now_millis})")
            }
            OrderError::FromTheFuture { created_millis, now_millis } => write!(
                f,
                "the order claims to be made at {created_millis}, more than {MAX_CLOCK_SKEW_MILLIS} ms after now ({now_millis})"
            ),
            OrderError::Stale { created_millis, now_millis } => write!(
                f,
                "the order claims to be made at {created_millis}, more than {MAX_GOSSIP_AGE_MILLIS} ms before it arrived ({now_millis})"
            ),
        }
    }
}

impl std::error::Error for OrderError {}

impl From<EndOfInput> for OrderError {
    fn from(_: EndOfInput) -> OrderError {
        OrderError::Malformed("the message ends early")
    }
}

/// How an order reached us, which decides how old it may claim to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Announced as new: it must be fresh.
    Gossip,
    /// Fetched as part of a neighbour's book: it may be old.
    BookSync,
}

/// The consent of a funding coin's owner to the order (or update) that names the coin: the
/// coin's key and its BIP340 signature over [`FundingProof::digest`]. The maker key is the
/// tab's peer id, not a wallet key, so without it anyone could name someone else's coins as
/// the funding of an order of its own. The signature is checked with the message; that the key
/// is the one the coin's script pays ([`FundingProof::owns`]) is checked by whoever looks the
/// coin up (a taker, before it proposes a swap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FundingProof {
    /// A P2WPKH coin's public key, or a P2TR coin's output key (the script holds its x part).
    pub key: CompressedPublicKey,
    pub signature: schnorr::Signature,
}

impl FundingProof {
    /// What the owner of `coin` signs to fund with it the order (or update) whose id (or
    /// digest) is `named_by`.
    pub fn digest(named_by: &[u8; 32], coin: &OutPoint) -> [u8; 32] {
        tagged_hash(
            FUNDING_TAG,
            &[
                named_by,
                coin.txid.as_byte_array(),
                &coin.vout.to_le_bytes(),
            ],
        )
    }

    /// What the maker signs: the order's id (or the update's digest) and the keys of its funding
    /// proofs. Were the keys not signed, anyone could swap a proof for one by its own key over
    /// the same id: a copy with the same id that no taker takes, and that a relay which checks
    /// the coin refuses, shadowing the maker's own wherever it came first.
    fn signed_digest(named_by: &[u8; 32], proofs: &[FundingProof]) -> Message {
        let keys: Vec<[u8; 33]> = proofs.iter().map(|proof| proof.key.to_bytes()).collect();
        let mut parts: Vec<&[u8]> = vec![named_by];
        parts.extend(keys.iter().map(|key| &key[..]));
        Message::from_digest(tagged_hash(SIGNED_TAG, &parts))
    }

    /// The proof that `owner` (the key pair that spends `coin`: tweaked for a P2TR coin) funds
    /// with `coin` what `named_by` names.
    pub fn sign<C: Signing>(
        secp: &Secp256k1<C>,
        named_by: &[u8; 32],
        coin: &OutPoint,
        owner: &Keypair,
        aux_rand: &[u8; 32],
    ) -> FundingProof {
        let message = Message::from_digest(FundingProof::digest(named_by, coin));
        FundingProof {
            key: CompressedPublicKey(owner.public_key()),
            signature: secp.sign_schnorr_with_aux_rand(&message, owner, aux_rand),
        }
    }

    fn verify<C: Verification>(
        &self,
        secp: &Secp256k1<C>,
        named_by: &[u8; 32],
        coin: &OutPoint,
    ) -> bool {
        let message = Message::from_digest(FundingProof::digest(named_by, coin));
        secp.verify_schnorr(&self.signature, &message, &self.key.0.x_only_public_key().0)
            .is_ok()
    }

    /// Whether `script` pays this proof's key, so that the coin it locks is the signer's.
    pub fn owns(&self, script: &Script) -> bool {
        if script.is_p2wpkh() {
            script == ScriptBuf::new_p2wpkh(&self.key.wpubkey_hash()).as_script()
        } else if script.is_p2tr() {
            script.as_bytes()[2..] == self.key.0.x_only_public_key().0.serialize()
        } else {
            false
        }
    }

    fn encode(proofs: &[FundingProof], out: &mut Vec<u8>) {
        for proof in proofs {
            out.extend_from_slice(&proof.key.to_bytes());
            out.extend_from_slice(proof.signature.as_ref());
        }
    }

    /// Reads `count` proofs.
    fn decode(reader: &mut Reader, count: usize) -> Result<Vec<FundingProof>, &'static str> {
        const ENDS_EARLY: &str = "the message ends early";
        (0..count)
            .map(|_| {
                let key =
                    CompressedPublicKey::from_slice(&reader.array::<33>().map_err(|_| ENDS_EARLY)?)
                        .map_err(|_| "a funding proof's key is not a valid compressed key")?;
                let signature =
                    schnorr::Signature::from_slice(&reader.array::<64>().map_err(|_| ENDS_EARLY)?)
                        .map_err(|_| "bad signature encoding")?;
                Ok(FundingProof { key, signature })
            })
            .collect()
    }

    /// Whether there is one proof per coin of `funding`.
    fn check_count(funding: &[OutPoint], proofs: &[FundingProof]) -> Result<(), FundingProofError> {
        if proofs.len() != funding.len() {
            return Err(FundingProofError::Count {
                coins: funding.len(),
                proofs: proofs.len(),
            });
        }
        Ok(())
    }

    /// Checks each coin's proof over `named_by`; the first coin whose proof fails, if one does.
    fn check_all<C: Verification>(
        secp: &Secp256k1<C>,
        named_by: &[u8; 32],
        funding: &[OutPoint],
        proofs: &[FundingProof],
    ) -> Result<(), FundingProofError> {
        match funding
            .iter()
            .zip(proofs)
            .find(|(coin, proof)| !proof.verify(secp, named_by, coin))
        {
            Some((coin, _)) => Err(FundingProofError::BadSignature(*coin)),
            None => Ok(()),
        }
    }
}

/// Why the funding proofs of an order or update are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FundingProofError {
    /// Not one proof per funding coin.
    Count { coins: usize, proofs: usize },
    /// The proof of this coin is not its key's signature.
    BadSignature(OutPoint),
}

impl fmt::Display for FundingProofError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FundingProofError::Count { coins, proofs } => {
                write!(f, "{proofs} funding proofs for {coins} funding coins")
            }
            FundingProofError::BadSignature(coin) => {
                write!(
                    f,
                    "the proof that funding coin {coin} is the maker's does not verify"
                )
            }
        }
    }
}

/// An order with a proof for each funding coin, and the maker's BIP340 signature over its id
/// and the proofs' keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedOrder {
    pub order: Order,
    pub signature: schnorr::Signature,
    /// One per coin of `order.funding`, in its order.
    pub proofs: Vec<FundingProof>,
}

impl SignedOrder {
    /// Signs `order` with the maker's key (`aux_rand`: 32 fresh random bytes, BIP340);
    /// `proofs`: one per funding coin ([`FundingProof::sign`] over the order's id).
    pub fn sign<C: Signing>(
        secp: &Secp256k1<C>,
        order: Order,
        maker: &Keypair,
        proofs: Vec<FundingProof>,
        aux_rand: &[u8; 32],
    ) -> SignedOrder {
        let message = FundingProof::signed_digest(&order.id().0, &proofs);
        let signature = secp.sign_schnorr_with_aux_rand(&message, maker, aux_rand);
        SignedOrder {
            order,
            signature,
            proofs,
        }
    }

    /// The canonical encoding: the order's, the signature, then the funding proofs (as many
    /// as funding coins).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.order.encode();
        out.extend_from_slice(self.signature.as_ref());
        FundingProof::encode(&self.proofs, &mut out);
        out
    }

    /// Decodes exactly one signed order.
    pub fn decode(bytes: &[u8]) -> Result<SignedOrder, OrderError> {
        let mut reader = Reader::new(bytes);
        let order = Order::decode(&mut reader)?;
        let signature = schnorr::Signature::from_slice(&reader.array::<64>()?)
            .map_err(|_| OrderError::Malformed("bad signature encoding"))?;
        let proofs = FundingProof::decode(&mut reader, order.funding.len())
            .map_err(OrderError::Malformed)?;
        if !reader.rest().is_empty() {
            return Err(OrderError::Malformed("trailing bytes"));
        }
        Ok(SignedOrder {
            order,
            signature,
            proofs,
        })
    }

    /// Checks the order's rules, the maker's signature and the funding proofs, once: the
    /// result carries its id.
    pub fn verify<C: Verification>(self, secp: &Secp256k1<C>) -> Result<VerifiedOrder, OrderError> {
        self.order.check()?;
        FundingProof::check_count(&self.order.funding, &self.proofs)
            .map_err(OrderError::FundingProof)?;
        let id = self.order.id();
        secp.verify_schnorr(
            &self.signature,
            &FundingProof::signed_digest(&id.0, &self.proofs),
            &self.order.maker,
        )
        .map_err(|_| OrderError::BadSignature)?;
        FundingProof::check_all(secp, &id.0, &self.order.funding, &self.proofs)
            .map_err(OrderError::FundingProof)?;
        Ok(VerifiedOrder::new(self, id))
    }
}

/// An order whose rules and signature were checked. Shared, not copied: books, gossip queues
/// and the UI hold the same one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedOrder(Arc<Checked<SignedOrder, OrderId>>);

/// A checked message, its digest, and its maker's key serialized once (comparing keys in
/// their parsed form costs a field normalisation each time). The digest and key come first:
/// a book reads them, and the message's first fields, in the record's first cache lines.
#[derive(Debug, PartialEq, Eq)]
#[repr(C)]
struct Checked<T, D> {
    digest: D,
    maker: [u8; 32],
    signed: T,
}

impl VerifiedOrder {
    fn new(signed: SignedOrder, id: OrderId) -> VerifiedOrder {
        let maker = signed.order.maker.serialize();
        VerifiedOrder(Arc::new(Checked {
            signed,
            digest: id,
            maker,
        }))
    }

    pub fn id(&self) -> OrderId {
        self.0.digest
    }

    pub fn order(&self) -> &Order {
        &self.0.signed.order
    }

    pub fn signed(&self) -> &SignedOrder {
        &self.0.signed
    }

    /// The maker's key, serialized.
    pub fn maker_bytes(&self) -> &[u8; 32] {
        &self.0.maker
    }

    /// Whether the order may enter a book at `now_millis`, arriving as `arrival`. The book's
    /// merge itself ignores the clock (so replicas converge); this is the gate in front of it.
    pub fn check_time(&self, now_millis: u64, arrival: Arrival) -> Result<(), OrderError> {
        let order = self.order();
        if order.expiry_millis <= now_millis {
            return Err(OrderError::Expired {
                expiry_millis: order.expiry_millis,
                now_millis,
            });
        }
        if order.created_millis > now_millis.saturating_add(MAX_CLOCK_SKEW_MILLIS) {
            return Err(OrderError::FromTheFuture {
                created_millis: order.created_millis,
                now_millis,
            });
        }
        if arrival == Arrival::Gossip
            && order.created_millis.saturating_add(MAX_GOSSIP_AGE_MILLIS) < now_millis
        {
            return Err(OrderError::Stale {
                created_millis: order.created_millis,
                now_millis,
            });
        }
        Ok(())
    }

    /// Takes the verification on trust: for benchmarks and tests of the book alone.
    #[cfg(feature = "testkit")]
    pub fn assume_verified(signed: SignedOrder) -> VerifiedOrder {
        let id = signed.order.id();
        VerifiedOrder::new(signed, id)
    }
}

/// What a maker's update does to its order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `filled` base units of the order are traded in all; the rest is paid for by `funding`
    /// (empty once nothing is left). A lower `filled` than before reopens a fill whose swap
    /// was undone.
    Fill { filled: u64, funding: Vec<OutPoint> },
    /// The order is withdrawn.
    Cancel,
}

/// A maker's change to its order; the highest sequence number wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderUpdate {
    pub order: OrderId,
    /// The order's maker, so the update can be checked before its order is known.
    pub maker: XOnlyPublicKey,
    /// Counts from 1; a higher number supersedes a lower one.
    pub sequence: u32,
    pub change: Change,
}

impl OrderUpdate {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.push(VERSION);
        out.extend_from_slice(&self.order.0);
        out.extend_from_slice(&self.maker.serialize());
        out.extend_from_slice(&self.sequence.to_le_bytes());
        match &self.change {
            Change::Fill { filled, funding } => {
                out.push(0);
                out.extend_from_slice(&filled.to_le_bytes());
                encode_outpoints(&mut out, funding);
            }
            Change::Cancel => out.push(1),
        }
        out
    }

    fn decode(reader: &mut Reader) -> Result<OrderUpdate, UpdateError> {
        let version = reader.u8()?;
        if version != VERSION {
            return Err(UpdateError::UnknownVersion(version));
        }
        let order = OrderId(reader.array()?);
        let maker = XOnlyPublicKey::from_slice(&reader.array::<32>()?)
            .map_err(|_| UpdateError::Malformed("the maker key is not a valid x-only key"))?;
        let sequence = reader.u32()?;
        let change = match reader.u8()? {
            0 => Change::Fill {
                filled: reader.u64()?,
                funding: decode_outpoints(reader).map_err(UpdateError::Malformed)?,
            },
            1 => Change::Cancel,
            _ => return Err(UpdateError::Malformed("unknown change")),
        };
        Ok(OrderUpdate {
            order,
            maker,
            sequence,
            change,
        })
    }

    /// What the maker signs; also the update's identity.
    pub fn digest(&self) -> [u8; 32] {
        tagged_hash(UPDATE_TAG, &[&self.encode()])
    }
}

/// Why an update is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpdateError {
    /// The bytes are not an update; the text says where.
    Malformed(&'static str),
    UnknownVersion(u8),
    /// The signature is not the named maker's.
    BadSignature,
    /// A funding coin's proof of ownership is missing or does not verify.
    FundingProof(FundingProofError),
    /// Sequence numbers start at 1.
    ZeroSequence,
}

impl fmt::Display for UpdateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpdateError::Malformed(what) => write!(f, "malformed order update: {what}"),
            UpdateError::UnknownVersion(version) => {
                write!(f, "order update version {version} is unknown")
            }
            UpdateError::BadSignature => f.write_str("the update's signature is not its maker's"),
            UpdateError::FundingProof(err) => write!(f, "{err}"),
            UpdateError::ZeroSequence => f.write_str("the update's sequence number is zero"),
        }
    }
}

impl std::error::Error for UpdateError {}

impl From<EndOfInput> for UpdateError {
    fn from(_: EndOfInput) -> UpdateError {
        UpdateError::Malformed("the message ends early")
    }
}

impl Change {
    /// The coins that pay for the rest of the order (none for a cancel).
    pub fn funding(&self) -> &[OutPoint] {
        match self {
            Change::Fill { funding, .. } => funding,
            Change::Cancel => &[],
        }
    }
}

/// An update with a proof for each coin that funds the rest of the order, and the maker's
/// signature over its digest and the proofs' keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedUpdate {
    pub update: OrderUpdate,
    pub signature: schnorr::Signature,
    /// One per coin of the change's funding, in its order.
    pub proofs: Vec<FundingProof>,
}

impl SignedUpdate {
    /// Signs `update` with the maker's key (`aux_rand`: 32 fresh random bytes); `proofs`: one
    /// per funding coin ([`FundingProof::sign`] over the update's digest).
    pub fn sign<C: Signing>(
        secp: &Secp256k1<C>,
        update: OrderUpdate,
        maker: &Keypair,
        proofs: Vec<FundingProof>,
        aux_rand: &[u8; 32],
    ) -> SignedUpdate {
        let message = FundingProof::signed_digest(&update.digest(), &proofs);
        let signature = secp.sign_schnorr_with_aux_rand(&message, maker, aux_rand);
        SignedUpdate {
            update,
            signature,
            proofs,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.update.encode();
        out.extend_from_slice(self.signature.as_ref());
        FundingProof::encode(&self.proofs, &mut out);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<SignedUpdate, UpdateError> {
        let mut reader = Reader::new(bytes);
        let update = OrderUpdate::decode(&mut reader)?;
        let signature = schnorr::Signature::from_slice(&reader.array::<64>()?)
            .map_err(|_| UpdateError::Malformed("bad signature encoding"))?;
        let proofs = FundingProof::decode(&mut reader, update.change.funding().len())
            .map_err(UpdateError::Malformed)?;
        if !reader.rest().is_empty() {
            return Err(UpdateError::Malformed("trailing bytes"));
        }
        Ok(SignedUpdate {
            update,
            signature,
            proofs,
        })
    }

    /// Checks the update's form, the named maker's signature and the funding proofs, once.
    pub fn verify<C: Verification>(
        self,
        secp: &Secp256k1<C>,
    ) -> Result<VerifiedUpdate, UpdateError> {
        if self.update.sequence == 0 {
            return Err(UpdateError::ZeroSequence);
        }
        FundingProof::check_count(self.update.change.funding(), &self.proofs)
            .map_err(UpdateError::FundingProof)?;
        let digest = self.update.digest();
        secp.verify_schnorr(
            &self.signature,
            &FundingProof::signed_digest(&digest, &self.proofs),
            &self.update.maker,
        )
        .map_err(|_| UpdateError::BadSignature)?;
        FundingProof::check_all(secp, &digest, self.update.change.funding(), &self.proofs)
            .map_err(UpdateError::FundingProof)?;
        Ok(VerifiedUpdate::new(self, digest))
    }
}

/// An update whose signature was checked (shared, like [`VerifiedOrder`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedUpdate(Arc<Checked<SignedUpdate, [u8; 32]>>);

impl VerifiedUpdate {
    fn new(signed: SignedUpdate, digest: [u8; 32]) -> VerifiedUpdate {
        let maker = signed.update.maker.serialize();
        VerifiedUpdate(Arc::new(Checked {
            signed,
            digest,
            maker,
        }))
    }

    pub fn update(&self) -> &OrderUpdate {
        &self.0.signed.update
    }

    pub fn signed(&self) -> &SignedUpdate {
        &self.0.signed
    }

    /// The maker's key, serialized.
    pub fn maker_bytes(&self) -> &[u8; 32] {
        &self.0.maker
    }

    /// The digest the maker signed: the update's name in inventories.
    pub fn digest(&self) -> [u8; 32] {
        self.0.digest
    }

    /// Which of two updates of an order wins: the higher sequence, then (a maker that signed
    /// two different updates with one number) the higher digest, so every replica picks alike.
    pub(crate) fn rank(&self) -> super::book::UpdateRank {
        (self.update().sequence, self.0.digest)
    }

    /// Takes the signature on trust: for benchmarks and tests of the book alone.
    #[cfg(feature = "testkit")]
    pub fn assume_verified(signed: SignedUpdate) -> VerifiedUpdate {
        let digest = signed.update.digest();
        VerifiedUpdate::new(signed, digest)
    }
}
