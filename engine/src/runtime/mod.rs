//! OCI runtimes: turn a runtime bundle (`config.json` + root filesystem) into an isolated process.
//!
//! [`spec`] builds the bundle's [`Spec`] from an image and a [`ContainerConfig`]; a [`Runtime`]
//! runs it. Three runtimes share one bundle format, so they are interchangeable (`--runtime`)
//! and comparable on the same bundle:
//!
//! - [`RuntimeKind::Builtin`] (`berth`): namespaces, mounts, cgroups and exec done in-process on
//!   `nix` (runtime::builtin), the fast default;
//! - [`RuntimeKind::Runc`] and [`RuntimeKind::Crun`]: the external OCI runtimes, driven through
//!   their command line (runtime::external).
//!
//! # Who calls this, and how
//!
//! The [`Runtime`] trait is used *inside the container's monitor process* (plain blocking code,
//! no tokio). Its contract:
//!
//! - **Reaping.** [`Runtime::start`] and [`Runtime::exec`] return the host PID of the new
//!   process, and that process is a *child of the caller* (the built-in runtime forks it
//!   directly; the external ones rely on `PR_SET_CHILD_SUBREAPER`, which they set on the calling
//!   process themselves). The caller reaps it with `waitpid(pid)` and gets its wait status. The
//!   runtimes start and reap helper processes of their own (`runc`, `crun`, intermediate forks)
//!   *by PID*, so the caller must not reap children it does not know with `waitpid(-1)` while a
//!   runtime call is in progress (reaping by PID, or `waitpid(-1)` between calls, is fine).
//!   When `start`/`exec` fail, nothing is left to reap. Reap exec'd processes promptly: a zombie
//!   in the container's PID namespace keeps the container's init from finishing to die.
//! - **File descriptors.** [`Stdio::Fds`] hands over three descriptors that become the process's
//!   stdin, stdout and stderr; the runtime consumes them (they are closed in the caller when the
//!   call returns). With [`Stdio::Terminal`] the runtime allocates a pseudo-terminal, makes its
//!   slave the process's controlling terminal and fds 0, 1 and 2, and returns the *master* in
//!   [`Started::terminal`] (runc/crun hand it over through `--console-socket`). No other
//!   descriptor of the caller leaks into the container: the runtimes open everything with
//!   `O_CLOEXEC` and the caller should too.
//! - **Errors.** A command that cannot be executed comes back as [`Error::CommandFailed`]
//!   carrying Docker's exit code and message: 127 for `exec: "nope": executable file not found
//!   in $PATH` (also for a missing working directory's binary), 126 for `exec: "/etc":
//!   permission denied`. Bad limits come back as [`Error::InvalidInput`]; everything else
//!   (namespaces, mounts, cgroups, a failing runc) as [`Error::Runtime`] or [`Error::Io`].
//! - **Lifecycle.** `start` → (the process runs; `kill`, `pause`/`resume`, `stats`, `pids`,
//!   `exec`) → the caller reaps the process → `stats` (to read the OOM kill count of that run) →
//!   `delete` (removes the cgroup and the runtime's state; also kills what is left). A restart
//!   is `delete` followed by `start` on the same bundle. `delete` of an unknown ID is not an
//!   error, so cleanup is idempotent.
//!
//! Runtime state (PIDs, cgroup paths, runc's `--root`) lives under [`RuntimeConfig::state_root`],
//! e.g. `/run/berth/runtime`, so a new daemon or monitor finds running containers again.

pub mod builtin;
pub mod cgroup;
#[cfg(test)]
mod compare_tests;
pub mod external;
#[cfg(test)]
mod external_tests;
pub mod seccomp;
pub mod spec;
#[cfg(test)]
pub(crate) mod testutil;
pub mod userns;

use std::fmt;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::str::FromStr;

use oci_spec::runtime::Process;

use crate::error::{Error, Result};

pub use spec::{add_user_mounts, build_exec_process, build_spec, read_bundle, write_bundle, UserMount};

#[allow(unused_imports)] // named in the docs
use berth_types::container::ContainerConfig;
#[allow(unused_imports)]
use oci_spec::runtime::Spec;

/// The runtime of `kind`, keeping its state under `config.state_root`.
pub fn new_runtime(kind: RuntimeKind, config: &RuntimeConfig) -> Result<Box<dyn Runtime>> {
    match kind {
        RuntimeKind::Builtin => Ok(Box::new(builtin::Builtin::new(config)?)),
        RuntimeKind::Runc | RuntimeKind::Crun => Ok(Box::new(external::External::new(kind, config)?)),
    }
}

/// Which OCI runtime runs a container (`--runtime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RuntimeKind {
    /// berth's own runtime, named `berth` on the command line.
    #[default]
    Builtin,
    Runc,
    Crun,
}

impl RuntimeKind {
    /// The name used on the command line and in `inspect`.
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeKind::Builtin => "berth",
            RuntimeKind::Runc => "runc",
            RuntimeKind::Crun => "crun",
        }
    }
}

impl fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RuntimeKind {
    type Err = Error;

    /// `berth` (or empty), `runc`, `crun`; anything else is Docker's "unknown or invalid runtime
    /// name" naming the choices.
    fn from_str(s: &str) -> Result<RuntimeKind> {
        match s {
            "" | "berth" => Ok(RuntimeKind::Builtin),
            "runc" => Ok(RuntimeKind::Runc),
            "crun" => Ok(RuntimeKind::Crun),
            other => Err(Error::InvalidInput(format!(
                "unknown or invalid runtime name: {other} (choose berth, runc or crun)"
            ))),
        }
    }
}

/// Where runtimes keep their state.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Runtime state directory, e.g. `/run/berth/runtime` (tmpfs: state must not outlive a
    /// reboot). Each runtime uses a subdirectory of it.
    pub state_root: PathBuf,
}

/// The standard streams of a process a runtime starts.
#[derive(Debug)]
pub enum Stdio {
    /// stdin, stdout and stderr, in that order. Consumed by the runtime.
    Fds([OwnedFd; 3]),
    /// A new pseudo-terminal of that size (`-t`): its slave becomes the process's controlling
    /// terminal and fds 0-2; the master comes back in [`Started::terminal`].
    Terminal { cols: u16, rows: u16 },
}

/// A process a runtime started.
#[derive(Debug)]
pub struct Started {
    /// Host PID; a child of the caller, who reaps it.
    pub pid: i32,
    /// The pty master for [`Stdio::Terminal`], else `None`.
    pub terminal: Option<OwnedFd>,
}

/// Resource use of a container, read from its cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupStats {
    /// Total CPU time, nanoseconds.
    pub cpu_usage_ns: u64,
    /// Memory in use, bytes (page cache included, as the kernel counts it).
    pub memory_usage: u64,
    /// The part of that page cache not used lately (`inactive_file`).
    pub memory_inactive_file: u64,
    /// The memory limit in bytes, `None` when there is none.
    pub memory_limit: Option<u64>,
    /// Number of processes and threads.
    pub pids: u64,
    /// How many times the kernel's OOM killer killed a process of this cgroup.
    pub oom_kills: u64,
    /// Bytes read and written per block device.
    pub block_io: Vec<berth_types::BlockIo>,
}

/// An OCI runtime, as the monitor uses it. See the [module docs](self) for who reaps, which
/// descriptors are consumed and which errors come back. `id` is the container ID (64 hex
/// digits); the bundle's `config.json` carries everything else.
pub trait Runtime: Send + Sync {
    /// Which runtime this is.
    fn kind(&self) -> RuntimeKind;

    /// Creates the container from the bundle in `bundle` (its `config.json`, see
    /// [`spec::write_bundle`]) and starts its process: namespaces, cgroup and limits, mounts,
    /// then exec of `process.args`. Returns once the command was executed (or failed to be:
    /// [`Error::CommandFailed`] with 126/127). The process is a child of the caller.
    fn start(&self, id: &str, bundle: &std::path::Path, stdio: Stdio) -> Result<Started>;

    /// Clears what an earlier run of `id` left (as [`Runtime::delete`]) and does ahead the
    /// part of the next [`Runtime::start`] that needs no process, so that the start itself is
    /// shorter: the monitor calls it while it waits for the start. A start whose bundle
    /// changed since reads it again. The default only clears.
    fn prepare(&self, id: &str, _bundle: &std::path::Path) -> Result<()> {
        self.delete(id)
    }

    /// Runs another process in the running container `id`: joins its namespaces and cgroup,
    /// takes user, env, cwd, capabilities and rlimits from `process` (see
    /// [`spec::build_exec_process`]). The process is a child of the caller.
    fn exec(&self, id: &str, process: &Process, stdio: Stdio) -> Result<Started>;

    /// Sends `signal` (a number, e.g. `libc::SIGTERM`) to the container's first process, or to
    /// every process in its cgroup when `all`.
    fn kill(&self, id: &str, signal: i32, all: bool) -> Result<()>;

    /// Freezes every process of the container (freezer v1, `cgroup.freeze` v2) and returns once
    /// they are frozen.
    fn pause(&self, id: &str) -> Result<()>;

    /// Thaws a paused container.
    fn resume(&self, id: &str) -> Result<()>;

    /// One sample of the container's resource use.
    fn stats(&self, id: &str) -> Result<CgroupStats>;

    /// Host PIDs of every process in the container (for `top`).
    fn pids(&self, id: &str) -> Result<Vec<i32>>;

    /// Kills what is left of the container with SIGKILL, removes its cgroup and its runtime
    /// state (also what [`Runtime::prepare`] made). Not an error when the container does not
    /// exist (any more).
    fn delete(&self, id: &str) -> Result<()>;
}
