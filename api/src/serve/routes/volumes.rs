//! Volume routes: create, list, inspect, remove, prune.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use berth_types::volume::{VolumeCreate, VolumeInspect, VolumePruneReport};

use super::query::QueryParams;
use crate::serve::error::{ApiError, ApiJson};
use crate::serve::ops::{volumes, Caller};
use crate::serve::state::AppState;

#[utoipa::path(get, path = "/api/v1/volumes", tag = "volumes", responses((status = 200, body = Vec<VolumeInspect>), (status = 400, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn list_volumes(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<VolumeInspect>>, ApiError> {
    QueryParams::parse(query, &[])?;
    Ok(Json(volumes::list(&state, &caller).await?))
}

#[utoipa::path(post, path = "/api/v1/volumes", tag = "volumes", request_body = VolumeCreate, responses((status = 201, body = VolumeInspect), (status = 400, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn create_volume(
    State(state): State<AppState>,
    caller: Caller,
    request: Result<ApiJson<VolumeCreate>, ApiError>,
) -> Result<(StatusCode, Json<VolumeInspect>), ApiError> {
    Ok((StatusCode::CREATED, Json(volumes::create(&state, &caller, request.map(|b| b.0)).await?)))
}

#[utoipa::path(get, path = "/api/v1/volumes/{name}", tag = "volumes", params(("name" = String, Path, description = "volume name")), responses((status = 200, body = VolumeInspect), (status = 404, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn inspect_volume(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<VolumeInspect>, ApiError> {
    QueryParams::parse(query, &[])?;
    Ok(Json(volumes::inspect(&state, &caller, &name).await?))
}

#[utoipa::path(delete, path = "/api/v1/volumes/{name}", tag = "volumes", params(("name" = String, Path, description = "volume name"), ("force" = Option<bool>, Query, description = "no error when the volume does not exist")), responses((status = 204), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody, description = "a container uses the volume")), security(("bearer" = []), ("session" = [])))]
pub(super) async fn remove_volume(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<StatusCode, ApiError> {
    let query = QueryParams::parse(query, &["force"])?;
    volumes::remove(&state, &caller, &name, query.flag("force")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/volumes/prune", tag = "volumes", params(("all" = Option<bool>, Query, description = "every unused volume, not only anonymous ones")), responses((status = 200, body = VolumePruneReport), (status = 400, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn prune_volumes(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<VolumePruneReport>, ApiError> {
    let query = QueryParams::parse(query, &["all"])?;
    Ok(Json(volumes::prune(&state, &caller, query.flag("all")?, |_| true).await?))
}
