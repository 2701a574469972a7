//! The node and its history as a whole: system information, the node's load, and the events
//! (with which of them a member may see).

use std::time::Duration;

use berth_types::auth::Role;
use berth_types::{ContainerDiskUsage, DiskUsage, Event, ImageDiskUsage, NodeStats, SystemInfo};

use super::access;
use super::Caller;
use crate::serve::auth::store::OwnedKind;
use crate::serve::error::ApiError;
use crate::serve::state::AppState;

/// The name `--snapshotter` takes and `info` shows.
pub fn snapshotter_name(kind: berth_engine::SnapshotterKind) -> &'static str {
    match kind {
        berth_engine::SnapshotterKind::Overlay => "overlay",
        berth_engine::SnapshotterKind::Copy => "copy",
    }
}

/// `docker info`.
pub async fn info(state: &AppState, caller: &Caller) -> Result<SystemInfo, ApiError> {
    caller.require(Role::Viewer)?;
    let images = state.engine.list_images().await?.len();
    let root = state.root.clone();
    // Disk usage walks the trees: keep it off the reactor.
    let (blobs_size, layers_size) = tokio::task::spawn_blocking(move || {
        (
            berth_engine::fsutil::disk_usage(&root.join("blobs")),
            berth_engine::fsutil::disk_usage(&root.join("snapshots")),
        )
    })
    .await
    .map_err(|e| ApiError::internal(format!("measuring disk usage: {e}")))?;
    Ok(SystemInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        root: state.root.display().to_string(),
        run_dir: state.run_dir.display().to_string(),
        snapshotter: snapshotter_name(state.engine.snapshotter()).to_string(),
        images,
        blobs_size,
        layers_size,
        waits_answered_by_poll: state.engine.waits_answered_by_poll(),
    })
}

/// `docker system df`: the caller's images, containers and volumes with what they hold.
pub async fn disk_usage(state: &AppState, caller: &Caller) -> Result<DiskUsage, ApiError> {
    caller.require(Role::Viewer)?;
    let containers = super::containers::list(state, caller, true, &Default::default()).await?;
    let images = super::images::list(state, caller).await?;
    let mut volumes = Vec::new();
    for volume in super::volumes::list(state, caller).await? {
        // The list has no sizes: inspect measures the data.
        match state.engine.inspect_volume(&volume.name).await {
            Ok(measured) => volumes.push(measured),
            Err(_) => volumes.push(volume),
        }
    }
    let mut with_sizes = Vec::with_capacity(containers.len());
    for container in containers {
        let size_rw = state.engine.container_size(&container.id).await.unwrap_or(0);
        with_sizes.push(ContainerDiskUsage { container, size_rw });
    }
    let images = images
        .into_iter()
        .map(|image| {
            let users = with_sizes.iter().filter(|c| c.container.image_id == image.id).count();
            ImageDiskUsage { image, containers: users }
        })
        .collect();
    let root = state.root.clone();
    let layers_size = tokio::task::spawn_blocking(move || {
        berth_engine::fsutil::disk_usage(&root.join("snapshots").join("layers"))
    })
    .await
    .map_err(|e| ApiError::internal(format!("measuring disk usage: {e}")))?;
    Ok(DiskUsage { layers_size, images, containers: with_sizes, volumes })
}

/// The node's CPU, memory and disk: the machine, no container's content (viewers).
pub async fn node_stats(state: &AppState, caller: &Caller) -> Result<NodeStats, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(state.engine.node_stats().await?)
}

/// The most recent events, newest first; a member sees those of their teams' containers and
/// stacks (as the live events and the history show them).
pub async fn events(
    state: &AppState,
    caller: &Caller,
    limit: i64,
    before: Option<i64>,
) -> Result<Vec<Event>, ApiError> {
    caller.require(Role::Viewer)?;
    let mut events = state
        .events
        .list(limit, before)
        .await
        .map_err(|e| ApiError::internal(format!("reading events: {e}")))?;
    if caller.is_admin() {
        return Ok(events);
    }
    let owned = state.auth.owned(OwnedKind::Containers, &caller.team_ids()).await?;
    let mut visible = Vec::with_capacity(events.len());
    for event in events.drain(..) {
        let shown = match event.event_type.as_str() {
            "container" => container_of(&event).is_some_and(|id| owned.contains(id)),
            "stack" => access::stack_visible(state, caller, &event.subject).await,
            _ => false,
        };
        if shown {
            visible.push(event);
        }
    }
    Ok(visible)
}

/// The container a container event is about: its message starts with `id=<container id>`.
fn container_of(event: &Event) -> Option<&str> {
    event.message.strip_prefix("id=").and_then(|m| m.split(' ').next())
}

/// Whether `caller` may see a live event: admins all; members those of their teams' containers
/// and stacks.
pub async fn event_visible(state: &AppState, caller: &Caller, event: &Event) -> bool {
    if caller.is_admin() {
        return true;
    }
    if event.event_type == "stack" {
        return access::stack_visible(state, caller, &event.subject).await;
    }
    let Some(id) = container_of(event) else { return false };
    if event.event_type != "container" {
        return false;
    }
    let teams = caller.team_ids();
    // A container's `create` event is sent while its creator's call is still recording the
    // owner: wait for it a little.
    let tries = if event.action == "create" { 50 } else { 1 };
    for attempt in 0..tries {
        match state.auth.container_owner(id).await {
            Ok(Some(team)) => return teams.contains(&team),
            Ok(None) if attempt + 1 < tries => tokio::time::sleep(Duration::from_millis(20)).await,
            _ => return false,
        }
    }
    false
}
