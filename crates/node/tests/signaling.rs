//! The node's signaling WebSocket, over real sockets: peers register, find and signal each
//! other; garbage, oversized frames, unregistered forwards, a flood and a thousand clients at
//! once leave it serving honest clients.

mod common;

use std::time::Duration;

use bitcoin::hex::FromHex;
use bitmesh_core::testkit::TestKey;
use bitmesh_core::wire::PeerId;
use bitmesh_mesh::signaling::{
    Backoff, ClientEvent, ErrorCode, FromServer, Signal, SignalingClient, MAX_SIGNALING_MESSAGE,
};
use common::{bundle, RunningNode, WAIT};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const NETWORK: &str = "test";

async fn open(host: &str) -> Socket {
    let (socket, _) = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::connect_async(format!("ws://{host}/signal")),
    )
    .await
    .expect("connects in time")
    .expect("the endpoint upgrades");
    socket
}

/// The next text from the server; None when the connection ends.
async fn next_text(socket: &mut Socket) -> Option<String> {
    loop {
        match tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("an answer in time")
        {
            Some(Ok(Message::Text(text))) => return Some(text.as_str().to_owned()),
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
            Some(Ok(_)) => continue,
        }
    }
}

async fn next(socket: &mut Socket) -> Option<FromServer> {
    let text = next_text(socket).await?;
    Some(serde_json::from_str(&text).expect("the server speaks its protocol"))
}

async fn send(socket: &mut Socket, text: impl Into<String>) {
    socket
        .send(Message::Text(text.into().into()))
        .await
        .expect("sent");
}

fn error_code(message: Option<FromServer>) -> Option<ErrorCode> {
    match message {
        Some(FromServer::Error { code, .. }) => Some(code),
        _ => None,
    }
}

/// A registered peer: its socket and client.
struct Peer {
    socket: Socket,
    client: SignalingClient,
    id: PeerId,
}

async fn register(host: &str, seed: u64) -> Peer {
    let key = TestKey::new(seed);
    let mut client = SignalingClient::new(key.keypair(), NETWORK);
    // A server with all the registrations under way it takes says so: try again a bit later,
    // as the page does.
    let mut backoff = Backoff::default();
    let (mut socket, answer) = loop {
        let mut socket = open(host).await;
        let challenge = next_text(&mut socket).await.expect("a challenge");
        match client.on_text(&challenge, &[seed as u8; 32]).expect("ok") {
            ClientEvent::Send(answer) => break (socket, answer),
            ClientEvent::Refused {
                code: ErrorCode::Full,
                ..
            } => {
                let wait = backoff.next_delay_millis(seed) / 10;
                assert!(wait < 10_000, "the server stays full");
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
            other => panic!("an answer to the challenge: {other:?}"),
        }
    };
    send(&mut socket, answer).await;
    let registered = next_text(&mut socket).await.expect("an answer");
    assert_eq!(
        client.on_text(&registered, &[0; 32]),
        Ok(ClientEvent::Registered)
    );
    Peer {
        socket,
        client,
        id: PeerId::of(&key.xonly()),
    }
}

/// The next signal `peer` gets from `from` (the node's own peer may be dialing it too).
async fn signal_from(peer: &mut Peer, from: PeerId) -> Signal {
    loop {
        let text = next_text(&mut peer.socket).await.expect("a signal");
        if let Ok(ClientEvent::Signal {
            from: sender,
            signal,
        }) = peer.client.on_text(&text, &[0; 32])
        {
            if sender == from {
                return signal;
            }
        }
    }
}

/// The next message that is not a signal (the node's own peer may be dialing this client).
async fn next_skipping_signals(socket: &mut Socket) -> Option<FromServer> {
    loop {
        match next(socket).await? {
            FromServer::Signal { .. } => continue,
            other => return Some(other),
        }
    }
}

fn start() -> (tempfile::TempDir, RunningNode) {
    let dist = bundle();
    let node = RunningNode::start(dist.path(), &["--network", NETWORK]);
    (dist, node)
}

#[tokio::test]
async fn two_peers_find_each_other_and_exchange_signals() {
    let (_dist, node) = start();
    let host = node.host();
    let mut alice = register(host, 1).await;
    let mut bob = register(host, 2).await;
    // The node's own peer is registered too.
    let (_, body) = node.get("/healthz");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    let own = PeerId(<[u8; 32]>::from_hex(health["peer"].as_str().unwrap()).unwrap());
    send(&mut alice.socket, alice.client.list()).await;
    let Some(FromServer::Peers { peers }) = next_skipping_signals(&mut alice.socket).await else {
        panic!("a listing");
    };
    let mut listed: Vec<PeerId> = peers.into_iter().map(PeerId::from).collect();
    listed.sort();
    let mut expected = vec![bob.id, own];
    expected.sort();
    assert_eq!(listed, expected);
    let offer = Signal::Offer {
        session: 1,
        sdp: "v=0\r\n".into(),
    };
    send(
        &mut alice.socket,
        alice.client.signal(bob.id, offer.clone()),
    )
    .await;
    assert_eq!(signal_from(&mut bob, alice.id).await, offer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_leaves_the_server_serving_honest_clients() {
    let (_dist, node) = start();
    let host = node.host().to_owned();
    let mut honest = register(&host, 1).await;

    // Garbage, an oversized message, a binary frame: each gets its error.
    let mut rude = register(&host, 2).await;
    send(&mut rude.socket, "garbage").await;
    assert_eq!(
        error_code(next_skipping_signals(&mut rude.socket).await),
        Some(ErrorCode::Malformed)
    );
    send(&mut rude.socket, "x".repeat(MAX_SIGNALING_MESSAGE + 1)).await;
    assert_eq!(
        error_code(next_skipping_signals(&mut rude.socket).await),
        Some(ErrorCode::TooLarge)
    );
    rude.socket
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(
        error_code(next_skipping_signals(&mut rude.socket).await),
        Some(ErrorCode::Malformed)
    );
    // A frame far above the limit ends the connection at the WebSocket layer.
    let _ = rude
        .socket
        .send(Message::Text("y".repeat(1 << 20).into()))
        .await;
    assert_eq!(next_text(&mut rude.socket).await, None);

    // A signal before registering.
    let mut stranger = open(&host).await;
    next(&mut stranger).await.expect("a challenge");
    send(
        &mut stranger,
        honest.client.signal(
            honest.id,
            Signal::Answer {
                session: 1,
                sdp: String::new(),
            },
        ),
    )
    .await;
    assert_eq!(
        error_code(next(&mut stranger).await),
        Some(ErrorCode::NotRegistered)
    );

    // A flood: rate-limited, then dropped.
    let mut flooder = register(&host, 3).await;
    for _ in 0..400 {
        if flooder
            .socket
            .send(Message::Text(flooder.client.list().into()))
            .await
            .is_err()
        {
            break;
        }
    }
    let mut limited = 0;
    while let Some(message) = next(&mut flooder.socket).await {
        if error_code(Some(message)) == Some(ErrorCode::RateLimited) {
            limited += 1;
        }
    }
    assert!(
        limited >= 1,
        "the flooder was told to slow down before it was dropped"
    );

    // A thousand clients at once, each registering.
    let clients = (0..1_000u64).map(|n| {
        let host = host.clone();
        tokio::spawn(async move { register(&host, 1_000 + n).await })
    });
    let mut registered = Vec::new();
    for client in clients {
        registered.push(
            tokio::time::timeout(Duration::from_secs(120), client)
                .await
                .expect("registered in time")
                .expect("the task ran"),
        );
    }
    assert_eq!(registered.len(), 1_000);

    // The honest client is still served: it signals one of the thousand.
    let target = &mut registered[500];
    let candidate = Signal::Candidate {
        session: 2,
        candidate: "candidate:1 1 udp 2113937151 127.0.0.1 50000 typ host".into(),
        sdp_mid: Some("0".into()),
        sdp_m_line_index: Some(0),
    };
    send(
        &mut honest.socket,
        honest.client.signal(target.id, candidate.clone()),
    )
    .await;
    assert_eq!(signal_from(target, honest.id).await, candidate);
    let (status, _) = node.get("/healthz");
    assert_eq!(status, 200);
}
