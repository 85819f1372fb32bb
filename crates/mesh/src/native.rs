//! The native transport on webrtc-rs: one peer connection with the same pre-negotiated,
//! ordered channel as the browser's, the same framing, and the same events. Two tasks per
//! connection: one reads the channel's events and reassembles messages, one writes frames,
//! waiting on the channel's own send buffer (32 KiB: larger ones overflow Chromium's socket
//! buffer and throughput collapses). Queued bytes are bounded by [`TransportConfig::max_queued`].
//!
//! An answering end sends nothing until it has heard the offerer. webrtc-rs 0.21.1 hands a
//! data chunk that shares a datagram with the SCTP handshake's last chunk (COOKIE ACK) to its
//! data channels before it tells them the association is up, and a pre-negotiated channel
//! drops it then. The answerer is the DTLS server here, and so the SCTP server, which sends
//! that COOKIE ACK. Its first messages, sent the moment its channel opened, shared the datagram
//! and were lost at a native offerer in most connections. The offerer is up by the time it
//! speaks, so a message that follows the offerer's cannot be lost that way. Every peer sends a
//! hello as its channel opens, so the wait is one message long.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::peer_connection::transport::RTCDtlsRole;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use webrtc::data_channel::{DataChannel, DataChannelEvent, RTCDataChannelInit};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceCandidateInit, RTCIceServer, RTCPeerConnectionIceEvent, RTCPeerConnectionState,
    RTCSessionDescription, SettingEngineBuilder,
};

use crate::framing::{frame_parts, QueueFull, Reassembler};
use crate::sdp;
use crate::signaling::Signal;
use crate::transport::{TransportConfig, TransportEvent, CHANNEL_ID, CHANNEL_LABEL};

pub use crate::transport::TransportError;

/// The channel's own send buffer (see the module's words).
const SEND_BUFFER: usize = 32 * 1024;
/// How often a half-sent message's deadline is checked.
const DEADLINE_CHECK: Duration = Duration::from_secs(1);
/// The longest a closing connection waits for its queued messages to go out.
const DRAIN_LIMIT: Duration = Duration::from_secs(1);

type Callback<T> = Arc<dyn Fn(T) + Send + Sync>;

/// Tells the driver a connection closed, once, whichever of its tasks sees it first.
#[derive(Clone)]
struct Events {
    on_event: Callback<TransportEvent>,
    closed: Arc<AtomicBool>,
}

impl Events {
    fn emit(&self, event: TransportEvent) {
        if let TransportEvent::Closed { .. } = event {
            if self.closed.swap(true, Ordering::SeqCst) {
                return;
            }
        } else if self.closed.load(Ordering::SeqCst) {
            return;
        }
        (self.on_event)(event);
    }
}

/// Where the native peer binds its UDP sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeConfig {
    pub transport: TransportConfig,
    /// The address of host candidates (loopback by default: binding 0.0.0.0 never yields a
    /// loopback candidate).
    pub bind: IpAddr,
}

impl NativeConfig {
    /// Browsers on a local network hide their addresses behind mDNS names (`….local`): a
    /// peer bound beyond loopback resolves them; on loopback (and in loopback-only test
    /// namespaces, which have no multicast) mDNS stays off.
    fn mdns(&self) -> MulticastDnsMode {
        if self.bind.is_loopback() {
            MulticastDnsMode::Disabled
        } else {
            MulticastDnsMode::QueryOnly
        }
    }
}

impl Default for NativeConfig {
    fn default() -> Self {
        NativeConfig {
            transport: TransportConfig::default(),
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }
}

struct Handler {
    session: u64,
    on_signal: Callback<Signal>,
    events: Events,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            (self.on_signal)(Signal::Candidate {
                session: self.session,
                candidate: init.candidate,
                sdp_mid: init.sdp_mid,
                sdp_m_line_index: init.sdp_mline_index,
            });
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        if state == RTCPeerConnectionState::Failed {
            self.events.emit(TransportEvent::Closed {
                reason: "the connection failed".into(),
            });
        }
    }
}

/// One connection to one peer.
#[derive(Clone)]
pub struct NativeConnection {
    session: u64,
    pc: Arc<dyn PeerConnection>,
    channel: Arc<dyn DataChannel>,
    outgoing: mpsc::UnboundedSender<(Vec<u8>, OwnedSemaphorePermit)>,
    room: Arc<Semaphore>,
    max_queued: usize,
    /// Whether this end may send yet (see the module's words): at once when it offers, once
    /// it has heard the other end when it answers.
    may_speak: watch::Sender<bool>,
    /// Candidates that came before the remote description (the other end's candidates may
    /// overtake its answer): added once it is set. None once it is.
    early_candidates: Arc<std::sync::Mutex<Option<Vec<RTCIceCandidateInit>>>>,
}

impl NativeConnection {
    /// A connection for signaling session `session` (call inside a tokio runtime).
    pub async fn new(
        config: &NativeConfig,
        session: u64,
        on_event: impl Fn(TransportEvent) + Send + Sync + 'static,
        on_signal: impl Fn(Signal) + Send + Sync + 'static,
    ) -> Result<NativeConnection, TransportError> {
        let events = Events {
            on_event: Arc::new(on_event),
            closed: Arc::new(AtomicBool::new(false)),
        };
        let settings = SettingEngineBuilder::new()
            .with_multicast_dns_mode(config.mdns())
            .with_answering_dtls_role(RTCDtlsRole::Server)
            .build();
        let ice_servers = config
            .transport
            .ice_servers
            .iter()
            .map(|url| RTCIceServer {
                urls: vec![url.clone()],
                ..Default::default()
            })
            .collect();
        let pc = PeerConnectionBuilder::new()
            .with_configuration(
                RTCConfigurationBuilder::new()
                    .with_ice_servers(ice_servers)
                    .build(),
            )
            .with_setting_engine(settings)
            .with_handler(Arc::new(Handler {
                session,
                on_signal: Arc::new(on_signal),
                events: events.clone(),
            }))
            .with_udp_addrs(vec![SocketAddr::new(config.bind, 0)])
            .with_data_channel_send_buffer_limit(SEND_BUFFER)
            .build()
            .await
            .map_err(|err| TransportError(format!("cannot create a peer connection: {err}")))?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);
        let channel = pc
            .create_data_channel(
                CHANNEL_LABEL,
                Some(RTCDataChannelInit {
                    ordered: true,
                    negotiated: Some(CHANNEL_ID),
                    ..Default::default()
                }),
            )
            .await
            .map_err(|err| TransportError(format!("cannot create the data channel: {err}")))?;
        let max_queued = config.transport.max_queued;
        let room = Arc::new(Semaphore::new(max_queued));
        let (outgoing, to_send) = mpsc::unbounded_channel();
        let unframed = config.transport.unframed;
        let reassembler = (!unframed).then(|| Reassembler::new(config.transport.max_message));
        let may_speak = watch::Sender::new(false);
        tokio::spawn(read(
            pc.clone(),
            channel.clone(),
            reassembler,
            events,
            may_speak.clone(),
        ));
        tokio::spawn(write(
            channel.clone(),
            to_send,
            unframed,
            may_speak.subscribe(),
        ));
        Ok(NativeConnection {
            session,
            pc,
            channel,
            outgoing,
            room,
            max_queued,
            may_speak,
            early_candidates: Arc::new(std::sync::Mutex::new(Some(Vec::new()))),
        })
    }

    /// Starts the connection: the offer to send to the other end.
    pub async fn offer(&self) -> Result<Signal, TransportError> {
        let offer = self
            .pc
            .create_offer(None)
            .await
            .map_err(|err| TransportError(format!("cannot create an offer: {err}")))?;
        let sdp = offer.sdp.clone();
        self.pc
            .set_local_description(offer)
            .await
            .map_err(|err| TransportError(format!("cannot set the local description: {err}")))?;
        self.may_speak.send_replace(true);
        Ok(Signal::Offer {
            session: self.session,
            sdp,
        })
    }

    /// Takes the other end's offer: the answer to send back.
    pub async fn answer(&self, offer: &str) -> Result<Signal, TransportError> {
        let offer = RTCSessionDescription::offer(offer.to_owned())
            .map_err(|err| TransportError(format!("a malformed offer: {err}")))?;
        self.pc
            .set_remote_description(offer)
            .await
            .map_err(|err| TransportError(format!("cannot take the offer: {err}")))?;
        self.add_early_candidates().await?;
        let answer = self
            .pc
            .create_answer(None)
            .await
            .map_err(|err| TransportError(format!("cannot create an answer: {err}")))?;
        let sdp = answer.sdp.clone();
        self.pc
            .set_local_description(answer)
            .await
            .map_err(|err| TransportError(format!("cannot set the local description: {err}")))?;
        Ok(Signal::Answer {
            session: self.session,
            sdp,
        })
    }

    /// Takes the other end's answer to this end's offer.
    pub async fn accept_answer(&self, answer: &str) -> Result<(), TransportError> {
        let answer = RTCSessionDescription::answer(answer.to_owned())
            .map_err(|err| TransportError(format!("a malformed answer: {err}")))?;
        self.pc
            .set_remote_description(answer)
            .await
            .map_err(|err| TransportError(format!("cannot take the answer: {err}")))?;
        self.add_early_candidates().await
    }

    async fn add_early_candidates(&self) -> Result<(), TransportError> {
        let early = self
            .early_candidates
            .lock()
            .expect("not poisoned")
            .take()
            .unwrap_or_default();
        for init in early {
            self.add(init).await?;
        }
        Ok(())
    }

    async fn add(&self, init: RTCIceCandidateInit) -> Result<(), TransportError> {
        self.pc
            .add_ice_candidate(init)
            .await
            .map_err(|err| TransportError(format!("cannot add a candidate: {err}")))
    }

    /// Takes one of the other end's ICE candidates.
    pub async fn add_candidate(
        &self,
        candidate: &str,
        sdp_mid: Option<&str>,
        sdp_m_line_index: Option<u16>,
    ) -> Result<(), TransportError> {
        let init = RTCIceCandidateInit {
            candidate: candidate.to_owned(),
            sdp_mid: sdp_mid.map(str::to_owned),
            sdp_mline_index: sdp_m_line_index,
            ..Default::default()
        };
        if let Some(early) = self.early_candidates.lock().expect("not poisoned").as_mut() {
            early.push(init);
            return Ok(());
        }
        self.add(init).await
    }

    /// Queues `message` for sending, unless that would take the queue past its limit.
    pub fn send(&self, message: &[u8]) -> Result<(), QueueFull> {
        let full = || QueueFull {
            queued: self.queued_bytes(),
            max: self.max_queued,
        };
        let cost = u32::try_from(message.len().max(1)).map_err(|_| full())?;
        let permit = self
            .room
            .clone()
            .try_acquire_many_owned(cost)
            .map_err(|_| full())?;
        self.outgoing
            .send((message.to_vec(), permit))
            .map_err(|_| full())
    }

    /// Bytes of messages not yet handed to the channel.
    pub fn queued_bytes(&self) -> usize {
        self.max_queued - self.room.available_permits()
    }

    /// Closes the connection once its queued messages are handed to the channel (so a
    /// goodbye gets out), or after [`DRAIN_LIMIT`].
    pub async fn close(&self) {
        let queued = u32::try_from(self.max_queued).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(DRAIN_LIMIT, self.room.acquire_many(queued)).await;
        let _ = self.channel.close().await;
        let _ = self.pc.close().await;
    }
}

/// Frames each queued message into the channel, once this end may speak; `send` waits while
/// its buffer is full.
async fn write(
    channel: Arc<dyn DataChannel>,
    mut to_send: mpsc::UnboundedReceiver<(Vec<u8>, OwnedSemaphorePermit)>,
    unframed: bool,
    mut may_speak: watch::Receiver<bool>,
) {
    // An error: the connection is gone (every sender dropped) before this end could speak.
    if may_speak.wait_for(|may| *may).await.is_err() {
        return;
    }
    while let Some((message, permit)) = to_send.recv().await {
        if unframed {
            if channel.send(BytesMut::from(&message[..])).await.is_err() {
                return;
            }
            continue;
        }
        for (header, data) in frame_parts(&message) {
            let mut frame = BytesMut::with_capacity(header.as_bytes().len() + data.len());
            frame.extend_from_slice(header.as_bytes());
            frame.extend_from_slice(data);
            if channel.send(frame).await.is_err() {
                return;
            }
        }
        drop(permit);
    }
}

/// Reads the channel's events: the open (with both fingerprints), whole messages, the close.
/// Without a reassembler (unframed), each channel message is a message.
async fn read(
    pc: Arc<dyn PeerConnection>,
    channel: Arc<dyn DataChannel>,
    mut reassembler: Option<Reassembler>,
    events: Events,
    may_speak: watch::Sender<bool>,
) {
    let start = Instant::now();
    let mut deadline = tokio::time::interval(DEADLINE_CHECK);
    // Whether a message came yet: `may_speak` is set once, not locked for every message.
    let mut heard = false;
    let reason = loop {
        let event = tokio::select! {
            event = channel.poll() => event,
            _ = deadline.tick() => {
                let now = start.elapsed().as_millis() as u64;
                let stalled = reassembler.as_ref().map(|r| r.check_deadline(now));
                if let Some(Err(err)) = stalled {
                    break format!("the peer sent a bad frame: {err}");
                }
                continue;
            }
        };
        match event {
            Some(DataChannelEvent::OnOpen) => match fingerprints(pc.as_ref()).await {
                Ok(event) => events.emit(event),
                Err(reason) => break reason,
            },
            Some(DataChannelEvent::OnMessage(message)) => {
                if !heard {
                    heard = true;
                    may_speak.send_replace(true);
                }
                let Some(reassembler) = reassembler.as_mut() else {
                    events.emit(TransportEvent::Message(message.data.to_vec()));
                    continue;
                };
                let now = start.elapsed().as_millis() as u64;
                match reassembler.push(&message.data, now) {
                    Ok(Some(message)) => events.emit(TransportEvent::Message(message)),
                    Ok(None) => {}
                    Err(err) => break format!("the peer sent a bad frame: {err}"),
                }
            }
            Some(DataChannelEvent::OnClose) | None => break "the data channel closed".into(),
            Some(_) => {}
        }
    };
    let _ = channel.close().await;
    let _ = pc.close().await;
    events.emit(TransportEvent::Closed { reason });
}

async fn fingerprints(pc: &dyn PeerConnection) -> Result<TransportEvent, String> {
    let local = pc.local_description().await.ok_or("no local description")?;
    let remote = pc
        .remote_description()
        .await
        .ok_or("no remote description")?;
    Ok(TransportEvent::Open {
        local_fingerprint: sdp::fingerprint(&local.sdp)
            .map_err(|err| format!("this end: {err}"))?,
        remote_fingerprint: sdp::fingerprint(&remote.sdp)
            .map_err(|err| format!("the other end: {err}"))?,
    })
}
