//! Compose stacks under `/api/v1/stacks`: list, inspect, `up` / `down` / `stop` / `start` /
//! `restart` (each a stream of JSON lines, one [`StackProgress`] each, like pull progress; the
//! last line is `{"object": "project", "action": "Done"}` or `"Error"` with the message), and the
//! WebSocket of a stack's aggregated logs.
//!
//! A file that cannot be read into a project is refused with 400 before the stream starts.
//!
//! Teams are the auth middleware's (`serve::auth`): a stack is its team's when its containers
//! are, `up` gives the containers it makes to the caller's team, and the list is filtered.

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::Json;
use berth_engine::container::LogOptions;
use berth_types::{StackDown, StackInspect, StackProgress, StackSummary, StackUp};

use super::answer::json_lines;
use super::query::{services_and_timeout, tail, time_param, QueryParams};
use super::streams::send_log;
use crate::serve::error::{ApiError, ApiJson};
use crate::serve::ops::stacks::{self, StackAction};
use crate::serve::ops::Caller;
use crate::serve::state::AppState;

/// `GET /api/v1/stacks`: the compose projects that have containers (`berth compose ls`).
#[utoipa::path(get, path = "/api/v1/stacks", tag = "stacks",
    responses((status = 200, body = Vec<StackSummary>)),
    security(("bearer" = []), ("session" = [])))]
pub(super) async fn list_stacks(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<StackSummary>>, ApiError> {
    QueryParams::parse(query, &[])?;
    Ok(Json(stacks::list(&state, &caller).await?))
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
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<StackInspect>, ApiError> {
    Ok(Json(stacks::inspect(&state, &caller, &name).await?))
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
    caller: Caller,
    Path(name): Path<String>,
    request: Result<ApiJson<StackUp>, ApiError>,
) -> Result<Response, ApiError> {
    Ok(json_lines(stacks::up(&state, &caller, &name, request.map(|b| b.0)).await?))
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
    caller: Caller,
    Path(name): Path<String>,
    request: Result<ApiJson<StackDown>, ApiError>,
) -> Result<Response, ApiError> {
    Ok(json_lines(stacks::down(&state, &caller, &name, request.map(|b| b.0)).await?))
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
    caller: Caller,
    Path((name, operation)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = QueryParams::parse(query, &["services", "t"])?;
    let (services, timeout) = services_and_timeout(&query)?;
    let Some(action) = StackAction::parse(&operation) else {
        return Err(ApiError::not_found(format!(
            "no stack operation {operation:?}: up, down, stop, start or restart"
        )));
    };
    Ok(json_lines(stacks::act(&state, &caller, &name, action, services, timeout).await?))
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
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let query = QueryParams::parse(query, &["services", "tail", "follow", "since"])?;
    let (services, _) = services_and_timeout(&query)?;
    let options = LogOptions {
        follow: query.flag("follow")?,
        tail: tail(&query)?,
        since: time_param(&query, "since")?,
        ..Default::default()
    };
    // Opened before the upgrade: a missing stack is an ordinary 404.
    let entries = stacks::logs(&state, &caller, &name, &services, options).await?;
    Ok(ws.on_upgrade(move |socket| send_log(socket, entries, "end of the logs")))
}
