//! Registry routes: pull and push (streams of JSON lines, one `TransferEvent` each, the last
//! one the result or the error), login and logout.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_engine::registry::{Credentials, Progress};
use berth_engine::Reference;
use berth_types::{LoginRequest, LogoutRequest, PullRequest, PushRequest, RegistryAuthReport, TransferEvent};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc::UnboundedReceiver;

use super::AppState;
use crate::serve::error::{ApiError, ApiJson};
use crate::serve::events::Outcome;

/// The media type of the progress streams: newline-delimited JSON.
const JSON_LINES: &str = "application/x-ndjson";

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
    ApiJson(request): ApiJson<PullRequest>,
) -> Result<Response, ApiError> {
    // A malformed name is refused before the stream starts, with a status that says so.
    Reference::parse(&request.reference)
        .map_err(|e| ApiError::bad_request(berth_engine::Error::from(e).to_string()))?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let engine = state.engine.clone();
    let events = state.events.clone();
    // The pull runs to its end even if the client goes away: what it downloads is kept.
    tokio::spawn(async move {
        let result = engine
            .pull_image(&request.reference, request.platform.as_deref(), Progress::new(tx.clone()))
            .await;
        let last = match result {
            Ok(report) => {
                let message =
                    format!("pulled {} ({} layers downloaded)", report.digest, report.layers_downloaded);
                events.record("image", "pull", &report.reference, Outcome::Success, &message).await;
                TransferEvent::Pulled(report)
            }
            Err(e) => {
                events.record("image", "pull", &request.reference, Outcome::Failure, &e.to_string()).await;
                TransferEvent::Error { message: e.to_string() }
            }
        };
        let _ = tx.send(last);
    });
    Ok(json_lines(rx))
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
    ApiJson(request): ApiJson<PushRequest>,
) -> Result<Response, ApiError> {
    Reference::parse(&request.reference)
        .map_err(|e| ApiError::bad_request(berth_engine::Error::from(e).to_string()))?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let engine = state.engine.clone();
    let events = state.events.clone();
    tokio::spawn(async move {
        let result = engine.push_image(&request.reference, Progress::new(tx.clone())).await;
        let last = match result {
            Ok(report) => {
                let message = format!("pushed {} ({} blobs uploaded)", report.digest, report.blobs_uploaded);
                events.record("image", "push", &report.reference, Outcome::Success, &message).await;
                TransferEvent::Pushed(report)
            }
            Err(e) => {
                events.record("image", "push", &request.reference, Outcome::Failure, &e.to_string()).await;
                TransferEvent::Error { message: e.to_string() }
            }
        };
        let _ = tx.send(last);
    });
    Ok(json_lines(rx))
}

/// The events as they come, one JSON object per line.
fn json_lines(rx: UnboundedReceiver<TransferEvent>) -> Response {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) })
        .map(|event| {
            let mut line = serde_json::to_vec(&event).expect("transfer events serialise");
            line.push(b'\n');
            Ok::<_, Infallible>(Bytes::from(line))
        });
    ([(header::CONTENT_TYPE, JSON_LINES)], Body::from_stream(stream)).into_response()
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
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<Json<RegistryAuthReport>, ApiError> {
    let LoginRequest { server, username, password } = request;
    let shown_user = username.clone();
    match state.engine.login(&server, Credentials { username, password }).await {
        Ok(report) => {
            let message = format!("user {shown_user}");
            state.events.record("registry", "login", &report.server, Outcome::Success, &message).await;
            Ok(Json(report))
        }
        Err(e) => {
            state.events.record("registry", "login", &server, Outcome::Failure, &e.to_string()).await;
            Err(e.into())
        }
    }
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
    ApiJson(request): ApiJson<LogoutRequest>,
) -> Result<Json<RegistryAuthReport>, ApiError> {
    let report = state.engine.logout(&request.server).await?;
    state.events.record("registry", "logout", &report.server, Outcome::Success, &report.status).await;
    Ok(Json(report))
}
