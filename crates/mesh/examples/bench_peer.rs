//! The native end of `scripts/bench-mesh.sh`'s native ↔ browser figures: a webrtc-rs peer with
//! a fixed key (secret 0x42…, so the page knows its id) that registers with a signaling server
//! and answers every offer. Sessions with an odd number are unframed (the raw channel), even
//! ones framed. On a channel: `P…` is echoed; `T` + u64 (LE) announces that many bytes of
//! data; other messages are data, and once the announced bytes arrived it answers `A`.
//!
//! `cargo run -p bitmesh-mesh --release --features native --example bench_peer -- ws://127.0.0.1:8080/signal test`

use std::collections::HashMap;

use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};
use bitmesh_core::wire::PeerId;
use bitmesh_mesh::native::{NativeConfig, NativeConnection};
use bitmesh_mesh::signaling::{ClientEvent, Signal, SignalingClient};
use bitmesh_mesh::transport::{TransportConfig, TransportEvent};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// The bench peer's secret key (public: the page derives the peer id from it).
pub const SECRET: [u8; 32] = [0x42; 32];

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(network)) = (args.next(), args.next()) else {
        eprintln!("usage: bench_peer <signaling URL> <network>");
        std::process::exit(2);
    };
    let key = Keypair::from_secret_key(&Secp256k1::new(), &SecretKey::from_slice(&SECRET).unwrap());
    let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .expect("the signaling server answers");
    let (mut sink, mut stream) = socket.split();
    let mut client = SignalingClient::new(key, network);
    let (to_server, mut outgoing) = mpsc::unbounded_channel::<(PeerId, Signal)>();
    let mut connections: HashMap<(PeerId, u64), NativeConnection> = HashMap::new();
    loop {
        tokio::select! {
            message = stream.next() => {
                let Some(Ok(Message::Text(text))) = message else { return };
                match client.on_text(text.as_str(), &[7; 32]) {
                    Ok(ClientEvent::Send(answer)) => {
                        let _ = sink.send(Message::Text(answer.into())).await;
                    }
                    Ok(ClientEvent::Registered) => {
                        println!("bench peer {}", bitcoin::hex::DisplayHex::to_lower_hex_string(
                            &PeerId::of(&key.x_only_public_key().0).0[..]));
                    }
                    Ok(ClientEvent::Signal { from, signal }) => {
                        on_signal(&mut connections, &to_server, from, signal).await;
                    }
                    Ok(_) => {}
                    Err(err) => eprintln!("signaling: {err}"),
                }
            }
            Some((to, signal)) = outgoing.recv() => {
                let _ = sink.send(Message::Text(client.signal(to, signal).into())).await;
            }
        }
    }
}

async fn on_signal(
    connections: &mut HashMap<(PeerId, u64), NativeConnection>,
    to_server: &mpsc::UnboundedSender<(PeerId, Signal)>,
    from: PeerId,
    signal: Signal,
) {
    let session = signal.session();
    match signal {
        Signal::Offer { sdp, .. } => {
            let (events, inbox) = mpsc::unbounded_channel();
            let signals = to_server.clone();
            let config = NativeConfig {
                transport: TransportConfig {
                    unframed: session % 2 == 1,
                    ..TransportConfig::default()
                },
                ..NativeConfig::default()
            };
            let connection = NativeConnection::new(
                &config,
                session,
                move |event| drop(events.send(event)),
                move |signal| drop(signals.send((from, signal))),
            )
            .await
            .expect("a peer connection");
            match connection.answer(&sdp).await {
                Ok(answer) => drop(to_server.send((from, answer))),
                Err(err) => return eprintln!("cannot answer: {err}"),
            }
            tokio::spawn(serve(connection.clone(), inbox));
            connections.insert((from, session), connection);
        }
        Signal::Candidate {
            candidate,
            sdp_mid,
            sdp_m_line_index,
            ..
        } => {
            if let Some(connection) = connections.get(&(from, session)) {
                let _ = connection
                    .add_candidate(&candidate, sdp_mid.as_deref(), sdp_m_line_index)
                    .await;
            }
        }
        Signal::Answer { .. } => {}
    }
}

/// Echoes pings and acknowledges announced data.
async fn serve(connection: NativeConnection, mut events: mpsc::UnboundedReceiver<TransportEvent>) {
    let (mut expected, mut received) = (u64::MAX, 0u64);
    while let Some(event) = events.recv().await {
        match event {
            TransportEvent::Message(message) => match message.first() {
                Some(b'P') => drop(connection.send(&message)),
                Some(b'T') if message.len() == 9 => {
                    expected = u64::from_le_bytes(message[1..].try_into().unwrap());
                    received = 0;
                }
                _ => {
                    received += message.len() as u64;
                    if received >= expected {
                        expected = u64::MAX;
                        let _ = connection.send(b"A");
                    }
                }
            },
            TransportEvent::Closed { .. } => return,
            TransportEvent::Open { .. } => {}
        }
    }
}
