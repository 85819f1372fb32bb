//! What a block costs a node whose relay holds a full pool of orders waiting for their coins
//! (a new tip judges each again): 5,000 orders on the outputs of one transaction that never
//! comes, against 5,000 on as many transactions, in the same run. The two should cost about
//! the same; when the pool indexed each transaction's orders in a list, the first cost
//! 5.8–6.8 × the second (three runs; with sets, 0.56–1.67 ×, the noise of a few ms).
//!
//! `cargo run --release -p bitmesh-core --example waiting_flood`

use bitcoin::hashes::Hash;
use bitcoin::{OutPoint, Txid};
use bitmesh_core::node::protocols::ChainSync;
use bitmesh_core::testkit::{
    block_on, full_node, test_order, ScriptedPeer, TestCoins, TestKey, START_MILLIS,
};
use bitmesh_core::wire::{InvItem, InvKind, Message};

const ORDERS: u32 = 5_000;

/// Milliseconds the block took with `ORDERS` waiting orders, the coin of order `i` being
/// `coin(i)`.
fn block_millis(coin: impl Fn(u32) -> OutPoint) -> f64 {
    let owner = TestKey::new(60);
    let coins = TestCoins::new(&[&owner]);
    let mut node = full_node(0, coins.chain(), START_MILLIS);
    let peer = ScriptedPeer::new(1);
    peer.connect(&mut node, START_MILLIS);
    for i in 0..ORDERS {
        let order = test_order(&owner, START_MILLIS, i.into(), coin(i));
        let item = InvItem::new(InvKind::Order, order.order.id().0);
        peer.delivers(&mut node, item, &Message::Order(order), START_MILLIS);
    }
    let chain = node.chain();
    let block = block_on(chain, chain.tip(), vec![], 0, &owner.p2wpkh(), 9);
    let start = std::time::Instant::now();
    let (submitted, _) =
        node.with_protocol::<ChainSync, _>(START_MILLIS, |sync, ctx| sync.submit_block(ctx, block));
    let millis = start.elapsed().as_secs_f64() * 1e3;
    submitted.expect("a chain").expect("a valid block");
    millis
}

fn main() {
    let one = Txid::from_byte_array([0xee; 32]);
    let same = block_millis(|i| OutPoint::new(one, i));
    let spread = block_millis(|i| {
        let mut txid = [0xee; 32];
        txid[..4].copy_from_slice(&i.to_le_bytes());
        OutPoint::new(Txid::from_byte_array(txid), 0)
    });
    println!(
        "a block with {ORDERS} orders waiting: on one transaction's outputs {same:.1} ms, \
         on {ORDERS} transactions {spread:.1} ms ({:.2} ×)",
        same / spread
    );
}
