//! A full disk: a mining node whose data directory is on a tiny tmpfs (mounted in a mount
//! namespace of its own) says so once in its log, keeps running and mining on what it holds in
//! memory, writes everything once space comes back (the tmpfs grown), and a restart on the same
//! directory finds at least the chain the first run showed.

mod common;

use common::{bundle, exchange, wait_until, WAIT};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;

/// Mounts a 1 MiB tmpfs at `$1`, runs a mining node on it (printing its pid), grows the tmpfs
/// to 16 MiB once `$4` exists, and when the node has exited runs a second, non-mining one on
/// the same directory.
const SCRIPT: &str = r#"
mount -t tmpfs -o size=1m tmpfs "$1" || { echo "cannot mount a tmpfs"; exit 97; }
"$2" --port 0 --dist "$3" --network test --mine 1 --data-dir "$1/data" &
node=$!
echo "pid $node"
while [ ! -e "$4" ]; do sleep 0.05; done
mount -o remount,size=16m "$1" && echo "grown"
wait $node
echo "exited $?"
exec "$2" --port 0 --dist "$3" --network test --mine 0 --data-dir "$1/data"
"#;

/// `GET path` of the node at `url` as JSON.
fn get_json(url: &str, path: &str) -> serde_json::Value {
    let host = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .expect("a host");
    let (status, _, body) = exchange(host, "GET", path, b"");
    assert_eq!(status, 200, "GET {path}");
    serde_json::from_slice(&body).expect("JSON")
}

fn height(url: &str) -> u64 {
    get_json(url, "/healthz")["height"]
        .as_u64()
        .expect("a height")
}

/// The script's processes, killed however the test ends (the first node is the script's
/// child, not the test's).
struct Processes {
    script: std::process::Child,
    node: Option<String>,
}

impl Drop for Processes {
    fn drop(&mut self) {
        if let Some(pid) = &self.node {
            let _ = Command::new("kill")
                .args(["-9", pid])
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.script.kill();
        let _ = self.script.wait();
    }
}

#[test]
fn a_full_disk_is_reported_and_nothing_is_lost() {
    let dist = bundle();
    let work = tempfile::tempdir().unwrap();
    let mount = work.path().join("mount");
    std::fs::create_dir(&mount).unwrap();
    let grow = work.path().join("grow");
    let log = work.path().join("stderr");
    let script = Command::new("unshare")
        .args(["--mount", "--map-root-user", "sh", "-c", SCRIPT, "sh"])
        .arg(&mount)
        .arg(env!("CARGO_BIN_EXE_bitmesh-node"))
        .arg(dist.path())
        .arg(&grow)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("unshare (util-linux) runs");
    let mut processes = Processes { script, node: None };
    let stdout = processes.script.stdout.take().unwrap();
    let (lines, next) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let next_line = || next.recv_timeout(WAIT).expect("the script goes on");
    let stderr = || std::fs::read_to_string(&log).unwrap_or_default();
    let first_line = next_line();
    let pid = first_line
        .strip_prefix("pid ")
        .unwrap_or_else(|| panic!("{first_line} {}", stderr()))
        .to_owned();
    processes.node = Some(pid.clone());
    let url = next_line()
        .strip_prefix("listening on ")
        .expect("the node's URL")
        .to_owned();

    wait_until("the full disk in the log", || {
        stderr().contains("cannot write the database: the disk is full")
    });
    // Still mining and serving, on what it holds in memory; said once, not per block.
    let full_at = height(&url);
    wait_until("blocks mined on a full disk", || height(&url) > full_at + 5);
    assert_eq!(
        stderr().matches("the disk is full").count(),
        1,
        "{}",
        stderr()
    );
    assert!(stderr().contains("keeps running on what it holds in memory"));

    std::fs::write(&grow, b"").unwrap();
    assert_eq!(next_line(), "grown");
    wait_until("writes again", || {
        stderr().contains("the database is written again")
    });
    let shown = height(&url);
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    assert_eq!(next_line(), "exited 0", "{}", stderr());
    let url = next_line()
        .strip_prefix("listening on ")
        .expect("the restarted node's URL")
        .to_owned();
    let restored = height(&url);
    assert!(restored >= shown, "restored {restored} < shown {shown}");
}
