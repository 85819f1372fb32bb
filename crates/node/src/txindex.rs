//! Where each transaction of the active chain is (block and position), and which transactions
//! touch each script: what the Esplora-compatible API answers from. Kept in step with the
//! active chain through reorganisations, rebuilt from the chain at start.

use std::collections::HashMap;

use bitcoin::hashes::{sha256, Hash};
use bitcoin::{BlockHash, Txid};
use bitmesh_core::chain::state::Chain;

/// A transaction's place in the active chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub block: BlockHash,
    pub height: u32,
    pub position: u32,
}

/// The indexes of the active chain.
#[derive(Debug, Default)]
pub struct TxIndex {
    /// The block indexed at each height.
    blocks: Vec<BlockHash>,
    places: HashMap<Txid, Place>,
    /// Esplora's script hash (SHA-256 of the script) → the transactions paying or spending it,
    /// in chain order.
    scripts: HashMap<sha256::Hash, Vec<Txid>>,
}

impl TxIndex {
    pub fn place(&self, txid: &Txid) -> Option<Place> {
        self.places.get(txid).copied()
    }

    /// The transactions touching script hash `script`, oldest first.
    pub fn script_txs(&self, script: &sha256::Hash) -> &[Txid] {
        self.scripts.get(script).map_or(&[], Vec::as_slice)
    }

    /// Follows `chain`'s active chain: drops blocks it left, adds those it gained.
    pub fn update(&mut self, chain: &Chain) {
        let mut common = self.blocks.len().min(chain.height() as usize + 1);
        while common > 0 && chain.hash_at(common as u32 - 1) != Some(self.blocks[common - 1]) {
            common -= 1;
        }
        while self.blocks.len() > common {
            let hash = self.blocks.pop().expect("above common");
            if let Some(block) = chain.block(&hash) {
                self.forget(chain, block);
            }
        }
        for height in common as u32..=chain.height() {
            let hash = chain.hash_at(height).expect("on the active chain");
            if let Some(block) = chain.block(&hash) {
                self.add(chain, hash, height, block);
            }
            self.blocks.push(hash);
        }
    }

    fn add(&mut self, chain: &Chain, hash: BlockHash, height: u32, block: &bitcoin::Block) {
        for (position, tx) in block.txdata.iter().enumerate() {
            let txid = tx.compute_txid();
            self.places.insert(
                txid,
                Place {
                    block: hash,
                    height,
                    position: position as u32,
                },
            );
            for script in self.scripts_of(chain, tx) {
                let txs = self.scripts.entry(script).or_default();
                if txs.last() != Some(&txid) {
                    txs.push(txid);
                }
            }
        }
    }

    fn forget(&mut self, chain: &Chain, block: &bitcoin::Block) {
        for tx in block.txdata.iter().rev() {
            let txid = tx.compute_txid();
            for script in self.scripts_of(chain, tx) {
                if let Some(txs) = self.scripts.get_mut(&script) {
                    txs.retain(|other| *other != txid);
                    if txs.is_empty() {
                        self.scripts.remove(&script);
                    }
                }
            }
            self.places.remove(&txid);
        }
    }

    /// The script hashes `tx` pays to and spends from.
    fn scripts_of(&self, chain: &Chain, tx: &bitcoin::Transaction) -> Vec<sha256::Hash> {
        let mut scripts: Vec<sha256::Hash> = tx
            .output
            .iter()
            .map(|output| script_hash(&output.script_pubkey))
            .collect();
        if !tx.is_coinbase() {
            for input in &tx.input {
                if let Some(spent) = self.output(chain, &input.previous_output) {
                    scripts.push(script_hash(&spent.script_pubkey));
                }
            }
        }
        scripts.sort_unstable();
        scripts.dedup();
        scripts
    }

    /// The output `outpoint` names, if its transaction is in the active chain.
    pub fn output(&self, chain: &Chain, outpoint: &bitcoin::OutPoint) -> Option<bitcoin::TxOut> {
        let place = self.places.get(&outpoint.txid)?;
        let block = chain.block(&place.block)?;
        block
            .txdata
            .get(place.position as usize)?
            .output
            .get(outpoint.vout as usize)
            .cloned()
    }
}

/// Esplora's hash of `script`.
pub fn script_hash(script: &bitcoin::Script) -> sha256::Hash {
    sha256::Hash::hash(script.as_bytes())
}
