//! `bitmesh-node wallet …`: a wallet in a vault file, the same format as the page's (ADR 0003:
//! the mnemonic's entropy and passphrase under Argon2id + AES-256-GCM). The password comes from
//! `BITMESH_WALLET_PASSWORD` when set (scripts), else from the first line of standard input.
//! Addresses and descriptors follow BIP84 (and BIP86 with `--taproot`) for a bitmesh network or
//! one of Bitcoin's, so a mnemonic can be checked against other wallets.

use std::collections::BTreeSet;
use std::fmt;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bitmesh_core::chain::assets::AssetId;
use bitmesh_core::wallet::build::{
    build_issuance, build_payment, sign, BuildError, BuiltTx, IssueRequest, PaymentRequest,
};
use bitmesh_core::wallet::device_sync::{device_name, short_id};
use bitmesh_core::wallet::keys::{Account, Keychain, Purpose};
use bitmesh_core::wallet::metadata::LabelTarget;
use bitmesh_core::wallet::mnemonic;
use bitmesh_core::wallet::session::build_unreserved;
use bitmesh_core::wallet::tracker::{OwnedOutput, TxStatus};
use bitmesh_core::wallet::vault::{KdfParams, Secret, Vault};
use clap::{Args, Subcommand, ValueEnum};

use crate::peer::now_millis;
use crate::wallet_devices::{kept_metadata, DeviceSession, CONFIRM_WAIT};

/// The networks addresses are derived for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WalletNetwork {
    /// bitmesh's local network (regtest-style addresses, coin type 1).
    Local,
    /// bitmesh's test network.
    Test,
    Bitcoin,
    Testnet,
    Signet,
    Regtest,
}

impl WalletNetwork {
    fn bitcoin(self) -> bitcoin::Network {
        match self {
            WalletNetwork::Local | WalletNetwork::Test => {
                bitmesh_core::Network::Local.address_network()
            }
            WalletNetwork::Bitcoin => bitcoin::Network::Bitcoin,
            WalletNetwork::Testnet => bitcoin::Network::Testnet,
            WalletNetwork::Signet => bitcoin::Network::Signet,
            WalletNetwork::Regtest => bitcoin::Network::Regtest,
        }
    }
}

#[derive(Debug, Args)]
pub struct WalletArgs {
    /// The vault file.
    #[arg(
        long,
        id = "wallet_file",
        default_value = "wallet.vault",
        global = true
    )]
    wallet: PathBuf,
    /// Where this device of the wallet keeps its mesh identity, the chain its peer followed
    /// and the metadata it syncs with the wallet's other devices (default: the vault's path
    /// with `.store` added).
    #[arg(long, id = "wallet_store", value_name = "DIR", global = true)]
    store: Option<PathBuf>,
    /// The network of the addresses shown.
    #[arg(
        long,
        id = "wallet_network",
        value_enum,
        default_value_t = WalletNetwork::Local,
        global = true
    )]
    network: WalletNetwork,
    #[command(subcommand)]
    command: WalletCommand,
}

#[derive(Debug, Subcommand)]
enum WalletCommand {
    /// Makes a new wallet: shows its words once, then keeps them encrypted in the vault file.
    Create {
        /// 12 or 24 words.
        #[arg(long, default_value_t = 12)]
        words: usize,
    },
    /// Restores a wallet from its words (read from standard input, one line, before the
    /// password) into the vault file.
    Restore,
    /// Shows a receive (or change) address.
    Address {
        #[arg(long, default_value_t = 0)]
        index: u32,
        #[arg(long)]
        change: bool,
        /// BIP86 (taproot) instead of BIP84.
        #[arg(long)]
        taproot: bool,
    },
    /// Shows the wallet's output descriptors (BIP84 and BIP86), with key origins and checksums.
    Descriptor,
    /// Shows the wallet's balance (BIP84 coins) as a node's Esplora-compatible API reports it.
    Balance {
        /// The node (its page address; the API is under /api).
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        node: String,
    },
    /// Pays an address from the wallet's BIP84 coins (never those carrying asset units),
    /// through a node's API; prints the transaction id.
    Send {
        /// The address to pay.
        #[arg(long)]
        to: String,
        /// The amount, in satoshis.
        #[arg(long)]
        amount: u64,
        /// The fee rate, in satoshis per virtual byte.
        #[arg(long, default_value_t = 1)]
        fee_rate: u64,
        #[command(flatten)]
        group: GroupArgs,
    },
    /// Issues an asset with a fixed supply to the wallet's next receive address, through a
    /// node's API; prints the asset id and the transaction id.
    Issue {
        /// 1 to 8 characters of A-Z and 0-9.
        #[arg(long)]
        ticker: String,
        /// The fixed supply, in base units.
        #[arg(long)]
        supply: u64,
        /// Decimal places of a base unit (display only).
        #[arg(long, default_value_t = 0)]
        decimals: u8,
        #[arg(long, default_value_t = 1)]
        fee_rate: u64,
        #[command(flatten)]
        group: GroupArgs,
    },
    /// Syncs with the wallet's other devices (browsers, other CLIs) through a node's mesh and
    /// shows them; their labels, names and reservations are kept in the store for later.
    Sync {
        /// Names this device (as the others show it).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        mesh: MeshArgs,
    },
    /// Labels a transaction on every device of the wallet (an empty text removes the label).
    Label {
        /// The transaction.
        #[arg(long)]
        tx: bitcoin::Txid,
        /// The label.
        #[arg(long)]
        text: String,
        #[command(flatten)]
        mesh: MeshArgs,
    },
    /// The labels this device knows, from its store (offline; `sync` brings the latest).
    Labels,
    /// This device's receive address: one no other device of the wallet shows and no payment
    /// used, kept from run to run until it is paid.
    Receive {
        #[command(flatten)]
        mesh: MeshArgs,
    },
}

/// How a command reaches the mesh and the wallet's other devices.
#[derive(Debug, Args)]
struct MeshArgs {
    /// The node (its page address; its API is under /api, its signaling at /signal).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    node: String,
    /// At most this many seconds to find the wallet's other devices and sync with them.
    #[arg(long, value_name = "SECONDS", default_value_t = 20)]
    wait: u64,
}

/// How a spend takes part in the wallet's device group.
#[derive(Debug, Args)]
struct GroupArgs {
    #[command(flatten)]
    mesh: MeshArgs,
    /// Spend without asking the wallet's other devices: their reservations are not seen and
    /// this spend's coins are not reserved (for a wallet no other device uses).
    #[arg(long)]
    alone: bool,
}

/// Unused addresses in a row after which a keychain is taken to end (BIP44's gap limit).
const GAP_LIMIT: u32 = 20;

impl WalletNetwork {
    /// The bitmesh network, for what runs on the mesh (device sync).
    fn mesh(self) -> Result<bitmesh_core::Network, WalletError> {
        match self {
            WalletNetwork::Local => Ok(bitmesh_core::Network::Local),
            WalletNetwork::Test => Ok(bitmesh_core::Network::Test),
            other => Err(fail(format!(
                "the wallet's devices sync on a bitmesh network (local or test), not {other:?}"
            ))),
        }
    }

    /// The genesis block hash of the chain the node must serve.
    fn genesis(self) -> bitcoin::BlockHash {
        match self {
            WalletNetwork::Local => bitmesh_core::Network::Local.genesis_hash(),
            WalletNetwork::Test => bitmesh_core::Network::Test.genesis_hash(),
            other => bitcoin::constants::genesis_block(other.bitcoin()).block_hash(),
        }
    }

    /// Blocks before a coinbase may be spent.
    fn maturity(self) -> u32 {
        match self {
            WalletNetwork::Local => bitmesh_core::Network::Local.params().coinbase_maturity,
            WalletNetwork::Test => bitmesh_core::Network::Test.params().coinbase_maturity,
            _ => 100,
        }
    }
}

/// What a node's API says of the wallet's BIP84 coins.
struct Scan {
    tip: u32,
    coins: Vec<OwnedOutput>,
    /// Coins left out because they carry asset units.
    with_assets: usize,
    /// The first change and receive indexes no transaction used.
    next_change: u32,
    next_receive: u32,
    /// The receive indexes some transaction used.
    used_receive: BTreeSet<u32>,
}

/// A node's API client, checked to serve `network`'s chain.
fn connect(
    node: &str,
    network: WalletNetwork,
) -> Result<esplora_client::BlockingClient, WalletError> {
    let api = format!("{}/api", node.trim_end_matches('/'));
    let client = esplora_client::Builder::new(&api).build_blocking();
    let genesis = client
        .get_block_hash(0)
        .map_err(|err| unreachable(node, err))?;
    if genesis != network.genesis() {
        return Err(fail(format!(
            "the node at {node} serves another chain (genesis {genesis}), not {network:?}'s"
        )));
    }
    Ok(client)
}

fn unreachable(node: &str, err: impl fmt::Display) -> WalletError {
    fail(format!("the node at {node} did not answer: {err}"))
}

/// The wallet's coins: each used address (receive and change, up to the gap limit) and its
/// unspent outputs with their asset units.
fn scan(account: &Account, network: WalletNetwork, node: &str) -> Result<Scan, WalletError> {
    let client = connect(node, network)?;
    let tip = client.get_height().map_err(|err| unreachable(node, err))?;
    let mut scan = Scan {
        tip,
        coins: Vec::new(),
        with_assets: 0,
        next_change: 0,
        next_receive: 0,
        used_receive: BTreeSet::new(),
    };
    for keychain in [Keychain::External, Keychain::Internal] {
        let (mut index, mut unused) = (0, 0);
        while unused < GAP_LIMIT {
            let address = account.address(keychain, index);
            index += 1;
            let txs = client
                .get_address_txs(&address, None)
                .map_err(|err| unreachable(node, err))?;
            if txs.is_empty() {
                if unused == 0 {
                    match keychain {
                        Keychain::Internal => scan.next_change = index - 1,
                        Keychain::External => scan.next_receive = index - 1,
                    }
                }
                unused += 1;
                continue;
            }
            unused = 0;
            if keychain == Keychain::External {
                scan.used_receive.insert(index - 1);
            }
            let url = format!("{}/api/address/{address}/utxo", node.trim_end_matches('/'));
            let response = minreq::get(&url)
                .with_timeout(30)
                .send()
                .map_err(|err| unreachable(node, err))?;
            let body = response.as_str().map_err(|err| unreachable(node, err))?;
            let utxos: serde_json::Value =
                serde_json::from_str(body).map_err(|err| unreachable(node, err))?;
            for utxo in utxos.as_array().into_iter().flatten() {
                if utxo["assets"]
                    .as_array()
                    .is_some_and(|assets| !assets.is_empty())
                {
                    scan.with_assets += 1;
                    continue;
                }
                let (Some(txid), Some(vout), Some(value)) = (
                    utxo["txid"].as_str().and_then(|txid| txid.parse().ok()),
                    utxo["vout"].as_u64(),
                    utxo["value"].as_u64(),
                ) else {
                    return Err(unreachable(node, "a malformed unspent output"));
                };
                let height = utxo["status"]["block_height"].as_u64().map(|h| h as u32);
                let status = match height {
                    Some(height) => TxStatus::Confirmed { height },
                    None => TxStatus::Unconfirmed { seen: 0 },
                };
                let young = height.is_some_and(|height| tip + 1 - height < network.maturity());
                let is_coinbase = young
                    && client
                        .get_tx_info(&txid)
                        .map_err(|err| unreachable(node, err))?
                        .is_some_and(|tx| tx.vin.iter().any(|input| input.is_coinbase));
                scan.coins.push(OwnedOutput {
                    outpoint: bitcoin::OutPoint::new(txid, vout as u32),
                    value: bitcoin::Amount::from_sat(value),
                    script_pubkey: address.script_pubkey(),
                    assets: Default::default(),
                    status,
                    is_coinbase,
                    // Unknown from the explorer's answer: unconfirmed coins stay unspent.
                    from_self: false,
                    key: (0, keychain, index - 1),
                });
            }
        }
    }
    Ok(scan)
}

fn parse_fee_rate(sat_per_vb: u64) -> Result<bitcoin::FeeRate, WalletError> {
    bitcoin::FeeRate::from_sat_per_vb(sat_per_vb)
        .ok_or_else(|| fail(format!("--fee-rate {sat_per_vb}: too high")))
}

/// The next unused receive and change indexes, as a spend uses them.
#[derive(Debug, Clone, Copy)]
struct NextKeys {
    receive: u32,
    change: u32,
}

/// A spend made and handed to the node.
struct Spent {
    account: Account,
    next: NextKeys,
    built: BuiltTx,
    tx: bitcoin::Transaction,
}

/// How long this device's reservation of a spend's coins holds (as the page's review).
const HOLD_MILLIS: u64 = 10 * 60_000;

/// Builds a spend with `build` from the wallet's spendable coins, signs it and hands it to the
/// node. Unless `--alone`, it does so as a device of the wallet: it syncs with the other
/// devices first, leaves the coins they reserved alone (and says so when they were needed),
/// takes the next indexes no device handed out, reserves its coins and waits (at most 5 s)
/// for the online devices to acknowledge the reservation before it signs.
fn spend(
    place: &Place,
    secret: &Secret,
    group: &GroupArgs,
    uses_receive: bool,
    build: impl Fn(&[OwnedOutput], &[Account], NextKeys) -> Result<BuiltTx, BuildError>,
) -> Result<Spent, WalletError> {
    let (network, node) = (place.network, group.mesh.node.as_str());
    let account = account(secret, Purpose::Bip84, network.bitcoin())?;
    let scan = scan(&account, network, node)?;
    let maturity = network.maturity();
    let coins: Vec<OwnedOutput> = scan
        .coins
        .iter()
        .filter(|coin| spendable(coin, scan.tip, maturity))
        .cloned()
        .collect();
    let accounts = [account];
    let chain_next = NextKeys {
        receive: scan.next_receive,
        change: scan.next_change,
    };
    if group.alone {
        let built = build(&coins, &accounts, chain_next).map_err(|err| fail(err.to_string()))?;
        let tx = broadcast(&built, &accounts, node, network)?;
        let [account] = accounts;
        return Ok(Spent {
            account,
            next: chain_next,
            built,
            tx,
        });
    }
    as_device(place, secret, node, async |session| {
        session.settle(Duration::from_secs(group.mesh.wait)).await;
        let device = session.device();
        let metadata = session.metadata();
        let next = NextKeys {
            receive: chain_next
                .receive
                .max(metadata.next_index(Purpose::Bip84, Keychain::External)),
            change: chain_next
                .change
                .max(metadata.next_index(Purpose::Bip84, Keychain::Internal)),
        };
        let now = now_millis();
        let built = build_unreserved(metadata, &coins, now, |coins| build(coins, &accounts, next))
            .map_err(|err| fail(err.to_string()))?;
        let coins = built.own_coins();
        let stamp = session
            .write(|metadata| {
                metadata.mark_used(Purpose::Bip84, Keychain::Internal, next.change + 1);
                if uses_receive {
                    metadata.mark_used(Purpose::Bip84, Keychain::External, next.receive + 1);
                }
                metadata.reserve_coins(&coins, device, now + HOLD_MILLIS, now)
            })
            .await;
        let silent = session.await_acknowledged(stamp, CONFIRM_WAIT).await;
        if !silent.is_empty() {
            eprintln!(
                "{} of the wallet's devices did not acknowledge the reservation within {} s: \
                 signing anyway",
                silent.len(),
                CONFIRM_WAIT.as_secs()
            );
        }
        let tx = match broadcast(&built, &accounts, node, network) {
            Ok(tx) => tx,
            Err(err) => {
                // Refused: the coins are free again, for this device and the others.
                session
                    .write(|metadata| metadata.reserve_coins(&coins, device, 0, now_millis()))
                    .await;
                session.settle(CONFIRM_WAIT).await;
                return Err(err);
            }
        };
        let [account] = accounts;
        Ok(Spent {
            account,
            next,
            built,
            tx,
        })
    })
}

/// Where this device of the wallet keeps its store, and its network.
struct Place {
    store: PathBuf,
    network: WalletNetwork,
}

impl Place {
    /// `--store`, else the vault's path with `.store` added.
    fn of(args: &WalletArgs) -> Place {
        let store = args.store.clone().unwrap_or_else(|| {
            let mut dir = args.wallet.clone().into_os_string();
            dir.push(".store");
            dir.into()
        });
        Place {
            store,
            network: args.network,
        }
    }
}

/// Runs `work` as a device of the wallet that joined the mesh through `node`; then, whatever
/// `work` returned (or on Ctrl-C), keeps the device's copy in its store and leaves the mesh.
fn as_device<T>(
    place: &Place,
    secret: &Secret,
    node: &str,
    work: impl AsyncFnOnce(&mut DeviceSession) -> Result<T, WalletError>,
) -> Result<T, WalletError> {
    let network = place.network.mesh()?;
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|err| fail(format!("cannot start the async runtime: {err}")))?;
    runtime.block_on(async {
        let mut session =
            DeviceSession::join(&place.store, network, node, &secret.seed()[..]).await?;
        let done = tokio::select! {
            done = work(&mut session) => done,
            _ = tokio::signal::ctrl_c() => Err(fail("interrupted")),
        };
        let left = session.leave().await;
        done.and_then(|value| left.map(|()| value))
    })
}

/// This device and the wallet's others, as `sync` shows them, a line each.
fn devices(session: &DeviceSession, settled: bool) -> Vec<String> {
    let metadata = session.metadata();
    let me = session.device();
    let mut lines = vec![format!(
        "this device {}: {}",
        short_id(&me),
        device_name(metadata, &me).unwrap_or_else(|| "(no name)".into())
    )];
    let now = now_millis();
    for row in session.rows() {
        let seen = match row.last_seen_millis {
            0 => "never seen".to_owned(),
            millis => format!("seen {} s ago", now.saturating_sub(millis) / 1000),
        };
        lines.push(format!(
            "device {}: {}, {}, {seen}",
            row.id,
            row.name.unwrap_or_else(|| "(no name)".into()),
            row.state.words()
        ));
    }
    lines.push(format!("labels: {}", metadata.labels().count()));
    if !settled {
        lines.push("not every device is in sync yet (see --wait)".into());
    }
    if let (refused @ 1.., Some(reason)) = session.refused() {
        lines.push(format!(
            "refused {refused} sync messages, the last: {reason}"
        ));
    }
    lines
}

/// Signs `built` and hands it to the node.
fn broadcast(
    built: &bitmesh_core::wallet::build::BuiltTx,
    accounts: &[Account],
    node: &str,
    network: WalletNetwork,
) -> Result<bitcoin::Transaction, WalletError> {
    let tx = sign(built, accounts, &random()?);
    connect(node, network)?
        .broadcast(&tx)
        .map_err(|err| fail(format!("the node refused the transaction: {err}")))?;
    Ok(tx)
}

/// Whether `coin` may be spent now: confirmed and mature, or this wallet's own change.
fn spendable(coin: &OwnedOutput, tip: u32, maturity: u32) -> bool {
    match coin.status {
        TxStatus::Confirmed { height } => !coin.is_coinbase || tip + 1 - height >= maturity,
        TxStatus::Unconfirmed { .. } => coin.key.1 == Keychain::Internal,
    }
}

/// Confirmed, unconfirmed and immature satoshis of the wallet's BIP84 coins.
fn balance(scan: &Scan, maturity: u32) -> (u64, u64, u64) {
    let (mut confirmed, mut unconfirmed, mut immature) = (0, 0, 0);
    for coin in &scan.coins {
        let sats = coin.value.to_sat();
        match coin.status {
            TxStatus::Unconfirmed { .. } => unconfirmed += sats,
            TxStatus::Confirmed { .. } if !spendable(coin, scan.tip, maturity) => immature += sats,
            TxStatus::Confirmed { .. } => confirmed += sats,
        }
    }
    (confirmed, unconfirmed, immature)
}

/// Why a wallet command failed.
#[derive(Debug)]
pub struct WalletError(String);

impl fmt::Display for WalletError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WalletError {}

pub(crate) fn fail(message: impl Into<String>) -> WalletError {
    WalletError(message.into())
}

/// Reads lines of standard input in order (the words, then the password).
struct Input<R> {
    lines: std::io::Lines<R>,
}

impl<R: BufRead> Input<R> {
    fn line(&mut self, what: &str) -> Result<String, WalletError> {
        eprint!("{what}: ");
        let _ = std::io::stderr().flush();
        match self.lines.next() {
            Some(Ok(line)) => Ok(line.trim_end_matches(['\r', '\n']).to_owned()),
            Some(Err(err)) => Err(fail(format!("cannot read {what}: {err}"))),
            None => Err(fail(format!("no {what} on standard input"))),
        }
    }

    fn password(&mut self) -> Result<String, WalletError> {
        match std::env::var("BITMESH_WALLET_PASSWORD") {
            Ok(password) => Ok(password),
            Err(_) => self.line("password"),
        }
    }
}

/// Runs a wallet command; what it shows goes to `out`.
pub fn run(args: WalletArgs, out: &mut impl Write) -> Result<(), WalletError> {
    let stdin = std::io::stdin();
    let mut input = Input {
        lines: stdin.lock().lines(),
    };
    let network = args.network.bitcoin();
    let place = Place::of(&args);
    let show = |out: &mut dyn Write, text: String| {
        writeln!(out, "{text}").map_err(|err| fail(format!("cannot write: {err}")))
    };
    match args.command {
        WalletCommand::Create { words } => {
            if words != 12 && words != 24 {
                return Err(fail(format!(
                    "--words {words}: a wallet has 12 or 24 words"
                )));
            }
            refuse_overwrite(&args.wallet)?;
            let entropy = random::<32>()?;
            let mnemonic = mnemonic::from_entropy(&entropy[..words / 12 * 16])
                .map_err(|err| fail(err.to_string()))?;
            let password = input.password()?;
            seal(&args.wallet, &Secret::new(&mnemonic, ""), &password)?;
            show(out, format!("{mnemonic}"))?;
            eprintln!(
                "Write these {words} words down and keep them safe: they are the only way to \
                 restore the wallet. The vault {} keeps them encrypted.",
                args.wallet.display()
            );
            Ok(())
        }
        WalletCommand::Restore => {
            refuse_overwrite(&args.wallet)?;
            let words = input.line("words")?;
            let mnemonic = mnemonic::parse(&words).map_err(|err| fail(err.to_string()))?;
            let password = input.password()?;
            seal(&args.wallet, &Secret::new(&mnemonic, ""), &password)?;
            eprintln!("restored into {}", args.wallet.display());
            Ok(())
        }
        WalletCommand::Address {
            index,
            change,
            taproot,
        } => {
            let secret = open(&args.wallet, &input.password()?)?;
            let purpose = if taproot {
                Purpose::Bip86
            } else {
                Purpose::Bip84
            };
            let account = account(&secret, purpose, network)?;
            let keychain = if change {
                Keychain::Internal
            } else {
                Keychain::External
            };
            show(out, account.address(keychain, index).to_string())
        }
        WalletCommand::Balance { node } => {
            let secret = open(&args.wallet, &input.password()?)?;
            let account = account(&secret, Purpose::Bip84, network)?;
            let scan = scan(&account, args.network, &node)?;
            let (confirmed, unconfirmed, immature) = balance(&scan, args.network.maturity());
            if scan.with_assets > 0 {
                eprintln!(
                    "{} coins carrying asset units are not counted in the BTC balance",
                    scan.with_assets
                );
            }
            let btc = |sats: u64| bitcoin::Amount::from_sat(sats).to_btc();
            show(
                out,
                format!("confirmed {:.8} BTC ({confirmed} sat)", btc(confirmed)),
            )?;
            show(
                out,
                format!(
                    "unconfirmed {:.8} BTC ({unconfirmed} sat)",
                    btc(unconfirmed)
                ),
            )?;
            show(
                out,
                format!("immature {:.8} BTC ({immature} sat)", btc(immature)),
            )
        }
        WalletCommand::Send {
            to,
            amount,
            fee_rate,
            group,
        } => {
            let recipient: bitcoin::Address<bitcoin::address::NetworkUnchecked> = to
                .parse()
                .map_err(|err| fail(format!("--to {to}: not an address ({err})")))?;
            let recipient = recipient
                .require_network(network)
                .map_err(|_| fail(format!("--to {to}: an address of another network")))?;
            let fee_rate = parse_fee_rate(fee_rate)?;
            let request = PaymentRequest {
                recipients: vec![(recipient.script_pubkey(), bitcoin::Amount::from_sat(amount))],
                fee_rate,
            };
            let secret = open(&args.wallet, &input.password()?)?;
            let spent = spend(&place, &secret, &group, false, |coins, accounts, next| {
                build_payment(coins, &request, accounts, (0, next.change))
            })
            .map_err(|err| fail(format!("cannot pay: {err}")))?;
            eprintln!(
                "paid {amount} sat to {to}, fee {} sat",
                spent.built.fee.to_sat()
            );
            show(out, spent.tx.compute_txid().to_string())
        }
        WalletCommand::Issue {
            ticker,
            supply,
            decimals,
            fee_rate,
            group,
        } => {
            let fee_rate = parse_fee_rate(fee_rate)?;
            let request = IssueRequest {
                ticker: ticker.clone(),
                decimals,
                supply,
            };
            let secret = open(&args.wallet, &input.password()?)?;
            let spent = spend(&place, &secret, &group, true, |coins, accounts, next| {
                build_issuance(
                    coins,
                    &request,
                    fee_rate,
                    accounts,
                    (0, next.receive),
                    (0, next.change),
                )
            })
            .map_err(|err| fail(format!("cannot issue: {err}")))?;
            let first = spent.built.tx.input[0].previous_output;
            eprintln!(
                "issued {supply} units of {ticker} to {}, fee {} sat",
                spent
                    .account
                    .address(Keychain::External, spent.next.receive),
                spent.built.fee.to_sat()
            );
            show(
                out,
                format!("asset {}", AssetId::from_issuing_outpoint(&first)),
            )?;
            show(out, format!("tx {}", spent.tx.compute_txid()))
        }
        WalletCommand::Sync { name, mesh } => {
            let secret = open(&args.wallet, &input.password()?)?;
            as_device(&place, &secret, &mesh.node, async |session| {
                if let Some(name) = name {
                    let device = session.device();
                    session
                        .write(|metadata| {
                            let stamp = metadata.next_stamp(device, now_millis());
                            metadata.set_device_name(device, name.trim().to_owned(), stamp);
                        })
                        .await;
                }
                let settled = session.settle(Duration::from_secs(mesh.wait)).await;
                Ok(devices(session, settled))
            })?
            .into_iter()
            .try_for_each(|line| show(out, line))
        }
        WalletCommand::Label { tx, text, mesh } => {
            let secret = open(&args.wallet, &input.password()?)?;
            as_device(&place, &secret, &mesh.node, async |session| {
                let limit = Duration::from_secs(mesh.wait);
                session.settle(limit).await;
                let device = session.device();
                let label = Some(text.trim().to_owned()).filter(|text| !text.is_empty());
                session
                    .write(|metadata| {
                        let stamp = metadata.next_stamp(device, now_millis());
                        metadata.set_label(LabelTarget::Transaction(tx), label, stamp);
                    })
                    .await;
                let settled = session.settle(limit).await;
                Ok(devices(session, settled))
            })?
            .into_iter()
            .try_for_each(|line| show(out, line))
        }
        WalletCommand::Labels => {
            let metadata = kept_metadata(&place.store, args.network.mesh()?)?;
            for (target, label) in metadata.labels() {
                let target = match target {
                    LabelTarget::Transaction(txid) => format!("tx {txid}"),
                    LabelTarget::Address(address) => format!("address {address}"),
                    LabelTarget::Output(outpoint) => format!("output {outpoint}"),
                };
                show(out, format!("{target}\t{label}"))?;
            }
            Ok(())
        }
        WalletCommand::Receive { mesh } => {
            let secret = open(&args.wallet, &input.password()?)?;
            let account = account(&secret, Purpose::Bip84, network)?;
            let scan = scan(&account, args.network, &mesh.node)?;
            let index = as_device(&place, &secret, &mesh.node, async |session| {
                let limit = Duration::from_secs(mesh.wait);
                session.settle(limit).await;
                let device = session.device();
                let index = session
                    .write(|metadata| {
                        metadata.mark_used(Purpose::Bip84, Keychain::External, scan.next_receive);
                        let paid = |index| scan.used_receive.contains(&index);
                        metadata.claim_receive_index(device, now_millis(), paid).0
                    })
                    .await;
                session.settle(limit).await;
                Ok(index)
            })?;
            show(out, account.address(Keychain::External, index).to_string())
        }
        WalletCommand::Descriptor => {
            let secret = open(&args.wallet, &input.password()?)?;
            for purpose in [Purpose::Bip84, Purpose::Bip86] {
                let account = account(&secret, purpose, network)?;
                show(out, account.descriptor())?;
            }
            Ok(())
        }
    }
}

fn random<const N: usize>() -> Result<[u8; N], WalletError> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(|err| fail(format!("no randomness: {err}")))?;
    Ok(bytes)
}

fn refuse_overwrite(path: &Path) -> Result<(), WalletError> {
    if path.exists() {
        return Err(fail(format!(
            "{} exists already: a wallet is never overwritten; choose another --wallet",
            path.display()
        )));
    }
    Ok(())
}

fn seal(path: &Path, secret: &Secret, password: &str) -> Result<(), WalletError> {
    if password.is_empty() {
        return Err(fail("an empty password protects nothing: choose one"));
    }
    let vault = Vault::seal(secret, password, KdfParams::default(), random()?, random()?)
        .map_err(|err| fail(err.to_string()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|err| fail(format!("cannot create {}: {err}", path.display())))?;
    file.write_all(vault.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|err| fail(format!("cannot write {}: {err}", path.display())))
}

/// The wallet's first account of `purpose` on `network`.
fn account(
    secret: &Secret,
    purpose: Purpose,
    network: bitcoin::Network,
) -> Result<Account, WalletError> {
    Account::from_seed(&secret.seed()[..], purpose, network, 0).map_err(|err| fail(err.to_string()))
}

fn open(path: &Path, password: &str) -> Result<Secret, WalletError> {
    let bytes = std::fs::read(path).map_err(|err| {
        fail(format!(
            "cannot read the wallet {}: {err} (make one with `wallet create` or `wallet restore`)",
            path.display()
        ))
    })?;
    let vault = Vault::from_bytes(bytes)
        .map_err(|err| fail(format!("{} is not a wallet vault: {err}", path.display())))?;
    vault.open(password).map_err(|err| fail(err.to_string()))
}
