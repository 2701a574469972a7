//! runc and crun, driven through their command line on the same bundles as the built-in
//! runtime: `run -d` (create + start in one call) with berth's stdio passed through, or a pty
//! received over `--console-socket`; state under a berth-owned `--root`; errors from the JSON
//! `--log`.
//!
//! The container's first process is a child of `runc`, which exits once it started it; the
//! caller is made a child subreaper so that the process is re-parented to it and it can reap it.

use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use oci_spec::runtime::Process;
use serde::{Deserialize, Serialize};

use super::cgroup::{self, layout, Cgroup};
use super::spec::read_bundle;
use super::{CgroupStats, Runtime, RuntimeConfig, RuntimeKind, Started, Stdio};
use crate::error::{Error, IoContext, Result};

/// What berth remembers of a container run by runc/crun (`<state>/<runc|crun>/<id>.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    cgroups_path: PathBuf,
}

/// runc or crun.
#[derive(Debug, Clone)]
pub struct External {
    kind: RuntimeKind,
    binary: PathBuf,
    /// berth's own state directory for this runtime; also its `--root`.
    dir: PathBuf,
}

/// Finds `name` in $PATH.
fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

impl External {
    /// runc or crun (from $PATH), with state under `config.state_root/<name>`.
    pub fn new(kind: RuntimeKind, config: &RuntimeConfig) -> Result<External> {
        let name = match kind {
            RuntimeKind::Runc => "runc",
            RuntimeKind::Crun => "crun",
            RuntimeKind::Builtin => {
                return Err(Error::InvalidInput("the built-in runtime is not external".into()))
            }
        };
        let binary = find_binary(name).ok_or_else(|| {
            Error::Unsupported(format!("runtime {name} is not installed (not found in $PATH)"))
        })?;
        let dir = config.state_root.join(name);
        fs::create_dir_all(&dir).context(|| format!("creating {}", dir.display()))?;
        Ok(External { kind, binary, dir })
    }

    fn file(&self, id: &str, ext: &str) -> PathBuf {
        self.dir.join(format!("{id}.{ext}"))
    }

    /// The runtime's command with `--root` and a JSON `--log` for this container. crun refuses
    /// hybrid cgroups: on such a host it runs in a private mount namespace where the cgroup2
    /// mount is detached, so it sees (and uses) the v1 controllers only.
    fn command(&self, id: &str) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root")
            .arg(&self.dir)
            .arg("--log")
            .arg(self.file(id, "log"))
            .arg("--log-format")
            .arg("json");
        if self.kind == RuntimeKind::Crun && !layout().v1.is_empty() {
            if let Some(unified) = layout().unified.clone() {
                let unified =
                    std::ffi::CString::new(unified.as_os_str().as_encoded_bytes()).unwrap_or_default();
                // SAFETY: only async-signal-safe syscalls between fork and exec; the C string was
                // allocated before the fork.
                unsafe {
                    cmd.pre_exec(move || {
                        if libc::unshare(libc::CLONE_NEWNS) != 0
                            || libc::mount(
                                c"none".as_ptr(),
                                c"/".as_ptr(),
                                std::ptr::null(),
                                libc::MS_REC | libc::MS_PRIVATE,
                                std::ptr::null(),
                            ) != 0
                            || libc::umount2(unified.as_ptr(), libc::MNT_DETACH) != 0
                        {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
            }
        }
        cmd
    }

    /// The last error the runtime logged for `id`, else its stderr.
    fn logged_error(&self, id: &str, stderr: &[u8]) -> String {
        let log = fs::read_to_string(self.file(id, "log")).unwrap_or_default();
        let from_log = log
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| matches!(v["level"].as_str(), Some("error") | Some("fatal")))
            .filter_map(|v| v["msg"].as_str().map(String::from))
            .next_back();
        from_log.unwrap_or_else(|| String::from_utf8_lossy(stderr).trim().to_string())
    }

    /// Runs a lifecycle command (`kill`, `pause`, `delete`, ...) to its end.
    fn simple(&self, id: &str, args: &[&str]) -> Result<()> {
        let out = self
            .command(id)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .context(|| format!("running {} {}", self.kind, args.join(" ")))?;
        if out.status.success() {
            return Ok(());
        }
        let message = self.logged_error(id, &out.stderr);
        Err(lifecycle_error(format!("{} {}: {message}", self.kind, args[0])))
    }

    fn cgroup(&self, id: &str) -> Result<Cgroup> {
        let path = match fs::read(self.file(id, "json")) {
            Ok(b) => {
                serde_json::from_slice::<State>(&b)
                    .map_err(|e| Error::Runtime(format!("invalid state of {id}: {e}")))?
                    .cgroups_path
            }
            Err(_) => cgroup::default_path(id),
        };
        Cgroup::new(&path)
    }

    /// Runs `run -d` or `exec -d` with the process's stdio or a console socket, and returns the
    /// PID the runtime wrote.
    fn launch(&self, id: &str, args: &[&std::ffi::OsStr], stdio: Stdio, cmd_name: &str) -> Result<Started> {
        set_subreaper()?;
        let pid_file = self.file(id, &format!("pid-{}", rand::random::<u32>()));
        let mut cmd = self.command(id);
        cmd.args(args).arg("--pid-file").arg(&pid_file);
        let mut listener = None;
        let socket_path = self.file(id, &format!("console-{}", rand::random::<u32>()));
        match stdio {
            Stdio::Fds([stdin, stdout, stderr]) => {
                cmd.stdin(stdin).stdout(stdout).stderr(stderr);
            }
            Stdio::Terminal { .. } => {
                let l = UnixListener::bind(&socket_path)
                    .context(|| format!("binding {}", socket_path.display()))?;
                listener = Some(l);
                cmd.arg("--console-socket").arg(&socket_path);
                cmd.stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null());
            }
        }
        cmd.arg(id);
        let status = cmd.status().context(|| format!("running {}", self.binary.display()));
        let _ = fs::remove_file(&socket_path);
        let status = status?;
        let pid_text = fs::read_to_string(&pid_file).unwrap_or_default();
        let _ = fs::remove_file(&pid_file);
        if !status.success() {
            reap_helpers(0);
            return Err(classify(self.kind, cmd_name, &self.logged_error(id, &[])));
        }
        let pid: i32 = pid_text
            .trim()
            .parse()
            .map_err(|_| Error::Runtime(format!("{} wrote no PID for {id}", self.kind)))?;
        reap_helpers(pid);
        let terminal = match listener {
            Some(l) => {
                l.set_nonblocking(true).context(|| "console socket".into())?;
                let (conn, _) = l.accept().context(|| format!("{} sent no terminal", self.kind))?;
                conn.set_nonblocking(false).context(|| "console socket".into())?;
                Some(super::builtin::recv_fd(&OwnedFd::from(conn))?)
            }
            None => None,
        };
        Ok(Started { pid, terminal })
    }
}

/// Makes orphaned descendants (the container's process once runc exits) children of this
/// process.
fn set_subreaper() -> Result<()> {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(Error::io("PR_SET_CHILD_SUBREAPER", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Reaps the runtime's own helper processes that were re-parented to this (subreaper) process:
/// `runc`/`crun` children that exit after the container's process started, or after an exec
/// failed. Left alone they stay zombies, and a zombie in the container's PID namespace keeps its
/// init from ever finishing to die. Only children named like the runtimes are touched (never
/// `keep`, the container's or exec's process), so processes the caller tracks are safe.
fn reap_helpers(keep: i32) {
    let me = std::process::id() as i32;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let mut pending = false;
        let Ok(dir) = fs::read_dir("/proc") else { return };
        for entry in dir.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
            if pid == keep {
                continue;
            }
            let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
            let comm = &stat[open + 1..close];
            let mut rest = stat[close + 2..].split(' ');
            let (state, ppid) = (rest.next().unwrap_or(""), rest.next().and_then(|p| p.parse::<i32>().ok()));
            if ppid != Some(me) || !(comm.starts_with("runc") || comm.starts_with("crun")) {
                continue;
            }
            if state == "Z" {
                let mut status = 0;
                // SAFETY: reaping our own (re-parented) zombie child by PID.
                unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            } else {
                pending = true;
            }
        }
        if !pending || std::time::Instant::now() > deadline {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// A failed lifecycle command (`kill`, `delete`, ...) as a typed error: runc and crun tell an
/// unknown or stopped container only in their message (exit code 1 for every failure), so this
/// is the one place that reads their wording.
fn lifecycle_error(message: String) -> Error {
    let lower = message.to_lowercase();
    // runc says "container does not exist" and "container not running"; crun "not found".
    if lower.contains("does not exist") || lower.contains("not found") {
        Error::RuntimeNoSuchContainer(message)
    } else if lower.contains("not running") {
        Error::RuntimeNotRunning(message)
    } else {
        Error::Runtime(message)
    }
}

/// Maps runc's and crun's exec failures to Docker's 127/126 and wording.
fn classify(kind: RuntimeKind, cmd: &str, message: &str) -> Error {
    let lower = message.to_lowercase();
    // runc: `exec: "nope": executable file not found in $PATH`; crun: "executable file `nope`
    // not found in $PATH: No such file or directory".
    if lower.contains("not found in $path") {
        return Error::CommandFailed {
            exit_code: 127,
            message: format!("exec: \"{cmd}\": executable file not found in $PATH"),
        };
    }
    let exec_failure = lower.contains("exec:") || lower.contains("exec `") || lower.contains("execv");
    if exec_failure && lower.contains("no such file or directory") {
        return Error::CommandFailed {
            exit_code: 127,
            message: format!("exec: \"{cmd}\": stat {cmd}: no such file or directory"),
        };
    }
    if exec_failure && (lower.contains("permission denied") || lower.contains("is a directory")) {
        return Error::CommandFailed {
            exit_code: 126,
            message: format!("exec: \"{cmd}\": permission denied"),
        };
    }
    Error::Runtime(format!(
        "{kind}: {}",
        if message.is_empty() { "failed without a message" } else { message }
    ))
}

impl Runtime for External {
    fn kind(&self) -> RuntimeKind {
        self.kind
    }

    fn start(&self, id: &str, bundle: &Path, stdio: Stdio) -> Result<Started> {
        super::builtin::validate_id(id)?;
        let spec = read_bundle(bundle)?;
        let process = spec
            .process()
            .as_ref()
            .ok_or_else(|| Error::InvalidInput("runtime spec has no process".into()))?;
        let terminal = process.terminal().unwrap_or(false);
        if terminal != matches!(stdio, Stdio::Terminal { .. }) {
            return Err(Error::InvalidInput(format!(
                "the bundle's process.terminal is {terminal} but the caller {} a terminal",
                if terminal { "did not ask for" } else { "asked for" }
            )));
        }
        let cgroups_path = spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().clone())
            .unwrap_or_else(|| cgroup::default_path(id));
        let state = serde_json::to_vec(&State { cgroups_path }).map_err(|e| Error::Runtime(e.to_string()))?;
        fs::write(self.file(id, "json"), state).context(|| format!("writing state of {id}"))?;
        // A previous run of the same container (restart) must be gone first.
        if self.dir.join(id).exists() {
            let _ = self.simple(id, &["delete", "--force", id]);
        }
        let _ = fs::remove_file(self.file(id, "log"));
        let cmd_name = process.args().as_ref().and_then(|a| a.first().cloned()).unwrap_or_default();
        let args = [std::ffi::OsStr::new("run"), "-d".as_ref(), "--bundle".as_ref(), bundle.as_os_str()];
        let result = self.launch(id, &args, stdio, &cmd_name);
        if result.is_err() {
            let _ = self.delete(id);
        }
        result
    }

    fn exec(&self, id: &str, process: &Process, stdio: Stdio) -> Result<Started> {
        super::builtin::validate_id(id)?;
        let process_file = self.file(id, &format!("process-{}.json", rand::random::<u32>()));
        let bytes = serde_json::to_vec(process).map_err(|e| Error::Runtime(e.to_string()))?;
        fs::write(&process_file, bytes).context(|| format!("writing {}", process_file.display()))?;
        let cmd_name = process.args().as_ref().and_then(|a| a.first().cloned()).unwrap_or_default();
        let args =
            [std::ffi::OsStr::new("exec"), "-d".as_ref(), "--process".as_ref(), process_file.as_os_str()];
        let result = self.launch(id, &args, stdio, &cmd_name);
        let _ = fs::remove_file(&process_file);
        result
    }

    fn kill(&self, id: &str, signal: i32, all: bool) -> Result<()> {
        super::builtin::validate_id(id)?;
        let sig = signal.to_string();
        let mut args = vec!["kill"];
        if all {
            args.push("--all");
        }
        args.extend([id, sig.as_str()]);
        self.simple(id, &args).map_err(|e| match e {
            Error::RuntimeNotRunning(_) | Error::RuntimeNoSuchContainer(_) => {
                Error::Conflict(format!("container {id} is not running"))
            }
            e => e,
        })
    }

    fn pause(&self, id: &str) -> Result<()> {
        super::builtin::validate_id(id)?;
        self.simple(id, &["pause", id])
    }

    fn resume(&self, id: &str) -> Result<()> {
        super::builtin::validate_id(id)?;
        self.simple(id, &["resume", id])
    }

    fn stats(&self, id: &str) -> Result<CgroupStats> {
        super::builtin::validate_id(id)?;
        self.cgroup(id)?.stats()
    }

    fn pids(&self, id: &str) -> Result<Vec<i32>> {
        super::builtin::validate_id(id)?;
        self.cgroup(id)?.pids()
    }

    fn delete(&self, id: &str) -> Result<()> {
        super::builtin::validate_id(id)?;
        let cgroup = self.cgroup(id)?;
        let result = self.simple(id, &["delete", "--force", id]);
        // runc removes its cgroup; make sure, and clean berth's files whatever runc said.
        cgroup.remove()?;
        for ext in ["json", "log"] {
            let _ = fs::remove_file(self.file(id, ext));
        }
        match result {
            Err(Error::RuntimeNoSuchContainer(_)) => Ok(()),
            r => r,
        }
    }
}
