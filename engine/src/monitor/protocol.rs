//! What the daemon and a monitor exchange: the monitor's configuration file, the state file it
//! keeps, and the messages on its unix socket.
//!
//! Every connection starts with one JSON line from the client (a [`Request`]). One-shot
//! requests get one JSON line back (a [`Reply`]) and the connection closes. `watch` gets the
//! current [`RunState`] and then a line for every change, until the monitor exits. `attach` and
//! `exec` get a [`Reply`] line and then binary frames both ways: one byte of kind, four bytes of
//! big-endian length, the payload.

use std::path::PathBuf;

use berth_types::container::{ContainerStatus, RestartPolicy};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Monitor → client: output of the process on stdout (or its pty).
pub const FRAME_STDOUT: u8 = 1;
/// Monitor → client: output on stderr.
pub const FRAME_STDERR: u8 = 2;
/// Monitor → client: the process exited; payload is the exit code as a big-endian i32. Last frame.
pub const FRAME_EXIT: u8 = 3;
/// Monitor → client: this many bytes (big-endian u64) were dropped because the client was slow.
pub const FRAME_DROPPED: u8 = 4;
/// Client → monitor: bytes for the process's stdin.
pub const FRAME_STDIN: u8 = 16;
/// Client → monitor: close the process's stdin.
pub const FRAME_CLOSE_STDIN: u8 = 17;
/// Client → monitor: terminal size, big-endian u16 cols then u16 rows.
pub const FRAME_RESIZE: u8 = 18;
/// Client → monitor: kill the exec'd process (SIGKILL), as a CRI ExecSync that timed out does.
/// Ignored from an attach client.
pub const FRAME_KILL: u8 = 19;

/// Largest frame payload either side sends or accepts.
pub const MAX_FRAME: usize = 64 * 1024;

/// The monitor's configuration, written by the daemon to `<container dir>/monitor.json` before
/// it starts the monitor with `monitor <container dir>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorConfig {
    /// Container ID (64 hex digits); the runtime's container ID too.
    pub id: String,
    /// The OCI bundle directory (holds `config.json`).
    pub bundle: PathBuf,
    /// `berth`, `runc` or `crun`.
    pub runtime: String,
    /// The runtimes' state directory.
    pub runtime_state_root: PathBuf,
    /// The unix socket the monitor listens on.
    pub socket: PathBuf,
    /// The log file (JSON lines of [`berth_types::LogEntry`]).
    pub log: PathBuf,
    /// The state file ([`RunState`]), rewritten atomically on every change.
    pub state: PathBuf,
    /// `-t`: a pseudo-terminal instead of pipes.
    pub tty: bool,
    /// `-i`: stdin is a pipe the monitor keeps open (else /dev/null).
    pub open_stdin: bool,
    pub restart_policy: RestartPolicy,
    /// The health check to run (HEALTHCHECK / `--health-*`, defaults filled in); `None`: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<berth_types::health::HealthConfig>,
    /// When the log is rotated (`--log-opt max-size/max-file`).
    #[serde(default)]
    pub log_rotation: super::log_file::LogRotation,
}

/// A container's run state: what the monitor last wrote to the state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    pub status: ContainerStatus,
    /// Host PID of the container's first process while it runs, else 0.
    pub pid: i32,
    pub exit_code: i32,
    pub oom_killed: bool,
    /// Why the last start failed, or why the container is dead.
    pub error: String,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Restarts done by the restart policy since the last start by the user.
    pub restart_count: u32,
    /// PID of the monitor serving the container, 0 when none does.
    pub monitor_pid: i32,
    /// Stopped or killed by the user: the restart policy does not apply to this exit.
    pub stopped_by_user: bool,
    /// Incremented on every write, so that a reader can tell a newer state from an older one
    /// (the state file and the watch lines race).
    #[serde(default)]
    pub seq: u64,
    /// The health check's status, failing streak and last probes (health checks only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<berth_types::health::Health>,
}

impl RunState {
    /// The state of a container that was created and never started.
    pub fn created() -> RunState {
        RunState {
            status: ContainerStatus::Created,
            pid: 0,
            exit_code: 0,
            oom_killed: false,
            error: String::new(),
            started_at: None,
            finished_at: None,
            restart_count: 0,
            monitor_pid: 0,
            stopped_by_user: false,
            seq: 0,
            health: None,
        }
    }

    /// Running, paused or waiting to be restarted: the container is live and has a monitor.
    pub fn is_live(&self) -> bool {
        matches!(
            self.status,
            ContainerStatus::Running | ContainerStatus::Paused | ContainerStatus::Restarting
        )
    }
}

/// The first line a client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// Start the container (again, if it exited). Replies once the command was executed.
    Start,
    /// Send a signal to the container's first process. `stop`: the user stopped it, so the
    /// restart policy does not apply (also cancels a pending restart).
    Kill {
        signal: i32,
        stop: bool,
    },
    Pause,
    Resume,
    /// Exit if the container is not live (for removing a created container).
    Shutdown,
    /// Stream [`RunState`] lines.
    Watch,
    /// Stream the container's output; forward stdin when `stdin`.
    Attach {
        stdin: bool,
    },
    /// Apply this restart policy from now on (`docker update --restart`).
    SetRestartPolicy {
        restart_policy: RestartPolicy,
    },
    /// Run another process in the container and stream its stdio.
    Exec {
        process: Box<oci_spec::runtime::Process>,
        tty: bool,
        open_stdin: bool,
    },
}

/// The answer to a request: empty for success (with the process ID for start and exec).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ReplyError>,
    #[serde(default)]
    pub pid: i32,
}

/// An engine error carried across the socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReplyError {
    Command { exit_code: i32, message: String },
    InvalidInput { message: String },
    Conflict { message: String },
    Other { message: String },
}

impl From<&Error> for ReplyError {
    fn from(e: &Error) -> ReplyError {
        match e {
            Error::CommandFailed { exit_code, message } => {
                ReplyError::Command { exit_code: *exit_code, message: message.clone() }
            }
            Error::InvalidInput(message) => ReplyError::InvalidInput { message: message.clone() },
            // Rebuilt as a Conflict on the other side: the same status, the same sentence.
            Error::Conflict(message) => ReplyError::Conflict { message: message.clone() },
            other => ReplyError::Other { message: other.to_string() },
        }
    }
}

impl From<ReplyError> for Error {
    fn from(e: ReplyError) -> Error {
        match e {
            ReplyError::Command { exit_code, message } => Error::CommandFailed { exit_code, message },
            ReplyError::InvalidInput { message } => Error::InvalidInput(message),
            ReplyError::Conflict { message } => Error::Conflict(message),
            ReplyError::Other { message } => Error::Runtime(message),
        }
    }
}

/// Appends one frame to `out`.
pub fn push_frame(out: &mut Vec<u8>, kind: u8, payload: &[u8]) {
    out.push(kind);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
}

/// Splits the first complete frame off `buf`: `Ok(None)` when more bytes are needed, an error
/// for a frame larger than [`MAX_FRAME`].
pub fn take_frame(buf: &mut Vec<u8>) -> Result<Option<(u8, Vec<u8>)>, String> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if len > MAX_FRAME {
        return Err(format!("frame of {len} bytes is too large"));
    }
    if buf.len() < 5 + len {
        return Ok(None);
    }
    let kind = buf[0];
    let payload = buf[5..5 + len].to_vec();
    buf.drain(..5 + len);
    Ok(Some((kind, payload)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_wait_for_more_bytes() {
        let mut buf = Vec::new();
        push_frame(&mut buf, FRAME_STDOUT, b"hello");
        push_frame(&mut buf, FRAME_EXIT, &3i32.to_be_bytes());
        let mut partial = buf[..7].to_vec();
        assert_eq!(take_frame(&mut partial).unwrap(), None);
        assert_eq!(take_frame(&mut buf).unwrap(), Some((FRAME_STDOUT, b"hello".to_vec())));
        assert_eq!(take_frame(&mut buf).unwrap(), Some((FRAME_EXIT, 3i32.to_be_bytes().to_vec())));
        assert!(buf.is_empty());
    }

    #[test]
    fn an_oversized_frame_is_refused() {
        let mut buf = vec![FRAME_STDIN];
        buf.extend_from_slice(&(MAX_FRAME as u32 + 1).to_be_bytes());
        assert!(take_frame(&mut buf).is_err());
    }

    #[test]
    fn command_errors_keep_their_exit_code_across_the_socket() {
        let e = Error::CommandFailed { exit_code: 127, message: "exec: \"nope\": not found".into() };
        let line = serde_json::to_string(&Reply { error: Some((&e).into()), pid: 0 }).unwrap();
        let back: Reply = serde_json::from_str(&line).unwrap();
        match Error::from(back.error.unwrap()) {
            Error::CommandFailed { exit_code: 127, message } => assert!(message.contains("nope")),
            other => panic!("unexpected {other:?}"),
        }
    }
}
