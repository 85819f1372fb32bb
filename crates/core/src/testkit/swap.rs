//! A maker's ask resting in a book, the coins around it, and a taker's proposal that keeps the
//! order's promise: the fuzz target `swap_proposals` mutates the proposal and runs the maker's
//! check on it, and `tests/market_swap.rs` checks that the proposal is accepted as it is.
//! Also a maker desk's record after such a swap left the chain, for `market::record`.

use std::collections::HashMap;

use bitcoin::hashes::Hash;
use bitcoin::{Amount, OutPoint, Transaction, TxOut, Txid};

use super::{pay, spend, TestKey};
use crate::chain::assets::{AssetAmounts, AssetId, AssetRecord, Transfer};
use crate::chain::utxo::Coin;
use crate::market::book::{Book, BookLimits, OrderView};
use crate::market::desk::{Trade, UnansweredTake};
use crate::market::order::{Order, OrderId, Side, SignedOrder};
use crate::market::record::DeskRecord;
use crate::market::swap::{SettledFill, SwapProposal, UndoneFills};

/// The fixture's clock: the order is open.
pub const SWAP_NOW_MILLIS: u64 = 1_800_000_000_000;

/// See the module's documentation.
pub struct SwapFixture {
    pub book: Book,
    pub order: OrderId,
    /// Every coin the maker's chain knows: the order's funding (the asset's units), another coin
    /// of the maker's, the taker's coin.
    pub coins: HashMap<OutPoint, Coin>,
    /// The maker's coins.
    pub mine: Vec<OutPoint>,
    pub proposal: SwapProposal,
}

impl SwapFixture {
    /// Units of the asset in the order's coin, offered in full.
    pub const UNITS: u64 = 1_000_000_000;
    /// Units the proposal takes.
    pub const QUANTITY: u64 = 200_000_000;

    pub fn new() -> SwapFixture {
        let (maker, taker) = (TestKey::new(81), TestKey::new(82));
        let asset = AssetId::from_byte_array([0x60; 32]);
        let outpoint = |n: u8| OutPoint::new(Txid::from_byte_array([n; 32]), 0);
        let (funding, other, taker_coin) = (outpoint(1), outpoint(2), outpoint(3));
        let coin = |output: TxOut, units: u64| Coin {
            output,
            height: 1,
            is_coinbase: false,
            assets: AssetAmounts::from_units(
                [(asset, units)]
                    .into_iter()
                    .filter(|(_, units)| *units > 0)
                    .collect(),
            ),
        };
        let coins = HashMap::from([
            (funding, coin(pay(&maker.p2wpkh(), 10_000), Self::UNITS)),
            (other, coin(pay(&maker.p2wpkh(), 50_000_000), 0)),
            (taker_coin, coin(pay(&taker.p2wpkh(), 100_000_000), 0)),
        ]);
        let order = Order {
            market: asset,
            side: Side::Ask,
            price: 50_000,
            amount: Self::UNITS,
            created_millis: SWAP_NOW_MILLIS,
            expiry_millis: SWAP_NOW_MILLIS + 3_600_000,
            nonce: 1,
            maker: maker.xonly(),
            funding: vec![funding],
            receive: maker.p2tr(),
            change: maker.p2wpkh(),
        };
        let sats = order
            .fill_value(Self::QUANTITY)
            .expect("a fill the order allows");
        let record = AssetRecord::Transfer(vec![Transfer {
            asset,
            allocations: vec![(1, Self::UNITS - Self::QUANTITY), (2, Self::QUANTITY)],
        }]);
        let fee = 2_000;
        let tx: Transaction = spend(
            &[funding, taker_coin],
            vec![
                pay(&order.receive, sats),
                pay(&order.change, 10_000),
                pay(&taker.p2tr(), 330),
                pay(&taker.p2wpkh(), 100_000_000 - sats - 330 - fee),
                TxOut {
                    value: Amount::ZERO,
                    script_pubkey: record.to_script(),
                },
            ],
        );
        let signed: SignedOrder = maker.sign_order(order, &maker);
        let id = signed.order.id();
        let mut book = Book::new(BookLimits::default(), 1);
        let verified = signed
            .verify(&bitcoin::secp256k1::Secp256k1::verification_only())
            .expect("a valid order");
        book.insert_order(verified).expect("room in the book");
        SwapFixture {
            book,
            order: id,
            coins,
            mine: vec![funding, other],
            proposal: SwapProposal {
                order: id,
                sequence: 0,
                quantity: Self::QUANTITY,
                tx,
            },
        }
    }

    /// The order as the maker's book has it.
    pub fn view(&self) -> OrderView<'_> {
        self.book.get(&self.order).expect("the order rests")
    }

    /// The coin at `outpoint`, as the maker's chain has it.
    pub fn coin(&self, outpoint: &OutPoint) -> Option<Coin> {
        self.coins.get(outpoint).cloned()
    }

    /// Whether `outpoint` is the maker's.
    pub fn is_mine(&self, outpoint: &OutPoint) -> bool {
        self.mine.contains(outpoint)
    }
}

impl Default for SwapFixture {
    fn default() -> SwapFixture {
        SwapFixture::new()
    }
}

/// A desk's record: one trade as maker, undone, the fill it could reopen, a swap of its own
/// that its maker has not answered, and an undone fill of another order (the seed of the fuzz
/// target `desk_record`).
pub fn desk_record_sample() -> DeskRecord {
    let txid = Txid::from_byte_array([1; 32]);
    let order = OrderId([2; 32]);
    let sale = Trade {
        txid,
        order,
        market: AssetId::from_byte_array([3; 32]),
        bought: false,
        quantity: 200_000_000,
        sats: 100_000,
        price: 50_000,
        as_maker: true,
        millis: SWAP_NOW_MILLIS,
        undone: true,
    };
    let purchase = Trade {
        txid: Txid::from_byte_array([6; 32]),
        order: OrderId([7; 32]),
        bought: true,
        as_maker: false,
        undone: false,
        ..sale.clone()
    };
    DeskRecord {
        trades: vec![sale],
        settled: vec![(
            order,
            vec![SettledFill {
                txid,
                filled_before: 0,
                funding_before: vec![OutPoint::new(Txid::from_byte_array([5; 32]), 1)],
            }],
        )],
        unanswered: vec![UnansweredTake {
            trade: purchase,
            until_millis: SWAP_NOW_MILLIS + 3_600_000,
        }],
        undone: vec![(
            OrderId([8; 32]),
            UndoneFills {
                fills: vec![SettledFill {
                    txid: Txid::from_byte_array([9; 32]),
                    filled_before: 100,
                    funding_before: vec![OutPoint::new(Txid::from_byte_array([10; 32]), 0)],
                }],
                filled_after: 300,
                funding_after: vec![OutPoint::new(Txid::from_byte_array([9; 32]), 2)],
            },
        )],
    }
}
