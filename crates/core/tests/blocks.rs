//! Block validation: a valid chain connects and disconnects exactly, and every rule that can
//! reject a block does so with its own reason, leaving the UTXO set untouched.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use bitcoin::hashes::Hash;
use bitcoin::{
    absolute, Amount, Block, BlockHash, CompactTarget, OutPoint, ScriptBuf, Transaction, TxOut,
    Weight,
};
use bitmesh_core::chain::assets::{AssetError, AssetId, AssetRecord, Issuance, Transfer};
use bitmesh_core::chain::block::{
    check_block, connect_block, disconnect_block, BlockError, ConnectContext, InputError,
};
use bitmesh_core::chain::pow::block_subsidy;
use bitmesh_core::chain::sigcache::SigCache;
use bitmesh_core::chain::spend::{verifier, SpendFailure};
use bitmesh_core::chain::tx::TxError;
use bitmesh_core::chain::utxo::{BlockUndo, UtxoSet};
use bitmesh_core::testkit::{coinbase, mine_block, pay, spend, TestKey};
use bitmesh_core::Network;

const NETWORK: Network = Network::Test;
const TIME: u32 = 1_800_000_000;

/// A chain built block by block with the validation functions under test.
struct TestChain {
    utxo: UtxoSet,
    blocks: Vec<(Block, BlockUndo)>,
    miner: TestKey,
}

impl TestChain {
    fn new() -> TestChain {
        TestChain {
            utxo: UtxoSet::new(),
            blocks: Vec::new(),
            miner: TestKey::new(0),
        }
    }

    fn height(&self) -> u32 {
        self.blocks.len() as u32
    }

    fn tip(&self) -> BlockHash {
        self.blocks
            .last()
            .map_or(NETWORK.genesis_hash(), |(block, _)| block.block_hash())
    }

    fn bits(&self) -> CompactTarget {
        CompactTarget::from_consensus(NETWORK.params().pow_limit_bits)
    }

    /// A block at the next height with `txs` after a coinbase claiming `fees` on top of the
    /// subsidy for the miner.
    fn block_with(&self, txs: Vec<Transaction>, fees: u64) -> Block {
        let height = self.height() + 1;
        let reward = block_subsidy(height, NETWORK.params()).to_sat() + fees;
        let mut txdata = vec![coinbase(height, vec![pay(&self.miner.p2wpkh(), reward)], 0)];
        txdata.extend(txs);
        mine_block(self.tip(), TIME + height, self.bits(), txdata)
    }

    fn try_connect(&mut self, block: Block) -> Result<(), BlockError> {
        check_block(&block)?;
        let secp = verifier();
        let sigcache = SigCache::new(0);
        let context = ConnectContext {
            params: NETWORK.params(),
            height: self.height() + 1,
            median_time_past: TIME + self.height(),
            secp: &secp,
            sigcache: &sigcache,
        };
        let connected = connect_block(&mut self.utxo, &block, &context)?;
        self.blocks.push((block, connected.undo));
        Ok(())
    }

    fn connect(&mut self, txs: Vec<Transaction>, fees: u64) {
        let block = self.block_with(txs, fees);
        self.try_connect(block).expect("a valid block");
    }

    fn disconnect(&mut self) {
        let (block, undo) = self.blocks.pop().expect("a block to disconnect");
        disconnect_block(&mut self.utxo, &block, &undo).expect("matching undo data");
    }

    /// The outpoint and output of the miner's coinbase at `height`.
    fn reward(&self, height: u32) -> (OutPoint, TxOut) {
        let tx = &self.blocks[height as usize - 1].0.txdata[0];
        (OutPoint::new(tx.compute_txid(), 0), tx.output[0].clone())
    }

    /// Mines enough empty blocks that the coinbase at `height` is spendable in the next one.
    fn mature(&mut self) {
        for _ in 0..NETWORK.params().coinbase_maturity {
            self.connect(vec![], 0);
        }
    }

    /// Rejects `block` with `expected` and checks the UTXO set did not change.
    fn assert_rejects(&mut self, block: Block, expected: BlockError) {
        let before = self.utxo.clone();
        assert_eq!(self.try_connect(block), Err(expected));
        assert_eq!(self.utxo, before, "a rejected block changed the UTXO set");
    }
}

/// A signed transaction spending `coins` of `key` to `outputs`.
fn signed(key: &TestKey, coins: &[(OutPoint, TxOut)], outputs: Vec<TxOut>) -> Transaction {
    let outpoints: Vec<OutPoint> = coins.iter().map(|(outpoint, _)| *outpoint).collect();
    let prevouts: Vec<TxOut> = coins.iter().map(|(_, txout)| txout.clone()).collect();
    let mut tx = spend(&outpoints, outputs);
    for input in 0..tx.input.len() {
        key.sign(&mut tx, input, &prevouts);
    }
    tx
}

/// A chain whose first coinbase is mature, and that coinbase.
fn funded() -> (TestChain, (OutPoint, TxOut)) {
    let mut chain = TestChain::new();
    chain.connect(vec![], 0);
    chain.mature();
    let reward = chain.reward(1);
    (chain, reward)
}

#[test]
fn a_chain_of_payments_connects_and_disconnects_exactly() {
    let (mut chain, reward) = funded();
    let (alice, bob) = (TestKey::new(1), TestKey::new(2));
    let value = reward.1.value.to_sat();
    // The miner pays Alice (P2WPKH) and Bob (P2TR), with a fee.
    let first = signed(
        &chain.miner.clone(),
        &[reward],
        vec![
            pay(&alice.p2wpkh(), value / 2),
            pay(&bob.p2tr(), value / 2 - 1_000),
        ],
    );
    // Bob spends his P2TR coin in the same block to Alice.
    let bob_coin = (
        OutPoint::new(first.compute_txid(), 1),
        first.output[1].clone(),
    );
    let second = signed(
        &bob,
        std::slice::from_ref(&bob_coin),
        vec![pay(&alice.p2wpkh(), value / 2 - 2_000)],
    );
    let snapshots = [chain.utxo.clone()];
    chain.connect(vec![first.clone(), second.clone()], 2_000);

    assert!(!chain.utxo.contains(&bob_coin.0), "spent inside the block");
    let alice_first = chain
        .utxo
        .get(&OutPoint::new(first.compute_txid(), 0))
        .unwrap();
    assert_eq!(alice_first.output.value.to_sat(), value / 2);
    assert!(!alice_first.is_coinbase);
    assert_eq!(alice_first.height, chain.height());
    let alice_second = chain
        .utxo
        .get(&OutPoint::new(second.compute_txid(), 0))
        .unwrap();
    assert_eq!(alice_second.output.value.to_sat(), value / 2 - 2_000);
    let (_, coinbase_out) = chain.reward(chain.height());
    assert_eq!(
        coinbase_out.value,
        block_subsidy(chain.height(), NETWORK.params()) + Amount::from_sat(2_000)
    );

    chain.disconnect();
    assert_eq!(
        chain.utxo, snapshots[0],
        "disconnect is the exact inverse of connect"
    );
}

#[test]
fn many_blocks_disconnect_back_to_the_start() {
    let (mut chain, reward) = funded();
    let start = chain.utxo.clone();
    let start_height = chain.height();
    let mut coin = reward;
    let key = chain.miner.clone();
    let mut states = vec![chain.utxo.clone()];
    for round in 0..20u64 {
        let value = coin.1.value.to_sat() - 500;
        let tx = signed(&key, &[coin], vec![pay(&key.p2wpkh(), value)]);
        coin = (OutPoint::new(tx.compute_txid(), 0), tx.output[0].clone());
        chain.connect(vec![tx], 500 * (round % 2));
        states.push(chain.utxo.clone());
    }
    while chain.height() > start_height {
        states.pop();
        chain.disconnect();
        assert_eq!(&chain.utxo, states.last().unwrap());
    }
    assert_eq!(chain.utxo, start);
}

#[test]
fn context_free_rules_each_reject_with_their_reason() {
    let (mut chain, reward) = funded();
    let key = chain.miner.clone();
    let pay_self = |coin: &(OutPoint, TxOut)| {
        signed(
            &key,
            std::slice::from_ref(coin),
            vec![pay(&key.p2wpkh(), 1_000)],
        )
    };

    let mut empty = chain.block_with(vec![], 0);
    empty.txdata.clear();
    chain.assert_rejects(empty, BlockError::NoTransactions);

    let tx = pay_self(&reward);
    let mut first_not_coinbase = chain.block_with(vec![tx.clone()], 0);
    first_not_coinbase.txdata.swap(0, 1);
    chain.assert_rejects(first_not_coinbase, BlockError::FirstNotCoinbase);

    let extra = coinbase(chain.height() + 1, vec![pay(&key.p2wpkh(), 1)], 9);
    chain.assert_rejects(
        chain.block_with(vec![extra], 0),
        BlockError::ExtraCoinbase { tx: 1 },
    );

    let mut bad_root = chain.block_with(vec![], 0);
    bad_root.header.merkle_root = bitcoin::TxMerkleNode::all_zeros();
    chain.assert_rejects(bad_root, BlockError::BadMerkleRoot);

    let mut bad_commitment = chain.block_with(vec![tx.clone()], 0);
    let commitment = bad_commitment.txdata[0].output.last_mut().unwrap();
    let mut script = commitment.script_pubkey.to_bytes();
    script[10] ^= 1;
    commitment.script_pubkey = ScriptBuf::from_bytes(script);
    bad_commitment.header.merkle_root = bad_commitment.compute_merkle_root().unwrap();
    chain.assert_rejects(bad_commitment, BlockError::BadWitnessCommitment);

    let duplicate = chain.block_with(vec![tx.clone(), tx.clone()], 0);
    chain.assert_rejects(duplicate, BlockError::DuplicateTxid(tx.compute_txid()));

    let mut legacy_output = tx.clone();
    legacy_output.output[0].script_pubkey =
        ScriptBuf::new_p2pkh(&bitcoin::PubkeyHash::from_byte_array([1; 20]));
    chain.assert_rejects(
        chain.block_with(vec![legacy_output], 0),
        BlockError::Transaction {
            tx: 1,
            error: TxError::UnsupportedOutput { output: 0 },
        },
    );

    // Many outputs of data: over the weight limit.
    let mut heavy = tx.clone();
    heavy.output = (0..10)
        .map(|_| TxOut {
            value: Amount::ZERO,
            script_pubkey: ScriptBuf::from_bytes(vec![0x6a; 100_001]),
        })
        .collect();
    let block = chain.block_with(vec![heavy], 0);
    let weight = block.weight();
    assert!(weight > Weight::MAX_BLOCK);
    chain.assert_rejects(block, BlockError::TooHeavy(weight));
}

#[test]
fn contextual_rules_each_reject_with_their_reason() {
    let (mut chain, reward) = funded();
    let key = chain.miner.clone();
    let value = reward.1.value.to_sat();

    let mut wrong_height = chain.block_with(vec![], 0);
    wrong_height.txdata[0] = coinbase(chain.height() + 7, wrong_height.txdata[0].output.clone(), 0);
    let wrong_height = mine_block(chain.tip(), TIME, chain.bits(), wrong_height.txdata);
    chain.assert_rejects(wrong_height, BlockError::BadCoinbaseHeight);

    let greedy = chain.block_with(vec![], 1);
    let subsidy = block_subsidy(chain.height() + 1, NETWORK.params());
    chain.assert_rejects(
        greedy,
        BlockError::CoinbaseTooLarge {
            claimed: subsidy + Amount::from_sat(1),
            allowed: subsidy,
        },
    );

    let unknown = (
        OutPoint::new(bitcoin::Txid::from_byte_array([9; 32]), 0),
        reward.1.clone(),
    );
    let spends_unknown = signed(
        &key,
        std::slice::from_ref(&unknown),
        vec![pay(&key.p2wpkh(), 1)],
    );
    chain.assert_rejects(
        chain.block_with(vec![spends_unknown], 0),
        BlockError::MissingInput {
            tx: 1,
            outpoint: unknown.0,
        },
    );

    let once = signed(
        &key,
        std::slice::from_ref(&reward),
        vec![pay(&key.p2wpkh(), value - 10)],
    );
    let twice = signed(
        &key,
        std::slice::from_ref(&reward),
        vec![pay(&key.p2wpkh(), value - 20)],
    );
    chain.assert_rejects(
        chain.block_with(vec![once.clone(), twice.clone()], 0),
        BlockError::DoubleSpend {
            tx: 2,
            outpoint: reward.0,
        },
    );

    // The tip's coinbase is one block too young.
    let young = chain.reward(chain.height());
    let spends_young = signed(&key, &[young], vec![pay(&key.p2wpkh(), 1)]);
    let required = NETWORK.params().coinbase_maturity;
    chain.assert_rejects(
        chain.block_with(vec![spends_young], 0),
        BlockError::Inputs {
            tx: 1,
            error: InputError::ImmatureCoinbase {
                input: 0,
                depth: required - 1,
                required,
            },
        },
    );

    let mut locked = spend(&[reward.0], vec![pay(&key.p2wpkh(), 1)]);
    locked.lock_time = absolute::LockTime::from_height(chain.height() + 1).unwrap();
    key.sign(&mut locked, 0, std::slice::from_ref(&reward.1));
    chain.assert_rejects(
        chain.block_with(vec![locked], 0),
        BlockError::Inputs {
            tx: 1,
            error: InputError::NonFinal,
        },
    );

    let overspend = signed(
        &key,
        std::slice::from_ref(&reward),
        vec![pay(&key.p2wpkh(), value + 1)],
    );
    chain.assert_rejects(
        chain.block_with(vec![overspend], 0),
        BlockError::Inputs {
            tx: 1,
            error: InputError::InsufficientValue {
                inputs: Amount::from_sat(value),
                outputs: Amount::from_sat(value + 1),
            },
        },
    );

    let mut forged = once.clone();
    forged.output[0].value = Amount::from_sat(value - 11); // signed for value - 10
    chain.assert_rejects(
        chain.block_with(vec![forged], 1),
        BlockError::Spend {
            tx: 1,
            error: bitmesh_core::chain::spend::SpendError {
                input: 0,
                failure: SpendFailure::InvalidSignature,
            },
        },
    );

    let stranger = TestKey::new(77);
    let mut wrong_key = spend(&[reward.0], vec![pay(&key.p2wpkh(), value - 10)]);
    stranger.sign(
        &mut wrong_key,
        0,
        &[TxOut {
            value: reward.1.value,
            script_pubkey: stranger.p2wpkh(),
        }],
    );
    chain.assert_rejects(
        chain.block_with(vec![wrong_key], 10),
        BlockError::Spend {
            tx: 1,
            error: bitmesh_core::chain::spend::SpendError {
                input: 0,
                failure: SpendFailure::PublicKeyMismatch,
            },
        },
    );

    // After the first spend confirms, spending the same coin again is a missing input.
    chain.connect(vec![once], 10);
    let again = signed(
        &key,
        std::slice::from_ref(&reward),
        vec![pay(&key.p2wpkh(), 1)],
    );
    chain.assert_rejects(
        chain.block_with(vec![again], 0),
        BlockError::MissingInput {
            tx: 1,
            outpoint: reward.0,
        },
    );
}

#[test]
fn assets_are_issued_moved_and_never_burnt() {
    let (mut chain, reward) = funded();
    let key = chain.miner.clone();
    let (alice, bob) = (TestKey::new(1), TestKey::new(2));
    let value = reward.1.value.to_sat();
    let issue = AssetRecord::Issue(Issuance {
        ticker: "GOLD".into(),
        decimals: 0,
        supply: 1_000,
        output: 0,
    });
    let issuing = signed(
        &key,
        std::slice::from_ref(&reward),
        vec![
            pay(&alice.p2wpkh(), 10_000),
            pay(&key.p2wpkh(), value - 20_000),
            TxOut {
                value: Amount::ZERO,
                script_pubkey: issue.to_script(),
            },
        ],
    );
    chain.connect(vec![issuing.clone()], 10_000);
    let gold = AssetId::from_issuing_outpoint(&reward.0);
    let alice_gold = (
        OutPoint::new(issuing.compute_txid(), 0),
        issuing.output[0].clone(),
    );
    assert_eq!(
        chain.utxo.get(&alice_gold.0).unwrap().assets.amount(&gold),
        1_000
    );

    // Alice forgets the record: the gold would be burnt, so the block is refused.
    let careless = signed(
        &alice,
        std::slice::from_ref(&alice_gold),
        vec![pay(&bob.p2wpkh(), 9_000)],
    );
    chain.assert_rejects(
        chain.block_with(vec![careless], 1_000),
        BlockError::Inputs {
            tx: 1,
            error: InputError::Asset(AssetError::Unallocated(gold)),
        },
    );

    // Alice sends 400 to Bob and keeps 600.
    let transfer = AssetRecord::Transfer(vec![Transfer {
        asset: gold,
        allocations: vec![(0, 400), (1, 600)],
    }]);
    let moving = signed(
        &alice,
        &[alice_gold],
        vec![
            pay(&bob.p2tr(), 4_000),
            pay(&alice.p2wpkh(), 5_000),
            TxOut {
                value: Amount::ZERO,
                script_pubkey: transfer.to_script(),
            },
        ],
    );
    chain.connect(vec![moving.clone()], 1_000);
    let txid = moving.compute_txid();
    assert_eq!(
        chain
            .utxo
            .get(&OutPoint::new(txid, 0))
            .unwrap()
            .assets
            .amount(&gold),
        400
    );
    assert_eq!(
        chain
            .utxo
            .get(&OutPoint::new(txid, 1))
            .unwrap()
            .assets
            .amount(&gold),
        600
    );
    let total: u64 = chain
        .utxo
        .iter()
        .map(|(_, coin)| coin.assets.amount(&gold))
        .sum();
    assert_eq!(total, 1_000, "no unit created or destroyed");

    chain.disconnect();
    let total: u64 = chain
        .utxo
        .iter()
        .map(|(_, coin)| coin.assets.amount(&gold))
        .sum();
    assert_eq!(total, 1_000);
}
