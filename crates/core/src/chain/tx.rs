//! Transaction rules that need no context: shape, value ranges and output types.

use core::fmt;
use std::collections::HashSet;

use bitcoin::{Amount, OutPoint, Script, Transaction, Weight};

/// The output types bitmesh accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// Pay to witness public key hash (segwit v0): `OP_0 <20 bytes>`.
    P2wpkh,
    /// Pay to taproot (segwit v1), spent by the key path: `OP_1 <32 bytes>`.
    P2tr,
    /// Unspendable data: `OP_RETURN ...`. Carries no value.
    OpReturn,
}

impl OutputKind {
    /// The kind of `script`, or `None` for every script bitmesh refuses.
    pub fn of(script: &Script) -> Option<OutputKind> {
        if script.is_p2wpkh() {
            Some(OutputKind::P2wpkh)
        } else if script.is_p2tr() {
            Some(OutputKind::P2tr)
        } else if script.is_op_return() {
            Some(OutputKind::OpReturn)
        } else {
            None
        }
    }
}

/// The largest weight of a transaction, beyond which it could never fit in a block.
pub const MAX_TX_WEIGHT: Weight = Weight::from_wu(4_000_000);

/// Why a transaction breaks a context-free rule.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxError {
    /// A transaction needs at least one input.
    NoInputs,
    /// A transaction needs at least one output.
    NoOutputs,
    /// The transaction is heavier than a block may be.
    TooHeavy(Weight),
    /// An output's value is above the 21 million BTC supply.
    OutputValueTooLarge { output: usize },
    /// The outputs together are worth more than the 21 million BTC supply.
    TotalOutputTooLarge,
    /// An output's script is none of P2WPKH, P2TR or OP_RETURN.
    UnsupportedOutput { output: usize },
    /// An OP_RETURN output carries value, which would be burnt.
    ValueInOpReturn { output: usize },
    /// The same previous output is spent twice.
    DuplicateInput(OutPoint),
    /// A coinbase's script must be 2 to 100 bytes long.
    CoinbaseScriptSize(usize),
    /// A non-coinbase input refers to the null previous output.
    NullPrevout { input: usize },
}

impl fmt::Display for TxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TxError::NoInputs => f.write_str("the transaction has no inputs"),
            TxError::NoOutputs => f.write_str("the transaction has no outputs"),
            TxError::TooHeavy(weight) => {
                write!(f, "the transaction weighs {weight}, above the limit of {MAX_TX_WEIGHT}")
            }
            TxError::OutputValueTooLarge { output } => {
                write!(f, "output {output} is worth more than the whole supply")
            }
            TxError::TotalOutputTooLarge => {
                f.write_str("the outputs together are worth more than the whole supply")
            }
            TxError::UnsupportedOutput { output } => write!(
                f,
                "output {output} has an unsupported script (only P2WPKH, P2TR and OP_RETURN are accepted)"
            ),
            TxError::ValueInOpReturn { output } => {
                write!(f, "OP_RETURN output {output} carries value that would be burnt")
            }
            TxError::DuplicateInput(outpoint) => write!(f, "input {outpoint} is spent twice"),
            TxError::CoinbaseScriptSize(len) => {
                write!(f, "the coinbase script is {len} bytes (2 to 100 allowed)")
            }
            TxError::NullPrevout { input } => {
                write!(f, "input {input} spends the null outpoint but the transaction is no coinbase")
            }
        }
    }
}

impl std::error::Error for TxError {}

/// Checks the rules a transaction must meet whatever the chain holds.
pub fn check_transaction(tx: &Transaction) -> Result<(), TxError> {
    if tx.input.is_empty() {
        return Err(TxError::NoInputs);
    }
    if tx.output.is_empty() {
        return Err(TxError::NoOutputs);
    }
    let weight = tx.weight();
    if weight > MAX_TX_WEIGHT {
        return Err(TxError::TooHeavy(weight));
    }
    let mut total = Amount::ZERO;
    for (output, txout) in tx.output.iter().enumerate() {
        if txout.value > Amount::MAX_MONEY {
            return Err(TxError::OutputValueTooLarge { output });
        }
        total = total
            .checked_add(txout.value)
            .filter(|total| *total <= Amount::MAX_MONEY)
            .ok_or(TxError::TotalOutputTooLarge)?;
        match OutputKind::of(&txout.script_pubkey) {
            None => return Err(TxError::UnsupportedOutput { output }),
            Some(OutputKind::OpReturn) if txout.value > Amount::ZERO => {
                return Err(TxError::ValueInOpReturn { output })
            }
            Some(_) => {}
        }
    }
    let mut spent = HashSet::with_capacity(tx.input.len());
    for txin in &tx.input {
        if !spent.insert(txin.previous_output) {
            return Err(TxError::DuplicateInput(txin.previous_output));
        }
    }
    if tx.is_coinbase() {
        let len = tx.input[0].script_sig.len();
        if !(2..=100).contains(&len) {
            return Err(TxError::CoinbaseScriptSize(len));
        }
    } else if let Some(input) = tx
        .input
        .iter()
        .position(|txin| txin.previous_output.is_null())
    {
        return Err(TxError::NullPrevout { input });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash;
    use bitcoin::transaction::Version;
    use bitcoin::{absolute, ScriptBuf, Sequence, TxIn, TxOut, Txid, WPubkeyHash, Witness};

    fn spend(outpoints: &[OutPoint], outputs: Vec<TxOut>) -> Transaction {
        Transaction {
            version: Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: outpoints
                .iter()
                .map(|&previous_output| TxIn {
                    previous_output,
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::MAX,
                    witness: Witness::new(),
                })
                .collect(),
            output: outputs,
        }
    }

    fn outpoint(n: u8) -> OutPoint {
        OutPoint::new(Txid::from_byte_array([n; 32]), 0)
    }

    fn p2wpkh(sats: u64) -> TxOut {
        TxOut {
            value: Amount::from_sat(sats),
            script_pubkey: ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array([7; 20])),
        }
    }

    #[test]
    fn a_plain_payment_passes() {
        let tx = spend(&[outpoint(1)], vec![p2wpkh(1_000)]);
        assert_eq!(check_transaction(&tx), Ok(()));
    }

    #[test]
    fn each_rule_gives_its_reason() {
        let empty_in = spend(&[], vec![p2wpkh(1)]);
        assert_eq!(check_transaction(&empty_in), Err(TxError::NoInputs));

        let empty_out = spend(&[outpoint(1)], vec![]);
        assert_eq!(check_transaction(&empty_out), Err(TxError::NoOutputs));

        let too_much = spend(&[outpoint(1)], vec![p2wpkh(Amount::MAX_MONEY.to_sat() + 1)]);
        assert_eq!(
            check_transaction(&too_much),
            Err(TxError::OutputValueTooLarge { output: 0 })
        );

        let half = Amount::MAX_MONEY.to_sat() / 2 + 1;
        let total = spend(&[outpoint(1)], vec![p2wpkh(half), p2wpkh(half)]);
        assert_eq!(check_transaction(&total), Err(TxError::TotalOutputTooLarge));

        let p2pkh = TxOut {
            value: Amount::from_sat(1),
            script_pubkey: ScriptBuf::new_p2pkh(&bitcoin::PubkeyHash::from_byte_array([1; 20])),
        };
        let legacy = spend(&[outpoint(1)], vec![p2wpkh(1), p2pkh]);
        assert_eq!(
            check_transaction(&legacy),
            Err(TxError::UnsupportedOutput { output: 1 })
        );

        let burn = TxOut {
            value: Amount::from_sat(5),
            script_pubkey: ScriptBuf::new_op_return(b"x"),
        };
        let burning = spend(&[outpoint(1)], vec![burn]);
        assert_eq!(
            check_transaction(&burning),
            Err(TxError::ValueInOpReturn { output: 0 })
        );

        let twice = spend(&[outpoint(1), outpoint(1)], vec![p2wpkh(1)]);
        assert_eq!(
            check_transaction(&twice),
            Err(TxError::DuplicateInput(outpoint(1)))
        );

        let null = spend(&[outpoint(1), OutPoint::null()], vec![p2wpkh(1)]);
        assert_eq!(
            check_transaction(&null),
            Err(TxError::NullPrevout { input: 1 })
        );

        let mut coinbase = spend(&[OutPoint::null()], vec![p2wpkh(1)]);
        coinbase.input[0].script_sig = ScriptBuf::from_bytes(vec![1]);
        assert_eq!(
            check_transaction(&coinbase),
            Err(TxError::CoinbaseScriptSize(1))
        );

        let mut heavy = spend(&[outpoint(1)], vec![p2wpkh(1)]);
        heavy.output[0].script_pubkey = ScriptBuf::new_op_return(b"");
        heavy.output[0].value = Amount::ZERO;
        heavy.output.push(TxOut {
            value: Amount::ZERO,
            script_pubkey: ScriptBuf::from_bytes(vec![0x6a; 1_000_001]),
        });
        assert!(matches!(
            check_transaction(&heavy),
            Err(TxError::TooHeavy(_))
        ));
    }

    #[test]
    fn output_kinds_are_recognised() {
        assert_eq!(
            OutputKind::of(&p2wpkh(1).script_pubkey),
            Some(OutputKind::P2wpkh)
        );
        let key = bitcoin::key::UntweakedPublicKey::from_slice(&[
            0x79, 0xbe, 0x66, 0x7e, 0xf9, 0xdc, 0xbb, 0xac, 0x55, 0xa0, 0x62, 0x95, 0xce, 0x87,
            0x0b, 0x07, 0x02, 0x9b, 0xfc, 0xdb, 0x2d, 0xce, 0x28, 0xd9, 0x59, 0xf2, 0x81, 0x5b,
            0x16, 0xf8, 0x17, 0x98,
        ])
        .unwrap();
        let p2tr = ScriptBuf::new_p2tr_tweaked(
            bitcoin::key::TweakedPublicKey::dangerous_assume_tweaked(key),
        );
        assert_eq!(OutputKind::of(&p2tr), Some(OutputKind::P2tr));
        assert_eq!(
            OutputKind::of(&ScriptBuf::new_op_return(b"hi")),
            Some(OutputKind::OpReturn)
        );
        assert_eq!(OutputKind::of(&ScriptBuf::new()), None);
    }
}
