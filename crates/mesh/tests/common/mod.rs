//! What the browser test and the browser bench share: a timer, a bound on any wait, and a
//! connection whose events and signals go to channels.

use core::future::Future;

use bitmesh_mesh::browser::BrowserConnection;
use bitmesh_mesh::signaling::Signal;
use bitmesh_mesh::transport::{TransportConfig, TransportEvent};
use futures_channel::mpsc;
use futures_util::{future, FutureExt};
use wasm_bindgen::JsCast;

/// Resolves after `millis`.
pub async fn sleep(millis: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        web_sys::window()
            .expect("a window")
            .set_timeout_with_callback_and_timeout_and_arguments_0(resolve.unchecked_ref(), millis)
            .expect("a timer");
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// `future`'s output, or `None` if it takes more than `millis`.
pub async fn within<T>(millis: i32, future: impl Future<Output = T>) -> Option<T> {
    let future = Box::pin(future).fuse();
    let timer = Box::pin(sleep(millis)).fuse();
    match future::select(future, timer).await {
        future::Either::Left((output, _)) => Some(output),
        future::Either::Right(_) => None,
    }
}

/// A connection made with `config`, with the events and the signals it reports.
pub fn connection(
    config: &TransportConfig,
) -> (
    BrowserConnection,
    mpsc::UnboundedReceiver<TransportEvent>,
    mpsc::UnboundedReceiver<Signal>,
) {
    let (events, events_rx) = mpsc::unbounded();
    let (signals, signals_rx) = mpsc::unbounded();
    let connection = BrowserConnection::new(
        config,
        1,
        move |event| drop(events.unbounded_send(event)),
        move |signal| drop(signals.unbounded_send(signal)),
    )
    .expect("a peer connection");
    (connection, events_rx, signals_rx)
}
