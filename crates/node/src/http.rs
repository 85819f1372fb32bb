//! The HTTP side of the node: the page from `dist/`, `GET /healthz` and the signaling
//! WebSocket at `/signal`; it starts the node's own peer.

use std::fmt;
use std::future::Future;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use bitcoin::hex::DisplayHex;
use bitmesh_core::Network;
use bitmesh_mesh::native::NativeConfig;
use bitmesh_mesh::signaling::ServerConfig;
use bitmesh_mesh::transport::TransportConfig;
use serde::Serialize;
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

use crate::peer::{self, Mining, PeerHandle, PeerStatus, Restored, SignalSource};
use crate::signaling::{self, Signaling};
use bitmesh_node::faucet::{Faucet, FaucetConfig, NodeWallet};
use bitmesh_node::store::{Store, StoreError};

/// What the HTTP server needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// The built web bundle.
    pub dist: PathBuf,
    /// The network this node serves.
    pub network: Network,
    /// Another node's signaling WebSocket for this node's peer (besides its own).
    pub join: Option<String>,
    /// STUN/TURN servers for the node's peer (none on a local network).
    pub ice_servers: Vec<String>,
    /// Mining threads (0: none).
    pub mining_threads: usize,
    /// The least time between two mined blocks, in milliseconds.
    pub min_block_interval_millis: u64,
    /// Where block rewards go (default: the node's own wallet).
    pub pay_to: Option<bitcoin::ScriptBuf>,
    /// Whether the node runs the faucet.
    pub faucet: bool,
    /// Where the node keeps its chain and identity.
    pub data_dir: PathBuf,
}

/// Why the server could not start or stopped with an error.
#[derive(Debug)]
pub struct ServeError(ServeErrorKind);

#[derive(Debug)]
enum ServeErrorKind {
    MissingBundle(PathBuf),
    PortInUse(SocketAddr),
    Bind(SocketAddr, io::Error),
    Serve(io::Error),
    Store(StoreError),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            ServeErrorKind::MissingBundle(dist) => write!(
                f,
                "the web bundle is missing: {} has no index.html. Build it with `scripts/run.sh` \
                 (or `trunk build --release`), or point --dist at a built bundle",
                dist.display()
            ),
            ServeErrorKind::PortInUse(addr) => write!(
                f,
                "cannot listen on {addr}: the port is already in use (is another bitmesh-node \
                 running?). Choose another with --port, or --port 0 for any free port"
            ),
            ServeErrorKind::Bind(addr, err) => write!(f, "cannot listen on {addr}: {err}"),
            ServeErrorKind::Serve(err) => write!(f, "the HTTP server failed: {err}"),
            ServeErrorKind::Store(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for ServeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0 {
            ServeErrorKind::Bind(_, err) | ServeErrorKind::Serve(err) => Some(err),
            ServeErrorKind::Store(err) => Some(err),
            ServeErrorKind::MissingBundle(_) | ServeErrorKind::PortInUse(_) => None,
        }
    }
}

/// Serves until `shutdown` resolves. Prints `listening on URL` on stdout once the listener is
/// bound, so whoever started the node (a person, a test) learns the port. The URL names the
/// network when it is not the default one, because the page reads it from its query string.
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    if !config.dist.join("index.html").is_file() {
        return Err(ServeError(ServeErrorKind::MissingBundle(config.dist)));
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|err| match err.kind() {
            io::ErrorKind::AddrInUse => ServeError(ServeErrorKind::PortInUse(config.listen)),
            _ => ServeError(ServeErrorKind::Bind(config.listen, err)),
        })?;
    let local = listener
        .local_addr()
        .map_err(|err| ServeError(ServeErrorKind::Bind(config.listen, err)))?;
    // Opened once the port is ours: a refused start leaves the data directory untouched.
    let store_error = |err| ServeError(ServeErrorKind::Store(err));
    let store = Store::open(&config.data_dir, config.network).map_err(store_error)?;
    let key = store.identity().map_err(store_error)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as u32);
    let chain = store.load_chain(config.network, now).map_err(store_error)?;
    let peers = store.peers().map_err(store_error)?;
    let mempool = store.mempool().map_err(store_error)?;
    let wallet = NodeWallet::new(&store.wallet_seed().map_err(store_error)?, config.network);
    tracing::info!(
        data_dir = %config.data_dir.display(),
        height = chain.height(),
        known_peers = peers.len(),
        "store opened"
    );
    let payout = match config.pay_to {
        Some(script) => script,
        None => {
            if config.mining_threads > 0 {
                tracing::info!(address = %wallet.address(), "mining to the node's wallet");
            }
            wallet.address().script_pubkey()
        }
    };
    let faucet = config.faucet.then(|| {
        let asset = store.faucet_asset().map_err(store_error)?;
        Ok(Faucet::new(wallet, FaucetConfig::default(), asset))
    });
    let faucet = faucet.transpose()?;
    let restored = Restored {
        key,
        chain,
        peers,
        mempool,
        faucet,
        store,
    };

    let signaling = Signaling::start(ServerConfig::new(config.network.name()));
    let status = Arc::new(PeerStatus::default());
    // The node's peer registers with its own server, and with the one it joins.
    let mut sources = vec![SignalSource::Local(signaling.clone())];
    sources.extend(config.join.map(SignalSource::Remote));
    // The peer's host candidates are on the address the node listens on.
    let native = NativeConfig {
        transport: TransportConfig {
            ice_servers: config.ice_servers,
            ..TransportConfig::default()
        },
        bind: config.listen.ip(),
    };
    if config.mining_threads > 0 {
        tracing::info!(threads = config.mining_threads, "mining");
    }
    let mining = Mining {
        threads: config.mining_threads,
        payout,
        min_interval_millis: config.min_block_interval_millis,
    };
    let peer = peer::start(
        config.network,
        restored,
        sources,
        native,
        mining,
        status.clone(),
    );
    let app = router(config.network, config.dist, signaling, status, peer.clone());
    tracing::info!(network = %config.network, %local, "serving");
    println!("listening on {}", page_url(local, config.network));
    let _ = io::stdout().flush();

    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    // The chain is saved as it changes; the known peers and the mempool now.
    peer.persist().await;
    peer.leave().await;
    served.map_err(|err| ServeError(ServeErrorKind::Serve(err)))
}

/// The address of the page for `network` served at `local`.
fn page_url(local: SocketAddr, network: Network) -> String {
    match network {
        Network::Local => format!("http://{local}/"),
        other => format!("http://{local}/?network={other}"),
    }
}

fn router(
    network: Network,
    dist: PathBuf,
    signaling: Signaling,
    status: Arc<PeerStatus>,
    peer: PeerHandle,
) -> Router {
    let peer_for_api = peer.clone();
    let faucet_peer = peer_for_api.clone();
    let health = move || {
        let status = status.clone();
        let peer = faucet_peer.clone();
        async move {
            let faucet = peer.query(|view| view.faucet_status()).await.flatten();
            Json(Health {
                status: "ok",
                network: network.name(),
                genesis: network.genesis_hash().to_string(),
                version: env!("CARGO_PKG_VERSION"),
                peer: status.id.get().map(|id| id.0.to_lower_hex_string()),
                neighbours: status.neighbours.load(Ordering::Relaxed),
                height: status.height.load(Ordering::Relaxed),
                mined: status.mined.load(Ordering::Relaxed),
                hashes: status.hashes.load(Ordering::Relaxed),
                faucet: faucet.map(|(address, asset)| FaucetHealth {
                    address,
                    asset: asset.map(|asset| asset.to_string()),
                }),
            })
        }
    };
    Router::new()
        .route("/healthz", get(health))
        .merge(crate::api::router(peer.clone()))
        .merge(crate::esplora::router(peer_for_api, network))
        .route("/signal", get(signaling::upgrade).with_state(signaling))
        .fallback_service(ServeDir::new(dist))
        .layer(TraceLayer::new_for_http())
}

/// The body of `GET /healthz`.
#[derive(Debug, Clone, Serialize)]
struct Health {
    status: &'static str,
    network: &'static str,
    genesis: String,
    version: &'static str,
    /// The node's own peer id, and its neighbours in the mesh.
    peer: Option<String>,
    neighbours: usize,
    /// The active chain's height; blocks this node mined and header hashes it tried.
    height: u32,
    mined: u64,
    hashes: u64,
    /// The faucet, when the node runs one: the address that funds it and its demo asset.
    faucet: Option<FaucetHealth>,
}

#[derive(Debug, Clone, Serialize)]
struct FaucetHealth {
    address: String,
    asset: Option<String>,
}
