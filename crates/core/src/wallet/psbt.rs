//! PSBT (BIP174, version 0): exporting a built transaction so another signer or wallet can
//! cooperate, and importing it back to sign and finalize.
//!
//! Exported PSBTs carry what any BIP174 signer needs: each input's witness UTXO and key origin
//! (`bip32_derivation` for P2WPKH; `tap_internal_key` and `tap_key_origins` for P2TR), and the
//! key origin of the change output, so hardware wallets can recognise it.

use core::fmt;
use std::collections::BTreeMap;
use std::str::FromStr;

use bitcoin::psbt::{self, Psbt};
use bitcoin::secp256k1::Secp256k1;
use bitcoin::sighash::SighashCache;
use bitcoin::{Transaction, TxOut};

use super::build::{sign_input, BuiltTx, InputSignature};
use super::keys::{Account, Keychain, Purpose};

/// Why a PSBT cannot be read, signed or finalized.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PsbtError {
    /// Not a base64 PSBT, or malformed; the text says why.
    Parse(String),
    /// An input has no witness UTXO, so its sighash cannot be computed.
    MissingUtxo { input: usize },
    /// An input is not signed yet.
    Unsigned { input: usize },
}

impl fmt::Display for PsbtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PsbtError::Parse(why) => write!(f, "not a valid PSBT: {why}"),
            PsbtError::MissingUtxo { input } => {
                write!(f, "input {input} lacks the output it spends")
            }
            PsbtError::Unsigned { input } => write!(f, "input {input} is not signed"),
        }
    }
}

impl std::error::Error for PsbtError {}

/// The unsigned PSBT of `built`, whose inputs belong to `accounts` (indexed as in the tracker).
pub fn export(built: &BuiltTx, accounts: &[Account]) -> Psbt {
    let mut psbt =
        Psbt::from_unsigned_tx(built.tx.clone()).expect("built transactions are unsigned");
    for (input, coin) in psbt.inputs.iter_mut().zip(&built.foreign) {
        input.witness_utxo = Some(coin.txout.clone());
    }
    let ours = psbt.inputs.iter_mut().skip(built.foreign.len());
    for (input, coin) in ours.zip(&built.inputs) {
        let (account, keychain, index) = coin.key;
        input.witness_utxo = Some(TxOut {
            value: coin.value,
            script_pubkey: coin.script_pubkey.clone(),
        });
        add_origin(input_origin(input), &accounts[account], keychain, index);
    }
    if let Some((output, (account, keychain, index))) = built.change {
        add_origin(
            output_origin(&mut psbt.outputs[output]),
            &accounts[account],
            keychain,
            index,
        );
    }
    psbt
}

/// The fields where a key origin goes, for an input or an output.
struct Origin<'a> {
    bip32: &'a mut BTreeMap<bitcoin::secp256k1::PublicKey, bitcoin::bip32::KeySource>,
    tap_internal: &'a mut Option<bitcoin::XOnlyPublicKey>,
    tap_origins: &'a mut BTreeMap<
        bitcoin::XOnlyPublicKey,
        (Vec<bitcoin::TapLeafHash>, bitcoin::bip32::KeySource),
    >,
}

fn input_origin(input: &mut psbt::Input) -> Origin<'_> {
    Origin {
        bip32: &mut input.bip32_derivation,
        tap_internal: &mut input.tap_internal_key,
        tap_origins: &mut input.tap_key_origins,
    }
}

fn output_origin(output: &mut psbt::Output) -> Origin<'_> {
    Origin {
        bip32: &mut output.bip32_derivation,
        tap_internal: &mut output.tap_internal_key,
        tap_origins: &mut output.tap_key_origins,
    }
}

fn add_origin(origin: Origin<'_>, account: &Account, keychain: Keychain, index: u32) {
    let key = account.public_key(keychain, index).0;
    let source = (
        account.master_fingerprint(),
        account.key_path(keychain, index),
    );
    match account.purpose() {
        Purpose::Bip84 => {
            origin.bip32.insert(key, source);
        }
        Purpose::Bip86 => {
            let internal = key.x_only_public_key().0;
            *origin.tap_internal = Some(internal);
            origin.tap_origins.insert(internal, (Vec::new(), source));
        }
    }
}

/// The PSBT as base64 text, to hand to another wallet.
pub fn to_base64(psbt: &Psbt) -> String {
    psbt.to_string()
}

/// Reads a base64 PSBT.
pub fn from_base64(text: &str) -> Result<Psbt, PsbtError> {
    Psbt::from_str(text.trim()).map_err(|err| PsbtError::Parse(err.to_string()))
}

/// Signs every input whose key origin is one of `accounts`' keys; returns how many were signed.
/// `aux_rand`: 32 fresh random bytes for Schnorr signatures (BIP340).
pub fn sign(
    psbt: &mut Psbt,
    accounts: &[Account],
    aux_rand: &[u8; 32],
) -> Result<usize, PsbtError> {
    let secp = Secp256k1::new();
    let prevouts: Vec<TxOut> = psbt
        .inputs
        .iter()
        .enumerate()
        .map(|(input, data)| {
            data.witness_utxo
                .clone()
                .ok_or(PsbtError::MissingUtxo { input })
        })
        .collect::<Result<_, _>>()?;
    let tx = psbt.unsigned_tx.clone();
    let mut cache = SighashCache::new(&tx);
    let mut signed = 0;
    for (index, input) in psbt.inputs.iter_mut().enumerate() {
        let origins: Vec<bitcoin::bip32::KeySource> = input
            .bip32_derivation
            .values()
            .cloned()
            .chain(
                input
                    .tap_key_origins
                    .values()
                    .map(|(_, source)| source.clone()),
            )
            .collect();
        for (fingerprint, path) in origins {
            let Some((account, keychain, child)) = find_key(accounts, fingerprint, &path) else {
                continue;
            };
            let signature = sign_input(
                &secp,
                &mut cache,
                index,
                &prevouts,
                (account, keychain, child),
                aux_rand,
            )
            .map_err(|err| PsbtError::Parse(err.to_string()))?;
            match signature {
                InputSignature::Ecdsa(key, signature) => {
                    input.partial_sigs.insert(key, signature);
                }
                InputSignature::Schnorr(signature) => input.tap_key_sig = Some(signature),
            }
            signed += 1;
            break;
        }
    }
    Ok(signed)
}

/// The account and key a key origin names, among `accounts`.
fn find_key<'a>(
    accounts: &'a [Account],
    fingerprint: bitcoin::bip32::Fingerprint,
    path: &bitcoin::bip32::DerivationPath,
) -> Option<(&'a Account, Keychain, u32)> {
    accounts.iter().find_map(|account| {
        if account.master_fingerprint() != fingerprint {
            return None;
        }
        [Keychain::External, Keychain::Internal]
            .into_iter()
            .find_map(|keychain| {
                let tail = path.as_ref().last()?;
                let index = match tail {
                    bitcoin::bip32::ChildNumber::Normal { index } => *index,
                    _ => return None,
                };
                (account.key_path(keychain, index) == *path).then_some((account, keychain, index))
            })
    })
}

/// Turns the signatures into final witnesses and returns the signed transaction.
pub fn finalize(mut psbt: Psbt) -> Result<Transaction, PsbtError> {
    for (index, input) in psbt.inputs.iter_mut().enumerate() {
        if input.final_script_witness.is_some() {
            continue;
        }
        let signature = match (input.tap_key_sig, input.partial_sigs.iter().next()) {
            (Some(signature), _) => InputSignature::Schnorr(signature),
            (None, Some((key, signature))) => InputSignature::Ecdsa(*key, *signature),
            (None, None) => return Err(PsbtError::Unsigned { input: index }),
        };
        let witness = signature.witness();
        input.final_script_witness = Some(witness);
        input.partial_sigs.clear();
        input.tap_key_sig = None;
        input.bip32_derivation.clear();
        input.tap_key_origins.clear();
        input.tap_internal_key = None;
    }
    psbt.extract_tx()
        .map_err(|err| PsbtError::Parse(err.to_string()))
}
