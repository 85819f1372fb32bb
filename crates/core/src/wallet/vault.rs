//! The vault: the wallet's secret (its mnemonic's entropy and the BIP39 passphrase), encrypted
//! with AES-256-GCM under a key that Argon2id derives from the password.
//!
//! A vault is a self-describing record (format in `docs/adr/0003-vault-format.md`): version,
//! KDF and its parameters, salt, a password check, nonce and ciphertext. The parameters travel
//! with the record, so they can be raised for new vaults while old ones still open. The header is
//! authenticated as associated data. The check value (a hash of a second key from the same
//! Argon2id output) tells a wrong password apart from a tampered ciphertext. Salts and nonces
//! are inputs: the driver draws them from its random source.

use core::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use argon2::{Algorithm, Argon2, Params, Version};
use bitcoin::hashes::{sha256, Hash, HashEngine};
use zeroize::Zeroizing;

use super::mnemonic::{self, Mnemonic};

/// The record version written by this code.
pub const VERSION: u8 = 1;
const KDF_ARGON2ID: u8 = 1;
/// Version, KDF, its three parameters, salt and check: authenticated as associated data.
const AUTHENTICATED_LEN: usize = 1 + 1 + 4 + 4 + 4 + 16 + 32;
/// The nonce follows; the ciphertext and its tag come after it.
const CIPHERTEXT_START: usize = AUTHENTICATED_LEN + 12;
const TAG_LEN: usize = 16;
/// Upper bounds accepted when opening, so a forged record cannot make unlocking take
/// gigabytes or minutes.
const MAX_MEMORY_KIB: u32 = 1 << 20;
const MAX_ITERATIONS: u32 = 64;
const MAX_PARALLELISM: u32 = 16;

/// Argon2id's cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl KdfParams {
    /// OWASP's recommendation for Argon2id: 19 MiB, 2 passes, 1 lane.
    pub const OWASP: KdfParams = KdfParams {
        memory_kib: 19 * 1024,
        iterations: 2,
        parallelism: 1,
    };
}

impl Default for KdfParams {
    fn default() -> Self {
        KdfParams::OWASP
    }
}

/// What a vault protects: the mnemonic and the BIP39 passphrase. Zeroized when dropped.
pub struct Secret {
    entropy: Zeroizing<Vec<u8>>,
    passphrase: Zeroizing<String>,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// The secret of `mnemonic` with `passphrase` (empty for none).
    pub fn new(mnemonic: &Mnemonic, passphrase: &str) -> Secret {
        Secret {
            entropy: Zeroizing::new(mnemonic.to_entropy()),
            passphrase: Zeroizing::new(passphrase.to_owned()),
        }
    }

    /// The mnemonic, to show it to its owner.
    pub fn mnemonic(&self) -> Mnemonic {
        mnemonic::from_entropy(&self.entropy).expect("a vault only holds valid entropy")
    }

    /// The BIP39 passphrase.
    pub fn passphrase(&self) -> &str {
        &self.passphrase
    }

    /// The BIP39 seed the wallet's keys derive from.
    pub fn seed(&self) -> Zeroizing<[u8; 64]> {
        Zeroizing::new(self.mnemonic().to_seed_normalized(&self.passphrase))
    }
}

/// Why a vault cannot be made or opened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VaultError {
    /// The password is not the one the vault was sealed with.
    WrongPassword,
    /// The password is right but the ciphertext was altered or damaged.
    Tampered,
    /// The record is not a vault, or is truncated.
    Malformed(&'static str),
    /// The record was written by a newer version.
    UnsupportedVersion(u8),
    /// The record names a key derivation this code does not know.
    UnsupportedKdf(u8),
    /// The KDF parameters are out of the accepted range.
    BadParams(KdfParams),
}

impl fmt::Display for VaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VaultError::WrongPassword => f.write_str("wrong password"),
            VaultError::Tampered => f.write_str(
                "the password is right but the stored wallet is damaged or was altered; restore it from its recovery phrase",
            ),
            VaultError::Malformed(what) => write!(f, "not a wallet vault: {what}"),
            VaultError::UnsupportedVersion(version) => {
                write!(f, "the vault has format version {version}, newer than this version of bitmesh reads")
            }
            VaultError::UnsupportedKdf(kdf) => write!(f, "the vault uses an unknown key derivation ({kdf})"),
            VaultError::BadParams(params) => write!(
                f,
                "the vault's key-derivation parameters are out of range ({} KiB, {} passes, {} lanes)",
                params.memory_kib, params.iterations, params.parallelism
            ),
        }
    }
}

impl std::error::Error for VaultError {}

/// An encrypted secret, as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct Vault {
    record: Vec<u8>,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("bytes", &self.record.len())
            .finish()
    }
}

impl Vault {
    /// Encrypts `secret` under `password` with `params`; `salt` and `nonce` must be fresh
    /// random bytes.
    pub fn seal(
        secret: &Secret,
        password: &str,
        params: KdfParams,
        salt: [u8; 16],
        nonce: [u8; 12],
    ) -> Result<Vault, VaultError> {
        check_params(params)?;
        let keys = derive(password, &salt, params)?;
        let mut record = Vec::with_capacity(CIPHERTEXT_START + 64 + TAG_LEN);
        record.push(VERSION);
        record.push(KDF_ARGON2ID);
        record.extend_from_slice(&params.memory_kib.to_le_bytes());
        record.extend_from_slice(&params.iterations.to_le_bytes());
        record.extend_from_slice(&params.parallelism.to_le_bytes());
        record.extend_from_slice(&salt);
        record.extend_from_slice(&check_value(&keys[32..]));
        debug_assert_eq!(record.len(), AUTHENTICATED_LEN);
        let mut plaintext = Zeroizing::new(Vec::with_capacity(1 + 32 + secret.passphrase.len()));
        plaintext.push(secret.entropy.len() as u8);
        plaintext.extend_from_slice(&secret.entropy);
        plaintext.extend_from_slice(secret.passphrase.as_bytes());
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&keys[..32]));
        let aad = record.clone();
        record.extend_from_slice(&nonce);
        let ciphertext = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &plaintext,
                    aad: &aad,
                },
            )
            .expect("AES-GCM encrypts any message of this size");
        record.extend_from_slice(&ciphertext);
        Ok(Vault { record })
    }

    /// Decrypts the secret with `password`.
    pub fn open(&self, password: &str) -> Result<Secret, VaultError> {
        let header = self.header()?;
        let keys = derive(password, &header.salt, header.params)?;
        if !constant_time_eq(&check_value(&keys[32..]), &header.check) {
            return Err(VaultError::WrongPassword);
        }
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&keys[..32]));
        let aad = &self.record[..AUTHENTICATED_LEN];
        let plaintext = Zeroizing::new(
            cipher
                .decrypt(
                    Nonce::from_slice(&self.record[AUTHENTICATED_LEN..CIPHERTEXT_START]),
                    Payload {
                        msg: &self.record[CIPHERTEXT_START..],
                        aad,
                    },
                )
                .map_err(|_| VaultError::Tampered)?,
        );
        let (&entropy_len, rest) = plaintext.split_first().ok_or(VaultError::Tampered)?;
        let entropy_len = usize::from(entropy_len);
        if rest.len() < entropy_len {
            return Err(VaultError::Tampered);
        }
        let (entropy, passphrase) = rest.split_at(entropy_len);
        mnemonic::from_entropy(entropy).map_err(|_| VaultError::Tampered)?;
        let passphrase = core::str::from_utf8(passphrase).map_err(|_| VaultError::Tampered)?;
        Ok(Secret {
            entropy: Zeroizing::new(entropy.to_vec()),
            passphrase: Zeroizing::new(passphrase.to_owned()),
        })
    }

    /// Opens with `old` and seals again with `new`, fresh `salt` and `nonce`, and `params`.
    pub fn change_password(
        &self,
        old: &str,
        new: &str,
        params: KdfParams,
        salt: [u8; 16],
        nonce: [u8; 12],
    ) -> Result<Vault, VaultError> {
        let secret = self.open(old)?;
        Vault::seal(&secret, new, params, salt, nonce)
    }

    /// The KDF parameters this vault was sealed with.
    pub fn params(&self) -> Result<KdfParams, VaultError> {
        Ok(self.header()?.params)
    }

    /// Reads a stored record, checking its header.
    pub fn from_bytes(record: Vec<u8>) -> Result<Vault, VaultError> {
        let vault = Vault { record };
        vault.header()?;
        Ok(vault)
    }

    /// The record's bytes, to store.
    pub fn as_bytes(&self) -> &[u8] {
        &self.record
    }

    fn header(&self) -> Result<Header, VaultError> {
        let record = &self.record;
        let (&version, _) = record.split_first().ok_or(VaultError::Malformed("empty"))?;
        if version != VERSION {
            return Err(if version == 0 {
                VaultError::Malformed("version 0")
            } else {
                VaultError::UnsupportedVersion(version)
            });
        }
        if record.len() < CIPHERTEXT_START + TAG_LEN {
            return Err(VaultError::Malformed("truncated"));
        }
        if record[1] != KDF_ARGON2ID {
            return Err(VaultError::UnsupportedKdf(record[1]));
        }
        let word = |at: usize| u32::from_le_bytes(record[at..at + 4].try_into().expect("4 bytes"));
        let params = KdfParams {
            memory_kib: word(2),
            iterations: word(6),
            parallelism: word(10),
        };
        check_params(params)?;
        Ok(Header {
            params,
            salt: record[14..30].try_into().expect("16 bytes"),
            check: record[30..AUTHENTICATED_LEN].try_into().expect("32 bytes"),
        })
    }
}

struct Header {
    params: KdfParams,
    salt: [u8; 16],
    check: [u8; 32],
}

fn check_params(params: KdfParams) -> Result<(), VaultError> {
    let ok = (8 * params.parallelism..=MAX_MEMORY_KIB).contains(&params.memory_kib)
        && (1..=MAX_ITERATIONS).contains(&params.iterations)
        && (1..=MAX_PARALLELISM).contains(&params.parallelism);
    if ok {
        Ok(())
    } else {
        Err(VaultError::BadParams(params))
    }
}

/// 64 bytes of Argon2id output: the encryption key, then the check key.
fn derive(
    password: &str,
    salt: &[u8; 16],
    params: KdfParams,
) -> Result<Zeroizing<[u8; 64]>, VaultError> {
    let argon_params = Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(64),
    )
    .map_err(|_| VaultError::BadParams(params))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params);
    let mut keys = Zeroizing::new([0u8; 64]);
    argon
        .hash_password_into(password.as_bytes(), salt, &mut *keys)
        .map_err(|_| VaultError::BadParams(params))?;
    Ok(keys)
}

fn check_value(check_key: &[u8]) -> [u8; 32] {
    let mut engine = sha256::HashEngine::default();
    engine.input(b"bitmesh/vault-check");
    engine.input(check_key);
    sha256::Hash::from_engine(engine).to_byte_array()
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters so the tests run fast; the format is the same.
    const FAST: KdfParams = KdfParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    fn secret() -> Secret {
        let mnemonic = mnemonic::from_entropy(&[7; 16]).unwrap();
        Secret::new(&mnemonic, "extra words")
    }

    fn sealed() -> Vault {
        Vault::seal(&secret(), "correct horse", FAST, [1; 16], [2; 12]).unwrap()
    }

    #[test]
    fn the_right_password_opens_what_was_sealed() {
        let opened = sealed().open("correct horse").unwrap();
        assert_eq!(opened.mnemonic(), secret().mnemonic());
        assert_eq!(opened.passphrase(), "extra words");
        assert_eq!(*opened.seed(), *secret().seed());
        // Stored bytes read back.
        let stored = Vault::from_bytes(sealed().as_bytes().to_vec()).unwrap();
        assert_eq!(stored.params(), Ok(FAST));
        assert!(stored.open("correct horse").is_ok());
    }

    #[test]
    fn default_parameters_round_trip() {
        let vault = Vault::seal(&secret(), "pw", KdfParams::default(), [3; 16], [4; 12]).unwrap();
        assert_eq!(vault.params(), Ok(KdfParams::OWASP));
        assert_eq!(vault.open("pw").unwrap().mnemonic(), secret().mnemonic());
    }

    #[test]
    fn a_wrong_password_and_tampering_are_told_apart() {
        let vault = sealed();
        assert_eq!(
            vault.open("correct horsf").unwrap_err(),
            VaultError::WrongPassword
        );
        assert_eq!(vault.open("").unwrap_err(), VaultError::WrongPassword);

        let tag = vault.as_bytes().len() - 1;
        for (position, part) in [
            (tag, "tag"),
            (CIPHERTEXT_START, "ciphertext"),
            (AUTHENTICATED_LEN, "nonce"),
        ] {
            let mut bytes = vault.as_bytes().to_vec();
            bytes[position] ^= 0x80;
            let opened = Vault::from_bytes(bytes).unwrap().open("correct horse");
            assert_eq!(opened.unwrap_err(), VaultError::Tampered, "{part}");
        }
    }

    #[test]
    fn malformed_records_are_refused_before_any_work() {
        let good = sealed().as_bytes().to_vec();
        assert_eq!(
            Vault::from_bytes(vec![]).unwrap_err(),
            VaultError::Malformed("empty")
        );
        assert_eq!(
            Vault::from_bytes(good[..40].to_vec()).unwrap_err(),
            VaultError::Malformed("truncated")
        );
        let mut newer = good.clone();
        newer[0] = 2;
        assert_eq!(
            Vault::from_bytes(newer).unwrap_err(),
            VaultError::UnsupportedVersion(2)
        );
        let mut other_kdf = good.clone();
        other_kdf[1] = 9;
        assert_eq!(
            Vault::from_bytes(other_kdf).unwrap_err(),
            VaultError::UnsupportedKdf(9)
        );
        let mut huge = good.clone();
        huge[2..6].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            Vault::from_bytes(huge).unwrap_err(),
            VaultError::BadParams(_)
        ));
    }

    #[test]
    fn changing_the_password_re_encrypts() {
        let vault = sealed();
        let changed = vault
            .change_password("correct horse", "battery staple", FAST, [5; 16], [6; 12])
            .unwrap();
        assert_ne!(changed.as_bytes(), vault.as_bytes());
        assert_eq!(
            changed.open("correct horse").unwrap_err(),
            VaultError::WrongPassword
        );
        assert_eq!(
            changed.open("battery staple").unwrap().mnemonic(),
            secret().mnemonic()
        );
        assert_eq!(
            vault
                .change_password("nope", "x", FAST, [5; 16], [6; 12])
                .unwrap_err(),
            VaultError::WrongPassword
        );
    }

    #[test]
    fn fresh_salts_and_nonces_give_different_records() {
        let other = Vault::seal(&secret(), "correct horse", FAST, [9; 16], [2; 12]).unwrap();
        assert_ne!(other.as_bytes(), sealed().as_bytes());
        let text = format!("{:?} {:?}", sealed(), secret());
        assert!(
            !text.contains("extra words"),
            "no secret in debug output: {text}"
        );
    }
}
