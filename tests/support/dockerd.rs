//! Docker Engine itself, the reference of the Docker API tests: a private `dockerd` (Debian's
//! docker.io, Engine 20.10, with the containerd it starts and manages) in temporary directories,
//! and the docker CLI run against any daemon that speaks the Docker API (this one or berth's
//! Docker socket).
//!
//! The daemon leaves the host alone: no iptables rules, no masquerading, no default bridge
//! (`--iptables=false --ip-masq=false --bridge=none`), its data, state and socket in its own
//! directory. Dropping a [`Dockerd`] removes its containers, stops it by PID (SIGTERM, then
//! SIGKILL), kills whatever it left running from its directory (its containerd and the
//! containerd shims, found by PID), detaches its mounts and removes the directory, also when the
//! test failed.
//!
//! A test binary cannot share one dockerd between its tests: nextest runs every test in a
//! process of its own, and a process-wide daemon would never be dropped. Tests that use one
//! group many checks instead.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{busybox_rootfs, run_command, unmount_under, Output};

/// The docker CLI the tests run (`docker` on PATH: the CLI 28 of these machines, or the 20.10 CLI
/// of Debian's docker.io).
pub const DOCKER_CLI: &str = "docker";

/// Runs the docker CLI against the daemon at `host` (`unix://…`).
pub fn docker_at(host: &str, args: &[&str]) -> Output {
    docker_with(host, args, None, &[])
}

/// Runs the docker CLI against `host` with `stdin` as its standard input and extra environment
/// variables (e.g. `DOCKER_BUILDKIT=0`). It reads no configuration of the machine's user (a
/// config.json with a credential helper or `HttpHeaders` would change what it sends).
pub fn docker_with(host: &str, args: &[&str], stdin: Option<&[u8]>, env: &[(&str, &str)]) -> Output {
    run_command(docker_command(host, args, env), stdin, DOCKER_TIMEOUT)
}

/// The docker CLI command [`docker_with`] runs, not started.
pub fn docker_command(host: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(DOCKER_CLI);
    cmd.args(args)
        .env("DOCKER_HOST", host)
        .env("DOCKER_CONFIG", docker_config_dir())
        .env("DOCKER_CLI_HINTS", "false")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_API_VERSION")
        .env_remove("DOCKER_BUILDKIT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// How long one docker CLI command may take: a hang is reported as a failed command
/// ([`crate::TIMED_OUT`]) so a comparison still lists every other check.
pub const DOCKER_TIMEOUT: Duration = Duration::from_secs(60);

/// An empty docker CLI configuration directory shared by the tests (the CLI only reads it).
fn docker_config_dir() -> PathBuf {
    let dir = std::env::temp_dir().join("berth-tests-docker-config");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// Whether `program` is an executable on PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

/// A running private dockerd.
pub struct Dockerd {
    dir: Option<tempfile::TempDir>,
    child: Option<Child>,
    /// Extra arguments it was started with.
    args: Vec<String>,
}

impl Dockerd {
    /// Starts a dockerd and waits until it answers; `None` (with the reason printed) when dockerd
    /// is not installed. Under CI (`CI` set) a missing dockerd fails the test instead:
    /// `scripts/setup.sh --test` installs it, so there the comparison must run.
    pub fn start() -> Option<Dockerd> {
        Self::start_with_args(&[])
    }

    /// [`Dockerd::start`] with extra `dockerd` arguments (e.g. `--userns-remap default`).
    pub fn start_with_args(extra: &[&str]) -> Option<Dockerd> {
        if !on_path("dockerd") || !on_path(DOCKER_CLI) {
            let reason = "dockerd or the docker CLI is not installed (scripts/setup.sh --test installs \
                          Debian's docker.io)";
            assert!(std::env::var_os("CI").is_none(), "{reason}");
            eprintln!("SKIPPED: {reason}; the comparison with Docker Engine did not run");
            return None;
        }
        // Short paths: containerd's sockets live under the exec root (a unix socket path has at
        // most 107 bytes).
        let dir = tempfile::Builder::new().prefix("berth-dockerd-").tempdir_in("/tmp").expect("temp dir");
        crate::open_for_remapped_root(dir.path(), extra);
        let mut dockerd =
            Dockerd { dir: Some(dir), child: None, args: extra.iter().map(|a| a.to_string()).collect() };
        dockerd.launch();
        Some(dockerd)
    }

    /// [`Dockerd::start`], then the same busybox root filesystem as berth's tests imported as
    /// `busybox:latest` with CMD ["sh"].
    pub fn with_busybox() -> Option<Dockerd> {
        Self::with_busybox_args(&[])
    }

    /// [`Dockerd::with_busybox`] with extra `dockerd` arguments.
    pub fn with_busybox_args(extra: &[&str]) -> Option<Dockerd> {
        let dockerd = Self::start_with_args(extra)?;
        let rootfs = busybox_rootfs(dockerd.dir());
        dockerd.docker(&["import", "-c", r#"CMD ["sh"]"#, rootfs.to_str().unwrap(), "busybox:latest"]).ok();
        Some(dockerd)
    }

    fn launch(&mut self) {
        let data = self.data_root();
        let exec = self.exec_root();
        std::fs::create_dir_all(&data).expect("data root");
        std::fs::create_dir_all(&exec).expect("exec root");
        let log = std::fs::File::create(self.dir().join("dockerd.log")).expect("dockerd log");
        let mut cmd = Command::new("dockerd");
        // dockerd dies with the test thread that started it, even if Drop never runs.
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd.arg("--data-root")
            .arg(&data)
            .arg("--exec-root")
            .arg(&exec)
            .arg("-H")
            .arg(format!("unix://{}", self.socket().display()))
            .arg("--pidfile")
            .arg(self.dir().join("dockerd.pid"))
            .args(["--iptables=false", "--ip-masq=false", "--bridge=none"])
            .args(&self.args)
            // Its own containerd (none is configured, so dockerd starts one with its root and
            // state under the data and exec roots), never a system one.
            .env_remove("DOCKER_HOST")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log);
        let child = cmd.spawn().expect("spawning dockerd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.as_mut().expect("child").try_wait().expect("try_wait") {
                self.child = None;
                panic!("dockerd exited with {status} before it was ready; its log:\n{}", self.log());
            }
            if self.ping() {
                return;
            }
            assert!(Instant::now() < deadline, "dockerd was not ready after 60 s; its log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn ping(&self) -> bool {
        let Ok(mut s) = UnixStream::connect(self.socket()) else { return false };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        if s.write_all(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n").is_err() {
            return false;
        }
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("OK")
    }

    /// Temporary directory holding `data/`, `exec/`, the socket and `dockerd.log`.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("dockerd dir").path()
    }

    pub fn data_root(&self) -> PathBuf {
        self.dir().join("data")
    }

    pub fn exec_root(&self) -> PathBuf {
        self.dir().join("exec")
    }

    pub fn socket(&self) -> PathBuf {
        self.dir().join("docker.sock")
    }

    /// `DOCKER_HOST` for the clients.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Everything dockerd logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("dockerd.log")).unwrap_or_default()
    }

    /// Runs the docker CLI against this daemon.
    pub fn docker(&self, args: &[&str]) -> Output {
        docker_at(&self.docker_host(), args)
    }

    /// SIGTERM, at most 30 s for a clean exit (dockerd stops its containerd), then SIGKILL.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("dockerd did not stop within 30 s of SIGTERM: killed");
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// PIDs of the processes whose command line names `dir` (a containerd or a containerd shim of a
/// dockerd that was killed before it could stop them).
fn processes_naming(dir: &Path) -> Vec<i32> {
    let needle = dir.to_string_lossy().into_owned();
    let own = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != own)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " ").contains(&needle))
                .unwrap_or(false)
        })
        .collect()
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if self.child.is_some() {
            // Removed first: dockerd would otherwise stop each one on shutdown, waiting out the
            // stop timeout of every process that ignores SIGTERM (a `sleep` as PID 1 does).
            let ids = self.docker(&["ps", "-a", "-q"]);
            if ids.code == 0 && !ids.lines().is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids.lines());
                let out = self.docker(&args);
                if out.code != 0 {
                    eprintln!("removing dockerd's containers failed: {}", out.stderr);
                }
            }
        }
        if std::thread::panicking() && self.dir.is_some() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            eprintln!("---- dockerd log (last lines) ----");
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
            eprintln!("---- end of dockerd log ----");
        }
        self.stop();
        if let Some(dir) = self.dir.take() {
            for pid in processes_naming(dir.path()) {
                eprintln!("killing process {pid} that dockerd left running");
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
            }
            unmount_under(dir.path());
            let _ = dir.close();
        }
    }
}
