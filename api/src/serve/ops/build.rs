//! `docker build`: the build runs in its own task (it goes on if nobody reads its events any
//! more), its typed events go to the caller and into the build's record, and the image it
//! makes goes to the caller's team.

use std::collections::HashMap;

use axum::http::StatusCode;
use berth_engine::build::CachePruneReport;
use berth_engine::registry::Credentials;
use berth_engine::Reference;
use berth_types::auth::Role;
use berth_types::build::{BuildEvent, BuildOptions};
use tokio::sync::mpsc::UnboundedReceiver;

use super::images::{adopt_image, shared_images};
use super::{access, checked, Caller};
use crate::serve::body::{BodyPump, BodyReader};
use crate::serve::error::ApiError;
use crate::serve::events::Outcome;
use crate::serve::history::{BuildLog, Builds};
use crate::serve::state::AppState;

/// Starts a build of the context tar `context`; its events, the last one `built` or `error`.
/// `credentials`: the caller's own, per registry, for the base images the build pulls (the
/// Docker API's `X-Registry-Config`); other registries get the stored ones.
pub async fn build(
    state: &AppState,
    caller: &Caller,
    (context, pump): (BodyReader, BodyPump),
    options: BuildOptions,
    credentials: HashMap<String, Credentials>,
) -> Result<UnboundedReceiver<BuildEvent>, ApiError> {
    let checked = async {
        caller.require(Role::Operator)?;
        // A malformed tag is refused before the build starts, with a status that says so.
        for tag in &options.tags {
            let reference = Reference::parse(tag)
                .map_err(|e| ApiError::bad_request(berth_engine::Error::from(e).to_string()))?;
            if reference.digest().is_some() {
                return Err(ApiError::bad_request(format!(
                    "invalid tag {tag:?}: a tag cannot have a digest"
                )));
            }
        }
        let team = caller.target_team(state).await?;
        // A member builds from their teams' images and shared ones only (FROM, COPY --from).
        let hidden = access::hidden_images(state, caller).await?;
        Ok((team, hidden))
    }
    .await;
    let (team, hidden) = match caller.audited(state, StatusCode::OK, checked).await {
        Ok(checked) => checked,
        Err(e) => {
            pump.finish().await;
            return Err(e);
        }
    };
    let shared_before = shared_images(state, team).await;
    let builds = Builds::new(state.events.pool().clone());
    let record = builds.start(&caller.principal.user, &options.tags).await;
    if let Err(e) = &record {
        tracing::error!(error = %e.message, "opening a build record failed");
    }
    let subject = options.tags.first().cloned().unwrap_or_default();
    let (engine_tx, mut engine_rx) = tokio::sync::mpsc::unbounded_channel();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let state = state.clone();
    tokio::spawn(async move {
        let build = state.engine.build_image_hiding(context, options, hidden, credentials, engine_tx);
        let mut log = BuildLog::default();
        // The engine's events pass through to the caller and into the log as they come.
        let forward = async {
            while let Some(event) = engine_rx.recv().await {
                log.push(&event);
                let _ = tx.send(event);
            }
        };
        let (result, ()) = tokio::join!(build, forward);
        pump.finish().await;
        match result {
            Ok(report) => {
                let message =
                    format!("built {} ({}/{} steps cached)", report.id, report.cached_steps, report.steps);
                let subject = if subject.is_empty() { report.id.clone() } else { subject };
                state.events.record("image", "build", &subject, Outcome::Success, &message).await;
            }
            Err(e) => {
                state.events.record("image", "build", &subject, Outcome::Failure, &e.to_string()).await;
                let exit_code = match &e {
                    berth_engine::Error::CommandFailed { exit_code, .. } => Some(*exit_code),
                    _ => None,
                };
                let event = BuildEvent::Error { message: e.to_string(), exit_code };
                log.push(&event);
                let _ = tx.send(event);
            }
        }
        if let (Some(team), Some(image)) = (team, log.image()) {
            adopt_image(&state, image, team, &shared_before).await;
        }
        if let Ok(id) = record {
            let (success, image, text) = log.finish();
            builds.finish(id, image.as_deref(), success, &text).await;
        }
    });
    Ok(rx)
}

/// `docker builder prune` (admins): forgets the cached steps.
pub async fn prune_cache(state: &AppState, caller: &Caller) -> Result<CachePruneReport, ApiError> {
    let result = async {
        caller.require(Role::Admin)?;
        let result = state.engine.prune_build_cache().await;
        let report = checked(state, "builder", "prune", "build cache", result).await?;
        let message = format!(
            "{} cached steps forgotten, {} bytes reclaimed",
            report.records.len(),
            report.space_reclaimed
        );
        state.events.record("builder", "prune", "build cache", Outcome::Success, &message).await;
        Ok(report)
    }
    .await;
    caller.audited(state, StatusCode::OK, result).await
}
