//! Bytes as a faucet request or answer (routed payloads any peer can send a faucet node):
//! decoding never panics, and what decodes re-encodes to the same bytes.
#![no_main]

use bitmesh_core::faucet::{FaucetAnswer, FaucetRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = FaucetRequest::decode(data) {
        assert_eq!(request.encode(), data);
    }
    if let Ok(answer) = FaucetAnswer::decode(data) {
        assert_eq!(answer.encode(), data);
    }
});
