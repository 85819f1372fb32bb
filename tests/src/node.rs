//! Starting and stopping `bitmesh-node` processes.

use std::path::PathBuf;
use std::process::Stdio;

use bitmesh_core::Network;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

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
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self {
            network: Network::Local,
            dist: workspace_dir().join("dist"),
            join: None,
            mine: 0,
        }
    }
}

/// A running `bitmesh-node`, killed when dropped.
#[derive(Debug)]
pub struct Node {
    child: Child,
    url: String,
    /// Its data directory, removed when it is dropped.
    _data: tempfile::TempDir,
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
        let data = tempfile::Builder::new().prefix("bitmesh-node-").tempdir()?;
        command.arg("--data-dir").arg(data.path());
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

    /// The node's signaling WebSocket, e.g. `ws://127.0.0.1:41234/signal`.
    pub fn signal_url(&self) -> String {
        let host = self
            .url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or_default();
        format!("ws://{host}/signal")
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
