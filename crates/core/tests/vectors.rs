//! Spends checked against published vectors (BIP143, BIP341, BIP340), natively and in wasm.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use bitcoin::consensus::encode::deserialize;
use bitcoin::hex::FromHex;
use bitcoin::secp256k1::{schnorr, Message, XOnlyPublicKey};
use bitcoin::sighash::{EcdsaSighashType, Prevouts, SighashCache, TapSighashType};
use bitcoin::{Amount, ScriptBuf, Transaction, TxOut, Witness};
use bitmesh_core::chain::spend::{verifier, verify_input, SpendFailure};
use serde_json::Value;

const BIP143: &str = include_str!("data/bip143_examples.json");
const BIP341: &str = include_str!("data/bip341_wallet_test_vectors.json");
const BIP340: &str = include_str!("data/bip340_test_vectors.csv");

fn bytes(hex: &str) -> Vec<u8> {
    Vec::from_hex(hex).expect("hex")
}

fn tx(hex: &str) -> Transaction {
    deserialize(&bytes(hex)).expect("transaction")
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("json")
}

/// The native P2WPKH example: its signed transaction and the outputs its inputs spend.
fn bip143_p2wpkh() -> (Transaction, Vec<TxOut>, Value) {
    let vectors = json(BIP143);
    let example = vectors["examples"][0].clone();
    assert_eq!(example["section"], "Native P2WPKH");
    let prevouts = example["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|input| TxOut {
            value: Amount::from_str_in(
                input["value_btc"].as_str().unwrap(),
                bitcoin::Denomination::Bitcoin,
            )
            .unwrap(),
            script_pubkey: ScriptBuf::from_bytes(bytes(input["scriptPubKey"].as_str().unwrap())),
        })
        .collect();
    (
        tx(example["signed_tx"].as_str().unwrap()),
        prevouts,
        example,
    )
}

fn check_p2wpkh(signed: &Transaction, prevouts: &[TxOut]) -> Result<(), SpendFailure> {
    let mut cache = SighashCache::new(signed);
    verify_input(&verifier(), signed, &mut cache, 1, prevouts)
}

#[test]
fn bip143_native_p2wpkh_sighash_and_signature() {
    let (signed, prevouts, example) = bip143_p2wpkh();
    let signing = &example["signing"][0];
    let unsigned = tx(example["unsigned_tx"].as_str().unwrap());
    let sighash = SighashCache::new(&unsigned)
        .p2wpkh_signature_hash(
            1,
            &prevouts[1].script_pubkey,
            prevouts[1].value,
            EcdsaSighashType::All,
        )
        .unwrap();
    assert_eq!(sighash.to_string(), signing["sighash"].as_str().unwrap());
    assert_eq!(check_p2wpkh(&signed, &prevouts), Ok(()));
}

#[test]
fn p2wpkh_failures_have_their_reasons() {
    let (signed, prevouts, _) = bip143_p2wpkh();
    let witness: Vec<Vec<u8>> = signed.input[1].witness.to_vec();
    let with_witness = |items: Vec<Vec<u8>>| {
        let mut tx = signed.clone();
        tx.input[1].witness = Witness::from_slice(&items);
        tx
    };

    let mut forged = witness.clone();
    forged[0][10] ^= 1; // inside r
    assert_eq!(
        check_p2wpkh(&with_witness(forged), &prevouts),
        Err(SpendFailure::InvalidSignature)
    );

    let mut high_s = witness.clone();
    high_s[0] = with_high_s(&witness[0]);
    assert_eq!(
        check_p2wpkh(&with_witness(high_s), &prevouts),
        Err(SpendFailure::HighS)
    );

    let mut bad_der = witness.clone();
    bad_der[0][1] += 1; // the DER length no longer matches
    assert_eq!(
        check_p2wpkh(&with_witness(bad_der), &prevouts),
        Err(SpendFailure::SignatureEncoding)
    );

    let mut bad_type = witness.clone();
    *bad_type[0].last_mut().unwrap() = 0x04;
    assert_eq!(
        check_p2wpkh(&with_witness(bad_type), &prevouts),
        Err(SpendFailure::InvalidSighashType(4))
    );

    let mut other_key = witness.clone();
    other_key[1][5] ^= 1;
    let result = check_p2wpkh(&with_witness(other_key), &prevouts);
    assert!(
        matches!(
            result,
            Err(SpendFailure::PublicKeyMismatch | SpendFailure::InvalidPublicKey)
        ),
        "{result:?}"
    );

    assert_eq!(
        check_p2wpkh(&with_witness(vec![witness[0].clone()]), &prevouts),
        Err(SpendFailure::WitnessItems {
            expected: 2,
            found: 1
        })
    );

    let mut with_script_sig = signed.clone();
    with_script_sig.input[1].script_sig = ScriptBuf::from_bytes(vec![0x51]);
    assert_eq!(
        check_p2wpkh(&with_script_sig, &prevouts),
        Err(SpendFailure::ScriptSigNotEmpty)
    );

    // Input 0 spends a P2PK output: a type bitmesh does not accept.
    let mut legacy = signed.clone();
    legacy.input[0].script_sig = ScriptBuf::new();
    let mut cache = SighashCache::new(&legacy);
    assert_eq!(
        verify_input(&verifier(), &legacy, &mut cache, 0, &prevouts),
        Err(SpendFailure::Unspendable)
    );
}

/// The same DER signature with S replaced by n - S (valid, but malleated to high S).
fn with_high_s(der_with_type: &[u8]) -> Vec<u8> {
    use bitcoin::secp256k1::ecdsa::Signature;
    const ORDER: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36,
        0x41, 0x41,
    ];
    let (der, sighash_type) = der_with_type.split_at(der_with_type.len() - 1);
    let compact = Signature::from_der(der).unwrap().serialize_compact();
    let mut s = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let diff = i16::from(ORDER[i]) - i16::from(compact[32 + i]) - borrow;
        s[i] = diff.rem_euclid(256) as u8;
        borrow = i16::from(diff < 0);
    }
    let mut high = compact;
    high[32..].copy_from_slice(&s);
    let mut out = Signature::from_compact(&high)
        .unwrap()
        .serialize_der()
        .to_vec();
    out.extend_from_slice(sighash_type);
    out
}

/// The BIP341 key-path case: the vector, its signed transaction and the outputs it spends.
fn bip341_key_path() -> (Value, Transaction, Vec<TxOut>) {
    let case = json(BIP341)["keyPathSpending"][0].clone();
    let signed = tx(case["auxiliary"]["fullySignedTx"].as_str().unwrap());
    let prevouts: Vec<TxOut> = case["given"]["utxosSpent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|utxo| TxOut {
            value: Amount::from_sat(utxo["amountSats"].as_u64().unwrap()),
            script_pubkey: ScriptBuf::from_bytes(bytes(utxo["scriptPubKey"].as_str().unwrap())),
        })
        .collect();
    (case, signed, prevouts)
}

#[test]
fn bip341_key_path_sighashes_and_spends() {
    let (case, signed, prevouts) = bip341_key_path();
    let unsigned = tx(case["given"]["rawUnsignedTx"].as_str().unwrap());
    let secp = verifier();
    let mut seen_types = Vec::new();
    for spending in case["inputSpending"].as_array().unwrap() {
        let index = spending["given"]["txinIndex"].as_u64().unwrap() as usize;
        let hash_type = spending["given"]["hashType"].as_u64().unwrap() as u8;
        let sighash_type = TapSighashType::from_consensus_u8(hash_type).unwrap();
        let sighash = SighashCache::new(&unsigned)
            .taproot_key_spend_signature_hash(index, &Prevouts::All(&prevouts), sighash_type)
            .unwrap();
        assert_eq!(
            sighash.to_string(),
            spending["intermediary"]["sigHash"].as_str().unwrap(),
            "input {index}"
        );
        let mut cache = SighashCache::new(&signed);
        assert_eq!(
            verify_input(&secp, &signed, &mut cache, index, &prevouts),
            Ok(()),
            "input {index}"
        );

        // The same signature claiming another sighash type fails.
        let mut tampered = signed.clone();
        let mut signature = tampered.input[index].witness.to_vec()[0].clone();
        match signature.len() {
            64 => signature.push(0x01),
            _ => *signature.last_mut().unwrap() ^= 0x80,
        }
        tampered.input[index].witness = Witness::from_slice(&[signature]);
        let mut cache = SighashCache::new(&tampered);
        assert_eq!(
            verify_input(&secp, &tampered, &mut cache, index, &prevouts),
            Err(SpendFailure::InvalidSignature),
            "input {index}"
        );
        seen_types.push(hash_type);
    }
    seen_types.sort_unstable();
    assert_eq!(
        seen_types,
        [0, 1, 2, 3, 129, 130, 131],
        "every key-path sighash type is covered"
    );
}

#[test]
fn bip341_explicit_default_sighash_and_bad_types_are_refused() {
    let (_, signed, prevouts) = bip341_key_path();
    // Input 4 signs with the default type: a 64-byte signature.
    let signature = signed.input[4].witness.to_vec()[0].clone();
    assert_eq!(signature.len(), 64);
    for (suffix, expected) in [
        (0x00, SpendFailure::InvalidSighashType(0)),
        (0x04, SpendFailure::InvalidSighashType(4)),
    ] {
        let mut tampered = signed.clone();
        let mut with_type = signature.clone();
        with_type.push(suffix);
        tampered.input[4].witness = Witness::from_slice(&[with_type]);
        let mut cache = SighashCache::new(&tampered);
        assert_eq!(
            verify_input(&verifier(), &tampered, &mut cache, 4, &prevouts),
            Err(expected)
        );
    }
    let mut two_items = signed.clone();
    two_items.input[4].witness = Witness::from_slice(&[signature.clone(), vec![0x50]]);
    let mut cache = SighashCache::new(&two_items);
    assert_eq!(
        verify_input(&verifier(), &two_items, &mut cache, 4, &prevouts),
        Err(SpendFailure::WitnessItems {
            expected: 1,
            found: 2
        })
    );
}

#[test]
fn bip340_verification_vectors() {
    let secp = verifier();
    let mut checked = 0;
    for line in BIP340
        .lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
    {
        let fields: Vec<&str> = line.split(',').collect();
        let (index, key, message, signature, expected) =
            (fields[0], fields[2], fields[4], fields[5], fields[6]);
        let message = bytes(message);
        // bitmesh only ever verifies 32-byte sighashes; the variable-length rows do not apply.
        let Ok(message) = <[u8; 32]>::try_from(message.as_slice()) else {
            continue;
        };
        let verified = match (
            XOnlyPublicKey::from_slice(&bytes(key)),
            schnorr::Signature::from_slice(&bytes(signature)),
        ) {
            (Ok(key), Ok(signature)) => secp
                .verify_schnorr(&signature, &Message::from_digest(message), &key)
                .is_ok(),
            _ => false,
        };
        assert_eq!(verified, expected == "TRUE", "vector {index}");
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} vectors checked");
}
