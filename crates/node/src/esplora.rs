//! The Esplora-compatible HTTP API under `/api` (the subset a wallet needs, in Blockstream
//! Esplora's formats): the tip, blocks, transactions with their status, script-hash and address
//! history and unspent outputs, fee estimates, and `POST /api/tx`. Answers come from the
//! running peer's chain, mempool and transaction index.

use std::str::FromStr;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bitcoin::consensus::{deserialize, serialize};
use bitcoin::hashes::{sha256, Hash};
use bitcoin::hex::{DisplayHex, FromHex};
use bitcoin::{Address, BlockHash, Transaction, Txid};
use bitmesh_core::chain::assets::AssetAmounts;
use bitmesh_core::Network;
use serde_json::{json, Value};

use crate::peer::{PeerHandle, View};

/// Transactions per page of a history, as Esplora.
const PAGE: usize = 25;

#[derive(Clone)]
struct Api {
    peer: PeerHandle,
    network: Network,
}

pub fn router(peer: PeerHandle, network: Network) -> Router {
    Router::new()
        .route("/api/blocks/tip/height", get(tip_height))
        .route("/api/blocks/tip/hash", get(tip_hash))
        .route("/api/blocks", get(recent_blocks))
        .route("/api/blocks/{height}", get(blocks_from))
        .route("/api/block-height/{height}", get(block_at))
        .route("/api/block/{hash}", get(block))
        .route("/api/block/{hash}/header", get(block_header))
        .route("/api/block/{hash}/raw", get(block_raw))
        .route("/api/block/{hash}/status", get(block_status))
        .route("/api/block/{hash}/txids", get(block_txids))
        .route("/api/block/{hash}/txid/{index}", get(block_txid))
        .route("/api/block/{hash}/txs", get(block_txs))
        .route("/api/block/{hash}/txs/{start}", get(block_txs_from))
        .route("/api/tx/{txid}", get(tx))
        .route("/api/tx/{txid}/hex", get(tx_hex))
        .route("/api/tx/{txid}/raw", get(tx_raw))
        .route("/api/tx/{txid}/status", get(tx_status))
        .route("/api/tx/{txid}/outspends", get(tx_outspends))
        .route("/api/tx/{txid}/outspend/{index}", get(tx_outspend))
        .route("/api/tx", post(post_tx))
        .route("/api/scripthash/{hash}/txs", get(script_txs))
        .route(
            "/api/scripthash/{hash}/txs/chain/{last}",
            get(script_txs_after),
        )
        .route("/api/scripthash/{hash}/utxo", get(script_utxo))
        .route("/api/address/{address}/txs", get(address_txs))
        .route(
            "/api/address/{address}/txs/chain/{last}",
            get(address_txs_after),
        )
        .route("/api/address/{address}/utxo", get(address_utxo))
        .route("/api/fee-estimates", get(fee_estimates))
        .with_state(Api { peer, network })
}

/// An error as Esplora answers it: a status and plain words.
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, self.1).into_response()
    }
}

fn refuse(status: StatusCode, words: impl Into<String>) -> Refusal {
    Refusal(status, words.into())
}

fn gone() -> Refusal {
    refuse(
        StatusCode::SERVICE_UNAVAILABLE,
        "the node's peer is not running",
    )
}

/// Where a confirmed transaction is: height, block, block time.
type Confirmation = Option<(u32, BlockHash, u32)>;

fn parse<T: FromStr>(text: &str, what: &str) -> Result<T, Refusal> {
    text.parse()
        .map_err(|_| refuse(StatusCode::BAD_REQUEST, format!("Invalid {what}: {text}")))
}

async fn ask<R: Send + 'static>(
    api: &Api,
    f: impl FnOnce(&mut View<'_>) -> R + Send + 'static,
) -> Result<R, Refusal> {
    api.peer.query(f).await.ok_or_else(gone)
}

fn text(value: impl ToString) -> Response {
    value.to_string().into_response()
}

fn octets(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
}

async fn tip_height(State(api): State<Api>) -> Result<Response, Refusal> {
    let height = ask(&api, |view| view.chain().height()).await?;
    Ok(text(height))
}

async fn tip_hash(State(api): State<Api>) -> Result<Response, Refusal> {
    let hash = ask(&api, |view| view.chain().tip()).await?;
    Ok(text(hash))
}

async fn block_at(State(api): State<Api>, Path(height): Path<String>) -> Result<Response, Refusal> {
    let height: u32 = parse(&height, "height")?;
    let hash = ask(&api, move |view| view.chain().hash_at(height))
        .await?
        .ok_or_else(|| refuse(StatusCode::NOT_FOUND, "Block not found"))?;
    Ok(text(hash))
}

/// Runs `f` on the block `hash` names, if the node has it.
async fn with_block<R: Send + 'static>(
    api: &Api,
    hash: &str,
    f: impl FnOnce(&View<'_>, &bitcoin::Block) -> R + Send + 'static,
) -> Result<R, Refusal> {
    let hash: BlockHash = parse(hash, "block hash")?;
    ask(api, move |view| {
        let block = view.chain().block(&hash)?.clone();
        Some(f(view, &block))
    })
    .await?
    .ok_or_else(|| refuse(StatusCode::NOT_FOUND, "Block not found"))
}

fn block_json(view: &View<'_>, block: &bitcoin::Block) -> Value {
    let hash = block.block_hash();
    let height = view.chain().index().get(&hash).map(|entry| entry.height);
    json!({
        "id": hash.to_string(),
        "height": height,
        "version": block.header.version.to_consensus(),
        "timestamp": block.header.time,
        "tx_count": block.txdata.len(),
        "size": block.total_size(),
        "weight": block.weight().to_wu(),
        "merkle_root": block.header.merkle_root.to_string(),
        "previousblockhash": block.header.prev_blockhash.to_string(),
        "nonce": block.header.nonce,
        "bits": block.header.bits.to_consensus(),
        "difficulty": block.header.difficulty_float(),
        "mediantime": median_time(view, &hash),
    })
}

/// The median time of the eleven blocks ending at `hash` (BIP113's median time past).
fn median_time(view: &View<'_>, hash: &BlockHash) -> u32 {
    let index = view.chain().index();
    let mut times = Vec::with_capacity(11);
    let mut next = Some(*hash);
    while let (Some(hash), true) = (next, times.len() < 11) {
        let Some(entry) = index.get(&hash) else { break };
        times.push(entry.header.time);
        next = (entry.height > 0).then_some(entry.header.prev_blockhash);
    }
    times.sort_unstable();
    times.get(times.len() / 2).copied().unwrap_or(0)
}

async fn block(State(api): State<Api>, Path(hash): Path<String>) -> Result<Response, Refusal> {
    let value = with_block(&api, &hash, block_json).await?;
    Ok(Json(value).into_response())
}

async fn block_header(
    State(api): State<Api>,
    Path(hash): Path<String>,
) -> Result<Response, Refusal> {
    let hex = with_block(&api, &hash, |_, block| {
        serialize(&block.header).to_lower_hex_string()
    })
    .await?;
    Ok(text(hex))
}

async fn block_raw(State(api): State<Api>, Path(hash): Path<String>) -> Result<Response, Refusal> {
    let bytes = with_block(&api, &hash, |_, block| serialize(block)).await?;
    Ok(octets(bytes))
}

async fn block_status(
    State(api): State<Api>,
    Path(hash): Path<String>,
) -> Result<Response, Refusal> {
    let value = with_block(&api, &hash, |view, block| {
        let chain = view.chain();
        let hash = block.block_hash();
        let height = chain.index().get(&hash).map(|entry| entry.height);
        let in_best = height.is_some_and(|height| chain.hash_at(height) == Some(hash));
        let next = height
            .filter(|_| in_best)
            .and_then(|height| chain.hash_at(height + 1));
        json!({
            "in_best_chain": in_best,
            "height": height.filter(|_| in_best),
            "next_best": next.map(|hash| hash.to_string()),
        })
    })
    .await?;
    Ok(Json(value).into_response())
}

/// Ten blocks of the active chain from `top` down, newest first (Esplora's `/blocks`).
async fn blocks_down_from(api: &Api, top: Option<u32>) -> Result<Response, Refusal> {
    let blocks = ask(api, move |view| {
        let chain = view.chain();
        let top = top.unwrap_or(chain.height()).min(chain.height());
        (0..=top)
            .rev()
            .take(10)
            .filter_map(|height| {
                let block = chain.block(&chain.hash_at(height)?)?;
                Some(block_json(view, block))
            })
            .collect::<Vec<_>>()
    })
    .await?;
    Ok(Json(blocks).into_response())
}

async fn recent_blocks(State(api): State<Api>) -> Result<Response, Refusal> {
    blocks_down_from(&api, None).await
}

async fn blocks_from(
    State(api): State<Api>,
    Path(height): Path<String>,
) -> Result<Response, Refusal> {
    let height = parse::<u32>(&height, "height")?;
    blocks_down_from(&api, Some(height)).await
}

async fn block_txid(
    State(api): State<Api>,
    Path((hash, index)): Path<(String, String)>,
) -> Result<Response, Refusal> {
    let index: usize = parse(&index, "index")?;
    let txid = with_block(&api, &hash, move |_, block| {
        block.txdata.get(index).map(|tx| tx.compute_txid())
    })
    .await?
    .ok_or_else(|| refuse(StatusCode::NOT_FOUND, "Transaction not found"))?;
    Ok(text(txid))
}

/// A block's transactions in Esplora's format, 25 from `start`.
async fn block_txs_page(api: &Api, hash: &str, start: usize) -> Result<Response, Refusal> {
    let network = api.network;
    let txs = with_block(api, hash, move |view, block| {
        let hash = block.block_hash();
        let height = view.chain().index().get(&hash).map(|entry| entry.height);
        block
            .txdata
            .iter()
            .skip(start)
            .take(PAGE)
            .map(|tx| {
                let place = height.map(|height| (height, hash, block.header.time));
                tx_json(view, tx, place, network)
            })
            .collect::<Vec<_>>()
    })
    .await?;
    Ok(Json(txs).into_response())
}

async fn block_txs(State(api): State<Api>, Path(hash): Path<String>) -> Result<Response, Refusal> {
    block_txs_page(&api, &hash, 0).await
}

async fn block_txs_from(
    State(api): State<Api>,
    Path((hash, start)): Path<(String, String)>,
) -> Result<Response, Refusal> {
    let start = parse::<usize>(&start, "start index")?;
    block_txs_page(&api, &hash, start).await
}

async fn block_txids(
    State(api): State<Api>,
    Path(hash): Path<String>,
) -> Result<Response, Refusal> {
    let txids = with_block(&api, &hash, |_, block| {
        block
            .txdata
            .iter()
            .map(|tx| tx.compute_txid().to_string())
            .collect::<Vec<_>>()
    })
    .await?;
    Ok(Json(txids).into_response())
}

/// A transaction of the active chain or the mempool, with its place if confirmed.
fn find_tx(view: &View<'_>, txid: &Txid) -> Option<(Transaction, Confirmation)> {
    if let Some(place) = view.index().place(txid) {
        let chain = view.chain();
        let block = chain.block(&place.block)?;
        let tx = block.txdata.get(place.position as usize)?.clone();
        return Some((tx, Some((place.height, place.block, block.header.time))));
    }
    view.mempool()
        .get(txid)
        .map(|entry| (entry.tx.as_ref().clone(), None))
}

fn status_json(place: Confirmation) -> Value {
    match place {
        Some((height, hash, time)) => json!({
            "confirmed": true,
            "block_height": height,
            "block_hash": hash.to_string(),
            "block_time": time,
        }),
        None => json!({ "confirmed": false }),
    }
}

fn address_of(script: &bitcoin::Script, network: Network) -> Option<String> {
    Address::from_script(script, network.address_network())
        .ok()
        .map(|address| address.to_string())
}

fn tx_json(view: &View<'_>, tx: &Transaction, place: Confirmation, network: Network) -> Value {
    let chain = view.chain();
    let mut fee: Option<u64> = Some(0);
    let inputs: Vec<Value> = tx
        .input
        .iter()
        .map(|input| {
            let prevout = if tx.is_coinbase() {
                None
            } else {
                view.index()
                    .output(chain, &input.previous_output)
                    .or_else(|| chain.utxo().get(&input.previous_output).map(|coin| coin.output.clone()))
                    .or_else(|| {
                        view.mempool()
                            .get(&input.previous_output.txid)
                            .and_then(|parent| parent.tx.output.get(input.previous_output.vout as usize).cloned())
                    })
            };
            match &prevout {
                Some(output) => fee = fee.map(|fee| fee + output.value.to_sat()),
                None if !tx.is_coinbase() => fee = None,
                None => {}
            }
            json!({
                "txid": input.previous_output.txid.to_string(),
                "vout": input.previous_output.vout,
                "prevout": prevout.map(|output| json!({
                    "scriptpubkey": output.script_pubkey.to_hex_string(),
                    "scriptpubkey_address": address_of(&output.script_pubkey, network),
                    "value": output.value.to_sat(),
                })),
                "scriptsig": input.script_sig.to_hex_string(),
                "witness": input.witness.iter().map(|item| item.to_lower_hex_string()).collect::<Vec<_>>(),
                "is_coinbase": tx.is_coinbase(),
                "sequence": input.sequence.0,
            })
        })
        .collect();
    let spent: u64 = tx.output.iter().map(|output| output.value.to_sat()).sum();
    let fee = if tx.is_coinbase() {
        Some(0)
    } else {
        fee.map(|paid| paid.saturating_sub(spent))
    };
    json!({
        "txid": tx.compute_txid().to_string(),
        "version": tx.version.0,
        "locktime": tx.lock_time.to_consensus_u32(),
        "vin": inputs,
        "vout": tx.output.iter().map(|output| json!({
            "scriptpubkey": output.script_pubkey.to_hex_string(),
            "scriptpubkey_address": address_of(&output.script_pubkey, network),
            "value": output.value.to_sat(),
        })).collect::<Vec<_>>(),
        "size": tx.total_size(),
        "weight": tx.weight().to_wu(),
        "fee": fee,
        "status": status_json(place),
    })
}

async fn with_tx<R: Send + 'static>(
    api: &Api,
    txid: &str,
    f: impl FnOnce(&View<'_>, Transaction, Confirmation) -> R + Send + 'static,
) -> Result<R, Refusal> {
    let txid: Txid = parse(txid, "txid")?;
    ask(api, move |view| {
        let (tx, place) = find_tx(view, &txid)?;
        Some(f(view, tx, place))
    })
    .await?
    .ok_or_else(|| refuse(StatusCode::NOT_FOUND, "Transaction not found"))
}

async fn tx(State(api): State<Api>, Path(txid): Path<String>) -> Result<Response, Refusal> {
    let network = api.network;
    let value = with_tx(&api, &txid, move |view, tx, place| {
        tx_json(view, &tx, place, network)
    })
    .await?;
    Ok(Json(value).into_response())
}

async fn tx_hex(State(api): State<Api>, Path(txid): Path<String>) -> Result<Response, Refusal> {
    let hex = with_tx(&api, &txid, |_, tx, _| serialize(&tx).to_lower_hex_string()).await?;
    Ok(text(hex))
}

async fn tx_raw(State(api): State<Api>, Path(txid): Path<String>) -> Result<Response, Refusal> {
    let bytes = with_tx(&api, &txid, |_, tx, _| serialize(&tx)).await?;
    Ok(octets(bytes))
}

async fn tx_status(State(api): State<Api>, Path(txid): Path<String>) -> Result<Response, Refusal> {
    let txid: Txid = parse(&txid, "txid")?;
    // Esplora answers an unknown transaction's status as unconfirmed.
    let place = ask(&api, move |view| {
        find_tx(view, &txid).and_then(|(_, place)| place)
    })
    .await?;
    Ok(Json(status_json(place)).into_response())
}

async fn tx_outspends(
    State(api): State<Api>,
    Path(txid): Path<String>,
) -> Result<Response, Refusal> {
    let value = with_tx(&api, &txid, |view, tx, _| {
        (0..tx.output.len() as u32)
            .map(|vout| outspend(view, &tx, vout))
            .collect::<Vec<_>>()
    })
    .await?;
    Ok(Json(value).into_response())
}

async fn tx_outspend(
    State(api): State<Api>,
    Path((txid, index)): Path<(String, String)>,
) -> Result<Response, Refusal> {
    let vout: u32 = parse(&index, "output index")?;
    let value = with_tx(&api, &txid, move |view, tx, _| {
        ((vout as usize) < tx.output.len()).then(|| outspend(view, &tx, vout))
    })
    .await?
    .ok_or_else(|| refuse(StatusCode::NOT_FOUND, "Output not found"))?;
    Ok(Json(value).into_response())
}

/// Whether output `vout` of `tx` is spent, and by what.
fn outspend(view: &View<'_>, tx: &Transaction, vout: u32) -> Value {
    let outpoint = bitcoin::OutPoint::new(tx.compute_txid(), vout);
    if view.chain().utxo().contains(&outpoint) {
        return json!({ "spent": false });
    }
    // Spent in the mempool, or by a transaction of the script's confirmed history.
    let spender = view.mempool().spender(&outpoint).or_else(|| {
        let script = script_hash_of(&tx.output[vout as usize].script_pubkey);
        view.index()
            .script_txs(&script)
            .iter()
            .copied()
            .find(|candidate| {
                find_tx(view, candidate).is_some_and(|(spending, _)| {
                    spending
                        .input
                        .iter()
                        .any(|input| input.previous_output == outpoint)
                })
            })
    });
    let Some(spender) = spender else {
        return json!({ "spent": false });
    };
    match find_tx(view, &spender) {
        Some((spending, place)) => json!({
            "spent": true,
            "txid": spender.to_string(),
            "vin": spending.input.iter().position(|input| input.previous_output == outpoint),
            "status": status_json(place),
        }),
        None => json!({ "spent": false }),
    }
}

fn script_hash_of(script: &bitcoin::Script) -> sha256::Hash {
    bitmesh_node::txindex::script_hash(script)
}

async fn post_tx(State(api): State<Api>, body: Bytes) -> Result<Response, Refusal> {
    // Bitcoin Core's words, as Esplora passes them on.
    let rpc_error = |code: i32, message: String| {
        refuse(
            StatusCode::BAD_REQUEST,
            format!("sendrawtransaction RPC error: {{\"code\":{code},\"message\":\"{message}\"}}"),
        )
    };
    let decode_failed =
        |err: &dyn std::fmt::Display| rpc_error(-22, format!("TX decode failed: {err}"));
    let hex = String::from_utf8_lossy(&body).trim().to_owned();
    let bytes = Vec::<u8>::from_hex(&hex).map_err(|err| decode_failed(&err))?;
    let tx: Transaction = deserialize(&bytes).map_err(|err| decode_failed(&err))?;
    let txid = ask(&api, move |view| view.submit(tx))
        .await?
        .map_err(|err| rpc_error(-26, err.to_string()))?;
    Ok(text(txid))
}

/// The confirmed history of `script` (newest first, a page after `last`), then the mempool's.
async fn history(api: &Api, script: sha256::Hash, last: Option<Txid>) -> Result<Response, Refusal> {
    let network = api.network;
    let txs = ask(api, move |view| {
        let confirmed = view.index().script_txs(&script);
        let mut newest_first: Vec<Txid> = confirmed.iter().rev().copied().collect();
        if let Some(last) = last {
            match newest_first.iter().position(|txid| *txid == last) {
                Some(at) => newest_first.drain(..=at),
                None => newest_first.drain(..),
            };
        }
        let mut txs: Vec<Value> = Vec::new();
        if last.is_none() {
            // Unconfirmed ones first, as Esplora lists them.
            for tx in view.mempool().entries().map(|(_, entry)| entry.tx.as_ref()) {
                let touches = tx
                    .output
                    .iter()
                    .any(|output| script_hash_of(&output.script_pubkey) == script)
                    || tx.input.iter().any(|input| {
                        view.index()
                            .output(view.chain(), &input.previous_output)
                            .is_some_and(|output| script_hash_of(&output.script_pubkey) == script)
                    });
                if touches {
                    txs.push(tx_json(view, tx, None, network));
                }
            }
        }
        for txid in newest_first.into_iter().take(PAGE) {
            if let Some((tx, place)) = find_tx(view, &txid) {
                txs.push(tx_json(view, &tx, place, network));
            }
        }
        txs
    })
    .await?;
    Ok(Json(txs).into_response())
}

/// The unspent outputs paying `script`, as Esplora lists them: confirmed ones not spent in the
/// mempool, then the mempool's own.
async fn utxos(api: &Api, script: sha256::Hash) -> Result<Response, Refusal> {
    let coins = ask(api, move |view| {
        let chain = view.chain();
        let mempool = view.mempool();
        let mut coins = Vec::new();
        let mut push = |txid: Txid, vout: usize, value: u64, place, assets: &AssetAmounts| {
            // An extension to Esplora's format (clients ignore it): the asset units the coin
            // carries, so a wallet never spends them in a plain payment.
            let assets: Vec<Value> = assets
                .iter()
                .map(|(asset, amount)| json!({ "asset": asset.to_string(), "amount": amount }))
                .collect();
            coins.push(json!({
                "txid": txid.to_string(),
                "vout": vout,
                "status": status_json(place),
                "value": value,
                "assets": assets,
            }));
        };
        for txid in view.index().script_txs(&script) {
            let Some((tx, place)) = find_tx(view, txid) else {
                continue;
            };
            for (vout, output) in tx.output.iter().enumerate() {
                let outpoint = bitcoin::OutPoint::new(*txid, vout as u32);
                if script_hash_of(&output.script_pubkey) != script
                    || mempool.spender(&outpoint).is_some()
                {
                    continue;
                }
                if let Some(coin) = chain.utxo().get(&outpoint) {
                    push(*txid, vout, output.value.to_sat(), place, &coin.assets);
                }
            }
        }
        for (txid, entry) in mempool.entries() {
            for (vout, output) in entry.tx.output.iter().enumerate() {
                let outpoint = bitcoin::OutPoint::new(*txid, vout as u32);
                if script_hash_of(&output.script_pubkey) == script
                    && mempool.spender(&outpoint).is_none()
                {
                    let none = AssetAmounts::none();
                    let assets = entry.output_assets.get(vout).unwrap_or(&none);
                    push(*txid, vout, output.value.to_sat(), None, assets);
                }
            }
        }
        coins
    })
    .await?;
    Ok(Json(coins).into_response())
}

fn parse_script_hash(text: &str) -> Result<sha256::Hash, Refusal> {
    // Esplora names script hashes in the hash's byte order (not reversed).
    <[u8; 32]>::from_hex(text)
        .map(sha256::Hash::from_byte_array)
        .map_err(|_| {
            refuse(
                StatusCode::BAD_REQUEST,
                format!("Invalid scripthash: {text}"),
            )
        })
}

fn parse_address(text: &str, network: Network) -> Result<sha256::Hash, Refusal> {
    let address: Address<bitcoin::address::NetworkUnchecked> = parse(text, "Bitcoin address")?;
    let address = address
        .require_network(network.address_network())
        .map_err(|_| {
            refuse(
                StatusCode::BAD_REQUEST,
                format!("Address on another network: {text}"),
            )
        })?;
    Ok(script_hash_of(&address.script_pubkey()))
}

async fn script_txs(State(api): State<Api>, Path(hash): Path<String>) -> Result<Response, Refusal> {
    let script = parse_script_hash(&hash)?;
    history(&api, script, None).await
}

async fn script_txs_after(
    State(api): State<Api>,
    Path((hash, last)): Path<(String, String)>,
) -> Result<Response, Refusal> {
    let script = parse_script_hash(&hash)?;
    history(&api, script, Some(parse(&last, "txid")?)).await
}

async fn script_utxo(
    State(api): State<Api>,
    Path(hash): Path<String>,
) -> Result<Response, Refusal> {
    let script = parse_script_hash(&hash)?;
    utxos(&api, script).await
}

async fn address_txs(
    State(api): State<Api>,
    Path(address): Path<String>,
) -> Result<Response, Refusal> {
    let script = parse_address(&address, api.network)?;
    history(&api, script, None).await
}

async fn address_txs_after(
    State(api): State<Api>,
    Path((address, last)): Path<(String, String)>,
) -> Result<Response, Refusal> {
    let script = parse_address(&address, api.network)?;
    history(&api, script, Some(parse(&last, "txid")?)).await
}

async fn address_utxo(
    State(api): State<Api>,
    Path(address): Path<String>,
) -> Result<Response, Refusal> {
    let script = parse_address(&address, api.network)?;
    utxos(&api, script).await
}

/// Fee rates (sat/vB) for confirmation within 1 to 1008 blocks: the relay minimum while the
/// mempool fits in a block, as it does on a network this young.
async fn fee_estimates() -> Response {
    let minimum = bitmesh_core::chain::mempool::MempoolConfig::default().min_fee_rate;
    let per_vbyte = minimum.to_sat_per_kwu() as f64 * 4.0 / 1000.0;
    let estimates: serde_json::Map<String, Value> = [1, 2, 3, 6, 10, 25, 144, 504, 1008]
        .iter()
        .map(|target| (target.to_string(), json!(per_vbyte.max(1.0))))
        .collect();
    Json(estimates).into_response()
}
