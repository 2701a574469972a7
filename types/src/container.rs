//! Containers on the wire: what `create`/`run` ask for, what `ps` and `inspect` show, and the
//! streams of `logs`, `stats`, `attach` and `exec`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `POST /api/v1/containers`: everything `berth create` / `berth run` can ask for. Fields left
/// empty take the image's values (cmd, entrypoint, env, working dir, user, stop signal) or
/// Docker's defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct ContainerConfig {
    /// Image reference or ID.
    pub image: String,
    /// `--name`; generated (Docker-style adjective_name) when empty.
    pub name: Option<String>,
    /// Replaces the image's CMD when not empty.
    pub cmd: Vec<String>,
    /// `--entrypoint`; `Some(vec![])` clears the image's entrypoint (as `--entrypoint ""` does).
    pub entrypoint: Option<Vec<String>>,
    /// `KEY=VALUE` entries merged over the image's env (`-e`, `--env-file`, resolved by the CLI).
    pub env: Vec<String>,
    /// `-w`.
    pub working_dir: Option<String>,
    /// `-u`: `name`, `uid`, `name:group`, `uid:gid`, resolved in the image's /etc/passwd and /etc/group.
    pub user: Option<String>,
    /// `--hostname`; the short container ID when empty, as Docker does.
    pub hostname: Option<String>,
    /// `-l`.
    pub labels: BTreeMap<String, String>,
    /// `-t`: a pseudo-terminal for the process.
    pub tty: bool,
    /// `-i`: keep stdin open.
    pub open_stdin: bool,
    /// `--rm`.
    pub auto_remove: bool,
    /// `--restart`.
    pub restart_policy: RestartPolicy,
    /// `--runtime`: `berth` (built-in, the default), `runc` or `crun`.
    pub runtime: Option<String>,
    /// `--read-only`: the root filesystem is mounted read-only.
    pub read_only: bool,
    /// `--cap-add` / `--cap-drop`, e.g. `NET_ADMIN`, `CAP_NET_ADMIN` or `ALL`.
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// `--privileged`: every capability, the host's devices, no seccomp filter, no masked or
    /// read-only paths, `/sys` writable. Left out of the JSON when unset (as the three below),
    /// so that configs stored before these options serialise as they did (compose's hash).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub privileged: bool,
    /// `--security-opt`: `no-new-privileges[=true|false]`, `seccomp=unconfined|builtin|JSON` (the
    /// profile's content: the CLI reads the file, as Docker's does), `apparmor=...` and
    /// `label=...` (accepted, berth applies no LSM profile).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    /// `--device`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<crate::security::DeviceMapping>,
    /// `--ulimit`, over the default `nofile` limit.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ulimits: Vec<crate::security::Ulimit>,
    /// `--group-add`: more groups for the process, by number or by name (the image's
    /// /etc/group), added to those of its user.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub group_add: Vec<String>,
    /// Paths in the container hidden from the process (Docker's `HostConfig.MaskedPaths`):
    /// `None` keeps the defaults (`/proc/kcore`, `/proc/keys`, ...), `Some` replaces them. A
    /// privileged container has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub masked_paths: Option<Vec<String>>,
    /// Paths made read-only for the process (Docker's `HostConfig.ReadonlyPaths`), as
    /// `masked_paths`: `None` keeps the defaults (`/proc/sys`, ...), `Some` replaces them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readonly_paths: Option<Vec<String>>,
    /// `--userns`: `host` keeps the container in the host's user namespace when the daemon
    /// remaps (`--userns-remap`); empty: the daemon's choice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub userns_mode: Option<String>,
    /// `--init`: run a minimal init as PID 1 that reaps zombies and forwards signals.
    pub init: bool,
    /// `--stop-signal`; the image's STOPSIGNAL or SIGTERM when empty.
    pub stop_signal: Option<String>,
    /// `--stop-timeout` in seconds (default 10).
    pub stop_timeout: Option<u32>,
    pub resources: Resources,
    /// `--network`: `bridge` (the default network), `none`, `host`, `container:NAME|ID`, or the
    /// name or ID of a user-defined network. Empty means the daemon's default (`bridge`).
    pub network: Option<String>,
    /// `--network-alias`: more DNS names on a user-defined network.
    pub network_aliases: Vec<String>,
    /// `--ip`: a fixed IPv4 address on the network.
    pub ipv4_address: Option<String>,
    /// `-p`, one entry per port (ranges expanded by the CLI).
    pub ports: Vec<crate::network::PortBinding>,
    /// `-P`: publish every exposed port (image EXPOSE and `--expose`) on a free host port.
    pub publish_all: bool,
    /// `--expose`, e.g. `80/tcp`.
    pub expose: Vec<String>,
    /// `-v`, `--mount`, `--tmpfs`, as the CLI resolved them.
    pub mounts: Vec<crate::volume::Mount>,
    /// `--health-*` / `--no-healthcheck`, merged over the image's HEALTHCHECK.
    pub healthcheck: Option<crate::health::HealthConfig>,
    /// `--log-driver`: `json-file` or `local` (both write berth's JSON-lines log); empty: the
    /// default, `json-file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_driver: Option<String>,
    /// `--log-opt KEY=VALUE`: `max-size` and `max-file`, as Docker's json-file driver.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub log_opts: BTreeMap<String, String>,
}

/// Limits applied through cgroups. `None` means no limit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct Resources {
    /// `-m`, bytes.
    pub memory: Option<u64>,
    /// `--cpus`, e.g. 1.5.
    pub cpus: Option<f64>,
    /// `--pids-limit`.
    pub pids_limit: Option<i64>,
}

/// `--restart`: `no`, `on-failure[:max-retries]`, `always`, `unless-stopped`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "name", rename_all = "kebab-case", deny_unknown_fields)]
pub enum RestartPolicy {
    #[default]
    No,
    OnFailure {
        /// 0 means no limit.
        #[serde(default)]
        max_retries: u32,
    },
    Always,
    UnlessStopped,
}

/// `created`, `running`, `paused`, `restarting`, `removing`, `exited`, `dead`, as Docker names them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ContainerStatus {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

/// The state part of `inspect`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContainerState {
    pub status: ContainerStatus,
    /// Host PID of the container's first process while it runs, else 0.
    pub pid: i32,
    /// Exit code of the last run (128+signal when killed by a signal).
    pub exit_code: i32,
    pub oom_killed: bool,
    /// Why the last start failed, if it did (e.g. `exec: "nope": executable file not found in $PATH`).
    pub error: String,
    /// RFC 3339; empty until the first start / exit.
    pub started_at: String,
    pub finished_at: String,
    pub restart_count: u32,
    /// Present while a container with a health check runs.
    #[serde(default)]
    pub health: Option<crate::health::Health>,
}

/// One row of `berth ps`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContainerSummary {
    /// 64 hex digits.
    pub id: String,
    pub name: String,
    /// The image as the user named it.
    pub image: String,
    pub image_id: String,
    /// Entrypoint and command, as `ps` shows them.
    pub command: String,
    pub created: String,
    pub state: ContainerState,
    /// Docker's human status column, e.g. `Up 2 minutes`, `Exited (0) 3 seconds ago`.
    pub status: String,
    pub labels: BTreeMap<String, String>,
    /// Published ports while it runs (`0.0.0.0:8080->80/tcp`).
    #[serde(default)]
    pub ports: Vec<crate::network::PublishedPort>,
    /// Names of the networks it is attached to.
    #[serde(default)]
    pub networks: Vec<String>,
}

/// `berth inspect CONTAINER`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContainerInspect {
    pub id: String,
    pub name: String,
    pub created: String,
    pub image: String,
    pub image_id: String,
    /// What the process runs: entrypoint + cmd after merging with the image.
    pub path: String,
    pub args: Vec<String>,
    pub state: ContainerState,
    /// The request as stored (after defaults from the image were applied).
    pub config: ContainerConfig,
    /// `berth`, `runc` or `crun`.
    pub runtime: String,
    pub snapshotter: String,
    pub log_path: String,
    pub restart_count: u32,
    #[serde(default)]
    pub network_settings: crate::network::NetworkSettings,
    #[serde(default)]
    pub mounts: Vec<crate::volume::MountPoint>,
}

/// One line of a container's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogEntry {
    /// `stdout` or `stderr`.
    pub stream: String,
    /// RFC 3339 with nanoseconds.
    pub time: String,
    /// The line, including its trailing newline when it had one.
    pub line: String,
}

/// One sample of `berth stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContainerStats {
    pub id: String,
    pub name: String,
    pub read: String,
    /// CPU use since the previous sample, in percent of one CPU × CPUs (as Docker computes it).
    pub cpu_percent: f64,
    /// Total CPU time used, nanoseconds.
    pub cpu_usage_ns: u64,
    pub memory_usage: u64,
    /// Page cache not used lately (`inactive_file`), the first memory the kernel reclaims.
    #[serde(default)]
    pub memory_inactive_file: u64,
    /// The memory limit, or the host's memory when there is none.
    pub memory_limit: u64,
    pub pids: u64,
    /// Traffic of each network interface in the container's own network namespace (none for
    /// the host's network; the loopback is not counted, as Docker).
    #[serde(default)]
    pub networks: BTreeMap<String, NetworkIo>,
    /// Bytes read from and written to each block device, from the container's cgroup.
    #[serde(default)]
    pub block_io: Vec<BlockIo>,
}

impl ContainerStats {
    /// Memory in use without the page cache not used lately: what `docker stats` shows (and
    /// kubelet calls the working set).
    pub fn memory_in_use(&self) -> u64 {
        self.memory_usage.saturating_sub(self.memory_inactive_file)
    }
}

/// Counters of one network interface, as the kernel keeps them (`/proc/net/dev`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NetworkIo {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// Bytes a container's processes read from and wrote to one block device (`MAJOR:MINOR`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BlockIo {
    pub major: u64,
    pub minor: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
}

/// `POST /api/v1/containers/{id}/exec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct ExecConfig {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub tty: bool,
    pub open_stdin: bool,
}

/// `berth top`: `ps`-like titles and rows for the processes in a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TopReport {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

/// Result of `POST /api/v1/containers` and of `run`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedContainer {
    pub id: String,
    pub warnings: Vec<String>,
}

/// Result of `POST /api/v1/containers/{id}/wait`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WaitResult {
    pub status_code: i32,
}

/// `POST /api/v1/containers/prune`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContainerPruneReport {
    pub containers_deleted: Vec<String>,
    pub space_reclaimed: u64,
}

/// Control messages on an attach or exec WebSocket (text frames; data travels in binary frames).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamControl {
    /// Client → daemon: the terminal's new size.
    Resize { cols: u16, rows: u16 },
    /// Client → daemon: no more stdin.
    CloseStdin,
    /// Daemon → client: the process ended; the last message before the close.
    Exit { code: i32 },
    /// Daemon → client: output was dropped because the client read too slowly.
    Dropped { bytes: u64 },
    /// Daemon → client: something failed; the stream ends.
    Error { message: String },
}

/// The error answer (HTTP 400) of `start` and `exec` when the command could not be executed: the
/// message plus Docker's exit code for it (126 not executable, 127 not found), which `run` exits
/// with. Readable as an [`crate::ErrorBody`] too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommandError {
    pub message: String,
    pub exit_code: i32,
}

impl ContainerState {
    /// Docker's human status column at `now`: `Created`, `Up 2 minutes`, `Up 5 seconds
    /// (Paused)`, `Restarting (1) 3 seconds ago`, `Exited (0) 3 seconds ago`, `Removal In
    /// Progress`, `Dead`.
    pub fn human_status(&self, now: chrono::DateTime<chrono::Utc>) -> String {
        use crate::format::{human_duration, parse_time};
        let since = |time: &str| parse_time(time).map(|t| human_duration((now - t).num_seconds()));
        match self.status {
            ContainerStatus::Running => match &self.health {
                Some(health) => format!(
                    "Up {} {}",
                    since(&self.started_at).unwrap_or_default(),
                    health.status.ps_suffix()
                ),
                None => format!("Up {}", since(&self.started_at).unwrap_or_default()),
            },
            ContainerStatus::Paused => {
                format!("Up {} (Paused)", since(&self.started_at).unwrap_or_default())
            }
            ContainerStatus::Restarting => format!(
                "Restarting ({}) {} ago",
                self.exit_code,
                since(&self.finished_at).unwrap_or_default()
            ),
            ContainerStatus::Removing => "Removal In Progress".into(),
            ContainerStatus::Dead => "Dead".into(),
            // A container whose start failed was never up: Docker still calls it created.
            ContainerStatus::Created => "Created".into(),
            ContainerStatus::Exited if parse_time(&self.started_at).is_none() => "Created".into(),
            ContainerStatus::Exited => match since(&self.finished_at) {
                Some(ago) => format!("Exited ({}) {ago} ago", self.exit_code),
                None => format!("Exited ({})", self.exit_code),
            },
        }
    }
}

impl ContainerStatus {
    /// The name as the API and `ps --filter status=` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerStatus::Created => "created",
            ContainerStatus::Running => "running",
            ContainerStatus::Paused => "paused",
            ContainerStatus::Restarting => "restarting",
            ContainerStatus::Removing => "removing",
            ContainerStatus::Exited => "exited",
            ContainerStatus::Dead => "dead",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(status: ContainerStatus, exit_code: i32, started: &str, finished: &str) -> ContainerState {
        ContainerState {
            status,
            pid: 0,
            exit_code,
            oom_killed: false,
            error: String::new(),
            started_at: started.into(),
            finished_at: finished.into(),
            restart_count: 0,
            health: None,
        }
    }

    #[test]
    fn statuses_read_like_docker() {
        let now = chrono::DateTime::parse_from_rfc3339("2024-01-01T01:00:00Z").unwrap().to_utc();
        let cases = [
            (state(ContainerStatus::Created, 0, "", ""), "Created"),
            (state(ContainerStatus::Running, 0, "2024-01-01T00:58:00Z", ""), "Up 2 minutes"),
            (state(ContainerStatus::Running, 0, "2024-01-01T00:59:59.5Z", ""), "Up Less than a second"),
            (state(ContainerStatus::Paused, 0, "2024-01-01T00:59:30Z", ""), "Up 30 seconds (Paused)"),
            (
                state(ContainerStatus::Restarting, 1, "2024-01-01T00:00:00Z", "2024-01-01T00:59:57Z"),
                "Restarting (1) 3 seconds ago",
            ),
            (
                state(ContainerStatus::Exited, 0, "2024-01-01T00:00:00Z", "2024-01-01T00:59:57Z"),
                "Exited (0) 3 seconds ago",
            ),
            (
                state(ContainerStatus::Exited, 137, "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z"),
                "Exited (137) About an hour ago",
            ),
            // The start failed (exit 127): never up, so still "Created" as Docker shows it.
            (state(ContainerStatus::Exited, 127, "", ""), "Created"),
            (state(ContainerStatus::Dead, 0, "", ""), "Dead"),
            (state(ContainerStatus::Removing, 0, "", ""), "Removal In Progress"),
        ];
        for (state, want) in cases {
            assert_eq!(state.human_status(now), want, "{state:?}");
        }
    }
}
