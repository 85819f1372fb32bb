//! Building and signing the wallet's transactions: BTC payments, asset issuance, asset transfers
//! and our side of swaps, with change back to the wallet.
//!
//! Coins that carry assets are spent only by transactions that allocate every unit they hold;
//! no transaction spends a coin another spend reserved, an immature coinbase, or someone else's
//! unconfirmed output.

use core::fmt;

use bitcoin::absolute::LockTime;
use bitcoin::secp256k1::{Message, Secp256k1};
use bitcoin::sighash::{EcdsaSighashType, Prevouts, SighashCache, TapSighashType};
use bitcoin::transaction::Version;
use bitcoin::{
    ecdsa, taproot, Amount, FeeRate, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut,
    Weight, Witness,
};

use std::collections::BTreeMap;

use super::coin_select::{
    select_coins, Candidate, SelectionError, SelectionParams, P2TR_INPUT_WEIGHT,
    P2WPKH_INPUT_WEIGHT,
};
use super::keys::{Account, Keychain, Purpose};
use super::metadata::Metadata;
use super::tracker::{OwnedOutput, Tracker, TxStatus};
use crate::chain::assets::{AssetAmounts, AssetError, AssetId, AssetRecord, Issuance, Transfer};

/// A payment to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRequest {
    /// Who is paid what.
    pub recipients: Vec<(ScriptBuf, Amount)>,
    /// The fee rate to pay.
    pub fee_rate: FeeRate,
}

/// A coin of a counterparty that a transaction spends (the counterparty signs its input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignCoin {
    pub outpoint: OutPoint,
    pub txout: TxOut,
    /// The asset units it holds.
    pub assets: AssetAmounts,
}

/// A built transaction with what signing and display need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltTx {
    /// The transaction, unsigned until [`sign`].
    pub tx: Transaction,
    /// The counterparty's coins its first inputs spend (none but in a swap).
    pub foreign: Vec<ForeignCoin>,
    /// The wallet outputs the inputs after those spend, in input order.
    pub inputs: Vec<OwnedOutput>,
    /// The fee it pays.
    pub fee: Amount,
    /// The change output, if any: its index and the wallet key it pays.
    pub change: Option<(usize, (usize, Keychain, u32))>,
}

impl BuiltTx {
    /// The wallet's coins it spends (what a spend reserves).
    pub fn own_coins(&self) -> Vec<OutPoint> {
        self.inputs.iter().map(|input| input.outpoint).collect()
    }
}

/// Why a payment cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// A payment needs at least one recipient.
    NoRecipients,
    /// An amount below the recipient script's dust limit.
    Dust {
        recipient: usize,
        amount: Amount,
        limit: Amount,
    },
    /// Not enough spendable coins.
    Selection(SelectionError),
    /// Not enough units of an asset.
    InsufficientAsset {
        asset: AssetId,
        needed: u64,
        available: u64,
    },
    /// The asset record would be invalid.
    Asset(AssetError),
    /// The counterparty's coins are worth more than the outputs: the rest would be lost to fees.
    ForeignExcess { inputs: Amount, outputs: Amount },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::NoRecipients => f.write_str("the payment has no recipient"),
            BuildError::Dust {
                recipient,
                amount,
                limit,
            } => {
                write!(
                    f,
                    "recipient {recipient}: {amount} is below the dust limit of {limit}"
                )
            }
            BuildError::Selection(err) => write!(f, "{err}"),
            BuildError::InsufficientAsset {
                asset,
                needed,
                available,
            } => write!(
                f,
                "not enough of asset {asset}: {needed} units needed, {available} spendable"
            ),
            BuildError::Asset(err) => write!(f, "{err}"),
            BuildError::ForeignExcess { inputs, outputs } => write!(
                f,
                "the counterparty's coins hold {inputs} but the outputs pay only {outputs}"
            ),
        }
    }
}

impl std::error::Error for BuildError {}

/// The smallest output Bitcoin nodes relay to `script` (at the 3 sat/vB dust relay fee).
pub fn dust_limit(script: &ScriptBuf) -> Amount {
    script.minimal_non_dust()
}

/// The coins the wallet may spend at `now_millis` (payments leave those with assets alone).
pub fn spendable(
    tracker: &Tracker,
    metadata: &Metadata,
    now_millis: u64,
    maturity: u32,
) -> Vec<OwnedOutput> {
    tracker
        .unspent()
        .into_iter()
        .filter(|output| metadata.reservation(&output.outpoint, now_millis).is_none())
        .filter(|output| match output.status {
            TxStatus::Confirmed { height } => {
                !output.is_coinbase || tracker.tip() + 1 - height >= maturity
            }
            // Only our own change, or what a transaction of our coins alone paid us: a
            // stranger's unconfirmed payment may never confirm.
            TxStatus::Unconfirmed { .. } => output.key.1 == Keychain::Internal || output.from_self,
        })
        .collect()
}

/// Where a transaction's change goes: (account index, internal chain index).
pub type ChangeKey = (usize, u32);

/// Builds a payment from `coins` (those carrying assets are left alone), sending change to
/// `change`.
pub fn build_payment(
    coins: &[OwnedOutput],
    request: &PaymentRequest,
    accounts: &[Account],
    change: ChangeKey,
) -> Result<BuiltTx, BuildError> {
    if request.recipients.is_empty() {
        return Err(BuildError::NoRecipients);
    }
    for (recipient, (script, amount)) in request.recipients.iter().enumerate() {
        let limit = dust_limit(script);
        if *amount < limit {
            return Err(BuildError::Dust {
                recipient,
                amount: *amount,
                limit,
            });
        }
    }
    let outputs = request
        .recipients
        .iter()
        .map(|(script, amount)| TxOut {
            value: *amount,
            script_pubkey: script.clone(),
        })
        .collect();
    complete(
        outputs,
        Vec::new(),
        &[],
        coins,
        request.fee_rate,
        accounts,
        change,
    )
}

/// Builds a payment of everything: every BTC-only coin of `coins` to `to`, less the fee (the
/// "max" button). No change.
pub fn build_sweep(
    coins: &[OwnedOutput],
    to: ScriptBuf,
    fee_rate: FeeRate,
) -> Result<BuiltTx, BuildError> {
    let inputs: Vec<OwnedOutput> = coins
        .iter()
        .filter(|coin| coin.assets.is_empty())
        .cloned()
        .collect();
    let total: Amount = inputs.iter().map(|coin| coin.value).sum();
    let mut tx = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: unsigned_inputs(inputs.iter().map(|coin| coin.outpoint)),
        output: vec![TxOut {
            value: Amount::ZERO,
            script_pubkey: to,
        }],
    };
    let witness_weight: Weight = inputs
        .iter()
        .map(|coin| input_weight(&coin.script_pubkey) - Weight::from_wu(164))
        .sum();
    let weight = tx.weight() + witness_weight + Weight::from_wu(2);
    let fee = fee_rate.fee_wu(weight).unwrap_or(Amount::MAX);
    let limit = dust_limit(&tx.output[0].script_pubkey);
    let value = total
        .checked_sub(fee)
        .filter(|value| *value >= limit)
        .ok_or(BuildError::Dust {
            recipient: 0,
            amount: total.checked_sub(fee).unwrap_or(Amount::ZERO),
            limit,
        })?;
    tx.output[0].value = value;
    Ok(BuiltTx {
        tx,
        foreign: Vec::new(),
        inputs,
        fee,
        change: None,
    })
}

/// What a new asset is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueRequest {
    /// 1 to 8 characters of A-Z and 0-9.
    pub ticker: String,
    /// Decimal places of a base unit (display only), at most 18.
    pub decimals: u8,
    /// The fixed supply, in base units.
    pub supply: u64,
}

/// Builds a transaction issuing a new asset whose whole supply goes to the wallet's external
/// key `receive` (account, index). The asset's id is that of the first input's outpoint.
pub fn build_issuance(
    coins: &[OwnedOutput],
    request: &IssueRequest,
    fee_rate: FeeRate,
    accounts: &[Account],
    (receive_account, receive_index): (usize, u32),
    change: ChangeKey,
) -> Result<BuiltTx, BuildError> {
    let record = AssetRecord::Issue(Issuance {
        ticker: request.ticker.clone(),
        decimals: request.decimals,
        supply: request.supply,
        output: 0,
    });
    // The decoder is the judge of a valid record: it says exactly what is wrong.
    AssetRecord::from_bytes(&record.to_bytes()).map_err(BuildError::Asset)?;
    let receive = accounts[receive_account].script_pubkey(Keychain::External, receive_index);
    let outputs = vec![
        TxOut {
            value: dust_limit(&receive),
            script_pubkey: receive,
        },
        TxOut {
            value: Amount::ZERO,
            script_pubkey: record.to_script(),
        },
    ];
    complete(outputs, Vec::new(), &[], coins, fee_rate, accounts, change)
}

/// Builds a transaction sending `amount` units of `asset` to `to`. The coins holding the asset
/// are spent, and every unit they hold beyond `amount` (of this asset or any other) goes back to
/// the wallet's external key `asset_change`; BTC coins pay the fee.
#[allow(clippy::too_many_arguments)]
pub fn build_transfer(
    coins: &[OwnedOutput],
    asset: AssetId,
    amount: u64,
    to: ScriptBuf,
    fee_rate: FeeRate,
    accounts: &[Account],
    (change_account, asset_change_index): (usize, u32),
    change: ChangeKey,
) -> Result<BuiltTx, BuildError> {
    let forced = asset_coins(coins, asset, amount)?;
    let held = AssetAmounts::total(forced.iter().map(|coin| &coin.assets));
    let remainder_exists = held
        .iter()
        .any(|(id, units)| *id != asset || *units > amount);
    let transfers = held
        .iter()
        .map(|(&id, &units)| {
            let mut allocations = Vec::new();
            let (to_recipient, back) = if id == asset {
                (amount, units - amount)
            } else {
                (0, units)
            };
            if to_recipient > 0 {
                allocations.push((0u16, to_recipient));
            }
            if back > 0 {
                allocations.push((1u16, back));
            }
            Transfer {
                asset: id,
                allocations,
            }
        })
        .collect();
    let mut outputs = vec![TxOut {
        value: dust_limit(&to),
        script_pubkey: to,
    }];
    if remainder_exists {
        let back = accounts[change_account].script_pubkey(Keychain::External, asset_change_index);
        outputs.push(TxOut {
            value: dust_limit(&back),
            script_pubkey: back,
        });
    }
    outputs.push(TxOut {
        value: Amount::ZERO,
        script_pubkey: AssetRecord::Transfer(transfers).to_script(),
    });
    complete(outputs, forced, &[], coins, fee_rate, accounts, change)
}

/// The fewest of `coins` holding `amount` units of `asset`, largest first.
fn asset_coins(
    coins: &[OwnedOutput],
    asset: AssetId,
    amount: u64,
) -> Result<Vec<OwnedOutput>, BuildError> {
    // Largest holdings first, ties by outpoint.
    let mut holding: Vec<(u64, &OwnedOutput)> = coins
        .iter()
        .map(|coin| (coin.assets.amount(&asset), coin))
        .filter(|(units, _)| *units > 0)
        .collect();
    crate::sort::sort_by(&mut holding, &|a, b| {
        b.0.cmp(&a.0).then(a.1.outpoint.cmp(&b.1.outpoint))
    });
    let available: u64 = holding.iter().map(|(units, _)| units).sum();
    let mut forced = Vec::new();
    let mut gathered = 0u64;
    for (units, coin) in holding {
        if gathered >= amount {
            break;
        }
        gathered += units;
        forced.push(coin.clone());
    }
    if amount == 0 || gathered < amount {
        return Err(BuildError::InsufficientAsset {
            asset,
            needed: amount,
            available,
        });
    }
    Ok(forced)
}

/// An output of a swap: who, how many sats, which asset units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwapOutput {
    pub script: ScriptBuf,
    pub value: Amount,
    /// (asset, units), each asset at most once.
    pub assets: Vec<(AssetId, u64)>,
}

/// What one side of a swap must put into the transaction the other side completes: the
/// counterparty's coins, the outputs it is owed (its asset remainder included), what we receive,
/// and the asset units we give. See `market::swap` for how a fill becomes terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwapTerms {
    /// The counterparty's coins, spent first.
    pub foreign: Vec<ForeignCoin>,
    /// The outputs the counterparty is owed, first in the transaction.
    pub theirs: Vec<SwapOutput>,
    /// What we receive, next.
    pub ours: SwapOutput,
    /// Units we give from our own asset coins (their remainder comes back to us).
    pub give: Option<(AssetId, u64)>,
}

/// Builds the swap `terms` describe, funded by `coins`: our asset coins if we give an asset,
/// BTC coins for what we pay and the whole fee; our asset remainder goes to our external key
/// `asset_change`, BTC change to `change`.
pub fn build_swap(
    coins: &[OwnedOutput],
    terms: &SwapTerms,
    fee_rate: FeeRate,
    accounts: &[Account],
    (change_account, asset_change_index): (usize, u32),
    change: ChangeKey,
) -> Result<BuiltTx, BuildError> {
    let forced = match terms.give {
        Some((asset, amount)) => asset_coins(coins, asset, amount)?,
        None => Vec::new(),
    };
    let mut ours_left = AssetAmounts::total(forced.iter().map(|coin| &coin.assets));
    if let Some((asset, amount)) = terms.give {
        *ours_left.get_mut(&asset).expect("asset_coins found them") -= amount;
    }
    ours_left.retain(|_, units| *units > 0);
    let mut paid: Vec<&SwapOutput> = terms.theirs.iter().chain([&terms.ours]).collect();
    let back;
    if !ours_left.is_empty() {
        let script = accounts[change_account].script_pubkey(Keychain::External, asset_change_index);
        back = SwapOutput {
            value: dust_limit(&script),
            script,
            assets: ours_left.into_iter().collect(),
        };
        paid.push(&back);
    }
    // Allocate each asset to the outputs that receive it; the record's conservation rule (as
    // the chain applies it) is checked by building the allocation the chain will compute.
    let mut transfers: BTreeMap<AssetId, Vec<(u16, u64)>> = BTreeMap::new();
    for (index, output) in paid.iter().enumerate() {
        for &(asset, units) in &output.assets {
            transfers
                .entry(asset)
                .or_default()
                .push((index as u16, units));
        }
    }
    let mut outputs: Vec<TxOut> = paid
        .iter()
        .map(|output| TxOut {
            value: output.value,
            script_pubkey: output.script.clone(),
        })
        .collect();
    if !transfers.is_empty() {
        let record = AssetRecord::Transfer(
            transfers
                .into_iter()
                .map(|(asset, allocations)| Transfer { asset, allocations })
                .collect(),
        );
        outputs.push(TxOut {
            value: Amount::ZERO,
            script_pubkey: record.to_script(),
        });
    }
    let built = complete(
        outputs,
        forced,
        &terms.foreign,
        coins,
        fee_rate,
        accounts,
        change,
    )?;
    let input_assets: Vec<&AssetAmounts> = built
        .foreign
        .iter()
        .map(|coin| &coin.assets)
        .chain(built.inputs.iter().map(|coin| &coin.assets))
        .collect();
    crate::chain::assets::allocate(&built.tx, &input_assets).map_err(BuildError::Asset)?;
    Ok(built)
}

/// Completes a transaction paying `outputs`: spends the counterparty's `foreign` coins and our
/// `forced` ones, then as many BTC-only `coins` as the outputs and the fee need, and adds
/// change to `change` when it is worth an output.
fn complete(
    outputs: Vec<TxOut>,
    forced: Vec<OwnedOutput>,
    foreign: &[ForeignCoin],
    coins: &[OwnedOutput],
    fee_rate: FeeRate,
    accounts: &[Account],
    (change_account, change_index): ChangeKey,
) -> Result<BuiltTx, BuildError> {
    let mut tx = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![],
        output: outputs,
    };
    let change_out = TxOut {
        value: Amount::ZERO,
        script_pubkey: accounts[change_account].script_pubkey(Keychain::Internal, change_index),
    };
    let pool: Vec<OwnedOutput> = forced
        .iter()
        .cloned()
        .chain(coins.iter().filter(|coin| coin.assets.is_empty()).cloned())
        .collect();
    let candidates: Vec<Candidate> = pool
        .iter()
        .map(|coin| Candidate {
            outpoint: coin.outpoint,
            value: coin.value,
            input_weight: input_weight(&coin.script_pubkey),
        })
        .collect();
    let foreign_value: Amount = foreign.iter().map(|coin| coin.txout.value).sum();
    let paid: Amount = tx.output.iter().map(|txout| txout.value).sum();
    let target = paid
        .checked_sub(foreign_value)
        .ok_or(BuildError::ForeignExcess {
            inputs: foreign_value,
            outputs: paid,
        })?;
    tx.input = unsigned_inputs(foreign.iter().map(|coin| coin.outpoint));
    // The segwit marker and flag add 2 WU once; the counterparty's inputs weigh what they do.
    let base_weight = tx.weight()
        + Weight::from_wu(2)
        + foreign
            .iter()
            .map(|coin| input_weight(&coin.txout.script_pubkey) - Weight::from_wu(164))
            .sum();
    let params = SelectionParams {
        target,
        fee_rate,
        base_weight,
        change_weight: change_out.weight(),
        change_spend_weight: input_weight(&change_out.script_pubkey),
        dust_limit: dust_limit(&change_out.script_pubkey),
        must_spend: forced.len(),
    };
    let selection = select_coins(&candidates, &params).map_err(BuildError::Selection)?;
    let inputs: Vec<OwnedOutput> = selection
        .selected
        .iter()
        .map(|&i| pool[i].clone())
        .collect();
    tx.input
        .extend(unsigned_inputs(inputs.iter().map(|coin| coin.outpoint)));
    let change = selection.change.map(|value| {
        tx.output.push(TxOut {
            value,
            ..change_out
        });
        (
            tx.output.len() - 1,
            (change_account, Keychain::Internal, change_index),
        )
    });
    Ok(BuiltTx {
        tx,
        foreign: foreign.to_vec(),
        inputs,
        fee: selection.fee,
        change,
    })
}

/// Inputs spending `coins`, unsigned, signalling replaceability (BIP125).
fn unsigned_inputs(coins: impl Iterator<Item = OutPoint>) -> Vec<TxIn> {
    coins
        .map(|outpoint| TxIn {
            previous_output: outpoint,
            script_sig: ScriptBuf::new(),
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            witness: Witness::new(),
        })
        .collect()
}

/// The weight of an input spending `script` (P2TR key path or P2WPKH).
fn input_weight(script: &ScriptBuf) -> Weight {
    if script.is_p2tr() {
        P2TR_INPUT_WEIGHT
    } else {
        P2WPKH_INPUT_WEIGHT
    }
}

/// A signature for one input, before it goes into a witness or a PSBT field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputSignature {
    /// P2WPKH: the public key and its BIP143 ECDSA signature (SIGHASH_ALL).
    Ecdsa(bitcoin::PublicKey, ecdsa::Signature),
    /// P2TR key path: the BIP341 Schnorr signature (SIGHASH_DEFAULT).
    Schnorr(taproot::Signature),
}

impl InputSignature {
    /// The witness that spends with this signature.
    pub fn witness(&self) -> Witness {
        match self {
            InputSignature::Ecdsa(key, signature) => Witness::p2wpkh(signature, &key.inner),
            InputSignature::Schnorr(signature) => Witness::p2tr_key_spend(signature),
        }
    }
}

/// Signs input `input` of the transaction in `cache` with key `keychain`/`index` of `account`;
/// `prevouts` are the outputs every input spends (BIP341 commits to all of them). `aux_rand`
/// is BIP340's auxiliary randomness for Schnorr signatures: 32 fresh random bytes from the
/// driver (ECDSA signatures use RFC 6979 nonces and need none).
pub fn sign_input(
    secp: &Secp256k1<bitcoin::secp256k1::All>,
    cache: &mut SighashCache<&Transaction>,
    input: usize,
    prevouts: &[TxOut],
    (account, keychain, index): (&Account, Keychain, u32),
    aux_rand: &[u8; 32],
) -> Result<InputSignature, bitcoin::sighash::TaprootError> {
    let spent = &prevouts[input];
    Ok(match account.purpose() {
        Purpose::Bip84 => {
            let sighash_type = EcdsaSighashType::All;
            let sighash = cache
                .p2wpkh_signature_hash(input, &spent.script_pubkey, spent.value, sighash_type)
                .expect("the input exists and spends a P2WPKH output");
            let key = account.secret_key(keychain, index);
            let signature = secp.sign_ecdsa(&Message::from(sighash), &key);
            InputSignature::Ecdsa(
                bitcoin::PublicKey::new(key.public_key(secp)),
                ecdsa::Signature {
                    signature,
                    sighash_type,
                },
            )
        }
        Purpose::Bip86 => {
            let sighash_type = TapSighashType::Default;
            let sighash = cache.taproot_key_spend_signature_hash(
                input,
                &Prevouts::All(prevouts),
                sighash_type,
            )?;
            let keypair = account.signing_keypair(keychain, index);
            let signature =
                secp.sign_schnorr_with_aux_rand(&Message::from(sighash), &keypair, aux_rand);
            InputSignature::Schnorr(taproot::Signature {
                signature,
                sighash_type,
            })
        }
    })
}

/// A wallet key: (account index, keychain, child index).
pub type WalletKey = (usize, Keychain, u32);

/// Signs the inputs of `tx` listed in `ours` (input index, the wallet key it spends) with the
/// keys of `accounts`; `prevouts` are the outputs every input spends. Other inputs are left
/// as they are (a counterparty signs them).
pub fn sign_inputs(
    tx: &Transaction,
    prevouts: &[TxOut],
    ours: &[(usize, WalletKey)],
    accounts: &[Account],
    aux_rand: &[u8; 32],
) -> Transaction {
    let secp = Secp256k1::new();
    let mut cache = SighashCache::new(tx);
    let witnesses: Vec<(usize, Witness)> = ours
        .iter()
        .map(|&(input, (account, keychain, index))| {
            let signature = sign_input(
                &secp,
                &mut cache,
                input,
                prevouts,
                (&accounts[account], keychain, index),
                aux_rand,
            )
            .expect("every prevout is known");
            (input, signature.witness())
        })
        .collect();
    let mut signed = tx.clone();
    for (input, witness) in witnesses {
        signed.input[input].witness = witness;
    }
    signed
}

/// Signs every wallet input of `built` with the keys of `accounts` (indexed as in the tracker).
pub fn sign(built: &BuiltTx, accounts: &[Account], aux_rand: &[u8; 32]) -> Transaction {
    let prevouts: Vec<TxOut> = built
        .foreign
        .iter()
        .map(|coin| coin.txout.clone())
        .chain(built.inputs.iter().map(|coin| TxOut {
            value: coin.value,
            script_pubkey: coin.script_pubkey.clone(),
        }))
        .collect();
    let ours: Vec<(usize, WalletKey)> = built
        .inputs
        .iter()
        .enumerate()
        .map(|(n, coin)| (built.foreign.len() + n, coin.key))
        .collect();
    sign_inputs(&built.tx, &prevouts, &ours, accounts, aux_rand)
}
