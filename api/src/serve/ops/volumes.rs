//! Volume operations: create, list, inspect, remove, prune.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use berth_types::auth::Role;
use berth_types::volume::{VolumeCreate, VolumeInspect, VolumePruneReport};

use super::access::{self, Object, Reach, Use};
use super::containers::volume_names;
use super::{recorded, Caller, Input};
use crate::serve::error::ApiError;
use crate::serve::state::AppState;

/// `docker volume ls`: a member sees their teams' volumes and the shared ones.
pub async fn list(state: &AppState, caller: &Caller) -> Result<Vec<VolumeInspect>, ApiError> {
    caller.require(Role::Viewer)?;
    let mut visible = Vec::new();
    for volume in state.engine.list_volumes().await? {
        if access::reach(state, caller, &Object::Volume(volume.name.clone())).await? != Reach::Hidden {
            visible.push(volume);
        }
    }
    Ok(visible)
}

/// `docker volume create`: a new volume goes to the caller's team (an admin's is shared). A
/// create of an existing volume answers that volume; under a name another team's volume has it
/// is refused.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    request: Input<VolumeCreate>,
) -> Result<VolumeInspect, ApiError> {
    let result = async {
        caller.require(Role::Operator)?;
        let request = request?;
        let team = caller.target_team(state).await?;
        if !request.name.is_empty()
            && access::reach(state, caller, &Object::Volume(request.name.clone())).await? == Reach::Hidden
        {
            return Err(ApiError::conflict(format!(
                "volume name {:?} is taken by another team's volume",
                request.name
            )));
        }
        let before = volume_names(state).await;
        let name = request.name.clone();
        let result = state.engine.create_volume(request).await;
        let subject = result.as_ref().map(|v| v.name.clone()).unwrap_or(name);
        let volume = recorded(state, "volume", "create", &subject, "created", result).await?;
        if !before.contains(&volume.name) {
            let owner = match team {
                Some(team) => state.auth.set_volume_owner(&volume.name, team).await,
                // An owner recorded for an earlier volume of that name is not this one's.
                None => state.auth.forget_volume(&volume.name).await,
            };
            if let Err(e) = owner {
                tracing::error!(volume = %volume.name, error = %e.message, "recording the volume's team failed");
            }
        }
        Ok(volume)
    }
    .await;
    caller.audited(state, StatusCode::CREATED, result).await
}

pub async fn inspect(state: &AppState, caller: &Caller, name: &str) -> Result<VolumeInspect, ApiError> {
    caller.require(Role::Viewer)?;
    access::check(state, caller, &Object::Volume(name.to_string()), Use::Read).await?;
    Ok(state.engine.inspect_volume(name).await?)
}

/// `docker volume rm [-f]`: a shared volume only by admins.
pub async fn remove(state: &AppState, caller: &Caller, name: &str, force: bool) -> Result<(), ApiError> {
    let result = async {
        caller.require(Role::Operator)?;
        access::check(state, caller, &Object::Volume(name.to_string()), Use::Change).await?;
        let result = state.engine.remove_volume(name, force).await;
        recorded(state, "volume", "destroy", name, "removed", result).await?;
        forget_volume(state, name).await;
        Ok(())
    }
    .await;
    caller.audited(state, StatusCode::NO_CONTENT, result).await
}

/// `docker volume prune [-a]` (admins), of the volumes whose labels `chosen` accepts.
pub async fn prune(
    state: &AppState,
    caller: &Caller,
    all: bool,
    chosen: impl Fn(&BTreeMap<String, String>) -> bool + Send + 'static,
) -> Result<VolumePruneReport, ApiError> {
    let result = async {
        caller.require(Role::Admin)?;
        let result = state.engine.prune_volumes_where(all, chosen).await;
        let report = recorded(state, "volume", "prune", "unused volumes", "pruned", result).await?;
        for name in &report.volumes_deleted {
            forget_volume(state, name).await;
        }
        Ok(report)
    }
    .await;
    caller.audited(state, StatusCode::OK, result).await
}

async fn forget_volume(state: &AppState, name: &str) {
    if let Err(e) = state.auth.forget_volume(name).await {
        tracing::error!(volume = %name, error = %e.message, "forgetting the volume's team failed");
    }
}
