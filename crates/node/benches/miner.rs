//! The miner's nonce search on one core beside the machine's single-stream SHA-256 ceiling,
//! measured in the same run: OpenSSL's SHA-256 compressions per second (when `openssl` is on
//! PATH) and `bitcoin_hashes`' (SHA-NI where the CPU has it), each halved, as a header hash
//! costs two compressions. Goal: the search at ≥ 1.3 × that ceiling.
//!
//! `cargo bench -p bitmesh-node --bench miner`

use std::process::Command;
use std::time::Instant;

use bitcoin::block::{Header, Version};
use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::{BlockHash, CompactTarget, TxMerkleNode};
use bitmesh_node::miner::sha256d::HeaderMidstate;

const NONCES: u32 = 1 << 23;
const ROUNDS: usize = 5;

fn best(mut run: impl FnMut() -> f64) -> f64 {
    (0..ROUNDS).map(|_| run()).fold(0.0, f64::max)
}

/// Header hashes per second of the search on one core (a target no nonce meets).
fn search_rate(header: &Header) -> f64 {
    let midstate = HeaderMidstate::new(header);
    best(|| {
        let start = Instant::now();
        assert_eq!(midstate.search(0..=NONCES - 1), None);
        f64::from(NONCES) / start.elapsed().as_secs_f64()
    })
}

/// The core's one-nonce-at-a-time search (bitcoin_hashes), for comparison.
fn core_search_rate(header: &Header) -> f64 {
    best(|| {
        let start = Instant::now();
        let nonces = NONCES / 4;
        assert_eq!(
            bitmesh_core::chain::pow::search_nonce(header, 0..=nonces - 1),
            None
        );
        f64::from(nonces) / start.elapsed().as_secs_f64()
    })
}

/// SHA-256 compressions per second of one stream through bitcoin_hashes.
fn bitcoin_hashes_compressions() -> f64 {
    let data = vec![0x5au8; 64 << 20];
    best(|| {
        let start = Instant::now();
        let mut engine = sha256::HashEngine::default();
        engine.input(&data);
        let hash = sha256::Hash::from_engine(engine);
        assert_ne!(hash.to_byte_array(), [0; 32]);
        (data.len() / 64) as f64 / start.elapsed().as_secs_f64()
    })
}

/// SHA-256 compressions per second of one stream through OpenSSL, if it is installed.
fn openssl_compressions() -> Option<f64> {
    let output = Command::new("openssl")
        .args([
            "speed", "-mr", "-seconds", "3", "-bytes", "16384", "-evp", "sha256",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    // "+F:<index>:<algorithm>:<bytes per second>"
    let line = text.lines().find(|line| line.starts_with("+F:"))?;
    let bytes_per_second: f64 = line.rsplit(':').next()?.parse().ok()?;
    Some(bytes_per_second / 64.0)
}

fn main() {
    let header = Header {
        version: Version::TWO,
        prev_blockhash: BlockHash::from_byte_array([7; 32]),
        merkle_root: TxMerkleNode::from_byte_array([9; 32]),
        time: 1_700_000_000,
        // Bitcoin's first difficulty: no nonce of the range meets it (in practice).
        bits: CompactTarget::from_consensus(0x1d00_ffff),
        nonce: 0,
    };
    let search = search_rate(&header);
    let core = core_search_rate(&header);
    let hashes = bitcoin_hashes_compressions();
    let openssl = openssl_compressions();
    let ceiling = openssl.unwrap_or(hashes) / 2.0;
    println!(
        "miner, one core: {:.2} M header hashes/s (two nonces at a time with SHA-NI); the core's \
         one-at-a-time search {:.2} M/s",
        search / 1e6,
        core / 1e6
    );
    println!(
        "single-stream SHA-256 ceiling: OpenSSL {} M compressions/s, bitcoin_hashes {:.2} M \
         compressions/s; ceiling {:.2} M header hashes/s ({}); miner/ceiling {:.2} (goal >= 1.3)",
        openssl.map_or("(not installed)".to_owned(), |rate| format!(
            "{:.2}",
            rate / 1e6
        )),
        hashes / 1e6,
        ceiling / 1e6,
        if openssl.is_some() {
            "OpenSSL / 2"
        } else {
            "bitcoin_hashes / 2"
        },
        search / ceiling
    );
}
