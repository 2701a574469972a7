//! The node's own load: `GET /api/v1/node` (one sample) and `GET /api/v1/ws/node` (a sample
//! every [`NODE_INTERVAL`] as `node` messages, for the dashboard's overview). Viewers may read
//! both: they show the machine, no container's content.

use std::time::Duration;

use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::Json;
use berth_types::check::CheckReport;
use berth_types::stream::StreamMessage;
use berth_types::{DiskUsage, NodeStats};

use super::query::QueryParams;
use super::streams::{run, Next};
use crate::serve::error::ApiError;
use crate::serve::ops::{system, Caller};
use crate::serve::state::AppState;

/// How often the node stream samples. Node figures move slowly; every two seconds keeps the
/// cards live without costing the daemon anything noticeable.
pub const NODE_INTERVAL: Duration = Duration::from_secs(2);

/// `GET /api/v1/node`: CPU (over a quarter of a second), memory and the disk of the root.
#[utoipa::path(get, path = "/api/v1/node", tag = "system", responses((status = 200, body = NodeStats, description = "the node's CPU, memory and disk"), (status = 400, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn node_stats(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<NodeStats>, ApiError> {
    QueryParams::parse(query, &[])?;
    Ok(Json(system::node_stats(&state, &caller).await?))
}

/// `GET /api/v1/system/df`: what the caller's images, containers and volumes hold on disk.
#[utoipa::path(get, path = "/api/v1/system/df", tag = "system", responses((status = 200, body = DiskUsage, description = "disk usage by images, containers and volumes"), (status = 400, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn disk_usage(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<DiskUsage>, ApiError> {
    QueryParams::parse(query, &[])?;
    Ok(Json(system::disk_usage(&state, &caller).await?))
}

/// `POST /api/v1/system/check?repair=BOOL` (admins): the consistency check of the node's state
/// (see `berth_engine::check`) and of the history database; `repair` mends what it can.
#[utoipa::path(post, path = "/api/v1/system/check", tag = "system", params(("repair" = Option<bool>, Query, description = "remove what nothing references, move what is broken aside")), responses((status = 200, body = CheckReport, description = "what was checked and found (and repaired)"), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 403, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn system_check(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<CheckReport>, ApiError> {
    let query = QueryParams::parse(query, &["repair"])?;
    Ok(Json(system::check(&state, &caller, query.flag("repair")?).await?))
}

fn message(node: NodeStats) -> Message {
    let text = serde_json::to_string(&StreamMessage::Node { node }).expect("node samples serialise");
    Message::Text(text.into())
}

/// `GET /api/v1/ws/node`: a `node` message at once (its CPU share over a quarter of a second),
/// then one every [`NODE_INTERVAL`] covering the time since the previous one, until the client
/// leaves. A sample that fails ends the stream with `error`.
#[utoipa::path(get, path = "/api/v1/ws/node", tag = "system", description = "WebSocket: a `node` message (StreamMessage) at once, then one every two seconds.", responses((status = 101, description = "switching to the WebSocket"), (status = 400, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn node_stream(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    QueryParams::parse(query, &[])?;
    // The first sample before the upgrade: a node that cannot be read is an ordinary error.
    let first = system::node_stats(&state, &caller).await?;
    let mut sampler = state.engine.node_sampler();
    sampler.begin()?;
    Ok(ws.on_upgrade(move |socket| async move {
        let sampler = std::sync::Arc::new(std::sync::Mutex::new(sampler));
        let mut first = Some(first);
        run(socket, move || {
            let sampler = sampler.clone();
            let first = first.take();
            async move {
                if let Some(node) = first {
                    return Next::Send(message(node));
                }
                tokio::time::sleep(NODE_INTERVAL).await;
                let sample = tokio::task::spawn_blocking(move || {
                    sampler.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).sample()
                })
                .await;
                match sample {
                    Ok(Ok(node)) => Next::Send(message(node)),
                    Ok(Err(e)) => Next::Last(error_message(&e.to_string())),
                    Err(e) => Next::Last(error_message(&format!("sampling the node: {e}"))),
                }
            }
        })
        .await
    }))
}

fn error_message(message: &str) -> Message {
    let text = serde_json::to_string(&StreamMessage::Error { message: message.to_owned() })
        .expect("error messages serialise");
    Message::Text(text.into())
}
