//! The devices of one wallet as a group: what they derive from the seed to find each other and
//! talk privately over the mesh. Every secret here comes from the seed through tagged hashes
//! (one-way, domain-separated), so relays and observers learn nothing they could link to the
//! wallet's addresses, and a device without the seed can neither read nor forge group traffic.
//!
//! - **Topic**: what the devices announce on the node's topic board to find each other.
//! - **Proof key**: a key used for nothing else; a device signs with it that it holds the seed
//!   before its siblings take anything from it.
//! - **Cipher key**: AES-256-GCM over every message. The nonce is 12 random bytes (the driver's
//!   randomness; safe for 2^32 messages per wallet); sender, receiver and the sender's counter
//!   are authenticated with it, so a relay can neither redirect a message to another sibling
//!   nor replay one: [`ReplayWindow`] takes each counter once.

use core::fmt;
use std::collections::HashMap;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use bitcoin::secp256k1::{schnorr, Keypair, Message, Secp256k1, SecretKey, Signing, Verification};
use bitcoin::XOnlyPublicKey;
use zeroize::Zeroizing;

use crate::encode::tagged_hash;
use crate::wire::PeerId;
use crate::Network;

/// Bytes a sealed message adds to its plaintext: counter, nonce and tag.
pub const SEAL_OVERHEAD: usize = 8 + 12 + 16;

/// Why a sealed message is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpenError {
    /// Shorter than a counter, a nonce and a tag.
    Truncated,
    /// Not sealed by this group for this sender and receiver (another wallet, tampered with,
    /// or redirected).
    NotOurs,
    /// A counter taken before, or too old to tell.
    Replayed,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Truncated => f.write_str("a device-sync message too short to be sealed"),
            OpenError::NotOurs => {
                f.write_str("a device-sync message this wallet's devices did not seal for us")
            }
            OpenError::Replayed => f.write_str("a device-sync message received before"),
        }
    }
}

impl std::error::Error for OpenError {}

/// The group's secrets, derived from the wallet's seed.
pub struct DeviceGroup {
    topic: [u8; 32],
    cipher: Aes256Gcm,
    proof: Keypair,
}

impl fmt::Debug for DeviceGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The topic is public; the keys are not printed.
        f.debug_struct("DeviceGroup")
            .field("proof_key", &self.proof.x_only_public_key().0)
            .finish_non_exhaustive()
    }
}

impl DeviceGroup {
    /// The group of the wallet with BIP39 `seed` on `network`.
    pub fn from_seed(seed: &[u8], network: Network) -> DeviceGroup {
        let magic = network.params().magic;
        let root = Zeroizing::new(tagged_hash(b"bitmesh/device-group", &[&magic, seed]));
        let topic = tagged_hash(b"bitmesh/device-group/topic", &[&root[..]]);
        let cipher_key = Zeroizing::new(tagged_hash(b"bitmesh/device-group/cipher", &[&root[..]]));
        // A hash is a valid secret key but with probability ~2^-128; hash on until it is.
        let mut proof_secret =
            Zeroizing::new(tagged_hash(b"bitmesh/device-group/proof", &[&root[..]]));
        let secret = loop {
            match SecretKey::from_slice(&proof_secret[..]) {
                Ok(secret) => break secret,
                Err(_) => {
                    *proof_secret = tagged_hash(b"bitmesh/device-group/proof", &[&proof_secret[..]])
                }
            }
        };
        DeviceGroup {
            topic,
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&cipher_key[..])),
            proof: Keypair::from_secret_key(&Secp256k1::signing_only(), &secret),
        }
    }

    /// The topic the group's devices announce.
    pub fn topic(&self) -> [u8; 32] {
        self.topic
    }

    /// The key siblings check proofs against.
    pub fn proof_key(&self) -> XOnlyPublicKey {
        self.proof.x_only_public_key().0
    }

    /// Proves that the device running peer `from` holds the seed, to `to`, at `millis`.
    pub fn prove<C: Signing>(
        &self,
        secp: &Secp256k1<C>,
        from: PeerId,
        to: PeerId,
        millis: u64,
        aux_rand: &[u8; 32],
    ) -> schnorr::Signature {
        secp.sign_schnorr_with_aux_rand(&proof_digest(from, to, millis), &self.proof, aux_rand)
    }

    /// Whether `proof` shows that peer `from` holds the seed (made for `to` at `millis`).
    pub fn check_proof<C: Verification>(
        &self,
        secp: &Secp256k1<C>,
        from: PeerId,
        to: PeerId,
        millis: u64,
        proof: &schnorr::Signature,
    ) -> bool {
        secp.verify_schnorr(proof, &proof_digest(from, to, millis), &self.proof_key())
            .is_ok()
    }

    /// Seals `plaintext` from `from` to `to` under `counter` (strictly increasing per sender)
    /// and the random `nonce`: counter ‖ nonce ‖ ciphertext and tag.
    pub fn seal(
        &self,
        from: PeerId,
        to: PeerId,
        counter: u64,
        nonce: [u8; 12],
        plaintext: &[u8],
    ) -> Vec<u8> {
        let aad = associated_data(from, to, counter);
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("AES-GCM seals any message shorter than 64 GiB");
        let mut sealed = Vec::with_capacity(SEAL_OVERHEAD + plaintext.len());
        sealed.extend_from_slice(&counter.to_le_bytes());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    /// Opens a message sealed by a sibling `from` for `to`; `window` refuses counters taken
    /// before. Returns the counter and the plaintext.
    pub fn open(
        &self,
        from: PeerId,
        to: PeerId,
        sealed: &[u8],
        window: &mut ReplayWindow,
    ) -> Result<(u64, Vec<u8>), OpenError> {
        if sealed.len() < SEAL_OVERHEAD {
            return Err(OpenError::Truncated);
        }
        let (counter, rest) = sealed.split_at(8);
        let counter = u64::from_le_bytes(counter.try_into().expect("8 bytes"));
        let (nonce, ciphertext) = rest.split_at(12);
        if !window.is_fresh(from, counter) {
            return Err(OpenError::Replayed);
        }
        let aad = associated_data(from, to, counter);
        let plaintext = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| OpenError::NotOurs)?;
        // Only an authentic message moves the window: forgeries cannot block real ones.
        window.take(from, counter);
        Ok((counter, plaintext))
    }
}

fn proof_digest(from: PeerId, to: PeerId, millis: u64) -> Message {
    Message::from_digest(tagged_hash(
        b"bitmesh/device-group/proof-of-seed",
        &[&from.0, &to.0, &millis.to_le_bytes()],
    ))
}

fn associated_data(from: PeerId, to: PeerId, counter: u64) -> Vec<u8> {
    let mut aad = Vec::with_capacity(72);
    aad.extend_from_slice(&from.0);
    aad.extend_from_slice(&to.0);
    aad.extend_from_slice(&counter.to_le_bytes());
    aad
}

/// Counters taken from each sibling: the highest, and which of the 64 below it (messages
/// routed on different paths arrive out of order).
#[derive(Debug, Clone, Default)]
pub struct ReplayWindow {
    senders: HashMap<PeerId, (u64, u64)>,
}

impl ReplayWindow {
    fn is_fresh(&self, from: PeerId, counter: u64) -> bool {
        match self.senders.get(&from) {
            None => true,
            Some(&(highest, seen)) => {
                counter > highest
                    || (highest - counter < 64 && seen & (1 << (highest - counter)) == 0)
            }
        }
    }

    fn take(&mut self, from: PeerId, counter: u64) {
        let (highest, seen) = self.senders.entry(from).or_insert((counter, 0));
        if counter > *highest {
            let shift = counter - *highest;
            *seen = if shift < 64 { *seen << shift } else { 0 };
            *highest = counter;
        }
        *seen |= 1 << (*highest - counter);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u8) -> PeerId {
        PeerId([n; 32])
    }

    #[test]
    fn devices_of_one_wallet_share_the_group_and_others_do_not() {
        let laptop = DeviceGroup::from_seed(&[1; 64], Network::Test);
        let phone = DeviceGroup::from_seed(&[1; 64], Network::Test);
        let stranger = DeviceGroup::from_seed(&[2; 64], Network::Test);
        let other_network = DeviceGroup::from_seed(&[1; 64], Network::Local);
        assert_eq!(laptop.topic(), phone.topic());
        assert_eq!(laptop.proof_key(), phone.proof_key());
        assert_ne!(laptop.topic(), stranger.topic());
        assert_ne!(laptop.topic(), other_network.topic());
        assert_ne!(&laptop.topic()[..], &[1; 64][..32], "not the seed");

        let secp = Secp256k1::new();
        let proof = laptop.prove(&secp, peer(1), peer(2), 5, &[0; 32]);
        assert!(phone.check_proof(&secp, peer(1), peer(2), 5, &proof));
        assert!(
            !phone.check_proof(&secp, peer(3), peer(2), 5, &proof),
            "another sender"
        );
        assert!(
            !phone.check_proof(&secp, peer(1), peer(2), 6, &proof),
            "another time"
        );
        let forged = stranger.prove(&secp, peer(1), peer(2), 5, &[0; 32]);
        assert!(!phone.check_proof(&secp, peer(1), peer(2), 5, &forged));
    }

    #[test]
    fn sealed_messages_open_once_for_their_receiver_only() {
        let laptop = DeviceGroup::from_seed(&[1; 64], Network::Test);
        let phone = DeviceGroup::from_seed(&[1; 64], Network::Test);
        let stranger = DeviceGroup::from_seed(&[2; 64], Network::Test);
        let mut window = ReplayWindow::default();
        let sealed = laptop.seal(peer(1), peer(2), 10, [7; 12], b"labels");
        assert_eq!(sealed.len(), SEAL_OVERHEAD + 6);
        assert!(
            !sealed.windows(6).any(|bytes| bytes == b"labels"),
            "not in the clear"
        );

        let mut fresh = ReplayWindow::default();
        assert_eq!(
            stranger.open(peer(1), peer(2), &sealed, &mut fresh),
            Err(OpenError::NotOurs)
        );
        assert_eq!(
            phone.open(peer(1), peer(3), &sealed, &mut fresh),
            Err(OpenError::NotOurs),
            "redirected to another sibling"
        );
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(
            phone.open(peer(1), peer(2), &tampered, &mut window),
            Err(OpenError::NotOurs)
        );
        let mut recounted = sealed.clone();
        recounted[0] = 11;
        assert_eq!(
            phone.open(peer(1), peer(2), &recounted, &mut window),
            Err(OpenError::NotOurs)
        );
        assert_eq!(
            phone.open(peer(1), peer(2), &sealed[..20], &mut window),
            Err(OpenError::Truncated)
        );

        assert_eq!(
            phone.open(peer(1), peer(2), &sealed, &mut window),
            Ok((10, b"labels".to_vec()))
        );
        assert_eq!(
            phone.open(peer(1), peer(2), &sealed, &mut window),
            Err(OpenError::Replayed)
        );
    }

    #[test]
    fn the_window_takes_late_counters_once_and_refuses_the_too_old() {
        let mut window = ReplayWindow::default();
        for counter in [100, 98, 99, 150, 120] {
            assert!(window.is_fresh(peer(1), counter), "{counter}");
            window.take(peer(1), counter);
        }
        for counter in [100, 98, 99, 150, 120, 86, 1] {
            assert!(!window.is_fresh(peer(1), counter), "{counter}");
        }
        assert!(window.is_fresh(peer(1), 121));
        assert!(window.is_fresh(peer(2), 1), "each sender has its own");
    }
}
