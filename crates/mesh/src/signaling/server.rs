//! The signaling server as a state machine: the node's WebSocket endpoint feeds it what its
//! clients send and carries out what it answers. Every client is bounded: message size, a
//! rate budget, a deadline to register, a count of errors before it is dropped; and the server
//! bounds the number of clients and of clients still registering.

use std::collections::{BTreeMap, HashMap};

use bitcoin::secp256k1::{Secp256k1, VerifyOnly};
use bitmesh_core::node::TokenBucket;
use bitmesh_core::wire::PeerId;

use super::{
    verify_registration, ErrorCode, FromServer, PeerHex, ToServer, MAX_LISTED_PEERS,
    MAX_SIGNALING_MESSAGE, SIGNALING_VERSION,
};

/// The server's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The network's name, signed in registrations (`local`, `test`...).
    pub network: String,
    /// Connections at most.
    pub max_clients: usize,
    /// Connections not yet registered at most.
    pub max_pending: usize,
    /// How long a connection has to register.
    pub register_timeout_millis: u64,
    /// How long a registered client may stay silent.
    pub idle_timeout_millis: u64,
    /// Messages a client may send: a burst, then so many a second.
    pub burst: u64,
    pub per_second: u64,
    /// Refusals after which a client is disconnected.
    pub max_errors: u32,
}

impl ServerConfig {
    pub fn new(network: impl Into<String>) -> ServerConfig {
        ServerConfig {
            network: network.into(),
            max_clients: 2_000,
            max_pending: 500,
            register_timeout_millis: 10_000,
            idle_timeout_millis: 300_000,
            burst: 200,
            per_second: 50,
            max_errors: 5,
        }
    }
}

/// What the endpoint tells the server. `client` is the endpoint's name for a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerInput {
    /// A connection opened; `nonce` is 32 fresh random bytes for its challenge.
    Opened {
        client: u64,
        nonce: [u8; 32],
    },
    Text {
        client: u64,
        text: String,
    },
    /// A binary frame (not part of the protocol) of `len` bytes.
    Binary {
        client: u64,
        len: usize,
    },
    Closed {
        client: u64,
    },
    /// Time passed (every second or so).
    Tick,
}

/// What the server asks the endpoint to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerOutput {
    Send { client: u64, text: String },
    Close { client: u64 },
}

#[derive(Debug)]
struct Client {
    nonce: [u8; 32],
    peer: Option<PeerId>,
    opened_millis: u64,
    last_millis: u64,
    budget: TokenBucket,
    errors: u32,
    closing: bool,
}

/// The signaling server.
#[derive(Debug)]
pub struct SignalingServer {
    config: ServerConfig,
    secp: Secp256k1<VerifyOnly>,
    clients: HashMap<u64, Client>,
    /// Registered peers, ordered by id for a stable listing.
    peers: BTreeMap<PeerId, u64>,
    outputs: Vec<ServerOutput>,
}

impl SignalingServer {
    pub fn new(config: ServerConfig) -> SignalingServer {
        SignalingServer {
            config,
            secp: Secp256k1::verification_only(),
            clients: HashMap::new(),
            peers: BTreeMap::new(),
            outputs: Vec::new(),
        }
    }

    /// Connections open (registered or not).
    pub fn clients(&self) -> usize {
        self.clients.len()
    }

    /// Registered peers.
    pub fn registered(&self) -> usize {
        self.peers.len()
    }

    pub fn handle(&mut self, now_millis: u64, input: ServerInput) -> Vec<ServerOutput> {
        match input {
            ServerInput::Opened { client, nonce } => self.opened(now_millis, client, nonce),
            ServerInput::Text { client, text } => self.text(now_millis, client, &text),
            ServerInput::Binary { client, len } => {
                if self.admit(now_millis, client, len) {
                    self.refuse(
                        client,
                        ErrorCode::Malformed,
                        "binary frames are not part of the protocol",
                    );
                }
            }
            ServerInput::Closed { client } => self.forget(client),
            ServerInput::Tick => self.tick(now_millis),
        }
        core::mem::take(&mut self.outputs)
    }

    fn send(&mut self, client: u64, message: &FromServer) {
        let text = serde_json::to_string(message).expect("server messages serialize");
        self.outputs.push(ServerOutput::Send { client, text });
    }

    fn close(&mut self, client: u64) {
        if let Some(state) = self.clients.get_mut(&client) {
            if !state.closing {
                state.closing = true;
                self.outputs.push(ServerOutput::Close { client });
            }
        }
        self.unregister(client);
    }

    /// Tells the client why, and drops it after [`ServerConfig::max_errors`] refusals.
    fn refuse(&mut self, client: u64, code: ErrorCode, message: impl Into<String>) {
        self.send(
            client,
            &FromServer::Error {
                code,
                message: message.into(),
            },
        );
        let Some(state) = self.clients.get_mut(&client) else {
            return;
        };
        state.errors += 1;
        if state.errors >= self.config.max_errors {
            self.close(client);
        }
    }

    fn opened(&mut self, now: u64, client: u64, nonce: [u8; 32]) {
        let pending = self.clients.values().filter(|c| c.peer.is_none()).count();
        self.clients.insert(
            client,
            Client {
                nonce,
                peer: None,
                opened_millis: now,
                last_millis: now,
                budget: TokenBucket::new(self.config.burst, self.config.per_second, now),
                errors: 0,
                closing: false,
            },
        );
        if self.clients.len() > self.config.max_clients || pending >= self.config.max_pending {
            self.send(
                client,
                &FromServer::Error {
                    code: ErrorCode::Full,
                    message: "the signaling server has all the clients it takes; try later".into(),
                },
            );
            self.close(client);
            return;
        }
        let challenge = FromServer::Challenge {
            version: SIGNALING_VERSION,
            network: self.config.network.clone(),
            nonce,
        };
        self.send(client, &challenge);
    }

    /// Counts a message against the client's budget and size; false if it is not to be read.
    fn admit(&mut self, now: u64, client: u64, len: usize) -> bool {
        let Some(state) = self.clients.get_mut(&client) else {
            return false;
        };
        if state.closing {
            return false;
        }
        state.last_millis = now;
        if !state.budget.take(1, now) {
            self.refuse(
                client,
                ErrorCode::RateLimited,
                "too many messages: slow down",
            );
            return false;
        }
        if len > MAX_SIGNALING_MESSAGE {
            self.refuse(
                client,
                ErrorCode::TooLarge,
                format!("a message of {len} bytes, above the limit of {MAX_SIGNALING_MESSAGE}"),
            );
            return false;
        }
        true
    }

    fn text(&mut self, now: u64, client: u64, text: &str) {
        if !self.admit(now, client, text.len()) {
            return;
        }
        let message = match serde_json::from_str::<ToServer>(text) {
            Ok(message) => message,
            Err(err) => {
                self.refuse(
                    client,
                    ErrorCode::Malformed,
                    format!("not a signaling message: {err}"),
                );
                return;
            }
        };
        let state = &self.clients[&client];
        match (message, state.peer) {
            (
                ToServer::Register {
                    version,
                    peer,
                    signature,
                },
                None,
            ) => {
                let peer = PeerId(peer);
                if version != SIGNALING_VERSION {
                    self.refuse(
                        client,
                        ErrorCode::BadRegistration,
                        format!("signaling version {version} is not {SIGNALING_VERSION}"),
                    );
                    return;
                }
                let nonce = state.nonce;
                if !verify_registration(&self.secp, &self.config.network, &nonce, &peer, &signature)
                {
                    self.refuse(
                        client,
                        ErrorCode::BadRegistration,
                        "the signature does not register this peer id for this challenge",
                    );
                    return;
                }
                // The same peer again (a reload): the new connection wins.
                if let Some(old) = self.peers.insert(peer, client) {
                    self.send(
                        old,
                        &FromServer::Error {
                            code: ErrorCode::Replaced,
                            message: "this peer id registered on another connection".into(),
                        },
                    );
                    if let Some(old_state) = self.clients.get_mut(&old) {
                        old_state.peer = None;
                    }
                    self.close(old);
                }
                self.clients.get_mut(&client).expect("exists").peer = Some(peer);
                self.send(client, &FromServer::Registered);
            }
            (ToServer::Register { .. }, Some(_)) => {
                self.refuse(client, ErrorCode::BadRegistration, "already registered");
            }
            (_, None) => self.refuse(client, ErrorCode::NotRegistered, "register first"),
            (ToServer::List, Some(own)) => {
                let peers = self
                    .peers
                    .keys()
                    .filter(|peer| **peer != own)
                    .take(MAX_LISTED_PEERS)
                    .map(|peer| PeerHex::from(*peer))
                    .collect();
                self.send(client, &FromServer::Peers { peers });
            }
            (ToServer::Signal { to, signal }, Some(own)) => match self.peers.get(&PeerId(to)) {
                Some(&target) if target != client => {
                    self.send(
                        target,
                        &FromServer::Signal {
                            from: own.0,
                            signal,
                        },
                    );
                }
                _ => self.refuse(client, ErrorCode::UnknownPeer, "no such peer is registered"),
            },
        }
    }

    fn unregister(&mut self, client: u64) {
        if let Some(peer) = self.clients.get(&client).and_then(|state| state.peer) {
            if self.peers.get(&peer) == Some(&client) {
                self.peers.remove(&peer);
            }
        }
    }

    fn forget(&mut self, client: u64) {
        self.unregister(client);
        self.clients.remove(&client);
    }

    fn tick(&mut self, now: u64) {
        let late: Vec<(u64, &'static str)> = self
            .clients
            .iter()
            .filter(|(_, state)| !state.closing)
            .filter_map(|(id, state)| {
                if state.peer.is_none()
                    && now >= state.opened_millis + self.config.register_timeout_millis
                {
                    Some((*id, "registration took too long"))
                } else if now >= state.last_millis + self.config.idle_timeout_millis {
                    Some((*id, "silent too long"))
                } else {
                    None
                }
            })
            .collect();
        for (client, why) in late {
            self.send(
                client,
                &FromServer::Error {
                    code: ErrorCode::Timeout,
                    message: why.into(),
                },
            );
            self.close(client);
        }
    }
}
