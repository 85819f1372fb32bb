//! The handshake's first message: who the sender is, on which network and protocol version,
//! its best block, and — signed by its peer key — the DTLS fingerprints of both ends of this
//! very channel. A man in the middle (a malicious signaling server) terminates two channels
//! with other fingerprints, so it can neither forward a hello nor sign one of its own for the
//! peer id.

use core::fmt;

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{schnorr, Keypair, Message as Digest, Secp256k1, Signing, Verification};
use bitcoin::BlockHash;

use super::{PeerId, Writer, MIN_PROTOCOL_VERSION};
use crate::encode::{tagged_hash, EndOfInput, Reader};

const HELLO_TAG: &[u8] = b"bitmesh/hello";

/// The SHA-256 fingerprint of a DTLS certificate, as the transport reports it.
pub type Fingerprint = [u8; 32];

/// What a peer offers, as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Features(pub u64);

impl Features {
    /// Validates and relays blocks and transactions.
    pub const CHAIN: Features = Features(1);
    /// Holds the order book and relays orders.
    pub const MARKET: Features = Features(1 << 1);
    /// Forwards routed messages for others.
    pub const ROUTING: Features = Features(1 << 2);
    /// Pays coins to whoever asks (local and test networks): an extra, not in [`Features::ALL`].
    pub const FAUCET: Features = Features(1 << 3);
    /// What every node of this version does.
    pub const ALL: Features = Features(0b111);

    pub fn contains(self, other: Features) -> bool {
        self.0 & other.0 == other.0
    }
}

/// The fields of a hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The network's magic bytes.
    pub magic: [u8; 4],
    pub version: u32,
    pub peer: PeerId,
    pub tip: BlockHash,
    pub height: u32,
    pub features: Features,
    /// The sender's clock (milliseconds): receivers report a large skew.
    pub time_millis: u64,
    /// The sender's end of the channel.
    pub sender_fingerprint: Fingerprint,
    /// The receiver's end, as the sender sees it.
    pub receiver_fingerprint: Fingerprint,
}

/// Bytes of an encoded signed hello.
pub(crate) const SIGNED_HELLO_LEN: usize = 4 + 4 + 32 + 32 + 4 + 8 + 8 + 32 + 32 + 64;

impl Hello {
    fn encode_fields(&self, out: &mut Writer) {
        out.bytes(&self.magic);
        out.u32(self.version);
        out.bytes(&self.peer.0);
        out.bytes(self.tip.as_byte_array());
        out.u32(self.height);
        out.u64(self.features.0);
        out.u64(self.time_millis);
        out.bytes(&self.sender_fingerprint);
        out.bytes(&self.receiver_fingerprint);
    }

    /// What the peer key signs.
    fn digest(&self) -> [u8; 32] {
        let mut out = Writer(Vec::with_capacity(SIGNED_HELLO_LEN));
        self.encode_fields(&mut out);
        tagged_hash(HELLO_TAG, &[&out.0])
    }
}

/// A hello and its sender's BIP340 signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHello {
    pub hello: Hello,
    pub signature: schnorr::Signature,
}

/// Why a hello is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HelloError {
    /// Another network's magic.
    WrongNetwork { ours: [u8; 4], theirs: [u8; 4] },
    /// A version older than [`MIN_PROTOCOL_VERSION`].
    UnsupportedVersion { theirs: u32, min: u32 },
    /// The peer id is not a public key.
    BadPeerId,
    /// The fingerprints signed are not those of this channel.
    NotThisChannel,
    /// The signature is not the peer id's.
    BadSignature,
    /// The hello comes from this node itself.
    SelfConnection,
}

impl fmt::Display for HelloError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HelloError::WrongNetwork { ours, theirs } => write!(
                f,
                "the peer is on another network (magic {} instead of {})",
                hex(theirs),
                hex(ours)
            ),
            HelloError::UnsupportedVersion { theirs, min } => write!(
                f,
                "protocol version {theirs} is older than the oldest supported, {min}"
            ),
            HelloError::BadPeerId => f.write_str("the peer id is not a public key"),
            HelloError::NotThisChannel => f.write_str(
                "the hello was signed for another channel (DTLS fingerprints differ): \
                 someone is in the middle",
            ),
            HelloError::BadSignature => f.write_str("the hello's signature is not the peer's"),
            HelloError::SelfConnection => f.write_str("the peer is this node itself"),
        }
    }
}

impl std::error::Error for HelloError {}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

impl SignedHello {
    /// Signs `hello` with the node key (`aux_rand`: 32 fresh random bytes, BIP340).
    pub fn sign<C: Signing>(
        secp: &Secp256k1<C>,
        hello: Hello,
        key: &Keypair,
        aux_rand: &[u8; 32],
    ) -> SignedHello {
        let digest = Digest::from_digest(hello.digest());
        let signature = secp.sign_schnorr_with_aux_rand(&digest, key, aux_rand);
        SignedHello { hello, signature }
    }

    pub(crate) fn encode_into(&self, out: &mut Writer) {
        self.hello.encode_fields(out);
        out.bytes(self.signature.as_ref());
    }

    pub(crate) fn decode_from(reader: &mut Reader<'_>) -> Result<SignedHello, EndOfInput> {
        let hello = Hello {
            magic: reader.array()?,
            version: reader.u32()?,
            peer: PeerId(reader.array()?),
            tip: BlockHash::from_byte_array(reader.array()?),
            height: reader.u32()?,
            features: Features(reader.u64()?),
            time_millis: reader.u64()?,
            sender_fingerprint: reader.array()?,
            receiver_fingerprint: reader.array()?,
        };
        let signature = reader.array::<64>()?;
        // Any 64 bytes parse as a BIP340 signature; verification decides.
        let signature = schnorr::Signature::from_slice(&signature).expect("64 bytes");
        Ok(SignedHello { hello, signature })
    }

    /// Checks a hello received on a channel whose ends have the fingerprints `local` (this
    /// node's) and `remote`, for a node of network `magic` with peer id `own`.
    pub fn check<C: Verification>(
        &self,
        secp: &Secp256k1<C>,
        magic: [u8; 4],
        own: PeerId,
        local: &Fingerprint,
        remote: &Fingerprint,
    ) -> Result<(), HelloError> {
        let hello = &self.hello;
        if hello.magic != magic {
            return Err(HelloError::WrongNetwork {
                ours: magic,
                theirs: hello.magic,
            });
        }
        if hello.version < MIN_PROTOCOL_VERSION {
            return Err(HelloError::UnsupportedVersion {
                theirs: hello.version,
                min: MIN_PROTOCOL_VERSION,
            });
        }
        if hello.peer == own {
            return Err(HelloError::SelfConnection);
        }
        if &hello.sender_fingerprint != remote || &hello.receiver_fingerprint != local {
            return Err(HelloError::NotThisChannel);
        }
        let key = hello.peer.key().ok_or(HelloError::BadPeerId)?;
        secp.verify_schnorr(&self.signature, &Digest::from_digest(hello.digest()), &key)
            .map_err(|_| HelloError::BadSignature)
    }
}
