//! The message types and their encoding.

use core::fmt;

use bitcoin::block::Header;
use bitcoin::consensus::{deserialize, serialize};
use bitcoin::hashes::Hash;
use bitcoin::{Block, BlockHash, Transaction, Weight};

use super::hello::{SignedHello, SIGNED_HELLO_LEN};
use super::inventory::{InvItem, InvKind, InvPurpose};
use super::routed::Routed;
use super::topic::TopicAnnouncement;
use super::{
    PeerId, Writer, MAX_GOODBYE_TEXT, MAX_HEADERS, MAX_INVENTORY, MAX_LOCATOR, MAX_MESSAGE_BYTES,
    MAX_PEER_RECORDS, MAX_ROUTED_PAYLOAD,
};
use crate::chain::block::MAX_BLOCK_WEIGHT;
use crate::chain::mempool::MAX_STANDARD_TX_WEIGHT;
use crate::encode::Reader;
use crate::market::order::{OrderError, SignedOrder, SignedUpdate, UpdateError};

/// Why a peer said goodbye.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GoodbyeReason {
    WrongNetwork,
    UnsupportedVersion,
    /// The hello was malformed, unsigned or for another channel.
    BadHello,
    /// The peer broke the protocol too often.
    Misbehaviour,
    /// The peer is banned for a while.
    Banned,
    /// This node has all the neighbours it wants.
    Full,
    /// The two are connected already.
    Duplicate,
    ShuttingDown,
    /// A reason of a newer version.
    Unknown(u8),
}

impl GoodbyeReason {
    pub fn code(self) -> u8 {
        match self {
            GoodbyeReason::WrongNetwork => 1,
            GoodbyeReason::UnsupportedVersion => 2,
            GoodbyeReason::BadHello => 3,
            GoodbyeReason::Misbehaviour => 4,
            GoodbyeReason::Banned => 5,
            GoodbyeReason::Full => 6,
            GoodbyeReason::Duplicate => 7,
            GoodbyeReason::ShuttingDown => 8,
            GoodbyeReason::Unknown(code) => code,
        }
    }

    pub fn from_code(code: u8) -> GoodbyeReason {
        match code {
            1 => GoodbyeReason::WrongNetwork,
            2 => GoodbyeReason::UnsupportedVersion,
            3 => GoodbyeReason::BadHello,
            4 => GoodbyeReason::Misbehaviour,
            5 => GoodbyeReason::Banned,
            6 => GoodbyeReason::Full,
            7 => GoodbyeReason::Duplicate,
            8 => GoodbyeReason::ShuttingDown,
            other => GoodbyeReason::Unknown(other),
        }
    }
}

/// The last message on a channel: why the sender closes it, in words for the person reading
/// the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Goodbye {
    pub reason: GoodbyeReason,
    /// At most [`MAX_GOODBYE_TEXT`] bytes.
    pub text: String,
}

impl Goodbye {
    /// A goodbye whose text is cut (at a character boundary) to the limit.
    pub fn new(reason: GoodbyeReason, text: impl fmt::Display) -> Goodbye {
        let text = crate::encode::truncated(text.to_string(), MAX_GOODBYE_TEXT);
        Goodbye { reason, text }
    }
}

/// A request for the headers after the first locator hash on the receiver's active chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetHeaders {
    /// Hashes from the sender's tip back, densely then exponentially sparser, to genesis.
    pub locator: Vec<BlockHash>,
    /// Stop after this one (all zeros: send as many as allowed).
    pub stop: BlockHash,
}

/// A peer another peer knows of, for peer exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerRecord {
    pub peer: PeerId,
    pub features: super::Features,
    /// When the sender last had it as a neighbour (Unix seconds).
    pub last_seen_secs: u64,
}

/// A message of the peer protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// The first message on a channel, both ways.
    Hello(SignedHello),
    Goodbye(Goodbye),
    Ping(u64),
    Pong(u64),
    /// Objects the sender has.
    Inv {
        purpose: InvPurpose,
        items: Vec<InvItem>,
    },
    /// Objects the sender wants.
    GetData(Vec<InvItem>),
    /// Requested objects the sender does not have.
    NotFound(Vec<InvItem>),
    GetHeaders(GetHeaders),
    Headers(Vec<Header>),
    Block(Box<Block>),
    Tx(Transaction),
    Order(SignedOrder),
    OrderUpdate(SignedUpdate),
    GetPeers,
    Peers(Vec<PeerRecord>),
    Routed(Routed),
    Topic(TopicAnnouncement),
    /// A message type of a newer version, skipped (its type byte).
    Unknown(u8),
}

const HELLO: u8 = 0x01;
const GOODBYE: u8 = 0x02;
const PING: u8 = 0x03;
const PONG: u8 = 0x04;
const INV: u8 = 0x10;
const GET_DATA: u8 = 0x11;
const NOT_FOUND: u8 = 0x12;
const GET_HEADERS: u8 = 0x20;
const HEADERS: u8 = 0x21;
const BLOCK: u8 = 0x22;
const TX: u8 = 0x30;
const ORDER: u8 = 0x40;
const ORDER_UPDATE: u8 = 0x41;
const GET_PEERS: u8 = 0x50;
const PEERS: u8 = 0x51;
const ROUTED: u8 = 0x60;
const TOPIC: u8 = 0x70;

/// Why bytes are not a message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// No bytes at all.
    Empty,
    /// More than [`MAX_MESSAGE_BYTES`].
    TooLarge { size: usize, max: usize },
    /// The message ended before its fields did.
    Truncated(&'static str),
    /// Bytes follow the message's last field.
    TrailingBytes(&'static str),
    /// A list is longer than its limit.
    TooMany {
        message: &'static str,
        count: usize,
        max: usize,
    },
    /// A field holds a value it may not.
    Invalid {
        message: &'static str,
        reason: &'static str,
    },
    /// A block or transaction is not in consensus encoding.
    BadObject {
        message: &'static str,
        reason: String,
    },
    /// A block or transaction weighs more than the limit.
    TooHeavy {
        message: &'static str,
        weight: Weight,
        max: Weight,
    },
    /// The order is malformed.
    Order(OrderError),
    /// The order update is malformed.
    OrderUpdate(UpdateError),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Empty => f.write_str("an empty message"),
            DecodeError::TooLarge { size, max } => {
                write!(f, "a message of {size} bytes, above the limit of {max}")
            }
            DecodeError::Truncated(message) => write!(f, "{message}: the message ends early"),
            DecodeError::TrailingBytes(message) => {
                write!(f, "{message}: bytes after the last field")
            }
            DecodeError::TooMany {
                message,
                count,
                max,
            } => write!(f, "{message}: {count} entries, above the limit of {max}"),
            DecodeError::Invalid { message, reason } => write!(f, "{message}: {reason}"),
            DecodeError::BadObject { message, reason } => write!(f, "{message}: {reason}"),
            DecodeError::TooHeavy {
                message,
                weight,
                max,
            } => write!(f, "{message}: weighs {weight}, above the limit of {max}"),
            DecodeError::Order(err) => write!(f, "order: {err}"),
            DecodeError::OrderUpdate(err) => write!(f, "order update: {err}"),
        }
    }
}

impl std::error::Error for DecodeError {}

impl Message {
    /// The message type's name, for logs and errors.
    pub fn name(&self) -> &'static str {
        name(self.code())
    }

    fn code(&self) -> u8 {
        match self {
            Message::Hello(_) => HELLO,
            Message::Goodbye(_) => GOODBYE,
            Message::Ping(_) => PING,
            Message::Pong(_) => PONG,
            Message::Inv { .. } => INV,
            Message::GetData(_) => GET_DATA,
            Message::NotFound(_) => NOT_FOUND,
            Message::GetHeaders(_) => GET_HEADERS,
            Message::Headers(_) => HEADERS,
            Message::Block(_) => BLOCK,
            Message::Tx(_) => TX,
            Message::Order(_) => ORDER,
            Message::OrderUpdate(_) => ORDER_UPDATE,
            Message::GetPeers => GET_PEERS,
            Message::Peers(_) => PEERS,
            Message::Routed(_) => ROUTED,
            Message::Topic(_) => TOPIC,
            Message::Unknown(code) => *code,
        }
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Writer(Vec::with_capacity(64));
        out.u8(self.code());
        match self {
            Message::Hello(hello) => hello.encode_into(&mut out),
            Message::Goodbye(goodbye) => {
                out.u8(goodbye.reason.code());
                out.u8(goodbye.text.len() as u8);
                out.bytes(goodbye.text.as_bytes());
            }
            Message::Ping(nonce) | Message::Pong(nonce) => out.u64(*nonce),
            Message::Inv { purpose, items } => {
                out.u8(match purpose {
                    InvPurpose::New => 0,
                    InvPurpose::Holdings => 1,
                });
                encode_items(&mut out, items);
            }
            Message::GetData(items) | Message::NotFound(items) => encode_items(&mut out, items),
            Message::GetHeaders(request) => {
                out.u8(request.locator.len() as u8);
                for hash in &request.locator {
                    out.bytes(hash.as_byte_array());
                }
                out.bytes(request.stop.as_byte_array());
            }
            Message::Headers(headers) => {
                out.u16(headers.len() as u16);
                for header in headers {
                    out.bytes(&serialize(header));
                }
            }
            Message::Block(block) => out.bytes(&serialize(block.as_ref())),
            Message::Tx(tx) => out.bytes(&serialize(tx)),
            Message::Order(order) => out.bytes(&order.encode()),
            Message::OrderUpdate(update) => out.bytes(&update.encode()),
            Message::GetPeers | Message::Unknown(_) => {}
            Message::Peers(records) => {
                out.u8(records.len() as u8);
                for record in records {
                    out.bytes(&record.peer.0);
                    out.u64(record.features.0);
                    out.u64(record.last_seen_secs);
                }
            }
            Message::Routed(routed) => routed.encode_into(&mut out),
            Message::Topic(announcement) => out.bytes(&announcement.encode()),
        }
        out.0
    }

    /// Decodes one whole message.
    pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(DecodeError::TooLarge {
                size: bytes.len(),
                max: MAX_MESSAGE_BYTES,
            });
        }
        let (&code, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
        let message = name(code);
        let truncated = |_| DecodeError::Truncated(message);
        let mut reader = Reader::new(body);
        let decoded = match code {
            HELLO => {
                if body.len() < SIGNED_HELLO_LEN {
                    return Err(DecodeError::Truncated(message));
                }
                Message::Hello(SignedHello::decode_from(&mut reader).map_err(truncated)?)
            }
            GOODBYE => {
                let reason = GoodbyeReason::from_code(reader.u8().map_err(truncated)?);
                let len = usize::from(reader.u8().map_err(truncated)?);
                if len > MAX_GOODBYE_TEXT {
                    return Err(DecodeError::TooMany {
                        message,
                        count: len,
                        max: MAX_GOODBYE_TEXT,
                    });
                }
                let text =
                    core::str::from_utf8(reader.take(len).map_err(truncated)?).map_err(|_| {
                        DecodeError::Invalid {
                            message,
                            reason: "the text is not UTF-8",
                        }
                    })?;
                Message::Goodbye(Goodbye {
                    reason,
                    text: text.to_owned(),
                })
            }
            PING => Message::Ping(reader.u64().map_err(truncated)?),
            PONG => Message::Pong(reader.u64().map_err(truncated)?),
            INV => {
                let purpose = match reader.u8().map_err(truncated)? {
                    0 => InvPurpose::New,
                    1 => InvPurpose::Holdings,
                    _ => {
                        return Err(DecodeError::Invalid {
                            message,
                            reason: "unknown inventory purpose",
                        })
                    }
                };
                let items = decode_items(&mut reader, message)?;
                Message::Inv { purpose, items }
            }
            GET_DATA => Message::GetData(decode_items(&mut reader, message)?),
            NOT_FOUND => Message::NotFound(decode_items(&mut reader, message)?),
            GET_HEADERS => {
                let count = usize::from(reader.u8().map_err(truncated)?);
                check_count(message, count, MAX_LOCATOR)?;
                let mut locator = Vec::with_capacity(count);
                for _ in 0..count {
                    locator.push(BlockHash::from_byte_array(
                        reader.array().map_err(truncated)?,
                    ));
                }
                let stop = BlockHash::from_byte_array(reader.array().map_err(truncated)?);
                Message::GetHeaders(GetHeaders { locator, stop })
            }
            HEADERS => {
                let count = usize::from(reader.u16().map_err(truncated)?);
                check_count(message, count, MAX_HEADERS)?;
                if reader.rest().len() < count * 80 {
                    return Err(DecodeError::Truncated(message));
                }
                let mut headers = Vec::with_capacity(count);
                for _ in 0..count {
                    let raw = reader.take(80).map_err(truncated)?;
                    headers.push(deserialize::<Header>(raw).map_err(|err| bad(message, err))?);
                }
                Message::Headers(headers)
            }
            BLOCK => {
                let block: Block = deserialize(reader.rest()).map_err(|err| bad(message, err))?;
                reader = Reader::new(&[]);
                let weight = block.weight();
                if weight > MAX_BLOCK_WEIGHT {
                    return Err(DecodeError::TooHeavy {
                        message,
                        weight,
                        max: MAX_BLOCK_WEIGHT,
                    });
                }
                Message::Block(Box::new(block))
            }
            TX => {
                let tx: Transaction =
                    deserialize(reader.rest()).map_err(|err| bad(message, err))?;
                reader = Reader::new(&[]);
                let weight = tx.weight();
                if weight > MAX_STANDARD_TX_WEIGHT {
                    return Err(DecodeError::TooHeavy {
                        message,
                        weight,
                        max: MAX_STANDARD_TX_WEIGHT,
                    });
                }
                Message::Tx(tx)
            }
            ORDER => {
                let order = SignedOrder::decode(reader.rest()).map_err(DecodeError::Order)?;
                reader = Reader::new(&[]);
                Message::Order(order)
            }
            ORDER_UPDATE => {
                let update =
                    SignedUpdate::decode(reader.rest()).map_err(DecodeError::OrderUpdate)?;
                reader = Reader::new(&[]);
                Message::OrderUpdate(update)
            }
            GET_PEERS => Message::GetPeers,
            PEERS => {
                let count = usize::from(reader.u8().map_err(truncated)?);
                check_count(message, count, MAX_PEER_RECORDS)?;
                let mut records = Vec::with_capacity(count);
                for _ in 0..count {
                    records.push(PeerRecord {
                        peer: PeerId(reader.array().map_err(truncated)?),
                        features: super::Features(reader.u64().map_err(truncated)?),
                        last_seen_secs: reader.u64().map_err(truncated)?,
                    });
                }
                Message::Peers(records)
            }
            ROUTED => Message::Routed(
                Routed::decode_from(&mut reader, MAX_ROUTED_PAYLOAD).map_err(|err| match err {
                    None => DecodeError::Truncated(message),
                    Some(count) => DecodeError::TooMany {
                        message,
                        count,
                        max: MAX_ROUTED_PAYLOAD,
                    },
                })?,
            ),
            TOPIC => {
                let announcement =
                    TopicAnnouncement::decode(reader.rest()).map_err(|_| DecodeError::Invalid {
                        message,
                        reason: "a topic announcement has a fixed length",
                    })?;
                reader = Reader::new(&[]);
                Message::Topic(announcement)
            }
            // A newer version's message: its body is its own business.
            unknown => return Ok(Message::Unknown(unknown)),
        };
        if !reader.rest().is_empty() {
            return Err(DecodeError::TrailingBytes(message));
        }
        Ok(decoded)
    }
}

fn name(code: u8) -> &'static str {
    match code {
        HELLO => "hello",
        GOODBYE => "goodbye",
        PING => "ping",
        PONG => "pong",
        INV => "inv",
        GET_DATA => "getdata",
        NOT_FOUND => "notfound",
        GET_HEADERS => "getheaders",
        HEADERS => "headers",
        BLOCK => "block",
        TX => "tx",
        ORDER => "order",
        ORDER_UPDATE => "orderupdate",
        GET_PEERS => "getpeers",
        PEERS => "peers",
        ROUTED => "routed",
        TOPIC => "topic",
        _ => "unknown",
    }
}

fn bad(message: &'static str, err: bitcoin::consensus::encode::Error) -> DecodeError {
    DecodeError::BadObject {
        message,
        reason: err.to_string(),
    }
}

fn check_count(message: &'static str, count: usize, max: usize) -> Result<(), DecodeError> {
    if count > max {
        return Err(DecodeError::TooMany {
            message,
            count,
            max,
        });
    }
    Ok(())
}

fn encode_items(out: &mut Writer, items: &[InvItem]) {
    out.u16(items.len() as u16);
    for item in items {
        out.u8(item.kind.code());
        out.bytes(&item.id);
    }
}

fn decode_items(
    reader: &mut Reader<'_>,
    message: &'static str,
) -> Result<Vec<InvItem>, DecodeError> {
    let truncated = |_| DecodeError::Truncated(message);
    let count = usize::from(reader.u16().map_err(truncated)?);
    check_count(message, count, MAX_INVENTORY)?;
    if reader.rest().len() < count * 33 {
        return Err(DecodeError::Truncated(message));
    }
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        let kind = InvKind::from_code(reader.u8().map_err(truncated)?);
        items.push(InvItem::new(kind, reader.array().map_err(truncated)?));
    }
    Ok(items)
}
