//! What a trader's desk keeps across a reload: its trades (the "My trades" list), the fills
//! of its orders that a reorganisation could still reopen or (undone) fill again, and its
//! swaps whose makers have not answered. Versioned bytes, written whole; anything else read
//! back is refused with the reason. Version 1 (before the unanswered swaps and the undone
//! fills) is still read.

use core::fmt;

use bitcoin::hashes::Hash;
use bitcoin::{OutPoint, Txid};

use super::desk::{Trade, UnansweredTake, MAX_TRADES, MAX_UNANSWERED};
use super::order::{OrderId, MAX_FUNDING};
use super::swap::{SettledFill, UndoneFills};
use crate::chain::assets::AssetId;
use crate::encode::{EndOfInput, Reader};

const ENCODING_VERSION: u8 = 2;
/// Without the unanswered swaps and the undone fills.
const FIRST_VERSION: u8 = 1;

/// A desk's trades, oldest first, its orders' settled fills that could still be undone, its
/// unanswered swaps, and its orders' undone fills that could still be done again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeskRecord {
    pub trades: Vec<Trade>,
    /// By order, sorted by order id (so equal records encode alike); each order's fills in the
    /// order they were made.
    pub settled: Vec<(OrderId, Vec<SettledFill>)>,
    /// Oldest first.
    pub unanswered: Vec<UnansweredTake>,
    /// By order, sorted by order id, as `settled`.
    pub undone: Vec<(OrderId, UndoneFills)>,
}

/// Why bytes are not a desk record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeskRecordError {
    Truncated,
    UnsupportedVersion(u8),
    Invalid(&'static str),
    TrailingBytes,
}

impl fmt::Display for DeskRecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeskRecordError::Truncated => f.write_str("the desk record ends early"),
            DeskRecordError::UnsupportedVersion(version) => {
                write!(f, "the desk record's version {version} is not supported")
            }
            DeskRecordError::Invalid(what) => write!(f, "the desk record's {what} is invalid"),
            DeskRecordError::TrailingBytes => f.write_str("bytes follow the desk record"),
        }
    }
}

impl std::error::Error for DeskRecordError {}

impl From<EndOfInput> for DeskRecordError {
    fn from(_: EndOfInput) -> Self {
        DeskRecordError::Truncated
    }
}

const BOUGHT: u8 = 1;
const AS_MAKER: u8 = 2;
const UNDONE: u8 = 4;

impl DeskRecord {
    /// The record's bytes. [`DeskRecord::decode`] reads them back when the record is one a
    /// desk gives ([`crate::market::desk::Desk::record`]): at most [`MAX_TRADES`] trades,
    /// orders sorted and distinct, each with a fill or more of at most [`MAX_FUNDING`] coins,
    /// at most [`MAX_UNANSWERED`] unanswered swaps, and undone fills as the settled ones.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![ENCODING_VERSION];
        put_len(&mut out, self.trades.len());
        for trade in &self.trades {
            put_trade(&mut out, trade);
        }
        put_len(&mut out, self.settled.len());
        for (order, fills) in &self.settled {
            out.extend_from_slice(&order.0);
            put_fills(&mut out, fills);
        }
        put_len(&mut out, self.unanswered.len());
        for take in &self.unanswered {
            put_trade(&mut out, &take.trade);
            out.extend_from_slice(&take.until_millis.to_le_bytes());
        }
        put_len(&mut out, self.undone.len());
        for (order, undone) in &self.undone {
            out.extend_from_slice(&order.0);
            put_fills(&mut out, &undone.fills);
            out.extend_from_slice(&undone.filled_after.to_le_bytes());
            put_coins(&mut out, &undone.funding_after);
        }
        out
    }

    /// Reads bytes [`DeskRecord::encode`] wrote, refusing anything else with the reason.
    pub fn decode(bytes: &[u8]) -> Result<DeskRecord, DeskRecordError> {
        let mut reader = Reader::new(bytes);
        let version = reader.u8()?;
        if version != ENCODING_VERSION && version != FIRST_VERSION {
            return Err(DeskRecordError::UnsupportedVersion(version));
        }
        let mut record = DeskRecord::default();
        let trades = reader.u32()? as usize;
        if trades > MAX_TRADES {
            return Err(DeskRecordError::Invalid("number of trades"));
        }
        for _ in 0..trades {
            record.trades.push(read_trade(&mut reader)?);
        }
        // Counts are not trusted for allocation: each entry reads its bytes or fails.
        for _ in 0..reader.u32()? {
            let previous = record.settled.last().map(|(order, _)| order);
            let order = read_order_after(&mut reader, previous, "order of the settled fills")?;
            let fills = read_fills(&mut reader)?;
            if fills.is_empty() {
                // Desks of version 1 kept an order whose fills were all undone: it says nothing.
                if version == FIRST_VERSION {
                    continue;
                }
                return Err(DeskRecordError::Invalid("settled fills of an order (none)"));
            }
            record.settled.push((order, fills));
        }
        if version != FIRST_VERSION {
            let unanswered = reader.u32()? as usize;
            if unanswered > MAX_UNANSWERED {
                return Err(DeskRecordError::Invalid("number of unanswered swaps"));
            }
            for _ in 0..unanswered {
                record.unanswered.push(UnansweredTake {
                    trade: read_trade(&mut reader)?,
                    until_millis: reader.u64()?,
                });
            }
            for _ in 0..reader.u32()? {
                let previous = record.undone.last().map(|(order, _)| order);
                let order = read_order_after(&mut reader, previous, "order of the undone fills")?;
                let fills = read_fills(&mut reader)?;
                if fills.is_empty() {
                    return Err(DeskRecordError::Invalid("undone fills of an order (none)"));
                }
                let undone = UndoneFills {
                    fills,
                    filled_after: reader.u64()?,
                    funding_after: read_coins(&mut reader)?,
                };
                record.undone.push((order, undone));
            }
        }
        if !reader.rest().is_empty() {
            return Err(DeskRecordError::TrailingBytes);
        }
        Ok(record)
    }
}

/// An order id, refused as `what` unless it comes after `previous` (entries are sorted and
/// distinct).
fn read_order_after(
    reader: &mut Reader,
    previous: Option<&OrderId>,
    what: &'static str,
) -> Result<OrderId, DeskRecordError> {
    let order = OrderId(reader.array()?);
    if previous.is_some_and(|previous| *previous >= order) {
        return Err(DeskRecordError::Invalid(what));
    }
    Ok(order)
}

fn put_fills(out: &mut Vec<u8>, fills: &[SettledFill]) {
    put_len(out, fills.len());
    for fill in fills {
        out.extend_from_slice(fill.txid.as_byte_array());
        out.extend_from_slice(&fill.filled_before.to_le_bytes());
        put_coins(out, &fill.funding_before);
    }
}

fn read_fills(reader: &mut Reader) -> Result<Vec<SettledFill>, DeskRecordError> {
    let mut fills = Vec::new();
    for _ in 0..reader.u32()? {
        fills.push(SettledFill {
            txid: Txid::from_byte_array(reader.array()?),
            filled_before: reader.u64()?,
            funding_before: read_coins(reader)?,
        });
    }
    Ok(fills)
}

fn put_coins(out: &mut Vec<u8>, coins: &[OutPoint]) {
    out.push(coins.len() as u8);
    for coin in coins {
        out.extend_from_slice(coin.txid.as_byte_array());
        out.extend_from_slice(&coin.vout.to_le_bytes());
    }
}

fn read_coins(reader: &mut Reader) -> Result<Vec<OutPoint>, DeskRecordError> {
    let count = usize::from(reader.u8()?);
    if count > MAX_FUNDING {
        return Err(DeskRecordError::Invalid("number of coins of a fill"));
    }
    let mut coins = Vec::with_capacity(count);
    for _ in 0..count {
        let txid = Txid::from_byte_array(reader.array()?);
        coins.push(OutPoint::new(txid, reader.u32()?));
    }
    Ok(coins)
}

fn put_trade(out: &mut Vec<u8>, trade: &Trade) {
    out.extend_from_slice(trade.txid.as_byte_array());
    out.extend_from_slice(&trade.order.0);
    out.extend_from_slice(&trade.market.to_byte_array());
    let flag = |set: bool, bit: u8| if set { bit } else { 0 };
    let flags =
        flag(trade.bought, BOUGHT) | flag(trade.as_maker, AS_MAKER) | flag(trade.undone, UNDONE);
    out.push(flags);
    for number in [trade.quantity, trade.sats, trade.price, trade.millis] {
        out.extend_from_slice(&number.to_le_bytes());
    }
}

fn read_trade(reader: &mut Reader) -> Result<Trade, DeskRecordError> {
    let txid = Txid::from_byte_array(reader.array()?);
    let order = OrderId(reader.array()?);
    let market = AssetId::from_byte_array(reader.array()?);
    let flags = reader.u8()?;
    if flags & !(BOUGHT | AS_MAKER | UNDONE) != 0 {
        return Err(DeskRecordError::Invalid("trade flags"));
    }
    Ok(Trade {
        txid,
        order,
        market,
        bought: flags & BOUGHT != 0,
        quantity: reader.u64()?,
        sats: reader.u64()?,
        price: reader.u64()?,
        as_maker: flags & AS_MAKER != 0,
        millis: reader.u64()?,
        undone: flags & UNDONE != 0,
    })
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&(len as u32).to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::desk_record_sample as record;

    #[test]
    fn a_record_reads_back_as_written() {
        let record = record();
        assert_eq!(DeskRecord::decode(&record.encode()), Ok(record));
        let empty = DeskRecord::default();
        assert_eq!(DeskRecord::decode(&empty.encode()), Ok(empty));
    }

    /// What a desk of version 1 wrote of `record`: the same bytes without the counts of
    /// unanswered swaps and undone fills (which were not kept then).
    fn first_version(record: &DeskRecord) -> Vec<u8> {
        let mut bytes = record.encode();
        bytes.truncate(bytes.len() - 8);
        bytes[0] = FIRST_VERSION;
        bytes
    }

    #[test]
    fn a_first_version_record_reads_with_no_unanswered_swaps_nor_undone_fills() {
        let mut record = record();
        record.unanswered.clear();
        record.undone.clear();
        let mut bytes = first_version(&record);
        assert_eq!(DeskRecord::decode(&bytes), Ok(record.clone()));
        bytes.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(
            DeskRecord::decode(&bytes),
            Err(DeskRecordError::TrailingBytes)
        );
        // Such a desk kept an order once every fill of it was undone: it reads, without it.
        let mut emptied = record.clone();
        emptied.settled[0].1.clear();
        record.settled.clear();
        assert_eq!(DeskRecord::decode(&first_version(&emptied)), Ok(record));
    }

    #[test]
    fn bytes_that_are_no_record_are_refused_with_the_reason() {
        let bytes = record().encode();
        for end in 0..bytes.len() {
            assert_eq!(
                DeskRecord::decode(&bytes[..end]),
                Err(DeskRecordError::Truncated),
                "cut at {end}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            DeskRecord::decode(&longer),
            Err(DeskRecordError::TrailingBytes)
        );
        let mut version = bytes.clone();
        version[0] = 9;
        assert_eq!(
            DeskRecord::decode(&version),
            Err(DeskRecordError::UnsupportedVersion(9))
        );
        // The trade's flags follow the version, the count and three 32-byte fields.
        let mut flags = bytes.clone();
        flags[1 + 4 + 96] |= 8;
        assert_eq!(
            DeskRecord::decode(&flags),
            Err(DeskRecordError::Invalid("trade flags"))
        );
        let mut trades = bytes.clone();
        trades[1..5].copy_from_slice(&(MAX_TRADES as u32 + 1).to_le_bytes());
        assert_eq!(
            DeskRecord::decode(&trades),
            Err(DeskRecordError::Invalid("number of trades"))
        );
        // Two entries for one order.
        let mut twice = record();
        twice.settled.push(twice.settled[0].clone());
        assert_eq!(
            DeskRecord::decode(&twice.encode()),
            Err(DeskRecordError::Invalid("order of the settled fills"))
        );
        let mut unanswered = record();
        let take = unanswered.unanswered[0].clone();
        unanswered.unanswered = vec![take; MAX_UNANSWERED + 1];
        assert_eq!(
            DeskRecord::decode(&unanswered.encode()),
            Err(DeskRecordError::Invalid("number of unanswered swaps"))
        );
        let mut none = record();
        none.settled[0].1.clear();
        assert_eq!(
            DeskRecord::decode(&none.encode()),
            Err(DeskRecordError::Invalid("settled fills of an order (none)"))
        );
        let mut twice = record();
        twice.undone.push(twice.undone[0].clone());
        assert_eq!(
            DeskRecord::decode(&twice.encode()),
            Err(DeskRecordError::Invalid("order of the undone fills"))
        );
        let mut none = record();
        none.undone[0].1.fills.clear();
        assert_eq!(
            DeskRecord::decode(&none.encode()),
            Err(DeskRecordError::Invalid("undone fills of an order (none)"))
        );
        let mut coins = record();
        coins.undone[0].1.funding_after = vec![OutPoint::null(); MAX_FUNDING + 1];
        assert_eq!(
            DeskRecord::decode(&coins.encode()),
            Err(DeskRecordError::Invalid("number of coins of a fill"))
        );
    }
}
