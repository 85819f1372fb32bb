//! The end-to-end harness: real `bitmesh-node` processes and real headless Chromium profiles,
//! driven over WebDriver (chromedriver), each started on a free loopback port and torn down when
//! dropped, even when a test fails.
//!
//! Run it through `scripts/test.sh`, which builds the page and the node first and runs the suite
//! inside a loopback-only network namespace. By hand:
//! `trunk build --release && cargo build -p bitmesh-node && cargo test -p bitmesh-e2e`.

mod browser;
mod node;
pub mod wallet;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

pub use browser::Browser;
pub use node::{wallet_cli, Node, NodeOptions};

/// What the harness's operations return on failure: a message saying what went wrong.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How long a single step (a process start, a page render) may take.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs a whole test with a bound on its time, so a hung browser fails the test, not the suite.
pub async fn within<T>(limit: Duration, test: impl Future<Output = Result<T>>) -> T {
    match tokio::time::timeout(limit, test).await {
        Ok(Ok(value)) => value,
        Ok(Err(err)) => panic!("{err}"),
        Err(_) => panic!("the test did not finish within {limit:?}"),
    }
}

/// The workspace's root directory.
pub fn workspace_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_path_buf()
}

/// The directory where test artifacts (screenshots) go: `target/e2e/`.
pub fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_dir().join("target"));
    target.join("e2e")
}

/// A free TCP port on 127.0.0.1 (free when asked; the caller binds it right away).
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
