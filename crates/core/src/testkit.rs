//! Builders for tests and benchmarks: deterministic keys, signed spends and mined blocks.
//! Compiled only with the `testkit` feature (never in a release of the page or the node).

use bitcoin::block::{Header, Version};
use bitcoin::hashes::Hash;
use bitcoin::key::{CompressedPublicKey, Keypair, TapTweak, UntweakedPublicKey};
use bitcoin::secp256k1::{All, Message, Secp256k1, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, Prevouts, SighashCache, TapSighashType};
use bitcoin::transaction::{self, Transaction, TxIn, TxOut};
use bitcoin::{
    absolute, ecdsa, taproot, Amount, Block, BlockHash, CompactTarget, OutPoint, ScriptBuf,
    Sequence, TxMerkleNode, Witness,
};

use crate::chain::pow::{block_subsidy, search_nonce};
use crate::chain::state::Chain;
use crate::chain::template::add_witness_commitment;
use crate::chain::tx::OutputKind;

/// A key pair that can receive and spend P2WPKH and P2TR (key path) outputs.
#[derive(Clone)]
pub struct TestKey {
    secp: Secp256k1<All>,
    secret: SecretKey,
}

impl TestKey {
    /// A key derived from `seed` (any value but zero gives a valid key).
    pub fn new(seed: u64) -> TestKey {
        let mut bytes = [0u8; 32];
        bytes[24..].copy_from_slice(&seed.wrapping_add(1).to_be_bytes());
        bytes[0] = 0x11;
        TestKey {
            secp: Secp256k1::new(),
            secret: SecretKey::from_slice(&bytes).expect("in range"),
        }
    }

    fn public(&self) -> CompressedPublicKey {
        CompressedPublicKey(self.secret.public_key(&self.secp))
    }

    /// The key pair (for BIP340 signatures: orders, updates, hellos).
    pub fn keypair(&self) -> Keypair {
        Keypair::from_secret_key(&self.secp, &self.secret)
    }

    /// The x-only public key (a peer id or an order's maker).
    pub fn xonly(&self) -> bitcoin::XOnlyPublicKey {
        self.keypair().x_only_public_key().0
    }

    /// This key's P2WPKH output script.
    pub fn p2wpkh(&self) -> ScriptBuf {
        ScriptBuf::new_p2wpkh(&self.public().wpubkey_hash())
    }

    /// This key's P2TR output script (key path only, no script tree).
    pub fn p2tr(&self) -> ScriptBuf {
        let (internal, _) = UntweakedPublicKey::from_keypair(&self.keypair());
        ScriptBuf::new_p2tr(&self.secp, internal, None)
    }

    /// Signs input `input` of `tx`, which spends `prevouts[input]` (a P2WPKH or P2TR output of
    /// this key), with SIGHASH_ALL / SIGHASH_DEFAULT.
    pub fn sign(&self, tx: &mut Transaction, input: usize, prevouts: &[TxOut]) {
        let spent = &prevouts[input];
        let witness = match OutputKind::of(&spent.script_pubkey) {
            Some(OutputKind::P2wpkh) => {
                let sighash_type = EcdsaSighashType::All;
                let sighash = SighashCache::new(&*tx)
                    .p2wpkh_signature_hash(input, &spent.script_pubkey, spent.value, sighash_type)
                    .expect("valid input");
                let signature = self.secp.sign_ecdsa(&Message::from(sighash), &self.secret);
                Witness::p2wpkh(
                    &ecdsa::Signature {
                        signature,
                        sighash_type,
                    },
                    &self.public().0,
                )
            }
            Some(OutputKind::P2tr) => {
                let sighash_type = TapSighashType::Default;
                let sighash = SighashCache::new(&*tx)
                    .taproot_key_spend_signature_hash(input, &Prevouts::All(prevouts), sighash_type)
                    .expect("valid input");
                let tweaked = self.keypair().tap_tweak(&self.secp, None);
                let signature = self
                    .secp
                    .sign_schnorr_no_aux_rand(&Message::from(sighash), &tweaked.to_keypair());
                Witness::p2tr_key_spend(&taproot::Signature {
                    signature,
                    sighash_type,
                })
            }
            _ => panic!("the test key cannot spend {}", spent.script_pubkey),
        };
        tx.input[input].witness = witness;
    }
}

/// A version-2 transaction spending `inputs` (unsigned) to `outputs`.
pub fn spend(inputs: &[OutPoint], outputs: Vec<TxOut>) -> Transaction {
    Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: inputs
            .iter()
            .map(|&previous_output| TxIn {
                previous_output,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::ENABLE_LOCKTIME_NO_RBF,
                witness: Witness::new(),
            })
            .collect(),
        output: outputs,
    }
}

/// An output paying `sats` to `script`.
pub fn pay(script: &ScriptBuf, sats: u64) -> TxOut {
    TxOut {
        value: Amount::from_sat(sats),
        script_pubkey: script.clone(),
    }
}

/// A coinbase for `height` paying `outputs`; `tag` makes otherwise equal coinbases differ.
pub fn coinbase(height: u32, outputs: Vec<TxOut>, tag: u64) -> Transaction {
    crate::chain::template::coinbase(height, tag, outputs)
}

/// A block after `prev` with the given fields, its coinbase's witness commitment and merkle
/// root filled in, and a nonce that meets `bits`.
pub fn mine_block(
    prev: BlockHash,
    time: u32,
    bits: CompactTarget,
    txdata: Vec<Transaction>,
) -> Block {
    let mut block = Block {
        header: header(prev, time, bits),
        txdata,
    };
    add_witness_commitment(&mut block);
    block.header.merkle_root = block.compute_merkle_root().expect("a coinbase");
    block.header.nonce = search_nonce(&block.header, 0..=u32::MAX).expect("an easy target");
    block
}

fn header(prev: BlockHash, time: u32, bits: CompactTarget) -> Header {
    Header {
        version: Version::TWO,
        prev_blockhash: prev,
        merkle_root: TxMerkleNode::all_zeros(),
        time,
        bits,
        nonce: 0,
    }
}

/// A valid block on `parent` (any block `chain` indexed) holding `txs`, whose coinbase pays
/// the subsidy plus `fees` to `payout`; `tag` tells apart blocks that are otherwise equal.
/// Its time keeps the chain on schedule, so its target is the one `chain` requires.
pub fn block_on(
    chain: &Chain,
    parent: BlockHash,
    txs: Vec<Transaction>,
    fees: u64,
    payout: &ScriptBuf,
    tag: u64,
) -> Block {
    let entry = chain.index().get(&parent).expect("a known parent");
    let height = entry.height + 1;
    let reward = block_subsidy(height, chain.params()).to_sat() + fees;
    let mut txdata = vec![coinbase(height, vec![pay(payout, reward)], tag)];
    txdata.extend(txs);
    let bits = chain.next_bits(&parent).expect("a known parent");
    let time = entry.header.time + chain.params().target_spacing_secs;
    mine_block(parent, time, bits, txdata)
}

/// Signs every input of `tx` with `key`; `prevouts` are the outputs its inputs spend.
pub fn sign_all(key: &TestKey, tx: &mut Transaction, prevouts: &[TxOut]) {
    for input in 0..tx.input.len() {
        key.sign(tx, input, prevouts);
    }
}

/// A block of `txs` transactions, each spending `inputs` P2WPKH coins to one output, and the
/// UTXO set it connects to: the workload of the block-connection benchmarks.
pub struct ConnectWorkload {
    /// The coins the block spends.
    pub utxo: crate::chain::utxo::UtxoSet,
    /// The block.
    pub block: Block,
    /// The block's height.
    pub height: u32,
    /// The network parameters.
    pub params: &'static crate::chain::Params,
}

impl ConnectWorkload {
    /// Builds the workload (signing takes a moment).
    pub fn new(txs: usize, inputs: usize) -> ConnectWorkload {
        use crate::chain::utxo::{Coin, UtxoSet};
        use bitcoin::hashes::sha256d;

        let params = crate::Network::Test.params();
        let keys: Vec<TestKey> = (0..16).map(TestKey::new).collect();
        let mut utxo = UtxoSet::new();
        let mut transactions = Vec::with_capacity(txs);
        let value = 100_000u64;
        for t in 0..txs {
            let key = &keys[t % keys.len()];
            let coins: Vec<(OutPoint, TxOut)> = (0..inputs)
                .map(|i| {
                    let seed = ((t * inputs + i) as u64).to_le_bytes();
                    let txid = bitcoin::Txid::from_raw_hash(sha256d::Hash::hash(&seed));
                    (OutPoint::new(txid, 0), pay(&key.p2wpkh(), value))
                })
                .collect();
            for (outpoint, output) in &coins {
                let coin = Coin {
                    output: output.clone(),
                    height: 1,
                    is_coinbase: false,
                    assets: crate::chain::assets::AssetAmounts::none(),
                };
                utxo.insert(*outpoint, coin);
            }
            let outpoints: Vec<OutPoint> = coins.iter().map(|(outpoint, _)| *outpoint).collect();
            let prevouts: Vec<TxOut> = coins.into_iter().map(|(_, output)| output).collect();
            let mut tx = spend(
                &outpoints,
                vec![pay(&key.p2wpkh(), value * inputs as u64 - 1_000)],
            );
            sign_all(key, &mut tx, &prevouts);
            transactions.push(tx);
        }
        let height = 10;
        let fees = 1_000 * txs as u64;
        let reward = block_subsidy(height, params).to_sat() + fees;
        let mut txdata = vec![coinbase(height, vec![pay(&keys[0].p2wpkh(), reward)], 0)];
        txdata.extend(transactions);
        let bits = CompactTarget::from_consensus(params.pow_limit_bits);
        let block = mine_block(BlockHash::all_zeros(), 1, bits, txdata);
        ConnectWorkload {
            utxo,
            block,
            height,
            params,
        }
    }

    /// The number of inputs the block spends.
    pub fn inputs(&self) -> usize {
        self.block
            .txdata
            .iter()
            .skip(1)
            .map(|tx| tx.input.len())
            .sum()
    }

    /// A signature cache that already holds every transaction of the block (as after mempool
    /// acceptance), or an empty one.
    pub fn sigcache(&self, warm: bool) -> crate::chain::sigcache::SigCache {
        let mut cache = crate::chain::sigcache::SigCache::default();
        if warm {
            for tx in &self.block.txdata {
                cache.insert(tx.compute_wtxid());
            }
        }
        cache
    }

    /// The context that connects the block, verifying with `secp` and skipping what `sigcache`
    /// holds.
    pub fn context<'a>(
        &self,
        secp: &'a Secp256k1<bitcoin::secp256k1::VerifyOnly>,
        sigcache: &'a crate::chain::sigcache::SigCache,
    ) -> crate::chain::block::ConnectContext<'a> {
        crate::chain::block::ConnectContext {
            params: self.params,
            height: self.height,
            median_time_past: 0,
            secp,
            sigcache,
        }
    }

    /// Connects the block to a fresh copy of the set `rounds` times and returns the inputs per
    /// second, timing only the connections with `clock` (seconds, any origin).
    pub fn inputs_per_second(&self, warm: bool, rounds: usize, clock: impl Fn() -> f64) -> f64 {
        use crate::chain::block::connect_block;

        let secp = Secp256k1::verification_only();
        let sigcache = self.sigcache(warm);
        let context = self.context(&secp, &sigcache);
        let mut elapsed = 0.0;
        for _ in 0..rounds {
            let mut utxo = self.utxo.clone();
            let start = clock();
            connect_block(&mut utxo, &self.block, &context).expect("the workload is valid");
            elapsed += clock() - start;
        }
        (self.inputs() * rounds) as f64 / elapsed
    }
}
