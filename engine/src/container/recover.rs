//! What is left when a monitor is gone: at the engine's open ([`recover`]) and when a followed
//! monitor ends (a dead monitor settled, `--rm`, restart policies, unmounting).

use std::fs;

use berth_types::container::{ContainerStatus, RestartPolicy};
use chrono::Utc;

use super::runtime_of;
use super::store::{read_state_file, ContainerRecord};
use crate::monitor::protocol::RunState;
use crate::{fsutil, Engine, EngineInner};

/// Unmounts the root filesystem of a container that stopped, as Docker does (the next start
/// mounts it again, see `ensure_mounted`): a stopped container holds no mount. Not when a
/// monitor runs again (a start came in between) or the container is gone.
pub(super) async fn unmount_stopped(engine: &Engine, id: &str) {
    if engine.inner.containers.get(id).is_none() {
        return;
    }
    let lock = engine.inner.containers.op_lock(id);
    let _guard = lock.lock().await;
    if engine.inner.containers.get(id).is_none()
        || engine.inner.containers.read_state(id).is_live()
        || engine.socket_alive(id).await
    {
        return;
    }
    let key = id.to_string();
    if let Err(e) = engine.blocking(move |inner| inner.snapshots.unmount_writable(&key)).await {
        tracing::warn!(container = %id, error = %e, "unmounting the stopped container's root filesystem");
    }
}

/// Whether a container that was marked dead because its monitor died is started again: with
/// `always` or `unless-stopped`, unless the user stopped it, as Docker restarts such containers.
pub(super) fn restarts_after_dead_monitor(inner: &EngineInner, id: &str, state: &RunState) -> bool {
    let Some(record) = inner.containers.get(id) else { return false };
    state.status == ContainerStatus::Dead
        && !state.stopped_by_user
        && matches!(record.config.restart_policy, RestartPolicy::Always | RestartPolicy::UnlessStopped)
}

/// `--rm`: a container that is done (exited, or failed to start) goes.
pub(super) async fn auto_remove(engine: &Engine, id: &str, state: &RunState) {
    let Some(record) = engine.inner.containers.get(id) else { return };
    let done = !state.is_live()
        && state.monitor_pid == 0
        && (state.finished_at.is_some() || !state.error.is_empty());
    if record.config.auto_remove && done {
        remove_auto_removed(engine, record, true).await;
    }
}

/// Removes a `--rm` container, its files `deferred` (see [`Engine::remove_locked`]).
async fn remove_auto_removed(engine: &Engine, record: ContainerRecord, deferred: bool) {
    let id = record.id.clone();
    let lock = engine.inner.containers.op_lock(&id);
    let _guard = lock.lock().await;
    if engine.inner.containers.get(&id).is_some() {
        match engine.remove_locked(&record, true, deferred).await {
            // `--rm` takes the container's anonymous volumes along, as Docker's.
            Ok(()) => {
                engine.remove_anonymous_volumes(record).await;
            }
            Err(e) => tracing::warn!(container = %id, error = %e, "auto-removing the container failed"),
        }
    }
}

/// After a monitor's socket closed: if its state file still names it, it died without
/// finishing (killed): what is left of the container is deleted and it is marked dead.
/// Returns the state, `None` if the container is gone.
pub(super) fn settle_dead_monitor(inner: &EngineInner, id: &str) -> Option<RunState> {
    let record = inner.containers.get(id)?;
    let paths = inner.containers.paths(id);
    let mut state = read_state_file(&paths.state);
    if state.monitor_pid == 0 {
        return Some(state);
    }
    // Still alive after all (its socket was just slow to accept)?
    if std::os::unix::net::UnixStream::connect(&paths.socket).is_ok() {
        return Some(state);
    }
    tracing::warn!(container = %id, monitor = state.monitor_pid, "the container's monitor died");
    if state.is_live() {
        if let Err(e) = runtime_of(inner, &record).and_then(|r| r.delete(id)) {
            tracing::warn!(container = %id, error = %e, "deleting the container of a dead monitor");
        }
        state.status = ContainerStatus::Dead;
        state.pid = 0;
        state.exit_code = 255;
        state.finished_at = Some(Utc::now());
        state.error = "the container's monitor exited unexpectedly".into();
    }
    state.monitor_pid = 0;
    state.seq += 1;
    let json = serde_json::to_vec_pretty(&state).expect("state serialises");
    if let Err(e) = fsutil::write_atomic(&paths.state, &json) {
        tracing::warn!(container = %id, error = %e, "recording a dead monitor");
    }
    Some(state)
}

/// On open: removes what interrupted creates left, marks containers whose monitor died, follows
/// the monitors that run, and removes `--rm` containers that finished while no daemon ran.
pub(crate) fn recover(engine: &Engine) {
    let inner = &engine.inner;
    for id in inner.containers.half_created() {
        tracing::info!(container = %id, "removing an unfinished create");
        // A crash between mounting the root filesystem and recording the mount leaves it
        // mounted with no record saying so (not mounted: EINVAL, ignored).
        let _ = nix::mount::umount2(&inner.containers.paths(&id).rootfs, nix::mount::MntFlags::MNT_DETACH);
        let _ = inner.snapshots.remove_writable(&id);
        crate::volume::remove_volumes_made_for(inner, &id);
        let _ = fs::remove_dir_all(inner.containers.paths(&id).dir);
    }
    let handle = tokio::runtime::Handle::try_current().ok();
    for record in inner.containers.list() {
        let Some(state) = settle_dead_monitor(inner, &record.id) else { continue };
        if !state.is_live() && state.monitor_pid == 0 {
            // Networks (issue 8): what a container that ended while no daemon ran still holds.
            crate::network::endpoint::release(inner, &record.id);
        }
        if state.monitor_pid != 0 {
            let _ = engine.ensure_watcher(&record.id);
        } else if restarts_after_dead_monitor(inner, &record.id, &state) {
            // Its monitor is gone (a reboot, a killed monitor) while it ran: as Docker does at
            // start for these policies, run it again.
            if let Some(handle) = &handle {
                let engine = engine.clone();
                handle.spawn(async move {
                    if let Err(e) = engine.start_container(&record.id).await {
                        tracing::warn!(container = %record.id, error = %e, "restarting after recovery failed");
                    }
                });
            }
        } else if record.config.auto_remove && !state.is_live() {
            // A `--rm` container that is not running goes, as Docker's daemon removes them at
            // start: one that finished while no daemon ran, one whose deferred removal a crash
            // interrupted, or one whose files (not fsynced) a power cut left behind.
            if let Some(handle) = &handle {
                let engine = engine.clone();
                handle.spawn(async move { remove_auto_removed(&engine, record, false).await });
            }
        } else if !state.is_live() && state.status != ContainerStatus::Created {
            // Stopped while no daemon ran (or before stopped containers were unmounted).
            if let Some(handle) = &handle {
                let engine = engine.clone();
                handle.spawn(async move { unmount_stopped(&engine, &record.id).await });
            }
        }
    }
}
