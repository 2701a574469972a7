//! The history's queries: `GET /api/v1/history/{events,containers,audit,builds}`, newest first,
//! filtered by the query parameters each documents, paged with `limit` and `before` (an id; the
//! answer's `next_before` is the value for the next page, absent on the last one).

use std::collections::HashSet;

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use berth_types::auth::Role;
use berth_types::history::{AuditRecord, BuildRecord, EventRecord, FinishedContainer, Page};
use chrono::{DateTime, SecondsFormat};
use serde::Deserialize;
use sqlx::{QueryBuilder, Row, Sqlite};
use utoipa::IntoParams;

use super::query::QueryParams;
use crate::serve::auth::store::OwnedKind;
use crate::serve::error::ApiError;
use crate::serve::ops::Caller;
use crate::serve::state::AppState;

/// Most rows one history page holds.
pub const MAX_PAGE: i64 = 1000;

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

/// The containers a member's history shows: their teams'. `None` for admins: all.
async fn owned_containers(state: &AppState, caller: &Caller) -> Result<Option<HashSet<String>>, ApiError> {
    if caller.is_admin() {
        return Ok(None);
    }
    Ok(Some(state.auth.owned(OwnedKind::Containers, &caller.team_ids()).await?))
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
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<Page<EventRecord>>, ApiError> {
    caller.require(Role::Viewer)?;
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
    if let Some(owned) = owned_containers(&state, &caller).await? {
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
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<Page<FinishedContainer>>, ApiError> {
    caller.require(Role::Viewer)?;
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
    if let Some(owned) = owned_containers(&state, &caller).await? {
        result.items.retain(|c| owned.contains(&c.container_id));
    }
    Ok(Json(result))
}

/// `GET /api/v1/history/audit?user=&method=&container=` (admins): who did what.
#[utoipa::path(get, path = "/api/v1/history/audit", tag = "history",
    params(PageParams,
        ("user" = Option<String>, Query, description = "user name (root for the unix socket)"),
        ("method" = Option<String>, Query, description = "POST, DELETE, ... or EXEC"),
        ("container" = Option<String>, Query, description = "the container of an exec session"),
        ("address" = Option<String>, Query, description = "the client's IP address (logins and authentication failures)"),
        ("api" = Option<String>, Query, description = "berth or docker: the API the call came through")),
    responses((status = 200, body = Page<AuditRecord>), (status = 400, body = crate::serve::openapi::ErrorBody),
        (status = 403, body = crate::serve::openapi::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub async fn history_audit(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<Page<AuditRecord>>, ApiError> {
    caller.require(Role::Admin)?;
    let query = QueryParams::parse(
        raw,
        &["limit", "before", "since", "until", "user", "method", "container", "api", "address"],
    )?;
    let p = paging(&query)?;
    let mut q = QueryBuilder::new(
        "SELECT id, time, api, user, method, path, status, container, command, ended, exit_code, message, address \
         FROM audit WHERE 1=1",
    );
    eq_filters(
        &mut q,
        &query,
        &[
            ("user", "user"),
            ("method", "method"),
            ("container", "container"),
            ("api", "api"),
            ("address", "address"),
        ],
    )?;
    page_sql(&mut q, &p, "time");
    let rows = q.build().fetch_all(state.events.pool()).await.map_err(db_error)?;
    let items = rows
        .into_iter()
        .map(|r| {
            Ok(AuditRecord {
                id: r.try_get("id")?,
                time: r.try_get("time")?,
                api: r.try_get("api")?,
                user: r.try_get("user")?,
                method: r.try_get("method")?,
                path: r.try_get("path")?,
                status: r.try_get("status")?,
                container: r.try_get("container")?,
                command: r.try_get("command")?,
                ended: r.try_get("ended")?,
                exit_code: r.try_get("exit_code")?,
                message: r.try_get("message")?,
                address: r.try_get("address")?,
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
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<Page<BuildRecord>>, ApiError> {
    caller.require(Role::Viewer)?;
    let query = QueryParams::parse(raw, &["limit", "before", "since", "until", "user", "outcome"])?;
    let p = paging(&query)?;
    let mut q =
        QueryBuilder::new("SELECT id, user, tags, image_id, started, ended, outcome FROM builds WHERE 1=1");
    eq_filters(&mut q, &query, &[("user", "user"), ("outcome", "outcome")])?;
    // Non-admins see their own builds.
    if !caller.is_admin() {
        q.push(" AND user = ").push_bind(caller.principal.user.clone());
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
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<BuildRecord>, ApiError> {
    caller.require(Role::Viewer)?;
    let id: i64 = id.parse().map_err(|_| ApiError::bad_request(format!("invalid build id {id:?}")))?;
    let row =
        sqlx::query("SELECT id, user, tags, image_id, started, ended, outcome, log FROM builds WHERE id = ?")
            .bind(id)
            .fetch_optional(state.events.pool())
            .await
            .map_err(db_error)?;
    let record = row.map(|r| build_record(r, true)).transpose().map_err(db_error)?;
    match record {
        Some(b) if caller.is_admin() || b.user == caller.principal.user => Ok(Json(b)),
        _ => Err(ApiError::not_found(format!("no such build: {id}"))),
    }
}
