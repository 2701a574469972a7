//! Compose stacks on the wire: `berth compose ...` and the dashboard's stacks page. A stack is
//! one compose project: the networks, volumes and containers labelled with its name.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::container::ContainerSummary;

/// `POST /api/v1/stacks/{name}/up` (`berth compose up`). Relative paths in the file (build
/// contexts, bind mounts, env_file) are resolved against `working_dir` on the daemon's host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct StackUp {
    /// The compose file's text (YAML).
    pub compose_file: String,
    /// The `.env` file's text, for `${VAR}` interpolation; the process environment of the CLI
    /// is sent in `environment` and wins over it, as in Docker Compose.
    pub env_file: Option<String>,
    pub environment: BTreeMap<String, String>,
    /// Absolute directory the compose file lives in.
    pub working_dir: String,
    /// Only these services (and what they depend on); all when empty.
    pub services: Vec<String>,
    /// `--scale SERVICE=N`, over deploy.replicas.
    pub scale: BTreeMap<String, u32>,
    /// `--build`: build images even when present.
    pub build: bool,
    /// `--force-recreate`.
    pub force_recreate: bool,
    /// `--no-recreate`.
    pub no_recreate: bool,
    /// `--remove-orphans`: remove containers of services no longer in the file.
    pub remove_orphans: bool,
}

/// `POST /api/v1/stacks/{name}/down` (`berth compose down`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct StackDown {
    /// `-v`: remove named volumes declared in the file and anonymous volumes.
    pub volumes: bool,
    pub remove_orphans: bool,
    /// `-t`, seconds.
    pub timeout: Option<u32>,
}

/// One line of what a stack operation did, streamed as JSON lines, e.g. `Container app-web-1
/// Started` as Docker Compose prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StackProgress {
    /// `network`, `volume`, `image` or `container`; `project` for the stream's last line
    /// (`Done`, or `Error` with the message) and for warnings about the whole stack (orphans).
    pub object: String,
    pub name: String,
    /// e.g. `Creating`, `Created`, `Starting`, `Started`, `Healthy`, `Recreated`, `Running`,
    /// `Stopping`, `Stopped`, `Removing`, `Removed`, `Pulling`, `Pulled`, `Building`, `Built`,
    /// `Waiting`, `Exited` (a dependency that completed), `Warning` (with the message), `Error`,
    /// and `Done` on the last line.
    pub action: String,
    /// The message of an `Error` or a `Warning`; otherwise empty.
    pub message: String,
}

/// One row of `berth compose ls` and of the stacks page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StackSummary {
    pub name: String,
    /// As `docker compose ls` shows it: `running(2), exited(1)`.
    pub status: String,
    pub working_dir: String,
    pub services: usize,
    pub containers: usize,
}

/// `GET /api/v1/stacks/{name}`: the stack's services and their containers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StackInspect {
    pub name: String,
    pub working_dir: String,
    pub services: Vec<StackService>,
    /// Network and volume names the stack made.
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StackService {
    pub name: String,
    pub image: String,
    /// Replicas asked for.
    pub replicas: u32,
    pub containers: Vec<ContainerSummary>,
}

/// One line of a stack's aggregated logs (`berth compose logs`, the stacks page): a container's
/// [`crate::LogEntry`] with the container and service it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StackLogEntry {
    /// e.g. `app-web-1`.
    pub container: String,
    pub service: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// RFC 3339 with nanoseconds.
    pub time: String,
    /// The line, including its trailing newline when it had one.
    pub line: String,
}
