//! Header-first chain sync and block relay. Headers come first, from each neighbour that knows
//! more (block locators find the fork in one round trip); the blocks on the way to the best
//! header are then fetched in parallel from every neighbour that has them, a window at a time,
//! and a request that stalls moves to another neighbour. A new tip is announced by its hash;
//! a neighbour that does not know it asks for headers.

use std::collections::HashMap;

use bitcoin::hashes::Hash;
use bitcoin::{BlockHash, Work};

use crate::chain::index::{BlockIndex, IndexEntry};
use crate::chain::state::{AcceptError, Chain, HeaderError};
use crate::node::link::LinkId;
use crate::node::protocol::{Context, Notice, Offence, Protocol};
use crate::node::Event;
use crate::wire::{GetHeaders, InvItem, InvKind, InvPurpose, Message, MAX_HEADERS};

/// Blocks requested from one neighbour at a time.
pub const MAX_BLOCKS_IN_FLIGHT: usize = 16;
/// How far past the first missing block downloads run ahead.
pub const WINDOW: usize = 1_024;
/// How long a neighbour has to deliver a block.
pub const BLOCK_TIMEOUT_MILLIS: u64 = 10_000;
/// How long a neighbour has to answer a header request.
const HEADERS_TIMEOUT_MILLIS: u64 = 20_000;

#[derive(Debug, Clone, Default)]
struct Neighbour {
    /// The best height it is known to have (hello, headers, announcements).
    height: u32,
    /// The block of most work it is known to have, and that work (headers it sent, blocks it
    /// announced): the branch it is on, since a node only ever moves to more work. Blocks of
    /// another branch are not asked of it. (Not the highest block: a branch of more work can
    /// be shorter.)
    best: Option<(BlockHash, Work)>,
    /// The height up to which it holds the branch of our best header (the fork point of the
    /// two), with the best header it was found for: found again when either changes.
    reach: Option<(BlockHash, u32)>,
    /// When its header request was sent, while one is open.
    headers_asked: Option<u64>,
    in_flight: usize,
    /// Stalled requests: such a neighbour is asked last.
    stalls: u32,
}

impl Neighbour {
    /// The height up to which it holds the blocks of the branch of `best_header`. Until its
    /// branch is known (its headers are on the way, or it had none for us: its tip is on our
    /// active chain), it is taken to hold our active chain up to its height, which the best
    /// header's branch shares up to `fork_height`.
    fn reach(&mut self, index: &BlockIndex, best_header: BlockHash, fork_height: u32) -> u32 {
        let Some((best, _)) = self.best else {
            return self.height.min(fork_height);
        };
        if let Some((found_for, reach)) = self.reach {
            if found_for == best_header {
                return reach;
            }
        }
        let reach = index
            .fork_point(&best, &best_header)
            .and_then(|fork| index.get(&fork))
            .map_or(0, |entry| entry.height);
        self.reach = Some((best_header, reach));
        reach
    }
}

/// The chain protocol.
#[derive(Debug, Default)]
pub struct ChainSync {
    neighbours: HashMap<LinkId, Neighbour>,
    /// Blocks requested: from whom, until when.
    requested: HashMap<BlockHash, (LinkId, u64)>,
    /// The last progress reported.
    progress: (u32, u32),
}

impl ChainSync {
    pub fn new() -> ChainSync {
        ChainSync::default()
    }

    /// A block this node made (mined): accepted like one from a peer, announced if it extends
    /// the chain.
    pub fn submit_block(
        &mut self,
        ctx: &mut Context<'_>,
        block: bitcoin::Block,
    ) -> Result<(), AcceptError> {
        let now = ctx.now_secs() as u32;
        let accepted = ctx.chain.accept_block(block, now)?;
        self.after_accept(ctx, accepted);
        Ok(())
    }

    fn ask_headers(&mut self, ctx: &mut Context<'_>, link: LinkId, locator: Vec<BlockHash>) {
        let neighbour = self.neighbours.entry(link).or_default();
        neighbour.headers_asked = Some(ctx.now_millis);
        ctx.send(
            link,
            Message::GetHeaders(GetHeaders {
                locator,
                stop: BlockHash::all_zeros(),
            }),
        );
    }

    fn on_headers(
        &mut self,
        ctx: &mut Context<'_>,
        link: LinkId,
        headers: Vec<bitcoin::block::Header>,
    ) {
        let Some(neighbour) = self.neighbours.get_mut(&link) else {
            return;
        };
        if neighbour.headers_asked.take().is_none() {
            ctx.punish(link, Offence::Unrequested("headers"));
            return;
        }
        let full = headers.len() == MAX_HEADERS;
        let now = ctx.now_secs() as u32;
        let mut last = None;
        for (n, header) in headers.iter().enumerate() {
            match ctx.chain.accept_header(header, now) {
                Ok(hash) => last = Some(hash),
                Err(HeaderError::UnknownParent(_)) => {
                    if n > 0 {
                        ctx.punish(link, Offence::ProtocolViolation("headers out of sequence"));
                    } else {
                        ctx.punish(link, Offence::Disconnected);
                    }
                    return;
                }
                Err(HeaderError::TimeTooNew { .. }) => {
                    // Perhaps only our clock is late: not the peer's fault; try later.
                    return;
                }
                Err(err) => {
                    ctx.punish(link, Offence::InvalidBlock(err.to_string()));
                    return;
                }
            }
        }
        if let Some(last) = last {
            self.learn(link, last, ctx.chain.index().get(&last).expect("accepted"));
            if full {
                self.ask_headers(ctx, link, vec![last]);
            }
        }
        self.schedule(ctx);
        self.report(ctx);
    }

    /// `link`'s neighbour has the block `hash`, indexed as `entry`.
    fn learn(&mut self, link: LinkId, hash: BlockHash, entry: &IndexEntry) {
        let Some(neighbour) = self.neighbours.get_mut(&link) else {
            return;
        };
        neighbour.height = neighbour.height.max(entry.height);
        if neighbour
            .best
            .is_none_or(|(_, work)| entry.chain_work > work)
        {
            neighbour.best = Some((hash, entry.chain_work));
            neighbour.reach = None;
        }
    }

    /// Requests missing blocks from neighbours that have them and have room, the least
    /// stalled first, round robin.
    fn schedule(&mut self, ctx: &mut Context<'_>) {
        let missing = ctx.chain.missing_blocks(WINDOW);
        if missing.is_empty() {
            return;
        }
        let mut links: Vec<(u32, LinkId)> = ctx
            .peers()
            .filter(|(link, _)| self.neighbours.contains_key(link))
            .map(|(link, _)| (self.neighbours[&link].stalls, link))
            .collect();
        links.sort_unstable();
        if links.is_empty() {
            return;
        }
        let index = ctx.chain.index();
        let best_header = index.best_header();
        let fork_height = index
            .fork_point(&ctx.chain.tip(), &best_header)
            .and_then(|fork| index.get(&fork))
            .map_or(0, |entry| entry.height);
        let mut reach: HashMap<LinkId, u32> = HashMap::new();
        for (_, link) in &links {
            let neighbour = self.neighbours.get_mut(link).expect("listed");
            reach.insert(*link, neighbour.reach(index, best_header, fork_height));
        }
        let mut asks: HashMap<LinkId, Vec<InvItem>> = HashMap::new();
        let deadline = ctx.now_millis + BLOCK_TIMEOUT_MILLIS;
        let mut candidates = links.iter().map(|(_, link)| *link).cycle();
        for hash in missing {
            if self.requested.contains_key(&hash) {
                continue;
            }
            let height = ctx.chain.index().get(&hash).map_or(0, |entry| entry.height);
            let mut chosen = None;
            for _ in 0..links.len() {
                let link = candidates.next().expect("cycle");
                let neighbour = &self.neighbours[&link];
                if neighbour.in_flight < MAX_BLOCKS_IN_FLIGHT && reach[&link] >= height {
                    chosen = Some(link);
                    break;
                }
            }
            let Some(link) = chosen else { break };
            self.neighbours.get_mut(&link).expect("entered").in_flight += 1;
            self.requested.insert(hash, (link, deadline));
            asks.entry(link)
                .or_default()
                .push(InvItem::new(InvKind::Block, hash.to_byte_array()));
        }
        let mut asks: Vec<(LinkId, Vec<InvItem>)> = asks.into_iter().collect();
        asks.sort_unstable_by_key(|(link, _)| *link);
        for (link, items) in asks {
            ctx.send(link, Message::GetData(items));
        }
    }

    fn release(&mut self, hash: &BlockHash) -> Option<LinkId> {
        let (link, _) = self.requested.remove(hash)?;
        if let Some(neighbour) = self.neighbours.get_mut(&link) {
            neighbour.in_flight = neighbour.in_flight.saturating_sub(1);
        }
        Some(link)
    }

    fn on_block(&mut self, ctx: &mut Context<'_>, link: LinkId, block: bitcoin::Block) {
        let hash = block.block_hash();
        let wanted = ctx.chain.index().get(&hash).is_some() && !ctx.chain.has_block(&hash);
        if self.requested.get(&hash).map(|(from, _)| *from) == Some(link) || wanted {
            // Asked of it, or asked before and late, or asked of another: useful all the same.
            self.release(&hash);
        } else {
            ctx.punish(link, Offence::Unrequested("block"));
            return;
        }
        let now = ctx.now_secs() as u32;
        match ctx.chain.accept_block(block, now) {
            Ok(accepted) => {
                for (_, err) in &accepted.invalid {
                    ctx.punish(link, Offence::InvalidBlock(err.to_string()));
                }
                self.after_accept(ctx, accepted);
            }
            Err(AcceptError::Header(HeaderError::TimeTooNew { .. })) => {}
            Err(err) => ctx.punish(link, Offence::InvalidBlock(err.to_string())),
        }
        self.schedule(ctx);
        self.report(ctx);
    }

    fn after_accept(&mut self, ctx: &mut Context<'_>, accepted: crate::chain::state::Accepted) {
        if accepted.change.is_empty() {
            return;
        }
        let tip = ctx.chain.tip();
        ctx.event(Event::TipChanged {
            hash: tip,
            height: ctx.chain.height(),
        });
        ctx.announce(InvItem::new(InvKind::Block, tip.to_byte_array()));
        ctx.notify(Notice::TipChanged(accepted.change));
    }

    fn report(&mut self, ctx: &mut Context<'_>) {
        let best = ctx.chain.index().best_header();
        let headers = ctx.chain.index().get(&best).map_or(0, |entry| entry.height);
        let progress = (headers, ctx.chain.height());
        if progress != self.progress {
            self.progress = progress;
            ctx.event(Event::SyncProgress {
                headers,
                blocks: progress.1,
            });
        }
    }
}

impl Protocol for ChainSync {
    fn name(&self) -> &'static str {
        "chain"
    }

    fn kinds(&self) -> &'static [InvKind] {
        &[InvKind::Block]
    }

    fn handles(&self, message: &Message) -> bool {
        matches!(
            message,
            Message::GetHeaders(_) | Message::Headers(_) | Message::Block(_)
        )
    }

    fn on_message(
        &mut self,
        ctx: &mut Context<'_>,
        link: LinkId,
        message: Message,
        _requested: Option<InvPurpose>,
    ) {
        match message {
            Message::GetHeaders(request) => {
                let headers = ctx
                    .chain
                    .headers_after(&request.locator, &request.stop, MAX_HEADERS);
                ctx.send(link, Message::Headers(headers));
            }
            Message::Headers(headers) => self.on_headers(ctx, link, headers),
            Message::Block(block) => self.on_block(ctx, link, *block),
            _ => {}
        }
    }

    fn wants(&mut self, ctx: &mut Context<'_>, link: LinkId, item: &InvItem) -> bool {
        let hash = BlockHash::from_byte_array(item.id);
        match ctx.chain.index().get(&hash) {
            Some(entry) => {
                self.learn(link, hash, entry);
                if !ctx.chain.has_block(&hash) {
                    self.schedule(ctx);
                }
            }
            None => {
                // Header first: ask this neighbour for the headers up to it.
                let open = self
                    .neighbours
                    .get(&link)
                    .is_some_and(|n| n.headers_asked.is_some());
                if !open {
                    let locator = ctx.chain.locator();
                    self.ask_headers(ctx, link, locator);
                }
            }
        }
        // Blocks are fetched by the scheduler, never by the node's generic fetcher.
        false
    }

    fn object(&self, chain: &Chain, item: &InvItem) -> Option<Message> {
        chain
            .block(&BlockHash::from_byte_array(item.id))
            .map(|block| Message::Block(Box::new(block.as_ref().clone())))
    }

    fn on_link_ready(&mut self, ctx: &mut Context<'_>, link: LinkId) {
        let height = ctx.peer(link).map_or(0, |peer| peer.height);
        self.neighbours.insert(
            link,
            Neighbour {
                height,
                ..Neighbour::default()
            },
        );
        let locator = ctx.chain.locator();
        self.ask_headers(ctx, link, locator);
    }

    fn on_link_gone(&mut self, ctx: &mut Context<'_>, link: LinkId) {
        self.neighbours.remove(&link);
        self.requested.retain(|_, (from, _)| *from != link);
        self.schedule(ctx);
    }

    fn on_tick(&mut self, ctx: &mut Context<'_>) {
        let now = ctx.now_millis;
        let late: Vec<BlockHash> = self
            .requested
            .iter()
            .filter(|(_, (_, deadline))| *deadline <= now)
            .map(|(hash, _)| *hash)
            .collect();
        for hash in late {
            if let Some(link) = self.release(&hash) {
                if let Some(neighbour) = self.neighbours.get_mut(&link) {
                    neighbour.stalls += 1;
                }
            }
        }
        for neighbour in self.neighbours.values_mut() {
            if neighbour
                .headers_asked
                .is_some_and(|asked| asked + HEADERS_TIMEOUT_MILLIS <= now)
            {
                neighbour.headers_asked = None;
                neighbour.stalls += 1;
            }
        }
        self.schedule(ctx);
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn core::any::Any {
        self
    }
}
