//! bitmesh's own endpoints beside the Esplora-compatible ones: the UTXO set in brief (to compare
//! two nodes), the peers the node knows, and the faucet (`POST /api/faucet` with an address as
//! the body).

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bitcoin::hex::DisplayHex;
use bitmesh_core::faucet::{Payment, Requester};
use bitmesh_node::faucet::FaucetError;
use serde_json::json;

use crate::peer::PeerHandle;

pub fn router(peer: PeerHandle) -> Router {
    Router::new()
        .route("/api/utxo-summary", get(utxo_summary))
        .route("/api/peers", get(peers))
        .route("/api/faucet", post(faucet))
        .with_state(peer)
}

fn gone() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the node's peer is not running",
    )
        .into_response()
}

async fn utxo_summary(State(peer): State<PeerHandle>) -> Response {
    match peer.utxo_summary().await {
        Some(summary) => Json(summary).into_response(),
        None => gone(),
    }
}

/// The peers the node knows: id, features, when last seen (Unix seconds), newest first.
async fn peers(State(peer): State<PeerHandle>) -> Response {
    let Some(records) = peer.query(|view| view.known_peers()).await else {
        return gone();
    };
    let records: Vec<_> = records
        .iter()
        .map(|record| {
            json!({
                "peer": record.peer.0.to_lower_hex_string(),
                "features": record.features.0,
                "last_seen": record.last_seen_secs,
            })
        })
        .collect();
    Json(records).into_response()
}

/// Pays the address in the body. An HTTP client is rate-limited by its IP address.
async fn faucet(
    State(peer): State<PeerHandle>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Response {
    let Ok(address) = std::str::from_utf8(&body).map(|text| text.trim().to_owned()) else {
        return (StatusCode::BAD_REQUEST, "the body is not an address").into_response();
    };
    let requester = Requester::Ip(client.ip());
    let answer = peer
        .query(move |view| view.faucet(&address, requester))
        .await;
    match answer {
        None => gone(),
        Some(None) => (StatusCode::NOT_FOUND, "this node runs no faucet").into_response(),
        Some(Some(Ok(Payment { sats, txid, asset }))) => Json(json!({
            "txid": txid.to_string(),
            "sats": sats,
            "asset": asset.map(|grant| json!({
                "asset": grant.asset.to_string(),
                "units": grant.units,
                "txid": grant.txid.to_string(),
            })),
        }))
        .into_response(),
        Some(Some(Err(err))) => refusal(&err),
    }
}

fn refusal(err: &FaucetError) -> Response {
    let words = err.to_string();
    match err {
        FaucetError::NotAnAddress(_) | FaucetError::WrongNetwork { .. } => {
            (StatusCode::BAD_REQUEST, words).into_response()
        }
        FaucetError::Limited(refusal) => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, refusal.wait_secs().to_string())],
            words,
        )
            .into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, words).into_response(),
    }
}
