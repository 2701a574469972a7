//! The monitor's process: set-up, the `poll` loop, the container's runs and its exec sessions.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use berth_types::container::{ContainerStatus, LogEntry, RestartPolicy};
use chrono::{SecondsFormat, Utc};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::health::Checker; // health checks (issue 8)
use super::log_file::LogFile;
use super::protocol::*;
use super::READY_FD;
use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::runtime::{self, Runtime, RuntimeConfig, RuntimeKind, Stdio};

/// Docker splits log lines longer than this into several entries.
const LOG_LINE_MAX: usize = 16 * 1024;
/// Output queued for one client before further output to it is dropped (and counted).
const CLIENT_BUFFER_MAX: usize = 1 << 20;
/// Input queued for a process's stdin before further input is dropped.
const STDIN_BUFFER_MAX: usize = 1 << 20;
/// Restart back-off as Docker's: 100 ms, doubling, at most a minute, back to 100 ms after a run
/// of at least 10 s.
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(10);
/// How long after a start (or an exec) the monitor drops the file pages it touched.
const TRIM_DELAY: Duration = Duration::from_millis(200);
/// How long output still in the pipes is read after the container's process exited.
const DRAIN_TIME: Duration = Duration::from_millis(250);

/// Write end of the self-pipe the SIGCHLD handler writes to.
static SIGCHLD_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_sigchld(_: libc::c_int) {
    let fd = SIGCHLD_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        // Async-signal-safe; a full pipe already says "reap".
        unsafe { libc::write(fd, b"c".as_ptr().cast(), 1) };
    }
}

extern "C" fn on_sigpipe(_: libc::c_int) {}

/// Sets the monitor up in its own session, tells the daemon it is ready, and serves until the
/// container is done.
pub fn run(dir: &Path) -> Result<()> {
    let ready = take_ready_pipe()?;
    detach()?;
    serve_container(dir, ready)
}

/// Is stdout the daemon's ready pipe (see [`READY_FD`])? (Not when someone runs `berth monitor`
/// by hand on a terminal.) It moves to a descriptor of its own, and stdout to /dev/null, so
/// that nothing else is written to the daemon's pipe and it ends when the answer is sent.
pub(super) fn take_ready_pipe() -> Result<Option<File>> {
    if !is_pipe(READY_FD) {
        return Ok(None);
    }
    let fd = unsafe { libc::fcntl(READY_FD, libc::F_DUPFD_CLOEXEC, 3) };
    let null = File::options().write(true).open("/dev/null").context(|| "opening /dev/null".into())?;
    if fd < 0 || unsafe { libc::dup2(null.as_raw_fd(), READY_FD) } < 0 {
        return Err(Error::io("moving the ready pipe", io::Error::last_os_error()));
    }
    Ok(Some(unsafe { File::from_raw_fd(fd) }))
}

/// Forks once so that the daemon can reap the process it started right away; the process goes
/// on in a new session, outside the daemon's process group and terminal.
pub(super) fn detach() -> Result<()> {
    match unsafe { nix::unistd::fork() }.map_err(|e| Error::io("forking the monitor", e.into()))? {
        nix::unistd::ForkResult::Parent { .. } => unsafe { libc::_exit(0) },
        nix::unistd::ForkResult::Child => {}
    }
    let _ = nix::unistd::setsid();
    Ok(())
}

/// The monitor of the container in `dir`: set-up, `ok` (or the error) on `ready`, then the
/// poll loop until the container is done.
pub(super) fn serve_container(dir: &Path, ready: Option<File>) -> Result<()> {
    let setup = Monitor::setup(dir);
    let mut monitor = match setup {
        Ok(m) => m,
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
    let result = monitor.serve();
    monitor.finish();
    result
}

fn is_pipe(fd: RawFd) -> bool {
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat writes the struct when it returns 0.
    unsafe {
        libc::fstat(fd, stat.as_mut_ptr()) == 0 && stat.assume_init().st_mode & libc::S_IFMT == libc::S_IFIFO
    }
}

/// A process the monitor started: the container's first process or an exec'd one.
struct Proc {
    pid: i32,
    /// Output sources: stdout (or the pty master) and stderr; `None` once at end of file.
    out: [Option<File>; 2],
    /// Where stdin goes: the pipe's write end or the pty master; `None` when closed.
    stdin: Option<File>,
    stdin_pending: Vec<u8>,
    close_stdin_when_flushed: bool,
    /// The pty master, for resizes.
    pty: Option<RawFd>,
}

impl Proc {
    fn from_started(started: runtime::Started, pipes: Option<ChildPipes>) -> Result<Proc> {
        match (started.terminal, pipes) {
            (Some(master), _) => {
                let master = File::from(master);
                set_nonblocking(master.as_raw_fd())?;
                let input = master.try_clone().context(|| "duplicating the pty master".into())?;
                let raw = master.as_raw_fd();
                Ok(Proc {
                    pid: started.pid,
                    out: [Some(master), None],
                    stdin: Some(input),
                    stdin_pending: Vec::new(),
                    close_stdin_when_flushed: false,
                    pty: Some(raw),
                })
            }
            (None, Some(p)) => Ok(Proc {
                pid: started.pid,
                out: [Some(p.stdout), Some(p.stderr)],
                stdin: p.stdin,
                stdin_pending: Vec::new(),
                close_stdin_when_flushed: false,
                pty: None,
            }),
            (None, None) => Err(Error::Runtime("the runtime returned no terminal for a tty process".into())),
        }
    }

    fn has_output(&self) -> bool {
        self.out.iter().any(Option::is_some)
    }

    /// Writes what stdin can take now; closes it when asked and everything is written.
    fn flush_stdin(&mut self) {
        if let Some(stdin) = self.stdin.as_mut() {
            while !self.stdin_pending.is_empty() {
                match stdin.write(&self.stdin_pending) {
                    Ok(0) => break,
                    Ok(n) => {
                        self.stdin_pending.drain(..n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        // The process closed its stdin: nothing more can go there.
                        self.stdin_pending.clear();
                        self.stdin = None;
                        return;
                    }
                }
            }
        }
        if self.close_stdin_when_flushed && self.stdin_pending.is_empty() && self.pty.is_none() {
            self.stdin = None;
        }
    }

    fn queue_stdin(&mut self, data: &[u8]) {
        if self.stdin.is_some() && self.stdin_pending.len() + data.len() <= STDIN_BUFFER_MAX {
            self.stdin_pending.extend_from_slice(data);
            self.flush_stdin();
        }
    }

    fn resize(&self, cols: u16, rows: u16) {
        if let Some(fd) = self.pty {
            let size = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
            unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &size) };
        }
    }
}

/// The monitor's ends of a process's pipes.
struct ChildPipes {
    stdin: Option<File>,
    stdout: File,
    stderr: File,
}

/// Creates the pipes for a process without a tty: returns the process's three fds and ours.
fn make_pipes(open_stdin: bool) -> Result<([OwnedFd; 3], ChildPipes)> {
    let pipe = || {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::io("creating a pipe", e.into()))
    };
    let (stdin_child, stdin_ours) = if open_stdin {
        let (r, w) = pipe()?;
        set_nonblocking(w.as_raw_fd())?;
        (r, Some(File::from(w)))
    } else {
        let null = File::open("/dev/null").context(|| "opening /dev/null".into())?;
        (OwnedFd::from(null), None)
    };
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    set_nonblocking(out_r.as_raw_fd())?;
    set_nonblocking(err_r.as_raw_fd())?;
    Ok((
        [stdin_child, out_w, err_w],
        ChildPipes { stdin: stdin_ours, stdout: File::from(out_r), stderr: File::from(err_r) },
    ))
}

fn set_nonblocking(fd: RawFd) -> Result<()> {
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(Error::io("setting O_NONBLOCK", io::Error::last_os_error()));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientKind {
    /// Has not sent its request line yet.
    Pending,
    /// Gets state lines.
    Watch,
    /// Gets the container's output; its stdin frames go to the container when `stdin`.
    Attach { stdin: bool },
    /// Owns exec session `id`.
    Exec { id: u64 },
    /// Gets nothing more; closed once its output is flushed.
    Done,
}

struct Client {
    stream: UnixStream,
    kind: ClientKind,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    dropped: u64,
    closed: bool,
}

impl Client {
    /// Queues a frame unless the client is too far behind, then counts what it misses.
    fn push_frame(&mut self, kind: u8, payload: &[u8]) {
        if self.outbuf.len() + payload.len() > CLIENT_BUFFER_MAX {
            self.dropped += payload.len() as u64;
            return;
        }
        if self.dropped > 0 {
            let dropped = std::mem::take(&mut self.dropped);
            push_frame(&mut self.outbuf, FRAME_DROPPED, &dropped.to_be_bytes());
        }
        push_frame(&mut self.outbuf, kind, payload);
    }

    fn push_line(&mut self, value: &impl serde::Serialize) {
        let mut line = serde_json::to_vec(value).expect("protocol values serialise");
        line.push(b'\n');
        self.outbuf.extend_from_slice(&line);
    }

    fn flush(&mut self) {
        while !self.outbuf.is_empty() {
            match self.stream.write(&self.outbuf) {
                Ok(0) => break,
                Ok(n) => {
                    self.outbuf.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.closed = true;
                    self.outbuf.clear();
                    break;
                }
            }
        }
        if self.kind == ClientKind::Done && self.outbuf.is_empty() {
            self.closed = true;
        }
    }
}

struct ExecSession {
    id: u64,
    proc: Proc,
    exit: Option<i32>,
}

struct Monitor {
    config: MonitorConfig,
    runtime: Box<dyn Runtime>,
    state: RunState,
    log: LogFile,
    listener: UnixListener,
    sigchld: File,
    clients: Vec<Client>,
    main: Option<Proc>,
    /// Stdin an attached client sent before the first process started (Docker's clients attach
    /// and send stdin before `start`), and whether it also closed it: given to the process at
    /// its start.
    early_stdin: Vec<u8>,
    early_close_stdin: bool,
    /// Partial log lines of the container's stdout and stderr.
    partial: [Vec<u8>; 2],
    execs: Vec<ExecSession>,
    next_exec: u64,
    restart_at: Option<Instant>,
    backoff: Duration,
    started_at: Option<Instant>,
    tty_size: (u16, u16),
    /// When to drop the file pages that start-up or a start touched (see
    /// [`release_file_pages`]).
    trim_at: Option<Instant>,
    /// Whether the container ran (or failed to start) under this monitor: once it is done, so
    /// is the monitor.
    ran: bool,
    /// A container never started gets its next start prepared as soon as the monitor is idle
    /// (`docker run` attaches and waits before it starts): `prepare_due` until that is done,
    /// then `prepared` until the start uses it.
    prepare_due: bool,
    prepared: bool,
    shutdown: bool,
    /// The health check, when the container has one (issue 8).
    health: Option<Checker>,
}

impl Monitor {
    fn setup(dir: &Path) -> Result<Monitor> {
        let config_path = dir.join("monitor.json");
        let bytes = fs::read(&config_path).context(|| format!("reading {}", config_path.display()))?;
        let config: MonitorConfig = serde_json::from_slice(&bytes)
            .map_err(|e| Error::InvalidInput(format!("invalid {}: {e}", config_path.display())))?;

        // SIGCHLD through a self-pipe into the poll loop. A handler (not SIG_IGN, not a blocked
        // mask) so that nothing of it is inherited by the container's processes across exec.
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
            .map_err(|e| Error::io("creating the signal pipe", e.into()))?;
        SIGCHLD_PIPE.store(w.as_raw_fd(), Ordering::Relaxed);
        std::mem::forget(w);
        let flags = SaFlags::SA_RESTART | SaFlags::SA_NOCLDSTOP;
        unsafe {
            sigaction(
                Signal::SIGCHLD,
                &SigAction::new(SigHandler::Handler(on_sigchld), flags, SigSet::empty()),
            )
            .map_err(|e| Error::io("installing the SIGCHLD handler", e.into()))?;
            // Writes to a closed pipe or socket fail with EPIPE instead of killing the monitor.
            sigaction(
                Signal::SIGPIPE,
                &SigAction::new(SigHandler::Handler(on_sigpipe), flags, SigSet::empty()),
            )
            .map_err(|e| Error::io("installing the SIGPIPE handler", e.into()))?;
        }
        // Processes the container's process leaves behind are re-parented to us and reaped.
        let _ = nix::sys::prctl::set_child_subreaper(true);

        let kind: RuntimeKind = config.runtime.parse()?;
        let runtime =
            runtime::new_runtime(kind, &RuntimeConfig { state_root: config.runtime_state_root.clone() })?;
        let log = LogFile::open(&config.log, config.log_rotation)
            .context(|| format!("opening {}", config.log.display()))?;
        let mut state = match fs::read(&config.state) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|_| RunState::created()),
            Err(_) => RunState::created(),
        };
        state.monitor_pid = std::process::id() as i32;
        if let Some(parent) = config.socket.parent() {
            fs::create_dir_all(parent).context(|| format!("creating {}", parent.display()))?;
        }
        match fs::remove_file(&config.socket) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("removing {}", config.socket.display()), e)),
        }
        let listener = UnixListener::bind(&config.socket)
            .context(|| format!("listening on {}", config.socket.display()))?;
        listener.set_nonblocking(true).context(|| "setting the socket non-blocking".into())?;
        let prepare_due = state.status == ContainerStatus::Created;
        let mut monitor = Monitor {
            config,
            runtime,
            state,
            log,
            listener,
            sigchld: File::from(r),
            clients: Vec::new(),
            main: None,
            early_stdin: Vec::new(),
            early_close_stdin: false,
            partial: [Vec::new(), Vec::new()],
            execs: Vec::new(),
            next_exec: 1,
            restart_at: None,
            backoff: BACKOFF_START,
            started_at: None,
            tty_size: (80, 24),
            trim_at: Some(Instant::now() + TRIM_DELAY),
            ran: false,
            prepare_due,
            prepared: false,
            shutdown: false,
            health: None,
        };
        monitor.health =
            monitor.config.health.clone().map(|h| Checker::new(h, monitor.config.bundle.clone()));
        monitor.save_state()?;
        Ok(monitor)
    }

    /// The poll loop: until the container is done (exited with no restart due) or a shutdown was
    /// asked for, and every client got what was queued for it.
    fn serve(&mut self) -> Result<()> {
        loop {
            let done = self.shutdown
                || (self.ran && self.main.is_none() && self.restart_at.is_none() && self.execs.is_empty());
            if done {
                return Ok(());
            }
            let health_at = self.health.as_ref().and_then(Checker::wake_at);
            let next = [self.restart_at, self.trim_at, health_at].into_iter().flatten().min();
            let timeout = match self.prepare_due {
                true => Some(Duration::ZERO),
                false => next.map(|at| at.saturating_duration_since(Instant::now())),
            };
            let busy = self.poll_once(timeout)?;
            if self.prepare_due && !busy {
                self.prepare_due = false;
                // A failure is not kept: the start does the same work again and reports it.
                self.prepared = self.runtime.prepare(&self.config.id, &self.config.bundle).is_ok();
            }
            if let Some(h) = self.health.as_mut() {
                let running = self.state.status == ContainerStatus::Running && self.main.is_some();
                if h.tick(running, self.runtime.as_ref(), &self.config.id, &mut self.state.health) {
                    self.save_state_logged();
                    self.trim_at = Some(Instant::now() + TRIM_DELAY);
                }
            }
            if self.trim_at.is_some_and(|at| Instant::now() >= at) {
                self.trim_at = None;
                release_file_pages();
            }
            if let Some(at) = self.restart_at {
                if Instant::now() >= at {
                    self.restart_at = None;
                    self.state.restart_count += 1;
                    // A failure is recorded in the state and goes through the policy again.
                    let _ = self.start(true);
                }
            }
        }
    }

    /// One round of poll and whatever became ready; whether anything was.
    fn poll_once(&mut self, timeout: Option<Duration>) -> Result<bool> {
        // Raw pollfds: the set changes every round and mixes owners, which nix's borrowed
        // `PollFd`s make awkward; `poll` itself is one plain call.
        #[derive(Clone, Copy)]
        enum Src {
            Sigchld,
            Listener,
            Client(usize),
            MainOut(usize),
            MainIn,
            ExecOut(usize, usize),
            ExecIn(usize),
            Health,
        }
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(8 + self.clients.len());
        let mut srcs = Vec::with_capacity(fds.capacity());
        let mut add = |fd: RawFd, events: libc::c_short, src: Src| {
            fds.push(libc::pollfd { fd, events, revents: 0 });
            srcs.push(src);
        };
        add(self.sigchld.as_raw_fd(), libc::POLLIN, Src::Sigchld);
        add(self.listener.as_raw_fd(), libc::POLLIN, Src::Listener);
        for (i, c) in self.clients.iter().enumerate() {
            let mut events = libc::POLLIN;
            if !c.outbuf.is_empty() {
                events |= libc::POLLOUT;
            }
            add(c.stream.as_raw_fd(), events, Src::Client(i));
        }
        if let Some(main) = &self.main {
            for (s, out) in main.out.iter().enumerate() {
                if let Some(f) = out {
                    add(f.as_raw_fd(), libc::POLLIN, Src::MainOut(s));
                }
            }
            if let (Some(stdin), false) = (&main.stdin, main.stdin_pending.is_empty()) {
                add(stdin.as_raw_fd(), libc::POLLOUT, Src::MainIn);
            }
        }
        for (e, exec) in self.execs.iter().enumerate() {
            for (s, out) in exec.proc.out.iter().enumerate() {
                if let Some(f) = out {
                    add(f.as_raw_fd(), libc::POLLIN, Src::ExecOut(e, s));
                }
            }
            if let (Some(stdin), false) = (&exec.proc.stdin, exec.proc.stdin_pending.is_empty()) {
                add(stdin.as_raw_fd(), libc::POLLOUT, Src::ExecIn(e));
            }
        }
        if let Some(fd) = self.health.as_ref().and_then(Checker::fd) {
            add(fd, libc::POLLIN, Src::Health);
        }
        let timeout_ms = match timeout {
            Some(t) if t.is_zero() => 0,
            Some(t) => t.as_millis().min(i32::MAX as u128) as i32 + 1,
            None => -1,
        };
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(true);
            }
            return Err(Error::io("poll", e));
        }
        let mut reap = false;
        let mut accept = false;
        for (pfd, src) in fds.iter().zip(srcs) {
            if pfd.revents == 0 {
                continue;
            }
            match src {
                Src::Sigchld => reap = true,
                Src::Listener => accept = true,
                Src::Client(i) => {
                    if pfd.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                        self.read_client(i);
                    }
                    self.clients[i].flush();
                }
                Src::MainOut(s) => self.read_main(s),
                Src::MainIn => {
                    if let Some(main) = self.main.as_mut() {
                        main.flush_stdin();
                    }
                }
                Src::ExecOut(e, s) => self.read_exec(e, s),
                Src::ExecIn(e) => self.execs[e].proc.flush_stdin(),
                Src::Health => self.health.as_mut().into_iter().for_each(Checker::read_output),
            }
        }
        if reap {
            let mut buf = [0u8; 64];
            while matches!(self.sigchld.read(&mut buf), Ok(n) if n > 0) {}
            self.reap();
        }
        if accept {
            self.accept();
        }
        self.finish_execs();
        for c in &mut self.clients {
            c.flush();
        }
        self.clients.retain(|c| !c.closed);
        Ok(n > 0)
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if stream.set_nonblocking(true).is_ok() {
                        self.clients.push(Client {
                            stream,
                            kind: ClientKind::Pending,
                            inbuf: Vec::new(),
                            outbuf: Vec::new(),
                            dropped: 0,
                            closed: false,
                        });
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    }

    fn read_client(&mut self, i: usize) {
        let mut buf = [0u8; 8192];
        loop {
            match self.clients[i].stream.read(&mut buf) {
                Ok(0) => {
                    self.client_gone(i);
                    return;
                }
                Ok(n) => self.clients[i].inbuf.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.client_gone(i);
                    return;
                }
            }
            if self.clients[i].inbuf.len() > 2 * MAX_FRAME {
                break;
            }
        }
        if self.clients[i].kind == ClientKind::Pending {
            let Some(end) = self.clients[i].inbuf.iter().position(|&b| b == b'\n') else {
                if self.clients[i].inbuf.len() > MAX_FRAME {
                    self.client_gone(i);
                }
                return;
            };
            let line: Vec<u8> = self.clients[i].inbuf.drain(..=end).collect();
            match serde_json::from_slice::<Request>(&line) {
                Ok(request) => self.handle(i, request),
                Err(e) => {
                    let error = ReplyError::InvalidInput { message: format!("bad monitor request: {e}") };
                    self.reply_once(i, Err(error));
                }
            }
        }
        self.handle_frames(i);
    }

    /// Frames from an attach or exec client: stdin, close stdin, resize.
    fn handle_frames(&mut self, i: usize) {
        loop {
            let frame = match take_frame(&mut self.clients[i].inbuf) {
                Ok(Some(frame)) => frame,
                Ok(None) => return,
                Err(_) => {
                    self.client_gone(i);
                    return;
                }
            };
            let proc = match self.clients[i].kind {
                ClientKind::Attach { stdin } => match self.main.as_mut() {
                    Some(main) if stdin || frame.0 == FRAME_RESIZE => main,
                    // Not started yet: kept for the start.
                    None if stdin && self.config.open_stdin => {
                        match frame.0 {
                            FRAME_STDIN if self.early_stdin.len() + frame.1.len() <= STDIN_BUFFER_MAX => {
                                self.early_stdin.extend_from_slice(&frame.1)
                            }
                            FRAME_CLOSE_STDIN => self.early_close_stdin = true,
                            _ => {}
                        }
                        continue;
                    }
                    _ => continue,
                },
                ClientKind::Exec { id } => match self.execs.iter_mut().find(|e| e.id == id) {
                    Some(exec) => &mut exec.proc,
                    None => continue,
                },
                _ => continue,
            };
            match frame {
                (FRAME_STDIN, data) => proc.queue_stdin(&data),
                (FRAME_CLOSE_STDIN, _) => {
                    proc.close_stdin_when_flushed = true;
                    proc.flush_stdin();
                }
                (FRAME_KILL, _) if matches!(self.clients[i].kind, ClientKind::Exec { .. }) => {
                    let _ = nix::sys::signal::kill(Pid::from_raw(proc.pid), Signal::SIGKILL);
                }
                (FRAME_RESIZE, size) if size.len() == 4 => {
                    let cols = u16::from_be_bytes([size[0], size[1]]);
                    let rows = u16::from_be_bytes([size[2], size[3]]);
                    proc.resize(cols, rows);
                    if matches!(self.clients[i].kind, ClientKind::Attach { .. }) {
                        self.tty_size = (cols, rows);
                    }
                }
                _ => {}
            }
        }
    }

    /// A client hung up. An exec session loses its stdin; its process runs on.
    fn client_gone(&mut self, i: usize) {
        let client = &mut self.clients[i];
        client.closed = true;
        client.outbuf.clear();
        if let ClientKind::Exec { id } = client.kind {
            if let Some(exec) = self.execs.iter_mut().find(|e| e.id == id) {
                exec.proc.stdin = None;
            }
        }
    }

    fn reply_once(&mut self, i: usize, result: std::result::Result<i32, ReplyError>) {
        let reply = match result {
            Ok(pid) => Reply { error: None, pid },
            Err(e) => Reply { error: Some(e), pid: 0 },
        };
        let client = &mut self.clients[i];
        client.push_line(&reply);
        client.kind = ClientKind::Done;
        client.flush();
    }

    fn handle(&mut self, i: usize, request: Request) {
        let id = self.config.id.clone();
        let not_running = || ReplyError::Conflict { message: format!("Container {id} is not running") };
        match request {
            Request::Start => {
                let result = if self.state.is_live() {
                    Ok(self.state.pid)
                } else {
                    self.state.restart_count = 0;
                    self.start(false).map_err(|e| (&e).into())
                };
                self.reply_once(i, result);
            }
            Request::Kill { signal, stop } => {
                let result = self.kill(signal, stop).map_err(|e| (&e).into());
                self.reply_once(i, result.map(|()| 0));
            }
            Request::Pause => {
                let result = match self.state.status {
                    ContainerStatus::Running => self.runtime.pause(&id).map_err(|e| (&e).into()).map(|()| {
                        self.state.status = ContainerStatus::Paused;
                        self.save_state_logged();
                        0
                    }),
                    ContainerStatus::Paused => {
                        Err(ReplyError::Conflict { message: format!("Container {id} is already paused") })
                    }
                    _ => Err(not_running()),
                };
                self.reply_once(i, result);
            }
            Request::Resume => {
                let result = match self.state.status {
                    ContainerStatus::Paused => self.runtime.resume(&id).map_err(|e| (&e).into()).map(|()| {
                        self.state.status = ContainerStatus::Running;
                        self.save_state_logged();
                        0
                    }),
                    _ => Err(ReplyError::Conflict { message: format!("Container {id} is not paused") }),
                };
                self.reply_once(i, result);
            }
            Request::Shutdown => {
                if self.state.is_live() {
                    self.reply_once(
                        i,
                        Err(ReplyError::Conflict { message: format!("container {id} is still running") }),
                    );
                } else {
                    self.shutdown = true;
                    self.reply_once(i, Ok(0));
                }
            }
            Request::SetRestartPolicy { restart_policy } => {
                self.config.restart_policy = restart_policy;
                self.reply_once(i, Ok(0));
            }
            Request::Watch => {
                let client = &mut self.clients[i];
                client.kind = ClientKind::Watch;
                client.push_line(&self.state);
                client.flush();
            }
            Request::Attach { stdin } => {
                let client = &mut self.clients[i];
                client.push_line(&Reply::default());
                client.kind = ClientKind::Attach { stdin: stdin && self.config.open_stdin };
                client.flush();
            }
            Request::Exec { process, tty, open_stdin } => match self.exec(&process, tty, open_stdin) {
                Ok((exec_id, pid)) => {
                    let client = &mut self.clients[i];
                    client.push_line(&Reply { error: None, pid });
                    client.kind = ClientKind::Exec { id: exec_id };
                    client.flush();
                }
                Err(e) => self.reply_once(i, Err((&e).into())),
            },
        }
    }

    /// Starts the container's process (`restart`: by the restart policy). A failure is recorded
    /// in the state; with a restart it counts as an exit the policy decides on again.
    fn start(&mut self, restart: bool) -> Result<i32> {
        self.ran = true;
        let result = self.try_start();
        match &result {
            Ok(pid) => {
                self.state.status = ContainerStatus::Running;
                self.state.pid = *pid;
                self.state.started_at = Some(Utc::now());
                self.state.oom_killed = false;
                self.state.error.clear();
                self.state.stopped_by_user = false;
                self.started_at = Some(Instant::now());
                if let Some(h) = self.health.as_mut() {
                    h.started(&mut self.state.health);
                }
                // Not now: the answer to the start goes first.
                self.trim_at = Some(Instant::now() + TRIM_DELAY);
            }
            Err(e) => {
                let code = match e {
                    Error::CommandFailed { exit_code, .. } => *exit_code,
                    _ => 128,
                };
                self.state.error = e.to_string();
                self.state.exit_code = code;
                self.state.pid = 0;
                if restart || self.state.status != ContainerStatus::Created {
                    self.state.status = ContainerStatus::Exited;
                    self.state.finished_at = Some(Utc::now());
                }
                let _ = self.runtime.delete(&self.config.id);
                if restart {
                    self.schedule_restart(code, Duration::ZERO);
                }
                for c in &mut self.clients {
                    if matches!(c.kind, ClientKind::Attach { .. }) && self.restart_at.is_none() {
                        c.push_frame(FRAME_EXIT, &code.to_be_bytes());
                        c.kind = ClientKind::Done;
                    }
                }
            }
        }
        self.save_state_logged();
        result
    }

    fn try_start(&mut self) -> Result<i32> {
        // Whatever a previous run left (a cgroup, runtime state) goes first (in `prepare`), unless
        // this start was prepared while the monitor waited for it.
        self.prepare_due = false;
        if !std::mem::take(&mut self.prepared) {
            self.runtime.prepare(&self.config.id, &self.config.bundle)?;
        }
        let (stdio, pipes) = if self.config.tty {
            let (cols, rows) = self.tty_size;
            (Stdio::Terminal { cols, rows }, None)
        } else {
            let (fds, pipes) = make_pipes(self.config.open_stdin)?;
            (Stdio::Fds(fds), Some(pipes))
        };
        let started = self.runtime.start(&self.config.id, &self.config.bundle, stdio)?;
        let pid = started.pid;
        match Proc::from_started(started, pipes) {
            Ok(mut proc) => {
                if !self.early_stdin.is_empty() {
                    proc.queue_stdin(&std::mem::take(&mut self.early_stdin));
                }
                if std::mem::take(&mut self.early_close_stdin) {
                    proc.close_stdin_when_flushed = true;
                    proc.flush_stdin();
                }
                self.main = Some(proc);
                Ok(pid)
            }
            Err(e) => {
                let _ = self.runtime.delete(&self.config.id);
                let _ = waitpid(Pid::from_raw(pid), None);
                Err(e)
            }
        }
    }

    fn kill(&mut self, signal: i32, stop: bool) -> Result<()> {
        if stop {
            self.state.stopped_by_user = true;
        }
        match self.state.status {
            ContainerStatus::Restarting if stop => {
                self.restart_at = None;
                self.state.status = ContainerStatus::Exited;
                self.save_state_logged();
                self.notify_attach_exit(self.state.exit_code);
                Ok(())
            }
            ContainerStatus::Running | ContainerStatus::Paused if self.main.is_some() => {
                if signal != 0 {
                    self.runtime.kill(&self.config.id, signal, false)?;
                }
                if stop && self.state.status == ContainerStatus::Paused {
                    // A frozen process cannot act on the signal: thaw it, as Docker does.
                    self.runtime.resume(&self.config.id)?;
                    self.state.status = ContainerStatus::Running;
                }
                self.save_state_logged();
                Ok(())
            }
            _ => Err(Error::Conflict(format!("Container {} is not running", self.config.id))),
        }
    }

    fn exec(
        &mut self,
        process: &oci_spec::runtime::Process,
        tty: bool,
        open_stdin: bool,
    ) -> Result<(u64, i32)> {
        match self.state.status {
            ContainerStatus::Running if self.main.is_some() => {}
            ContainerStatus::Paused => {
                return Err(Error::Conflict(format!(
                    "Container {} is paused, unpause the container before exec",
                    self.config.id
                )))
            }
            _ => return Err(Error::Conflict(format!("Container {} is not running", self.config.id))),
        }
        let (stdio, pipes) = if tty {
            (Stdio::Terminal { cols: 80, rows: 24 }, None)
        } else {
            let (fds, pipes) = make_pipes(open_stdin)?;
            (Stdio::Fds(fds), Some(pipes))
        };
        let started = self.runtime.exec(&self.config.id, process, stdio)?;
        let pid = started.pid;
        let proc = Proc::from_started(started, pipes)?;
        let id = self.next_exec;
        self.next_exec += 1;
        self.execs.push(ExecSession { id, proc, exit: None });
        Ok((id, pid))
    }

    /// Reads what the container wrote on stream `s` (0 stdout or pty, 1 stderr).
    fn read_main(&mut self, s: usize) {
        let mut buf = [0u8; 16384];
        let Some(main) = self.main.as_mut() else { return };
        let Some(out) = main.out[s].as_mut() else { return };
        let data = match out.read(&mut buf) {
            Ok(0) => {
                main.out[s] = None;
                return;
            }
            Ok(n) => &buf[..n],
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => return,
            // EIO: the pty's last slave closed.
            Err(_) => {
                main.out[s] = None;
                return;
            }
        };
        let frame = if s == 0 { FRAME_STDOUT } else { FRAME_STDERR };
        for c in &mut self.clients {
            if matches!(c.kind, ClientKind::Attach { .. }) {
                c.push_frame(frame, data);
            }
        }
        self.log_output(s, data);
    }

    fn read_exec(&mut self, e: usize, s: usize) {
        let mut buf = [0u8; 16384];
        let exec = &mut self.execs[e];
        let Some(out) = exec.proc.out[s].as_mut() else { return };
        let n = match out.read(&mut buf) {
            Ok(0) => {
                exec.proc.out[s] = None;
                return;
            }
            Ok(n) => n,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => return,
            Err(_) => {
                exec.proc.out[s] = None;
                return;
            }
        };
        let id = exec.id;
        let frame = if s == 0 { FRAME_STDOUT } else { FRAME_STDERR };
        if let Some(c) = self.clients.iter_mut().find(|c| c.kind == ClientKind::Exec { id }) {
            c.push_frame(frame, &buf[..n]);
        }
    }

    /// Appends output to the log as entries of whole lines (a line longer than
    /// [`LOG_LINE_MAX`] is split, as Docker does).
    fn log_output(&mut self, s: usize, mut data: &[u8]) {
        while !data.is_empty() {
            let room = LOG_LINE_MAX - self.partial[s].len();
            let take = match data.iter().take(room).position(|&b| b == b'\n') {
                Some(i) => i + 1,
                None => data.len().min(room),
            };
            self.partial[s].extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.partial[s].ends_with(b"\n") || self.partial[s].len() >= LOG_LINE_MAX {
                self.flush_log_line(s);
            }
        }
    }

    fn flush_log_line(&mut self, s: usize) {
        if self.partial[s].is_empty() {
            return;
        }
        let line = std::mem::take(&mut self.partial[s]);
        let entry = LogEntry {
            stream: if s == 0 { "stdout" } else { "stderr" }.to_string(),
            time: Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true),
            line: String::from_utf8_lossy(&line).into_owned(),
        };
        let mut json = serde_json::to_vec(&entry).expect("log entries serialise");
        json.push(b'\n');
        if let Err(e) = self.log.append(&json) {
            super::note(format_args!("berth monitor: writing {}: {e}", self.config.log.display()));
        }
    }

    /// Reaps every child that exited: the container's process, exec'd processes, and orphans
    /// re-parented to the monitor.
    fn reap(&mut self) {
        loop {
            let (pid, code) = match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid.as_raw(), code),
                Ok(WaitStatus::Signaled(pid, signal, _)) => (pid.as_raw(), 128 + signal as i32),
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(_) => continue,
            };
            if self.main.as_ref().is_some_and(|m| m.pid == pid) {
                self.main_exited(code);
            } else if let Some(exec) = self.execs.iter_mut().find(|e| e.proc.pid == pid) {
                exec.exit = Some(code);
            } else if self.health.as_mut().is_some_and(|h| h.reaped(pid, code, &mut self.state.health)) {
                self.save_state_logged();
                // As after an exec: starting the probe touched code the idle loop does not need.
                self.trim_at = Some(Instant::now() + TRIM_DELAY);
            }
        }
    }

    fn main_exited(&mut self, code: i32) {
        if self.main.is_none() {
            return;
        }
        // Output the process wrote just before it exited is still in the pipes.
        let deadline = Instant::now() + DRAIN_TIME;
        while Instant::now() < deadline && self.main.as_ref().is_some_and(Proc::has_output) {
            let mut fds: Vec<libc::pollfd> = Vec::new();
            for f in self.main.as_ref().into_iter().flat_map(|m| m.out.iter().flatten()) {
                fds.push(libc::pollfd { fd: f.as_raw_fd(), events: libc::POLLIN, revents: 0 });
            }
            let left = deadline.saturating_duration_since(Instant::now()).as_millis() as i32 + 1;
            if unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, left) } <= 0 {
                break;
            }
            for s in 0..2 {
                if self.main.as_ref().is_some_and(|m| m.out[s].is_some()) {
                    self.read_main(s);
                }
            }
        }
        self.main = None;
        self.flush_log_line(0);
        self.flush_log_line(1);

        let oom = self.runtime.stats(&self.config.id).map(|s| s.oom_kills > 0).unwrap_or(false);
        if let Err(e) = self.runtime.delete(&self.config.id) {
            super::note(format_args!("berth monitor: deleting container {}: {e}", self.config.id));
        }
        self.state.status = ContainerStatus::Exited;
        self.state.pid = 0;
        self.state.exit_code = code;
        self.state.oom_killed = oom;
        self.state.finished_at = Some(Utc::now());
        if let Some(h) = self.health.as_mut() {
            h.stopped();
        }
        let ran_for = self.started_at.take().map(|t| t.elapsed()).unwrap_or_default();
        if !self.state.stopped_by_user {
            self.schedule_restart(code, ran_for);
        }
        // Exec'd processes die with the container; their sessions end when they are reaped.
        self.save_state_logged();
        if self.restart_at.is_none() {
            self.notify_attach_exit(code);
        }
    }

    /// Applies the restart policy to an exit with `code` after a run of `ran_for`.
    fn schedule_restart(&mut self, code: i32, ran_for: Duration) {
        let restart = match self.config.restart_policy {
            RestartPolicy::No => false,
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
            RestartPolicy::OnFailure { max_retries } => {
                code != 0 && (max_retries == 0 || self.state.restart_count < max_retries)
            }
        };
        if !restart {
            return;
        }
        if ran_for >= BACKOFF_RESET_AFTER {
            self.backoff = BACKOFF_START;
        }
        self.restart_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        self.state.status = ContainerStatus::Restarting;
    }

    fn notify_attach_exit(&mut self, code: i32) {
        for c in &mut self.clients {
            if matches!(c.kind, ClientKind::Attach { .. }) {
                c.push_frame(FRAME_EXIT, &code.to_be_bytes());
                c.kind = ClientKind::Done;
                c.flush();
            }
        }
    }

    /// Ends exec sessions whose process exited and whose output is drained (or whose container
    /// is gone).
    fn finish_execs(&mut self) {
        let container_gone = self.main.is_none();
        let mut i = 0;
        while i < self.execs.len() {
            let exec = &self.execs[i];
            let finished = exec.exit.is_some() && (!exec.proc.has_output() || container_gone);
            if !finished {
                i += 1;
                continue;
            }
            let exec = self.execs.remove(i);
            self.trim_at = Some(Instant::now() + TRIM_DELAY);
            let code = exec.exit.unwrap_or(137);
            if let Some(c) = self.clients.iter_mut().find(|c| c.kind == ClientKind::Exec { id: exec.id }) {
                c.push_frame(FRAME_EXIT, &code.to_be_bytes());
                c.kind = ClientKind::Done;
                c.flush();
            }
        }
    }

    fn save_state(&mut self) -> Result<()> {
        self.state.seq += 1;
        let json = serde_json::to_vec_pretty(&self.state).expect("state serialises");
        // Renamed into place, so the daemon never reads a torn state. fsynced only when the
        // container has a restart policy: then the state (stopped by the user or not) decides
        // whether it runs again after a reboot. Without one, a state a power cut lost reads as
        // an earlier one, and the container is not running after the reboot either way; the
        // fsyncs (several per run) would cost milliseconds on each start and exit.
        if self.config.restart_policy == RestartPolicy::No {
            fsutil::write_replace(&self.config.state, &json)?;
        } else {
            fsutil::write_atomic(&self.config.state, &json)?;
        }
        let state = self.state.clone();
        for c in &mut self.clients {
            if c.kind == ClientKind::Watch {
                c.push_line(&state);
                c.flush();
            }
        }
        Ok(())
    }

    fn save_state_logged(&mut self) {
        if let Err(e) = self.save_state() {
            super::note(format_args!("berth monitor: {e}"));
        }
    }

    /// The monitor is done: the state says no monitor serves the container, the socket goes,
    /// and clients get what was queued for them (briefly: a stuck client must not keep a dead
    /// container's monitor).
    fn finish(&mut self) {
        if self.prepared {
            // A prepared start that never came: its cgroup goes.
            let _ = self.runtime.delete(&self.config.id);
        }
        let _ = fs::remove_file(&self.config.socket);
        self.state.monitor_pid = 0;
        self.save_state_logged();
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline && self.clients.iter().any(|c| !c.outbuf.is_empty() && !c.closed) {
            for c in &mut self.clients {
                c.flush();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Drops this process's mappings of read-only file pages (program and library code, read-only
/// data) that are not copies: they stay in the page cache and fault back in when used.
///
/// Set-up and a container start touch a lot of the program (runtime, JSON, errors) that the
/// idle poll loop never runs again; without this those pages stay mapped for the container's
/// whole life, and with one monitor per container they add up. Only mappings without any
/// private (copied) page are touched, so no content is lost: for a read-only private file
/// mapping `MADV_DONTNEED` just unmaps page-cache pages. The free heap and the stack below
/// the poll loop go too.
pub(super) fn release_file_pages() {
    release_stack();
    // Last: code run after it faults its pages back in (with their neighbours); the heap after
    // it, which its reading of smaps used.
    release_file_mappings();
    release_heap();
}

/// Gives back the free memory of the heap: set-up and a start (JSON, the spec, the runtime)
/// leave tens of kB freed but still resident in malloc's arenas, which the poll loop never needs.
fn release_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free memory of glibc's own arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Drops the stack pages below the current frame. Set-up and a start run deep (runtime, JSON)
/// and leave tens of kB of stack resident that the poll loop does not reach again; what lies
/// below the stack pointer is dead, and a page touched again is faulted in as a zero page.
#[inline(never)]
fn release_stack() {
    let marker = 0u8;
    let sp = std::ptr::addr_of!(marker) as usize;
    // A margin below this frame for the calls made from here (madvise itself, a signal handler).
    let keep_below = 16 * 1024;
    let page = 4096;
    let Ok(maps) = fs::read_to_string("/proc/self/maps") else { return };
    let Some(start) = maps
        .lines()
        .find(|l| l.ends_with("[stack]"))
        .and_then(|l| l.split_once('-'))
        .and_then(|(start, _)| usize::from_str_radix(start, 16).ok())
    else {
        return;
    };
    let end = sp.saturating_sub(keep_below) & !(page - 1);
    if end > start {
        // SAFETY: [start, end) lies below the live part of this thread's stack.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
    }
}

/// The read-only file mappings part of [`release_file_pages`].
fn release_file_mappings() {
    let Ok(smaps) = fs::read_to_string("/proc/self/smaps") else { return };
    let release = |mapping: Option<(usize, usize, bool)>, anonymous: u64| {
        if let Some((start, end, true)) = mapping {
            if anonymous == 0 {
                unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
            }
        }
    };
    let mut current: Option<(usize, usize, bool)> = None;
    let mut anonymous = 0u64;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if let Some((start, end)) = first.split_once('-') {
            if let (Ok(start), Ok(end)) = (usize::from_str_radix(start, 16), usize::from_str_radix(end, 16)) {
                release(current.take(), anonymous);
                anonymous = 0;
                let perms = fields.next().unwrap_or("");
                let inode = fields.nth(2).unwrap_or("0");
                let path = fields.next().unwrap_or("");
                // Read-only, private, backed by a file (not [vdso], not anonymous memory).
                let candidate = perms.starts_with('r')
                    && !perms.contains('w')
                    && perms.ends_with('p')
                    && inode != "0"
                    && path.starts_with('/');
                current = Some((start, end, candidate));
                continue;
            }
        }
        if first == "Anonymous:" {
            anonymous = fields.next().and_then(|v| v.parse().ok()).unwrap_or(u64::MAX);
        }
    }
    release(current, anonymous);
}
