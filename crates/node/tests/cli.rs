//! The node binary as a person starts it: serving, `/healthz`, and its refusals.

use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;

use bitmesh_core::Network;

mod common;

use common::{bundle, node, RunningNode, WAIT};

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
