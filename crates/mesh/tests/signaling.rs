//! The signaling server and client state machines together: registration, listing and
//! forwarding, and every refusal and limit of the server.

use bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};
use bitmesh_core::wire::PeerId;
use bitmesh_mesh::signaling::{
    Backoff, ClientError, ClientEvent, ErrorCode, FromServer, ServerConfig, ServerInput,
    ServerOutput, Signal, SignalingClient, SignalingServer, MAX_LISTED_PEERS,
    MAX_SIGNALING_MESSAGE,
};

const NETWORK: &str = "test";

fn key(n: u64) -> Keypair {
    let mut bytes = [0x11u8; 32];
    bytes[..8].copy_from_slice(&n.to_le_bytes());
    Keypair::from_secret_key(&Secp256k1::new(), &SecretKey::from_slice(&bytes).unwrap())
}

fn peer(n: u64) -> PeerId {
    PeerId::of(&key(n).x_only_public_key().0)
}

fn nonce(client: u64) -> [u8; 32] {
    [client as u8 ^ 0x5a; 32]
}

/// The messages sent to `client`, parsed.
fn to(outputs: &[ServerOutput], client: u64) -> Vec<FromServer> {
    outputs
        .iter()
        .filter_map(|output| match output {
            ServerOutput::Send { client: c, text } if *c == client => {
                Some(serde_json::from_str(text).expect("the server sends its protocol"))
            }
            _ => None,
        })
        .collect()
}

fn error_codes(outputs: &[ServerOutput], client: u64) -> Vec<ErrorCode> {
    to(outputs, client)
        .into_iter()
        .filter_map(|message| match message {
            FromServer::Error { code, .. } => Some(code),
            _ => None,
        })
        .collect()
}

fn closed(outputs: &[ServerOutput], client: u64) -> bool {
    outputs.contains(&ServerOutput::Close { client })
}

fn text(client: u64, text: &str) -> ServerInput {
    ServerInput::Text {
        client,
        text: text.into(),
    }
}

/// Opens connection `client` for peer `n` and registers it through a real client.
fn register(server: &mut SignalingServer, client: u64, n: u64, now: u64) -> SignalingClient {
    let mut peer = SignalingClient::new(key(n), NETWORK);
    let outputs = server.handle(
        now,
        ServerInput::Opened {
            client,
            nonce: nonce(client),
        },
    );
    let [ServerOutput::Send {
        text: challenge, ..
    }] = &outputs[..]
    else {
        panic!("a challenge: {outputs:?}");
    };
    let ClientEvent::Send(answer) = peer.on_text(challenge, &[1; 32]).expect("a challenge") else {
        panic!("an answer");
    };
    let outputs = server.handle(now, text(client, &answer));
    let [ServerOutput::Send {
        text: registered, ..
    }] = &outputs[..]
    else {
        panic!("registered: {outputs:?}");
    };
    assert_eq!(
        peer.on_text(registered, &[1; 32]),
        Ok(ClientEvent::Registered)
    );
    assert!(peer.is_registered());
    peer
}

fn server() -> SignalingServer {
    SignalingServer::new(ServerConfig::new(NETWORK))
}

#[test]
fn two_peers_register_list_each_other_and_exchange_signals() {
    let mut server = server();
    let alice = register(&mut server, 1, 1, 0);
    let mut bob = register(&mut server, 2, 2, 0);
    let outputs = server.handle(10, text(1, &alice.list()));
    assert_eq!(
        to(&outputs, 1),
        vec![FromServer::Peers {
            peers: vec![peer(2).into()]
        }]
    );
    let offer = Signal::Offer {
        session: 9,
        sdp: "v=0\r\n".into(),
    };
    let outputs = server.handle(20, text(1, &alice.signal(peer(2), offer.clone())));
    let [ServerOutput::Send {
        client: 2,
        text: forwarded,
    }] = &outputs[..]
    else {
        panic!("forwarded to bob: {outputs:?}");
    };
    assert_eq!(
        bob.on_text(forwarded, &[0; 32]),
        Ok(ClientEvent::Signal {
            from: peer(1),
            signal: offer
        })
    );
    // Bob leaves: signals to him are refused, with words.
    server.handle(30, ServerInput::Closed { client: 2 });
    let outputs = server.handle(
        40,
        text(
            1,
            &alice.signal(
                peer(2),
                Signal::Answer {
                    session: 9,
                    sdp: String::new(),
                },
            ),
        ),
    );
    assert_eq!(error_codes(&outputs, 1), vec![ErrorCode::UnknownPeer]);
    assert_eq!(server.registered(), 1);
}

#[test]
fn bad_registrations_are_refused() {
    let mut server = server();
    server.handle(
        0,
        ServerInput::Opened {
            client: 1,
            nonce: nonce(1),
        },
    );
    // Signed for another connection's challenge.
    let mut other = SignalingClient::new(key(1), NETWORK);
    let challenge = serde_json::to_string(&FromServer::Challenge {
        version: 1,
        network: NETWORK.into(),
        nonce: nonce(2),
    })
    .unwrap();
    let ClientEvent::Send(replayed) = other.on_text(&challenge, &[0; 32]).unwrap() else {
        panic!()
    };
    let outputs = server.handle(0, text(1, &replayed));
    assert_eq!(error_codes(&outputs, 1), vec![ErrorCode::BadRegistration]);
    // Another version.
    let newer = replayed.replace("\"version\":1", "\"version\":2");
    let outputs = server.handle(0, text(1, &newer));
    assert_eq!(error_codes(&outputs, 1), vec![ErrorCode::BadRegistration]);
    // Anything but register first.
    let outputs = server.handle(0, text(1, r#"{"type":"list"}"#));
    assert_eq!(error_codes(&outputs, 1), vec![ErrorCode::NotRegistered]);
    assert_eq!(server.registered(), 0);
}

#[test]
fn garbage_oversized_and_binary_messages_get_errors_then_a_disconnect() {
    let mut server = server();
    let _alice = register(&mut server, 1, 1, 0);
    let cases: Vec<(ServerInput, ErrorCode)> = vec![
        (text(1, "not json"), ErrorCode::Malformed),
        (text(1, r#"{"type":"fly"}"#), ErrorCode::Malformed),
        (
            text(1, &"x".repeat(MAX_SIGNALING_MESSAGE + 1)),
            ErrorCode::TooLarge,
        ),
        (
            ServerInput::Binary { client: 1, len: 10 },
            ErrorCode::Malformed,
        ),
    ];
    for (input, code) in cases {
        let outputs = server.handle(0, input);
        assert_eq!(error_codes(&outputs, 1), vec![code]);
        assert!(!closed(&outputs, 1));
    }
    // The fifth refusal closes the connection, and the peer is no longer registered.
    let outputs = server.handle(0, text(1, "{"));
    assert!(closed(&outputs, 1));
    assert_eq!(server.registered(), 0);
    // Nothing more is read from it.
    assert!(server.handle(0, text(1, r#"{"type":"list"}"#)).is_empty());
}

#[test]
fn a_flooding_client_is_limited_then_dropped_while_others_are_served() {
    let mut server = server();
    let flooder = register(&mut server, 1, 1, 0);
    let honest = register(&mut server, 2, 2, 0);
    let config = ServerConfig::new(NETWORK);
    let mut limited = 0;
    let mut dropped = false;
    // Registration took one token of the burst.
    for n in 0..config.burst + 10 {
        let outputs = server.handle(1, text(1, &flooder.list()));
        limited += error_codes(&outputs, 1)
            .iter()
            .filter(|code| **code == ErrorCode::RateLimited)
            .count();
        if closed(&outputs, 1) {
            dropped = true;
            assert_eq!(n, config.burst - 1 + u64::from(config.max_errors) - 1);
            break;
        }
    }
    assert!(dropped);
    assert_eq!(limited, config.max_errors as usize);
    let outputs = server.handle(2, text(2, &honest.list()));
    assert_eq!(to(&outputs, 2), vec![FromServer::Peers { peers: vec![] }]);
}

#[test]
fn the_server_caps_clients_and_pending_registrations() {
    let mut server = SignalingServer::new(ServerConfig {
        max_clients: 3,
        max_pending: 2,
        ..ServerConfig::new(NETWORK)
    });
    register(&mut server, 1, 1, 0);
    for client in [2, 3] {
        server.handle(
            0,
            ServerInput::Opened {
                client,
                nonce: nonce(client),
            },
        );
    }
    // Two still registering: a third is refused.
    let outputs = server.handle(
        0,
        ServerInput::Opened {
            client: 4,
            nonce: nonce(4),
        },
    );
    assert_eq!(error_codes(&outputs, 4), vec![ErrorCode::Full]);
    assert!(closed(&outputs, 4));
    server.handle(0, ServerInput::Closed { client: 4 });
    server.handle(0, ServerInput::Closed { client: 3 });
    // Three clients: a fourth is refused.
    let outputs = server.handle(
        0,
        ServerInput::Opened {
            client: 5,
            nonce: nonce(5),
        },
    );
    assert!(to(&outputs, 5)
        .iter()
        .any(|m| matches!(m, FromServer::Challenge { .. })));
    let outputs = server.handle(
        0,
        ServerInput::Opened {
            client: 6,
            nonce: nonce(6),
        },
    );
    assert_eq!(error_codes(&outputs, 6), vec![ErrorCode::Full]);
}

#[test]
fn slow_registrations_and_silent_clients_time_out() {
    let config = ServerConfig::new(NETWORK);
    let mut server = SignalingServer::new(config.clone());
    let alice = register(&mut server, 1, 1, 0);
    server.handle(
        0,
        ServerInput::Opened {
            client: 2,
            nonce: nonce(2),
        },
    );
    let outputs = server.handle(config.register_timeout_millis - 1, ServerInput::Tick);
    assert!(outputs.is_empty());
    let outputs = server.handle(config.register_timeout_millis, ServerInput::Tick);
    assert_eq!(error_codes(&outputs, 2), vec![ErrorCode::Timeout]);
    assert!(closed(&outputs, 2) && !closed(&outputs, 1));
    // Alice keeps talking, then goes silent.
    server.handle(100_000, text(1, &alice.list()));
    assert!(!closed(
        &server.handle(100_000 + config.idle_timeout_millis - 1, ServerInput::Tick),
        1
    ));
    assert!(closed(
        &server.handle(100_000 + config.idle_timeout_millis, ServerInput::Tick),
        1
    ));
}

#[test]
fn registering_again_replaces_the_old_connection() {
    let mut server = server();
    register(&mut server, 1, 1, 0);
    let mut again = SignalingClient::new(key(1), NETWORK);
    let outputs = server.handle(
        0,
        ServerInput::Opened {
            client: 2,
            nonce: nonce(2),
        },
    );
    let [ServerOutput::Send {
        text: challenge, ..
    }] = &outputs[..]
    else {
        panic!()
    };
    let ClientEvent::Send(answer) = again.on_text(challenge, &[2; 32]).unwrap() else {
        panic!()
    };
    let outputs = server.handle(0, text(2, &answer));
    assert_eq!(error_codes(&outputs, 1), vec![ErrorCode::Replaced]);
    assert!(closed(&outputs, 1));
    assert_eq!(to(&outputs, 2), vec![FromServer::Registered]);
    // The old connection's close does not unregister the new one.
    server.handle(0, ServerInput::Closed { client: 1 });
    assert_eq!(server.registered(), 1);
}

/// A thousand registered clients: every one registered, listings capped, signals delivered.
#[test]
fn a_thousand_clients_are_served() {
    let mut server = server();
    let clients: Vec<SignalingClient> = (1..=1_000)
        .map(|n| register(&mut server, n, n, 0))
        .collect();
    assert_eq!(server.registered(), 1_000);
    let outputs = server.handle(1, text(1, &clients[0].list()));
    let [FromServer::Peers { peers }] = &to(&outputs, 1)[..] else {
        panic!()
    };
    assert_eq!(peers.len(), MAX_LISTED_PEERS);
    for (n, client) in clients.iter().enumerate().skip(1) {
        let signal = Signal::Candidate {
            session: n as u64,
            candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host".into(),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
        };
        let outputs = server.handle(2, text(n as u64 + 1, &client.signal(peer(1), signal)));
        assert_eq!(outputs.len(), 1);
        assert!(matches!(&outputs[0], ServerOutput::Send { client: 1, .. }));
    }
}

#[test]
fn the_client_refuses_a_server_of_another_network_or_version() {
    let challenge = |version: u32, network: &str| {
        serde_json::to_string(&FromServer::Challenge {
            version,
            network: network.into(),
            nonce: [0; 32],
        })
        .unwrap()
    };
    let mut client = SignalingClient::new(key(1), NETWORK);
    assert_eq!(
        client.on_text(&challenge(1, "local"), &[0; 32]),
        Err(ClientError::WrongNetwork {
            expected: NETWORK.into(),
            server: "local".into()
        })
    );
    assert_eq!(
        client.on_text(&challenge(2, NETWORK), &[0; 32]),
        Err(ClientError::UnsupportedVersion(2))
    );
    assert!(matches!(
        client.on_text("[]", &[0; 32]),
        Err(ClientError::Malformed(_))
    ));
    assert!(client.on_text(&challenge(1, NETWORK), &[0; 32]).is_ok());
    assert_eq!(
        client.on_text(&challenge(1, NETWORK), &[0; 32]),
        Err(ClientError::Unexpected("a second challenge"))
    );
}

#[test]
fn reconnection_waits_double_up_to_a_minute_with_jitter() {
    let mut backoff = Backoff::default();
    let delays: Vec<u64> = (0..9).map(|_| backoff.next_delay_millis(0)).collect();
    assert_eq!(
        delays,
        vec![1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]
    );
    let jittered = Backoff::default().next_delay_millis(u64::MAX);
    assert!((1_000..=1_250).contains(&jittered));
    backoff.reset();
    assert_eq!(backoff.next_delay_millis(0), 1_000);
}
