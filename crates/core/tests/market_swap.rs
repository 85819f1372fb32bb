//! Trading end to end in the core: two wallets, an asset issued, orders signed and merged into
//! each side's book, matched, and settled as one transaction the chain accepts — and every way a
//! taker could try to cheat refused or made harmless.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use bitcoin::secp256k1::Secp256k1;
use bitcoin::{FeeRate, OutPoint, ScriptBuf, Transaction, Txid};
use bitmesh_core::chain::assets::AssetId;
use bitmesh_core::chain::mempool::{Mempool, MempoolConfig, MempoolError};
use bitmesh_core::chain::pow::search_nonce;
use bitmesh_core::chain::state::{Chain, TipChange};
use bitmesh_core::chain::template::build_template;
use bitmesh_core::chain::tx::TxError;
use bitmesh_core::chain::utxo::Coin;
use bitmesh_core::market::book::{Book, BookLimits};
use bitmesh_core::market::order::{
    FundingProof, Order, OrderId, Side, SignedOrder, SignedUpdate, VerifiedOrder, VERSION,
};
use bitmesh_core::market::swap::{
    check_proposal, fill_terms, Maker, SwapError, SwapProposal, SwapResponse, TakerState,
    TakerSwap, SWAP_TIMEOUT_MILLIS,
};
use bitmesh_core::testkit::{block_on, SwapFixture, TestKey, SWAP_NOW_MILLIS};
use bitmesh_core::wallet::build::{
    build_issuance, build_swap, build_sweep, sign, sign_inputs, spendable, BuiltTx, ForeignCoin,
    IssueRequest, SwapTerms,
};
use bitmesh_core::wallet::keys::{Account, Keychain, Purpose};
use bitmesh_core::wallet::metadata::{DeviceId, Metadata, Stamp};
use bitmesh_core::wallet::mnemonic;
use bitmesh_core::wallet::tracker::{Tracker, Unit};
use bitmesh_core::Network;

const NOW: u32 = 2_000_000_000;
const NOW_MS: u64 = NOW as u64 * 1000;
const AUX: [u8; 32] = [0x5a; 32];
const SUPPLY: u64 = 1_000_000_000;

fn fee_rate() -> FeeRate {
    FeeRate::from_sat_per_kwu(500)
}

/// The network both wallets follow: one chain and one mempool.
struct World {
    chain: Chain,
    mempool: Mempool,
}

/// A trader: wallet, metadata, its copy of the book, and its peer key (which signs orders).
struct Party {
    tracker: Tracker,
    metadata: Metadata,
    book: Book,
    key: TestKey,
    device: DeviceId,
}

impl World {
    fn coin(&self, outpoint: &OutPoint) -> Option<Coin> {
        self.mempool.coin(&self.chain, outpoint)
    }

    /// Relays `tx` and shows it to both wallets.
    fn submit(&mut self, tx: &Transaction, parties: &mut [&mut Party]) -> Result<(), MempoolError> {
        self.mempool
            .accept(tx.clone(), &mut self.chain, u64::from(NOW))?;
        for party in parties {
            party.tracker.mempool_added(tx, 1);
        }
        Ok(())
    }

    /// Mines the mempool into a block on the tip.
    fn mine(&mut self, parties: &mut [&mut Party]) -> Transaction {
        let payout = TestKey::new(77).p2wpkh();
        let mut block = build_template(&self.chain, &self.mempool, &payout, NOW, 0).block;
        block.header.nonce = search_nonce(&block.header, 0..=u32::MAX).unwrap();
        self.accept(block.clone(), parties);
        block.txdata[0].clone()
    }

    /// Accepts a block and has the mempool and both wallets follow the tip; returns the
    /// transactions that left for good (neither in the chain nor back in the mempool).
    fn accept(&mut self, block: bitcoin::Block, parties: &mut [&mut Party]) -> Vec<Txid> {
        let accepted = self.chain.accept_block(block, NOW).unwrap();
        assert!(accepted.invalid.is_empty(), "{:?}", accepted.invalid);
        let dropped =
            self.mempool
                .apply_tip_change(&accepted.change, &mut self.chain, u64::from(NOW));
        follow(&accepted.change, self.chain.height(), parties);
        for party in parties {
            for txid in &dropped {
                party.tracker.mempool_removed(txid);
            }
        }
        dropped
    }
}

fn follow(change: &TipChange, tip: u32, parties: &mut [&mut Party]) {
    let fork = tip - change.connected.len() as u32;
    for party in parties {
        for (n, block) in change.disconnected.iter().enumerate() {
            let height = fork + (change.disconnected.len() - n) as u32;
            party.tracker.disconnect_block(block, height, 1);
        }
        for (n, block) in change.connected.iter().enumerate() {
            party.tracker.connect_block(block, fork + 1 + n as u32);
        }
    }
}

impl Party {
    fn new(seed: u8, purpose: Purpose) -> Party {
        let seed_bytes = mnemonic::from_entropy(&[seed; 16])
            .unwrap()
            .to_seed_normalized("");
        let account = Account::for_bitmesh(&seed_bytes, purpose, Network::Test).unwrap();
        Party {
            tracker: Tracker::new(vec![account], Network::Test.params().coinbase_maturity),
            metadata: Metadata::new(),
            book: Book::new(BookLimits::default(), 1),
            key: TestKey::new(u64::from(seed) + 100),
            device: DeviceId([seed; 16]),
        }
    }

    fn accounts(&self) -> &[Account] {
        self.tracker.accounts()
    }

    /// Proofs that this wallet owns `coins` (which it follows), for what `named_by` names.
    fn prove(&self, named_by: &[u8; 32], coins: &[OutPoint]) -> Vec<FundingProof> {
        let secp = Secp256k1::new();
        coins
            .iter()
            .map(|coin| {
                let (account, keychain, index) = self.tracker.key_of(coin).unwrap();
                let owner = self.accounts()[account].signing_keypair(keychain, index);
                FundingProof::sign(&secp, named_by, coin, &owner, &AUX)
            })
            .collect()
    }

    fn script(&self, index: u32) -> ScriptBuf {
        self.accounts()[0].script_pubkey(Keychain::External, index)
    }

    fn coins(&self) -> Vec<bitmesh_core::wallet::tracker::OwnedOutput> {
        spendable(
            &self.tracker,
            &self.metadata,
            NOW_MS,
            Network::Test.params().coinbase_maturity,
        )
    }

    fn btc(&self) -> u64 {
        let balance = self.tracker.balances()[&Unit::Btc];
        balance.confirmed + balance.unconfirmed
    }

    fn units(&self, asset: AssetId) -> u64 {
        self.tracker
            .balances()
            .get(&Unit::Asset(asset))
            .map_or(0, |balance| balance.confirmed + balance.unconfirmed)
    }

    fn stamp(&self) -> Stamp {
        Stamp {
            millis: NOW_MS,
            device: self.device,
        }
    }
}

/// Alice (P2WPKH) and Bob (P2TR), each with two mature coinbases; Alice issued GOLD and Bob
/// SILVER.
struct Market {
    world: World,
    alice: Party,
    bob: Party,
    alice_maker: Maker,
    gold: AssetId,
    silver: AssetId,
}

impl Market {
    fn new() -> Market {
        let mut world = World {
            chain: Chain::new(Network::Test),
            mempool: Mempool::new(MempoolConfig::default(), 1),
        };
        let mut alice = Party::new(1, Purpose::Bip84);
        let mut bob = Party::new(2, Purpose::Bip86);
        let maturity = Network::Test.params().coinbase_maturity;
        let payouts = [
            alice.script(0),
            alice.script(0),
            bob.script(0),
            bob.script(0),
        ];
        for (n, payout) in payouts.iter().enumerate() {
            let block = block_on(&world.chain, world.chain.tip(), vec![], 0, payout, n as u64);
            world.accept(block, &mut [&mut alice, &mut bob]);
        }
        for _ in 0..maturity {
            world.mine(&mut [&mut alice, &mut bob]);
        }
        let gold = issue(&mut world, &mut alice, &mut bob, "GOLD");
        let silver = issue(&mut world, &mut bob, &mut alice, "SILVER");
        world.mine(&mut [&mut alice, &mut bob]);
        assert_eq!(alice.units(gold), SUPPLY);
        assert_eq!(bob.units(silver), SUPPLY);
        Market {
            world,
            alice,
            bob,
            alice_maker: Maker::new(),
            gold,
            silver,
        }
    }

    /// Alice signs an order funded by `funding`, reserves those coins, and both books take it.
    fn alice_order(
        &mut self,
        side: Side,
        price: u64,
        amount: u64,
        funding: Vec<OutPoint>,
    ) -> OrderId {
        let order = Order {
            market: self.gold,
            side,
            price,
            amount,
            created_millis: NOW_MS,
            expiry_millis: NOW_MS + 3_600_000,
            nonce: 0,
            maker: self.alice.key.xonly(),
            funding: funding.clone(),
            receive: self.alice.script(1),
            change: self.alice.script(2),
        };
        let secp = Secp256k1::new();
        let proofs = self.alice.prove(&order.id().0, &order.funding);
        let verified = SignedOrder::sign(&secp, order, &self.alice.key.keypair(), proofs, &AUX)
            .verify(&secp)
            .unwrap();
        for coin in funding {
            let stamp = self.alice.stamp();
            self.alice
                .metadata
                .reserve(coin, self.alice.device, NOW_MS + 3_600_000, stamp);
        }
        publish_order(&mut [&mut self.alice, &mut self.bob], &verified);
        verified.id()
    }

    /// Alice's GOLD coin (the whole supply, or what is left of it).
    fn alice_gold_coin(&self) -> OutPoint {
        self.alice
            .tracker
            .unspent()
            .into_iter()
            .find(|coin| coin.assets.amount(&self.gold) > 0)
            .unwrap()
            .outpoint
    }

    /// Bob's side of a fill of `quantity` of `order`: terms from his book and chain view
    /// (changed by `tweak`, for the tests of cheating), built, signed, coins reserved.
    fn bob_proposes(
        &mut self,
        order: OrderId,
        quantity: u64,
        tweak: impl FnOnce(&mut SwapTerms, &Market),
    ) -> (TakerSwap, BuiltTx) {
        let view = self.bob.book.get(&order).unwrap();
        let maker_coins: Vec<ForeignCoin> = view
            .funding
            .iter()
            .map(|outpoint| {
                let coin = self.world.coin(outpoint).unwrap();
                ForeignCoin {
                    outpoint: *outpoint,
                    txout: coin.output,
                    assets: coin.assets,
                }
            })
            .collect();
        let mut terms = fill_terms(&view, &maker_coins, quantity, self.bob.script(5)).unwrap();
        let sequence = view.sequence;
        tweak(&mut terms, self);
        let built = build_swap(
            &self.bob.coins(),
            &terms,
            fee_rate(),
            self.bob.accounts(),
            (0, 6),
            (0, 0),
        )
        .unwrap();
        let tx = sign(&built, self.bob.accounts(), &AUX);
        let mine = built.own_coins();
        for coin in &mine {
            let stamp = self.bob.stamp();
            self.bob
                .metadata
                .reserve(*coin, self.bob.device, NOW_MS + SWAP_TIMEOUT_MILLIS, stamp);
        }
        let proposal = SwapProposal {
            order,
            sequence,
            quantity,
            tx,
        };
        (TakerSwap::new(proposal, mine, NOW_MS), built)
    }

    /// Alice answers a proposal as a maker does: check, sign her inputs, relay, publish.
    /// Bob proposes an honest fill of `quantity`, Alice answers, and Bob's swap takes her
    /// answer: Bob's swap, what he built, and whether his side of it is settled.
    fn bob_takes(&mut self, order: OrderId, quantity: u64) -> (TakerSwap, BuiltTx, bool) {
        let (mut swap, built) = self.bob_proposes(order, quantity, |_, _| {});
        let response = self.alice_answers(&swap.proposal).unwrap();
        let settled = matches!(swap.on_response(response).unwrap(), TakerState::Settled(_));
        (swap, built, settled)
    }

    fn alice_answers(&mut self, proposal: &SwapProposal) -> Result<SwapResponse, SwapError> {
        let view = self.alice.book.get(&proposal.order).unwrap();
        let world = &self.world;
        let tracker = &self.alice.tracker;
        let checked = self.alice_maker.on_proposal(
            &view,
            proposal,
            |outpoint| world.coin(outpoint),
            |outpoint| tracker.key_of(outpoint).is_some(),
            NOW_MS,
        )?;
        let prevouts: Vec<bitcoin::TxOut> = proposal
            .tx
            .input
            .iter()
            .map(|txin| world.coin(&txin.previous_output).unwrap().output)
            .collect();
        let ours: Vec<_> = checked
            .maker_inputs
            .iter()
            .map(|(input, outpoint)| (*input, tracker.key_of(outpoint).unwrap()))
            .collect();
        let signed = sign_inputs(&proposal.tx, &prevouts, &ours, self.alice.accounts(), &AUX);
        if let Err(err) = self
            .world
            .submit(&signed, &mut [&mut self.alice, &mut self.bob])
        {
            self.alice_maker.fail(&checked.txid);
            return Ok(SwapResponse::refusal(checked.txid, &err));
        }
        let update = self.alice_maker.settle(&checked.txid).unwrap();
        self.alice_publishes(update);
        Ok(SwapResponse::Accepted(signed))
    }

    fn alice_publishes(&mut self, update: bitmesh_core::market::order::OrderUpdate) {
        let secp = Secp256k1::new();
        let proofs = self.alice.prove(&update.digest(), update.change.funding());
        let verified = SignedUpdate::sign(&secp, update, &self.alice.key.keypair(), proofs, &AUX)
            .verify(&secp)
            .unwrap();
        for book in [&mut self.alice.book, &mut self.bob.book] {
            book.apply_update(verified.clone()).unwrap();
        }
    }

    fn mine(&mut self) {
        self.world.mine(&mut [&mut self.alice, &mut self.bob]);
    }

    /// Bob spends the inputs of his swap again, to himself: the transaction and its fee.
    fn bob_spends_again(&self, swap: &BuiltTx) -> (Transaction, u64) {
        let conflict = build_sweep(&swap.inputs, self.bob.script(8), fee_rate()).unwrap();
        (
            sign(&conflict, self.bob.accounts(), &AUX),
            conflict.fee.to_sat(),
        )
    }

    /// A block Bob mines on `parent`.
    fn bob_block(
        &self,
        parent: bitcoin::BlockHash,
        txs: Vec<Transaction>,
        fees: u64,
        tag: u64,
    ) -> bitcoin::Block {
        block_on(
            &self.world.chain,
            parent,
            txs,
            fees,
            &self.bob.script(8),
            tag,
        )
    }

    /// Alice learns the swap `txid` is gone for good and reopens its fill on both books.
    fn alice_reopens(&mut self, order: OrderId, txid: Txid) {
        let view = self.alice.book.get(&order).unwrap();
        let reopen = self.alice_maker.on_dropped(&[txid], &view).unwrap();
        self.alice_publishes(reopen);
    }

    fn remaining(&self, order: &OrderId) -> (u64, u64) {
        let a = self.alice.book.get(order).unwrap().remaining();
        let b = self.bob.book.get(order).unwrap().remaining();
        (a, b)
    }
}

fn publish_order(parties: &mut [&mut Party], order: &VerifiedOrder) {
    for party in parties {
        party.book.insert_order(order.clone()).unwrap();
    }
}

/// `issuer` issues an asset of `ticker` with the whole supply to its address 3.
fn issue(world: &mut World, issuer: &mut Party, other: &mut Party, ticker: &str) -> AssetId {
    let request = IssueRequest {
        ticker: ticker.into(),
        decimals: 8,
        supply: SUPPLY,
    };
    let built = build_issuance(
        &issuer.coins(),
        &request,
        fee_rate(),
        issuer.accounts(),
        (0, 3),
        (0, 1),
    )
    .unwrap();
    let tx = sign(&built, issuer.accounts(), &AUX);
    world.submit(&tx, &mut [issuer, other]).unwrap();
    AssetId::from_issuing_outpoint(&tx.input[0].previous_output)
}

#[test]
fn a_sell_order_and_crossing_buys_settle_atomically_and_balances_follow() {
    let mut m = Market::new();
    let (alice_btc, bob_btc) = (m.alice.btc(), m.bob.btc());
    let funding = m.alice_gold_coin();
    // Alice sells 600,000,000 GOLD units at 50,000 sat per 10^8: 300,000 sat in all.
    let ask = m.alice_order(Side::Ask, 50_000, 600_000_000, vec![funding]);
    // Bob bids 60,000 for 200,000,000: it crosses, at Alice's price.
    let bid = Order {
        market: m.gold,
        side: Side::Bid,
        price: 60_000,
        amount: 200_000_000,
        created_millis: NOW_MS,
        expiry_millis: NOW_MS + 60_000,
        nonce: 1,
        maker: m.bob.key.xonly(),
        funding: vec![],
        receive: m.bob.script(5),
        change: m.bob.script(5),
    };
    let matched = m.bob.book.match_order(&bid, NOW_MS);
    assert_eq!(matched.fills.len(), 1);
    assert_eq!(
        (matched.fills[0].quantity, matched.fills[0].sats),
        (200_000_000, 100_000)
    );
    assert_eq!(matched.rest, 0);

    let (swap, first, settled) = m.bob_takes(ask, 200_000_000);
    assert!(settled);
    assert_eq!(m.remaining(&ask), (400_000_000, 400_000_000));
    m.mine();
    assert_eq!(m.alice.units(m.gold), SUPPLY - 200_000_000);
    assert_eq!(m.bob.units(m.gold), 200_000_000);
    assert_eq!(m.alice.btc(), alice_btc + 100_000);
    assert_eq!(m.bob.btc(), bob_btc - 100_000 - first.fee.to_sat());
    for party in [&m.alice, &m.bob] {
        let entry = party
            .tracker
            .history()
            .into_iter()
            .find(|entry| entry.txid == swap.txid())
            .unwrap();
        assert!(entry.trade, "the swap is a trade in both histories");
    }

    // Bob takes the rest, spending from Alice's new funding coin.
    let (_, second, settled) = m.bob_takes(ask, 400_000_000);
    assert!(settled);
    m.mine();
    assert_eq!(m.remaining(&ask), (0, 0));
    assert!(m.bob.book.open(&m.gold, Side::Ask).is_empty());
    assert_eq!(m.alice.units(m.gold), SUPPLY - 600_000_000);
    assert_eq!(m.bob.units(m.gold), 600_000_000);
    assert_eq!(m.alice.btc(), alice_btc + 300_000);
    let bob_btc = bob_btc - 300_000 - first.fee.to_sat() - second.fee.to_sat();
    assert_eq!(m.bob.btc(), bob_btc);

    // The other way: Alice bids 40,000 for 100,000,000 GOLD, funded by a BTC coin; Bob sells.
    let btc_coin = m
        .alice
        .coins()
        .into_iter()
        .find(|coin| coin.assets.is_empty())
        .unwrap();
    let alice_btc = m.alice.btc();
    let bid = m.alice_order(Side::Bid, 40_000, 100_000_000, vec![btc_coin.outpoint]);
    let (_, built, settled) = m.bob_takes(bid, 60_000_000);
    assert!(settled);
    m.mine();
    assert_eq!(m.remaining(&bid), (40_000_000, 40_000_000));
    assert_eq!(m.alice.units(m.gold), SUPPLY - 600_000_000 + 60_000_000);
    assert_eq!(m.bob.units(m.gold), 600_000_000 - 60_000_000);
    // Alice pays 24,000 sat (60,000,000 × 40,000 / 10^8) and gets her GOLD on an output whose
    // dust Bob pays; Bob's own GOLD coin's dust comes back to him with his remainder.
    let dust = m.alice.script(1).minimal_non_dust().to_sat();
    assert_eq!(m.alice.btc(), alice_btc - 24_000 + dust);
    assert_eq!(m.bob.btc(), bob_btc + 24_000 - dust - built.fee.to_sat());
    assert_eq!(m.alice.units(m.gold) + m.bob.units(m.gold), SUPPLY);
}

/// Alice's order to sell 600,000,000 GOLD at 50,000, on both books.
fn market_with_ask() -> (Market, OrderId, OutPoint) {
    let mut m = Market::new();
    let funding = m.alice_gold_coin();
    let ask = m.alice_order(Side::Ask, 50_000, 600_000_000, vec![funding]);
    (m, ask, funding)
}

/// Asserts Alice refused and lost nothing: her order and coin are as they were.
fn assert_refused_harmlessly(m: &Market, ask: OrderId, funding: OutPoint, gold_before: u64) {
    assert_eq!(m.remaining(&ask), (600_000_000, 600_000_000));
    assert!(
        m.world.coin(&funding).is_some(),
        "the order's coin is unspent"
    );
    assert_eq!(m.alice.units(m.gold), gold_before);
    assert!(m.world.mempool.is_empty());
}

#[test]
fn a_taker_who_underpays_by_one_sat_is_refused() {
    let (mut m, ask, funding) = market_with_ask();
    let (swap, _) = m.bob_proposes(ask, 200_000_000, |terms, _| {
        terms.theirs[0].value -= bitcoin::Amount::from_sat(1);
    });
    let expected = 100_000 + m.world.coin(&funding).unwrap().output.value.to_sat();
    assert_eq!(
        m.alice_answers(&swap.proposal),
        Err(SwapError::Underpaid {
            expected,
            got: expected - 1
        })
    );
    assert_refused_harmlessly(&m, ask, funding, SUPPLY);
}

#[test]
fn a_taker_who_steals_the_change_is_refused() {
    let (mut m, ask, funding) = market_with_ask();
    let (swap, _) = m.bob_proposes(ask, 200_000_000, |terms, m| {
        terms.theirs[1].script = m.bob.script(9);
    });
    assert_eq!(
        m.alice_answers(&swap.proposal),
        Err(SwapError::AssetShort {
            asset: m.gold,
            // The coin holds the whole supply: all but the 200,000,000 sold comes back.
            expected: SUPPLY - 200_000_000,
            got: 0
        })
    );
    assert_refused_harmlessly(&m, ask, funding, SUPPLY);
}

#[test]
fn a_taker_who_swaps_the_asset_id_is_refused() {
    let mut m = Market::new();
    let btc_coin = m
        .alice
        .coins()
        .into_iter()
        .find(|coin| coin.assets.is_empty())
        .unwrap();
    // Alice buys GOLD; Bob pays her in SILVER instead.
    let bid = m.alice_order(Side::Bid, 40_000, 100_000_000, vec![btc_coin.outpoint]);
    let silver = m.silver;
    let (swap, _) = m.bob_proposes(bid, 100_000_000, |terms, _| {
        terms.theirs[0].assets = vec![(silver, 100_000_000)];
        terms.give = Some((silver, 100_000_000));
    });
    assert_eq!(
        m.alice_answers(&swap.proposal),
        Err(SwapError::AssetShort {
            asset: m.gold,
            expected: 100_000_000,
            got: 0
        })
    );
    assert!(m.world.mempool.is_empty());
    assert_eq!(m.remaining(&bid), (100_000_000, 100_000_000));
}

#[test]
fn a_taker_who_adds_an_extra_maker_input_is_refused() {
    let (mut m, ask, funding) = market_with_ask();
    let other = m
        .alice
        .coins()
        .into_iter()
        .find(|coin| coin.assets.is_empty())
        .unwrap();
    let (swap, _) = m.bob_proposes(ask, 200_000_000, |terms, _| {
        // Even paid back in full: the order does not offer this coin.
        terms.foreign.push(ForeignCoin {
            outpoint: other.outpoint,
            txout: bitcoin::TxOut {
                value: other.value,
                script_pubkey: other.script_pubkey.clone(),
            },
            assets: other.assets.clone(),
        });
        terms.theirs[0].value += other.value;
    });
    assert_eq!(
        m.alice_answers(&swap.proposal),
        Err(SwapError::SpendsBeyondOrder(other.outpoint))
    );
    assert_refused_harmlessly(&m, ask, funding, SUPPLY);
}

/// The proposal the `swap_proposals` fuzz target starts from keeps its order's promise, so
/// the fuzzer mutates an accepted proposal, not one the check refuses at once.
#[test]
fn the_fuzz_fixtures_proposal_is_accepted() {
    let fixture = SwapFixture::new();
    let checked = check_proposal(
        &fixture.view(),
        &fixture.proposal,
        |outpoint| fixture.coin(outpoint),
        |outpoint| fixture.is_mine(outpoint),
        SWAP_NOW_MILLIS,
    )
    .unwrap();
    assert_eq!(checked.quantity, SwapFixture::QUANTITY);
    assert_eq!(checked.maker_inputs.len(), 1);
}

/// Outputs to the maker whose values add up past what a `u64` holds: a transaction no chain
/// takes, but the maker's check adds them up before any chain sees it.
#[test]
fn a_taker_whose_outputs_overflow_the_sum_is_refused() {
    let (mut m, ask, funding) = market_with_ask();
    let (mut swap, _) = m.bob_proposes(ask, 200_000_000, |_, _| {});
    let receive = m.alice.script(1);
    for _ in 0..2 {
        swap.proposal.tx.output.push(bitcoin::TxOut {
            value: bitcoin::Amount::from_sat(u64::MAX),
            script_pubkey: receive.clone(),
        });
    }
    assert_eq!(
        m.alice_answers(&swap.proposal),
        Err(SwapError::Invalid(TxError::OutputValueTooLarge {
            output: swap.proposal.tx.output.len() - 2
        }))
    );
    assert_refused_harmlessly(&m, ask, funding, SUPPLY);
}

#[test]
fn a_replayed_proposal_is_refused() {
    let (mut m, ask, _) = market_with_ask();
    let (swap, _) = m.bob_proposes(ask, 200_000_000, |_, _| {});
    assert!(matches!(
        m.alice_answers(&swap.proposal),
        Ok(SwapResponse::Accepted(_))
    ));
    m.mine();
    let txid = swap.txid();
    assert_eq!(
        m.alice_answers(&swap.proposal),
        Err(SwapError::Replayed(txid))
    );
    // A maker that forgot (restarted) still refuses: the order has moved on.
    m.alice_maker = Maker::new();
    assert_eq!(
        m.alice_answers(&swap.proposal),
        Err(SwapError::Stale {
            sequence: 0,
            current: 1
        })
    );
    assert_eq!(m.remaining(&ask), (400_000_000, 400_000_000));
}

#[test]
fn a_taker_who_double_spends_afterwards_gains_nothing_and_the_fill_reopens() {
    let (mut m, ask, funding) = market_with_ask();
    let alice_btc = m.alice.btc();
    let (swap, built) = m.bob_proposes(ask, 200_000_000, |_, _| {});
    assert!(matches!(
        m.alice_answers(&swap.proposal),
        Ok(SwapResponse::Accepted(_))
    ));
    assert_eq!(m.remaining(&ask), (400_000_000, 400_000_000));
    // Bob spends his swap inputs again, to himself.
    let (conflict, fee) = m.bob_spends_again(&built);
    let relayed = m.world.submit(&conflict, &mut [&mut m.alice, &mut m.bob]);
    assert!(matches!(relayed, Err(MempoolError::DoubleSpend { .. })));
    // So he mines it himself, in a block of his own on the tip.
    let block = m.bob_block(m.world.chain.tip(), vec![conflict], fee, 99);
    let dropped = m.world.accept(block, &mut [&mut m.alice, &mut m.bob]);
    // The swap is gone for good: Alice reopens the fill.
    assert_eq!(dropped, [swap.txid()]);
    m.alice_reopens(ask, swap.txid());
    assert_eq!(m.remaining(&ask), (600_000_000, 600_000_000));
    assert_eq!(m.alice.book.get(&ask).unwrap().funding, [funding]);
    assert!(m.world.coin(&funding).is_some());
    assert_eq!(m.alice.units(m.gold), SUPPLY);
    assert_eq!(m.alice.btc(), alice_btc);
}

#[test]
fn a_reorganisation_that_drops_the_swap_reopens_the_fill() {
    let (mut m, ask, funding) = market_with_ask();
    let alice_btc = m.alice.btc();
    let fork = m.world.chain.tip();
    let (swap, built) = m.bob_proposes(ask, 200_000_000, |_, _| {});
    assert!(matches!(
        m.alice_answers(&swap.proposal),
        Ok(SwapResponse::Accepted(_))
    ));
    m.mine();
    assert_eq!(m.alice.units(m.gold), SUPPLY - 200_000_000);
    // A heavier branch from before the swap, where Bob's inputs went elsewhere.
    let (conflict, fee) = m.bob_spends_again(&built);
    let first = m.bob_block(fork, vec![conflict], fee, 1_000);
    let first_hash = first.block_hash();
    m.world.accept(first, &mut [&mut m.alice, &mut m.bob]);
    let second = m.bob_block(first_hash, vec![], 0, 1_001);
    let dropped = m.world.accept(second, &mut [&mut m.alice, &mut m.bob]);
    assert_eq!(dropped, [swap.txid()]);
    m.alice_reopens(ask, swap.txid());
    assert_eq!(m.remaining(&ask), (600_000_000, 600_000_000));
    assert!(m.world.coin(&funding).is_some());
    assert_eq!(m.alice.units(m.gold), SUPPLY);
    assert_eq!(m.bob.units(m.gold), 0);
    assert_eq!(m.alice.btc(), alice_btc);
}

#[test]
fn an_unanswered_swap_times_out_and_frees_the_takers_coins() {
    let (mut m, ask, _) = market_with_ask();
    let before = m.bob.coins().len();
    let (mut swap, _) = m.bob_proposes(ask, 200_000_000, |_, _| {});
    assert!(
        m.bob.coins().len() < before,
        "the swap's coins are held back"
    );
    assert!(!swap.on_tick(NOW_MS + SWAP_TIMEOUT_MILLIS - 1));
    assert!(swap.on_tick(NOW_MS + SWAP_TIMEOUT_MILLIS));
    assert_eq!(swap.state(), &TakerState::TimedOut);
    for coin in swap.reserved() {
        let stamp = Stamp {
            millis: NOW_MS + SWAP_TIMEOUT_MILLIS,
            device: m.bob.device,
        };
        m.bob.metadata.release(*coin, stamp);
    }
    assert_eq!(m.bob.coins().len(), before);
}

#[test]
fn a_locked_makers_answer_ends_the_swap_at_once_and_only_its_own() {
    let (mut m, ask, _) = market_with_ask();
    let (mut swap, _) = m.bob_proposes(ask, 200_000_000, |_, _| {});
    let (other, _) = m.bob_proposes(ask, 100_000_000, |_, _| {});
    assert_eq!(
        swap.on_response(SwapResponse::Unavailable { txid: other.txid() }),
        Err(SwapError::NotOurs)
    );
    assert_eq!(swap.state(), &TakerState::Proposed);
    assert_eq!(
        swap.on_response(SwapResponse::Unavailable { txid: swap.txid() }),
        Ok(&TakerState::Unavailable)
    );
    assert!(
        !swap.on_tick(NOW_MS + SWAP_TIMEOUT_MILLIS),
        "an answered swap does not time out"
    );
}

#[test]
fn a_maker_answer_that_is_not_the_proposed_transaction_is_rejected() {
    let (mut m, ask, _) = market_with_ask();
    let (mut swap, _) = m.bob_proposes(ask, 200_000_000, |_, _| {});
    let mut forged = swap.proposal.tx.clone();
    forged.output[0].value += bitcoin::Amount::from_sat(1);
    assert_eq!(
        swap.on_response(SwapResponse::Accepted(forged)),
        Err(SwapError::NotOurs)
    );
    // Unsigned maker inputs are not a settlement either.
    assert_eq!(
        swap.on_response(SwapResponse::Accepted(swap.proposal.tx.clone())),
        Err(SwapError::NotOurs)
    );
    assert_eq!(swap.state(), &TakerState::Proposed);
}

#[test]
fn swap_messages_round_trip_and_garbage_is_an_error() {
    let (mut m, ask, _) = market_with_ask();
    let (swap, _) = m.bob_proposes(ask, 200_000_000, |_, _| {});
    let bytes = swap.proposal.encode();
    assert_eq!(SwapProposal::decode(&bytes).unwrap(), swap.proposal);
    for len in 0..bytes.len() {
        assert!(SwapProposal::decode(&bytes[..len]).is_err());
    }
    let refusal = SwapResponse::refusal(swap.txid(), &"x".repeat(1_000));
    let SwapResponse::Refused { reason, .. } = &refusal else {
        unreachable!()
    };
    assert_eq!(reason.len(), 200);
    assert_eq!(SwapResponse::decode(&refusal.encode()).unwrap(), refusal);
    let accepted = SwapResponse::Accepted(swap.proposal.tx.clone());
    assert_eq!(SwapResponse::decode(&accepted.encode()).unwrap(), accepted);
    let unavailable = SwapResponse::Unavailable { txid: swap.txid() };
    let bytes = unavailable.encode();
    assert_eq!(SwapResponse::decode(&bytes).unwrap(), unavailable);
    for len in 0..bytes.len() {
        assert!(SwapResponse::decode(&bytes[..len]).is_err());
    }
    assert!(SwapResponse::decode(&[&bytes[..], &[0]].concat()).is_err());
    assert_eq!(
        SwapResponse::decode(&[VERSION, 7]),
        Err(SwapError::Malformed("unknown response"))
    );
}
