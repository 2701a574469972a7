//! overlayfs mounts: probing whether overlayfs works under the store, and mounting a writable
//! layer over its layers.
//!
//! The classic `mount(2)` takes all options in one string of at most a page (4096 bytes on
//! x86-64), which fits only a few dozen layer paths. The new mount API (`fsopen` + `fsconfig`,
//! Linux 5.2) passes each lower directory separately with `lowerdir+` (Linux 6.8), so there the
//! only bound is overlayfs' own stack depth of 500. Older kernels fall back to `mount(2)` and get
//! a clear error, naming the bound, when the options would not fit.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// overlayfs stacks at most this many lower layers (`OVL_MAX_STACK`).
const MAX_LOWER_LAYERS: usize = 500;

// From <linux/mount.h>; not all libc versions export them.
const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

/// Refuses stacks overlayfs cannot mount, before anything is created.
pub(super) fn check_layer_count(layers: usize) -> Result<()> {
    if layers > MAX_LOWER_LAYERS {
        return Err(Error::InvalidInput(format!(
            "an image of {layers} layers cannot be mounted with overlayfs (at most {MAX_LOWER_LAYERS})"
        )));
    }
    Ok(())
}

/// Checks that overlayfs is known to the kernel and that a trial mount works in `dir` (on the
/// store's file system, which must support it as an upper layer). Removes `dir` afterwards.
pub(super) fn probe(dir: &super::TmpDir) -> std::result::Result<(), String> {
    let listed = fs::read_to_string("/proc/filesystems")
        .map(|list| list.lines().any(|line| line.split_whitespace().last() == Some("overlay")))
        .unwrap_or(false);
    if !listed {
        // Not an answer on its own: the module loads on first mount.
        tracing::debug!("overlay is not in /proc/filesystems yet; trying a mount");
    }
    let path = dir.path();
    let sub = |name: &str| path.join(name);
    for name in ["lower", "upper", "work", "merged"] {
        fs::create_dir(sub(name)).map_err(|e| format!("creating {}: {e}", sub(name).display()))?;
    }
    fs::write(sub("lower").join("probe"), b"lower").map_err(|e| format!("writing a probe file: {e}"))?;
    mount(&[sub("lower")], &sub("upper"), &sub("work"), &sub("merged"), false).map_err(|e| e.to_string())?;
    let seen = fs::read(sub("merged").join("probe"));
    let unmounted = nix::mount::umount2(&sub("merged"), nix::mount::MntFlags::MNT_DETACH);
    match (seen, unmounted) {
        (Ok(content), Ok(())) if content == b"lower" => Ok(()),
        (Ok(_), Ok(())) => Err("overlay mount shows wrong content".to_string()),
        (Err(e), _) => Err(format!("reading through the overlay mount: {e}")),
        (_, Err(e)) => Err(format!("unmounting the probe: {e}")),
    }
}

/// Mounts overlayfs at `target` with `lowers` (top first), `upper` and `work`.
///
/// With `volatile` (Linux 5.10) overlayfs skips every sync of the upper file system, among them
/// the sync of the whole host file system that unmounting an overlay does: measured here, a
/// `--rm` container's unmount then takes ~9 ms less, and a container created while the previous
/// one is being removed no longer waits behind that sync. The price is an upper directory the
/// kernel marks (`work/incompat/volatile`) as unsafe to mount again after a crash: for the
/// writable layer of a container that is removed anyway (`--rm`), whose content nobody keeps,
/// as Podman mounts those. The marker is removed before each mount of such a layer. A kernel
/// without the option gets the mount without it.
pub(super) fn mount(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    volatile: bool,
) -> Result<()> {
    check_layer_count(lowers.len())?;
    if volatile {
        let _ = fs::remove_dir_all(work.join("work/incompat/volatile"));
    }
    match mount_new_api(lowers, upper, work, target, volatile) {
        Ok(()) => Ok(()),
        // No new mount API (before 5.2, or filtered by seccomp), or no `lowerdir+` (before 6.8).
        Err(NewApiError::Unavailable(reason)) => {
            tracing::debug!(%reason, "new mount API unavailable, using mount(2)");
            match mount_classic(lowers, upper, work, target, volatile) {
                // No `volatile` before Linux 5.10.
                Err(_) if volatile => mount_classic(lowers, upper, work, target, false),
                other => other,
            }
        }
        Err(NewApiError::Failed(e)) => Err(e),
    }
}

enum NewApiError {
    Unavailable(String),
    Failed(Error),
}

fn c_path(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::InvalidInput(format!("path {} holds a NUL byte", path.display())))
}

fn mount_new_api(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    volatile: bool,
) -> std::result::Result<(), NewApiError> {
    let failed = |what: String, e: io::Error| NewApiError::Failed(Error::io(what, e));
    let fstype = c"overlay";
    // SAFETY: fsopen with a NUL-terminated name; the result is checked before use.
    let fd = unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) };
    if fd < 0 {
        return Err(NewApiError::Unavailable(format!("fsopen: {}", io::Error::last_os_error())));
    }
    // SAFETY: fsopen returned a new fd that nothing else owns.
    let context = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let set = |key: &std::ffi::CStr, value: &Path| -> std::result::Result<(), io::Error> {
        let value = CString::new(value.as_os_str().as_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: valid fd, NUL-terminated key and value.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                context.as_raw_fd(),
                FSCONFIG_SET_STRING,
                key.as_ptr(),
                value.as_ptr(),
                0,
            )
        };
        if rc < 0 {
            Err(with_kernel_message(io::Error::last_os_error(), &context))
        } else {
            Ok(())
        }
    };
    for (i, lower) in lowers.iter().enumerate() {
        if let Err(e) = set(c"lowerdir+", lower) {
            if i == 0 && e.raw_os_error() == Some(libc::EINVAL) {
                return Err(NewApiError::Unavailable(format!("lowerdir+: {e}")));
            }
            return Err(failed(format!("adding overlay lower layer {}", lower.display()), e));
        }
    }
    set(c"upperdir", upper)
        .map_err(|e| failed(format!("setting overlay upper directory {}", upper.display()), e))?;
    set(c"workdir", work)
        .map_err(|e| failed(format!("setting overlay work directory {}", work.display()), e))?;
    if volatile {
        // SAFETY: valid fd, NUL-terminated key, no value. Refused before Linux 5.10: then the
        // mount goes on without it.
        let _ = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                context.as_raw_fd(),
                FSCONFIG_SET_FLAG,
                c"volatile".as_ptr(),
                std::ptr::null::<libc::c_char>(),
                0,
            )
        };
    }
    // SAFETY: valid fd; CMD_CREATE takes no key or value.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            context.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    if rc < 0 {
        let e = with_kernel_message(io::Error::last_os_error(), &context);
        return Err(failed(format!("creating the overlay for {}", target.display()), e));
    }
    // SAFETY: valid fd, no attributes.
    let mnt = unsafe { libc::syscall(libc::SYS_fsmount, context.as_raw_fd(), FSMOUNT_CLOEXEC, 0) };
    if mnt < 0 {
        return Err(failed(
            format!("mounting the overlay for {}", target.display()),
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: fsmount returned a new fd that nothing else owns.
    let mnt = unsafe { OwnedFd::from_raw_fd(mnt as i32) };
    let target_c = c_path(target).map_err(NewApiError::Failed)?;
    // SAFETY: valid fds and NUL-terminated paths.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mnt.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            target_c.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc < 0 {
        return Err(failed(
            format!("attaching the overlay at {}", target.display()),
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// [`mount`] for a container in a user namespace: each lower layer is seen through an
/// idmapped mount (Linux 5.19 for overlayfs on idmapped layers), so one copy of a layer serves
/// every mapping. The idmapped mounts are attached under `scratch` for the overlay mount to
/// name them, and detached again once overlayfs holds its own references to them.
pub(super) fn mount_idmapped(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    map: &crate::runtime::userns::IdMap,
    scratch: &Path,
    volatile: bool,
) -> Result<()> {
    let userns = crate::runtime::userns::namespace_fd(map)?;
    let base = scratch.join("idmapped");
    let _ = fs::create_dir(&base);
    let mut attached = Vec::new();
    let result = (|| -> Result<()> {
        for (i, lower) in lowers.iter().enumerate() {
            let at = base.join(i.to_string());
            let _ = fs::create_dir(&at);
            attach_idmapped(lower, &at, &userns)?;
            attached.push(at);
        }
        mount(&attached, upper, work, target, volatile)
    })();
    for at in &attached {
        let _ = nix::mount::umount2(at, nix::mount::MntFlags::MNT_DETACH);
        let _ = fs::remove_dir(at);
    }
    let _ = fs::remove_dir(&base);
    result
}

// From <linux/mount.h>.
const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Attaches at `at` a clone of the mount of `source` whose ids are seen through `userns`'s
/// mapping.
fn attach_idmapped(source: &Path, at: &Path, userns: &OwnedFd) -> Result<()> {
    let source_c = c_path(source)?;
    // SAFETY: open_tree with a NUL-terminated path; the result is checked.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            source_c.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | AT_RECURSIVE,
        )
    };
    if fd < 0 {
        return Err(Error::io(
            format!("cloning the mount of {}", source.display()),
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: open_tree returned a new fd that nothing else owns.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    // SAFETY: valid fd, empty path with AT_EMPTY_PATH, a mount_attr of the size given.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return Err(Error::Unsupported(format!(
            "an idmapped mount of layer {} for a user namespace: {e} (idmapped mounts need Linux 5.19 and a file system that has them)",
            source.display()
        )));
    }
    let at_c = c_path(at)?;
    // SAFETY: valid fd and NUL-terminated path.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            at_c.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc < 0 {
        return Err(Error::io(
            format!("attaching the idmapped layer at {}", at.display()),
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Adds the kernel's own explanation, which the fs context fd holds after a failed `fsconfig`.
fn with_kernel_message(e: io::Error, context: &OwnedFd) -> io::Error {
    let mut buf = [0u8; 512];
    // SAFETY: reading into a local buffer of the given length.
    let n = unsafe { libc::read(context.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n > 2 {
        let message = String::from_utf8_lossy(&buf[2..n as usize]).trim().to_string();
        io::Error::new(e.kind(), format!("{e} ({message})"))
    } else {
        e
    }
}

fn mount_classic(lowers: &[PathBuf], upper: &Path, work: &Path, target: &Path, volatile: bool) -> Result<()> {
    let mut lowerdir = Vec::new();
    for (i, lower) in lowers.iter().enumerate() {
        let bytes = lower.as_os_str().as_bytes();
        if bytes.iter().any(|b| matches!(b, b':' | b',')) {
            return Err(Error::Unsupported(format!(
                "overlay lower directory {} has ':' or ',' in its path, which mount(2) options cannot carry",
                lower.display()
            )));
        }
        if i > 0 {
            lowerdir.push(b':');
        }
        lowerdir.extend_from_slice(bytes);
    }
    let mut options = b"lowerdir=".to_vec();
    options.extend_from_slice(&lowerdir);
    options.extend_from_slice(b",upperdir=");
    options.extend_from_slice(upper.as_os_str().as_bytes());
    options.extend_from_slice(b",workdir=");
    options.extend_from_slice(work.as_os_str().as_bytes());
    if volatile {
        options.extend_from_slice(b",volatile");
    }
    // SAFETY: sysconf has no preconditions.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    if options.len() >= page {
        return Err(Error::InvalidInput(format!(
            "{} layers are too many to mount with this kernel: the overlay mount options take {} bytes and \
             mount(2) accepts {} (Linux 6.8 or later lifts this bound)",
            lowers.len(),
            options.len(),
            page - 1
        )));
    }
    let options = std::ffi::OsStr::from_bytes(&options);
    nix::mount::mount(Some("overlay"), target, Some("overlay"), nix::mount::MsFlags::empty(), Some(options))
        .map_err(|e| Error::io(format!("mounting overlay at {}", target.display()), e.into()))
}

/// Whether `path` is a mount point in this mount namespace. The kernel's mount-root attribute
/// (`statx`, Linux 5.8) answers at once; reading /proc/self/mountinfo, which every start, attach
/// and removal did, cost 0.5 ms with fifty containers' overlays (whose options are long) and grew
/// with each one. The scan stays for kernels without the attribute.
pub(super) fn is_mountpoint(path: &Path) -> bool {
    let Ok(path) = fs::canonicalize(path) else { return false };
    mount_root_attribute(&path).unwrap_or_else(|| listed_in_mountinfo(&path))
}

/// Whether /proc/self/mountinfo has a mount at `path` (canonical).
pub(super) fn listed_in_mountinfo(path: &Path) -> bool {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else { return false };
    info.lines().any(|line| {
        line.split(' ').nth(4).map(unescape_mountinfo).as_deref() == Some(path.as_os_str().as_bytes())
    })
}

/// `STATX_ATTR_MOUNT_ROOT` of `path`, or `None` when the kernel does not report it.
pub(super) fn mount_root_attribute(path: &Path) -> Option<bool> {
    let c_path = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: an all-zero statx is a valid value of this plain C struct.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a statx buffer of the right type, both live for the call.
    let r = unsafe { libc::statx(libc::AT_FDCWD, c_path.as_ptr(), libc::AT_SYMLINK_NOFOLLOW, 0, &mut stx) };
    let bit = libc::STATX_ATTR_MOUNT_ROOT as u64;
    (r == 0 && stx.stx_attributes_mask & bit != 0).then_some(stx.stx_attributes & bit != 0)
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
pub(crate) fn unescape_mountinfo(field: &str) -> Vec<u8> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b))
        {
            out.push((bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}
