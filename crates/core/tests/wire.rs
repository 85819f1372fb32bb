//! The wire format: every message type round-trips through its one encoding, every malformed
//! input gets its own error, limits hold, unknown types are skipped, and hellos and routed
//! messages are bound to their signer (and a hello to its channel). Natively and in headless
//! Chromium.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::Secp256k1;
use bitcoin::{OutPoint, Txid};
use bitmesh_core::market::order::{OrderError, VERSION};
use bitmesh_core::testkit::{pay, spend, wire_samples, TestKey};
use bitmesh_core::wire::*;
use bitmesh_core::Network;

const AUX: [u8; 32] = [9; 32];
const NOW: u64 = 1_800_000_000_000;

fn hello(key: &TestKey, sender: Fingerprint, receiver: Fingerprint) -> SignedHello {
    let secp = Secp256k1::new();
    SignedHello::sign(
        &secp,
        Hello {
            magic: Network::Test.params().magic,
            version: PROTOCOL_VERSION,
            peer: PeerId::of(&key.xonly()),
            tip: Network::Test.genesis_hash(),
            height: 0,
            features: Features::ALL,
            time_millis: NOW,
            sender_fingerprint: sender,
            receiver_fingerprint: receiver,
        },
        &key.keypair(),
        &AUX,
    )
}

fn routed(from: &TestKey, to: PeerId, payload: Vec<u8>) -> Routed {
    Routed::sign(
        &Secp256k1::new(),
        &from.keypair(),
        to,
        8,
        NOW,
        42,
        RoutedKind::SwapProposal,
        payload,
        &AUX,
    )
}

#[test]
fn every_message_round_trips_and_truncation_is_caught() {
    for message in wire_samples() {
        let bytes = message.encode();
        assert!(bytes.len() <= MAX_MESSAGE_BYTES);
        assert_eq!(
            Message::decode(&bytes),
            Ok(message.clone()),
            "{}",
            message.name()
        );
        // Cut anywhere: an error, never a different message or a panic.
        for len in 1..bytes.len() {
            let err = Message::decode(&bytes[..len]).expect_err(message.name());
            assert!(!err.to_string().is_empty());
        }
        // One byte more: trailing bytes, or a bad object for consensus-encoded ones.
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Message::decode(&longer).is_err(), "{}", message.name());
    }
}

#[test]
fn empty_oversized_and_unknown_messages() {
    assert_eq!(Message::decode(&[]), Err(DecodeError::Empty));
    let huge = vec![0x22; MAX_MESSAGE_BYTES + 1];
    assert_eq!(
        Message::decode(&huge),
        Err(DecodeError::TooLarge {
            size: MAX_MESSAGE_BYTES + 1,
            max: MAX_MESSAGE_BYTES
        })
    );
    // A newer version's message type is skipped, whatever follows it.
    assert_eq!(
        Message::decode(&[0xf0, 1, 2, 3]),
        Ok(Message::Unknown(0xf0))
    );
    // Unknown inventory kinds and goodbye reasons decode, to be ignored.
    let mut bytes = vec![0x11, 1, 0, 0x77];
    bytes.extend([0; 32]);
    assert_eq!(
        Message::decode(&bytes),
        Ok(Message::GetData(vec![InvItem::new(
            InvKind::Unknown(0x77),
            [0; 32]
        )]))
    );
    assert_eq!(
        Message::decode(&[0x02, 99, 0]),
        Ok(Message::Goodbye(Goodbye {
            reason: GoodbyeReason::Unknown(99),
            text: String::new()
        }))
    );
}

#[test]
fn lists_above_their_limits_are_refused_before_reading_them() {
    let count = (MAX_INVENTORY + 1) as u16;
    let mut inv = vec![0x10, 0];
    inv.extend(count.to_le_bytes());
    assert_eq!(
        Message::decode(&inv),
        Err(DecodeError::TooMany {
            message: "inv",
            count: MAX_INVENTORY + 1,
            max: MAX_INVENTORY
        })
    );
    let mut headers = vec![0x21];
    headers.extend(((MAX_HEADERS + 1) as u16).to_le_bytes());
    assert!(matches!(
        Message::decode(&headers),
        Err(DecodeError::TooMany {
            message: "headers",
            ..
        })
    ));
    let locator = [0x20, (MAX_LOCATOR + 1) as u8];
    assert!(matches!(
        Message::decode(&locator),
        Err(DecodeError::TooMany {
            message: "getheaders",
            ..
        })
    ));
    let peers = [0x51, (MAX_PEER_RECORDS + 1) as u8];
    assert!(matches!(
        Message::decode(&peers),
        Err(DecodeError::TooMany {
            message: "peers",
            ..
        })
    ));
    let goodbye = [0x02, 1, (MAX_GOODBYE_TEXT + 1) as u8];
    assert!(matches!(
        Message::decode(&goodbye),
        Err(DecodeError::TooMany {
            message: "goodbye",
            ..
        })
    ));
    // A routed payload longer than allowed is refused from its length alone.
    let alice = TestKey::new(1);
    let mut bytes = Message::Routed(routed(&alice, PeerId([5; 32]), vec![])).encode();
    let len_at = 1 + 32 + 32 + 1 + 8 + 8 + 1;
    bytes[len_at..len_at + 4].copy_from_slice(&((MAX_ROUTED_PAYLOAD + 1) as u32).to_le_bytes());
    assert_eq!(
        Message::decode(&bytes),
        Err(DecodeError::TooMany {
            message: "routed",
            count: MAX_ROUTED_PAYLOAD + 1,
            max: MAX_ROUTED_PAYLOAD
        })
    );
}

#[test]
fn malformed_fields_get_their_own_errors() {
    assert_eq!(
        Message::decode(&[0x10, 2, 0, 0]),
        Err(DecodeError::Invalid {
            message: "inv",
            reason: "unknown inventory purpose"
        })
    );
    assert_eq!(
        Message::decode(&[0x02, 1, 2, 0xff, 0xfe]),
        Err(DecodeError::Invalid {
            message: "goodbye",
            reason: "the text is not UTF-8"
        })
    );
    assert!(matches!(
        Message::decode(&[0x22, 1, 2, 3]),
        Err(DecodeError::BadObject {
            message: "block",
            ..
        })
    ));
    assert!(matches!(
        Message::decode(&[0x30, 0, 0]),
        Err(DecodeError::BadObject { message: "tx", .. })
    ));
    assert!(matches!(
        Message::decode(&[0x40, VERSION]),
        Err(DecodeError::Order(OrderError::Malformed(_)))
    ));
    assert!(matches!(
        Message::decode(&[0x41, VERSION]),
        Err(DecodeError::OrderUpdate(_))
    ));
    assert_eq!(
        Message::decode(&[0x03, 1, 2]),
        Err(DecodeError::Truncated("ping"))
    );
    assert_eq!(
        Message::decode(&[0x50, 0]),
        Err(DecodeError::TrailingBytes("getpeers"))
    );
}

#[test]
fn an_oversized_transaction_is_refused_by_weight() {
    let alice = TestKey::new(1);
    let outputs = (0..3_500).map(|_| pay(&alice.p2wpkh(), 1_000)).collect();
    let tx = spend(&[OutPoint::new(Txid::from_byte_array([1; 32]), 0)], outputs);
    assert!(tx.weight().to_wu() > 400_000);
    assert!(matches!(
        Message::decode(&Message::Tx(tx).encode()),
        Err(DecodeError::TooHeavy { message: "tx", .. })
    ));
}

#[test]
fn a_hello_binds_the_peer_to_this_channel() {
    let secp = Secp256k1::new();
    let (alice, bob) = (TestKey::new(1), TestKey::new(2));
    let bob_id = PeerId::of(&bob.xonly());
    let magic = Network::Test.params().magic;
    // Alice's end has fingerprint [1; 32], Bob's [2; 32].
    let signed = hello(&alice, [1; 32], [2; 32]);
    assert_eq!(
        signed.check(&secp, magic, bob_id, &[2; 32], &[1; 32]),
        Ok(())
    );
    // A relay in the middle terminates other channels: its fingerprints differ.
    assert_eq!(
        signed.check(&secp, magic, bob_id, &[2; 32], &[3; 32]),
        Err(HelloError::NotThisChannel)
    );
    assert_eq!(
        signed.check(&secp, magic, bob_id, &[3; 32], &[1; 32]),
        Err(HelloError::NotThisChannel)
    );
    // Changing any signed field breaks the signature.
    let mut forged = signed.clone();
    forged.hello.height = 1;
    assert_eq!(
        forged.check(&secp, magic, bob_id, &[2; 32], &[1; 32]),
        Err(HelloError::BadSignature)
    );
    let mut impostor = signed.clone();
    impostor.hello.peer = PeerId::of(&TestKey::new(3).xonly());
    assert_eq!(
        impostor.check(&secp, magic, bob_id, &[2; 32], &[1; 32]),
        Err(HelloError::BadSignature)
    );
    impostor.hello.peer = PeerId([0xff; 32]);
    assert_eq!(
        impostor.check(&secp, magic, bob_id, &[2; 32], &[1; 32]),
        Err(HelloError::BadPeerId)
    );
    let other = Network::Local.params().magic;
    let err = signed
        .check(&secp, other, bob_id, &[2; 32], &[1; 32])
        .unwrap_err();
    assert_eq!(
        err,
        HelloError::WrongNetwork {
            ours: other,
            theirs: magic
        }
    );
    assert!(err.to_string().contains("another network"));
    let mut old = signed.clone();
    old.hello.version = 0;
    assert_eq!(
        old.check(&secp, magic, bob_id, &[2; 32], &[1; 32]),
        Err(HelloError::UnsupportedVersion { theirs: 0, min: 1 })
    );
    assert_eq!(
        signed.check(&secp, magic, PeerId::of(&alice.xonly()), &[2; 32], &[1; 32]),
        Err(HelloError::SelfConnection)
    );
}

#[test]
fn a_routed_message_is_signed_end_to_end_but_its_ttl_is_not() {
    let secp = Secp256k1::new();
    let alice = TestKey::new(1);
    let mut message = routed(&alice, PeerId([5; 32]), b"offer".to_vec());
    assert_eq!(message.verify(&secp), Ok(()));
    let id = message.id();
    message.ttl -= 1;
    assert_eq!(message.verify(&secp), Ok(()), "relays lower the ttl");
    assert_eq!(message.id(), id, "and the id stays");
    message.payload[0] ^= 1;
    assert_eq!(message.verify(&secp), Err(RoutedError::BadSignature));
    message.payload[0] ^= 1;
    message.to = PeerId([6; 32]);
    assert_eq!(message.verify(&secp), Err(RoutedError::BadSignature));
    message.from = PeerId([0xff; 32]);
    assert_eq!(message.verify(&secp), Err(RoutedError::BadSender));
}

#[test]
fn a_goodbye_text_is_cut_at_a_character_boundary() {
    let goodbye = Goodbye::new(GoodbyeReason::Misbehaviour, "é".repeat(150));
    assert!(goodbye.text.len() <= MAX_GOODBYE_TEXT);
    assert_eq!(
        Message::decode(&Message::Goodbye(goodbye.clone()).encode()),
        Ok(Message::Goodbye(goodbye))
    );
}
