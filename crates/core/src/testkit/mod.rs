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
use crate::market::order::{FundingProof, Order, OrderUpdate, SignedOrder, SignedUpdate};

mod node;
pub use node::*;
mod script;
pub use script::*;
mod swap;
pub use swap::*;

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

    /// The key pair that spends this key's P2TR outputs by the key path (tweaked).
    pub fn tweaked_keypair(&self) -> Keypair {
        self.keypair().tap_tweak(&self.secp, None).to_keypair()
    }

    /// Proofs that this key owns every coin of `funding` (its P2WPKH coins), for the order whose
    /// id (or the update whose digest) is `named_by`.
    pub fn prove(&self, named_by: &[u8; 32], funding: &[OutPoint]) -> Vec<FundingProof> {
        funding
            .iter()
            .map(|coin| FundingProof::sign(&self.secp, named_by, coin, &self.keypair(), &[3; 32]))
            .collect()
    }

    /// `order` signed by this key as its maker, its funding coins proven by `owner`.
    pub fn sign_order(&self, order: Order, owner: &TestKey) -> SignedOrder {
        let proofs = owner.prove(&order.id().0, &order.funding);
        SignedOrder::sign(&self.secp, order, &self.keypair(), proofs, &[4; 32])
    }

    /// `update` signed by this key as its maker, its funding coins proven by `owner`.
    pub fn sign_update(&self, update: OrderUpdate, owner: &TestKey) -> SignedUpdate {
        let proofs = owner.prove(&update.digest(), update.change.funding());
        SignedUpdate::sign(&self.secp, update, &self.keypair(), proofs, &[5; 32])
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

/// One message of the order-book benchmark, ready to apply (verification done beforehand:
/// the benchmark measures the book, not signatures). Each update is a message of its own, as
/// a node receives it.
#[derive(Debug, Clone)]
pub enum BookOp {
    /// A resting order that crosses nothing.
    Add(crate::market::order::VerifiedOrder),
    /// A maker's update: a cancel, or a fill of a crossing order just matched.
    Update(crate::market::order::VerifiedUpdate),
    /// An order that crosses the book: matched (its makers' fill updates follow it).
    Cross(Box<crate::market::order::Order>),
}

/// The same operation in plain numbers, for other order-book engines: ids count from 0 in
/// the order the orders were submitted (seed orders first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlainOp {
    Add(PlainOrder),
    Cancel {
        id: u64,
    },
    /// A limit order that fills completely against the book.
    Cross(PlainOrder),
}

/// A limit order in plain numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlainOrder {
    pub id: u64,
    pub bid: bool,
    pub price: u64,
    pub quantity: u64,
}

/// The order-book benchmark's workload: a seeded book of ~50 price levels, then 70 % adds,
/// 20 % cancels of live orders and 10 % orders that cross the book and fill completely at up
/// to a few levels (each with its fill updates). Deterministic for a seed.
#[derive(Debug, Clone)]
pub struct BookWorkload {
    pub seed_orders: Vec<crate::market::order::VerifiedOrder>,
    /// The messages of the operations (a crossing order's fill updates follow it).
    pub ops: Vec<BookOp>,
    pub plain_seed: Vec<PlainOp>,
    pub plain_ops: Vec<PlainOp>,
    /// Fills the crossing orders make in all.
    pub fills: usize,
}

impl BookWorkload {
    /// Price levels per side.
    pub const LEVELS: u64 = 25;
    /// Rounds a benchmark takes the best of, natively and in the browser alike (this machine's
    /// runs vary by a fifth).
    pub const ROUNDS: usize = 15;
    /// The benchmark's size: orders resting before the timed part, operations in it, and the
    /// generator's seed.
    pub const SEED_ORDERS: usize = 10_000;
    pub const OPS: usize = 200_000;
    pub const SEED: u64 = 7;
    const MID: u64 = 1_000_000;
    const TICK: u64 = 1_000;
    const LOT: u64 = 1_000_000;
    const NOW_MILLIS: u64 = 1_800_000_000_000;

    /// `seed_orders` resting orders, then `ops` operations, from `seed`.
    pub fn new(seed_orders: usize, ops: usize, seed: u64) -> BookWorkload {
        use crate::chain::assets::AssetId;
        use crate::market::book::{Book, BookLimits};
        use crate::market::order::{
            Change, Order, OrderId, OrderUpdate, Side, SignedOrder, SignedUpdate, VerifiedOrder,
            VerifiedUpdate,
        };

        let makers: Vec<bitcoin::XOnlyPublicKey> =
            (0..16).map(|n| TestKey::new(500 + n).xonly()).collect();
        let taker = TestKey::new(999).xonly();
        let signature =
            bitcoin::secp256k1::schnorr::Signature::from_slice(&[1; 64]).expect("64 bytes");
        let script = TestKey::new(1).p2wpkh();
        // A proof of the funding coin as large as a real one (the book does not read it).
        let proof = FundingProof {
            key: TestKey::new(1).public(),
            signature,
        };
        let funding = vec![OutPoint::new(bitcoin::Txid::all_zeros(), 0)];
        let mut rng = seed | 1;
        let mut next = move |bound: u64| {
            // xorshift64: quick, deterministic, good enough for a workload.
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % bound
        };
        let mut book = Book::new(
            BookLimits {
                max_orders: usize::MAX,
                max_orphans: 0,
            },
            seed,
        );
        let mut plain_ids: std::collections::HashMap<OrderId, u64> = Default::default();
        let mut live: Vec<OrderId> = Vec::new();
        let mut live_at: std::collections::HashMap<OrderId, usize> = Default::default();
        let mut submitted = 0u64;
        let mut fills_total = 0;
        let order = |side: Side, price: u64, amount: u64, nonce: u64, maker| Order {
            market: AssetId::from_byte_array([0; 32]),
            side,
            price,
            amount,
            created_millis: Self::NOW_MILLIS + nonce,
            expiry_millis: Self::NOW_MILLIS + 86_400_000,
            nonce,
            maker,
            funding: funding.clone(),
            receive: script.clone(),
            change: script.clone(),
        };
        let update = |order: OrderId, maker, sequence, change| {
            VerifiedUpdate::assume_verified(SignedUpdate {
                update: OrderUpdate {
                    order,
                    maker,
                    sequence,
                    change,
                },
                signature,
                proofs: vec![],
            })
        };
        let remove_live = |live: &mut Vec<OrderId>,
                           live_at: &mut std::collections::HashMap<OrderId, usize>,
                           id: &OrderId| {
            if let Some(at) = live_at.remove(id) {
                live.swap_remove(at);
                if at < live.len() {
                    live_at.insert(live[at], at);
                }
            }
        };
        // A resting order on a random level of a random side.
        let resting = |next: &mut dyn FnMut(u64) -> u64, nonce: u64| {
            let bid = next(2) == 0;
            let offset = (1 + next(Self::LEVELS)) * Self::TICK;
            let price = if bid {
                Self::MID - offset
            } else {
                Self::MID + offset
            };
            let quantity = (1 + next(10)) * Self::LOT;
            let side = if bid { Side::Bid } else { Side::Ask };
            let maker = makers[next(16) as usize];
            let order = VerifiedOrder::assume_verified(SignedOrder {
                order: order(side, price, quantity, nonce, maker),
                signature,
                proofs: vec![proof],
            });
            (order, bid, price, quantity)
        };

        let mut seed_list = Vec::with_capacity(seed_orders);
        let mut plain_seed = Vec::with_capacity(seed_orders);
        let mut ops_list = Vec::with_capacity(ops);
        let mut plain_ops = Vec::with_capacity(ops);
        for n in 0..seed_orders + ops {
            let nonce = n as u64;
            let roll = next(100);
            let seeding = n < seed_orders;
            if seeding || roll < 70 || live.is_empty() {
                let (order, bid, price, quantity) = resting(&mut next, nonce);
                let id = order.id();
                book.insert_order(order.clone()).expect("no limit");
                plain_ids.insert(id, submitted);
                live_at.insert(id, live.len());
                live.push(id);
                let plain = PlainOp::Add(PlainOrder {
                    id: submitted,
                    bid,
                    price,
                    quantity,
                });
                submitted += 1;
                if seeding {
                    seed_list.push(order);
                    plain_seed.push(plain);
                } else {
                    ops_list.push(BookOp::Add(order));
                    plain_ops.push(plain);
                }
            } else if roll < 90 {
                let id = live[next(live.len() as u64) as usize];
                let view = book.get(&id).expect("live orders are in the book");
                let cancel = update(
                    id,
                    view.order.order().maker,
                    view.sequence + 1,
                    Change::Cancel,
                );
                book.apply_update(cancel.clone())
                    .expect("the maker's update");
                remove_live(&mut live, &mut live_at, &id);
                ops_list.push(BookOp::Update(cancel));
                plain_ops.push(PlainOp::Cancel { id: plain_ids[&id] });
            } else {
                // Cross the side that has orders, up to two levels deep, for what rests there.
                let bid = next(2) == 0;
                let side = if bid { Side::Bid } else { Side::Ask };
                let ladder = book
                    .ladder(&AssetId::from_byte_array([0; 32]))
                    .expect("a ladder");
                let Some(best) = ladder.best(side.opposite()) else {
                    continue;
                };
                let price = if bid {
                    best.price + Self::TICK
                } else {
                    best.price - Self::TICK
                };
                let available: u128 = ladder
                    .depth(side.opposite())
                    .take_while(|level| {
                        if bid {
                            level.price <= price
                        } else {
                            level.price >= price
                        }
                    })
                    .map(|level| level.total)
                    .sum();
                let wanted = (5 + next(10)) * Self::LOT;
                let quantity = wanted.min(available as u64);
                let incoming = order(side, price, quantity, nonce, taker);
                let matched = book.match_order(&incoming, Self::NOW_MILLIS);
                assert_eq!(
                    matched.rest, 0,
                    "the workload's crossing orders fill completely"
                );
                ops_list.push(BookOp::Cross(Box::new(incoming)));
                fills_total += matched.fills.len();
                for fill in &matched.fills {
                    let view = book.get(&fill.order).expect("a resting order");
                    let filled = view.filled + fill.quantity;
                    let done = filled == view.order.order().amount;
                    let fill_update = update(
                        fill.order,
                        fill.maker,
                        view.sequence + 1,
                        Change::Fill {
                            filled,
                            funding: if done { vec![] } else { funding.clone() },
                        },
                    );
                    book.apply_update(fill_update.clone())
                        .expect("the maker's update");
                    if done {
                        remove_live(&mut live, &mut live_at, &fill.order);
                    }
                    ops_list.push(BookOp::Update(fill_update));
                }
                plain_ops.push(PlainOp::Cross(PlainOrder {
                    id: submitted,
                    bid,
                    price,
                    quantity,
                }));
                submitted += 1;
            }
        }
        BookWorkload {
            seed_orders: seed_list,
            ops: ops_list,
            plain_seed,
            plain_ops,
            fills: fills_total,
        }
    }

    /// The benchmark's workload, the same natively, in the browser and under the profilers.
    pub fn benchmark() -> BookWorkload {
        BookWorkload::new(Self::SEED_ORDERS, Self::OPS, Self::SEED)
    }

    /// A book holding the seed orders, with room for the rest (as the reference books are
    /// given their capacity).
    pub fn seeded_book(&self) -> crate::market::book::Book {
        let limits = crate::market::book::BookLimits {
            max_orders: usize::MAX,
            max_orphans: 0,
        };
        let mut book = crate::market::book::Book::new(limits, 1);
        book.reserve(self.seed_orders.len() + self.ops.len());
        for order in &self.seed_orders {
            book.insert_order(order.clone()).expect("no limit");
        }
        book
    }

    /// Applies `ops` to `book`, draining them (the vector keeps its buffer); the crossing
    /// orders go to `takers`, as a taker's desk keeps its order while its fills settle (so the
    /// timed part frees only what the book lets go). Returns the fills matching made (the
    /// workload's count, when the book is the seeded one).
    pub fn apply(
        book: &mut crate::market::book::Book,
        ops: &mut Vec<BookOp>,
        takers: &mut Vec<Box<crate::market::order::Order>>,
    ) -> usize {
        let mut fills = 0;
        let mut matched = Vec::new();
        for op in ops.drain(..) {
            match op {
                BookOp::Add(order) => {
                    let _ = book.insert_order(order);
                }
                BookOp::Update(update) => {
                    let _ = book.apply_update(update);
                }
                BookOp::Cross(incoming) => {
                    book.match_into(&incoming, Self::NOW_MILLIS, &mut matched);
                    fills += matched.len();
                    takers.push(incoming);
                }
            }
        }
        fills
    }

    /// The operations copied afresh, one after the other in memory: as a node holds them after
    /// decoding and verifying each message in turn (the originals are scattered among the
    /// generator's own allocations).
    pub fn fresh_ops(&self) -> Vec<BookOp> {
        use crate::market::order::{VerifiedOrder, VerifiedUpdate};
        self.ops
            .iter()
            .map(|op| match op {
                BookOp::Add(order) => {
                    BookOp::Add(VerifiedOrder::assume_verified(order.signed().clone()))
                }
                BookOp::Update(update) => {
                    BookOp::Update(VerifiedUpdate::assume_verified(update.signed().clone()))
                }
                BookOp::Cross(incoming) => BookOp::Cross(incoming.clone()),
            })
            .collect()
    }

    /// The operations the workload counts: adds, cancels and crossing orders (a crossing
    /// order's fill updates are part of it), as the reference books count them.
    pub fn operations(&self) -> usize {
        self.plain_ops.len()
    }

    /// Operations per second applying the workload `rounds` times to fresh seeded books (the
    /// best round), timed by `clock` (seconds).
    pub fn ops_per_second(&self, rounds: usize, clock: impl Fn() -> f64) -> f64 {
        self.ops_per_second_with(rounds, clock, Self::apply)
    }

    /// [`BookWorkload::ops_per_second`] with the timed part done by `apply`, which does what
    /// [`BookWorkload::apply`] does (a profiler marks a function of its own).
    pub fn ops_per_second_with(
        &self,
        rounds: usize,
        clock: impl Fn() -> f64,
        apply: impl Fn(
            &mut crate::market::book::Book,
            &mut Vec<BookOp>,
            &mut Vec<Box<crate::market::order::Order>>,
        ) -> usize,
    ) -> f64 {
        (0..rounds)
            .map(|_| {
                let mut book = self.seeded_book();
                let mut ops = self.fresh_ops();
                let mut takers = Vec::with_capacity(ops.len());
                let start = clock();
                let fills = apply(&mut book, &mut ops, &mut takers);
                let elapsed = clock() - start;
                assert_eq!(fills, self.fills, "the replay matches as recorded");
                self.operations() as f64 / elapsed
            })
            .fold(0.0, f64::max)
    }
}

/// One message of every wire type, with real contents (a mined block, a spend, a signed order
/// and update, a signed hello and routed message): for round-trip tests and fuzz seeds.
pub fn wire_samples() -> Vec<crate::wire::Message> {
    use crate::chain::assets::AssetId;
    use crate::chain::state::Chain;
    use crate::market::order::{Change, Side};
    use crate::wire::*;
    use bitcoin::secp256k1::Secp256k1;

    const NOW: u64 = 1_800_000_000_000;
    let secp = Secp256k1::new();
    let alice = TestKey::new(1);
    let chain = Chain::new(crate::Network::Test);
    let block = block_on(&chain, chain.tip(), vec![], 0, &alice.p2wpkh(), 3);
    let tx = spend(
        &[OutPoint::new(block.txdata[0].compute_txid(), 0)],
        vec![pay(&alice.p2wpkh(), 10_000)],
    );
    let hello = SignedHello::sign(
        &secp,
        Hello {
            magic: crate::Network::Test.params().magic,
            version: PROTOCOL_VERSION,
            peer: PeerId::of(&alice.xonly()),
            tip: chain.tip(),
            height: 0,
            features: Features::ALL,
            time_millis: NOW,
            sender_fingerprint: [1; 32],
            receiver_fingerprint: [2; 32],
        },
        &alice.keypair(),
        &[3; 32],
    );
    let order = alice.sign_order(
        Order {
            market: AssetId::from_byte_array([7; 32]),
            side: Side::Ask,
            price: 50_000,
            amount: 1_000_000,
            created_millis: NOW,
            expiry_millis: NOW + 3_600_000,
            nonce: 1,
            maker: alice.xonly(),
            funding: vec![OutPoint::new(tx.compute_txid(), 0)],
            receive: alice.p2tr(),
            change: alice.p2wpkh(),
        },
        &alice,
    );
    let update = alice.sign_update(
        OrderUpdate {
            order: order.order.id(),
            maker: alice.xonly(),
            sequence: 1,
            change: Change::Cancel,
        },
        &alice,
    );
    let routed = Routed::sign(
        &secp,
        &alice.keypair(),
        PeerId([5; 32]),
        8,
        NOW,
        42,
        RoutedKind::SwapProposal,
        b"proposal".to_vec(),
        &[6; 32],
    );
    let topic = TopicAnnouncement::sign(
        &secp,
        &alice.keypair(),
        [9; 32],
        NOW,
        NOW + 60_000,
        &[7; 32],
    );
    let items = vec![
        InvItem::new(InvKind::Topic, [5; 32]),
        InvItem::new(InvKind::Block, [1; 32]),
        InvItem::new(InvKind::Tx, [2; 32]),
        InvItem::new(InvKind::Order, [3; 32]),
        InvItem::new(InvKind::OrderUpdate, [4; 32]),
    ];
    vec![
        Message::Hello(hello),
        Message::Goodbye(Goodbye::new(GoodbyeReason::WrongNetwork, "wrong network")),
        Message::Ping(7),
        Message::Pong(u64::MAX),
        Message::Inv {
            purpose: InvPurpose::New,
            items: items.clone(),
        },
        Message::Inv {
            purpose: InvPurpose::Holdings,
            items: vec![],
        },
        Message::GetData(items.clone()),
        Message::NotFound(items),
        Message::GetHeaders(GetHeaders {
            locator: vec![block.block_hash(), chain.tip()],
            stop: BlockHash::all_zeros(),
        }),
        Message::Headers(vec![block.header; 3]),
        Message::Block(Box::new(block)),
        Message::Tx(tx),
        Message::Order(order),
        Message::OrderUpdate(update),
        Message::GetPeers,
        Message::Peers(vec![PeerRecord {
            peer: PeerId::of(&alice.xonly()),
            features: Features::CHAIN,
            last_seen_secs: 1_800_000_000,
        }]),
        Message::Routed(routed),
        Message::Topic(topic),
    ]
}
