//! Container operations: create, list, inspect, the lifecycle (start, stop, restart, kill,
//! pause, unpause, rename, wait, remove, prune), top, stats, logs, attach and exec.

use std::future::Future;

use axum::http::StatusCode;
use berth_engine::container::{LogOptions, LogStream, ProcessSession, WaitCondition};
use berth_types::auth::Role;
use berth_types::volume::MountType;
use berth_types::{
    ContainerConfig, ContainerInspect, ContainerPruneReport, ContainerStats, ContainerStatus,
    ContainerSummary, CreatedContainer, ExecConfig, TopReport, WaitResult,
};
use chrono::Utc;

use super::access::{self, Object, Use};
use super::{checked, Caller, Input};
use crate::serve::auth::store::OwnedKind;
use crate::serve::error::ApiError;
use crate::serve::events::Outcome;
use crate::serve::state::AppState;

/// A lifecycle operation on the container `name` (operators, on their teams' containers),
/// audited; a failure is recorded as the event `action`.
async fn act<F, Fut, T>(
    state: &AppState,
    caller: &Caller,
    ok: StatusCode,
    action: &str,
    name: &str,
    run: F,
) -> Result<T, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = berth_engine::Result<T>>,
{
    let result = async {
        access::guard(state, caller, Role::Operator, Object::Container(name.to_string()), Use::Change)
            .await?;
        checked(state, "container", action, name, run().await).await
    }
    .await;
    caller.audited(state, ok, result).await
}

/// `docker create`: the container goes to the caller's team, with the volumes it made.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    config: Input<ContainerConfig>,
) -> Result<CreatedContainer, ApiError> {
    let result = async {
        caller.require(Role::Operator)?;
        let config = config?;
        let team = caller.target_team(state).await?;
        access::check_container_config(state, caller, &config).await?;
        let volumes_before = match team {
            Some(_) => volume_names(state).await,
            None => Default::default(),
        };
        let subject = config.name.clone().unwrap_or_else(|| config.image.clone());
        let created = checked(state, "container", "create", &subject, state.engine.create_container(config).await).await?;
        if let Some(team) = team {
            if let Err(e) = state.auth.set_container_owner(&created.id, team).await {
                tracing::error!(container = %created.id, error = %e.message, "recording the container's team failed");
            }
            adopt_volumes(state, std::slice::from_ref(&created.id), team, &volumes_before).await;
        }
        Ok(created)
    }
    .await;
    caller.audited(state, StatusCode::CREATED, result).await
}

/// `docker ps`: newest first, with Docker's human status; a member sees their teams' only.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    all: bool,
    filters: &ContainerFilters,
) -> Result<Vec<ContainerSummary>, ApiError> {
    caller.require(Role::Viewer)?;
    let visible = access::visible_ids(state, caller, OwnedKind::Containers).await?;
    let all = all || !filters.status.is_empty();
    let mut containers = state.engine.list_containers(all).await?;
    let ancestors = filters.ancestor_ids(&state.engine).await;
    containers
        .retain(|c| filters.matches(c, &ancestors) && visible.as_ref().is_none_or(|v| v.contains(&c.id)));
    let now = Utc::now();
    for c in &mut containers {
        c.status = c.state.human_status(now);
    }
    Ok(containers)
}

pub async fn inspect(state: &AppState, caller: &Caller, name: &str) -> Result<ContainerInspect, ApiError> {
    access::guard(state, caller, Role::Viewer, Object::Container(name.to_string()), Use::Read).await?;
    Ok(state.engine.inspect_container(name).await?)
}

pub async fn start(state: &AppState, caller: &Caller, name: &str) -> Result<(), ApiError> {
    act(state, caller, StatusCode::NO_CONTENT, "start", name, || state.engine.start_container(name)).await
}

pub async fn stop(
    state: &AppState,
    caller: &Caller,
    name: &str,
    timeout: Option<u32>,
) -> Result<(), ApiError> {
    act(state, caller, StatusCode::NO_CONTENT, "stop", name, || state.engine.stop_container(name, timeout))
        .await
}

pub async fn restart(
    state: &AppState,
    caller: &Caller,
    name: &str,
    timeout: Option<u32>,
) -> Result<(), ApiError> {
    act(state, caller, StatusCode::NO_CONTENT, "restart", name, || {
        state.engine.restart_container(name, timeout)
    })
    .await
}

pub async fn kill(
    state: &AppState,
    caller: &Caller,
    name: &str,
    signal: Option<String>,
) -> Result<(), ApiError> {
    act(state, caller, StatusCode::NO_CONTENT, "kill", name, || state.engine.kill_container(name, signal))
        .await
}

pub async fn pause(state: &AppState, caller: &Caller, name: &str) -> Result<(), ApiError> {
    act(state, caller, StatusCode::NO_CONTENT, "pause", name, || state.engine.pause_container(name)).await
}

pub async fn unpause(state: &AppState, caller: &Caller, name: &str) -> Result<(), ApiError> {
    act(state, caller, StatusCode::NO_CONTENT, "unpause", name, || state.engine.unpause_container(name)).await
}

pub async fn rename(state: &AppState, caller: &Caller, name: &str, new_name: &str) -> Result<(), ApiError> {
    act(state, caller, StatusCode::NO_CONTENT, "rename", name, || {
        state.engine.rename_container(name, new_name)
    })
    .await
}

/// `docker rm [-f] [-v]`; `volumes`: its anonymous volumes too.
pub async fn remove(
    state: &AppState,
    caller: &Caller,
    name: &str,
    force: bool,
    volumes: bool,
) -> Result<(), ApiError> {
    act(state, caller, StatusCode::NO_CONTENT, "destroy", name, || async move {
        if volumes {
            state.engine.remove_container_with_volumes(name, force).await
        } else {
            state.engine.remove_container(name, force).await
        }
    })
    .await
}

pub async fn wait(
    state: &AppState,
    caller: &Caller,
    name: &str,
    condition: WaitCondition,
) -> Result<WaitResult, ApiError> {
    Ok(watch(state, caller, name, condition).await?.await)
}

/// A wait armed now: the returned future completes when `condition` holds (see
/// `Engine::watch_container`).
pub async fn watch(
    state: &AppState,
    caller: &Caller,
    name: &str,
    condition: WaitCondition,
) -> Result<futures_util::future::BoxFuture<'static, WaitResult>, ApiError> {
    let result = async {
        access::guard(state, caller, Role::Operator, Object::Container(name.to_string()), Use::Read).await?;
        Ok(state.engine.watch_container(name, condition).await?)
    }
    .await;
    caller.audited(state, StatusCode::OK, result).await
}

/// `docker container prune` (admins).
pub async fn prune(state: &AppState, caller: &Caller) -> Result<ContainerPruneReport, ApiError> {
    let result = async {
        caller.require(Role::Admin)?;
        let report =
            checked(state, "container", "prune", "stopped containers", state.engine.prune_containers().await)
                .await?;
        let message = format!(
            "{} containers deleted, {} bytes reclaimed",
            report.containers_deleted.len(),
            report.space_reclaimed
        );
        state.events.record("container", "prune", "stopped containers", Outcome::Success, &message).await;
        Ok(report)
    }
    .await;
    caller.audited(state, StatusCode::OK, result).await
}

pub async fn top(state: &AppState, caller: &Caller, name: &str) -> Result<TopReport, ApiError> {
    access::guard(state, caller, Role::Viewer, Object::Container(name.to_string()), Use::Read).await?;
    Ok(state.engine.top_container(name).await?)
}

/// One sample of the container's resource use.
pub async fn stats(state: &AppState, caller: &Caller, name: &str) -> Result<ContainerStats, ApiError> {
    access::guard(state, caller, Role::Viewer, Object::Container(name.to_string()), Use::Read).await?;
    Ok(state.engine.container_stats(name).await?)
}

/// The container's output (operators: it may hold what viewers may not read).
pub async fn logs(
    state: &AppState,
    caller: &Caller,
    name: &str,
    options: LogOptions,
) -> Result<LogStream, ApiError> {
    access::guard(state, caller, Role::Operator, Object::Container(name.to_string()), Use::Read).await?;
    Ok(state.engine.container_logs(name, options).await?)
}

/// The container's stdio.
pub async fn attach(state: &AppState, caller: &Caller, name: &str) -> Result<ProcessSession, ApiError> {
    access::guard(state, caller, Role::Operator, Object::Container(name.to_string()), Use::Change).await?;
    Ok(state.engine.attach_container(name).await?)
}

/// A new process in the container, with its audit row (closed with the exit code when the
/// process ends, by whoever pumps the session: [`ExecSession::audit_row`]).
pub async fn exec(
    state: &AppState,
    caller: &Caller,
    name: &str,
    config: ExecConfig,
) -> Result<ExecSession, ApiError> {
    if let Err(e) = caller.require(Role::Operator) {
        caller.audit(state, e.status).await;
        return Err(e);
    }
    access::check(state, caller, &Object::Container(name.to_string()), Use::Change).await?;
    if config.cmd.is_empty() {
        return Err(ApiError::bad_request("no command specified"));
    }
    let command = config.cmd.join(" ");
    let row = state
        .audit
        .exec_started(caller.api.as_str(), &caller.principal.user, &caller.path, name, &command)
        .await;
    match state.engine.exec_container(name, config).await {
        Ok(session) => Ok(ExecSession { session, audit_row: row }),
        Err(e) => {
            state
                .events
                .record("container", "exec", name, Outcome::Failure, &format!("{command}: {e}"))
                .await;
            let error = ApiError::from(e);
            if let Some(row) = row {
                state.audit.exec_ended(row, None, &format!("refused: {}", error.status)).await;
            }
            Err(error)
        }
    }
}

/// A started exec process and its audit row.
pub struct ExecSession {
    pub session: ProcessSession,
    pub audit_row: Option<i64>,
}

/// The names of the volumes there are.
pub(crate) async fn volume_names(state: &AppState) -> std::collections::HashSet<String> {
    match state.engine.list_volumes().await {
        Ok(volumes) => volumes.into_iter().map(|v| v.name).collect(),
        Err(e) => {
            tracing::error!(error = %e, "listing the volumes failed");
            Default::default()
        }
    }
}

/// Records that `team` owns the volumes `containers` mount that were not there before the call
/// that made the containers (named volumes made on demand, anonymous ones).
pub(crate) async fn adopt_volumes(
    state: &AppState,
    containers: &[String],
    team: i64,
    before: &std::collections::HashSet<String>,
) {
    for id in containers {
        let Ok(container) = state.engine.inspect_container(id).await else { continue };
        let made = container
            .mounts
            .iter()
            .filter(|m| m.mount_type == MountType::Volume && !m.name.is_empty() && !before.contains(&m.name));
        for mount in made {
            if let Err(e) = state.auth.set_volume_owner(&mount.name, team).await {
                tracing::error!(volume = %mount.name, error = %e.message, "recording the volume's team failed");
            }
        }
    }
}

/// `ps --filter` as Docker reads it: the same key given twice matches either value; different
/// keys must all match.
#[derive(Debug, Default)]
pub struct ContainerFilters {
    pub status: Vec<ContainerStatus>,
    name: Vec<regex::Regex>,
    id: Vec<String>,
    label: Vec<(String, Option<String>)>,
    ancestor: Vec<String>,
    /// `health=starting|healthy|unhealthy|none` (`None`: no health check running).
    health: Vec<Option<berth_types::HealthStatus>>,
}

impl ContainerFilters {
    pub fn parse<'a>(values: impl Iterator<Item = &'a str>) -> Result<ContainerFilters, ApiError> {
        let mut filters = ContainerFilters::default();
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

    pub fn matches(&self, c: &ContainerSummary, ancestor_ids: &[String]) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use berth_types::ContainerState;

    fn summary(name: &str, status: ContainerStatus, labels: &[(&str, &str)]) -> ContainerSummary {
        ContainerSummary {
            id: format!("{name:0<64}"),
            name: name.into(),
            image: "busybox".into(),
            image_id: "sha256:aa".into(),
            state: ContainerState { status, ..Default::default() },
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn filters_like_docker() {
        let web = summary("web", ContainerStatus::Running, &[("app", "shop"), ("tier", "front")]);
        let db = summary("db", ContainerStatus::Exited, &[("app", "shop")]);
        let check = |filters: &[&str], want: &[&str]| {
            let f = ContainerFilters::parse(filters.iter().copied()).unwrap();
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
            let e = ContainerFilters::parse([bad].into_iter()).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
        }
    }
}
