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
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use berth_types::auth::Role;
use berth_types::container::{ContainerStats, ContainerStatus};
use berth_types::{Event, PullRequest, PushRequest, StackDown, StackUp};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc::UnboundedReceiver;

use super::query::{log_options, services_and_timeout, QueryParams};
use crate::serve::error::ApiError;
use crate::serve::ops::stacks::StackAction;
use crate::serve::ops::{containers, registry, stacks, system, Caller};
use crate::serve::state::AppState;

/// How often the daemon pings an idle client.
pub const PING_INTERVAL: Duration = Duration::from_secs(20);
/// Silence after which a client is taken as gone.
pub const DEAD_AFTER: Duration = Duration::from_secs(60);
/// How often `stats` samples.
const STATS_INTERVAL: Duration = Duration::from_secs(1);
/// Most log entries in one `logs` frame.
const LOG_BATCH: usize = 512;

/// A message of these streams.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WsMessage<'a> {
    Event { event: &'a Event },
    Stats { stats: &'a ContainerStats },
    Progress { event: &'a berth_types::TransferEvent },
    StackProgress { event: &'a berth_types::StackProgress },
    Dropped { count: u64 },
    End { reason: &'a str },
    Error { message: &'a str },
}

fn text(message: &WsMessage<'_>) -> Message {
    Message::Text(serde_json::to_string(message).expect("stream messages serialise").into())
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
#[utoipa::path(get, path = "/api/v1/ws/events", tag = "system", description = "WebSocket: every event from now on as `event` messages (StreamMessage); members see their teams' containers' and stacks' events.", responses((status = 101, description = "switching to the WebSocket"), (status = 400, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn events(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    QueryParams::parse(query, &[])?;
    caller.require(Role::Viewer)?;
    let receiver = state.events.subscribe();
    let state2 = state.clone();
    Ok(ws.on_upgrade(move |socket| async move {
        let receiver = std::sync::Arc::new(tokio::sync::Mutex::new(receiver));
        run(socket, move || {
            let receiver = receiver.clone();
            let state = state2.clone();
            let caller = caller.clone();
            async move {
                let mut receiver = receiver.lock().await;
                loop {
                    match receiver.recv().await {
                        Ok(event) => {
                            if system::event_visible(&state, &caller, &event).await {
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

/// `GET /api/v1/ws/containers/{name}/logs?tail=N&follow=1&since=T&stdout=1&stderr=1`: the last
/// `tail` lines (all without it), then with `follow` every new line until the container stops
/// (`end`).
#[utoipa::path(get, path = "/api/v1/ws/containers/{name}/logs", tag = "containers", description = "WebSocket: the container's log as `logs` messages (tail, then follow), then `end`.", params(("name" = String, Path, description = "container name or ID (prefix)"), ("follow" = Option<bool>, Query), ("tail" = Option<String>, Query), ("since" = Option<String>, Query), ("until" = Option<String>, Query), ("stdout" = Option<bool>, Query), ("stderr" = Option<bool>, Query)), responses((status = 101, description = "switching to the WebSocket"), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn logs(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let query = QueryParams::parse(query, &["follow", "tail", "since", "until", "stdout", "stderr"])?;
    // Opened before the upgrade: a missing container is an ordinary 404.
    let entries = containers::logs(&state, &caller, &name, log_options(&query)?).await?;
    Ok(ws.on_upgrade(move |socket| send_log(socket, entries, "end of the log")))
}

/// Sends a log's entries (a container's, a stack's) in `logs` messages of at most
/// [`LOG_BATCH`], then `end` with `reason`, or `error` when reading fails.
pub(super) async fn send_log<T, S>(socket: WebSocket, entries: S, reason: &'static str)
where
    T: Serialize + Send + 'static,
    S: futures_util::Stream<Item = berth_engine::Result<T>> + Send + 'static,
{
    let batches = std::sync::Arc::new(tokio::sync::Mutex::new(Box::pin(entries.ready_chunks(LOG_BATCH))));
    run(socket, move || {
        let batches = batches.clone();
        async move {
            let mut batches = batches.lock().await;
            let Some(batch) = batches.next().await else {
                return Next::Last(text(&WsMessage::End { reason }));
            };
            let mut entries = Vec::with_capacity(batch.len());
            for entry in batch {
                match entry {
                    Ok(e) => entries.push(e),
                    Err(e) => return Next::Last(text(&WsMessage::Error { message: &e.to_string() })),
                }
            }
            let message = serde_json::json!({ "type": "logs", "entries": entries });
            Next::Send(Message::Text(message.to_string().into()))
        }
    })
    .await
}

/// `GET /api/v1/ws/containers/{name}/stats`: a sample every second until the container stops
/// (`end`). A sampler task feeds a one-slot channel: a client slower than the samples misses
/// some (reported as `dropped`), the sampler never waits for it.
#[utoipa::path(get, path = "/api/v1/ws/containers/{name}/stats", tag = "containers", description = "WebSocket: a `stats` message every second until the container stops (`end`).", params(("name" = String, Path, description = "container name or ID (prefix)")), responses((status = 101, description = "switching to the WebSocket"), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn stats(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    QueryParams::parse(query, &[])?;
    let first = containers::stats(&state, &caller, &name).await?;
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
/// body of `POST /api/v1/images/{pull|push}`) as the first text frame; the daemon runs the
/// operation for the caller and sends each progress event as a `progress` message, then `end`
/// (or `error`).
#[utoipa::path(get, path = "/api/v1/ws/progress/{operation}", tag = "registry", description = "WebSocket: send the body of POST /api/v1/images/{pull|push} as the first text frame; each TransferEvent comes as a `progress` message, then `end` or `error`.", params(("operation" = String, Path, description = "pull or push")), responses((status = 101, description = "switching to the WebSocket"), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn progress(
    State(state): State<AppState>,
    caller: Caller,
    Path(operation): Path<String>,
    RawQuery(query): RawQuery,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    QueryParams::parse(query, &[])?;
    caller.require(Role::Operator)?;
    let push = match operation.as_str() {
        "pull" => false,
        "push" => true,
        _ => return Err(ApiError::not_found(format!("no progress stream for {operation:?}: pull or push"))),
    };
    Ok(ws.on_upgrade(move |socket| async move {
        let Some((socket, request)) = first_request(socket).await else { return };
        let events = if push {
            registry::push(&state, &caller, parse::<PushRequest>(&request), None).await
        } else {
            registry::pull(&state, &caller, parse::<PullRequest>(&request), None).await
        };
        relay(socket, events, |event| text(&WsMessage::Progress { event })).await
    }))
}

/// `GET /api/v1/ws/progress/stacks/{name}/{up|down|stop|start|restart}?services=&t=`: as
/// [`progress`], for the stack operation (the first frame is the JSON body of
/// `POST /api/v1/stacks/{name}/{operation}`: `StackUp`, `StackDown`, or `{}`; the query is that
/// call's): each `StackProgress` as a `stack_progress` message, then `end` (or `error`).
#[utoipa::path(get, path = "/api/v1/ws/progress/stacks/{name}/{operation}", tag = "stacks", description = "WebSocket: send the body of POST /api/v1/stacks/{name}/{operation} as the first text frame; each StackProgress comes as a `stack_progress` message, then `end` or `error`.", params(("name" = String, Path, description = "project name"), ("operation" = String, Path, description = "up, down, stop, start or restart"), ("services" = Option<String>, Query), ("t" = Option<u32>, Query)), responses((status = 101, description = "switching to the WebSocket"), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn stack_progress(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, operation)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    if !matches!(operation.as_str(), "up" | "down" | "stop" | "start" | "restart") {
        return Err(ApiError::not_found(format!(
            "no progress stream for {operation:?}: up, down, stop, start or restart"
        )));
    }
    let query = QueryParams::parse(query, &["services", "t"])?;
    let (services, timeout) = services_and_timeout(&query)?;
    // Refused before the upgrade, as an ordinary 403 (the operation checks again).
    caller.require(Role::Operator)?;
    Ok(ws.on_upgrade(move |socket| async move {
        let Some((socket, request)) = first_request(socket).await else { return };
        let progress = match (operation.as_str(), StackAction::parse(&operation)) {
            ("up", _) => stacks::up(&state, &caller, &name, parse::<StackUp>(&request)).await,
            ("down", _) => stacks::down(&state, &caller, &name, parse::<StackDown>(&request)).await,
            (_, Some(action)) => stacks::act(&state, &caller, &name, action, services, timeout).await,
            (other, None) => Err(ApiError::not_found(format!("no stack operation {other:?}"))),
        };
        relay(socket, progress, |event| text(&WsMessage::StackProgress { event })).await
    }))
}

/// A progress stream's request, read as the REST call reads its body.
fn parse<T: serde::de::DeserializeOwned>(request: &str) -> Result<T, ApiError> {
    serde_json::from_str(request).map_err(|e| {
        ApiError::bad_request(format!("Failed to deserialize the JSON body into the target type: {e}"))
    })
}

/// The request a progress stream's client sends as its first text frame; `None` when the client
/// sent something else (it is told so) or went away.
async fn first_request(mut socket: WebSocket) -> Option<(WebSocket, String)> {
    loop {
        match tokio::time::timeout(DEAD_AFTER, socket.recv()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Some((socket, t.to_string())),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(Some(Ok(_))) => {
                let _ = socket
                    .send(text(&WsMessage::Error {
                        message: "the first message must be the request as JSON text",
                    }))
                    .await;
                return None;
            }
            _ => return None,
        }
    }
}

/// Sends an operation's progress events as messages made by `message`, then `end`; or its
/// refusal as `error`.
async fn relay<T: Send + 'static>(
    mut socket: WebSocket,
    events: Result<UnboundedReceiver<T>, ApiError>,
    message: fn(&T) -> Message,
) {
    let events = match events {
        Ok(events) => events,
        Err(e) => {
            let _ = socket.send(text(&WsMessage::Error { message: &e.message })).await;
            let _ = socket.send(Message::Close(None)).await;
            return;
        }
    };
    let events = std::sync::Arc::new(tokio::sync::Mutex::new(events));
    run(socket, move || {
        let events = events.clone();
        async move {
            match events.lock().await.recv().await {
                Some(event) => Next::Send(message(&event)),
                None => Next::Last(text(&WsMessage::End { reason: "finished" })),
            }
        }
    })
    .await
}
