//! The signaling client as a state machine, the same in the browser and natively: the driver
//! passes it the server's messages and sends the texts it returns. Reconnection waits follow
//! [`Backoff`].

use core::fmt;

use bitcoin::secp256k1::{Keypair, Secp256k1};
use bitmesh_core::wire::PeerId;

use super::{register, ErrorCode, FromServer, Signal, ToServer, SIGNALING_VERSION};

/// What the server told the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// Send this text to the server (the registration answering its challenge).
    Send(String),
    Registered,
    Peers(Vec<PeerId>),
    Signal {
        from: PeerId,
        signal: Signal,
    },
    /// The server refused something (a signal to a peer that left, a rate limit...).
    Refused {
        code: ErrorCode,
        message: String,
    },
}

/// Why the server's message cannot be used: the connection should be dropped and tried later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    Malformed(String),
    WrongNetwork {
        expected: String,
        server: String,
    },
    UnsupportedVersion(u32),
    /// A message out of order (a second challenge, a signal before registering).
    Unexpected(&'static str),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Malformed(err) => write!(f, "the signaling server sent nonsense: {err}"),
            ClientError::WrongNetwork { expected, server } => write!(
                f,
                "the signaling server is on network {server}, not {expected}"
            ),
            ClientError::UnsupportedVersion(version) => write!(
                f,
                "the signaling server speaks version {version}, this page {SIGNALING_VERSION}"
            ),
            ClientError::Unexpected(what) => write!(f, "the signaling server sent {what}"),
        }
    }
}

impl std::error::Error for ClientError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitingChallenge,
    Registering,
    Registered,
}

/// One connection's worth of client state.
#[derive(Debug)]
pub struct SignalingClient {
    key: Keypair,
    network: String,
    state: State,
}

impl SignalingClient {
    /// A client registering the peer id of `key` on `network`.
    pub fn new(key: Keypair, network: impl Into<String>) -> SignalingClient {
        SignalingClient {
            key,
            network: network.into(),
            state: State::AwaitingChallenge,
        }
    }

    pub fn is_registered(&self) -> bool {
        self.state == State::Registered
    }

    /// A new connection: back to waiting for a challenge.
    pub fn reset(&mut self) {
        self.state = State::AwaitingChallenge;
    }

    /// Takes a message of the server (`aux_rand`: 32 fresh random bytes for the signature).
    pub fn on_text(&mut self, text: &str, aux_rand: &[u8; 32]) -> Result<ClientEvent, ClientError> {
        let message: FromServer =
            serde_json::from_str(text).map_err(|err| ClientError::Malformed(err.to_string()))?;
        match (message, self.state) {
            (
                FromServer::Challenge {
                    version,
                    network,
                    nonce,
                },
                State::AwaitingChallenge,
            ) => {
                if version != SIGNALING_VERSION {
                    return Err(ClientError::UnsupportedVersion(version));
                }
                if network != self.network {
                    return Err(ClientError::WrongNetwork {
                        expected: self.network.clone(),
                        server: network,
                    });
                }
                self.state = State::Registering;
                let answer = register(&Secp256k1::new(), &self.key, &network, &nonce, aux_rand);
                Ok(ClientEvent::Send(encode(&answer)))
            }
            (FromServer::Challenge { .. }, _) => Err(ClientError::Unexpected("a second challenge")),
            (FromServer::Registered, State::Registering) => {
                self.state = State::Registered;
                Ok(ClientEvent::Registered)
            }
            (FromServer::Error { code, message }, _) => Ok(ClientEvent::Refused { code, message }),
            (_, State::AwaitingChallenge | State::Registering) => {
                Err(ClientError::Unexpected("a message before registration"))
            }
            (FromServer::Registered, State::Registered) => {
                Err(ClientError::Unexpected("a second registration"))
            }
            (FromServer::Peers { peers }, State::Registered) => Ok(ClientEvent::Peers(
                peers.into_iter().map(PeerId::from).collect(),
            )),
            (FromServer::Signal { from, signal }, State::Registered) => Ok(ClientEvent::Signal {
                from: PeerId(from),
                signal,
            }),
        }
    }

    /// The text asking for the registered peers.
    pub fn list(&self) -> String {
        encode(&ToServer::List)
    }

    /// The text sending `signal` to `to`.
    pub fn signal(&self, to: PeerId, signal: Signal) -> String {
        encode(&ToServer::Signal { to: to.0, signal })
    }
}

fn encode(message: &ToServer) -> String {
    serde_json::to_string(message).expect("client messages serialize")
}

/// Waits between reconnection attempts: 1 s, doubling up to a minute, with up to a quarter of
/// jitter (from the caller's randomness) so clients of a restarted server do not all return at
/// once.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    failures: u32,
}

impl Backoff {
    const BASE_MILLIS: u64 = 1_000;
    const MAX_MILLIS: u64 = 60_000;

    /// The wait before the next attempt; `random` is any random number.
    pub fn next_delay_millis(&mut self, random: u64) -> u64 {
        let delay = (Self::BASE_MILLIS << self.failures.min(6)).min(Self::MAX_MILLIS);
        self.failures = self.failures.saturating_add(1);
        delay + random % (delay / 4 + 1)
    }

    /// A connection worked: the next failure starts from the base again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}
