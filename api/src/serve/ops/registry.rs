//! Registry operations: pull and push (run in their own task, reporting progress as
//! `TransferEvent`s, the last one the result or the error), login and logout.

use axum::http::StatusCode;
use berth_engine::registry::{Credentials, Progress};
use berth_engine::Reference;
use berth_types::auth::Role;
use berth_types::{LoginRequest, PullRequest, PushRequest, RegistryAuthReport, TransferEvent};
use tokio::sync::mpsc::UnboundedReceiver;

use super::access::{self, Object, Use};
use super::images::{adopt_image, shared_images};
use super::{failed, recorded, Caller, Input};
use crate::serve::error::ApiError;
use crate::serve::events::Outcome;
use crate::serve::state::AppState;

/// A malformed name is refused before anything starts, with a status that says so.
fn check_reference(reference: &str) -> Result<(), ApiError> {
    Reference::parse(reference)
        .map_err(|e| ApiError::bad_request(berth_engine::Error::from(e).to_string()))?;
    Ok(())
}

/// `docker pull`: the image goes to the caller's team. The pull runs to its end even if
/// nobody reads the events any more: what it downloads is kept. `credentials`: the caller's
/// own for this pull (the Docker API's `X-Registry-Auth`), else the stored ones.
pub async fn pull(
    state: &AppState,
    caller: &Caller,
    request: Input<PullRequest>,
    credentials: Option<Credentials>,
) -> Result<UnboundedReceiver<TransferEvent>, ApiError> {
    let result = async {
        caller.require(Role::Operator)?;
        let request = request?;
        check_reference(&request.reference)?;
        let team = caller.target_team(state).await?;
        Ok((team, request))
    }
    .await;
    let (team, request) = caller.audited(state, StatusCode::OK, result).await?;
    let shared_before = shared_images(state, team).await;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let state = state.clone();
    tokio::spawn(async move {
        let result = state
            .engine
            .pull_image_as(
                &request.reference,
                request.platform.as_deref(),
                credentials,
                Progress::new(tx.clone()),
            )
            .await;
        let last = match result {
            Ok(report) => {
                let message =
                    format!("pulled {} ({} layers downloaded)", report.digest, report.layers_downloaded);
                state.events.record("image", "pull", &report.reference, Outcome::Success, &message).await;
                if let Some(team) = team {
                    match state.engine.inspect_image(&report.reference).await {
                        Ok(image) => adopt_image(&state, &image.id, team, &shared_before).await,
                        Err(e) => {
                            tracing::error!(reference = %report.reference, error = %e, "no image after the pull")
                        }
                    }
                }
                TransferEvent::Pulled(report)
            }
            Err(e) => {
                let error = failed(&state, "image", "pull", &request.reference, e).await;
                TransferEvent::Error { message: error.message, status: Some(error.status.as_u16()) }
            }
        };
        let _ = tx.send(last);
    });
    Ok(rx)
}

/// `docker push`, of an image the caller's teams own or a shared one. `credentials` as for
/// [`pull`].
pub async fn push(
    state: &AppState,
    caller: &Caller,
    request: Input<PushRequest>,
    credentials: Option<Credentials>,
) -> Result<UnboundedReceiver<TransferEvent>, ApiError> {
    let result = async {
        caller.require(Role::Operator)?;
        let request = request?;
        check_reference(&request.reference)?;
        access::check(state, caller, &Object::Image(request.reference.clone()), Use::Read).await?;
        Ok(request)
    }
    .await;
    let request = caller.audited(state, StatusCode::OK, result).await?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let state = state.clone();
    tokio::spawn(async move {
        let result =
            state.engine.push_image(&request.reference, credentials, Progress::new(tx.clone())).await;
        let last = match result {
            Ok(report) => {
                let message = format!("pushed {} ({} blobs uploaded)", report.digest, report.blobs_uploaded);
                state.events.record("image", "push", &report.reference, Outcome::Success, &message).await;
                TransferEvent::Pushed(report)
            }
            Err(e) => {
                let error = failed(&state, "image", "push", &request.reference, e).await;
                TransferEvent::Error { message: error.message, status: Some(error.status.as_u16()) }
            }
        };
        let _ = tx.send(last);
    });
    Ok(rx)
}

/// `docker login` (admins): checks the credentials with the registry and keeps them. Neither
/// the password nor the request is logged.
pub async fn login(
    state: &AppState,
    caller: &Caller,
    request: Input<LoginRequest>,
) -> Result<RegistryAuthReport, ApiError> {
    let result = async {
        caller.require(Role::Admin)?;
        let request = request?;
        let LoginRequest { server, username, password } = request;
        let message = format!("user {username}");
        let report = state.engine.login(&server, Credentials { username, password }).await;
        let subject = report.as_ref().map(|r| r.server.clone()).unwrap_or(server);
        recorded(state, "registry", "login", &subject, &message, report).await
    }
    .await;
    caller.audited(state, StatusCode::OK, result).await
}

/// Checks credentials with a registry without keeping them (the Docker API's `POST /auth`:
/// the docker CLI keeps them and sends them with each pull and push). Bad credentials answer
/// 401, as dockerd. Not recorded as an event: nothing in the daemon changed.
pub async fn check_login(
    state: &AppState,
    caller: &Caller,
    server: &str,
    credentials: Input<Credentials>,
) -> Result<String, ApiError> {
    let result = async {
        caller.require(Role::Operator)?;
        let credentials = credentials?;
        match state.engine.check_credentials(server, &credentials).await {
            Ok(server) => Ok(server),
            Err(e @ berth_engine::Error::Registry { kind: berth_engine::ErrorKind::InvalidInput, .. }) => {
                Err(ApiError::new(StatusCode::UNAUTHORIZED, e.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }
    .await;
    caller.audited(state, StatusCode::OK, result).await
}

/// `docker logout` (admins).
pub async fn logout(
    state: &AppState,
    caller: &Caller,
    server: Input<String>,
) -> Result<RegistryAuthReport, ApiError> {
    let result = async {
        caller.require(Role::Admin)?;
        let report = state.engine.logout(&server?).await?;
        state.events.record("registry", "logout", &report.server, Outcome::Success, &report.status).await;
        Ok(report)
    }
    .await;
    caller.audited(state, StatusCode::OK, result).await
}
