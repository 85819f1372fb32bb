//! Building and signing the wallet's transactions: BTC payments, with change back to the wallet.
//!
//! Coins that carry assets are never spent by a payment (their units would have to be
//! allocated: asset transfers build their own transactions), nor are coins another spend
//! reserved, immature coinbases, or unconfirmed coins of others.

use core::fmt;

use bitcoin::absolute::LockTime;
use bitcoin::secp256k1::{Message, Secp256k1};
use bitcoin::sighash::{EcdsaSighashType, Prevouts, SighashCache, TapSighashType};
use bitcoin::transaction::Version;
use bitcoin::{
    ecdsa, taproot, Amount, FeeRate, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Weight, Witness,
};

use super::coin_select::{
    select_coins, Candidate, SelectionError, SelectionParams, P2TR_INPUT_WEIGHT,
    P2WPKH_INPUT_WEIGHT,
};
use super::keys::{Account, Keychain, Purpose};
use super::metadata::Metadata;
use super::tracker::{OwnedOutput, Tracker, TxStatus};

/// A payment to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRequest {
    /// Who is paid what.
    pub recipients: Vec<(ScriptBuf, Amount)>,
    /// The fee rate to pay.
    pub fee_rate: FeeRate,
}

/// A built transaction with what signing and display need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltTx {
    /// The transaction, unsigned until [`sign`].
    pub tx: Transaction,
    /// The wallet outputs its inputs spend, in input order.
    pub inputs: Vec<OwnedOutput>,
    /// The fee it pays.
    pub fee: Amount,
    /// The change output, if any: its index and the wallet key it pays.
    pub change: Option<(usize, (usize, Keychain, u32))>,
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
        }
    }
}

impl std::error::Error for BuildError {}

/// The smallest output Bitcoin nodes relay to `script` (at the 3 sat/vB dust relay fee).
pub fn dust_limit(script: &ScriptBuf) -> Amount {
    script.minimal_non_dust()
}

/// The coins a payment may spend at `now_millis`.
pub fn spendable(
    tracker: &Tracker,
    metadata: &Metadata,
    now_millis: u64,
    maturity: u32,
) -> Vec<OwnedOutput> {
    tracker
        .unspent()
        .into_iter()
        .filter(|output| output.assets.is_empty())
        .filter(|output| metadata.reservation(&output.outpoint, now_millis).is_none())
        .filter(|output| match output.status {
            TxStatus::Confirmed { height } => {
                !output.is_coinbase || tracker.tip() + 1 - height >= maturity
            }
            // Only our own change: a stranger's unconfirmed payment may never confirm.
            TxStatus::Unconfirmed { .. } => output.key.1 == Keychain::Internal,
        })
        .collect()
}

/// Builds a payment from `coins`, sending change to the internal key `change_index` of
/// `accounts[change_account]`.
pub fn build_payment(
    coins: &[OwnedOutput],
    request: &PaymentRequest,
    accounts: &[Account],
    (change_account, change_index): (usize, u32),
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
    let mut tx = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![],
        output: request
            .recipients
            .iter()
            .map(|(script, amount)| TxOut {
                value: *amount,
                script_pubkey: script.clone(),
            })
            .collect(),
    };
    let change_out = TxOut {
        value: Amount::ZERO,
        script_pubkey: accounts[change_account].script_pubkey(Keychain::Internal, change_index),
    };
    let candidates: Vec<Candidate> = coins
        .iter()
        .map(|coin| Candidate {
            outpoint: coin.outpoint,
            value: coin.value,
            input_weight: input_weight(&coin.script_pubkey),
        })
        .collect();
    // The segwit marker and flag add 2 WU once.
    let base_weight = tx.weight() + Weight::from_wu(2);
    let params = SelectionParams {
        target: request.recipients.iter().map(|(_, amount)| *amount).sum(),
        fee_rate: request.fee_rate,
        base_weight,
        change_weight: change_out.weight(),
        change_spend_weight: input_weight(&change_out.script_pubkey),
        dust_limit: dust_limit(&change_out.script_pubkey),
        must_spend: 0,
    };
    let selection = select_coins(&candidates, &params).map_err(BuildError::Selection)?;
    let inputs: Vec<OwnedOutput> = selection
        .selected
        .iter()
        .map(|&i| coins[i].clone())
        .collect();
    tx.input = inputs
        .iter()
        .map(|coin| TxIn {
            previous_output: coin.outpoint,
            script_sig: ScriptBuf::new(),
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            witness: Witness::new(),
        })
        .collect();
    let change = selection.change.map(|value| {
        tx.output.push(TxOut {
            value,
            ..change_out
        });
        let key = (change_account, Keychain::Internal, change_index);
        (tx.output.len() - 1, key)
    });
    Ok(BuiltTx {
        tx,
        inputs,
        fee: selection.fee,
        change,
    })
}

/// The weight of an input spending `script` (P2TR key path or P2WPKH).
fn input_weight(script: &ScriptBuf) -> Weight {
    if script.is_p2tr() {
        P2TR_INPUT_WEIGHT
    } else {
        P2WPKH_INPUT_WEIGHT
    }
}

/// Signs every input of `built` with the keys of `accounts` (indexed as in the tracker):
/// BIP143 ECDSA for P2WPKH, BIP341 Schnorr (SIGHASH_DEFAULT) for P2TR.
pub fn sign(built: &BuiltTx, accounts: &[Account]) -> Transaction {
    let secp = Secp256k1::new();
    let mut tx = built.tx.clone();
    let prevouts: Vec<TxOut> = built
        .inputs
        .iter()
        .map(|coin| TxOut {
            value: coin.value,
            script_pubkey: coin.script_pubkey.clone(),
        })
        .collect();
    let mut witnesses = Vec::with_capacity(tx.input.len());
    {
        let mut cache = SighashCache::new(&tx);
        for (input, coin) in built.inputs.iter().enumerate() {
            let (account, keychain, index) = coin.key;
            let account = &accounts[account];
            let witness = match account.purpose() {
                Purpose::Bip84 => {
                    let sighash_type = EcdsaSighashType::All;
                    let sighash = cache
                        .p2wpkh_signature_hash(input, &coin.script_pubkey, coin.value, sighash_type)
                        .expect("a P2WPKH input of this transaction");
                    let key = account.secret_key(keychain, index);
                    let signature = secp.sign_ecdsa(&Message::from(sighash), &key);
                    Witness::p2wpkh(
                        &ecdsa::Signature {
                            signature,
                            sighash_type,
                        },
                        &key.public_key(&secp),
                    )
                }
                Purpose::Bip86 => {
                    let sighash_type = TapSighashType::Default;
                    let sighash = cache
                        .taproot_key_spend_signature_hash(
                            input,
                            &Prevouts::All(&prevouts),
                            sighash_type,
                        )
                        .expect("a taproot input of this transaction");
                    let keypair = account.signing_keypair(keychain, index);
                    let signature =
                        secp.sign_schnorr_no_aux_rand(&Message::from(sighash), &keypair);
                    Witness::p2tr_key_spend(&taproot::Signature {
                        signature,
                        sighash_type,
                    })
                }
            };
            witnesses.push(witness);
        }
    }
    for (txin, witness) in tx.input.iter_mut().zip(witnesses) {
        txin.witness = witness;
    }
    tx
}
