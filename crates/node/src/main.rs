//! bitmesh-node: the native binary built from the same core as the page.
//!
//! It serves the built page (`dist/`), `GET /healthz`, the signaling WebSocket (`/signal`) and
//! the HTTP API (Esplora-compatible, plus the faucet) on 127.0.0.1; runs its own WebRTC peer in
//! the mesh (signaling through its own server, and another node's with `--join`); keeps its
//! chain, peers, mempool and wallet in a redb store; mines to its own wallet; and pays wallets
//! that ask from a faucet. `bitmesh-node wallet ...` is a wallet CLI on the same core.

mod api;
mod esplora;
mod http;
mod peer;
mod signaling;
mod wallet_cli;
mod wallet_devices;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use bitmesh_core::Network;
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// The bitmesh native node.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Address to listen on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    addr: IpAddr,
    /// Port to listen on; 0 picks a free port and prints it.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// The built web bundle to serve (made by `scripts/run.sh` or `trunk build --release`).
    #[arg(long, default_value = "dist")]
    dist: PathBuf,
    /// The bitmesh network: local or test.
    #[arg(long, default_value_t = Network::Local)]
    network: Network,
    /// Join the mesh through another node's signaling server too (`ws://host:port/signal`),
    /// besides this node's own.
    #[arg(long, value_name = "URL")]
    join: Option<String>,
    /// A STUN or TURN server for the node's WebRTC peer (repeat for several); none by default,
    /// as on a local network host and mDNS candidates suffice.
    #[arg(long = "ice-server", value_name = "URL")]
    ice_servers: Vec<String>,
    /// Mining threads (default: one per core; 0 does not mine).
    #[arg(long, value_name = "THREADS")]
    mine: Option<usize>,
    /// The least time between two blocks this node mines, in milliseconds (default 0: as fast
    /// as it can; a test network's miner then runs ahead to the 2-hour future-time limit).
    #[arg(long, value_name = "MILLIS", default_value_t = 0)]
    block_interval: u64,
    /// Where the node keeps its chain and identity (default: $XDG_DATA_HOME/bitmesh/NETWORK,
    /// else ~/.local/share/bitmesh/NETWORK).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The address block rewards go to (default: the node's own wallet, which funds the faucet;
    /// its address is in the log and in /healthz).
    #[arg(long, value_name = "ADDRESS")]
    pay_to: Option<String>,
    /// Do not run the faucet (which otherwise pays wallets that ask, through the mesh or
    /// `POST /api/faucet`, from the node's wallet).
    #[arg(long)]
    no_faucet: bool,
    /// Log filter: error, warn, info, debug, trace, or a tracing directive. The WebRTC stack
    /// logs warnings only, unless the filter names it (e.g. `info,rtc=debug`).
    #[arg(long, default_value = "info")]
    log: String,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// A wallet in a vault file: create, restore, address, descriptor, balance, send, issue.
    Wallet(wallet_cli::WalletArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Wallet(args)) = cli.command {
        return match wallet_cli::run(args, &mut std::io::stdout()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: {err}");
                ExitCode::FAILURE
            }
        };
    }
    let filter = match EnvFilter::try_new(with_quiet_webrtc(&cli.log)) {
        Ok(filter) => filter,
        Err(err) => {
            eprintln!("error: invalid --log filter `{}`: {err}", cli.log);
            return ExitCode::FAILURE;
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let pay_to = match cli
        .pay_to
        .as_deref()
        .map(|address| payout(address, cli.network))
    {
        Some(Err(err)) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
        Some(Ok(script)) => Some(script),
        None => None,
    };
    let threads = cli.mine.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let config = http::Config {
        listen: SocketAddr::new(cli.addr, cli.port),
        dist: cli.dist,
        network: cli.network,
        join: cli.join,
        ice_servers: cli.ice_servers,
        mining_threads: threads,
        min_block_interval_millis: cli.block_interval,
        pay_to,
        faucet: !cli.no_faucet,
        data_dir: match cli.data_dir.or_else(|| default_data_dir(cli.network)) {
            Some(dir) => dir,
            None => {
                eprintln!("error: no home directory to keep data in: pass --data-dir");
                return ExitCode::FAILURE;
            }
        },
    };
    match runtime.block_on(http::serve(config, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `$XDG_DATA_HOME/bitmesh/<network>`, else `~/.local/share/bitmesh/<network>`.
fn default_data_dir(network: Network) -> Option<PathBuf> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share"))
        })?;
    Some(base.join("bitmesh").join(network.name()))
}

/// The script block rewards pay to `address` (of this network's address format).
fn payout(address: &str, network: Network) -> Result<bitcoin::ScriptBuf, String> {
    let parsed: bitcoin::Address<bitcoin::address::NetworkUnchecked> = address
        .parse()
        .map_err(|err| format!("--pay-to {address}: not an address ({err})"))?;
    let checked = parsed
        .require_network(network.address_network())
        .map_err(|_| {
            format!(
                "--pay-to {address}: not an address of the {network} network (its addresses \
                 start with bcrt1)"
            )
        })?;
    Ok(checked.script_pubkey())
}

/// `filter` with the WebRTC stack's crates at `warn` unless it names them: their `info` is a
/// line per ICE and DTLS step of every connection.
fn with_quiet_webrtc(filter: &str) -> String {
    const CRATES: [&str; 6] = [
        "rtc",
        "rtc_ice",
        "rtc_dtls",
        "rtc_sctp",
        "rtc_datachannel",
        "webrtc",
    ];
    let mut filter = filter.to_owned();
    for name in CRATES {
        let named = filter
            .split(',')
            .any(|directive| directive.split('=').next() == Some(name));
        if !named {
            filter.push_str(&format!(",{name}=warn"));
        }
    }
    filter
}

/// Resolves on Ctrl-C or SIGTERM, so the node closes its listener cleanly.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutting down");
}
