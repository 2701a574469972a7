//! Container routes under `/api/v1/containers`: create, list (with filters), inspect, the
//! lifecycle (start, stop, kill, restart, pause, unpause, rename, wait, remove, prune), top,
//! stats, logs, and the WebSocket streams of attach and exec (framing in [`super::session`]).
//! Each handler reads the request and calls its operation (`ops::containers`).
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
use berth_engine::container::{ContainerAction, EngineEvent, ImageAction, WaitCondition};
use berth_types::{
    ContainerConfig, ContainerInspect, ContainerPruneReport, ContainerStats, ContainerSummary,
    CreatedContainer, ExecConfig, TopReport, WaitResult,
};
use futures_util::StreamExt;

use super::query::{log_options, QueryParams};
use super::session;
use crate::serve::error::{ApiError, ApiJson};
use crate::serve::events::{EventLog, Outcome};
use crate::serve::ops::containers::{self, ContainerFilters};
use crate::serve::ops::Caller;
use crate::serve::state::AppState;

/// How often `stats?stream=1` samples.
const STATS_INTERVAL: Duration = Duration::from_secs(1);

/// Writes every engine event (create, start, die with its exit code, oom, restarts by the
/// restart policy, stop, kill, destroy of `--rm` containers, ...; an image's `unpack_failed`)
/// into the event log, until the engine goes away. Runs for the daemon's lifetime.
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
                Ok(EngineEvent::Image(event)) => {
                    let ImageAction::UnpackFailed { error } = &event.action;
                    // `error=` last: its text runs to the end of the message.
                    let message = format!("digest={} error={error}", event.digest);
                    events
                        .record("image", event.action.name(), &event.reference, Outcome::Failure, &message)
                        .await;
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
    caller: Caller,
    config: Result<ApiJson<ContainerConfig>, ApiError>,
) -> Result<(StatusCode, Json<CreatedContainer>), ApiError> {
    Ok((StatusCode::CREATED, Json(containers::create(&state, &caller, config.map(|b| b.0)).await?)))
}

/// `GET /containers?all=1&filter=status=running&filter=label=k=v`: newest first, with Docker's
/// human status filled in. A status filter shows stopped containers without `all`, as Docker.
#[utoipa::path(get, path = "/api/v1/containers", tag = "containers", params(("all" = Option<bool>, Query), ("filter" = Option<Vec<String>>, Query, description = "status=, name=, id=, label=, ancestor=, health=")), responses((status = 200, body = Vec<serde_json::Value>, description = "ContainerSummary list"), (status = 400, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn list_containers(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<ContainerSummary>>, ApiError> {
    let query = QueryParams::parse(query, &["all", "filter"])?;
    let filters = ContainerFilters::parse(query.all("filter"))?;
    Ok(Json(containers::list(&state, &caller, query.flag("all")?, &filters).await?))
}

#[utoipa::path(get, path = "/api/v1/containers/{name}", tag = "containers", params(("name" = String, Path, description = "container name or ID (prefix)")), responses((status = 200, body = serde_json::Value, description = "ContainerInspect"), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn inspect_container(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<ContainerInspect>, ApiError> {
    Ok(Json(containers::inspect(&state, &caller, &name).await?))
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
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<StatusCode, ApiError> {
    QueryParams::parse(query, &[])?;
    containers::start(&state, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/containers/{name}/stop", tag = "containers", params(("name" = String, Path, description = "container name or ID (prefix)"), ("t" = Option<u32>, Query, description = "seconds before SIGKILL")), responses((status = 204), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn stop_container(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<StatusCode, ApiError> {
    let query = QueryParams::parse(query, &["t"])?;
    containers::stop(&state, &caller, &name, timeout(&query)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/containers/{name}/restart", tag = "containers", params(("name" = String, Path, description = "container name or ID (prefix)"), ("t" = Option<u32>, Query)), responses((status = 204), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn restart_container(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<StatusCode, ApiError> {
    let query = QueryParams::parse(query, &["t"])?;
    containers::restart(&state, &caller, &name, timeout(&query)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/containers/{name}/kill", tag = "containers", params(("name" = String, Path, description = "container name or ID (prefix)"), ("signal" = Option<String>, Query)), responses((status = 204), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn kill_container(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<StatusCode, ApiError> {
    let query = QueryParams::parse(query, &["signal"])?;
    let signal = query.one("signal")?.filter(|s| !s.is_empty()).map(str::to_string);
    containers::kill(&state, &caller, &name, signal).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/containers/{name}/pause", tag = "containers", params(("name" = String, Path, description = "container name or ID (prefix)")), responses((status = 204), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn pause_container(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<StatusCode, ApiError> {
    QueryParams::parse(query, &[])?;
    containers::pause(&state, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/containers/{name}/unpause", tag = "containers", params(("name" = String, Path, description = "container name or ID (prefix)")), responses((status = 204), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn unpause_container(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<StatusCode, ApiError> {
    QueryParams::parse(query, &[])?;
    containers::unpause(&state, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/containers/{name}/rename", tag = "containers", params(("name" = String, Path, description = "container name or ID (prefix)"), ("name" = String, Query, description = "the new name")), responses((status = 204), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn rename_container(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<StatusCode, ApiError> {
    let query = QueryParams::parse(query, &["name"])?;
    let new_name = query.one("name")?.unwrap_or_default().to_string();
    if new_name.is_empty() {
        return Err(ApiError::bad_request("the new name is missing (?name=)").with_field("name"));
    }
    containers::rename(&state, &caller, &name, &new_name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/containers/{name}", tag = "containers", params(("name" = String, Path, description = "container name or ID (prefix)"), ("force" = Option<bool>, Query), ("v" = Option<bool>, Query, description = "also remove the container's anonymous volumes")), responses((status = 204), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn remove_container(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<StatusCode, ApiError> {
    let query = QueryParams::parse(query, &["force", "v"])?;
    // `v`: the container's anonymous volumes go too (`rm -v`, Docker's parameter name).
    containers::remove(&state, &caller, &name, query.flag("force")?, query.flag("v")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/containers/{name}/wait", tag = "containers", params(("name" = String, Path, description = "container name or ID (prefix)"), ("condition" = Option<String>, Query, description = "not-running, next-exit or removed")), responses((status = 200, body = serde_json::Value, description = "WaitResult"), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn wait_container(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<WaitResult>, ApiError> {
    let query = QueryParams::parse(query, &["condition"])?;
    let condition: WaitCondition = query.one("condition")?.unwrap_or_default().parse()?;
    Ok(Json(containers::wait(&state, &caller, &name, condition).await?))
}

#[utoipa::path(post, path = "/api/v1/containers/prune", tag = "containers", responses((status = 200, body = serde_json::Value, description = "ContainerPruneReport"), (status = 400, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn prune_containers(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<ContainerPruneReport>, ApiError> {
    QueryParams::parse(query, &[])?;
    Ok(Json(containers::prune(&state, &caller).await?))
}

#[utoipa::path(get, path = "/api/v1/containers/{name}/top", tag = "containers", params(("name" = String, Path, description = "container name or ID (prefix)")), responses((status = 200, body = serde_json::Value, description = "TopReport"), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn top_container(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<TopReport>, ApiError> {
    Ok(Json(containers::top(&state, &caller, &name).await?))
}

/// One sample, or with `?stream=1` a JSON line per second until the container stops or the
/// client goes away.
#[utoipa::path(get, path = "/api/v1/containers/{name}/stats", tag = "containers", params(("name" = String, Path, description = "container name or ID (prefix)"), ("stream" = Option<bool>, Query)), responses((status = 200, body = serde_json::Value, description = "ContainerStats, or JSON lines of them with stream"), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn container_stats(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = QueryParams::parse(query, &["stream"])?;
    let first: ContainerStats = containers::stats(&state, &caller, &name).await?;
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
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = QueryParams::parse(query, &["follow", "tail", "since", "until", "stdout", "stderr"])?;
    let options = log_options(&query)?;
    let entries = containers::logs(&state, &caller, &name, options).await?;
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

#[utoipa::path(get, path = "/api/v1/containers/{name}/attach", tag = "containers", description = "WebSocket: the container's stdio (framing in routes::session)", params(("name" = String, Path, description = "container name or ID (prefix)"), ("stdin" = Option<bool>, Query)), responses((status = 101, description = "switching to the WebSocket"), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody), (status = 426, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn attach_container(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let query = QueryParams::parse(query, &["stdin"])?;
    let stdin = query.flag("stdin")?;
    let session = containers::attach(&state, &caller, &name).await?;
    Ok(ws.on_upgrade(move |socket| session::pump(socket, session, stdin)))
}

#[utoipa::path(get, path = "/api/v1/containers/{name}/exec", tag = "containers", description = "WebSocket: a new process in the container (framing in routes::session)", params(("name" = String, Path, description = "container name or ID (prefix)"), ("cmd" = Vec<String>, Query), ("env" = Option<Vec<String>>, Query), ("user" = Option<String>, Query), ("workdir" = Option<String>, Query), ("tty" = Option<bool>, Query), ("stdin" = Option<bool>, Query)), responses((status = 101, description = "switching to the WebSocket"), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody), (status = 426, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn exec_container(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
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
    let stdin = config.open_stdin;
    let exec = containers::exec(&state, &caller, &name, config).await?;
    // The session's audit row is closed when the process ends.
    let audit_log = state.audit.clone();
    Ok(ws
        .on_upgrade(move |socket| session::pump_exec(socket, exec.session, stdin, audit_log, exec.audit_row)))
}

/// The `X-Docker-Container-Path-Stat` header: base64 of the stat's JSON.
fn path_stat_header(stat: &berth_types::PathStat) -> (&'static str, String) {
    use base64::Engine as _;
    let json = serde_json::to_vec(stat).expect("a path stat serialises");
    (berth_types::PATH_STAT_HEADER, base64::engine::general_purpose::STANDARD.encode(json))
}

fn archive_path(query: &QueryParams) -> Result<String, ApiError> {
    match query.one("path")? {
        Some(path) if !path.is_empty() => Ok(path.to_string()),
        _ => Err(ApiError::bad_request("path is required")),
    }
}

/// `cp` out of a container: the tar of `path` (its base name, a directory with its content;
/// `dir/.` its content only), its stat in the `X-Docker-Container-Path-Stat` header.
#[utoipa::path(get, path = "/api/v1/containers/{name}/archive", tag = "containers", params(("name" = String, Path, description = "container name or ID (prefix)"), ("path" = String, Query, description = "absolute path in the container")), responses((status = 200, content_type = "application/x-tar", body = Vec<u8>), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn get_archive(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = QueryParams::parse(query, &["path"])?;
    let source = containers::archive(&state, &caller, &name, &archive_path(&query)?).await?;
    let stat = path_stat_header(source.stat());
    let engine = state.engine.clone();
    let body =
        crate::serve::body::engine_body(
            "archive",
            move |out| async move { source.write_to(&engine, out).await },
        );
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-tar".to_string()),
            (header::HeaderName::from_static("x-docker-container-path-stat"), stat.1),
        ],
        body,
    )
        .into_response())
}

/// What `path` is, in the `X-Docker-Container-Path-Stat` header (no body).
#[utoipa::path(head, path = "/api/v1/containers/{name}/archive", tag = "containers", params(("name" = String, Path, description = "container name or ID (prefix)"), ("path" = String, Query, description = "absolute path in the container")), responses((status = 200), (status = 400), (status = 404)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn head_archive(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = QueryParams::parse(query, &["path"])?;
    let stat = containers::stat_path(&state, &caller, &name, &archive_path(&query)?).await?;
    let (_, value) = path_stat_header(&stat);
    Ok(([(header::HeaderName::from_static("x-docker-container-path-stat"), value)], StatusCode::OK)
        .into_response())
}

/// `cp` into a container: the tar body is extracted into the directory `path`, which must
/// exist.
#[utoipa::path(put, path = "/api/v1/containers/{name}/archive", tag = "containers", params(("name" = String, Path, description = "container name or ID (prefix)"), ("path" = String, Query, description = "a directory in the container"), ("no_overwrite_dir_non_dir" = Option<bool>, Query, description = "refuse to replace a directory with a file or the other way round"), ("copy_uid_gid" = Option<bool>, Query, description = "the files get the container user's owner")), request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "a tar archive"), responses((status = 200), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 403, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn put_archive(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let query = QueryParams::parse(query, &["path", "no_overwrite_dir_non_dir", "copy_uid_gid"])?;
    let path = archive_path(&query)?;
    let options = berth_engine::container::archive::ExtractOptions {
        no_overwrite_dir_non_dir: query.flag("no_overwrite_dir_non_dir")?,
        copy_uid_gid: query.flag("copy_uid_gid")?,
    };
    let body = crate::serve::body::BodyPump::start(body);
    containers::extract(&state, &caller, &name, &path, body, options).await?;
    Ok(StatusCode::OK)
}

/// `export`: the container's root filesystem as a tar (its volumes and mounts left out).
#[utoipa::path(get, path = "/api/v1/containers/{name}/export", tag = "containers", params(("name" = String, Path, description = "container name or ID (prefix)")), responses((status = 200, content_type = "application/x-tar", body = Vec<u8>), (status = 404, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn export_container(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let source = containers::export(&state, &caller, &name).await?;
    let engine = state.engine.clone();
    let body =
        crate::serve::body::engine_body(
            "export",
            move |out| async move { source.write_to(&engine, out).await },
        );
    Ok(([(header::CONTENT_TYPE, "application/x-tar")], body).into_response())
}

/// `diff`: the changed paths, sorted (kind 0 changed, 1 added, 2 deleted).
#[utoipa::path(get, path = "/api/v1/containers/{name}/changes", tag = "containers", params(("name" = String, Path, description = "container name or ID (prefix)")), responses((status = 200, body = Vec<berth_types::ContainerChange>), (status = 404, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn container_changes(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Vec<berth_types::ContainerChange>>, ApiError> {
    Ok(Json(containers::changes(&state, &caller, &name).await?))
}

/// `commit`: a new image of the container's changes and config.
#[utoipa::path(post, path = "/api/v1/containers/{name}/commit", tag = "containers", params(("name" = String, Path, description = "container name or ID (prefix)")), request_body = berth_types::CommitRequest, responses((status = 201, body = berth_types::CommitReport), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn commit_container(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    request: Result<ApiJson<berth_types::CommitRequest>, ApiError>,
) -> Result<(StatusCode, Json<berth_types::CommitReport>), ApiError> {
    let options = request.map(|ApiJson(r)| berth_engine::container::commit::CommitOptions {
        reference: r.reference,
        author: r.author,
        comment: r.comment,
        changes: r.changes,
        pause: r.pause,
        config: Default::default(),
    });
    Ok((StatusCode::CREATED, Json(containers::commit(&state, &caller, &name, options).await?)))
}

/// `update`: memory, CPU and pids limits and the restart policy, for the running container and
/// its next starts.
#[utoipa::path(post, path = "/api/v1/containers/{name}/update", tag = "containers", params(("name" = String, Path, description = "container name or ID (prefix)")), request_body = berth_types::ContainerUpdate, responses((status = 200, body = berth_types::UpdateReport), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn update_container(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    update: Result<ApiJson<berth_types::ContainerUpdate>, ApiError>,
) -> Result<Json<berth_types::UpdateReport>, ApiError> {
    Ok(Json(containers::update(&state, &caller, &name, update.map(|u| u.0)).await?))
}
