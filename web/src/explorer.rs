//! The block explorer over the tab's own chain and mempool: the recent blocks, a block's
//! transactions, a transaction's inputs and outputs with their assets. Nothing is asked of any
//! server; what the tab validated is what it shows. Runs, and is tested, natively too.

use bitcoin::{Address, Block, BlockHash, OutPoint, Transaction, Txid};
use bitmesh_core::chain::assets::AssetId;
use bitmesh_core::chain::mempool::Mempool;
use bitmesh_core::chain::state::Chain;
use bitmesh_core::wallet::tracker::Unit;
use bitmesh_core::Network;

use crate::app::{count, format_units};
use crate::wallet::unit_name;

/// Blocks listed as recent.
pub const RECENT_BLOCKS: usize = 10;
/// How far back a transaction is looked for (the tab keeps no transaction index).
pub const TX_SEARCH_DEPTH: u32 = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRow {
    pub height: u32,
    pub hash: String,
    pub txs: usize,
    /// Unix seconds of its header.
    pub time: u32,
}

/// What a person looked up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Explored {
    #[default]
    Nothing,
    Block {
        block: BlockRow,
        txs: Vec<TxRow>,
    },
    Tx(TxDetail),
    NotFound(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxRow {
    pub txid: String,
    pub inputs: usize,
    pub outputs: usize,
    /// The BTC its outputs carry.
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxDetail {
    pub txid: String,
    /// "in block 12 (3 confirmations)" or "unconfirmed, in the mempool".
    pub place: String,
    /// Each input's previous output, or "coinbase".
    pub inputs: Vec<String>,
    pub outputs: Vec<OutputRow>,
    /// "issues 1000.00 DEMO" when it issues an asset.
    pub issues: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputRow {
    pub value: String,
    /// The address, or the script in hex when it has none.
    pub to: String,
    /// Its asset units ("1000.00 DEMO"), known while it is unspent.
    pub assets: Vec<String>,
    pub spent: bool,
}

/// The last [`RECENT_BLOCKS`] blocks of the active chain, newest first.
pub fn recent_blocks(chain: &Chain) -> Vec<BlockRow> {
    (0..=chain.height())
        .rev()
        .take(RECENT_BLOCKS)
        .filter_map(|height| {
            let hash = chain.hash_at(height)?;
            chain
                .block(&hash)
                .map(|block| block_row(height, &hash, block))
        })
        .collect()
}

fn block_row(height: u32, hash: &BlockHash, block: &Block) -> BlockRow {
    BlockRow {
        height,
        hash: hash.to_string(),
        txs: block.txdata.len(),
        time: block.header.time,
    }
}

/// Looks `query` up: a height, a block hash, or a txid (the mempool, then the last
/// [`TX_SEARCH_DEPTH`] blocks).
pub fn explore(chain: &Chain, mempool: &Mempool, network: Network, query: &str) -> Explored {
    let query = query.trim();
    if let Ok(height) = query.parse::<u32>() {
        return match chain.hash_at(height) {
            Some(hash) => block(chain, height, &hash),
            None => Explored::NotFound(format!(
                "No block at height {height}: this tab's chain is {} blocks high",
                chain.height()
            )),
        };
    }
    let Ok(hash) = query.parse::<BlockHash>() else {
        return Explored::NotFound(format!(
            "\"{query}\" is neither a height, a block hash nor a transaction id"
        ));
    };
    if let Some(height) = (0..=chain.height())
        .rev()
        .take(TX_SEARCH_DEPTH as usize)
        .find(|height| chain.hash_at(*height) == Some(hash))
    {
        return block(chain, height, &hash);
    }
    let txid: Txid = query.parse().expect("the same 32 bytes in hex");
    if let Some(entry) = mempool.get(&txid) {
        return Explored::Tx(tx_detail(
            chain,
            mempool,
            network,
            &entry.tx,
            "unconfirmed, in the mempool".into(),
        ));
    }
    for height in (0..=chain.height()).rev().take(TX_SEARCH_DEPTH as usize) {
        let found = chain
            .hash_at(height)
            .and_then(|hash| chain.block(&hash))
            .and_then(|block| block.txdata.iter().find(|tx| tx.compute_txid() == txid));
        if let Some(tx) = found {
            let confirmations = count(chain.height() - height + 1, "confirmation", "confirmations");
            let place = format!("in block {height} ({confirmations})");
            return Explored::Tx(tx_detail(chain, mempool, network, tx, place));
        }
    }
    Explored::NotFound(format!(
        "No block or transaction {query} in this tab's chain (the last {TX_SEARCH_DEPTH} \
         blocks) or mempool"
    ))
}

fn block(chain: &Chain, height: u32, hash: &BlockHash) -> Explored {
    let Some(block) = chain.block(hash) else {
        return Explored::NotFound(format!("Block {hash} is not held"));
    };
    Explored::Block {
        block: block_row(height, hash, block),
        txs: block
            .txdata
            .iter()
            .map(|tx| TxRow {
                txid: tx.compute_txid().to_string(),
                inputs: tx.input.len(),
                outputs: tx.output.len(),
                value: format_units(tx.output.iter().map(|txout| txout.value.to_sat()).sum(), 8),
            })
            .collect(),
    }
}

fn tx_detail(
    chain: &Chain,
    mempool: &Mempool,
    network: Network,
    tx: &Transaction,
    place: String,
) -> TxDetail {
    let txid = tx.compute_txid();
    let units = |asset: AssetId, amount: u64| {
        let (name, decimals) = unit_name(chain, Unit::Asset(asset));
        format!("{} {name}", format_units(amount, decimals))
    };
    let issues = tx
        .input
        .first()
        .map(|input| AssetId::from_issuing_outpoint(&input.previous_output))
        .and_then(|asset| {
            let issue = chain.asset(&asset)?;
            let supply = format_units(issue.supply, issue.decimals);
            Some(format!("issues {supply} {}", issue.ticker))
        });
    TxDetail {
        txid: txid.to_string(),
        place,
        inputs: tx
            .input
            .iter()
            .map(|input| {
                if tx.is_coinbase() {
                    "coinbase".to_owned()
                } else {
                    input.previous_output.to_string()
                }
            })
            .collect(),
        outputs: tx
            .output
            .iter()
            .enumerate()
            .map(|(vout, txout)| {
                let coin = mempool.coin(chain, &OutPoint::new(txid, vout as u32));
                OutputRow {
                    value: format_units(txout.value.to_sat(), 8),
                    to: Address::from_script(&txout.script_pubkey, network.address_network())
                        .map(|address| address.to_string())
                        .unwrap_or_else(|_| txout.script_pubkey.to_hex_string()),
                    assets: coin
                        .as_ref()
                        .map(|coin| {
                            coin.assets
                                .iter()
                                .map(|(asset, amount)| units(asset, amount))
                                .collect()
                        })
                        .unwrap_or_default(),
                    spent: coin.is_none(),
                }
            })
            .collect(),
        issues,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitmesh_core::chain::mempool::MempoolConfig;
    use bitmesh_core::testkit::{block_on, TestKey};

    #[test]
    fn blocks_and_transactions_are_found_by_height_hash_and_txid() {
        let network = Network::Test;
        let mut chain = Chain::new(network);
        let payout = TestKey::new(1).p2wpkh();
        for n in 0..3u64 {
            let block = block_on(&chain, chain.tip(), vec![], 0, &payout, n);
            chain.accept_block(block, 2_000_000_000).unwrap();
        }
        let mempool = Mempool::new(MempoolConfig::default(), 1);
        let recent = recent_blocks(&chain);
        assert_eq!(
            recent.iter().map(|row| row.height).collect::<Vec<_>>(),
            [3, 2, 1, 0]
        );
        let Explored::Block { block, txs } = explore(&chain, &mempool, network, "2") else {
            panic!("block 2");
        };
        assert_eq!(block.hash, chain.hash_at(2).unwrap().to_string());
        assert_eq!(txs.len(), 1);
        assert_eq!(
            explore(&chain, &mempool, network, &block.hash),
            explore(&chain, &mempool, network, "2")
        );
        let Explored::Tx(tx) = explore(&chain, &mempool, network, &txs[0].txid) else {
            panic!("the coinbase");
        };
        assert_eq!(tx.inputs, ["coinbase"]);
        assert_eq!(tx.place, "in block 2 (2 confirmations)");
        assert!(!tx.outputs[0].spent);
        assert_eq!(
            tx.outputs[0].to,
            Address::from_script(&payout, network.address_network())
                .unwrap()
                .to_string()
        );
        for (query, says) in [
            ("9", "No block at height 9"),
            ("nope", "is neither a height"),
            (&"11".repeat(32)[..], "No block or transaction"),
        ] {
            let Explored::NotFound(why) = explore(&chain, &mempool, network, query) else {
                panic!("{query} is not found");
            };
            assert!(why.contains(says), "{why}");
        }
    }
}
