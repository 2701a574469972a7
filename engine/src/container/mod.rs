//! Containers: records under `<root>/containers/<id>/`, names, and the lifecycle the API drives
//! (create, start, stop, kill, restart, pause, unpause, remove, wait, inspect, list, top, stats,
//! rename, prune, logs, attach, exec), plus the engine's event stream.
//!
//! Each started container has a monitor process (see [`crate::monitor`]) that owns its stdio,
//! writes its log and state, and applies its restart policy; the daemon talks to it over a unix
//! socket under the run directory and reads the state file it keeps, so containers keep running
//! (and stay visible) across a restart of the daemon.

pub mod events;
pub mod session;

use std::pin::Pin;

use berth_types::{
    ContainerConfig, ContainerInspect, ContainerPruneReport, ContainerStats, ContainerSummary,
    CreatedContainer, ExecConfig, LogEntry, TopReport, WaitResult,
};
use chrono::{DateTime, Utc};
use futures_util::Stream;

use crate::error::Result;
use crate::Engine;

pub use events::{ContainerAction, ContainerEvent, EngineEvent};
pub use session::{OutputStream, ProcessSession, SessionInput, SessionOutput};

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
    /// `berth create`: resolves the image, checks the name, creates the writable layer and the
    /// OCI bundle. Nothing is left behind when it fails.
    pub async fn create_container(&self, config: ContainerConfig) -> Result<CreatedContainer> {
        let _ = config;
        todo!("create_container")
    }

    /// Starts a created or exited container (a no-op for a running one, as Docker). Fails with
    /// the runtime's error (e.g. exit code 127, `exec: "nope": executable file not found in
    /// $PATH`) when the process cannot be started.
    pub async fn start_container(&self, name: &str) -> Result<()> {
        let _ = name;
        todo!("start_container")
    }

    /// Sends the stop signal (config > image STOPSIGNAL > SIGTERM), then SIGKILL after `timeout`
    /// seconds (config's stop timeout, else 10). Disables the restart policy until the next start.
    pub async fn stop_container(&self, name: &str, timeout: Option<u32>) -> Result<()> {
        let _ = (name, timeout);
        todo!("stop_container")
    }

    /// Sends `signal` (a name like `KILL`/`SIGKILL` or a number; SIGKILL when `None`).
    pub async fn kill_container(&self, name: &str, signal: Option<String>) -> Result<()> {
        let _ = (name, signal);
        todo!("kill_container")
    }

    /// Stops (with `timeout`, as [`Engine::stop_container`]) and starts again.
    pub async fn restart_container(&self, name: &str, timeout: Option<u32>) -> Result<()> {
        let _ = (name, timeout);
        todo!("restart_container")
    }

    /// Freezes every process of a running container.
    pub async fn pause_container(&self, name: &str) -> Result<()> {
        let _ = name;
        todo!("pause_container")
    }

    /// Thaws a paused container.
    pub async fn unpause_container(&self, name: &str) -> Result<()> {
        let _ = name;
        todo!("unpause_container")
    }

    /// `berth rm`: refused for a running or paused container unless `force` (which kills it).
    /// Removes the writable layer, bundle, log and record.
    pub async fn remove_container(&self, name: &str, force: bool) -> Result<()> {
        let _ = (name, force);
        todo!("remove_container")
    }

    /// Waits for `condition`; the result carries the exit code of the last run.
    pub async fn wait_container(&self, name: &str, condition: WaitCondition) -> Result<WaitResult> {
        let _ = (name, condition);
        todo!("wait_container")
    }

    /// `berth inspect CONTAINER`.
    pub async fn inspect_container(&self, name: &str) -> Result<ContainerInspect> {
        let _ = name;
        todo!("inspect_container")
    }

    /// `berth ps`: running containers (all with `all`), newest first. Filters are the caller's.
    pub async fn list_containers(&self, all: bool) -> Result<Vec<ContainerSummary>> {
        let _ = all;
        todo!("list_containers")
    }

    /// `berth top`: the container's processes as `ps -ef` shows them.
    pub async fn top_container(&self, name: &str) -> Result<TopReport> {
        let _ = name;
        todo!("top_container")
    }

    /// One stats sample; `cpu_percent` is computed against the previous sample of the same
    /// container taken through this engine (0 for the first one).
    pub async fn container_stats(&self, name: &str) -> Result<ContainerStats> {
        let _ = name;
        todo!("container_stats")
    }

    /// Renames a container; the new name must be valid and unused.
    pub async fn rename_container(&self, name: &str, new_name: &str) -> Result<()> {
        let _ = (name, new_name);
        todo!("rename_container")
    }

    /// Removes every stopped (created, exited or dead) container.
    pub async fn prune_containers(&self) -> Result<ContainerPruneReport> {
        todo!("prune_containers")
    }

    /// The container's log as a stream of entries (see [`LogOptions`]).
    pub async fn container_logs(&self, name: &str, options: LogOptions) -> Result<LogStream> {
        let _ = (name, options);
        todo!("container_logs")
    }

    /// Attaches to the container's stdio through its monitor. Attach before
    /// [`Engine::start_container`] to see all of a new run's output (as `run -it` and `start -a`
    /// do); the session's exit resolves when the container's process exits.
    pub async fn attach_container(&self, name: &str) -> Result<ProcessSession> {
        let _ = name;
        todo!("attach_container")
    }

    /// Runs another process in a running container. The daemon owns exec processes (through a
    /// small helper process it starts): they end when the daemon does, as Docker's do.
    pub async fn exec_container(&self, name: &str, config: ExecConfig) -> Result<ProcessSession> {
        let _ = (name, config);
        todo!("exec_container")
    }

    /// Engine events (container create/start/die/oom/restart/stop/kill/pause/unpause/destroy/
    /// rename) from now on. A receiver that falls behind gets `RecvError::Lagged`.
    pub fn subscribe_events(&self) -> tokio::sync::broadcast::Receiver<EngineEvent> {
        todo!("subscribe_events")
    }
}
