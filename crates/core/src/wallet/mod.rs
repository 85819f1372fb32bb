//! The wallet: BIP39 mnemonics, BIP32 accounts (BIP84 P2WPKH, BIP86 P2TR), and the vault that
//! keeps the secret encrypted. Randomness (entropy, salts, nonces) comes in from the driver.

pub mod build;
pub mod coin_select;
pub mod descriptor;
pub mod device_group;
pub mod device_sync;
pub mod keys;
pub mod metadata;
pub mod mnemonic;
pub mod psbt;
pub mod session;
pub mod tracker;
pub mod vault;
