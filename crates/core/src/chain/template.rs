//! Block templates: the next block a miner works on, filled from the mempool by fee rate.
//!
//! Transactions are chosen by ancestor package: a transaction counts with its unconfirmed
//! ancestors, at the package's fee rate, so a high-fee child pulls its low-fee parent in
//! (child pays for parent). The best package is taken while it fits the block's weight.

use std::collections::{BinaryHeap, HashMap, HashSet};

use bitcoin::block::{Header, Version};
use bitcoin::hashes::Hash;
use bitcoin::script::{Builder, PushBytesBuf};
use bitcoin::transaction::{self, Transaction, TxIn, TxOut};
use bitcoin::{
    absolute, Amount, Block, FeeRate, OutPoint, ScriptBuf, Sequence, TxMerkleNode, Txid, Weight,
    Witness,
};

use super::block::MAX_BLOCK_WEIGHT;
use super::mempool::{fee_rate, Mempool};
use super::pow::block_subsidy;
use super::state::Chain;

/// Weight kept free for the header and the coinbase.
const RESERVED_WEIGHT: Weight = Weight::from_wu(4_000);

/// The next block to mine: complete but for the nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockTemplate {
    /// The block, with nonce zero.
    pub block: Block,
    /// Its height.
    pub height: u32,
    /// The fees its transactions pay (claimed by the coinbase).
    pub fees: Amount,
}

/// Builds the block that extends the chain's tip with the best-paying mempool transactions,
/// paying subsidy and fees to `payout`. `now` is the clock (Unix seconds); `extra_nonce` makes
/// the coinbase, and so the search space, unique when a nonce range runs out.
pub fn build_template(
    chain: &Chain,
    mempool: &Mempool,
    payout: &ScriptBuf,
    now: u32,
    extra_nonce: u64,
) -> BlockTemplate {
    let height = chain.height() + 1;
    let (transactions, fees) = select_transactions(mempool, MAX_BLOCK_WEIGHT - RESERVED_WEIGHT);
    let reward = block_subsidy(height, chain.params()) + fees;
    let coinbase = coinbase(
        height,
        extra_nonce,
        vec![TxOut {
            value: reward,
            script_pubkey: payout.clone(),
        }],
    );
    let mut txdata = Vec::with_capacity(transactions.len() + 1);
    txdata.push(coinbase);
    txdata.extend(transactions);
    let tip = chain.tip();
    let mut block = Block {
        header: Header {
            version: Version::TWO,
            prev_blockhash: tip,
            merkle_root: TxMerkleNode::all_zeros(),
            time: now.max(chain.median_time_past() + 1),
            bits: chain.next_bits(&tip).expect("the tip is indexed"),
            nonce: 0,
        },
        txdata,
    };
    add_witness_commitment(&mut block);
    block.header.merkle_root = block.compute_merkle_root().expect("a coinbase");
    BlockTemplate {
        block,
        height,
        fees,
    }
}

/// A coinbase for `height` paying `outputs`. Its script holds the height (BIP34), then
/// `extra_nonce` (which makes otherwise equal coinbases differ), then the tag `bitmesh`.
pub fn coinbase(height: u32, extra_nonce: u64, outputs: Vec<TxOut>) -> Transaction {
    let extra = PushBytesBuf::try_from(extra_nonce.to_le_bytes().to_vec()).expect("8 bytes");
    Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig: Builder::new()
                .push_int(i64::from(height))
                .push_slice(extra)
                .push_slice(b"bitmesh")
                .into_script(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: outputs,
    }
}

/// Commits the coinbase to the block's witnesses (BIP141), when any transaction has one: a
/// 32-byte zero reserved value in the coinbase witness and an `OP_RETURN aa21a9ed<commitment>`
/// output. Call before computing the merkle root.
pub fn add_witness_commitment(block: &mut Block) {
    let has_witness = block
        .txdata
        .iter()
        .skip(1)
        .any(|tx| tx.input.iter().any(|txin| !txin.witness.is_empty()));
    if !has_witness {
        return;
    }
    let reserved = [0u8; 32];
    block.txdata[0].input[0].witness = Witness::from_slice(&[reserved]);
    let root = block.witness_root().expect("a coinbase");
    let commitment = Block::compute_witness_commitment(&root, &reserved);
    let mut script = vec![0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed];
    script.extend_from_slice(commitment.as_byte_array());
    block.txdata[0].output.push(TxOut {
        value: Amount::ZERO,
        script_pubkey: ScriptBuf::from_bytes(script),
    });
}

/// A candidate package in the selection heap: higher rate first, then lower txid.
#[derive(PartialEq, Eq)]
struct Candidate {
    rate: FeeRate,
    txid: Txid,
    version: u32,
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rate
            .cmp(&other.rate)
            .then_with(|| other.txid.cmp(&self.txid))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Picks mempool transactions by ancestor-package fee rate within `budget`, parents first.
pub fn select_transactions(mempool: &Mempool, budget: Weight) -> (Vec<Transaction>, Amount) {
    let mut included: HashSet<Txid> = HashSet::new();
    let mut skipped: HashSet<Txid> = HashSet::new();
    let mut versions: HashMap<Txid, u32> = HashMap::new();
    let mut heap = BinaryHeap::new();
    for (txid, _) in mempool.entries() {
        let (rate, _, _) = package(mempool, txid, &included);
        heap.push(Candidate {
            rate,
            txid: *txid,
            version: 0,
        });
    }
    let mut selected = Vec::new();
    let mut weight = Weight::ZERO;
    let mut fees = Amount::ZERO;
    while let Some(candidate) = heap.pop() {
        let txid = candidate.txid;
        if included.contains(&txid) || skipped.contains(&txid) {
            continue;
        }
        if versions.get(&txid).copied().unwrap_or(0) != candidate.version {
            continue; // stale: a newer score was pushed
        }
        let (_, members, package_weight) = package(mempool, &txid, &included);
        if weight + package_weight > budget {
            skipped.insert(txid);
            continue;
        }
        // Ancestors first: a transaction has more in-pool ancestors than each of its parents.
        let mut ordered = members;
        ordered.sort_by_cached_key(|member| mempool.ancestors(member));
        let mut touched = HashSet::new();
        for member in &ordered {
            let entry = mempool.get(member).expect("a mempool entry");
            selected.push((*entry.tx).clone());
            weight += entry.tx.weight();
            fees += entry.fee;
            included.insert(*member);
            touched.extend(entry.children.iter().copied());
        }
        // Descendants of what was just included have smaller packages now: score them again.
        let mut pending: Vec<Txid> = touched.into_iter().collect();
        let mut rescored = HashSet::new();
        while let Some(descendant) = pending.pop() {
            if included.contains(&descendant) || !rescored.insert(descendant) {
                continue;
            }
            let version = versions.entry(descendant).or_insert(0);
            *version += 1;
            let (rate, _, _) = package(mempool, &descendant, &included);
            heap.push(Candidate {
                rate,
                txid: descendant,
                version: *version,
            });
            if let Some(entry) = mempool.get(&descendant) {
                pending.extend(entry.children.iter().copied());
            }
        }
    }
    (selected, fees)
}

/// The fee rate, members and weight of `txid` with its ancestors not yet `included`.
fn package(
    mempool: &Mempool,
    txid: &Txid,
    included: &HashSet<Txid>,
) -> (FeeRate, Vec<Txid>, Weight) {
    let mut members = Vec::new();
    let mut seen = HashSet::new();
    let mut pending = vec![*txid];
    let (mut fee, mut vsize, mut weight) = (Amount::ZERO, 0u64, Weight::ZERO);
    while let Some(member) = pending.pop() {
        if included.contains(&member) || !seen.insert(member) {
            continue;
        }
        let entry = mempool.get(&member).expect("a mempool entry");
        fee += entry.fee;
        vsize += entry.vsize;
        weight += entry.tx.weight();
        members.push(member);
        pending.extend(entry.parents.iter().copied());
    }
    (fee_rate(fee, vsize), members, weight)
}
