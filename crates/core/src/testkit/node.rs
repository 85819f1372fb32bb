//! A node and peers played by hand: a full node of the test network, remote peers that sign
//! hellos for their channels, and the relay workload of the message-handling benchmark.

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::Secp256k1;
use bitcoin::{Block, OutPoint, Transaction};

use super::{block_on, pay, sign_all, spend, TestKey};
use crate::chain::assets::AssetId;
use crate::chain::genesis::GENESIS_TIME;
use crate::chain::mempool::{Mempool, MempoolConfig};
use crate::chain::state::Chain;
use crate::market::book::{Book, BookLimits};
use crate::market::order::{Order, Side, SignedOrder};
use crate::node::protocols::{ChainSync, MarketRelay, MempoolRelay, TopicBoard};
use crate::node::{Event, Input, LinkId, Node, NodeConfig, Output};
use crate::wire::{
    Features, Fingerprint, Hello, InvItem, InvKind, InvPurpose, Message, PeerId, SignedHello,
    PROTOCOL_VERSION,
};
use crate::Network;

/// A moment well after the test network's genesis, so test chains' block times are past.
pub const START_MILLIS: u64 = (GENESIS_TIME as u64 + 10_000) * 1_000;

/// The announcement of `item` as new, one item in an `Inv`, as a neighbour gossips it.
pub fn announce(item: InvItem) -> Message {
    Message::Inv {
        purpose: InvPurpose::New,
        items: vec![item],
    }
}

/// The key of test node `n`.
pub fn node_key(n: u64) -> TestKey {
    TestKey::new(n + 1_000_001)
}

/// A full peer of the test network (chain sync, mempool and market) with key `node_key(n)`.
pub fn full_node(n: u64, chain: Chain, now_millis: u64) -> Node {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&n.to_le_bytes());
    let mut node = Node::new(
        NodeConfig::new(Network::Test),
        node_key(n).keypair(),
        chain,
        seed,
        now_millis,
    );
    node.register(Box::new(ChainSync::new()));
    node.register(Box::new(MempoolRelay::new(MempoolConfig::default(), n)));
    node.register(Box::new(MarketRelay::new(BookLimits::default(), n)));
    node.register(Box::new(TopicBoard::new(n)));
    node
}

/// The blocks of a test chain in which `funder`'s first coinbase has matured, and a payment
/// of `outputs` from it that no block holds (a coin of the mempool, once it is submitted).
pub fn matured_payment(
    funder: &TestKey,
    outputs: Vec<bitcoin::TxOut>,
) -> (Vec<Block>, Transaction) {
    let mut chain = Chain::new(Network::Test);
    let mut blocks = Vec::new();
    for n in 0..=Network::Test.params().coinbase_maturity {
        let block = block_on(&chain, chain.tip(), vec![], 0, &funder.p2wpkh(), n.into());
        chain
            .accept_block(block.clone(), (START_MILLIS / 1000) as u32)
            .expect("a valid block");
        blocks.push(block);
    }
    let reward = &blocks[0].txdata[0];
    let mut payment = spend(&[OutPoint::new(reward.compute_txid(), 0)], outputs);
    sign_all(funder, &mut payment, &reward.output);
    (blocks, payment)
}

/// Real coins for test orders (a relay takes an order only once it finds its coins): a block
/// after the test network's genesis whose coinbase pays each owner a coin (P2WPKH).
pub struct TestCoins {
    pub block: Block,
    /// The coin of each owner, in the owners' order.
    pub coins: Vec<OutPoint>,
}

impl TestCoins {
    pub fn new(owners: &[&TestKey]) -> TestCoins {
        let genesis = Chain::new(Network::Test);
        let reward = crate::chain::pow::block_subsidy(1, genesis.params()).to_sat();
        let each = reward / owners.len().max(1) as u64;
        let outputs = owners
            .iter()
            .map(|owner| pay(&owner.p2wpkh(), each))
            .collect();
        let coinbase = super::coinbase(1, outputs, 0);
        let txid = coinbase.compute_txid();
        let parent = genesis.tip();
        let time = genesis.index().get(&parent).expect("genesis").header.time
            + genesis.params().target_spacing_secs;
        let bits = genesis.next_bits(&parent).expect("genesis");
        TestCoins {
            block: super::mine_block(parent, time, bits, vec![coinbase]),
            coins: (0..owners.len() as u32)
                .map(|vout| OutPoint::new(txid, vout))
                .collect(),
        }
    }

    /// A chain of the test network holding the coins' block.
    pub fn chain(&self) -> Chain {
        let mut chain = Chain::new(Network::Test);
        chain
            .accept_block(self.block.clone(), (START_MILLIS / 1000) as u32)
            .expect("a valid block");
        chain
    }
}

/// A signed ask of 1 BTC at 50,000 on market `[7; 32]` by `maker`, made at `created_millis`,
/// valid an hour, funded by `coin` (`maker`'s: see [`TestCoins`]); `nonce` tells apart orders
/// otherwise alike.
pub fn test_order(maker: &TestKey, created_millis: u64, nonce: u64, coin: OutPoint) -> SignedOrder {
    maker.sign_order(
        Order {
            market: AssetId::from_byte_array([7; 32]),
            side: Side::Ask,
            price: 50_000,
            amount: 100_000_000,
            created_millis,
            expiry_millis: created_millis + 3_600_000,
            nonce,
            maker: maker.xonly(),
            funding: vec![coin],
            receive: maker.p2tr(),
            change: maker.p2wpkh(),
        },
        maker,
    )
}

/// A remote peer a test plays: its key and its channel to the node under test.
#[derive(Clone)]
pub struct ScriptedPeer {
    pub key: TestKey,
    pub link: LinkId,
    /// The DTLS fingerprint of the peer's end, and of the node's end.
    pub fingerprint: Fingerprint,
    pub node_fingerprint: Fingerprint,
}

impl ScriptedPeer {
    /// Peer `n` (any value but zero), on link `n`.
    pub fn new(n: u64) -> ScriptedPeer {
        let mut fingerprint = [0u8; 32];
        fingerprint[..8].copy_from_slice(&n.to_le_bytes());
        let mut node_fingerprint = fingerprint;
        node_fingerprint[31] = 0xff;
        ScriptedPeer {
            key: TestKey::new(n),
            link: LinkId(n),
            fingerprint,
            node_fingerprint,
        }
    }

    pub fn id(&self) -> PeerId {
        PeerId::of(&self.key.xonly())
    }

    /// The channel opened, as the node's driver reports it (`dialed`: the node dialed).
    pub fn link_up(&self, dialed: bool) -> Input {
        Input::LinkUp {
            link: self.link,
            dialed: dialed.then(|| self.id()),
            local_fingerprint: self.node_fingerprint,
            remote_fingerprint: self.fingerprint,
        }
    }

    /// The hello this peer would send on its channel, before signing.
    pub fn hello(&self, now_millis: u64) -> Hello {
        let genesis = Chain::new(Network::Test).tip();
        Hello {
            magic: Network::Test.params().magic,
            version: PROTOCOL_VERSION,
            peer: self.id(),
            tip: genesis,
            height: 0,
            features: Features::ALL,
            time_millis: now_millis,
            sender_fingerprint: self.fingerprint,
            receiver_fingerprint: self.node_fingerprint,
        }
    }

    /// `hello` signed by this peer's key.
    pub fn sign(&self, hello: Hello) -> Message {
        Message::Hello(SignedHello::sign(
            &Secp256k1::new(),
            hello,
            &self.key.keypair(),
            &[9; 32],
        ))
    }

    /// The node receives `message` from this peer.
    pub fn says(&self, message: &Message) -> Input {
        self.sends(message.encode())
    }

    /// The node receives `bytes` from this peer.
    pub fn sends(&self, bytes: Vec<u8>) -> Input {
        Input::Received {
            link: self.link,
            bytes,
        }
    }

    /// Announces `object` as `item` (new) to `node` at `now_millis`, checks that the node asks
    /// for it, and sends it; returns what the node did with it.
    pub fn delivers(
        &self,
        node: &mut Node,
        item: InvItem,
        object: &Message,
        now_millis: u64,
    ) -> Vec<Output> {
        self.delivers_as(InvPurpose::New, node, item, object, now_millis)
    }

    /// [`ScriptedPeer::delivers`], announcing `item` for `purpose` (as new, or among its
    /// holdings).
    pub fn delivers_as(
        &self,
        purpose: InvPurpose,
        node: &mut Node,
        item: InvItem,
        object: &Message,
        now_millis: u64,
    ) -> Vec<Output> {
        let inv = Message::Inv {
            purpose,
            items: vec![item],
        };
        let asked = node.handle(now_millis, self.says(&inv));
        assert_eq!(
            sent_on(&asked, self.link),
            vec![Message::GetData(vec![item])]
        );
        node.handle(now_millis, self.says(object))
    }

    /// Opens this peer's channel to `node` and says hello; returns what the node did.
    pub fn connect(&self, node: &mut Node, now_millis: u64) -> Vec<Output> {
        let mut outputs = node.handle(now_millis, self.link_up(false));
        let hello = self.sign(self.hello(now_millis));
        outputs.extend(node.handle(now_millis, self.says(&hello)));
        outputs
    }
}

/// The messages the node sent on `link`, decoded.
pub fn sent_on(outputs: &[Output], link: LinkId) -> Vec<Message> {
    outputs
        .iter()
        .filter_map(|output| match output {
            Output::Send { link: to, bytes } if *to == link => {
                Some(Message::decode(bytes).expect("the node sends well-formed messages"))
            }
            _ => None,
        })
        .collect()
}

/// The events among `outputs`.
pub fn events(outputs: &[Output]) -> Vec<&Event> {
    outputs
        .iter()
        .filter_map(|output| match output {
            Output::Event(event) => Some(event),
            _ => None,
        })
        .collect()
}

/// The message-handling benchmark: one node with eight neighbours receives what gossip brings
/// it. For each transaction and each order, in turn: one neighbour announces it, sends it when
/// the node asks, and the seven others announce it too (the node knows it by then); a ping
/// every tenth object. Transactions (one P2WPKH input each) are validated against the chain and
/// mempool, orders verified and booked, and each is announced on to the neighbours that lack it.
pub struct RelayWorkload {
    blocks: Vec<Block>,
    peers: Vec<ScriptedPeer>,
    txs: Vec<Transaction>,
    orders: Vec<SignedOrder>,
    /// The inputs after the handshakes, with their times.
    pub inputs: Vec<(u64, Input)>,
    /// Transactions and orders in the stream.
    pub objects: usize,
}

/// Neighbours of the node under load.
const NEIGHBOURS: u64 = 8;
/// Milliseconds between two inputs of the stream: well inside every rate budget.
const INPUT_SPACING_MILLIS: u64 = 1;

impl RelayWorkload {
    /// `txs` transactions and as many orders.
    pub fn new(txs: usize) -> RelayWorkload {
        let funder = TestKey::new(77);
        let mut chain = Chain::new(Network::Test);
        let mut blocks = Vec::new();
        let mine = |chain: &mut Chain, blocks: &mut Vec<Block>, txs: Vec<Transaction>, tag: u64| {
            let block = block_on(chain, chain.tip(), txs, 0, &funder.p2wpkh(), tag);
            chain
                .accept_block(block.clone(), (START_MILLIS / 1000) as u32)
                .expect("a valid block");
            blocks.push(block);
        };
        // Three blocks (the first coinbase matures), then one splitting it into `txs` coins
        // that the transactions spend and `txs` that fund the orders.
        for tag in 0..3 {
            mine(&mut chain, &mut blocks, vec![], tag);
        }
        let coinbase = blocks[0].txdata[0].clone();
        let each = (coinbase.output[0].value.to_sat() - 100_000) / (2 * txs) as u64;
        let mut fan_out = spend(
            &[OutPoint::new(coinbase.compute_txid(), 0)],
            (0..2 * txs).map(|_| pay(&funder.p2wpkh(), each)).collect(),
        );
        sign_all(&funder, &mut fan_out, &coinbase.output);
        let fan_out_id = fan_out.compute_txid();
        let coins = fan_out.output.clone();
        mine(&mut chain, &mut blocks, vec![fan_out], 3);

        let peers: Vec<ScriptedPeer> = (1..=NEIGHBOURS).map(ScriptedPeer::new).collect();
        let mut inputs = Vec::new();
        let mut now = START_MILLIS + 1_000;
        let mut push = |input: Input, now: &mut u64| {
            *now += INPUT_SPACING_MILLIS;
            inputs.push((*now, input));
        };
        let (mut all_txs, mut all_orders) = (Vec::new(), Vec::new());
        for n in 0..txs {
            let mut tx = spend(
                &[OutPoint::new(fan_out_id, n as u32)],
                vec![pay(&funder.p2tr(), each - 1_000)],
            );
            sign_all(&funder, &mut tx, &coins[n..=n]);
            let maker = TestKey::new(1_000 + n as u64);
            let order = maker.sign_order(
                Order {
                    market: AssetId::from_byte_array([7; 32]),
                    side: if n % 2 == 0 { Side::Ask } else { Side::Bid },
                    price: 50_000 + (n as u64 % 50) * 100,
                    amount: 100_000_000,
                    created_millis: now,
                    expiry_millis: now + 3_600_000,
                    nonce: n as u64,
                    maker: maker.xonly(),
                    funding: vec![OutPoint::new(fan_out_id, (txs + n) as u32)],
                    receive: maker.p2tr(),
                    change: maker.p2wpkh(),
                },
                &funder,
            );
            all_txs.push(tx.clone());
            all_orders.push(order.clone());
            let objects = [
                (
                    InvItem::new(InvKind::Tx, tx.compute_txid().to_byte_array()),
                    Message::Tx(tx),
                ),
                (
                    InvItem::new(InvKind::Order, order.order.id().0),
                    Message::Order(order),
                ),
            ];
            for (k, (item, object)) in objects.into_iter().enumerate() {
                let first = (2 * n + k) % peers.len();
                let inv = announce(item);
                push(peers[first].says(&inv), &mut now);
                push(peers[first].says(&object), &mut now);
                for (p, peer) in peers.iter().enumerate() {
                    if p != first {
                        push(peer.says(&inv), &mut now);
                    }
                }
            }
            if n % 5 == 0 {
                push(
                    peers[n % peers.len()].says(&Message::Ping(n as u64)),
                    &mut now,
                );
            }
        }
        RelayWorkload {
            blocks,
            peers,
            txs: all_txs,
            orders: all_orders,
            inputs,
            objects: 2 * txs,
        }
    }

    fn chain(&self) -> Chain {
        let mut chain = Chain::new(Network::Test);
        for block in &self.blocks {
            chain
                .accept_block(block.clone(), (START_MILLIS / 1000) as u32)
                .expect("a valid block");
        }
        chain
    }

    /// A node on the workload's chain with its neighbours connected and their holdings
    /// exchanged: ready for the stream.
    pub fn node(&self) -> Node {
        let mut node = full_node(0, self.chain(), START_MILLIS);
        for peer in &self.peers {
            let outputs = peer.connect(&mut node, START_MILLIS);
            assert!(
                events(&outputs)
                    .iter()
                    .any(|event| matches!(event, Event::PeerReady { .. })),
                "neighbour {} connects",
                peer.link.0
            );
        }
        node
    }

    /// Runs the stream through `node`; returns the objects it accepted and the messages it sent.
    pub fn run(&self, node: &mut Node, inputs: Vec<(u64, Input)>) -> (usize, usize) {
        let (mut accepted, mut sent) = (0, 0);
        for (now, input) in inputs {
            for output in node.handle(now, input) {
                match output {
                    Output::Send { .. } => sent += 1,
                    Output::Event(Event::TxAccepted(_) | Event::OrderAccepted(_)) => accepted += 1,
                    Output::Event(Event::Banned { reason, .. }) => {
                        panic!("a neighbour was banned under the workload: {reason}")
                    }
                    _ => {}
                }
            }
        }
        (accepted, sent)
    }

    /// The seconds the stream takes through a fresh node, the best of `rounds`; `clock` reads
    /// seconds.
    pub fn node_seconds(&self, rounds: usize, clock: impl Fn() -> f64) -> f64 {
        (0..rounds)
            .map(|_| {
                let mut node = self.node();
                let inputs = self.inputs.clone();
                let start = clock();
                let (accepted, _) = self.run(&mut node, inputs);
                let seconds = clock() - start;
                assert_eq!(accepted, self.objects, "every object is accepted");
                seconds
            })
            .fold(f64::INFINITY, f64::min)
    }

    /// The seconds the validation alone takes (each transaction into a mempool, each order
    /// verified into a book, with no node around them), the best of `rounds`: the floor under
    /// [`RelayWorkload::node_seconds`].
    pub fn validation_seconds(&self, rounds: usize, clock: impl Fn() -> f64) -> f64 {
        use crate::market::order::Arrival;
        (0..rounds)
            .map(|_| {
                let mut chain = self.chain();
                let mut mempool = Mempool::new(MempoolConfig::default(), 1);
                let mut book = Book::new(BookLimits::default(), 1);
                let secp = Secp256k1::verification_only();
                let (txs, orders) = (self.txs.clone(), self.orders.clone());
                let now = self.inputs.last().map_or(START_MILLIS, |(now, _)| *now);
                let start = clock();
                for tx in txs {
                    mempool
                        .accept(tx, &mut chain, now / 1000)
                        .expect("a valid transaction");
                }
                for order in orders {
                    let order = order.verify(&secp).expect("a valid order");
                    order
                        .check_time(now, Arrival::Gossip)
                        .expect("a fresh order");
                    book.insert_order(order).expect("room in the book");
                }
                clock() - start
            })
            .fold(f64::INFINITY, f64::min)
    }
}
