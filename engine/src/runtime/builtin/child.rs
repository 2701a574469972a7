//! What runs in the forked child between `clone` and `execve`.
//!
//! The child is a copy of one thread of a possibly multi-threaded process (the monitor is
//! single-threaded, tests and benchmarks are not), so it must not allocate or take locks: another
//! thread may have held the allocator's lock at the moment of the fork. Everything it needs (C
//! strings, pointer arrays, bit masks, descriptors) is prepared by the parent in a [`Plan`]; the
//! child only makes system calls and reports a failure as a fixed-size [`Failure`] on a pipe.

use std::ffi::{CStr, CString};
use std::os::fd::RawFd;

use libc::{c_char, c_int, c_ulong};

/// What the child was doing when it failed; the parent turns it into a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(super) enum Stage {
    JoinCgroup = 1,
    JoinNamespace,
    Unshare,
    Propagation,
    /// `index` is the step in [`Plan::steps`].
    Step,
    Pivot,
    Masked,
    Readonly,
    RootReadonly,
    Hostname,
    Terminal,
    Stdio,
    Rlimit,
    NoNewPrivs,
    Capabilities,
    Groups,
    User,
    Cwd,
    /// The command was not found (no errno: `index` 0 = not in $PATH, 1 = a path that does not
    /// exist).
    NotFound,
    Exec,
    Loopback,
    Seccomp,
    /// Waiting for the parent to write the user namespace's id mappings, or becoming its root.
    UserNamespace,
}

impl Stage {
    pub(super) fn from_u32(v: u32) -> Option<Stage> {
        use Stage::*;
        [
            JoinCgroup,
            JoinNamespace,
            Unshare,
            Propagation,
            Step,
            Pivot,
            Masked,
            Readonly,
            RootReadonly,
            Hostname,
            Terminal,
            Stdio,
            Rlimit,
            NoNewPrivs,
            Capabilities,
            Groups,
            User,
            Cwd,
            NotFound,
            Exec,
            Loopback,
            Seccomp,
            UserNamespace,
        ]
        .into_iter()
        .find(|s| *s as u32 == v)
    }
}

/// A failure in the child: stage, index (a step, masked path, ...) and errno.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub(super) struct Failure {
    pub stage: u32,
    pub index: u32,
    pub errno: i32,
}

/// How a mount target is created when missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Create {
    Dir,
    File,
}

/// One thing done in the rootfs before `pivot_root`, with paths relative to the rootfs and
/// resolved inside it (`RESOLVE_IN_ROOT`), so that symlinks in an image cannot point a mount at
/// the host.
#[derive(Debug)]
pub(super) enum Step {
    Mount {
        source: Option<CString>,
        /// In a user namespace: the child opens `source` (O_PATH) while it is still the host's
        /// root, which may reach it, and binds it by that descriptor once it is the
        /// namespace's root, which may not.
        open_first: Option<std::cell::Cell<RawFd>>,
        target: CString,
        fstype: Option<CString>,
        flags: c_ulong,
        data: Option<CString>,
        create: Create,
        /// For bind mounts with flags the first mount ignores (ro, nosuid, ...): remount flags.
        remount: Option<c_ulong>,
        /// MS_PRIVATE, MS_SLAVE, ... (with MS_REC) applied after the mount.
        propagation: c_ulong,
    },
    Symlink {
        target: CString,
        link: CString,
    },
    Mknod {
        path: CString,
        mode: libc::mode_t,
        dev: libc::dev_t,
        uid: libc::uid_t,
        gid: libc::gid_t,
    },
}

/// The part of the plan shared by a container's first process and `exec`.
#[derive(Debug)]
pub(super) struct ProcessPlan {
    /// stdin, stdout, stderr; ignored when `terminal`.
    pub stdio: [RawFd; 3],
    /// Open a pty in the container's /dev/pts and send its master over this socket.
    pub terminal_socket: Option<RawFd>,
    pub console_size: (u16, u16),
    /// Bind the pty slave over /dev/console (the container's first process only).
    pub bind_console: bool,
    pub rlimits: Vec<(c_int, libc::rlim_t, libc::rlim_t)>,
    pub cwd: CString,
    pub no_new_privs: bool,
    /// The spec's `linux.seccomp` compiled by the parent; loaded with no_new_privs just before
    /// exec, else before capabilities are dropped (loading needs CAP_SYS_ADMIN then), as runc
    /// does.
    pub seccomp: Option<Vec<libc::sock_filter>>,
    pub last_cap: u32,
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
    pub groups: Vec<libc::gid_t>,
    /// Where to look for the command: the path itself, or each `$PATH` entry joined with it.
    pub candidates: Vec<CString>,
    /// The command contains a slash: it is not looked up in `$PATH`.
    pub is_path: bool,
    /// Own the strings `argv_ptrs` and `envp_ptrs` point at.
    #[allow(dead_code)]
    pub argv: Vec<CString>,
    #[allow(dead_code)]
    pub envp: Vec<CString>,
    pub argv_ptrs: Vec<*const c_char>,
    pub envp_ptrs: Vec<*const c_char>,
}

/// Everything the child does, prepared by the parent.
#[derive(Debug)]
pub(super) struct Plan {
    /// The error pipe's write end (O_CLOEXEC: closes on a successful exec).
    pub error_fd: RawFd,
    /// `cgroup.procs` of each cgroup directory, open for writing.
    pub cgroup_procs: Vec<RawFd>,
    /// When set, the parent joins the child to its cgroup (v1: one write per hierarchy, the
    /// first of which can wait for an RCU grace period) while the child sets up the rootfs; the
    /// child reads one byte from this pipe before going on, and creates the cgroup namespace
    /// after that.
    pub go_fd: Option<RawFd>,
    /// Namespaces to join (exec, or namespaces given by path), with their CLONE_NEW* type.
    pub join: Vec<(RawFd, c_int)>,
    /// Namespaces to create after joining the cgroup (CLONE_NEWCGROUP).
    pub unshare: c_int,
    /// The child was made in a new user namespace: it reads one byte from this pipe (the
    /// parent has written its id mappings) before anything else.
    pub userns_wait: Option<RawFd>,
    /// The child is in a user namespace (new or joined): it becomes the namespace's root before
    /// it makes anything (the rootfs after its own mount, for exec right after joining), so that
    /// what it makes is owned by the container's root and file systems made in the namespace
    /// accept it.
    pub become_root: bool,
    /// The container's first process: set up the rootfs. For exec, `None`.
    pub rootfs: Option<RootfsPlan>,
    pub process: ProcessPlan,
}

#[derive(Debug)]
pub(super) struct RootfsPlan {
    /// Absolute host path of the rootfs.
    pub path: CString,
    pub root_propagation: c_ulong,
    /// The host mount the rootfs lies on, made private when the root is shared (a container
    /// with shared binds), so that binding the rootfs does not propagate back to the host.
    pub root_parent: Option<CString>,
    pub steps: Vec<Step>,
    pub masked: Vec<CString>,
    pub readonly: Vec<CString>,
    pub root_readonly: bool,
    pub hostname: Option<CString>,
    /// The container has a network namespace of its own (made by the clone): bring `lo` up in
    /// it, as runc, crun and Docker's `none` network do.
    pub loopback_up: bool,
    /// The process's working directory, created here.
    pub cwd: CString,
}

/// The `data` argument of mount(2) when there is none.
const NO_DATA: *const libc::c_void = std::ptr::null();

type ChildResult = Result<(), (Stage, u32, i32)>;

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

fn check(r: c_int, stage: Stage, index: u32) -> ChildResult {
    if r < 0 {
        Err((stage, index, errno()))
    } else {
        Ok(())
    }
}

/// Runs the plan in the child; returns only on failure (after reporting it).
pub(super) fn run(plan: &Plan) -> ! {
    let (stage, index, errno) = match run_inner(plan) {
        Ok(()) => (Stage::Exec, 0, libc::EIO),
        Err(e) => e,
    };
    let failure = Failure { stage: stage as u32, index, errno };
    // SAFETY: writing a plain struct to our pipe, then leaving without running any destructor.
    unsafe {
        libc::write(
            plan.error_fd,
            &failure as *const Failure as *const libc::c_void,
            std::mem::size_of::<Failure>(),
        );
        libc::_exit(if stage == Stage::NotFound { 127 } else { 126 })
    }
}

fn run_inner(plan: &Plan) -> ChildResult {
    // While this process is still berth's binary, nothing in the container may open its
    // /proc/PID/exe or /proc/PID/fd (the runtime-overwrite escape): a process that is not
    // dumpable has those owned by the host's root and closed to ptrace access. exec resets it.
    // SAFETY: prctl with integer arguments.
    check(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) }, Stage::Capabilities, 101)?;
    if let Some(fd) = plan.userns_wait {
        let mut byte = 0u8;
        // SAFETY: reading one byte from our pipe into a local.
        let n = unsafe { libc::read(fd, (&mut byte as *mut u8).cast(), 1) };
        if n != 1 {
            return Err((Stage::UserNamespace, 0, if n < 0 { errno() } else { libc::EPIPE }));
        }
    }
    for fd in &plan.cgroup_procs {
        // SAFETY: writing to a descriptor we own; "0" moves the writing process.
        let r = unsafe { libc::write(*fd, b"0".as_ptr().cast(), 1) };
        if r < 0 {
            return Err((Stage::JoinCgroup, 0, errno()));
        }
    }
    for (i, (fd, typ)) in plan.join.iter().enumerate() {
        // SAFETY: setns with a namespace descriptor.
        check(unsafe { libc::setns(*fd, *typ) }, Stage::JoinNamespace, i as u32)?;
    }
    if plan.become_root && plan.rootfs.is_none() {
        become_root()?;
    }
    if plan.unshare != 0 && plan.go_fd.is_none() {
        // SAFETY: plain syscall.
        check(unsafe { libc::unshare(plan.unshare) }, Stage::Unshare, 0)?;
    }
    if let Some(rootfs) = &plan.rootfs {
        if rootfs.loopback_up {
            loopback_up()?;
        }
        setup_rootfs(rootfs, plan.become_root)?;
    }
    if let Some(go) = plan.go_fd {
        // The parent moves us into the cgroup while we set up the rootfs; wait until it has.
        let mut byte = 0u8;
        // SAFETY: reading one byte from our pipe into a local.
        let n = unsafe { libc::read(go, (&mut byte as *mut u8).cast(), 1) };
        if n != 1 {
            return Err((Stage::JoinCgroup, 1, if n < 0 { errno() } else { libc::EPIPE }));
        }
        if plan.unshare != 0 {
            // SAFETY: plain syscall.
            check(unsafe { libc::unshare(plan.unshare) }, Stage::Unshare, 0)?;
        }
    }
    let p = &plan.process;
    // SAFETY: setsid has no memory effects. Fails only if already a group leader (exec of a
    // process that is one cannot happen: we were just forked).
    unsafe { libc::setsid() };
    if let Some(sock) = p.terminal_socket {
        setup_terminal(sock, p.console_size, p.bind_console)?;
    } else {
        setup_stdio(&p.stdio)?;
    }
    for (i, (res, soft, hard)) in p.rlimits.iter().enumerate() {
        let lim = libc::rlimit { rlim_cur: *soft, rlim_max: *hard };
        // SAFETY: setrlimit with a valid struct. The parent clamped the values to its hard limits.
        check(unsafe { libc::setrlimit(*res as _, &lim) }, Stage::Rlimit, i as u32)?;
    }
    if plan.rootfs.is_none() {
        // exec: a missing working directory is created as root when the root filesystem allows
        // it; if not, the chdir below reports it.
        let _ = mkdir_all_abs(&p.cwd);
    }
    if p.no_new_privs {
        // SAFETY: prctl with integer arguments.
        check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }, Stage::NoNewPrivs, 0)?;
    }
    if !p.no_new_privs {
        load_seccomp(p)?;
    }
    for cap in 0..=p.last_cap {
        if p.bounding & (1u64 << cap) == 0 {
            // SAFETY: prctl with integer arguments.
            let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as c_ulong, 0, 0, 0) };
            if r < 0 && errno() != libc::EINVAL {
                return Err((Stage::Capabilities, cap, errno()));
            }
        }
    }
    // Keep the permitted set across the uid change, so the capset below can still set it.
    // SAFETY: prctl with integer arguments.
    check(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) }, Stage::Capabilities, 100)?;
    // SAFETY: setgroups reads `groups.len()` gids from the vector.
    check(unsafe { libc::setgroups(p.groups.len(), p.groups.as_ptr()) }, Stage::Groups, 0)?;
    // SAFETY: plain syscalls.
    check(unsafe { libc::setresgid(p.gid, p.gid, p.gid) }, Stage::User, 0)?;
    check(unsafe { libc::setresuid(p.uid, p.uid, p.uid) }, Stage::User, 1)?;
    set_caps(p)?;
    // SAFETY: chdir to a NUL-terminated path.
    check(unsafe { libc::chdir(p.cwd.as_ptr()) }, Stage::Cwd, 1)?;
    // A working directory reached through a descriptor of ours (/proc/self/fd/N) would be
    // outside the container's root: the kernel then names it "(unreachable)...", not "/...".
    let mut cwd = [0u8; libc::PATH_MAX as usize];
    // SAFETY: getcwd into a local buffer of the given size.
    let r = unsafe { libc::syscall(libc::SYS_getcwd, cwd.as_mut_ptr(), cwd.len()) };
    if r < 0 || cwd[0] != b'/' {
        return Err((Stage::Cwd, 2, libc::ENOENT));
    }

    // Look the command up the way Go's exec.LookPath (runc) does: the first candidate that is
    // a regular file with an execute bit.
    let mut found: Option<&CStr> = None;
    let mut first_error = libc::ENOENT;
    for c in &p.candidates {
        // SAFETY: stat into a zeroed struct.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::stat(c.as_ptr(), &mut st) } != 0 {
            if p.is_path {
                first_error = errno();
            }
            continue;
        }
        if p.is_path || (st.st_mode & libc::S_IFMT != libc::S_IFDIR && st.st_mode & 0o111 != 0) {
            found = Some(c);
            break;
        }
    }
    let Some(exe) = found else {
        return Err((Stage::NotFound, p.is_path as u32, first_error));
    };
    if p.no_new_privs {
        load_seccomp(p)?;
    }
    // Nothing of the caller's beyond stdio reaches the command, even descriptors a careless
    // library opened without O_CLOEXEC. Kernels without close_range keep their O_CLOEXEC flags.
    // SAFETY: plain syscall.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) };
    // SAFETY: NULL-terminated arrays of pointers into CStrings that outlive the call.
    unsafe { libc::execve(exe.as_ptr(), p.argv_ptrs.as_ptr(), p.envp_ptrs.as_ptr()) };
    Err((Stage::Exec, 0, errno()))
}

/// Loads the plan's seccomp filter, if any, on this thread.
fn load_seccomp(p: &ProcessPlan) -> ChildResult {
    let Some(program) = &p.seccomp else { return Ok(()) };
    let prog =
        libc::sock_fprog { len: program.len() as u16, filter: program.as_ptr() as *mut libc::sock_filter };
    // SAFETY: seccomp(2) reads the program the fprog points at, which outlives the call.
    let r = unsafe {
        libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &prog as *const libc::sock_fprog)
    };
    check(r as c_int, Stage::Seccomp, 0)
}

/// `lo` up with one SIOCSIFFLAGS ioctl: the kernel gives a new network namespace its loopback
/// device (down, with 127.0.0.1 and ::1 assigned once up). An ioctl rather than netlink: no
/// allocation, one socket, one call, in the forked child.
fn loopback_up() -> ChildResult {
    // SAFETY: plain syscall.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    check(sock, Stage::Loopback, 0)?;
    // SAFETY: a zeroed ifreq is valid; the name and flags are set below.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as c_char;
    }
    req.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    // SAFETY: SIOCSIFFLAGS reads the ifreq on our stack.
    let r = unsafe { libc::ioctl(sock, libc::SIOCSIFFLAGS, &req) };
    let err = errno();
    // SAFETY: closing the socket made above.
    unsafe { libc::close(sock) };
    if r < 0 {
        return Err((Stage::Loopback, 1, err));
    }
    Ok(())
}

fn set_caps(p: &ProcessPlan) -> ChildResult {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let header = Header { version: VERSION_3, pid: 0 };
    let lo = |m: u64| m as u32;
    let hi = |m: u64| (m >> 32) as u32;
    let data = [
        Data { effective: lo(p.effective), permitted: lo(p.permitted), inheritable: lo(p.inheritable) },
        Data { effective: hi(p.effective), permitted: hi(p.permitted), inheritable: hi(p.inheritable) },
    ];
    // SAFETY: capset with a v3 header and two data structs, as the kernel expects.
    let r = unsafe { libc::syscall(libc::SYS_capset, &header as *const Header, data.as_ptr()) };
    check(r as c_int, Stage::Capabilities, 200)?;
    // The kernel allows ambient only what is both permitted and inheritable; runc skips the
    // rest (its default spec asks for ambient caps without inheritable ones), and so do we.
    let ambient = p.ambient & p.permitted & p.inheritable;
    for cap in 0..=p.last_cap {
        if ambient & (1u64 << cap) != 0 {
            // SAFETY: prctl with integer arguments.
            let r = unsafe {
                libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_RAISE as c_ulong, cap as c_ulong, 0, 0)
            };
            check(r, Stage::Capabilities, 300 + cap)?;
        }
    }
    Ok(())
}

fn setup_stdio(stdio: &[RawFd; 3]) -> ChildResult {
    // Move the descriptors out of 0-2 first, so that dup2 in order cannot overwrite one that
    // is still to be moved (e.g. stdout given as fd 0).
    let mut high = [-1; 3];
    for (i, fd) in stdio.iter().enumerate() {
        // SAFETY: fcntl on a descriptor we own.
        high[i] = unsafe { libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 3) };
        check(high[i], Stage::Stdio, i as u32)?;
    }
    for (i, fd) in high.iter().enumerate() {
        // SAFETY: dup2 onto 0-2; the new descriptors have O_CLOEXEC cleared.
        check(unsafe { libc::dup2(*fd, i as c_int) }, Stage::Stdio, 10 + i as u32)?;
    }
    Ok(())
}

/// Opens a pty in the container's devpts instance, makes its slave the controlling terminal
/// and fds 0-2, and sends the master to the parent.
fn setup_terminal(sock: RawFd, (cols, rows): (u16, u16), bind_console: bool) -> ChildResult {
    // SAFETY: plain syscalls on descriptors we own; the ioctl arguments are ints or a winsize.
    unsafe {
        let master = libc::open(c"/dev/ptmx".as_ptr(), libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        check(master, Stage::Terminal, 0)?;
        let unlock: c_int = 0;
        check(libc::ioctl(master, libc::TIOCSPTLCK, &unlock), Stage::Terminal, 1)?;
        let slave = libc::ioctl(master, libc::TIOCGPTPEER, libc::O_RDWR | libc::O_NOCTTY);
        check(slave, Stage::Terminal, 2)?;
        if cols > 0 && rows > 0 {
            let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
            libc::ioctl(slave, libc::TIOCSWINSZ, &ws);
        }
        if bind_console {
            // /dev/console is the terminal, as runc and Docker set it up.
            let fd = libc::open(
                c"/dev/console".as_ptr(),
                libc::O_CREAT | libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                0o600,
            );
            if fd >= 0 {
                libc::close(fd);
            }
            let mut buf = [0u8; 32];
            let src = fd_path(&mut buf, slave);
            check(
                libc::mount(
                    src.as_ptr(),
                    c"/dev/console".as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                ),
                Stage::Terminal,
                3,
            )?;
        }
        send_fd(sock, master).map_err(|e| (Stage::Terminal, 4, e))?;
        libc::close(master);
        check(libc::ioctl(slave, libc::TIOCSCTTY, 0), Stage::Terminal, 5)?;
        for i in 0..3 {
            check(libc::dup2(slave, i), Stage::Terminal, 6)?;
        }
        if slave > 2 {
            libc::close(slave);
        }
    }
    Ok(())
}

/// Sends `fd` over the unix socket `sock` (SCM_RIGHTS), without allocating.
fn send_fd(sock: RawFd, fd: RawFd) -> Result<(), i32> {
    // Space for one cmsghdr carrying one int, 8-byte aligned.
    #[repr(C, align(8))]
    struct Cmsg([u8; 32]);
    let mut cmsg_buf = Cmsg([0; 32]);
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
    // SAFETY: msghdr and cmsg built by hand in buffers that live across sendmsg; CMSG_* compute
    // offsets within our buffer, which is large enough for one int.
    unsafe {
        let space = libc::CMSG_SPACE(std::mem::size_of::<c_int>() as u32) as usize;
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cmsg_buf.0.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<c_int>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut c_int, fd);
        if libc::sendmsg(sock, &msg, 0) < 0 {
            return Err(errno());
        }
    }
    Ok(())
}

/// Writes `/proc/self/fd/<fd>` into `buf` and returns it as a C string.
fn fd_path(buf: &mut [u8; 32], fd: RawFd) -> &CStr {
    const PREFIX: &[u8] = b"/proc/self/fd/";
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut digits = [0u8; 12];
    let mut n = fd.max(0) as u32;
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        buf[PREFIX.len() + i] = digits[len - 1 - i];
    }
    buf[PREFIX.len() + len] = 0;
    CStr::from_bytes_until_nul(&buf[..]).expect("nul written above")
}

/// The mount flags of the mount `fd` is on that a user namespace may not clear.
fn locked_flags(fd: RawFd) -> c_ulong {
    // SAFETY: fstatvfs into a zeroed struct.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatvfs(fd, &mut st) } != 0 {
        return 0;
    }
    let mut flags = 0;
    for (st_flag, ms_flag) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if st.f_flag & st_flag != 0 {
            flags |= ms_flag;
        }
    }
    flags
}

/// openat2 with RESOLVE_IN_ROOT: `path` (relative) resolved inside `root`.
fn open_in_root(root: RawFd, path: &CStr, flags: c_int) -> Result<RawFd, i32> {
    // SAFETY: open_how is plain data; zero is "nothing set".
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: openat2 with a valid struct and NUL-terminated path.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root,
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        Err(errno())
    } else {
        Ok(fd as RawFd)
    }
}

/// Creates `path` (relative to `root`, every component resolved inside it) and returns an
/// O_PATH descriptor of it. The last component is a directory or an empty file.
fn create_in_root(root: RawFd, path: &CStr, create: Create) -> Result<RawFd, i32> {
    let bytes = path.to_bytes();
    if let Ok(fd) = open_in_root(root, path, libc::O_PATH) {
        return Ok(fd);
    }
    let mut buf = [0u8; libc::PATH_MAX as usize];
    if bytes.len() + 1 > buf.len() {
        return Err(libc::ENAMETOOLONG);
    }
    let mut start = 0;
    while start < bytes.len() {
        let end = bytes[start..].iter().position(|b| *b == b'/').map(|p| start + p).unwrap_or(bytes.len());
        let last = end == bytes.len();
        if end > start {
            // Parent so far (or the root itself) and this component's name.
            let parent = if start == 0 {
                // SAFETY: dup of a descriptor we own.
                unsafe { libc::fcntl(root, libc::F_DUPFD_CLOEXEC, 0) }
            } else {
                buf[..start - 1].copy_from_slice(&bytes[..start - 1]);
                buf[start - 1] = 0;
                let p = CStr::from_bytes_until_nul(&buf[..]).map_err(|_| libc::EINVAL)?;
                open_in_root(root, p, libc::O_PATH | libc::O_DIRECTORY)?
            };
            if parent < 0 {
                return Err(errno());
            }
            let mut name = [0u8; 256];
            let n = end - start;
            if n >= name.len() {
                // SAFETY: closing our descriptor.
                unsafe { libc::close(parent) };
                return Err(libc::ENAMETOOLONG);
            }
            name[..n].copy_from_slice(&bytes[start..end]);
            // SAFETY: mkdirat/mknodat relative to an O_PATH dir descriptor with a NUL-terminated name.
            let r = unsafe {
                if last && create == Create::File {
                    libc::mknodat(parent, name.as_ptr().cast(), libc::S_IFREG | 0o644, 0)
                } else {
                    libc::mkdirat(parent, name.as_ptr().cast(), 0o755)
                }
            };
            let e = errno();
            // SAFETY: closing our descriptor.
            unsafe { libc::close(parent) };
            if r < 0 && e != libc::EEXIST {
                return Err(e);
            }
        }
        start = end + 1;
    }
    open_in_root(root, path, libc::O_PATH)
}

/// `mkdir -p` of an absolute path in the current root (after pivot_root), every component
/// resolved inside it and no magic link (/proc/self/fd/N, /proc/self/cwd) followed: a working
/// directory may not lead to a descriptor of the runtime's.
fn mkdir_all_abs(path: &CStr) -> Result<(), i32> {
    let bytes = path.to_bytes();
    let start = bytes.iter().position(|b| *b != b'/').unwrap_or(bytes.len());
    if start == bytes.len() {
        return Ok(());
    }
    let mut buf = [0u8; libc::PATH_MAX as usize];
    let rel = &bytes[start..];
    if rel.len() + 1 > buf.len() {
        return Err(libc::ENAMETOOLONG);
    }
    buf[..rel.len()].copy_from_slice(rel);
    let rel = CStr::from_bytes_until_nul(&buf[..]).map_err(|_| libc::EINVAL)?;
    // SAFETY: open of a NUL-terminated path.
    let root = unsafe { libc::open(c"/".as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if root < 0 {
        return Err(errno());
    }
    let result = create_in_root(root, rel, Create::Dir);
    // SAFETY: closing our descriptors.
    unsafe {
        if let Ok(fd) = result {
            libc::close(fd);
        }
        libc::close(root);
    }
    result.map(|_| ())
}

/// Becomes root of the user namespace this process is in (root of the host until now, which
/// the namespace does not map): uid and gid 0 in it, no supplementary groups.
fn become_root() -> ChildResult {
    // SAFETY: plain syscalls.
    unsafe {
        check(libc::setgroups(0, std::ptr::null()), Stage::UserNamespace, 1)?;
        check(libc::setresgid(0, 0, 0), Stage::UserNamespace, 2)?;
        check(libc::setresuid(0, 0, 0), Stage::UserNamespace, 3)?;
    }
    Ok(())
}

fn setup_rootfs(r: &RootfsPlan, become_root_first: bool) -> ChildResult {
    // SAFETY: mount/umount/pivot_root/chdir with NUL-terminated strings or NULL.
    unsafe {
        let null: *const c_char = std::ptr::null();
        // Nothing done below may propagate back to the host.
        check(
            libc::mount(null, c"/".as_ptr(), null, libc::MS_REC | r.root_propagation, NO_DATA),
            Stage::Propagation,
            0,
        )?;
        if let Some(parent) = &r.root_parent {
            check(
                libc::mount(null, parent.as_ptr(), null, libc::MS_PRIVATE, NO_DATA),
                Stage::Propagation,
                4,
            )?;
        }
        // pivot_root needs the new root to be a mount point.
        check(
            libc::mount(r.path.as_ptr(), r.path.as_ptr(), null, libc::MS_BIND | libc::MS_REC, NO_DATA),
            Stage::Propagation,
            1,
        )?;
        check(
            libc::mount(null, r.path.as_ptr(), null, libc::MS_REC | libc::MS_PRIVATE, NO_DATA),
            Stage::Propagation,
            2,
        )?;
        let root = libc::open(r.path.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC);
        check(root, Stage::Propagation, 3)?;
        // Into the new root by its descriptor: with a user namespace, its path on the host may
        // not be reachable once this process is the namespace's root.
        check(libc::fchdir(root), Stage::Pivot, 0)?;
        if become_root_first {
            for (i, step) in r.steps.iter().enumerate() {
                if let Step::Mount { source: Some(source), open_first: Some(slot), .. } = step {
                    let fd = libc::open(source.as_ptr(), libc::O_PATH | libc::O_CLOEXEC);
                    check(fd, Stage::Step, i as u32)?;
                    slot.set(fd);
                }
            }
            become_root()?;
        }
        let old_umask = libc::umask(0);
        for (i, step) in r.steps.iter().enumerate() {
            run_step(root, step).map_err(|e| (Stage::Step, i as u32, e))?;
        }
        libc::umask(old_umask);

        // pivot_root(".", ".") stacks the old root on the new one; unmounting "." then drops
        // it, with no directory for it needed in the image (runc's way). The old root is made
        // a slave first, from a descriptor of it: "." alone would name the new root for
        // mount(2), and turn the container's shared binds into slaves.
        let old_root = libc::open(c"/".as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC);
        check(old_root, Stage::Pivot, 6)?;
        check(libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) as c_int, Stage::Pivot, 1)?;
        check(libc::fchdir(old_root), Stage::Pivot, 5)?;
        check(
            libc::mount(null, c".".as_ptr(), null, libc::MS_REC | libc::MS_SLAVE, NO_DATA),
            Stage::Pivot,
            2,
        )?;
        check(libc::umount2(c".".as_ptr(), libc::MNT_DETACH), Stage::Pivot, 3)?;
        check(libc::chdir(c"/".as_ptr()), Stage::Pivot, 4)?;
        libc::close(old_root);
        libc::close(root);

        for (i, path) in r.masked.iter().enumerate() {
            mask(path).map_err(|e| (Stage::Masked, i as u32, e))?;
        }
        for (i, path) in r.readonly.iter().enumerate() {
            readonly(path).map_err(|e| (Stage::Readonly, i as u32, e))?;
        }
        // The working directory is created as root (Docker does) before the root may turn
        // read-only; the process enters it as its user later.
        mkdir_all_abs(&r.cwd).map_err(|e| (Stage::Cwd, 0, e))?;
        if r.root_readonly {
            check(
                libc::mount(
                    null,
                    c"/".as_ptr(),
                    null,
                    libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                    NO_DATA,
                ),
                Stage::RootReadonly,
                0,
            )?;
        }
        if let Some(h) = &r.hostname {
            check(libc::sethostname(h.as_ptr(), h.to_bytes().len()), Stage::Hostname, 0)?;
        }
    }
    Ok(())
}

fn run_step(root: RawFd, step: &Step) -> Result<(), i32> {
    let null: *const c_char = std::ptr::null();
    let opt = |s: &Option<CString>| s.as_ref().map(|c| c.as_ptr()).unwrap_or(null);
    match step {
        Step::Mount { source, open_first, target, fstype, flags, data, create, remount, propagation } => {
            let fd = create_in_root(root, target, *create)?;
            let mut buf = [0u8; 32];
            let t = fd_path(&mut buf, fd);
            let mut source_buf = [0u8; 32];
            let source_ptr = match open_first.as_ref().map(|c| c.get()).filter(|fd| *fd >= 0) {
                Some(early) => fd_path(&mut source_buf, early).as_ptr(),
                None => opt(source),
            };
            // SAFETY: mount with NUL-terminated strings or NULL.
            let result = unsafe {
                let mut r = libc::mount(source_ptr, t.as_ptr(), opt(fstype), *flags, opt(data).cast());
                if r == 0 {
                    if let Some(rf) = remount {
                        // The remount must name the new mount: reopen the target.
                        let fd2 = open_in_root(root, target, libc::O_PATH)?;
                        let mut buf2 = [0u8; 32];
                        let t2 = fd_path(&mut buf2, fd2);
                        r = libc::mount(null, t2.as_ptr(), null, *rf, NO_DATA);
                        if r < 0 && errno() == libc::EPERM {
                            // In a user namespace the flags the source was mounted with are
                            // locked: a remount must keep them.
                            r = libc::mount(null, t2.as_ptr(), null, *rf | locked_flags(fd2), NO_DATA);
                        }
                        libc::close(fd2);
                    }
                }
                if r == 0 && *propagation != 0 {
                    let fd2 = open_in_root(root, target, libc::O_PATH)?;
                    let mut buf2 = [0u8; 32];
                    let t2 = fd_path(&mut buf2, fd2);
                    r = libc::mount(null, t2.as_ptr(), null, *propagation, NO_DATA);
                    libc::close(fd2);
                }
                if r < 0 {
                    Err(errno())
                } else {
                    Ok(())
                }
            };
            // SAFETY: closing our descriptor.
            unsafe { libc::close(fd) };
            result
        }
        Step::Symlink { target, link } => {
            let (parent, name) = parent_in_root(root, link)?;
            // SAFETY: symlinkat relative to a directory descriptor.
            let r = unsafe { libc::symlinkat(target.as_ptr(), parent, name.as_ptr().cast()) };
            let e = errno();
            // SAFETY: closing our descriptor.
            unsafe { libc::close(parent) };
            if r < 0 && e != libc::EEXIST {
                Err(e)
            } else {
                Ok(())
            }
        }
        Step::Mknod { path, mode, dev, uid, gid } => {
            // A device in a directory of /dev (/dev/net/tun, /dev/dri/card0): make the directory.
            let (parent, name) = match parent_in_root(root, path) {
                Ok(found) => found,
                Err(_) => {
                    mkdir_parent_in_root(root, path)?;
                    parent_in_root(root, path)?
                }
            };
            // SAFETY: mknodat/fchownat relative to a directory descriptor, NUL-terminated name.
            let r = unsafe {
                let mut r = libc::mknodat(parent, name.as_ptr().cast(), *mode, *dev);
                if r < 0 && errno() == libc::EEXIST {
                    r = 0;
                }
                if r == 0 {
                    r = libc::fchownat(parent, name.as_ptr().cast(), *uid, *gid, libc::AT_SYMLINK_NOFOLLOW);
                }
                r
            };
            let e = errno();
            // SAFETY: closing our descriptor.
            unsafe { libc::close(parent) };
            if r < 0 {
                Err(e)
            } else {
                Ok(())
            }
        }
    }
}

/// Creates the directories above `path` (resolved in `root`).
fn mkdir_parent_in_root(root: RawFd, path: &CStr) -> Result<(), i32> {
    let bytes = path.to_bytes();
    let Some(slash) = bytes.iter().rposition(|b| *b == b'/') else { return Ok(()) };
    let mut dir_buf = [0u8; libc::PATH_MAX as usize];
    if slash + 1 > dir_buf.len() {
        return Err(libc::ENAMETOOLONG);
    }
    dir_buf[..slash].copy_from_slice(&bytes[..slash]);
    let d = CStr::from_bytes_until_nul(&dir_buf[..]).map_err(|_| libc::EINVAL)?;
    let fd = create_in_root(root, d, Create::Dir)?;
    // SAFETY: closing our descriptor.
    unsafe { libc::close(fd) };
    Ok(())
}

/// An O_PATH descriptor of `path`'s parent (resolved in `root`) and its last component.
fn parent_in_root(root: RawFd, path: &CStr) -> Result<(RawFd, [u8; 256]), i32> {
    let bytes = path.to_bytes();
    let slash = bytes.iter().rposition(|b| *b == b'/');
    let (dir, name) = match slash {
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (&b""[..], bytes),
    };
    let mut name_buf = [0u8; 256];
    if name.len() >= name_buf.len() {
        return Err(libc::ENAMETOOLONG);
    }
    name_buf[..name.len()].copy_from_slice(name);
    let mut dir_buf = [0u8; libc::PATH_MAX as usize];
    if dir.len() + 2 > dir_buf.len() {
        return Err(libc::ENAMETOOLONG);
    }
    let dir = if dir.is_empty() { &b"."[..] } else { dir };
    dir_buf[..dir.len()].copy_from_slice(dir);
    let d = CStr::from_bytes_until_nul(&dir_buf[..]).map_err(|_| libc::EINVAL)?;
    let fd = open_in_root(root, d, libc::O_PATH | libc::O_DIRECTORY)?;
    Ok((fd, name_buf))
}

/// Docker's masking: /dev/null over a file, an empty read-only tmpfs over a directory.
fn mask(path: &CStr) -> Result<(), i32> {
    let null: *const c_char = std::ptr::null();
    // SAFETY: stat/mount with NUL-terminated strings.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::stat(path.as_ptr(), &mut st) != 0 {
            let e = errno();
            return if e == libc::ENOENT { Ok(()) } else { Err(e) };
        }
        let r = if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            libc::mount(c"tmpfs".as_ptr(), path.as_ptr(), c"tmpfs".as_ptr(), libc::MS_RDONLY, NO_DATA)
        } else {
            libc::mount(c"/dev/null".as_ptr(), path.as_ptr(), null, libc::MS_BIND, NO_DATA)
        };
        if r < 0 {
            Err(errno())
        } else {
            Ok(())
        }
    }
}

/// A read-only bind of `path` onto itself (missing paths are fine).
fn readonly(path: &CStr) -> Result<(), i32> {
    let null: *const c_char = std::ptr::null();
    // SAFETY: mount with NUL-terminated strings.
    unsafe {
        if libc::mount(path.as_ptr(), path.as_ptr(), null, libc::MS_BIND | libc::MS_REC, NO_DATA) != 0 {
            let e = errno();
            return if e == libc::ENOENT { Ok(()) } else { Err(e) };
        }
        let flags = libc::MS_BIND
            | libc::MS_REMOUNT
            | libc::MS_RDONLY
            | libc::MS_NOSUID
            | libc::MS_NODEV
            | libc::MS_NOEXEC;
        if libc::mount(null, path.as_ptr(), null, flags, NO_DATA) != 0 {
            // Some proc files refuse noexec/nodev changes; read-only is what matters.
            if libc::mount(
                null,
                path.as_ptr(),
                null,
                libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                NO_DATA,
            ) != 0
            {
                return Err(errno());
            }
        }
    }
    Ok(())
}
