//! Wallet keys against published vectors (BIP39, BIP32, BIP84, BIP86), natively and in wasm.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use std::str::FromStr;

use bitcoin::bip32::{DerivationPath, Xpriv, Xpub};
use bitcoin::hex::{DisplayHex, FromHex};
use bitcoin::key::CompressedPublicKey;
use bitcoin::secp256k1::Secp256k1;
use bitcoin::{base58, Address, Network, PrivateKey};
use bitmesh_core::wallet::keys::{parse_xpriv, parse_xpub, Account, Keychain, Purpose};
use bitmesh_core::wallet::mnemonic;
use serde_json::Value;

const BIP39: &str = include_str!("data/bip39_vectors.json");
const BIP32: &str = include_str!("data/bip32_test_vectors.json");
const BIP84: &str = include_str!("data/bip84_test_vectors.json");
const BIP86: &str = include_str!("data/bip86_test_vectors.json");

fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("json")
}

fn str_of(value: &Value) -> &str {
    value.as_str().expect("a string")
}

#[test]
fn bip39_english_vectors_with_passphrase_trezor() {
    let vectors = json(BIP39);
    let english = vectors["english"].as_array().unwrap();
    assert!(english.len() >= 24);
    for vector in english {
        let [entropy, phrase, seed, xprv] = [0, 1, 2, 3].map(|i| str_of(&vector[i]));
        let entropy = Vec::from_hex(entropy).unwrap();
        // The vectors include 15-, 18- and 21-word phrases: restoring accepts every BIP39 length;
        // creating a wallet uses 12 or 24.
        let restored = mnemonic::parse(phrase).unwrap();
        assert_eq!(restored.to_entropy(), entropy, "{phrase}");
        if entropy.len() == 16 || entropy.len() == 32 {
            assert_eq!(
                mnemonic::from_entropy(&entropy).unwrap().to_string(),
                phrase
            );
        }
        let derived = restored.to_seed_normalized("TREZOR");
        assert_eq!(derived.to_lower_hex_string(), seed);
        let master = Xpriv::new_master(Network::Bitcoin, &derived).unwrap();
        assert_eq!(master.to_string(), xprv);
    }
}

#[test]
fn bip32_vectors_derive_and_vector_5_is_refused() {
    let secp = Secp256k1::new();
    let vectors = json(BIP32);
    for vector in vectors["valid"].as_array().unwrap() {
        let seed = Vec::from_hex(str_of(&vector["seed_hex"])).unwrap();
        let master = Xpriv::new_master(Network::Bitcoin, &seed).unwrap();
        for chain in vector["chains"].as_array().unwrap() {
            let path = DerivationPath::from_str(&str_of(&chain["path"]).replace('H', "'")).unwrap();
            let xprv = master.derive_priv(&secp, &path).unwrap();
            assert_eq!(xprv.to_string(), str_of(&chain["ext_prv"]), "{path}");
            assert_eq!(
                Xpub::from_priv(&secp, &xprv).to_string(),
                str_of(&chain["ext_pub"]),
                "{path}"
            );
            assert_eq!(parse_xpriv(str_of(&chain["ext_prv"])), Ok(xprv));
            assert_eq!(
                parse_xpub(str_of(&chain["ext_pub"])),
                Ok(Xpub::from_priv(&secp, &xprv))
            );
        }
    }
    let invalid = vectors["invalid"].as_array().unwrap();
    assert!(!invalid.is_empty());
    for vector in invalid {
        let key = str_of(&vector["key"]);
        let accepted = parse_xpub(key).is_ok() || parse_xpriv(key).is_ok();
        assert!(
            !accepted,
            "accepted invalid key ({}): {key}",
            str_of(&vector["reason"])
        );
    }
}

/// The same extended key with standard `xpub` version bytes (BIP84 prints SLIP-132 `zpub`s).
fn as_xpub(slip132: &str) -> String {
    let mut data = base58::decode_check(slip132).unwrap();
    data[..4].copy_from_slice(&[0x04, 0x88, 0xb2, 0x1e]);
    base58::encode_check(&data)
}

#[test]
fn bip84_vectors() {
    let vector = json(BIP84);
    let seed = mnemonic::parse(str_of(&vector["mnemonic"]))
        .unwrap()
        .to_seed_normalized("");
    let account = Account::from_seed(&seed, Purpose::Bip84, Network::Bitcoin, 0).unwrap();
    assert_eq!(account.path().to_string(), "84'/0'/0'");
    assert_eq!(
        account.xpub().to_string(),
        as_xpub(str_of(&vector["account0"]["xpub"]))
    );
    for (name, keychain, index) in [
        ("receive_0", Keychain::External, 0),
        ("receive_1", Keychain::External, 1),
        ("change_0", Keychain::Internal, 0),
    ] {
        let expected = &vector[name];
        assert_eq!(
            account.public_key(keychain, index).to_string(),
            str_of(&expected["pubkey"]),
            "{name}"
        );
        assert_eq!(
            account.address(keychain, index).to_string(),
            str_of(&expected["address"]),
            "{name}"
        );
        let wif = PrivateKey::from_wif(str_of(&expected["privkey_wif"])).unwrap();
        assert_eq!(account.secret_key(keychain, index), wif.inner, "{name}");
    }
}

#[test]
fn bip86_vectors() {
    let vector = json(BIP86);
    let seed = mnemonic::parse(str_of(&vector["mnemonic"]))
        .unwrap()
        .to_seed_normalized("");
    let account = Account::from_seed(&seed, Purpose::Bip86, Network::Bitcoin, 0).unwrap();
    assert_eq!(
        account.xpub().to_string(),
        str_of(&vector["account0"]["xpub"])
    );
    for (name, keychain, index) in [
        ("receive_0", Keychain::External, 0),
        ("receive_1", Keychain::External, 1),
        ("change_0", Keychain::Internal, 0),
    ] {
        let expected = &vector[name];
        let internal = account.public_key(keychain, index).0.x_only_public_key().0;
        assert_eq!(
            internal.to_string(),
            str_of(&expected["internal_key"]),
            "{name}"
        );
        let address = account.address(keychain, index);
        assert_eq!(address.to_string(), str_of(&expected["address"]), "{name}");
        assert_eq!(
            address.script_pubkey().to_hex_string(),
            str_of(&expected["scriptPubKey"]),
            "{name}"
        );
        let output_key = account
            .signing_keypair(keychain, index)
            .x_only_public_key()
            .0;
        assert_eq!(
            output_key.to_string(),
            str_of(&expected["output_key"]),
            "{name}"
        );
    }
}

#[test]
fn bitmesh_addresses_are_regtest_format_and_derive_both_ways() {
    let seed = mnemonic::parse(str_of(&json(BIP84)["mnemonic"]))
        .unwrap()
        .to_seed_normalized("");
    let secp = Secp256k1::new();
    for network in bitmesh_core::Network::ALL {
        let account = Account::for_bitmesh(&seed, Purpose::Bip84, network).unwrap();
        assert_eq!(account.path().to_string(), "84'/1'/0'");
        for index in 0..3 {
            let address = account.address(Keychain::External, index);
            assert!(address.to_string().starts_with("bcrt1q"), "{address}");
            // Public derivation (xpub) and private derivation (xprv) agree.
            let from_secret = CompressedPublicKey(
                account
                    .secret_key(Keychain::External, index)
                    .public_key(&secp),
            );
            assert_eq!(Address::p2wpkh(&from_secret, Network::Regtest), address);
        }
        let taproot = Account::for_bitmesh(&seed, Purpose::Bip86, network).unwrap();
        assert!(taproot
            .address(Keychain::Internal, 0)
            .to_string()
            .starts_with("bcrt1p"));
    }
}

#[test]
fn descriptors_carry_the_key_origin_and_both_chains() {
    let seed = mnemonic::parse(str_of(&json(BIP84)["mnemonic"]))
        .unwrap()
        .to_seed_normalized("");
    let account = Account::from_seed(&seed, Purpose::Bip84, Network::Bitcoin, 0).unwrap();
    let descriptor = account.descriptor();
    let expected_body = format!(
        "wpkh([73c5da0a/84'/0'/0']{}/<0;1>/*)",
        as_xpub(str_of(&json(BIP84)["account0"]["xpub"]))
    );
    let (body, checksum) = descriptor.split_once('#').unwrap();
    assert_eq!(body, expected_body);
    assert_eq!(checksum.len(), 8);
    let regtest =
        Account::for_bitmesh(&seed, Purpose::Bip86, bitmesh_core::Network::Local).unwrap();
    assert!(
        regtest
            .descriptor()
            .starts_with("tr([73c5da0a/86'/1'/0']tpub"),
        "{}",
        regtest.descriptor()
    );
}
