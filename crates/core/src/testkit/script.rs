//! A node and two neighbours played from a script of bytes: the fuzz target `node_inputs`
//! feeds it whatever the fuzzer makes, and `examples/fuzz_seeds.rs` writes scripts of real
//! gossip (orders, updates, transactions, blocks) for it to start from.

use super::node::{
    announce, full_node, sent_on, test_order, ScriptedPeer, TestCoins, START_MILLIS,
};
use super::TestKey;
use crate::node::{Input, Node, Output};
use crate::wire::{InvItem, InvPurpose, Message};

/// One step of a [`NodeScript`].
#[derive(Debug, Clone)]
pub enum ScriptStep {
    /// Neighbour 0 or 1 sends these bytes (a message, or not).
    Sends(u8, Vec<u8>),
    /// Time passes, `n² × 100` ms (up to 1 h 48 min), and the node ticks.
    Wait(u8),
    /// Neighbour 0 or 1's channel closes and the neighbour connects again.
    Reconnect(u8),
}

impl ScriptStep {
    /// Neighbour `peer` sends `message`.
    pub fn says(peer: u8, message: &Message) -> ScriptStep {
        ScriptStep::Sends(peer, message.encode())
    }

    /// Neighbour `peer` announces `item` as new, and sends `object` (the node asks for it).
    pub fn delivers(peer: u8, item: InvItem, object: &Message) -> [ScriptStep; 2] {
        [
            ScriptStep::says(peer, &announce(item)),
            ScriptStep::says(peer, object),
        ]
    }
}

/// A full node whose chain holds one coin of [`NodeScript::owner`]'s, with two neighbours.
pub struct NodeScript {
    pub node: Node,
    pub peers: [ScriptedPeer; 2],
    pub now_millis: u64,
}

impl NodeScript {
    /// The owner of the chain's coin: its orders can go in the node's book.
    pub fn owner() -> TestKey {
        TestKey::new(60)
    }

    /// The chain's coin, and the block that makes it.
    pub fn coins() -> TestCoins {
        TestCoins::new(&[&Self::owner()])
    }

    /// A signed order of [`NodeScript::owner`]'s on the chain's coin (`nonce` tells orders
    /// apart), made when the script starts.
    pub fn order(coins: &TestCoins, nonce: u64) -> crate::market::order::SignedOrder {
        test_order(&Self::owner(), START_MILLIS, nonce, coins.coins[0])
    }

    /// The node on `coins`' chain, both neighbours connected.
    pub fn new(coins: &TestCoins) -> NodeScript {
        let now_millis = START_MILLIS;
        let mut node = full_node(0, coins.chain(), now_millis);
        let peers = [ScriptedPeer::new(1), ScriptedPeer::new(2)];
        for peer in &peers {
            peer.connect(&mut node, now_millis);
        }
        NodeScript {
            node,
            peers,
            now_millis,
        }
    }

    /// `steps` as the bytes [`NodeScript::play`] reads.
    pub fn encode(steps: &[ScriptStep]) -> Vec<u8> {
        let mut script = Vec::new();
        for step in steps {
            match step {
                ScriptStep::Sends(peer, bytes) => {
                    let len = u16::try_from(bytes.len()).expect("a message of a script");
                    script.extend([0, *peer]);
                    script.extend(len.to_le_bytes());
                    script.extend(bytes);
                }
                ScriptStep::Wait(n) => script.extend([1, *n]),
                ScriptStep::Reconnect(peer) => script.extend([2, *peer]),
            }
        }
        script
    }

    /// Plays `script` (any bytes are some script: a step's first byte picks its kind, modulo
    /// 3, and a short last step is cut); returns everything the node output.
    pub fn play(&mut self, script: &[u8]) -> Vec<Output> {
        let mut outputs = Vec::new();
        let mut rest = script;
        while let [kind, arg, after @ ..] = rest {
            let peer = &self.peers[usize::from(arg & 1)];
            rest = after;
            match kind % 3 {
                0 => {
                    let [lo, hi, after @ ..] = rest else { break };
                    let len = usize::from(u16::from_le_bytes([*lo, *hi])).min(after.len());
                    let (bytes, after) = after.split_at(len);
                    rest = after;
                    outputs.extend(
                        self.node
                            .handle(self.now_millis, peer.sends(bytes.to_vec())),
                    );
                }
                1 => {
                    self.now_millis += u64::from(*arg).pow(2) * 100;
                    outputs.extend(self.node.handle(self.now_millis, Input::Tick));
                }
                _ => {
                    let down = Input::LinkDown { link: peer.link };
                    outputs.extend(self.node.handle(self.now_millis, down));
                    outputs.extend(peer.connect(&mut self.node, self.now_millis));
                }
            }
        }
        outputs
    }

    /// The messages the node sent to neighbour `peer` among `outputs` (they must decode).
    pub fn sent_to(&self, outputs: &[Output], peer: u8) -> Vec<Message> {
        sent_on(outputs, self.peers[usize::from(peer & 1)].link)
    }
}

/// Scripts of real gossip, by name: the fuzz target's seeds, and what `tests/node_inputs.rs`
/// checks that the node does with them.
pub fn node_script_seeds() -> Vec<(&'static str, Vec<ScriptStep>)> {
    use crate::market::order::{Change, OrderUpdate};
    use crate::wire::InvKind;
    use bitcoin::hashes::Hash;

    let coins = NodeScript::coins();
    let owner = NodeScript::owner();
    let order = NodeScript::order(&coins, 1);
    let id = order.order.id();
    let order_item = InvItem::new(InvKind::Order, id.0);
    let cancel = owner.sign_update(
        OrderUpdate {
            order: id,
            maker: owner.xonly(),
            sequence: 1,
            change: Change::Cancel,
        },
        &owner,
    );
    let cancel_item = InvItem::new(InvKind::OrderUpdate, cancel.update.digest());
    // A newer order of the owner's on the same coin, which replaces the first.
    let newer = test_order(&owner, START_MILLIS + 1_000, 2, coins.coins[0]);
    let newer_item = InvItem::new(InvKind::Order, newer.order.id().0);
    // An order on the coin of a block the node has not seen yet: it waits for the block.
    let chain = coins.chain();
    let block = super::block_on(&chain, chain.tip(), vec![], 0, &owner.p2wpkh(), 7);
    let block_coin = bitcoin::OutPoint::new(block.txdata[0].compute_txid(), 0);
    let waiting = test_order(&owner, START_MILLIS, 3, block_coin);
    let waiting_item = InvItem::new(InvKind::Order, waiting.order.id().0);
    let announce_block = announce(InvItem::new(
        InvKind::Block,
        block.block_hash().to_byte_array(),
    ));

    let (order, cancel, newer) = (
        Message::Order(order),
        Message::OrderUpdate(cancel),
        Message::Order(newer),
    );
    let holdings = Message::Inv {
        purpose: InvPurpose::Holdings,
        items: vec![order_item],
    };
    let chatter = super::wire_samples()
        .iter()
        .enumerate()
        .map(|(n, message)| ScriptStep::says(n as u8 % 2, message))
        .collect();
    let steps = |parts: &[&[ScriptStep]]| parts.concat();
    vec![
        (
            "order_cancel_expiry",
            steps(&[
                &ScriptStep::delivers(0, order_item, &order),
                &ScriptStep::delivers(1, cancel_item, &cancel),
                &[ScriptStep::Wait(255)],
            ]),
        ),
        (
            "update_before_order",
            steps(&[
                &ScriptStep::delivers(1, cancel_item, &cancel),
                &ScriptStep::delivers(0, order_item, &order),
            ]),
        ),
        (
            "newer_order_replaces",
            steps(&[
                &ScriptStep::delivers(0, order_item, &order),
                &ScriptStep::delivers(1, newer_item, &newer),
            ]),
        ),
        (
            "order_waits_for_its_block",
            steps(&[
                &ScriptStep::delivers(0, waiting_item, &Message::Order(waiting)),
                &[ScriptStep::Wait(40)],
                // Header first: the node asks for the headers, then for the block.
                &[
                    ScriptStep::says(1, &announce_block),
                    ScriptStep::says(1, &Message::Headers(vec![block.header])),
                    ScriptStep::says(1, &Message::Block(Box::new(block))),
                ],
            ]),
        ),
        (
            "holdings_after_reconnect",
            vec![
                ScriptStep::Reconnect(0),
                ScriptStep::says(0, &holdings),
                ScriptStep::says(0, &order),
            ],
        ),
        ("every_message", chatter),
    ]
}
