//! Network routes: create, list, inspect, remove, connect, disconnect, prune.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use berth_types::network::{
    NetworkConnect, NetworkCreate, NetworkCreated, NetworkDisconnect, NetworkInspect, NetworkPruneReport,
};

use crate::serve::error::{ApiError, ApiJson};
use crate::serve::ops::{networks, Caller};
use crate::serve::state::AppState;

#[utoipa::path(get, path = "/api/v1/networks", tag = "networks", responses((status = 200, body = Vec<NetworkInspect>)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn list_networks(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<NetworkInspect>>, ApiError> {
    Ok(Json(networks::list(&state, &caller).await?))
}

#[utoipa::path(post, path = "/api/v1/networks", tag = "networks", request_body = NetworkCreate, responses((status = 201, body = NetworkCreated), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn create_network(
    State(state): State<AppState>,
    caller: Caller,
    request: Result<ApiJson<NetworkCreate>, ApiError>,
) -> Result<(StatusCode, Json<NetworkCreated>), ApiError> {
    Ok((StatusCode::CREATED, Json(networks::create(&state, &caller, request.map(|b| b.0)).await?)))
}

#[utoipa::path(get, path = "/api/v1/networks/{name}", tag = "networks", params(("name" = String, Path, description = "name, ID or ID prefix")), responses((status = 200, body = NetworkInspect), (status = 404, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn inspect_network(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<NetworkInspect>, ApiError> {
    Ok(Json(networks::inspect(&state, &caller, &name).await?))
}

#[utoipa::path(delete, path = "/api/v1/networks/{name}", tag = "networks", params(("name" = String, Path)), responses((status = 204), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn remove_network(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    networks::remove(&state, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/networks/{name}/connect", tag = "networks", params(("name" = String, Path)), request_body = NetworkConnect, responses((status = 204), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn connect_network(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    request: Result<ApiJson<NetworkConnect>, ApiError>,
) -> Result<StatusCode, ApiError> {
    networks::connect(&state, &caller, &name, request.map(|b| b.0)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/networks/{name}/disconnect", tag = "networks", params(("name" = String, Path)), request_body = NetworkDisconnect, responses((status = 204), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn disconnect_network(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    request: Result<ApiJson<NetworkDisconnect>, ApiError>,
) -> Result<StatusCode, ApiError> {
    networks::disconnect(&state, &caller, &name, request.map(|b| b.0)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/networks/prune", tag = "networks", responses((status = 200, body = NetworkPruneReport)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn prune_networks(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<NetworkPruneReport>, ApiError> {
    Ok(Json(networks::prune(&state, &caller).await?))
}
