//! Property: a desk's record reads back as written, whatever trades, settled and undone
//! fills and unanswered swaps it holds, and a desk made again from it gives the same record back (what a reload keeps is
//! what the next reload keeps).
#![cfg(not(target_arch = "wasm32"))]

use bitcoin::hashes::Hash;
use bitcoin::{OutPoint, Txid};
use bitmesh_core::chain::assets::AssetId;
use bitmesh_core::market::desk::{Desk, Trade, UnansweredTake, MAX_UNANSWERED};
use bitmesh_core::market::order::{OrderId, MAX_FUNDING};
use bitmesh_core::market::record::DeskRecord;
use bitmesh_core::market::swap::{SettledFill, UndoneFills};
use bitmesh_core::testkit::TestKey;
use bitmesh_core::wallet::metadata::DeviceId;
use proptest::prelude::*;

fn trade() -> impl Strategy<Value = Trade> {
    (
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        any::<[bool; 3]>(),
        any::<[u64; 4]>(),
    )
        .prop_map(|(txid, order, market, flags, numbers)| Trade {
            txid: Txid::from_byte_array(txid),
            order: OrderId(order),
            market: AssetId::from_byte_array(market),
            bought: flags[0],
            quantity: numbers[0],
            sats: numbers[1],
            price: numbers[2],
            as_maker: flags[1],
            millis: numbers[3],
            undone: flags[2],
        })
}

fn fill() -> impl Strategy<Value = SettledFill> {
    (any::<[u8; 32]>(), any::<u64>(), coins()).prop_map(|(txid, filled_before, coins)| {
        SettledFill {
            txid: Txid::from_byte_array(txid),
            filled_before,
            funding_before: coins,
        }
    })
}

fn coins() -> impl Strategy<Value = Vec<OutPoint>> {
    proptest::collection::vec((any::<[u8; 32]>(), any::<u32>()), 0..=MAX_FUNDING).prop_map(
        |coins| {
            coins
                .into_iter()
                .map(|(txid, vout)| OutPoint::new(Txid::from_byte_array(txid), vout))
                .collect()
        },
    )
}

fn undone() -> impl Strategy<Value = UndoneFills> {
    (
        proptest::collection::vec(fill(), 1..4),
        any::<u64>(),
        coins(),
    )
        .prop_map(|(fills, filled_after, funding_after)| UndoneFills {
            fills,
            filled_after,
            funding_after,
        })
}

fn record() -> impl Strategy<Value = DeskRecord> {
    (
        proptest::collection::vec(trade(), 0..40),
        proptest::collection::btree_map(
            any::<[u8; 32]>(),
            proptest::collection::vec(fill(), 1..4),
            0..8,
        ),
        proptest::collection::vec((trade(), any::<u64>()), 0..=MAX_UNANSWERED),
        proptest::collection::btree_map(any::<[u8; 32]>(), undone(), 0..4),
    )
        .prop_map(|(trades, settled, unanswered, undone)| DeskRecord {
            trades,
            settled: settled
                .into_iter()
                .map(|(order, fills)| (OrderId(order), fills))
                .collect(),
            unanswered: unanswered
                .into_iter()
                .map(|(trade, until_millis)| UnansweredTake {
                    trade,
                    until_millis,
                })
                .collect(),
            undone: undone
                .into_iter()
                .map(|(order, undone)| (OrderId(order), undone))
                .collect(),
        })
}

proptest! {
    #[test]
    fn a_record_reads_back_as_written_and_a_desk_made_from_it_keeps_it(record in record()) {
        let bytes = record.encode();
        prop_assert_eq!(DeskRecord::decode(&bytes), Ok(record.clone()));
        let mut desk = Desk::new(TestKey::new(1).keypair(), DeviceId([1; 16]));
        desk.restore(record.clone());
        prop_assert_eq!(desk.record(), record);
    }
}
