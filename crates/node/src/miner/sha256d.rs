//! Double SHA-256 of block headers for the nonce search, two nonces at a time with the x86
//! SHA extensions (SHA-NI). One SHA-256 compression is a chain of dependent `sha256rnds2`
//! instructions, each waiting for the last; two independent chains interleaved keep the unit
//! busy, so two hashes cost little more than one. Per nonce: one compression of the header's
//! last 16 bytes from the precomputed midstate of its first 64, one of the 32-byte result.
//!
//! Without SHA-NI (or off x86-64) the search falls back to `bitcoin_hashes`, one nonce at a time.

use bitcoin::block::Header;
use bitcoin::consensus::serialize;
use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::{BlockHash, Target};

/// SHA-256's initial state.
const IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// What stays the same for every nonce of one header.
#[derive(Debug, Clone, Copy)]
pub struct HeaderMidstate {
    /// The SHA-256 state after the header's first 64 bytes.
    state: [u32; 8],
    /// The second block of the first hash: the last 12 header bytes before the nonce (as
    /// big-endian words), the nonce's place, padding, and the length (640 bits).
    block: [u32; 16],
    target: Target,
}

impl HeaderMidstate {
    pub fn new(header: &Header) -> HeaderMidstate {
        let bytes = serialize(header);
        let mut engine = sha256::HashEngine::default();
        engine.input(&bytes[..64]);
        let midstate = engine.midstate().to_byte_array();
        let mut state = [0u32; 8];
        for (word, chunk) in state.iter_mut().zip(midstate.chunks_exact(4)) {
            *word = u32::from_be_bytes(chunk.try_into().expect("4 bytes"));
        }
        let mut block = [0u32; 16];
        for (word, chunk) in block.iter_mut().zip(bytes[64..76].chunks_exact(4)) {
            *word = u32::from_be_bytes(chunk.try_into().expect("4 bytes"));
        }
        block[4] = 0x8000_0000;
        block[15] = 80 * 8;
        HeaderMidstate {
            state,
            block,
            target: header.target(),
        }
    }

    /// The block hash for `nonce` (the slow, plain way: a reference for tests).
    pub fn hash(&self, nonce: u32) -> BlockHash {
        let mut first = self.state;
        let mut block = self.block;
        block[3] = nonce.swap_bytes();
        compress_scalar(&mut first, &block);
        let mut second = IV;
        compress_scalar(&mut second, &second_block(&first));
        to_block_hash(&second)
    }

    /// The first nonce of `nonces` whose block hash meets the target.
    pub fn search(&self, nonces: core::ops::RangeInclusive<u32>) -> Option<u32> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("sha")
            && std::arch::is_x86_feature_detected!("sse4.1")
        {
            // SAFETY: the CPU has the SHA extensions and SSE4.1 (checked just above).
            return unsafe { self.search_shani(nonces) };
        }
        nonces
            .into_iter()
            .find(|nonce| self.target.is_met_by(self.hash(*nonce)))
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn search_shani(&self, nonces: core::ops::RangeInclusive<u32>) -> Option<u32> {
        let (start, end) = (*nonces.start(), *nonces.end());
        if start > end {
            return None;
        }
        let mut nonce = start;
        loop {
            let other = nonce.saturating_add(1).min(end);
            let (mut a, mut b) = (self.block, self.block);
            a[3] = nonce.swap_bytes();
            b[3] = other.swap_bytes();
            let (mut first_a, mut first_b) = (self.state, self.state);
            // SAFETY: the caller's target features.
            unsafe { shani::compress2(&mut first_a, &mut first_b, &a, &b) };
            let (mut second_a, mut second_b) = (IV, IV);
            let (block_a, block_b) = (second_block(&first_a), second_block(&first_b));
            unsafe { shani::compress2(&mut second_a, &mut second_b, &block_a, &block_b) };
            if self.target.is_met_by(to_block_hash(&second_a)) {
                return Some(nonce);
            }
            if other != nonce && self.target.is_met_by(to_block_hash(&second_b)) {
                return Some(other);
            }
            if other >= end {
                return None;
            }
            nonce = other + 1;
        }
    }
}

/// The block of the second SHA-256: the first hash, padding and its length (256 bits).
fn second_block(first: &[u32; 8]) -> [u32; 16] {
    let mut block = [0u32; 16];
    block[..8].copy_from_slice(first);
    block[8] = 0x8000_0000;
    block[15] = 256;
    block
}

fn to_block_hash(state: &[u32; 8]) -> BlockHash {
    let mut bytes = [0u8; 32];
    for (chunk, word) in bytes.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    BlockHash::from_byte_array(bytes)
}

const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// One SHA-256 compression of `block` (big-endian words) into `state`: the reference.
fn compress_scalar(state: &mut [u32; 8], block: &[u32; 16]) {
    let mut w = [0u32; 64];
    w[..16].copy_from_slice(block);
    for i in 16..64 {
        let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
        let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16]
            .wrapping_add(s0)
            .wrapping_add(w[i - 7])
            .wrapping_add(s1);
    }
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
    for i in 0..64 {
        let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
        let ch = (e & f) ^ (!e & g);
        let t1 = h
            .wrapping_add(s1)
            .wrapping_add(ch)
            .wrapping_add(K[i])
            .wrapping_add(w[i]);
        let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
        let maj = (a & b) ^ (a & c) ^ (b & c);
        let t2 = s0.wrapping_add(maj);
        h = g;
        g = f;
        f = e;
        e = d.wrapping_add(t1);
        d = c;
        c = b;
        b = a;
        a = t1.wrapping_add(t2);
    }
    for (word, add) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
        *word = word.wrapping_add(add);
    }
}

#[cfg(target_arch = "x86_64")]
mod shani {
    use core::arch::x86_64::*;

    use super::K;

    /// The SHA-NI state layout of `state`: (ABEF, CDGH).
    #[inline(always)]
    unsafe fn load(state: &[u32; 8]) -> (__m128i, __m128i) {
        unsafe {
            let dcba = _mm_loadu_si128(state.as_ptr().cast());
            let hgfe = _mm_loadu_si128(state.as_ptr().add(4).cast());
            let cdab = _mm_shuffle_epi32(dcba, 0xB1);
            let efgh = _mm_shuffle_epi32(hgfe, 0x1B);
            (
                _mm_alignr_epi8(cdab, efgh, 8),
                _mm_blend_epi16(efgh, cdab, 0xF0),
            )
        }
    }

    #[inline(always)]
    unsafe fn store(state: &mut [u32; 8], abef: __m128i, cdgh: __m128i) {
        unsafe {
            let feba = _mm_shuffle_epi32(abef, 0x1B);
            let dchg = _mm_shuffle_epi32(cdgh, 0xB1);
            let dcba = _mm_blend_epi16(feba, dchg, 0xF0);
            let hgef = _mm_alignr_epi8(dchg, feba, 8);
            _mm_storeu_si128(state.as_mut_ptr().cast(), dcba);
            _mm_storeu_si128(state.as_mut_ptr().add(4).cast(), hgef);
        }
    }

    #[inline(always)]
    unsafe fn words(block: &[u32; 16], i: usize) -> __m128i {
        unsafe { _mm_loadu_si128(block.as_ptr().add(4 * i).cast()) }
    }

    #[inline(always)]
    unsafe fn k(i: usize) -> __m128i {
        unsafe { _mm_loadu_si128(K.as_ptr().add(4 * i).cast()) }
    }

    /// The next four message words from the last sixteen.
    #[inline(always)]
    unsafe fn schedule(w0: __m128i, w1: __m128i, w2: __m128i, w3: __m128i) -> __m128i {
        unsafe {
            let t = _mm_add_epi32(_mm_sha256msg1_epu32(w0, w1), _mm_alignr_epi8(w3, w2, 4));
            _mm_sha256msg2_epu32(t, w3)
        }
    }

    /// Four rounds of each lane, interleaved.
    #[inline(always)]
    unsafe fn rounds(
        a: &mut (__m128i, __m128i),
        b: &mut (__m128i, __m128i),
        wa: __m128i,
        wb: __m128i,
        i: usize,
    ) {
        unsafe {
            let ka = _mm_add_epi32(wa, k(i));
            let kb = _mm_add_epi32(wb, k(i));
            a.1 = _mm_sha256rnds2_epu32(a.1, a.0, ka);
            b.1 = _mm_sha256rnds2_epu32(b.1, b.0, kb);
            a.0 = _mm_sha256rnds2_epu32(a.0, a.1, _mm_shuffle_epi32(ka, 0x0E));
            b.0 = _mm_sha256rnds2_epu32(b.0, b.1, _mm_shuffle_epi32(kb, 0x0E));
        }
    }

    /// One compression of each of two independent (state, block) pairs.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub unsafe fn compress2(
        state_a: &mut [u32; 8],
        state_b: &mut [u32; 8],
        block_a: &[u32; 16],
        block_b: &[u32; 16],
    ) {
        unsafe {
            let (mut a, mut b) = (load(state_a), load(state_b));
            let (saved_a, saved_b) = (a, b);
            let mut wa = [
                words(block_a, 0),
                words(block_a, 1),
                words(block_a, 2),
                words(block_a, 3),
            ];
            let mut wb = [
                words(block_b, 0),
                words(block_b, 1),
                words(block_b, 2),
                words(block_b, 3),
            ];
            for i in 0..4 {
                rounds(&mut a, &mut b, wa[i], wb[i], i);
            }
            for i in 4..16 {
                let next_a = schedule(wa[0], wa[1], wa[2], wa[3]);
                let next_b = schedule(wb[0], wb[1], wb[2], wb[3]);
                wa = [wa[1], wa[2], wa[3], next_a];
                wb = [wb[1], wb[2], wb[3], next_b];
                rounds(&mut a, &mut b, next_a, next_b, i);
            }
            store(
                state_a,
                _mm_add_epi32(a.0, saved_a.0),
                _mm_add_epi32(a.1, saved_a.1),
            );
            store(
                state_b,
                _mm_add_epi32(b.0, saved_b.0),
                _mm_add_epi32(b.1, saved_b.1),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use bitcoin::block::Version;
    use bitcoin::{CompactTarget, TxMerkleNode};

    use super::*;

    fn header(bits: u32) -> Header {
        Header {
            version: Version::TWO,
            prev_blockhash: BlockHash::from_byte_array([7; 32]),
            merkle_root: TxMerkleNode::from_byte_array([9; 32]),
            time: 1_700_000_000,
            bits: CompactTarget::from_consensus(bits),
            nonce: 0,
        }
    }

    #[test]
    fn every_way_of_hashing_gives_the_header_hash() {
        let mut header = header(0x207f_ffff);
        let midstate = HeaderMidstate::new(&header);
        for nonce in [0, 1, 2, 0x1234_5678, u32::MAX] {
            header.nonce = nonce;
            assert_eq!(midstate.hash(nonce), header.block_hash(), "nonce {nonce}");
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn two_lane_shani_compressions_equal_the_reference() {
        if !std::arch::is_x86_feature_detected!("sha") {
            return;
        }
        let mut seed = 0x9e37_79b9_u32;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for _ in 0..100 {
            let (mut a, mut b) = ([0u32; 8], [0u32; 8]);
            let (mut block_a, mut block_b) = ([0u32; 16], [0u32; 16]);
            a.iter_mut().chain(&mut b).for_each(|word| *word = next());
            block_a
                .iter_mut()
                .chain(&mut block_b)
                .for_each(|word| *word = next());
            let (mut expected_a, mut expected_b) = (a, b);
            compress_scalar(&mut expected_a, &block_a);
            compress_scalar(&mut expected_b, &block_b);
            // SAFETY: checked above.
            unsafe { shani::compress2(&mut a, &mut b, &block_a, &block_b) };
            assert_eq!((a, b), (expected_a, expected_b));
        }
    }

    #[test]
    fn the_search_finds_the_first_nonce_that_meets_the_target() {
        // About one nonce in 256 meets this target.
        let mut header = header(0x2000_ffff);
        let midstate = HeaderMidstate::new(&header);
        let expected = (0..=u32::MAX).find(|nonce| {
            header.nonce = *nonce;
            header.target().is_met_by(header.block_hash())
        });
        for start in [0, 1, 2, 3] {
            let found = midstate.search(start..=u32::MAX);
            let plain = (start..=u32::MAX).find(|nonce| {
                header.nonce = *nonce;
                header.target().is_met_by(header.block_hash())
            });
            assert_eq!(found, plain, "from {start}");
        }
        // Ranges that end just before the first solution (odd and even lengths), that hold
        // only it, and an empty one.
        let first = expected.expect("a solution");
        assert!(first > 2, "the test needs a solution past the first nonces");
        assert_eq!(midstate.search(0..=first - 1), None);
        assert_eq!(midstate.search(1..=first - 1), None);
        assert_eq!(midstate.search(first..=first), Some(first));
        let (start, end) = (first + 1, first);
        assert_eq!(midstate.search(start..=end), None, "an empty range");
    }
}
