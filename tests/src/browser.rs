//! Headless Chromium profiles driven over WebDriver: one chromedriver and one fresh profile each.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::wd::TimeoutConfiguration;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::{artifacts_dir, free_port, Error, Result, STEP_TIMEOUT};

/// Flags every profile starts with. Headless as root needs no sandbox; the background flags keep
/// Chromium from reaching for the internet; the last two let WebRTC gather loopback candidates.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,800",
    "--allow-loopback-in-peer-connection",
    "--use-fake-ui-for-media-stream",
];

/// A Chrome DevTools Protocol command, through chromedriver's passthrough.
#[derive(Debug)]
struct DevTools {
    method: &'static str,
    params: Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for DevTools {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        let session = session_id.unwrap_or_default();
        base_url.join(&format!("session/{session}/goog/cdp/execute"))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({ "cmd": self.method, "params": self.params });
        (http::Method::POST, Some(body.to_string()))
    }
}

/// A headless Chromium with its own fresh profile. Dropping it kills chromedriver and the browser;
/// [`Browser::close`] ends the session politely first.
pub struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free port and opens a browser with a new, empty profile.
    pub async fn open() -> Result<Browser> {
        let profile = tempfile::Builder::new()
            .prefix("bitmesh-profile-")
            .tempdir()?;
        let port = free_port()?;
        let mut driver = Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // Its own process group, so dropping the browser kills Chromium with it.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|err| {
                format!("cannot start chromedriver: {err} (scripts/test.sh installs it)")
            })?;
        let stdout = driver
            .stdout
            .take()
            .ok_or("chromedriver's stdout is not piped")?;
        let mut lines = BufReader::new(stdout).lines();
        tokio::time::timeout(STEP_TIMEOUT, async {
            while let Some(line) = lines.next_line().await? {
                if line.contains("started successfully") {
                    return Ok(());
                }
            }
            Err::<(), Error>("chromedriver exited before it was ready".into())
        })
        .await
        .map_err(|_| "chromedriver was not ready in time")??;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|arg| arg.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let mut options = json!({ "args": args });
        if let Some(binary) = chromium() {
            options["binary"] = json!(binary);
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".into(), options);
        let client = tokio::time::timeout(
            STEP_TIMEOUT,
            ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities)
                .connect(&format!("http://127.0.0.1:{port}")),
        )
        .await
        .map_err(|_| "Chromium did not start in time")?
        .map_err(|err| format!("cannot start Chromium through chromedriver: {err}"))?;
        client
            .update_timeouts(TimeoutConfiguration::new(
                Some(STEP_TIMEOUT),
                Some(STEP_TIMEOUT),
                Some(Duration::ZERO),
            ))
            .await?;
        Ok(Browser {
            client,
            driver,
            _profile: profile,
        })
    }

    /// The WebDriver client, for anything the helpers below do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Navigates to `url` and waits for the load to finish.
    pub async fn goto(&self, url: &str) -> Result<()> {
        self.client.goto(url).await?;
        Ok(())
    }

    /// Opens a new tab of the same profile and switches to it; returns the tab it was on.
    pub async fn open_tab(&self) -> Result<fantoccini::wd::WindowHandle> {
        let previous = self.client.window().await?;
        let opened = self.client.new_window(true).await?;
        self.client.switch_to_window(opened.handle).await?;
        Ok(previous)
    }

    /// The tab in use.
    pub async fn client_window(&self) -> Result<fantoccini::wd::WindowHandle> {
        Ok(self.client.window().await?)
    }

    /// Switches to the tab `tab`.
    pub async fn switch_to(&self, tab: fantoccini::wd::WindowHandle) -> Result<()> {
        self.client.switch_to_window(tab).await?;
        Ok(())
    }

    /// Waits until an element matches `selector`, then returns its text.
    pub async fn text(&self, selector: &str) -> Result<String> {
        let element = self
            .client
            .wait()
            .at_most(STEP_TIMEOUT)
            .for_element(Locator::Css(selector))
            .await
            .map_err(|err| format!("no element `{selector}` within {STEP_TIMEOUT:?}: {err}"))?;
        Ok(element.text().await?)
    }

    /// From the next page loaded on: records every message the page's WebRTC data channels
    /// receive (before any of the page's scripts runs), for [`Browser::received_contains`].
    pub async fn record_received_messages(&self) -> Result<()> {
        const SCRIPT: &str = r#"
            window.__received = [];
            const record = (channel) => channel.addEventListener('message', (event) => {
                const data = event.data;
                if (typeof data === 'string') {
                    window.__received.push(new TextEncoder().encode(data));
                } else if (data instanceof ArrayBuffer) {
                    window.__received.push(new Uint8Array(data.slice(0)));
                } else if (data instanceof Blob) {
                    data.arrayBuffer().then((bytes) => window.__received.push(new Uint8Array(bytes)));
                }
            });
            const Original = window.RTCPeerConnection;
            const Recorded = function (...args) {
                const connection = new Original(...args);
                connection.addEventListener('datachannel', (event) => record(event.channel));
                const create = connection.createDataChannel.bind(connection);
                connection.createDataChannel = (...args) => {
                    const channel = create(...args);
                    record(channel);
                    return channel;
                };
                return connection;
            };
            Recorded.prototype = Original.prototype;
            window.RTCPeerConnection = Recorded;
        "#;
        self.client
            .issue_cmd(DevTools {
                method: "Page.addScriptToEvaluateOnNewDocument",
                params: json!({ "source": SCRIPT }),
            })
            .await
            .map_err(|err| format!("cannot install the message recorder: {err}"))?;
        Ok(())
    }

    /// What the recorder saw ([`Browser::record_received_messages`]): the number of messages,
    /// their bytes, and whether any contains `needle`.
    pub async fn received_contains(&self, needle: &[u8]) -> Result<(u64, u64, bool)> {
        const SCRIPT: &str = r#"
            const needle = Uint8Array.from(arguments[0]);
            const holds = (bytes) => {
                outer: for (let i = 0; i + needle.length <= bytes.length; i++) {
                    for (let j = 0; j < needle.length; j++) {
                        if (bytes[i + j] !== needle[j]) continue outer;
                    }
                    return true;
                }
                return false;
            };
            const received = window.__received || [];
            return [
                received.length,
                received.reduce((sum, bytes) => sum + bytes.length, 0),
                received.some(holds),
            ];
        "#;
        let found = self.client.execute(SCRIPT, vec![json!(needle)]).await?;
        match (found[0].as_u64(), found[1].as_u64(), found[2].as_bool()) {
            (Some(count), Some(bytes), Some(holds)) => Ok((count, bytes, holds)),
            _ => Err(format!("unexpected result from the page: {found}").into()),
        }
    }

    /// Waits, with a DOM observer in the page, until the element matching `selector` contains
    /// `needle`; returns its whole text.
    pub async fn wait_for_text(&self, selector: &str, needle: &str) -> Result<String> {
        self.wait_until(selector, "text.includes(goal)", json!(needle), needle)
            .await
    }

    /// Waits, with a DOM observer in the page, until the element matching `selector` is there
    /// and its text does not contain `needle`; returns its text.
    pub async fn wait_for_text_without(&self, selector: &str, needle: &str) -> Result<String> {
        self.wait_until(
            selector,
            "!text.includes(goal)",
            json!(needle),
            &format!("a text without {needle}"),
        )
        .await
    }

    /// Waits, with a DOM observer in the page, until the text of the element matching
    /// `selector` starts with one of `prefixes`; returns its whole text.
    pub async fn wait_for_text_starting(
        &self,
        selector: &str,
        prefixes: &[&str],
    ) -> Result<String> {
        self.wait_until(
            selector,
            "goal.some((prefix) => text.startsWith(prefix))",
            json!(prefixes),
            &prefixes.join("` or `"),
        )
        .await
    }

    /// Waits until the page has at least `count` neighbours (a mesh that may grow while the
    /// test looks: "connected" is `1` or more, never exactly `1`); returns the count shown.
    pub async fn wait_for_neighbours(&self, count: u32) -> Result<String> {
        self.wait_until(
            "#neighbour-count",
            "Number(text) >= goal",
            json!(count),
            &format!("{count} or more"),
        )
        .await
    }

    /// Waits, with a DOM observer in the page, until the text of the element matching
    /// `selector` passes `condition` (a JavaScript expression of `text` and `goal`); returns
    /// that text. `wanted` says what was awaited, for the error.
    async fn wait_until(
        &self,
        selector: &str,
        condition: &str,
        goal: Value,
        wanted: &str,
    ) -> Result<String> {
        let script = format!(
            r#"
            const [selector, goal, done] = arguments;
            const check = () => {{
                const element = document.querySelector(selector);
                const text = element && element.textContent;
                if (text !== null && ({condition})) {{
                    observer.disconnect();
                    done(text);
                    return true;
                }}
                return false;
            }};
            const observer = new MutationObserver(check);
            if (!check()) {{
                observer.observe(document, {{ subtree: true, childList: true, characterData: true }});
            }}
        "#
        );
        let found = match self
            .client
            .execute_async(&script, vec![json!(selector), goal])
            .await
        {
            Ok(found) => found,
            Err(err) => {
                let shown = self
                    .client
                    .execute(
                        "const e = document.querySelector(arguments[0]); return e && e.textContent;",
                        vec![json!(selector)],
                    )
                    .await
                    .unwrap_or(Value::Null);
                return Err(format!(
                    "`{selector}` never showed `{wanted}` within {STEP_TIMEOUT:?} (it shows {shown}): {err}"
                )
                .into());
            }
        };
        match found {
            Value::String(text) => Ok(text),
            other => Err(format!("unexpected result from the page: {other}").into()),
        }
    }

    /// Replaces the value of the input matching `selector` with `text`, as typed.
    pub async fn fill(&self, selector: &str, text: &str) -> Result<()> {
        let input = self
            .client
            .wait()
            .at_most(STEP_TIMEOUT)
            .for_element(Locator::Css(selector))
            .await
            .map_err(|err| format!("no input `{selector}` within {STEP_TIMEOUT:?}: {err}"))?;
        input.clear().await?;
        input.send_keys(text).await?;
        Ok(())
    }

    /// Clicks the element matching `selector`.
    pub async fn click(&self, selector: &str) -> Result<()> {
        self.client
            .wait()
            .at_most(STEP_TIMEOUT)
            .for_element(Locator::Css(selector))
            .await
            .map_err(|err| {
                format!("nothing to click at `{selector}` within {STEP_TIMEOUT:?}: {err}")
            })?
            .click()
            .await?;
        Ok(())
    }

    /// The values of the form fields matching `selectors` (an error if one is missing).
    pub async fn values(&self, selectors: &[&str]) -> Result<Vec<String>> {
        let found = self
            .client
            .execute(
                "return arguments[0].map((selector) => { \
                     const field = document.querySelector(selector); \
                     return field ? field.value : null; })",
                vec![json!(selectors)],
            )
            .await?;
        serde_json::from_value::<Vec<Option<String>>>(found.clone())?
            .into_iter()
            .zip(selectors)
            .map(|(value, selector)| value.ok_or_else(|| format!("no field `{selector}`").into()))
            .collect()
    }

    /// Runs `script` in the page and returns its result.
    pub async fn eval(&self, script: &str) -> Result<Value> {
        Ok(self.client.execute(script, Vec::new()).await?)
    }

    /// Runs `script` in the page as an asynchronous function (its last argument is the
    /// callback that returns its value).
    pub async fn eval_async(&self, script: &str) -> Result<Value> {
        Ok(self.client.execute_async(script, Vec::new()).await?)
    }

    /// Resizes the browser window (e.g. to a phone's viewport).
    pub async fn resize(&self, width: u32, height: u32) -> Result<()> {
        self.client.set_window_size(width, height).await?;
        Ok(())
    }

    /// Saves a PNG screenshot as `target/e2e/<name>` and returns its path.
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf> {
        let png = self.client.screenshot().await?;
        let dir = artifacts_dir();
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(name);
        std::fs::write(&path, png)?;
        Ok(path)
    }

    /// Screenshots of profiles A and B at `step` of `test`:
    /// `target/e2e/<test>-<step>-{a,b}.png`.
    pub async fn screenshots(test: &str, a: &Browser, b: &Browser, step: &str) -> Result<()> {
        a.screenshot(&format!("{test}-{step}-a.png")).await?;
        b.screenshot(&format!("{test}-{step}-b.png")).await?;
        Ok(())
    }

    /// Ends the WebDriver session (closing Chromium) and stops chromedriver.
    pub async fn close(mut self) -> Result<()> {
        let closed = self.client.clone().close().await;
        let _ = self.driver.kill().await;
        closed?;
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Kill the whole process group: chromedriver and the Chromium it started.
        if let Some(pid) = self.driver.id() {
            // SAFETY: killpg only sends a signal; a stale group id at worst fails with ESRCH.
            unsafe {
                libc::killpg(pid as libc::pid_t, libc::SIGKILL);
            }
        }
    }
}

fn chromedriver() -> PathBuf {
    std::env::var_os("CHROMEDRIVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("chromedriver"))
}

/// Debian's Chromium, when it is where Debian puts it (otherwise chromedriver searches).
fn chromium() -> Option<String> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return path.into_string().ok();
    }
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|path| std::path::Path::new(path).is_file())
        .map(str::to_owned)
}
