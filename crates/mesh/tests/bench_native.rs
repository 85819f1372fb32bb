//! Native ↔ browser figures: this page connects through a signaling server to the webrtc-rs
//! bench peer (`examples/bench_peer.rs`) framed and unframed (the raw channel), three times
//! each in alternation, and measures channel open time (median), round trips (p50, p99 of all)
//! and throughput (best) on each in the same run. Ignored in
//! test runs; `scripts/bench-mesh.sh` starts a node and the bench peer, then runs it with the
//! signaling URL in `BITMESH_BENCH_SIGNAL`.
#![cfg(target_arch = "wasm32")]

use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};
use bitmesh_core::wire::PeerId;
use bitmesh_mesh::browser::BrowserConnection;
use bitmesh_mesh::signaling::{ClientEvent, Signal, SignalingClient};
use bitmesh_mesh::transport::{TransportConfig, TransportEvent};
use futures_channel::mpsc;
use futures_util::{future, FutureExt, StreamExt};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;
use web_sys::{MessageEvent, WebSocket};

wasm_bindgen_test_configure!(run_in_browser);

const WAIT_MILLIS: i32 = 60_000;
const THROUGHPUT_BYTES: usize = 64 << 20;
const ROUND_TRIPS: usize = 1_000;
/// The bench peer's secret (see examples/bench_peer.rs).
const BENCH_SECRET: [u8; 32] = [0x42; 32];

fn now() -> f64 {
    web_sys::window()
        .and_then(|window| window.performance())
        .expect("performance")
        .now()
}

async fn sleep(millis: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        web_sys::window()
            .expect("a window")
            .set_timeout_with_callback_and_timeout_and_arguments_0(resolve.unchecked_ref(), millis)
            .expect("a timer");
    });
    let _ = JsFuture::from(promise).await;
}

async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    let f = Box::pin(f.fuse());
    let timer = Box::pin(sleep(WAIT_MILLIS).fuse());
    match future::select(f, timer).await {
        future::Either::Left((value, _)) => value,
        future::Either::Right(_) => panic!("{what}: nothing within {WAIT_MILLIS} ms"),
    }
}

/// A registered signaling client on a WebSocket.
struct Server {
    socket: WebSocket,
    client: SignalingClient,
    texts: mpsc::UnboundedReceiver<String>,
    _on_message: Closure<dyn FnMut(JsValue)>,
}

impl Server {
    async fn register(url: &str, network: &str) -> Server {
        let socket = WebSocket::new(url).expect("a WebSocket");
        let (sender, texts) = mpsc::unbounded();
        let on_message = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
            let event: MessageEvent = event.unchecked_into();
            if let Some(text) = event.data().as_string() {
                let _ = sender.unbounded_send(text);
            }
        });
        socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        let secret = SecretKey::from_slice(&[0x24; 32]).unwrap();
        let key = Keypair::from_secret_key(&Secp256k1::new(), &secret);
        let mut server = Server {
            socket,
            client: SignalingClient::new(key, network),
            texts,
            _on_message: on_message,
        };
        loop {
            let text = bounded("the server speaks", server.texts.next())
                .await
                .unwrap();
            match server
                .client
                .on_text(&text, &[1; 32])
                .expect("the protocol")
            {
                ClientEvent::Send(answer) => server.socket.send_with_str(&answer).unwrap(),
                ClientEvent::Registered => return server,
                _ => {}
            }
        }
    }

    fn send(&self, to: PeerId, signal: Signal) {
        self.socket
            .send_with_str(&self.client.signal(to, signal))
            .expect("sent");
    }
}

struct End {
    connection: BrowserConnection,
    events: mpsc::UnboundedReceiver<TransportEvent>,
}

impl End {
    async fn message(&mut self) -> Vec<u8> {
        match bounded("a message", self.events.next()).await {
            Some(TransportEvent::Message(message)) => message,
            other => panic!("a message, not {other:?}"),
        }
    }
}

/// Connects to the bench peer on `session`; the milliseconds until the channel opened.
async fn connect(server: &mut Server, peer: PeerId, session: u64, unframed: bool) -> (End, f64) {
    let start = now();
    let (events, mut event_rx) = mpsc::unbounded();
    let (signals, mut signal_rx) = mpsc::unbounded();
    let config = TransportConfig {
        unframed,
        ..TransportConfig::default()
    };
    let connection = BrowserConnection::new(
        &config,
        session,
        move |event| drop(events.unbounded_send(event)),
        move |signal| drop(signals.unbounded_send(signal)),
    )
    .expect("a peer connection");
    let offer = connection.offer().await.expect("an offer");
    server.send(peer, offer);
    let opened = bounded("the channel opens", async {
        loop {
            futures_util::select! {
                signal = signal_rx.next() => server.send(peer, signal.expect("alive")),
                text = server.texts.next() => {
                    let text = text.expect("the server is up");
                    let Ok(ClientEvent::Signal { signal, .. }) = server.client.on_text(&text, &[0; 32]) else {
                        continue;
                    };
                    match signal {
                        Signal::Answer { session: s, sdp } if s == session => {
                            connection.accept_answer(&sdp).await.expect("the answer");
                        }
                        Signal::Candidate { session: s, candidate, sdp_mid, sdp_m_line_index } if s == session => {
                            connection
                                .add_candidate(&candidate, sdp_mid.as_deref(), sdp_m_line_index)
                                .await
                                .expect("a candidate");
                        }
                        _ => {}
                    }
                }
                event = event_rx.next() => match event {
                    Some(TransportEvent::Open { .. }) => return now() - start,
                    other => panic!("open, not {other:?}"),
                },
            }
        }
    })
    .await;
    (
        End {
            connection,
            events: event_rx,
        },
        opened,
    )
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// (round trips sorted, bytes per second) on one connection, with `chunk`-byte data messages.
async fn measure(end: &mut End, chunk: usize) -> (Vec<f64>, f64) {
    let mut rtts = Vec::with_capacity(ROUND_TRIPS);
    for n in 0..ROUND_TRIPS as u32 {
        let mut ping = vec![b'P'];
        ping.extend(n.to_le_bytes());
        let start = now();
        end.connection.send(&ping).expect("room");
        assert_eq!(end.message().await, ping);
        rtts.push(now() - start);
    }
    rtts.sort_by(f64::total_cmp);
    let mut announce = vec![b'T'];
    announce.extend((THROUGHPUT_BYTES as u64).to_le_bytes());
    let data = vec![9u8; chunk];
    let start = now();
    end.connection.send(&announce).expect("room");
    for _ in 0..THROUGHPUT_BYTES / chunk {
        end.connection.writable(4 << 20).await;
        end.connection.send(&data).expect("room");
    }
    assert_eq!(end.message().await, b"A");
    let rate = THROUGHPUT_BYTES as f64 / ((now() - start) / 1_000.0);
    (rtts, rate)
}

#[wasm_bindgen_test]
#[ignore]
async fn native_transport_benchmark() {
    let Some(url) = option_env!("BITMESH_BENCH_SIGNAL") else {
        panic!("BITMESH_BENCH_SIGNAL names the signaling server (scripts/bench-mesh.sh sets it)");
    };
    let network = option_env!("BITMESH_BENCH_NETWORK").unwrap_or("test");
    let bench = Keypair::from_secret_key(
        &Secp256k1::new(),
        &SecretKey::from_slice(&BENCH_SECRET).unwrap(),
    );
    let peer = PeerId::of(&bench.x_only_public_key().0);
    let mut server = Server::register(url, network).await;

    // Alternating modes, so neither gains from going second (warm caches, a settled JIT).
    let (mut framed_opens, mut raw_opens) = (Vec::new(), Vec::new());
    let mut ends = Vec::new();
    for round in 0..3u64 {
        let (framed, opened) = connect(&mut server, peer, 2 + 4 * round, false).await;
        framed_opens.push(opened);
        let (raw, opened) = connect(&mut server, peer, 3 + 4 * round, true).await;
        raw_opens.push(opened);
        ends.push((framed, raw));
    }
    framed_opens.sort_by(f64::total_cmp);
    raw_opens.sort_by(f64::total_cmp);
    let (framed_open, raw_open) = (percentile(&framed_opens, 0.5), percentile(&raw_opens, 0.5));
    let (mut framed_rtts, mut raw_rtts) = (Vec::new(), Vec::new());
    let (mut framed_rate, mut raw_rate) = (0.0f64, 0.0f64);
    for (framed, raw) in &mut ends {
        let (rtts, rate) = measure(framed, 1 << 20).await;
        framed_rtts.extend(rtts);
        framed_rate = framed_rate.max(rate);
        let (rtts, rate) = measure(raw, 16 * 1024).await;
        raw_rtts.extend(rtts);
        raw_rate = raw_rate.max(rate);
    }
    framed_rtts.sort_by(f64::total_cmp);
    raw_rtts.sort_by(f64::total_cmp);
    console_log!(
        "native-browser: open framed {:.1} ms, raw {:.1} ms; rtt p50 framed {:.3} ms, raw {:.3} ms; rtt p99 framed {:.3} ms, raw {:.3} ms; framed {:.1} Mbit/s, raw {:.1} Mbit/s, framed/raw {:.2}",
        framed_open,
        raw_open,
        percentile(&framed_rtts, 0.5),
        percentile(&raw_rtts, 0.5),
        percentile(&framed_rtts, 0.99),
        percentile(&raw_rtts, 0.99),
        framed_rate * 8.0 / 1e6,
        raw_rate * 8.0 / 1e6,
        framed_rate / raw_rate
    );
    assert!(framed_rate > 0.0 && raw_rate > 0.0);
}
