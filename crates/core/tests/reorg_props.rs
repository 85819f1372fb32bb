//! Property: connecting random valid blocks and disconnecting them again restores the UTXO set
//! exactly, at every step; and asset units are conserved throughout.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::HashMap;

use bitcoin::{Amount, OutPoint, Transaction, TxOut};
use bitmesh_core::chain::assets::{AssetId, AssetRecord, Issuance, Transfer};
use bitmesh_core::chain::block::{connect_block, disconnect_block, ConnectContext};
use bitmesh_core::chain::sigcache::SigCache;
use bitmesh_core::chain::spend::verifier;
use bitmesh_core::chain::state::Chain;
use bitmesh_core::chain::utxo::UtxoSet;
use bitmesh_core::testkit::{block_on, pay, sign_all, spend, TestKey};
use bitmesh_core::Network;
use proptest::prelude::*;

const NOW: u32 = 2_000_000_000;

/// Deterministic choices drawn from a proptest-chosen seed.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % below.max(1)
    }
}

/// Builds a random valid transaction spending 1-3 of the mature coins the test keys own.
fn random_tx(
    chain: &Chain,
    keys: &[TestKey],
    owners: &HashMap<OutPoint, usize>,
    dice: &mut Dice,
    spent: &mut Vec<OutPoint>,
) -> Option<Transaction> {
    let height = chain.height() + 1;
    let maturity = chain.params().coinbase_maturity;
    let mut usable: Vec<(OutPoint, usize)> = chain
        .utxo()
        .iter()
        .filter(|(outpoint, coin)| {
            !spent.contains(outpoint)
                && owners.contains_key(outpoint)
                && (!coin.is_coinbase || height - coin.height >= maturity)
        })
        .map(|(outpoint, _)| (*outpoint, owners[outpoint]))
        .collect();
    usable.sort();
    if usable.is_empty() {
        return None;
    }
    // One owner signs the whole transaction.
    let owner = usable[dice.roll(usable.len() as u64) as usize].1;
    let mine: Vec<OutPoint> = usable
        .iter()
        .filter(|(_, o)| *o == owner)
        .map(|(op, _)| *op)
        .collect();
    let count = 1 + dice.roll(mine.len().min(3) as u64) as usize;
    let inputs: Vec<OutPoint> = mine[..count].to_vec();
    let prevouts: Vec<TxOut> = inputs
        .iter()
        .map(|op| chain.utxo().get(op).unwrap().output.clone())
        .collect();
    let total: u64 = prevouts.iter().map(|txout| txout.value.to_sat()).sum();
    let fee = 1_000 + dice.roll(5_000);
    let outputs = 1 + dice.roll(3);
    let each = (total - fee) / outputs;
    let mut txouts: Vec<TxOut> = (0..outputs)
        .map(|_| {
            let key = &keys[dice.roll(keys.len() as u64) as usize];
            let script = if dice.roll(2) == 0 {
                key.p2wpkh()
            } else {
                key.p2tr()
            };
            pay(&script, each)
        })
        .collect();
    // Assets held by the inputs are passed on to the first output, or, without assets, a
    // third of the transactions issue one.
    let mut held: HashMap<AssetId, u64> = HashMap::new();
    for op in &inputs {
        for (asset, amount) in chain.utxo().get(op).unwrap().assets.iter() {
            *held.entry(asset).or_default() += amount;
        }
    }
    let record = if !held.is_empty() {
        let mut transfers: Vec<Transfer> = held
            .into_iter()
            .map(|(asset, amount)| {
                let split = if outputs > 1 && amount > 1 {
                    1 + dice.roll(amount - 1)
                } else {
                    amount
                };
                let mut allocations = vec![(0u16, split)];
                if split < amount {
                    allocations.push((1, amount - split));
                }
                Transfer { asset, allocations }
            })
            .collect();
        transfers.sort_by_key(|transfer| transfer.asset);
        Some(AssetRecord::Transfer(transfers))
    } else if dice.roll(3) == 0 {
        Some(AssetRecord::Issue(Issuance {
            ticker: "PROP".into(),
            decimals: 0,
            supply: 1 + dice.roll(1_000_000),
            output: 0,
        }))
    } else {
        None
    };
    if let Some(record) = record {
        txouts.push(TxOut {
            value: Amount::ZERO,
            script_pubkey: record.to_script(),
        });
    }
    let mut tx = spend(&inputs, txouts);
    sign_all(&keys[owner], &mut tx, &prevouts);
    spent.extend(inputs);
    Some(tx)
}

fn total_assets(utxo: &UtxoSet) -> HashMap<AssetId, u64> {
    let mut totals = HashMap::new();
    for (_, coin) in utxo.iter() {
        for (asset, amount) in coin.assets.iter() {
            *totals.entry(asset).or_default() += amount;
        }
    }
    totals
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn connect_then_disconnect_restores_the_utxo_set(seed in any::<u64>(), blocks in 4u32..12) {
        let keys: Vec<TestKey> = (0..4).map(TestKey::new).collect();
        let mut dice = Dice(seed);
        let mut chain = Chain::new(Network::Test);
        let mut owners: HashMap<OutPoint, usize> = HashMap::new();
        let mut snapshots = vec![chain.utxo().clone()];
        let mut supplies: HashMap<AssetId, u64> = HashMap::new();
        let mut made = 0;
        for tag in 0..blocks {
            let mut spent = Vec::new();
            let mut txs = Vec::new();
            let mut fees = 0;
            for _ in 0..1 + dice.roll(3) {
                let Some(tx) = random_tx(&chain, &keys, &owners, &mut dice, &mut spent) else { break };
                let input_value: u64 = tx.input.iter().map(|txin| chain.utxo().get(&txin.previous_output).unwrap().output.value.to_sat()).sum();
                let output_value: u64 = tx.output.iter().map(|txout| txout.value.to_sat()).sum();
                fees += input_value - output_value;
                txs.push(tx);
            }
            made += txs.len();
            let miner = (tag % 4) as usize;
            let block = block_on(&chain, chain.tip(), txs.clone(), fees, &keys[miner].p2wpkh(), u64::from(tag));
            for tx in &block.txdata {
                let txid = tx.compute_txid();
                for (vout, txout) in tx.output.iter().enumerate() {
                    if let Some(owner) = keys.iter().position(|key| key.p2wpkh() == txout.script_pubkey || key.p2tr() == txout.script_pubkey) {
                        owners.insert(OutPoint::new(txid, vout as u32), owner);
                    }
                }
                for txout in &tx.output {
                    if let Ok(Some(AssetRecord::Issue(issuance))) = AssetRecord::from_script(&txout.script_pubkey) {
                        supplies.insert(AssetId::from_issuing_outpoint(&tx.input[0].previous_output), issuance.supply);
                    }
                }
            }
            let accepted = chain.accept_block(block, NOW).unwrap();
            prop_assert!(accepted.invalid.is_empty(), "{:?}", accepted.invalid);
            prop_assert_eq!(accepted.change.connected.len(), 1);
            prop_assert_eq!(total_assets(chain.utxo()), supplies.clone(), "asset units conserved");
            snapshots.push(chain.utxo().clone());
        }
        prop_assert!(made >= 2, "only {} transactions in {} blocks", made, blocks);

        // Block by block: connecting onto the previous snapshot gives the next, and
        // disconnecting with the undo data it made gives the previous back, exactly.
        let secp = verifier();
        let sigcache = SigCache::new(0);
        for height in 1..=blocks {
            let hash = chain.hash_at(height).unwrap();
            let block = chain.block(&hash).unwrap().clone();
            let context = ConnectContext {
                params: chain.params(),
                height,
                median_time_past: chain.index().median_time_past(&block.header.prev_blockhash),
                secp: &secp,
                sigcache: &sigcache,
            };
            let mut utxo = snapshots[height as usize - 1].clone();
            let connected = connect_block(&mut utxo, &block, &context).unwrap();
            prop_assert_eq!(&utxo, &snapshots[height as usize]);
            disconnect_block(&mut utxo, &block, &connected.undo).unwrap();
            prop_assert_eq!(&utxo, &snapshots[height as usize - 1]);
        }

        // A longer empty branch from genesis replaces everything: the set empties but for its
        // coinbases; compare against a chain that only saw that branch.
        let genesis = chain.hash_at(0).unwrap();
        let mut parent = genesis;
        let mut fresh = Chain::new(Network::Test);
        for tag in 0..=blocks {
            let block = block_on(&chain, parent, vec![], 0, &keys[0].p2wpkh(), 1_000 + u64::from(tag));
            parent = block.block_hash();
            chain.accept_block(block.clone(), NOW).unwrap();
            fresh.accept_block(block, NOW).unwrap();
        }
        prop_assert_eq!(chain.tip(), parent);
        prop_assert_eq!(chain.utxo(), fresh.utxo());
        prop_assert!(total_assets(chain.utxo()).is_empty());
    }
}
