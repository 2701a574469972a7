//! Compose stacks under `/api/v1/stacks`: list, inspect, `up` / `down` / `stop` / `start` /
//! `restart` (each a stream of JSON lines, one [`StackProgress`] each, like pull progress; the
//! last line is `{"object": "project", "action": "Done"}` or `"Error"` with the message), and the
//! WebSocket of a stack's aggregated logs.
//!
//! A file that cannot be read into a project is refused with 400 before the stream starts.
//!
//! Teams are the auth middleware's (`serve::auth`): a stack is its team's when its containers
//! are, `up` gives the containers it makes to the caller's team, and the list is filtered.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_engine::compose::{self, Progress};
use berth_engine::container::LogOptions;
use berth_types::{StackDown, StackInspect, StackLogEntry, StackProgress, StackSummary, StackUp};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc::UnboundedSender;

use super::query::QueryParams;
use super::AppState;
use crate::serve::error::{ApiError, ApiJson};
use crate::serve::events::Outcome;
use crate::serve::ws::{run, Next};

/// The media type of the progress streams: newline-delimited JSON.
const JSON_LINES: &str = "application/x-ndjson";
/// Most log entries in one `logs` frame.
const LOG_BATCH: usize = 512;

/// `GET /api/v1/stacks`: the compose projects that have containers (`berth compose ls`).
#[utoipa::path(get, path = "/api/v1/stacks", tag = "stacks",
    responses((status = 200, body = Vec<StackSummary>)),
    security(("bearer" = []), ("session" = [])))]
pub(super) async fn list_stacks(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<StackSummary>>, ApiError> {
    QueryParams::parse(query, &[])?;
    Ok(Json(state.engine.list_stacks().await?))
}

/// `GET /api/v1/stacks/{name}`: the stack's services, their containers, networks and volumes.
#[utoipa::path(get, path = "/api/v1/stacks/{name}", tag = "stacks",
    params(("name" = String, Path, description = "project name")),
    responses((status = 200, body = StackInspect),
        (status = 400, body = crate::serve::openapi::ErrorBody),
        (status = 404, body = crate::serve::openapi::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(super) async fn inspect_stack(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<StackInspect>, ApiError> {
    Ok(Json(state.engine.inspect_stack(&name).await?))
}

/// Runs a stack operation in its own task (it goes on if the client goes away, as a pull does)
/// and streams its progress; the last line says how it ended.
fn streamed<F, Fut>(state: &AppState, action: &'static str, name: String, operation: F) -> Response
where
    F: FnOnce(Progress) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = berth_engine::Result<()>> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<StackProgress>();
    let events = state.events.clone();
    tokio::spawn(async move {
        let result = operation(Progress::new(tx.clone())).await;
        let last = match result {
            Ok(()) => {
                events.record("stack", action, &name, Outcome::Success, "").await;
                done(&name, "Done", String::new())
            }
            Err(e) => {
                events.record("stack", action, &name, Outcome::Failure, &e.to_string()).await;
                done(&name, "Error", e.to_string())
            }
        };
        let _ = UnboundedSender::send(&tx, last);
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) })
        .map(|event| {
            let mut line = serde_json::to_vec(&event).expect("stack progress serialises");
            line.push(b'\n');
            Ok::<_, Infallible>(Bytes::from(line))
        });
    ([(header::CONTENT_TYPE, JSON_LINES)], Body::from_stream(stream)).into_response()
}

fn done(name: &str, action: &str, message: String) -> StackProgress {
    StackProgress { object: "project".into(), name: name.into(), action: action.into(), message }
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if compose::model::valid_project_name(name) {
        return Ok(());
    }
    Err(ApiError::bad_request(format!(
        "invalid project name {name:?}: must consist only of lowercase alphanumeric characters, hyphens, and \
         underscores as well as start with a letter or number"
    )))
}

/// `POST /api/v1/stacks/{name}/up` (`berth compose up`).
#[utoipa::path(post, path = "/api/v1/stacks/{name}/up", tag = "stacks",
    description = "Creates and starts the stack from the compose file in the body; only what changed is \
        recreated. Streams StackProgress as JSON lines; the last one has object `project` and action `Done` or `Error`.",
    params(("name" = String, Path, description = "project name")),
    request_body = StackUp,
    responses((status = 200, body = StackProgress, content_type = "application/x-ndjson"),
        (status = 400, body = crate::serve::openapi::ErrorBody, description = "a file that is not a valid compose project")),
    security(("bearer" = []), ("session" = [])))]
pub(super) async fn stack_up(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<StackUp>,
) -> Result<Response, ApiError> {
    check_name(&name)?;
    // A bad file is refused before the stream starts, with a status that says so.
    let checked = {
        let (request, name) = (request.clone(), name.clone());
        tokio::task::spawn_blocking(move || compose::model::load(&request, Some(&name)))
            .await
            .map_err(|e| ApiError::internal(format!("reading the compose file: {e}")))?
    };
    if let Err(e) = checked {
        state.events.record("stack", "up", &name, Outcome::Failure, &e.to_string()).await;
        return Err(e.into());
    }
    let engine = state.engine.clone();
    let stack = name.clone();
    Ok(streamed(&state, "up", name, move |progress| async move {
        engine.stack_up(&stack, request, progress).await
    }))
}

/// `POST /api/v1/stacks/{name}/down` (`berth compose down`).
#[utoipa::path(post, path = "/api/v1/stacks/{name}/down", tag = "stacks",
    description = "Stops and removes the stack's containers, then its networks (and with `volumes` its volumes). \
        Streams StackProgress as JSON lines.",
    params(("name" = String, Path, description = "project name")),
    request_body = StackDown,
    responses((status = 200, body = StackProgress, content_type = "application/x-ndjson"),
        (status = 400, body = crate::serve::openapi::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(super) async fn stack_down(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<StackDown>,
) -> Result<Response, ApiError> {
    check_name(&name)?;
    let engine = state.engine.clone();
    let stack = name.clone();
    Ok(streamed(&state, "down", name, move |progress| async move {
        engine.stack_down(&stack, request, progress).await
    }))
}

/// `?services=a,b` (or repeated) and `?t=N`.
fn services_and_timeout(query: &QueryParams) -> Result<(Vec<String>, Option<u32>), ApiError> {
    let services = query
        .all("services")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let timeout = match query.number("t")? {
        None => None,
        Some(t) if (0..=i64::from(u32::MAX)).contains(&t) => Some(t as u32),
        Some(t) => return Err(ApiError::bad_request(format!("query parameter \"t\": {t} is out of range"))),
    };
    Ok((services, timeout))
}

/// `POST /api/v1/stacks/{name}/{stop|start|restart}?services=a,b&t=N`.
#[utoipa::path(post, path = "/api/v1/stacks/{name}/{operation}", tag = "stacks",
    description = "`stop`, `start` or `restart` the stack's containers (of `services`, all without). \
        Streams StackProgress as JSON lines.",
    params(("name" = String, Path, description = "project name"),
        ("operation" = String, Path, description = "stop, start or restart"),
        ("services" = Option<String>, Query, description = "comma-separated service names"),
        ("t" = Option<u32>, Query, description = "seconds before SIGKILL (stop, restart)")),
    responses((status = 200, body = StackProgress, content_type = "application/x-ndjson"),
        (status = 400, body = crate::serve::openapi::ErrorBody),
        (status = 404, body = crate::serve::openapi::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(super) async fn stack_operation(
    State(state): State<AppState>,
    Path((name, operation)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    check_name(&name)?;
    let query = QueryParams::parse(query, &["services", "t"])?;
    let (services, timeout) = services_and_timeout(&query)?;
    // A missing stack is an ordinary 404, before the stream starts.
    if state.engine.stack_containers(&name, true).await?.is_empty() {
        return Err(berth_engine::Error::StackNotFound(name).into());
    }
    let engine = state.engine.clone();
    let stack = name.clone();
    let response = match operation.as_str() {
        "stop" => streamed(&state, "stop", name, move |progress| async move {
            engine.stack_stop(&stack, &services, timeout, progress).await
        }),
        "start" => streamed(&state, "start", name, move |progress| async move {
            engine.stack_start(&stack, &services, progress).await
        }),
        "restart" => streamed(&state, "restart", name, move |progress| async move {
            engine.stack_restart(&stack, &services, timeout, progress).await
        }),
        other => {
            return Err(ApiError::not_found(format!(
                "no stack operation {other:?}: up, down, stop, start or restart"
            )))
        }
    };
    Ok(response)
}

/// `GET /api/v1/ws/stacks/{name}/logs?services=a,b&tail=N&since=T&follow=1`: the stack's containers'
/// logs, merged; `logs` frames whose `entries` are [`StackLogEntry`]s, then `end`.
#[utoipa::path(get, path = "/api/v1/ws/stacks/{name}/logs", tag = "stacks",
    description = "WebSocket: `{\"type\":\"logs\",\"entries\":[StackLogEntry...]}` frames, then `end` or `error`.",
    params(("name" = String, Path, description = "project name"),
        ("services" = Option<String>, Query, description = "comma-separated service names"),
        ("tail" = Option<String>, Query, description = "lines per container, or `all`"),
        ("since" = Option<String>, Query, description = "RFC 3339: only entries at or after"),
        ("follow" = Option<bool>, Query)),
    responses((status = 101, description = "switching to the WebSocket"),
        (status = 400, body = crate::serve::openapi::ErrorBody),
        (status = 404, body = crate::serve::openapi::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(super) async fn stack_logs(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    check_name(&name)?;
    let query = QueryParams::parse(query, &["services", "tail", "follow", "since"])?;
    let (services, _) = services_and_timeout(&query)?;
    let tail = match query.one("tail")? {
        None | Some("all") | Some("") => None,
        Some(n) => Some(n.parse::<usize>().map_err(|_| {
            ApiError::bad_request(format!("invalid tail {n:?}: a number of lines or \"all\""))
        })?),
    };
    let since = match query.one("since")?.filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => Some(chrono::DateTime::parse_from_rfc3339(v).map(|t| t.to_utc()).map_err(|_| {
            ApiError::bad_request(format!("query parameter \"since\": {v:?} is not an RFC 3339 time"))
        })?),
    };
    let options = LogOptions { follow: query.flag("follow")?, tail, since, ..Default::default() };
    // Opened before the upgrade: a missing stack is an ordinary 404.
    let entries = state.engine.stack_logs(&name, &services, options).await?;
    Ok(ws.on_upgrade(move |socket| async move {
        let batches = std::sync::Arc::new(tokio::sync::Mutex::new(entries.ready_chunks(LOG_BATCH)));
        run(socket, move || {
            let batches = batches.clone();
            async move {
                let mut batches = batches.lock().await;
                match batches.next().await {
                    None => {
                        Next::Last(frame(&serde_json::json!({"type": "end", "reason": "end of the logs"})))
                    }
                    Some(batch) => {
                        let mut entries: Vec<StackLogEntry> = Vec::with_capacity(batch.len());
                        for entry in batch {
                            match entry {
                                Ok(e) => entries.push(e),
                                Err(e) => {
                                    return Next::Last(frame(
                                        &serde_json::json!({"type": "error", "message": e.to_string()}),
                                    ))
                                }
                            }
                        }
                        Next::Send(frame(&serde_json::json!({"type": "logs", "entries": entries})))
                    }
                }
            }
        })
        .await
    }))
}

fn frame(value: &serde_json::Value) -> Message {
    Message::Text(value.to_string().into())
}
