//! Browser-only tests: run with `wasm-pack test --headless --chrome web`.
#![cfg(target_arch = "wasm32")]

use bitmesh_core::store::{Table, WriteBatch};
use bitmesh_web::driver::hold_lock;
use bitmesh_web::store::IdbStore;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// A database name no other test run uses.
fn fresh_name(test: &str) -> String {
    format!("bitmesh-test-{test}-{}", js_sys::Math::random())
}

#[wasm_bindgen_test]
async fn indexeddb_round_trip_survives_reopen() {
    let name = fresh_name("round-trip");
    let store = IdbStore::open(&name).await.expect("open");

    let mut batch = WriteBatch::new();
    batch.put(Table::META, b"alpha".to_vec(), b"one".to_vec());
    batch.put(Table::META, b"beta".to_vec(), vec![0, 1, 2, 255]);
    batch.put(Table::META, b"gone".to_vec(), b"soon".to_vec());
    batch.delete(Table::META, b"gone".to_vec());
    store.apply(&batch).await.expect("apply");

    assert_eq!(
        store.get(Table::META, b"alpha").await.unwrap(),
        Some(b"one".to_vec())
    );
    assert_eq!(
        store.get(Table::META, b"beta").await.unwrap(),
        Some(vec![0, 1, 2, 255])
    );
    assert_eq!(store.get(Table::META, b"gone").await.unwrap(), None);
    assert_eq!(store.get(Table::META, b"never").await.unwrap(), None);
    store.close();

    let reopened = IdbStore::open(&name).await.expect("reopen");
    assert_eq!(
        reopened.get(Table::META, b"alpha").await.unwrap(),
        Some(b"one".to_vec())
    );
    assert_eq!(
        reopened.get(Table::META, b"beta").await.unwrap(),
        Some(vec![0, 1, 2, 255])
    );
    assert_eq!(reopened.get(Table::META, b"gone").await.unwrap(), None);
    reopened.close();
}

#[wasm_bindgen_test]
fn genesis_hash_in_wasm_matches_the_native_constant() {
    // The same constant `crates/core/tests/genesis.rs` checks natively.
    assert_eq!(
        bitmesh_core::Network::Local.genesis_hash().to_string(),
        "0000d87272e733092b928dfe2abfc980e7b60852a3e6e77e9e7518c9a174c7b8"
    );
}

/// Resolves after `millis` (a bound on waiting for an event).
async fn sleep_millis(millis: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, millis);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// Only one holder of a profile's lock for a network at a time: the tab that has it keeps it
/// for its life, another asking without waiting is told no; another name is its own lock; a
/// taker-over steals it and the holder hears so.
#[wasm_bindgen_test]
async fn the_web_lock_is_held_by_one_at_a_time() {
    let name = fresh_name("lock");
    let (lost, taken) = futures_channel::oneshot::channel::<()>();
    assert!(
        hold_lock(&name, false, move || {
            let _ = lost.send(());
        })
        .await,
        "the first asker holds it"
    );
    assert!(
        !hold_lock(&name, false, || ()).await,
        "a second asker does not"
    );
    assert!(hold_lock(&format!("{name}-other"), false, || ()).await);
    assert!(hold_lock(&name, true, || ()).await, "a taker-over gets it");
    let heard = futures_util::future::select(taken, Box::pin(sleep_millis(5_000))).await;
    assert!(
        matches!(heard, futures_util::future::Either::Left((Ok(()), _))),
        "the first holder hears it was taken over"
    );
}
