//! Volume routes: create, list, inspect, remove, prune.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use berth_types::volume::{VolumeCreate, VolumeInspect, VolumePruneReport};

use super::query::QueryParams;
use super::AppState;
use crate::serve::error::{ApiError, ApiJson};
use crate::serve::events::Outcome;

/// Records the outcome of a volume operation in the event log and passes the result on.
async fn recorded<T>(
    state: &AppState,
    action: &str,
    subject: &str,
    success: &str,
    result: berth_engine::Result<T>,
) -> Result<T, ApiError> {
    match &result {
        Ok(_) => state.events.record("volume", action, subject, Outcome::Success, success).await,
        Err(e) => state.events.record("volume", action, subject, Outcome::Failure, &e.to_string()).await,
    }
    Ok(result?)
}

#[utoipa::path(get, path = "/api/v1/volumes", tag = "volumes", responses((status = 200, body = Vec<VolumeInspect>), (status = 400, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn list_volumes(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<VolumeInspect>>, ApiError> {
    QueryParams::parse(query, &[])?;
    Ok(Json(state.engine.list_volumes().await?))
}

#[utoipa::path(post, path = "/api/v1/volumes", tag = "volumes", request_body = VolumeCreate, responses((status = 201, body = VolumeInspect), (status = 400, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn create_volume(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<VolumeCreate>,
) -> Result<(StatusCode, Json<VolumeInspect>), ApiError> {
    let name = request.name.clone();
    let result = state.engine.create_volume(request).await;
    let subject = match &result {
        Ok(volume) => volume.name.clone(),
        Err(_) => name,
    };
    let volume = recorded(&state, "create", &subject, "created", result).await?;
    Ok((StatusCode::CREATED, Json(volume)))
}

#[utoipa::path(get, path = "/api/v1/volumes/{name}", tag = "volumes", params(("name" = String, Path, description = "volume name")), responses((status = 200, body = VolumeInspect), (status = 404, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn inspect_volume(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<VolumeInspect>, ApiError> {
    QueryParams::parse(query, &[])?;
    Ok(Json(state.engine.inspect_volume(&name).await?))
}

#[utoipa::path(delete, path = "/api/v1/volumes/{name}", tag = "volumes", params(("name" = String, Path, description = "volume name"), ("force" = Option<bool>, Query, description = "no error when the volume does not exist")), responses((status = 204), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody, description = "a container uses the volume")), security(("bearer" = []), ("session" = [])))]
pub(super) async fn remove_volume(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<StatusCode, ApiError> {
    let query = QueryParams::parse(query, &["force"])?;
    let force = query.flag("force")?;
    let result = state.engine.remove_volume(&name, force).await;
    recorded(&state, "destroy", &name, "removed", result).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/volumes/prune", tag = "volumes", params(("all" = Option<bool>, Query, description = "every unused volume, not only anonymous ones")), responses((status = 200, body = VolumePruneReport), (status = 400, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn prune_volumes(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<VolumePruneReport>, ApiError> {
    let query = QueryParams::parse(query, &["all"])?;
    let all = query.flag("all")?;
    let result = state.engine.prune_volumes(all).await;
    let report = recorded(&state, "prune", "unused volumes", "pruned", result).await?;
    Ok(Json(report))
}
