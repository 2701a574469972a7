//! The monitor zygote: one small process per daemon binary that forks the containers' monitors.
//!
//! Without it each monitor is a fresh exec of the berth binary: the dynamic loader relocates
//! its GOT and the libraries' data, libc sets itself up, and all of those pages are private
//! to that monitor, for the container's whole life (~200 kB each, more than podman's conmon in
//! total). A monitor forked from an idle zygote shares those pages with it and with its
//! siblings (copy-on-write: only what a monitor writes becomes its own), and it starts in a
//! fraction of a millisecond instead of an exec, a dynamic link and a `main`.
//!
//! The zygote is `<berth> monitor --zygote SOCKET`, started by the daemon on its first need,
//! in its own session like the monitors: a restarted daemon uses it again, and monitors do not
//! depend on it (they outlive it; it only reaps them). It serves one request per connection:
//! a JSON line (`{"dir": CONTAINER_DIR, "log": MONITOR_LOG}`); the forked monitor answers on
//! the same connection with `ok` or why it failed, as a monitor started directly answers on
//! its ready pipe. It exits once it has had no monitor and no request for a while, or when its
//! socket is gone (its run directory removed). The socket's name carries the identity of the
//! binary, so that an upgraded berth starts a zygote of its own and the old one dies idle.

use std::fs::{self, File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use serde::{Deserialize, Serialize};

use super::supervisor;
use crate::error::{Error, IoContext, Result};

/// How long a zygote without monitors waits for a request before it exits.
const IDLE_EXIT: Duration = Duration::from_secs(30);
/// How long a monitor may take to set itself up and answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// Serialises the starts of zygotes within this daemon.
static STARTING: Mutex<()> = Mutex::new(());

#[derive(Debug, Serialize, Deserialize)]
struct SpawnRequest {
    dir: PathBuf,
    log: PathBuf,
}

/// What came of asking a zygote for a monitor.
#[derive(Debug)]
pub enum Spawned {
    /// The monitor runs and listens.
    Ready,
    /// The monitor started but failed to set itself up: its message.
    Failed(String),
}

/// Forks the monitor of the container in `dir` from the zygote of `exe` (starting one if none
/// runs), its stderr appended to `log`. An `Err` means no zygote could do it (the caller may
/// start the monitor directly instead).
pub fn spawn_monitor(exe: &Path, run_dir: &Path, dir: &Path, log: &Path) -> Result<Spawned> {
    let socket = socket_path(exe, run_dir)?;
    let request = SpawnRequest { dir: dir.to_path_buf(), log: log.to_path_buf() };
    let mut line = serde_json::to_vec(&request).expect("spawn requests serialise");
    line.push(b'\n');
    let stream = match UnixStream::connect(&socket) {
        Ok(s) => s,
        Err(_) => {
            let _guard = STARTING.lock().unwrap_or_else(|p| p.into_inner());
            // Another thread may have started it meanwhile.
            match UnixStream::connect(&socket) {
                Ok(s) => s,
                Err(_) => {
                    start(exe, run_dir, &socket)?;
                    UnixStream::connect(&socket)
                        .context(|| format!("connecting to the monitor zygote {}", socket.display()))?
                }
            }
        }
    };
    ask(stream, &line)
}

fn ask(mut stream: UnixStream, line: &[u8]) -> Result<Spawned> {
    stream.write_all(line).context(|| "asking the monitor zygote".into())?;
    stream.set_read_timeout(Some(ANSWER_TIMEOUT)).context(|| "setting a timeout".into())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).context(|| "reading the monitor's answer".into())?;
    match answer.trim() {
        "ok" => Ok(Spawned::Ready),
        // The zygote went away without forking (it was exiting), or the monitor died before a
        // word: the caller tries without the zygote, which reports a failure properly.
        "" => Err(Error::Runtime("the monitor zygote gave no answer".into())),
        message => Ok(Spawned::Failed(message.to_string())),
    }
}

/// `<run_dir>/monitor-zygote-<hash of the binary's path, inode and modification time>.sock`.
fn socket_path(exe: &Path, run_dir: &Path) -> Result<PathBuf> {
    let meta = fs::metadata(exe).context(|| format!("reading {}", exe.display()))?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (exe, meta.dev(), meta.ino(), meta.size(), meta.mtime(), meta.mtime_nsec()).hash(&mut hasher);
    Ok(run_dir.join(format!("monitor-zygote-{:016x}.sock", hasher.finish())))
}

/// Starts a zygote (`<exe> monitor --zygote SOCKET`) and waits until it listens.
fn start(exe: &Path, run_dir: &Path, socket: &Path) -> Result<()> {
    crate::fsutil::create_private_dir(run_dir)?;
    let log_path = run_dir.join("monitor-zygote.log");
    let log = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(&log_path)
        .context(|| format!("opening {}", log_path.display()))?;
    let (ready_read, ready_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| Error::io("creating the zygote's ready pipe", e.into()))?;
    // The ready pipe is its stdout, as for a monitor started directly (see `READY_FD`).
    let mut command = Command::new(exe);
    command
        .arg("monitor")
        .arg("--zygote")
        .arg(socket)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::from(ready_write))
        .stderr(log);
    // Without malloc's per-thread cache, what a monitor frees goes back to the heap, where
    // malloc_trim can return its pages (cached chunks keep pages resident). The monitors
    // inherit it; the containers' processes get the environment of their spec.
    let tunable = "glibc.malloc.tcache_count=0";
    command.env(
        "GLIBC_TUNABLES",
        match std::env::var("GLIBC_TUNABLES") {
            Ok(t) if !t.is_empty() => format!("{t}:{tunable}"),
            _ => tunable.to_string(),
        },
    );
    let mut child = command.spawn().context(|| format!("starting the monitor zygote {}", exe.display()))?;
    drop(command);
    // It forks into its own session at once; this reaps the process we started.
    let status = child.wait().context(|| "waiting for the monitor zygote".into())?;
    let mut answer = String::new();
    let _ = File::from(ready_read).read_to_string(&mut answer);
    match answer.trim() {
        "ok" => Ok(()),
        "" => Err(Error::Runtime(format!(
            "the monitor zygote exited before it was ready ({status}); see {}",
            log_path.display()
        ))),
        message => Err(Error::Runtime(format!("the monitor zygote: {message}"))),
    }
}

/// Entry point of `berth monitor --zygote SOCKET`.
pub(super) fn run(socket: &Path) -> Result<()> {
    let ready = supervisor::take_ready_pipe()?;
    supervisor::detach()?;
    // `ps -o comm` tells the zygote from the monitors it forks (they share its command line).
    let _ = nix::sys::prctl::set_name(c"berth-zygote");
    let listener = match listen(socket) {
        Ok(l) => l,
        Err(e) => {
            if let Some(mut ready) = ready {
                let _ = writeln!(ready, "{e}");
            }
            return Err(e);
        }
    };
    if let Some(mut ready) = ready {
        let _ = ready.write_all(b"ok\n");
    }
    // What start-up touched is not needed to fork: the idle zygote stays small.
    supervisor::release_file_pages();
    let mut monitors = 0usize;
    let mut idle_since = Instant::now();
    loop {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) => {
                    monitors = monitors.saturating_sub(1);
                    if monitors == 0 {
                        idle_since = Instant::now();
                    }
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let gone = !socket.exists();
        if monitors == 0 && (gone || idle_since.elapsed() >= IDLE_EXIT) {
            if !gone {
                let _ = fs::remove_file(socket);
            }
            // Requests that were already queued are still served: once the socket is gone
            // nothing new can arrive.
            while let Ok((stream, _)) = listener.accept() {
                serve_request(stream, &listener);
            }
            return Ok(());
        }
        // Monitors are reaped, and the idle time checked, at least once a second.
        let mut pfd = libc::pollfd { fd: listener.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        if unsafe { libc::poll(&mut pfd, 1, 1000) } <= 0 {
            continue;
        }
        if let Ok((stream, _)) = listener.accept() {
            if serve_request(stream, &listener) {
                monitors += 1;
            }
            idle_since = Instant::now();
        }
    }
}

fn listen(socket: &Path) -> Result<UnixListener> {
    match fs::remove_file(socket) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("removing {}", socket.display()), e)),
    }
    let listener = UnixListener::bind(socket).context(|| format!("listening on {}", socket.display()))?;
    listener.set_nonblocking(true).context(|| "setting the socket non-blocking".into())?;
    Ok(listener)
}

/// Reads one request and forks its monitor. Returns whether a monitor was forked.
fn serve_request(stream: UnixStream, listener: &UnixListener) -> bool {
    // The daemon writes its line at once; a client that does not is dropped.
    if stream.set_nonblocking(false).is_err()
        || stream.set_read_timeout(Some(Duration::from_secs(5))).is_err()
    {
        return false;
    }
    let mut line = String::new();
    let Ok(reader) = stream.try_clone() else { return false };
    if BufReader::new(reader).take(64 * 1024).read_line(&mut line).is_err() {
        return false;
    }
    let request: SpawnRequest = match serde_json::from_str(&line) {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(&stream, "bad monitor zygote request: {e}");
            return false;
        }
    };
    // SAFETY: the zygote is single-threaded; the child only runs the monitor and exits.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            // The zygote's listener is not the monitor's.
            unsafe { libc::close(listener.as_raw_fd()) };
            let _ = stream.set_read_timeout(None);
            let code = match monitor_child(&request, stream) {
                Ok(()) => 0,
                Err(e) => {
                    super::note(format_args!("berth monitor: {e}"));
                    1
                }
            };
            std::process::exit(code)
        }
        Ok(nix::unistd::ForkResult::Parent { .. }) => true,
        Err(e) => {
            let _ = writeln!(&stream, "forking the monitor: {e}");
            false
        }
    }
}

/// The forked monitor: its own session, stderr to its log, then the monitor proper, answering
/// on the request's connection.
fn monitor_child(request: &SpawnRequest, stream: UnixStream) -> Result<()> {
    let _ = nix::unistd::setsid();
    let _ = nix::sys::prctl::set_name(c"berth-monitor");
    let ready = File::from(OwnedFd::from(stream));
    match OpenOptions::new().append(true).create(true).mode(0o640).open(&request.log) {
        Ok(log) => {
            unsafe { libc::dup2(log.as_raw_fd(), 2) };
        }
        Err(e) => {
            let e = Error::io(format!("opening {}", request.log.display()), e);
            let _ = writeln!(&ready, "{e}");
            return Err(e);
        }
    }
    supervisor::serve_container(&request.dir, Some(ready))
}
