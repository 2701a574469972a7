//! Helpers shared by the end-to-end tests: a real `berth serve` in temporary directories, the
//! CLI run against it, a small raw HTTP client, and the busybox root filesystem.
//!
//! Every [`Daemon`] has its own root, run directory and TCP port, so tests run in parallel;
//! dropping it kills the daemon by PID, unmounts whatever it left mounted under its directories
//! and removes them, also when the test failed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub mod build;
pub mod cri;
pub mod docker_diff;
pub mod dockerd;
pub mod registry;
pub mod spdy;

pub mod api;
pub mod pty;

/// The admin API token every test daemon is started with (`BERTH_ADMIN_TOKEN`); the CLI and
/// [`Daemon::http`] send it over TCP unless told otherwise.
pub const ADMIN_TOKEN: &str = "berth_e2e0000000000000000000000000000000000000000000000000000000000";
/// The `admin` user's password in every test daemon (`BERTH_ADMIN_PASSWORD`).
pub const ADMIN_PASSWORD: &str = "e2e-admin-password";

/// The repository's top directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The `berth` binary of the same build as the running test: `target/<profile>/berth`, next to
/// the `deps/` directory the test executable lives in.
pub fn berth_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir =
        exe.parent().and_then(Path::parent).expect("test executable under target/<profile>/deps");
    let bin = profile_dir.join("berth");
    assert!(
        bin.is_file(),
        "the berth binary is missing at {}: build it with cargo build (the end-to-end tests run the real binary)",
        bin.display()
    );
    bin
}

/// What a CLI command did.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Panics with everything the command printed unless it exited 0.
    #[track_caller]
    pub fn ok(self) -> Output {
        assert_eq!(self.code, 0, "command failed:\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }

    /// Panics unless the command failed, with `needle` in its stderr.
    #[track_caller]
    pub fn fails_with(self, needle: &str) -> Output {
        assert_ne!(self.code, 0, "command succeeded but should have failed:\nstdout: {}", self.stdout);
        assert!(self.stderr.contains(needle), "stderr lacks {needle:?}:\n{}", self.stderr);
        self
    }

    /// Non-empty stdout lines.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().filter(|l| !l.is_empty()).collect()
    }
}

/// How long one CLI command may take before the test gives up on it (a hang is a failure, not
/// a test that never ends).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs the CLI with `BERTH_HOST=host` and `stdin` as standard input.
pub fn berth_at(host: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    berth_at_within(host, args, stdin, COMMAND_TIMEOUT)
}

/// [`berth_at`], killing the command and panicking when it runs longer than `timeout`.
pub fn berth_at_within(host: &str, args: &[&str], stdin: Option<&[u8]>, timeout: Duration) -> Output {
    let mut cmd = Command::new(berth_binary());
    cmd.args(args).env("BERTH_HOST", host);
    if std::env::var_os("BERTH_TOKEN").is_none() {
        cmd.env("BERTH_TOKEN", ADMIN_TOKEN);
    }
    let out = run_command(cmd, stdin, timeout);
    assert_ne!(out.code, TIMED_OUT, "berth {args:?}: {}\nstdout: {}", out.stderr, out.stdout);
    out
}

/// Runs `cmd` with `stdin` as its standard input (none: /dev/null) and collects what it
/// printed; kills it when it runs longer than `timeout` (exit code [`TIMED_OUT`]).
pub fn run_command(mut cmd: Command, stdin: Option<&[u8]>, timeout: Duration) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let program = cmd.get_program().to_string_lossy().into_owned();
    let args: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawning {program}: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin piped");
        let input = input.to_vec();
        // A thread, so that a command that does not read all of stdin cannot block the test.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    // Read both pipes on threads so a chatty command cannot fill one and stall.
    let read_all = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().expect("stdout piped")));
    let stderr = read_all(Box::new(child.stderr.take().expect("stderr piped")));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the command") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Output {
                code: TIMED_OUT,
                stdout: String::from_utf8_lossy(&stdout.join().unwrap_or_default()).into_owned(),
                stderr: format!(
                    "{}\n({program} {args:?} did not finish within {timeout:?} and was killed)",
                    String::from_utf8_lossy(&stderr.join().unwrap_or_default())
                ),
            };
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout.join().expect("stdout reader")).into_owned(),
        stderr: String::from_utf8_lossy(&stderr.join().expect("stderr reader")).into_owned(),
    }
}

/// The exit code [`run_command`] reports for a command it killed at its timeout.
pub const TIMED_OUT: i32 = -2;

/// A `berth serve` in its own temporary directories.
pub struct Daemon {
    dir: Option<tempfile::TempDir>,
    child: Option<Child>,
    port: u16,
    /// Runs in a network namespace of its own, with the default bridge (network tests).
    netns: bool,
    /// That namespace once made: a restarted daemon enters it again.
    netns_file: Option<std::fs::File>,
    /// Environment for the next launches (e.g. `BERTH_CRASH_AT`).
    env: Vec<(String, String)>,
}

impl Daemon {
    /// Starts a daemon in new temporary directories and waits until it answers.
    pub fn start() -> Daemon {
        Self::start_with_args(&[])
    }

    /// Like [`Daemon::start`], with extra `serve` arguments (e.g. `--snapshotter copy`).
    pub fn start_with_args(extra: &[&str]) -> Daemon {
        let dir = tempfile::Builder::new().prefix("berth-e2e-").tempdir().expect("temp dir");
        open_for_remapped_root(dir.path(), extra);
        let mut daemon =
            Daemon { dir: Some(dir), child: None, port: 0, netns: false, netns_file: None, env: Vec::new() };
        daemon.launch(extra);
        daemon
    }

    /// A daemon with networking (the default `bridge` network), started in a new network
    /// namespace that has only `lo` (up) and no route out: its bridges, veth pairs, published
    /// ports and DNS servers never touch the host's network. It is reached over its unix
    /// socket; [`Daemon::in_netns`] runs code inside its namespace (to reach published ports on
    /// its 127.0.0.1). Everything in the namespace goes with the daemon and its containers.
    pub fn start_in_netns() -> Daemon {
        Self::start_in_netns_with_args(&[])
    }

    /// Like [`Daemon::start_in_netns`], with extra `serve` arguments.
    pub fn start_in_netns_with_args(extra: &[&str]) -> Daemon {
        let dir = tempfile::Builder::new().prefix("berth-e2e-").tempdir().expect("temp dir");
        open_for_remapped_root(dir.path(), extra);
        let mut daemon =
            Daemon { dir: Some(dir), child: None, port: 0, netns: true, netns_file: None, env: Vec::new() };
        daemon.launch(extra);
        daemon
    }

    /// Runs `f` on a thread of its own that has entered the daemon's network namespace (its
    /// sockets are made there).
    pub fn in_netns<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let pid = self.pid().expect("daemon running");
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).expect("the daemon's network namespace");
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                        .expect("entering the namespace");
                    f()
                })
                .join()
                .expect("a thread in the daemon's namespace panicked")
        })
    }

    /// A started daemon with the local busybox image imported as `busybox:latest` (CMD ["sh"]).
    pub fn with_busybox() -> Daemon {
        let daemon = Daemon::start();
        daemon.import_busybox("busybox:latest");
        daemon
    }

    /// Imports the local busybox root filesystem as image `name` with CMD ["sh"].
    pub fn import_busybox(&self, name: &str) {
        let rootfs = busybox_rootfs(self.dir());
        self.berth(&["import", "-c", r#"CMD ["sh"]"#, rootfs.to_str().unwrap(), name]).ok();
    }

    /// Temporary directory holding `root/`, `run/` and `daemon.log`.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("daemon dir").path()
    }

    pub fn root(&self) -> PathBuf {
        self.dir().join("root")
    }

    pub fn run_dir(&self) -> PathBuf {
        self.dir().join("run")
    }

    pub fn socket(&self) -> PathBuf {
        self.run_dir().join("berth.sock")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The Docker Engine API socket (`serve --docker-socket`'s default, `<run-dir>/docker.sock`).
    pub fn docker_socket(&self) -> PathBuf {
        self.run_dir().join("docker.sock")
    }

    /// `DOCKER_HOST` for the docker CLI and the other Docker clients.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.docker_socket().display())
    }

    pub fn unix_host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    pub fn tcp_host(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Everything the daemon logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("daemon.log")).unwrap_or_default()
    }

    fn serve_command(&self, port: u16, extra: &[&str]) -> Command {
        self.serve_command_on(&self.root(), &self.run_dir(), port, extra)
    }

    fn serve_command_on(&self, root: &Path, run_dir: &Path, port: u16, extra: &[&str]) -> Command {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir().join("daemon.log"))
            .expect("daemon log file");
        let mut cmd = Command::new(berth_binary());
        let netns = self.netns;
        let netns_fd = self.netns_file.as_ref().map(std::os::fd::AsRawFd::as_raw_fd);
        // If the test process dies without running Drop (a harness timeout, a kill), the daemon
        // goes with it instead of lingering. The signal follows the spawning thread, which is the
        // test's own thread, and that thread outlives the Daemon.
        // SAFETY: prctl, unshare, socket, ioctl and close are async-signal-safe; nothing else
        // runs between fork and exec.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if let Some(fd) = netns_fd {
                    if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                } else if netns {
                    if libc::unshare(libc::CLONE_NEWNET) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    loopback_up()?;
                }
                Ok(())
            });
        }
        cmd.arg("serve")
            .arg("--root")
            .arg(root)
            .arg("--run-dir")
            .arg(run_dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(extra);
        // Without a namespace of its own, a test daemon makes no bridge (dockerd's `-b none`).
        // A `serve` flag: after the subcommand.
        if !self.netns && !extra.contains(&"--bridge") {
            cmd.args(["--bridge", "none"]);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.env("RUST_LOG", "info,tower_http=debug,sqlx=warn")
            .env("BERTH_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env_remove("BERTH_HOST")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log);
        cmd
    }

    /// Runs `berth serve` on the given directories (this daemon's log file) until it exits: for
    /// tests of start-up failures. Returns its exit code and what it printed, waiting at most 20 s.
    pub fn serve_once(&self, root: &Path, run_dir: &Path, port: u16) -> (i32, String) {
        let out = self
            .serve_command_on(root, run_dir, port, &[])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = out.expect("spawning berth serve");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("waiting for berth serve") {
                let mut text = String::new();
                child.stderr.take().expect("stderr").read_to_string(&mut text).expect("stderr");
                return (status.code().unwrap_or(-1), text);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("berth serve did not exit although it should have refused to start");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts (again) on the same directories with a fresh port and waits until it answers.
    fn launch(&mut self, extra: &[&str]) {
        assert!(self.child.is_none(), "daemon already running");
        let port = free_port();
        let child = self.serve_command(port, extra).spawn().expect("spawning berth serve");
        if self.netns && self.netns_file.is_none() {
            let ns =
                std::fs::File::open(format!("/proc/{}/ns/net", child.id())).expect("the daemon's namespace");
            self.netns_file = Some(ns);
        }
        self.child = Some(child);
        self.port = port;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.as_mut().expect("child").try_wait().expect("try_wait") {
                self.child = None;
                panic!("berth serve exited with {status} before it was ready; its log:\n{}", self.log());
            }
            if self.socket().exists() && self.ping() {
                return;
            }
            if Instant::now() > deadline {
                panic!("berth serve was not ready after 30 s; its log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn ping(&self) -> bool {
        let Ok(mut s) = UnixStream::connect(self.socket()) else { return false };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        if s.write_all(b"GET /_ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").is_err() {
            return false;
        }
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("OK")
    }

    /// Starts a daemon again on the same root and run directory.
    pub fn restart(&mut self) {
        self.stop();
        self.launch(&[]);
    }

    /// [`Daemon::restart`] with extra `serve` arguments (those it was started with).
    pub fn restart_with_args(&mut self, extra: &[&str]) {
        self.stop();
        self.launch(extra);
    }

    /// Starts the daemon again after [`Daemon::kill9`] or [`Daemon::stop`].
    pub fn start_again(&mut self) {
        self.launch(&[]);
    }

    /// Sets the environment of the next launches (replacing what was set before).
    pub fn set_env(&mut self, env: &[(&str, &str)]) {
        self.env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    }

    /// Whether the daemon has exited (it is then reaped, and may be started again).
    pub fn has_exited(&mut self) -> bool {
        let exited = match self.child.as_mut() {
            Some(child) => child.try_wait().expect("try_wait").is_some(),
            None => true,
        };
        if exited {
            self.child = None;
        }
        exited
    }

    /// SIGTERM, then waits for a clean exit (at most 20 s, then SIGKILL); returns the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ =
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("berth serve did not stop within 20 s of SIGTERM; its log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill -9`: the daemon gets no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs the CLI against this daemon over the unix socket.
    pub fn berth(&self, args: &[&str]) -> Output {
        berth_at(&self.unix_host(), args, None)
    }

    /// Runs the CLI against this daemon over TCP.
    pub fn berth_tcp(&self, args: &[&str]) -> Output {
        berth_at(&self.tcp_host(), args, None)
    }

    /// Runs the CLI with `stdin` as its standard input.
    pub fn berth_stdin(&self, args: &[&str], stdin: &[u8]) -> Output {
        berth_at(&self.unix_host(), args, Some(stdin))
    }

    /// Runs the CLI on a new pseudo-terminal (see [`pty::Pty`]), as someone at a terminal would.
    pub fn berth_pty(&self, args: &[&str]) -> pty::Pty {
        let mut cmd = Command::new(berth_binary());
        cmd.args(args).env("BERTH_HOST", self.unix_host()).env("TERM", "xterm");
        pty::Pty::spawn(cmd)
    }

    /// Removes every container with `rm -f` (monitors outlive the daemon, so a test's
    /// containers must be removed through it). Failures are printed, not raised: this runs in
    /// `Drop`.
    pub fn remove_all_containers(&self) {
        let ids = self.berth(&["ps", "-a", "-q", "--no-trunc"]);
        if ids.code != 0 {
            return;
        }
        let ids: Vec<&str> = ids.lines();
        if ids.is_empty() {
            return;
        }
        let mut args = vec!["rm", "-f"];
        args.extend(ids);
        let out = self.berth(&args);
        if out.code != 0 {
            eprintln!("removing the test's containers failed: {}", out.stderr);
        }
    }

    /// One HTTP/1.1 request over TCP; the whole answer.
    pub fn http(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connecting to the daemon");
        s.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
        // As the admin, unless the test sends its own credentials (or `Authorization: none`).
        match headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("authorization")) {
            None => request.push_str(&format!("Authorization: Bearer {ADMIN_TOKEN}\r\n")),
            Some((_, "none")) => {}
            Some(_) => {}
        }
        let headers: Vec<&(&str, &str)> = headers
            .iter()
            .filter(|(k, v)| !(k.eq_ignore_ascii_case("authorization") && *v == "none"))
            .collect();
        for (k, v) in headers {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        s.write_all(request.as_bytes()).expect("sending the request");
        s.write_all(body).expect("sending the body");
        read_response(&mut s)
    }

    /// The sha256 of every blob, checked against its file name; panics on any mismatch.
    pub fn verify_blobs(&self) -> usize {
        let dir = self.root().join("blobs/sha256");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).expect("blobs dir") {
            let entry = entry.expect("blob entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            let bytes = std::fs::read(entry.path()).expect("reading a blob");
            assert_eq!(hex::encode(Sha256::digest(&bytes)), name, "blob {name} does not hash to its name");
            n += 1;
        }
        n
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.remove_all_containers();
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() && self.dir.is_some() {
            eprintln!("---- berth serve log ----\n{}\n---- end of log ----", self.log());
        }
        if let Some(dir) = self.dir.take() {
            unmount_under(dir.path());
            let _ = dir.close();
        }
    }
}

/// Puts the calling thread, and every process it starts from now on, in a new network
/// namespace whose only interface is `lo` (up): a daemon started here can reach nothing but
/// itself, so pulls, pushes and registry logins of made-up names fail at once without a packet
/// leaving the test. (A network namespace is per thread: the test's other threads keep theirs.)
pub fn isolate_network() {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
    loopback_up().expect("setting lo up");
}

/// Sets `lo` up in the calling process's network namespace (SIOCSIFFLAGS): async-signal-safe,
/// for a `pre_exec` right after `unshare(CLONE_NEWNET)`.
pub(crate) fn loopback_up() -> std::io::Result<()> {
    // SAFETY: a socket and an ioctl on a zeroed ifreq naming `lo`; the socket is closed.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        let mut result = libc::ioctl(fd, libc::SIOCGIFFLAGS as _, &mut req);
        if result == 0 {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            result = libc::ioctl(fd, libc::SIOCSIFFLAGS as _, &req);
        }
        let error = std::io::Error::last_os_error();
        libc::close(fd);
        if result != 0 {
            return Err(error);
        }
    }
    Ok(())
}

/// Detaches every mount under `dir`, deepest first (layers a test left mounted).
pub fn unmount_under(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else { return };
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in points {
        let _ = nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("binding port 0")
        .local_addr()
        .expect("local addr")
        .port()
}

/// An HTTP answer.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// Reads an HTTP/1.1 answer to its end (the request said `Connection: close`); hand-written
/// because the tests need raw control of the connection (partial bodies, timing) that HTTP
/// client crates hide, and the answers are small. Handles content-length and chunked bodies.
pub fn read_response(s: &mut impl Read) -> HttpResponse {
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("reading the answer");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("answer has a header");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status: u16 = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status code");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").expect("chunk size line");
            let size_text = String::from_utf8_lossy(&rest[..line_end]).into_owned();
            let size =
                usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).expect("chunk size");
            rest = &rest[line_end + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        body = out;
    }
    HttpResponse { status, headers, body }
}

/// Writes the busybox root filesystem tarball (`scripts/busybox-rootfs.sh`) into `dir`.
/// A daemon that remaps (`--userns-remap` in `args`, berth's or dockerd's) needs every
/// directory above its root to let the remapped root through (it refuses to start otherwise, as
/// dockerd does): the test's temporary directory becomes 0711.
pub fn open_for_remapped_root(dir: &Path, args: &[&str]) {
    use std::os::unix::fs::PermissionsExt;
    if args.iter().any(|a| a.starts_with("--userns-remap")) {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).expect("chmod temp dir");
    }
}

pub fn busybox_rootfs(dir: &Path) -> PathBuf {
    let out = dir.join("busybox-rootfs.tar");
    let status = Command::new(repo_root().join("scripts/busybox-rootfs.sh"))
        .arg(&out)
        .status()
        .expect("running scripts/busybox-rootfs.sh");
    assert!(status.success(), "scripts/busybox-rootfs.sh failed (is busybox-static installed?)");
    out
}

/// A tar of one directory `data/` holding a file of `size` bytes that do not compress (an
/// xorshift stream): large enough to be caught in the middle of an import.
pub fn big_rootfs_tar(size: usize) -> Vec<u8> {
    let mut data = vec![0u8; size];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let mut builder = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    builder.append_data(&mut dir, "data/", std::io::empty()).expect("tar dir");
    let mut file = tar::Header::new_gnu();
    file.set_mode(0o644);
    file.set_size(size as u64);
    builder.append_data(&mut file, "data/blob.bin", &data[..]).expect("tar file");
    builder.into_inner().expect("tar")
}

/// Image IDs as `berth images -q --no-trunc` prints them (one per row).
pub fn image_ids(daemon: &Daemon) -> Vec<String> {
    daemon.berth(&["images", "-q", "--no-trunc"]).ok().lines().iter().map(|s| s.to_string()).collect()
}

/// The finding lines of a `berth system check` output, as `area object`, without cgroups other
/// than `own_cgroup`: cgroups are the host's, shared by every daemon (and other tests) on it.
pub fn check_findings(stdout: &str, own_cgroup: Option<&str>) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| l.contains('\t'))
        .map(|l| {
            let mut parts = l.split('\t');
            format!("{} {}", parts.next().unwrap_or_default(), parts.next().unwrap_or_default())
        })
        .filter(|f| !f.starts_with("cgroup ") || own_cgroup.is_some_and(|own| f.ends_with(own)))
        .collect()
}

/// One HTTP/1.1 request over a daemon's unix socket (`json`: a JSON body), read to its end.
pub fn unix_request(socket: &Path, method: &str, path: &str, json: Option<&[u8]>) -> HttpResponse {
    let mut s = UnixStream::connect(socket).expect("connecting to the daemon's socket");
    s.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let body = json.unwrap_or_default();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if json.is_some() {
        head.push_str("Content-Type: application/json\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(head.as_bytes()).expect("sending the request");
    s.write_all(body).expect("sending the body");
    read_response(&mut s)
}
