//! The node binary as a person starts it: serving, `/healthz`, and its refusals.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use bitmesh_core::Network;

const WAIT: Duration = Duration::from_secs(30);

/// A running node, killed when dropped.
struct RunningNode {
    child: Child,
    url: String,
}

impl RunningNode {
    fn start(dist: &Path, extra: &[&str]) -> RunningNode {
        let mut child = node()
            .args(["--port", "0", "--dist"])
            .arg(dist)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start bitmesh-node");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let line = rx.recv_timeout(WAIT).expect("the node prints its URL");
        let url = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_owned();
        RunningNode { child, url }
    }

    /// `GET path`, returning the status code and the body.
    fn get(&self, path: &str) -> (u16, String) {
        let host = self
            .url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .expect("a host in the URL");
        let mut stream = TcpStream::connect(host).expect("connect");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read response");
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .expect("status code");
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default();
        (status, body)
    }
}

impl Drop for RunningNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn node() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bitmesh-node"))
}

/// Runs the node to completion with a bound on time; it must exit by itself.
fn run_to_exit(args: &[&str]) -> Output {
    let child = node()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bitmesh-node");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(WAIT) {
        Ok(output) => output.expect("collect output"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("bitmesh-node did not exit within {WAIT:?}");
        }
    }
}

fn bundle() -> tempfile::TempDir {
    let dist = tempfile::tempdir().unwrap();
    std::fs::write(
        dist.path().join("index.html"),
        "<title>bitmesh test page</title>",
    )
    .unwrap();
    dist
}

#[test]
fn serves_the_page_and_healthz_on_a_free_port() {
    let dist = bundle();
    let node = RunningNode::start(dist.path(), &["--network", "test"]);
    assert!(node.url.starts_with("http://127.0.0.1:"), "{}", node.url);
    assert!(node.url.ends_with("/?network=test"), "{}", node.url);

    let (status, body) = node.get("/");
    assert_eq!(status, 200);
    assert!(body.contains("bitmesh test page"), "{body}");

    let (status, body) = node.get("/healthz");
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&body).expect("healthz is JSON");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["network"], "test");
    assert_eq!(health["genesis"], Network::Test.genesis_hash().to_string());

    let (status, _) = node.get("/no-such-file.js");
    assert_eq!(status, 404);
}

#[test]
fn a_missing_bundle_is_refused_with_the_command_that_builds_it() {
    let empty = tempfile::tempdir().unwrap();
    let dist = empty.path().to_str().unwrap();
    let output = run_to_exit(&["--port", "0", "--dist", dist]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("web bundle is missing"), "{stderr}");
    assert!(stderr.contains("scripts/run.sh"), "{stderr}");
}

#[test]
fn a_taken_port_is_refused_clearly() {
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port().to_string();
    let dist = bundle();
    let output = run_to_exit(&["--port", &port, "--dist", dist.path().to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("already in use"), "{stderr}");
    assert!(stderr.contains(&port), "{stderr}");
}

#[test]
fn an_unknown_network_is_refused() {
    let output = run_to_exit(&["--network", "mainnet"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown bitmesh network `mainnet`"),
        "{stderr}"
    );
}
