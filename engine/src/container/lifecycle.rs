//! The container API of [`Engine`]: create, start, stop, ..., and the daemon's side of the
//! monitors (spawning them, following their state, recovering them after a restart).

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::str::FromStr;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use berth_types::container::{
    ContainerConfig, ContainerInspect, ContainerPruneReport, ContainerState, ContainerStats, ContainerStatus,
    ContainerSummary, CreatedContainer, ExecConfig, RestartPolicy, TopReport, WaitResult,
};
use berth_types::health::HealthStatus;
use chrono::{SecondsFormat, Utc};
use nix::sys::signal::Signal;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::events::{ContainerAction, ContainerEvent, EngineEvent};
use super::session::ProcessSession;
use super::store::{read_state_file, validate_name, ContainerRecord, Seen};
use super::{client, logs, top, LogOptions, LogStream, WaitCondition};
use crate::error::{Error, IoContext, Result};
use crate::monitor::protocol::{MonitorConfig, Request, RunState};
use crate::monitor::zygote;
use crate::runtime::{self, RuntimeConfig, RuntimeKind};
use crate::{fsutil, Engine, EngineInner};

/// Docker's default seconds between the stop signal and SIGKILL.
const DEFAULT_STOP_TIMEOUT: u32 = 10;
/// How long a SIGKILLed container may take to be reported gone.
const KILL_WAIT: Duration = Duration::from_secs(30);
/// How long a monitor may take to answer a watch with its state.
const WATCH_ANSWER: Duration = Duration::from_secs(5);
/// How often a waiter re-reads the state file when no task follows the container's monitor.
const STATE_POLL: Duration = Duration::from_millis(200);

impl Engine {
    /// `berth create`: resolves the image, checks the name, creates the writable layer and the
    /// OCI bundle. Nothing is left behind when it fails.
    pub async fn create_container(&self, config: ContainerConfig) -> Result<CreatedContainer> {
        let begun = Instant::now();
        let record = self.blocking(move |inner| create(inner, config)).await?;
        tracing::debug!(container = %record.id, elapsed_us = begun.elapsed().as_micros() as u64, "created");
        self.emit(&record, ContainerAction::Create);
        Ok(CreatedContainer { id: record.id, warnings: Vec::new() })
    }

    /// Starts a created or exited container (a no-op for a running one, as Docker). Fails with
    /// the runtime's error (e.g. exit code 127, `exec: "nope": executable file not found in
    /// $PATH`) when the process cannot be started.
    pub async fn start_container(&self, name: &str) -> Result<()> {
        let record = self.inner.containers.resolve(name)?;
        let lock = self.inner.containers.op_lock(&record.id);
        let _guard = lock.lock().await;
        let state = self.inner.containers.read_state(&record.id);
        match state.status {
            ContainerStatus::Paused => {
                return Err(Error::Conflict("cannot start a paused container, try unpause instead".into()))
            }
            ContainerStatus::Running | ContainerStatus::Restarting
                if client::connect(&self.paths(&record.id).socket).await.is_some() =>
            {
                return Ok(())
            }
            _ => {}
        }
        let begun = Instant::now();
        let id = record.id.clone();
        self.blocking(move |inner| ensure_mounted(inner, &id)).await?;
        let mounted = begun.elapsed();
        // Networks (issue 8): namespace, veth pairs, addresses and ports before the process.
        let net_record = record.clone();
        self.blocking(move |inner| crate::network::endpoint::setup(inner, &net_record)).await?;
        let networked = begun.elapsed();
        // A monitor that is just finishing may close before it reads the request: once more
        // with a new one.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let socket = self.ensure_monitor(&record).await?;
            match client::request(&socket, &Request::Start).await {
                Ok(_) => break,
                Err(Error::Runtime(m)) if attempts < 20 && m.contains("monitor is not running") => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        // `RUST_LOG=berth_engine=debug`: where a start's time goes.
        tracing::debug!(
            container = %record.id,
            mount_us = mounted.as_micros() as u64,
            network_us = (networked - mounted).as_micros() as u64,
            monitor_and_runtime_us = (begun.elapsed() - networked).as_micros() as u64,
            "started"
        );
        self.emit(&record, ContainerAction::Start);
        Ok(())
    }

    /// Sends the stop signal (config > image STOPSIGNAL > SIGTERM), then SIGKILL after `timeout`
    /// seconds (config's stop timeout, else 10). Disables the restart policy until the next start.
    pub async fn stop_container(&self, name: &str, timeout: Option<u32>) -> Result<()> {
        let record = self.inner.containers.resolve(name)?;
        let lock = self.inner.containers.op_lock(&record.id);
        let _guard = lock.lock().await;
        self.stop_locked(&record, timeout).await
    }

    async fn stop_locked(&self, record: &ContainerRecord, timeout: Option<u32>) -> Result<()> {
        let state = self.inner.containers.read_state(&record.id);
        if !state.is_live() {
            return Ok(());
        }
        let socket = self.paths(&record.id).socket;
        let timeout = Duration::from_secs(timeout.unwrap_or(record.stop_timeout).into());
        let signal = if state.status == ContainerStatus::Restarting { 0 } else { record.stop_signal };
        match client::request(&socket, &Request::Kill { signal, stop: true }).await {
            // Not running any more, or a monitor that is finishing: the state tells.
            Ok(_) | Err(Error::Conflict(_)) | Err(Error::Runtime(_)) => {}
            Err(e) => return Err(e),
        }
        if signal != 0 {
            self.emit(record, ContainerAction::Kill { signal: signal.to_string() });
        }
        if self.wait_until(&record.id, Some(timeout), |s| !is_live(s)).await.is_none() {
            match client::request(&socket, &Request::Kill { signal: libc::SIGKILL, stop: true }).await {
                Ok(_) | Err(Error::Conflict(_)) | Err(Error::Runtime(_)) => {}
                Err(e) => return Err(e),
            }
            self.emit(record, ContainerAction::Kill { signal: libc::SIGKILL.to_string() });
            if self.wait_until(&record.id, Some(KILL_WAIT), |s| !is_live(s)).await.is_none() {
                return Err(Error::Runtime(format!("container {} did not exit after SIGKILL", record.id)));
            }
        }
        self.release_network(&record.id).await;
        self.emit(record, ContainerAction::Stop);
        Ok(())
    }

    /// Sends `signal` (a name like `KILL`/`SIGKILL` or a number; SIGKILL when `None`). The
    /// restart policy does not apply to the exit it causes, as for Docker.
    pub async fn kill_container(&self, name: &str, signal: Option<String>) -> Result<()> {
        let signal = parse_signal(signal.as_deref().unwrap_or("KILL"))?;
        let record = self.inner.containers.resolve(name)?;
        let state = self.inner.containers.read_state(&record.id);
        if !matches!(state.status, ContainerStatus::Running | ContainerStatus::Paused) {
            return Err(Error::Conflict(format!("Container {} is not running", record.id)));
        }
        client::request(&self.paths(&record.id).socket, &Request::Kill { signal, stop: true }).await?;
        self.emit(&record, ContainerAction::Kill { signal: signal.to_string() });
        Ok(())
    }

    /// Stops (with `timeout`, as [`Engine::stop_container`]) and starts again.
    pub async fn restart_container(&self, name: &str, timeout: Option<u32>) -> Result<()> {
        let record = self.inner.containers.resolve(name)?;
        {
            let lock = self.inner.containers.op_lock(&record.id);
            let _guard = lock.lock().await;
            self.stop_locked(&record, timeout).await?;
        }
        self.start_container(&record.id).await?;
        self.emit(&record, ContainerAction::Restart);
        Ok(())
    }

    /// Freezes every process of a running container.
    pub async fn pause_container(&self, name: &str) -> Result<()> {
        let record = self.inner.containers.resolve(name)?;
        self.live_request(&record, Request::Pause).await?;
        self.emit(&record, ContainerAction::Pause);
        Ok(())
    }

    /// Thaws a paused container.
    pub async fn unpause_container(&self, name: &str) -> Result<()> {
        let record = self.inner.containers.resolve(name)?;
        self.live_request(&record, Request::Resume).await?;
        self.emit(&record, ContainerAction::Unpause);
        Ok(())
    }

    /// A request to the monitor of a container that must be live ("is not running" otherwise).
    async fn live_request(&self, record: &ContainerRecord, request: Request) -> Result<i32> {
        let state = self.inner.containers.read_state(&record.id);
        if !state.is_live() {
            return Err(Error::Conflict(format!("Container {} is not running", record.id)));
        }
        client::request(&self.paths(&record.id).socket, &request).await
    }

    /// `berth rm`: refused for a running or paused container unless `force` (which kills it).
    /// Removes the writable layer, bundle, log and record.
    pub async fn remove_container(&self, name: &str, force: bool) -> Result<()> {
        let record = self.inner.containers.resolve(name)?;
        let lock = self.inner.containers.op_lock(&record.id);
        let _guard = lock.lock().await;
        self.remove_locked(&record, force, false).await
    }

    /// `berth rm -v`: [`Engine::remove_container`], then the container's anonymous volumes
    /// (named volumes stay, as Docker's).
    pub async fn remove_container_with_volumes(&self, name: &str, force: bool) -> Result<()> {
        let record = self.inner.containers.resolve(name)?;
        let lock = self.inner.containers.op_lock(&record.id);
        let _guard = lock.lock().await;
        self.remove_locked(&record, force, false).await?;
        self.remove_anonymous_volumes(record).await;
        Ok(())
    }

    /// Removes a container under its operation lock. With `deferred` (`--rm`), the container is
    /// gone for the API at once and its files (layer, bundle, logs, cgroups) are removed by a
    /// task afterwards, off the path of `run --rm`: deleting them takes milliseconds per file
    /// here. A crash before that task finishes leaves a `--rm` container that is not running,
    /// which `recover` removes.
    async fn remove_locked(&self, record: &ContainerRecord, force: bool, deferred: bool) -> Result<()> {
        let id = record.id.clone();
        let state = self.inner.containers.read_state(&id);
        let socket = self.paths(&id).socket;
        if state.is_live() {
            if !force {
                return Err(Error::Conflict(if state.status == ContainerStatus::Paused {
                    format!(
                        "You cannot remove a paused container {id}. Unpause and then stop the container \
                         before attempting removal or force remove"
                    )
                } else {
                    format!(
                        "You cannot remove a running container {id}. Stop the container before attempting \
                         removal or force remove"
                    )
                }));
            }
            match client::request(&socket, &Request::Kill { signal: libc::SIGKILL, stop: true }).await {
                Ok(_) | Err(Error::Conflict(_)) => {}
                // A monitor that is gone leaves nothing to kill here; delete below cleans up.
                Err(Error::Runtime(_)) => {}
                Err(e) => return Err(e),
            }
            if self.wait_until(&id, Some(KILL_WAIT), |s| !is_live(s)).await.is_none() {
                return Err(Error::Runtime(format!("container {id} did not exit after SIGKILL")));
            }
        }
        // A monitor that waits for a start (after an attach to a created container) goes too.
        if client::connect(&socket).await.is_some() {
            let _ = client::request(&socket, &Request::Shutdown).await;
            let deadline = Instant::now() + Duration::from_secs(5);
            while client::connect(&socket).await.is_some() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        self.release_network(&id).await;
        let record2 = record.clone();
        if deferred {
            let engine = self.clone();
            tokio::spawn(async move {
                let id = record2.id.clone();
                if let Err(e) = engine.blocking(move |inner| remove_files(inner, &record2)).await {
                    tracing::warn!(container = %id, error = %e, "removing the container's files failed");
                }
            });
        } else {
            self.blocking(move |inner| remove_files(inner, &record2)).await?;
        }
        self.inner.containers.forget(&id);
        if let Some(sender) =
            self.inner.containers.states.lock().unwrap_or_else(|p| p.into_inner()).remove(&id)
        {
            sender.send_modify(|seen| seen.removed = true);
        }
        self.emit(record, ContainerAction::Destroy);
        Ok(())
    }

    /// Waits for `condition`; the result carries the exit code of the last run.
    pub async fn wait_container(&self, name: &str, condition: WaitCondition) -> Result<WaitResult> {
        let record = self.inner.containers.resolve(name)?;
        let id = record.id;
        let current = self.inner.containers.read_state(&id);
        if self.socket_alive(&id).await {
            let _ = self.ensure_watcher(&id);
        }
        let last = match condition {
            WaitCondition::NotRunning => self.wait_until(&id, None, |s| !is_live(s)).await,
            WaitCondition::NextExit => {
                let before = current.finished_at;
                self.wait_until(&id, None, move |s| {
                    s.removed || (s.state.finished_at != before && !s.state.is_live())
                })
                .await
            }
            WaitCondition::Removed => self.wait_until(&id, None, |s| s.removed).await,
        };
        let state = last.map(|seen| seen.state).unwrap_or(current);
        Ok(WaitResult { status_code: state.exit_code })
    }

    /// `berth inspect CONTAINER`.
    pub async fn inspect_container(&self, name: &str) -> Result<ContainerInspect> {
        let record = self.inner.containers.resolve(name)?;
        let state = self.inner.containers.read_state(&record.id);
        let paths = self.paths(&record.id);
        Ok(ContainerInspect {
            id: record.id.clone(),
            name: format!("/{}", record.name),
            created: rfc3339(record.created),
            image: record.image.clone(),
            image_id: record.image_id.clone(),
            path: record.path.clone(),
            args: record.args.clone(),
            restart_count: state.restart_count,
            state: wire_state(&state),
            config: record.config.clone(),
            runtime: record.runtime.clone(),
            snapshotter: record.snapshotter.clone(),
            log_path: paths.log.display().to_string(),
            // Filled by the network and volume code as those land (issue 8).
            network_settings: crate::network::endpoint::settings(&self.inner, &record.id),
            mounts: crate::volume::mounts::mount_points(&self.inner, &record.config.mounts),
        })
    }

    /// `berth ps`: running containers (all with `all`), newest first. Filters are the caller's.
    pub async fn list_containers(&self, all: bool) -> Result<Vec<ContainerSummary>> {
        let mut records = self.inner.containers.list();
        records.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        let now = Utc::now();
        let network_names = crate::network::endpoint::network_names(&self.inner);
        let mut rows = Vec::new();
        for record in records {
            let state = self.inner.containers.read_state(&record.id);
            if !all && !state.is_live() {
                continue;
            }
            let (ports, networks) =
                crate::network::endpoint::summary(&self.inner, &record.id, &network_names);
            let command = command_line(&record.path, &record.args);
            rows.push(ContainerSummary {
                status: human_status(&state, now),
                id: record.id,
                name: record.name,
                image: record.image,
                image_id: record.image_id,
                command,
                created: rfc3339(record.created),
                state: wire_state(&state),
                labels: record.config.labels,
                ports,
                networks,
            });
        }
        Ok(rows)
    }

    /// `berth top`: the container's processes as `ps -ef` shows them.
    pub async fn top_container(&self, name: &str) -> Result<TopReport> {
        let record = self.inner.containers.resolve(name)?;
        let state = self.inner.containers.read_state(&record.id);
        if !matches!(state.status, ContainerStatus::Running | ContainerStatus::Paused) {
            return Err(Error::Conflict(format!("Container {} is not running", record.id)));
        }
        self.blocking(move |inner| {
            let pids = runtime_of(inner, &record)?.pids(&record.id)?;
            Ok(top::report(&pids))
        })
        .await
    }

    /// One stats sample; `cpu_percent` is computed against the previous sample of the same
    /// container taken through this engine (0 for the first one).
    pub async fn container_stats(&self, name: &str) -> Result<ContainerStats> {
        let record = self.inner.containers.resolve(name)?;
        let state = self.inner.containers.read_state(&record.id);
        let id = record.id.clone();
        let live = matches!(state.status, ContainerStatus::Running | ContainerStatus::Paused);
        let sample = if live {
            let record = record.clone();
            self.blocking(move |inner| runtime_of(inner, &record)?.stats(&record.id)).await?
        } else {
            // Docker shows zeros for a container that does not run.
            Default::default()
        };
        let now = Instant::now();
        let previous = self
            .inner
            .containers
            .cpu_samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), (sample.cpu_usage_ns, now));
        let cpu_percent = match previous {
            Some((cpu, at)) if live && sample.cpu_usage_ns >= cpu => {
                let wall = now.duration_since(at).as_nanos() as f64;
                if wall > 0.0 {
                    (sample.cpu_usage_ns - cpu) as f64 / wall * 100.0
                } else {
                    0.0
                }
            }
            _ => 0.0,
        };
        Ok(ContainerStats {
            id,
            name: record.name,
            read: rfc3339(Utc::now()),
            cpu_percent,
            cpu_usage_ns: sample.cpu_usage_ns,
            memory_usage: sample.memory_usage,
            memory_limit: sample.memory_limit.unwrap_or_else(host_memory),
            pids: sample.pids,
        })
    }

    /// Renames a container; the new name must be valid and unused.
    pub async fn rename_container(&self, name: &str, new_name: &str) -> Result<()> {
        let new_name = validate_name(new_name)?;
        let record = self.inner.containers.resolve(name)?;
        let old_name = self.inner.containers.rename(&record.id, &new_name)?;
        let mut renamed = record;
        renamed.name = new_name;
        self.emit(&renamed, ContainerAction::Rename { old_name });
        Ok(())
    }

    /// Removes every stopped (created, exited or dead) container.
    pub async fn prune_containers(&self) -> Result<ContainerPruneReport> {
        let mut report = ContainerPruneReport::default();
        for record in self.inner.containers.list() {
            let lock = self.inner.containers.op_lock(&record.id);
            let _guard = lock.lock().await;
            if self.inner.containers.read_state(&record.id).is_live() {
                continue;
            }
            let id = record.id.clone();
            let size = self
                .blocking(move |inner| {
                    Ok(inner
                        .snapshots
                        .writable_changes_path(&id)
                        .map(|p| fsutil::disk_usage(&p))
                        .unwrap_or(0))
                })
                .await?;
            self.remove_locked(&record, false, false).await?;
            report.containers_deleted.push(record.id);
            report.space_reclaimed += size;
        }
        Ok(report)
    }

    /// The container's log as a stream of entries (see [`LogOptions`]).
    pub async fn container_logs(&self, name: &str, options: LogOptions) -> Result<LogStream> {
        let record = self.inner.containers.resolve(name)?;
        let path = self.paths(&record.id).log;
        let (path2, options2) = (path.clone(), options.clone());
        let (entries, offset) = tokio::task::spawn_blocking(move || logs::read_existing(&path2, &options2))
            .await
            .expect("log task")?;
        let (tx, rx) = mpsc::channel(256);
        let follow = options.follow && self.inner.containers.read_state(&record.id).is_live();
        let state_path = self.paths(&record.id).state;
        tokio::spawn(async move {
            for entry in entries {
                if tx.send(Ok(entry)).await.is_err() {
                    return;
                }
            }
            if follow {
                logs::follow(path, offset, options, tx, move || read_state_file(&state_path).is_live()).await;
            }
        });
        Ok(Box::pin(tokio_stream_from(rx)))
    }

    /// Attaches to the container's stdio through its monitor. Attach before
    /// [`Engine::start_container`] to see all of a new run's output (as `run -it` and `start -a`
    /// do); the session's exit resolves when the container's process exits.
    pub async fn attach_container(&self, name: &str) -> Result<ProcessSession> {
        let record = self.inner.containers.resolve(name)?;
        let lock = self.inner.containers.op_lock(&record.id);
        let _guard = lock.lock().await;
        let id = record.id.clone();
        self.blocking(move |inner| ensure_mounted(inner, &id)).await?;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let socket = self.ensure_monitor(&record).await?;
            let request = Request::Attach { stdin: true };
            match client::session(&socket, &request, record.id.clone(), record.config.tty).await {
                // A monitor that was just finishing: a new one serves the next run.
                Err(Error::Runtime(m)) if attempts < 20 && m.contains("monitor is not running") => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                result => return result,
            }
        }
    }

    /// Runs another process in a running container. The container's monitor starts and owns
    /// exec'd processes (they outlive a restart of the daemon, but their output then has no
    /// reader); the session ends when the process exits.
    pub async fn exec_container(&self, name: &str, config: ExecConfig) -> Result<ProcessSession> {
        let record = self.inner.containers.resolve(name)?;
        let state = self.inner.containers.read_state(&record.id);
        match state.status {
            ContainerStatus::Running => {}
            ContainerStatus::Paused => {
                return Err(Error::Conflict(format!(
                    "Container {} is paused, unpause the container before exec",
                    record.id
                )))
            }
            _ => return Err(Error::Conflict(format!("Container {} is not running", record.id))),
        }
        let paths = self.paths(&record.id);
        let (dir, rootfs) = (paths.dir.clone(), paths.rootfs.clone());
        let (tty, open_stdin) = (config.tty, config.open_stdin);
        let process = tokio::task::spawn_blocking(move || {
            let spec = runtime::read_bundle(&dir)?;
            runtime::build_exec_process(&spec, &rootfs, &config)
        })
        .await
        .expect("exec spec task")?;
        let exec_id = hex::encode(rand::random::<[u8; 32]>());
        let request = Request::Exec { process: Box::new(process), tty, open_stdin };
        client::session(&paths.socket, &request, exec_id, tty).await
    }

    /// Engine events (container create/start/die/oom/restart/stop/kill/pause/unpause/destroy/
    /// rename) from now on. A receiver that falls behind gets `RecvError::Lagged`.
    pub fn subscribe_events(&self) -> broadcast::Receiver<EngineEvent> {
        self.inner.containers.events.subscribe()
    }

    fn paths(&self, id: &str) -> super::ContainerPaths {
        self.inner.containers.paths(id)
    }

    fn emit(&self, record: &ContainerRecord, action: ContainerAction) {
        emit(&self.inner, record, action);
    }

    async fn socket_alive(&self, id: &str) -> bool {
        client::connect(&self.paths(id).socket).await.is_some()
    }

    /// The socket of the container's monitor, starting a monitor (waiting for a start) if none
    /// runs. The caller holds the container's operation lock.
    async fn ensure_monitor(&self, record: &ContainerRecord) -> Result<PathBuf> {
        let socket = self.paths(&record.id).socket;
        if client::connect(&socket).await.is_none() {
            // Seed the state before the monitor changes it, so the watcher sees the transitions.
            let _ = self.subscribe_state(&record.id);
            let record = record.clone();
            let begun = Instant::now();
            let id = record.id.clone();
            self.blocking(move |inner| spawn_monitor(inner, &record)).await?;
            tracing::debug!(container = %id, elapsed_us = begun.elapsed().as_micros() as u64, "monitor ready");
        }
        if let Some(following) = self.ensure_watcher(&record.id) {
            // Follow the monitor before asking it for anything: a container that exits and
            // restarts quickly must not change state before the watch sees it (events).
            let _ = tokio::time::timeout(WATCH_ANSWER, following).await;
        }
        Ok(socket)
    }

    /// Starts a task that follows the monitor's state (events, waiters, `--rm`), unless one
    /// runs. Needs a tokio runtime; without one there is nothing to follow with. A new task
    /// comes with a receiver that completes once it has the monitor's first answer.
    pub(crate) fn ensure_watcher(&self, id: &str) -> Option<oneshot::Receiver<()>> {
        let handle = tokio::runtime::Handle::try_current().ok()?;
        let store = &self.inner.containers;
        if !store.watchers.lock().unwrap_or_else(|p| p.into_inner()).insert(id.to_string()) {
            return None;
        }
        let (following_tx, following) = oneshot::channel();
        let weak = Arc::downgrade(&self.inner);
        let cancel = store.cancel.clone();
        let id = id.to_string();
        let socket = store.paths(&id).socket;
        handle.spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = follow_monitor(weak.clone(), id.clone(), socket, following_tx) => {}
            }
            if let Some(inner) = weak.upgrade() {
                inner.containers.watchers.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            }
        });
        Some(following)
    }

    /// A receiver of the container's run state.
    fn subscribe_state(&self, id: &str) -> watch::Receiver<Seen> {
        let store = &self.inner.containers;
        let mut states = store.states.lock().unwrap_or_else(|p| p.into_inner());
        states
            .entry(id.to_string())
            .or_insert_with(|| watch::channel(Seen { state: store.read_state(id), removed: false }).0)
            .subscribe()
    }

    /// Waits until `done` holds for what was seen of the container, at most `timeout`. Returns
    /// what satisfied it, or `None` on timeout.
    async fn wait_until(
        &self,
        id: &str,
        timeout: Option<Duration>,
        done: impl Fn(&Seen) -> bool,
    ) -> Option<Seen> {
        let mut rx = self.subscribe_state(id);
        // The state file may be ahead of the watch: start from it.
        if self.inner.containers.get(id).is_some() {
            observe(&self.inner, id, self.inner.containers.read_state(id));
        }
        let wait = async {
            loop {
                let current = rx.borrow_and_update().clone();
                if done(&current) {
                    return current;
                }
                tokio::select! {
                    changed = rx.changed() => {
                        if changed.is_err() {
                            // The sender went with the container.
                            let last = rx.borrow().clone();
                            return Seen { state: last.state, removed: true };
                        }
                    }
                    _ = tokio::time::sleep(STATE_POLL) => {
                        // No task follows the monitor (it was never seen, or it is gone):
                        // the state file is the truth.
                        let followed = self.inner.containers.watchers.lock()
                            .unwrap_or_else(|p| p.into_inner()).contains(id);
                        if !followed {
                            if self.inner.containers.get(id).is_none() {
                                return Seen { state: current.state, removed: true };
                            }
                            let state = self.inner.containers.read_state(id);
                            observe(&self.inner, id, state);
                        }
                    }
                }
            }
        };
        match timeout {
            Some(t) => tokio::time::timeout(t, wait).await.ok(),
            None => Some(wait.await),
        }
    }
}

/// Creates the container's files; removes what it made when a step fails.
fn create(inner: &EngineInner, mut config: ContainerConfig) -> Result<ContainerRecord> {
    let store = &inner.containers;
    let name = match config.name.as_deref().filter(|n| !n.is_empty()) {
        Some(n) => {
            let n = validate_name(n)?;
            store.check_name_free(&n)?;
            n
        }
        None => store.generate_name(),
    };
    if config.image.is_empty() {
        return Err(Error::InvalidInput("no image given".into()));
    }
    let kind = RuntimeKind::from_str(config.runtime.as_deref().unwrap_or(""))?;
    let image = inner.images.resolve(&config.image)?;
    let content = crate::image::read_image(inner, &image)?;
    let image_config = content.config.config().clone().unwrap_or_default();
    // HEALTHCHECK is not in oci-spec's image config: read from the config JSON (issue 8).
    let image_health = crate::monitor::health::image_healthcheck(&inner.content.read(&image.id)?)?;
    config.healthcheck = crate::monitor::health::merge(image_health, config.healthcheck.take())?;
    let stop_signal = match config.stop_signal.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => parse_signal(s)?,
        None => match image_config.stop_signal().as_deref().filter(|s| !s.is_empty()) {
            Some(s) => parse_signal(s)?,
            None => libc::SIGTERM,
        },
    };
    if let RestartPolicy::OnFailure { .. } | RestartPolicy::Always | RestartPolicy::UnlessStopped =
        config.restart_policy
    {
        if config.auto_remove {
            return Err(Error::InvalidInput(
                "conflicting options: cannot specify both --restart and --rm".into(),
            ));
        }
    }

    let id = hex::encode(rand::random::<[u8; 32]>());
    let paths = store.paths(&id);
    // Layers must not be collected between here and the record that references them.
    let _gc = inner.gc_lock.read().unwrap_or_else(|p| p.into_inner());
    // A `--rm` container's files are not fsynced: it is removed after a crash anyway (see
    // `recover`, as Docker's daemon removes them at start), so a file a power cut left empty
    // or old is never read, and a run saves the fsyncs' milliseconds.
    let durable = !config.auto_remove;
    let mut attached = None;
    let made = (|| -> Result<ContainerRecord> {
        fsutil::create_private_dir(&paths.dir)?;
        inner.snapshots.create_writable_with(&id, &content.diff_ids, durable)?;
        fs::create_dir(&paths.rootfs).context(|| format!("creating {}", paths.rootfs.display()))?;
        inner.snapshots.mount_writable(&id, &paths.rootfs)?;
        // Volumes and mounts (issue 8): checked, made, filled from the image; `config.mounts`
        // then names every volume the record mounts.
        let volumes = attached.insert(crate::volume::mounts::attach(
            inner,
            &id,
            &mut config,
            &content.config,
            &paths.rootfs,
        )?);
        let mut spec = runtime::build_spec(&id, &config, &content.config, &paths.rootfs)?;
        // Networks (issue 8): the mode, networks and ports; the spec's namespace and /etc files.
        crate::network::endpoint::prepare(inner, &id, &paths.dir, &config, &content.config, &mut spec)?;
        // After the network's /etc files: a user's mount at the same path replaces them (Docker).
        runtime::add_user_mounts(&mut spec, &volumes.mounts)?;
        if durable {
            runtime::write_bundle(&paths.dir, &spec)?;
        } else {
            let json = serde_json::to_vec_pretty(&spec).expect("runtime specs serialise");
            fsutil::write_replace(&paths.dir.join("config.json"), &json)?;
        }
        let args = spec.process().as_ref().and_then(|p| p.args().clone()).unwrap_or_default();
        let (path, args) = match args.split_first() {
            Some((first, rest)) => (first.clone(), rest.to_vec()),
            None => (String::new(), Vec::new()),
        };
        config.name = Some(name.clone());
        config.runtime = Some(kind.to_string());
        config.stop_signal = Some(signal_name(stop_signal));
        config.stop_timeout = Some(config.stop_timeout.unwrap_or(DEFAULT_STOP_TIMEOUT));
        let record = ContainerRecord {
            id: id.clone(),
            name: name.clone(),
            created: Utc::now(),
            image: config.image.clone(),
            image_id: image.id.to_string(),
            stop_timeout: config.stop_timeout.unwrap_or(DEFAULT_STOP_TIMEOUT),
            config: config.clone(),
            path,
            args,
            runtime: kind.to_string(),
            snapshotter: inner.snapshots.kind().to_string(),
            stop_signal,
        };
        let state = serde_json::to_vec_pretty(&RunState::created()).expect("state serialises");
        if durable {
            fsutil::write_atomic(&paths.state, &state)?;
        } else {
            fsutil::write_replace(&paths.state, &state)?;
        }
        store.insert(record.clone())?;
        Ok(record)
    })();
    if made.is_err() {
        if let Some(volumes) = attached.take() {
            volumes.undo();
        }
        let _ = inner.snapshots.remove_writable(&id);
        let _ = fs::remove_dir_all(&paths.dir);
    }
    made
}

/// Mounts the container's root filesystem unless it is (after a reboot it is not).
fn ensure_mounted(inner: &EngineInner, id: &str) -> Result<()> {
    let rootfs = inner.containers.paths(id).rootfs;
    match inner.snapshots.mount_writable(id, &rootfs) {
        Ok(()) | Err(Error::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

fn runtime_config(inner: &EngineInner) -> RuntimeConfig {
    RuntimeConfig { state_root: inner.config.run_dir.join("runtime") }
}

fn runtime_of(inner: &EngineInner, record: &ContainerRecord) -> Result<Box<dyn runtime::Runtime>> {
    runtime::new_runtime(record.runtime.parse()?, &runtime_config(inner))
}

/// Starts the container's monitor (forked by the zygote, or `<monitor_exe> monitor <dir>`) and
/// waits until it listens.
fn spawn_monitor(inner: &EngineInner, record: &ContainerRecord) -> Result<()> {
    let paths = inner.containers.paths(&record.id);
    let config = MonitorConfig {
        id: record.id.clone(),
        bundle: paths.dir.clone(),
        runtime: record.runtime.clone(),
        runtime_state_root: runtime_config(inner).state_root,
        socket: paths.socket.clone(),
        log: paths.log.clone(),
        state: paths.state.clone(),
        tty: record.config.tty,
        open_stdin: record.config.open_stdin,
        restart_policy: record.config.restart_policy.clone(),
        health: crate::monitor::health::effective(record.config.healthcheck.as_ref()),
    };
    let json = serde_json::to_vec_pretty(&config).expect("monitor config serialises");
    // Not fsynced: it is written again before every monitor start and read only by that monitor.
    fsutil::write_replace(&paths.monitor_config, &json)?;
    if let Some(parent) = paths.socket.parent() {
        fsutil::create_private_dir(parent)?;
    }
    // Forked from the monitor zygote (small and quick, see `monitor::zygote`); started
    // directly when no zygote can do it.
    let run_dir = inner.containers.run_dir();
    match zygote::spawn_monitor(&inner.config.monitor_exe, run_dir, &paths.dir, &paths.monitor_log) {
        Ok(zygote::Spawned::Ready) => return Ok(()),
        Ok(zygote::Spawned::Failed(message)) => {
            return Err(Error::Runtime(format!("the monitor of container {}: {message}", record.id)))
        }
        Err(e) => {
            tracing::warn!(container = %record.id, error = %e, "no monitor zygote: starting the monitor directly")
        }
    }
    let log = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(&paths.monitor_log)
        .context(|| format!("opening {}", paths.monitor_log.display()))?;
    let (ready_read, ready_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| Error::io("creating the monitor's ready pipe", e.into()))?;
    // The ready pipe is the monitor's stdout (see `READY_FD`): with no code to run between
    // fork and exec, std starts it with posix_spawn (vfork-like) rather than by forking the
    // whole daemon, whose page tables are large.
    let mut command = Command::new(&inner.config.monitor_exe);
    command
        .arg("monitor")
        .arg(&paths.dir)
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::from(ready_write))
        .stderr(log);
    let exe = inner.config.monitor_exe.display().to_string();
    let mut child = command.spawn().context(|| format!("starting the monitor {exe}"))?;
    // Our copy of the pipe's write end goes with the command, so that the read ends with it.
    drop(command);
    // The monitor forks into its own session at once; this reaps the process we started.
    let status = child.wait().context(|| format!("waiting for the monitor {exe}"))?;
    let mut answer = String::new();
    let _ = File::from(ready_read).read_to_string(&mut answer);
    match answer.trim() {
        "ok" => Ok(()),
        "" => Err(Error::Runtime(format!(
            "the monitor of container {} exited before it was ready ({status}); see {}",
            record.id,
            paths.monitor_log.display()
        ))),
        message => Err(Error::Runtime(format!("the monitor of container {}: {message}", record.id))),
    }
}

/// Follows a monitor's state lines until it exits, then settles what it left.
async fn follow_monitor(
    weak: Weak<EngineInner>,
    id: String,
    socket: PathBuf,
    following: oneshot::Sender<()>,
) {
    let mut following = Some(following);
    // A watch that ends or stays silent while the monitor still answers is opened again: only
    // a monitor that is gone ends the following.
    for _ in 0..20 {
        if let Ok((mut lines, _write)) = client::watch(&socket).await {
            // The monitor answers a watch with its current state at once.
            let mut first = true;
            loop {
                let next = if first {
                    match tokio::time::timeout(WATCH_ANSWER, lines.next_line()).await {
                        Ok(next) => next,
                        Err(_) => break,
                    }
                } else {
                    lines.next_line().await
                };
                first = false;
                let Ok(Some(line)) = next else { break };
                let Ok(state) = serde_json::from_str::<RunState>(&line) else { continue };
                let Some(inner) = weak.upgrade() else { return };
                observe(&inner, &id, state);
                if let Some(tx) = following.take() {
                    let _ = tx.send(());
                }
            }
        }
        if client::connect(&socket).await.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let Some(inner) = weak.upgrade() else { return };
    let engine = Engine { inner };
    let id2 = id.clone();
    let state = match engine.blocking(move |inner| Ok(settle_dead_monitor(inner, &id2))).await {
        Ok(Some(state)) => state,
        _ => return,
    };
    observe(&engine.inner, &id, state.clone());
    // Networks (issue 8): a container that is done gives its addresses, veth and ports back.
    if !state.is_live() {
        let lock = engine.inner.containers.op_lock(&id);
        let _guard = lock.lock().await;
        if !engine.inner.containers.read_state(&id).is_live() {
            engine.release_network(&id).await;
        }
    }
    if restarts_after_dead_monitor(&engine.inner, &id, &state) {
        if let Err(e) = engine.start_container(&id).await {
            tracing::warn!(container = %id, error = %e, "restarting after its monitor died failed");
        }
        return;
    }
    auto_remove(&engine, &id, &state).await;
    unmount_stopped(&engine, &id).await;
}

/// Unmounts the root filesystem of a container that stopped, as Docker does (the next start
/// mounts it again, see `ensure_mounted`): a stopped container holds no mount. Not when a
/// monitor runs again (a start came in between) or the container is gone.
async fn unmount_stopped(engine: &Engine, id: &str) {
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
fn restarts_after_dead_monitor(inner: &EngineInner, id: &str, state: &RunState) -> bool {
    let Some(record) = inner.containers.get(id) else { return false };
    state.status == ContainerStatus::Dead
        && !state.stopped_by_user
        && matches!(record.config.restart_policy, RestartPolicy::Always | RestartPolicy::UnlessStopped)
}

/// `--rm`: a container that is done (exited, or failed to start) goes.
async fn auto_remove(engine: &Engine, id: &str, state: &RunState) {
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
fn settle_dead_monitor(inner: &EngineInner, id: &str) -> Option<RunState> {
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

/// Records a new state and emits the events its change means (die, oom, restart), before
/// waiters see the state, so that a waiter finds the events of what it waited for.
fn observe(inner: &EngineInner, id: &str, new: RunState) {
    let store = &inner.containers;
    let mut states = store.states.lock().unwrap_or_else(|p| p.into_inner());
    let Some(sender) = states.get(id) else {
        states.insert(id.to_string(), watch::channel(Seen { state: new, removed: false }).0);
        return;
    };
    let previous = sender.borrow().state.clone();
    if new.seq <= previous.seq && previous.seq != 0 {
        // Already seen (or older than what was seen: a watch line behind the state file).
        return;
    }
    if let Some(record) = store.get(id) {
        if new.finished_at.is_some() && new.finished_at != previous.finished_at {
            if new.oom_killed {
                emit(inner, &record, ContainerAction::Oom);
            }
            emit(inner, &record, ContainerAction::Die { exit_code: new.exit_code });
        }
        if new.restart_count > previous.restart_count && new.status == ContainerStatus::Running {
            emit(inner, &record, ContainerAction::Restart);
        }
        // `health_status: healthy|unhealthy` when a probe changed it (issue 8).
        let status = |s: &RunState| s.health.as_ref().map(|h| h.status);
        if let Some(to @ (HealthStatus::Healthy | HealthStatus::Unhealthy)) = status(&new) {
            if status(&previous) != Some(to) && new.status == ContainerStatus::Running {
                emit(inner, &record, ContainerAction::HealthStatus(to));
            }
        }
    }
    sender.send_replace(Seen { state: new, removed: false });
}

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

fn remove_files(inner: &EngineInner, record: &ContainerRecord) -> Result<()> {
    match runtime_of(inner, record).and_then(|r| r.delete(&record.id)) {
        Ok(()) => {}
        Err(e) => tracing::warn!(container = %record.id, error = %e, "runtime cleanup failed"),
    }
    inner.snapshots.remove_writable(&record.id)?;
    let paths = inner.containers.paths(&record.id);
    let _ = fs::remove_file(&paths.socket);
    match fs::remove_dir_all(&paths.dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("removing {}", paths.dir.display()), e)),
    }
}

/// On open: removes what interrupted creates left, marks containers whose monitor died, follows
/// the monitors that run, and removes `--rm` containers that finished while no daemon ran.
pub(crate) fn recover(engine: &Engine) {
    let inner = &engine.inner;
    for id in inner.containers.half_created() {
        tracing::info!(container = %id, "removing an unfinished create");
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

fn is_live(seen: &Seen) -> bool {
    !seen.removed && seen.state.is_live()
}

fn rfc3339(time: chrono::DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn wire_state(state: &RunState) -> ContainerState {
    ContainerState {
        status: state.status,
        pid: state.pid,
        exit_code: state.exit_code,
        oom_killed: state.oom_killed,
        error: state.error.clone(),
        started_at: state.started_at.map(rfc3339).unwrap_or_default(),
        finished_at: state.finished_at.map(rfc3339).unwrap_or_default(),
        restart_count: state.restart_count,
        // Shown while the container runs (Docker's `ps` shows no health for a stopped one).
        health: match state.status {
            ContainerStatus::Running | ContainerStatus::Paused => state.health.clone(),
            _ => None,
        },
    }
}

/// Docker's status column: `Up 2 minutes`, `Up 3 hours (Paused)`, `Exited (0) 3 seconds ago`,
/// `Restarting (1) 2 seconds ago`, `Created`, `Dead`.
fn human_status(state: &RunState, now: chrono::DateTime<Utc>) -> String {
    use berth_types::format::human_duration;
    let since =
        |t: Option<chrono::DateTime<Utc>>| human_duration(t.map(|t| (now - t).num_seconds()).unwrap_or(0));
    match state.status {
        ContainerStatus::Created => "Created".into(),
        ContainerStatus::Running => match &state.health {
            Some(h) => format!("Up {} {}", since(state.started_at), h.status.ps_suffix()),
            None => format!("Up {}", since(state.started_at)),
        },
        ContainerStatus::Paused => format!("Up {} (Paused)", since(state.started_at)),
        ContainerStatus::Restarting => {
            format!("Restarting ({}) {} ago", state.exit_code, since(state.finished_at))
        }
        ContainerStatus::Exited => format!("Exited ({}) {} ago", state.exit_code, since(state.finished_at)),
        ContainerStatus::Removing => "Removal In Progress".into(),
        ContainerStatus::Dead => "Dead".into(),
    }
}

/// `ps`'s COMMAND as Docker's daemon writes it: the path and the arguments joined by spaces,
/// an argument that contains a space in single quotes (`sh -c 'echo hi'`).
fn command_line(path: &str, args: &[String]) -> String {
    let mut line = path.to_string();
    for arg in args {
        line.push(' ');
        if arg.contains(' ') {
            line.push('\'');
            line.push_str(arg);
            line.push('\'');
        } else {
            line.push_str(arg);
        }
    }
    line
}

/// A signal by name (`KILL`, `SIGKILL`, any case) or number.
pub(crate) fn parse_signal(text: &str) -> Result<i32> {
    let bad = || Error::InvalidInput(format!("invalid signal: {text}"));
    let text = text.trim();
    if let Ok(n) = text.parse::<i32>() {
        return Signal::try_from(n).map(|s| s as i32).map_err(|_| bad());
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    Signal::from_str(&name).map(|s| s as i32).map_err(|_| bad())
}

fn signal_name(signal: i32) -> String {
    Signal::try_from(signal).map(|s| s.as_str().to_string()).unwrap_or_else(|_| signal.to_string())
}

/// Total memory of the host, the limit `stats` shows for a container without one.
fn host_memory() -> u64 {
    let Ok(text) = fs::read_to_string("/proc/meminfo") else { return 0 };
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// A stream over an mpsc receiver (tokio-stream's wrapper, without the dependency).
fn tokio_stream_from<T: Send + 'static>(rx: mpsc::Receiver<T>) -> impl futures_util::Stream<Item = T> + Send {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(parse_signal("KILL").unwrap(), libc::SIGKILL);
        assert_eq!(parse_signal("sigterm").unwrap(), libc::SIGTERM);
        assert_eq!(parse_signal("SIGUSR1").unwrap(), libc::SIGUSR1);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("NOPE").unwrap_err().to_string(), "invalid signal: NOPE");
        assert!(parse_signal("999").is_err());
        assert_eq!(signal_name(15), "SIGTERM");
    }

    #[test]
    fn command_column_quotes_arguments_with_spaces() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(command_line("sh", &args(&["-c", "echo hi"])), "sh -c 'echo hi'");
        assert_eq!(command_line("sleep", &args(&["100"])), "sleep 100");
        assert_eq!(command_line("true", &[]), "true");
    }

    #[test]
    fn status_column_reads_like_dockers() {
        let now = Utc::now();
        let mut state = RunState::created();
        assert_eq!(human_status(&state, now), "Created");
        state.status = ContainerStatus::Running;
        state.started_at = Some(now - chrono::Duration::seconds(120));
        assert_eq!(human_status(&state, now), "Up 2 minutes");
        state.status = ContainerStatus::Paused;
        assert_eq!(human_status(&state, now), "Up 2 minutes (Paused)");
        state.status = ContainerStatus::Exited;
        state.exit_code = 3;
        state.finished_at = Some(now - chrono::Duration::seconds(5));
        assert_eq!(human_status(&state, now), "Exited (3) 5 seconds ago");
    }
}
