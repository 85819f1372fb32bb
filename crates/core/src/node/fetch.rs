//! Fetching announced objects: each is requested from one peer at a time, other announcers are
//! remembered, and a request that times out, is not found or whose peer leaves moves to the
//! next announcer. Bounded: per item, per link and in all.

use std::collections::HashMap;

use super::link::LinkId;
use crate::hashing::{KeyedHashing, KeyedMap};
use crate::wire::{InvItem, InvPurpose};

/// How long a peer has to deliver a requested object.
pub const REQUEST_TIMEOUT_MILLIS: u64 = 5_000;
/// Announcers remembered per item.
const MAX_ALTERNATIVES: usize = 8;
/// Objects requested from one peer at a time.
pub const MAX_IN_FLIGHT_PER_LINK: usize = 5_000;
/// Objects in flight or waiting, in all.
pub(super) const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Clone)]
struct Request {
    link: LinkId,
    purpose: InvPurpose,
    deadline_millis: u64,
    /// Other announcers, in order of announcement.
    alternatives: Vec<(LinkId, InvPurpose)>,
}

#[derive(Debug, Clone)]
pub struct Fetcher {
    /// Keyed: peers announce the items.
    requests: KeyedMap<InvItem, Request>,
    per_link: HashMap<LinkId, usize>,
}

impl Fetcher {
    pub fn new(hashing: KeyedHashing) -> Fetcher {
        Fetcher {
            requests: KeyedMap::with_hasher(hashing),
            per_link: HashMap::new(),
        }
    }

    /// `link` announced `item`, which the node wants: returns whether to request it from
    /// `link` now.
    pub fn announced(
        &mut self,
        item: InvItem,
        link: LinkId,
        purpose: InvPurpose,
        now_millis: u64,
    ) -> bool {
        if let Some(request) = self.requests.get_mut(&item) {
            if request.link != link
                && request.alternatives.len() < MAX_ALTERNATIVES
                && !request.alternatives.iter().any(|(other, _)| *other == link)
            {
                request.alternatives.push((link, purpose));
            }
            return false;
        }
        if self.requests.len() >= MAX_TRACKED
            || self.per_link.get(&link).copied().unwrap_or(0) >= MAX_IN_FLIGHT_PER_LINK
        {
            return false;
        }
        self.requests.insert(
            item,
            Request {
                link,
                purpose,
                deadline_millis: now_millis + REQUEST_TIMEOUT_MILLIS,
                alternatives: Vec::new(),
            },
        );
        *self.per_link.entry(link).or_default() += 1;
        true
    }

    /// `link` delivered `item`: how it was requested, if it was requested from `link`.
    pub fn delivered(&mut self, item: &InvItem, link: LinkId) -> Option<InvPurpose> {
        match self.requests.get(item) {
            Some(request) if request.link == link => {
                let purpose = request.purpose;
                self.requests.remove(item);
                self.release(link);
                Some(purpose)
            }
            _ => None,
        }
    }

    fn release(&mut self, link: LinkId) {
        if let Some(count) = self.per_link.get_mut(&link) {
            *count -= 1;
            if *count == 0 {
                self.per_link.remove(&link);
            }
        }
    }

    /// Moves `item`'s request to its next announcer: the new (link, item) to request, if any.
    fn retry(&mut self, item: InvItem, now_millis: u64) -> Option<(LinkId, InvItem)> {
        let mut request = self.requests.remove(&item)?;
        self.release(request.link);
        while !request.alternatives.is_empty() {
            let (link, purpose) = request.alternatives.remove(0);
            if self.per_link.get(&link).copied().unwrap_or(0) >= MAX_IN_FLIGHT_PER_LINK {
                continue;
            }
            request.link = link;
            request.purpose = purpose;
            request.deadline_millis = now_millis + REQUEST_TIMEOUT_MILLIS;
            *self.per_link.entry(link).or_default() += 1;
            self.requests.insert(item, request);
            return Some((link, item));
        }
        None
    }

    /// `link` does not have `item`.
    pub fn not_found(
        &mut self,
        item: &InvItem,
        link: LinkId,
        now_millis: u64,
    ) -> Option<(LinkId, InvItem)> {
        match self.requests.get(item) {
            Some(request) if request.link == link => self.retry(*item, now_millis),
            _ => None,
        }
    }

    /// `link` is gone: its requests move on; it is no announcer any more.
    pub fn link_gone(&mut self, link: LinkId, now_millis: u64) -> Vec<(LinkId, InvItem)> {
        for request in self.requests.values_mut() {
            request.alternatives.retain(|(other, _)| *other != link);
        }
        let mine: Vec<InvItem> = self
            .requests
            .iter()
            .filter(|(_, request)| request.link == link)
            .map(|(item, _)| *item)
            .collect();
        mine.into_iter()
            .filter_map(|item| self.retry(item, now_millis))
            .collect()
    }

    /// Requests past their deadline move on: (the slow link, the new request) pairs.
    pub fn expire(&mut self, now_millis: u64) -> Vec<(LinkId, Option<(LinkId, InvItem)>)> {
        let late: Vec<(InvItem, LinkId)> = self
            .requests
            .iter()
            .filter(|(_, request)| request.deadline_millis <= now_millis)
            .map(|(item, request)| (*item, request.link))
            .collect();
        late.into_iter()
            .map(|(item, slow)| (slow, self.retry(item, now_millis)))
            .collect()
    }

    /// Objects tracked (requested or waiting).
    pub fn len(&self) -> usize {
        self.requests.len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::InvKind;

    const NEW: InvPurpose = InvPurpose::New;

    #[test]
    fn one_request_at_a_time_then_the_next_announcer() {
        let mut fetcher = Fetcher::new(KeyedHashing::new(1));
        let item = InvItem::new(InvKind::Tx, [1; 32]);
        let (a, b, c) = (LinkId(1), LinkId(2), LinkId(3));
        assert!(fetcher.announced(item, a, NEW, 0));
        assert!(!fetcher.announced(item, b, NEW, 10));
        assert!(!fetcher.announced(item, c, NEW, 20));
        assert_eq!(fetcher.delivered(&item, b), None, "not asked of b");
        // a times out: b is asked; b has not got it: c is asked; c leaves: nobody is left.
        let expired = fetcher.expire(REQUEST_TIMEOUT_MILLIS);
        assert_eq!(expired, vec![(a, Some((b, item)))]);
        assert_eq!(fetcher.not_found(&item, b, 6_000), Some((c, item)));
        assert_eq!(fetcher.link_gone(c, 7_000), vec![]);
        assert!(fetcher.is_empty());
        // Announced again later: asked again.
        assert!(fetcher.announced(item, a, NEW, 8_000));
        assert_eq!(fetcher.delivered(&item, a), Some(NEW));
        assert!(fetcher.is_empty());
    }
}
