//! Bytes as every market message a peer can send — signed order, order update, swap proposal,
//! swap answer: decoding never panics, nor do the checks after it, and what decodes re-encodes
//! to the same bytes (one canonical encoding).
#![no_main]

use bitcoin::secp256k1::Secp256k1;
use bitmesh_core::market::order::{SignedOrder, SignedUpdate};
use bitmesh_core::market::swap::{SwapProposal, SwapResponse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, bytes)) = data.split_first() else {
        return;
    };
    match kind % 4 {
        0 => {
            if let Ok(order) = SignedOrder::decode(bytes) {
                assert_eq!(order.encode(), bytes);
                let _ = order.verify(&Secp256k1::verification_only());
            }
        }
        1 => {
            if let Ok(update) = SignedUpdate::decode(bytes) {
                assert_eq!(update.encode(), bytes);
                let _ = update.verify(&Secp256k1::verification_only());
            }
        }
        2 => {
            if let Ok(proposal) = SwapProposal::decode(bytes) {
                assert_eq!(proposal.encode(), bytes);
            }
        }
        _ => {
            if let Ok(response) = SwapResponse::decode(bytes) {
                assert_eq!(response.encode(), bytes);
            }
        }
    }
});
