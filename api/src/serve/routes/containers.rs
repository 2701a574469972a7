//! Container routes under `/api/v1/containers`: create, list (with filters), inspect, the
//! lifecycle (start, stop, kill, restart, pause, unpause, rename, wait, remove, prune), top,
//! stats, logs, and the WebSocket streams of attach and exec (framing in [`super::session`]).
//!
//! Attach and exec are WebSocket upgrades of a GET (browsers cannot send a body with one):
//! - `GET /containers/{name}/attach?stdin=1`: the container's stdio; attach before `start` to
//!   see all of a new run's output.
//! - `GET /containers/{name}/exec?cmd=sh&cmd=-c&cmd=...&env=K=V&user=u&workdir=/w&tty=1&stdin=1`:
//!   the [`ExecConfig`] as query parameters (`cmd` and `env` repeat, in order). The process is
//!   started before the upgrade, so a missing container or command is an ordinary HTTP error.

use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_engine::container::{ContainerAction, EngineEvent, LogOptions, WaitCondition};
use berth_types::{
    CommandError, ContainerConfig, ContainerInspect, ContainerPruneReport, ContainerStats, ContainerStatus,
    ContainerSummary, CreatedContainer, ExecConfig, TopReport, WaitResult,
};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;

use super::query::QueryParams;
use super::session;
use super::AppState;
use crate::serve::error::{ApiError, ApiJson};
use crate::serve::events::{EventLog, Outcome};

/// How often `stats?stream=1` samples.
const STATS_INTERVAL: Duration = Duration::from_secs(1);

/// Records a failed operation (successes come from the engine's own events, see
/// [`record_engine_events`]) and turns the error into the answer. A command that could not be
/// executed answers with its exit code ([`CommandError`]).
async fn failed(state: &AppState, action: &str, subject: &str, e: berth_engine::Error) -> Response {
    state.events.record("container", action, subject, Outcome::Failure, &e.to_string()).await;
    error_response(e)
}

fn error_response(e: berth_engine::Error) -> Response {
    match e {
        berth_engine::Error::CommandFailed { exit_code, message } => {
            (StatusCode::BAD_REQUEST, Json(CommandError { message, exit_code })).into_response()
        }
        other => ApiError::from(other).into_response(),
    }
}

/// Writes every engine event (create, start, die with its exit code, oom, restarts by the
/// restart policy, stop, kill, destroy of `--rm` containers, ...) into the event log, until the
/// engine goes away. Runs for the daemon's lifetime.
pub fn record_engine_events(engine: &berth_engine::Engine, events: EventLog) {
    let mut receiver = engine.subscribe_events();
    tokio::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match receiver.recv().await {
                Ok(EngineEvent::Container(event)) => {
                    let mut message = format!("id={}", event.id);
                    for (k, v) in event.attributes() {
                        message.push_str(&format!(" {k}={v}"));
                    }
                    let subject = if event.name.is_empty() { &event.id } else { &event.name };
                    let outcome = match event.action {
                        ContainerAction::Oom => Outcome::Failure,
                        _ => Outcome::Success,
                    };
                    events.record("container", event.action.name(), subject, outcome, &message).await;
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "the event log fell behind the engine; events were lost");
                    events
                        .record("daemon", "events-lost", "", Outcome::Failure, &format!("{n} events"))
                        .await;
                }
                Err(RecvError::Closed) => return,
            }
        }
    });
}

#[utoipa::path(post, path = "/api/v1/containers", tag = "containers", request_body(content = serde_json::Value, description = "ContainerConfig"), responses((status = 201, body = serde_json::Value, description = "CreatedContainer"), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody), (status = 413, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn create_container(
    State(state): State<AppState>,
    ApiJson(config): ApiJson<ContainerConfig>,
) -> Response {
    let subject = config.name.clone().unwrap_or_else(|| config.image.clone());
    match state.engine.create_container(config).await {
        Ok(created) => (StatusCode::CREATED, Json::<CreatedContainer>(created)).into_response(),
        Err(e) => failed(&state, "create", &subject, e).await,
    }
}

/// `GET /containers?all=1&filter=status=running&filter=label=k=v`: newest first, with Docker's
/// human status filled in. A status filter shows stopped containers without `all`, as Docker.
#[utoipa::path(get, path = "/api/v1/containers", tag = "containers", params(("all" = Option<bool>, Query), ("filter" = Option<Vec<String>>, Query, description = "status=, name=, id=, label=, ancestor=, health=")), responses((status = 200, body = Vec<serde_json::Value>, description = "ContainerSummary list"), (status = 400, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn list_containers(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<ContainerSummary>>, ApiError> {
    let query = QueryParams::parse(query, &["all", "filter"])?;
    let filters = Filters::parse(query.all("filter"))?;
    let all = query.flag("all")? || !filters.status.is_empty();
    let mut containers = state.engine.list_containers(all).await?;
    let ancestors = filters.ancestor_ids(&state.engine).await;
    containers.retain(|c| filters.matches(c, &ancestors));
    let now = Utc::now();
    for c in &mut containers {
        c.status = c.state.human_status(now);
    }
    Ok(Json(containers))
}

/// `ps --filter` as Docker reads it: the same key given twice matches either value; different
/// keys must all match.
#[derive(Debug, Default)]
struct Filters {
    status: Vec<ContainerStatus>,
    name: Vec<regex::Regex>,
    id: Vec<String>,
    label: Vec<(String, Option<String>)>,
    ancestor: Vec<String>,
    /// `health=starting|healthy|unhealthy|none` (`None`: no health check running).
    health: Vec<Option<berth_types::HealthStatus>>,
}

impl Filters {
    fn parse<'a>(values: impl Iterator<Item = &'a str>) -> Result<Filters, ApiError> {
        let mut filters = Filters::default();
        for value in values {
            let Some((key, arg)) = value.split_once('=') else {
                return Err(ApiError::bad_request(format!(
                    "bad format of filter (expected name=value): {value}"
                )));
            };
            match key {
                "status" => {
                    let status =
                        serde_json::from_value(serde_json::Value::String(arg.to_string())).map_err(|_| {
                            ApiError::bad_request(format!(
                                "invalid filter 'status={arg}': choose created, restarting, running, \
                                 removing, paused, exited or dead"
                            ))
                        })?;
                    filters.status.push(status);
                }
                "name" => {
                    let re = regex::Regex::new(arg)
                        .map_err(|e| ApiError::bad_request(format!("invalid filter 'name={arg}': {e}")))?;
                    filters.name.push(re);
                }
                "id" => filters.id.push(arg.to_string()),
                "label" => filters.label.push(match arg.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (arg.to_string(), None),
                }),
                "ancestor" => filters.ancestor.push(arg.to_string()),
                "health" => filters.health.push(match arg {
                    "none" => None,
                    _ => Some(serde_json::from_value(serde_json::Value::String(arg.to_string())).map_err(
                        |_| {
                            ApiError::bad_request(format!(
                                "Unrecognised filter value for health: {arg} (choose starting, healthy, \
                                 unhealthy or none)"
                            ))
                        },
                    )?),
                }),
                other => {
                    return Err(ApiError::bad_request(format!(
                        "invalid filter '{other}': choose status, name, id, label, ancestor or health"
                    )))
                }
            }
        }
        Ok(filters)
    }

    /// Image IDs of the `ancestor` filters that name an existing image.
    async fn ancestor_ids(&self, engine: &berth_engine::Engine) -> Vec<String> {
        let mut ids = Vec::new();
        for name in &self.ancestor {
            if let Ok(image) = engine.inspect_image(name).await {
                ids.push(image.id);
            }
        }
        ids
    }

    fn matches(&self, c: &ContainerSummary, ancestor_ids: &[String]) -> bool {
        let any = |empty: bool, hit: bool| empty || hit;
        any(self.status.is_empty(), self.status.contains(&c.state.status))
            // Docker's names carry a leading slash, and filters are written for that.
            && any(
                self.name.is_empty(),
                self.name.iter().any(|re| re.is_match(&c.name) || re.is_match(&format!("/{}", c.name))),
            )
            && any(self.id.is_empty(), self.id.iter().any(|id| c.id.starts_with(id.as_str())))
            && self.label.iter().all(|(k, v)| match v {
                Some(v) => c.labels.get(k) == Some(v),
                None => c.labels.contains_key(k),
            })
            && any(
                self.ancestor.is_empty(),
                ancestor_ids.contains(&c.image_id) || self.ancestor.contains(&c.image),
            )
            && any(self.health.is_empty(), self.health.contains(&c.state.health.as_ref().map(|h| h.status)))
    }
}

#[utoipa::path(get, path = "/api/v1/containers/{name}", tag = "containers", params(("name" = String, Path, description = "container name or ID (prefix)")), responses((status = 200, body = serde_json::Value, description = "ContainerInspect"), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn inspect_container(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ContainerInspect>, ApiError> {
    Ok(Json(state.engine.inspect_container(&name).await?))
}

/// Runs a lifecycle operation that answers 204 No Content.
async fn no_content(
    state: &AppState,
    action: &str,
    name: &str,
    result: berth_engine::Result<()>,
) -> Response {
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => failed(state, action, name, e).await,
    }
}

/// `?t=` seconds for stop and restart.
fn timeout(query: &QueryParams) -> Result<Option<u32>, ApiError> {
    query
        .number("t")?
        .map(|t| u32::try_from(t).map_err(|_| ApiError::bad_request(format!("invalid stop timeout {t}"))))
        .transpose()
}

#[utoipa::path(post, path = "/api/v1/containers/{name}/start", tag = "containers", params(("name" = String, Path, description = "container name or ID (prefix)")), responses((status = 204), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn start_container(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    QueryParams::parse(query, &[])?;
    Ok(no_content(&state, "start", &name, state.engine.start_container(&name).await).await)
}

#[utoipa::path(post, path = "/api/v1/containers/{name}/stop", tag = "containers", params(("name" = String, Path, description = "container name or ID (prefix)"), ("t" = Option<u32>, Query, description = "seconds before SIGKILL")), responses((status = 204), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn stop_container(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = QueryParams::parse(query, &["t"])?;
    let t = timeout(&query)?;
    Ok(no_content(&state, "stop", &name, state.engine.stop_container(&name, t).await).await)
}

#[utoipa::path(post, path = "/api/v1/containers/{name}/restart", tag = "containers", params(("name" = String, Path, description = "container name or ID (prefix)"), ("t" = Option<u32>, Query)), responses((status = 204), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn restart_container(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = QueryParams::parse(query, &["t"])?;
    let t = timeout(&query)?;
    Ok(no_content(&state, "restart", &name, state.engine.restart_container(&name, t).await).await)
}

#[utoipa::path(post, path = "/api/v1/containers/{name}/kill", tag = "containers", params(("name" = String, Path, description = "container name or ID (prefix)"), ("signal" = Option<String>, Query)), responses((status = 204), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn kill_container(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = QueryParams::parse(query, &["signal"])?;
    let signal = query.one("signal")?.filter(|s| !s.is_empty()).map(str::to_string);
    Ok(no_content(&state, "kill", &name, state.engine.kill_container(&name, signal).await).await)
}

#[utoipa::path(post, path = "/api/v1/containers/{name}/pause", tag = "containers", params(("name" = String, Path, description = "container name or ID (prefix)")), responses((status = 204), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn pause_container(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    QueryParams::parse(query, &[])?;
    Ok(no_content(&state, "pause", &name, state.engine.pause_container(&name).await).await)
}

#[utoipa::path(post, path = "/api/v1/containers/{name}/unpause", tag = "containers", params(("name" = String, Path, description = "container name or ID (prefix)")), responses((status = 204), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn unpause_container(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    QueryParams::parse(query, &[])?;
    Ok(no_content(&state, "unpause", &name, state.engine.unpause_container(&name).await).await)
}

#[utoipa::path(post, path = "/api/v1/containers/{name}/rename", tag = "containers", params(("name" = String, Path, description = "container name or ID (prefix)"), ("name" = String, Query, description = "the new name")), responses((status = 204), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn rename_container(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = QueryParams::parse(query, &["name"])?;
    let new_name = query.one("name")?.unwrap_or_default().to_string();
    if new_name.is_empty() {
        return Err(ApiError::bad_request("the new name is missing (?name=)"));
    }
    Ok(no_content(&state, "rename", &name, state.engine.rename_container(&name, &new_name).await).await)
}

#[utoipa::path(delete, path = "/api/v1/containers/{name}", tag = "containers", params(("name" = String, Path, description = "container name or ID (prefix)"), ("force" = Option<bool>, Query), ("v" = Option<bool>, Query, description = "also remove the container's anonymous volumes")), responses((status = 204), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn remove_container(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = QueryParams::parse(query, &["force", "v"])?;
    let force = query.flag("force")?;
    // `v`: the container's anonymous volumes go too (`rm -v`, Docker's parameter name).
    let result = if query.flag("v")? {
        state.engine.remove_container_with_volumes(&name, force).await
    } else {
        state.engine.remove_container(&name, force).await
    };
    Ok(no_content(&state, "destroy", &name, result).await)
}

#[utoipa::path(post, path = "/api/v1/containers/{name}/wait", tag = "containers", params(("name" = String, Path, description = "container name or ID (prefix)"), ("condition" = Option<String>, Query, description = "not-running, next-exit or removed")), responses((status = 200, body = serde_json::Value, description = "WaitResult"), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn wait_container(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<WaitResult>, ApiError> {
    let query = QueryParams::parse(query, &["condition"])?;
    let condition: WaitCondition = query.one("condition")?.unwrap_or_default().parse()?;
    Ok(Json(state.engine.wait_container(&name, condition).await?))
}

#[utoipa::path(post, path = "/api/v1/containers/prune", tag = "containers", responses((status = 200, body = serde_json::Value, description = "ContainerPruneReport"), (status = 400, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn prune_containers(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<ContainerPruneReport>, ApiError> {
    QueryParams::parse(query, &[])?;
    match state.engine.prune_containers().await {
        Ok(report) => {
            let message = format!(
                "{} containers deleted, {} bytes reclaimed",
                report.containers_deleted.len(),
                report.space_reclaimed
            );
            state.events.record("container", "prune", "stopped containers", Outcome::Success, &message).await;
            Ok(Json(report))
        }
        Err(e) => {
            state
                .events
                .record("container", "prune", "stopped containers", Outcome::Failure, &e.to_string())
                .await;
            Err(e.into())
        }
    }
}

#[utoipa::path(get, path = "/api/v1/containers/{name}/top", tag = "containers", params(("name" = String, Path, description = "container name or ID (prefix)")), responses((status = 200, body = serde_json::Value, description = "TopReport"), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn top_container(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<TopReport>, ApiError> {
    Ok(Json(state.engine.top_container(&name).await?))
}

/// One sample, or with `?stream=1` a JSON line per second until the container stops or the
/// client goes away.
#[utoipa::path(get, path = "/api/v1/containers/{name}/stats", tag = "containers", params(("name" = String, Path, description = "container name or ID (prefix)"), ("stream" = Option<bool>, Query)), responses((status = 200, body = serde_json::Value, description = "ContainerStats, or JSON lines of them with stream"), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn container_stats(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = QueryParams::parse(query, &["stream"])?;
    let first: ContainerStats = state.engine.container_stats(&name).await?;
    if !query.flag("stream")? {
        return Ok(Json(first).into_response());
    }
    let engine = state.engine.clone();
    let samples = futures_util::stream::unfold(Some(first), move |next| {
        let engine = engine.clone();
        let name = name.clone();
        async move {
            let sample = next?;
            let mut line = serde_json::to_vec(&sample).expect("stats serialise");
            line.push(b'\n');
            tokio::time::sleep(STATS_INTERVAL).await;
            // The stream ends when the container is gone or stopped sampling.
            let following = engine.container_stats(&name).await.ok();
            Some((Ok::<_, std::io::Error>(line), following))
        }
    });
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(samples)).into_response())
}

/// `GET /containers/{name}/logs?follow=1&tail=10&since=T&until=T&stdout=1&stderr=1`: JSON lines
/// of [`berth_types::LogEntry`]; times are RFC 3339. Without `stdout` and `stderr`, both.
#[utoipa::path(get, path = "/api/v1/containers/{name}/logs", tag = "containers", params(("name" = String, Path, description = "container name or ID (prefix)"), ("follow" = Option<bool>, Query), ("tail" = Option<String>, Query), ("since" = Option<String>, Query), ("until" = Option<String>, Query), ("stdout" = Option<bool>, Query), ("stderr" = Option<bool>, Query)), responses((status = 200, content_type = "application/x-ndjson", body = String, description = "JSON lines of LogEntry"), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn container_logs(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
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
    let options = LogOptions {
        follow: query.flag("follow")?,
        tail,
        since: time_param(&query, "since")?,
        until: time_param(&query, "until")?,
        stdout,
        stderr,
    };
    let entries = state.engine.container_logs(&name, options).await?;
    let lines = entries.map(|entry| match entry {
        Ok(entry) => {
            let mut line = serde_json::to_vec(&entry).expect("log entries serialise");
            line.push(b'\n');
            Ok(line)
        }
        // Cut the body off, so that the client sees an error instead of a clean end.
        Err(e) => {
            tracing::error!(error = %e, "reading a container log failed while streaming");
            Err(std::io::Error::other(e.to_string()))
        }
    });
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(lines)).into_response())
}

fn time_param(query: &QueryParams, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    query
        .one(name)?
        .filter(|v| !v.is_empty())
        .map(|v| {
            DateTime::parse_from_rfc3339(v).map(|t| t.to_utc()).map_err(|_| {
                ApiError::bad_request(format!("query parameter {name:?}: {v:?} is not an RFC 3339 time"))
            })
        })
        .transpose()
}

#[utoipa::path(get, path = "/api/v1/containers/{name}/attach", tag = "containers", description = "WebSocket: the container's stdio (framing in routes::session)", params(("name" = String, Path, description = "container name or ID (prefix)"), ("stdin" = Option<bool>, Query)), responses((status = 101, description = "switching to the WebSocket"), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody), (status = 426, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn attach_container(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let query = QueryParams::parse(query, &["stdin"])?;
    let stdin = query.flag("stdin")?;
    let session = state.engine.attach_container(&name).await?;
    Ok(ws.on_upgrade(move |socket| session::pump(socket, session, stdin)))
}

#[utoipa::path(get, path = "/api/v1/containers/{name}/exec", tag = "containers", description = "WebSocket: a new process in the container (framing in routes::session)", params(("name" = String, Path, description = "container name or ID (prefix)"), ("cmd" = Vec<String>, Query), ("env" = Option<Vec<String>>, Query), ("user" = Option<String>, Query), ("workdir" = Option<String>, Query), ("tty" = Option<bool>, Query), ("stdin" = Option<bool>, Query)), responses((status = 101, description = "switching to the WebSocket"), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody), (status = 426, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn exec_container(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    audit: Option<axum::Extension<crate::serve::auth::AuditEntry>>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let query = QueryParams::parse(query, &["cmd", "env", "user", "workdir", "tty", "stdin"])?;
    let config = ExecConfig {
        cmd: query.all("cmd").map(str::to_string).collect(),
        env: query.all("env").map(str::to_string).collect(),
        user: query.one("user")?.filter(|u| !u.is_empty()).map(str::to_string),
        working_dir: query.one("workdir")?.filter(|w| !w.is_empty()).map(str::to_string),
        tty: query.flag("tty")?,
        open_stdin: query.flag("stdin")?,
    };
    if config.cmd.is_empty() {
        return Err(ApiError::bad_request("no command specified"));
    }
    let stdin = config.open_stdin;
    let detail = config.cmd.join(" ");
    match state.engine.exec_container(&name, config).await {
        Ok(session) => {
            // The session's audit row (opened by `serve::auth`) is closed when the process ends.
            let audit_log = state.audit.clone();
            let row = audit.map(|axum::Extension(entry)| entry.0);
            Ok(ws.on_upgrade(move |socket| session::pump_exec(socket, session, stdin, audit_log, row)))
        }
        Err(e) => {
            state
                .events
                .record("container", "exec", &name, Outcome::Failure, &format!("{detail}: {e}"))
                .await;
            Ok(error_response(e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_types::ContainerState;

    fn summary(name: &str, status: ContainerStatus, labels: &[(&str, &str)]) -> ContainerSummary {
        ContainerSummary {
            id: format!("{name:0<64}"),
            name: name.into(),
            image: "busybox".into(),
            image_id: "sha256:aa".into(),
            command: "sh".into(),
            created: String::new(),
            state: ContainerState {
                status,
                pid: 0,
                exit_code: 0,
                oom_killed: false,
                error: String::new(),
                started_at: String::new(),
                finished_at: String::new(),
                restart_count: 0,
                health: None,
            },
            status: String::new(),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ports: Vec::new(),
            networks: Vec::new(),
        }
    }

    #[test]
    fn filters_like_docker() {
        let web = summary("web", ContainerStatus::Running, &[("app", "shop"), ("tier", "front")]);
        let db = summary("db", ContainerStatus::Exited, &[("app", "shop")]);
        let check = |filters: &[&str], want: &[&str]| {
            let f = Filters::parse(filters.iter().copied()).unwrap();
            let got: Vec<&str> =
                [&web, &db].into_iter().filter(|c| f.matches(c, &[])).map(|c| c.name.as_str()).collect();
            assert_eq!(got, want, "{filters:?}");
        };
        check(&[], &["web", "db"]);
        check(&["status=running"], &["web"]);
        check(&["status=running", "status=exited"], &["web", "db"]);
        check(&["name=we"], &["web"]);
        check(&["name=^/db$"], &["db"]);
        check(&["label=tier"], &["web"]);
        check(&["label=app=shop"], &["web", "db"]);
        check(&["label=app=shop", "status=exited"], &["db"]);
        check(&["ancestor=busybox"], &["web", "db"]);
        check(&["ancestor=alpine"], &[]);
        check(&["id=db0"], &["db"]);
        for bad in ["status=bogus", "nope=1", "status", "name=("] {
            let e = Filters::parse([bad].into_iter()).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
        }
    }
}
