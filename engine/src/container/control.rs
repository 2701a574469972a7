//! Driving a container: start, stop, kill, restart, pause/unpause, rename, remove, prune and
//! exec, and starting the container's monitor that carries them out.

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use berth_types::container::{ContainerPruneReport, ContainerStatus, ExecConfig};
use berth_types::signal::Signal;

use super::events::ContainerAction;
use super::follow::{is_live, WATCH_ANSWER};
use super::session::ProcessSession;
use super::store::{validate_name, ContainerRecord};
use super::{client, ensure_mounted, runtime_config, runtime_of};
use crate::error::{Error, IoContext, Result};
use crate::monitor::log_file::LogRotation;
use crate::monitor::protocol::{MonitorConfig, Request};
use crate::monitor::zygote;
use crate::runtime;
use crate::{fsutil, Engine, EngineInner};

/// How long a SIGKILLed container may take to be reported gone.
const KILL_WAIT: Duration = Duration::from_secs(30);

impl Engine {
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
        crate::runtime::cgroup::warm_migrations();
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
                Err(Error::MonitorGone(_)) if attempts < 20 => {
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
            Ok(_) | Err(Error::Conflict(_) | Error::Runtime(_) | Error::MonitorGone(_)) => {}
            Err(e) => return Err(e),
        }
        if signal != 0 {
            self.emit(record, ContainerAction::Kill { signal: signal.to_string() });
        }
        if self.wait_until(&record.id, Some(timeout), |s| !is_live(s)).await.is_none() {
            match client::request(&socket, &Request::Kill { signal: libc::SIGKILL, stop: true }).await {
                Ok(_) | Err(Error::Conflict(_) | Error::Runtime(_) | Error::MonitorGone(_)) => {}
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
        let signal = signal.as_deref().unwrap_or("KILL").parse::<Signal>()?.number();
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
    pub(super) async fn remove_locked(
        &self,
        record: &ContainerRecord,
        force: bool,
        deferred: bool,
    ) -> Result<()> {
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
                Err(Error::Runtime(_) | Error::MonitorGone(_)) => {}
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
        // The exec'd process joins the container's cgroup.
        crate::runtime::cgroup::warm_migrations();
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

    /// Starts the monitor of a just-created `--rm` container before anyone asks for it:
    /// `docker run --rm` attaches and starts right after the create, and the monitor's start-up
    /// and its prepared start then overlap with the client's own work between those calls.
    /// Failures are left to the start, which does the same again and reports them.
    pub(super) async fn monitor_ahead(&self, id: &str) {
        let Ok(record) = self.inner.containers.resolve(id) else { return };
        let lock = self.inner.containers.op_lock(&record.id);
        let _guard = lock.lock().await;
        if self.inner.containers.read_state(&record.id).status != ContainerStatus::Created {
            return;
        }
        if let Err(e) = self.ensure_monitor(&record).await {
            tracing::debug!(container = %record.id, error = %e, "no monitor ahead of the start");
        }
    }

    /// The socket of the container's monitor, starting a monitor (waiting for a start) if none
    /// runs. The caller holds the container's operation lock.
    pub(super) async fn ensure_monitor(&self, record: &ContainerRecord) -> Result<PathBuf> {
        let socket = self.paths(&record.id).socket;
        if client::connect(&socket).await.is_none() {
            // A new monitor is for a start that follows (at once, or after an attach).
            crate::runtime::cgroup::warm_migrations();
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
        log_rotation: LogRotation::from_options(
            record.config.log_driver.as_deref(),
            &record.config.log_opts,
        )?,
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

fn remove_files(inner: &EngineInner, record: &ContainerRecord) -> Result<()> {
    match runtime_of(inner, record).and_then(|r| r.delete(&record.id)) {
        Ok(()) => {}
        Err(e) => tracing::warn!(container = %record.id, error = %e, "runtime cleanup failed"),
    }
    inner.snapshots.remove_writable(&record.id)?;
    let paths = inner.containers.paths(&record.id);
    inner.snapshots.unmount_all_at(&record.id, &paths.rootfs)?;
    let _ = fs::remove_file(&paths.socket);
    match fs::remove_dir_all(&paths.dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("removing {}", paths.dir.display()), e)),
    }
}
