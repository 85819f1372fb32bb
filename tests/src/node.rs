//! Starting and stopping `bitmesh-node` processes.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use bitmesh_core::Network;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::{workspace_dir, Result, STEP_TIMEOUT};

/// How to start a node.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// The network the node serves.
    pub network: Network,
    /// The web bundle to serve; `dist/` of the workspace by default.
    pub dist: PathBuf,
    /// Another node's signaling WebSocket to join too (`--join`).
    pub join: Option<String>,
    /// Mining threads (`--mine`); none by default.
    pub mine: usize,
    /// The least milliseconds between two mined blocks (`--block-interval`); 0 by default.
    pub block_interval: u64,
    /// The data directory (`--data-dir`); a new temporary one by default.
    pub data_dir: Option<PathBuf>,
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self {
            network: Network::Local,
            dist: workspace_dir().join("dist"),
            join: None,
            mine: 0,
            block_interval: 0,
            data_dir: None,
        }
    }
}

impl NodeOptions {
    /// A node of bitmesh's test network (minimal difficulty), otherwise the defaults.
    pub fn test_network() -> Self {
        Self {
            network: Network::Test,
            ..Self::default()
        }
    }

    /// A test-network node that mines a block every two seconds (one thread), so a tab's
    /// chain grows at a steady pace while people use it.
    pub fn mining_test_network() -> Self {
        Self {
            mine: 1,
            block_interval: 2_000,
            ..Self::test_network()
        }
    }
}

/// A running `bitmesh-node`, killed when dropped.
#[derive(Debug)]
pub struct Node {
    child: Child,
    url: String,
    /// Its data directory when the harness made it, removed when it is dropped.
    _data: Option<tempfile::TempDir>,
}

impl Node {
    /// Starts a node on a free port and waits until it prints its URL.
    pub async fn start(options: NodeOptions) -> Result<Node> {
        if !options.dist.join("index.html").is_file() {
            return Err(format!(
                "no web bundle at {}: build it with `trunk build --release`",
                options.dist.display()
            )
            .into());
        }
        let binary = node_binary()?;
        let mut command = Command::new(&binary);
        command
            .args(["--port", "0", "--network", options.network.name(), "--dist"])
            .arg(&options.dist);
        if let Some(join) = &options.join {
            command.args(["--join", join]);
        }
        // Mining would take the cores the browsers need; tests that mine say so.
        command.args(["--mine", &options.mine.to_string()]);
        command.args(["--block-interval", &options.block_interval.to_string()]);
        let data = match &options.data_dir {
            Some(dir) => {
                command.arg("--data-dir").arg(dir);
                None
            }
            None => {
                let data = tempfile::Builder::new().prefix("bitmesh-node-").tempdir()?;
                command.arg("--data-dir").arg(data.path());
                Some(data)
            }
        };
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|err| format!("cannot start {}: {err}", binary.display()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or("the node's stdout is not piped")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(STEP_TIMEOUT, lines.next_line())
            .await
            .map_err(|_| "the node printed no URL in time")??
            .ok_or("the node exited before printing its URL")?;
        let url = first
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("unexpected first line from the node: {first}"))?
            .to_owned();
        // Keep draining stdout so the node never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Node {
            child,
            url,
            _data: data,
        })
    }

    /// The page's URL, e.g. `http://127.0.0.1:41234/`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `127.0.0.1:port`.
    fn host(&self) -> &str {
        self.url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or_default()
    }

    /// The node's page address without a path, as the wallet CLI's `--node` takes it.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// The node's signaling WebSocket, e.g. `ws://127.0.0.1:41234/signal`.
    pub fn signal_url(&self) -> String {
        format!("ws://{}/signal", self.host())
    }

    /// `GET path` of the node's HTTP API: the status code and the body.
    pub async fn get(&self, path: &str) -> Result<(u16, String)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let exchange = async {
            let host = self.host();
            let mut stream = tokio::net::TcpStream::connect(host).await?;
            let request =
                format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
            stream.write_all(request.as_bytes()).await?;
            let mut response = Vec::new();
            stream.read_to_end(&mut response).await?;
            Ok::<_, std::io::Error>(response)
        };
        let response = tokio::time::timeout(STEP_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("GET {path}: no answer in time"))??;
        let response = String::from_utf8_lossy(&response);
        let (head, body) = response
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("GET {path}: no HTTP response"))?;
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| format!("GET {path}: no status code"))?;
        Ok((status, body.to_owned()))
    }

    /// `GET path` answered 200 with JSON.
    pub async fn json(&self, path: &str) -> Result<serde_json::Value> {
        let (status, body) = self.get(path).await?;
        if status != 200 {
            return Err(format!("GET {path}: {status} {body}").into());
        }
        Ok(serde_json::from_str(&body)?)
    }

    /// Polls `GET path` until `ready` holds of its JSON (no event crosses the process
    /// boundary to await), for at most [`STEP_TIMEOUT`].
    pub async fn wait_for_json(
        &self,
        path: &str,
        what: &str,
        ready: impl Fn(&serde_json::Value) -> bool,
    ) -> Result<serde_json::Value> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let value = self.json(path).await?;
            if ready(&value) {
                return Ok(value);
            }
            if Instant::now() > deadline {
                return Err(format!("{what}: not within {STEP_TIMEOUT:?} ({value})").into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The height of the node's best chain.
    pub async fn height(&self) -> Result<u64> {
        let height = self.json("/api/blocks/tip/height").await?;
        height
            .as_u64()
            .ok_or_else(|| format!("the tip height is not a number: {height}").into())
    }

    /// Polls the node's tip every 10 ms until it reaches `height`, for at most `limit`;
    /// returns how long after the first block above genesis it got there (zero when it was
    /// already there), so a sync's pace leaves out the connection's setup.
    pub async fn wait_for_height(&self, height: u64, limit: Duration) -> Result<Duration> {
        let deadline = Instant::now() + limit;
        let mut first_block = None;
        loop {
            let now = Instant::now();
            let reached = self.height().await?;
            if reached > 0 && first_block.is_none() {
                first_block = Some(now);
            }
            if reached >= height {
                return Ok(first_block.map_or(Duration::ZERO, |first| now - first));
            }
            if now > deadline {
                return Err(format!(
                    "the node is at height {reached}, not {height}, after {limit:?}"
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Mines a chain of `height` blocks on `options`' data directory, as fast as one thread
    /// goes, within `limit`; then stops the node, leaving the chain for the node a test starts
    /// next on that directory.
    pub async fn mine_chain(options: &NodeOptions, height: u64, limit: Duration) -> Result<()> {
        let miner = Node::start(NodeOptions {
            mine: 1,
            ..options.clone()
        })
        .await?;
        miner.wait_for_height(height, limit).await?;
        miner.stop().await
    }

    /// Mines with one thread on `options`' data directory until the node's faucet has issued
    /// its asset and the issuance is confirmed, then stops the node: the directory then holds
    /// a funded faucet for the node a test starts next.
    async fn fund_faucet(options: &NodeOptions) -> Result<()> {
        let miner = Node::start(NodeOptions {
            mine: 1,
            ..options.clone()
        })
        .await?;
        let health = miner
            .wait_for_json("/healthz", "the faucet's asset", |health| {
                health["faucet"]["asset"].is_string()
            })
            .await?;
        let funding = health["faucet"]["address"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        miner
            .wait_for_json(
                &format!("/api/address/{funding}/utxo"),
                "the asset's issuance mined",
                |coins| {
                    coins.as_array().is_some_and(|coins| {
                        coins.iter().any(|coin| {
                            coin["status"]["confirmed"] == true && coin["assets"][0].is_object()
                        })
                    })
                },
            )
            .await?;
        miner.stop().await
    }

    /// Starts a node whose faucet is funded: a first, mining run on a new data directory mines
    /// the faucet's coins and its asset's issuance ([`Node::fund_faucet`]), then the node of
    /// `options` (its data directory that one, kept as long as the node) serves.
    pub async fn start_with_funded_faucet(options: NodeOptions) -> Result<Node> {
        let data = tempfile::Builder::new().prefix("bitmesh-node-").tempdir()?;
        let options = NodeOptions {
            data_dir: Some(data.path().to_path_buf()),
            ..options
        };
        Node::fund_faucet(&options).await?;
        let mut node = Node::start(options).await?;
        node._data = Some(data);
        Ok(node)
    }

    /// Stops the node and waits for it to exit.
    pub async fn stop(mut self) -> Result<()> {
        self.child.kill().await?;
        Ok(())
    }
}

/// The node binary `cargo test --workspace` built next to this test binary, or `$BITMESH_NODE`.
fn node_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("BITMESH_NODE") {
        return Ok(PathBuf::from(path));
    }
    // target/<profile>/deps/<test binary> -> target/<profile>/bitmesh-node
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .ok_or("cannot locate the target directory")?;
    let binary = profile_dir.join(format!("bitmesh-node{}", std::env::consts::EXE_SUFFIX));
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(format!(
            "{} is missing: build it with `cargo build -p bitmesh-node` (or run `cargo test --workspace`)",
            binary.display()
        )
        .into())
    }
}

/// Runs the wallet CLI of the node binary, `bitmesh-node wallet <args>`, with the
/// wallet's password and `stdin`, within two steps' time: (whether it succeeded, stdout,
/// stderr).
pub async fn wallet_cli(
    args: &[String],
    password: &str,
    stdin: &str,
) -> Result<(bool, String, String)> {
    use tokio::io::AsyncWriteExt;
    let mut command = Command::new(node_binary()?);
    command
        .arg("wallet")
        .args(args)
        .env("BITMESH_WALLET_PASSWORD", password)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn()?;
    let mut input = child.stdin.take().ok_or("stdin is not piped")?;
    input.write_all(stdin.as_bytes()).await?;
    drop(input);
    let output = tokio::time::timeout(STEP_TIMEOUT * 2, child.wait_with_output())
        .await
        .map_err(|_| format!("`wallet {}` did not end in time", args.join(" ")))??;
    Ok((
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}
