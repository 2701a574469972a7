//! Docker Engine API: a container's files and resources — `archive` (HEAD, GET and PUT, for
//! `docker cp`), `export`, `changes` (`docker diff`), `commit` and `update`. The same operations
//! as `/api/v1` (`ops::containers`); here only Docker's parameters and shapes.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_engine::container::archive::ExtractOptions;
use berth_engine::container::commit::CommitOptions;
use berth_types::{ContainerUpdate, PathStat, RestartPolicy};
use bollard_stubs::models::{ChangeType, ContainerUpdateResponse, FilesystemChange};
use serde_json::{json, Map, Value};

use super::query::DockerQuery;
use super::{DockerJson, DockerState};
use crate::serve::body::{engine_body, BodyPump};
use crate::serve::error::ApiError;
use crate::serve::ops::{containers, Caller};

pub fn routes() -> Router<DockerState> {
    Router::new()
        .route("/containers/{id}/archive", get(get_archive).head(head_archive).put(put_archive))
        .route("/containers/{id}/export", get(export))
        .route("/containers/{id}/changes", get(changes))
        .route("/commit", post(commit))
        .route("/containers/{id}/update", post(update))
}

const PATH_STAT: HeaderName = HeaderName::from_static("x-docker-container-path-stat");

/// Docker's `ContainerPathStat` as its header carries it: base64 of the JSON, with the mode as
/// Go's `os.FileMode` (type bits high, permission bits low).
fn path_stat_header(stat: &PathStat) -> Result<HeaderValue, ApiError> {
    use base64::Engine as _;
    let json = json!({
        "name": stat.name,
        "size": stat.size,
        "mode": go_file_mode(stat.mode),
        "mtime": stat.mtime,
        "linkTarget": stat.link_target,
    });
    let encoded = base64::engine::general_purpose::STANDARD.encode(json.to_string());
    HeaderValue::from_str(&encoded).map_err(|e| ApiError::internal(format!("path stat header: {e}")))
}

/// A Unix `st_mode` as Go's `os.FileMode`.
fn go_file_mode(mode: u32) -> u32 {
    const DIR: u32 = 1 << 31;
    const SYMLINK: u32 = 1 << 27;
    const DEVICE: u32 = 1 << 26;
    const NAMED_PIPE: u32 = 1 << 25;
    const SOCKET: u32 = 1 << 24;
    const SETUID: u32 = 1 << 23;
    const SETGID: u32 = 1 << 22;
    const CHAR_DEVICE: u32 = 1 << 21;
    const STICKY: u32 = 1 << 20;
    let mut go = mode & 0o777;
    go |= match mode & 0o170000 {
        0o040000 => DIR,
        0o120000 => SYMLINK,
        0o010000 => NAMED_PIPE,
        0o140000 => SOCKET,
        0o060000 => DEVICE,
        0o020000 => DEVICE | CHAR_DEVICE,
        _ => 0,
    };
    for (bit, go_bit) in [(0o4000, SETUID), (0o2000, SETGID), (0o1000, STICKY)] {
        if mode & bit != 0 {
            go |= go_bit;
        }
    }
    go
}

fn path_param(query: &DockerQuery) -> Result<String, ApiError> {
    match query.get("path") {
        Some(path) if !path.is_empty() => Ok(path.to_string()),
        _ => Err(ApiError::bad_request("path is required")),
    }
}

async fn head_archive(
    State(state): State<DockerState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = DockerQuery::parse(raw.as_deref());
    let stat = containers::stat_path(&state.app, &caller, &id, &path_param(&query)?).await?;
    Ok(([(PATH_STAT, path_stat_header(&stat)?)], StatusCode::OK).into_response())
}

async fn get_archive(
    State(state): State<DockerState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = DockerQuery::parse(raw.as_deref());
    let source = containers::archive(&state.app, &caller, &id, &path_param(&query)?).await?;
    let stat = path_stat_header(source.stat())?;
    let engine = state.app.engine.clone();
    let body = engine_body("archive", move |out| async move { source.write_to(&engine, out).await });
    let content_type = HeaderValue::from_static("application/x-tar");
    Ok(([(PATH_STAT, stat), (header::CONTENT_TYPE, content_type)], body).into_response())
}

async fn put_archive(
    State(state): State<DockerState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let query = DockerQuery::parse(raw.as_deref());
    let path = path_param(&query)?;
    let options = ExtractOptions {
        no_overwrite_dir_non_dir: query.flag("noOverwriteDirNonDir")?,
        copy_uid_gid: query.flag("copyUIDGID")?,
    };
    containers::extract(&state.app, &caller, &id, &path, BodyPump::start(body), options).await?;
    Ok(StatusCode::OK)
}

async fn export(
    State(state): State<DockerState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let source = containers::export(&state.app, &caller, &id).await?;
    let engine = state.app.engine.clone();
    let body = engine_body("export", move |out| async move { source.write_to(&engine, out).await });
    // dockerd's content type for an export (an archive's is application/x-tar).
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response())
}

async fn changes(
    State(state): State<DockerState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Option<Vec<FilesystemChange>>>, ApiError> {
    let changes = containers::changes(&state.app, &caller, &id).await?;
    // dockerd answers `null` when nothing changed.
    if changes.is_empty() {
        return Ok(Json(None));
    }
    let changes = changes
        .into_iter()
        .map(|c| FilesystemChange {
            path: c.path,
            kind: match c.kind {
                1 => ChangeType::_1,
                2 => ChangeType::_2,
                _ => ChangeType::_0,
            },
        })
        .collect();
    Ok(Json(Some(changes)))
}

/// The fields of a commit's `Config` body that an image config holds.
const IMAGE_CONFIG_FIELDS: &[&str] = &[
    "Cmd",
    "Entrypoint",
    "Env",
    "WorkingDir",
    "User",
    "Labels",
    "ExposedPorts",
    "Volumes",
    "StopSignal",
    "OnBuild",
    "Shell",
];

/// `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=`, the body a container
/// `Config` whose fields are set over the container's.
async fn commit(
    State(state): State<DockerState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
    body: Result<DockerJson<Value>, ApiError>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let query = DockerQuery::parse(raw.as_deref());
    let container = query.get("container").unwrap_or_default().to_string();
    let options = (|| {
        let config = match body?.0 {
            Value::Null => Map::new(),
            Value::Object(map) => {
                map.into_iter().filter(|(k, _)| IMAGE_CONFIG_FIELDS.contains(&k.as_str())).collect()
            }
            _ => return Err(ApiError::bad_request("the commit config must be a JSON object")),
        };
        let reference =
            match (query.get("repo").filter(|r| !r.is_empty()), query.get("tag").filter(|t| !t.is_empty())) {
                (Some(repo), Some(tag)) => Some(format!("{repo}:{tag}")),
                (Some(repo), None) => Some(repo.to_string()),
                (None, Some(_)) => return Err(ApiError::bad_request("a tag needs a repository (repo)")),
                (None, None) => None,
            };
        Ok(CommitOptions {
            reference,
            author: query.get("author").map(str::to_string),
            comment: query.get("comment").map(str::to_string),
            changes: query.all("changes").filter(|c| !c.is_empty()).map(str::to_string).collect(),
            pause: query.flag_or("pause", true)?,
            config,
        })
    })();
    let report = containers::commit(&state.app, &caller, &container, options).await?;
    Ok((StatusCode::CREATED, Json(json!({ "Id": report.id }))))
}

/// Docker's update body as berth's: `Memory`, `NanoCpus` or `CpuQuota`/`CpuPeriod`,
/// `PidsLimit`, `RestartPolicy`. Any other field set to something (Docker's clients send
/// zeros for what is not changed) is refused with its name: berth does not apply it.
fn container_update(body: Value) -> Result<ContainerUpdate, ApiError> {
    let Value::Object(fields) = body else {
        return Err(ApiError::bad_request("the update must be a JSON object"));
    };
    let int = |name: &str, v: &Value| {
        v.as_i64().ok_or_else(|| ApiError::bad_request(format!("invalid value for {name}: {v}")))
    };
    let mut update = ContainerUpdate::default();
    let (mut quota, mut period) = (None, None);
    let mut memory_swap = None;
    for (name, value) in &fields {
        let unset = match value {
            Value::Null => true,
            Value::Bool(b) => !b,
            Value::Number(n) => n.as_f64() == Some(0.0),
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
        };
        if unset {
            continue;
        }
        match name.as_str() {
            "Memory" => {
                let memory = int(name, value)?;
                update.memory = Some(
                    u64::try_from(memory)
                        .map_err(|_| ApiError::bad_request(format!("invalid value for Memory: {memory}")))?,
                );
            }
            "MemorySwap" => memory_swap = Some(int(name, value)?),
            "NanoCpus" => update.cpus = Some(int(name, value)? as f64 / 1e9),
            "CpuQuota" => quota = Some(int(name, value)?),
            "CpuPeriod" => period = Some(int(name, value)?),
            "PidsLimit" => update.pids_limit = Some(int(name, value)?),
            "RestartPolicy" => update.restart_policy = restart_policy(value)?,
            other => {
                return Err(ApiError::bad_request(format!("berth cannot update {other} of a container")));
            }
        }
    }
    if let Some(quota) = quota {
        if update.cpus.is_some() {
            return Err(ApiError::bad_request(
                "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set",
            ));
        }
        update.cpus = Some(quota as f64 / period.unwrap_or(100_000) as f64);
    } else if period.is_some() {
        return Err(ApiError::bad_request("berth cannot update CpuPeriod without CpuQuota"));
    }
    // berth gives containers no swap beyond their memory limit: only that may be asked.
    if let Some(swap) = memory_swap {
        if update.memory.map(|m| m as i64) != Some(swap) {
            return Err(ApiError::bad_request(
                "berth cannot update MemorySwap: containers get no swap beyond their memory limit",
            ));
        }
    }
    Ok(update)
}

/// Docker's `{"Name": "on-failure", "MaximumRetryCount": 3}`; an empty name changes nothing.
fn restart_policy(value: &Value) -> Result<Option<RestartPolicy>, ApiError> {
    let name = value.get("Name").and_then(Value::as_str).unwrap_or_default();
    let retries = value.get("MaximumRetryCount").and_then(Value::as_u64).unwrap_or(0);
    let policy = match name {
        "" => return Ok(None),
        "no" => RestartPolicy::No,
        "always" => RestartPolicy::Always,
        "unless-stopped" => RestartPolicy::UnlessStopped,
        "on-failure" => RestartPolicy::OnFailure { max_retries: u32::try_from(retries).unwrap_or(u32::MAX) },
        other => return Err(ApiError::bad_request(format!("invalid restart policy '{other}'"))),
    };
    if retries > 0 && name != "on-failure" {
        return Err(ApiError::bad_request(
            "invalid restart policy: maximum retry count can only be used with 'on-failure'",
        ));
    }
    Ok(Some(policy))
}

async fn update(
    State(state): State<DockerState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<DockerJson<Value>, ApiError>,
) -> Result<Json<ContainerUpdateResponse>, ApiError> {
    let update = body.and_then(|DockerJson(v)| container_update(if v.is_null() { json!({}) } else { v }));
    let report = containers::update(&state.app, &caller, &id, update).await?;
    Ok(Json(ContainerUpdateResponse { warnings: Some(report.warnings) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_gos() {
        assert_eq!(go_file_mode(0o040755), (1 << 31) | 0o755);
        assert_eq!(go_file_mode(0o120777), (1 << 27) | 0o777);
        assert_eq!(go_file_mode(0o100644), 0o644);
        assert_eq!(go_file_mode(0o041777), (1 << 31) | (1 << 20) | 0o777);
    }

    #[test]
    fn updates_take_what_berth_applies_and_name_the_rest() {
        let update = container_update(json!({
            "Memory": 67108864, "MemorySwap": 0, "CpuShares": 0, "NanoCpus": 500000000,
            "PidsLimit": null, "BlkioWeight": 0, "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2},
        }))
        .unwrap();
        assert_eq!(update.memory, Some(64 << 20));
        assert_eq!(update.cpus, Some(0.5));
        assert_eq!(update.restart_policy, Some(RestartPolicy::OnFailure { max_retries: 2 }));
        let quota = container_update(json!({"CpuQuota": 50000, "CpuPeriod": 100000})).unwrap();
        assert_eq!(quota.cpus, Some(0.5));
        let e = container_update(json!({"CpuShares": 512})).unwrap_err();
        assert!(e.message.contains("CpuShares"), "{}", e.message);
        let e = container_update(json!({"Memory": 67108864, "MemorySwap": -1})).unwrap_err();
        assert!(e.message.contains("MemorySwap"), "{}", e.message);
        assert!(container_update(json!({"RestartPolicy": {"Name": "sometimes"}})).is_err());
    }
}
