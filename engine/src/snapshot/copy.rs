//! The copy snapshotter's assembly: applying an unpacked layer (overlayfs format) onto a plain
//! directory, as overlayfs would show it: whiteouts delete, opaque directories first lose what
//! the layers below put there, everything else is copied over what is there.
//!
//! All work goes through directory fds with `*at` calls that never follow the final name, so a
//! symlink that a lower layer left where an upper layer has a directory is replaced, never
//! followed.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmod, fchmodat, fstatat, futimens, mkdirat, mknodat, utimensat, FchmodatFlags, FileStat, Mode, SFlag,
    UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

use crate::error::{Error, Result};
use crate::layer::{is_whiteout, remove_tree_at, OPAQUE_XATTR};

/// Files with more than one link already copied, by (device, inode): later names become hard
/// links to the copy, as they are in the layer.
type Links = HashMap<(u64, u64), (Rc<OwnedFd>, CString)>;

/// Applies the layer unpacked at `layer` onto `dest`.
pub(crate) fn apply_layer(layer: &Path, dest: &Path) -> Result<()> {
    let open = |path: &Path| {
        nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| Error::io(format!("opening {}", path.display()), e.into()))
    };
    let src = open(layer)?;
    let dst = Rc::new(open(dest)?);
    if is_opaque(src.as_fd()) {
        clear_dir(dst.as_fd()).map_err(|e| err(format!("clearing {}", dest.display()), e))?;
    }
    let mut links = Links::new();
    apply_dir(&src, &dst, &PathBuf::new(), &mut links, layer, false)
}

/// Copies the layer unpacked at `layer` into the empty directory `dest` as it is: whiteouts and
/// opaque directories stay markers (for overlayfs to apply), nothing is applied.
pub(crate) fn copy_layer(layer: &Path, dest: &Path) -> Result<()> {
    let open = |path: &Path| {
        nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| Error::io(format!("opening {}", path.display()), e.into()))
    };
    let src = open(layer)?;
    let dst = Rc::new(open(dest)?);
    let mut links = Links::new();
    apply_dir(&src, &dst, &PathBuf::new(), &mut links, layer, true)?;
    let stat = nix::sys::stat::fstat(&src).map_err(|e| err(format!("reading {}", layer.display()), e))?;
    fd_attributes(src.as_fd(), dst.as_fd(), &stat).map_err(|e| err(format!("copying {}", layer.display()), e))
}

/// Marks `dir` opaque for overlayfs (what the layers below hold there is hidden).
fn mark_opaque(dir: BorrowedFd<'_>) -> nix::Result<()> {
    let key = CString::new(OPAQUE_XATTR).expect("no NUL in a constant");
    // SAFETY: valid fd, NUL-terminated name, a value and its length.
    let rc = unsafe { libc::fsetxattr(dir.as_raw_fd(), key.as_ptr(), b"y".as_ptr().cast(), 1, 0) };
    if rc < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

fn err(what: String, e: Errno) -> Error {
    Error::io(what, e.into())
}

fn is_dir(stat: &FileStat) -> bool {
    stat.st_mode & libc::S_IFMT == libc::S_IFDIR
}

fn open_dir_at(dir: BorrowedFd<'_>, name: &CStr) -> nix::Result<OwnedFd> {
    openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

fn list(dir: &OwnedFd) -> nix::Result<Vec<CString>> {
    let mut listing = nix::dir::Dir::from_fd(
        dir.try_clone().map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?,
    )?;
    let mut names = Vec::new();
    for entry in listing.iter() {
        let name = entry?.file_name().to_owned();
        if name.as_c_str() != c"." && name.as_c_str() != c".." {
            names.push(name);
        }
    }
    Ok(names)
}

/// Removes everything in `dir`.
fn clear_dir(dir: BorrowedFd<'_>) -> nix::Result<()> {
    let owned =
        dir.try_clone_to_owned().map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    for name in list(&owned)? {
        remove_tree_at(dir, &name)?;
    }
    Ok(())
}

fn is_opaque(dir: BorrowedFd<'_>) -> bool {
    let key = CString::new(OPAQUE_XATTR).expect("no NUL in a constant");
    let mut value = [0u8; 4];
    // SAFETY: valid fd, NUL-terminated name, buffer and its length.
    let n = unsafe { libc::fgetxattr(dir.as_raw_fd(), key.as_ptr(), value.as_mut_ptr().cast(), value.len()) };
    n == 1 && value[0] == b'y'
}

/// With `keep_markers` (a copy of the layer, not its application) whiteouts are copied as
/// whiteouts and opaque directories stay marked.
fn apply_dir(
    src: &OwnedFd,
    dst: &Rc<OwnedFd>,
    rel: &Path,
    links: &mut Links,
    layer: &Path,
    keep_markers: bool,
) -> Result<()> {
    let names = list(src).map_err(|e| err(format!("reading {}", layer.join(rel).display()), e))?;
    for name in names {
        let shown = rel.join(std::ffi::OsStr::from_bytes(name.to_bytes()));
        let failed = |what: &str, e: Errno| {
            err(format!("{what} {} from layer {}", shown.display(), layer.display()), e)
        };
        let stat = fstatat(src.as_fd(), name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| failed("reading", e))?;
        let existing = match fstatat(dst.as_fd(), name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) => Some(stat),
            Err(Errno::ENOENT) => None,
            Err(e) => return Err(failed("inspecting the destination of", e)),
        };
        if is_whiteout(&stat) && keep_markers {
            mknodat(
                dst.as_fd(),
                name.as_c_str(),
                SFlag::S_IFCHR,
                Mode::from_bits_truncate(0o600),
                stat.st_rdev,
            )
            .map_err(|e| failed("creating the whiteout", e))?;
            path_attributes(dst.as_fd(), &name, &stat, true)
                .map_err(|e| failed("setting attributes of", e))?;
            continue;
        }
        if is_whiteout(&stat) {
            if existing.is_some() {
                remove_tree_at(dst.as_fd(), &name).map_err(|e| failed("applying the whiteout of", e))?;
            }
            continue;
        }
        if is_dir(&stat) {
            let src_child = open_dir_at(src.as_fd(), &name).map_err(|e| failed("opening", e))?;
            match existing {
                Some(existing) if is_dir(&existing) => {}
                Some(_) => {
                    unlinkat(dst.as_fd(), name.as_c_str(), UnlinkatFlags::NoRemoveDir)
                        .map_err(|e| failed("replacing", e))?;
                    mkdirat(dst.as_fd(), name.as_c_str(), Mode::from_bits_truncate(0o700))
                        .map_err(|e| failed("creating", e))?;
                }
                None => mkdirat(dst.as_fd(), name.as_c_str(), Mode::from_bits_truncate(0o700))
                    .map_err(|e| failed("creating", e))?,
            }
            let dst_child = Rc::new(open_dir_at(dst.as_fd(), &name).map_err(|e| failed("opening", e))?);
            if keep_markers && is_opaque(src_child.as_fd()) {
                mark_opaque(dst_child.as_fd()).map_err(|e| failed("marking opaque", e))?;
            } else if matches!(existing, Some(existing) if is_dir(&existing)) && is_opaque(src_child.as_fd())
            {
                clear_dir(dst_child.as_fd()).map_err(|e| failed("clearing", e))?;
            }
            apply_dir(&src_child, &dst_child, &shown, links, layer, keep_markers)?;
            fd_attributes(src_child.as_fd(), dst_child.as_fd(), &stat)
                .map_err(|e| failed("copying attributes of", e))?;
            continue;
        }
        if let Some(existing) = existing {
            if is_dir(&existing) {
                remove_tree_at(dst.as_fd(), &name).map_err(|e| failed("replacing", e))?;
            } else {
                unlinkat(dst.as_fd(), name.as_c_str(), UnlinkatFlags::NoRemoveDir)
                    .map_err(|e| failed("replacing", e))?;
            }
        }
        match stat.st_mode & libc::S_IFMT {
            libc::S_IFREG => {
                let id = (stat.st_dev, stat.st_ino);
                if stat.st_nlink > 1 {
                    if let Some((dir, first)) = links.get(&id) {
                        linkat(dir.as_fd(), first.as_c_str(), dst.as_fd(), name.as_c_str(), AtFlags::empty())
                            .map_err(|e| failed("linking", e))?;
                        continue;
                    }
                }
                copy_file(src.as_fd(), dst.as_fd(), &name, &stat).map_err(|e| failed("copying", e))?;
                if stat.st_nlink > 1 {
                    links.insert(id, (dst.clone(), name.clone()));
                }
            }
            libc::S_IFLNK => {
                let target = readlinkat(src.as_fd(), name.as_c_str()).map_err(|e| failed("reading", e))?;
                symlinkat(target.as_os_str(), dst.as_fd(), name.as_c_str())
                    .map_err(|e| failed("creating", e))?;
                path_attributes(dst.as_fd(), &name, &stat, false)
                    .map_err(|e| failed("setting attributes of", e))?;
            }
            kind @ (libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO | libc::S_IFSOCK) => {
                let kind = SFlag::from_bits_truncate(kind);
                mknodat(dst.as_fd(), name.as_c_str(), kind, Mode::from_bits_truncate(0o600), stat.st_rdev)
                    .map_err(|e| failed("creating", e))?;
                path_attributes(dst.as_fd(), &name, &stat, true)
                    .map_err(|e| failed("setting attributes of", e))?;
            }
            _ => tracing::warn!(path = %shown.display(), "skipping a file of unknown type"),
        }
    }
    Ok(())
}

fn copy_file(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, name: &CStr, stat: &FileStat) -> nix::Result<()> {
    let from = openat(src, name, OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())?;
    let to = openat(
        dst,
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )?;
    let (mut from, mut to) = (File::from(from), File::from(to));
    // std uses copy_file_range (in-kernel copy, reflinks where the file system has them).
    std::io::copy(&mut from, &mut to).map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    fd_attributes(from.as_fd(), to.as_fd(), stat)
}

fn times(stat: &FileStat) -> (TimeSpec, TimeSpec) {
    (TimeSpec::new(stat.st_atime, stat.st_atime_nsec), TimeSpec::new(stat.st_mtime, stat.st_mtime_nsec))
}

/// Owner, mode, xattrs (overlayfs' own excepted) and times, from `src` to `dst`.
fn fd_attributes(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, stat: &FileStat) -> nix::Result<()> {
    fchown(dst, Some(Uid::from_raw(stat.st_uid)), Some(Gid::from_raw(stat.st_gid)))?;
    fchmod(dst, Mode::from_bits_truncate(stat.st_mode & 0o7777))?;
    copy_xattrs(src, dst);
    let (atime, mtime) = times(stat);
    futimens(dst, &atime, &mtime)
}

/// Owner, mode (not for symlinks) and times of a symlink or special file, by name.
fn path_attributes(dir: BorrowedFd<'_>, name: &CStr, stat: &FileStat, chmod: bool) -> nix::Result<()> {
    fchownat(
        dir,
        name,
        Some(Uid::from_raw(stat.st_uid)),
        Some(Gid::from_raw(stat.st_gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )?;
    if chmod {
        // Just created by us as a device or fifo: there is no symlink to follow.
        fchmodat(dir, name, Mode::from_bits_truncate(stat.st_mode & 0o7777), FchmodatFlags::FollowSymlink)?;
    }
    let (atime, mtime) = times(stat);
    utimensat(dir, name, &atime, &mtime, UtimensatFlags::NoFollowSymlink)
}

/// Best effort, as at unpack: file capabilities and labels matter, but a file system may refuse a
/// namespace. Symlinks and special files keep none (there is no fd to carry them).
fn copy_xattrs(src: BorrowedFd<'_>, dst: BorrowedFd<'_>) {
    // SAFETY: a size query with a null buffer.
    let size = unsafe { libc::flistxattr(src.as_raw_fd(), std::ptr::null_mut(), 0) };
    if size <= 0 {
        return;
    }
    let mut names = vec![0u8; size as usize];
    // SAFETY: buffer and its length.
    let size = unsafe { libc::flistxattr(src.as_raw_fd(), names.as_mut_ptr().cast(), names.len()) };
    if size <= 0 {
        return;
    }
    for name in names[..size as usize].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        if name.starts_with(b"trusted.overlay.") {
            continue;
        }
        let Ok(key) = CString::new(name) else { continue };
        let mut value = vec![0u8; 4096];
        // SAFETY: valid fd, NUL-terminated name, buffer and its length.
        let n =
            unsafe { libc::fgetxattr(src.as_raw_fd(), key.as_ptr(), value.as_mut_ptr().cast(), value.len()) };
        if n < 0 {
            continue;
        }
        // SAFETY: valid fd, NUL-terminated name, value and its length.
        let rc =
            unsafe { libc::fsetxattr(dst.as_raw_fd(), key.as_ptr(), value.as_ptr().cast(), n as usize, 0) };
        if rc != 0 {
            tracing::debug!(xattr = ?key, error = %Errno::last(), "xattr not copied");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layer_copy_keeps_whiteouts_and_opaque_directories() {
        if !nix::unistd::geteuid().is_root() {
            return; // mknod of a whiteout and trusted.* xattrs need root
        }
        let dir = tempfile::tempdir().unwrap();
        let (layer, dest) = (dir.path().join("layer"), dir.path().join("dest"));
        std::fs::create_dir_all(layer.join("opaque")).unwrap();
        std::fs::create_dir(&dest).unwrap();
        std::fs::write(layer.join("opaque/file"), "x").unwrap();
        let layer_fd = nix::fcntl::open(&layer, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        mknodat(layer_fd.as_fd(), "gone", SFlag::S_IFCHR, Mode::from_bits_truncate(0o600), 0).unwrap();
        let opaque =
            nix::fcntl::open(&layer.join("opaque"), OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty())
                .unwrap();
        mark_opaque(opaque.as_fd()).unwrap();

        copy_layer(&layer, &dest).unwrap();
        let gone = nix::sys::stat::lstat(&dest.join("gone")).unwrap();
        assert!(is_whiteout(&gone), "the whiteout is copied as one");
        let copied =
            nix::fcntl::open(&dest.join("opaque"), OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty())
                .unwrap();
        assert!(is_opaque(copied.as_fd()));
        assert_eq!(std::fs::read_to_string(dest.join("opaque/file")).unwrap(), "x");

        // Applied (the copy snapshotter's way) the same layer deletes instead.
        let applied = dir.path().join("applied");
        std::fs::create_dir_all(applied.join("gone")).unwrap();
        apply_layer(&layer, &applied).unwrap();
        assert!(!applied.join("gone").exists());
    }
}
