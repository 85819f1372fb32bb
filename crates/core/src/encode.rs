//! Little helpers for bitmesh's own canonical encodings (asset records, orders, swap messages):
//! fixed-width little-endian integers read from a byte slice that may end early, and BIP340
//! tagged hashes for domain separation.

use bitcoin::hashes::{sha256, Hash, HashEngine};

/// The input ended before a field did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndOfInput;

/// Reads fields from the front of a byte slice.
pub struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// A reader of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader(bytes)
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.0
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], EndOfInput> {
        if self.0.len() < n {
            return Err(EndOfInput);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], EndOfInput> {
        Ok(self.take(N)?.try_into().expect("take returned N bytes"))
    }

    pub fn u8(&mut self) -> Result<u8, EndOfInput> {
        Ok(self.take(1)?[0])
    }

    pub fn u16(&mut self) -> Result<u16, EndOfInput> {
        self.array().map(u16::from_le_bytes)
    }

    pub fn u32(&mut self) -> Result<u32, EndOfInput> {
        self.array().map(u32::from_le_bytes)
    }

    pub fn u64(&mut self) -> Result<u64, EndOfInput> {
        self.array().map(u64::from_le_bytes)
    }
}

/// `text` cut to at most `max` bytes, at a character boundary (texts for peers have a byte
/// limit; a cut inside a character would not be UTF-8).
pub fn truncated(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// BIP340's tagged hash: SHA-256(SHA-256(tag) ‖ SHA-256(tag) ‖ parts...), so that a hash made
/// for one purpose can never be mistaken for one made for another.
pub fn tagged_hash(tag: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let tag = sha256::Hash::hash(tag);
    let mut engine = sha256::HashEngine::default();
    engine.input(tag.as_byte_array());
    engine.input(tag.as_byte_array());
    for part in parts {
        engine.input(part);
    }
    sha256::Hash::from_engine(engine).to_byte_array()
}
