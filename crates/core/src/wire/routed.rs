//! Messages for a peer that is not a neighbour (swap steps, WebRTC signaling, device sync):
//! forwarded hop by hop, each hop taking one from the time-to-live, and signed end to end by
//! the sender over everything but the time-to-live, so no relay can alter or forge them.

use core::fmt;

use bitcoin::secp256k1::{schnorr, Keypair, Message as Digest, Secp256k1, Signing, Verification};

use super::{PeerId, Writer};
use crate::encode::{tagged_hash, Reader};

const ROUTED_TAG: &[u8] = b"bitmesh/routed";

/// What a routed payload is (each protocol decodes its own payloads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoutedKind {
    /// WebRTC offer, answer or candidate for a connection between the two.
    Signal,
    /// A taker's swap proposal.
    SwapProposal,
    /// A maker's answer to one.
    SwapResponse,
    /// Encrypted device-sync traffic of one wallet.
    DeviceSync,
    /// A request for coins from a faucet node.
    FaucetRequest,
    /// The faucet's answer.
    FaucetAnswer,
    /// A kind of a newer version: forwarded, not understood.
    Unknown(u8),
}

impl RoutedKind {
    pub fn code(self) -> u8 {
        match self {
            RoutedKind::Signal => 1,
            RoutedKind::SwapProposal => 2,
            RoutedKind::SwapResponse => 3,
            RoutedKind::DeviceSync => 4,
            RoutedKind::FaucetRequest => 5,
            RoutedKind::FaucetAnswer => 6,
            RoutedKind::Unknown(code) => code,
        }
    }

    pub fn from_code(code: u8) -> RoutedKind {
        match code {
            1 => RoutedKind::Signal,
            2 => RoutedKind::SwapProposal,
            3 => RoutedKind::SwapResponse,
            4 => RoutedKind::DeviceSync,
            5 => RoutedKind::FaucetRequest,
            6 => RoutedKind::FaucetAnswer,
            other => RoutedKind::Unknown(other),
        }
    }
}

/// A routed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    pub to: PeerId,
    pub from: PeerId,
    /// Hops left; not signed (each hop lowers it).
    pub ttl: u8,
    /// The sender's clock (milliseconds): relays drop what is too old or too far ahead.
    pub sent_millis: u64,
    /// Makes two messages with the same content distinct.
    pub nonce: u64,
    pub kind: RoutedKind,
    pub payload: Vec<u8>,
    pub signature: schnorr::Signature,
}

/// Why a routed message is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoutedError {
    /// The sender's id is not a public key.
    BadSender,
    /// The signature is not the sender's.
    BadSignature,
}

impl fmt::Display for RoutedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoutedError::BadSender => f.write_str("the routed message's sender is not a key"),
            RoutedError::BadSignature => {
                f.write_str("the routed message is not signed by its sender")
            }
        }
    }
}

impl std::error::Error for RoutedError {}

impl Routed {
    /// A message from the holder of `key` to `to`, signed (`aux_rand`: 32 fresh random bytes).
    #[allow(clippy::too_many_arguments)]
    pub fn sign<C: Signing>(
        secp: &Secp256k1<C>,
        key: &Keypair,
        to: PeerId,
        ttl: u8,
        sent_millis: u64,
        nonce: u64,
        kind: RoutedKind,
        payload: Vec<u8>,
        aux_rand: &[u8; 32],
    ) -> Routed {
        let mut routed = Routed {
            to,
            from: PeerId::of(&key.x_only_public_key().0),
            ttl,
            sent_millis,
            nonce,
            kind,
            payload,
            signature: schnorr::Signature::from_slice(&[0; 64]).expect("64 bytes"),
        };
        let digest = Digest::from_digest(routed.id());
        routed.signature = secp.sign_schnorr_with_aux_rand(&digest, key, aux_rand);
        routed
    }

    /// What the sender signs, and the name relays deduplicate by (the time-to-live apart).
    pub fn id(&self) -> [u8; 32] {
        let mut fields = Writer(Vec::with_capacity(32 + 32 + 8 + 8 + 1 + self.payload.len()));
        fields.bytes(&self.to.0);
        fields.bytes(&self.from.0);
        fields.u64(self.sent_millis);
        fields.u64(self.nonce);
        fields.u8(self.kind.code());
        fields.bytes(&self.payload);
        tagged_hash(ROUTED_TAG, &[&fields.0])
    }

    /// Checks the sender's signature.
    pub fn verify<C: Verification>(&self, secp: &Secp256k1<C>) -> Result<(), RoutedError> {
        let key = self.from.key().ok_or(RoutedError::BadSender)?;
        secp.verify_schnorr(&self.signature, &Digest::from_digest(self.id()), &key)
            .map_err(|_| RoutedError::BadSignature)
    }

    pub(crate) fn encode_into(&self, out: &mut Writer) {
        out.bytes(&self.to.0);
        out.bytes(&self.from.0);
        out.u8(self.ttl);
        out.u64(self.sent_millis);
        out.u64(self.nonce);
        out.u8(self.kind.code());
        out.u32(self.payload.len() as u32);
        out.bytes(&self.payload);
        out.bytes(self.signature.as_ref());
    }

    /// Decodes the fields; `Err(None)` when the input ends early, `Err(Some(len))` when the
    /// payload is longer than `max_payload`.
    pub(crate) fn decode_from(
        reader: &mut Reader<'_>,
        max_payload: usize,
    ) -> Result<Routed, Option<usize>> {
        let to = PeerId(reader.array().map_err(|_| None)?);
        let from = PeerId(reader.array().map_err(|_| None)?);
        let ttl = reader.u8().map_err(|_| None)?;
        let sent_millis = reader.u64().map_err(|_| None)?;
        let nonce = reader.u64().map_err(|_| None)?;
        let kind = RoutedKind::from_code(reader.u8().map_err(|_| None)?);
        let len = reader.u32().map_err(|_| None)? as usize;
        if len > max_payload {
            return Err(Some(len));
        }
        let payload = reader.take(len).map_err(|_| None)?.to_vec();
        let signature = reader.array::<64>().map_err(|_| None)?;
        Ok(Routed {
            to,
            from,
            ttl,
            sent_millis,
            nonce,
            kind,
            payload,
            signature: schnorr::Signature::from_slice(&signature).expect("64 bytes"),
        })
    }
}
