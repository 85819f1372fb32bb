//! The driver state machine without WebRTC: three peers where A–B and B–C are linked and no
//! signaling server is reachable. C dials A: its offer, A's answer and the candidates travel as
//! routed messages through B, the attempt's link opens, and A and C shake hands. The links here
//! are test doubles that hand each `Send` to the other end; everything else is real.

use std::collections::{HashMap, VecDeque};

use bitmesh_core::chain::state::Chain;
use bitmesh_core::node::{Event, LinkId};
use bitmesh_core::testkit::{full_node, START_MILLIS};
use bitmesh_core::wire::PeerId;
use bitmesh_core::Network;
use bitmesh_mesh::connector::Step;
use bitmesh_mesh::driver::{Action, DriverInput, MeshDriver};
use bitmesh_mesh::signaling::Signal;
use bitmesh_mesh::transport::TransportEvent;

struct Net {
    drivers: Vec<MeshDriver>,
    /// (peer, link) → (peer, link) of the channels that are up.
    wires: HashMap<(usize, LinkId), (usize, LinkId)>,
    queue: VecDeque<(usize, DriverInput)>,
    /// Attempts the drivers asked for: (peer, link, session, offer?), in order.
    connects: Vec<(usize, LinkId, u64, Option<String>)>,
    steps: Vec<(usize, LinkId, Step)>,
    ready: Vec<(usize, PeerId)>,
    /// Signals the drivers sent to a server: (peer, server, addressee).
    signals: Vec<(usize, u8, PeerId)>,
    /// Every message sent on a link: (peer, link, bytes).
    sent: Vec<(usize, LinkId, Vec<u8>)>,
    now: u64,
}

impl Net {
    fn new(count: usize) -> Net {
        let drivers = (0..count)
            .map(|n| {
                MeshDriver::new(
                    full_node(n as u64, Chain::new(Network::Test), START_MILLIS),
                    n as u64 * 1_000,
                )
            })
            .collect();
        Net {
            drivers,
            wires: HashMap::new(),
            queue: VecDeque::new(),
            connects: Vec::new(),
            steps: Vec::new(),
            ready: Vec::new(),
            signals: Vec::new(),
            sent: Vec::new(),
            now: START_MILLIS,
        }
    }

    fn id(&self, n: usize) -> PeerId {
        self.drivers[n].node().id()
    }

    /// Opens a channel between `a`'s `la` and `b`'s `lb`.
    fn wire(&mut self, a: usize, la: LinkId, b: usize, lb: LinkId) {
        self.wires.insert((a, la), (b, lb));
        self.wires.insert((b, lb), (a, la));
        let (fa, fb) = ([a as u8 + 1; 32], [b as u8 + 101; 32]);
        self.queue.push_back((
            a,
            DriverInput::Transport {
                link: la,
                event: TransportEvent::Open {
                    local_fingerprint: fa,
                    remote_fingerprint: fb,
                },
            },
        ));
        self.queue.push_back((
            b,
            DriverInput::Transport {
                link: lb,
                event: TransportEvent::Open {
                    local_fingerprint: fb,
                    remote_fingerprint: fa,
                },
            },
        ));
    }

    /// Runs queued inputs until none is left (bounded).
    fn settle(&mut self) {
        for _ in 0..100_000 {
            let Some((n, input)) = self.queue.pop_front() else {
                return;
            };
            self.now += 1;
            let actions = self.drivers[n].handle(self.now, input);
            for action in actions {
                match action {
                    Action::Send { link, bytes } => {
                        self.sent.push((n, link, bytes.clone()));
                        if let Some(&(to, their)) = self.wires.get(&(n, link)) {
                            self.queue.push_back((
                                to,
                                DriverInput::Transport {
                                    link: their,
                                    event: TransportEvent::Message(bytes),
                                },
                            ));
                        }
                    }
                    Action::Connect {
                        link,
                        session,
                        offer,
                    } => self.connects.push((n, link, session, offer)),
                    Action::Step { link, step } => self.steps.push((n, link, step)),
                    Action::Event(Event::PeerReady { peer, .. }) => self.ready.push((n, peer)),
                    Action::Signal { server, to, .. } => self.signals.push((n, server, to)),
                    Action::Close { .. } | Action::Event(_) => {}
                }
            }
        }
        panic!("the network did not settle");
    }
}

#[test]
fn a_connection_is_signaled_through_the_mesh_when_no_server_is_reachable() {
    let (a, b, c) = (0, 1, 2);
    let mut net = Net::new(3);
    net.wire(a, LinkId(1_001), b, LinkId(1_001));
    net.wire(b, LinkId(1_002), c, LinkId(1_002));
    net.settle();
    assert_eq!(net.drivers[b].node().peers().count(), 2);

    // C learns of A (from a server that is gone, or from a neighbour) and dials it on its next
    // tick: through the mesh.
    let a_id = net.id(a);
    net.queue.push_back((
        c,
        DriverInput::Discovered {
            server: 0,
            peers: vec![a_id],
        },
    ));
    net.queue.push_back((c, DriverInput::Tick));
    net.settle();
    let &(_, c_link, session, ref offer) = net
        .connects
        .iter()
        .find(|(n, ..)| *n == c)
        .expect("C makes a connection");
    assert_eq!(offer, &None, "C offers");
    net.queue.push_back((
        c,
        DriverInput::LocalSignal {
            link: c_link,
            signal: Signal::Offer {
                session,
                sdp: "c-offer".into(),
            },
        },
    ));
    net.settle();

    // A got the offer through B and makes a connection to answer it.
    let &(_, a_link, answered, ref offer) = net
        .connects
        .iter()
        .find(|(n, ..)| *n == a)
        .expect("A answers");
    assert_eq!(offer.as_deref(), Some("c-offer"));
    assert_eq!(answered, session, "the answer belongs to C's session");
    net.queue.push_back((
        a,
        DriverInput::LocalSignal {
            link: a_link,
            signal: Signal::Answer {
                session,
                sdp: "a-answer".into(),
            },
        },
    ));
    net.queue.push_back((
        a,
        DriverInput::LocalSignal {
            link: a_link,
            signal: Signal::Candidate {
                session,
                candidate: "candidate:a".into(),
                sdp_mid: Some("0".into()),
                sdp_m_line_index: Some(0),
            },
        },
    ));
    net.settle();
    assert!(net.steps.contains(&(
        c,
        c_link,
        Step::AcceptAnswer {
            link: c_link,
            sdp: "a-answer".into()
        }
    )));
    assert!(net.steps.iter().any(|(n, link, step)| *n == c
        && *link == c_link
        && matches!(step, Step::AddCandidate { candidate, .. } if candidate == "candidate:a")));

    // The channel opens: A and C shake hands over it.
    net.wire(a, a_link, c, c_link);
    net.settle();
    assert!(net.ready.contains(&(a, net.id(c))));
    assert!(net.ready.contains(&(c, a_id)));
    assert_eq!(net.drivers[a].node().peers().count(), 2);
    assert_eq!(net.drivers[c].node().peers().count(), 2);
}

#[test]
fn with_no_server_and_no_neighbour_a_dial_fails_at_once() {
    let mut net = Net::new(2);
    let other = net.id(1);
    net.queue.push_back((
        0,
        DriverInput::Discovered {
            server: 0,
            peers: vec![other],
        },
    ));
    net.queue.push_back((0, DriverInput::Tick));
    net.settle();
    assert!(net.connects.is_empty(), "no route to signal on");
}

/// A peer a server lists is signaled through that server; one only a neighbour told of goes
/// through the mesh, even while a server is up.
#[test]
fn signals_go_through_the_server_that_lists_the_peer_else_through_the_mesh() {
    let (a, b, c) = (0, 1, 2);
    let mut net = Net::new(3);
    net.wire(a, LinkId(1_001), b, LinkId(1_001));
    net.queue.push_back((
        a,
        DriverInput::Server {
            server: 7,
            registered: true,
        },
    ));
    net.queue.push_back((
        a,
        DriverInput::Discovered {
            server: 7,
            peers: vec![net.id(c)],
        },
    ));
    net.settle();
    net.queue.push_back((a, DriverInput::Tick));
    net.settle();
    let &(_, to_c, session, _) = net
        .connects
        .iter()
        .find(|(n, ..)| *n == a)
        .expect("A dials C");
    net.queue.push_back((
        a,
        DriverInput::LocalSignal {
            link: to_c,
            signal: Signal::Offer {
                session,
                sdp: "o".into(),
            },
        },
    ));
    net.settle();
    assert_eq!(
        net.signals,
        vec![(a, 7, net.id(c))],
        "C's offer went through server 7"
    );

    // A stranger no server lists, learnt by peer exchange: through the mesh (B carries it).
    let stranger = bitmesh_core::testkit::node_key(99);
    let stranger = PeerId::of(&stranger.xonly());
    net.queue.push_back((
        a,
        DriverInput::Discovered {
            server: 9,
            peers: vec![],
        },
    ));
    net.queue.push_back((
        a,
        DriverInput::Transport {
            link: LinkId(1_001),
            event: TransportEvent::Message(
                bitmesh_core::wire::Message::Peers(vec![bitmesh_core::wire::PeerRecord {
                    peer: stranger,
                    features: Default::default(),
                    last_seen_secs: START_MILLIS / 1000,
                }])
                .encode(),
            ),
        },
    ));
    net.settle();
    let before = net.connects.len();
    // Past the backoff of the failed dials, A dials the stranger.
    for _ in 0..20 {
        net.now += 1_000;
        net.queue.push_back((a, DriverInput::Tick));
        net.settle();
    }
    let attempt = net.connects[before..]
        .iter()
        .find(|(n, ..)| *n == a)
        .cloned();
    let (_, link, session, _) = attempt.expect("A dials the stranger");
    net.queue.push_back((
        a,
        DriverInput::LocalSignal {
            link,
            signal: Signal::Offer {
                session,
                sdp: "o".into(),
            },
        },
    ));
    net.settle();
    assert_eq!(net.signals.len(), 1, "not through a server");
}
