//! Bytes as an asset record: decoding never panics, and what decodes re-encodes identically.
#![no_main]

use bitmesh_core::chain::assets::AssetRecord;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = AssetRecord::from_bytes(data) {
        assert_eq!(record.to_bytes(), data);
    }
});
