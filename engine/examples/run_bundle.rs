//! Runs an OCI bundle to its end with one of berth's runtimes, stdio inherited, and exits with
//! the container's exit code: the "runtime alone" entry of benches/run.sh, and a handy way to
//! try a bundle.
//!
//! ```text
//! run_bundle [--runtime berth|runc|crun] [--state DIR] BUNDLE ID
//! ```
//!
//! The container is deleted (cgroup and runtime state) when it exits.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::process::ExitCode;

use berth_engine::runtime::{new_runtime, RuntimeConfig, RuntimeKind, Stdio};
use berth_engine::Error;

fn usage() -> ExitCode {
    eprintln!("usage: run_bundle [--runtime berth|runc|crun] [--state DIR] BUNDLE ID");
    ExitCode::from(125)
}

fn main() -> ExitCode {
    let mut kind = RuntimeKind::Builtin;
    let mut state = PathBuf::from("/run/berth-run-bundle");
    let mut positional = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runtime" => match args.next().map(|v| v.parse::<RuntimeKind>()) {
                Some(Ok(k)) => kind = k,
                Some(Err(e)) => {
                    eprintln!("run_bundle: {e}");
                    return ExitCode::from(125);
                }
                None => return usage(),
            },
            "--state" => match args.next() {
                Some(v) => state = v.into(),
                None => return usage(),
            },
            "-h" | "--help" => return usage(),
            _ => positional.push(arg),
        }
    }
    let [bundle, id] = positional.as_slice() else { return usage() };
    match run(kind, state, bundle.into(), id) {
        Ok(code) => ExitCode::from(code as u8),
        Err(Error::CommandFailed { exit_code, message }) => {
            eprintln!("run_bundle: {message}");
            ExitCode::from(exit_code as u8)
        }
        Err(e) => {
            eprintln!("run_bundle: {e}");
            ExitCode::from(125)
        }
    }
}

fn run(kind: RuntimeKind, state: PathBuf, bundle: PathBuf, id: &str) -> berth_engine::Result<i32> {
    let runtime = new_runtime(kind, &RuntimeConfig { state_root: state })?;
    let dup = |fd: std::os::fd::BorrowedFd<'_>| -> berth_engine::Result<OwnedFd> {
        fd.try_clone_to_owned().map_err(|e| Error::Io { context: "duplicating stdio".into(), source: e })
    };
    let stdio = Stdio::Fds([
        dup(std::io::stdin().as_fd())?,
        dup(std::io::stdout().as_fd())?,
        dup(std::io::stderr().as_fd())?,
    ]);
    let started = runtime.start(id, &bundle, stdio)?;
    let mut status = 0;
    // SAFETY: waiting for the container's process, our child (or re-parented to us).
    while unsafe { libc::waitpid(started.pid, &mut status, 0) } < 0 {
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break;
        }
    }
    runtime.delete(id)?;
    Ok(if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 128 + libc::WTERMSIG(status) })
}
