//! The BDK round trip: `bdk_wallet` syncs through `bdk_esplora` against a running node's
//! Esplora-compatible API, sees the balance the chain says, builds and broadcasts a payment
//! through the API, and sees it mined.

mod common;

use bdk_esplora::esplora_client;
use bdk_esplora::EsploraExt;
use bdk_wallet::bitcoin::bip32::Xpriv;
use bdk_wallet::bitcoin::{Amount, Network};
use bdk_wallet::{KeychainKind, SignOptions, Wallet};
use common::{bundle, wait_until, RunningNode};

#[test]
fn bdk_syncs_and_pays_through_the_node() {
    let master = Xpriv::new_master(Network::Regtest, &[7; 32]).unwrap();
    let mut wallet = Wallet::create(
        format!("wpkh({master}/84h/1h/0h/0/*)"),
        format!("wpkh({master}/84h/1h/0h/1/*)"),
    )
    .network(Network::Regtest)
    // bitmesh's test network has its own genesis block, in Bitcoin's formats.
    .genesis_hash(bitmesh_core::Network::Test.genesis_hash())
    .create_wallet_no_persist()
    .expect("a wallet");
    let mining_address = wallet
        .peek_address(KeychainKind::External, 0)
        .address
        .to_string();

    let dist = bundle();
    let node = RunningNode::start(
        dist.path(),
        &[
            "--network",
            "test",
            "--mine",
            "1",
            "--pay-to",
            &mining_address,
        ],
    );
    let client =
        esplora_client::Builder::new(&format!("http://{}/api", node.host())).build_blocking();
    // Past BDK's coinbase maturity (100), so some rewards are spendable in its eyes too.
    wait_until("150 blocks", || client.get_height().unwrap_or(0) >= 150);

    let sync = |wallet: &mut Wallet| {
        let request = wallet.start_full_scan().build();
        let update = client.full_scan(request, 5, 2).expect("a full scan");
        wallet.apply_update(update).expect("applied");
    };
    sync(&mut wallet);
    let balance = wallet.balance();
    // What the chain says: the node's unspent outputs for the address, as of BDK's tip.
    let tip = wallet.latest_checkpoint().height();
    let utxos = client
        .get_address_utxos(
            &mining_address
                .parse::<bdk_wallet::bitcoin::Address<_>>()
                .unwrap()
                .assume_checked(),
        )
        .expect("utxos");
    let on_chain: u64 = utxos
        .iter()
        .filter(|utxo| utxo.status.block_height.is_some_and(|height| height <= tip))
        .map(|utxo| utxo.value.to_sat())
        .sum();
    assert_eq!(balance.total().to_sat(), on_chain, "{balance:?}");
    assert!(balance.confirmed > Amount::ZERO, "{balance:?}");

    // A payment, built and signed by BDK, broadcast through the node.
    let recipient = Wallet::create(
        format!(
            "wpkh({}/84h/1h/0h/0/*)",
            Xpriv::new_master(Network::Regtest, &[8; 32]).unwrap()
        ),
        format!(
            "wpkh({}/84h/1h/0h/1/*)",
            Xpriv::new_master(Network::Regtest, &[8; 32]).unwrap()
        ),
    )
    .network(Network::Regtest)
    .create_wallet_no_persist()
    .unwrap()
    .peek_address(KeychainKind::External, 0)
    .address;
    let mut builder = wallet.build_tx();
    builder.add_recipient(recipient.script_pubkey(), Amount::from_sat(1_234_567));
    let mut psbt = builder.finish().expect("a payment");
    // BDK 3 deprecates `Wallet::sign` for external signers; it still signs and finalizes in one
    // step with the descriptor's own keys, which is all this test needs.
    #[allow(deprecated)]
    let signed = wallet.sign(&mut psbt, SignOptions::default());
    assert!(signed.expect("signed"), "every input signed and finalized");
    let tx = psbt.extract_tx().expect("complete");
    client.broadcast(&tx).expect("accepted by the node");
    let txid = tx.compute_txid();
    wait_until("the payment mined", || {
        client
            .get_tx_status(&txid)
            .map(|status| status.confirmed)
            .unwrap_or(false)
    });
    let paid = client
        .get_address_utxos(&recipient)
        .expect("the recipient's coins");
    assert!(paid
        .iter()
        .any(|utxo| utxo.txid == txid && utxo.value.to_sat() == 1_234_567));
}
