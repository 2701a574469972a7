//! Network routes: create, list, inspect, remove, connect, disconnect, prune.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use berth_types::network::{
    NetworkConnect, NetworkCreate, NetworkCreated, NetworkDisconnect, NetworkInspect, NetworkPruneReport,
};

use super::AppState;
use crate::serve::error::{ApiError, ApiJson};
use crate::serve::events::Outcome;

/// Records the outcome of a network operation in the event log and passes the result on.
async fn recorded<T>(
    state: &AppState,
    action: &str,
    subject: &str,
    success: &str,
    result: berth_engine::Result<T>,
) -> Result<T, ApiError> {
    match &result {
        Ok(_) => state.events.record("network", action, subject, Outcome::Success, success).await,
        Err(e) => state.events.record("network", action, subject, Outcome::Failure, &e.to_string()).await,
    }
    Ok(result?)
}

#[utoipa::path(get, path = "/api/v1/networks", tag = "networks", responses((status = 200, body = Vec<NetworkInspect>)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn list_networks(
    State(state): State<AppState>,
) -> Result<Json<Vec<NetworkInspect>>, ApiError> {
    Ok(Json(state.engine.list_networks().await?))
}

#[utoipa::path(post, path = "/api/v1/networks", tag = "networks", request_body = NetworkCreate, responses((status = 201, body = NetworkCreated), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn create_network(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<NetworkCreate>,
) -> Result<(StatusCode, Json<NetworkCreated>), ApiError> {
    let name = request.name.clone();
    let result = state.engine.create_network(request).await;
    let created = recorded(&state, "create", &name, "created", result).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(get, path = "/api/v1/networks/{name}", tag = "networks", params(("name" = String, Path, description = "name, ID or ID prefix")), responses((status = 200, body = NetworkInspect), (status = 404, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn inspect_network(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<NetworkInspect>, ApiError> {
    Ok(Json(state.engine.inspect_network(&name).await?))
}

#[utoipa::path(delete, path = "/api/v1/networks/{name}", tag = "networks", params(("name" = String, Path)), responses((status = 204), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn remove_network(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let result = state.engine.remove_network(&name).await;
    recorded(&state, "destroy", &name, "removed", result).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/networks/{name}/connect", tag = "networks", params(("name" = String, Path)), request_body = NetworkConnect, responses((status = 204), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn connect_network(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<NetworkConnect>,
) -> Result<StatusCode, ApiError> {
    let message = format!("connected {}", request.container);
    let result = state.engine.connect_network(&name, request).await;
    recorded(&state, "connect", &name, &message, result).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/networks/{name}/disconnect", tag = "networks", params(("name" = String, Path)), request_body = NetworkDisconnect, responses((status = 204), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn disconnect_network(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<NetworkDisconnect>,
) -> Result<StatusCode, ApiError> {
    let message = format!("disconnected {}", request.container);
    let result = state.engine.disconnect_network(&name, request).await;
    recorded(&state, "disconnect", &name, &message, result).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/networks/prune", tag = "networks", responses((status = 200, body = NetworkPruneReport)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn prune_networks(
    State(state): State<AppState>,
) -> Result<Json<NetworkPruneReport>, ApiError> {
    let result = state.engine.prune_networks().await;
    let report = recorded(&state, "prune", "unused networks", "pruned", result).await?;
    Ok(Json(report))
}
