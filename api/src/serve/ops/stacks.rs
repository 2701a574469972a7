//! Compose stack operations: list, inspect, up, down, stop, start, restart (each run in its
//! own task, reporting `StackProgress`; the last one is `{"object": "project", "action":
//! "Done"}` or `"Error"` with the message) and the stack's merged logs. A stack is its team's
//! when its containers are; `up` gives the containers and volumes it makes to the caller's team.

use std::collections::HashSet;
use std::future::Future;

use axum::http::StatusCode;
use berth_engine::compose::model::{Project, ServiceNetwork};
use berth_engine::compose::{self, Progress, StackLogStream};
use berth_engine::container::LogOptions;
use berth_types::auth::Role;
use berth_types::name::{check_object_name, ObjectKind};
use berth_types::{StackDown, StackInspect, StackProgress, StackSummary, StackUp};
use tokio::sync::mpsc::UnboundedReceiver;

use super::access::{self, Object, Reach, Use};
use super::containers::{adopt_volumes, volume_names};
use super::{Caller, Input};
use crate::serve::auth::store::OwnedKind;
use crate::serve::error::ApiError;
use crate::serve::events::Outcome;
use crate::serve::state::AppState;

/// The stack operations that act on the containers a stack has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackAction {
    Stop,
    Start,
    Restart,
}

impl StackAction {
    pub fn parse(operation: &str) -> Option<StackAction> {
        match operation {
            "stop" => Some(StackAction::Stop),
            "start" => Some(StackAction::Start),
            "restart" => Some(StackAction::Restart),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            StackAction::Stop => "stop",
            StackAction::Start => "start",
            StackAction::Restart => "restart",
        }
    }
}

fn check_name(name: &str) -> Result<(), ApiError> {
    check_object_name(ObjectKind::Project, name).map(drop).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Refuses the call unless `name` is a valid project name and `caller` may `use` the stack.
async fn check_stack(state: &AppState, caller: &Caller, name: &str, using: Use) -> Result<(), ApiError> {
    check_name(name)?;
    access::check(state, caller, &Object::Stack(name.to_string()), using).await
}

/// `docker compose ls`: a member sees their teams' stacks.
pub async fn list(state: &AppState, caller: &Caller) -> Result<Vec<StackSummary>, ApiError> {
    caller.require(Role::Viewer)?;
    let mut visible = Vec::new();
    for stack in state.engine.list_stacks().await? {
        if access::reach(state, caller, &Object::Stack(stack.name.clone())).await? != Reach::Hidden {
            visible.push(stack);
        }
    }
    Ok(visible)
}

pub async fn inspect(state: &AppState, caller: &Caller, name: &str) -> Result<StackInspect, ApiError> {
    caller.require(Role::Viewer)?;
    access::check(state, caller, &Object::Stack(name.to_string()), Use::Read).await?;
    Ok(state.engine.inspect_stack(name).await?)
}

/// `docker compose up`: a file that cannot be read into a project is refused before anything
/// starts.
pub async fn up(
    state: &AppState,
    caller: &Caller,
    name: &str,
    request: Input<StackUp>,
) -> Result<UnboundedReceiver<StackProgress>, ApiError> {
    let checked = async {
        caller.require(Role::Operator)?;
        let request = request?;
        check_stack(state, caller, name, Use::Change).await?;
        let team = caller.target_team(state).await?;
        // A member's env_files are refused before the file is loaded, which would read them.
        if let Some(service) = compose::model::services_with_env_files(&request.compose_file)
            .into_iter()
            .next()
            .filter(|_| !caller.is_admin())
        {
            return Err(access::admin_only(&format!(
                "service {service}: env_file, a file of the daemon's host"
            )));
        }
        let loaded = {
            let (request, name) = (request.clone(), name.to_string());
            tokio::task::spawn_blocking(move || compose::model::load(&request, Some(&name)))
                .await
                .map_err(|e| ApiError::internal(format!("reading the compose file: {e}")))?
        };
        let project = match loaded {
            Ok(project) => project,
            Err(e) => {
                state.events.record("stack", "up", name, Outcome::Failure, &e.to_string()).await;
                return Err(e.into());
            }
        };
        if !caller.is_admin() {
            check_member_services(state, caller, &project).await?;
        }
        Ok((team, request))
    }
    .await;
    let (team, request) = caller.audited(state, StatusCode::OK, checked).await?;
    // Only a team's up needs the volumes before it (the ones it makes go to the team).
    let volumes_before = match team {
        Some(_) => volume_names(state).await,
        None => Default::default(),
    };
    let stack = name.to_string();
    let owner_state = state.clone();
    Ok(streamed(state, "up", name, move |progress| async move {
        let engine = owner_state.engine.clone();
        let result = engine.stack_up(&stack, request, progress).await;
        if let Some(team) = team {
            own_new_containers(&owner_state, &stack, team, &volumes_before).await;
        }
        result
    }))
}

/// Records that the stack's containers no team owns yet (the ones an `up` made) belong to
/// `team`, with the volumes they made.
async fn own_new_containers(state: &AppState, stack: &str, team: i64, volumes_before: &HashSet<String>) {
    let record = async {
        let containers = state.engine.stack_containers(stack, true).await.map_err(ApiError::from)?;
        let owned = state.auth.owned_by_any(OwnedKind::Containers).await?;
        let new: Vec<String> =
            containers.iter().filter(|c| !owned.contains(&c.id)).map(|c| c.id.clone()).collect();
        for id in &new {
            state.auth.set_container_owner(id, team).await?;
        }
        adopt_volumes(state, &new, team, volumes_before).await;
        Ok::<(), ApiError>(())
    };
    if let Err(e) = record.await {
        tracing::error!(stack, error = %e.message, "recording the stack's team failed");
    }
}

/// Refuses what a member may not bring up: what a container may not ask for (the host's
/// paths, capabilities or network, another team's image, volume or container), in any
/// service, and builds (their contexts are directories of the daemon's host).
async fn check_member_services(state: &AppState, caller: &Caller, project: &Project) -> Result<(), ApiError> {
    for service in project.services.values() {
        if let Some(what) = access::host_access(&service.config) {
            return Err(access::admin_only(&format!("service {}: {what}", service.name)));
        }
        if service.build.is_some() {
            return Err(access::admin_only(&format!(
                "service {}: a build from a directory of the daemon's host",
                service.name
            )));
        }
        if let ServiceNetwork::Mode(mode) = &service.network {
            if mode == "host" {
                return Err(access::admin_only(&format!("service {}: the host's network", service.name)));
            }
        }
        let mut config = service.config.clone();
        config.image = service.image.clone();
        if let ServiceNetwork::Mode(mode) = &service.network {
            config.network = Some(mode.clone());
        }
        access::check_container_config(state, caller, &config).await?;
    }
    Ok(())
}

/// `docker compose down [-v]`.
pub async fn down(
    state: &AppState,
    caller: &Caller,
    name: &str,
    request: Input<StackDown>,
) -> Result<UnboundedReceiver<StackProgress>, ApiError> {
    let checked = async {
        caller.require(Role::Operator)?;
        let request = request?;
        check_stack(state, caller, name, Use::Change).await?;
        Ok(request)
    }
    .await;
    let request = caller.audited(state, StatusCode::OK, checked).await?;
    let engine = state.engine.clone();
    let stack = name.to_string();
    Ok(streamed(state, "down", name, move |progress| async move {
        engine.stack_down(&stack, request, progress).await
    }))
}

/// `docker compose stop|start|restart [SERVICE...]`: a stack without containers is 404.
pub async fn act(
    state: &AppState,
    caller: &Caller,
    name: &str,
    action: StackAction,
    services: Vec<String>,
    timeout: Option<u32>,
) -> Result<UnboundedReceiver<StackProgress>, ApiError> {
    let checked = async {
        caller.require(Role::Operator)?;
        check_stack(state, caller, name, Use::Change).await?;
        if state.engine.stack_containers(name, true).await?.is_empty() {
            return Err(berth_engine::Error::StackNotFound(name.to_string()).into());
        }
        Ok(())
    }
    .await;
    caller.audited(state, StatusCode::OK, checked).await?;
    let engine = state.engine.clone();
    let stack = name.to_string();
    Ok(streamed(state, action.name(), name, move |progress| async move {
        match action {
            StackAction::Stop => engine.stack_stop(&stack, &services, timeout, progress).await,
            StackAction::Start => engine.stack_start(&stack, &services, progress).await,
            StackAction::Restart => engine.stack_restart(&stack, &services, timeout, progress).await,
        }
    }))
}

/// The stack's containers' logs, merged.
pub async fn logs(
    state: &AppState,
    caller: &Caller,
    name: &str,
    services: &[String],
    options: LogOptions,
) -> Result<StackLogStream, ApiError> {
    caller.require(Role::Operator)?;
    check_stack(state, caller, name, Use::Read).await?;
    Ok(state.engine.stack_logs(name, services, options).await?)
}

/// Runs a stack operation in its own task (it goes on if nobody reads its progress, as a pull
/// does); the last progress says how it ended.
fn streamed<F, Fut>(
    state: &AppState,
    action: &'static str,
    name: &str,
    operation: F,
) -> UnboundedReceiver<StackProgress>
where
    F: FnOnce(Progress) -> Fut + Send + 'static,
    Fut: Future<Output = berth_engine::Result<()>> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<StackProgress>();
    let events = state.events.clone();
    let name = name.to_string();
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
        let _ = tx.send(last);
    });
    rx
}

fn done(name: &str, action: &str, message: String) -> StackProgress {
    StackProgress { object: "project".into(), name: name.into(), action: action.into(), message }
}
