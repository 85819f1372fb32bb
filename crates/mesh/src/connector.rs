//! Which connection attempt a signal belongs to, and where the answers go: the bookkeeping both
//! drivers (browser and native) share between the node's `Connect` outputs, the signaling
//! server or the mesh, and the transports. Sans-I/O: the driver makes the WebRTC calls this
//! asks for.
//!
//! Each attempt is a link id and a session number; signals carry the session, so a retry or a
//! simultaneous dial by both ends (glare) are separate attempts. Session numbers are
//! pseudo-random 64-bit values (from a random seed), so the two ends of a glare never pick the
//! same one in practice; if they did, the second offer is refused and the dial retried. Both may open; the node's
//! handshake then keeps the channel dialed by the smaller peer id. Attempts are bounded in
//! number (in all and per peer) and in time.

use std::collections::HashMap;

use bitmesh_core::node::LinkId;
use bitmesh_core::wire::PeerId;

use crate::signaling::Signal;

/// Attempts not yet open at most, in all and per peer.
pub const MAX_PENDING: usize = 32;
pub const MAX_PENDING_PER_PEER: usize = 2;
/// How long an attempt may take to open its channel.
pub const OPEN_TIMEOUT_MILLIS: u64 = 30_000;

/// A signaling server the driver is connected to (the page has one; a node its own and the
/// one it joined).
pub type ServerId = u8;

/// How signals reach a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// Through this signaling server.
    Server(ServerId),
    /// As routed messages through the mesh (kind `Signal`, the signal's JSON as payload).
    Mesh,
}

/// What the driver does with a signal that arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A new inbound attempt: create a connection for `link`, answer `sdp`, send the answer.
    Answer { link: LinkId, sdp: String },
    /// The answer to this end's offer on `link`.
    AcceptAnswer { link: LinkId, sdp: String },
    /// A candidate of the other end of `link`.
    AddCandidate {
        link: LinkId,
        candidate: String,
        sdp_mid: Option<String>,
        sdp_m_line_index: Option<u16>,
    },
}

/// Why a signal is dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalRefused {
    /// An answer or candidate for an attempt this end does not have (it timed out, or never
    /// was).
    UnknownSession,
    /// An offer for a session already under way.
    DuplicateOffer,
    /// An answer to an attempt this end did not start.
    NotOurOffer,
    /// Too many attempts under way (in all, or with this peer).
    TooManyAttempts,
    /// A signal from this node itself.
    FromSelf,
}

impl core::fmt::Display for SignalRefused {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            SignalRefused::UnknownSession => "a signal for no attempt under way",
            SignalRefused::DuplicateOffer => "a second offer for one session",
            SignalRefused::NotOurOffer => "an answer to an offer this end did not make",
            SignalRefused::TooManyAttempts => "too many connection attempts under way",
            SignalRefused::FromSelf => "a signal from this node itself",
        })
    }
}

impl std::error::Error for SignalRefused {}

#[derive(Debug, Clone)]
struct Attempt {
    peer: PeerId,
    session: u64,
    outbound: bool,
    route: Route,
    started_millis: u64,
    open: bool,
}

/// The attempts of one node.
#[derive(Debug)]
pub struct Connector {
    own: PeerId,
    next_link: u64,
    next_session: u64,
    attempts: HashMap<LinkId, Attempt>,
    sessions: HashMap<(PeerId, u64), LinkId>,
}

impl Connector {
    /// The connector of peer `own`; `session_seed` is random, so sessions of a reloaded page
    /// do not collide with its previous life's.
    pub fn new(own: PeerId, session_seed: u64) -> Connector {
        Connector {
            own,
            next_link: 1,
            next_session: session_seed,
            attempts: HashMap::new(),
            sessions: HashMap::new(),
        }
    }

    fn pending(&self, peer: Option<&PeerId>) -> usize {
        self.attempts
            .values()
            .filter(|attempt| !attempt.open && peer.is_none_or(|peer| attempt.peer == *peer))
            .count()
    }

    fn start(
        &mut self,
        peer: PeerId,
        session: u64,
        outbound: bool,
        route: Route,
        now: u64,
    ) -> LinkId {
        let link = LinkId(self.next_link);
        self.next_link += 1;
        self.attempts.insert(
            link,
            Attempt {
                peer,
                session,
                outbound,
                route,
                started_millis: now,
                open: false,
            },
        );
        self.sessions.insert((peer, session), link);
        link
    }

    /// The node asked to dial `peer`: the link and session of the new attempt (create an
    /// outbound connection for it, make the offer, send it by `route`), or None when too many
    /// attempts are under way.
    pub fn dial(&mut self, peer: PeerId, route: Route, now_millis: u64) -> Option<(LinkId, u64)> {
        if peer == self.own
            || self.pending(None) >= MAX_PENDING
            || self.pending(Some(&peer)) >= MAX_PENDING_PER_PEER
        {
            return None;
        }
        let session = splitmix64(self.next_session);
        self.next_session = self.next_session.wrapping_add(1);
        Some((self.start(peer, session, true, route, now_millis), session))
    }

    /// A signal from `from` that came by `route`.
    pub fn on_signal(
        &mut self,
        from: PeerId,
        signal: Signal,
        route: Route,
        now_millis: u64,
    ) -> Result<Step, SignalRefused> {
        if from == self.own {
            return Err(SignalRefused::FromSelf);
        }
        let known = self.sessions.get(&(from, signal.session())).copied();
        match signal {
            Signal::Offer { session, sdp } => {
                if known.is_some() {
                    return Err(SignalRefused::DuplicateOffer);
                }
                if self.pending(None) >= MAX_PENDING
                    || self.pending(Some(&from)) >= MAX_PENDING_PER_PEER
                {
                    return Err(SignalRefused::TooManyAttempts);
                }
                let link = self.start(from, session, false, route, now_millis);
                Ok(Step::Answer { link, sdp })
            }
            Signal::Answer { sdp, .. } => {
                let link = known.ok_or(SignalRefused::UnknownSession)?;
                if !self.attempts[&link].outbound {
                    return Err(SignalRefused::NotOurOffer);
                }
                Ok(Step::AcceptAnswer { link, sdp })
            }
            Signal::Candidate {
                candidate,
                sdp_mid,
                sdp_m_line_index,
                ..
            } => Ok(Step::AddCandidate {
                link: known.ok_or(SignalRefused::UnknownSession)?,
                candidate,
                sdp_mid,
                sdp_m_line_index,
            }),
        }
    }

    /// Where this end's signals for `link` go: the peer, the route, the session.
    pub fn target(&self, link: LinkId) -> Option<(PeerId, Route, u64)> {
        self.attempts
            .get(&link)
            .map(|attempt| (attempt.peer, attempt.route, attempt.session))
    }

    /// The peer dialed on `link`, if this end dialed (the node's `LinkUp { dialed }`).
    pub fn dialed(&self, link: LinkId) -> Option<PeerId> {
        self.attempts
            .get(&link)
            .filter(|attempt| attempt.outbound)
            .map(|attempt| attempt.peer)
    }

    /// Whether the channel of `link` opened.
    pub fn is_open(&self, link: LinkId) -> bool {
        self.attempts.get(&link).is_some_and(|attempt| attempt.open)
    }

    /// The channel of `link` opened: it no longer counts as an attempt.
    pub fn opened(&mut self, link: LinkId) {
        if let Some(attempt) = self.attempts.get_mut(&link) {
            attempt.open = true;
        }
    }

    /// `link` is gone.
    pub fn closed(&mut self, link: LinkId) {
        if let Some(attempt) = self.attempts.remove(&link) {
            self.sessions.remove(&(attempt.peer, attempt.session));
        }
    }

    /// Attempts that did not open in time: the driver closes them (and tells the node the
    /// dial failed, for outbound ones).
    pub fn expire(&mut self, now_millis: u64) -> Vec<(LinkId, Option<PeerId>)> {
        let late: Vec<(LinkId, Option<PeerId>)> = self
            .attempts
            .iter()
            .filter(|(_, attempt)| {
                !attempt.open && now_millis >= attempt.started_millis + OPEN_TIMEOUT_MILLIS
            })
            .map(|(link, attempt)| (*link, attempt.outbound.then_some(attempt.peer)))
            .collect();
        for (link, _) in &late {
            self.closed(*link);
        }
        late
    }
}

/// A well-mixed 64-bit value of `x` (SplitMix64's finaliser).
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u8) -> PeerId {
        PeerId([n; 32])
    }

    fn offer(session: u64) -> Signal {
        Signal::Offer {
            session,
            sdp: "offer".into(),
        }
    }

    fn candidate(session: u64) -> Signal {
        Signal::Candidate {
            session,
            candidate: "candidate:1".into(),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
        }
    }

    #[test]
    fn a_dial_and_an_answer_meet_on_one_link_and_candidates_follow_the_session() {
        let (alice, bob) = (peer(1), peer(2));
        let mut a = Connector::new(alice, 100);
        let mut b = Connector::new(bob, 500);
        let (a_link, session) = a.dial(bob, Route::Server(0), 0).expect("room");
        assert_eq!(a.dialed(a_link), Some(bob));
        let Ok(Step::Answer { link: b_link, .. }) =
            b.on_signal(alice, offer(session), Route::Server(0), 1)
        else {
            panic!("an inbound attempt");
        };
        assert_eq!(b.dialed(b_link), None);
        assert_eq!(b.target(b_link), Some((alice, Route::Server(0), session)));
        let answer = Signal::Answer {
            session,
            sdp: "answer".into(),
        };
        assert_eq!(
            a.on_signal(bob, answer.clone(), Route::Server(0), 2),
            Ok(Step::AcceptAnswer {
                link: a_link,
                sdp: "answer".into()
            })
        );
        assert!(matches!(
            b.on_signal(alice, candidate(session), Route::Server(0), 3),
            Ok(Step::AddCandidate { link, .. }) if link == b_link
        ));
        // An answer from the side that answered is refused; so are strangers' signals.
        assert_eq!(
            b.on_signal(alice, answer, Route::Server(0), 4),
            Err(SignalRefused::NotOurOffer)
        );
        assert_eq!(
            a.on_signal(peer(3), candidate(session), Route::Server(0), 4),
            Err(SignalRefused::UnknownSession)
        );
        assert_eq!(
            b.on_signal(alice, offer(session), Route::Server(0), 4),
            Err(SignalRefused::DuplicateOffer)
        );
        assert_eq!(
            a.on_signal(alice, offer(9), Route::Server(0), 4),
            Err(SignalRefused::FromSelf)
        );
    }

    #[test]
    fn glare_gives_two_attempts_and_the_route_of_an_offer_is_kept_for_the_answer() {
        let (alice, bob) = (peer(1), peer(2));
        let mut a = Connector::new(alice, 100);
        let (dialed, _) = a.dial(bob, Route::Server(0), 0).unwrap();
        let Ok(Step::Answer { link: answered, .. }) = a.on_signal(bob, offer(7), Route::Mesh, 0)
        else {
            panic!("both attempts live");
        };
        assert_ne!(dialed, answered);
        assert_eq!(a.target(answered), Some((bob, Route::Mesh, 7)));
    }

    #[test]
    fn attempts_are_bounded_and_expire() {
        let mut a = Connector::new(peer(1), 0);
        assert!(a.dial(peer(1), Route::Server(0), 0).is_none(), "not itself");
        assert!(a.dial(peer(2), Route::Server(0), 0).is_some());
        assert!(a.dial(peer(2), Route::Server(0), 0).is_some());
        assert!(
            a.dial(peer(2), Route::Server(0), 0).is_none(),
            "two per peer"
        );
        assert_eq!(
            a.on_signal(peer(2), offer(1), Route::Server(0), 0),
            Err(SignalRefused::TooManyAttempts)
        );
        for n in 3..(MAX_PENDING as u8 + 1) {
            assert!(a.dial(peer(n), Route::Server(0), 10).is_some());
        }
        assert!(
            a.dial(peer(200), Route::Server(0), 10).is_none(),
            "{MAX_PENDING} in all"
        );
        // One opens; the others time out (the first two earlier).
        a.opened(LinkId(1));
        let late = a.expire(OPEN_TIMEOUT_MILLIS);
        assert_eq!(late, vec![(LinkId(2), Some(peer(2)))]);
        assert_eq!(a.expire(OPEN_TIMEOUT_MILLIS + 10).len(), MAX_PENDING - 2);
        assert!(a.dial(peer(200), Route::Server(0), 40_000).is_some());
        assert_eq!(
            a.target(LinkId(1)).map(|t| t.0),
            Some(peer(2)),
            "open ones stay"
        );
    }
}
