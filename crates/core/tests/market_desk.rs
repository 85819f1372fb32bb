//! Two traders' desks over real wallets, one chain and one mempool: an ask placed (its coin
//! reserved), a crossing bid that takes part of it through a swap the maker checks, signs and
//! relays, the fill published and mined with both wallets' balances right; a cancel that frees
//! the coins; orders beyond the balance, over-precise or too small refused with nothing changed;
//! an unanswered swap given up with its coins freed and its maker named; a locked maker's
//! answer, which frees them at once and names it too; a dropped swap's fill reopened with its
//! old coin proven again (two dropped swaps of one order in one update; a cancel instead when
//! the old coin went with them; nothing reopened for an order cancelled since); an order on someone else's coins passed over for their
//! owner's.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use bitcoin::secp256k1::Secp256k1;
use bitcoin::{OutPoint, Transaction, TxOut, Txid};
use bitmesh_core::chain::assets::{AssetAmounts, AssetId};
use bitmesh_core::chain::mempool::{Mempool, MempoolConfig};
use bitmesh_core::chain::pow::search_nonce;
use bitmesh_core::chain::state::Chain;
use bitmesh_core::chain::template::build_template;
use bitmesh_core::chain::utxo::Coin;
use bitmesh_core::market::book::{Book, BookLimits};
use bitmesh_core::market::desk::{
    answer_locked, Answer, CancelError, Desk, OrderRequest, Outgoing, PlaceError, Placed,
    PlacedAgain, Retake, TakeOutcome, Trade, UnansweredTake, MAX_RETAKES, PASSED_OVER_WATCH_MILLIS,
};
use bitmesh_core::market::order::{
    Change, Order, OrderError, OrderId, Side, SignedOrder, SignedUpdate, MAX_CLOCK_SKEW_MILLIS,
};
use bitmesh_core::market::record::DeskRecord;
use bitmesh_core::market::swap::{SwapProposal, SwapResponse, REOPEN_DEPTH, SWAP_TIMEOUT_MILLIS};
use bitmesh_core::testkit::{block_on, TestKey};
use bitmesh_core::wallet::build::IssueRequest;
use bitmesh_core::wallet::metadata::{DeviceId, Metadata};
use bitmesh_core::wallet::mnemonic;
use bitmesh_core::wallet::session::{PayError, SendAmount, Wallet};
use bitmesh_core::wallet::tracker::Unit;
use bitmesh_core::wire::{PeerId, RoutedKind};
use bitmesh_core::Network;

const NOW: u32 = 2_000_000_000;
const NOW_MS: u64 = NOW as u64 * 1000;
const AUX: [u8; 32] = [3; 32];
const SUPPLY: u64 = 1_000_000_000;
const HOUR: u64 = 3_600_000;

struct Trader {
    wallet: Wallet,
    desk: Desk,
    peer: PeerId,
}

struct World {
    chain: Chain,
    mempool: Mempool,
    book: Book,
    alice: Trader,
    bob: Trader,
    gold: AssetId,
}

fn trader(seed: u8) -> Trader {
    let words = mnemonic::from_entropy(&[seed; 16]).unwrap();
    let key = TestKey::new(u64::from(seed) + 40).keypair();
    Trader {
        wallet: Wallet::new(
            &words.to_seed_normalized(""),
            Network::Test,
            Metadata::new(),
        )
        .unwrap(),
        desk: Desk::new(key, DeviceId([seed; 16])),
        peer: PeerId::of(&key.x_only_public_key().0),
    }
}

impl World {
    /// Alice and Bob with a matured reward each; Alice issued GOLD (its supply confirmed).
    fn new() -> World {
        let mut world = World {
            chain: Chain::new(Network::Test),
            mempool: Mempool::new(MempoolConfig::default(), 1),
            book: Book::new(BookLimits::default(), 1),
            alice: trader(1),
            bob: trader(2),
            gold: AssetId::from_issuing_outpoint(&OutPoint::null()),
        };
        let payouts = [
            world.alice.wallet.receive_address().script_pubkey(),
            world.bob.wallet.receive_address().script_pubkey(),
        ];
        let maturity = Network::Test.params().coinbase_maturity;
        for n in 0..2 + maturity {
            let payout = payouts
                .get(n as usize)
                .cloned()
                .unwrap_or_else(|| TestKey::new(1).p2wpkh());
            let block = block_on(
                &world.chain,
                world.chain.tip(),
                vec![],
                0,
                &payout,
                n.into(),
            );
            world.chain.accept_block(block, NOW).unwrap();
        }
        world.follow();
        let request = IssueRequest {
            ticker: "GOLD".into(),
            decimals: 8,
            supply: SUPPLY,
        };
        let built = world
            .alice
            .wallet
            .prepare_issue(&request, 1, NOW_MS)
            .unwrap();
        let tx = world.alice.wallet.sign(&built, &AUX);
        world.gold = AssetId::from_issuing_outpoint(&tx.input[0].previous_output);
        world.submit(tx);
        world.mine();
        world
    }

    fn follow(&mut self) {
        for trader in [&mut self.alice, &mut self.bob] {
            trader.wallet.follow(&self.chain, 1_000, 0);
            trader.wallet.follow_mempool(&self.mempool);
            assert_record_reads(&trader.desk);
        }
    }

    fn submit(&mut self, tx: Transaction) {
        self.mempool
            .accept(tx, &mut self.chain, u64::from(NOW))
            .expect("the mempool accepts it");
        self.follow();
    }

    fn mine(&mut self) {
        let payout = TestKey::new(1).p2wpkh();
        let mut block = build_template(&self.chain, &self.mempool, &payout, NOW, 0).block;
        block.header.nonce = search_nonce(&block.header, 0..=u32::MAX).unwrap();
        let accepted = self.chain.accept_block(block, NOW).unwrap();
        self.mempool
            .apply_tip_change(&accepted.change, &mut self.chain, u64::from(NOW));
        self.follow();
    }

    fn request(&self, side: Side, price: u64, amount: u64) -> OrderRequest {
        OrderRequest {
            market: self.gold,
            side,
            price,
            amount,
            lifetime_millis: HOUR,
            sat_per_vb: 2,
        }
    }

    /// Places `request` for Alice or Bob, and submits the payment that funds its rest, as a
    /// driver does.
    fn place(&mut self, alice: bool, request: OrderRequest) -> Result<Placed, PlaceError> {
        let placed = self.place_unpaid(alice, request)?;
        if let Some(tx) = placed.funding_tx.clone() {
            self.submit(tx);
        }
        Ok(placed)
    }

    /// [`World::place`], holding back the payment that funds the rest (as if it had not
    /// reached the other trader yet).
    fn place_unpaid(&mut self, alice: bool, request: OrderRequest) -> Result<Placed, PlaceError> {
        let coin = |outpoint: &OutPoint| self.mempool.coin(&self.chain, outpoint);
        let trader = if alice {
            &mut self.alice
        } else {
            &mut self.bob
        };
        trader
            .desk
            .place(&mut trader.wallet, &self.book, coin, request, NOW_MS, &AUX)
    }

    /// What Bob's desk takes again of what it passed over, at `now_millis`.
    fn take_passed_over(&mut self, now_millis: u64) -> Vec<PlacedAgain> {
        let coin = |outpoint: &OutPoint| self.mempool.coin(&self.chain, outpoint);
        let bob = &mut self.bob;
        bob.desk
            .take_passed_over(&mut bob.wallet, &self.book, coin, now_millis, &AUX)
    }

    /// Places Bob's part of an order again, as [`World::place`] does.
    fn place_again(&mut self, retake: Retake) -> Result<Placed, PlaceError> {
        let coin = |outpoint: &OutPoint| self.mempool.coin(&self.chain, outpoint);
        let bob = &mut self.bob;
        let placed =
            bob.desk
                .place_again(&mut bob.wallet, &self.book, coin, retake, NOW_MS, &AUX)?;
        if let Some(tx) = placed.funding_tx.clone() {
            self.submit(tx);
        }
        Ok(placed)
    }

    /// Alice answers Bob's swap `proposal`: she checks and signs it, her mempool takes it, and
    /// her desk hears so. Returns the swap's txid, the answer to route back, and the fill
    /// update with the trade.
    fn alice_settles(
        &mut self,
        proposal: &Outgoing,
    ) -> (bitcoin::Txid, Outgoing, Option<(SignedUpdate, Trade)>) {
        let coin = |outpoint: &OutPoint| self.mempool.coin(&self.chain, outpoint);
        let answer = self.alice.desk.answer(
            &self.alice.wallet,
            &self.book,
            coin,
            self.bob.peer,
            &proposal.payload,
            NOW_MS,
            &AUX,
        );
        let Answer::Submit(tx) = answer else {
            panic!("Alice signs: {answer:?}");
        };
        let txid = tx.compute_txid();
        self.submit(tx);
        let (response, settled) = self
            .alice
            .desk
            .answered(&mut self.alice.wallet, &txid, Ok(()), NOW_MS, &AUX)
            .unwrap();
        (txid, response, settled)
    }

    /// Alice's ask of 600,000,000 units at 50,000 sat per 10^8, resting in the book: its id,
    /// its coins, and the payment to herself that makes them.
    fn alice_rests_an_ask(&mut self) -> (OrderId, Vec<OutPoint>, Txid) {
        let placed = self
            .place(true, self.request(Side::Ask, 50_000, 600_000_000))
            .unwrap();
        let made_by = placed
            .funding_tx
            .as_ref()
            .expect("a payment makes the ask's coin")
            .compute_txid();
        let ask = placed.resting.unwrap();
        let (id, funding) = (ask.order.id(), ask.order.funding.clone());
        self.publish(ask);
        (id, funding, made_by)
    }

    /// Bob bids for 200,000,000 units at up to 60,000 sat per 10^8 and takes them from Alice's
    /// ask; Alice settles the swap and her fill goes in the book. Returns the swap, Alice's
    /// answer to Bob and her fill update.
    fn bob_takes_part(&mut self) -> (Txid, Outgoing, SignedUpdate) {
        let placed = self
            .place(false, self.request(Side::Bid, 60_000, 200_000_000))
            .unwrap();
        let [proposal] = &placed.proposals[..] else {
            panic!("one proposal: {:?}", placed.proposals);
        };
        let (txid, response, settled) = self.alice_settles(proposal);
        let (fill, _) = settled.expect("Alice settles the swap");
        self.apply(fill.clone());
        (txid, response, fill)
    }

    /// Swaps `dropped` leave the mempool for good, with what spends them, as a node drops them.
    fn drop_swaps(&mut self, dropped: &[Txid]) {
        for txid in dropped {
            self.mempool.remove_with_descendants(txid);
        }
    }

    /// Alice's swap `txid` leaves the chain for good: her desk reopens its fill, and the book
    /// takes the update. Returns the swap (to put back in a block) and the update.
    fn alice_reopens(&mut self, txid: Txid) -> (Transaction, SignedUpdate) {
        let swap = self.mempool.get(&txid).unwrap().tx.as_ref().clone();
        self.drop_swaps(&[txid]);
        self.follow();
        let [reopen] = &self.alice_on_dropped(&[txid])[..] else {
            panic!("one update reopens the fill");
        };
        let reopen = reopen.clone();
        self.apply(reopen.clone());
        (swap, reopen)
    }

    /// What Alice's desk publishes when `dropped` are gone, the coins looked up as now.
    fn alice_on_dropped(&mut self, dropped: &[Txid]) -> Vec<SignedUpdate> {
        let coin = |outpoint: &OutPoint| self.mempool.coin(&self.chain, outpoint);
        let alice = &mut self.alice;
        let updates =
            alice
                .desk
                .on_dropped(&mut alice.wallet, &self.book, coin, dropped, NOW_MS, &AUX);
        assert_record_reads(&alice.desk);
        updates
    }

    /// Alice's or Bob's desk hears that the wallet followed the chain (`caught_up` with it or
    /// not) at `now_millis`: the updates it publishes.
    fn on_chain(&mut self, alice: bool, caught_up: bool, now_millis: u64) -> Vec<SignedUpdate> {
        let trader = if alice {
            &mut self.alice
        } else {
            &mut self.bob
        };
        let updates =
            trader
                .desk
                .on_chain(&mut trader.wallet, &self.book, caught_up, now_millis, &AUX);
        assert_record_reads(&trader.desk);
        updates
    }

    fn publish(&mut self, order: SignedOrder) {
        let verified = order.verify(&Secp256k1::verification_only()).unwrap();
        self.book.insert_order(verified).unwrap();
    }

    fn apply(&mut self, update: SignedUpdate) {
        let verified = update.verify(&Secp256k1::verification_only()).unwrap();
        self.book.apply_update(verified).unwrap();
    }

    fn units(&self, trader: &Trader) -> u64 {
        trader
            .wallet
            .balances()
            .get(&Unit::Asset(self.gold))
            .map_or(0, |balance| balance.confirmed + balance.unconfirmed)
    }
}

/// Whatever a test did so far, a reload would read the desk's record back.
fn assert_record_reads(desk: &Desk) {
    let record = desk.record();
    assert_eq!(DeskRecord::decode(&record.encode()), Ok(record));
}

fn btc(trader: &Trader) -> u64 {
    let balance = trader.wallet.balances()[&Unit::Btc];
    balance.confirmed + balance.unconfirmed
}

#[test]
fn an_ask_is_taken_in_part_settled_mined_and_the_rest_cancelled() {
    let mut w = World::new();
    assert_eq!(w.units(&w.alice), SUPPLY);
    let (alice_btc, bob_btc) = (btc(&w.alice), btc(&w.bob));

    // Alice sells 600,000,000 of her units (all in one coin) at 50,000 sat per 10^8: nothing
    // to take, all of it rests, funded by a coin of exactly 600,000,000 units that a payment to
    // herself makes (the place helper submits it): the other units stay free.
    let placed = w
        .place(true, w.request(Side::Ask, 50_000, 600_000_000))
        .unwrap();
    assert!(placed.proposals.is_empty());
    let funding_tx = placed.funding_tx.expect("a payment makes the order's coin");
    let ask = placed.resting.expect("the order rests");
    let ask_id = ask.order.id();
    let funding = ask.order.funding.clone();
    let [coin] = &funding[..] else {
        panic!("one funding coin: {funding:?}");
    };
    assert_eq!(coin.txid, funding_tx.compute_txid());
    let coin = w.mempool.coin(&w.chain, coin).expect("in the mempool");
    assert_eq!(coin.assets.amount(&w.gold), 600_000_000);
    assert_eq!(w.units(&w.alice), SUPPLY, "she paid herself");
    let split_fee = alice_btc - btc(&w.alice);
    assert!(
        (1..1_000).contains(&split_fee),
        "the payment cost its fee only: {split_fee}"
    );
    let alice_btc = alice_btc - split_fee;
    w.publish(ask);
    // Its coin is held back, the rest is not, before the payment confirms (nobody else could
    // double-spend it): 400,000,000 units can be sent, one more cannot.
    let send_gold = |wallet: &Wallet, units| {
        wallet.prepare_send(
            &wallet.receive_address().to_string(),
            Unit::Asset(w.gold),
            SendAmount::Exact(units),
            1,
            NOW_MS,
        )
    };
    let sent = send_gold(&w.alice.wallet, SUPPLY - 600_000_000);
    assert!(sent.is_ok(), "{sent:?}");
    assert!(send_gold(&w.alice.wallet, SUPPLY - 600_000_000 + 1).is_err());
    assert_eq!(w.alice.desk.my_orders(&w.book).len(), 1);
    assert!(w.bob.desk.my_orders(&w.book).is_empty());

    // Bob bids 60,000 for 200,000,000: it crosses and takes at Alice's price; nothing rests.
    let placed = w
        .place(false, w.request(Side::Bid, 60_000, 200_000_000))
        .unwrap();
    assert_eq!(placed.taking, 200_000_000);
    assert!(placed.resting.is_none() && placed.unplaced.is_none());
    let [proposal] = &placed.proposals[..] else {
        panic!("one proposal: {:?}", placed.proposals);
    };
    assert_eq!(proposal.to, w.alice.peer);
    assert_eq!(proposal.kind, RoutedKind::SwapProposal);
    assert_eq!(w.bob.desk.pending_takes(), 1);

    // Alice checks and signs it; her mempool takes it; she publishes the fill and answers.
    let (txid, response, settled) = w.alice_settles(proposal);
    assert_eq!(response.to, w.bob.peer);
    let (update, trade) = settled.expect("the fill is published");
    assert!(trade.as_maker && !trade.bought);
    assert_eq!((trade.quantity, trade.sats), (200_000_000, 100_000));
    w.apply(update);
    assert_eq!(w.book.get(&ask_id).unwrap().remaining(), 400_000_000);

    let outcome = w
        .bob
        .desk
        .on_response(&mut w.bob.wallet, w.alice.peer, &response.payload, NOW_MS)
        .unwrap();
    let TakeOutcome::Settled { trade, tx } = outcome else {
        panic!("settled: {outcome:?}");
    };
    assert_eq!(tx.compute_txid(), txid);
    assert!(trade.bought && !trade.as_maker);
    assert_eq!(w.bob.desk.pending_takes(), 0);
    assert_eq!(w.bob.desk.trades().count(), 1);

    w.mine();
    assert!(w.on_chain(true, true, NOW_MS).is_empty());
    assert_eq!(w.alice.desk.reopenable_fills(), 1, "one block deep");
    assert_eq!(w.units(&w.alice), SUPPLY - 200_000_000);
    assert_eq!(w.units(&w.bob), 200_000_000);
    assert_eq!(btc(&w.alice), alice_btc + 100_000);
    assert!(
        btc(&w.bob) < bob_btc - 100_000,
        "Bob paid the price and the fee"
    );

    // Six blocks deep the fill is final: Alice's desk forgets it.
    for _ in 1..REOPEN_DEPTH {
        w.mine();
    }
    assert!(w.on_chain(true, true, NOW_MS).is_empty());
    assert_eq!(w.alice.desk.reopenable_fills(), 0, "final");

    // Only Alice can cancel; her cancel frees the coin that funds the rest.
    assert_eq!(
        w.bob
            .desk
            .cancel(&mut w.bob.wallet, &w.book, &ask_id, NOW_MS, &AUX)
            .unwrap_err(),
        CancelError::NotMine
    );
    let cancel = w
        .alice
        .desk
        .cancel(&mut w.alice.wallet, &w.book, &ask_id, NOW_MS, &AUX)
        .unwrap();
    w.apply(cancel);
    assert!(w.alice.desk.my_orders(&w.book).is_empty());
    assert_eq!(
        w.alice
            .desk
            .cancel(&mut w.alice.wallet, &w.book, &ask_id, NOW_MS, &AUX)
            .unwrap_err(),
        CancelError::Closed
    );
    assert_ne!(funding, w.book.get(&ask_id).unwrap().funding);
    let send = w.alice.wallet.prepare_send(
        &w.alice.wallet.receive_address().to_string(),
        Unit::Asset(w.gold),
        SendAmount::Max,
        1,
        NOW_MS,
    );
    assert!(send.is_ok(), "{send:?}");
}

/// A sibling device of Alice's wallet, whose clock runs 20 s ahead, placed an ask on her gold
/// coin and cancelled it. Relays hold a coin for the newest order of its owner's, so Alice's
/// new ask on the coin is dated just after the sibling's, not at her clock's time, which
/// would leave it refused as the older (`SubmitError::CoinHeld`) until the sibling's expired.
#[test]
fn an_order_on_a_coin_a_siblings_order_held_is_dated_after_it() {
    let mut w = World::new();
    let ahead = NOW_MS + 20_000;
    let mut sibling = Desk::new(TestKey::new(99).keypair(), DeviceId([9; 16]));
    let request = w.request(Side::Ask, 50_000, 600_000_000);
    let coin = |outpoint: &OutPoint| w.mempool.coin(&w.chain, outpoint);
    let placed = sibling
        .place(&mut w.alice.wallet, &w.book, coin, request, ahead, &AUX)
        .unwrap();
    if let Some(tx) = placed.funding_tx {
        w.submit(tx);
    }
    let theirs = placed.resting.unwrap();
    let their_id = theirs.order.id();
    w.publish(theirs.clone());
    let cancel = sibling
        .cancel(&mut w.alice.wallet, &w.book, &their_id, ahead, &AUX)
        .unwrap();
    w.apply(cancel);

    let ours = w.place(true, request).unwrap().resting.unwrap().order;
    assert!(
        ours.funding
            .iter()
            .any(|coin| theirs.order.funding.contains(coin)),
        "the same coin funds both: {:?} and {:?}",
        ours.funding,
        theirs.order.funding
    );
    assert_eq!(ours.created_millis, theirs.order.created_millis + 1);
    assert_eq!(
        ours.expiry_millis - ours.created_millis,
        request.lifetime_millis
    );
}

#[test]
fn bad_orders_are_refused_and_change_nothing() {
    let mut w = World::new();
    let before = w.bob.wallet.metadata().clone();
    // Bob bids for more than his BTC can pay (nothing rests to take).
    let err = w
        .place(false, w.request(Side::Bid, 10_000_000_000, 1_000_000_000))
        .unwrap_err();
    assert!(
        matches!(
            err,
            PlaceError::Funding(PayError::OrderUnfunded {
                unit: Unit::Btc,
                ..
            })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("insufficient funds"), "{err}");
    // Bob sells GOLD he does not hold.
    let err = w
        .place(false, w.request(Side::Ask, 50_000, 1_000))
        .unwrap_err();
    assert!(
        matches!(err, PlaceError::Funding(_) | PlaceError::Order(_)),
        "{err:?}"
    );
    // Over-precise: 1 unit at 1 sat per 10^8 is a fraction of a satoshi.
    let err = w.place(false, w.request(Side::Bid, 1, 1)).unwrap_err();
    assert!(
        matches!(err, PlaceError::Order(OrderError::OverPrecise { .. })),
        "{err:?}"
    );
    assert_eq!(
        w.bob.wallet.metadata(),
        &before,
        "nothing reserved or handed out"
    );
    assert!(w.book.is_empty());
}

#[test]
fn an_unanswered_swap_is_given_up_and_its_coins_freed() {
    let mut w = World::new();
    w.alice_rests_an_ask();
    let placed = w
        .place(false, w.request(Side::Bid, 50_000, 200_000_000))
        .unwrap();
    assert_eq!(placed.proposals.len(), 1);
    let spend_all = |wallet: &Wallet, now| {
        wallet.prepare_send(
            &wallet.receive_address().to_string(),
            Unit::Btc,
            SendAmount::Max,
            1,
            now,
        )
    };
    assert!(
        spend_all(&w.bob.wallet, NOW_MS).is_err(),
        "Bob's coins are held for the swap"
    );
    assert!(w.bob.desk.on_tick(&mut w.bob.wallet, NOW_MS + 1).is_empty());
    let silent = w
        .bob
        .desk
        .on_tick(&mut w.bob.wallet, NOW_MS + SWAP_TIMEOUT_MILLIS);
    assert_eq!(silent, vec![w.alice.desk.maker_key()]);
    assert_eq!(w.bob.desk.pending_takes(), 0);
    assert!(
        w.bob.desk.take_retakes().is_empty(),
        "not placed again: Alice holds the signed proposal and may still complete it"
    );
    assert!(
        spend_all(&w.bob.wallet, NOW_MS + 1).is_ok(),
        "freed at once"
    );
}

/// Bob's bid for 200,000,000 units of Alice's resting ask: the swap he proposed, still
/// unanswered.
fn bob_proposes(w: &mut World) -> Outgoing {
    w.alice_rests_an_ask();
    let placed = w
        .place(false, w.request(Side::Bid, 50_000, 200_000_000))
        .unwrap();
    let [proposal] = &placed.proposals[..] else {
        panic!("one proposal: {:?}", placed.proposals);
    };
    proposal.clone()
}

/// Bob gives a swap up unanswered; Alice completes it after all. Bob's desk lists the trade
/// once his wallet sees the transaction.
#[test]
fn a_swap_its_maker_completes_after_the_taker_gave_up_is_listed() {
    let mut w = World::new();
    let proposal = bob_proposes(&mut w);
    let bob = &mut w.bob;
    assert_eq!(
        bob.desk
            .on_tick(&mut bob.wallet, NOW_MS + SWAP_TIMEOUT_MILLIS)
            .len(),
        1
    );
    assert_eq!(bob.desk.unanswered().count(), 1);
    w.on_chain(false, true, NOW_MS + SWAP_TIMEOUT_MILLIS);
    let bob = &w.bob;
    assert_eq!(bob.desk.trades().count(), 0, "nothing traded yet");
    assert_eq!(bob.desk.unanswered().count(), 1, "still watched");

    let (txid, _, _) = w.alice_settles(&proposal);
    w.on_chain(false, true, NOW_MS + SWAP_TIMEOUT_MILLIS);
    let bob = &w.bob;
    let trades: Vec<&Trade> = bob.desk.trades().collect();
    let [trade] = &trades[..] else {
        panic!("Bob's trade is listed: {trades:?}");
    };
    assert_eq!(
        (trade.txid, trade.bought, trade.as_maker, trade.quantity),
        (txid, true, false, 200_000_000)
    );
    assert_eq!(bob.desk.unanswered().count(), 0);
    assert!(bob.desk.record().unanswered.is_empty());
}

/// A reload while Bob's swap waits for Alice: his desk's record keeps it, and the desk made
/// again lists the trade once Alice completes it.
#[test]
fn a_swap_waiting_at_a_reload_is_listed_once_its_maker_completes_it() {
    let mut w = World::new();
    let proposal = bob_proposes(&mut w);
    let record = w.bob.desk.record();
    assert_eq!(record.unanswered.len(), 1, "the swap in flight is kept");
    let mut again = trader(2).desk;
    again.restore(DeskRecord::decode(&record.encode()).unwrap());
    w.bob.desk = again;

    let (txid, _, _) = w.alice_settles(&proposal);
    w.on_chain(false, true, NOW_MS);
    let listed: Vec<Txid> = w.bob.desk.trades().map(|trade| trade.txid).collect();
    assert_eq!(listed, vec![txid]);
}

/// No maker signs a proposal past its order's expiry: once his wallet has caught up with the
/// chain after that, Bob forgets the swap; his record no longer holds it.
#[test]
fn an_unanswered_swap_is_forgotten_once_no_maker_can_sign_it() {
    let mut w = World::new();
    bob_proposes(&mut w);
    let bob = &mut w.bob;
    bob.desk
        .on_tick(&mut bob.wallet, NOW_MS + SWAP_TIMEOUT_MILLIS);
    let [UnansweredTake { until_millis, .. }] = bob.desk.record().unanswered[..] else {
        panic!("one swap watched");
    };
    assert_eq!(
        until_millis,
        NOW_MS + HOUR + MAX_CLOCK_SKEW_MILLIS + SWAP_TIMEOUT_MILLIS,
        "the ask's expiry, the clock skew and a timeout"
    );
    w.on_chain(false, false, until_millis);
    assert_eq!(
        w.bob.desk.unanswered().count(),
        1,
        "the wallet may not have seen it yet"
    );
    w.on_chain(false, true, until_millis - 1);
    assert_eq!(
        w.bob.desk.unanswered().count(),
        1,
        "the maker may still sign"
    );
    w.on_chain(false, true, until_millis);
    assert_eq!(w.bob.desk.unanswered().count(), 0);
    assert!(w.bob.desk.record().unanswered.is_empty());
}

#[test]
fn a_locked_maker_says_so_at_once_and_the_taker_frees_its_coins_and_names_it() {
    let mut w = World::new();
    let (ask_id, _, _) = w.alice_rests_an_ask();
    let placed = w
        .place(false, w.request(Side::Bid, 50_000, 200_000_000))
        .unwrap();
    let [proposal] = &placed.proposals[..] else {
        panic!("one proposal: {:?}", placed.proposals);
    };
    let spend_all = |wallet: &Wallet| {
        wallet.prepare_send(
            &wallet.receive_address().to_string(),
            Unit::Btc,
            SendAmount::Max,
            1,
            NOW_MS,
        )
    };
    assert!(spend_all(&w.bob.wallet).is_err(), "held for the swap");

    // Alice's wallet is locked: she has no desk, and answers without one.
    assert_eq!(answer_locked(w.bob.peer, b"not a proposal"), None);
    let answer = answer_locked(w.bob.peer, &proposal.payload).expect("an answer");
    assert_eq!(answer.to, w.bob.peer);
    assert_eq!(answer.kind, RoutedKind::SwapResponse);

    // Only the maker's answer counts.
    assert_eq!(
        w.bob
            .desk
            .on_response(&mut w.bob.wallet, w.bob.peer, &answer.payload, NOW_MS),
        None
    );
    assert_eq!(w.bob.desk.pending_takes(), 1);
    let outcome = w
        .bob
        .desk
        .on_response(&mut w.bob.wallet, w.alice.peer, &answer.payload, NOW_MS)
        .unwrap();
    assert_eq!(
        outcome,
        TakeOutcome::Unavailable {
            order: ask_id,
            maker: w.alice.desk.maker_key(),
        }
    );
    assert_eq!(w.bob.desk.pending_takes(), 0);
    assert!(spend_all(&w.bob.wallet).is_ok(), "freed at once");
    assert!(
        w.bob
            .desk
            .on_tick(&mut w.bob.wallet, NOW_MS + SWAP_TIMEOUT_MILLIS)
            .is_empty(),
        "nothing left to time out"
    );
    assert_eq!(w.book.get(&ask_id).unwrap().remaining(), 600_000_000);

    // The part it was taking is not lost: placed again with Alice marked unreachable (as the
    // driver marks her), it skips her ask and rests.
    let retakes = w.bob.desk.take_retakes();
    let [retake] = retakes[..] else {
        panic!("one part to place again: {retakes:?}");
    };
    assert!(w.bob.desk.take_retakes().is_empty(), "handed out once");
    assert_eq!(
        retake.request,
        w.request(Side::Bid, 50_000, 200_000_000),
        "the part, on the order's terms"
    );
    w.book
        .mark_unreachable(w.alice.desk.maker_key(), NOW_MS + HOUR);
    let placed = w.place_again(retake).unwrap();
    assert!(placed.proposals.is_empty(), "Alice is skipped");
    let rest = placed.resting.expect("it rests");
    assert_eq!(
        (rest.order.side, rest.order.price, rest.order.amount),
        (Side::Bid, 50_000, 200_000_000)
    );
}

#[test]
fn a_refused_part_is_proposed_again_a_bounded_number_of_times() {
    let mut w = World::new();
    w.alice_rests_an_ask();
    let mut placed = w
        .place(false, w.request(Side::Bid, 50_000, 200_000_000))
        .unwrap();
    // Alice refuses every proposal (a refusal does not mark her): each refused part is
    // proposed to her again, MAX_RETAKES times, and then given up.
    for round in 0..=MAX_RETAKES {
        let [proposal] = &placed.proposals[..] else {
            panic!("round {round}: one proposal: {:?}", placed.proposals);
        };
        let txid = SwapProposal::decode(&proposal.payload)
            .unwrap()
            .tx
            .compute_txid();
        let refusal = SwapResponse::refusal(txid, &"not today").encode();
        let outcome = w
            .bob
            .desk
            .on_response(&mut w.bob.wallet, w.alice.peer, &refusal, NOW_MS)
            .unwrap();
        assert!(
            matches!(outcome, TakeOutcome::Refused { .. }),
            "{outcome:?}"
        );
        let retakes = w.bob.desk.take_retakes();
        if round == MAX_RETAKES {
            assert!(retakes.is_empty(), "given up after {MAX_RETAKES}");
            break;
        }
        let [retake] = retakes[..] else {
            panic!("round {round}: one part again: {retakes:?}");
        };
        placed = w.place_again(retake).unwrap();
    }
    assert_eq!(w.bob.desk.pending_takes(), 0);
}

#[test]
fn a_bid_is_funded_by_a_coin_of_its_value_and_the_rest_stays_free() {
    let mut w = World::new();
    let bob_btc = btc(&w.bob);
    // Bob bids 200,000,000 units at 50,000 sat per 10^8: 100,000 sat, from a reward of far
    // more. A payment to himself makes a coin of exactly that.
    let request = w.request(Side::Bid, 50_000, 200_000_000);
    let placed = w.place(false, request).unwrap();
    let funding_tx = placed.funding_tx.expect("a payment makes the bid's coin");
    let bid = placed.resting.unwrap();
    let funding = bid.order.funding.clone();
    let [outpoint] = funding[..] else {
        panic!("one funding coin: {funding:?}");
    };
    assert_eq!(outpoint.txid, funding_tx.compute_txid());
    let coin = w.mempool.coin(&w.chain, &outpoint).expect("in the mempool");
    assert_eq!(coin.output.value.to_sat(), 100_000);
    assert!(coin.assets.is_empty());
    let fee = bob_btc - btc(&w.bob);
    assert!((1..1_000).contains(&fee), "its fee only: {fee}");
    // The rest is free at once (its change is the wallet's own): all but the bid's coin.
    let send = |wallet: &Wallet, sats| {
        wallet.prepare_send(
            &wallet.receive_address().to_string(),
            Unit::Btc,
            SendAmount::Exact(sats),
            1,
            NOW_MS,
        )
    };
    let free = bob_btc - fee - 100_000;
    let sent = send(&w.bob.wallet, free - 1_000);
    assert!(sent.is_ok(), "{sent:?}");
    assert!(send(&w.bob.wallet, free + 1).is_err());

    // Cancelled and placed again, the bid is funded by the same coin, with no new payment.
    let id = bid.order.id();
    w.publish(bid);
    let cancel = w
        .bob
        .desk
        .cancel(&mut w.bob.wallet, &w.book, &id, NOW_MS, &AUX)
        .unwrap();
    w.apply(cancel);
    let placed = w.place(false, request).unwrap();
    assert!(placed.funding_tx.is_none(), "no second payment");
    assert_eq!(placed.resting.unwrap().order.funding, funding);
}

#[test]
fn an_order_whose_coins_the_taker_cannot_find_is_passed_over_for_the_next() {
    let mut w = World::new();
    // Alice asks 60,000 for 300,000,000 units, then 50,000 (the better price) for as many,
    // whose payment Bob has not received yet: the order came first, as it may on the mesh.
    let dearer = w
        .place(true, w.request(Side::Ask, 60_000, 300_000_000))
        .unwrap()
        .resting
        .unwrap();
    let cheaper = w
        .place_unpaid(true, w.request(Side::Ask, 50_000, 300_000_000))
        .unwrap();
    let payment = cheaper.funding_tx.expect("a payment makes the ask's coin");
    let cheaper = cheaper.resting.unwrap();
    let (dearer_id, cheaper_id) = (dearer.order.id(), cheaper.order.id());
    w.publish(dearer);
    w.publish(cheaper);
    let proposed_order = |placed: &Placed| {
        let [proposal] = &placed.proposals[..] else {
            panic!("one proposal: {:?}", placed.proposals);
        };
        SwapProposal::decode(&proposal.payload).unwrap().order
    };

    // Bob bids 60,000 for 100,000,000: the cheaper ask, whose coin he cannot find, is passed
    // over (before, his bid was refused: "input … is unknown or spent"), the dearer one taken.
    let placed = w
        .place(false, w.request(Side::Bid, 60_000, 100_000_000))
        .unwrap();
    assert_eq!(placed.passed_over, 1);
    assert_eq!(placed.taking, 100_000_000);
    assert_eq!(proposed_order(&placed), dearer_id);
    // (Alice does not answer: Bob's coin, held for the swap, is freed.)
    let silent = w
        .bob
        .desk
        .on_tick(&mut w.bob.wallet, NOW_MS + SWAP_TIMEOUT_MILLIS);
    assert_eq!(silent.len(), 1);
    // A bid that crosses the cheaper ask alone rests, and says what it passed over.
    let placed = w
        .place(false, w.request(Side::Bid, 50_000, 100_000_000))
        .unwrap();
    assert_eq!(placed.passed_over, 1);
    assert!(placed.proposals.is_empty());
    let resting = placed.resting.unwrap();
    assert_eq!(resting.order.amount, 100_000_000);
    let resting_id = resting.order.id();
    w.publish(resting);
    assert!(w.bob.desk.is_watching());
    // While the ask's coin is still not here, the bid rests on.
    assert!(w.take_passed_over(NOW_MS + 1).is_empty());

    // The payment comes: Bob's desk cancels the resting bid and places it again, and it
    // takes the ask it passed over. Once only.
    w.submit(payment);
    let [PlacedAgain {
        cancel,
        request,
        placed,
    }] = &w.take_passed_over(NOW_MS + 2)[..]
    else {
        panic!("the bid placed again");
    };
    assert_eq!(request.amount, 100_000_000);
    assert_eq!(cancel.update.order, resting_id);
    assert_eq!(cancel.update.change, Change::Cancel);
    assert_eq!(placed.passed_over, 0);
    assert_eq!(placed.taking, 100_000_000);
    assert_eq!(proposed_order(placed), cheaper_id);
    assert!(placed.resting.is_none());
    assert!(w.take_passed_over(NOW_MS + 3).is_empty());
    assert!(!w.bob.desk.is_watching());
}

/// A settled swap that leaves the chain and the mempool for good (a reorganisation, the taker
/// double-spending) reopens its fill: Alice's desk signs an update that gives the order back
/// its old coin, proven again by her wallet, which every book takes.
#[test]
fn a_dropped_swap_reopens_its_fill_with_its_old_coin_proven_again() {
    let mut w = World::new();
    let (ask_id, funding, _) = w.alice_rests_an_ask();
    let (txid, _, fill) = w.bob_takes_part();
    assert!(!fill.proofs.is_empty(), "the rest's new coin is proven");
    assert_eq!(w.book.get(&ask_id).unwrap().remaining(), 400_000_000);

    let undone = |w: &World| {
        let mut trades = w.alice.desk.trades().filter(|trade| trade.txid == txid);
        trades.next().expect("Alice's trade").undone
    };
    assert!(!undone(&w));

    let (swap, reopen) = w.alice_reopens(txid);
    assert!(undone(&w), "the trade shows it was undone");
    assert!(
        w.alice.desk.record().settled.is_empty(),
        "no fill of the order is left to reopen"
    );
    assert_eq!(
        reopen.update.change,
        Change::Fill {
            filled: 0,
            funding: funding.clone(),
        }
    );
    assert_eq!(reopen.proofs.len(), funding.len());
    assert_eq!(w.book.get(&ask_id).unwrap().remaining(), 600_000_000);
    assert!(w.alice_on_dropped(&[txid]).is_empty());

    // Another reorganisation puts the swap in a block after all: the trade is done again, and
    // the order filled again as the swap left it.
    w.submit(swap);
    assert!(w.on_chain(true, true, NOW_MS).is_empty());
    assert!(undone(&w), "unconfirmed, it stays undone");
    w.mine();
    let [refill] = &w.on_chain(true, true, NOW_MS)[..] else {
        panic!("one update fills the order again");
    };
    assert!(!undone(&w));
    assert_eq!(refill.update.change, fill.update.change);
    assert_eq!(refill.update.sequence, reopen.update.sequence + 1);
    assert!(!refill.proofs.is_empty(), "the rest's coin is proven again");
    w.apply(refill.clone());
    assert_eq!(w.book.get(&ask_id).unwrap().remaining(), 400_000_000);
    assert!(w.on_chain(true, true, NOW_MS).is_empty(), "once");
    let record = w.alice.desk.record();
    assert!(record.undone.is_empty());
    assert_eq!(
        record.settled.len(),
        1,
        "a third reorganisation could undo it again"
    );
    // A report of its drop that comes now, late, changes nothing.
    assert!(w.alice_on_dropped(&[txid]).is_empty());
    assert!(!undone(&w));
}

/// A reload: Alice's desk is made anew from the record it kept. It lists her trade, and still
/// reopens the fill when the swap leaves the chain; Bob's lists his.
#[test]
fn a_desk_made_again_from_its_record_keeps_its_trades_and_reopens_a_dropped_swap() {
    let mut w = World::new();
    let (ask_id, funding, _) = w.alice_rests_an_ask();
    let (txid, response, _) = w.bob_takes_part();
    let bob = &mut w.bob;
    let outcome = bob
        .desk
        .on_response(&mut bob.wallet, w.alice.peer, &response.payload, NOW_MS);
    assert!(matches!(outcome, Some(TakeOutcome::Settled { .. })));

    for (party, seed) in [(&mut w.alice, 1u8), (&mut w.bob, 2)] {
        let kept = party.desk.record();
        assert_eq!(kept.trades.len(), 1);
        let bytes = kept.encode();
        let read = DeskRecord::decode(&bytes).expect("the desk reads what it wrote");
        assert_eq!(read, kept);
        let mut again = trader(seed).desk;
        again.restore(read);
        assert_eq!(
            again.trades().collect::<Vec<_>>(),
            party.desk.trades().collect::<Vec<_>>()
        );
        party.desk = again;
    }

    let (swap, reopen) = w.alice_reopens(txid);
    assert_eq!(reopen.update.change, Change::Fill { filled: 0, funding });
    assert_eq!(w.book.get(&ask_id).unwrap().remaining(), 600_000_000);

    // Reloaded again, Alice's desk still fills the order again when the swap comes back.
    let record = DeskRecord::decode(&w.alice.desk.record().encode()).unwrap();
    assert_eq!(record.undone.len(), 1);
    w.alice.desk = trader(1).desk;
    w.alice.desk.restore(record);
    w.submit(swap);
    w.mine();
    let [refill] = &w.on_chain(true, true, NOW_MS)[..] else {
        panic!("the desk made again fills the order again");
    };
    w.apply(refill.clone());
    assert_eq!(w.book.get(&ask_id).unwrap().remaining(), 400_000_000);
}

/// Bob takes part of Alice's reopened ask again, on the coin the undoing gave back; then a
/// reorganisation mines the first swap and drops the second (they spend the same coin). Alice's
/// order is filled again as the first swap left it, and the second's drop reopens nothing.
#[test]
fn an_undone_swap_back_in_a_block_replaces_the_fill_made_since() {
    let mut w = World::new();
    let (ask_id, _, _) = w.alice_rests_an_ask();
    let (first, _, fill) = w.bob_takes_part();
    let (swap, _) = w.alice_reopens(first);
    // Bob heard nothing back: his swap's coins are his again at its timeout.
    let bob = &mut w.bob;
    bob.desk
        .on_tick(&mut bob.wallet, NOW_MS + SWAP_TIMEOUT_MILLIS);
    let (second, _, _) = w.bob_takes_part();
    assert_eq!(w.book.get(&ask_id).unwrap().remaining(), 400_000_000);

    w.drop_swaps(&[second]);
    w.submit(swap);
    w.mine();
    let [refill] = &w.on_chain(true, true, NOW_MS)[..] else {
        panic!("one update fills the order as the first swap left it");
    };
    assert_eq!(refill.update.change, fill.update.change);
    w.apply(refill.clone());
    assert_eq!(w.book.get(&ask_id).unwrap().remaining(), 400_000_000);
    assert!(
        w.alice_on_dropped(&[second]).is_empty(),
        "the second swap's fill is gone with it: nothing to reopen"
    );
    let trades: Vec<(Txid, bool)> = w
        .alice
        .desk
        .trades()
        .map(|trade| (trade.txid, trade.undone))
        .collect();
    assert_eq!(trades, vec![(first, false), (second, true)]);
}

/// An order its maker cancelled after its swap was undone stays cancelled when the swap comes
/// back in a block, and the desk keeps nothing of it to fill again.
#[test]
fn an_undone_fill_of_an_order_cancelled_since_is_not_filled_again() {
    let mut w = World::new();
    let (ask_id, _, _) = w.alice_rests_an_ask();
    let (txid, _, _) = w.bob_takes_part();
    let (swap, _) = w.alice_reopens(txid);
    let cancel = w
        .alice
        .desk
        .cancel(&mut w.alice.wallet, &w.book, &ask_id, NOW_MS, &AUX)
        .unwrap();
    w.apply(cancel);
    w.submit(swap);
    w.mine();
    assert!(w.on_chain(true, true, NOW_MS).is_empty());
    assert!(w.book.get(&ask_id).unwrap().cancelled);
    assert!(w.alice.desk.record().undone.is_empty());
}

/// Alice cancels what rests of her ask after a swap took part of it, and the swap then leaves
/// the chain: her cancel stands (nothing reopens an order its maker withdrew), and the coin
/// the swap had spent is hers to spend again, no longer held for the order.
#[test]
fn a_dropped_swap_of_a_cancelled_order_reopens_nothing_and_frees_its_coin() {
    let mut w = World::new();
    let (ask_id, funding, _) = w.alice_rests_an_ask();
    let (txid, _, _) = w.bob_takes_part();
    let alice = &mut w.alice;
    let cancel = alice
        .desk
        .cancel(&mut alice.wallet, &w.book, &ask_id, NOW_MS, &AUX)
        .unwrap();
    w.apply(cancel);
    let held = |w: &World| {
        funding.iter().any(|coin| {
            w.alice
                .wallet
                .metadata()
                .reservation(coin, NOW_MS)
                .is_some()
        })
    };
    assert!(held(&w), "placing held the coin until the order's expiry");

    w.drop_swaps(&[txid]);
    w.follow();
    let updates = w.alice_on_dropped(&[txid]);
    assert!(updates.is_empty(), "the cancel stands: {updates:?}");
    assert_eq!(w.book.get(&ask_id).unwrap().remaining(), 0);
    assert!(!held(&w), "the coin is free again");
}

/// A swap of an order that has expired since leaves the chain: there is nothing to reopen, and
/// the desk forgets the fill rather than keep it in its record for good.
#[test]
fn a_dropped_swap_of_an_expired_order_is_forgotten() {
    let mut w = World::new();
    let (ask_id, _, _) = w.alice_rests_an_ask();
    let (txid, _, _) = w.bob_takes_part();
    assert_eq!(w.alice.desk.reopenable_fills(), 1);
    assert_eq!(w.book.expire(NOW_MS + HOUR), [ask_id]);

    w.drop_swaps(&[txid]);
    w.follow();
    assert!(w.alice_on_dropped(&[txid]).is_empty());
    assert_eq!(w.alice.desk.reopenable_fills(), 0);
    assert!(w.alice.desk.record().settled.is_empty());
}

/// Two swaps settled on one order leave the chain together, the second named first: one
/// update reopens both fills on the order's first coin (two updates of one sequence number,
/// one per swap, would disagree, and books would keep either).
#[test]
fn two_dropped_swaps_of_one_order_reopen_both_fills_in_one_update_whatever_their_order() {
    let mut w = World::new();
    let (ask_id, funding, _) = w.alice_rests_an_ask();
    let txids: Vec<Txid> = (0..2).map(|_| w.bob_takes_part().0).collect();
    assert_eq!(w.book.get(&ask_id).unwrap().remaining(), 200_000_000);

    w.drop_swaps(&txids);
    let reopens = w.alice_on_dropped(&[txids[1], txids[0]]);
    let [reopen] = &reopens[..] else {
        panic!("one update reopens both fills: {reopens:?}");
    };
    assert_eq!(
        reopen.update.change,
        Change::Fill {
            filled: 0,
            funding: funding.clone(),
        }
    );
    w.apply(reopen.clone());
    assert_eq!(w.book.get(&ask_id).unwrap().remaining(), 600_000_000);
}

/// Alice's ask on the coin of a payment of hers, taken in part by a swap that spends that
/// coin; neither is mined and both expire from the mempool. Returns the ask and what expired.
fn an_ask_and_its_swap_expire(w: &mut World) -> (OrderId, Txid, Vec<Txid>) {
    let (ask_id, funding, made_by) = w.alice_rests_an_ask();
    assert!(funding.iter().all(|coin| coin.txid == made_by));
    let (txid, _, _) = w.bob_takes_part();
    let expiry_secs = MempoolConfig::default().expiry_secs;
    let expired = w.mempool.expire(u64::from(NOW) + expiry_secs + 1);
    assert!(expired.contains(&made_by) && expired.contains(&txid));
    (ask_id, made_by, expired)
}

/// A dropped swap whose order's coin went with it (the payment that made the coin expired
/// from the mempool, which the wallet has not followed yet, so it can still prove the coin):
/// Alice's desk withdraws the order with a cancel rather than reopen it on a coin nobody can
/// find.
#[test]
fn a_dropped_swap_whose_orders_coin_went_with_it_cancels_the_order() {
    let mut w = World::new();
    let (ask_id, _, expired) = an_ask_and_its_swap_expire(&mut w);
    let updates = w.alice_on_dropped(&expired);
    let [withdraw] = &updates[..] else {
        panic!("one update: {updates:?}");
    };
    assert_eq!(withdraw.update.change, Change::Cancel);
    assert!(withdraw.proofs.is_empty());
    w.apply(withdraw.clone());
    assert_eq!(w.book.get(&ask_id).unwrap().remaining(), 0);
}

/// The reopening update's coins are proven by the wallet; should it not know one (here it
/// forgot the expired payment, while the desk is shown the coins as they were), the desk
/// withdraws the order rather than publish a coin without its proof.
#[test]
fn a_reopened_fill_whose_coin_the_wallet_cannot_prove_is_withdrawn() {
    let mut w = World::new();
    let (ask_id, made_by, expired) = an_ask_and_its_swap_expire(&mut w);
    w.follow();
    assert!(w.alice.wallet.tracker().unconfirmed_tx(&made_by).is_none());
    let as_they_were = |_: &OutPoint| {
        Some(Coin {
            output: TxOut::NULL,
            height: 0,
            is_coinbase: false,
            assets: AssetAmounts::default(),
        })
    };
    let alice = &mut w.alice;
    let updates = alice.desk.on_dropped(
        &mut alice.wallet,
        &w.book,
        as_they_were,
        &expired,
        NOW_MS,
        &AUX,
    );
    let [withdraw] = &updates[..] else {
        panic!("one update: {updates:?}");
    };
    assert_eq!(withdraw.update.change, Change::Cancel);
    w.apply(withdraw.clone());
    assert_eq!(w.book.get(&ask_id).unwrap().remaining(), 0);
}

/// Someone names Alice's coins as the funding of a better ask of its own, proving them with
/// its own key (the signatures verify: nobody can tell before looking the coins up). Bob's
/// desk finds the coins locked to Alice's key, not the squatter's: it passes the squatter's
/// ask over and takes Alice's, instead of proposing a swap that could never settle.
#[test]
fn an_order_on_someone_elses_coins_is_passed_over_for_their_owners() {
    let mut w = World::new();
    let honest = w
        .place(true, w.request(Side::Ask, 60_000, 300_000_000))
        .unwrap()
        .resting
        .unwrap();
    let squatter = TestKey::new(77);
    let squatting = squatter.sign_order(
        Order {
            price: 50_000,
            nonce: 1,
            maker: squatter.xonly(),
            receive: squatter.p2wpkh(),
            change: squatter.p2wpkh(),
            ..honest.order.clone()
        },
        &squatter,
    );
    let honest_id = honest.order.id();
    w.publish(honest);
    w.publish(squatting);

    let placed = w
        .place(false, w.request(Side::Bid, 60_000, 100_000_000))
        .unwrap();
    assert_eq!(placed.passed_over, 1);
    assert_eq!(placed.taking, 100_000_000);
    let [proposal] = &placed.proposals[..] else {
        panic!("one proposal: {:?}", placed.proposals);
    };
    assert_eq!(
        SwapProposal::decode(&proposal.payload).unwrap().order,
        honest_id
    );
}

#[test]
fn orders_passed_over_are_watched_for_a_bounded_time() {
    let mut w = World::new();
    // Alice's ask on a payment Bob never receives; Bob's bid crossing it rests.
    let ask = w
        .place_unpaid(true, w.request(Side::Ask, 50_000, 300_000_000))
        .unwrap();
    let payment = ask.funding_tx.unwrap();
    w.publish(ask.resting.unwrap());
    let bid = w
        .place(false, w.request(Side::Bid, 50_000, 100_000_000))
        .unwrap();
    assert_eq!(bid.passed_over, 1);
    w.publish(bid.resting.unwrap());
    // The watch lapses; the payment that comes after it changes nothing.
    assert!(w
        .take_passed_over(NOW_MS + PASSED_OVER_WATCH_MILLIS)
        .is_empty());
    w.submit(payment);
    assert!(w
        .take_passed_over(NOW_MS + PASSED_OVER_WATCH_MILLIS)
        .is_empty());
}
