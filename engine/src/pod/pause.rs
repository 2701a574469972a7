//! The pod's pause process, `berth pod-pause`: it makes the pod's namespaces (network, IPC,
//! UTS, and PID when the pod shares one), sets the hostname, `lo` up and the pod's sysctls in them, and then only waits, reaping
//! children, until it is killed. Started detached (its own session, re-parented when its first
//! process exits), so it outlives a restart of the daemon as the monitors do.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, Signal};

use super::PodConfig;
use crate::error::{Error, Result};

/// The subcommand of the berth binary that runs the pause process.
pub const SUBCOMMAND: &str = "pod-pause";

/// Starts the pause process of pod `id`; returns its PID once its namespaces are set up.
pub(crate) fn spawn(exe: &Path, id: &str, config: &PodConfig) -> Result<i32> {
    let mut cmd = Command::new(exe);
    cmd.arg(SUBCOMMAND).arg("--pod").arg(id);
    if !config.host_network {
        cmd.arg("--net").arg("--uts").arg("--hostname").arg(config.effective_hostname());
    }
    if !config.host_ipc {
        cmd.arg("--ipc");
    }
    if config.pid_mode == super::PidMode::Pod {
        cmd.arg("--pid");
    }
    for (key, value) in &config.sysctls {
        cmd.arg("--sysctl").arg(format!("{key}={value}"));
    }
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| Error::io(format!("starting the pause process ({})", exe.display()), e))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(Error::Runtime(format!(
            "starting the pod's pause process: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    stdout
        .trim()
        .parse()
        .map_err(|_| Error::Runtime(format!("the pause process answered {stdout:?} instead of its PID")))
}

/// Whether `pid` is the pause process of pod `id` (a PID may have been reused since).
pub(crate) fn is_running(pid: i32, id: &str) -> bool {
    if pid <= 0 {
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.starts_with('Z')))
        .unwrap_or(true);
    !zombie && args.contains(&SUBCOMMAND.as_bytes()) && args.contains(&id.as_bytes())
}

/// Kills the pause process; its namespaces live on while pinned.
pub(crate) fn kill(pid: i32) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
}

/// `berth pod-pause --pod ID [--net] [--uts] [--ipc] [--pid] [--hostname NAME] [--sysctl K=V]...`:
/// prints the PID of the pause process once it is ready, and exits.
pub fn main(args: Vec<String>) -> i32 {
    let mut flags = CloneFlags::empty();
    let mut hostname = None;
    let mut sysctls = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--pod" => {
                args.next();
            }
            "--net" => flags |= CloneFlags::CLONE_NEWNET,
            "--uts" => flags |= CloneFlags::CLONE_NEWUTS,
            "--ipc" => flags |= CloneFlags::CLONE_NEWIPC,
            // The forked pause process is then PID 1 of the pod's processes: it reaps them, and
            // they all go when it goes.
            "--pid" => flags |= CloneFlags::CLONE_NEWPID,
            "--hostname" => hostname = args.next(),
            "--sysctl" => sysctls.extend(args.next()),
            other => {
                eprintln!("pod-pause: unknown argument {other:?}");
                return 2;
            }
        }
    }
    // Its own session, detached from the daemon.
    let _ = nix::unistd::setsid();
    if let Err(e) = nix::sched::unshare(flags) {
        eprintln!("pod-pause: unshare: {e}");
        return 1;
    }
    let (mut ready_read, ready_write) = match nix::unistd::pipe() {
        Ok((r, w)) => (std::fs::File::from(r), std::fs::File::from(w)),
        Err(e) => {
            eprintln!("pod-pause: pipe: {e}");
            return 1;
        }
    };
    // SAFETY: the process has one thread here.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            drop(ready_write);
            let mut answer = String::new();
            let _ = ready_read.read_to_string(&mut answer);
            if answer == "ok" {
                println!("{child}");
                0
            } else {
                eprintln!(
                    "pod-pause: {}",
                    if answer.is_empty() { "the pause process died" } else { &answer }
                );
                1
            }
        }
        Ok(nix::unistd::ForkResult::Child) => {
            drop(ready_read);
            pause(ready_write, flags, hostname, &sysctls)
        }
        Err(e) => {
            eprintln!("pod-pause: fork: {e}");
            1
        }
    }
}

fn pause(mut ready: std::fs::File, flags: CloneFlags, hostname: Option<String>, sysctls: &[String]) -> i32 {
    let setup = || -> std::result::Result<(), String> {
        if flags.contains(CloneFlags::CLONE_NEWUTS) {
            if let Some(name) = &hostname {
                nix::unistd::sethostname(name).map_err(|e| format!("setting the hostname {name:?}: {e}"))?;
            }
        }
        if flags.contains(CloneFlags::CLONE_NEWNET) {
            crate::network::netlink::run(crate::network::netlink::Netns::Current, |handle| async move {
                crate::network::netlink::configure_inside(&handle, None).await
            })
            .map_err(|e| format!("setting lo up: {e}"))?;
        }
        for sysctl in sysctls {
            let Some((key, value)) = sysctl.split_once('=') else {
                return Err(format!("bad sysctl {sysctl:?} (want KEY=VALUE)"));
            };
            let path = format!("/proc/sys/{}", key.replace('.', "/"));
            std::fs::write(&path, value).map_err(|e| format!("setting sysctl {key}: {e}"))?;
        }
        Ok(())
    };
    let _ = std::env::set_current_dir("/");
    if let Err(message) = setup() {
        let _ = ready.write_all(message.as_bytes());
        return 1;
    }
    // Its stdio away from the daemon's pipes, so that the daemon's read of the PID ends.
    if let Ok(null) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
        use std::os::fd::AsRawFd;
        for fd in 0..3 {
            // SAFETY: dup2 onto the standard descriptors, which nothing else holds as owned.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
    let mut signals = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGCHLD, Signal::SIGHUP] {
        signals.add(s);
    }
    let _ = signals.thread_block();
    let _ = ready.write_all(b"ok");
    drop(ready);
    loop {
        match signals.wait() {
            Ok(Signal::SIGCHLD) => {
                while let Ok(status) =
                    nix::sys::wait::waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG))
                {
                    if status == nix::sys::wait::WaitStatus::StillAlive {
                        break;
                    }
                }
            }
            Ok(Signal::SIGTERM) | Ok(Signal::SIGINT) => return 0,
            _ => {}
        }
    }
}
