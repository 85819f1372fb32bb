//! The node binary as a person starts it: serving, `/healthz`, and its refusals.

use std::net::TcpListener;

use bitmesh_core::Network;

mod common;

use common::{bundle, run_to_exit, RunningNode};

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
