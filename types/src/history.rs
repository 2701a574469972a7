//! The daemon's history on the wire (`GET /api/v1/history/*`): events, finished containers,
//! the audit log and builds, one page at a time.

use serde::{Deserialize, Serialize};

/// One page of a history, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    pub items: Vec<T>,
    /// `before` for the next (older) page; absent on the last page.
    #[serde(default)]
    pub next_before: Option<i64>,
}

/// A row of the event history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventRecord {
    pub id: i64,
    pub time: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub action: String,
    pub subject: String,
    /// `success` or `failure`.
    pub outcome: String,
    pub message: String,
}

/// A container that exited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FinishedContainer {
    pub id: i64,
    pub container_id: String,
    pub name: String,
    pub image: String,
    pub exit_code: Option<i64>,
    pub oom: bool,
    pub finished: String,
}

/// A row of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditRecord {
    pub id: i64,
    pub time: String,
    /// Which API the call came through: `berth` or `docker`.
    #[serde(default = "berth_api")]
    pub api: String,
    pub user: String,
    /// The HTTP method, or `EXEC` for an exec session.
    pub method: String,
    pub path: String,
    pub status: i64,
    pub container: String,
    pub command: String,
    /// When the call or session ended; absent while an exec session runs.
    pub ended: Option<String>,
    /// An exec session's exit code; absent for calls, for a session still running, and for
    /// one whose process's end was not seen (the daemon stopped first).
    #[serde(default)]
    pub exit_code: Option<i64>,
    pub message: String,
    /// The client's IP address, for logins and authentication failures; empty otherwise.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub address: String,
}

/// A build record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BuildRecord {
    pub id: i64,
    pub user: String,
    pub tags: Vec<String>,
    pub image_id: Option<String>,
    pub started: String,
    pub ended: Option<String>,
    pub outcome: Option<String>,
    /// The build's output; only in `GET /history/builds/{id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
}

fn berth_api() -> String {
    "berth".to_string()
}
