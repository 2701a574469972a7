//! Image routes: list, inspect, tag, remove, prune, import, load, save.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_types::{
    ImageDeleteItem, ImageInspect, ImagePruneReport, ImageSummary, ImportReport, LoadReport, TagRequest,
};

use super::query::QueryParams;
use crate::serve::body::{save_stream, BodyPump};
use crate::serve::error::{ApiError, ApiJson};
use crate::serve::ops::images::{self, ImportOptions};
use crate::serve::ops::Caller;
use crate::serve::state::AppState;

#[utoipa::path(get, path = "/api/v1/images", tag = "images", responses((status = 200, body = Vec<ImageSummary>)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn list_images(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<ImageSummary>>, ApiError> {
    Ok(Json(images::list(&state, &caller).await?))
}

#[utoipa::path(get, path = "/api/v1/images/{name}", tag = "images", params(("name" = String, Path, description = "name, ID or digest; percent-encoded")), responses((status = 200, body = ImageInspect), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn inspect_image(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<ImageInspect>, ApiError> {
    Ok(Json(images::inspect(&state, &caller, &name).await?))
}

#[utoipa::path(post, path = "/api/v1/images/{name}/tag", tag = "images", params(("name" = String, Path)), request_body = TagRequest, responses((status = 201), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 413, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn tag_image(
    State(state): State<AppState>,
    caller: Caller,
    Path(source): Path<String>,
    request: Result<ApiJson<TagRequest>, ApiError>,
) -> Result<StatusCode, ApiError> {
    images::tag(&state, &caller, &source, request.map(|b| b.0.target)).await?;
    Ok(StatusCode::CREATED)
}

#[utoipa::path(delete, path = "/api/v1/images/{name}", tag = "images", params(("name" = String, Path), ("force" = Option<bool>, Query)), responses((status = 200, body = Vec<ImageDeleteItem>), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 409, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn remove_image(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<ImageDeleteItem>>, ApiError> {
    let query = QueryParams::parse(query, &["force"])?;
    Ok(Json(images::remove(&state, &caller, &name, query.flag("force")?).await?))
}

#[utoipa::path(post, path = "/api/v1/images/prune", tag = "images", params(("all" = Option<bool>, Query, description = "all unused images, not only dangling ones")), responses((status = 200, body = ImagePruneReport), (status = 400, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn prune_images(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<ImagePruneReport>, ApiError> {
    let query = QueryParams::parse(query, &["all"])?;
    Ok(Json(images::prune(&state, &caller, query.flag("all")?).await?))
}

#[utoipa::path(post, path = "/api/v1/images/import", tag = "images", params(("reference" = Option<String>, Query), ("change" = Option<Vec<String>>, Query), ("message" = Option<String>, Query)), request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "a root filesystem tar (gzip, zstd or plain)"), responses((status = 200, body = ImportReport), (status = 400, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn import_image(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Json<ImportReport>, ApiError> {
    let query = QueryParams::parse(query, &["reference", "change", "message"])?;
    let options = ImportOptions {
        reference: query.one("reference")?.filter(|r| !r.is_empty()).map(str::to_string),
        changes: query.all("change").map(str::to_string).collect(),
        message: query.one("message")?.map(str::to_string),
    };
    Ok(Json(images::import(&state, &caller, BodyPump::start(body), options).await?))
}

#[utoipa::path(post, path = "/api/v1/images/load", tag = "images", request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "an OCI layout or docker save tar"), responses((status = 200, body = LoadReport), (status = 400, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn load_images(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Json<LoadReport>, ApiError> {
    QueryParams::parse(query, &[])?;
    Ok(Json(images::load(&state, &caller, BodyPump::start(body)).await?))
}

#[utoipa::path(get, path = "/api/v1/images/save", tag = "images", params(("name" = Vec<String>, Query, description = "images to save; repeat")), responses((status = 200, content_type = "application/x-tar", body = Vec<u8>), (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
pub(super) async fn save_images(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = QueryParams::parse(query, &["name"])?;
    let names: Vec<String> = query.all("name").map(str::to_string).collect();
    // Everything that can be refused (unknown names, ...) is refused here, before the 200.
    let plan = images::save(&state, &caller, names).await?;

    Ok(([(header::CONTENT_TYPE, "application/x-tar")], save_stream(state.engine.clone(), plan))
        .into_response())
}
