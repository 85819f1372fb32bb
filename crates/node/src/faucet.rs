//! The node's own wallet and its faucet.
//!
//! The wallet is one BIP84 account from the seed in the node's store: its first receive address
//! takes the block rewards (unless `--pay-to` names another) and the faucet's asset, its first
//! change address the change. Its coins are read from the chain's UTXO set and the mempool, so
//! there is nothing to keep in step.
//!
//! The faucet pays a fixed amount of BTC and of a demo asset the node issues once it has a
//! spendable coin, to an address a wallet asks for through the mesh or over HTTP, within the
//! rate limits of [`RateLimiter`] (per address and per requester).

use std::fmt;

use bitcoin::address::NetworkUnchecked;
use bitcoin::{Address, Amount, FeeRate, ScriptBuf, Transaction, Txid};
use bitmesh_core::chain::assets::{AssetAmounts, AssetId};
use bitmesh_core::chain::mempool::{Mempool, MempoolError};
use bitmesh_core::chain::state::Chain;
use bitmesh_core::faucet::{
    AssetGrant, FaucetLimits, Payment, RateLimiter, RateRefusal, Requester,
};
use bitmesh_core::wallet::build::{
    build_issuance, build_payment, build_transfer, sign, BuildError, BuiltTx, IssueRequest,
    PaymentRequest,
};
use bitmesh_core::wallet::keys::{Account, Keychain, Purpose};
use bitmesh_core::wallet::tracker::{OwnedOutput, TxStatus};
use bitmesh_core::Network;

use crate::txindex::{script_hash, TxIndex};

/// The demo asset a faucet issues: 1,000,000,000.00 DEMO.
pub const DEMO_TICKER: &str = "DEMO";
pub const DEMO_DECIMALS: u8 = 2;
pub const DEMO_SUPPLY: u64 = 100_000_000_000;

/// What the node's wallet may read and do: the chain, the mempool, and submitting a
/// transaction to the mempool (and the mesh).
pub trait Ledger {
    fn chain(&self) -> &Chain;
    fn mempool(&self) -> &Mempool;
    /// Kept in step with the chain's active chain.
    fn index(&self) -> &TxIndex;
    fn submit(&mut self, tx: Transaction) -> Result<Txid, MempoolError>;
}

/// The node's own wallet: one BIP84 account.
#[derive(Debug, Clone)]
pub struct NodeWallet {
    account: Account,
    network: Network,
    /// Its receive and change scripts, derived once (coins are matched against them often).
    scripts: [ScriptBuf; 2],
}

impl NodeWallet {
    pub fn new(seed: &[u8; 32], network: Network) -> NodeWallet {
        let account =
            Account::for_bitmesh(seed, Purpose::Bip84, network).expect("a 32-byte seed derives");
        let scripts = [Keychain::External, Keychain::Internal]
            .map(|keychain| account.script_pubkey(keychain, 0));
        NodeWallet {
            account,
            network,
            scripts,
        }
    }

    /// Where block rewards and the faucet's asset go.
    pub fn address(&self) -> Address {
        self.account.address(Keychain::External, 0)
    }

    fn key_of(&self, script: &ScriptBuf) -> Option<Keychain> {
        if *script == self.scripts[0] {
            Some(Keychain::External)
        } else if *script == self.scripts[1] {
            Some(Keychain::Internal)
        } else {
            None
        }
    }

    /// The coins the wallet may spend now: confirmed ones (coinbase outputs once mature) that
    /// no mempool transaction spends, and the outputs of mempool transactions that spend only
    /// the wallet's own coins (nobody else can double-spend those).
    ///
    /// The confirmed ones are found through the transaction index's history of the wallet's two
    /// scripts, not by scanning the UTXO set: this runs at every new tip until the faucet's
    /// asset is issued, and a node syncing a long chain would otherwise scan it per block.
    pub fn coins(&self, ledger: &dyn Ledger) -> Vec<OwnedOutput> {
        let (chain, mempool, index) = (ledger.chain(), ledger.mempool(), ledger.index());
        let maturity = chain.params().coinbase_maturity;
        let next = chain.height() + 1;
        let mut coins = Vec::new();
        for (keychain, script) in [Keychain::External, Keychain::Internal]
            .into_iter()
            .zip(&self.scripts)
        {
            for txid in index.script_txs(&script_hash(script)) {
                let Some(tx) = index.place(txid).and_then(|place| {
                    chain
                        .block(&place.block)?
                        .txdata
                        .get(place.position as usize)
                }) else {
                    continue;
                };
                for (vout, output) in tx.output.iter().enumerate() {
                    let outpoint = bitcoin::OutPoint::new(*txid, vout as u32);
                    if output.script_pubkey != *script || mempool.spender(&outpoint).is_some() {
                        continue;
                    }
                    let Some(coin) = chain.utxo().get(&outpoint) else {
                        continue;
                    };
                    if coin.is_coinbase && next - coin.height < maturity {
                        continue;
                    }
                    coins.push(OwnedOutput {
                        outpoint,
                        value: coin.output.value,
                        script_pubkey: coin.output.script_pubkey.clone(),
                        assets: coin.assets.clone(),
                        status: TxStatus::Confirmed {
                            height: coin.height,
                        },
                        is_coinbase: coin.is_coinbase,
                        from_self: false,
                        key: (0, keychain, 0),
                    });
                }
            }
        }
        for (txid, entry) in mempool.entries() {
            let only_ours = entry.tx.input.iter().all(|input| {
                let spent = &input.previous_output;
                let script = match chain.utxo().get(spent) {
                    Some(coin) => Some(&coin.output.script_pubkey),
                    None => mempool
                        .get(&spent.txid)
                        .and_then(|parent| parent.tx.output.get(spent.vout as usize))
                        .map(|output| &output.script_pubkey),
                };
                script.is_some_and(|script| self.key_of(script).is_some())
            });
            if !only_ours {
                continue;
            }
            for (vout, output) in entry.tx.output.iter().enumerate() {
                let outpoint = bitcoin::OutPoint::new(*txid, vout as u32);
                let Some(keychain) = self.key_of(&output.script_pubkey) else {
                    continue;
                };
                if mempool.spender(&outpoint).is_some() {
                    continue;
                }
                coins.push(OwnedOutput {
                    outpoint,
                    value: output.value,
                    script_pubkey: output.script_pubkey.clone(),
                    assets: entry
                        .output_assets
                        .get(vout)
                        .cloned()
                        .unwrap_or_else(AssetAmounts::none),
                    status: TxStatus::Unconfirmed {
                        seen: entry.entered,
                    },
                    is_coinbase: false,
                    from_self: true,
                    key: (0, keychain, 0),
                });
            }
        }
        coins.sort_by_key(|coin| coin.outpoint);
        coins
    }

    /// Signs `built` and submits it.
    fn send(&self, ledger: &mut dyn Ledger, built: &BuiltTx) -> Result<Txid, MempoolError> {
        let mut aux = [0u8; 32];
        // Auxiliary randomness hardens BIP340 signatures; zeros are still correct ones.
        let _ = getrandom::getrandom(&mut aux);
        let tx = sign(built, std::slice::from_ref(&self.account), &aux);
        ledger.submit(tx)
    }
}

/// What the faucet pays and how often.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaucetConfig {
    /// BTC per payment.
    pub sats: u64,
    /// Demo asset base units per payment.
    pub units: u64,
    pub limits: FaucetLimits,
    pub fee_rate: FeeRate,
}

impl Default for FaucetConfig {
    /// 0.1 BTC and 1,000.00 DEMO, at 2 sat/vB.
    fn default() -> Self {
        FaucetConfig {
            sats: 10_000_000,
            units: 100_000,
            limits: FaucetLimits::default(),
            fee_rate: FeeRate::from_sat_per_vb(2).expect("small"),
        }
    }
}

/// Why the faucet does not pay.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaucetError {
    /// The text is not an address.
    NotAnAddress(String),
    /// An address of another network.
    WrongNetwork { address: String, network: Network },
    /// The rate limits say not now.
    Limited(RateRefusal),
    /// The faucet has no coins it can spend (yet).
    Empty {
        height: u32,
        maturity: u32,
        address: String,
    },
    /// The payment cannot be built (the faucet has too little).
    Build(BuildError),
    /// The mempool refused the payment.
    Rejected(MempoolError),
}

impl fmt::Display for FaucetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaucetError::NotAnAddress(text) => write!(f, "`{text}` is not an address"),
            FaucetError::WrongNetwork { address, network } => write!(
                f,
                "{address} is not an address of the {network} network (its addresses start \
                 with bcrt1)"
            ),
            FaucetError::Limited(refusal) => write!(f, "{refusal}"),
            FaucetError::Empty {
                height,
                maturity,
                address,
            } => write!(
                f,
                "the faucet has no spendable coins yet: mined coins can be spent {maturity} \
                 blocks after theirs (the chain is at height {height}); it is paid at {address}"
            ),
            FaucetError::Build(err) => write!(f, "the faucet cannot pay: {err}"),
            FaucetError::Rejected(err) => write!(f, "the faucet's payment was refused: {err}"),
        }
    }
}

impl std::error::Error for FaucetError {}

/// The faucet: the node's wallet, what it pays, and whom it paid recently.
#[derive(Debug)]
pub struct Faucet {
    wallet: NodeWallet,
    config: FaucetConfig,
    limiter: RateLimiter,
    /// The demo asset and the transaction that issued it.
    asset: Option<(AssetId, Txid)>,
}

impl Faucet {
    pub fn new(wallet: NodeWallet, config: FaucetConfig, asset: Option<(AssetId, Txid)>) -> Faucet {
        Faucet {
            wallet,
            config,
            limiter: RateLimiter::new(config.limits),
            asset,
        }
    }

    pub fn wallet(&self) -> &NodeWallet {
        &self.wallet
    }

    /// The demo asset and its issuance, as last issued (mined, pending or lost).
    pub fn issued(&self) -> Option<(AssetId, Txid)> {
        self.asset
    }

    /// The demo asset, once issued (its issuance mined or in the mempool).
    pub fn asset(&self, chain: &Chain, mempool: &Mempool) -> Option<AssetId> {
        let (asset, txid) = self.asset?;
        (chain.asset(&asset).is_some() || mempool.contains(&txid)).then_some(asset)
    }

    /// Issues the demo asset when the faucet has none (never issued, or its issuance was lost
    /// to a reorganisation or a restart) and has a coin to issue it with. Returns the new asset
    /// and its issuance, for the caller to store.
    pub fn issue_if_needed(&mut self, ledger: &mut dyn Ledger) -> Option<(AssetId, Txid)> {
        if self.asset(ledger.chain(), ledger.mempool()).is_some() {
            return None;
        }
        let coins = self.wallet.coins(ledger);
        let request = IssueRequest {
            ticker: DEMO_TICKER.into(),
            decimals: DEMO_DECIMALS,
            supply: DEMO_SUPPLY,
        };
        let accounts = std::slice::from_ref(&self.wallet.account);
        let built = build_issuance(
            &coins,
            &request,
            self.config.fee_rate,
            accounts,
            (0, 0),
            (0, 0),
        )
        .ok()?;
        let asset = AssetId::from_issuing_outpoint(&built.tx.input[0].previous_output);
        match self.wallet.send(ledger, &built) {
            Ok(txid) => {
                tracing::info!(%asset, %txid, "the faucet issued its demo asset");
                self.asset = Some((asset, txid));
                self.asset
            }
            Err(err) => {
                tracing::warn!("the faucet's asset issuance was refused: {err}");
                None
            }
        }
    }

    /// Pays `address` for `requester` at `now_millis`: BTC, then the demo asset's units when it
    /// has them (a failure there is logged and leaves the BTC paid).
    pub fn pay(
        &mut self,
        ledger: &mut dyn Ledger,
        now_millis: u64,
        address: &str,
        requester: Requester,
    ) -> Result<Payment, FaucetError> {
        let script = self.script_of(address)?;
        self.limiter
            .check(now_millis, address, requester)
            .map_err(FaucetError::Limited)?;
        let accounts = std::slice::from_ref(&self.wallet.account);
        let coins = self.wallet.coins(ledger);
        if coins.iter().all(|coin| !coin.assets.is_empty()) {
            return Err(FaucetError::Empty {
                height: ledger.chain().height(),
                maturity: ledger.chain().params().coinbase_maturity,
                address: self.wallet.address().to_string(),
            });
        }
        let request = PaymentRequest {
            recipients: vec![(script.clone(), Amount::from_sat(self.config.sats))],
            fee_rate: self.config.fee_rate,
        };
        let built =
            build_payment(&coins, &request, accounts, (0, 0)).map_err(FaucetError::Build)?;
        let txid = self
            .wallet
            .send(ledger, &built)
            .map_err(FaucetError::Rejected)?;
        self.limiter.record(now_millis, address, requester);
        let asset = self
            .asset(ledger.chain(), ledger.mempool())
            .and_then(|asset| {
                let coins = self.wallet.coins(ledger);
                let built = build_transfer(
                    &coins,
                    asset,
                    self.config.units,
                    script,
                    self.config.fee_rate,
                    accounts,
                    (0, 0),
                    (0, 0),
                );
                let sent = built.map_err(|err| err.to_string()).and_then(|built| {
                    self.wallet
                        .send(ledger, &built)
                        .map_err(|err| err.to_string())
                });
                match sent {
                    Ok(txid) => Some(AssetGrant {
                        asset,
                        units: self.config.units,
                        txid,
                    }),
                    Err(err) => {
                        tracing::warn!(%asset, "the faucet paid BTC but not its asset: {err}");
                        None
                    }
                }
            });
        tracing::info!(%txid, address, "the faucet paid");
        Ok(Payment {
            sats: self.config.sats,
            txid,
            asset,
        })
    }

    fn script_of(&self, address: &str) -> Result<ScriptBuf, FaucetError> {
        let parsed: Address<NetworkUnchecked> = address
            .trim()
            .parse()
            .map_err(|_| FaucetError::NotAnAddress(address.to_owned()))?;
        let network = self.wallet.network;
        parsed
            .require_network(network.address_network())
            .map(|checked| checked.script_pubkey())
            .map_err(|_| FaucetError::WrongNetwork {
                address: address.to_owned(),
                network,
            })
    }
}

#[cfg(test)]
mod tests {
    use bitmesh_core::chain::mempool::MempoolConfig;
    use bitmesh_core::chain::template::select_transactions;
    use bitmesh_core::testkit::{block_on, TestKey};
    use std::collections::BTreeMap;

    use super::*;

    const NOW_SECS: u32 = 2_000_000_000;
    const NOW_MILLIS: u64 = NOW_SECS as u64 * 1000;

    struct TestLedger {
        chain: Chain,
        mempool: Mempool,
        index: TxIndex,
    }

    impl Ledger for TestLedger {
        fn chain(&self) -> &Chain {
            &self.chain
        }
        fn mempool(&self) -> &Mempool {
            &self.mempool
        }
        fn index(&self) -> &TxIndex {
            &self.index
        }
        fn submit(&mut self, tx: Transaction) -> Result<Txid, MempoolError> {
            let txid = tx.compute_txid();
            self.mempool
                .accept(tx, &mut self.chain, u64::from(NOW_SECS))?;
            Ok(txid)
        }
    }

    impl TestLedger {
        fn new() -> TestLedger {
            TestLedger {
                chain: Chain::new(Network::Test),
                mempool: Mempool::new(MempoolConfig::default(), 1),
                index: TxIndex::default(),
            }
        }

        /// Mines `blocks` blocks paying `payout`, with the mempool's transactions in the first.
        fn mine(&mut self, blocks: u64, payout: &ScriptBuf) {
            for n in 0..blocks {
                let (txs, fees) = select_transactions(&self.mempool, bitcoin::Weight::MAX);
                let tip = self.chain.tip();
                let tag = u64::from(self.chain.height()) * 1000 + n;
                let block = block_on(&self.chain, tip, txs, fees.to_sat(), payout, tag);
                self.mempool.remove_for_block(&block);
                self.chain.accept_block(block, NOW_SECS).expect("valid");
                self.index.update(&self.chain);
            }
        }
    }

    fn faucet() -> Faucet {
        let wallet = NodeWallet::new(&[7; 32], Network::Test);
        Faucet::new(wallet, FaucetConfig::default(), None)
    }

    fn peer(n: u8) -> Requester {
        Requester::Peer(bitmesh_core::wire::PeerId([n; 32]))
    }

    fn received(ledger: &TestLedger, script: &ScriptBuf) -> (u64, BTreeMap<AssetId, u64>) {
        let outputs: Vec<_> = ledger
            .mempool
            .entries()
            .flat_map(|(_, entry)| {
                entry
                    .tx
                    .output
                    .iter()
                    .zip(entry.output_assets.iter())
                    .filter(|(output, _)| output.script_pubkey == *script)
                    .map(|(output, assets)| (output.value.to_sat(), assets.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let sats = outputs.iter().map(|(sats, _)| sats).sum();
        (
            sats,
            AssetAmounts::total(outputs.iter().map(|(_, assets)| assets)),
        )
    }

    #[test]
    fn an_empty_faucet_says_when_it_will_pay() {
        let mut ledger = TestLedger::new();
        let mut faucet = faucet();
        let payout = faucet.wallet().address().script_pubkey();
        ledger.mine(1, &payout);
        let to = TestKey::new(3).p2wpkh();
        let address = Address::from_script(&to, Network::Test.address_network()).unwrap();
        let err = faucet
            .pay(&mut ledger, NOW_MILLIS, &address.to_string(), peer(1))
            .unwrap_err();
        assert!(
            matches!(
                err,
                FaucetError::Empty {
                    height: 1,
                    maturity: 2,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("no spendable coins yet"), "{err}");
        assert_eq!(faucet.issue_if_needed(&mut ledger), None);
    }

    #[test]
    fn pays_btc_and_the_demo_asset_within_its_limits() {
        let mut ledger = TestLedger::new();
        let mut faucet = faucet();
        let payout = faucet.wallet().address().script_pubkey();
        ledger.mine(3, &payout);
        let (asset, issuance) = faucet.issue_if_needed(&mut ledger).expect("issued");
        assert!(ledger.mempool.contains(&issuance));
        assert_eq!(faucet.issue_if_needed(&mut ledger), None, "issued once");

        let to = TestKey::new(3).p2wpkh();
        let address = Address::from_script(&to, Network::Test.address_network())
            .unwrap()
            .to_string();
        let answer = faucet
            .pay(&mut ledger, NOW_MILLIS, &address, peer(1))
            .expect("paid");
        let Payment {
            sats,
            txid,
            asset: Some(grant),
        } = answer
        else {
            panic!("BTC and the asset: {answer:?}");
        };
        assert_eq!(
            (sats, grant.asset, grant.units),
            (10_000_000, asset, 100_000)
        );
        assert!(ledger.mempool.contains(&txid) && ledger.mempool.contains(&grant.txid));
        let (paid_sats, paid_assets) = received(&ledger, &to);
        // The asset's output carries the dust limit's sats besides the payment.
        assert_eq!(paid_sats, 10_000_000 + to.minimal_non_dust().to_sat());
        assert_eq!(paid_assets.get(&asset), Some(&100_000));

        // The same address again, from anyone: refused with the wait.
        let err = faucet
            .pay(&mut ledger, NOW_MILLIS + 1_000, &address, peer(2))
            .unwrap_err();
        assert!(
            matches!(err, FaucetError::Limited(RateRefusal::Address { .. })),
            "{err}"
        );

        // Mined, the payments hold; and the faucet pays others from its change.
        ledger.mine(1, &payout);
        assert_eq!(
            ledger.chain.asset(&asset).map(|issue| issue.supply),
            Some(DEMO_SUPPLY)
        );
        for n in 0..4u8 {
            let other = Address::from_script(
                &TestKey::new(10 + u64::from(n)).p2wpkh(),
                Network::Test.address_network(),
            )
            .unwrap()
            .to_string();
            let answer = faucet.pay(&mut ledger, NOW_MILLIS + 2_000, &other, peer(1));
            assert!(
                matches!(answer, Ok(Payment { asset: Some(_), .. })),
                "{answer:?}"
            );
        }
        let sixth =
            Address::from_script(&TestKey::new(30).p2wpkh(), Network::Test.address_network())
                .unwrap()
                .to_string();
        let err = faucet
            .pay(&mut ledger, NOW_MILLIS + 3_000, &sixth, peer(1))
            .unwrap_err();
        assert!(
            matches!(err, FaucetError::Limited(RateRefusal::Requester { .. })),
            "{err}"
        );
        ledger.mine(1, &payout);
        assert!(ledger.mempool.is_empty(), "every payment was mined");
    }

    #[test]
    fn bad_addresses_are_refused_in_words() {
        let mut ledger = TestLedger::new();
        let mut faucet = faucet();
        let err = faucet
            .pay(&mut ledger, NOW_MILLIS, "not an address", peer(1))
            .unwrap_err();
        assert_eq!(err.to_string(), "`not an address` is not an address");
        let mainnet = "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu";
        let err = faucet
            .pay(&mut ledger, NOW_MILLIS, mainnet, peer(1))
            .unwrap_err();
        assert!(matches!(err, FaucetError::WrongNetwork { .. }), "{err}");
        assert!(err.to_string().contains("start with bcrt1"), "{err}");
    }
}
