//! What both drivers (the page and the native node) decide between the node state machine, the
//! connector, the signaling server and the transports, as a state machine of its own: the
//! drivers feed it what happened and carry out the [`Action`]s (make a connection, apply a
//! step to one, send bytes, send a signal to the server). Sans-I/O, so the browser and tokio
//! share every decision and a test can run it without WebRTC.

use std::collections::{HashMap, HashSet};

use bitmesh_core::node::{Context, Event, Input, LinkId, Node, Output, Protocol};
use bitmesh_core::wire::{PeerId, RoutedKind};

use crate::connector::{Connector, Route, ServerId, Step};
use crate::signaling::Signal;
use crate::transport::TransportEvent;

/// What happened, for the driver state machine.
#[derive(Debug, Clone)]
pub enum DriverInput {
    /// Time passed (every 100 ms or so).
    Tick,
    /// Registered with signaling server `server` (true), or the connection to it is gone.
    Server { server: ServerId, registered: bool },
    /// Peers a server lists (all of them: the previous listing is replaced).
    Discovered {
        server: ServerId,
        peers: Vec<PeerId>,
    },
    /// A signal a server forwarded.
    ServerSignal {
        server: ServerId,
        from: PeerId,
        signal: Signal,
    },
    /// This end's offer, answer or candidate for the attempt on `link`.
    LocalSignal { link: LinkId, signal: Signal },
    /// Making the connection of `link` (or a step on it) failed.
    Failed { link: LinkId, reason: String },
    /// The transport of `link` reported.
    Transport { link: LinkId, event: TransportEvent },
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Make a connection for `link` with session `session`, then its offer (or the answer to
    /// `offer`), and report it as a [`DriverInput::LocalSignal`].
    Connect {
        link: LinkId,
        session: u64,
        offer: Option<String>,
    },
    /// Apply `step` (an answer or a candidate) to `link`'s connection, after the earlier ones.
    Step {
        link: LinkId,
        step: Step,
    },
    Send {
        link: LinkId,
        bytes: Vec<u8>,
    },
    /// Close `link`'s connection (it is forgotten already).
    Close {
        link: LinkId,
    },
    /// Send `signal` to `to` through signaling server `server`.
    Signal {
        server: ServerId,
        to: PeerId,
        signal: Signal,
    },
    /// For the UI and the logs.
    Event(Event),
}

/// The driver state machine of one peer.
pub struct MeshDriver {
    node: Node,
    connector: Connector,
    /// The servers registered with, and the peers each listed last.
    servers: HashMap<ServerId, HashSet<PeerId>>,
    actions: Vec<Action>,
}

impl MeshDriver {
    /// Drives `node`; `session_seed` is random.
    pub fn new(node: Node, session_seed: u64) -> MeshDriver {
        MeshDriver {
            connector: Connector::new(node.id(), session_seed),
            node,
            servers: HashMap::new(),
            actions: Vec::new(),
        }
    }

    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Runs `f` on the node's protocol `P` (a local submission: a transaction, a block, an
    /// order) and carries out what it made the node do. `None` when `P` is not registered.
    pub fn with_protocol<P: Protocol, R>(
        &mut self,
        now_millis: u64,
        f: impl FnOnce(&mut P, &mut Context<'_>) -> R,
    ) -> (Option<R>, Vec<Action>) {
        let (result, outputs) = self.node.with_protocol(now_millis, f);
        (result, self.outputs(now_millis, outputs))
    }

    /// Gives the node an input of the driver's own (a routed message to send) and carries out
    /// its outputs.
    pub fn node_input(&mut self, now_millis: u64, input: Input) -> Vec<Action> {
        let outputs = self.node.handle(now_millis, input);
        self.outputs(now_millis, outputs)
    }

    /// Carries out the node's outputs.
    fn outputs(&mut self, now_millis: u64, outputs: Vec<Output>) -> Vec<Action> {
        for output in outputs {
            self.output(now_millis, output);
        }
        core::mem::take(&mut self.actions)
    }

    pub fn handle(&mut self, now_millis: u64, input: DriverInput) -> Vec<Action> {
        match input {
            DriverInput::Tick => {
                for (link, dialed) in self.connector.expire(now_millis) {
                    self.actions.push(Action::Close { link });
                    if let Some(peer) = dialed {
                        self.input(now_millis, Input::ConnectFailed { peer });
                    }
                }
                self.input(now_millis, Input::Tick);
            }
            DriverInput::Server { server, registered } => {
                if registered {
                    self.servers.entry(server).or_default();
                } else {
                    self.servers.remove(&server);
                }
            }
            DriverInput::Discovered { server, peers } => {
                if let Some(listed) = self.servers.get_mut(&server) {
                    *listed = peers.iter().copied().collect();
                }
                for peer in peers {
                    self.input(now_millis, Input::Discovered { peer });
                }
            }
            DriverInput::ServerSignal {
                server,
                from,
                signal,
            } => self.on_signal(now_millis, from, signal, Route::Server(server)),
            DriverInput::LocalSignal { link, signal } => self.send_signal(now_millis, link, signal),
            DriverInput::Failed { link, .. } => self.lost(now_millis, link),
            DriverInput::Transport { link, event } => match event {
                TransportEvent::Open {
                    local_fingerprint,
                    remote_fingerprint,
                } => {
                    self.connector.opened(link);
                    let dialed = self.connector.dialed(link);
                    self.input(
                        now_millis,
                        Input::LinkUp {
                            link,
                            dialed,
                            local_fingerprint,
                            remote_fingerprint,
                        },
                    );
                }
                TransportEvent::Message(bytes) => {
                    self.input(now_millis, Input::Received { link, bytes })
                }
                TransportEvent::Closed { .. } => self.lost(now_millis, link),
            },
        }
        core::mem::take(&mut self.actions)
    }

    fn input(&mut self, now_millis: u64, input: Input) {
        let outputs = self.node.handle(now_millis, input);
        for output in outputs {
            self.output(now_millis, output);
        }
    }

    fn output(&mut self, now_millis: u64, output: Output) {
        match output {
            Output::Send { link, bytes } => self.actions.push(Action::Send { link, bytes }),
            Output::Close { link } => self.actions.push(Action::Close { link }),
            Output::Connect { peer } => self.dial(now_millis, peer),
            Output::Event(Event::Routed {
                from,
                kind: RoutedKind::Signal,
                payload,
            }) => {
                // A signal through the mesh; anything else in a signal's clothes is dropped.
                if let Ok(signal) = serde_json::from_slice::<Signal>(&payload) {
                    self.on_signal(now_millis, from, signal, Route::Mesh);
                }
            }
            Output::Event(event) => self.actions.push(Action::Event(event)),
        }
    }

    /// `link` failed or closed: the node hears of a neighbour gone, or of a dial that failed.
    fn lost(&mut self, now_millis: u64, link: LinkId) {
        let dialed = self.connector.dialed(link);
        let opened = self.connector.is_open(link);
        self.forget(link);
        if opened {
            self.input(now_millis, Input::LinkDown { link });
        } else if let Some(peer) = dialed {
            self.input(now_millis, Input::ConnectFailed { peer });
        }
    }

    fn forget(&mut self, link: LinkId) {
        self.connector.closed(link);
        self.actions.push(Action::Close { link });
    }

    /// Signals to `peer` go through a server that lists it, else through the mesh if there is
    /// a neighbour to carry them (a peer learnt from a neighbour, or every peer once the
    /// servers are gone).
    fn route(&self, peer: &PeerId) -> Option<Route> {
        let mut servers: Vec<ServerId> = self
            .servers
            .iter()
            .filter(|(_, listed)| listed.contains(peer))
            .map(|(server, _)| *server)
            .collect();
        servers.sort_unstable();
        if let Some(server) = servers.first() {
            Some(Route::Server(*server))
        } else if self.node.peers().next().is_some() {
            Some(Route::Mesh)
        } else {
            None
        }
    }

    fn dial(&mut self, now_millis: u64, peer: PeerId) {
        let attempt = self
            .route(&peer)
            .and_then(|route| self.connector.dial(peer, route, now_millis));
        match attempt {
            Some((link, session)) => self.actions.push(Action::Connect {
                link,
                session,
                offer: None,
            }),
            None => self.input(now_millis, Input::ConnectFailed { peer }),
        }
    }

    fn on_signal(&mut self, now_millis: u64, from: PeerId, signal: Signal, route: Route) {
        match self.connector.on_signal(from, signal, route, now_millis) {
            Ok(Step::Answer { link, sdp }) => {
                let session = self
                    .connector
                    .target(link)
                    .map_or(0, |(_, _, session)| session);
                self.actions.push(Action::Connect {
                    link,
                    session,
                    offer: Some(sdp),
                });
            }
            Ok(step @ (Step::AcceptAnswer { link, .. } | Step::AddCandidate { link, .. })) => {
                self.actions.push(Action::Step { link, step })
            }
            // Late, duplicate or excess signals: dropped (the attempt times out if it needed
            // them).
            Err(_) => {}
        }
    }

    fn send_signal(&mut self, now_millis: u64, link: LinkId, signal: Signal) {
        let Some((to, route, _)) = self.connector.target(link) else {
            return;
        };
        match route {
            Route::Server(server) if self.servers.contains_key(&server) => {
                self.actions.push(Action::Signal { server, to, signal });
            }
            // The server went away mid-attempt, or the attempt came through the mesh.
            _ => {
                let payload = serde_json::to_vec(&signal).expect("signals serialize");
                self.input(
                    now_millis,
                    Input::SendRouted {
                        to,
                        kind: RoutedKind::Signal,
                        payload,
                    },
                );
            }
        }
    }
}
