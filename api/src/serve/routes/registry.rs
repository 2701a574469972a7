//! Registry routes: pull and push (streams of JSON lines, one `TransferEvent` each, the last
//! one the result or the error), login and logout.

use axum::extract::State;
use axum::response::Response;
use axum::Json;
use berth_types::{LoginRequest, LogoutRequest, PullRequest, PushRequest, RegistryAuthReport, TransferEvent};

use super::answer::json_lines;
use crate::serve::error::{ApiError, ApiJson};
use crate::serve::ops::{registry, Caller};
use crate::serve::state::AppState;

/// `POST /api/v1/images/pull`.
#[utoipa::path(post, path = "/api/v1/images/pull", tag = "registry",
    description = "Pulls an image. The answer is a stream of JSON lines, one TransferEvent each (layer \
        progress), the last one `pulled` or `error`; a malformed reference is refused before the stream \
        starts. The pull goes on if the client goes away. Operators; the image goes to the caller's team \
        (header X-Berth-Team picks one).",
    request_body = PullRequest,
    responses((status = 200, content_type = "application/x-ndjson", body = TransferEvent,
            description = "one TransferEvent per line"),
        (status = 400, body = crate::serve::openapi::ErrorBody), (status = 403, body = crate::serve::openapi::ErrorBody),
        (status = 404, body = crate::serve::openapi::ErrorBody, description = "no such team"),
        (status = 413, body = crate::serve::openapi::ErrorBody), (status = 415, body = crate::serve::openapi::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(super) async fn pull_image(
    State(state): State<AppState>,
    caller: Caller,
    request: Result<ApiJson<PullRequest>, ApiError>,
) -> Result<Response, ApiError> {
    Ok(json_lines(registry::pull(&state, &caller, request.map(|b| b.0), None).await?))
}

/// `POST /api/v1/images/push`.
#[utoipa::path(post, path = "/api/v1/images/push", tag = "registry",
    description = "Pushes an image, named as it is to be pushed. The answer is a stream of JSON lines, \
        one TransferEvent each, the last one `pushed` or `error`. Operators, on their team's images.",
    request_body = PushRequest,
    responses((status = 200, content_type = "application/x-ndjson", body = TransferEvent,
            description = "one TransferEvent per line"),
        (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody), (status = 413, body = crate::serve::openapi::ErrorBody),
        (status = 415, body = crate::serve::openapi::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(super) async fn push_image(
    State(state): State<AppState>,
    caller: Caller,
    request: Result<ApiJson<PushRequest>, ApiError>,
) -> Result<Response, ApiError> {
    Ok(json_lines(registry::push(&state, &caller, request.map(|b| b.0), None).await?))
}

/// `POST /api/v1/registry/login`. The password goes to the engine only; neither it nor the
/// request is logged.
#[utoipa::path(post, path = "/api/v1/registry/login", tag = "registry",
    description = "Checks the credentials with the registry and keeps them for pulls and pushes \
        (`docker login`). Admins. 502 when the registry cannot be reached or answers in error.",
    request_body = berth_types::LoginRequest,
    responses((status = 200, body = RegistryAuthReport),
        (status = 400, body = crate::serve::openapi::ErrorBody, description = "empty user name or password, a malformed server, \
            or credentials the registry refused"),
        (status = 404, body = crate::serve::openapi::ErrorBody), (status = 413, body = crate::serve::openapi::ErrorBody), (status = 415, body = crate::serve::openapi::ErrorBody),
        (status = 502, body = crate::serve::openapi::ErrorBody, description = "the registry cannot be reached or failed")),
    security(("bearer" = []), ("session" = [])))]
pub(super) async fn login(
    State(state): State<AppState>,
    caller: Caller,
    request: Result<ApiJson<LoginRequest>, ApiError>,
) -> Result<Json<RegistryAuthReport>, ApiError> {
    Ok(Json(registry::login(&state, &caller, request.map(|b| b.0)).await?))
}

/// `POST /api/v1/registry/logout`.
#[utoipa::path(post, path = "/api/v1/registry/logout", tag = "registry",
    description = "Forgets the credentials kept for a registry (`docker logout`). Admins.",
    request_body = LogoutRequest,
    responses((status = 200, body = RegistryAuthReport),
        (status = 400, body = crate::serve::openapi::ErrorBody), (status = 413, body = crate::serve::openapi::ErrorBody), (status = 415, body = crate::serve::openapi::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(super) async fn logout(
    State(state): State<AppState>,
    caller: Caller,
    request: Result<ApiJson<LogoutRequest>, ApiError>,
) -> Result<Json<RegistryAuthReport>, ApiError> {
    Ok(Json(registry::logout(&state, &caller, request.map(|b| b.0.server)).await?))
}

/// `PUT /api/v1/registry/repositories`.
#[utoipa::path(put, path = "/api/v1/registry/repositories", tag = "registry",
    description = "Sets a served repository's settings (`--registry-listen`): `public` lets anyone pull \
        it without credentials. Admins, or operators of the team that owns it.",
    request_body = berth_types::RepositorySettings,
    responses((status = 204, description = "set"),
        (status = 400, body = crate::serve::openapi::ErrorBody), (status = 403, body = crate::serve::openapi::ErrorBody),
        (status = 404, body = crate::serve::openapi::ErrorBody, description = "no such repository")),
    security(("bearer" = []), ("session" = [])))]
pub(super) async fn set_repository(
    State(state): State<AppState>,
    caller: Caller,
    request: Result<ApiJson<berth_types::RepositorySettings>, ApiError>,
) -> Result<axum::http::StatusCode, ApiError> {
    let settings = match request {
        Ok(b) => b.0,
        Err(e) => {
            // Refused only after the role check, as every operation's input.
            caller.require(berth_types::auth::Role::Operator)?;
            return Err(e);
        }
    };
    crate::serve::ops::distribution::set_public(&state, &caller, &settings.name, settings.public).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// The query of `GET /api/v1/images/search`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub(super) struct SearchQuery {
    /// What to look for; `registry/term` searches that registry (Docker Hub by default).
    term: String,
    /// At most this many results (1..100, default 25).
    limit: Option<usize>,
    /// Docker's filters as JSON: `{"is-official":["true"],"stars":["3"],"is-automated":["false"]}`.
    filters: Option<String>,
}

/// Docker's `filters` query parameter (`{"key":["value"]}`, or the older `{"key":{"value":true}}`).
pub(crate) fn search_filter(filters: Option<&str>) -> Result<berth_types::SearchFilter, ApiError> {
    let Some(text) = filters.filter(|t| !t.is_empty()) else {
        return Ok(berth_types::SearchFilter::default());
    };
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ApiError::bad_request(format!("invalid filters: {e}")))?;
    let mut pairs = Vec::new();
    for (key, values) in
        value.as_object().ok_or_else(|| ApiError::bad_request("invalid filters: not an object"))?
    {
        match values {
            serde_json::Value::Array(list) => {
                pairs.extend(list.iter().filter_map(|v| v.as_str()).map(|v| (key.clone(), v.to_string())))
            }
            serde_json::Value::Object(map) => pairs.extend(map.keys().map(|v| (key.clone(), v.clone()))),
            _ => return Err(ApiError::bad_request(format!("invalid filters: {key}"))),
        }
    }
    berth_types::SearchFilter::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(ApiError::bad_request)
}

/// `GET /api/v1/images/search`.
#[utoipa::path(get, path = "/api/v1/images/search", tag = "registry", params(SearchQuery),
    description = "Searches a registry for repositories (`docker search`): its `/v1/search` API where it has \
        one, else its `_catalog`, filtered by the term. Viewers.",
    responses((status = 200, body = Vec<berth_types::SearchResult>),
        (status = 400, body = crate::serve::openapi::ErrorBody),
        (status = 502, body = crate::serve::openapi::ErrorBody, description = "the registry cannot be reached or failed")),
    security(("bearer" = []), ("session" = [])))]
pub(super) async fn search_images(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Query(query): axum::extract::Query<SearchQuery>,
) -> Result<Json<Vec<berth_types::SearchResult>>, ApiError> {
    let filter = search_filter(query.filters.as_deref())?;
    Ok(Json(crate::serve::ops::search::search(&state, &caller, &query.term, query.limit, &filter).await?))
}

/// The query of `GET /api/v1/registry/tags`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub(super) struct TagsQuery {
    /// `registry/repository` (`127.0.0.1:5000/team/app`).
    repository: String,
}

/// `GET /api/v1/registry/tags`.
#[utoipa::path(get, path = "/api/v1/registry/tags", tag = "registry", params(TagsQuery),
    description = "The tags of a remote repository, each with its manifest's digest, media type, size and \
        platforms. Viewers.",
    responses((status = 200, body = Vec<berth_types::RemoteTag>),
        (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody),
        (status = 502, body = crate::serve::openapi::ErrorBody, description = "the registry cannot be reached or failed")),
    security(("bearer" = []), ("session" = [])))]
pub(super) async fn remote_tags(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Query(query): axum::extract::Query<TagsQuery>,
) -> Result<Json<Vec<berth_types::RemoteTag>>, ApiError> {
    Ok(Json(crate::serve::ops::search::remote_tags(&state, &caller, &query.repository).await?))
}

/// The query of `GET`/`DELETE /api/v1/registry/manifest`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub(super) struct ManifestQuery {
    /// `registry/repository:tag` (`127.0.0.1:5000/team/app:1`).
    reference: String,
}

/// `GET /api/v1/registry/manifest`.
#[utoipa::path(get, path = "/api/v1/registry/manifest", tag = "registry", params(ManifestQuery),
    description = "A remote tag's manifest (or index) and, for each image it holds, its platform, config \
        (creation time, command) and layers with their sizes. Viewers.",
    responses((status = 200, body = berth_types::RemoteManifest),
        (status = 400, body = crate::serve::openapi::ErrorBody), (status = 404, body = crate::serve::openapi::ErrorBody),
        (status = 502, body = crate::serve::openapi::ErrorBody, description = "the registry cannot be reached or failed")),
    security(("bearer" = []), ("session" = [])))]
pub(super) async fn remote_manifest(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Query(query): axum::extract::Query<ManifestQuery>,
) -> Result<Json<berth_types::RemoteManifest>, ApiError> {
    Ok(Json(crate::serve::ops::search::remote_manifest(&state, &caller, &query.reference).await?))
}

/// `DELETE /api/v1/registry/manifest`.
#[utoipa::path(delete, path = "/api/v1/registry/manifest", tag = "registry", params(ManifestQuery),
    description = "Deletes a tag of a remote repository where the registry allows it (only the tag: \
        other tags of the same manifest stay). Operators; the daemon's credentials for the registry are used.",
    responses((status = 204, description = "deleted"),
        (status = 400, body = crate::serve::openapi::ErrorBody),
        (status = 403, body = crate::serve::openapi::ErrorBody, description = "the role, or the registry, refuses"),
        (status = 404, body = crate::serve::openapi::ErrorBody),
        (status = 502, body = crate::serve::openapi::ErrorBody, description = "the registry cannot be reached or failed")),
    security(("bearer" = []), ("session" = [])))]
pub(super) async fn delete_remote_tag(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Query(query): axum::extract::Query<ManifestQuery>,
) -> Result<axum::http::StatusCode, ApiError> {
    crate::serve::ops::search::delete_remote_tag(&state, &caller, &query.reference).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// `GET /api/v1/registries`.
#[utoipa::path(get, path = "/api/v1/registries", tag = "registry",
    description = "The registries added as objects: all for admins, else those every team or one of the \
        caller's teams may use. Viewers.",
    responses((status = 200, body = Vec<berth_types::RegistryInfo>)),
    security(("bearer" = []), ("session" = [])))]
pub(super) async fn list_registries(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<berth_types::RegistryInfo>>, ApiError> {
    Ok(Json(crate::serve::ops::registries::list(&state, &caller).await?))
}

/// `POST /api/v1/registries`.
#[utoipa::path(post, path = "/api/v1/registries", tag = "registry",
    description = "Adds a registry (a name for a host, its insecure flag, the team that may use it). Its \
        credentials come from `login`. Admins.",
    request_body = berth_types::RegistryCreateRequest,
    responses((status = 201, body = berth_types::RegistryInfo),
        (status = 400, body = crate::serve::openapi::ErrorBody), (status = 403, body = crate::serve::openapi::ErrorBody),
        (status = 404, body = crate::serve::openapi::ErrorBody, description = "no such team"),
        (status = 409, body = crate::serve::openapi::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(super) async fn add_registry(
    State(state): State<AppState>,
    caller: Caller,
    request: Result<ApiJson<berth_types::RegistryCreateRequest>, ApiError>,
) -> Result<(axum::http::StatusCode, Json<berth_types::RegistryInfo>), ApiError> {
    let added = crate::serve::ops::registries::add(&state, &caller, request.map(|b| b.0)).await?;
    Ok((axum::http::StatusCode::CREATED, Json(added)))
}

/// `DELETE /api/v1/registries/{name}`.
#[utoipa::path(delete, path = "/api/v1/registries/{name}", tag = "registry",
    description = "Removes a registry object (its stored credentials stay until `logout`). Admins.",
    params(("name" = String, Path, description = "the registry's name")),
    responses((status = 204, description = "removed"), (status = 403, body = crate::serve::openapi::ErrorBody),
        (status = 404, body = crate::serve::openapi::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(super) async fn remove_registry(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Result<axum::http::StatusCode, ApiError> {
    crate::serve::ops::registries::remove(&state, &caller, &name).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
