//! The daemon's history in SQLite (`<root>/berth.db`): every mutating operation, success or
//! failure. Queries are built at run time (`sqlx::query`), so the build needs no database.

use std::path::Path;
use std::str::FromStr;

use berth_types::Event;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

/// Most events one `GET /api/v1/events` returns.
pub const MAX_LIMIT: i64 = 1000;

/// The history.
#[derive(Clone)]
pub struct EventLog {
    pool: SqlitePool,
    /// Every recorded event, live, for the events WebSocket. Bounded: a subscriber that falls
    /// behind loses the oldest events and is told how many.
    live: tokio::sync::broadcast::Sender<Event>,
}

/// Events a live subscriber may fall behind by before it loses some.
const LIVE_CAPACITY: usize = 1024;

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

impl EventLog {
    /// Opens (creating) the database and applies the migrations in `migrations/`.
    pub async fn open(path: &Path) -> Result<EventLog, String> {
        let url = format!("sqlite://{}", path.display());
        let options = SqliteConnectOptions::from_str(&url)
            .map_err(|e| format!("opening {}: {e}", path.display()))?
            .create_if_missing(true)
            // WAL: readers (the events API) never wait for the writer; NORMAL is durable
            // across a daemon crash and cheap enough for one row per operation.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| format!("opening {}: {e}", path.display()))?;
        sqlx::migrate!("../migrations")
            .run(&pool)
            .await
            .map_err(|e| format!("migrating {}: {e}", path.display()))?;
        Ok(EventLog { pool, live: tokio::sync::broadcast::channel(LIVE_CAPACITY).0 })
    }

    /// The database, for the other history tables (audit, access, finished containers).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Every event recorded from now on.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Event> {
        self.live.subscribe()
    }

    /// Appends an event. A failure to record is logged, not returned: the operation itself has
    /// already happened and its caller must learn how it went.
    pub async fn record(
        &self,
        event_type: &str,
        action: &str,
        subject: &str,
        outcome: Outcome,
        message: &str,
    ) {
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let result = sqlx::query(
            "INSERT INTO events (time, type, action, subject, outcome, message) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&time)
        .bind(event_type)
        .bind(action)
        .bind(subject)
        .bind(outcome.as_str())
        .bind(message)
        .execute(&self.pool)
        .await;
        berth_engine::crash_point::pass("history.write");
        match result {
            Ok(done) => {
                tracing::info!(event_type, action, subject, outcome = outcome.as_str(), message, "event");
                // No subscriber is not an error.
                let _ = self.live.send(Event {
                    id: done.last_insert_rowid(),
                    time,
                    event_type: event_type.to_string(),
                    action: action.to_string(),
                    subject: subject.to_string(),
                    outcome: outcome.as_str().to_string(),
                    message: message.to_string(),
                });
            }
            Err(e) => tracing::error!(error = %e, event_type, action, subject, "recording an event failed"),
        }
    }

    /// Newest first: at most `limit` events, only those with an id below `before` if given.
    pub async fn list(&self, limit: i64, before: Option<i64>) -> Result<Vec<Event>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, time, type, action, subject, outcome, message FROM events \
             WHERE id < ? ORDER BY id DESC LIMIT ?",
        )
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit.clamp(0, MAX_LIMIT))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(Event {
                    id: row.try_get("id")?,
                    time: row.try_get("time")?,
                    event_type: row.try_get("type")?,
                    action: row.try_get("action")?,
                    subject: row.try_get("subject")?,
                    outcome: row.try_get("outcome")?,
                    message: row.try_get("message")?,
                })
            })
            .collect()
    }

    /// Waits for pending writes and closes the database cleanly (checkpoints the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
