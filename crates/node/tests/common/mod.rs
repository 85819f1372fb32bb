//! A node binary started for a test: its URL, a GET, and a test page bundle.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long anything in these tests may wait.
pub const WAIT: Duration = Duration::from_secs(30);

/// A running node, killed when dropped.
pub struct RunningNode {
    child: Child,
    pub url: String,
    /// Its data directory, unless the test gave one.
    _data: Option<tempfile::TempDir>,
}

impl RunningNode {
    /// Starts a node serving `dist` with `extra` arguments; it does not mine unless they say.
    pub fn start(dist: &Path, extra: &[&str]) -> RunningNode {
        let mut command = node();
        command
            .args(["--port", "0", "--dist"])
            .arg(dist)
            .args(extra);
        if !extra.contains(&"--mine") {
            command.args(["--mine", "0"]);
        }
        let data =
            (!extra.contains(&"--data-dir")).then(|| tempfile::tempdir().expect("a tempdir"));
        if let Some(data) = &data {
            command.arg("--data-dir").arg(data.path());
        }
        // BITMESH_TEST_LOGS=dir keeps each node's debug log there, for a failure's story.
        let stderr = match std::env::var_os("BITMESH_TEST_LOGS") {
            Some(dir) => {
                command.args(["--log", "debug"]);
                Stdio::from(log_file(Path::new(&dir)))
            }
            None => Stdio::null(),
        };
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(stderr)
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
        RunningNode {
            child,
            url,
            _data: data,
        }
    }

    /// `GET path`, returning the status code and the body.
    pub fn get(&self, path: &str) -> (u16, String) {
        let (status, body) = self.request("GET", path, b"");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// `GET path` answered 200 with JSON: the JSON.
    pub fn json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("{path} is JSON: {body}"))
    }

    /// `GET path` answered 200: the text.
    pub fn text(&self, path: &str) -> String {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    /// Polls `/healthz` until `ready` holds (no event crosses the process boundary to await).
    pub fn wait_for(&self, what: &str, ready: impl Fn(&serde_json::Value) -> bool) {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let health = self.json("/healthz");
            if ready(&health) {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "{what}: {health}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `method path` with `body`: the status code and the body's bytes.
    pub fn request(&self, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let (status, _, body) = self.exchange(method, path, body);
        (status, body)
    }

    /// `method path` with `body`: the status code, the response's head and its body.
    pub fn exchange(&self, method: &str, path: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
        exchange(self.host(), method, path, body)
    }
}

impl RunningNode {
    /// Stops the node as a person would (SIGTERM) and waits for it to exit; true if it exited
    /// successfully.
    pub fn stop(mut self) -> bool {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the node") {
                return status.success();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the node did not stop within {WAIT:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:port`.
    pub fn host(&self) -> &str {
        self.url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .expect("a host in the URL")
    }
}

impl Drop for RunningNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `method path` with `body` to `host` (`127.0.0.1:port`): the status code, the response's
/// head and its body.
pub fn exchange(host: &str, method: &str, path: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(host).expect("connect");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read response");
    let split = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("a header");
    let head = String::from_utf8_lossy(&response[..split]);
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("status code");
    (status, head.into_owned(), response[split + 4..].to_vec())
}

pub fn node() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bitmesh-node"))
}

/// A directory with a test page.
pub fn bundle() -> tempfile::TempDir {
    let dist = tempfile::tempdir().unwrap();
    std::fs::write(
        dist.path().join("index.html"),
        "<title>bitmesh test page</title>",
    )
    .unwrap();
    dist
}

/// Polls until `ready` holds, for at most [`WAIT`].
pub fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + WAIT;
    while !ready() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs the node to completion with a bound on time; it must exit by itself.
pub fn run_to_exit(args: &[&str]) -> std::process::Output {
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

/// A new log file in `dir`, named by the test process and a number no other node of it had.
fn log_file(dir: &Path) -> std::fs::File {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!("node-{}-{n}.log", std::process::id()));
    std::fs::File::create(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}
