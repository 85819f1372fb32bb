//! The browser transport: one `RTCPeerConnection` with one pre-negotiated, ordered, reliable
//! data channel, framed by [`crate::framing`]. Events go to the driver's callback; local ICE
//! candidates to the signaling callback (the server or the mesh carries them).

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use futures_channel::oneshot;
use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    MessageEvent, RtcConfiguration, RtcDataChannel, RtcDataChannelInit, RtcDataChannelState,
    RtcDataChannelType, RtcIceCandidateInit, RtcPeerConnection, RtcPeerConnectionIceEvent,
    RtcPeerConnectionState, RtcSdpType, RtcSessionDescriptionInit,
};

use crate::framing::{QueueFull, Reassembler, SendQueue};
use crate::sdp;
use crate::signaling::Signal;
pub use crate::transport::TransportError;
use crate::transport::{
    TransportConfig, TransportEvent, CHANNEL_ID, CHANNEL_LABEL, HIGH_WATER, LOW_WATER,
};

fn js_error(context: &str, value: JsValue) -> TransportError {
    let detail = value
        .dyn_ref::<js_sys::Error>()
        .map(|err| String::from(err.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| format!("{value:?}"));
    TransportError(format!("{context}: {detail}"))
}

type Callback<T> = Box<dyn Fn(T)>;
type Handler = Closure<dyn FnMut(JsValue)>;

struct Inner {
    session: u64,
    pc: RtcPeerConnection,
    channel: RtcDataChannel,
    queue: RefCell<SendQueue>,
    reassembler: RefCell<Reassembler>,
    on_event: Callback<TransportEvent>,
    on_signal: Callback<Signal>,
    closed: Cell<bool>,
    unframed: bool,
    /// Candidates that came before the remote description (the other end's candidates may
    /// overtake its answer): added once it is set. None once it is.
    early_candidates: RefCell<Option<Vec<RtcIceCandidateInit>>>,
    /// Who waits for the queue to fall below a size ([`BrowserConnection::writable`]).
    waiters: RefCell<Vec<(usize, oneshot::Sender<()>)>>,
    /// The event handlers, kept alive as long as the connection.
    handlers: RefCell<Vec<Handler>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The handlers die with this: the browser must not call them any more.
        self.pc.set_onicecandidate(None);
        self.pc.set_onconnectionstatechange(None);
        self.channel.set_onopen(None);
        self.channel.set_onmessage(None);
        self.channel.set_onbufferedamountlow(None);
        self.channel.set_onclose(None);
        self.channel.close();
        self.pc.close();
    }
}

/// One connection to one peer.
#[derive(Clone)]
pub struct BrowserConnection {
    inner: Rc<Inner>,
}

impl BrowserConnection {
    /// A connection for signaling session `session`; `on_event` hears what happens on it and
    /// `on_signal` gets the local ICE candidates to send to the other end.
    pub fn new(
        config: &TransportConfig,
        session: u64,
        on_event: impl Fn(TransportEvent) + 'static,
        on_signal: impl Fn(Signal) + 'static,
    ) -> Result<BrowserConnection, TransportError> {
        let rtc = RtcConfiguration::new();
        let servers = Array::new();
        for url in &config.ice_servers {
            let server = Object::new();
            Reflect::set(&server, &"urls".into(), &url.into()).expect("a plain object");
            servers.push(&server);
        }
        rtc.set_ice_servers(&servers);
        let pc = RtcPeerConnection::new_with_configuration(&rtc)
            .map_err(|err| js_error("cannot create a peer connection", err))?;
        let init = RtcDataChannelInit::new();
        init.set_negotiated(true);
        init.set_id(CHANNEL_ID);
        init.set_ordered(true);
        let channel = pc.create_data_channel_with_data_channel_dict(CHANNEL_LABEL, &init);
        channel.set_binary_type(RtcDataChannelType::Arraybuffer);
        channel.set_buffered_amount_low_threshold(LOW_WATER as u32);
        let inner = Rc::new(Inner {
            session,
            pc,
            channel,
            queue: RefCell::new(SendQueue::new(config.max_queued)),
            reassembler: RefCell::new(Reassembler::new(config.max_message)),
            on_event: Box::new(on_event),
            on_signal: Box::new(on_signal),
            closed: Cell::new(false),
            unframed: config.unframed,
            waiters: RefCell::new(Vec::new()),
            early_candidates: RefCell::new(Some(Vec::new())),
            handlers: RefCell::new(Vec::new()),
        });
        install_handlers(&inner);
        Ok(BrowserConnection { inner })
    }

    /// Starts the connection: the offer to send to the other end.
    pub async fn offer(&self) -> Result<Signal, TransportError> {
        let pc = &self.inner.pc;
        let offer = JsFuture::from(pc.create_offer())
            .await
            .map_err(|err| js_error("cannot create an offer", err))?;
        let sdp = sdp_of(&offer)?;
        self.set_local(RtcSdpType::Offer, &sdp).await?;
        Ok(Signal::Offer {
            session: self.inner.session,
            sdp,
        })
    }

    /// Takes the other end's offer: the answer to send back.
    pub async fn answer(&self, offer: &str) -> Result<Signal, TransportError> {
        self.set_remote(RtcSdpType::Offer, offer).await?;
        let answer = JsFuture::from(self.inner.pc.create_answer())
            .await
            .map_err(|err| js_error("cannot create an answer", err))?;
        let sdp = sdp_of(&answer)?;
        self.set_local(RtcSdpType::Answer, &sdp).await?;
        Ok(Signal::Answer {
            session: self.inner.session,
            sdp,
        })
    }

    /// Takes the other end's answer to this end's offer.
    pub async fn accept_answer(&self, answer: &str) -> Result<(), TransportError> {
        self.set_remote(RtcSdpType::Answer, answer).await
    }

    /// Takes one of the other end's ICE candidates.
    pub async fn add_candidate(
        &self,
        candidate: &str,
        sdp_mid: Option<&str>,
        sdp_m_line_index: Option<u16>,
    ) -> Result<(), TransportError> {
        let init = RtcIceCandidateInit::new(candidate);
        init.set_sdp_mid(sdp_mid);
        init.set_sdp_m_line_index(sdp_m_line_index);
        if let Some(early) = self.inner.early_candidates.borrow_mut().as_mut() {
            early.push(init);
            return Ok(());
        }
        self.add(&init).await
    }

    async fn add(&self, init: &RtcIceCandidateInit) -> Result<(), TransportError> {
        JsFuture::from(
            self.inner
                .pc
                .add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(init)),
        )
        .await
        .map(|_| ())
        .map_err(|err| js_error("cannot add a candidate", err))
    }

    /// Sends `message` (frames wait while the channel's buffer is full).
    pub fn send(&self, message: &[u8]) -> Result<(), QueueFull> {
        if self.inner.unframed {
            self.inner.queue.borrow_mut().push_unframed(message)?;
        } else {
            self.inner.queue.borrow_mut().push(message)?;
        }
        pump(&self.inner);
        Ok(())
    }

    /// Bytes waiting to be handed to the channel.
    pub fn queued_bytes(&self) -> usize {
        self.inner.queue.borrow().queued_bytes()
    }

    /// Resolves once fewer than `below` bytes wait to be sent (or the connection closed): a
    /// sender of much data awaits this between messages instead of filling the queue.
    pub async fn writable(&self, below: usize) {
        if self.queued_bytes() < below || self.inner.closed.get() {
            return;
        }
        let (ready, wait) = oneshot::channel();
        self.inner.waiters.borrow_mut().push((below, ready));
        let _ = wait.await;
    }

    /// Closes a connection whose peer left a message half-sent too long (call every second).
    pub fn tick(&self, now_millis: u64) {
        let stalled = self.inner.reassembler.borrow().check_deadline(now_millis);
        if let Err(err) = stalled {
            fail(&self.inner, err.to_string());
        }
    }

    pub fn close(&self) {
        fail(&self.inner, "closed by this end".into());
    }

    async fn set_local(&self, kind: RtcSdpType, sdp: &str) -> Result<(), TransportError> {
        let description = RtcSessionDescriptionInit::new(kind);
        description.set_sdp(sdp);
        JsFuture::from(self.inner.pc.set_local_description(&description))
            .await
            .map(|_| ())
            .map_err(|err| js_error("cannot set the local description", err))
    }

    async fn set_remote(&self, kind: RtcSdpType, sdp: &str) -> Result<(), TransportError> {
        let description = RtcSessionDescriptionInit::new(kind);
        description.set_sdp(sdp);
        JsFuture::from(self.inner.pc.set_remote_description(&description))
            .await
            .map_err(|err| js_error("cannot set the remote description", err))?;
        let early = self.inner.early_candidates.borrow_mut().take();
        for init in early.unwrap_or_default() {
            self.add(&init).await?;
        }
        Ok(())
    }
}

fn sdp_of(description: &JsValue) -> Result<String, TransportError> {
    Reflect::get(description, &"sdp".into())
        .ok()
        .and_then(|sdp| sdp.as_string())
        .ok_or_else(|| TransportError("a session description without SDP".into()))
}

/// Hands the channel frames while its buffer is below the high-water mark.
fn pump(inner: &Inner) {
    if inner.closed.get() || inner.channel.ready_state() != RtcDataChannelState::Open {
        return;
    }
    loop {
        let buffered = inner.channel.buffered_amount() as usize;
        let Some(frame) = inner.queue.borrow_mut().next(buffered, HIGH_WATER) else {
            let queued = inner.queue.borrow().queued_bytes();
            let mut waiters = inner.waiters.borrow_mut();
            let (ready, waiting): (Vec<_>, Vec<_>) =
                waiters.drain(..).partition(|(below, _)| queued < *below);
            *waiters = waiting;
            for (_, ready) in ready {
                let _ = ready.send(());
            }
            return;
        };
        if let Err(err) = inner.channel.send_with_u8_array(&frame) {
            fail(inner, js_error("the data channel refused a frame", err).0);
            return;
        }
    }
}

/// Closes the connection once and tells the driver why.
fn fail(inner: &Inner, reason: String) {
    if inner.closed.replace(true) {
        return;
    }
    inner.channel.close();
    inner.pc.close();
    // Dropped senders wake whoever waits for room.
    inner.waiters.borrow_mut().clear();
    (inner.on_event)(TransportEvent::Closed { reason });
}

fn fingerprints(inner: &Inner) -> Result<TransportEvent, String> {
    let local = inner
        .pc
        .local_description()
        .ok_or("no local description")?
        .sdp();
    let remote = inner
        .pc
        .remote_description()
        .ok_or("no remote description")?
        .sdp();
    let local = sdp::fingerprint(&local).map_err(|err| format!("this end: {err}"))?;
    let remote = sdp::fingerprint(&remote).map_err(|err| format!("the other end: {err}"))?;
    Ok(TransportEvent::Open {
        local_fingerprint: local,
        remote_fingerprint: remote,
    })
}

fn install_handlers(inner: &Rc<Inner>) {
    let mut handlers = Vec::new();
    let weak = Rc::downgrade(inner);
    let on = |handler: fn(&Rc<Inner>, JsValue)| {
        let weak: Weak<Inner> = weak.clone();
        Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
            if let Some(inner) = weak.upgrade() {
                handler(&inner, event);
            }
        })
    };

    let candidate = on(|inner, event| {
        let event: RtcPeerConnectionIceEvent = event.unchecked_into();
        // A null candidate ends gathering: nothing to send.
        if let Some(candidate) = event.candidate() {
            (inner.on_signal)(Signal::Candidate {
                session: inner.session,
                candidate: candidate.candidate(),
                sdp_mid: candidate.sdp_mid(),
                sdp_m_line_index: candidate.sdp_m_line_index(),
            });
        }
    });
    inner
        .pc
        .set_onicecandidate(Some(candidate.as_ref().unchecked_ref()));
    handlers.push(candidate);

    let open = on(|inner, _| match fingerprints(inner) {
        Ok(event) => {
            (inner.on_event)(event);
            pump(inner);
        }
        Err(reason) => fail(inner, reason),
    });
    inner
        .channel
        .set_onopen(Some(open.as_ref().unchecked_ref()));
    handlers.push(open);

    let message = on(|inner, event| {
        if inner.closed.get() {
            return;
        }
        let event: MessageEvent = event.unchecked_into();
        let frame = Uint8Array::new(&event.data()).to_vec();
        if inner.unframed {
            return (inner.on_event)(TransportEvent::Message(frame));
        }
        let now = js_sys::Date::now() as u64;
        let pushed = inner.reassembler.borrow_mut().push(&frame, now);
        match pushed {
            Ok(Some(message)) => (inner.on_event)(TransportEvent::Message(message)),
            Ok(None) => {}
            Err(err) => fail(inner, format!("the peer sent a bad frame: {err}")),
        }
    });
    inner
        .channel
        .set_onmessage(Some(message.as_ref().unchecked_ref()));
    handlers.push(message);

    let low = on(|inner, _| pump(inner));
    inner
        .channel
        .set_onbufferedamountlow(Some(low.as_ref().unchecked_ref()));
    handlers.push(low);

    // A peer that vanished (no close reaches us) shows as a failed connection.
    let state = on(|inner, _| {
        if inner.pc.connection_state() == RtcPeerConnectionState::Failed {
            fail(inner, "the connection failed".into());
        }
    });
    inner
        .pc
        .set_onconnectionstatechange(Some(state.as_ref().unchecked_ref()));
    handlers.push(state);

    let close = on(|inner, _| fail(inner, "the data channel closed".into()));
    inner
        .channel
        .set_onclose(Some(close.as_ref().unchecked_ref()));
    handlers.push(close);

    *inner.handlers.borrow_mut() = handlers;
}
