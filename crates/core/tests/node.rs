//! The node state machine against peers played by hand: every refusal of the handshake, the
//! cost of every offence up to the ban, bans that end, timeouts, glare, gossip that sends each
//! object once per link, routing, peer exchange, and a footprint that stays bounded under floods.

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::Secp256k1;
use bitcoin::{Amount, OutPoint, Txid};
use bitmesh_core::chain::state::Chain;

use bitmesh_core::market::order::{Change, OrderId, OrderUpdate, SignedOrder};
use bitmesh_core::node::protocols::{
    ChainSync, MarketRelay, MempoolRelay, SubmitError, COINS_WAIT_MILLIS,
};
use bitmesh_core::node::{
    Event, Footprint, Input, LinkId, Node, NodeConfig, Output, Protocol, BAN_MILLIS,
    HANDSHAKE_TIMEOUT_MILLIS, PING_INTERVAL_MILLIS, PONG_TIMEOUT_MILLIS, PROBE_TIMEOUT_MILLIS,
};
use bitmesh_core::testkit::{
    announce, block_on, events, full_node, matured_payment, node_key, pay, sent_on, sign_all,
    spend, test_order, RelayWorkload, ScriptedPeer, TestCoins, TestKey, START_MILLIS,
};
use bitmesh_core::wire::{
    Goodbye, GoodbyeReason, InvItem, InvKind, InvPurpose, Message, PeerId, Routed, RoutedKind,
    MAX_INVENTORY, MAX_MESSAGE_BYTES, MAX_TTL,
};
use bitmesh_core::Network;

const NOW: u64 = START_MILLIS;

fn node() -> Node {
    full_node(0, Chain::new(Network::Test), NOW)
}

/// Connects `peer` to `node` and checks it became a neighbour.
fn ready(node: &mut Node, peer: &ScriptedPeer) {
    let outputs = peer.connect(node, NOW);
    assert!(
        events(&outputs).contains(&&Event::PeerReady {
            link: peer.link,
            peer: peer.id(),
            outbound: false,
        }),
        "{outputs:?}"
    );
}

fn goodbye(outputs: &[Output], link: LinkId) -> Option<Goodbye> {
    sent_on(outputs, link)
        .into_iter()
        .find_map(|message| match message {
            Message::Goodbye(goodbye) => Some(goodbye),
            _ => None,
        })
}

fn closed(outputs: &[Output], link: LinkId) -> bool {
    outputs.contains(&Output::Close { link })
}

fn ban_of(outputs: &[Output]) -> Option<(PeerId, u64, String)> {
    events(outputs).into_iter().find_map(|event| match event {
        Event::Banned {
            peer,
            until_millis,
            reason,
        } => Some((*peer, *until_millis, reason.clone())),
        _ => None,
    })
}

#[test]
fn a_peer_that_signs_this_channel_becomes_a_neighbour() {
    let mut node = node();
    let peer = ScriptedPeer::new(1);
    let up = node.handle(NOW, peer.link_up(false));
    // The node speaks first, binding its id to this channel's fingerprints.
    let Some(Message::Hello(hello)) = sent_on(&up, peer.link).into_iter().next() else {
        panic!("a hello first: {up:?}");
    };
    assert_eq!(hello.hello.peer, node.id());
    assert_eq!(hello.hello.sender_fingerprint, peer.node_fingerprint);
    assert_eq!(hello.hello.receiver_fingerprint, peer.fingerprint);
    let outputs = node.handle(NOW, peer.says(&peer.sign(peer.hello(NOW))));
    assert!(events(&outputs).contains(&&Event::PeerReady {
        link: peer.link,
        peer: peer.id(),
        outbound: false
    }));
    assert!(sent_on(&outputs, peer.link).contains(&Message::GetPeers));
    assert_eq!(node.peers().count(), 1);
}

/// Each bad hello gets a goodbye with its reason, a closed link and an event with words.
#[test]
fn bad_hellos_are_refused_with_their_reason() {
    let peer = ScriptedPeer::new(1);
    let other_key = TestKey::new(99);
    let cases: Vec<(&str, Message, GoodbyeReason, &str)> = vec![
        (
            "wrong network",
            peer.sign({
                let mut hello = peer.hello(NOW);
                hello.magic = Network::Local.params().magic;
                hello
            }),
            GoodbyeReason::WrongNetwork,
            "another network",
        ),
        (
            "old version",
            peer.sign({
                let mut hello = peer.hello(NOW);
                hello.version = 0;
                hello
            }),
            GoodbyeReason::UnsupportedVersion,
            "older than the oldest supported",
        ),
        (
            "signed by another key",
            ScriptedPeer {
                key: other_key,
                ..peer.clone()
            }
            .sign(peer.hello(NOW)),
            GoodbyeReason::BadHello,
            "signature is not the peer's",
        ),
        (
            "another channel's hello",
            peer.sign({
                let mut hello = peer.hello(NOW);
                hello.receiver_fingerprint = [0xab; 32];
                hello
            }),
            GoodbyeReason::BadHello,
            "someone is in the middle",
        ),
        (
            "the node itself",
            ScriptedPeer {
                key: node_key(0),
                ..peer.clone()
            }
            .sign({
                let mut hello = peer.hello(NOW);
                hello.peer = PeerId::of(&node_key(0).xonly());
                hello
            }),
            GoodbyeReason::BadHello,
            "this node itself",
        ),
    ];
    for (case, hello, reason, words) in cases {
        let mut node = node();
        node.handle(NOW, peer.link_up(false));
        let outputs = node.handle(NOW, peer.says(&hello));
        let bye = goodbye(&outputs, peer.link).unwrap_or_else(|| panic!("{case}: a goodbye"));
        assert_eq!(bye.reason, reason, "{case}");
        assert!(bye.text.contains(words), "{case}: {}", bye.text);
        assert!(closed(&outputs, peer.link), "{case}");
        assert!(
            events(&outputs).iter().any(
                |event| matches!(event, Event::Refused { reason, .. } if reason.contains(words))
            ),
            "{case}"
        );
        assert_eq!(node.peers().count(), 0, "{case}");
    }
}

#[test]
fn a_dialed_channel_answered_by_another_peer_is_closed() {
    let mut node = node();
    let dialed = ScriptedPeer::new(1);
    let impostor = ScriptedPeer {
        key: TestKey::new(2),
        ..dialed.clone()
    };
    node.handle(NOW, dialed.link_up(true));
    let outputs = node.handle(NOW, impostor.says(&impostor.sign(impostor.hello(NOW))));
    assert_eq!(
        goodbye(&outputs, dialed.link).map(|bye| bye.text),
        Some("not the peer dialed".into())
    );
    assert!(closed(&outputs, dialed.link));
}

#[test]
fn a_message_before_the_hello_closes_the_channel() {
    let mut node = node();
    let peer = ScriptedPeer::new(1);
    node.handle(NOW, peer.link_up(false));
    let outputs = node.handle(NOW, peer.says(&Message::Ping(1)));
    let bye = goodbye(&outputs, peer.link).expect("a goodbye");
    assert_eq!(bye.reason, GoodbyeReason::Misbehaviour);
    assert!(
        bye.text.contains("a message before the hello"),
        "{}",
        bye.text
    );
    assert!(closed(&outputs, peer.link));
    // Nobody to ban: the peer never said who it is.
    assert_eq!(ban_of(&outputs), None);
}

#[test]
fn inbound_channels_beyond_the_maximum_are_told_the_node_is_full() {
    let mut node = Node::new(
        NodeConfig {
            max_links: 2,
            ..NodeConfig::new(Network::Test)
        },
        node_key(0).keypair(),
        Chain::new(Network::Test),
        [0; 32],
        NOW,
    );
    for n in 1..=2 {
        ready(&mut node, &ScriptedPeer::new(n));
    }
    let third = ScriptedPeer::new(3);
    let outputs = node.handle(NOW, third.link_up(false));
    assert_eq!(
        goodbye(&outputs, third.link).map(|bye| bye.reason),
        Some(GoodbyeReason::Full)
    );
    assert!(closed(&outputs, third.link));
}

#[test]
fn a_silent_channel_is_closed_after_the_handshake_timeout() {
    let mut node = node();
    let peer = ScriptedPeer::new(1);
    node.handle(NOW, peer.link_up(false));
    let before = node.handle(NOW + HANDSHAKE_TIMEOUT_MILLIS - 1, Input::Tick);
    assert!(!closed(&before, peer.link));
    let after = node.handle(NOW + HANDSHAKE_TIMEOUT_MILLIS, Input::Tick);
    assert!(closed(&after, peer.link));
}

#[test]
fn pings_measure_the_round_trip_and_a_silent_neighbour_is_dropped() {
    let mut node = node();
    let peer = ScriptedPeer::new(1);
    ready(&mut node, &peer);
    let at = NOW + PING_INTERVAL_MILLIS;
    let outputs = node.handle(at, Input::Tick);
    let Some(Message::Ping(nonce)) = sent_on(&outputs, peer.link).into_iter().next() else {
        panic!("a ping: {outputs:?}");
    };
    let outputs = node.handle(at + 42, peer.says(&Message::Pong(nonce)));
    assert!(events(&outputs).contains(&&Event::Rtt {
        peer: peer.id(),
        millis: 42
    }));
    // The next ping goes unanswered.
    let at = at + PING_INTERVAL_MILLIS;
    assert!(matches!(
        sent_on(&node.handle(at, Input::Tick), peer.link)[..],
        [Message::Ping(_)]
    ));
    assert!(!closed(
        &node.handle(at + PONG_TIMEOUT_MILLIS - 1, Input::Tick),
        peer.link
    ));
    assert!(closed(
        &node.handle(at + PONG_TIMEOUT_MILLIS, Input::Tick),
        peer.link
    ));
}

/// A peer dials again while its first channel still looks alive (a reload, a tab taking over
/// the profile): the new channel wins and the stale one goes.
#[test]
fn a_peer_that_dials_again_replaces_its_stale_channel() {
    let mut node = node();
    let stale = ScriptedPeer::new(1);
    let again = ScriptedPeer {
        link: LinkId(2),
        ..stale.clone()
    };
    ready(&mut node, &stale);
    node.handle(NOW, again.link_up(false));
    let outputs = node.handle(NOW, again.says(&again.sign(again.hello(NOW))));
    assert_eq!(
        goodbye(&outputs, stale.link).map(|bye| bye.reason),
        Some(GoodbyeReason::Duplicate)
    );
    assert!(closed(&outputs, stale.link));
    assert_eq!(
        node.peers().map(|(link, _)| link).collect::<Vec<_>>(),
        vec![again.link]
    );
}

/// Both dial at once: the node keeps the channel dialed by the smaller peer id, on either end.
#[test]
fn glare_keeps_the_channel_dialed_by_the_smaller_id() {
    let mut node = node();
    let peer = ScriptedPeer::new(1);
    let inbound = peer.clone();
    let outbound = ScriptedPeer {
        link: LinkId(2),
        ..peer.clone()
    };
    ready(&mut node, &inbound);
    node.handle(NOW, outbound.link_up(true));
    let outputs = node.handle(NOW, outbound.says(&outbound.sign(outbound.hello(NOW))));
    // The node's id is the smaller: its own dial wins and the inbound channel goes.
    let (kept, dropped) = if node.id() < peer.id() {
        (outbound.link, inbound.link)
    } else {
        (inbound.link, outbound.link)
    };
    assert_eq!(
        goodbye(&outputs, dropped).map(|bye| bye.reason),
        Some(GoodbyeReason::Duplicate)
    );
    assert!(closed(&outputs, dropped));
    assert!(!closed(&outputs, kept));
    assert_eq!(
        node.peers().map(|(link, _)| link).collect::<Vec<_>>(),
        vec![kept]
    );
}

#[test]
fn unknown_message_types_are_skipped() {
    let mut node = node();
    let peer = ScriptedPeer::new(1);
    ready(&mut node, &peer);
    let outputs = node.handle(NOW, peer.sends(vec![0xee, 1, 2, 3]));
    assert!(outputs.is_empty(), "{outputs:?}");
    let outputs = node.handle(NOW, peer.says(&Message::Ping(5)));
    assert_eq!(sent_on(&outputs, peer.link), vec![Message::Pong(5)]);
}

/// Announces `object` as `item` and delivers it when the node asks.
fn deliver(node: &mut Node, peer: &ScriptedPeer, item: InvItem, object: &Message) -> Vec<Output> {
    peer.delivers(node, item, object, NOW)
}

/// Ticks the node every 10 s from `from` to `until`, `peers` answering its pings, so their
/// links stay up while time passes; returns the outputs.
fn pass_time(node: &mut Node, peers: &[&ScriptedPeer], from: u64, until: u64) -> Vec<Output> {
    let mut all = Vec::new();
    for now in (from..=until).step_by(10_000) {
        let outputs = node.handle(now, Input::Tick);
        for peer in peers {
            for message in sent_on(&outputs, peer.link) {
                if let Message::Ping(nonce) = message {
                    all.extend(node.handle(now, peer.says(&Message::Pong(nonce))));
                }
            }
        }
        all.extend(outputs);
    }
    all
}

/// Whether the node asks `peer` for `item` when it announces it.
fn fetches(node: &mut Node, peer: &ScriptedPeer, item: InvItem, now: u64) -> bool {
    !sent_on(&node.handle(now, peer.says(&announce(item))), peer.link).is_empty()
}

/// An order naming a coin of the node's chain that its proof does not own is refused: not
/// kept, not accepted, and not fetched again when another neighbour announces it (a coin's
/// script never changes). The owner's order on the same coin is taken; an update of it whose
/// new coin's proof is someone else's is refused as the order was.
#[test]
fn an_order_on_a_coin_of_the_chain_that_its_proof_does_not_own_is_refused() {
    let (owner, squatter) = (TestKey::new(60), TestKey::new(61));
    let mut chain = Chain::new(Network::Test);
    let block = block_on(&chain, chain.tip(), vec![], 0, &owner.p2wpkh(), 1);
    let coin = OutPoint::new(block.txdata[0].compute_txid(), 0);
    chain.accept_block(block, (NOW / 1000) as u32).unwrap();
    let mut node = full_node(0, chain, NOW);
    let (first, second) = (ScriptedPeer::new(1), ScriptedPeer::new(2));
    ready(&mut node, &first);
    ready(&mut node, &second);
    let on_coin = |maker: &TestKey, nonce| test_order(maker, NOW, nonce, coin);
    let accepted = |outputs: &[Output], id| events(outputs).contains(&&Event::OrderAccepted(id));
    let held = |node: &Node, id| {
        node.protocol::<MarketRelay>()
            .unwrap()
            .book()
            .get(&id)
            .is_some()
    };

    let squatting = on_coin(&squatter, 1);
    let id = squatting.order.id();
    let item = InvItem::new(InvKind::Order, id.0);
    let outputs = deliver(&mut node, &first, item, &Message::Order(squatting));
    assert!(!accepted(&outputs, id));
    assert!(!held(&node, id));
    assert!(
        ban_of(&outputs).is_none(),
        "a relay that lacked the coin is not blamed"
    );
    assert!(!fetches(&mut node, &second, item, NOW));

    // The owner's order on it, first as a copy whose proof the squatter swapped for its own
    // (refused for its maker's signature, which covers the proofs' keys: the copy does not
    // get the order's id refused), then as it was made.
    let owners = on_coin(&owner, 2);
    let id = owners.order.id();
    let item = InvItem::new(InvKind::Order, id.0);
    let mut mangled = owners.clone();
    mangled.proofs = squatter.prove(&id.0, &[coin]);
    let outputs = deliver(&mut node, &first, item, &Message::Order(mangled));
    assert!(!accepted(&outputs, id));
    let outputs = deliver(&mut node, &second, item, &Message::Order(owners));
    assert!(accepted(&outputs, id));
    assert!(held(&node, id));

    // A fill update of it whose new coin's proof is not the coin's owner's is refused alike.
    let update = owner.sign_update(
        OrderUpdate {
            order: id,
            maker: owner.xonly(),
            sequence: 1,
            change: Change::Fill {
                filled: 1_000_000,
                funding: vec![coin],
            },
        },
        &squatter,
    );
    let item = InvItem::new(InvKind::OrderUpdate, update.update.digest());
    let outputs = deliver(&mut node, &first, item, &Message::OrderUpdate(update));
    assert!(!events(&outputs).contains(&&Event::OrderUpdated(id)));
    let relay = node.protocol::<MarketRelay>().unwrap();
    assert_eq!(relay.book().get(&id).unwrap().sequence, 0);
    assert!(!fetches(&mut node, &second, item, NOW));
}

/// A chain whose first coinbase, `funder`'s, has matured, and a payment of 0.01 BTC from it to
/// `owner` (P2WPKH, output 0) that the chain does not hold.
fn payment_to(funder: &TestKey, owner: &TestKey) -> (Chain, bitcoin::Transaction) {
    let (blocks, payment) = matured_payment(funder, vec![pay(&owner.p2wpkh(), 1_000_000)]);
    let mut chain = Chain::new(Network::Test);
    for block in blocks {
        chain.accept_block(block, (NOW / 1000) as u32).unwrap();
    }
    (chain, payment)
}

/// The fee `tx` pays, which spends `prevouts`.
fn fee_of(tx: &bitcoin::Transaction, prevouts: &[bitcoin::TxOut]) -> u64 {
    let spent: u64 = prevouts.iter().map(|output| output.value.to_sat()).sum();
    spent
        - tx.output
            .iter()
            .map(|output| output.value.to_sat())
            .sum::<u64>()
}

fn relay(node: &Node) -> &MarketRelay {
    node.protocol::<MarketRelay>().unwrap()
}

/// An order whose funding payment has not come waits for it, unannounced and not fetched
/// again, and goes in the book as soon as the payment reaches the mempool; one whose coin
/// comes in a block within [`COINS_WAIT_MILLIS`] goes in with the block; one whose coin comes
/// later is forgotten when the wait is over, not refused, and goes in when a neighbour's
/// holdings bring it again (the time rule keeps it out of gossip). This node's own order on a
/// coin it does not have is refused with the coin.
#[test]
fn an_order_goes_in_the_book_once_its_coins_come_and_is_forgotten_if_they_come_too_late() {
    let (funder, owner) = (TestKey::new(59), TestKey::new(60));
    let (first, second) = (ScriptedPeer::new(1), ScriptedPeer::new(2));
    // A node with both neighbours, and a payment to the owner that it has not seen, and its
    // coin.
    let node_and_payment = || {
        let (chain, payment) = payment_to(&funder, &owner);
        let coin = OutPoint::new(payment.compute_txid(), 0);
        let mut node = full_node(0, chain, NOW);
        ready(&mut node, &first);
        ready(&mut node, &second);
        (node, payment, coin)
    };
    let (mut node, payment, coin) = node_and_payment();

    // Its own order on a coin it does not have: refused, with the coin.
    let own = test_order(&owner, NOW, 1, coin);
    let (submitted, outputs) =
        node.with_protocol::<MarketRelay, _>(NOW, |relay, ctx| relay.submit_order(ctx, own));
    assert_eq!(submitted.unwrap(), Err(SubmitError::CoinNotFound(coin)));
    assert!(events(&outputs).is_empty(), "{outputs:?}");

    // A neighbour's, before its payment: it waits.
    let order = test_order(&owner, NOW, 2, coin);
    let id = order.order.id();
    let item = InvItem::new(InvKind::Order, id.0);
    let outputs = deliver(&mut node, &first, item, &Message::Order(order));
    assert!(!events(&outputs).contains(&&Event::OrderAccepted(id)));
    assert!(relay(&node).is_waiting(&id));
    assert!(relay(&node).book().get(&id).is_none());
    assert!(!relay(&node).holdings(node.chain()).contains(&item));
    assert!(!fetches(&mut node, &second, item, NOW));
    // The payment comes: the order goes in.
    let payment_item = InvItem::new(InvKind::Tx, payment.compute_txid().to_byte_array());
    let outputs = deliver(
        &mut node,
        &first,
        payment_item,
        &Message::Tx(payment.clone()),
    );
    assert!(
        events(&outputs).contains(&&Event::OrderAccepted(id)),
        "{outputs:?}"
    );
    assert!(!relay(&node).is_waiting(&id));
    assert!(relay(&node).book().get(&id).is_some());

    // Another order on a coin of a transaction the mempool never sees, mined in a block.
    let (mut node, payment, coin) = node_and_payment();
    let order = test_order(&owner, NOW, 3, coin);
    let id = order.order.id();
    let outputs = deliver(
        &mut node,
        &first,
        InvItem::new(InvKind::Order, id.0),
        &Message::Order(order),
    );
    assert!(!events(&outputs).contains(&&Event::OrderAccepted(id)));
    let mined_at = NOW + COINS_WAIT_MILLIS - 10_000;
    let passed = pass_time(&mut node, &[&first, &second], NOW, mined_at);
    assert!(!events(&passed).contains(&&Event::OrderAccepted(id)));
    let block = block_with(&node, payment, &funder);
    let (mined, outputs) =
        node.with_protocol::<ChainSync, _>(mined_at, |sync, ctx| sync.submit_block(ctx, block));
    mined.unwrap().unwrap();
    assert!(
        events(&outputs).contains(&&Event::OrderAccepted(id)),
        "{outputs:?}"
    );

    // One whose payment is mined half an hour after it came (the mempool never took it: it
    // paid too little, say): forgotten when the wait is over, not refused.
    let (mut node, payment, coin) = node_and_payment();
    let order = test_order(&owner, NOW, 4, coin);
    let id = order.order.id();
    let item = InvItem::new(InvKind::Order, id.0);
    deliver(&mut node, &first, item, &Message::Order(order.clone()));
    pass_time(
        &mut node,
        &[&first, &second],
        NOW,
        NOW + COINS_WAIT_MILLIS - 10_000,
    );
    assert!(relay(&node).is_waiting(&id), "it waits its while");
    assert!(!fetches(
        &mut node,
        &second,
        item,
        NOW + COINS_WAIT_MILLIS - 10_000
    ));
    let later = NOW + 30 * 60_000;
    pass_time(
        &mut node,
        &[&first, &second],
        NOW + COINS_WAIT_MILLIS,
        later,
    );
    assert!(!relay(&node).is_waiting(&id));
    let block = block_with(&node, payment, &funder);
    let (mined, outputs) =
        node.with_protocol::<ChainSync, _>(later, |sync, ctx| sync.submit_block(ctx, block));
    mined.unwrap().unwrap();
    assert!(!events(&outputs).contains(&&Event::OrderAccepted(id)));
    assert!(relay(&node).book().get(&id).is_none());
    // Announced as new again it is stale by now: the time rule keeps it out.
    first.delivers(&mut node, item, &Message::Order(order.clone()), later);
    assert!(relay(&node).book().get(&id).is_none());
    // A neighbour's holdings bring it: it goes in.
    let outputs = second.delivers_as(
        InvPurpose::Holdings,
        &mut node,
        item,
        &Message::Order(order),
        later,
    );
    assert!(
        events(&outputs).contains(&&Event::OrderAccepted(id)),
        "{outputs:?}"
    );
}

/// A block on `node`'s tip holding `payment`, paying `funder` its reward.
fn block_with(node: &Node, payment: bitcoin::Transaction, funder: &TestKey) -> bitcoin::Block {
    let prevout = node
        .chain()
        .utxo()
        .get(&payment.input[0].previous_output)
        .unwrap()
        .output
        .clone();
    let fee = fee_of(&payment, &[prevout]);
    block_on(
        node.chain(),
        node.chain().tip(),
        vec![payment],
        fee,
        &funder.p2wpkh(),
        99,
    )
}

/// An order whose own coin a swap spent in a block (a new tab syncing the book) goes in on the
/// coin that its maker's fill update names, when that update comes; not before.
#[test]
fn an_order_whose_coin_a_swap_spent_goes_in_on_its_fill_updates_coin() {
    let (funder, owner) = (TestKey::new(59), TestKey::new(60));
    let (mut chain, payment) = payment_to(&funder, &owner);
    let coin = OutPoint::new(payment.compute_txid(), 0);
    // The swap (here a payment of the owner's to itself) spends the coin; its change is the
    // coin that funds the rest of the order. Both are in blocks.
    let mut swap = spend(&[coin], vec![pay(&owner.p2wpkh(), 990_000)]);
    sign_all(&owner, &mut swap, &payment.output);
    let change = OutPoint::new(swap.compute_txid(), 0);
    let fee = 10_000;
    let payment_fee = fee_of(
        &payment,
        &[chain
            .utxo()
            .get(&payment.input[0].previous_output)
            .unwrap()
            .output
            .clone()],
    );
    for (tx, fee, tag) in [(payment, payment_fee, 98), (swap, fee, 99)] {
        let block = block_on(&chain, chain.tip(), vec![tx], fee, &funder.p2wpkh(), tag);
        chain.accept_block(block, (NOW / 1000) as u32).unwrap();
    }
    let mut node = full_node(0, chain, NOW);
    let peer = ScriptedPeer::new(1);
    ready(&mut node, &peer);

    let order = test_order(&owner, NOW, 1, coin);
    let id = order.order.id();
    let amount = order.order.amount;
    deliver(
        &mut node,
        &peer,
        InvItem::new(InvKind::Order, id.0),
        &Message::Order(order),
    );
    assert!(relay(&node).is_waiting(&id), "its own coin is spent");
    let fill = owner.sign_update(
        OrderUpdate {
            order: id,
            maker: owner.xonly(),
            sequence: 1,
            change: Change::Fill {
                filled: amount / 4,
                funding: vec![change],
            },
        },
        &owner,
    );
    let item = InvItem::new(InvKind::OrderUpdate, fill.update.digest());
    let outputs = deliver(&mut node, &peer, item, &Message::OrderUpdate(fill));
    assert!(
        events(&outputs).contains(&&Event::OrderAccepted(id)),
        "{outputs:?}"
    );
    let book = relay(&node).book();
    assert_eq!(book.get(&id).unwrap().remaining(), amount - amount / 4);
    assert!(relay(&node).holdings(node.chain()).contains(&item));
}

/// A coin funds one order of a book: the newest of its owner's (by creation time, then id). A
/// newer order on it replaces the one that held it, cancelled or not, which leaves the book and
/// is not fetched again; an older one is refused. However the orders arrive, nodes end with
/// the same one, and a book holds no more orders than coins, whatever the makers' keys. An
/// order that expired frees its coin.
#[test]
fn a_coin_funds_one_order_the_newest_of_its_owners() {
    let owner = TestKey::new(60);
    let coins = TestCoins::new(&[&owner]);
    let coin = coins.coins[0];
    // Made at NOW, NOW + 2 s and NOW + 1 s: the second is the newest.
    let orders: Vec<SignedOrder> = [(NOW, 1), (NOW + 2_000, 2), (NOW + 1_000, 3)]
        .into_iter()
        .map(|(created, nonce)| test_order(&owner, created, nonce, coin))
        .collect();
    let ids: Vec<OrderId> = orders.iter().map(|order| order.order.id()).collect();
    let item = |n: usize| InvItem::new(InvKind::Order, ids[n].0);
    let book_ids = |node: &Node| -> Vec<OrderId> {
        relay(node)
            .book()
            .orders()
            .map(|view| view.order.id())
            .collect()
    };
    let (first, second) = (ScriptedPeer::new(1), ScriptedPeer::new(2));
    for arrival in [[0, 1, 2], [2, 1, 0], [1, 0, 2]] {
        let mut node = full_node(0, coins.chain(), NOW);
        ready(&mut node, &first);
        ready(&mut node, &second);
        for n in arrival {
            deliver(
                &mut node,
                &first,
                item(n),
                &Message::Order(orders[n].clone()),
            );
            assert_eq!(relay(&node).book().len(), 1, "one coin, one order");
        }
        assert_eq!(book_ids(&node), vec![ids[1]], "arrival {arrival:?}");
        for n in [0, 2] {
            assert!(
                !fetches(&mut node, &second, item(n), NOW),
                "{n} is not fetched again"
            );
        }
    }

    // A flood of orders on the coin under fresh maker keys (the coin's owner proving it for
    // each) leaves one order in the book, the newest.
    let mut node = full_node(0, coins.chain(), NOW);
    ready(&mut node, &first);
    let mut newest = None;
    for n in 0..50 {
        let maker = TestKey::new(1_000 + n);
        let order = test_order(&maker, NOW + n * 100, n, coin).order;
        let order = maker.sign_order(order, &owner);
        newest = Some(order.order.id());
        let item = InvItem::new(InvKind::Order, order.order.id().0);
        deliver(&mut node, &first, item, &Message::Order(order));
    }
    assert_eq!(book_ids(&node), vec![newest.unwrap()]);

    let mut node = full_node(0, coins.chain(), NOW);
    ready(&mut node, &first);
    deliver(
        &mut node,
        &first,
        item(1),
        &Message::Order(orders[1].clone()),
    );
    // The owner's own older order is refused, with the newer one that holds the coin.
    let (older, _) = node.with_protocol::<MarketRelay, _>(NOW, |relay, ctx| {
        relay.submit_order(ctx, orders[2].clone())
    });
    assert_eq!(
        older.unwrap(),
        Err(SubmitError::CoinHeld { coin, by: ids[1] })
    );
    // Cancelled, the order still holds its coin, until the owner places a newer one on it.
    let cancel = owner.sign_update(
        OrderUpdate {
            order: ids[1],
            maker: owner.xonly(),
            sequence: 1,
            change: Change::Cancel,
        },
        &owner,
    );
    let (cancelled, _) =
        node.with_protocol::<MarketRelay, _>(NOW, |relay, ctx| relay.submit_update(ctx, cancel));
    cancelled.unwrap().unwrap();
    let (older, _) = node.with_protocol::<MarketRelay, _>(NOW, |relay, ctx| {
        relay.submit_order(ctx, orders[0].clone())
    });
    assert!(older.unwrap().is_err());
    let again = test_order(&owner, NOW + 3_000, 4, coin);
    let again_id = again.order.id();
    let (placed, outputs) =
        node.with_protocol::<MarketRelay, _>(NOW, |relay, ctx| relay.submit_order(ctx, again));
    assert_eq!(placed.unwrap(), Ok(again_id));
    assert_eq!(book_ids(&node), vec![again_id]);
    assert!(relay(&node).book().update_of(&ids[1]).is_none());
    // The node says so, for its store and views.
    assert!(events(&outputs).contains(&&Event::OrderDropped(ids[1])));

    // It expires: its coin is free again (a debug build checks that no order outside the
    // book holds a coin).
    let expires_at = NOW + 3_000 + 3_600_000;
    let outputs = node.handle(expires_at, Input::Tick);
    assert!(relay(&node).book().is_empty());
    assert!(events(&outputs).contains(&&Event::OrderDropped(again_id)));
    let next = test_order(&owner, expires_at, 5, coin);
    let next_id = next.order.id();
    let (placed, _) = node
        .with_protocol::<MarketRelay, _>(expires_at, |relay, ctx| relay.submit_order(ctx, next));
    assert_eq!(placed.unwrap(), Ok(next_id));
    assert_eq!(book_ids(&node), vec![next_id]);
}

/// The same for a coin that a transaction in the node's mempool makes (the common case: a
/// new order's funding payment travels beside it): the relay reads the mempool protocol's.
#[test]
fn an_order_on_a_coin_of_the_mempool_that_its_proof_does_not_own_is_refused() {
    let (funder, owner, squatter) = (TestKey::new(59), TestKey::new(60), TestKey::new(61));
    let (chain, payment) = payment_to(&funder, &owner);
    let coin = OutPoint::new(payment.compute_txid(), 0);
    let mut node = full_node(0, chain, NOW);
    let (accepted, _) =
        node.with_protocol::<MempoolRelay, _>(NOW, |relay, ctx| relay.submit(ctx, payment));
    accepted.unwrap().unwrap();
    let peer = ScriptedPeer::new(1);
    ready(&mut node, &peer);

    let on_coin = |maker: &TestKey, nonce| test_order(maker, NOW, nonce, coin);
    for (maker, taken) in [(&squatter, false), (&owner, true)] {
        let order = on_coin(maker, 1);
        let id = order.order.id();
        let item = InvItem::new(InvKind::Order, id.0);
        let outputs = deliver(&mut node, &peer, item, &Message::Order(order));
        assert_eq!(
            events(&outputs).contains(&&Event::OrderAccepted(id)),
            taken,
            "{outputs:?}"
        );
    }
}

/// How many times `offend(n)` must be done before the peer is banned (200 at most), and the
/// ban's reason; every peer offends on a fresh node.
fn offences_to_ban(
    mut offend: impl FnMut(&mut Node, &ScriptedPeer, u64) -> Vec<Output>,
) -> (u64, String) {
    let mut node = node();
    let peer = ScriptedPeer::new(1);
    ready(&mut node, &peer);
    for n in 1..=200 {
        let outputs = offend(&mut node, &peer, n);
        if let Some((banned, until, reason)) = ban_of(&outputs) {
            assert_eq!(banned, peer.id());
            assert_eq!(until, NOW + BAN_MILLIS);
            assert!(closed(&outputs, peer.link));
            assert_eq!(
                goodbye(&outputs, peer.link).map(|bye| bye.reason),
                Some(GoodbyeReason::Misbehaviour)
            );
            assert!(node.is_banned(&peer.id()));
            return (n, reason);
        }
    }
    panic!("never banned");
}

/// Every offence costs its score: the peer is banned on the offence that reaches 100.
#[test]
fn each_offence_costs_its_score_up_to_the_ban() {
    let garbage = {
        let mut ping = Message::Ping(1).encode();
        ping.pop();
        ping
    };
    fn routed(ttl: u8, n: u64) -> Routed {
        Routed::sign(
            &Secp256k1::new(),
            &TestKey::new(50).keypair(),
            PeerId::of(&TestKey::new(51).xonly()),
            ttl,
            NOW,
            n,
            RoutedKind::SwapProposal,
            vec![1, 2, 3],
            &[0; 32],
        )
    }
    let chain = Chain::new(Network::Test);
    let miner = TestKey::new(7);
    type Offend = Box<dyn FnMut(&mut Node, &ScriptedPeer, u64) -> Vec<Output>>;
    let cases: Vec<(&str, u64, &str, Offend)> = vec![
        (
            "malformed",
            5,
            "malformed message: ping",
            Box::new(move |node, peer, _| node.handle(NOW, peer.sends(garbage.clone()))),
        ),
        (
            "oversized",
            2,
            "above the size limit",
            Box::new(|node, peer, _| node.handle(NOW, peer.sends(vec![0; MAX_MESSAGE_BYTES + 1]))),
        ),
        (
            "second hello",
            1,
            "a second hello",
            Box::new(|node, peer, _| node.handle(NOW, peer.says(&peer.sign(peer.hello(NOW))))),
        ),
        (
            // 50 pings of burst, then 5 a ping beyond it: the clock stands still.
            "ping flood",
            70,
            "too many control messages",
            Box::new(|node, peer, n| node.handle(NOW, peer.says(&Message::Ping(n)))),
        ),
        (
            "inventory flood",
            // 40,000 items of burst: 40 full messages, then 5 a message.
            60,
            "too many inventory messages",
            Box::new(|node, peer, n| {
                let items = (0..MAX_INVENTORY as u64)
                    .map(|k| {
                        let mut id = [0u8; 32];
                        id[..8].copy_from_slice(&(n * 10_000 + k).to_le_bytes());
                        InvItem::new(InvKind::Block, id)
                    })
                    .collect();
                // Holdings of blocks nobody knows are not fetched: only the budget speaks.
                node.handle(
                    NOW,
                    peer.says(&Message::Inv {
                        purpose: InvPurpose::Holdings,
                        items,
                    }),
                )
            }),
        ),
        (
            "unrequested transaction",
            10,
            "an unrequested transaction",
            Box::new(|node, peer, n| {
                let tx = spend(
                    &[OutPoint::new(Txid::from_byte_array([n as u8; 32]), 0)],
                    vec![pay(&TestKey::new(1).p2wpkh(), 1_000)],
                );
                node.handle(NOW, peer.says(&Message::Tx(tx)))
            }),
        ),
        (
            "unrequested block",
            10,
            "an unrequested block",
            Box::new(move |node, peer, n| {
                let block = block_on(&chain, chain.tip(), vec![], 0, &miner.p2wpkh(), n);
                node.handle(NOW, peer.says(&Message::Block(Box::new(block))))
            }),
        ),
        (
            // The first answers the node's own request made at connection.
            "unrequested headers",
            11,
            "an unrequested headers",
            Box::new(|node, peer, _| {
                let header = Chain::new(Network::Test)
                    .index()
                    .get(&Chain::new(Network::Test).tip())
                    .expect("genesis")
                    .header;
                node.handle(NOW, peer.says(&Message::Headers(vec![header])))
            }),
        ),
        (
            "invalid transaction",
            5,
            "invalid transaction",
            Box::new(|node, peer, n| {
                // More than all the money there is.
                let tx = spend(
                    &[OutPoint::new(Txid::from_byte_array([n as u8; 32]), 0)],
                    vec![pay(
                        &TestKey::new(1).p2wpkh(),
                        Amount::MAX_MONEY.to_sat() + n,
                    )],
                );
                let item = InvItem::new(InvKind::Tx, tx.compute_txid().to_byte_array());
                deliver(node, peer, item, &Message::Tx(tx))
            }),
        ),
        (
            "forged order",
            2,
            "a bad signature on a order",
            Box::new(|node, peer, n| {
                let mut forged = test_order(&TestKey::new(5), NOW, n, OutPoint::null());
                forged.order.nonce += 1_000;
                let item = InvItem::new(InvKind::Order, forged.order.id().0);
                deliver(node, peer, item, &Message::Order(forged))
            }),
        ),
        (
            "forged routed message",
            2,
            "a bad signature on a routed message",
            Box::new(move |node, peer, n| {
                let mut forged = routed(MAX_TTL, n);
                forged.payload.push(0);
                node.handle(NOW, peer.says(&Message::Routed(forged)))
            }),
        ),
        (
            "routed message without hops",
            1,
            "a routed message's ttl",
            Box::new(move |node, peer, n| {
                node.handle(NOW, peer.says(&Message::Routed(routed(0, n))))
            }),
        ),
    ];
    for (case, expected, words, offend) in cases {
        let (count, reason) = offences_to_ban(offend);
        assert_eq!(count, expected, "{case}: banned after {count}");
        assert!(reason.contains(words), "{case}: {reason}");
    }
}

#[test]
fn a_banned_peer_is_refused_until_its_ban_ends() {
    let mut node = node();
    let peer = ScriptedPeer::new(1);
    ready(&mut node, &peer);
    let outputs = node.handle(NOW, peer.says(&peer.sign(peer.hello(NOW))));
    assert!(ban_of(&outputs).is_some());
    node.handle(NOW, Input::LinkDown { link: peer.link });

    // Back an hour later: told it is banned.
    let later = NOW + 3_600_000;
    node.handle(later, peer.link_up(false));
    let outputs = node.handle(later, peer.says(&peer.sign(peer.hello(later))));
    assert_eq!(
        goodbye(&outputs, peer.link).map(|bye| bye.reason),
        Some(GoodbyeReason::Banned)
    );
    node.handle(later, Input::LinkDown { link: peer.link });

    // Back when the ban is over: welcome.
    let over = NOW + BAN_MILLIS;
    node.handle(over, peer.link_up(false));
    assert!(!node.is_banned(&peer.id()));
    let outputs = node.handle(over, peer.says(&peer.sign(peer.hello(over))));
    assert!(events(&outputs)
        .iter()
        .any(|event| matches!(event, Event::PeerReady { .. })));
}

/// Through a node with eight neighbours, each transaction and order is fetched once (from its
/// first announcer), announced once to each of the others, never back to where it came from.
#[test]
fn gossip_fetches_once_and_announces_once_per_link() {
    let workload = RelayWorkload::new(20);
    let mut node = workload.node();
    let mut getdata = 0;
    let mut announced: std::collections::HashMap<(LinkId, InvItem), usize> = Default::default();
    let mut sources = std::collections::HashMap::new();
    let mut accepted = 0;
    for (now, input) in workload.inputs.clone() {
        let from = match &input {
            Input::Received { link, bytes } => {
                if let Ok(Message::Tx(_) | Message::Order(_)) = Message::decode(bytes) {
                    Some(*link)
                } else {
                    None
                }
            }
            _ => None,
        };
        let outputs = node.handle(now, input);
        accepted += events(&outputs)
            .iter()
            .filter(|event| matches!(event, Event::TxAccepted(_) | Event::OrderAccepted(_)))
            .count();
        for output in &outputs {
            let Output::Send { link, bytes } = output else {
                continue;
            };
            match Message::decode(bytes).expect("well-formed") {
                Message::GetData(items) => getdata += items.len(),
                Message::Inv { items, .. } => {
                    for item in items {
                        *announced.entry((*link, item)).or_default() += 1;
                        if let Some(from) = from {
                            sources.insert(item, from);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    assert_eq!(accepted, workload.objects);
    assert_eq!(getdata, workload.objects, "one request per object");
    assert_eq!(
        announced.len(),
        workload.objects * 7,
        "to each other neighbour"
    );
    assert!(announced.values().all(|count| *count == 1), "once per link");
    assert!(announced
        .keys()
        .all(|(link, item)| sources.get(item) != Some(link)));
}

#[test]
fn routed_messages_are_delivered_forwarded_with_one_hop_less_and_deduplicated() {
    let mut node = node();
    let (a, b, c) = (
        ScriptedPeer::new(1),
        ScriptedPeer::new(2),
        ScriptedPeer::new(3),
    );
    for peer in [&a, &b, &c] {
        ready(&mut node, peer);
    }
    let secp = Secp256k1::new();
    let sender = TestKey::new(40);
    let routed = |to: PeerId, nonce: u64| {
        Routed::sign(
            &secp,
            &sender.keypair(),
            to,
            5,
            NOW,
            nonce,
            RoutedKind::DeviceSync,
            vec![nonce as u8],
            &[1; 32],
        )
    };
    // For the node: an event, nothing sent on.
    let outputs = node.handle(NOW, a.says(&Message::Routed(routed(node.id(), 1))));
    assert_eq!(
        events(&outputs),
        vec![&Event::Routed {
            from: PeerId::of(&sender.xonly()),
            kind: RoutedKind::DeviceSync,
            payload: vec![1],
        }]
    );
    // For a neighbour: straight to it, hops unchanged.
    let to_c = routed(c.id(), 2);
    let outputs = node.handle(NOW, a.says(&Message::Routed(to_c.clone())));
    assert_eq!(sent_on(&outputs, c.link), vec![Message::Routed(to_c)]);
    assert!(sent_on(&outputs, b.link).is_empty());
    // For a stranger: flooded to all but the sender, one hop less; a second copy is dropped.
    let far = routed(PeerId::of(&TestKey::new(41).xonly()), 3);
    let outputs = node.handle(NOW, a.says(&Message::Routed(far.clone())));
    let onward = Routed {
        ttl: 4,
        ..far.clone()
    };
    assert!(sent_on(&outputs, a.link).is_empty());
    for peer in [&b, &c] {
        assert_eq!(
            sent_on(&outputs, peer.link),
            vec![Message::Routed(onward.clone())]
        );
    }
    assert!(node.handle(NOW, b.says(&Message::Routed(far))).is_empty());
}

#[test]
fn peer_exchange_lists_the_other_neighbours() {
    let mut node = node();
    let (a, b) = (ScriptedPeer::new(1), ScriptedPeer::new(2));
    ready(&mut node, &a);
    ready(&mut node, &b);
    let outputs = node.handle(NOW, a.says(&Message::GetPeers));
    let [Message::Peers(records)] = &sent_on(&outputs, a.link)[..] else {
        panic!("peers: {outputs:?}");
    };
    let listed: Vec<PeerId> = records.iter().map(|record| record.peer).collect();
    assert_eq!(listed, vec![b.id()]);
}

/// Floods of everything a peer can make a node remember (inventory of unknown objects, routed
/// messages for strangers, peer records) leave every count within its bound.
#[test]
fn floods_leave_the_footprint_within_its_bounds() {
    let mut node = node();
    let peers: Vec<ScriptedPeer> = (1..=8).map(ScriptedPeer::new).collect();
    for peer in &peers {
        ready(&mut node, peer);
    }
    let bounds = Footprint::bounds(&NodeConfig::new(Network::Test));
    let secp = Secp256k1::new();
    let mut now = NOW;
    let mut counter = 0u64;
    let mut unique = || {
        counter += 1;
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&counter.to_le_bytes());
        id
    };
    for round in 0..60u64 {
        now += 100;
        for peer in &peers {
            let items: Vec<InvItem> = (0..MAX_INVENTORY)
                .map(|_| InvItem::new(InvKind::Tx, unique()))
                .collect();
            node.handle(
                now,
                peer.says(&Message::Inv {
                    purpose: InvPurpose::New,
                    items,
                }),
            );
            let records = (0..20)
                .map(|_| bitmesh_core::wire::PeerRecord {
                    peer: PeerId(unique()),
                    features: Default::default(),
                    last_seen_secs: now / 1000,
                })
                .collect();
            node.handle(now, peer.says(&Message::Peers(records)));
            let stranger = PeerId::of(&TestKey::new(10_000 + round).xonly());
            let routed = Routed::sign(
                &secp,
                &TestKey::new(60).keypair(),
                stranger,
                MAX_TTL,
                now,
                round * 100 + peer.link.0,
                RoutedKind::Signal,
                vec![0; 100],
                &[0; 32],
            );
            node.handle(now, peer.says(&Message::Routed(routed)));
        }
        node.handle(now, Input::Tick);
        let footprint = node.footprint();
        assert_eq!(footprint.exceeded(&bounds), None, "{footprint:?}");
    }
    let footprint = node.footprint();
    // The floods did reach the bounds that exist to stop them.
    assert_eq!(footprint.known_peers, bounds.known_peers);
    assert!(footprint.requests > 0);
    assert_eq!(footprint.links, 8, "no neighbour was banned: {footprint:?}");
}

/// A discovered peer is dialed on the next tick; after each failure the next attempt waits
/// twice as long (2 s, 4 s...); with the target of neighbours reached, only a feeler a minute.
#[test]
fn dials_up_to_the_target_and_backs_off_after_failures() {
    let mut node = node();
    let dials = |outputs: &[Output]| -> Vec<PeerId> {
        outputs
            .iter()
            .filter_map(|output| match output {
                Output::Connect { peer } => Some(*peer),
                _ => None,
            })
            .collect()
    };
    let stranger = ScriptedPeer::new(50).id();
    node.handle(NOW, Input::Discovered { peer: stranger });
    assert_eq!(dials(&node.handle(NOW, Input::Tick)), vec![stranger]);
    node.handle(NOW, Input::ConnectFailed { peer: stranger });
    assert_eq!(dials(&node.handle(NOW + 1_999, Input::Tick)), vec![]);
    assert_eq!(
        dials(&node.handle(NOW + 2_000, Input::Tick)),
        vec![stranger]
    );
    node.handle(NOW + 2_000, Input::ConnectFailed { peer: stranger });
    assert_eq!(dials(&node.handle(NOW + 5_999, Input::Tick)), vec![]);
    assert_eq!(
        dials(&node.handle(NOW + 6_000, Input::Tick)),
        vec![stranger]
    );
    node.handle(NOW + 6_000, Input::ConnectFailed { peer: stranger });

    // Eight neighbours (the target): nobody is dialed until the feeler's minute.
    for n in 1..=8 {
        ready(&mut node, &ScriptedPeer::new(n));
    }
    let later = NOW + 20_000;
    assert_eq!(dials(&node.handle(later, Input::Tick)), vec![]);
    assert_eq!(
        dials(&node.handle(NOW + 60_000, Input::Tick)),
        vec![stranger],
        "a feeler"
    );
}

/// What a node knows of peers survives a restart through the driver's store: the records it
/// gives back (neighbours as seen now, then others, newest first) are dialed by a new node that
/// remembers them, and its own id is not remembered.
#[test]
fn known_peers_are_given_back_and_remembered() {
    use bitmesh_core::wire::{Features, PeerRecord};
    let mut node = node();
    let neighbour = ScriptedPeer::new(1);
    ready(&mut node, &neighbour);
    let stranger = ScriptedPeer::new(2).id();
    node.handle(NOW, Input::Discovered { peer: stranger });
    let records = node.known_peers();
    assert_eq!(
        records.iter().map(|record| record.peer).collect::<Vec<_>>(),
        vec![neighbour.id(), stranger]
    );
    assert_eq!(records[0].last_seen_secs, NOW / 1000);
    assert_eq!(records[0].features, Features::ALL);

    let mut restarted = full_node(0, Chain::new(Network::Test), NOW + 5_000);
    let own = PeerRecord {
        peer: restarted.id(),
        features: Features::ALL,
        last_seen_secs: 1,
    };
    restarted.remember(records.iter().copied().chain([own]));
    assert_eq!(restarted.known_peers(), records);
    let mut dialed: Vec<PeerId> = restarted
        .handle(NOW + 5_000, Input::Tick)
        .into_iter()
        .filter_map(|output| match output {
            Output::Connect { peer } => Some(peer),
            _ => None,
        })
        .collect();
    dialed.sort();
    let mut expected = vec![neighbour.id(), stranger];
    expected.sort();
    assert_eq!(dialed, expected);
}

/// A node that stops says goodbye to every neighbour (so they route around it at once rather
/// than when their pings go unanswered), then dials nobody and turns new channels away.
#[test]
fn a_leaving_node_says_goodbye_and_takes_no_new_channel() {
    let mut node = node();
    let neighbours = [ScriptedPeer::new(1), ScriptedPeer::new(2)];
    for peer in &neighbours {
        ready(&mut node, peer);
    }
    let outputs = node.handle(NOW, Input::Leave);
    for peer in &neighbours {
        assert_eq!(
            goodbye(&outputs, peer.link).map(|bye| bye.reason),
            Some(GoodbyeReason::ShuttingDown)
        );
        assert!(closed(&outputs, peer.link));
    }
    for peer in &neighbours {
        node.handle(NOW, Input::LinkDown { link: peer.link });
    }

    let late = ScriptedPeer::new(3);
    let outputs = node.handle(NOW, late.link_up(false));
    assert_eq!(
        goodbye(&outputs, late.link).map(|bye| bye.reason),
        Some(GoodbyeReason::ShuttingDown)
    );
    assert!(closed(&outputs, late.link));

    node.handle(
        NOW,
        Input::Discovered {
            peer: ScriptedPeer::new(4).id(),
        },
    );
    let outputs = node.handle(NOW + 60_000, Input::Tick);
    assert!(
        !outputs
            .iter()
            .any(|output| matches!(output, Output::Connect { .. })),
        "{outputs:?}"
    );
}

/// A neighbour's message for this node that comes through another neighbour means the
/// neighbour no longer takes the direct link for alive (it restarted, or lost it silently):
/// the link is pinged at once and closed if no pong comes within the probe's timeout, long
/// before the regular pong timeout. A link that answers stays.
#[test]
fn a_direct_link_bypassed_by_its_peer_is_probed_and_dropped_if_silent() {
    let secp = Secp256k1::new();
    for answers in [false, true] {
        let mut node = node();
        let (gone, relay) = (ScriptedPeer::new(1), ScriptedPeer::new(2));
        ready(&mut node, &gone);
        ready(&mut node, &relay);
        let routed = Routed::sign(
            &secp,
            &gone.key.keypair(),
            node.id(),
            5,
            NOW,
            7,
            RoutedKind::DeviceSync,
            vec![7],
            &[1; 32],
        );
        let outputs = node.handle(NOW, relay.says(&Message::Routed(routed)));
        assert_eq!(events(&outputs).len(), 1, "delivered: {outputs:?}");
        let [Message::Ping(nonce)] = sent_on(&outputs, gone.link)[..] else {
            panic!("a probe on the bypassed link: {outputs:?}");
        };
        assert!(sent_on(&outputs, relay.link).is_empty());
        if answers {
            node.handle(NOW + 50, gone.says(&Message::Pong(nonce)));
        }
        let later = node.handle(NOW + PROBE_TIMEOUT_MILLIS, Input::Tick);
        assert_eq!(closed(&later, gone.link), !answers, "answers: {answers}");
        assert!(!closed(&later, relay.link));
    }
}
