//! The signaling endpoint (`GET /signal`, a WebSocket): one task owns the server's state
//! machine (`bitmesh_mesh::signaling::SignalingServer`); each connection's task passes it what
//! the client sends and writes what it answers. A client whose outgoing queue fills (it does
//! not read) is dropped, so no client can make the node buffer without bound.

use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use bitmesh_mesh::signaling::{
    ServerConfig, ServerInput, ServerOutput, SignalingServer, MAX_SIGNALING_MESSAGE,
};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;

/// Messages waiting to be written to one client at most.
const CLIENT_QUEUE: usize = 256;
/// Frames above this are refused by the WebSocket layer itself (the connection closes);
/// between [`MAX_SIGNALING_MESSAGE`] and this, the state machine answers with an error.
const MAX_FRAME_BYTES: usize = 4 * MAX_SIGNALING_MESSAGE;
/// Inputs waiting for the server task at most.
const SERVER_QUEUE: usize = 4_096;
const TICK: Duration = Duration::from_secs(1);
/// How long a connection the server closed waits for the client's Close (RFC 6455 §7.1.1).
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// What connection tasks send the server task.
enum Event {
    Opened {
        client: u64,
        outgoing: mpsc::Sender<Outgoing>,
    },
    Input(ServerInput),
}

/// What the server task sends a connection task.
enum Outgoing {
    Text(String),
    Close,
}

/// The endpoint's handle, shared by the router.
#[derive(Clone)]
pub struct Signaling {
    events: mpsc::Sender<Event>,
    next_client: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Signaling {
    /// Starts the server task for `config`.
    pub fn start(config: ServerConfig) -> Signaling {
        let (events, receiver) = mpsc::channel(SERVER_QUEUE);
        tokio::spawn(run(SignalingServer::new(config), receiver));
        Signaling {
            events,
            next_client: Default::default(),
        }
    }
}

/// A client of the server inside this process (the node's own peer): the same protocol as a
/// WebSocket client, over channels.
pub struct LocalClient {
    client: u64,
    events: mpsc::Sender<Event>,
    incoming: mpsc::Receiver<Outgoing>,
}

impl LocalClient {
    /// Sends a text to the server; false once it is gone.
    pub async fn send(&self, text: String) -> bool {
        let input = ServerInput::Text {
            client: self.client,
            text,
        };
        self.events.send(Event::Input(input)).await.is_ok()
    }

    /// The server's next text; None once it closed this client.
    pub async fn next(&mut self) -> Option<String> {
        match self.incoming.recv().await? {
            Outgoing::Text(text) => Some(text),
            Outgoing::Close => None,
        }
    }
}

impl Drop for LocalClient {
    fn drop(&mut self) {
        let _ = self.events.try_send(Event::Input(ServerInput::Closed {
            client: self.client,
        }));
    }
}

impl Signaling {
    /// Connects a client inside this process.
    pub async fn connect_local(&self) -> Option<LocalClient> {
        use std::sync::atomic::Ordering;
        let client = self.next_client.fetch_add(1, Ordering::Relaxed);
        let (outgoing, incoming) = mpsc::channel(CLIENT_QUEUE);
        self.events
            .send(Event::Opened { client, outgoing })
            .await
            .ok()?;
        Some(LocalClient {
            client,
            events: self.events.clone(),
            incoming,
        })
    }
}

/// `GET /signal`.
pub async fn upgrade(State(signaling): State<Signaling>, upgrade: WebSocketUpgrade) -> Response {
    upgrade
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| connection(signaling, socket))
}

async fn connection(signaling: Signaling, socket: WebSocket) {
    use std::sync::atomic::Ordering;
    let client = signaling.next_client.fetch_add(1, Ordering::Relaxed);
    let (outgoing, mut to_client) = mpsc::channel(CLIENT_QUEUE);
    if signaling
        .events
        .send(Event::Opened { client, outgoing })
        .await
        .is_err()
    {
        return;
    }
    let (mut sink, mut stream) = socket.split();
    // Resolves to true when the server closed this client with a Close frame.
    let writer = async {
        while let Some(message) = to_client.recv().await {
            let frame = match message {
                Outgoing::Text(text) => Message::Text(text.into()),
                Outgoing::Close => Message::Close(Some(CloseFrame {
                    code: 1008,
                    reason: "closed by the signaling server".into(),
                })),
            };
            let close = matches!(frame, Message::Close(_));
            if sink.send(frame).await.is_err() {
                break;
            }
            if close {
                return true;
            }
        }
        false
    };
    let reader = async {
        while let Some(Ok(message)) = stream.next().await {
            let input = match message {
                Message::Text(text) => ServerInput::Text {
                    client,
                    text: text.as_str().to_owned(),
                },
                Message::Binary(bytes) => ServerInput::Binary {
                    client,
                    len: bytes.len(),
                },
                Message::Close(_) => break,
                Message::Ping(_) | Message::Pong(_) => continue,
            };
            if signaling.events.send(Event::Input(input)).await.is_err() {
                break;
            }
        }
    };
    // Whichever ends first (the client left, or the server closed it) ends the connection.
    let closed_by_server = tokio::select! {
        closed = writer => closed,
        _ = reader => false,
    };
    if closed_by_server {
        // Read and drop what the client still sends until it answers the Close: a socket closed
        // with unread input is reset, and a reset can discard, unread on the client's side, the
        // error that said why it was closed (a flooder's "slow down" was lost so).
        let drain = async {
            while let Some(Ok(message)) = stream.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(CLOSE_GRACE, drain).await;
    }
    let _ = signaling
        .events
        .send(Event::Input(ServerInput::Closed { client }))
        .await;
}

async fn run(mut server: SignalingServer, mut events: mpsc::Receiver<Event>) {
    let start = Instant::now();
    let mut clients: std::collections::HashMap<u64, mpsc::Sender<Outgoing>> = Default::default();
    let mut tick = tokio::time::interval(TICK);
    loop {
        let input = tokio::select! {
            event = events.recv() => match event {
                None => return,
                Some(Event::Opened { client, outgoing }) => {
                    clients.insert(client, outgoing);
                    let mut nonce = [0u8; 32];
                    if getrandom::getrandom(&mut nonce).is_err() {
                        tracing::error!("no randomness for a signaling challenge");
                        clients.remove(&client);
                        continue;
                    }
                    ServerInput::Opened { client, nonce }
                }
                Some(Event::Input(input)) => {
                    if let ServerInput::Closed { client } = input {
                        clients.remove(&client);
                    }
                    input
                }
            },
            _ = tick.tick() => ServerInput::Tick,
        };
        let now = start.elapsed().as_millis() as u64;
        for output in server.handle(now, input) {
            let (client, outgoing) = match output {
                ServerOutput::Send { client, text } => (client, Outgoing::Text(text)),
                ServerOutput::Close { client } => (client, Outgoing::Close),
            };
            let Some(sender) = clients.get(&client) else {
                continue;
            };
            if sender.try_send(outgoing).is_err() {
                // It does not read: dropping its sender ends its connection.
                tracing::debug!(client, "signaling client too slow; dropped");
                clients.remove(&client);
            }
        }
    }
}
