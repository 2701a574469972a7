//! Writers of the daemon's history beyond the event log: the audit log (every mutating call and
//! every exec session), build records with their logs, and finished containers with their exit
//! codes. All in the daemon's SQLite database, so it survives restarts.

use std::collections::HashSet;

use berth_engine::container::{ContainerAction, EngineEvent};
use berth_types::build::BuildEvent;
use chrono::{SecondsFormat, Utc};
use sqlx::SqlitePool;

use crate::serve::error::ApiError;

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Writes the audit log.
#[derive(Clone)]
pub struct Audit {
    pool: SqlitePool,
}

impl Audit {
    pub fn new(pool: SqlitePool) -> Audit {
        Audit { pool }
    }

    /// Records a finished call. Failures to record are logged: the call has happened.
    pub async fn call(&self, api: &str, user: &str, method: &str, path: &str, status: u16) {
        let time = now();
        // A call names no container or command of its own: those columns are for exec sessions.
        let r = sqlx::query(
            "INSERT INTO audit (time, api, user, method, path, status, container, command, ended) VALUES (?, ?, ?, ?, ?, ?, '', '', ?)",
        )
        .bind(&time)
        .bind(api)
        .bind(user)
        .bind(method)
        .bind(path)
        .bind(status)
        .bind(&time)
        .execute(&self.pool)
        .await;
        berth_engine::crash_point::pass("history.write");
        if let Err(e) = r {
            tracing::error!(error = %e, user, method, path, "writing the audit log failed");
        }
    }

    /// Records a login or a refused authentication (wrong password, unknown or expired token,
    /// throttled, locked) with the client's address (empty if unknown) and why.
    #[allow(clippy::too_many_arguments)]
    pub async fn authentication(
        &self,
        api: &str,
        user: &str,
        method: &str,
        path: &str,
        status: u16,
        address: &str,
        message: &str,
    ) {
        let time = now();
        // The name is what the client sent: keep a bounded, printable part of it.
        let user: String = user.chars().filter(|c| !c.is_control()).take(64).collect();
        let r = sqlx::query(
            "INSERT INTO audit (time, api, user, method, path, status, container, command, ended, message, address) \
             VALUES (?, ?, ?, ?, ?, ?, '', '', ?, ?, ?)",
        )
        .bind(&time)
        .bind(api)
        .bind(&user)
        .bind(method)
        .bind(path)
        .bind(status)
        .bind(&time)
        .bind(message)
        .bind(address)
        .execute(&self.pool)
        .await;
        berth_engine::crash_point::pass("history.write");
        if let Err(e) = r {
            tracing::error!(error = %e, user, method, path, "writing the audit log failed");
        }
    }

    /// Records a manifest the registry server served (a pull by another node or client):
    /// who (`anonymous` for a public repository), the request's path, the client's address
    /// and what was pulled (`message`: repository, reference and digest).
    pub async fn pull(&self, user: &str, path: &str, address: &str, message: &str) {
        let time = now();
        let r = sqlx::query(
            "INSERT INTO audit (time, api, user, method, path, status, container, command, ended, message, address) \
             VALUES (?, 'registry', ?, 'GET', ?, 200, '', '', ?, ?, ?)",
        )
        .bind(&time)
        .bind(user)
        .bind(path)
        .bind(&time)
        .bind(message)
        .bind(address)
        .execute(&self.pool)
        .await;
        if let Err(e) = r {
            tracing::error!(error = %e, user, path, "writing the audit log failed");
        }
    }

    /// Opens the audit row of an exec session; its id for [`Audit::exec_ended`].
    pub async fn exec_started(
        &self,
        api: &str,
        user: &str,
        path: &str,
        container: &str,
        command: &str,
    ) -> Option<i64> {
        let r = sqlx::query(
            "INSERT INTO audit (time, api, user, method, path, status, container, command) VALUES (?, ?, ?, 'EXEC', ?, 101, ?, ?)",
        )
        .bind(now())
        .bind(api)
        .bind(user)
        .bind(path)
        .bind(container)
        .bind(command)
        .execute(&self.pool)
        .await;
        match r {
            Ok(r) => Some(r.last_insert_rowid()),
            Err(e) => {
                tracing::error!(error = %e, user, container, "writing the audit log failed");
                None
            }
        }
    }

    /// Closes an exec session's row: its end time, and its exit code if it has one.
    pub async fn exec_ended(&self, id: i64, exit_code: Option<i32>, message: &str) {
        let r = sqlx::query("UPDATE audit SET ended = ?, exit_code = ?, message = ? WHERE id = ?")
            .bind(now())
            .bind(exit_code)
            .bind(message)
            .bind(id)
            .execute(&self.pool)
            .await;
        if let Err(e) = r {
            tracing::error!(error = %e, id, "closing an exec session's audit row failed");
        }
    }
}

/// Build records, for the build routes: one row per build with its log.
#[derive(Clone)]
pub struct Builds {
    pool: SqlitePool,
}

impl Builds {
    pub fn new(pool: SqlitePool) -> Builds {
        Builds { pool }
    }

    /// Opens a build's record; its id for [`Builds::finish`].
    pub async fn start(&self, user: &str, tags: &[String]) -> Result<i64, ApiError> {
        let r = sqlx::query("INSERT INTO builds (user, tags, started) VALUES (?, ?, ?)")
            .bind(user)
            .bind(tags.join(","))
            .bind(now())
            .execute(&self.pool)
            .await
            .map_err(|e| ApiError::internal(format!("recording a build: {e}")))?;
        Ok(r.last_insert_rowid())
    }

    /// Closes a build's record with how it ended, the image it made and its whole log.
    pub async fn finish(&self, id: i64, image_id: Option<&str>, success: bool, log: &str) {
        let r = sqlx::query("UPDATE builds SET ended = ?, outcome = ?, image_id = ?, log = ? WHERE id = ?")
            .bind(now())
            .bind(if success { "success" } else { "failure" })
            .bind(image_id)
            .bind(log)
            .bind(id)
            .execute(&self.pool)
            .await;
        if let Err(e) = r {
            tracing::error!(error = %e, id, "closing a build record failed");
        }
    }
}

/// Most bytes of a build's log kept in its record; the rest is cut (and says so).
const BUILD_LOG_LIMIT: usize = 4 * 1024 * 1024;

/// A build's log as a person reads it, from its typed events; cut at [`BUILD_LOG_LIMIT`].
#[derive(Debug, Default)]
pub struct BuildLog {
    text: String,
    /// `Some((success, image))` once the last event (built or error) has been seen.
    outcome: Option<(bool, Option<String>)>,
}

impl BuildLog {
    /// Appends one event.
    pub fn push(&mut self, event: &BuildEvent) {
        match event {
            BuildEvent::Built { id, .. } => self.outcome = Some((true, Some(id.clone()))),
            BuildEvent::Error { .. } => self.outcome = Some((false, None)),
            _ => {}
        }
        if self.text.len() > BUILD_LOG_LIMIT {
            // Past the limit only the end matters.
            return;
        }
        match event {
            BuildEvent::Step { stage, instruction, .. } => {
                self.text.push_str(&format!("{stage} {instruction}\n"))
            }
            BuildEvent::Cached { .. } => self.text.push_str("---> Using cache\n"),
            BuildEvent::Output { text, .. } => self.text.push_str(text),
            BuildEvent::Warning { message } => self.text.push_str(&format!("warning: {message}\n")),
            BuildEvent::Built { id, .. } => self.text.push_str(&format!("built {id}\n")),
            BuildEvent::Error { message, .. } => self.text.push_str(&format!("error: {message}\n")),
            BuildEvent::Done { .. } => {}
        }
    }

    /// The image the build made, if it succeeded.
    pub fn image(&self) -> Option<&str> {
        self.outcome.as_ref().and_then(|(_, image)| image.as_deref())
    }

    /// How it ended (a build whose last event never came failed), the image, and the log text.
    pub fn finish(mut self) -> (bool, Option<String>, String) {
        if self.text.len() > BUILD_LOG_LIMIT {
            let mut cut = BUILD_LOG_LIMIT;
            while !self.text.is_char_boundary(cut) {
                cut -= 1;
            }
            self.text.truncate(cut);
            self.text.push_str("\n[log cut at 4 MiB]\n");
        }
        let (success, image) = self.outcome.unwrap_or((false, None));
        (success, image, self.text)
    }
}

/// Writes a row of `finished_containers` for every container that exits (its `die` event,
/// with the exit code; an `oom` before it marks it), for the daemon's lifetime.
pub fn record_finished_containers(engine: &berth_engine::Engine, pool: SqlitePool) {
    let mut receiver = engine.subscribe_events();
    tokio::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        let mut oom: HashSet<String> = HashSet::new();
        loop {
            match receiver.recv().await {
                Ok(EngineEvent::Container(event)) => match event.action {
                    ContainerAction::Oom => {
                        oom.insert(event.id.clone());
                    }
                    ContainerAction::Die { exit_code } => {
                        let was_oom = oom.remove(&event.id);
                        let r = sqlx::query(
                            "INSERT INTO finished_containers (container_id, name, image, exit_code, oom, finished) \
                             VALUES (?, ?, ?, ?, ?, ?)",
                        )
                        .bind(&event.id)
                        .bind(&event.name)
                        .bind(&event.image)
                        .bind(exit_code)
                        .bind(was_oom)
                        .bind(event.time.to_rfc3339_opts(SecondsFormat::Millis, true))
                        .execute(&pool)
                        .await;
                        if let Err(e) = r {
                            tracing::error!(error = %e, container = %event.id, "recording a finished container failed");
                        }
                    }
                    _ => {}
                },
                Ok(EngineEvent::Image(_)) => {}
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "the finished-container history fell behind the engine");
                }
                Err(RecvError::Closed) => return,
            }
        }
    });
}
