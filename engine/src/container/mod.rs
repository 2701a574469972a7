//! Containers: records under `<root>/containers/<id>/`, names, and the lifecycle the API drives
//! (create, start, stop, kill, restart, pause, unpause, remove, wait, inspect, list, top, stats,
//! rename, prune, logs, attach, exec), plus the engine's event stream.
//!
//! Each started container has a monitor process (see [`crate::monitor`]) that owns its stdio,
//! writes its log and state, and applies its restart policy; the daemon talks to it over a unix
//! socket under the run directory and reads the state file it keeps, so containers keep running
//! (and stay visible) across a restart of the daemon.
//!
//! The [`Engine`]'s container methods live by concern: `create`, `control` (start, stop, kill,
//! restart, pause, rename, remove, exec, and spawning the monitor), `follow` (wait, logs,
//! attach, events, following the monitors), `recover` (what a gone monitor leaves, and the
//! engine's open), `view` (list, inspect, top, stats), `archive` (a path as a tar and a tar
//! into a path, for cp; export), `changes` (diff), `commit` (a container to an image) and
//! `update` (limits and restart policy of an existing container).

pub mod archive;
mod changes;
mod client;
pub mod commit;
mod control;
mod create;
pub mod events;
mod follow;
mod logs;
mod names;
pub(crate) mod recover;
pub mod session;
pub mod store;
mod top;
mod update;
mod view;

use std::pin::Pin;

use berth_types::LogEntry;
use chrono::{DateTime, Utc};
use futures_util::Stream;

use crate::error::{Error, Result};
use crate::runtime::{self, RuntimeConfig};
use crate::{Engine, EngineInner};

pub use events::{ContainerAction, ContainerEvent, EngineEvent, ImageAction, ImageEvent};
pub use session::{OutputStream, ProcessSession, SessionInput, SessionOutput};
pub use store::{ContainerPaths, ContainerRecord, ContainerStore};

/// What `logs` returns: entries in order; with `follow`, it ends when the container stops.
pub type LogStream = Pin<Box<dyn Stream<Item = Result<LogEntry>> + Send>>;

/// `berth logs` options. Timestamps are not an option here: every [`LogEntry`] carries its time
/// and the caller decides whether to show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOptions {
    /// Keep streaming new entries until the container stops.
    pub follow: bool,
    /// Only the last N entries of what is already written (`--tail N`); `None` is all.
    pub tail: Option<usize>,
    /// Only entries at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only entries before this time.
    pub until: Option<DateTime<Utc>>,
    /// Include the stdout stream (tty output counts as stdout).
    pub stdout: bool,
    /// Include the stderr stream.
    pub stderr: bool,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions { follow: false, tail: None, since: None, until: None, stdout: true, stderr: true }
    }
}

/// `berth wait --condition`, as Docker names them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WaitCondition {
    /// Returns at once if the container is not running (created or exited), else at its exit.
    #[default]
    NotRunning,
    /// Waits for the next exit, even if the container is not running now.
    NextExit,
    /// Waits until the container is removed.
    Removed,
}

impl std::str::FromStr for WaitCondition {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "not-running" | "" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            other => Err(crate::Error::InvalidInput(format!(
                "invalid condition: {other:?} (choose not-running, next-exit or removed)"
            ))),
        }
    }
}

impl Engine {
    fn paths(&self, id: &str) -> ContainerPaths {
        self.inner.containers.paths(id)
    }

    fn emit(&self, record: &ContainerRecord, action: ContainerAction) {
        emit(&self.inner, record, action);
    }

    async fn socket_alive(&self, id: &str) -> bool {
        client::connect(&self.paths(id).socket).await.is_some()
    }
}

/// Sends a container event to the engine's subscribers (none is fine).
fn emit(inner: &EngineInner, record: &ContainerRecord, action: ContainerAction) {
    let event = ContainerEvent {
        id: record.id.clone(),
        name: record.name.clone(),
        image: record.image.clone(),
        action,
        time: Utc::now(),
    };
    // No subscriber is fine.
    let _ = inner.containers.events.send(EngineEvent::Container(event));
}

/// Mounts the container's root filesystem unless it is (after a reboot it is not).
pub(super) fn ensure_mounted(inner: &EngineInner, id: &str) -> Result<()> {
    let rootfs = inner.containers.paths(id).rootfs;
    match inner.snapshots.mount_writable(id, &rootfs) {
        Ok(()) | Err(Error::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

pub(super) fn runtime_of(inner: &EngineInner, record: &ContainerRecord) -> Result<Box<dyn runtime::Runtime>> {
    runtime::new_runtime(record.runtime.parse()?, &runtime_config(inner))
}

pub(super) fn runtime_config(inner: &EngineInner) -> RuntimeConfig {
    RuntimeConfig { state_root: inner.config.run_dir.join("runtime") }
}
