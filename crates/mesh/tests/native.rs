//! Two native (webrtc-rs) connections in one process, connected through their own signals on
//! loopback: a 1 MiB message and 10,000 small ones arrive whole and in order both ways, both
//! ends see each other's certificate, and a message above the receiver's maximum closes it.
#![cfg(all(feature = "native", not(target_arch = "wasm32")))]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bitmesh_mesh::native::{NativeConfig, NativeConnection};
use bitmesh_mesh::signaling::Signal;
use bitmesh_mesh::transport::{TransportConfig, TransportEvent};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(30);

struct End {
    connection: NativeConnection,
    events: mpsc::UnboundedReceiver<TransportEvent>,
}

impl End {
    async fn next(&mut self) -> TransportEvent {
        tokio::time::timeout(WAIT, self.events.recv())
            .await
            .expect("an event in time")
            .expect("the connection is alive")
    }

    async fn message(&mut self) -> Vec<u8> {
        match self.next().await {
            TransportEvent::Message(message) => message,
            other => panic!("a message, not {other:?}"),
        }
    }
}

/// One end; with a `greeting`, it sends that the moment its channel opens, from the event
/// callback itself, as the node sends its hello.
async fn end(
    session: u64,
    greeting: Option<&'static [u8]>,
) -> (End, mpsc::UnboundedReceiver<Signal>) {
    let (events, events_rx) = mpsc::unbounded_channel();
    let (signals, signals_rx) = mpsc::unbounded_channel();
    let speaker = Arc::new(OnceLock::<NativeConnection>::new());
    let on_event = {
        let speaker = speaker.clone();
        move |event: TransportEvent| {
            if let (TransportEvent::Open { .. }, Some(greeting)) = (&event, greeting) {
                let connection = speaker
                    .get()
                    .expect("open comes after the connection is made");
                connection.send(greeting).expect("room for a greeting");
            }
            drop(events.send(event));
        }
    };
    let connection =
        NativeConnection::new(&NativeConfig::default(), session, on_event, move |signal| {
            drop(signals.send(signal))
        })
        .await
        .expect("a peer connection");
    assert!(speaker.set(connection.clone()).is_ok());
    (
        End {
            connection,
            events: events_rx,
        },
        signals_rx,
    )
}

/// Candidates from one end to the other as they come.
fn forward(to: NativeConnection, mut signals: mpsc::UnboundedReceiver<Signal>) {
    tokio::spawn(async move {
        while let Some(Signal::Candidate {
            candidate,
            sdp_mid,
            sdp_m_line_index,
            ..
        }) = signals.recv().await
        {
            to.add_candidate(&candidate, sdp_mid.as_deref(), sdp_m_line_index)
                .await
                .expect("a candidate taken");
        }
    });
}

/// The next of an end's own signals, which must be a candidate: added to `to` at once.
async fn hand_over_a_candidate(
    signals: &mut mpsc::UnboundedReceiver<Signal>,
    to: &NativeConnection,
) {
    let signal = tokio::time::timeout(WAIT, signals.recv())
        .await
        .expect("a candidate in time")
        .expect("alive");
    let Signal::Candidate {
        candidate,
        sdp_mid,
        sdp_m_line_index,
        ..
    } = signal
    else {
        panic!("a candidate, not {signal:?}");
    };
    to.add_candidate(&candidate, sdp_mid.as_deref(), sdp_m_line_index)
        .await
        .expect("an early candidate is held, not refused");
}

async fn pair() -> (End, End) {
    pair_greeting(None).await
}

/// Two connected ends, `a` the offerer; with a `greeting`, each sends it as its channel opens.
async fn pair_greeting(greeting: Option<&'static [u8]>) -> (End, End) {
    let (mut a, mut a_signals) = end(1, greeting).await;
    let (mut b, mut b_signals) = end(1, greeting).await;
    let Signal::Offer { sdp: offer, .. } = a.connection.offer().await.expect("an offer") else {
        panic!("an offer");
    };
    // Each end gets a candidate before the other's description, as happens when a candidate
    // overtakes an answer: the transport holds it until it can add it.
    hand_over_a_candidate(&mut a_signals, &b.connection).await;
    let Signal::Answer { sdp: answer, .. } = b.connection.answer(&offer).await.expect("an answer")
    else {
        panic!("an answer");
    };
    hand_over_a_candidate(&mut b_signals, &a.connection).await;
    a.connection
        .accept_answer(&answer)
        .await
        .expect("the answer taken");
    forward(b.connection.clone(), a_signals);
    forward(a.connection.clone(), b_signals);
    let (
        TransportEvent::Open {
            local_fingerprint: a_local,
            remote_fingerprint: a_remote,
        },
        TransportEvent::Open {
            local_fingerprint: b_local,
            remote_fingerprint: b_remote,
        },
    ) = (a.next().await, b.next().await)
    else {
        panic!("both channels open");
    };
    assert_eq!(a_local, b_remote);
    assert_eq!(a_remote, b_local);
    assert_ne!(a_local, a_remote);
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_megabyte_and_ten_thousand_small_messages_arrive_whole_and_in_order() {
    let (mut a, mut b) = pair().await;
    let big: Vec<u8> = (0..1u32 << 20).map(|n| (n * 31 + n / 977) as u8).collect();
    a.connection.send(&big).expect("room");
    for n in 0..10_000u32 {
        let mut small = n.to_le_bytes().to_vec();
        small.extend(std::iter::repeat_n(n as u8, (n % 200) as usize));
        a.connection.send(&small).expect("room");
    }
    assert_eq!(b.message().await, big);
    for n in 0..10_000u32 {
        let small = b.message().await;
        assert_eq!(small[..4], n.to_le_bytes(), "message {n} in order");
        assert_eq!(small.len(), 4 + (n % 200) as usize);
    }
    b.connection.send(&big).expect("room");
    assert_eq!(a.message().await, big);
}

/// webrtc-rs 0.21.1 drops a message that comes in the datagram completing the SCTP handshake
/// (before the channel is set up at its end); an answerer that spoke at once lost its first
/// message to the offerer in 31 of 40 pairs, so the transport holds the answerer back
/// until it hears the offerer. Twenty pairs whose ends both speak as they open: every first
/// message arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_messages_sent_as_the_channel_opens_arrive() {
    for round in 0..20 {
        let (mut a, mut b) = pair_greeting(Some(b"hello")).await;
        assert_eq!(a.message().await, b"hello", "round {round}: the answerer's");
        assert_eq!(b.message().await, b"hello", "round {round}: the offerer's");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_above_the_receivers_maximum_closes_the_connection() {
    let (a, mut b) = pair().await;
    a.connection
        .send(&vec![7; TransportConfig::default().max_message + 1])
        .expect("the sender's queue takes it");
    match b.next().await {
        TransportEvent::Closed { reason } => {
            assert!(reason.contains("above the limit"), "{reason}")
        }
        other => panic!("closed, not {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_send_queue_refuses_beyond_its_limit() {
    let (a, _b) = pair().await;
    let max = TransportConfig::default().max_queued;
    // Without awaiting, the writer cannot drain: the queue fills.
    let chunk = vec![1; 1 << 20];
    let mut taken = 0;
    let refused = loop {
        match a.connection.send(&chunk) {
            Ok(()) => taken += chunk.len(),
            Err(full) => break full,
        }
        assert!(taken <= max + chunk.len(), "the queue is bounded");
    };
    assert_eq!(refused.max, max);
}
