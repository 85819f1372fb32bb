//! Writes seed inputs for the fuzz targets: real blocks, transactions and asset records.
//!
//! `cargo run -p bitmesh-core --example fuzz_seeds -- fuzz/corpus`

use std::path::PathBuf;

use bitcoin::consensus::encode::serialize;
use bitmesh_core::chain::assets::{AssetId, AssetRecord, Issuance, Transfer};
use bitmesh_core::testkit::ConnectWorkload;

fn main() -> std::io::Result<()> {
    let root = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/corpus".into()),
    );
    let workload = ConnectWorkload::new(4, 2);
    let blocks = root.join("deserialize_block");
    let txs = root.join("deserialize_transaction");
    let records = root.join("asset_record");
    for dir in [&blocks, &txs, &records] {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(blocks.join("workload"), serialize(&workload.block))?;
    for network in bitmesh_core::Network::ALL {
        std::fs::write(
            blocks.join(network.name()),
            serialize(&network.genesis_block()),
        )?;
    }
    for (i, tx) in workload.block.txdata.iter().enumerate() {
        std::fs::write(txs.join(format!("tx{i}")), serialize(tx))?;
    }
    let issue = AssetRecord::Issue(Issuance {
        ticker: "SEED".into(),
        decimals: 2,
        supply: 1_000,
        output: 0,
    });
    let asset = AssetId::from_byte_array([5; 32]);
    let transfer = AssetRecord::Transfer(vec![Transfer {
        asset,
        allocations: vec![(0, 1), (1, 2)],
    }]);
    std::fs::write(records.join("issue"), issue.to_bytes())?;
    std::fs::write(records.join("transfer"), transfer.to_bytes())?;
    Ok(())
}
