//! The signaling protocol (version 1; ADR 0006): JSON text messages over a WebSocket between a
//! peer and the signaling server of a `bitmesh-node`. The server sends a challenge; the peer
//! registers its peer id with a BIP340 signature over it; then the peer lists the registered
//! peers and sends offers, answers and ICE candidates to one of them by peer id, which the
//! server forwards. The server never sees a data channel's traffic: only these messages.
//!
//! The same [`Signal`]s travel through the mesh as routed `Signal` messages (their JSON as the
//! payload) when the server is away.

mod client;
mod server;

pub use client::{Backoff, ClientError, ClientEvent, SignalingClient};
pub use server::{ServerConfig, ServerInput, ServerOutput, SignalingServer};

use bitcoin::hex::{DisplayHex, FromHex};
use bitcoin::secp256k1::{schnorr, Keypair, Secp256k1, Signing, Verification};
use bitmesh_core::encode::tagged_hash;
use bitmesh_core::wire::PeerId;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The protocol version this crate speaks.
pub const SIGNALING_VERSION: u32 = 1;
/// The largest message either side sends or accepts, in bytes of JSON.
pub const MAX_SIGNALING_MESSAGE: usize = 64 * 1024;
/// Peers listed in one answer at most.
pub const MAX_LISTED_PEERS: usize = 100;

const REGISTER_TAG: &[u8] = b"bitmesh/signaling-register";

/// One step of setting up a WebRTC connection between two peers. `session` tells apart the
/// attempts of one pair (a retry, or both dialing at once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Signal {
    Offer {
        session: u64,
        sdp: String,
    },
    Answer {
        session: u64,
        sdp: String,
    },
    Candidate {
        session: u64,
        candidate: String,
        #[serde(default)]
        sdp_mid: Option<String>,
        #[serde(default)]
        sdp_m_line_index: Option<u16>,
    },
}

impl Signal {
    pub fn session(&self) -> u64 {
        match self {
            Signal::Offer { session, .. }
            | Signal::Answer { session, .. }
            | Signal::Candidate { session, .. } => *session,
        }
    }
}

/// What a peer sends the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToServer {
    Register {
        version: u32,
        #[serde(with = "hex32")]
        peer: [u8; 32],
        #[serde(with = "hex64")]
        signature: [u8; 64],
    },
    List,
    Signal {
        #[serde(with = "hex32")]
        to: [u8; 32],
        signal: Signal,
    },
}

/// What the server sends a peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromServer {
    Challenge {
        version: u32,
        network: String,
        #[serde(with = "hex32")]
        nonce: [u8; 32],
    },
    Registered,
    Peers {
        peers: Vec<PeerHex>,
    },
    Signal {
        #[serde(with = "hex32")]
        from: [u8; 32],
        signal: Signal,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
}

/// Why the server refused something: a machine-readable code beside the words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, or not a message of this version.
    Malformed,
    TooLarge,
    /// Over the rate limit.
    RateLimited,
    /// The server has all the clients it takes.
    Full,
    /// A wrong version, or a registration whose signature does not verify.
    BadRegistration,
    /// A message other than register before registering.
    NotRegistered,
    /// The addressee is not registered.
    UnknownPeer,
    /// Registration took too long, or the client was silent too long.
    Timeout,
    /// The same peer id registered on another connection.
    Replaced,
}

/// A peer id in JSON: 64 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerHex(#[serde(with = "hex32")] pub [u8; 32]);

impl From<PeerId> for PeerHex {
    fn from(peer: PeerId) -> PeerHex {
        PeerHex(peer.0)
    }
}

impl From<PeerHex> for PeerId {
    fn from(peer: PeerHex) -> PeerId {
        PeerId(peer.0)
    }
}

/// What a registration signs: the network, the server's nonce and the peer id.
fn register_digest(network: &str, nonce: &[u8; 32], peer: &PeerId) -> [u8; 32] {
    tagged_hash(REGISTER_TAG, &[network.as_bytes(), nonce, &peer.0])
}

/// The register message answering `nonce` on `network`, signed by `key`.
pub fn register<C: Signing>(
    secp: &Secp256k1<C>,
    key: &Keypair,
    network: &str,
    nonce: &[u8; 32],
    aux_rand: &[u8; 32],
) -> ToServer {
    let peer = PeerId::of(&key.x_only_public_key().0);
    let digest = bitcoin::secp256k1::Message::from_digest(register_digest(network, nonce, &peer));
    let signature = secp.sign_schnorr_with_aux_rand(&digest, key, aux_rand);
    ToServer::Register {
        version: SIGNALING_VERSION,
        peer: peer.0,
        signature: *signature.as_ref(),
    }
}

/// Whether `signature` registers `peer` for `nonce` on `network`.
fn verify_registration<C: Verification>(
    secp: &Secp256k1<C>,
    network: &str,
    nonce: &[u8; 32],
    peer: &PeerId,
    signature: &[u8; 64],
) -> bool {
    let (Some(key), Ok(signature)) = (peer.key(), schnorr::Signature::from_slice(signature)) else {
        return false;
    };
    let digest = bitcoin::secp256k1::Message::from_digest(register_digest(network, nonce, peer));
    secp.verify_schnorr(&signature, &digest, &key).is_ok()
}

macro_rules! hex_array {
    ($name:ident, $len:literal) => {
        mod $name {
            use super::*;

            pub fn serialize<S: Serializer>(bytes: &[u8; $len], s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&bytes.to_lower_hex_string())
            }

            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; $len], D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                <[u8; $len]>::from_hex(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}
hex_array!(hex32, 32);
hex_array!(hex64, 64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_the_documented_json() {
        let to = ToServer::Signal {
            to: [0xab; 32],
            signal: Signal::Offer {
                session: 7,
                sdp: "v=0".into(),
            },
        };
        let json = serde_json::to_string(&to).unwrap();
        assert_eq!(
            json,
            format!(
                r#"{{"type":"signal","to":"{}","signal":{{"kind":"offer","session":7,"sdp":"v=0"}}}}"#,
                "ab".repeat(32)
            )
        );
        assert_eq!(serde_json::from_str::<ToServer>(&json).unwrap(), to);
        let error = FromServer::Error {
            code: ErrorCode::UnknownPeer,
            message: "no such peer".into(),
        };
        assert_eq!(
            serde_json::to_string(&error).unwrap(),
            r#"{"type":"error","code":"unknown_peer","message":"no such peer"}"#
        );
        // Fields of a newer version are ignored; a missing field is an error.
        assert_eq!(
            serde_json::from_str::<ToServer>(r#"{"type":"list","x":1}"#).unwrap(),
            ToServer::List
        );
        assert!(serde_json::from_str::<ToServer>(r#"{"type":"signal","to":"ab"}"#).is_err());
    }
}
