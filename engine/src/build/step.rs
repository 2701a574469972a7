//! `berth build-step`: the work of a build step that must not run inside the daemon, in a fresh
//! single-threaded process (a re-exec of the daemon's binary, like the monitor):
//!
//! - `run JOB`: runs a RUN step's bundle through the [`Runtime`](crate::runtime::Runtime) trait
//!   (the same runtime as `berth run`), its stdout/stderr being this process's, and exits with
//!   the command's exit code. The container's process is this process's child; forking from the
//!   daemon's many threads is what this avoids.
//! - `copy JOB`: applies COPY/ADD/WORKDIR file operations inside the step's root filesystem
//!   after `chroot` into it, so that a symbolic link in the image (`/dst -> /etc`) resolves
//!   inside the image, never on the host. Sources come from the context spool (inherited as fd
//!   3) or from files of other layers (opened through the host root, fd 4, kept from before the
//!   chroot).

use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::runtime::{self, RuntimeConfig, RuntimeKind, Stdio};

/// The descriptor of the context spool in a `copy` job.
pub const SPOOL_FD: i32 = 3;
/// The descriptor of the host's root directory in a `copy` job.
pub const HOST_ROOT_FD: i32 = 4;

/// A RUN step for `berth build-step run`.
#[derive(Debug, Serialize, Deserialize)]
pub struct RunJob {
    pub id: String,
    pub bundle: PathBuf,
    pub runtime_state_root: PathBuf,
}

/// Where a file's bytes come from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Source {
    /// The context spool: `size` bytes at `offset`.
    Spool { offset: u64, size: u64 },
    /// A file of an unpacked layer, by its host path.
    Host(PathBuf),
}

/// One file operation, with paths absolute inside the root filesystem.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum CopyOp {
    /// Creates the missing directories of `path` (mode 0755) owned by `uid:gid`.
    MkdirAll {
        path: String,
        uid: u32,
        gid: u32,
    },
    /// A directory with this metadata (created, or an existing one updated).
    Dir {
        path: String,
        mode: u32,
        uid: u32,
        gid: u32,
        mtime: Option<i64>,
    },
    File {
        path: String,
        source: Source,
        mode: u32,
        uid: u32,
        gid: u32,
        mtime: i64,
    },
    Symlink {
        path: String,
        target: String,
        uid: u32,
        gid: u32,
    },
    /// Extracts the tar (plain, gzip or zstd) from `source` into the directory `path`; owners
    /// from the archive unless `owner` is given.
    Extract {
        path: String,
        source: Source,
        owner: Option<(u32, u32)>,
    },
}

/// A COPY/ADD/WORKDIR step for `berth build-step copy`.
#[derive(Debug, Serialize, Deserialize)]
pub struct CopyJob {
    pub rootfs: PathBuf,
    pub ops: Vec<CopyOp>,
}

/// Entry point of `berth build-step run|copy JOB_FILE`; returns the exit code.
pub fn main(args: Vec<String>) -> i32 {
    let [mode, job] = args.as_slice() else {
        eprintln!("usage: berth build-step run|copy JOB_FILE (started by the daemon)");
        return 2;
    };
    let result =
        fs::read(job).map_err(|e| Error::io(format!("reading {job}"), e)).and_then(|bytes| {
            match mode.as_str() {
                "run" => {
                    let job: RunJob = serde_json::from_slice(&bytes)
                        .map_err(|e| Error::InvalidInput(format!("bad job {job}: {e}")))?;
                    run(&job)
                }
                "copy" => {
                    let job: CopyJob = serde_json::from_slice(&bytes)
                        .map_err(|e| Error::InvalidInput(format!("bad job {job}: {e}")))?;
                    copy(&job).map(|()| 0)
                }
                other => Err(Error::InvalidInput(format!("unknown build-step mode {other:?}"))),
            }
        });
    match result {
        Ok(code) => code,
        Err(Error::CommandFailed { exit_code, message }) => {
            eprintln!("{message}");
            exit_code
        }
        Err(e) => {
            eprintln!("{e}");
            // Docker's code for a failure of the engine rather than of the command.
            125
        }
    }
}

fn run(job: &RunJob) -> Result<i32> {
    let runtime = runtime::new_runtime(
        RuntimeKind::Builtin,
        &RuntimeConfig { state_root: job.runtime_state_root.clone() },
    )?;
    let null = File::open("/dev/null").context(|| "opening /dev/null".into())?;
    let out = dup(1)?;
    let err = dup(2)?;
    let started = runtime.start(&job.id, &job.bundle, Stdio::Fds([null.into(), out, err]));
    let started = match started {
        Ok(s) => s,
        Err(e) => {
            let _ = runtime.delete(&job.id);
            return Err(e);
        }
    };
    let status = loop {
        match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(started.pid), None) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other,
        }
    };
    let _ = runtime.delete(&job.id);
    match status {
        Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => Ok(code),
        Ok(nix::sys::wait::WaitStatus::Signaled(_, signal, _)) => Ok(128 + signal as i32),
        Ok(other) => Err(Error::Runtime(format!("unexpected wait status {other:?}"))),
        Err(e) => Err(Error::io("waiting for the RUN command", e.into())),
    }
}

fn dup(fd: i32) -> Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor we own, or -1.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        return Err(Error::io(format!("duplicating fd {fd}"), io::Error::last_os_error()));
    }
    // SAFETY: just created.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

fn copy(job: &CopyJob) -> Result<()> {
    // SAFETY: inherited from the daemon for this purpose (see the module docs).
    let spool = unsafe { File::from_raw_fd(SPOOL_FD) };
    let host_root = HOST_ROOT_FD;
    nix::unistd::chroot(&job.rootfs)
        .map_err(|e| Error::io(format!("chroot into {}", job.rootfs.display()), e.into()))?;
    std::env::set_current_dir("/").context(|| "changing into the new root".into())?;
    // Files are created with exactly the modes asked for.
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    for op in &job.ops {
        apply(op, &spool, host_root)?;
    }
    Ok(())
}

fn open_source(source: &Source, spool: &File, host_root: i32) -> Result<Box<dyn Read>> {
    match source {
        Source::Spool { offset, size } => {
            let mut file = spool.try_clone().context(|| "duplicating the spool".into())?;
            file.seek(SeekFrom::Start(*offset)).context(|| "reading the context".into())?;
            Ok(Box::new(file.take(*size)))
        }
        Source::Host(path) => {
            let rel = path.strip_prefix("/").unwrap_or(path);
            let fd = nix::fcntl::openat(
                // SAFETY: the inherited host root descriptor, valid for the process's life.
                unsafe { std::os::fd::BorrowedFd::borrow_raw(host_root) },
                rel,
                nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|e| Error::io(format!("opening {}", path.display()), e.into()))?;
            Ok(Box::new(File::from(fd)))
        }
    }
}

fn lchown(path: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .context(|| format!("changing the owner of {}", path.display()))
}

fn set_mtime(path: &Path, mtime: i64) {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else { return };
    let t = libc::timespec { tv_sec: mtime, tv_nsec: 0 };
    let times = [t, t];
    // SAFETY: valid path and two timespecs.
    unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
}

/// Removes what is at `path` unless it is a directory (a file, a link).
fn clear(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            Err(Error::InvalidInput(format!("cannot copy to {}: a directory is in the way", path.display())))
        }
        Ok(_) => fs::remove_file(path).context(|| format!("removing {}", path.display())),
        Err(_) => Ok(()),
    }
}

fn mkdir_all(path: &Path, uid: u32, gid: u32) -> Result<()> {
    let mut current = PathBuf::from("/");
    for part in path.components().skip(1) {
        current.push(part);
        match fs::metadata(&current) {
            Ok(m) if m.is_dir() => continue,
            Ok(_) => return Err(Error::InvalidInput(format!("{} is not a directory", current.display()))),
            Err(_) => {
                fs::DirBuilder::new()
                    .mode(0o755)
                    .create(&current)
                    .context(|| format!("creating {}", current.display()))?;
                lchown(&current, uid, gid)?;
            }
        }
    }
    Ok(())
}

fn apply(op: &CopyOp, spool: &File, host_root: i32) -> Result<()> {
    match op {
        CopyOp::MkdirAll { path, uid, gid } => mkdir_all(Path::new(path), *uid, *gid),
        CopyOp::Dir { path, mode, uid, gid, mtime } => {
            let p = Path::new(path);
            if let Some(parent) = p.parent() {
                mkdir_all(parent, *uid, *gid)?;
            }
            match fs::symlink_metadata(p) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    fs::remove_file(p).context(|| format!("removing {path}"))?;
                    fs::DirBuilder::new().mode(*mode).create(p).context(|| format!("creating {path}"))?;
                }
                Err(_) => {
                    fs::DirBuilder::new().mode(*mode).create(p).context(|| format!("creating {path}"))?
                }
            }
            lchown(p, *uid, *gid)?;
            fs::set_permissions(p, fs::Permissions::from_mode(*mode)).context(|| format!("chmod {path}"))?;
            if let Some(t) = mtime {
                set_mtime(p, *t);
            }
            Ok(())
        }
        CopyOp::File { path, source, mode, uid, gid, mtime } => {
            let p = Path::new(path);
            if let Some(parent) = p.parent() {
                mkdir_all(parent, 0, 0)?;
            }
            clear(p)?;
            let mut out = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(*mode & 0o777)
                .custom_flags(libc::O_NOFOLLOW)
                .open(p)
                .context(|| format!("creating {path}"))?;
            let mut input = open_source(source, spool, host_root)?;
            io::copy(&mut input, &mut out).context(|| format!("writing {path}"))?;
            out.flush().context(|| format!("writing {path}"))?;
            nix::unistd::fchown(&out, Some((*uid).into()), Some((*gid).into()))
                .map_err(|e| Error::io(format!("changing the owner of {path}"), e.into()))?;
            // After chown, which clears setuid/setgid bits.
            out.set_permissions(fs::Permissions::from_mode(*mode)).context(|| format!("chmod {path}"))?;
            drop(out);
            set_mtime(p, *mtime);
            Ok(())
        }
        CopyOp::Symlink { path, target, uid, gid } => {
            let p = Path::new(path);
            if let Some(parent) = p.parent() {
                mkdir_all(parent, 0, 0)?;
            }
            clear(p)?;
            std::os::unix::fs::symlink(target, p).context(|| format!("creating the link {path}"))?;
            lchown(p, *uid, *gid)
        }
        CopyOp::Extract { path, source, owner } => {
            let p = Path::new(path);
            mkdir_all(p, 0, 0)?;
            let input = open_source(source, spool, host_root)?;
            let mut head = Vec::new();
            let (head_bytes, rest) =
                crate::archive::read_head(input, 8).context(|| "reading the archive".into())?;
            head.extend_from_slice(&head_bytes);
            let reader: Box<dyn Read> = match crate::layer::Compression::detect(&head) {
                crate::layer::Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(rest)),
                crate::layer::Compression::Zstd => {
                    Box::new(zstd::stream::read::Decoder::new(rest).context(|| "starting zstd".into())?)
                }
                crate::layer::Compression::None => Box::new(rest),
            };
            let mut archive = tar::Archive::new(reader);
            archive.set_preserve_permissions(true);
            archive.set_preserve_ownerships(owner.is_none());
            archive.set_preserve_mtime(true);
            archive.set_overwrite(true);
            let entries = archive.entries().map_err(|e| Error::InvalidInput(format!("ADD {path}: {e}")))?;
            for entry in entries {
                let mut entry = entry.map_err(|e| Error::InvalidInput(format!("ADD {path}: {e}")))?;
                let name = entry.path().map(|n| n.into_owned()).unwrap_or_default();
                entry
                    .unpack_in(p)
                    .map_err(|e| Error::InvalidInput(format!("ADD {path}: {}: {e}", name.display())))?;
                if let Some((uid, gid)) = owner {
                    let target = p.join(&name);
                    let _ = lchown(&target, *uid, *gid);
                }
            }
            Ok(())
        }
    }
}
