//! The faucet of bitmesh's local and test networks: what a wallet asks a faucet node through
//! the mesh (routed messages of kind [`RoutedKind::FaucetRequest`] and
//! [`RoutedKind::FaucetAnswer`]), the answer, and the rate limits a faucet applies, per address
//! and per requester. Time is an input, as everywhere in the core.
//!
//! [`RoutedKind::FaucetRequest`]: crate::wire::RoutedKind::FaucetRequest
//! [`RoutedKind::FaucetAnswer`]: crate::wire::RoutedKind::FaucetAnswer

use core::fmt;
use std::collections::{HashMap, VecDeque};

use bitcoin::hashes::Hash;
use bitcoin::Txid;

use crate::chain::assets::AssetId;
use crate::encode::{EndOfInput, Reader};
use crate::wire::PeerId;

const VERSION: u8 = 1;
/// Bytes of an address in a request (bech32 addresses are at most 90 characters).
pub const MAX_ADDRESS_LEN: usize = 90;
/// Bytes of a refusal's reason.
pub const MAX_REASON_LEN: usize = 200;

/// A wallet's request: pay this address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaucetRequest {
    /// The address, as the wallet shows it (the faucet checks it is of its network).
    pub address: String,
}

/// Asset units a faucet paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssetGrant {
    pub asset: AssetId,
    /// Base units.
    pub units: u64,
    /// The transaction that pays them.
    pub txid: Txid,
}

/// What a faucet paid: `sats` in transaction `txid`, and the demo asset's units when it has
/// them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub sats: u64,
    pub txid: Txid,
    pub asset: Option<AssetGrant>,
}

/// The faucet's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaucetAnswer {
    Paid(Payment),
    /// Not paid, and why (in words for the user).
    Refused(String),
}

/// Why bytes are not a faucet message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaucetMessageError {
    /// A version this one does not know.
    UnknownVersion(u8),
    /// The bytes end inside a field.
    Truncated,
    /// A field is out of its range.
    Malformed(&'static str),
    /// Bytes follow the message.
    TrailingBytes,
}

impl fmt::Display for FaucetMessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaucetMessageError::UnknownVersion(version) => {
                write!(f, "unknown faucet message version {version}")
            }
            FaucetMessageError::Truncated => f.write_str("the faucet message is truncated"),
            FaucetMessageError::Malformed(why) => write!(f, "malformed faucet message: {why}"),
            FaucetMessageError::TrailingBytes => f.write_str("bytes follow the faucet message"),
        }
    }
}

impl std::error::Error for FaucetMessageError {}

impl From<EndOfInput> for FaucetMessageError {
    fn from(_: EndOfInput) -> Self {
        FaucetMessageError::Truncated
    }
}

fn start(bytes: &[u8]) -> Result<Reader<'_>, FaucetMessageError> {
    let mut reader = Reader::new(bytes);
    match reader.u8()? {
        VERSION => Ok(reader),
        version => Err(FaucetMessageError::UnknownVersion(version)),
    }
}

fn finish<T>(reader: Reader<'_>, value: T) -> Result<T, FaucetMessageError> {
    if reader.rest().is_empty() {
        Ok(value)
    } else {
        Err(FaucetMessageError::TrailingBytes)
    }
}

/// A text of at most `max` bytes: its length in one byte, then UTF-8.
fn put_text(out: &mut Vec<u8>, text: &str) {
    out.push(text.len() as u8);
    out.extend_from_slice(text.as_bytes());
}

fn read_text(
    reader: &mut Reader<'_>,
    max: usize,
    what: &'static str,
) -> Result<String, FaucetMessageError> {
    let len = usize::from(reader.u8()?);
    if len > max {
        return Err(FaucetMessageError::Malformed(what));
    }
    core::str::from_utf8(reader.take(len)?)
        .map(str::to_owned)
        .map_err(|_| FaucetMessageError::Malformed("a text is not UTF-8"))
}

impl FaucetRequest {
    /// The request, if the address fits in one ([`MAX_ADDRESS_LEN`]).
    pub fn new(address: &str) -> Option<FaucetRequest> {
        (address.len() <= MAX_ADDRESS_LEN).then(|| FaucetRequest {
            address: address.to_owned(),
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![VERSION];
        put_text(&mut out, &self.address);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<FaucetRequest, FaucetMessageError> {
        let mut reader = start(bytes)?;
        let address = read_text(&mut reader, MAX_ADDRESS_LEN, "the address is too long")?;
        finish(reader, FaucetRequest { address })
    }
}

impl FaucetAnswer {
    /// A refusal for `reason`, cut to [`MAX_REASON_LEN`] bytes.
    pub fn refusal(reason: &dyn fmt::Display) -> FaucetAnswer {
        FaucetAnswer::Refused(crate::encode::truncated(reason.to_string(), MAX_REASON_LEN))
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![VERSION];
        match self {
            FaucetAnswer::Paid(Payment { sats, txid, asset }) => {
                out.push(0);
                out.extend_from_slice(&sats.to_le_bytes());
                out.extend_from_slice(txid.as_byte_array());
                match asset {
                    None => out.push(0),
                    Some(grant) => {
                        out.push(1);
                        out.extend_from_slice(&grant.asset.to_byte_array());
                        out.extend_from_slice(&grant.units.to_le_bytes());
                        out.extend_from_slice(grant.txid.as_byte_array());
                    }
                }
            }
            FaucetAnswer::Refused(reason) => {
                out.push(1);
                put_text(&mut out, reason);
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<FaucetAnswer, FaucetMessageError> {
        let mut reader = start(bytes)?;
        let answer = match reader.u8()? {
            0 => {
                let sats = reader.u64()?;
                let txid = Txid::from_byte_array(reader.array()?);
                let asset = match reader.u8()? {
                    0 => None,
                    1 => Some(AssetGrant {
                        asset: AssetId::from_byte_array(reader.array()?),
                        units: reader.u64()?,
                        txid: Txid::from_byte_array(reader.array()?),
                    }),
                    _ => return Err(FaucetMessageError::Malformed("unknown asset flag")),
                };
                FaucetAnswer::Paid(Payment { sats, txid, asset })
            }
            1 => FaucetAnswer::Refused(read_text(
                &mut reader,
                MAX_REASON_LEN,
                "the reason is too long",
            )?),
            _ => return Err(FaucetMessageError::Malformed("unknown answer")),
        };
        finish(reader, answer)
    }
}

/// Who asks: a peer of the mesh, or an HTTP client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Requester {
    Peer(PeerId),
    Ip(core::net::IpAddr),
}

/// How often a faucet pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaucetLimits {
    /// One payment to an address per this long.
    pub per_address_millis: u64,
    /// At most this many payments to one requester per `requester_window_millis`.
    pub per_requester: usize,
    pub requester_window_millis: u64,
    /// Addresses and requesters remembered at most (a faucet asked by more is busy).
    pub max_tracked: usize,
}

impl Default for FaucetLimits {
    /// One payment an hour per address, five an hour per requester.
    fn default() -> Self {
        FaucetLimits {
            per_address_millis: 3_600_000,
            per_requester: 5,
            requester_window_millis: 3_600_000,
            max_tracked: 10_000,
        }
    }
}

/// Why the rate limits refuse a payment now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RateRefusal {
    /// The address was paid recently.
    Address { wait_secs: u64 },
    /// The requester had its share.
    Requester { wait_secs: u64 },
    /// Too many addresses or requesters paid recently to remember one more.
    Busy,
}

impl RateRefusal {
    /// How long the requester should wait before asking again.
    pub fn wait_secs(&self) -> u64 {
        match self {
            RateRefusal::Address { wait_secs } | RateRefusal::Requester { wait_secs } => *wait_secs,
            RateRefusal::Busy => 60,
        }
    }
}

impl fmt::Display for RateRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RateRefusal::Address { wait_secs } => write!(
                f,
                "this address was paid recently: ask again in {}",
                Wait(*wait_secs)
            ),
            RateRefusal::Requester { wait_secs } => write!(
                f,
                "you had the faucet's share for now: ask again in {}",
                Wait(*wait_secs)
            ),
            RateRefusal::Busy => f.write_str("the faucet is busy: ask again in a minute"),
        }
    }
}

/// A wait in words: "42 s", "7 min".
struct Wait(u64);

impl fmt::Display for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 < 120 {
            write!(f, "{} s", self.0)
        } else {
            write!(f, "{} min", self.0.div_ceil(60))
        }
    }
}

/// The payments a faucet made recently, to decide whether it may pay again.
#[derive(Debug, Clone, Default)]
pub struct RateLimiter {
    limits: FaucetLimits,
    /// When each address was paid last.
    addresses: HashMap<String, u64>,
    /// When each requester was paid, oldest first (within the window).
    requesters: HashMap<Requester, VecDeque<u64>>,
}

impl RateLimiter {
    pub fn new(limits: FaucetLimits) -> RateLimiter {
        RateLimiter {
            limits,
            ..RateLimiter::default()
        }
    }

    /// Whether `requester` may have a payment to `address` at `now_millis`.
    pub fn check(
        &mut self,
        now_millis: u64,
        address: &str,
        requester: Requester,
    ) -> Result<(), RateRefusal> {
        self.forget_before(now_millis);
        let wait = |until: u64| until.saturating_sub(now_millis).div_ceil(1000).max(1);
        if let Some(paid) = self.addresses.get(address) {
            return Err(RateRefusal::Address {
                wait_secs: wait(paid + self.limits.per_address_millis),
            });
        }
        if let Some(paid) = self.requesters.get(&requester) {
            if paid.len() >= self.limits.per_requester {
                let oldest = paid.front().copied().unwrap_or(now_millis);
                return Err(RateRefusal::Requester {
                    wait_secs: wait(oldest + self.limits.requester_window_millis),
                });
            }
        } else if self.requesters.len() >= self.limits.max_tracked {
            return Err(RateRefusal::Busy);
        }
        if self.addresses.len() >= self.limits.max_tracked {
            return Err(RateRefusal::Busy);
        }
        Ok(())
    }

    /// Counts a payment made at `now_millis` (after [`RateLimiter::check`] allowed it).
    pub fn record(&mut self, now_millis: u64, address: &str, requester: Requester) {
        self.addresses.insert(address.to_owned(), now_millis);
        self.requesters
            .entry(requester)
            .or_default()
            .push_back(now_millis);
    }

    /// Addresses and requesters remembered (bounded by `max_tracked` each).
    pub fn tracked(&self) -> (usize, usize) {
        (self.addresses.len(), self.requesters.len())
    }

    fn forget_before(&mut self, now_millis: u64) {
        let limits = self.limits;
        self.addresses
            .retain(|_, paid| now_millis < *paid + limits.per_address_millis);
        self.requesters.retain(|_, paid| {
            while paid
                .front()
                .is_some_and(|first| now_millis >= first + limits.requester_window_millis)
            {
                paid.pop_front();
            }
            !paid.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3_600_000;

    fn peer(n: u8) -> Requester {
        Requester::Peer(PeerId([n; 32]))
    }

    #[test]
    fn messages_round_trip_and_refuse_bad_bytes() {
        let request = FaucetRequest::new("bcrt1qexample").expect("short");
        assert_eq!(FaucetRequest::decode(&request.encode()), Ok(request));
        assert!(FaucetRequest::new(&"a".repeat(MAX_ADDRESS_LEN + 1)).is_none());
        let paid = FaucetAnswer::Paid(Payment {
            sats: 10_000_000,
            txid: Txid::from_byte_array([7; 32]),
            asset: Some(AssetGrant {
                asset: AssetId::from_byte_array([8; 32]),
                units: 100_000,
                txid: Txid::from_byte_array([9; 32]),
            }),
        });
        assert_eq!(FaucetAnswer::decode(&paid.encode()), Ok(paid.clone()));
        let refused = FaucetAnswer::refusal(&"x".repeat(500));
        let FaucetAnswer::Refused(reason) = &refused else {
            panic!("a refusal");
        };
        assert_eq!(reason.len(), MAX_REASON_LEN);
        assert_eq!(FaucetAnswer::decode(&refused.encode()), Ok(refused));

        let mut bytes = paid.encode();
        bytes.push(0);
        assert_eq!(
            FaucetAnswer::decode(&bytes),
            Err(FaucetMessageError::TrailingBytes)
        );
        let bytes = paid.encode();
        assert_eq!(
            FaucetAnswer::decode(&bytes[..bytes.len() - 1]),
            Err(FaucetMessageError::Truncated)
        );
        assert_eq!(
            FaucetRequest::decode(&[2, 0]),
            Err(FaucetMessageError::UnknownVersion(2))
        );
        assert_eq!(
            FaucetRequest::decode(&[VERSION, 91]),
            Err(FaucetMessageError::Malformed("the address is too long"))
        );
        assert_eq!(
            FaucetRequest::decode(&[VERSION, 1, 0xff]),
            Err(FaucetMessageError::Malformed("a text is not UTF-8"))
        );
        assert_eq!(
            FaucetAnswer::decode(&[VERSION, 2]),
            Err(FaucetMessageError::Malformed("unknown answer"))
        );
    }

    #[test]
    fn an_address_is_paid_once_per_interval() {
        let mut limiter = RateLimiter::new(FaucetLimits::default());
        assert_eq!(limiter.check(0, "a", peer(1)), Ok(()));
        limiter.record(0, "a", peer(1));
        // Another requester asking for the same address waits too.
        assert_eq!(
            limiter.check(HOUR - 30_000, "a", peer(2)),
            Err(RateRefusal::Address { wait_secs: 30 })
        );
        assert_eq!(limiter.check(HOUR, "a", peer(2)), Ok(()));
        let refusal = RateRefusal::Address { wait_secs: 600 };
        assert_eq!(
            refusal.to_string(),
            "this address was paid recently: ask again in 10 min"
        );
    }

    #[test]
    fn a_requester_has_its_share_per_window() {
        let limits = FaucetLimits::default();
        let mut limiter = RateLimiter::new(limits);
        for n in 0..limits.per_requester as u64 {
            let address = format!("a{n}");
            assert_eq!(limiter.check(n * 1000, &address, peer(1)), Ok(()));
            limiter.record(n * 1000, &address, peer(1));
        }
        assert_eq!(
            limiter.check(10_000, "another", peer(1)),
            Err(RateRefusal::Requester {
                wait_secs: (HOUR - 10_000) / 1000
            })
        );
        // Others are not held back by it, and it gets one more as its first payment ages out.
        assert_eq!(limiter.check(10_000, "another", peer(2)), Ok(()));
        assert_eq!(limiter.check(HOUR, "another", peer(1)), Ok(()));
        assert_eq!(
            limiter.check(HOUR + 500, "a4", Requester::Ip([127, 0, 0, 1].into())),
            Err(RateRefusal::Address { wait_secs: 4 })
        );
    }

    #[test]
    fn memory_is_bounded_and_forgets_old_payments() {
        let limits = FaucetLimits {
            max_tracked: 3,
            ..FaucetLimits::default()
        };
        let mut limiter = RateLimiter::new(limits);
        for n in 0..3u8 {
            let address = format!("a{n}");
            assert_eq!(limiter.check(0, &address, peer(n)), Ok(()));
            limiter.record(0, &address, peer(n));
        }
        assert_eq!(limiter.check(1, "a9", peer(9)), Err(RateRefusal::Busy));
        assert_eq!(limiter.tracked(), (3, 3));
        assert_eq!(limiter.check(HOUR, "a9", peer(9)), Ok(()));
        assert_eq!(limiter.tracked(), (0, 0));
    }
}
