//! The unlocked wallet a driver holds: it follows a chain in bounded steps and through a
//! reorganisation, moves its receive address on when paid, refuses bad payments in words without
//! changing anything, and pays, sweeps and issues through the real mempool and chain.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use bitcoin::Transaction;
use bitmesh_core::chain::mempool::{Mempool, MempoolConfig};
use bitmesh_core::chain::pow::search_nonce;
use bitmesh_core::chain::state::Chain;
use bitmesh_core::chain::template::build_template;
use bitmesh_core::testkit::{block_on, TestKey};
use bitmesh_core::wallet::build::{BuildError, IssueRequest};
use bitmesh_core::wallet::coin_select::SelectionError;
use bitmesh_core::wallet::keys::Keychain;
use bitmesh_core::wallet::metadata::{DeviceId, Metadata, Stamp};
use bitmesh_core::wallet::mnemonic;
use bitmesh_core::wallet::session::{Following, PayError, SendAmount, Wallet};
use bitmesh_core::wallet::tracker::{TxStatus, Unit};
use bitmesh_core::Network;

const NOW: u32 = 2_000_000_000;
const NOW_MILLIS: u64 = NOW as u64 * 1000;
const REWARD: u64 = 5_000_000_000;
const AUX: [u8; 32] = [7; 32];

struct World {
    chain: Chain,
    mempool: Mempool,
    wallet: Wallet,
}

impl World {
    /// A wallet whose first address received `coinbases` rewards, matured, followed in steps of
    /// ten blocks.
    fn funded(coinbases: u32) -> World {
        let seed = mnemonic::from_entropy(&[9; 16])
            .unwrap()
            .to_seed_normalized("");
        let mut world = World {
            chain: Chain::new(Network::Test),
            mempool: Mempool::new(MempoolConfig::default(), 1),
            wallet: Wallet::new(&seed, Network::Test, Metadata::new()).unwrap(),
        };
        let first = world.wallet.receive_address().script_pubkey();
        let maturity = Network::Test.params().coinbase_maturity;
        for n in 0..coinbases + maturity {
            let payout = if n < coinbases {
                first.clone()
            } else {
                TestKey::new(1).p2wpkh()
            };
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
        let steps = world.follow_in_steps(10);
        assert!(steps[..steps.len() - 1].iter().all(|step| step.changed));
        assert_eq!(steps.len() as u32, (coinbases + maturity).div_ceil(10));
        assert_eq!(world.wallet.height(), world.chain.height());
        world
    }

    /// Follows the chain `blocks` at a time until nothing is behind (1,000 steps at most);
    /// what each step said.
    fn follow_in_steps(&mut self, blocks: u32) -> Vec<Following> {
        let mut steps = Vec::new();
        loop {
            let following = self.wallet.follow(&self.chain, blocks, 0);
            steps.push(following);
            if following.behind == 0 {
                return steps;
            }
            assert!(steps.len() < 1_000, "following ends");
        }
    }

    fn submit(&mut self, tx: Transaction) {
        self.mempool
            .accept(tx, &mut self.chain, u64::from(NOW))
            .expect("the mempool accepts the wallet's transaction");
        assert!(self.wallet.follow_mempool(&self.mempool));
    }

    fn mine(&mut self) {
        let payout = TestKey::new(1).p2wpkh();
        let mut block = build_template(&self.chain, &self.mempool, &payout, NOW, 0).block;
        block.header.nonce = search_nonce(&block.header, 0..=u32::MAX).unwrap();
        let accepted = self.chain.accept_block(block, NOW).unwrap();
        self.mempool
            .apply_tip_change(&accepted.change, &mut self.chain, u64::from(NOW));
        assert!(self.wallet.follow(&self.chain, 100, 0).changed);
        self.wallet.follow_mempool(&self.mempool);
    }
}

fn stranger() -> String {
    bitcoin::Address::from_script(&TestKey::new(5).p2wpkh(), Network::Test.address_network())
        .unwrap()
        .to_string()
}

#[test]
fn the_receive_address_moves_on_once_paid() {
    let world = World::funded(2);
    let account = world.wallet.account();
    assert_eq!(
        world.wallet.receive_address(),
        account.address(Keychain::External, 1)
    );
    assert_eq!(
        world.wallet.balances()[&Unit::Btc].confirmed,
        2 * REWARD,
        "both rewards matured"
    );
    let mut wallet = world.wallet.clone();
    assert_eq!(
        wallet.new_receive_address(PHONE, NOW_MILLIS),
        account.address(Keychain::External, 2)
    );
}

#[test]
fn each_device_shows_a_receive_address_of_its_own() {
    let world = World::funded(1);
    let account = world.wallet.account().clone();
    let address = |index| account.address(Keychain::External, index);
    let (mut laptop, mut phone) = (world.wallet.clone(), world.wallet.clone());
    assert!(laptop.claim_receive_address(LAPTOP, NOW_MILLIS));
    assert_eq!(laptop.receive_address(), address(1), "index 0 was paid");
    assert!(
        !laptop.claim_receive_address(LAPTOP, NOW_MILLIS),
        "kept while unpaid"
    );

    // The phone claimed before it heard of the laptop's claim: the same index, for a moment.
    assert!(phone.claim_receive_address(PHONE, NOW_MILLIS));
    assert_eq!(phone.receive_address(), address(1));
    // Same used indexes on both, yet each summary shows the other has news: the claim.
    assert!(laptop.metadata().has_news_for(&phone.metadata().summary()));
    assert!(phone.metadata().has_news_for(&laptop.metadata().summary()));
    let laptops = laptop.metadata().clone();
    phone.metadata_mut().merge(&laptops);
    let phones = phone.metadata().clone();
    laptop.metadata_mut().merge(&phones);
    // The lower device id keeps it; the other moves on to an index nobody handed out.
    assert!(
        !phone.claim_receive_address(PHONE, NOW_MILLIS),
        "PHONE < LAPTOP keeps index 1"
    );
    assert!(laptop.claim_receive_address(LAPTOP, NOW_MILLIS));
    assert_eq!(phone.receive_address(), address(1));
    assert_eq!(laptop.receive_address(), address(2));
    // A new wallet object over the kept metadata (a reload) shows the same address.
    let mut reloaded = world.wallet.clone();
    *reloaded.metadata_mut() = laptop.metadata().clone();
    assert!(!reloaded.claim_receive_address(LAPTOP, NOW_MILLIS));
    assert_eq!(reloaded.receive_address(), address(2));
}

#[test]
fn bad_payments_are_refused_in_words_and_change_nothing() {
    let world = World::funded(1);
    let wallet = &world.wallet;
    let before = wallet.metadata().clone();
    let btc = Unit::Btc;
    let refused = |to: &str, amount, fee| {
        wallet
            .prepare_send(to, btc, amount, fee, 0)
            .expect_err("refused")
    };
    assert_eq!(
        refused("bcrt1qnot", SendAmount::Exact(1_000), 1),
        PayError::NotAnAddress("bcrt1qnot".into())
    );
    let mainnet = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq";
    assert_eq!(
        refused(mainnet, SendAmount::Exact(1_000), 1).to_string(),
        format!("{mainnet} is an address of another network")
    );
    assert_eq!(
        refused(&stranger(), SendAmount::Exact(0), 1),
        PayError::ZeroAmount
    );
    assert!(matches!(
        refused(&stranger(), SendAmount::Exact(REWARD + 1), 1),
        PayError::Build(BuildError::Selection(
            SelectionError::InsufficientFunds { .. }
        ))
    ));
    assert!(refused(&stranger(), SendAmount::Exact(REWARD + 1), 1)
        .to_string()
        .starts_with("insufficient funds"));
    assert!(matches!(
        refused(&stranger(), SendAmount::Exact(1_000), 0),
        PayError::FeeRateTooLow { .. }
    ));
    assert!(matches!(
        refused(&stranger(), SendAmount::Exact(100), 1),
        PayError::Build(BuildError::Dust { .. })
    ));
    assert_eq!(wallet.metadata(), &before, "a refusal changes nothing");
}

#[test]
fn a_payment_confirms_and_a_reorganisation_unconfirms_it() {
    let mut world = World::funded(1);
    let fork = world.chain.tip();
    let built = world
        .wallet
        .prepare_send(&stranger(), Unit::Btc, SendAmount::Exact(REWARD / 2), 2, 0)
        .unwrap();
    let change = built.change.expect("change").1;
    assert_eq!(change, (0, Keychain::Internal, 0));
    let tx = world.wallet.sign(&built, &AUX);
    let txid = tx.compute_txid();
    world.submit(tx);
    let btc = world.wallet.balances()[&Unit::Btc];
    assert_eq!(btc.confirmed, 0);
    assert_eq!(btc.unconfirmed, REWARD / 2 - built.fee.to_sat());
    // The next payment's change goes to a fresh address.
    let next = world
        .wallet
        .prepare_send(&stranger(), Unit::Btc, SendAmount::Max, 1, 0)
        .unwrap();
    assert!(next.change.is_none(), "a sweep has no change");

    world.mine();
    let entry = world.wallet.history()[0].clone();
    assert_eq!(entry.txid, txid);
    assert_eq!(
        entry.status,
        TxStatus::Confirmed {
            height: world.chain.height()
        }
    );
    assert_eq!(entry.fee, Some(built.fee));

    // A longer branch from before the payment: the wallet follows it back to the fork.
    let mut parent = fork;
    for tag in 0..2 {
        let block = block_on(
            &world.chain,
            parent,
            vec![],
            0,
            &TestKey::new(2).p2wpkh(),
            1_000 + tag,
        );
        parent = block.block_hash();
        world.chain.accept_block(block, NOW).unwrap();
    }
    assert_eq!(world.chain.tip(), parent);
    let following = world.wallet.follow(&world.chain, 100, 42);
    assert!(following.changed);
    assert_eq!(following.behind, 0);
    assert_eq!(world.wallet.height(), world.chain.height());
    let entry = world
        .wallet
        .history()
        .into_iter()
        .find(|entry| entry.txid == txid)
        .expect("still the wallet's");
    assert_eq!(entry.status, TxStatus::Unconfirmed { seen: 42 });
}

#[test]
fn max_sends_everything_and_an_issued_asset_is_held() {
    let mut world = World::funded(2);
    let request = IssueRequest {
        ticker: "GOLD".into(),
        decimals: 2,
        supply: 1_000_000,
    };
    let bad = IssueRequest {
        ticker: "gold!".into(),
        ..request.clone()
    };
    assert!(matches!(
        world.wallet.prepare_issue(&bad, 1, 0),
        Err(PayError::Build(BuildError::Asset(_)))
    ));
    let built = world.wallet.prepare_issue(&request, 1, 0).unwrap();
    let tx = world.wallet.sign(&built, &AUX);
    world.submit(tx);
    world.mine();
    let assets: Vec<_> = world
        .wallet
        .balances()
        .into_iter()
        .filter(|(unit, _)| matches!(unit, Unit::Asset(_)))
        .collect();
    assert_eq!(assets.len(), 1);
    let (unit, balance) = assets[0];
    assert_eq!(balance.confirmed, 1_000_000);

    // Half the asset to a stranger, then every BTC coin.
    let built = world
        .wallet
        .prepare_send(&stranger(), unit, SendAmount::Exact(500_000), 1, 0)
        .unwrap();
    let tx = world.wallet.sign(&built, &AUX);
    world.submit(tx);
    world.mine();
    assert_eq!(world.wallet.balances()[&unit].confirmed, 500_000);
    let sweep = world
        .wallet
        .prepare_send(&stranger(), Unit::Btc, SendAmount::Max, 1, 0)
        .unwrap();
    let tx = world.wallet.sign(&sweep, &AUX);
    world.submit(tx);
    world.mine();
    let btc = world.wallet.balances()[&Unit::Btc];
    // Only the dust output that carries the remaining asset units is left.
    assert_eq!(btc.unconfirmed, 0);
    assert!(btc.confirmed < 1_000, "{btc:?}");
    assert_eq!(world.wallet.balances()[&unit].confirmed, 500_000);
    assert!(!world.wallet.psbt(&sweep).is_empty());
}

const PHONE: DeviceId = DeviceId([3; 16]);
const LAPTOP: DeviceId = DeviceId([4; 16]);

fn at(millis: u64, device: DeviceId) -> Stamp {
    Stamp { millis, device }
}

#[test]
fn coins_a_sibling_reserved_are_refused_in_words_until_the_reservation_lapses() {
    let mut world = World::funded(1);
    let coins: Vec<_> = world
        .wallet
        .prepare_send(&stranger(), Unit::Btc, SendAmount::Max, 1, 0)
        .unwrap()
        .inputs
        .iter()
        .map(|input| input.outpoint)
        .collect();
    let metadata = world.wallet.metadata_mut();
    metadata.set_device_name(PHONE, "phone".into(), at(1, PHONE));
    world.wallet.reserve(&coins, PHONE, 300_000, 2);
    let err = world
        .wallet
        .prepare_send(&stranger(), Unit::Btc, SendAmount::Exact(1_000), 1, 60_000)
        .unwrap_err();
    assert_eq!(
        err,
        PayError::Reserved {
            device: PHONE,
            name: Some("phone".into()),
            minutes_left: 4
        }
    );
    assert!(err.to_string().contains("reserved by \"phone\""), "{err}");
    // Short of coins without any reservation: the plain reason, not the reservation.
    let err = world
        .wallet
        .prepare_send(
            &stranger(),
            Unit::Btc,
            SendAmount::Exact(REWARD * 2),
            1,
            60_000,
        )
        .unwrap_err();
    assert!(
        matches!(err, PayError::Build(BuildError::Selection(_))),
        "{err:?}"
    );
    assert!(world
        .wallet
        .prepare_send(&stranger(), Unit::Btc, SendAmount::Exact(1_000), 1, 300_000)
        .is_ok());
}

#[test]
fn the_loser_of_a_double_spend_is_conflicted_and_its_other_coins_are_released() {
    let mut world = World::funded(2);
    // Two devices of the wallet, cut apart: the laptop sweeps both coins, the phone pays from one.
    let mut phone = world.wallet.clone();
    let sweep = world
        .wallet
        .prepare_send(&stranger(), Unit::Btc, SendAmount::Max, 1, 0)
        .unwrap();
    let swept = sweep.own_coins();
    assert_eq!(swept.len(), 2);
    world.wallet.reserve(&swept, LAPTOP, 600_000, 1);
    let sweep = world.wallet.sign(&sweep, &AUX);
    let payment = phone
        .prepare_send(&stranger(), Unit::Btc, SendAmount::Exact(REWARD / 10), 1, 0)
        .unwrap();
    let payment = phone.sign(&payment, &AUX);
    world.submit(sweep.clone());

    // The miner saw the phone's payment first.
    let mut miner_pool = Mempool::new(MempoolConfig::default(), 1);
    miner_pool
        .accept(payment.clone(), &mut world.chain, u64::from(NOW))
        .unwrap();
    let payout = TestKey::new(1).p2wpkh();
    let mut block = build_template(&world.chain, &miner_pool, &payout, NOW, 0).block;
    block.header.nonce = search_nonce(&block.header, 0..=u32::MAX).unwrap();
    let accepted = world.chain.accept_block(block, NOW).unwrap();
    world
        .mempool
        .apply_tip_change(&accepted.change, &mut world.chain, u64::from(NOW));
    assert!(world.wallet.follow(&world.chain, 100, 0).changed);
    world.wallet.follow_mempool(&world.mempool);

    let history = world.wallet.history();
    let loser = history
        .iter()
        .find(|entry| entry.txid == sweep.compute_txid())
        .expect("the sweep stays in the history");
    assert!(loser.conflicted);
    let winner = history
        .iter()
        .find(|entry| entry.txid == payment.compute_txid())
        .unwrap();
    assert!(matches!(winner.status, TxStatus::Confirmed { .. }) && !winner.conflicted);
    // The coin the payment left alone is the wallet's again, once the sweep's hold is released:
    // until then only the payment's change can be spent.
    let both = REWARD + REWARD / 2;
    let err = world
        .wallet
        .prepare_send(&stranger(), Unit::Btc, SendAmount::Exact(both), 1, 1_000)
        .unwrap_err();
    assert!(
        matches!(err, PayError::Reserved { device: LAPTOP, .. }),
        "{err:?}"
    );
    assert!(world.wallet.release_conflicted(LAPTOP, 1_000));
    assert!(!world.wallet.release_conflicted(LAPTOP, 1_000), "once");
    assert!(world
        .wallet
        .prepare_send(&stranger(), Unit::Btc, SendAmount::Exact(both), 1, 1_000)
        .is_ok());
    let btc = world.wallet.balances()[&Unit::Btc];
    let change = REWARD - REWARD / 10 - payment_fee(&world, &payment);
    assert_eq!(
        btc.confirmed,
        REWARD + change,
        "the untouched coin and the change"
    );
    assert_eq!(btc.unconfirmed, 0, "the loser counts for nothing");

    // After a restart the mempool refuses the loser; the wallet takes it back from what the
    // driver kept, shown as conflicted again. A payment that merely left the mempool (never
    // in conflict) is not brought back to life.
    let seed = mnemonic::from_entropy(&[9; 16])
        .unwrap()
        .to_seed_normalized("");
    let mut reloaded = Wallet::new(&seed, Network::Test, world.wallet.metadata().clone()).unwrap();
    while reloaded.follow(&world.chain, 100, 0).behind > 0 {}
    let untouched = reloaded
        .prepare_send(
            &stranger(),
            Unit::Btc,
            SendAmount::Exact(REWARD / 2),
            1,
            1_000,
        )
        .unwrap();
    let evicted = reloaded.sign(&untouched, &AUX);
    assert!(!reloaded.history().iter().any(|entry| entry.conflicted));
    assert!(reloaded.restore_conflicted(&[evicted.clone(), sweep.clone()], 0));
    let history = reloaded.history();
    assert!(history
        .iter()
        .any(|entry| entry.txid == sweep.compute_txid() && entry.conflicted));
    assert!(!history
        .iter()
        .any(|entry| entry.txid == evicted.compute_txid()));
    assert_eq!(reloaded.balances()[&Unit::Btc].unconfirmed, 0);
    assert!(!reloaded.restore_conflicted(&[sweep], 0), "once");
}

fn payment_fee(world: &World, payment: &Transaction) -> u64 {
    world
        .wallet
        .history()
        .into_iter()
        .find(|entry| entry.txid == payment.compute_txid())
        .and_then(|entry| entry.fee)
        .expect("the wallet paid every input")
        .to_sat()
}

/// Orders take a receive and a change script each without any payment to them, so a trader
/// who places and cancels many orders hands out scripts far past the last one paid. A fill
/// paying the latest must still be the wallet's, whatever the gap.
#[test]
fn scripts_handed_out_for_orders_stay_watched_past_the_gap_limit() {
    let mut world = World::funded(1);
    let handed_out: Vec<_> = (0..50).map(|_| world.wallet.order_scripts()).collect();
    let (receive, change) = handed_out.last().unwrap().clone();
    let before = world.wallet.balances()[&Unit::Btc];
    for script in [receive, change] {
        let to = bitcoin::Address::from_script(&script, Network::Test.address_network())
            .unwrap()
            .to_string();
        let built = world
            .wallet
            .prepare_send(&to, Unit::Btc, SendAmount::Exact(REWARD / 4), 2, 0)
            .unwrap();
        let tx = world.wallet.sign(&built, &AUX);
        world.submit(tx);
        let after = world.wallet.balances()[&Unit::Btc];
        assert_eq!(
            after.confirmed + after.unconfirmed,
            before.confirmed + before.unconfirmed - fees_so_far(&world),
            "the payment to {script} is the wallet's own"
        );
    }
}

/// The fees of the wallet's transactions so far.
fn fees_so_far(world: &World) -> u64 {
    world
        .wallet
        .history()
        .iter()
        .filter_map(|entry| entry.fee)
        .map(|fee| fee.to_sat())
        .sum()
}

/// A payment to a script a sibling device handed out, mined before this device learnt of the
/// hand-out (the sibling's metadata merged after it followed the block), is found: the wallet
/// looks through the blocks it followed again, in the same bounded steps, for the scripts it
/// watches now.
#[test]
fn a_payment_to_a_siblings_script_mined_before_the_merge_is_found() {
    use bitcoin::OutPoint;
    use bitmesh_core::testkit::{pay, sign_all, spend};

    let mut world = World::funded(1);
    // One more block, so that the stranger's first coinbase (height 2) has matured.
    world.mine();
    let seed = mnemonic::from_entropy(&[9; 16])
        .unwrap()
        .to_seed_normalized("");
    let mut sibling = Wallet::new(&seed, Network::Test, Metadata::new()).unwrap();
    let (receive, _) = (0..50).map(|_| sibling.order_scripts()).last().unwrap();

    // A stranger pays the sibling's last order script; this device follows the block.
    let stranger = TestKey::new(1);
    let coinbase = {
        let hash = world.chain.hash_at(2).unwrap();
        world.chain.block(&hash).unwrap().txdata[0].clone()
    };
    let mut payment = spend(
        &[OutPoint::new(coinbase.compute_txid(), 0)],
        vec![pay(&receive, 1_000_000)],
    );
    sign_all(&stranger, &mut payment, &coinbase.output);
    world
        .mempool
        .accept(payment, &mut world.chain, u64::from(NOW))
        .unwrap();
    world.mine();
    let total = |wallet: &Wallet| {
        let btc = wallet.balances()[&Unit::Btc];
        btc.confirmed + btc.unconfirmed + btc.immature
    };
    let before = total(&world.wallet);

    // The sibling's hand-outs arrive; the wallet looks again, two blocks a step.
    world.wallet.metadata_mut().merge(sibling.metadata());
    let steps = world.follow_in_steps(2);
    assert_eq!(total(&world.wallet), before + 1_000_000);
    assert_eq!(
        steps.len() as u32,
        world.chain.height().div_ceil(2),
        "every followed block once, in steps"
    );

    // Merged again, the metadata hands out nothing new; this device's own hand-outs after it
    // are watched as they are made: no second look.
    world.wallet.metadata_mut().merge(sibling.metadata());
    for _ in 0..30 {
        world.wallet.order_scripts();
    }
    let following = world.wallet.follow(&world.chain, 2, 0);
    assert_eq!((following.changed, following.behind), (false, 0));
}
