//! BIP32 accounts: BIP84 (P2WPKH, `m/84'/coin'/account'`) and BIP86 (P2TR key path,
//! `m/86'/coin'/account'`), each with a receive (external, 0) and a change (internal, 1) chain.
//! The coin type is 0 on Bitcoin's mainnet and 1 everywhere else, bitmesh's networks included,
//! whose addresses use the regtest format (`bcrt1...`).

use core::fmt;

use bitcoin::bip32::{ChildNumber, DerivationPath, Fingerprint, Xpriv, Xpub};
use bitcoin::key::{CompressedPublicKey, Keypair, TapTweak, UntweakedPublicKey};
use bitcoin::secp256k1::{All, Secp256k1, SecretKey};
use bitcoin::{Address, ScriptBuf};

use super::descriptor;

/// Which BIP a wallet account follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Purpose {
    /// BIP84: native segwit v0, P2WPKH.
    Bip84,
    /// BIP86: single-key taproot, P2TR key path.
    Bip86,
}

impl Purpose {
    fn index(self) -> u32 {
        match self {
            Purpose::Bip84 => 84,
            Purpose::Bip86 => 86,
        }
    }
}

/// The two chains of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Keychain {
    /// Addresses handed out to receive payments (`/0/*`).
    External,
    /// Change addresses (`/1/*`).
    Internal,
}

impl Keychain {
    fn index(self) -> u32 {
        match self {
            Keychain::External => 0,
            Keychain::Internal => 1,
        }
    }
}

/// Why an account cannot be derived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeriveError(String);

impl fmt::Display for DeriveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key derivation failed: {}", self.0)
    }
}

impl std::error::Error for DeriveError {}

/// One account of a wallet: its extended keys and how to derive its addresses.
#[derive(Clone)]
pub struct Account {
    purpose: Purpose,
    network: bitcoin::Network,
    master_fingerprint: Fingerprint,
    path: DerivationPath,
    xpriv: Xpriv,
    xpub: Xpub,
    secp: Secp256k1<All>,
}

impl fmt::Debug for Account {
    // Never prints private keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("purpose", &self.purpose)
            .field("network", &self.network)
            .field("path", &self.path.to_string())
            .field("xpub", &self.xpub.to_string())
            .finish_non_exhaustive()
    }
}

impl Account {
    /// Account `index` of `purpose` for `network`, from a BIP39 seed.
    pub fn from_seed(
        seed: &[u8],
        purpose: Purpose,
        network: bitcoin::Network,
        index: u32,
    ) -> Result<Account, DeriveError> {
        let secp = Secp256k1::new();
        let master =
            Xpriv::new_master(network, seed).map_err(|err| DeriveError(err.to_string()))?;
        let coin = if network == bitcoin::Network::Bitcoin {
            0
        } else {
            1
        };
        let path = DerivationPath::from(vec![
            ChildNumber::from_hardened_idx(purpose.index()).expect("below 2^31"),
            ChildNumber::from_hardened_idx(coin).expect("below 2^31"),
            ChildNumber::from_hardened_idx(index).map_err(|err| DeriveError(err.to_string()))?,
        ]);
        let xpriv = master
            .derive_priv(&secp, &path)
            .map_err(|err| DeriveError(err.to_string()))?;
        let xpub = Xpub::from_priv(&secp, &xpriv);
        Ok(Account {
            purpose,
            network,
            master_fingerprint: master.fingerprint(&secp),
            path,
            xpriv,
            xpub,
            secp,
        })
    }

    /// The first account of `purpose` on a bitmesh network.
    pub fn for_bitmesh(
        seed: &[u8],
        purpose: Purpose,
        network: crate::Network,
    ) -> Result<Account, DeriveError> {
        Account::from_seed(seed, purpose, network.address_network(), 0)
    }

    /// The BIP this account follows.
    pub fn purpose(&self) -> Purpose {
        self.purpose
    }

    /// The account's extended public key.
    pub fn xpub(&self) -> &Xpub {
        &self.xpub
    }

    /// The fingerprint of the master key (the key origin in descriptors and PSBTs).
    pub fn master_fingerprint(&self) -> Fingerprint {
        self.master_fingerprint
    }

    /// The account's path from the master key.
    pub fn path(&self) -> &DerivationPath {
        &self.path
    }

    /// The full path of key `index` on `keychain`.
    pub fn key_path(&self, keychain: Keychain, index: u32) -> DerivationPath {
        self.path.extend([
            ChildNumber::Normal {
                index: keychain.index(),
            },
            ChildNumber::Normal { index },
        ])
    }

    /// The public key at `keychain`/`index`.
    pub fn public_key(&self, keychain: Keychain, index: u32) -> CompressedPublicKey {
        let child = self
            .xpub
            .derive_pub(
                &self.secp,
                &[
                    ChildNumber::Normal {
                        index: keychain.index(),
                    },
                    ChildNumber::Normal { index },
                ],
            )
            .expect("non-hardened derivation from a valid key");
        CompressedPublicKey(child.public_key)
    }

    /// The secret key at `keychain`/`index`.
    pub fn secret_key(&self, keychain: Keychain, index: u32) -> SecretKey {
        self.xpriv
            .derive_priv(
                &self.secp,
                &[
                    ChildNumber::Normal {
                        index: keychain.index(),
                    },
                    ChildNumber::Normal { index },
                ],
            )
            .expect("derivation from a valid key")
            .private_key
    }

    /// The output script at `keychain`/`index`.
    pub fn script_pubkey(&self, keychain: Keychain, index: u32) -> ScriptBuf {
        self.address(keychain, index).script_pubkey()
    }

    /// The address at `keychain`/`index`.
    pub fn address(&self, keychain: Keychain, index: u32) -> Address {
        let key = self.public_key(keychain, index);
        match self.purpose {
            Purpose::Bip84 => Address::p2wpkh(&key, self.network),
            Purpose::Bip86 => {
                let internal = UntweakedPublicKey::from(key.0);
                Address::p2tr(&self.secp, internal, None, self.network)
            }
        }
    }

    /// The key pair that signs for `keychain`/`index` (tweaked for taproot's key path).
    pub fn signing_keypair(&self, keychain: Keychain, index: u32) -> Keypair {
        let keypair = Keypair::from_secret_key(&self.secp, &self.secret_key(keychain, index));
        match self.purpose {
            Purpose::Bip84 => keypair,
            Purpose::Bip86 => keypair.tap_tweak(&self.secp, None).to_keypair(),
        }
    }

    /// The account as a public output descriptor with key origin and both chains, e.g.
    /// `wpkh([f23f9fd2/84'/1'/0']tpub.../<0;1>/*)#checksum`.
    pub fn descriptor(&self) -> String {
        let function = match self.purpose {
            Purpose::Bip84 => "wpkh",
            Purpose::Bip86 => "tr",
        };
        let desc = format!(
            "{function}([{}/{}]{}/<0;1>/*)",
            self.master_fingerprint, self.path, self.xpub
        );
        descriptor::with_checksum(&desc).expect("descriptor characters only")
    }
}

/// Why a string is not a valid extended key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExtendedKeyError {
    /// Not base58 with a valid checksum.
    Encoding,
    /// Not 78 bytes long.
    Length(usize),
    /// The version bytes are not those of an `xpub`/`xprv`/`tpub`/`tprv`.
    UnknownVersion([u8; 4]),
    /// A private version with public key data, or the reverse.
    VersionMismatch,
    /// A master key (depth 0) with a parent fingerprint or child number.
    BadMasterKey,
    /// The key data is not a valid key.
    InvalidKey,
}

impl fmt::Display for ExtendedKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExtendedKeyError::Encoding => f.write_str("not a base58check string"),
            ExtendedKeyError::Length(len) => write!(f, "an extended key is 78 bytes, not {len}"),
            ExtendedKeyError::UnknownVersion(version) => {
                write!(f, "unknown version bytes {version:02x?}")
            }
            ExtendedKeyError::VersionMismatch => {
                f.write_str("the version says private but the data is public, or the reverse")
            }
            ExtendedKeyError::BadMasterKey => {
                f.write_str("a depth-0 key must have no parent fingerprint and child number 0")
            }
            ExtendedKeyError::InvalidKey => {
                f.write_str("the key data is not a valid secp256k1 key")
            }
        }
    }
}

impl std::error::Error for ExtendedKeyError {}

const XPUB: [u8; 4] = [0x04, 0x88, 0xb2, 0x1e];
const XPRV: [u8; 4] = [0x04, 0x88, 0xad, 0xe4];
const TPUB: [u8; 4] = [0x04, 0x35, 0x87, 0xcf];
const TPRV: [u8; 4] = [0x04, 0x35, 0x83, 0x94];

/// Checks the BIP32 serialization rules the `bitcoin` crate leaves out (BIP32 test vector 5)
/// and returns the 78 bytes and whether they hold a private key.
fn checked_extended_key(text: &str) -> Result<(Vec<u8>, bool), ExtendedKeyError> {
    let data = bitcoin::base58::decode_check(text).map_err(|_| ExtendedKeyError::Encoding)?;
    if data.len() != 78 {
        return Err(ExtendedKeyError::Length(data.len()));
    }
    let version: [u8; 4] = data[..4].try_into().expect("4 bytes");
    let private = match version {
        XPRV | TPRV => true,
        XPUB | TPUB => false,
        other => return Err(ExtendedKeyError::UnknownVersion(other)),
    };
    let depth = data[4];
    if depth == 0 && (data[5..9] != [0; 4] || data[9..13] != [0; 4]) {
        return Err(ExtendedKeyError::BadMasterKey);
    }
    match (private, data[45]) {
        (true, 0) | (false, 2 | 3) => Ok((data, private)),
        (true, 2 | 3) | (false, 0) => Err(ExtendedKeyError::VersionMismatch),
        _ => Err(ExtendedKeyError::InvalidKey),
    }
}

/// Parses an extended public key (`xpub` or `tpub`), with every check of BIP32.
pub fn parse_xpub(text: &str) -> Result<Xpub, ExtendedKeyError> {
    let (data, private) = checked_extended_key(text)?;
    if private {
        return Err(ExtendedKeyError::VersionMismatch);
    }
    Xpub::decode(&data).map_err(|_| ExtendedKeyError::InvalidKey)
}

/// Parses an extended private key (`xprv` or `tprv`), with every check of BIP32.
pub fn parse_xpriv(text: &str) -> Result<Xpriv, ExtendedKeyError> {
    let (data, private) = checked_extended_key(text)?;
    if !private {
        return Err(ExtendedKeyError::VersionMismatch);
    }
    Xpriv::decode(&data).map_err(|_| ExtendedKeyError::InvalidKey)
}
