//! Bytes as a kept desk record (from IndexedDB): decoding never panics, and what decodes
//! survives a round trip unchanged.
#![no_main]

use bitmesh_core::market::record::DeskRecord;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = DeskRecord::decode(data) {
        let bytes = record.encode();
        assert_eq!(DeskRecord::decode(&bytes).as_ref(), Ok(&record));
    }
});
