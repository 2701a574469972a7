//! berth's own OCI runtime: one `clone` with new namespaces, the rootfs set up in the child
//! (mounts resolved inside the rootfs, devices, pivot_root, masked and read-only paths),
//! cgroup joined by writing to pre-opened `cgroup.procs`, then credentials, capabilities,
//! rlimits and `execve`. No intermediate processes, no threads: the container's first process
//! is a direct child of the caller, and the start costs about as many syscalls as crun's.
//!
//! Everything is prepared in the parent (the child may not allocate, see [`child`]); the
//! child reports a failure as a fixed-size record on an O_CLOEXEC pipe whose EOF means the
//! exec succeeded.

mod child;

use std::ffi::CString;
use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use libc::{c_int, c_ulong};
use oci_spec::runtime::{LinuxNamespaceType, Mount, PosixRlimitType, Process, Spec};
use serde::{Deserialize, Serialize};

use self::child::{Create, Failure, Plan, ProcessPlan, RootfsPlan, Stage, Step};
use super::cgroup::{self, layout, Cgroup};
use super::spec::{clamp_rlimit, home_dir, read_bundle, CAP_NAMES, DEFAULT_PATH};
use super::{CgroupStats, Runtime, RuntimeConfig, RuntimeKind, Started, Stdio};
use crate::error::{Error, IoContext, Result};
use crate::fsutil::clean_relative;

/// What the built-in runtime remembers of a running container (`<state>/berth/<id>.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    pid: i32,
    /// Start time of `pid` (field 22 of /proc/PID/stat), to tell it from a reused PID.
    start_time: u64,
    bundle: PathBuf,
    cgroups_path: PathBuf,
}

/// The built-in runtime.
#[derive(Debug, Clone)]
pub struct Builtin {
    state_dir: PathBuf,
    /// A start's work that needs no process, done ahead by [`Runtime::prepare`].
    prepared: Arc<Mutex<Option<Prepared>>>,
}

/// What [`Runtime::prepare`] read and made for the next start: the spec and the cgroup.
#[derive(Debug)]
struct Prepared {
    id: String,
    bundle: PathBuf,
    /// `config.json`'s identity when it was read: a spec written since (an update of the
    /// container's limits) makes the start read it again.
    stamp: Option<BundleStamp>,
    spec: Spec,
    rootfs: PathBuf,
    cgroups_path: PathBuf,
    cgroup: Cgroup,
}

/// Inode, size and modification time of a bundle's `config.json` (written by rename, so a new
/// spec is a new inode).
#[derive(Debug, PartialEq, Eq)]
struct BundleStamp(u64, u64, i64, i64);

fn bundle_stamp(bundle: &Path) -> Option<BundleStamp> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(bundle.join("config.json")).ok()?;
    Some(BundleStamp(m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
}

impl Builtin {
    /// The runtime with its state under `config.state_root/berth`.
    pub fn new(config: &RuntimeConfig) -> Result<Builtin> {
        let state_dir = config.state_root.join("berth");
        fs::create_dir_all(&state_dir).context(|| format!("creating {}", state_dir.display()))?;
        Ok(Builtin { state_dir, prepared: Arc::default() })
    }

    /// The prepared start of `id` from `bundle`, if one was made and its spec is unchanged; a
    /// stale one is undone.
    fn take_prepared(&self, id: &str, bundle: &Path) -> Option<Prepared> {
        let prepared = self.prepared.lock().unwrap_or_else(|e| e.into_inner()).take()?;
        if prepared.id == id && prepared.bundle == bundle && prepared.stamp == bundle_stamp(bundle) {
            return Some(prepared);
        }
        let _ = prepared.cgroup.remove();
        None
    }

    /// Reads and checks the spec and makes the cgroup: a start's work before its process.
    fn prepare_start(&self, id: &str, bundle: &Path) -> Result<Prepared> {
        let stamp = bundle_stamp(bundle);
        let spec = read_bundle(bundle)?;
        let linux = spec
            .linux()
            .as_ref()
            .ok_or_else(|| Error::InvalidInput("runtime spec has no linux section".into()))?;
        if spec.process().is_none() {
            return Err(Error::InvalidInput("runtime spec has no process".into()));
        }
        let root =
            spec.root().as_ref().ok_or_else(|| Error::InvalidInput("runtime spec has no root".into()))?;
        let rootfs = if root.path().is_absolute() { root.path().clone() } else { bundle.join(root.path()) };
        let rootfs = fs::canonicalize(&rootfs).context(|| format!("root filesystem {}", rootfs.display()))?;
        if linux
            .namespaces()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_some())
        {
            return Err(Error::Unsupported("joining a user namespace in the built-in runtime".into()));
        }
        let cgroups_path = linux.cgroups_path().clone().unwrap_or_else(|| cgroup::default_path(id));
        let cgroup = Cgroup::new(&cgroups_path)?;
        cgroup.create(linux.resources().as_ref())?;
        Ok(Prepared {
            id: id.to_string(),
            bundle: bundle.to_path_buf(),
            stamp,
            spec,
            rootfs,
            cgroups_path,
            cgroup,
        })
    }

    fn state_path(&self, id: &str) -> PathBuf {
        self.state_dir.join(format!("{id}.json"))
    }

    fn read_state(&self, id: &str) -> Result<Option<State>> {
        validate_id(id)?;
        let path = self.state_path(id);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::Runtime(format!("invalid state {}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
        }
    }

    fn cgroup_of(&self, id: &str) -> Result<Cgroup> {
        match self.read_state(id)? {
            Some(s) => Cgroup::new(&s.cgroups_path),
            None => Cgroup::new(&cgroup::default_path(id)),
        }
    }

    /// The container's first process, if it still runs (and is still the same process).
    fn running_pid(&self, id: &str) -> Result<Option<i32>> {
        Ok(self.read_state(id)?.filter(|s| start_time(s.pid) == Some(s.start_time)).map(|s| s.pid))
    }

    fn not_running(id: &str) -> Error {
        Error::Conflict(format!("container {id} is not running"))
    }
}

/// Writes a state file by rename, without fsync: runtime state lives on tmpfs (`/run`) and
/// must not outlive a reboot anyway, and an fsync would cost more than the whole start.
fn write_state(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    fs::write(&tmp, bytes).context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).context(|| format!("renaming {} into place", tmp.display()))
}

pub(crate) fn validate_id(id: &str) -> Result<()> {
    if id.is_empty()
        || id.len() > 128
        || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        || id.starts_with('.')
    {
        return Err(Error::InvalidInput(format!("invalid container ID {id:?}")));
    }
    Ok(())
}

/// Field 22 of /proc/PID/stat (start time in clock ticks), `None` when the process is gone or
/// a zombie.
fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    if fields.next()? == "Z" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

fn cstring(s: impl AsRef<[u8]>, what: &str) -> Result<CString> {
    CString::new(s.as_ref()).map_err(|_| Error::InvalidInput(format!("{what} contains a NUL byte")))
}

fn rel_cstring(path: &Path) -> Result<CString> {
    cstring(clean_relative(path).as_os_str().as_bytes(), "mount destination")
}

/// Mount options → (flags, propagation flags, data, bind?, recursive bind?).
fn parse_options(options: &[String]) -> (c_ulong, c_ulong, String, bool) {
    let mut flags: c_ulong = 0;
    let mut propagation: c_ulong = 0;
    let mut data = Vec::new();
    let mut bind = false;
    for o in options {
        match o.as_str() {
            "ro" => flags |= libc::MS_RDONLY,
            "rw" => flags &= !libc::MS_RDONLY,
            "nosuid" => flags |= libc::MS_NOSUID,
            "suid" => flags &= !libc::MS_NOSUID,
            "nodev" => flags |= libc::MS_NODEV,
            "dev" => flags &= !libc::MS_NODEV,
            "noexec" => flags |= libc::MS_NOEXEC,
            "exec" => flags &= !libc::MS_NOEXEC,
            "sync" => flags |= libc::MS_SYNCHRONOUS,
            "async" => flags &= !libc::MS_SYNCHRONOUS,
            "dirsync" => flags |= libc::MS_DIRSYNC,
            "noatime" => flags |= libc::MS_NOATIME,
            "atime" => flags &= !libc::MS_NOATIME,
            "nodiratime" => flags |= libc::MS_NODIRATIME,
            "diratime" => flags &= !libc::MS_NODIRATIME,
            "relatime" => flags |= libc::MS_RELATIME,
            "norelatime" => flags &= !libc::MS_RELATIME,
            "strictatime" => flags |= libc::MS_STRICTATIME,
            "nostrictatime" => flags &= !libc::MS_STRICTATIME,
            "bind" => bind = true,
            "rbind" => {
                bind = true;
                flags |= libc::MS_REC;
            }
            "private" => propagation = libc::MS_PRIVATE,
            "rprivate" => propagation = libc::MS_PRIVATE | libc::MS_REC,
            "shared" => propagation = libc::MS_SHARED,
            "rshared" => propagation = libc::MS_SHARED | libc::MS_REC,
            "slave" => propagation = libc::MS_SLAVE,
            "rslave" => propagation = libc::MS_SLAVE | libc::MS_REC,
            "unbindable" => propagation = libc::MS_UNBINDABLE,
            "runbindable" => propagation = libc::MS_UNBINDABLE | libc::MS_REC,
            // Options of other runtimes' making that have no kernel meaning here.
            "tmpcopyup" | "idmap" | "ridmap" => {}
            other => data.push(other.to_string()),
        }
    }
    (flags, propagation, data.join(","), bind)
}

/// The mount point (in this process's mount table) that `path` lies on.
fn mount_point_of(path: &Path) -> Result<Option<PathBuf>> {
    let path = fs::canonicalize(path).context(|| format!("resolving {}", path.display()))?;
    let mountinfo =
        fs::read_to_string("/proc/self/mountinfo").context(|| "reading /proc/self/mountinfo".into())?;
    let best = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        // mountinfo escapes space, tab, newline and backslash in octal.
        .map(|field| {
            let field = field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n");
            PathBuf::from(field.replace("\\134", "\\"))
        })
        .filter(|mount| path.starts_with(mount))
        .max_by_key(|mount| mount.components().count());
    Ok(best)
}

/// `path` (absolute, in the container) relative to `root` with every symlink in it resolved
/// as if `root` were `/`: an absolute link starts again at `root`, `..` never climbs above it.
/// Components that do not exist are kept as they are (the child makes them).
pub(crate) fn resolve_in_root(root: &Path, path: &Path) -> Result<PathBuf> {
    use std::collections::VecDeque;
    use std::path::Component;
    let mut pending: VecDeque<std::ffi::OsString> = VecDeque::new();
    let push_front = |pending: &mut VecDeque<std::ffi::OsString>, p: &Path| {
        for c in p.components().rev() {
            match c {
                Component::Normal(n) => pending.push_front(n.to_os_string()),
                Component::ParentDir => pending.push_front("..".into()),
                _ => {}
            }
        }
    };
    push_front(&mut pending, path);
    let mut resolved = PathBuf::new();
    let mut links = 0;
    while let Some(c) = pending.pop_front() {
        if c == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&c);
        let on_host = root.join(&candidate);
        match fs::symlink_metadata(&on_host) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > 255 {
                    return Err(Error::InvalidInput(format!(
                        "mount destination {}: too many levels of symbolic links",
                        path.display()
                    )));
                }
                let target = fs::read_link(&on_host).context(|| format!("reading {}", on_host.display()))?;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                push_front(&mut pending, &target);
            }
            _ => resolved = candidate,
        }
    }
    Ok(resolved)
}

/// Flags a bind mount only takes on a remount.
const REMOUNT_FLAGS: c_ulong = libc::MS_RDONLY
    | libc::MS_NOSUID
    | libc::MS_NODEV
    | libc::MS_NOEXEC
    | libc::MS_NOATIME
    | libc::MS_NODIRATIME
    | libc::MS_RELATIME
    | libc::MS_STRICTATIME;

/// The host paths the rootfs's bind mounts take. In a user namespace the child, root of the
/// namespace, may not be allowed to look them up by name (a private directory of the host's
/// root on the way): the runtime opens them here and the child mounts them by descriptor.
struct Sources {
    userns: bool,
    /// The container's network namespace is made with it (so owned by its user namespace).
    own_netns: bool,
    held: Vec<OwnedFd>,
}

impl Sources {
    /// The source of a bind mount of `path`, and whether the child opens it before it becomes
    /// the user namespace's root (it then mounts it by that descriptor).
    fn bind(&mut self, path: &Path, _recursive: bool) -> Result<(CString, bool)> {
        Ok((cstring(path.as_os_str().as_bytes(), "mount source")?, self.userns))
    }
}

/// The steps that build the rootfs's mounts, devices and links, with a description of each
/// for error messages.
fn rootfs_steps(
    spec: &Spec,
    bundle: &Path,
    cgroup: &Cgroup,
    sources: &mut Sources,
) -> Result<(Vec<Step>, Vec<String>)> {
    let mut steps = Vec::new();
    let mut what = Vec::new();
    let mut has_dev = false;
    let rootfs = spec.root().as_ref().map(|r| bundle.join(r.path()));
    let mut earlier: Vec<&Path> = Vec::new();
    for m in spec.mounts().as_deref().unwrap_or_default() {
        let dest = m.destination();
        if !dest.is_absolute() {
            return Err(Error::InvalidInput(format!("mount destination {} is not absolute", dest.display())));
        }
        // A destination in the image's own tree has its symlinks resolved inside the rootfs now,
        // so that the child makes a missing target along the real path (as runc's securejoin);
        // one under an earlier mount is looked up only once that mount is there (in the child,
        // still inside the root).
        let covered = earlier.iter().any(|e| dest.starts_with(e));
        earlier.push(dest);
        let resolved = match &rootfs {
            Some(root) if !covered => resolve_in_root(root, dest)?,
            _ => clean_relative(dest),
        };
        if dest == Path::new("/dev") {
            has_dev = true;
        }
        if m.typ().as_deref() == Some("cgroup") {
            cgroup_steps(m, cgroup, &mut steps, &mut what, sources)?;
            continue;
        }
        let (flags, propagation, data, bind) = parse_options(m.options().as_deref().unwrap_or_default());
        let bind = bind || m.typ().as_deref() == Some("bind");
        let target = cstring(resolved.as_os_str().as_bytes(), "mount destination")?;
        if bind {
            let source = m
                .source()
                .as_ref()
                .ok_or_else(|| Error::InvalidInput(format!("bind mount {} has no source", dest.display())))?;
            let source = if source.is_absolute() { source.clone() } else { bundle.join(source) };
            let is_dir =
                fs::metadata(&source).context(|| format!("bind mount source {}", source.display()))?.is_dir();
            let remount = (flags & REMOUNT_FLAGS != 0)
                .then_some(libc::MS_BIND | libc::MS_REMOUNT | (flags & REMOUNT_FLAGS));
            let (source_name, open_first) = sources.bind(&source, flags & libc::MS_REC != 0)?;
            steps.push(Step::Mount {
                source: Some(source_name),
                open_first: open_first.then(|| std::cell::Cell::new(-1)),
                target,
                fstype: None,
                flags: libc::MS_BIND | (flags & libc::MS_REC),
                data: None,
                create: if is_dir { Create::Dir } else { Create::File },
                remount,
                propagation,
            });
            what.push(format!("bind mounting {} on {}", source.display(), dest.display()));
        } else if sources.userns && !sources.own_netns && m.typ().as_deref() == Some("sysfs") {
            // sysfs may be mounted only by the owner of the network namespace, which a joined
            // one is not: the host's /sys, read-only, as runc does.
            let (source_name, open_first) = sources.bind(Path::new("/sys"), true)?;
            steps.push(Step::Mount {
                source: Some(source_name),
                open_first: open_first.then(|| std::cell::Cell::new(-1)),
                target,
                fstype: None,
                flags: libc::MS_BIND | libc::MS_REC,
                data: None,
                create: Create::Dir,
                remount: Some(libc::MS_BIND | libc::MS_REMOUNT | (flags & REMOUNT_FLAGS) | libc::MS_RDONLY),
                propagation,
            });
            what.push(format!("bind mounting /sys on {}", dest.display()));
        } else {
            let typ = m.typ().clone().unwrap_or_default();
            let source = m
                .source()
                .as_ref()
                .map(|s| s.as_os_str().as_bytes().to_vec())
                .unwrap_or_else(|| typ.clone().into_bytes());
            steps.push(Step::Mount {
                open_first: None,
                source: Some(cstring(source, "mount source")?),
                target,
                fstype: Some(cstring(&typ, "mount type")?),
                flags,
                data: (!data.is_empty()).then(|| cstring(&data, "mount options")).transpose()?,
                create: Create::Dir,
                remount: None,
                propagation,
            });
            what.push(format!("mounting {typ} on {}", dest.display()));
        }
    }
    if has_dev {
        let spec_devices = spec
            .linux()
            .as_ref()
            .and_then(|l| l.devices().as_ref())
            .map(|v| v.as_slice())
            .unwrap_or_default();
        let mut devices: Vec<(PathBuf, libc::mode_t, u32, u32, u32, u32)> = Vec::new();
        for d in spec_devices {
            let kind = match d.typ().as_str() {
                "c" | "u" => libc::S_IFCHR,
                "b" => libc::S_IFBLK,
                "p" => libc::S_IFIFO,
                other => return Err(Error::InvalidInput(format!("invalid device type {other:?}"))),
            };
            let mode = kind | d.file_mode().unwrap_or(0o666);
            let (major, minor) = (d.major() as u32, d.minor() as u32);
            devices.push((d.path().clone(), mode, major, minor, d.uid().unwrap_or(0), d.gid().unwrap_or(0)));
        }
        // Every container gets these, whatever the spec lists (runc's default devices).
        for (path, major, minor) in [
            ("/dev/null", 1, 3),
            ("/dev/zero", 1, 5),
            ("/dev/full", 1, 7),
            ("/dev/random", 1, 8),
            ("/dev/urandom", 1, 9),
            ("/dev/tty", 5, 0),
        ] {
            if !devices.iter().any(|d| d.0 == Path::new(path)) {
                devices.push((PathBuf::from(path), libc::S_IFCHR | 0o666, major, minor, 0, 0));
            }
        }
        for (path, mode, major, minor, uid, gid) in devices {
            if sources.userns {
                // A user namespace may not make device nodes: the host's, bind-mounted (runc's way).
                let (source_name, open_first) = sources.bind(&path, false)?;
                steps.push(Step::Mount {
                    source: Some(source_name),
                    open_first: open_first.then(|| std::cell::Cell::new(-1)),
                    target: rel_cstring(&path)?,
                    fstype: None,
                    flags: libc::MS_BIND,
                    data: None,
                    create: Create::File,
                    remount: None,
                    propagation: 0,
                });
                what.push(format!("bind mounting device {}", path.display()));
                continue;
            }
            steps.push(Step::Mknod {
                path: rel_cstring(&path)?,
                mode,
                dev: libc::makedev(major, minor),
                uid,
                gid,
            });
            what.push(format!("creating device {}", path.display()));
        }
        // The links every Linux program expects in /dev (runc's set).
        for (target, link) in [
            ("/proc/self/fd", "dev/fd"),
            ("/proc/self/fd/0", "dev/stdin"),
            ("/proc/self/fd/1", "dev/stdout"),
            ("/proc/self/fd/2", "dev/stderr"),
            ("pts/ptmx", "dev/ptmx"),
            ("/proc/kcore", "dev/core"),
        ] {
            // runc links /dev/core only where the kernel has /proc/kcore.
            if link == "dev/core" && !Path::new("/proc/kcore").exists() {
                continue;
            }
            steps.push(Step::Symlink { target: cstring(target, "link")?, link: cstring(link, "link")? });
            what.push(format!("linking /{link} to {target}"));
        }
    }
    Ok((steps, what))
}

/// A `cgroup` mount: cgroup2 where the host is unified (the container has a cgroup namespace);
/// on v1/hybrid, runc's layout: a tmpfs with the container's own directory of each hierarchy
/// bind-mounted in it, read-only.
fn cgroup_steps(
    m: &Mount,
    cgroup: &Cgroup,
    steps: &mut Vec<Step>,
    what: &mut Vec<String>,
    sources: &mut Sources,
) -> Result<()> {
    let (flags, _, _, _) = parse_options(m.options().as_deref().unwrap_or_default());
    let target = rel_cstring(m.destination())?;
    let base = m.destination().clone();
    if cgroup.is_unified() {
        steps.push(Step::Mount {
            open_first: None,
            source: Some(cstring("cgroup", "")?),
            target,
            fstype: Some(cstring("cgroup2", "")?),
            flags,
            data: None,
            create: Create::Dir,
            remount: None,
            propagation: 0,
        });
        what.push(format!("mounting cgroup2 on {}", base.display()));
        return Ok(());
    }
    steps.push(Step::Mount {
        open_first: None,
        source: Some(cstring("tmpfs", "")?),
        target: target.clone(),
        fstype: Some(cstring("tmpfs", "")?),
        flags: flags & !libc::MS_RDONLY,
        data: Some(cstring("mode=755", "")?),
        create: Create::Dir,
        remount: None,
        propagation: 0,
    });
    what.push(format!("mounting tmpfs on {}", base.display()));
    let layout = layout();
    let mut hierarchies: Vec<(String, Vec<String>, PathBuf)> = Vec::new();
    for (controllers, dir) in cgroup.v1_dirs() {
        let mount =
            layout.v1.iter().find(|(c, _)| c == controllers).map(|(_, p)| p.clone()).unwrap_or_default();
        let name = mount
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| controllers.join(","));
        hierarchies.push((name, controllers.clone(), dir.clone()));
    }
    for (name, controllers, dir) in hierarchies {
        let sub = base.join(&name);
        let (source_name, open_first) = sources.bind(&dir, false)?;
        steps.push(Step::Mount {
            source: Some(source_name),
            open_first: open_first.then(|| std::cell::Cell::new(-1)),
            target: rel_cstring(&sub)?,
            fstype: None,
            flags: libc::MS_BIND,
            data: None,
            create: Create::Dir,
            remount: Some(libc::MS_BIND | libc::MS_REMOUNT | (flags & REMOUNT_FLAGS)),
            propagation: 0,
        });
        what.push(format!("bind mounting {} on {}", dir.display(), sub.display()));
        for c in controllers.iter().filter(|c| **c != name) {
            let link = base.join(c);
            steps.push(Step::Symlink { target: cstring(&name, "")?, link: rel_cstring(&link)? });
            what.push(format!("linking {} to {name}", link.display()));
        }
    }
    // The tmpfs itself stays writable, as runc (and so Docker on cgroup v1) leaves it; the
    // hierarchies in it are read-only.
    Ok(())
}

/// The capability bit mask of a set of capability names.
fn cap_mask(set: Option<&std::collections::HashSet<oci_spec::runtime::Capability>>, last_cap: u32) -> u64 {
    let mut mask = 0u64;
    for cap in set.into_iter().flatten() {
        let name = cap.to_string();
        if let Some(bit) = CAP_NAMES.iter().position(|n| *n == name) {
            if bit as u32 <= last_cap {
                mask |= 1 << bit;
            }
        }
    }
    mask
}

fn last_cap() -> u32 {
    fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(CAP_NAMES.len() as u32 - 1)
        .min(63)
}

fn rlimit_resource(t: PosixRlimitType) -> c_int {
    (match t {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    }) as c_int
}

/// Descriptors the plan points at, kept open until the child has them.
struct Held {
    _fds: Vec<OwnedFd>,
}

fn process_plan(
    process: &Process,
    seccomp: Option<&oci_spec::runtime::LinuxSeccomp>,
    bundle: &Path,
    rootfs: &Path,
    stdio: &Stdio,
    terminal_socket: Option<RawFd>,
    bind_console: bool,
) -> Result<ProcessPlan> {
    let args = process.args().clone().unwrap_or_default();
    let Some(cmd) = args.first().filter(|a| !a.is_empty()) else {
        return Err(Error::InvalidInput("no command specified".into()));
    };
    let mut env = process.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        // As runc does: HOME from the user's passwd entry when the environment has none.
        env.push(format!("HOME={}", home_dir(rootfs, process.user().uid())));
    }
    let argv: Vec<CString> = args.iter().map(|a| cstring(a, "argument")).collect::<Result<_>>()?;
    let envp: Vec<CString> = env.iter().map(|e| cstring(e, "environment variable")).collect::<Result<_>>()?;
    let is_path = cmd.contains('/');
    let candidates = if is_path {
        vec![cstring(cmd, "command")?]
    } else {
        let path = env.iter().rev().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(DEFAULT_PATH);
        path.split(':')
            .map(|dir| cstring(format!("{}/{cmd}", if dir.is_empty() { "." } else { dir }), "PATH entry"))
            .collect::<Result<_>>()?
    };
    let last_cap = last_cap();
    let caps = process.capabilities().as_ref();
    let rlimits = process
        .rlimits()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let res = rlimit_resource(r.typ());
            let (soft, hard) = clamp_rlimit(res as _, r.soft(), r.hard());
            (res, soft as libc::rlim_t, hard as libc::rlim_t)
        })
        .collect();
    let user = process.user();
    let mut argv_ptrs: Vec<_> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut envp_ptrs: Vec<_> = envp.iter().map(|a| a.as_ptr()).collect();
    envp_ptrs.push(std::ptr::null());
    let cwd = process.cwd();
    if !cwd.is_absolute() {
        return Err(Error::InvalidInput(format!(
            "the working directory '{}' is invalid, it needs to be an absolute path",
            cwd.display()
        )));
    }
    let (stdio_fds, console_size) = match stdio {
        Stdio::Fds(fds) => ([fds[0].as_raw_fd(), fds[1].as_raw_fd(), fds[2].as_raw_fd()], (0, 0)),
        Stdio::Terminal { cols, rows } => ([-1; 3], (*cols, *rows)),
    };
    Ok(ProcessPlan {
        stdio: stdio_fds,
        terminal_socket,
        console_size,
        bind_console,
        rlimits,
        cwd: cstring(cwd.as_os_str().as_bytes(), "working directory")?,
        no_new_privs: process.no_new_privileges().unwrap_or(false),
        // Compiled once, at create (the bundle's copy), unless the spec changed since.
        seccomp: seccomp.map(|s| crate::runtime::seccomp::program(bundle, s)).transpose()?,
        last_cap,
        bounding: cap_mask(caps.and_then(|c| c.bounding().as_ref()), last_cap),
        effective: cap_mask(caps.and_then(|c| c.effective().as_ref()), last_cap),
        permitted: cap_mask(caps.and_then(|c| c.permitted().as_ref()), last_cap),
        inheritable: cap_mask(caps.and_then(|c| c.inheritable().as_ref()), last_cap),
        ambient: cap_mask(caps.and_then(|c| c.ambient().as_ref()), last_cap),
        uid: user.uid(),
        gid: user.gid(),
        groups: user.additional_gids().clone().unwrap_or_default(),
        candidates,
        is_path,
        argv,
        envp,
        argv_ptrs,
        envp_ptrs,
    })
}

/// A pipe with both ends O_CLOEXEC: (read, write).
fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::io("creating a pipe", e.into()))
}

fn socketpair() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: socketpair writes two descriptors into the array.
    if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) }
        < 0
    {
        return Err(Error::io("creating a socket pair", std::io::Error::last_os_error()));
    }
    // SAFETY: both descriptors are new and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Receives one descriptor sent with SCM_RIGHTS (the message body, e.g. runc's pty name, is
/// left unread).
pub(crate) fn recv_fd(sock: &OwnedFd) -> Result<OwnedFd> {
    #[repr(C, align(8))]
    struct Cmsg([u8; 64]);
    let mut cmsg_buf = Cmsg([0; 64]);
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
    // SAFETY: a msghdr over our buffers; CMSG_* walk within cmsg_buf.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cmsg_buf.0.as_mut_ptr().cast();
        msg.msg_controllen = cmsg_buf.0.len() as _;
        let n = libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC);
        if n < 0 {
            return Err(Error::io("receiving the terminal", std::io::Error::last_os_error()));
        }
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null() || (*cmsg).cmsg_level != libc::SOL_SOCKET || (*cmsg).cmsg_type != libc::SCM_RIGHTS {
            return Err(Error::Runtime("the container did not send its terminal".into()));
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const c_int);
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Forks the child (with `flags` for new namespaces) and runs the plan in it. Returns its PID
/// once it executed the command; on failure the child is reaped and the error returned.
/// The parent's share of joining the child to its cgroup: the `cgroup.procs` files to write
/// its PID to, then the pipe to release it.
struct ParentJoin<'a> {
    procs: &'a [OwnedFd],
    go: OwnedFd,
}

fn spawn(
    flags: c_int,
    plan: &Plan,
    error_read: OwnedFd,
    error_write: OwnedFd,
    join: Option<ParentJoin<'_>>,
    userns: Option<(&super::userns::IdMap, OwnedFd)>,
    describe: &dyn Fn(Failure) -> Error,
) -> Result<i32> {
    // SAFETY: clone without CLONE_VM and without a new stack behaves like fork: the child runs
    // on a copy of this thread's stack and only executes child::run, which never returns and
    // never allocates.
    let pid = unsafe {
        libc::syscall(libc::SYS_clone, (flags | libc::SIGCHLD) as c_ulong, 0usize, 0usize, 0usize, 0usize)
    };
    if pid < 0 {
        return Err(Error::io("clone", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        child::run(plan);
    }
    let pid = pid as i32;
    drop(error_write);
    if let Some((map, wake)) = userns {
        if let Err(e) = super::userns::write_maps(pid, map) {
            // SAFETY: killing and reaping our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            reap(pid);
            return Err(e);
        }
        // SAFETY: writing one byte to our pipe; the child reads it.
        unsafe { libc::write(wake.as_raw_fd(), b"1".as_ptr().cast(), 1) };
    }
    let mut join_error = None;
    if let Some(join) = join {
        let text = pid.to_string();
        for fd in join.procs {
            // SAFETY: writing our buffer to a descriptor we own.
            if unsafe { libc::write(fd.as_raw_fd(), text.as_ptr().cast(), text.len()) } < 0 {
                // The child may have failed already (then its own report below says why).
                join_error = Some(std::io::Error::last_os_error());
                // SAFETY: killing our own child; it is reaped below.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                break;
            }
        }
        if join_error.is_none() {
            // SAFETY: writing one byte to our pipe; the child reads it.
            unsafe { libc::write(join.go.as_raw_fd(), b"1".as_ptr().cast(), 1) };
        }
    }
    let mut buf = [0u8; std::mem::size_of::<Failure>()];
    let mut file = fs::File::from(error_read);
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                reap(pid);
                return Err(Error::io("reading the container's start status", e));
            }
        }
    }
    if n == 0 && join_error.is_none() {
        return Ok(pid);
    }
    reap(pid);
    if let (Some(err), true) = (join_error, n < buf.len()) {
        return Err(Error::io("moving the container into its cgroup", err));
    }
    if n < buf.len() {
        return Err(Error::Runtime("the container's setup ended with a partial status".into()));
    }
    // SAFETY: Failure is plain integers; any bit pattern is valid.
    let failure: Failure = unsafe { std::ptr::read_unaligned(buf.as_ptr() as *const Failure) };
    Err(describe(failure))
}

/// Moves this thread into `namespaces` (not mount or user ones: per thread, these are not
/// allowed); what it was in comes back, for [`leave_namespaces`].
fn enter_namespaces(namespaces: &[(RawFd, c_int)]) -> Result<Vec<(OwnedFd, c_int)>> {
    let mut own = Vec::new();
    for (fd, flag) in namespaces {
        let name = match *flag {
            libc::CLONE_NEWNET => "net",
            libc::CLONE_NEWIPC => "ipc",
            libc::CLONE_NEWUTS => "uts",
            libc::CLONE_NEWPID => "pid",
            libc::CLONE_NEWCGROUP => "cgroup",
            _ => {
                leave_namespaces(own);
                return Err(Error::Unsupported("joining this namespace with a user namespace".into()));
            }
        };
        let path = format!("/proc/thread-self/ns/{name}");
        let mine: OwnedFd = match fs::File::open(&path) {
            Ok(f) => f.into(),
            Err(e) => {
                leave_namespaces(own);
                return Err(Error::io(format!("opening {path}"), e));
            }
        };
        // SAFETY: setns of this thread with a namespace descriptor.
        if unsafe { libc::setns(*fd, *flag) } < 0 {
            let e = std::io::Error::last_os_error();
            leave_namespaces(own);
            return Err(Error::io(format!("joining the container's {name} namespace"), e));
        }
        own.push((mine, *flag));
    }
    Ok(own)
}

/// The PID namespace given by path (a pod's shared one), taken out of `join`: the parent
/// thread enters it before the clone, since setns(CLONE_NEWPID) moves the caller's future
/// children, not the caller, so the child could not join it itself.
fn take_pid_join(join: &mut Vec<(RawFd, c_int)>) -> Vec<(RawFd, c_int)> {
    let (pid, rest) = std::mem::take(join).into_iter().partition(|(_, flag)| *flag == libc::CLONE_NEWPID);
    *join = rest;
    pid
}

/// Back to the namespaces [`enter_namespaces`] left.
fn leave_namespaces(own: Vec<(OwnedFd, c_int)>) {
    for (fd, flag) in own.into_iter().rev() {
        // SAFETY: setns of this thread back to its own namespace (always allowed).
        if unsafe { libc::setns(fd.as_raw_fd(), flag) } < 0 {
            tracing::error!("could not restore a namespace after start: {}", std::io::Error::last_os_error());
        }
    }
}

fn reap(pid: i32) {
    let mut status = 0;
    // SAFETY: waiting for our own child.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
        && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
    {}
}

/// Turns a child's failure into the error Docker users know.
fn describe_failure(
    f: Failure,
    cmd: &str,
    steps: &[String],
    masked: &[String],
    readonly: &[String],
) -> Error {
    let err = std::io::Error::from_raw_os_error(f.errno);
    let idx = f.index as usize;
    let Some(stage) = Stage::from_u32(f.stage) else {
        return Error::Runtime(format!("container setup failed: {err}"));
    };
    let what = match stage {
        Stage::NotFound if f.index == 0 => {
            return Error::CommandFailed {
                exit_code: 127,
                message: format!("exec: \"{cmd}\": executable file not found in $PATH"),
            }
        }
        Stage::NotFound => {
            return Error::CommandFailed {
                exit_code: 127,
                message: format!("exec: \"{cmd}\": stat {cmd}: {}", errno_text(f.errno)),
            }
        }
        Stage::Exec => {
            let code = if f.errno == libc::ENOENT { 127 } else { 126 };
            return Error::CommandFailed {
                exit_code: code,
                message: format!("exec: \"{cmd}\": {}", errno_text(f.errno)),
            };
        }
        Stage::Cwd if f.index == 2 => {
            return Error::CommandFailed {
                exit_code: 126,
                message: "the working directory is outside of the container's root: refused (a descriptor of the runtime's, such as /proc/self/fd/N, may not be entered)".into(),
            };
        }
        Stage::Cwd if f.index == 1 => {
            return Error::CommandFailed {
                exit_code: 126,
                message: format!("chdir to cwd: {}", errno_text(f.errno)),
            };
        }
        Stage::Step => steps.get(idx).cloned().unwrap_or_else(|| "setting up the root filesystem".into()),
        Stage::Masked => format!("masking {}", masked.get(idx).map(String::as_str).unwrap_or("?")),
        Stage::Readonly => {
            format!("making {} read-only", readonly.get(idx).map(String::as_str).unwrap_or("?"))
        }
        Stage::JoinCgroup => "joining the cgroup".into(),
        Stage::JoinNamespace => "joining the container's namespaces".into(),
        Stage::Unshare => "creating the cgroup namespace".into(),
        Stage::Propagation => "preparing the root filesystem mount".into(),
        Stage::Pivot => "pivot_root".into(),
        Stage::RootReadonly => "making the root filesystem read-only".into(),
        Stage::Hostname => "setting the hostname".into(),
        Stage::Terminal => "setting up the terminal".into(),
        Stage::Stdio => "setting up stdio".into(),
        Stage::Rlimit => "setting rlimits".into(),
        Stage::NoNewPrivs => "setting no_new_privs".into(),
        Stage::Seccomp => "loading the seccomp filter".into(),
        Stage::Capabilities => "setting capabilities".into(),
        Stage::Groups => "setting supplementary groups".into(),
        Stage::User => "setting uid/gid".into(),
        Stage::Cwd => "creating the working directory".into(),
        Stage::Loopback => "bringing up the loopback interface".into(),
        Stage::UserNamespace => "setting up the user namespace".into(),
    };
    Error::Runtime(format!("{what}: {err}"))
}

/// strerror in Go's (runc's, Docker's) lowercase wording for the errors exec can give.
fn errno_text(errno: i32) -> String {
    match errno {
        libc::ENOENT => "no such file or directory".into(),
        libc::EACCES => "permission denied".into(),
        libc::ENOEXEC => "exec format error".into(),
        libc::ENOTDIR => "not a directory".into(),
        libc::EISDIR => "is a directory".into(),
        other => std::io::Error::from_raw_os_error(other).to_string().to_lowercase(),
    }
}

fn ns_flag(t: LinuxNamespaceType) -> c_int {
    match t {
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Time => libc::CLONE_NEWTIME,
    }
}

impl Runtime for Builtin {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Builtin
    }

    fn prepare(&self, id: &str, bundle: &Path) -> Result<()> {
        self.delete(id)?;
        let prepared = self.prepare_start(id, bundle)?;
        *self.prepared.lock().unwrap_or_else(|e| e.into_inner()) = Some(prepared);
        Ok(())
    }

    fn start(&self, id: &str, bundle: &Path, stdio: Stdio) -> Result<Started> {
        validate_id(id)?;
        if self.running_pid(id)?.is_some() {
            return Err(Error::Conflict(format!("container {id} is already running")));
        }
        let prepared = match self.take_prepared(id, bundle) {
            Some(p) => p,
            None => self.prepare_start(id, bundle)?,
        };
        let Prepared { spec, rootfs, cgroups_path, cgroup, .. } = &prepared;
        let process = spec.process().as_ref().expect("checked by prepare_start");
        let result = self.start_in_cgroup(id, bundle, spec, rootfs, cgroup, cgroups_path, process, stdio);
        if result.is_err() {
            let _ = cgroup.remove();
        }
        result
    }

    fn exec(&self, id: &str, process: &Process, stdio: Stdio) -> Result<Started> {
        let state = self.read_state(id)?.ok_or_else(|| Self::not_running(id))?;
        if start_time(state.pid) != Some(state.start_time) {
            return Err(Self::not_running(id));
        }
        let cgroup = Cgroup::new(&state.cgroups_path)?;
        let procs = cgroup.open_procs()?;
        let spec = read_bundle(&state.bundle).ok();
        let rootfs = spec
            .as_ref()
            .and_then(|spec| spec.root().as_ref().map(|r| state.bundle.join(r.path())))
            .unwrap_or_default();
        // An exec'd process gets the container's seccomp filter, as runc gives it.
        let seccomp = spec.as_ref().and_then(|s| s.linux().as_ref()).and_then(|l| l.seccomp().as_ref());
        let open_ns = |name: &str| -> Result<OwnedFd> {
            let p = format!("/proc/{}/ns/{name}", state.pid);
            fs::File::open(&p).map(OwnedFd::from).context(|| format!("opening {p}"))
        };
        let mut held = Vec::new();
        let mut join = Vec::new();
        for (name, flag) in [
            ("ipc", libc::CLONE_NEWIPC),
            ("uts", libc::CLONE_NEWUTS),
            ("net", libc::CLONE_NEWNET),
            ("cgroup", libc::CLONE_NEWCGROUP),
            ("mnt", libc::CLONE_NEWNS),
        ] {
            let fd = open_ns(name)?;
            join.push((fd.as_raw_fd(), flag));
            held.push(fd);
        }
        // The user namespace last: the others are joined as the host's root, which may.
        let in_userns = spec.as_ref().and_then(super::userns::from_spec).is_some();
        if in_userns {
            let fd = open_ns("user")?;
            join.push((fd.as_raw_fd(), libc::CLONE_NEWUSER));
            held.push(fd);
        }
        let target_pid_ns = open_ns("pid")?;
        let own_pid_ns = fs::File::open("/proc/thread-self/ns/pid")
            .context(|| "opening /proc/thread-self/ns/pid".into())?;

        let (sock_parent, sock_child) = match stdio {
            Stdio::Terminal { .. } => {
                let (a, b) = socketpair()?;
                (Some(a), Some(b))
            }
            Stdio::Fds(_) => (None, None),
        };
        let (error_read, error_write) = pipe()?;
        let plan = Plan {
            error_fd: error_write.as_raw_fd(),
            cgroup_procs: procs.iter().map(|f| f.as_raw_fd()).collect(),
            go_fd: None,
            join,
            unshare: 0,
            userns_wait: None,
            become_root: in_userns,
            rootfs: None,
            process: process_plan(
                process,
                seccomp,
                &state.bundle,
                &rootfs,
                &stdio,
                sock_child.as_ref().map(|s| s.as_raw_fd()),
                false,
            )?,
        };
        let cmd = process.args().as_ref().and_then(|a| a.first().cloned()).unwrap_or_default();
        // The new process must be created in the container's PID namespace: switch this
        // thread's namespace for children, fork, switch back.
        // SAFETY: setns on this thread with a namespace descriptor.
        if unsafe { libc::setns(target_pid_ns.as_raw_fd(), libc::CLONE_NEWPID) } < 0 {
            return Err(Error::io("joining the container's PID namespace", std::io::Error::last_os_error()));
        }
        let result = spawn(0, &plan, error_read, error_write, None, None, &|f| {
            describe_failure(f, &cmd, &[], &[], &[])
        });
        // SAFETY: as above, back to this process's own PID namespace (always allowed).
        let restored = unsafe { libc::setns(own_pid_ns.as_raw_fd(), libc::CLONE_NEWPID) };
        if restored < 0 {
            tracing::error!(
                "could not restore the PID namespace after exec: {}",
                std::io::Error::last_os_error()
            );
        }
        drop(sock_child);
        let pid = result?;
        let terminal = match sock_parent {
            Some(s) => Some(recv_fd(&s)?),
            None => None,
        };
        drop(held);
        Ok(Started { pid, terminal })
    }

    fn kill(&self, id: &str, signal: i32, all: bool) -> Result<()> {
        if all {
            return self.cgroup_of(id)?.kill_all(signal);
        }
        let pid = self.running_pid(id)?.ok_or_else(|| Self::not_running(id))?;
        // Any Linux signal, real-time ones too (nix's `Signal` has none of those).
        let signal = berth_types::signal::Signal::from_number(signal)?.number();
        // SAFETY: kill(2) on the container's init, whose PID `running_pid` checked.
        if unsafe { libc::kill(pid, signal) } != 0 {
            let e = std::io::Error::last_os_error();
            return Err(Error::io(format!("sending signal {signal} to {pid}"), e));
        }
        Ok(())
    }

    fn pause(&self, id: &str) -> Result<()> {
        self.running_pid(id)?.ok_or_else(|| Self::not_running(id))?;
        self.cgroup_of(id)?.freeze(true)
    }

    fn resume(&self, id: &str) -> Result<()> {
        self.cgroup_of(id)?.freeze(false)
    }

    fn stats(&self, id: &str) -> Result<CgroupStats> {
        self.cgroup_of(id)?.stats()
    }

    fn pids(&self, id: &str) -> Result<Vec<i32>> {
        self.cgroup_of(id)?.pids()
    }

    fn delete(&self, id: &str) -> Result<()> {
        validate_id(id)?;
        let prepared = self.prepared.lock().unwrap_or_else(|e| e.into_inner()).take_if(|p| p.id == id);
        if let Some(p) = prepared {
            p.cgroup.remove()?;
        }
        self.cgroup_of(id)?.remove()?;
        match fs::remove_file(self.state_path(id)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("removing state of {id}"), e)),
        }
    }
}

impl Builtin {
    #[allow(clippy::too_many_arguments)]
    fn start_in_cgroup(
        &self,
        id: &str,
        bundle: &Path,
        spec: &Spec,
        rootfs: &Path,
        cgroup: &Cgroup,
        cgroups_path: &Path,
        process: &Process,
        stdio: Stdio,
    ) -> Result<Started> {
        let linux = spec.linux().as_ref().expect("checked by prepare_start");
        let procs = cgroup.open_procs()?;
        let mut clone_flags = 0;
        let mut unshare = 0;
        let mut held = Vec::new();
        let mut join = Vec::new();
        for ns in linux.namespaces().as_deref().unwrap_or_default() {
            let flag = ns_flag(ns.typ());
            match ns.path() {
                Some(p) => {
                    let fd: OwnedFd =
                        fs::File::open(p).context(|| format!("opening namespace {}", p.display()))?.into();
                    join.push((fd.as_raw_fd(), flag));
                    held.push(fd);
                }
                // A cgroup namespace is made after joining the cgroup, so that the container's
                // cgroup is its root.
                None if flag == libc::CLONE_NEWCGROUP => unshare |= flag,
                None => clone_flags |= flag,
            }
        }
        // With a new user namespace the namespaces given by path (made by berth, owned by the
        // host) are joined by this thread before the clone, as the host's root: the child, root
        // of the new namespace only, could not join them.
        let idmap = super::userns::from_spec(spec);
        let mut parent_join = take_pid_join(&mut join);
        if idmap.is_some() {
            if join.iter().any(|(_, flag)| *flag == libc::CLONE_NEWNS) {
                return Err(Error::Unsupported(
                    "a mount namespace given by path with a user namespace in the built-in runtime".into(),
                ));
            }
            parent_join.append(&mut join);
        }
        let mut sources = Sources {
            userns: idmap.is_some(),
            own_netns: clone_flags & libc::CLONE_NEWNET != 0,
            held: Vec::new(),
        };
        let (steps, step_names) = rootfs_steps(spec, bundle, cgroup, &mut sources)?;
        held.append(&mut sources.held);
        let (userns_wait, userns_wake) = match idmap {
            Some(_) => {
                let (r, w) = pipe()?;
                (Some(r), Some(w))
            }
            None => (None, None),
        };
        let masked: Vec<String> = linux.masked_paths().clone().unwrap_or_default();
        let readonly: Vec<String> = linux.readonly_paths().clone().unwrap_or_default();
        let root_propagation = match linux.rootfs_propagation().as_deref() {
            Some("private") | Some("rprivate") => libc::MS_PRIVATE,
            Some("shared") | Some("rshared") => libc::MS_SHARED,
            Some("unbindable") | Some("runbindable") => libc::MS_UNBINDABLE,
            _ => libc::MS_SLAVE,
        };
        let hostname = if clone_flags & libc::CLONE_NEWUTS != 0 {
            spec.hostname().as_ref().filter(|h| !h.is_empty()).map(|h| cstring(h, "hostname")).transpose()?
        } else {
            None
        };
        let (sock_parent, sock_child) = match stdio {
            Stdio::Terminal { .. } => {
                let (a, b) = socketpair()?;
                (Some(a), Some(b))
            }
            Stdio::Fds(_) => (None, None),
        };
        let (error_read, error_write) = pipe()?;
        // On v1 (and hybrid) the parent joins the child to its cgroups while the child sets up
        // the rootfs. With cgroup v2 alone the child joins first: a cgroup namespace, which its
        // cgroup2 mount needs, must be made inside the cgroup.
        let (go_read, go_write) = if cgroup.is_unified() {
            (None, None)
        } else {
            let (r, w) = pipe()?;
            (Some(r), Some(w))
        };
        let plan = Plan {
            error_fd: error_write.as_raw_fd(),
            cgroup_procs: if go_read.is_some() {
                Vec::new()
            } else {
                procs.iter().map(|f| f.as_raw_fd()).collect()
            },
            go_fd: go_read.as_ref().map(|f| f.as_raw_fd()),
            join,
            unshare,
            userns_wait: userns_wait.as_ref().map(|f| f.as_raw_fd()),
            become_root: idmap.is_some(),
            rootfs: Some(RootfsPlan {
                path: cstring(rootfs.as_os_str().as_bytes(), "root path")?,
                root_propagation,
                root_parent: if root_propagation == libc::MS_SHARED {
                    mount_point_of(rootfs)?
                        .map(|p| cstring(p.as_os_str().as_bytes(), "root's mount"))
                        .transpose()?
                } else {
                    None
                },
                steps,
                masked: masked.iter().map(|p| cstring(p, "masked path")).collect::<Result<_>>()?,
                readonly: readonly.iter().map(|p| cstring(p, "read-only path")).collect::<Result<_>>()?,
                root_readonly: spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false),
                hostname,
                loopback_up: clone_flags & libc::CLONE_NEWNET != 0,
                cwd: cstring(process.cwd().as_os_str().as_bytes(), "working directory")?,
            }),
            process: process_plan(
                process,
                linux.seccomp().as_ref(),
                bundle,
                rootfs,
                &stdio,
                sock_child.as_ref().map(|s| s.as_raw_fd()),
                true,
            )?,
        };
        let cmd = process.args().as_ref().and_then(|a| a.first().cloned()).unwrap_or_default();
        let cgroup_join = go_write.map(|go| ParentJoin { procs: &procs, go });
        let restore = enter_namespaces(&parent_join)?;
        let spawned = spawn(
            clone_flags,
            &plan,
            error_read,
            error_write,
            cgroup_join,
            idmap.as_ref().zip(userns_wake),
            &|f| describe_failure(f, &cmd, &step_names, &masked, &readonly),
        );
        leave_namespaces(restore);
        let pid = spawned?;
        drop(userns_wait);
        drop(sock_child);
        drop(stdio);
        let _held = Held { _fds: held };
        let terminal = match sock_parent {
            Some(s) => match recv_fd(&s) {
                Ok(fd) => Some(fd),
                Err(e) => {
                    // SAFETY: killing and reaping our own child.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    reap(pid);
                    return Err(e);
                }
            },
            None => None,
        };
        let state = State {
            pid,
            start_time: start_time(pid).unwrap_or(0),
            bundle: bundle.to_path_buf(),
            cgroups_path: cgroups_path.to_path_buf(),
        };
        let bytes =
            serde_json::to_vec(&state).map_err(|e| Error::Runtime(format!("serializing state: {e}")))?;
        if let Err(e) = write_state(&self.state_path(id), &bytes) {
            // SAFETY: killing and reaping our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            reap(pid);
            return Err(e);
        }
        Ok(Started { pid, terminal })
    }
}

#[cfg(test)]
mod tests;
