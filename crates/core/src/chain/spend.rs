//! Spending an output: the witness of each input must carry a valid signature for the output
//! it spends. P2WPKH inputs are checked with the BIP143 sighash and ECDSA (strict DER, low S),
//! P2TR inputs by the key path with the BIP341 sighash and BIP340 Schnorr. Every sighash type
//! both BIPs define is accepted.

use core::borrow::Borrow;
use core::fmt;

use bitcoin::hashes::Hash;
use bitcoin::key::CompressedPublicKey;
use bitcoin::secp256k1::{self, Message, Secp256k1, Verification, XOnlyPublicKey};
use bitcoin::sighash::{Prevouts, SighashCache, TaprootError};
use bitcoin::{ecdsa, taproot, Transaction, TxOut};

use super::tx::OutputKind;

/// Why an input's witness does not unlock the output it spends.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpendFailure {
    /// Segwit inputs carry everything in the witness; the script sig must be empty.
    ScriptSigNotEmpty,
    /// The witness has the wrong number of items for the output type.
    WitnessItems { expected: usize, found: usize },
    /// The spent output is not spendable (OP_RETURN or an unsupported type).
    Unspendable,
    /// The witness public key is not a valid compressed key.
    InvalidPublicKey,
    /// The witness public key does not hash to the output's key hash.
    PublicKeyMismatch,
    /// The signature is not strict DER (ECDSA) or has the wrong length (Schnorr).
    SignatureEncoding,
    /// The ECDSA signature's S value is in the upper half of the order.
    HighS,
    /// The sighash type byte is not one the BIP defines.
    InvalidSighashType(u32),
    /// SIGHASH_SINGLE on a taproot input with no output at the same index.
    SighashSingleWithoutOutput,
    /// The taproot output key is not a valid point.
    InvalidOutputKey,
    /// The signature does not verify.
    InvalidSignature,
}

/// An input whose witness does not unlock the output it spends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendError {
    /// The index of the failing input.
    pub input: usize,
    /// What is wrong with it.
    pub failure: SpendFailure,
}

impl fmt::Display for SpendFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpendFailure::ScriptSigNotEmpty => {
                f.write_str("the script sig of a segwit input is not empty")
            }
            SpendFailure::WitnessItems { expected, found } => {
                write!(f, "the witness has {found} items, {expected} expected")
            }
            SpendFailure::Unspendable => f.write_str("the spent output cannot be spent"),
            SpendFailure::InvalidPublicKey => {
                f.write_str("the witness public key is invalid or uncompressed")
            }
            SpendFailure::PublicKeyMismatch => {
                f.write_str("the witness public key does not match the output's key hash")
            }
            SpendFailure::SignatureEncoding => {
                f.write_str("the signature is not canonically encoded")
            }
            SpendFailure::HighS => f.write_str("the signature's S value is not low"),
            SpendFailure::InvalidSighashType(byte) => {
                write!(f, "sighash type {byte:#04x} is invalid")
            }
            SpendFailure::SighashSingleWithoutOutput => {
                f.write_str("SIGHASH_SINGLE signs an output that does not exist")
            }
            SpendFailure::InvalidOutputKey => {
                f.write_str("the taproot output key is not a valid point")
            }
            SpendFailure::InvalidSignature => f.write_str("the signature does not verify"),
        }
    }
}

impl fmt::Display for SpendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "input {}: {}", self.input, self.failure)
    }
}

impl std::error::Error for SpendError {}

/// Verifies the witness of every input of `tx`, where `prevouts[i]` is the output input `i` spends.
pub fn verify_spends<C: Verification, T: Borrow<TxOut>>(
    secp: &Secp256k1<C>,
    tx: &Transaction,
    prevouts: &[T],
) -> Result<(), SpendError> {
    debug_assert_eq!(tx.input.len(), prevouts.len());
    // One cache per transaction: BIP143 and BIP341 share the hashes of prevouts, sequences and
    // outputs across inputs, which keeps verification linear in the transaction's size.
    let mut cache = SighashCache::new(tx);
    (0..tx.input.len()).try_for_each(|input| {
        verify_input(secp, tx, &mut cache, input, prevouts)
            .map_err(|failure| SpendError { input, failure })
    })
}

/// Verifies the witness of input `input` of `tx`; `cache` is the sighash cache of `tx`.
pub fn verify_input<C: Verification, T: Borrow<TxOut>>(
    secp: &Secp256k1<C>,
    tx: &Transaction,
    cache: &mut SighashCache<&Transaction>,
    input: usize,
    prevouts: &[T],
) -> Result<(), SpendFailure> {
    let txin = &tx.input[input];
    if !txin.script_sig.is_empty() {
        return Err(SpendFailure::ScriptSigNotEmpty);
    }
    let witness = &txin.witness;
    let spent = prevouts[input].borrow();
    match OutputKind::of(&spent.script_pubkey) {
        Some(OutputKind::P2wpkh) => {
            let [signature, key] = witness_items::<2>(witness)?;
            let key =
                CompressedPublicKey::from_slice(key).map_err(|_| SpendFailure::InvalidPublicKey)?;
            if key.wpubkey_hash().as_byte_array()[..] != spent.script_pubkey.as_bytes()[2..22] {
                return Err(SpendFailure::PublicKeyMismatch);
            }
            let signature = ecdsa::Signature::from_slice(signature).map_err(|err| match err {
                ecdsa::Error::SighashType(err) => SpendFailure::InvalidSighashType(err.0),
                _ => SpendFailure::SignatureEncoding,
            })?;
            let mut normalized = signature.signature;
            normalized.normalize_s();
            if normalized != signature.signature {
                return Err(SpendFailure::HighS);
            }
            let sighash = cache
                .p2wpkh_signature_hash(
                    input,
                    &spent.script_pubkey,
                    spent.value,
                    signature.sighash_type,
                )
                .expect("the input exists and the script is P2WPKH");
            secp.verify_ecdsa(&Message::from(sighash), &signature.signature, &key.0)
                .map_err(|_| SpendFailure::InvalidSignature)
        }
        Some(OutputKind::P2tr) => {
            let [signature] = witness_items::<1>(witness)?;
            // A 65-byte signature must name its sighash type; 0x00 is only implied by 64 bytes.
            if signature.len() == 65 && signature[64] == 0 {
                return Err(SpendFailure::InvalidSighashType(0));
            }
            let signature = taproot::Signature::from_slice(signature).map_err(|err| match err {
                taproot::SigFromSliceError::SighashType(err) => {
                    SpendFailure::InvalidSighashType(err.0)
                }
                _ => SpendFailure::SignatureEncoding,
            })?;
            let key = XOnlyPublicKey::from_slice(&spent.script_pubkey.as_bytes()[2..34])
                .map_err(|_| SpendFailure::InvalidOutputKey)?;
            let sighash = cache
                .taproot_key_spend_signature_hash(
                    input,
                    &Prevouts::All(prevouts),
                    signature.sighash_type,
                )
                .map_err(|err| match err {
                    TaprootError::SingleMissingOutput(_) => {
                        SpendFailure::SighashSingleWithoutOutput
                    }
                    other => unreachable!("prevouts are complete and the index is valid: {other}"),
                })?;
            secp.verify_schnorr(&signature.signature, &Message::from(sighash), &key)
                .map_err(|_| SpendFailure::InvalidSignature)
        }
        Some(OutputKind::OpReturn) | None => Err(SpendFailure::Unspendable),
    }
}

fn witness_items<const N: usize>(witness: &bitcoin::Witness) -> Result<[&[u8]; N], SpendFailure> {
    let found = witness.len();
    if found != N {
        return Err(SpendFailure::WitnessItems { expected: N, found });
    }
    Ok(core::array::from_fn(|i| &witness[i]))
}

/// A verification-only secp256k1 context.
pub fn verifier() -> Secp256k1<secp256k1::VerifyOnly> {
    Secp256k1::verification_only()
}
