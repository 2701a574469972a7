//! WebSocket streams for the browser and automation (attach and exec are in
//! `routes::session`): live events, a container's logs (tail, then follow), live stats, and
//! the progress of pull, push and stack operations.
//!
//! Every message is a JSON text frame with a `type`:
//! - `event` (an [`Event`] in `event`), `logs` (`entries`: [`LogEntry`]s, batched), `stats`
//!   (a [`ContainerStats`] in `stats`), `progress` (a `TransferEvent` in `event`),
//!   `stack_progress` (a `StackProgress` in `event`);
//! - `dropped` (`count` messages were dropped because the client read too slowly);
//! - `end` (`reason`: the container stopped, the operation finished), the last message before
//!   the daemon closes the socket; `error` (`message`), likewise last.
//!
//! The daemon pings every [`PING_INTERVAL`]; a client that answers nothing (no pong, no frame)
//! for [`DEAD_AFTER`] is taken as gone and the socket is closed.
//!
//! Slow clients: events and stats come from bounded broadcast channels, so a client that reads
//! too slowly loses the oldest messages (reported as `dropped`) instead of making the daemon
//! buffer; the container never waits for a client. Logs are read from the container's log
//! file at the client's pace: the file is the buffer, so nothing is dropped and the container
//! still never waits.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, Path, RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use berth_engine::container::LogOptions;
use berth_types::container::{ContainerStats, ContainerStatus, LogEntry};
use berth_types::Event;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use tower::ServiceExt;

use super::auth::{Preauthenticated, Principal, Role};
use super::error::ApiError;
use super::routes::query::QueryParams;
use super::routes::AppState;

/// How often the daemon pings an idle client.
pub const PING_INTERVAL: Duration = Duration::from_secs(20);
/// Silence after which a client is taken as gone.
pub const DEAD_AFTER: Duration = Duration::from_secs(60);
/// How often `stats` samples.
const STATS_INTERVAL: Duration = Duration::from_secs(1);
/// Most log entries in one `logs` frame.
const LOG_BATCH: usize = 512;

/// The app's own router, for the progress streams that run a POST of the REST API in-process.
#[derive(Clone)]
pub struct InnerRouter(pub Router);

/// A message of these streams.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WsMessage<'a> {
    Event { event: &'a Event },
    Logs { entries: &'a [LogEntry] },
    Stats { stats: &'a ContainerStats },
    Progress { event: &'a serde_json::Value },
    StackProgress { event: &'a serde_json::Value },
    Dropped { count: u64 },
    End { reason: &'a str },
    Error { message: &'a str },
}

fn text(message: &WsMessage<'_>) -> Message {
    Message::Text(serde_json::to_string(message).expect("stream messages serialise").into())
}

/// The WebSocket routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/ws/events", get(events))
        .route("/api/v1/ws/containers/{name}/logs", get(logs))
        .route("/api/v1/ws/containers/{name}/stats", get(stats))
        .route("/api/v1/ws/progress/{operation}", get(progress))
        .route("/api/v1/ws/progress/stacks/{name}/{operation}", get(stack_progress))
}

/// What a stream produces next.
pub(crate) enum Next {
    Send(Message),
    /// The last message; then the socket is closed.
    Last(Message),
}

/// Runs a stream on `socket`: messages from `produce` go out; pings keep it alive; a client
/// that closes or goes silent for [`DEAD_AFTER`] ends it (and `produce` with it).
pub(crate) async fn run<P, F>(socket: WebSocket, mut produce: P)
where
    P: FnMut() -> F,
    F: std::future::Future<Output = Next>,
{
    let (mut sink, mut incoming) = socket.split();
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.tick().await;
    let mut last_heard = tokio::time::Instant::now();
    loop {
        tokio::select! {
            next = produce() => {
                match next {
                    Next::Send(m) => {
                        if sink.send(m).await.is_err() {
                            return;
                        }
                    }
                    Next::Last(m) => {
                        let _ = sink.send(m).await;
                        let _ = sink.send(Message::Close(Some(CloseFrame { code: 1000, reason: "".into() }))).await;
                        return;
                    }
                }
            }
            message = incoming.next() => match message {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                // Pongs, and anything else the client says, show it is alive; these streams
                // take no input.
                Some(Ok(_)) => last_heard = tokio::time::Instant::now(),
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > DEAD_AFTER {
                    tracing::debug!("WebSocket client silent for {DEAD_AFTER:?}; closing");
                    let _ = sink.send(Message::Close(Some(CloseFrame { code: 1001, reason: "no pong".into() }))).await;
                    return;
                }
                if sink.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// `GET /api/v1/ws/events`: every event from now on, as the history records it. Non-admins get
/// their teams' containers' events only.
async fn events(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    RawQuery(query): RawQuery,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    QueryParams::parse(query, &[])?;
    let receiver = state.events.subscribe();
    let state2 = state.clone();
    Ok(ws.on_upgrade(move |socket| async move {
        let receiver = std::sync::Arc::new(tokio::sync::Mutex::new(receiver));
        run(socket, move || {
            let receiver = receiver.clone();
            let state = state2.clone();
            let principal = principal.clone();
            async move {
                let mut receiver = receiver.lock().await;
                loop {
                    match receiver.recv().await {
                        Ok(event) => {
                            if visible(&state, &principal, &event).await {
                                return Next::Send(text(&WsMessage::Event { event: &event }));
                            }
                        }
                        Err(RecvError::Lagged(n)) => {
                            return Next::Send(text(&WsMessage::Dropped { count: n }))
                        }
                        Err(RecvError::Closed) => {
                            return Next::Last(text(&WsMessage::End { reason: "the daemon is stopping" }))
                        }
                    }
                }
            }
        })
        .await
    }))
}

/// Whether a non-admin may see an event: events of their teams' containers and stacks.
async fn visible(state: &AppState, principal: &Principal, event: &Event) -> bool {
    if principal.role == Role::Admin {
        return true;
    }
    if event.event_type == "stack" {
        return super::auth::stack_visible(state, principal, &event.subject).await;
    }
    let Some(id) = event.message.strip_prefix("id=").and_then(|m| m.split(' ').next()) else { return false };
    if event.event_type != "container" {
        return false;
    }
    let teams: Vec<i64> = principal.teams.iter().map(|(t, _)| *t).collect();
    // A container's `create` event is sent while its creator's request is still on its way
    // back, before the owner is written (on the answer): wait for it a little.
    let tries = if event.action == "create" { 50 } else { 1 };
    for attempt in 0..tries {
        match state.auth.container_owner(id).await {
            Ok(Some(team)) => return teams.contains(&team),
            Ok(None) if attempt + 1 < tries => tokio::time::sleep(Duration::from_millis(20)).await,
            _ => return false,
        }
    }
    false
}

/// `GET /api/v1/ws/containers/{name}/logs?tail=N&follow=1&since=T&stdout=1&stderr=1`: the last
/// `tail` lines (all without it), then with `follow` every new line until the container stops
/// (`end`).
async fn logs(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let query = QueryParams::parse(query, &["follow", "tail", "since", "until", "stdout", "stderr"])?;
    let (stdout, stderr) = match (query.flag("stdout")?, query.flag("stderr")?) {
        (false, false) => (true, true),
        both => both,
    };
    let tail = match query.one("tail")? {
        None | Some("all") | Some("") => None,
        Some(n) => Some(n.parse::<usize>().map_err(|_| {
            ApiError::bad_request(format!("invalid tail {n:?}: a number of lines or \"all\""))
        })?),
    };
    let time = |name: &str| -> Result<_, ApiError> {
        query
            .one(name)?
            .filter(|v| !v.is_empty())
            .map(|v| {
                chrono::DateTime::parse_from_rfc3339(v).map(|t| t.to_utc()).map_err(|_| {
                    ApiError::bad_request(format!("query parameter {name:?}: {v:?} is not an RFC 3339 time"))
                })
            })
            .transpose()
    };
    let options = LogOptions {
        follow: query.flag("follow")?,
        tail,
        since: time("since")?,
        until: time("until")?,
        stdout,
        stderr,
    };
    // Opened before the upgrade: a missing container is an ordinary 404.
    let entries = state.engine.container_logs(&name, options).await?;
    Ok(ws.on_upgrade(move |socket| async move {
        let batches = std::sync::Arc::new(tokio::sync::Mutex::new(entries.ready_chunks(LOG_BATCH)));
        run(socket, move || {
            let batches = batches.clone();
            async move {
                let mut batches = batches.lock().await;
                match batches.next().await {
                    None => Next::Last(text(&WsMessage::End { reason: "end of the log" })),
                    Some(batch) => {
                        let mut entries = Vec::with_capacity(batch.len());
                        for entry in batch {
                            match entry {
                                Ok(e) => entries.push(e),
                                Err(e) => {
                                    return Next::Last(text(&WsMessage::Error { message: &e.to_string() }))
                                }
                            }
                        }
                        Next::Send(text(&WsMessage::Logs { entries: &entries }))
                    }
                }
            }
        })
        .await
    }))
}

/// `GET /api/v1/ws/containers/{name}/stats`: a sample every second until the container stops
/// (`end`). A sampler task feeds a one-slot channel: a client slower than the samples misses
/// some (reported as `dropped`), the sampler never waits for it.
async fn stats(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    QueryParams::parse(query, &[])?;
    let first = state.engine.container_stats(&name).await?;
    Ok(ws.on_upgrade(move |socket| async move {
        let (tx, rx) = tokio::sync::watch::channel((Some(first), 0u64));
        let engine = state.engine.clone();
        let sampler = tokio::spawn(async move {
            let mut seq = 0u64;
            loop {
                tokio::time::sleep(STATS_INTERVAL).await;
                seq += 1;
                let running = engine.inspect_container(&name).await.is_ok_and(|c| {
                    matches!(c.state.status, ContainerStatus::Running | ContainerStatus::Paused)
                });
                let sample = if running { engine.container_stats(&name).await.ok() } else { None };
                let stop = sample.is_none();
                if tx.send((sample, seq)).is_err() || stop {
                    return;
                }
            }
        });
        let rx = std::sync::Arc::new(tokio::sync::Mutex::new((rx, None::<u64>)));
        run(socket, move || {
            let rx = rx.clone();
            async move {
                let mut guard = rx.lock().await;
                let (rx, last_seq) = &mut *guard;
                if last_seq.is_some() && rx.changed().await.is_err() {
                    return Next::Last(text(&WsMessage::End { reason: "the container stopped" }));
                }
                let (sample, seq) = rx.borrow_and_update().clone();
                let missed = last_seq.map(|l| seq.saturating_sub(l + 1)).unwrap_or(0);
                *last_seq = Some(seq);
                match sample {
                    _ if missed > 0 => Next::Send(text(&WsMessage::Dropped { count: missed })),
                    Some(s) => Next::Send(text(&WsMessage::Stats { stats: &s })),
                    None => Next::Last(text(&WsMessage::End { reason: "the container stopped" })),
                }
            }
        })
        .await;
        sampler.abort();
    }))
}

/// `GET /api/v1/ws/progress/{pull|push}`: the client sends the operation's request (the JSON
/// body of `POST /api/v1/images/{pull|push}`) as the first text frame; the daemon runs it as
/// that POST, for the same caller, and sends each progress event as a `progress` message, then
/// `end` (or `error`).
async fn progress(
    State(_state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(inner): Extension<InnerRouter>,
    Path(operation): Path<String>,
    RawQuery(query): RawQuery,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    QueryParams::parse(query, &[])?;
    if !matches!(operation.as_str(), "pull" | "push") {
        return Err(ApiError::not_found(format!("no progress stream for {operation:?}: pull or push")));
    }
    let uri = format!("/api/v1/images/{operation}");
    Ok(ws.on_upgrade(move |socket| relay(socket, principal, inner, uri, Relayed::Transfer)))
}

/// `GET /api/v1/ws/progress/stacks/{name}/{up|down|stop|start|restart}?services=&t=`: as
/// [`progress`], for `POST /api/v1/stacks/{name}/{operation}` (the first frame is its JSON body:
/// `StackUp`, `StackDown`, or `{}`; the query is that call's): each `StackProgress` line as a
/// `stack_progress` message, then `end` (or `error`).
async fn stack_progress(
    Extension(principal): Extension<Principal>,
    Extension(inner): Extension<InnerRouter>,
    Path((name, operation)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    if !matches!(operation.as_str(), "up" | "down" | "stop" | "start" | "restart") {
        return Err(ApiError::not_found(format!(
            "no progress stream for {operation:?}: up, down, stop, start or restart"
        )));
    }
    // The REST route checks the query; it is passed on as it came, encoded.
    let name = percent_encoding::utf8_percent_encode(&name, percent_encoding::NON_ALPHANUMERIC);
    let uri = match query {
        Some(q) => format!("/api/v1/stacks/{name}/{operation}?{q}"),
        None => format!("/api/v1/stacks/{name}/{operation}"),
    };
    Ok(ws.on_upgrade(move |socket| relay(socket, principal, inner, uri, Relayed::Stack)))
}

/// What the relayed POST answers with, line by line.
#[derive(Clone, Copy)]
enum Relayed {
    /// `TransferEvent`s (pull, push): `progress` messages.
    Transfer,
    /// `StackProgress` (stack operations): `stack_progress` messages.
    Stack,
}

/// Reads the request from the socket's first text frame, runs it as a POST to `uri` of the
/// REST API for `principal`, and sends each line of the answer as a message.
async fn relay(mut socket: WebSocket, principal: Principal, inner: InnerRouter, uri: String, kind: Relayed) {
    {
        let request = loop {
            match tokio::time::timeout(DEAD_AFTER, socket.recv()).await {
                Ok(Some(Ok(Message::Text(t)))) => break t.to_string(),
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(Some(Ok(_))) => {
                    let _ = socket
                        .send(text(&WsMessage::Error {
                            message: "the first message must be the request as JSON text",
                        }))
                        .await;
                    return;
                }
                _ => return,
            }
        };
        let http = axum::http::Request::post(uri)
            .header(axum::http::header::CONTENT_TYPE, "application/json")
            .extension(Preauthenticated(principal))
            .body(axum::body::Body::from(request));
        let response = match http {
            Ok(r) => inner.0.oneshot(r).await,
            Err(e) => {
                let _ = socket.send(text(&WsMessage::Error { message: &e.to_string() })).await;
                return;
            }
        };
        let Ok(response) = response;
        if !response.status().is_success() {
            let body = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap_or_default();
            let message = serde_json::from_slice::<berth_types::ErrorBody>(&body)
                .map(|e| e.message)
                .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
            let _ = socket.send(text(&WsMessage::Error { message: &message })).await;
            let _ = socket.send(Message::Close(None)).await;
            return;
        }
        let lines = split_lines(response.into_body().into_data_stream());
        let lines = std::sync::Arc::new(tokio::sync::Mutex::new(Box::pin(lines)));
        run(socket, move || {
            let lines = lines.clone();
            async move {
                match lines.lock().await.next().await {
                    Some(Ok(line)) => match serde_json::from_slice::<serde_json::Value>(&line) {
                        Ok(v) => Next::Send(text(&match kind {
                            Relayed::Transfer => WsMessage::Progress { event: &v },
                            Relayed::Stack => WsMessage::StackProgress { event: &v },
                        })),
                        Err(e) => Next::Last(text(&WsMessage::Error {
                            message: &format!("bad progress line: {e}"),
                        })),
                    },
                    Some(Err(e)) => Next::Last(text(&WsMessage::Error { message: &e })),
                    None => Next::Last(text(&WsMessage::End { reason: "finished" })),
                }
            }
        })
        .await
    }
}

/// Cuts a body of JSON lines into lines.
fn split_lines(
    body: impl futures_util::Stream<Item = Result<bytes::Bytes, axum::Error>> + Send + 'static,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, String>> + Send {
    futures_util::stream::unfold(
        (Box::pin(body), Vec::<u8>::new(), false),
        |(mut body, mut buffer, mut done)| async move {
            loop {
                if let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buffer.drain(..=end).collect();
                    if line.len() > 1 {
                        return Some((Ok(line[..line.len() - 1].to_vec()), (body, buffer, done)));
                    }
                    continue;
                }
                if done {
                    if buffer.is_empty() {
                        return None;
                    }
                    let line = std::mem::take(&mut buffer);
                    return Some((Ok(line), (body, buffer, true)));
                }
                match body.next().await {
                    Some(Ok(chunk)) => buffer.extend_from_slice(&chunk),
                    Some(Err(e)) => return Some((Err(e.to_string()), (body, Vec::new(), true))),
                    None => done = true,
                }
            }
        },
    )
}
