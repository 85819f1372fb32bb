//! The chain state: header rules, fork choice by most work, reorganisations (deep ones, and ones
//! whose new branch turns out invalid halfway), and the asset registry following the chain.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use bitcoin::block::{Header, Version};
use bitcoin::{Amount, Block, BlockHash, OutPoint, Transaction, TxOut};
use bitmesh_core::chain::assets::{AssetId, AssetRecord, Issuance};
use bitmesh_core::chain::block::{BlockError, InputError};
use bitmesh_core::chain::index::BlockStatus;
use bitmesh_core::chain::state::{AcceptError, Chain, HeaderError, MAX_FUTURE_BLOCK_TIME};
use bitmesh_core::testkit::{self, mine_block, pay, spend, TestKey};
use bitmesh_core::Network;

const NETWORK: Network = Network::Test;
/// A clock far enough ahead that no test block is "in the future".
const NOW: u32 = 2_000_000_000;

fn miner() -> TestKey {
    TestKey::new(0)
}

/// A valid block on `parent` holding `txs` (claiming `fees`), distinguished by `tag`.
fn block_on(chain: &Chain, parent: BlockHash, txs: Vec<Transaction>, fees: u64, tag: u64) -> Block {
    testkit::block_on(chain, parent, txs, fees, &miner().p2wpkh(), tag)
}

/// Extends the branch ending at `parent` by `count` empty blocks, accepting each.
fn extend(chain: &mut Chain, mut parent: BlockHash, count: u32, tag: u64) -> Vec<Block> {
    let mut blocks = Vec::new();
    for _ in 0..count {
        let block = block_on(chain, parent, vec![], 0, tag);
        parent = block.block_hash();
        chain.accept_block(block.clone(), NOW).expect("valid block");
        blocks.push(block);
    }
    blocks
}

fn hashes(blocks: &[std::sync::Arc<Block>]) -> Vec<BlockHash> {
    blocks.iter().map(|block| block.block_hash()).collect()
}

#[test]
fn blocks_extend_the_tip() {
    let mut chain = Chain::new(NETWORK);
    let genesis = chain.tip();
    let block = block_on(&chain, genesis, vec![], 0, 0);
    let accepted = chain.accept_block(block.clone(), NOW).unwrap();
    assert_eq!(hashes(&accepted.change.connected), [block.block_hash()]);
    assert!(accepted.change.disconnected.is_empty());
    assert_eq!(chain.tip(), block.block_hash());
    assert_eq!(chain.height(), 1);
    assert_eq!(chain.utxo().len(), 1, "the coinbase output");

    // Accepting it again changes nothing.
    assert!(chain.accept_block(block, NOW).unwrap().change.is_empty());
}

#[test]
fn header_rules_each_reject_with_their_reason() {
    let mut chain = Chain::new(NETWORK);
    let genesis = chain.tip();
    let good = block_on(&chain, genesis, vec![], 0, 0).header;
    let remine = |mut header: Header| {
        header.nonce = bitmesh_core::chain::pow::search_nonce(&header, 0..=u32::MAX).unwrap();
        header
    };

    let mut orphan = good;
    orphan.prev_blockhash =
        BlockHash::from_raw_hash(bitcoin::hashes::Hash::from_byte_array([7; 32]));
    assert_eq!(
        chain.accept_header(&orphan, NOW),
        Err(HeaderError::UnknownParent(orphan.prev_blockhash))
    );

    let mut old = good;
    old.version = Version::from_consensus(0);
    assert_eq!(
        chain.accept_header(&remine(old), NOW),
        Err(HeaderError::ObsoleteVersion(0))
    );

    let mut wrong_bits = good;
    wrong_bits.bits = bitcoin::CompactTarget::from_consensus(0x2000_ffff);
    assert_eq!(
        chain.accept_header(&remine(wrong_bits), NOW),
        Err(HeaderError::BadBits {
            expected: good.bits,
            found: wrong_bits.bits
        })
    );

    let mut no_work = good;
    no_work.nonce = (0..)
        .find(|&nonce| {
            no_work.nonce = nonce;
            no_work.validate_pow(no_work.target()).is_err()
        })
        .unwrap();
    assert_eq!(
        chain.accept_header(&no_work, NOW),
        Err(HeaderError::BadProofOfWork)
    );

    let genesis_time = chain.tip_entry().header.time;
    let mut stale = good;
    stale.time = genesis_time;
    assert_eq!(
        chain.accept_header(&remine(stale), NOW),
        Err(HeaderError::TimeTooOld {
            time: genesis_time,
            median: genesis_time
        })
    );

    let now = good.time - MAX_FUTURE_BLOCK_TIME - 1;
    assert_eq!(
        chain.accept_header(&good, now),
        Err(HeaderError::TimeTooNew {
            time: good.time,
            limit: good.time - 1
        })
    );

    assert_eq!(chain.accept_header(&good, NOW), Ok(good.block_hash()));
    assert_eq!(chain.index().len(), 2);
}

#[test]
fn equal_work_keeps_the_first_seen_and_more_work_reorganises() {
    let mut chain = Chain::new(NETWORK);
    let genesis = chain.tip();
    let main = extend(&mut chain, genesis, 3, 1);
    let side = extend(&mut chain, genesis, 3, 2);
    assert_eq!(
        chain.tip(),
        main[2].block_hash(),
        "a tie keeps the first seen"
    );

    let heavier = block_on(&chain, side[2].block_hash(), vec![], 0, 2);
    let accepted = chain.accept_block(heavier.clone(), NOW).unwrap();
    assert_eq!(chain.tip(), heavier.block_hash());
    let main_hashes: Vec<BlockHash> = main.iter().rev().map(Block::block_hash).collect();
    assert_eq!(
        hashes(&accepted.change.disconnected),
        main_hashes,
        "tip first"
    );
    let mut side_hashes: Vec<BlockHash> = side.iter().map(Block::block_hash).collect();
    side_hashes.push(heavier.block_hash());
    assert_eq!(
        hashes(&accepted.change.connected),
        side_hashes,
        "oldest first"
    );

    // The UTXO set is what a chain that only ever saw the side branch holds.
    let mut fresh = Chain::new(NETWORK);
    for block in side.iter().chain([&heavier]) {
        fresh.accept_block(block.clone(), NOW).unwrap();
    }
    assert_eq!(chain.utxo(), fresh.utxo());
}

#[test]
fn a_hundred_block_reorganisation() {
    let mut chain = Chain::new(NETWORK);
    let genesis = chain.tip();
    extend(&mut chain, genesis, 100, 1);
    let side = extend(&mut chain, genesis, 101, 2);
    assert_eq!(chain.tip(), side[100].block_hash());
    assert_eq!(chain.height(), 101);

    let mut fresh = Chain::new(NETWORK);
    for block in &side {
        fresh.accept_block(block.clone(), NOW).unwrap();
    }
    assert_eq!(chain.utxo(), fresh.utxo());
}

#[test]
fn a_branch_invalid_halfway_leaves_the_old_chain_intact() {
    let mut chain = Chain::new(NETWORK);
    let genesis = chain.tip();
    let main = extend(&mut chain, genesis, 10, 1);
    let utxo_before = chain.utxo().clone();

    // A longer side branch whose 8th block spends a coin that does not exist. Its blocks are
    // delivered headers first and data last, so the whole branch is tried at once.
    let mut side: Vec<Block> = Vec::new();
    let mut parent = genesis;
    let mut shadow = Chain::new(NETWORK); // computes bits for the side branch
    for height in 1..=15u32 {
        let txs = if height == 8 {
            let ghost = OutPoint::new(main[0].txdata[0].compute_txid(), 5);
            let mut tx = spend(&[ghost], vec![pay(&miner().p2wpkh(), 1_000)]);
            miner().sign(&mut tx, 0, &[pay(&miner().p2wpkh(), 2_000)]);
            vec![tx]
        } else {
            vec![]
        };
        let block = block_on(&shadow, parent, txs, 0, 2);
        shadow.accept_header(&block.header, NOW).unwrap();
        parent = block.block_hash();
        side.push(block);
    }
    for block in &side {
        chain.accept_header(&block.header, NOW).unwrap();
    }
    // Deliver the data of blocks 2..=15 first: nothing can connect without block 1.
    for block in &side[1..] {
        assert!(chain
            .accept_block(block.clone(), NOW)
            .unwrap()
            .change
            .is_empty());
    }
    let accepted = chain.accept_block(side[0].clone(), NOW).unwrap();
    assert_eq!(
        accepted.invalid,
        [(
            side[7].block_hash(),
            BlockError::MissingInput {
                tx: 1,
                outpoint: OutPoint::new(main[0].txdata[0].compute_txid(), 5)
            }
        )]
    );
    assert!(accepted.change.is_empty(), "back where it started");
    assert_eq!(chain.tip(), main[9].block_hash());
    assert_eq!(chain.utxo(), &utxo_before);
    for block in &side[7..] {
        assert_eq!(
            chain.index().get(&block.block_hash()).unwrap().status,
            BlockStatus::Invalid
        );
    }
    // The invalid block itself, and building on it, are refused at once.
    assert_eq!(
        chain.accept_block(side[7].clone(), NOW),
        Err(AcceptError::KnownInvalid)
    );
    assert_eq!(
        chain.accept_header(&side[7].header, NOW),
        Err(HeaderError::KnownInvalid(side[7].block_hash()))
    );
    let child = block_on(&shadow, side[14].block_hash(), vec![], 0, 3);
    assert_eq!(
        chain.accept_block(child, NOW),
        Err(AcceptError::Header(HeaderError::InvalidParent(
            side[14].block_hash()
        )))
    );
}

#[test]
fn a_heavier_valid_prefix_of_a_failing_branch_becomes_active() {
    let mut chain = Chain::new(NETWORK);
    let genesis = chain.tip();
    extend(&mut chain, genesis, 3, 1);
    let mut shadow = Chain::new(NETWORK);
    let mut side = Vec::new();
    let mut parent = genesis;
    for height in 1..=6u32 {
        let mut block = block_on(&shadow, parent, vec![], 0, 2);
        if height == 6 {
            // Claims one satoshi too many.
            block.txdata[0].output[0].value += Amount::from_sat(1);
            block = mine_block(parent, block.header.time, block.header.bits, block.txdata);
        }
        shadow.accept_header(&block.header, NOW).unwrap();
        parent = block.block_hash();
        side.push(block);
    }
    for block in &side[..5] {
        chain.accept_header(&block.header, NOW).unwrap();
    }
    for block in side[1..5].iter().rev() {
        chain.accept_block(block.clone(), NOW).unwrap();
    }
    chain.accept_block(side[0].clone(), NOW).unwrap();
    assert_eq!(
        chain.tip(),
        side[4].block_hash(),
        "five valid blocks beat three"
    );
    let accepted = chain.accept_block(side[5].clone(), NOW).unwrap();
    assert!(
        matches!(accepted.invalid[..], [(hash, BlockError::CoinbaseTooLarge { .. })] if hash == side[5].block_hash())
    );
    assert_eq!(chain.tip(), side[4].block_hash());
}

#[test]
fn the_asset_registry_follows_reorganisations() {
    let mut chain = Chain::new(NETWORK);
    let genesis = chain.tip();
    let main = extend(&mut chain, genesis, 3, 1);
    let reward = (
        OutPoint::new(main[0].txdata[0].compute_txid(), 0),
        main[0].txdata[0].output[0].clone(),
    );
    let record = AssetRecord::Issue(Issuance {
        ticker: "SILVER".into(),
        decimals: 3,
        supply: 5_000,
        output: 0,
    });
    let mut issuing = spend(
        &[reward.0],
        vec![
            pay(&miner().p2tr(), reward.1.value.to_sat() - 1_000),
            TxOut {
                value: Amount::ZERO,
                script_pubkey: record.to_script(),
            },
        ],
    );
    miner().sign(&mut issuing, 0, std::slice::from_ref(&reward.1));
    let with_issue = block_on(
        &chain,
        main[2].block_hash(),
        vec![issuing.clone()],
        1_000,
        1,
    );
    chain.accept_block(with_issue, NOW).unwrap();
    let silver = AssetId::from_issuing_outpoint(&reward.0);
    assert_eq!(
        chain.asset(&silver).map(|issuance| issuance.supply),
        Some(5_000)
    );
    let coin = chain
        .utxo()
        .get(&OutPoint::new(issuing.compute_txid(), 0))
        .unwrap();
    assert_eq!(coin.assets.amount(&silver), 5_000);

    // A longer branch without the issuance replaces it: the asset is gone.
    extend(&mut chain, genesis, 5, 2);
    assert_eq!(chain.asset(&silver), None);
    assert!(chain.utxo().iter().all(|(_, coin)| coin.assets.is_empty()));
}

#[test]
fn immature_spends_are_invalid_in_a_block() {
    let mut chain = Chain::new(NETWORK);
    let genesis = chain.tip();
    let main = extend(&mut chain, genesis, 1, 1);
    let reward = (
        OutPoint::new(main[0].txdata[0].compute_txid(), 0),
        main[0].txdata[0].output[0].clone(),
    );
    let mut tx = spend(&[reward.0], vec![pay(&miner().p2wpkh(), 1_000)]);
    miner().sign(&mut tx, 0, std::slice::from_ref(&reward.1));
    let block = block_on(
        &chain,
        chain.tip(),
        vec![tx],
        reward.1.value.to_sat() - 1_000,
        1,
    );
    let hash = block.block_hash();
    let accepted = chain.accept_block(block, NOW).unwrap();
    assert!(matches!(
        accepted.invalid[..],
        [(h, BlockError::Inputs { tx: 1, error: InputError::ImmatureCoinbase { .. } })] if h == hash
    ));
    assert_eq!(chain.tip(), main[0].block_hash());
}

#[test]
fn a_reorganisation_reports_exactly_which_transactions_left_and_entered() {
    let mut chain = Chain::new(NETWORK);
    let genesis = chain.tip();
    let base = extend(&mut chain, genesis, 3, 1);
    let coin = |block: &Block| {
        (
            OutPoint::new(block.txdata[0].compute_txid(), 0),
            block.txdata[0].output[0].clone(),
        )
    };
    let signed = |coin: (OutPoint, TxOut), fee: u64| {
        let mut tx = spend(
            &[coin.0],
            vec![pay(&miner().p2wpkh(), coin.1.value.to_sat() - fee)],
        );
        miner().sign(&mut tx, 0, &[coin.1]);
        tx
    };
    let both = signed(coin(&base[0]), 1_000); // confirmed on both branches
    let only_old = signed(coin(&base[1]), 1_000);
    let only_new = signed(coin(&base[1]), 2_000); // a conflicting spend of the same coin
    let fork = chain.tip();
    let old = block_on(
        &chain,
        fork,
        vec![both.clone(), only_old.clone()],
        2_000,
        10,
    );
    chain.accept_block(old.clone(), NOW).unwrap();
    let new_a = block_on(&chain, fork, vec![only_new.clone()], 2_000, 20);
    chain.accept_block(new_a.clone(), NOW).unwrap();
    let new_b = block_on(&chain, new_a.block_hash(), vec![both.clone()], 1_000, 21);
    let accepted = chain.accept_block(new_b.clone(), NOW).unwrap();

    assert_eq!(
        accepted.change.transactions_left(),
        [old.txdata[0].compute_txid(), only_old.compute_txid()]
    );
    assert_eq!(
        accepted.change.transactions_entered(),
        [
            new_a.txdata[0].compute_txid(),
            only_new.compute_txid(),
            new_b.txdata[0].compute_txid()
        ]
    );
}
