//! Bytes as a peer protocol message: decoding never panics, what decodes re-encodes to the same
//! bytes (one canonical encoding; a newer version's message type is skipped whatever follows),
//! and the signature checks behind hellos and routed messages do not panic either.
#![no_main]

use bitcoin::secp256k1::Secp256k1;
use bitmesh_core::wire::{Message, PeerId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(message) = Message::decode(data) else {
        return;
    };
    match &message {
        Message::Unknown(code) => assert_eq!(data[0], *code),
        _ => assert_eq!(message.encode(), data),
    }
    let secp = Secp256k1::verification_only();
    match &message {
        Message::Hello(hello) => {
            let _ = hello.check(&secp, [0xb1, 0x7e, 0x5e, 0x54], PeerId([1; 32]), &[2; 32], &[3; 32]);
        }
        Message::Routed(routed) => {
            let _ = routed.verify(&secp);
        }
        _ => {}
    }
});
