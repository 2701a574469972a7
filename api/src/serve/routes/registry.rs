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
