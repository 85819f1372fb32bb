//! Block validation: the rules a block meets on its own ([`check_block`]), the rules a
//! transaction's inputs meet against the coins they spend ([`check_inputs`]), and connecting a
//! block to the UTXO set and disconnecting it again ([`connect_block`], [`disconnect_block`]).

use core::fmt;
use std::collections::{HashMap, HashSet};

use bitcoin::script::Builder;
use bitcoin::secp256k1::{Secp256k1, VerifyOnly};
use bitcoin::{Amount, Block, OutPoint, Transaction, TxOut, Txid, Weight};

use super::assets::{self, Allocation, AssetError, IssuedAsset};
use super::pow::block_subsidy;
use super::sigcache::SigCache;
use super::spend::{verify_spends, SpendError};
use super::tx::{check_transaction, TxError};
use super::utxo::{BlockUndo, Coin, UtxoSet};
use super::Params;

/// The heaviest block allowed (as in Bitcoin).
pub const MAX_BLOCK_WEIGHT: Weight = Weight::MAX_BLOCK;

/// Why a transaction's inputs may not spend the coins they name.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InputError {
    /// A coinbase output is spent before it matured.
    ImmatureCoinbase {
        input: usize,
        depth: u32,
        required: u32,
    },
    /// The transaction's lock time is not yet reached.
    NonFinal,
    /// The input values overflow.
    ValueOverflow,
    /// The outputs are worth more than the inputs.
    InsufficientValue { inputs: Amount, outputs: Amount },
    /// The transaction breaks the asset rules.
    Asset(AssetError),
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputError::ImmatureCoinbase { input, depth, required } => write!(
                f,
                "input {input} spends a coinbase output {depth} blocks deep; it matures at {required}"
            ),
            InputError::NonFinal => f.write_str("the transaction's lock time has not been reached"),
            InputError::ValueOverflow => f.write_str("the input values overflow"),
            InputError::InsufficientValue { inputs, outputs } => {
                write!(f, "the outputs ({outputs}) are worth more than the inputs ({inputs})")
            }
            InputError::Asset(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for InputError {}

/// Why a block is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlockError {
    /// A block has at least a coinbase.
    NoTransactions,
    /// The first transaction is not a coinbase.
    FirstNotCoinbase,
    /// A transaction after the first is a coinbase.
    ExtraCoinbase { tx: usize },
    /// The header's merkle root does not match the transactions.
    BadMerkleRoot,
    /// The witness commitment (BIP141) is missing or does not match the witnesses.
    BadWitnessCommitment,
    /// The block is heavier than [`MAX_BLOCK_WEIGHT`].
    TooHeavy(Weight),
    /// Two transactions share a txid.
    DuplicateTxid(Txid),
    /// A transaction breaks a context-free rule.
    Transaction { tx: usize, error: TxError },
    /// The coinbase does not start with the block height (BIP34).
    BadCoinbaseHeight,
    /// The coinbase claims more than the subsidy plus the fees.
    CoinbaseTooLarge { claimed: Amount, allowed: Amount },
    /// An input spends an output that does not exist or is already spent by the chain.
    MissingInput { tx: usize, outpoint: OutPoint },
    /// An input spends an output an earlier transaction of this block already spent.
    DoubleSpend { tx: usize, outpoint: OutPoint },
    /// A transaction's inputs may not spend the coins they name.
    Inputs { tx: usize, error: InputError },
    /// A transaction's witness does not unlock an output it spends.
    Spend { tx: usize, error: SpendError },
    /// The fees of the block overflow.
    FeeOverflow,
}

impl fmt::Display for BlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockError::NoTransactions => f.write_str("the block has no transactions"),
            BlockError::FirstNotCoinbase => f.write_str("the first transaction is not a coinbase"),
            BlockError::ExtraCoinbase { tx } => write!(f, "transaction {tx} is a second coinbase"),
            BlockError::BadMerkleRoot => {
                f.write_str("the merkle root does not match the transactions")
            }
            BlockError::BadWitnessCommitment => {
                f.write_str("the witness commitment is missing or does not match")
            }
            BlockError::TooHeavy(weight) => {
                write!(
                    f,
                    "the block weighs {weight}, above the limit of {MAX_BLOCK_WEIGHT}"
                )
            }
            BlockError::DuplicateTxid(txid) => write!(f, "transaction {txid} appears twice"),
            BlockError::Transaction { tx, error } => write!(f, "transaction {tx}: {error}"),
            BlockError::BadCoinbaseHeight => {
                f.write_str("the coinbase does not begin with the block height")
            }
            BlockError::CoinbaseTooLarge { claimed, allowed } => {
                write!(
                    f,
                    "the coinbase claims {claimed}, but subsidy and fees allow {allowed}"
                )
            }
            BlockError::MissingInput { tx, outpoint } => {
                write!(
                    f,
                    "transaction {tx} spends {outpoint}, which is not unspent"
                )
            }
            BlockError::DoubleSpend { tx, outpoint } => {
                write!(
                    f,
                    "transaction {tx} spends {outpoint}, already spent in this block"
                )
            }
            BlockError::Inputs { tx, error } => write!(f, "transaction {tx}: {error}"),
            BlockError::Spend { tx, error } => write!(f, "transaction {tx}: {error}"),
            BlockError::FeeOverflow => f.write_str("the block's fees overflow"),
        }
    }
}

impl std::error::Error for BlockError {}

/// Checks the rules a block meets whatever the chain holds.
pub fn check_block(block: &Block) -> Result<(), BlockError> {
    let Some(first) = block.txdata.first() else {
        return Err(BlockError::NoTransactions);
    };
    if !first.is_coinbase() {
        return Err(BlockError::FirstNotCoinbase);
    }
    if let Some(tx) = block
        .txdata
        .iter()
        .skip(1)
        .position(Transaction::is_coinbase)
    {
        return Err(BlockError::ExtraCoinbase { tx: tx + 1 });
    }
    let weight = block.weight();
    if weight > MAX_BLOCK_WEIGHT {
        return Err(BlockError::TooHeavy(weight));
    }
    let mut txids = HashSet::with_capacity(block.txdata.len());
    for tx in &block.txdata {
        let txid = tx.compute_txid();
        if !txids.insert(txid) {
            return Err(BlockError::DuplicateTxid(txid));
        }
    }
    if !block.check_merkle_root() {
        return Err(BlockError::BadMerkleRoot);
    }
    if !block.check_witness_commitment() {
        return Err(BlockError::BadWitnessCommitment);
    }
    for (index, tx) in block.txdata.iter().enumerate() {
        check_transaction(tx).map_err(|error| BlockError::Transaction { tx: index, error })?;
    }
    Ok(())
}

/// What [`check_inputs`] learns about a valid transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedInputs {
    /// Inputs minus outputs.
    pub fee: Amount,
    /// Where the transaction's asset units go.
    pub allocation: Allocation,
}

/// Checks `tx`, to be included at `height` after a chain whose median time past is
/// `median_time_past`, against `coins`, the coins its inputs spend (in input order).
/// Signatures are checked separately ([`verify_spends`]).
pub fn check_inputs(
    tx: &Transaction,
    coins: &[&Coin],
    height: u32,
    median_time_past: u32,
    params: &Params,
) -> Result<CheckedInputs, InputError> {
    debug_assert_eq!(tx.input.len(), coins.len());
    if !is_final(tx, height, median_time_past) {
        return Err(InputError::NonFinal);
    }
    let mut inputs = Amount::ZERO;
    for (input, coin) in coins.iter().enumerate() {
        if coin.is_coinbase {
            let depth = height.saturating_sub(coin.height);
            if depth < params.coinbase_maturity {
                return Err(InputError::ImmatureCoinbase {
                    input,
                    depth,
                    required: params.coinbase_maturity,
                });
            }
        }
        inputs = inputs
            .checked_add(coin.output.value)
            .filter(|total| *total <= Amount::MAX_MONEY)
            .ok_or(InputError::ValueOverflow)?;
    }
    // check_transaction bounds each output and their sum by the supply.
    let outputs: Amount = tx.output.iter().map(|txout| txout.value).sum();
    let fee = inputs
        .checked_sub(outputs)
        .ok_or(InputError::InsufficientValue { inputs, outputs })?;
    let held: Vec<&assets::AssetAmounts> = coins.iter().map(|coin| &coin.assets).collect();
    let allocation = assets::allocate(tx, &held).map_err(InputError::Asset)?;
    Ok(CheckedInputs { fee, allocation })
}

/// Whether `tx` may be included at `height` after a chain with `median_time_past` (BIP113):
/// its lock time is zero, disabled by final sequences, or already passed.
pub fn is_final(tx: &Transaction, height: u32, median_time_past: u32) -> bool {
    let lock_time = tx.lock_time.to_consensus_u32();
    if lock_time == 0 || !tx.is_lock_time_enabled() {
        return true;
    }
    if tx.lock_time.is_block_height() {
        lock_time < height
    } else {
        lock_time < median_time_past
    }
}

/// Where a block goes and what verifies its signatures.
pub struct ConnectContext<'a> {
    /// The network's parameters.
    pub params: &'a Params,
    /// The block's height.
    pub height: u32,
    /// The median time of the 11 blocks before it.
    pub median_time_past: u32,
    /// A secp256k1 verification context.
    pub secp: &'a Secp256k1<VerifyOnly>,
    /// Transactions whose signatures already verified.
    pub sigcache: &'a SigCache,
}

/// What connecting a block did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectedBlock {
    /// The coins the block spent, to disconnect it later.
    pub undo: BlockUndo,
    /// The fees its transactions paid.
    pub fees: Amount,
    /// The assets it issued.
    pub issued: Vec<IssuedAsset>,
}

/// Connects `block`, which passed [`check_block`], to `utxo`. On error `utxo` is unchanged.
pub fn connect_block(
    utxo: &mut UtxoSet,
    block: &Block,
    context: &ConnectContext<'_>,
) -> Result<ConnectedBlock, BlockError> {
    let coinbase = &block.txdata[0];
    let height_push = Builder::new()
        .push_int(i64::from(context.height))
        .into_script();
    if !coinbase.input[0]
        .script_sig
        .as_bytes()
        .starts_with(height_push.as_bytes())
    {
        return Err(BlockError::BadCoinbaseHeight);
    }

    // Validate everything against a view (the UTXO set plus this block's outputs) first, so
    // that a failure leaves the set untouched; coins are only borrowed until then.
    let mut created: HashMap<OutPoint, Coin> = HashMap::new();
    let mut spent: HashSet<OutPoint> = HashSet::new();
    let mut fees = Amount::ZERO;
    let mut issued = Vec::new();
    // An empty cache cannot help: skip hashing each transaction's witness to look it up.
    let cache_in_use = !context.sigcache.is_empty();
    for (index, tx) in block.txdata.iter().enumerate().skip(1) {
        let mut coins = Vec::with_capacity(tx.input.len());
        for txin in &tx.input {
            let outpoint = txin.previous_output;
            if spent.contains(&outpoint) {
                return Err(BlockError::DoubleSpend {
                    tx: index,
                    outpoint,
                });
            }
            let coin = created
                .get(&outpoint)
                .or_else(|| utxo.get(&outpoint))
                .ok_or(BlockError::MissingInput {
                    tx: index,
                    outpoint,
                })?;
            coins.push(coin);
        }
        let checked = check_inputs(
            tx,
            &coins,
            context.height,
            context.median_time_past,
            context.params,
        )
        .map_err(|error| BlockError::Inputs { tx: index, error })?;
        if !cache_in_use || !context.sigcache.contains(&tx.compute_wtxid()) {
            let prevouts: Vec<&TxOut> = coins.iter().map(|coin| &coin.output).collect();
            verify_spends(context.secp, tx, &prevouts)
                .map_err(|error| BlockError::Spend { tx: index, error })?;
        }
        fees = fees
            .checked_add(checked.fee)
            .ok_or(BlockError::FeeOverflow)?;
        spent.extend(tx.input.iter().map(|txin| txin.previous_output));
        add_outputs(
            &mut created,
            tx,
            context.height,
            false,
            checked.allocation.outputs,
        );
        issued.extend(checked.allocation.issued);
    }
    let allowed = block_subsidy(context.height, context.params)
        .checked_add(fees)
        .ok_or(BlockError::FeeOverflow)?;
    let claimed: Amount = coinbase.output.iter().map(|txout| txout.value).sum();
    if claimed > allowed {
        return Err(BlockError::CoinbaseTooLarge { claimed, allowed });
    }
    // Asset rules for the coinbase: no record (it has no asset inputs to allocate).
    let none = assets::AssetAmounts::none();
    let coinbase_assets =
        assets::allocate(coinbase, &[&none]).map_err(|error| BlockError::Inputs {
            tx: 0,
            error: InputError::Asset(error),
        })?;
    add_outputs(
        &mut created,
        coinbase,
        context.height,
        true,
        coinbase_assets.outputs,
    );

    // Valid: move the spent coins into the undo data, in input order, and add the new ones.
    let undo = block.txdata[1..]
        .iter()
        .map(|tx| {
            tx.input
                .iter()
                .map(|txin| {
                    let outpoint = &txin.previous_output;
                    created
                        .remove(outpoint)
                        .or_else(|| utxo.remove(outpoint))
                        .expect("checked above")
                })
                .collect()
        })
        .collect();
    for (outpoint, coin) in created {
        utxo.insert(outpoint, coin);
    }
    Ok(ConnectedBlock {
        undo: BlockUndo { spent: undo },
        fees,
        issued,
    })
}

fn add_outputs(
    created: &mut HashMap<OutPoint, Coin>,
    tx: &Transaction,
    height: u32,
    is_coinbase: bool,
    assets: Vec<assets::AssetAmounts>,
) {
    let txid = tx.compute_txid();
    for ((vout, output), assets) in tx.output.iter().enumerate().zip(assets) {
        // OP_RETURN outputs can never be spent: they never enter the set.
        if output.script_pubkey.is_op_return() {
            continue;
        }
        let coin = Coin {
            output: output.clone(),
            height,
            is_coinbase,
            assets,
        };
        created.insert(OutPoint::new(txid, vout as u32), coin);
    }
}

/// The undo data does not belong to the block being disconnected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndoMismatch;

impl fmt::Display for UndoMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the undo data does not match the block's inputs")
    }
}

impl std::error::Error for UndoMismatch {}

/// Disconnects `block`, the tip of the chain `utxo` reflects, with the undo data connecting
/// it produced. On error `utxo` is unchanged.
pub fn disconnect_block(
    utxo: &mut UtxoSet,
    block: &Block,
    undo: &BlockUndo,
) -> Result<(), UndoMismatch> {
    let matches = undo.spent.len() + 1 == block.txdata.len()
        && block.txdata[1..]
            .iter()
            .zip(&undo.spent)
            .all(|(tx, coins)| tx.input.len() == coins.len());
    if !matches {
        return Err(UndoMismatch);
    }
    // Last transaction first: a coin created and spent inside the block is restored by its
    // spender, then removed again with its creator's outputs.
    for (index, tx) in block.txdata.iter().enumerate().rev() {
        let txid = tx.compute_txid();
        for (vout, output) in tx.output.iter().enumerate() {
            if !output.script_pubkey.is_op_return() {
                utxo.remove(&OutPoint::new(txid, vout as u32));
            }
        }
        if index > 0 {
            for (txin, coin) in tx.input.iter().zip(&undo.spent[index - 1]) {
                utxo.insert(txin.previous_output, coin.clone());
            }
        }
    }
    Ok(())
}
