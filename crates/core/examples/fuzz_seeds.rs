//! Writes seed inputs for the fuzz targets: real blocks, transactions, asset records, market
//! messages, peer protocol messages, scripts of gossip played on a node, a swap proposal a
//! maker accepts and a desk's record.
//!
//! `cargo run -p bitmesh-core --example fuzz_seeds -- fuzz/corpus`

use std::path::PathBuf;

use bitcoin::consensus::encode::serialize;
use bitmesh_core::chain::assets::{AssetId, AssetRecord, Issuance, Transfer};
use bitmesh_core::market::order::{Change, Order, OrderUpdate, Side};
use bitmesh_core::market::swap::{SwapProposal, SwapResponse};
use bitmesh_core::testkit::{ConnectWorkload, NodeScript, TestKey};

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

    // Market messages, each after the byte that selects its decoder.
    let market = root.join("market_messages");
    std::fs::create_dir_all(&market)?;
    let maker = TestKey::new(3);
    let order = Order {
        market: asset,
        side: Side::Ask,
        price: 50_000,
        amount: 10_000_000,
        created_millis: 1_800_000_000_000,
        expiry_millis: 1_800_003_600_000,
        nonce: 1,
        maker: maker.xonly(),
        funding: vec![workload.block.txdata[1].input[0].previous_output],
        receive: maker.p2tr(),
        change: maker.p2wpkh(),
    };
    let update = OrderUpdate {
        order: order.id(),
        maker: maker.xonly(),
        sequence: 1,
        change: Change::Fill {
            filled: 5_000_000,
            funding: order.funding.clone(),
        },
    };
    let tx = workload.block.txdata[1].clone();
    let messages = [
        (0u8, maker.sign_order(order.clone(), &maker).encode()),
        (1, maker.sign_update(update, &maker).encode()),
        (
            2,
            SwapProposal {
                order: order.id(),
                sequence: 1,
                quantity: 1_000_000,
                tx: tx.clone(),
            }
            .encode(),
        ),
        (3, SwapResponse::Accepted(tx.clone()).encode()),
        (
            3,
            SwapResponse::refusal(tx.compute_txid(), &"underpaid").encode(),
        ),
        (
            3,
            SwapResponse::Unavailable {
                txid: tx.compute_txid(),
            }
            .encode(),
        ),
    ];
    for (n, (kind, bytes)) in messages.into_iter().enumerate() {
        let mut seed = vec![kind];
        seed.extend(bytes);
        std::fs::write(market.join(format!("message{n}")), seed)?;
    }

    // Scripts of gossip played on a node (`NodeScript`), each by its name.
    let scripts = root.join("node_inputs");
    std::fs::create_dir_all(&scripts)?;
    for (name, steps) in bitmesh_core::testkit::node_script_seeds() {
        std::fs::write(scripts.join(name), NodeScript::encode(&steps))?;
    }

    // A proposal the maker's check accepts (`SwapFixture`).
    let proposals = root.join("swap_proposals");
    std::fs::create_dir_all(&proposals)?;
    std::fs::write(
        proposals.join("accepted"),
        bitmesh_core::testkit::SwapFixture::new().proposal.encode(),
    )?;

    let desks = root.join("desk_record");
    std::fs::create_dir_all(&desks)?;
    std::fs::write(
        desks.join("maker"),
        bitmesh_core::testkit::desk_record_sample().encode(),
    )?;

    let wire = root.join("wire_message");
    std::fs::create_dir_all(&wire)?;
    for (n, message) in bitmesh_core::testkit::wire_samples().iter().enumerate() {
        std::fs::write(
            wire.join(format!("{n}-{}", message.name())),
            message.encode(),
        )?;
    }
    Ok(())
}
