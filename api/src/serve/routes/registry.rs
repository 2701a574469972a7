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
pub(super) async fn logout(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<LogoutRequest>,
) -> Result<Json<RegistryAuthReport>, ApiError> {
    let report = state.engine.logout(&request.server).await?;
    state.events.record("registry", "logout", &report.server, Outcome::Success, &report.status).await;
    Ok(Json(report))
}
