//! Bytes as kept wallet metadata (from IndexedDB, the native store, and later from sibling
//! devices): decoding never panics, and what decodes survives a round trip unchanged.
#![no_main]

use bitmesh_core::wallet::metadata::Metadata;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(metadata) = Metadata::decode(data) {
        let bytes = metadata.encode();
        assert_eq!(Metadata::decode(&bytes).as_ref(), Ok(&metadata));
    }
});
