//! Bytes as data-channel frames: reassembly never panics, never holds more than the maximum
//! message and a frame, and never yields a message above the maximum; and any message cut into
//! frames comes back whole.
#![no_main]

use bitmesh_mesh::framing::{frames, Reassembler, MAX_FRAME};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&max_kib, mut rest)) = data.split_first() else {
        return;
    };
    let max = (usize::from(max_kib) + 1) * 1024;
    let mut reassembler = Reassembler::new(max);
    // Frames as u16-length-prefixed slices of the input.
    while rest.len() >= 2 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        let end = (2 + len).min(rest.len());
        let frame = &rest[2..end];
        rest = &rest[end..];
        match reassembler.push(frame, 0) {
            Ok(Some(message)) => assert!(message.len() <= max),
            Ok(None) => {}
            Err(_) => reassembler = Reassembler::new(max),
        }
        assert!(reassembler.buffered() <= max + 2 * MAX_FRAME);
    }
    let mut whole = Reassembler::new(data.len().max(1));
    let mut out = Vec::new();
    for frame in frames(data) {
        assert!(frame.len() <= MAX_FRAME);
        out.extend(whole.push(&frame, 0).expect("our own frames"));
    }
    assert_eq!(out, vec![data.to_vec()]);
});
