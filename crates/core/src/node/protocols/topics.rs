//! Topics: any protocol of the node announces a topic and finds who else announced it. An
//! announcement is signed by its peer's node key, lives at most [`MAX_TOPIC_TTL_MILLIS`], and
//! is gossiped like any object (inventory, then fetch). Each peer may hold at most
//! [`MAX_TOPICS_PER_PEER`] topics at a time and renew one at most every
//! [`MIN_RENEW_MILLIS`]; the board keeps at most [`MAX_ANNOUNCEMENTS`] in all, so no peer can
//! flood it or make it grow.

use std::collections::BTreeMap;

use bitcoin::secp256k1::{Keypair, Secp256k1, VerifyOnly};

use crate::chain::state::Chain;
use crate::hashing::{KeyedHashing, KeyedMap};
use crate::node::link::LinkId;
use crate::node::protocol::{Context, Offence, Protocol};
use crate::node::Event;
use crate::wire::{InvItem, InvKind, InvPurpose, Message, PeerId, TopicAnnouncement, TopicError};

/// The longest an announcement may live.
pub const MAX_TOPIC_TTL_MILLIS: u64 = 10 * 60 * 1000;
/// How far ahead of the receiver's clock an announcement may be issued.
pub const MAX_CLOCK_SKEW_MILLIS: u64 = 2 * 60 * 1000;
/// Topics one peer may follow at a time.
pub const MAX_TOPICS_PER_PEER: usize = 8;
/// The least time between two announcements of one topic by one peer.
pub const MIN_RENEW_MILLIS: u64 = 30 * 1000;
/// Announcements the board keeps in all.
pub const MAX_ANNOUNCEMENTS: usize = 4096;

/// Why an announcement is not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AnnounceError {
    /// Its signature or peer is bad.
    Signature(TopicError),
    /// It expired already, or never lives (expires before it is issued).
    Expired,
    /// Issued further ahead than [`MAX_CLOCK_SKEW_MILLIS`].
    FromTheFuture,
    /// Lives longer than [`MAX_TOPIC_TTL_MILLIS`].
    TooLong,
    /// Its peer follows [`MAX_TOPICS_PER_PEER`] topics already.
    TooManyTopics,
    /// Its peer announced the topic less than [`MIN_RENEW_MILLIS`] before (or later).
    TooSoon,
}

impl core::fmt::Display for AnnounceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AnnounceError::Signature(err) => err.fmt(f),
            AnnounceError::Expired => f.write_str("the topic announcement has expired"),
            AnnounceError::FromTheFuture => {
                f.write_str("the topic announcement is issued too far in the future")
            }
            AnnounceError::TooLong => write!(
                f,
                "the topic announcement lives longer than {} minutes",
                MAX_TOPIC_TTL_MILLIS / 60_000
            ),
            AnnounceError::TooManyTopics => {
                write!(f, "the peer follows {MAX_TOPICS_PER_PEER} topics already")
            }
            AnnounceError::TooSoon => write!(
                f,
                "the peer announced this topic less than {} s ago",
                MIN_RENEW_MILLIS / 1000
            ),
        }
    }
}

impl std::error::Error for AnnounceError {}

/// The topic board protocol.
#[derive(Debug)]
pub struct TopicBoard {
    secp: Secp256k1<VerifyOnly>,
    /// The live announcement of each (topic, peer).
    live: BTreeMap<([u8; 32], PeerId), TopicAnnouncement>,
    /// The (topic, peer) of each live announcement's id, to serve and deduplicate.
    ids: KeyedMap<[u8; 32], ([u8; 32], PeerId)>,
    /// How many topics each peer follows.
    per_peer: KeyedMap<PeerId, usize>,
}

impl TopicBoard {
    /// A board whose maps (keyed by what peers pick) are keyed by `hash_key`: random bits from
    /// the driver ([`KeyedHashing`]).
    pub fn new(hash_key: u64) -> TopicBoard {
        let hashing = KeyedHashing::new(hash_key);
        TopicBoard {
            secp: Secp256k1::verification_only(),
            live: BTreeMap::new(),
            ids: KeyedMap::with_hasher(hashing.derive(0)),
            per_peer: KeyedMap::with_hasher(hashing.derive(1)),
        }
    }

    /// Announces that this node (`key`) follows `topic` for `ttl_millis` (at most
    /// [`MAX_TOPIC_TTL_MILLIS`]); renew it before it expires to stay found.
    pub fn announce(
        &mut self,
        ctx: &mut Context<'_>,
        key: &Keypair,
        topic: [u8; 32],
        ttl_millis: u64,
        aux_rand: &[u8; 32],
    ) -> Result<(), AnnounceError> {
        let secp = Secp256k1::signing_only();
        let now = ctx.now_millis;
        let announcement =
            TopicAnnouncement::sign(&secp, key, topic, now, now + ttl_millis, aux_rand);
        self.take(ctx, announcement)
    }

    /// The peers that follow `topic` now, by peer id.
    pub fn followers(&self, topic: &[u8; 32], now_millis: u64) -> Vec<PeerId> {
        self.live
            .range((*topic, PeerId([0; 32]))..=(*topic, PeerId([0xff; 32])))
            .filter(|(_, announcement)| announcement.expires_millis > now_millis)
            .map(|((_, peer), _)| *peer)
            .collect()
    }

    /// When `peer`'s announcement of `topic` expires, if the board holds one.
    pub fn expires(&self, topic: &[u8; 32], peer: &PeerId) -> Option<u64> {
        self.live
            .get(&(*topic, *peer))
            .map(|announcement| announcement.expires_millis)
    }

    /// Whether the board holds no announcement.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Checks an announcement and keeps it, replacing its peer's previous one of the topic.
    fn take(
        &mut self,
        ctx: &mut Context<'_>,
        announcement: TopicAnnouncement,
    ) -> Result<(), AnnounceError> {
        let now = ctx.now_millis;
        if announcement.expires_millis <= now.max(announcement.issued_millis) {
            return Err(AnnounceError::Expired);
        }
        if announcement.issued_millis > now + MAX_CLOCK_SKEW_MILLIS {
            return Err(AnnounceError::FromTheFuture);
        }
        if announcement.expires_millis - announcement.issued_millis > MAX_TOPIC_TTL_MILLIS {
            return Err(AnnounceError::TooLong);
        }
        let key = (announcement.topic, announcement.peer);
        match self.live.get(&key) {
            Some(previous)
                if announcement.issued_millis < previous.issued_millis + MIN_RENEW_MILLIS =>
            {
                return Err(AnnounceError::TooSoon);
            }
            Some(_) => {}
            None if self.per_peer.get(&announcement.peer).copied().unwrap_or(0)
                >= MAX_TOPICS_PER_PEER =>
            {
                return Err(AnnounceError::TooManyTopics);
            }
            None => {}
        }
        // Signatures last: the cheap rules above turn most junk away first.
        announcement
            .verify(&self.secp)
            .map_err(AnnounceError::Signature)?;
        if !self.live.contains_key(&key) && self.live.len() >= MAX_ANNOUNCEMENTS {
            self.evict_soonest();
        }
        let id = announcement.id();
        if let Some(previous) = self.live.insert(key, announcement) {
            self.ids.remove(&previous.id());
        } else {
            *self.per_peer.entry(key.1).or_default() += 1;
        }
        self.ids.insert(id, key);
        ctx.event(Event::TopicAnnounced {
            topic: key.0,
            peer: key.1,
        });
        ctx.announce(InvItem::new(InvKind::Topic, id));
        Ok(())
    }

    fn remove(&mut self, key: &([u8; 32], PeerId)) {
        if let Some(announcement) = self.live.remove(key) {
            self.ids.remove(&announcement.id());
            if let Some(count) = self.per_peer.get_mut(&key.1) {
                *count -= 1;
                if *count == 0 {
                    self.per_peer.remove(&key.1);
                }
            }
        }
    }

    fn evict_soonest(&mut self) {
        let soonest = self
            .live
            .iter()
            .min_by_key(|(_, announcement)| announcement.expires_millis)
            .map(|(key, _)| *key);
        if let Some(key) = soonest {
            self.remove(&key);
        }
    }
}

impl Protocol for TopicBoard {
    fn name(&self) -> &'static str {
        "topics"
    }

    fn kinds(&self) -> &'static [InvKind] {
        &[InvKind::Topic]
    }

    fn handles(&self, message: &Message) -> bool {
        matches!(message, Message::Topic(_))
    }

    fn on_message(
        &mut self,
        ctx: &mut Context<'_>,
        link: LinkId,
        message: Message,
        requested: Option<InvPurpose>,
    ) {
        let Message::Topic(announcement) = message else {
            return;
        };
        if requested.is_none() {
            ctx.punish(link, Offence::Unrequested("topic announcement"));
            return;
        }
        // Other refusals are not the sender's fault (clocks differ, bounds are local): nobody
        // is blamed, nothing is relayed.
        if let Err(AnnounceError::Signature(_)) = self.take(ctx, announcement) {
            ctx.punish(link, Offence::BadSignature("topic announcement"));
        }
    }

    fn wants(&mut self, _ctx: &mut Context<'_>, _link: LinkId, item: &InvItem) -> bool {
        item.kind == InvKind::Topic && !self.ids.contains_key(&item.id)
    }

    fn object(&self, _chain: &Chain, item: &InvItem) -> Option<Message> {
        let key = self.ids.get(&item.id)?;
        self.live.get(key).cloned().map(Message::Topic)
    }

    fn holdings(&self, _chain: &Chain) -> Vec<InvItem> {
        let mut items: Vec<InvItem> = self
            .ids
            .keys()
            .map(|id| InvItem::new(InvKind::Topic, *id))
            .collect();
        items.sort_unstable();
        items
    }

    fn on_tick(&mut self, ctx: &mut Context<'_>) {
        let expired: Vec<_> = self
            .live
            .iter()
            .filter(|(_, announcement)| announcement.expires_millis <= ctx.now_millis)
            .map(|(key, _)| *key)
            .collect();
        for key in expired {
            self.remove(&key);
        }
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn core::any::Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::state::Chain;
    use crate::node::protocol::Action;
    use crate::testkit::TestKey;
    use crate::Network;

    const NOW: u64 = 1_800_000_000_000;

    /// Hands `message` to a board as if a neighbour sent it on link 1; returns the offences.
    fn receive(board: &mut TopicBoard, message: Message, requested: bool) -> Vec<Offence> {
        let mut chain = Chain::new(Network::Test);
        let links = BTreeMap::new();
        let mut actions = Vec::new();
        let mut ctx = Context {
            now_millis: NOW,
            chain: &mut chain,
            mempool: None,
            links: &links,
            actions: &mut actions,
        };
        let requested = requested.then_some(InvPurpose::New);
        board.on_message(&mut ctx, LinkId(1), message, requested);
        actions
            .into_iter()
            .filter_map(|action| match action {
                Action::Offence(_, offence) => Some(offence),
                _ => None,
            })
            .collect()
    }

    fn announcement(key: u64, issued: u64, expires: u64) -> TopicAnnouncement {
        let secp = Secp256k1::new();
        TopicAnnouncement::sign(
            &secp,
            &TestKey::new(key).keypair(),
            [1; 32],
            issued,
            expires,
            &[0; 32],
        )
    }

    #[test]
    fn a_forged_or_unrequested_announcement_costs_its_sender() {
        let mut board = TopicBoard::new(1);
        let mut forged = announcement(1, NOW, NOW + 60_000);
        forged.peer = PeerId::of(&TestKey::new(2).xonly());
        assert_eq!(
            receive(&mut board, Message::Topic(forged), true),
            vec![Offence::BadSignature("topic announcement")]
        );
        let fine = announcement(1, NOW, NOW + 60_000);
        assert_eq!(
            receive(&mut board, Message::Topic(fine.clone()), false),
            vec![Offence::Unrequested("topic announcement")]
        );
        assert!(board.is_empty(), "nothing kept");
        assert_eq!(receive(&mut board, Message::Topic(fine), true), vec![]);
        assert_eq!(
            board.followers(&[1; 32], NOW),
            vec![PeerId::of(&TestKey::new(1).xonly())]
        );
    }

    #[test]
    fn stale_or_overlong_announcements_are_dropped_without_blame() {
        let mut board = TopicBoard::new(1);
        for (issued, expires) in [
            (NOW - 120_000, NOW),
            (NOW + 60_000, NOW + 30_000),
            (
                NOW + MAX_CLOCK_SKEW_MILLIS + 1,
                NOW + MAX_CLOCK_SKEW_MILLIS + 60_000,
            ),
            (NOW, NOW + MAX_TOPIC_TTL_MILLIS + 1),
        ] {
            let offences = receive(
                &mut board,
                Message::Topic(announcement(1, issued, expires)),
                true,
            );
            assert_eq!(offences, vec![], "{issued} {expires}");
        }
        assert!(board.is_empty());
    }

    #[test]
    fn the_board_keeps_at_most_its_bound_dropping_the_soonest_to_expire() {
        let mut board = TopicBoard::new(1);
        for key in 1..=(MAX_ANNOUNCEMENTS as u64 / MAX_TOPICS_PER_PEER as u64 + 1) {
            for topic in 0..MAX_TOPICS_PER_PEER as u8 {
                let secp = Secp256k1::new();
                let announcement = TopicAnnouncement::sign(
                    &secp,
                    &TestKey::new(key).keypair(),
                    [topic; 32],
                    NOW,
                    NOW + 60_000 + key,
                    &[0; 32],
                );
                assert_eq!(
                    receive(&mut board, Message::Topic(announcement), true),
                    vec![]
                );
            }
        }
        assert_eq!(board.live.len(), MAX_ANNOUNCEMENTS);
        assert_eq!(board.ids.len(), MAX_ANNOUNCEMENTS);
        // The first key's announcements expired soonest: they went.
        assert!(board
            .followers(&[0; 32], NOW)
            .iter()
            .all(|peer| *peer != PeerId::of(&TestKey::new(1).xonly())));
    }
}
