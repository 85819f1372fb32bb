//! The wallet following a real chain: receiving, maturity, the gap limit, the mempool,
//! reorganisations, conflicts, assets and history.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use bitcoin::secp256k1::{Message, Secp256k1};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{ecdsa, Amount, Block, OutPoint, Transaction, TxOut, Witness};
use bitmesh_core::chain::assets::{AssetId, AssetRecord, Issuance};
use bitmesh_core::chain::state::Chain;
use bitmesh_core::testkit::{block_on, pay, spend, TestKey};
use bitmesh_core::wallet::keys::{Account, Keychain, Purpose};
use bitmesh_core::wallet::mnemonic;
use bitmesh_core::wallet::tracker::{Tracker, TxStatus, Unit};
use bitmesh_core::Network;

const NOW: u32 = 2_000_000_000;

fn account() -> Account {
    let seed = mnemonic::from_entropy(&[9; 16])
        .unwrap()
        .to_seed_normalized("");
    Account::for_bitmesh(&seed, Purpose::Bip84, Network::Test).unwrap()
}

struct Fixture {
    chain: Chain,
    tracker: Tracker,
    miner: TestKey,
}

impl Fixture {
    fn new() -> Fixture {
        let maturity = Network::Test.params().coinbase_maturity;
        Fixture {
            chain: Chain::new(Network::Test),
            tracker: Tracker::new(vec![account()], maturity),
            miner: TestKey::new(0),
        }
    }

    fn mine(&mut self, txs: Vec<Transaction>, fees: u64, payout: &bitcoin::ScriptBuf) -> Block {
        let block = block_on(
            &self.chain,
            self.chain.tip(),
            txs,
            fees,
            payout,
            u64::from(self.chain.height()),
        );
        let accepted = self.chain.accept_block(block.clone(), NOW).unwrap();
        assert!(accepted.invalid.is_empty(), "{:?}", accepted.invalid);
        for disconnected in &accepted.change.disconnected {
            let height = self.tracker.tip();
            self.tracker.disconnect_block(disconnected, height, 0);
        }
        for connected in &accepted.change.connected {
            let height = self
                .chain
                .index()
                .get(&connected.block_hash())
                .unwrap()
                .height;
            self.tracker.connect_block(connected, height);
        }
        block
    }

    /// A mature coin of the miner's.
    fn miner_coin(&mut self) -> (OutPoint, TxOut) {
        let payout = self.miner.p2wpkh();
        let block = self.mine(vec![], 0, &payout);
        for _ in 0..Network::Test.params().coinbase_maturity {
            self.mine(vec![], 0, &payout);
        }
        (
            OutPoint::new(block.txdata[0].compute_txid(), 0),
            block.txdata[0].output[0].clone(),
        )
    }

    fn miner_pays(&mut self, outputs: Vec<TxOut>) -> Transaction {
        let coin = self.miner_coin();
        let total: u64 = outputs.iter().map(|o| o.value.to_sat()).sum();
        let mut all = outputs;
        all.push(pay(
            &self.miner.p2wpkh(),
            coin.1.value.to_sat() - total - 1_000,
        ));
        let mut tx = spend(&[coin.0], all);
        self.miner.sign(&mut tx, 0, &[coin.1]);
        tx
    }
}

/// The wallet signs a spend of its P2WPKH outputs `coins`.
fn wallet_spends(
    account: &Account,
    coins: &[(OutPoint, TxOut, u32)],
    outputs: Vec<TxOut>,
) -> Transaction {
    let secp = Secp256k1::new();
    let mut tx = spend(&coins.iter().map(|c| c.0).collect::<Vec<_>>(), outputs);
    for (input, (_, txout, index)) in coins.iter().enumerate() {
        let sighash = SighashCache::new(&tx)
            .p2wpkh_signature_hash(
                input,
                &txout.script_pubkey,
                txout.value,
                EcdsaSighashType::All,
            )
            .unwrap();
        let key = account.secret_key(Keychain::External, *index);
        let signature = secp.sign_ecdsa(&Message::from(sighash), &key);
        tx.input[input].witness = Witness::p2wpkh(
            &ecdsa::Signature {
                signature,
                sighash_type: EcdsaSighashType::All,
            },
            &key.public_key(&secp),
        );
    }
    tx
}

#[test]
fn coinbase_rewards_are_immature_then_confirmed() {
    let mut f = Fixture::new();
    let mine_to = account().script_pubkey(Keychain::External, 0);
    f.mine(vec![], 0, &mine_to);
    let btc = f.tracker.balances()[&Unit::Btc];
    assert_eq!(btc.immature, 5_000_000_000);
    assert_eq!(btc.confirmed, 0);
    let payout = f.miner.p2wpkh();
    for _ in 0..Network::Test.params().coinbase_maturity - 1 {
        f.mine(vec![], 0, &payout);
    }
    assert_eq!(f.tracker.balances()[&Unit::Btc].confirmed, 5_000_000_000);
}

#[test]
fn the_gap_limit_window_moves_with_use() {
    let mut f = Fixture::new();
    let wallet = account();
    let far = wallet.script_pubkey(Keychain::External, 30);
    let near = wallet.script_pubkey(Keychain::External, 15);
    assert!(!f.tracker.is_mine(&far), "beyond the gap");
    let tx = f.miner_pays(vec![pay(&near, 10_000)]);
    f.mine(vec![tx], 1_000, &f.miner.p2wpkh().clone());
    assert!(f.tracker.is_mine(&far), "index 15 used: watched up to 35");
    let tx = f.miner_pays(vec![pay(&far, 20_000)]);
    f.mine(vec![tx], 1_000, &f.miner.p2wpkh().clone());
    assert_eq!(f.tracker.balances()[&Unit::Btc].confirmed, 30_000);
}

#[test]
fn mempool_blocks_and_reorganisations() {
    let mut f = Fixture::new();
    let wallet = account();
    let mine = wallet.script_pubkey(Keychain::External, 0);
    let tx = f.miner_pays(vec![pay(&mine, 40_000)]);
    f.tracker.mempool_added(&tx, 77);
    assert_eq!(f.tracker.balances()[&Unit::Btc].unconfirmed, 40_000);
    let history = f.tracker.history();
    assert_eq!(history[0].status, TxStatus::Unconfirmed { seen: 77 });
    assert_eq!(history[0].received, Amount::from_sat(40_000));

    let fork = f.chain.tip();
    let block = f.mine(vec![tx.clone()], 1_000, &f.miner.p2wpkh().clone());
    let btc = f.tracker.balances()[&Unit::Btc];
    assert_eq!((btc.confirmed, btc.unconfirmed), (40_000, 0));
    assert_eq!(f.tracker.confirmations(f.tracker.history()[0].status), 1);

    // A heavier branch without it: unconfirmed again, then dropped by the mempool.
    let payout = f.miner.p2wpkh();
    let a = block_on(&f.chain, fork, vec![], 0, &payout, 500);
    f.chain.accept_block(a.clone(), NOW).unwrap();
    let b = block_on(&f.chain, a.block_hash(), vec![], 0, &payout, 501);
    let accepted = f.chain.accept_block(b, NOW).unwrap();
    assert_eq!(
        accepted.change.disconnected[0].block_hash(),
        block.block_hash()
    );
    f.tracker.disconnect_block(&block, f.tracker.tip(), 90);
    let btc = f.tracker.balances()[&Unit::Btc];
    assert_eq!((btc.confirmed, btc.unconfirmed), (0, 40_000));
    f.tracker.mempool_removed(&tx.compute_txid());
    assert_eq!(f.tracker.balances()[&Unit::Btc].unconfirmed, 0);
    assert!(f.tracker.history().is_empty());
}

#[test]
fn a_confirmed_double_spend_marks_the_other_conflicted() {
    let mut f = Fixture::new();
    let wallet = account();
    let mine = wallet.script_pubkey(Keychain::External, 0);
    let funding = f.miner_pays(vec![pay(&mine, 50_000)]);
    f.mine(vec![funding.clone()], 1_000, &f.miner.p2wpkh().clone());
    let coin = (
        OutPoint::new(funding.compute_txid(), 0),
        funding.output[0].clone(),
        0,
    );
    let elsewhere = f.miner.p2wpkh();
    let first = wallet_spends(
        &wallet,
        std::slice::from_ref(&coin),
        vec![pay(&elsewhere, 49_000)],
    );
    let second = wallet_spends(
        &wallet,
        &[coin],
        vec![pay(&wallet.script_pubkey(Keychain::External, 1), 48_000)],
    );
    f.tracker.mempool_added(&first, 1);
    assert_eq!(
        f.tracker.balances()[&Unit::Btc].confirmed,
        0,
        "spent by an unconfirmed transaction"
    );
    let history = f.tracker.history();
    let spend = history
        .iter()
        .find(|entry| entry.txid == first.compute_txid())
        .unwrap();
    assert_eq!(
        (spend.sent, spend.fee),
        (Amount::from_sat(50_000), Some(Amount::from_sat(1_000)))
    );

    f.mine(vec![second.clone()], 2_000, &f.miner.p2wpkh().clone());
    let history = f.tracker.history();
    assert!(
        history
            .iter()
            .find(|entry| entry.txid == first.compute_txid())
            .unwrap()
            .conflicted
    );
    assert!(
        !history
            .iter()
            .find(|entry| entry.txid == second.compute_txid())
            .unwrap()
            .conflicted
    );
    assert_eq!(f.tracker.balances()[&Unit::Btc].confirmed, 48_000);
}

#[test]
fn assets_received_are_counted() {
    let mut f = Fixture::new();
    let wallet = account();
    let coin = f.miner_coin();
    let record = AssetRecord::Issue(Issuance {
        ticker: "GOLD".into(),
        decimals: 0,
        supply: 700,
        output: 0,
    });
    let mut tx = spend(
        &[coin.0],
        vec![
            pay(&wallet.script_pubkey(Keychain::External, 2), 1_000),
            TxOut {
                value: Amount::ZERO,
                script_pubkey: record.to_script(),
            },
            pay(&f.miner.p2wpkh(), coin.1.value.to_sat() - 3_000),
        ],
    );
    f.miner.sign(&mut tx, 0, std::slice::from_ref(&coin.1));
    f.mine(vec![tx], 2_000, &f.miner.p2wpkh().clone());
    let gold = AssetId::from_issuing_outpoint(&coin.0);
    assert_eq!(f.tracker.balances()[&Unit::Asset(gold)].confirmed, 700);
    assert_eq!(f.tracker.unspent()[0].assets.amount(&gold), 700);
    assert_eq!(f.tracker.history()[0].assets.get(&gold), Some(&700));
}
