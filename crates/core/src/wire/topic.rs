//! Topic announcements: a peer says "I follow this topic until then", signed by its node key,
//! so any protocol can find the peers of a topic (a wallet's other devices, say) without
//! knowing them first. A topic is 32 opaque bytes: whoever derives it decides what it reveals.

use core::fmt;

use bitcoin::secp256k1::{schnorr, Keypair, Message as Digest, Secp256k1, Signing, Verification};

use super::{PeerId, Writer};
use crate::encode::{tagged_hash, Reader};

const TOPIC_TAG: &[u8] = b"bitmesh/topic";

/// The encoded size of an announcement.
pub const TOPIC_ANNOUNCEMENT_LEN: usize = 32 + 32 + 8 + 8 + 64;

/// A signed announcement that `peer` follows `topic` from `issued_millis` to `expires_millis`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicAnnouncement {
    pub topic: [u8; 32],
    pub peer: PeerId,
    pub issued_millis: u64,
    pub expires_millis: u64,
    pub signature: schnorr::Signature,
}

/// Why an announcement is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TopicError {
    /// Not [`TOPIC_ANNOUNCEMENT_LEN`] bytes.
    Length(usize),
    /// The announcing peer's id is not a public key.
    BadPeer,
    /// The signature is not the announcing peer's.
    BadSignature,
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopicError::Length(len) => write!(
                f,
                "a topic announcement of {len} bytes, not {TOPIC_ANNOUNCEMENT_LEN}"
            ),
            TopicError::BadPeer => f.write_str("the announcing peer is not a key"),
            TopicError::BadSignature => {
                f.write_str("the topic announcement is not signed by its peer")
            }
        }
    }
}

impl std::error::Error for TopicError {}

impl TopicAnnouncement {
    /// An announcement by the holder of `key` (`aux_rand`: 32 fresh random bytes).
    pub fn sign<C: Signing>(
        secp: &Secp256k1<C>,
        key: &Keypair,
        topic: [u8; 32],
        issued_millis: u64,
        expires_millis: u64,
        aux_rand: &[u8; 32],
    ) -> TopicAnnouncement {
        let mut announcement = TopicAnnouncement {
            topic,
            peer: PeerId::of(&key.x_only_public_key().0),
            issued_millis,
            expires_millis,
            signature: schnorr::Signature::from_slice(&[0; 64]).expect("64 bytes"),
        };
        let digest = Digest::from_digest(announcement.id());
        announcement.signature = secp.sign_schnorr_with_aux_rand(&digest, key, aux_rand);
        announcement
    }

    /// What the peer signs, and the announcement's inventory name.
    pub fn id(&self) -> [u8; 32] {
        let mut fields = Writer(Vec::with_capacity(80));
        fields.bytes(&self.topic);
        fields.bytes(&self.peer.0);
        fields.u64(self.issued_millis);
        fields.u64(self.expires_millis);
        tagged_hash(TOPIC_TAG, &[&fields.0])
    }

    /// Checks the peer's signature.
    pub fn verify<C: Verification>(&self, secp: &Secp256k1<C>) -> Result<(), TopicError> {
        let key = self.peer.key().ok_or(TopicError::BadPeer)?;
        secp.verify_schnorr(&self.signature, &Digest::from_digest(self.id()), &key)
            .map_err(|_| TopicError::BadSignature)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Writer(Vec::with_capacity(TOPIC_ANNOUNCEMENT_LEN));
        out.bytes(&self.topic);
        out.bytes(&self.peer.0);
        out.u64(self.issued_millis);
        out.u64(self.expires_millis);
        out.bytes(self.signature.as_ref());
        out.0
    }

    pub fn decode(bytes: &[u8]) -> Result<TopicAnnouncement, TopicError> {
        if bytes.len() != TOPIC_ANNOUNCEMENT_LEN {
            return Err(TopicError::Length(bytes.len()));
        }
        let mut reader = Reader::new(bytes);
        let length = |_| TopicError::Length(bytes.len());
        let topic = reader.array().map_err(length)?;
        let peer = PeerId(reader.array().map_err(length)?);
        let issued_millis = reader.u64().map_err(length)?;
        let expires_millis = reader.u64().map_err(length)?;
        let signature = reader.array::<64>().map_err(length)?;
        Ok(TopicAnnouncement {
            topic,
            peer,
            issued_millis,
            expires_millis,
            signature: schnorr::Signature::from_slice(&signature).expect("64 bytes"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::TestKey;

    #[test]
    fn an_announcement_round_trips_and_only_its_peer_signs_it() {
        let secp = Secp256k1::new();
        let key = TestKey::new(3).keypair();
        let announcement = TopicAnnouncement::sign(&secp, &key, [7; 32], 1_000, 61_000, &[1; 32]);
        let bytes = announcement.encode();
        assert_eq!(bytes.len(), TOPIC_ANNOUNCEMENT_LEN);
        let decoded = TopicAnnouncement::decode(&bytes).unwrap();
        assert_eq!(decoded, announcement);
        assert_eq!(decoded.verify(&secp), Ok(()));

        let mut longer = decoded.clone();
        longer.expires_millis += 1;
        assert_eq!(longer.verify(&secp), Err(TopicError::BadSignature));
        let mut stolen = decoded;
        stolen.peer = PeerId::of(&TestKey::new(4).xonly());
        assert_eq!(stolen.verify(&secp), Err(TopicError::BadSignature));
        assert_eq!(
            TopicAnnouncement::decode(&bytes[1..]),
            Err(TopicError::Length(TOPIC_ANNOUNCEMENT_LEN - 1))
        );
    }
}
