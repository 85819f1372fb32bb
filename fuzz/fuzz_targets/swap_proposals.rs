//! A taker's swap proposal, as bytes, checked by the maker of an ask resting in its book
//! (`SwapFixture`: the order's coin holds the asset, the maker has another coin, the taker
//! one). Decoding and the check never panic, and a proposal the check accepts keeps the
//! order's promise, restated here on its own: a valid transaction that spends the order's coin
//! and no other of the maker's, pays the maker its price in satoshis on top of the coin's, and
//! gives back every unit it does not buy. `fuzz_seeds` writes the fixture's accepted proposal.
#![no_main]

use std::sync::OnceLock;

use bitmesh_core::chain::assets::allocate;
use bitmesh_core::chain::tx::check_transaction;
use bitmesh_core::market::swap::{check_proposal, SwapProposal};
use bitmesh_core::testkit::{SwapFixture, SWAP_NOW_MILLIS};
use libfuzzer_sys::fuzz_target;

fn fixture() -> &'static SwapFixture {
    static FIXTURE: OnceLock<SwapFixture> = OnceLock::new();
    FIXTURE.get_or_init(SwapFixture::new)
}

fuzz_target!(|data: &[u8]| {
    let Ok(proposal) = SwapProposal::decode(data) else {
        return;
    };
    let fixture = fixture();
    let view = fixture.view();
    let coin = |outpoint: &_| fixture.coin(outpoint);
    let Ok(checked) = check_proposal(
        &view,
        &proposal,
        coin,
        |outpoint| fixture.is_mine(outpoint),
        SWAP_NOW_MILLIS,
    ) else {
        return;
    };
    let tx = &proposal.tx;
    let order = view.order.order();
    check_transaction(tx).expect("an accepted swap is a valid transaction");
    let spent: Vec<_> = tx.input.iter().map(|txin| txin.previous_output).collect();
    for mine in &fixture.mine {
        assert_eq!(
            spent.contains(mine),
            order.funding.contains(mine),
            "the maker spends its order's coin and no other"
        );
    }
    let inputs: Vec<_> = spent
        .iter()
        .map(|outpoint| coin(outpoint).expect("known inputs").assets)
        .collect();
    let allocation = allocate(tx, &inputs.iter().collect::<Vec<_>>()).expect("asset rules kept");
    let (mut sats, mut units) = (0u64, 0u64);
    for (vout, txout) in tx.output.iter().enumerate() {
        if txout.script_pubkey == order.receive || txout.script_pubkey == order.change {
            sats += txout.value.to_sat();
            units += allocation.outputs[vout].amount(&order.market);
        }
    }
    let funding_sats: u64 = order
        .funding
        .iter()
        .map(|outpoint| coin(outpoint).expect("the funding").output.value.to_sat())
        .sum();
    let price = order.fill_value(checked.quantity).expect("an allowed fill");
    assert!(sats >= funding_sats + price, "the maker is paid its price");
    assert!(
        units >= SwapFixture::UNITS - checked.quantity,
        "the maker keeps what it does not sell"
    );
});
