//! Image operations: list, inspect, history, tag, remove, prune, import, load and save. Pull
//! and push are in `registry`, build in `build`.

use std::collections::HashSet;

use axum::http::StatusCode;
use berth_engine::image::save::SavePlan;
use berth_types::auth::Role;
use berth_types::{
    HistoryEntry, ImageDeleteItem, ImageInspect, ImagePruneReport, ImageSummary, ImportReport, LoadReport,
};

use super::access::{self, Object, Reach, Use};
use super::{checked, recorded, Caller, Input};
use crate::serve::auth::store::OwnedKind;
use crate::serve::body::{BodyPump, BodyReader};
use crate::serve::error::ApiError;
use crate::serve::events::Outcome;
use crate::serve::state::AppState;

/// `docker images`: a member sees their teams' images and the shared ones.
pub async fn list(state: &AppState, caller: &Caller) -> Result<Vec<ImageSummary>, ApiError> {
    caller.require(Role::Viewer)?;
    let visible = access::visible_ids(state, caller, OwnedKind::Images).await?;
    let mut images = state.engine.list_images().await?;
    images.retain(|i| visible.as_ref().is_none_or(|v| v.contains(&i.id)));
    Ok(images)
}

pub async fn inspect(state: &AppState, caller: &Caller, name: &str) -> Result<ImageInspect, ApiError> {
    access::guard(state, caller, Role::Viewer, Object::Image(name.to_string()), Use::Read).await?;
    Ok(state.engine.inspect_image(name).await?)
}

/// `docker history`: newest first.
pub async fn history(state: &AppState, caller: &Caller, name: &str) -> Result<Vec<HistoryEntry>, ApiError> {
    let mut history = inspect(state, caller, name).await?.history;
    history.reverse();
    Ok(history)
}

/// `docker tag SOURCE TARGET`. A tag moved onto another image takes the name from the image it
/// named: a member may do that only to their teams' images.
pub async fn tag(
    state: &AppState,
    caller: &Caller,
    source: &str,
    target: Input<String>,
) -> Result<(), ApiError> {
    let result = async {
        caller.require(Role::Operator)?;
        let target = target?;
        let target = target.as_str();
        access::guard(state, caller, Role::Operator, Object::Image(source.to_string()), Use::Change).await?;
        if let Ok(current) = state.engine.inspect_image(target).await {
            if access::reach(state, caller, &Object::Image(current.id)).await? != Reach::Allowed {
                return Err(ApiError::forbidden(format!(
                    "permission denied: {target} names an image your teams do not own"
                )));
            }
        }
        let result = state.engine.tag_image(source, target).await;
        recorded(state, "image", "tag", target, &format!("tagged {source}"), result).await
    }
    .await;
    caller.audited(state, StatusCode::CREATED, result).await
}

/// `docker rmi [-f]`.
pub async fn remove(
    state: &AppState,
    caller: &Caller,
    name: &str,
    force: bool,
) -> Result<Vec<ImageDeleteItem>, ApiError> {
    let result = async {
        access::guard(state, caller, Role::Operator, Object::Image(name.to_string()), Use::Change).await?;
        let items =
            checked(state, "image", "delete", name, state.engine.remove_image(name, force).await).await?;
        for item in &items {
            let (action, subject) = match item {
                ImageDeleteItem::Untagged(r) => ("untag", r),
                ImageDeleteItem::Deleted(id) => ("delete", id),
            };
            if let ImageDeleteItem::Deleted(id) = item {
                forget_owners(state, id).await;
            }
            state.events.record("image", action, subject, Outcome::Success, &format!("rmi {name}")).await;
        }
        Ok(items)
    }
    .await;
    caller.audited(state, StatusCode::OK, result).await
}

/// A deleted image belongs to no team any more: the same content imported again later (the
/// same ID) is its importer's only.
async fn forget_owners(state: &AppState, id: &str) {
    if let Err(e) = state.auth.forget_image(id).await {
        tracing::error!(image = %id, error = %e.message, "forgetting a deleted image's teams failed");
    }
}

/// `docker image prune [-a]` (admins).
pub async fn prune(state: &AppState, caller: &Caller, all: bool) -> Result<ImagePruneReport, ApiError> {
    let result = async {
        caller.require(Role::Admin)?;
        let subject = if all { "all unused images" } else { "dangling images" };
        let report = checked(state, "image", "prune", subject, state.engine.prune_images(all).await).await?;
        for item in &report.images_deleted {
            if let ImageDeleteItem::Deleted(id) = item {
                forget_owners(state, id).await;
            }
        }
        let deleted =
            report.images_deleted.iter().filter(|i| matches!(i, ImageDeleteItem::Deleted(_))).count();
        let message = format!("{deleted} images deleted, {} bytes reclaimed", report.space_reclaimed);
        state.events.record("image", "prune", subject, Outcome::Success, &message).await;
        Ok(report)
    }
    .await;
    caller.audited(state, StatusCode::OK, result).await
}

/// What an import takes besides the tar.
pub struct ImportOptions {
    pub reference: Option<String>,
    /// Dockerfile instructions applied to the config (`--change`).
    pub changes: Vec<String>,
    pub message: Option<String>,
}

/// `docker import`: the image goes to the caller's team.
pub async fn import(
    state: &AppState,
    caller: &Caller,
    (reader, pump): (BodyReader, BodyPump),
    options: ImportOptions,
) -> Result<ImportReport, ApiError> {
    let result = async {
        caller.require(Role::Operator)?;
        let team = caller.target_team(state).await?;
        let shared_before = shared_images(state, team).await;
        let subject = options.reference.clone().unwrap_or_default();
        let result =
            state.engine.import_image(reader, options.reference, options.changes, options.message).await;
        let report = checked(state, "image", "import", &subject, result).await?;
        let subject = report.reference.clone().unwrap_or_else(|| report.id.clone());
        state
            .events
            .record("image", "import", &subject, Outcome::Success, &format!("imported {}", report.id))
            .await;
        if let Some(team) = team {
            adopt_image(state, &report.id, team, &shared_before).await;
        }
        Ok(report)
    }
    .await;
    pump.finish().await;
    caller.audited(state, StatusCode::OK, result).await
}

/// `docker load`: the images go to the caller's team.
pub async fn load(
    state: &AppState,
    caller: &Caller,
    (reader, pump): (BodyReader, BodyPump),
) -> Result<LoadReport, ApiError> {
    let result = async {
        caller.require(Role::Operator)?;
        let team = caller.target_team(state).await?;
        let shared_before = shared_images(state, team).await;
        let report = checked(state, "image", "load", "", state.engine.load_images(reader).await).await?;
        for image in &report.loaded {
            let subject = image.reference.clone().unwrap_or_else(|| image.id.clone());
            state
                .events
                .record("image", "load", &subject, Outcome::Success, &format!("loaded {}", image.id))
                .await;
            if let Some(team) = team {
                adopt_image(state, &image.id, team, &shared_before).await;
            }
        }
        Ok(report)
    }
    .await;
    pump.finish().await;
    caller.audited(state, StatusCode::OK, result).await
}

/// `docker save`: everything that can be refused (unknown names, another team's image) is
/// refused here, before the tar is written.
pub async fn save(state: &AppState, caller: &Caller, names: Vec<String>) -> Result<SavePlan, ApiError> {
    caller.require(Role::Operator)?;
    for name in &names {
        access::check(state, caller, &Object::Image(name.clone()), Use::Read).await?;
    }
    Ok(state.engine.prepare_save(names).await?)
}

/// The shared images (no team owns them) before a call that makes images for `team`: one that
/// the call makes again (the same content pulled, loaded or built: the same ID) stays shared.
pub(crate) async fn shared_images(state: &AppState, team: Option<i64>) -> HashSet<String> {
    if team.is_none() {
        return HashSet::new();
    }
    let (Ok(images), Ok(owned)) =
        (state.engine.list_images().await, state.auth.owned_by_any(OwnedKind::Images).await)
    else {
        return HashSet::new();
    };
    images.into_iter().map(|i| i.id).filter(|id| !owned.contains(id)).collect()
}

/// Records that `team` owns the image `id` a call made, unless it was shared before the call.
pub(crate) async fn adopt_image(state: &AppState, id: &str, team: i64, shared_before: &HashSet<String>) {
    if shared_before.contains(id) {
        return;
    }
    if let Err(e) = state.auth.add_image_owner(id, team).await {
        tracing::error!(image = %id, error = %e.message, "recording the image's team failed");
    }
}
