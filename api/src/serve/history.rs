//! The history beyond the event log, and its queries: the audit log (every mutating call and
//! every exec session), finished containers with their exit codes, build records with their
//! logs. All in the daemon's SQLite database, so it survives restarts.
//!
//! `GET /api/v1/history/{events,containers,audit,builds}`: newest first, filtered by the query
//! parameters each documents, paged with `limit` and `before` (an id; the answer's
//! `next_before` is the value for the next page, absent on the last one).

use std::collections::HashSet;

use axum::extract::{Extension, Path, RawQuery, State};
use axum::Json;
use berth_engine::container::{ContainerAction, EngineEvent};
use berth_types::history::{AuditRecord, BuildRecord, EventRecord, FinishedContainer, Page};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};
use utoipa::IntoParams;

use super::auth::store::OwnedKind;
use super::auth::{Principal, Role};
use super::error::ApiError;
use super::routes::query::QueryParams;
use super::routes::AppState;

/// Most rows one history page holds.
pub const MAX_PAGE: i64 = 1000;

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Writes the audit log.
#[derive(Clone)]
pub struct Audit {
    pool: SqlitePool,
}

impl Audit {
    pub fn new(pool: SqlitePool) -> Audit {
        Audit { pool }
    }

    /// Records a finished call. Failures to record are logged: the call has happened.
    pub async fn call(
        &self,
        user: &str,
        method: &str,
        path: &str,
        status: u16,
        container: &str,
        command: &str,
    ) {
        let time = now();
        let r = sqlx::query(
            "INSERT INTO audit (time, user, method, path, status, container, command, ended) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&time)
        .bind(user)
        .bind(method)
        .bind(path)
        .bind(status)
        .bind(container)
        .bind(command)
        .bind(&time)
        .execute(&self.pool)
        .await;
        if let Err(e) = r {
            tracing::error!(error = %e, user, method, path, "writing the audit log failed");
        }
    }

    /// Opens the audit row of an exec session; its id for [`Audit::exec_ended`].
    pub async fn exec_started(&self, user: &str, path: &str, container: &str, command: &str) -> Option<i64> {
        let r = sqlx::query(
            "INSERT INTO audit (time, user, method, path, status, container, command) VALUES (?, ?, 'EXEC', ?, 101, ?, ?)",
        )
        .bind(now())
        .bind(user)
        .bind(path)
        .bind(container)
        .bind(command)
        .execute(&self.pool)
        .await;
        match r {
            Ok(r) => Some(r.last_insert_rowid()),
            Err(e) => {
                tracing::error!(error = %e, user, container, "writing the audit log failed");
                None
            }
        }
    }

    /// Closes an exec session's row: its end time, and its exit code if it has one.
    pub async fn exec_ended(&self, id: i64, exit_code: Option<i32>, message: &str) {
        let r = sqlx::query("UPDATE audit SET ended = ?, exit_code = ?, message = ? WHERE id = ?")
            .bind(now())
            .bind(exit_code)
            .bind(message)
            .bind(id)
            .execute(&self.pool)
            .await;
        if let Err(e) = r {
            tracing::error!(error = %e, id, "closing an exec session's audit row failed");
        }
    }
}

/// Build records, for the build routes: one row per build with its log.
#[derive(Clone)]
pub struct Builds {
    pool: SqlitePool,
}

impl Builds {
    pub fn new(pool: SqlitePool) -> Builds {
        Builds { pool }
    }

    /// Opens a build's record; its id for [`Builds::finish`].
    pub async fn start(&self, user: &str, tags: &[String]) -> Result<i64, ApiError> {
        let r = sqlx::query("INSERT INTO builds (user, tags, started) VALUES (?, ?, ?)")
            .bind(user)
            .bind(tags.join(","))
            .bind(now())
            .execute(&self.pool)
            .await
            .map_err(|e| ApiError::internal(format!("recording a build: {e}")))?;
        Ok(r.last_insert_rowid())
    }

    /// Closes a build's record with how it ended, the image it made and its whole log.
    pub async fn finish(&self, id: i64, image_id: Option<&str>, success: bool, log: &str) {
        let r = sqlx::query("UPDATE builds SET ended = ?, outcome = ?, image_id = ?, log = ? WHERE id = ?")
            .bind(now())
            .bind(if success { "success" } else { "failure" })
            .bind(image_id)
            .bind(log)
            .bind(id)
            .execute(&self.pool)
            .await;
        if let Err(e) = r {
            tracing::error!(error = %e, id, "closing a build record failed");
        }
    }
}

/// Most bytes of a build's log kept in its record; the rest is cut (and says so).
const BUILD_LOG_LIMIT: usize = 4 * 1024 * 1024;

/// Passes a build's answer (JSON lines of `BuildEvent`) through to the client and keeps a
/// record of it: who, the tags, how it ended, the image, and its log as a person reads it. The
/// image goes to `team` (with the images that were shared before the build: one of those made
/// again stays shared). The record is opened before the first byte and closed at the end of
/// the stream, also when the client went away (the build goes on; the stream is drained by
/// this task).
pub async fn record_build(
    state: AppState,
    response: axum::response::Response,
    user: String,
    tags: Vec<String>,
    team: Option<(i64, HashSet<String>)>,
) -> axum::response::Response {
    use futures_util::StreamExt;
    let builds = Builds::new(state.events.pool().clone());
    let id = match builds.start(&user, &tags).await {
        Ok(id) => id,
        Err(e) => {
            tracing::error!(error = %e.message, "opening a build record failed");
            return response;
        }
    };
    let (parts, body) = response.into_parts();
    // A bounded channel: a slow client slows the copy, not the build (whose own channel is
    // the route's), and the daemon holds at most this many chunks per build.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(64);
    tokio::spawn(async move {
        let mut stream = body.into_data_stream();
        let mut pending = Vec::new();
        let mut log = String::new();
        let mut outcome: Option<(bool, Option<String>)> = None;
        let mut client = Some(tx);
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    log.push_str(&format!("error: the build stream broke off: {e}\n"));
                    break;
                }
            };
            pending.extend_from_slice(&chunk);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                if let Ok(event) = serde_json::from_slice::<serde_json::Value>(&line) {
                    if let Some(result) = build_log_line(&event, &mut log) {
                        outcome = Some(result);
                    }
                }
            }
            if let Some(tx) = &client {
                if tx.send(Ok(chunk)).await.is_err() {
                    client = None;
                }
            }
        }
        if log.len() > BUILD_LOG_LIMIT {
            let mut cut = BUILD_LOG_LIMIT;
            while !log.is_char_boundary(cut) {
                cut -= 1;
            }
            log.truncate(cut);
            log.push_str("\n[log cut at 4 MiB]\n");
        }
        let (success, image) = outcome.unwrap_or((false, None));
        if let (Some((team, shared_before)), Some(image)) = (&team, &image) {
            super::auth::adopt_image(&state, image, *team, shared_before).await;
        }
        builds.finish(id, image.as_deref(), success, &log).await;
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    axum::response::Response::from_parts(parts, axum::body::Body::from_stream(stream))
}

/// Appends one build event to the log as a person reads it; `Some((success, image))` for the
/// last event.
fn build_log_line(event: &serde_json::Value, log: &mut String) -> Option<(bool, Option<String>)> {
    let s = |k: &str| event.get(k).and_then(|v| v.as_str()).unwrap_or("");
    if log.len() > BUILD_LOG_LIMIT {
        // Past the limit only the end matters.
        return match s("type") {
            "built" => Some((true, Some(s("id").to_string()))),
            "error" => Some((false, None)),
            _ => None,
        };
    }
    match s("type") {
        "step" => log.push_str(&format!("{} {}\n", s("stage"), s("instruction"))),
        "cached" => log.push_str("---> Using cache\n"),
        "output" => log.push_str(s("text")),
        "warning" => log.push_str(&format!("warning: {}\n", s("message"))),
        "built" => {
            log.push_str(&format!("built {}\n", s("id")));
            return Some((true, Some(s("id").to_string())));
        }
        "error" => {
            log.push_str(&format!("error: {}\n", s("message")));
            return Some((false, None));
        }
        _ => {}
    }
    None
}

/// Writes a row of `finished_containers` for every container that exits (its `die` event,
/// with the exit code; an `oom` before it marks it), for the daemon's lifetime.
pub fn record_finished_containers(engine: &berth_engine::Engine, pool: SqlitePool) {
    let mut receiver = engine.subscribe_events();
    tokio::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        let mut oom: HashSet<String> = HashSet::new();
        loop {
            match receiver.recv().await {
                Ok(EngineEvent::Container(event)) => match event.action {
                    ContainerAction::Oom => {
                        oom.insert(event.id.clone());
                    }
                    ContainerAction::Die { exit_code } => {
                        let was_oom = oom.remove(&event.id);
                        let r = sqlx::query(
                            "INSERT INTO finished_containers (container_id, name, image, exit_code, oom, finished) \
                             VALUES (?, ?, ?, ?, ?, ?)",
                        )
                        .bind(&event.id)
                        .bind(&event.name)
                        .bind(&event.image)
                        .bind(exit_code)
                        .bind(was_oom)
                        .bind(event.time.to_rfc3339_opts(SecondsFormat::Millis, true))
                        .execute(&pool)
                        .await;
                        if let Err(e) = r {
                            tracing::error!(error = %e, container = %event.id, "recording a finished container failed");
                        }
                    }
                    _ => {}
                },
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "the finished-container history fell behind the engine");
                }
                Err(RecvError::Closed) => return,
            }
        }
    });
}

/// Paging parameters shared by every history.
#[derive(Debug, Deserialize, IntoParams)]
#[allow(dead_code)]
pub struct PageParams {
    /// At most this many rows (1 to 1000, default 100).
    pub limit: Option<i64>,
    /// Only rows with an id below this (the previous page's `next_before`).
    pub before: Option<i64>,
    /// Only rows at or after this RFC 3339 time.
    pub since: Option<String>,
    /// Only rows before this RFC 3339 time.
    pub until: Option<String>,
}

struct Paging {
    limit: i64,
    before: i64,
    since: Option<String>,
    until: Option<String>,
}

fn time_param(query: &QueryParams, name: &str) -> Result<Option<String>, ApiError> {
    query
        .one(name)?
        .filter(|v| !v.is_empty())
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.to_utc().to_rfc3339_opts(SecondsFormat::Millis, true))
                .map_err(|_| {
                    ApiError::bad_request(format!("query parameter {name:?}: {v:?} is not an RFC 3339 time"))
                })
        })
        .transpose()
}

fn paging(query: &QueryParams) -> Result<Paging, ApiError> {
    let limit = query.number("limit")?.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit must be between 1 and {MAX_PAGE}")));
    }
    let before = query.number("before")?.unwrap_or(i64::MAX);
    Ok(Paging { limit, before, since: time_param(query, "since")?, until: time_param(query, "until")? })
}

/// Adds the paging conditions and order to a query that ends in `WHERE 1=1 ...`.
fn page_sql(q: &mut QueryBuilder<Sqlite>, p: &Paging, time_column: &str) {
    q.push(" AND id < ").push_bind(p.before);
    if let Some(since) = &p.since {
        q.push(format!(" AND {time_column} >= ")).push_bind(since.clone());
    }
    if let Some(until) = &p.until {
        q.push(format!(" AND {time_column} < ")).push_bind(until.clone());
    }
    // One more than asked: whether there is a next page.
    q.push(" ORDER BY id DESC LIMIT ").push_bind(p.limit + 1);
}

fn eq_filters(
    q: &mut QueryBuilder<Sqlite>,
    query: &QueryParams,
    columns: &[(&str, &str)],
) -> Result<(), ApiError> {
    for (param, column) in columns {
        if let Some(v) = query.one(param)? {
            q.push(format!(" AND {column} = ")).push_bind(v.to_string());
        }
    }
    Ok(())
}

fn page<T>(mut items: Vec<T>, limit: i64, id: impl Fn(&T) -> i64) -> Page<T> {
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    let next_before = if more { items.last().map(id) } else { None };
    Page { items, next_before }
}

fn db_error(e: sqlx::Error) -> ApiError {
    ApiError::internal(format!("reading the history: {e}"))
}

async fn owned_containers(state: &AppState, p: &Principal) -> Result<Option<HashSet<String>>, ApiError> {
    if p.role == Role::Admin {
        return Ok(None);
    }
    let teams: Vec<i64> = p.teams.iter().map(|(id, _)| *id).collect();
    Ok(Some(state.auth.owned(OwnedKind::Containers, &teams).await?))
}

/// `GET /api/v1/history/events?type=&action=&subject=&outcome=`: the event history.
/// Non-admins see the events of their teams' containers only.
#[utoipa::path(get, path = "/api/v1/history/events", tag = "history",
    params(PageParams,
        ("type" = Option<String>, Query, description = "image, container, ..."),
        ("action" = Option<String>, Query, description = "create, start, die, pull, ..."),
        ("subject" = Option<String>, Query, description = "the object's name"),
        ("outcome" = Option<String>, Query, description = "success or failure")),
    responses((status = 200, body = Page<EventRecord>), (status = 400, body = crate::serve::openapi::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn history_events(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Page<EventRecord>>, ApiError> {
    let query = QueryParams::parse(
        raw,
        &["limit", "before", "since", "until", "type", "action", "subject", "outcome"],
    )?;
    let p = paging(&query)?;
    let mut q =
        QueryBuilder::new("SELECT id, time, type, action, subject, outcome, message FROM events WHERE 1=1");
    eq_filters(
        &mut q,
        &query,
        &[("type", "type"), ("action", "action"), ("subject", "subject"), ("outcome", "outcome")],
    )?;
    page_sql(&mut q, &p, "time");
    let rows = q.build().fetch_all(state.events.pool()).await.map_err(db_error)?;
    let mut items = rows
        .into_iter()
        .map(|r| {
            Ok(EventRecord {
                id: r.try_get("id")?,
                time: r.try_get("time")?,
                event_type: r.try_get("type")?,
                action: r.try_get("action")?,
                subject: r.try_get("subject")?,
                outcome: r.try_get("outcome")?,
                message: r.try_get("message")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(db_error)?;
    let mut result = page(std::mem::take(&mut items), p.limit, |e| e.id);
    if let Some(owned) = owned_containers(&state, &principal).await? {
        // Container events carry `id=<container id>` first in their message.
        result.items.retain(|e| {
            e.event_type == "container"
                && e.message
                    .strip_prefix("id=")
                    .and_then(|m| m.split(' ').next())
                    .is_some_and(|id| owned.contains(id))
        });
    }
    Ok(Json(result))
}

/// `GET /api/v1/history/containers?container=&name=&exit_code=`: containers that exited.
#[utoipa::path(get, path = "/api/v1/history/containers", tag = "history",
    params(PageParams,
        ("container" = Option<String>, Query, description = "full container ID"),
        ("name" = Option<String>, Query, description = "container name"),
        ("exit_code" = Option<i64>, Query, description = "exit code")),
    responses((status = 200, body = Page<FinishedContainer>), (status = 400, body = crate::serve::openapi::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn history_containers(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Page<FinishedContainer>>, ApiError> {
    let query =
        QueryParams::parse(raw, &["limit", "before", "since", "until", "container", "name", "exit_code"])?;
    let p = paging(&query)?;
    let exit_code = query.number("exit_code")?;
    let mut q = QueryBuilder::new(
        "SELECT id, container_id, name, image, exit_code, oom, finished FROM finished_containers WHERE 1=1",
    );
    eq_filters(&mut q, &query, &[("container", "container_id"), ("name", "name")])?;
    if let Some(code) = exit_code {
        q.push(" AND exit_code = ").push_bind(code);
    }
    page_sql(&mut q, &p, "finished");
    let rows = q.build().fetch_all(state.events.pool()).await.map_err(db_error)?;
    let items = rows
        .into_iter()
        .map(|r| {
            Ok(FinishedContainer {
                id: r.try_get("id")?,
                container_id: r.try_get("container_id")?,
                name: r.try_get("name")?,
                image: r.try_get("image")?,
                exit_code: r.try_get("exit_code")?,
                oom: r.try_get("oom")?,
                finished: r.try_get("finished")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(db_error)?;
    let mut result = page(items, p.limit, |c| c.id);
    if let Some(owned) = owned_containers(&state, &principal).await? {
        result.items.retain(|c| owned.contains(&c.container_id));
    }
    Ok(Json(result))
}

/// `GET /api/v1/history/audit?user=&method=&container=` (admins): who did what.
#[utoipa::path(get, path = "/api/v1/history/audit", tag = "history",
    params(PageParams,
        ("user" = Option<String>, Query, description = "user name (root for the unix socket)"),
        ("method" = Option<String>, Query, description = "POST, DELETE, ... or EXEC"),
        ("container" = Option<String>, Query, description = "the container of an exec session")),
    responses((status = 200, body = Page<AuditRecord>), (status = 400, body = crate::serve::openapi::ErrorBody),
        (status = 403, body = crate::serve::openapi::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn history_audit(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Page<AuditRecord>>, ApiError> {
    let query =
        QueryParams::parse(raw, &["limit", "before", "since", "until", "user", "method", "container"])?;
    let p = paging(&query)?;
    let mut q = QueryBuilder::new(
        "SELECT id, time, user, method, path, status, container, command, ended, exit_code, message FROM audit WHERE 1=1",
    );
    eq_filters(&mut q, &query, &[("user", "user"), ("method", "method"), ("container", "container")])?;
    page_sql(&mut q, &p, "time");
    let rows = q.build().fetch_all(state.events.pool()).await.map_err(db_error)?;
    let items = rows
        .into_iter()
        .map(|r| {
            Ok(AuditRecord {
                id: r.try_get("id")?,
                time: r.try_get("time")?,
                user: r.try_get("user")?,
                method: r.try_get("method")?,
                path: r.try_get("path")?,
                status: r.try_get("status")?,
                container: r.try_get("container")?,
                command: r.try_get("command")?,
                ended: r.try_get("ended")?,
                exit_code: r.try_get("exit_code")?,
                message: r.try_get("message")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(db_error)?;
    Ok(Json(page(items, p.limit, |a| a.id)))
}

fn build_record(r: sqlx::sqlite::SqliteRow, with_log: bool) -> Result<BuildRecord, sqlx::Error> {
    let tags: String = r.try_get("tags")?;
    Ok(BuildRecord {
        id: r.try_get("id")?,
        user: r.try_get("user")?,
        tags: tags.split(',').filter(|t| !t.is_empty()).map(String::from).collect(),
        image_id: r.try_get("image_id")?,
        started: r.try_get("started")?,
        ended: r.try_get("ended")?,
        outcome: r.try_get("outcome")?,
        log: if with_log { Some(r.try_get("log")?) } else { None },
    })
}

/// `GET /api/v1/history/builds?user=&outcome=`: build records, without their logs.
#[utoipa::path(get, path = "/api/v1/history/builds", tag = "history",
    params(PageParams,
        ("user" = Option<String>, Query, description = "who built"),
        ("outcome" = Option<String>, Query, description = "success or failure")),
    responses((status = 200, body = Page<BuildRecord>), (status = 400, body = crate::serve::openapi::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn history_builds(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Page<BuildRecord>>, ApiError> {
    let query = QueryParams::parse(raw, &["limit", "before", "since", "until", "user", "outcome"])?;
    let p = paging(&query)?;
    let mut q =
        QueryBuilder::new("SELECT id, user, tags, image_id, started, ended, outcome FROM builds WHERE 1=1");
    eq_filters(&mut q, &query, &[("user", "user"), ("outcome", "outcome")])?;
    // Non-admins see their own builds.
    if principal.role < Role::Admin {
        q.push(" AND user = ").push_bind(principal.user.clone());
    }
    page_sql(&mut q, &p, "started");
    let rows = q.build().fetch_all(state.events.pool()).await.map_err(db_error)?;
    let items =
        rows.into_iter().map(|r| build_record(r, false)).collect::<Result<Vec<_>, _>>().map_err(db_error)?;
    Ok(Json(page(items, p.limit, |b| b.id)))
}

/// `GET /api/v1/history/builds/{id}`: one build record with its log.
#[utoipa::path(get, path = "/api/v1/history/builds/{id}", tag = "history",
    params(("id" = i64, Path, description = "the build's id")),
    responses((status = 200, body = BuildRecord), (status = 400, body = crate::serve::openapi::ErrorBody),
        (status = 404, body = crate::serve::openapi::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn history_build(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<BuildRecord>, ApiError> {
    let id: i64 = id.parse().map_err(|_| ApiError::bad_request(format!("invalid build id {id:?}")))?;
    let row =
        sqlx::query("SELECT id, user, tags, image_id, started, ended, outcome, log FROM builds WHERE id = ?")
            .bind(id)
            .fetch_optional(state.events.pool())
            .await
            .map_err(db_error)?;
    let record = row.map(|r| build_record(r, true)).transpose().map_err(db_error)?;
    match record {
        Some(b) if principal.role == Role::Admin || b.user == principal.user => Ok(Json(b)),
        _ => Err(ApiError::not_found(format!("no such build: {id}"))),
    }
}

/// The history routes.
pub fn router() -> axum::Router<AppState> {
    use axum::routing::get;
    axum::Router::new()
        .route("/api/v1/history/events", get(history_events))
        .route("/api/v1/history/containers", get(history_containers))
        .route("/api/v1/history/audit", get(history_audit))
        .route("/api/v1/history/builds", get(history_builds))
        .route("/api/v1/history/builds/{id}", get(history_build))
}
