//! Any script of neighbour input played on a full node whose chain holds a coin, with two
//! neighbours (`NodeScript`: messages, time passing, channels dropping and coming back). The
//! node never panics — debug assertions are on, so the book's and the relay's own checks run
//! — and every message it sends decodes. `fuzz_seeds` writes scripts of real gossip to start
//! from (orders, updates, a block, holdings).
#![no_main]

use std::sync::OnceLock;

use bitmesh_core::testkit::{NodeScript, TestCoins};
use libfuzzer_sys::fuzz_target;

fn coins() -> &'static TestCoins {
    static COINS: OnceLock<TestCoins> = OnceLock::new();
    COINS.get_or_init(NodeScript::coins)
}

fuzz_target!(|data: &[u8]| {
    let mut played = NodeScript::new(coins());
    let outputs = played.play(data);
    for peer in 0..2 {
        played.sent_to(&outputs, peer);
    }
});
