//! Following a container: waiting for a state, its log, attaching to its stdio, the engine's
//! events, and the task that follows each monitor's state lines.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use berth_types::container::{ContainerStatus, WaitResult};
use berth_types::health::HealthStatus;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::ensure_mounted;
use super::events::{ContainerAction, EngineEvent};
use super::recover::{auto_remove, restarts_after_dead_monitor, settle_dead_monitor, unmount_stopped};
use super::session::ProcessSession;
use super::store::{read_state_file, Seen};
use super::{client, emit, logs, LogOptions, LogStream, WaitCondition};
use crate::error::{Error, Result};
use crate::monitor::protocol::{Request, RunState};
use crate::{Engine, EngineInner};

/// How long a monitor may take to answer a watch with its state.
pub(super) const WATCH_ANSWER: Duration = Duration::from_secs(5);
/// How often a waiter re-reads the state file when no task follows the container's monitor.
const STATE_POLL: Duration = Duration::from_millis(200);

impl Engine {
    /// Waits for `condition`; the result carries the exit code of the last run.
    pub async fn wait_container(&self, name: &str, condition: WaitCondition) -> Result<WaitResult> {
        Ok(self.watch_container(name, condition).await?.await)
    }

    /// Arms a wait for `condition` and returns the future that completes when it holds. Once
    /// this returns, a change of the container counts: Docker's clients send `wait` before
    /// `start` and must see the exit of the run they start, however fast it is.
    pub async fn watch_container(
        &self,
        name: &str,
        condition: WaitCondition,
    ) -> Result<futures_util::future::BoxFuture<'static, WaitResult>> {
        let record = self.inner.containers.resolve(name)?;
        let id = record.id;
        // Subscribed now, not when the future is first polled: a container that is removed in
        // between would otherwise leave the future on a new channel that nothing ever sends on.
        let rx = self.subscribe_state(&id);
        let current = self.inner.containers.read_state(&id);
        if self.socket_alive(&id).await {
            let _ = self.ensure_watcher(&id);
        }
        let engine = self.clone();
        Ok(Box::pin(async move {
            let last = match condition {
                WaitCondition::NotRunning => engine.wait_on(&id, rx, None, |s| !is_live(s)).await,
                WaitCondition::NextExit => {
                    let before = current.finished_at;
                    engine
                        .wait_on(&id, rx, None, move |s| {
                            s.removed || (s.state.finished_at != before && !s.state.is_live())
                        })
                        .await
                }
                WaitCondition::Removed => engine.wait_on(&id, rx, None, |s| s.removed).await,
            };
            let state = last.map(|seen| seen.state).unwrap_or(current);
            WaitResult { status_code: state.exit_code }
        }))
    }

    /// The container's log as a stream of entries (see [`LogOptions`]).
    pub async fn container_logs(&self, name: &str, options: LogOptions) -> Result<LogStream> {
        let record = self.inner.containers.resolve(name)?;
        let path = self.paths(&record.id).log;
        // Whether to follow is decided before the file is read: a container that stops between
        // the two has then written everything the follow will still read (decided after, its
        // last lines would be lost).
        let follow = options.follow && self.inner.containers.read_state(&record.id).is_live();
        let (path2, options2) = (path.clone(), options.clone());
        let (entries, offset, file) =
            tokio::task::spawn_blocking(move || logs::read_existing(&path2, &options2))
                .await
                .expect("log task")?;
        let (tx, rx) = mpsc::channel(256);
        let state_path = self.paths(&record.id).state;
        tokio::spawn(async move {
            for entry in entries {
                if tx.send(Ok(entry)).await.is_err() {
                    return;
                }
            }
            if follow {
                logs::follow(path, file, offset, options, tx, move || read_state_file(&state_path).is_live())
                    .await;
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
                Err(Error::MonitorGone(_)) if attempts < 20 => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                result => return result,
            }
        }
    }

    /// Engine events (container create/start/die/oom/restart/stop/kill/pause/unpause/destroy/
    /// rename; image unpack_failed) from now on. A receiver that falls behind gets `RecvError::Lagged`.
    pub fn subscribe_events(&self) -> broadcast::Receiver<EngineEvent> {
        self.inner.containers.events.subscribe()
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

    /// A receiver of the container's run state. For a container that is already gone, a
    /// receiver that says so (its sender is dropped at once, so no channel is left behind).
    pub(super) fn subscribe_state(&self, id: &str) -> watch::Receiver<Seen> {
        let store = &self.inner.containers;
        let mut states = store.states.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(sender) = states.get(id) {
            return sender.subscribe();
        }
        let seen = Seen { state: store.read_state(id), removed: store.get(id).is_none() };
        let (sender, rx) = watch::channel(seen);
        if !rx.borrow().removed {
            states.insert(id.to_string(), sender);
        }
        rx
    }

    /// Waits until `done` holds for what was seen of the container, at most `timeout`. Returns
    /// what satisfied it, or `None` on timeout.
    pub(super) async fn wait_until(
        &self,
        id: &str,
        timeout: Option<Duration>,
        done: impl Fn(&Seen) -> bool,
    ) -> Option<Seen> {
        let rx = self.subscribe_state(id);
        self.wait_on(id, rx, timeout, done).await
    }

    /// [`Engine::wait_until`] on a receiver subscribed earlier.
    async fn wait_on(
        &self,
        id: &str,
        mut rx: watch::Receiver<Seen>,
        timeout: Option<Duration>,
        done: impl Fn(&Seen) -> bool,
    ) -> Option<Seen> {
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
                        // the state file is the truth. Every answer found this way is counted:
                        // with a watcher running, the state lines and the removal are events,
                        // and a wait the poll answers is a lost wake-up.
                        let followed = self.inner.containers.watchers.lock()
                            .unwrap_or_else(|p| p.into_inner()).contains(id);
                        if !followed {
                            if self.inner.containers.get(id).is_none() {
                                self.inner.containers.poll_answers.fetch_add(1, Ordering::Relaxed);
                                return Seen { state: current.state, removed: true };
                            }
                            let state = self.inner.containers.read_state(id);
                            observe(&self.inner, id, state);
                            if done(&rx.borrow()) {
                                self.inner.containers.poll_answers.fetch_add(1, Ordering::Relaxed);
                            }
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

/// Records a new state and emits the events its change means (die, oom, restart), before
/// waiters see the state, so that a waiter finds the events of what it waited for.
fn observe(inner: &EngineInner, id: &str, new: RunState) {
    let store = &inner.containers;
    let mut states = store.states.lock().unwrap_or_else(|p| p.into_inner());
    let Some(sender) = states.get(id) else {
        // A line that arrives after the removal must not leave a channel behind.
        if store.get(id).is_some() {
            states.insert(id.to_string(), watch::channel(Seen { state: new, removed: false }).0);
        }
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

pub(super) fn is_live(seen: &Seen) -> bool {
    !seen.removed && seen.state.is_live()
}

/// A stream over an mpsc receiver (tokio-stream's wrapper, without the dependency).
fn tokio_stream_from<T: Send + 'static>(rx: mpsc::Receiver<T>) -> impl futures_util::Stream<Item = T> + Send {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) })
}
