//! The mempool and block templates: acceptance with a reason for each refusal, fee-rate order
//! with ancestor packages, eviction, expiry, and following blocks and reorganisations.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use bitcoin::{Amount, FeeRate, OutPoint, Transaction, TxOut, Weight};
use bitmesh_core::chain::block::InputError;
use bitmesh_core::chain::mempool::{Mempool, MempoolConfig, MempoolError};
use bitmesh_core::chain::spend::{SpendError, SpendFailure};
use bitmesh_core::chain::state::Chain;
use bitmesh_core::chain::template::{build_template, select_transactions};
use bitmesh_core::chain::tx::TxError;
use bitmesh_core::testkit::{block_on, pay, sign_all, spend, TestKey};
use bitmesh_core::Network;

const NOW: u32 = 2_000_000_000;

/// A chain on the test network whose first `coins` coinbases are mature, and those coins.
fn funded(coins: u32) -> (Chain, TestKey, Vec<(OutPoint, TxOut)>) {
    let mut chain = Chain::new(Network::Test);
    let key = TestKey::new(0);
    let mut rewards = Vec::new();
    for height in 1..=coins + Network::Test.params().coinbase_maturity {
        let block = block_on(
            &chain,
            chain.tip(),
            vec![],
            0,
            &key.p2wpkh(),
            u64::from(height),
        );
        if height <= coins {
            let coinbase = &block.txdata[0];
            rewards.push((
                OutPoint::new(coinbase.compute_txid(), 0),
                coinbase.output[0].clone(),
            ));
        }
        chain.accept_block(block, NOW).unwrap();
    }
    (chain, key, rewards)
}

/// `key` spends `coins` to itself, paying `fee`, in `outputs` equal outputs.
fn pay_self(key: &TestKey, coins: &[(OutPoint, TxOut)], fee: u64, outputs: u64) -> Transaction {
    let total: u64 = coins
        .iter()
        .map(|(_, txout)| txout.value.to_sat())
        .sum::<u64>()
        - fee;
    let outpoints: Vec<OutPoint> = coins.iter().map(|(outpoint, _)| *outpoint).collect();
    let mut tx = spend(
        &outpoints,
        (0..outputs)
            .map(|_| pay(&key.p2wpkh(), total / outputs))
            .collect(),
    );
    let spare = total % outputs;
    tx.output[0].value += Amount::from_sat(spare);
    let prevouts: Vec<TxOut> = coins.iter().map(|(_, txout)| txout.clone()).collect();
    sign_all(key, &mut tx, &prevouts);
    tx
}

fn output(tx: &Transaction, vout: u32) -> (OutPoint, TxOut) {
    (
        OutPoint::new(tx.compute_txid(), vout),
        tx.output[vout as usize].clone(),
    )
}

#[test]
fn acceptance_and_each_refusal() {
    let (mut chain, key, coins) = funded(3);
    let mut pool = Mempool::new(MempoolConfig::default(), 1);
    let now = u64::from(NOW);

    let tx = pay_self(&key, &coins[..1], 1_000, 1);
    assert_eq!(pool.accept(tx.clone(), &mut chain, now), Ok(vec![]));
    assert!(pool.contains(&tx.compute_txid()));
    assert!(
        chain.sigcache_mut().contains(&tx.compute_wtxid()),
        "verified once, cached"
    );
    assert_eq!(
        pool.accept(tx.clone(), &mut chain, now),
        Err(MempoolError::AlreadyKnown)
    );

    let conflict = pay_self(&key, &coins[..1], 2_000, 1);
    assert_eq!(
        pool.accept(conflict, &mut chain, now),
        Err(MempoolError::DoubleSpend {
            outpoint: coins[0].0,
            by: tx.compute_txid()
        })
    );

    let block = chain.block(&chain.tip()).unwrap().clone();
    assert_eq!(
        pool.accept(block.txdata[0].clone(), &mut chain, now),
        Err(MempoolError::Coinbase)
    );

    let mut empty = pay_self(&key, &coins[1..2], 1_000, 1);
    empty.output.clear();
    assert_eq!(
        pool.accept(empty, &mut chain, now),
        Err(MempoolError::Invalid(TxError::NoOutputs))
    );

    let ghost = (OutPoint::new(tx.compute_txid(), 9), coins[1].1.clone());
    assert_eq!(
        pool.accept(
            pay_self(&key, std::slice::from_ref(&ghost), 1_000, 1),
            &mut chain,
            now
        ),
        Err(MempoolError::MissingInput(ghost.0))
    );

    let young = chain.block(&chain.tip()).unwrap().txdata[0].clone();
    let young = output(&young, 0);
    assert!(matches!(
        pool.accept(pay_self(&key, &[young], 1_000, 1), &mut chain, now),
        Err(MempoolError::Inputs(InputError::ImmatureCoinbase { .. }))
    ));

    let cheap = pay_self(&key, &coins[1..2], 10, 1);
    assert!(matches!(
        pool.accept(cheap, &mut chain, now),
        Err(MempoolError::FeeTooLow { .. })
    ));

    let mut forged = pay_self(&key, &coins[1..2], 1_000, 1);
    forged.output[0].value -= Amount::from_sat(1);
    assert_eq!(
        pool.accept(forged, &mut chain, now),
        Err(MempoolError::Spend(SpendError {
            input: 0,
            failure: SpendFailure::InvalidSignature
        }))
    );

    let mut huge = pay_self(&key, &coins[1..2], 1_000, 1);
    huge.output.push(TxOut {
        value: Amount::ZERO,
        script_pubkey: bitcoin::ScriptBuf::from_bytes(vec![0x6a; 120_000]),
    });
    assert!(matches!(
        pool.accept(huge, &mut chain, now),
        Err(MempoolError::NonStandardSize(_))
    ));

    assert_eq!(pool.len(), 1, "nothing refused entered");
}

#[test]
fn unconfirmed_chains_and_child_pays_for_parent() {
    let (mut chain, key, coins) = funded(2);
    let mut pool = Mempool::new(MempoolConfig::default(), 1);
    let now = u64::from(NOW);
    let parent = pay_self(&key, &coins[..1], 200, 1); // about 1.8 sat/vB
    let child = pay_self(&key, &[output(&parent, 0)], 20_000, 1);
    let other = pay_self(&key, &coins[1..2], 2_000, 1);
    for tx in [&parent, &child, &other] {
        pool.accept(tx.clone(), &mut chain, now).unwrap();
    }
    assert_eq!(pool.get(&child.compute_txid()).unwrap().parents.len(), 1);

    // Room for two transactions only: the parent-child package pays more than `other`.
    let budget = parent.weight() + child.weight() + Weight::from_wu(10);
    let (selected, fees) = select_transactions(&pool, budget);
    let txids: Vec<_> = selected.iter().map(Transaction::compute_txid).collect();
    assert_eq!(
        txids,
        [parent.compute_txid(), child.compute_txid()],
        "parent first"
    );
    assert_eq!(fees, Amount::from_sat(20_200));

    // A full template mines and connects, confirming all three.
    let template = build_template(&chain, &pool, &key.p2tr(), NOW, 0);
    assert_eq!(template.fees, Amount::from_sat(22_200));
    let mut block = template.block;
    block.header.nonce =
        bitmesh_core::chain::pow::search_nonce(&block.header, 0..=u32::MAX).unwrap();
    let accepted = chain.accept_block(block, NOW).unwrap();
    assert!(accepted.invalid.is_empty(), "{:?}", accepted.invalid);
    pool.apply_tip_change(&accepted.change, &mut chain, now);
    assert!(pool.is_empty());
}

#[test]
fn a_full_pool_evicts_the_lowest_fee_rate() {
    let (mut chain, key, coins) = funded(4);
    let now = u64::from(NOW);
    let txs: Vec<Transaction> = (0..3)
        .map(|i| pay_self(&key, &coins[i..i + 1], 1_000 * (i as u64 + 1), 1))
        .collect();
    let vsize = txs[0].vsize() as u64;
    let mut pool = Mempool::new(
        MempoolConfig {
            max_vbytes: vsize * 2 + 1,
            ..MempoolConfig::default()
        },
        1,
    );
    pool.accept(txs[1].clone(), &mut chain, now).unwrap();
    pool.accept(txs[2].clone(), &mut chain, now).unwrap();
    // The cheapest arrives last and does not fit.
    assert_eq!(
        pool.accept(txs[0].clone(), &mut chain, now),
        Err(MempoolError::MempoolFull)
    );
    // A richer one pushes out the cheapest present.
    let rich = pay_self(&key, &coins[3..4], 9_000, 1);
    assert_eq!(
        pool.accept(rich, &mut chain, now),
        Ok(vec![txs[1].compute_txid()])
    );
    assert_eq!(pool.len(), 2);
    assert!(pool.vbytes() <= vsize * 2 + 1);
}

#[test]
fn entries_expire_with_their_descendants() {
    let (mut chain, key, coins) = funded(1);
    let mut pool = Mempool::new(
        MempoolConfig {
            expiry_secs: 100,
            ..MempoolConfig::default()
        },
        1,
    );
    let parent = pay_self(&key, &coins, 1_000, 1);
    let child = pay_self(&key, &[output(&parent, 0)], 1_000, 1);
    pool.accept(parent.clone(), &mut chain, 1_000).unwrap();
    pool.accept(child.clone(), &mut chain, 1_050).unwrap();
    assert!(pool.expire(1_100).is_empty());
    let mut expired = pool.expire(1_101);
    expired.sort();
    let mut expected = vec![parent.compute_txid(), child.compute_txid()];
    expected.sort();
    assert_eq!(expired, expected);
    assert!(pool.is_empty() && pool.vbytes() == 0);
}

#[test]
fn blocks_remove_confirmed_and_conflicting_and_reorgs_give_back() {
    let (mut chain, key, coins) = funded(2);
    let mut pool = Mempool::new(MempoolConfig::default(), 1);
    let now = u64::from(NOW);
    let in_pool = pay_self(&key, &coins[..1], 1_000, 1);
    let confirmed_elsewhere = pay_self(&key, &coins[..1], 3_000, 2); // conflicts with in_pool
    let kept = pay_self(&key, &coins[1..2], 1_000, 1);
    pool.accept(in_pool.clone(), &mut chain, now).unwrap();
    pool.accept(kept.clone(), &mut chain, now).unwrap();

    let fork = chain.tip();
    let block = block_on(
        &chain,
        fork,
        vec![confirmed_elsewhere.clone()],
        3_000,
        &key.p2wpkh(),
        100,
    );
    let accepted = chain.accept_block(block.clone(), NOW).unwrap();
    let gone = pool.apply_tip_change(&accepted.change, &mut chain, now);
    assert_eq!(gone, [in_pool.compute_txid()], "conflicts with the block");
    assert!(!pool.contains(&in_pool.compute_txid()));
    assert!(pool.contains(&kept.compute_txid()));

    // A heavier branch without that block: its transaction returns to the pool.
    let a = block_on(&chain, fork, vec![], 0, &key.p2wpkh(), 200);
    chain.accept_block(a.clone(), NOW).unwrap();
    let b = block_on(&chain, a.block_hash(), vec![], 0, &key.p2wpkh(), 201);
    let accepted = chain.accept_block(b, NOW).unwrap();
    assert_eq!(accepted.change.disconnected.len(), 1);
    let gone = pool.apply_tip_change(&accepted.change, &mut chain, now);
    assert!(gone.is_empty(), "everything came back: {gone:?}");
    assert!(
        pool.contains(&confirmed_elsewhere.compute_txid()),
        "back from the disconnected block"
    );
    assert!(pool.contains(&kept.compute_txid()));
    assert_eq!(pool.len(), 2);
}

#[test]
fn a_reorganisation_keeps_unconfirmed_chains_whole() {
    let (mut chain, key, coins) = funded(1);
    let mut pool = Mempool::new(MempoolConfig::default(), 1);
    // Five generations entering at the same second: only the parent links give their order.
    let mut generation = pay_self(&key, &coins, 1_000, 1);
    let mut txids = Vec::new();
    for _ in 0..5 {
        pool.accept(generation.clone(), &mut chain, 7).unwrap();
        txids.push(generation.compute_txid());
        generation = pay_self(&key, &[output(&generation, 0)], 1_000, 1);
    }
    let fork = chain.tip();
    let a = block_on(&chain, fork, vec![], 0, &key.p2wpkh(), 300);
    chain.accept_block(a, NOW).unwrap();
    let b = block_on(&chain, fork, vec![], 0, &key.p2wpkh(), 301);
    chain.accept_block(b.clone(), NOW).unwrap();
    let c = block_on(&chain, b.block_hash(), vec![], 0, &key.p2wpkh(), 302);
    let accepted = chain.accept_block(c, NOW).unwrap();
    assert_eq!(accepted.change.disconnected.len(), 1);
    pool.apply_tip_change(&accepted.change, &mut chain, u64::from(NOW));
    for txid in &txids {
        assert!(pool.contains(txid), "{txid} survived the reorganisation");
        assert_eq!(pool.get(txid).unwrap().entered, 7);
    }
}

#[test]
fn fee_rates_are_ordered() {
    let (mut chain, key, coins) = funded(3);
    let mut pool = Mempool::new(MempoolConfig::default(), 1);
    for (i, fee) in [5_000u64, 1_000, 3_000].into_iter().enumerate() {
        pool.accept(
            pay_self(&key, &coins[i..i + 1], fee, 1),
            &mut chain,
            u64::from(NOW),
        )
        .unwrap();
    }
    let (selected, _) = select_transactions(&pool, Weight::MAX_BLOCK);
    let rates: Vec<FeeRate> = selected
        .iter()
        .map(|tx| pool.get(&tx.compute_txid()).unwrap().fee_rate())
        .collect();
    assert!(rates.windows(2).all(|pair| pair[0] >= pair[1]), "{rates:?}");
    assert_eq!(selected.len(), 3);
}
