//! Network operations: create, list, inspect, remove, connect, disconnect, prune. Networks
//! belong to no team; connecting a container needs the container's team.

use axum::http::StatusCode;
use berth_types::auth::Role;
use berth_types::network::{
    NetworkConnect, NetworkCreate, NetworkCreated, NetworkDisconnect, NetworkInspect, NetworkPruneReport,
};

use super::access::{self, Object, Use};
use super::{recorded, Caller, Input};
use crate::serve::error::ApiError;
use crate::serve::state::AppState;

pub async fn list(state: &AppState, caller: &Caller) -> Result<Vec<NetworkInspect>, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(state.engine.list_networks().await?)
}

pub async fn inspect(state: &AppState, caller: &Caller, name: &str) -> Result<NetworkInspect, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(state.engine.inspect_network(name).await?)
}

pub async fn create(
    state: &AppState,
    caller: &Caller,
    request: Input<NetworkCreate>,
) -> Result<NetworkCreated, ApiError> {
    let result = async {
        caller.require(Role::Operator)?;
        let request = request?;
        let name = request.name.clone();
        let result = state.engine.create_network(request).await;
        recorded(state, "network", "create", &name, "created", result).await
    }
    .await;
    caller.audited(state, StatusCode::CREATED, result).await
}

pub async fn remove(state: &AppState, caller: &Caller, name: &str) -> Result<(), ApiError> {
    let result = async {
        caller.require(Role::Operator)?;
        let result = state.engine.remove_network(name).await;
        recorded(state, "network", "destroy", name, "removed", result).await
    }
    .await;
    caller.audited(state, StatusCode::NO_CONTENT, result).await
}

pub async fn connect(
    state: &AppState,
    caller: &Caller,
    name: &str,
    request: Input<NetworkConnect>,
) -> Result<(), ApiError> {
    let result = async {
        caller.require(Role::Operator)?;
        let request = request?;
        access::check(state, caller, &Object::Container(request.container.clone()), Use::Change).await?;
        let message = format!("connected {}", request.container);
        let result = state.engine.connect_network(name, request).await;
        recorded(state, "network", "connect", name, &message, result).await
    }
    .await;
    caller.audited(state, StatusCode::NO_CONTENT, result).await
}

pub async fn disconnect(
    state: &AppState,
    caller: &Caller,
    name: &str,
    request: Input<NetworkDisconnect>,
) -> Result<(), ApiError> {
    let result = async {
        caller.require(Role::Operator)?;
        let request = request?;
        access::check(state, caller, &Object::Container(request.container.clone()), Use::Change).await?;
        let message = format!("disconnected {}", request.container);
        let result = state.engine.disconnect_network(name, request).await;
        recorded(state, "network", "disconnect", name, &message, result).await
    }
    .await;
    caller.audited(state, StatusCode::NO_CONTENT, result).await
}

/// `docker network prune` (admins).
pub async fn prune(state: &AppState, caller: &Caller) -> Result<NetworkPruneReport, ApiError> {
    let result = async {
        caller.require(Role::Admin)?;
        let result = state.engine.prune_networks().await;
        recorded(state, "network", "prune", "unused networks", "pruned", result).await
    }
    .await;
    caller.audited(state, StatusCode::OK, result).await
}
