//! The wallet pays: build → sign → the chain's mempool accepts → a mined block confirms it →
//! the wallet's balances follow. For P2WPKH and P2TR accounts alike.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use bitcoin::{Amount, FeeRate, ScriptBuf};
use bitmesh_core::chain::mempool::{Mempool, MempoolConfig};
use bitmesh_core::chain::pow::search_nonce;
use bitmesh_core::chain::state::Chain;
use bitmesh_core::chain::template::build_template;
use bitmesh_core::testkit::{block_on, TestKey};
use bitmesh_core::wallet::build::{build_payment, sign, spendable, BuildError, PaymentRequest};
use bitmesh_core::wallet::coin_select::SelectionError;
use bitmesh_core::wallet::keys::{Account, Keychain, Purpose};
use bitmesh_core::wallet::metadata::{DeviceId, Metadata, Stamp};
use bitmesh_core::wallet::mnemonic;
use bitmesh_core::wallet::tracker::{Tracker, TxStatus, Unit};
use bitmesh_core::Network;

const NOW: u32 = 2_000_000_000;
const REWARD: u64 = 5_000_000_000;
/// Auxiliary randomness for Schnorr signatures (a driver passes fresh bytes).
const AUX: [u8; 32] = [0x5a; 32];

struct Wallet {
    chain: Chain,
    mempool: Mempool,
    tracker: Tracker,
    metadata: Metadata,
}

impl Wallet {
    /// A wallet of one `purpose` account whose first address received `coinbases` mature
    /// coinbase rewards.
    fn funded(purpose: Purpose, coinbases: u32) -> Wallet {
        let seed = mnemonic::from_entropy(&[4; 16])
            .unwrap()
            .to_seed_normalized("");
        let account = Account::for_bitmesh(&seed, purpose, Network::Test).unwrap();
        let maturity = Network::Test.params().coinbase_maturity;
        let mut wallet = Wallet {
            chain: Chain::new(Network::Test),
            mempool: Mempool::new(MempoolConfig::default(), 1),
            tracker: Tracker::new(vec![account.clone()], maturity),
            metadata: Metadata::new(),
        };
        let mine = account.script_pubkey(Keychain::External, 0);
        let other = TestKey::new(1).p2wpkh();
        for n in 0..coinbases + maturity {
            let payout = if n < coinbases { &mine } else { &other };
            let block = block_on(
                &wallet.chain,
                wallet.chain.tip(),
                vec![],
                0,
                payout,
                u64::from(n),
            );
            wallet.chain.accept_block(block.clone(), NOW).unwrap();
            wallet.tracker.connect_block(&block, wallet.chain.height());
        }
        wallet
    }

    fn pay(&mut self, to: &ScriptBuf, sats: u64) -> Result<bitcoin::Transaction, BuildError> {
        let coins = spendable(
            &self.tracker,
            &self.metadata,
            0,
            Network::Test.params().coinbase_maturity,
        );
        let request = PaymentRequest {
            recipients: vec![(to.clone(), Amount::from_sat(sats))],
            fee_rate: FeeRate::from_sat_per_kwu(500),
        };
        let built = build_payment(&coins, &request, self.tracker.accounts(), (0, 0))?;
        Ok(sign(&built, self.tracker.accounts(), &AUX))
    }

    /// Relays `tx` through the mempool and mines it.
    fn confirm(&mut self, tx: bitcoin::Transaction) {
        self.mempool
            .accept(tx.clone(), &mut self.chain, u64::from(NOW))
            .expect("the mempool accepts it");
        self.tracker.mempool_added(&tx, 1);
        let payout = TestKey::new(1).p2wpkh();
        let mut block = build_template(&self.chain, &self.mempool, &payout, NOW, 0).block;
        block.header.nonce = search_nonce(&block.header, 0..=u32::MAX).unwrap();
        let accepted = self.chain.accept_block(block.clone(), NOW).unwrap();
        assert!(accepted.invalid.is_empty(), "{:?}", accepted.invalid);
        self.mempool
            .apply_tip_change(&accepted.change, &mut self.chain, u64::from(NOW));
        self.tracker.connect_block(&block, self.chain.height());
        assert!(block
            .txdata
            .iter()
            .any(|t| t.compute_txid() == tx.compute_txid()));
    }
}

#[test]
fn p2wpkh_and_p2tr_payments_round_trip_through_the_chain() {
    for purpose in [Purpose::Bip84, Purpose::Bip86] {
        let mut wallet = Wallet::funded(purpose, 2);
        assert_eq!(wallet.tracker.balances()[&Unit::Btc].confirmed, 2 * REWARD);
        let stranger = TestKey::new(9).p2tr();
        let tx = wallet.pay(&stranger, 6_000_000_000).unwrap();
        assert_eq!(tx.input.len(), 1 + 1, "{purpose:?}: one coin is not enough");
        let fee = 2 * REWARD - tx.output.iter().map(|o| o.value.to_sat()).sum::<u64>();
        // The unconfirmed change counts as unconfirmed until the block.
        wallet.tracker.mempool_added(&tx, 1);
        assert_eq!(
            wallet.tracker.balances()[&Unit::Btc].unconfirmed,
            2 * REWARD - 6_000_000_000 - fee
        );
        wallet.confirm(tx);
        let btc = wallet.tracker.balances()[&Unit::Btc];
        assert_eq!(
            (btc.confirmed, btc.unconfirmed),
            (2 * REWARD - 6_000_000_000 - fee, 0),
            "{purpose:?}"
        );
        // Overhead, two inputs, the P2TR payment, and change of the account's own type.
        let (input, change) = if purpose == Purpose::Bip84 {
            (68, 31)
        } else {
            (58, 43)
        };
        let vbytes = 11 + 2 * input + 43 + change;
        assert!(
            fee >= 2 * vbytes - 4 && fee <= 2 * vbytes + 4,
            "{purpose:?}: fee {fee} for ~{vbytes} vB"
        );
    }
}

#[test]
fn refusals_have_reasons() {
    let mut wallet = Wallet::funded(Purpose::Bip84, 1);
    let stranger = TestKey::new(9).p2wpkh();
    assert!(matches!(
        wallet.pay(&stranger, 100),
        Err(BuildError::Dust { recipient: 0, limit, .. }) if limit == Amount::from_sat(294)
    ));
    assert!(matches!(
        wallet.pay(&stranger, REWARD),
        Err(BuildError::Selection(
            SelectionError::InsufficientFunds { .. }
        ))
    ));
    let coins = spendable(&wallet.tracker, &wallet.metadata, 0, 2);
    let request = PaymentRequest {
        recipients: vec![],
        fee_rate: FeeRate::from_sat_per_kwu(250),
    };
    assert_eq!(
        build_payment(&coins, &request, wallet.tracker.accounts(), (0, 0)).unwrap_err(),
        BuildError::NoRecipients
    );
}

#[test]
fn reserved_coins_are_not_spent() {
    let mut wallet = Wallet::funded(Purpose::Bip84, 2);
    let coins = spendable(&wallet.tracker, &wallet.metadata, 0, 2);
    assert_eq!(coins.len(), 2);
    let device = DeviceId([7; 16]);
    wallet.metadata.reserve(
        coins[0].outpoint,
        device,
        10_000,
        Stamp { millis: 1, device },
    );
    let now_spendable = spendable(&wallet.tracker, &wallet.metadata, 5_000, 2);
    assert_eq!(now_spendable.len(), 1);
    assert_ne!(now_spendable[0].outpoint, coins[0].outpoint);
    // The reservation expires.
    assert_eq!(
        spendable(&wallet.tracker, &wallet.metadata, 10_000, 2).len(),
        2
    );
    // Spending more than the free coin refuses rather than touching the reserved one.
    let stranger = TestKey::new(9).p2wpkh();
    wallet.metadata.reserve(
        coins[0].outpoint,
        device,
        u64::MAX,
        Stamp { millis: 2, device },
    );
    assert!(matches!(
        wallet.pay(&stranger, REWARD),
        Err(BuildError::Selection(
            SelectionError::InsufficientFunds { .. }
        ))
    ));
}

#[test]
fn psbts_export_import_sign_and_finalize() {
    use bitmesh_core::wallet::psbt::{self, PsbtError};
    for purpose in [Purpose::Bip84, Purpose::Bip86] {
        let mut wallet = Wallet::funded(purpose, 2);
        let coins = spendable(&wallet.tracker, &wallet.metadata, 0, 2);
        let request = PaymentRequest {
            recipients: vec![(TestKey::new(9).p2wpkh(), Amount::from_sat(6_000_000_000))],
            fee_rate: FeeRate::from_sat_per_kwu(500),
        };
        let accounts = wallet.tracker.accounts().to_vec();
        let built = build_payment(&coins, &request, &accounts, (0, 3)).unwrap();
        let exported = psbt::export(&built, &accounts);

        // Export -> text -> import gives the identical PSBT.
        let text = psbt::to_base64(&exported);
        let imported = psbt::from_base64(&text).unwrap();
        assert_eq!(imported, exported);
        assert_eq!(psbt::to_base64(&imported), text);

        // What a hardware signer needs is there.
        let fingerprint = accounts[0].master_fingerprint();
        for input in &imported.inputs {
            assert!(input.witness_utxo.is_some());
            let origins: Vec<_> = input
                .bip32_derivation
                .values()
                .chain(input.tap_key_origins.values().map(|(_, source)| source))
                .collect();
            assert_eq!(origins.len(), 1, "{purpose:?}");
            assert_eq!(origins[0].0, fingerprint);
        }
        let (change, _) = built.change.unwrap();
        let output = &imported.outputs[change];
        assert_eq!(
            output.bip32_derivation.len() + output.tap_key_origins.len(),
            1,
            "change is recognisable"
        );

        assert_eq!(
            psbt::finalize(imported.clone()).unwrap_err(),
            PsbtError::Unsigned { input: 0 }
        );
        let mut signing = imported;
        assert_eq!(
            psbt::sign(&mut signing, &accounts, &AUX).unwrap(),
            built.inputs.len()
        );
        let tx = psbt::finalize(signing).unwrap();
        assert_eq!(
            tx,
            sign(&built, &accounts, &AUX),
            "{purpose:?}: same as signing directly"
        );
        wallet.confirm(tx);
    }
    assert!(matches!(
        psbt::from_base64("cHNidP8="),
        Err(PsbtError::Parse(_))
    ));
    assert!(matches!(
        psbt::from_base64("not base64 at all"),
        Err(PsbtError::Parse(_))
    ));
}

#[test]
fn issue_then_transfer_an_asset() {
    use bitmesh_core::chain::assets::{AssetError, AssetId};
    use bitmesh_core::wallet::build::{build_issuance, build_transfer, IssueRequest};
    let mut wallet = Wallet::funded(Purpose::Bip84, 2);
    let accounts = wallet.tracker.accounts().to_vec();
    let fee_rate = FeeRate::from_sat_per_kwu(500);
    let coins = spendable(&wallet.tracker, &wallet.metadata, 0, 2);

    let bad = IssueRequest {
        ticker: "gold!".into(),
        decimals: 2,
        supply: 1,
    };
    assert!(matches!(
        build_issuance(&coins, &bad, fee_rate, &accounts, (0, 1), (0, 0)),
        Err(BuildError::Asset(AssetError::Malformed(_)))
    ));

    let request = IssueRequest {
        ticker: "GOLD".into(),
        decimals: 2,
        supply: 1_000,
    };
    let built = build_issuance(&coins, &request, fee_rate, &accounts, (0, 1), (0, 0)).unwrap();
    let gold = AssetId::from_issuing_outpoint(&built.tx.input[0].previous_output);
    wallet.confirm(sign(&built, &accounts, &AUX));
    assert_eq!(
        wallet.tracker.balances()[&Unit::Asset(gold)].confirmed,
        1_000
    );
    assert_eq!(
        wallet
            .chain
            .asset(&gold)
            .map(|issuance| issuance.ticker.as_str()),
        Some("GOLD")
    );

    // A payment never spends the gold coin.
    let stranger = TestKey::new(9).p2wpkh();
    let tx = wallet.pay(&stranger, 1_000_000).unwrap();
    let gold_coin = wallet
        .tracker
        .unspent()
        .into_iter()
        .find(|o| !o.assets.is_empty())
        .unwrap();
    assert!(tx
        .input
        .iter()
        .all(|txin| txin.previous_output != gold_coin.outpoint));

    let coins = spendable(&wallet.tracker, &wallet.metadata, 0, 2);
    assert!(matches!(
        build_transfer(
            &coins,
            gold,
            1_001,
            stranger.clone(),
            fee_rate,
            &accounts,
            (0, 2),
            (0, 1)
        ),
        Err(BuildError::InsufficientAsset {
            needed: 1_001,
            available: 1_000,
            ..
        })
    ));
    let built = build_transfer(
        &coins,
        gold,
        300,
        stranger.clone(),
        fee_rate,
        &accounts,
        (0, 2),
        (0, 1),
    )
    .unwrap();
    assert!(built
        .inputs
        .iter()
        .any(|input| input.outpoint == gold_coin.outpoint));
    let tx = sign(&built, &accounts, &AUX);
    wallet.confirm(tx.clone());
    assert_eq!(wallet.tracker.balances()[&Unit::Asset(gold)].confirmed, 700);
    let paid = wallet
        .chain
        .utxo()
        .get(&bitcoin::OutPoint::new(tx.compute_txid(), 0))
        .unwrap();
    assert_eq!(paid.assets.amount(&gold), 300);
    assert_eq!(paid.output.script_pubkey, stranger);
}

#[test]
fn max_sends_everything_but_the_fee() {
    use bitmesh_core::wallet::build::build_sweep;
    let mut wallet = Wallet::funded(Purpose::Bip86, 3);
    let coins = spendable(&wallet.tracker, &wallet.metadata, 0, 2);
    let stranger = TestKey::new(9).p2wpkh();
    let built = build_sweep(&coins, stranger.clone(), FeeRate::from_sat_per_kwu(500)).unwrap();
    assert_eq!(built.tx.output.len(), 1);
    assert_eq!(
        built.tx.output[0].value.to_sat() + built.fee.to_sat(),
        3 * REWARD
    );
    let tx = sign(&built, wallet.tracker.accounts(), &AUX);
    // The estimate matches the signed size (a 64-byte Schnorr signature per input).
    assert!(
        built.fee.to_sat() * 2 >= tx.weight().to_wu(),
        "fee {} for {} WU at 500 sat/kWU",
        built.fee,
        tx.weight()
    );
    wallet.confirm(tx);
    assert_eq!(wallet.tracker.balances()[&Unit::Btc].confirmed, 0);
    assert!(matches!(
        build_sweep(&[], stranger, FeeRate::from_sat_per_kwu(500)),
        Err(BuildError::Dust { .. })
    ));
}

#[test]
fn unconfirmed_coins_are_spent_only_when_nobody_else_can_double_spend_them() {
    use bitcoin::hashes::Hash;
    use bitcoin::{OutPoint, Transaction, TxIn, TxOut};
    let mut wallet = Wallet::funded(Purpose::Bip84, 2);
    let own = wallet.tracker.accounts()[0].script_pubkey(Keychain::External, 5);
    let unconfirmed = |wallet: &Wallet| -> Vec<OutPoint> {
        spendable(&wallet.tracker, &wallet.metadata, 0, 2)
            .into_iter()
            .filter(|coin| matches!(coin.status, TxStatus::Unconfirmed { .. }))
            .map(|coin| coin.outpoint)
            .collect()
    };

    // A payment of the wallet's coins alone, to one of its receive addresses: its output and
    // its change may be spent before it confirms.
    let tx = wallet.pay(&own, 1_000_000).unwrap();
    wallet.tracker.mempool_added(&tx, 1);
    let txid = tx.compute_txid();
    let paid = tx
        .output
        .iter()
        .position(|output| output.script_pubkey == own)
        .unwrap();
    let mut expected: Vec<OutPoint> = (0..tx.output.len())
        .map(|vout| OutPoint::new(txid, vout as u32))
        .collect();
    expected.sort();
    let mut got = unconfirmed(&wallet);
    got.sort();
    assert_eq!(got, expected, "both outputs");
    assert!(got.contains(&OutPoint::new(txid, paid as u32)));

    // A stranger's unconfirmed payment to the same address may never confirm: not spent.
    let stranger = Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::new(bitcoin::Txid::from_byte_array([7; 32]), 0),
            ..TxIn::default()
        }],
        output: vec![TxOut {
            value: Amount::from_sat(50_000),
            script_pubkey: own.clone(),
        }],
    };
    wallet.tracker.mempool_added(&stranger, 2);
    assert_eq!(
        wallet.tracker.balances()[&Unit::Btc].unconfirmed,
        tx.output.iter().map(|o| o.value.to_sat()).sum::<u64>() + 50_000,
        "the wallet sees it"
    );
    let mut after = unconfirmed(&wallet);
    after.sort();
    assert_eq!(after, expected, "but does not spend it");
}
