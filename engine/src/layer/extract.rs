//! Safe extraction of an untrusted layer tar into a directory.
//!
//! Every path is resolved through a file descriptor of the target directory: parents with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)` (the kernel refuses any step, `..` or
//! symlink, that leaves the target), and the entry itself with the `*at` calls, never following
//! its final component. So a layer cannot make berth touch the host outside the target, not even
//! for a moment, whatever order of symlinks and paths it tries. Names are also checked lexically
//! first (absolute paths and `..` leading out are refused outright, with the entry named).
//!
//! The tar parsing is the `tar` crate's; the file system side is hand-written because the crate's
//! own `unpack` resolves paths by string, which is what this module exists to avoid.

use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::rc::Rc;

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{
    fchmod, fchmodat, fstatat, futimens, makedev, mkdirat, mknodat, utimensat, FchmodatFlags, FileStat, Mode,
    SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use tar::EntryType;

use super::UnpackOptions;
use crate::error::{Error, Result};

/// The xattr overlayfs reads to know that a directory hides everything below it.
pub(crate) const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
/// Copy buffer for file contents.
const COPY_BUFFER: usize = 256 << 10;
/// Directory fds kept open for the entries that follow (layer tars list a directory's entries
/// together, so a small cache saves nearly all path lookups); cleared when full.
const PARENT_CACHE: usize = 256;
/// Files of a durable extraction kept open until they are fsynced together: their writeback
/// runs while the next ones are written, and one wait covers the batch.
const FLUSH_BATCH: usize = 128;
/// Threads that fsync a batch together.
const FLUSH_THREADS: usize = 16;

/// Whether `stat` describes an overlayfs whiteout (a 0/0 character device).
pub(crate) fn is_whiteout(stat: &FileStat) -> bool {
    stat.st_mode & libc::S_IFMT == libc::S_IFCHR && stat.st_rdev == 0
}

fn is_dir(stat: &FileStat) -> bool {
    stat.st_mode & libc::S_IFMT == libc::S_IFDIR
}

/// Extracts the tar read from `reader` into `target`; returns the reader (positioned after the
/// end-of-archive marker) and the layer's content size.
pub(super) fn extract<R: Read>(reader: R, target: &Path, options: UnpackOptions) -> Result<(R, u64)> {
    extract_with(reader, target, options, true)
}

/// [`extract`], optionally without openat2 (so tests can cover the fallback on any kernel).
pub(super) fn extract_with<R: Read>(
    reader: R,
    target: &Path,
    options: UnpackOptions,
    use_openat2: bool,
) -> Result<(R, u64)> {
    let root = nix::fcntl::open(target, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| Error::io(format!("opening {}", target.display()), e.into()))?;
    let root_stat = nix::sys::stat::fstat(&root)
        .map_err(|e| Error::io(format!("reading {}", target.display()), e.into()))?;
    let mut extractor = Extractor {
        root: Rc::new(root),
        options,
        parents: HashMap::new(),
        dirs: Vec::new(),
        dir_index: HashMap::new(),
        euid: nix::unistd::geteuid().as_raw(),
        egid: nix::unistd::getegid().as_raw(),
        // Under a set-group-ID directory new files take its group, so "created by us" no longer
        // means "owned by our group" and every chown has to be done.
        root_setgid: root_stat.st_mode & libc::S_ISGID != 0,
        have_openat2: use_openat2,
        buf: vec![0; COPY_BUFFER],
        content_bytes: 0,
        unflushed: Vec::new(),
        touched_dirs: HashSet::new(),
    };
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(malformed)? {
        let mut entry = entry.map_err(malformed)?;
        extractor.entry(&mut entry)?;
    }
    extractor.finish()?;
    Ok((archive.into_inner(), extractor.content_bytes))
}

fn malformed(e: std::io::Error) -> Error {
    Error::InvalidInput(format!("malformed layer tar: {e}"))
}

/// Owner, mode, times and xattrs of an entry, from its header and PAX records.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: TimeSpec,
    xattrs: Vec<(CString, Vec<u8>)>,
}

/// A directory whose mode and mtime are applied once everything inside it is written.
struct DirMeta {
    path: Vec<u8>,
    mode: u32,
    mtime: TimeSpec,
}

/// What [`Extractor::make_room`] found where an entry is to be created.
enum Room {
    /// Nothing there (any more).
    Free { was_whiteout: bool },
    /// A directory, kept because the entry is a directory too.
    KeptDir,
}

struct Extractor {
    root: Rc<OwnedFd>,
    options: UnpackOptions,
    /// Directories resolved so far, by path relative to the root (`a/b`).
    parents: HashMap<Vec<u8>, Rc<OwnedFd>>,
    dirs: Vec<DirMeta>,
    dir_index: HashMap<Vec<u8>, usize>,
    euid: u32,
    egid: u32,
    root_setgid: bool,
    /// Cleared if the kernel has no openat2 (before 5.6); see [`Extractor::open_beneath`].
    have_openat2: bool,
    buf: Vec<u8>,
    content_bytes: u64,
    /// Durable extractions: files written whose fsync is still to come.
    unflushed: Vec<File>,
    /// Durable extractions: directories (by path relative to the root) that got or lost an
    /// entry, or were created, and are fsynced at the end.
    touched_dirs: HashSet<Vec<u8>>,
}

/// An entry's path, cleaned: components without `.` and empty ones, `..` applied.
fn clean_path(raw: &[u8]) -> std::result::Result<Vec<&[u8]>, &'static str> {
    if raw.first() == Some(&b'/') {
        return Err("absolute paths are not allowed in layers");
    }
    let mut out = Vec::new();
    for component in raw.split(|b| *b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() {
                    return Err("path leads out of the target through ..");
                }
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

fn join(components: &[&[u8]]) -> Vec<u8> {
    components.join(&b'/')
}

fn c_string(bytes: &[u8], entry: &str) -> Result<CString> {
    CString::new(bytes)
        .map_err(|_| Error::InvalidInput(format!("layer entry {entry:?}: name holds a NUL byte")))
}

fn io_err(what: String, e: Errno) -> Error {
    Error::io(what, e.into())
}

/// What an entry asks for, decided before anything on disk is touched.
enum Plan {
    File,
    Dir,
    Symlink(CString),
    HardLink(Vec<Vec<u8>>),
    Node(SFlag, libc::dev_t),
    Whiteout(CString),
    Opaque,
}

impl Extractor {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<()> {
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName | EntryType::GNULongLink
        ) {
            // PAX and GNU records the tar crate has already folded into the next entry, or
            // global PAX defaults, which layer builders do not use for anything berth applies.
            return Ok(());
        }
        let raw_path = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw_path).into_owned();
        let unsafe_entry =
            |reason: &str| Error::UnsafeEntry { entry: name.clone(), reason: reason.to_string() };
        let components = clean_path(&raw_path).map_err(unsafe_entry)?;

        let Some((last, parent)) = components.split_last() else {
            if kind == EntryType::Directory {
                let meta = self.meta(entry, &name)?;
                return self.root_dir(meta, &name);
            }
            return Err(unsafe_entry("entry has no name"));
        };
        let whiteout_name = if self.options.plain { None } else { last.strip_prefix(WHITEOUT_PREFIX) };
        let plan = if *last == OPAQUE_MARKER && !self.options.plain {
            Plan::Opaque
        } else if let Some(hidden) = whiteout_name {
            if hidden.starts_with(WHITEOUT_PREFIX) {
                // Other `.wh..wh.` names are AUFS bookkeeping (hard link directories and the
                // like) with no meaning in an OCI layer.
                tracing::debug!(entry = %name, "skipping aufs metadata entry");
                return Ok(());
            }
            if matches!(hidden, b"" | b"." | b"..") {
                return Err(unsafe_entry("whiteout names no file"));
            }
            Plan::Whiteout(c_string(hidden, &name)?)
        } else {
            match kind {
                EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => Plan::File,
                EntryType::Directory => Plan::Dir,
                EntryType::Symlink => {
                    let target = entry.link_name_bytes().ok_or_else(|| {
                        Error::InvalidInput(format!("layer entry {name:?}: symlink without a target"))
                    })?;
                    Plan::Symlink(c_string(&target, &name)?)
                }
                EntryType::Link => {
                    let target = entry.link_name_bytes().ok_or_else(|| {
                        Error::InvalidInput(format!("layer entry {name:?}: hard link without a target"))
                    })?;
                    let target = clean_path(&target).map_err(|reason| Error::UnsafeEntry {
                        entry: name.clone(),
                        reason: format!("hard link target: {reason}"),
                    })?;
                    if target.is_empty() {
                        return Err(unsafe_entry("hard link to the target directory itself"));
                    }
                    if target == components {
                        // A link to itself; tar skips these too.
                        return Ok(());
                    }
                    Plan::HardLink(target.into_iter().map(<[u8]>::to_vec).collect())
                }
                EntryType::Char | EntryType::Block => {
                    if !self.options.allow_device_nodes {
                        return Err(unsafe_entry("device nodes are not allowed in this layer"));
                    }
                    let header = entry.header();
                    let number = |n: std::io::Result<Option<u32>>| {
                        n.map_err(|e| Error::InvalidInput(format!("layer entry {name:?}: {e}")))
                            .map(|n| n.unwrap_or(0))
                    };
                    let dev =
                        makedev(number(header.device_major())?.into(), number(header.device_minor())?.into());
                    let kind = if kind == EntryType::Char { SFlag::S_IFCHR } else { SFlag::S_IFBLK };
                    Plan::Node(kind, dev)
                }
                EntryType::Fifo => Plan::Node(SFlag::S_IFIFO, 0),
                other => {
                    return Err(Error::InvalidInput(format!(
                        "layer entry {name:?}: unsupported tar entry type {other:?}"
                    )))
                }
            }
        };

        let meta = self.meta(entry, &name)?;
        let dir = self.parent_dir(parent, &name)?;
        if self.options.durable {
            self.touched_dirs.insert(join(parent));
            if matches!(plan, Plan::Dir) {
                self.touched_dirs.insert(join(&components));
            }
        }
        if matches!(plan, Plan::Opaque) {
            return set_opaque(dir.as_fd(), c"." /* the parent itself */)
                .map_err(|e| io_err(format!("marking the directory of {name:?} opaque"), e));
        }
        let file_name = c_string(last, &name)?;
        match plan {
            Plan::File => self.file(entry, &dir, &file_name, &meta, &name),
            Plan::Dir => self.directory(&dir, &file_name, join(&components), meta, &name),
            Plan::Symlink(target) => self.symlink(&dir, &file_name, &target, &meta, &name),
            Plan::HardLink(target) => self.hard_link(&dir, &file_name, &target, &name),
            Plan::Node(kind, dev) => self.node(&dir, &file_name, kind, dev, &meta, &name),
            Plan::Whiteout(hidden) => self.whiteout(&dir, &hidden, &name),
            Plan::Opaque => unreachable!("handled above"),
        }
    }

    fn meta<R: Read>(&self, entry: &mut tar::Entry<R>, name: &str) -> Result<Meta> {
        let bad = |e: std::io::Error| Error::InvalidInput(format!("layer entry {name:?}: {e}"));
        let header = entry.header();
        let raw = header.as_old();
        // An empty numeric field (all NULs or spaces) reads as 0, as Go's archive/tar (and so
        // Docker) reads it; the tar crate calls it an error.
        let lenient = |value: std::io::Result<u64>, field: &[u8]| match value {
            Err(_) if field.iter().all(|b| *b == 0 || *b == b' ') => Ok(0),
            other => other.map_err(bad),
        };
        let mode = lenient(header.mode().map(u64::from), &raw.mode)? as u32 & 0o7777;
        let mut uid = lenient(header.uid(), &raw.uid)?;
        let mut gid = lenient(header.gid(), &raw.gid)?;
        let mut mtime = TimeSpec::new(lenient(header.mtime(), &raw.mtime)? as i64, 0);
        let mut xattrs = Vec::new();
        if let Some(pax) = entry.pax_extensions().map_err(bad)? {
            for record in pax {
                let record = record.map_err(bad)?;
                let value = record.value_bytes();
                let number = || {
                    std::str::from_utf8(value).ok().and_then(|v| v.parse::<u64>().ok()).ok_or_else(|| {
                        Error::InvalidInput(format!(
                            "layer entry {name:?}: bad PAX record {:?}",
                            String::from_utf8_lossy(record.key_bytes())
                        ))
                    })
                };
                match record.key_bytes() {
                    b"uid" => uid = number()?,
                    b"gid" => gid = number()?,
                    b"mtime" => {
                        if let Some(t) = std::str::from_utf8(value).ok().and_then(parse_pax_time) {
                            mtime = t;
                        }
                    }
                    key => {
                        if let Some(xattr) = key.strip_prefix(b"SCHILY.xattr.") {
                            if let Ok(xattr) = CString::new(xattr) {
                                xattrs.push((xattr, value.to_vec()));
                            }
                        }
                    }
                }
            }
        }
        if let Some((owner_uid, owner_gid)) = self.options.owner {
            (uid, gid) = (owner_uid.into(), owner_gid.into());
        }
        let id = |n: u64| {
            u32::try_from(n)
                .map_err(|_| Error::InvalidInput(format!("layer entry {name:?}: owner id {n} too large")))
        };
        let (mut uid, mut gid) = (id(uid)?, id(gid)?);
        if let Some(map) = &self.options.ids {
            let unmapped = |what: &str, n: u32| {
                Error::InvalidInput(format!(
                    "archive entry {name:?}: {what} {n} is not mapped in the container's user namespace"
                ))
            };
            uid = map.host_uid(uid).ok_or_else(|| unmapped("uid", uid))?;
            gid = map.host_gid(gid).ok_or_else(|| unmapped("gid", gid))?;
        }
        Ok(Meta { mode, uid, gid, mtime, xattrs })
    }

    /// Opens `path` (relative to the root) without leaving the root.
    fn open_beneath(&mut self, path: &[u8], flags: OFlag) -> nix::Result<OwnedFd> {
        if self.have_openat2 {
            let how = OpenHow::new().flags(flags | OFlag::O_CLOEXEC).resolve(
                if self.options.in_root {
                    ResolveFlag::RESOLVE_IN_ROOT
                } else {
                    ResolveFlag::RESOLVE_BENEATH
                } | ResolveFlag::RESOLVE_NO_MAGICLINKS,
            );
            // EAGAIN: a rename elsewhere on the system raced with a `..` step; the kernel asks
            // for a retry rather than risk a wrong answer.
            for _ in 0..16 {
                match openat2(self.root.as_fd(), path, how) {
                    Err(Errno::EAGAIN) => continue,
                    Err(Errno::ENOSYS) => {
                        self.have_openat2 = false;
                        break;
                    }
                    result => return result,
                }
            }
            if self.have_openat2 {
                return Err(Errno::EAGAIN);
            }
        }
        open_no_symlinks(self.root.as_fd(), path, flags)
    }

    /// The directory an entry goes in, creating missing parents (mode 0755, as tar does).
    fn parent_dir(&mut self, components: &[&[u8]], entry: &str) -> Result<Rc<OwnedFd>> {
        if components.is_empty() {
            return Ok(self.root.clone());
        }
        let key = join(components);
        if let Some(fd) = self.parents.get(&key) {
            return Ok(fd.clone());
        }
        match self.open_beneath(&key, OFlag::O_PATH | OFlag::O_DIRECTORY) {
            Ok(fd) => Ok(self.remember(key, fd)),
            Err(Errno::ENOENT | Errno::ENOTDIR) => self.create_parents(components, entry),
            Err(e) => Err(self.resolve_error(e, &key, entry)),
        }
    }

    fn remember(&mut self, key: Vec<u8>, fd: OwnedFd) -> Rc<OwnedFd> {
        if self.parents.len() >= PARENT_CACHE {
            self.parents.clear();
        }
        let fd = Rc::new(fd);
        self.parents.insert(key, fd.clone());
        fd
    }

    fn resolve_error(&self, e: Errno, path: &[u8], entry: &str) -> Error {
        match e {
            Errno::EXDEV | Errno::ELOOP => Error::UnsafeEntry {
                entry: entry.to_string(),
                reason: format!(
                    "path passes through a symlink that leads outside the target ({})",
                    String::from_utf8_lossy(path)
                ),
            },
            Errno::ENAMETOOLONG => Error::InvalidInput(format!("layer entry {entry:?}: path too long")),
            e => {
                io_err(format!("resolving {:?} for layer entry {entry:?}", String::from_utf8_lossy(path)), e)
            }
        }
    }

    /// Walks `components` from the root, creating what is missing.
    fn create_parents(&mut self, components: &[&[u8]], entry: &str) -> Result<Rc<OwnedFd>> {
        let mut current = self.root.clone();
        for i in 0..components.len() {
            let key = join(&components[..=i]);
            if let Some(fd) = self.parents.get(&key) {
                current = fd.clone();
                continue;
            }
            let name = c_string(components[i], entry)?;
            let shown = || String::from_utf8_lossy(&key).into_owned();
            let fd = match self.open_beneath(&key, OFlag::O_PATH | OFlag::O_DIRECTORY) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => {
                    match mkdirat(current.as_fd(), name.as_c_str(), Mode::from_bits_truncate(0o755)) {
                        Ok(()) => {}
                        Err(Errno::EEXIST) => {
                            return Err(Error::InvalidInput(format!(
                                "layer entry {entry:?}: {} is a symlink to a directory that does not exist",
                                shown()
                            )))
                        }
                        Err(e) => {
                            return Err(io_err(format!("creating {} for layer entry {entry:?}", shown()), e))
                        }
                    }
                    open_new_dir(current.as_fd(), &name, false)
                        .map_err(|e| io_err(format!("creating {} for layer entry {entry:?}", shown()), e))?
                }
                Err(Errno::ENOTDIR) => {
                    let stat = fstatat(current.as_fd(), name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
                        .map_err(|e| {
                            io_err(format!("inspecting {} for layer entry {entry:?}", shown()), e)
                        })?;
                    if !is_whiteout(&stat) {
                        if stat.st_mode & libc::S_IFMT == libc::S_IFLNK && !self.have_openat2 {
                            return Err(self.resolve_error(Errno::ELOOP, &key, entry));
                        }
                        return Err(Error::InvalidInput(format!(
                            "layer entry {entry:?}: {} is not a directory",
                            shown()
                        )));
                    }
                    // The layer deleted this path and then put things below it: the path is a
                    // new directory that shows nothing of the lower layers (OCI's rule), which
                    // is an opaque directory.
                    unlinkat(current.as_fd(), name.as_c_str(), UnlinkatFlags::NoRemoveDir)
                        .and_then(|()| {
                            mkdirat(current.as_fd(), name.as_c_str(), Mode::from_bits_truncate(0o755))
                        })
                        .and_then(|()| open_new_dir(current.as_fd(), &name, true))
                        .map_err(|e| {
                            io_err(format!("replacing the whiteout {} for layer entry {entry:?}", shown()), e)
                        })?
                }
                Err(e) => return Err(self.resolve_error(e, &key, entry)),
            };
            if self.options.durable {
                // Possibly created here: it and the directory holding it are flushed.
                self.touched_dirs.insert(join(&components[..i]));
                self.touched_dirs.insert(key.clone());
            }
            current = self.remember(key, fd);
        }
        Ok(current)
    }

    /// Clears the way for a new entry `name` in `dir` that could not be created because
    /// something is there: a later entry replaces an earlier one, as with tar.
    fn make_room(&mut self, dir: &OwnedFd, name: &CStr, new_is_dir: bool, entry: &str) -> Result<Room> {
        let stat = match fstatat(dir.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(Errno::ENOENT) => return Ok(Room::Free { was_whiteout: false }),
            Err(e) => return Err(io_err(format!("inspecting the existing {entry:?}"), e)),
        };
        if self.options.no_overwrite_dir_non_dir && is_dir(&stat) != new_is_dir {
            return Err(Error::InvalidInput(if new_is_dir {
                format!("cannot overwrite non-directory {entry:?} with directory")
            } else {
                format!("cannot overwrite directory {entry:?} with non-directory")
            }));
        }
        if is_dir(&stat) {
            if new_is_dir {
                return Ok(Room::KeptDir);
            }
            remove_tree_at(dir.as_fd(), name)
                .map_err(|e| io_err(format!("replacing the directory {entry:?}"), e))?;
        } else {
            unlinkat(dir.as_fd(), name, UnlinkatFlags::NoRemoveDir)
                .map_err(|e| io_err(format!("replacing the existing {entry:?}"), e))?;
        }
        // Cached directories may have been below what was just removed.
        self.parents.clear();
        Ok(Room::Free { was_whiteout: is_whiteout(&stat) })
    }

    /// Runs `create`; if the name is taken, makes room and runs it again.
    fn create_at(
        &mut self,
        dir: &OwnedFd,
        name: &CStr,
        entry: &str,
        mut create: impl FnMut() -> nix::Result<()>,
    ) -> Result<()> {
        match create() {
            Err(Errno::EEXIST) => {
                self.make_room(dir, name, false, entry)?;
                create().map_err(|e| io_err(format!("creating layer entry {entry:?}"), e))
            }
            result => result.map_err(|e| io_err(format!("creating layer entry {entry:?}"), e)),
        }
    }

    fn file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        dir: &OwnedFd,
        name: &CStr,
        meta: &Meta,
        shown: &str,
    ) -> Result<()> {
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mode = Mode::from_bits_truncate(0o600);
        let fd = match openat(dir.as_fd(), name, flags, mode) {
            Err(Errno::EEXIST) => {
                self.make_room(dir, name, false, shown)?;
                openat(dir.as_fd(), name, flags, mode)
            }
            result => result,
        }
        .map_err(|e| io_err(format!("creating layer entry {shown:?}"), e))?;
        let mut file = File::from(fd);
        loop {
            let n = entry.read(&mut self.buf).map_err(malformed)?;
            if n == 0 {
                break;
            }
            file.write_all(&self.buf[..n])
                .map_err(|e| Error::io(format!("writing layer entry {shown:?}"), e))?;
        }
        self.content_bytes += entry.size();
        self.chown(|uid, gid| fchown(file.as_fd(), uid, gid), meta, shown)?;
        fchmod(file.as_fd(), Mode::from_bits_truncate(meta.mode))
            .map_err(|e| io_err(format!("setting the mode of {shown:?}"), e))?;
        for (key, value) in &meta.xattrs {
            if wanted_xattr(key) {
                // SAFETY: valid fd, NUL-terminated name, value pointer and length from a slice.
                let rc = unsafe {
                    libc::fsetxattr(file.as_raw_fd(), key.as_ptr(), value.as_ptr().cast(), value.len(), 0)
                };
                xattr_result(rc, key, shown);
            }
        }
        futimens(file.as_fd(), &meta.mtime, &meta.mtime)
            .map_err(|e| io_err(format!("setting the times of {shown:?}"), e))?;
        if self.options.durable {
            // Start the writeback now, without waiting: by the time the batch is fsynced most of
            // it is on disk.
            // SAFETY: a valid fd; the call only starts writeback of its pages.
            unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
            self.unflushed.push(file);
            if self.unflushed.len() >= FLUSH_BATCH {
                self.flush_files()?;
            }
        }
        Ok(())
    }

    /// Waits for the batch's data, then fsyncs each file. The data is waited for first so that
    /// the fsyncs find it written and mostly only commit metadata, which one journal commit
    /// covers for all of them.
    fn flush_files(&mut self) -> Result<()> {
        let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER;
        for file in &self.unflushed {
            // SAFETY: a valid fd. Errors show again in the fsync below.
            unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, flags) };
        }
        // The fsyncs run side by side: where each one ends in a flush of the device's cache
        // (ext4 without a journal), concurrent flushes are merged by the block layer instead of
        // paid one after the other.
        let files = std::mem::take(&mut self.unflushed);
        let per_thread = files.len().div_ceil(FLUSH_THREADS).max(1);
        std::thread::scope(|scope| {
            let workers: Vec<_> = files
                .chunks(per_thread)
                .map(|chunk| scope.spawn(move || chunk.iter().try_for_each(File::sync_all)))
                .collect();
            workers.into_iter().try_for_each(|w| w.join().expect("fsync thread panicked"))
        })
        .map_err(|e| Error::io("flushing the unpacked layer to disk", e))?;
        Ok(())
    }

    fn directory(&mut self, dir: &OwnedFd, name: &CStr, key: Vec<u8>, meta: Meta, shown: &str) -> Result<()> {
        let mkdir = || mkdirat(dir.as_fd(), name, Mode::from_bits_truncate(0o700));
        let mut opaque = false;
        match mkdir() {
            Ok(()) => {}
            Err(Errno::EEXIST) => match self.make_room(dir, name, true, shown)? {
                Room::KeptDir => {}
                Room::Free { was_whiteout } => {
                    // Deleted and then re-created in the same layer: only this layer's content
                    // shows (OCI), so the directory is opaque.
                    opaque = was_whiteout;
                    mkdir().map_err(|e| io_err(format!("creating layer entry {shown:?}"), e))?;
                }
            },
            Err(e) => return Err(io_err(format!("creating layer entry {shown:?}"), e)),
        }
        let fd = open_new_dir(dir.as_fd(), name, opaque)
            .map_err(|e| io_err(format!("opening layer entry {shown:?}"), e))?;
        self.dir_attributes(&fd, key.clone(), meta, shown)?;
        self.remember(key, fd);
        Ok(())
    }

    fn root_dir(&mut self, meta: Meta, shown: &str) -> Result<()> {
        if self.options.durable {
            self.touched_dirs.insert(Vec::new());
        }
        let fd = openat(
            self.root.as_fd(),
            c".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_err("opening the target directory".to_string(), e))?;
        self.dir_attributes(&fd, Vec::new(), meta, shown)
    }

    /// Owner and xattrs now; mode and mtime once the directory's content is written.
    fn dir_attributes(&mut self, fd: &OwnedFd, key: Vec<u8>, meta: Meta, shown: &str) -> Result<()> {
        self.chown(|uid, gid| fchown(fd.as_fd(), uid, gid), &meta, shown)?;
        for (xattr, value) in &meta.xattrs {
            if wanted_xattr(xattr) {
                // SAFETY: as in `file`.
                let rc = unsafe {
                    libc::fsetxattr(fd.as_raw_fd(), xattr.as_ptr(), value.as_ptr().cast(), value.len(), 0)
                };
                xattr_result(rc, xattr, shown);
            }
        }
        let deferred = DirMeta { path: key, mode: meta.mode, mtime: meta.mtime };
        match self.dir_index.get(&deferred.path) {
            Some(&i) => self.dirs[i] = deferred,
            None => {
                self.dir_index.insert(deferred.path.clone(), self.dirs.len());
                self.dirs.push(deferred);
            }
        }
        Ok(())
    }

    fn symlink(&mut self, dir: &OwnedFd, name: &CStr, target: &CStr, meta: &Meta, shown: &str) -> Result<()> {
        self.create_at(dir, name, shown, || symlinkat(target, dir.as_fd(), name))?;
        self.content_bytes += target.to_bytes().len() as u64;
        self.path_attributes(dir, name, meta, shown, false)
    }

    fn node(
        &mut self,
        dir: &OwnedFd,
        name: &CStr,
        kind: SFlag,
        dev: libc::dev_t,
        meta: &Meta,
        shown: &str,
    ) -> Result<()> {
        let perm = Mode::from_bits_truncate(meta.mode & 0o777);
        self.create_at(dir, name, shown, || mknodat(dir.as_fd(), name, kind, perm, dev))?;
        self.path_attributes(dir, name, meta, shown, true)
    }

    /// Owner, mode, xattrs and times of a symlink or special file, by name in `dir`.
    fn path_attributes(
        &self,
        dir: &OwnedFd,
        name: &CStr,
        meta: &Meta,
        shown: &str,
        chmod: bool,
    ) -> Result<()> {
        self.chown(
            |uid, gid| fchownat(dir.as_fd(), name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW),
            meta,
            shown,
        )?;
        if chmod {
            // The name is a device or fifo just created (no symlink to follow), and the umask
            // applied at mknod must not decide the mode.
            fchmodat(dir.as_fd(), name, Mode::from_bits_truncate(meta.mode), FchmodatFlags::FollowSymlink)
                .map_err(|e| io_err(format!("setting the mode of {shown:?}"), e))?;
        }
        if meta.xattrs.iter().any(|(key, _)| wanted_xattr(key)) {
            // There is no fd to set xattrs on for a symlink or device, so the name is reached
            // through our own directory fd in /proc; lsetxattr does not follow the final name.
            let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
            path.extend_from_slice(name.to_bytes());
            if let Ok(path) = CString::new(path) {
                for (key, value) in meta.xattrs.iter().filter(|(key, _)| wanted_xattr(key)) {
                    // SAFETY: NUL-terminated path and name, value pointer and length from a slice.
                    let rc = unsafe {
                        libc::lsetxattr(path.as_ptr(), key.as_ptr(), value.as_ptr().cast(), value.len(), 0)
                    };
                    xattr_result(rc, key, shown);
                }
            }
        }
        utimensat(dir.as_fd(), name, &meta.mtime, &meta.mtime, UtimensatFlags::NoFollowSymlink)
            .map_err(|e| io_err(format!("setting the times of {shown:?}"), e))
    }

    fn hard_link(&mut self, dir: &OwnedFd, name: &CStr, target: &[Vec<u8>], shown: &str) -> Result<()> {
        let refuse = |reason: String| Error::UnsafeEntry { entry: shown.to_string(), reason };
        let target_shown = String::from_utf8_lossy(&target.join(&b'/')).into_owned();
        let (target_name, target_parent) = target.split_last().expect("checked non-empty");
        let target_parent: Vec<&[u8]> = target_parent.iter().map(Vec::as_slice).collect();
        let source_dir = if target_parent.is_empty() {
            self.root.clone()
        } else {
            let key = join(&target_parent);
            match self.parents.get(&key) {
                Some(fd) => fd.clone(),
                None => match self.open_beneath(&key, OFlag::O_PATH | OFlag::O_DIRECTORY) {
                    Ok(fd) => self.remember(key, fd),
                    Err(Errno::ENOENT | Errno::ENOTDIR) => {
                        return Err(refuse(format!("hard link target {target_shown:?} is not in the layer")))
                    }
                    Err(Errno::EXDEV | Errno::ELOOP) => {
                        return Err(refuse(format!(
                            "hard link target {target_shown:?} passes through a symlink that leads outside the target"
                        )))
                    }
                    Err(e) => return Err(self.resolve_error(e, &key, shown)),
                },
            }
        };
        let target_name = c_string(target_name, shown)?;
        let link = || linkat(source_dir.as_fd(), target_name.as_c_str(), dir.as_fd(), name, AtFlags::empty());
        let result = match link() {
            Err(Errno::EEXIST) => {
                self.make_room(dir, name, false, shown)?;
                link()
            }
            result => result,
        };
        match result {
            Ok(()) => Ok(()),
            Err(Errno::ENOENT) => {
                Err(refuse(format!("hard link target {target_shown:?} is not in the layer")))
            }
            Err(Errno::EPERM) => Err(refuse(format!("hard link target {target_shown:?} is a directory"))),
            Err(e) => Err(io_err(format!("creating the hard link {shown:?}"), e)),
        }
    }

    fn whiteout(&mut self, dir: &OwnedFd, hidden: &CStr, shown: &str) -> Result<()> {
        match fstatat(dir.as_fd(), hidden, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Err(Errno::ENOENT) => mknodat(dir.as_fd(), hidden, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
                .map_err(|e| io_err(format!("creating the whiteout {shown:?}"), e)),
            // The layer itself has a directory by that name: OCI says a whiteout hides only
            // lower layers' files, so the directory stays and hides everything below it.
            Ok(stat) if is_dir(&stat) => set_opaque(dir.as_fd(), hidden)
                .map_err(|e| io_err(format!("applying the whiteout {shown:?}"), e)),
            // Any other entry of this layer by that name already hides the lower path.
            Ok(_) => Ok(()),
            Err(e) => Err(io_err(format!("applying the whiteout {shown:?}"), e)),
        }
    }

    /// Changes the owner unless it already is the right one; without root, ownership is kept
    /// (best effort, as an unprivileged tar does).
    fn chown(
        &self,
        chown: impl FnOnce(Option<Uid>, Option<Gid>) -> nix::Result<()>,
        meta: &Meta,
        shown: &str,
    ) -> Result<()> {
        if meta.uid == self.euid && meta.gid == self.egid && !self.root_setgid {
            return Ok(());
        }
        match chown(Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid))) {
            Ok(()) => Ok(()),
            Err(Errno::EPERM | Errno::EINVAL) if self.euid != 0 => Ok(()),
            Err(e) => Err(io_err(format!("changing the owner of {shown:?}"), e)),
        }
    }

    /// Applies the directories' modes and mtimes, deepest last-seen first.
    fn finish(&mut self) -> Result<()> {
        let dirs = std::mem::take(&mut self.dirs);
        self.parents.clear();
        for dir in dirs.iter().rev() {
            let fd = if dir.path.is_empty() {
                openat(
                    self.root.as_fd(),
                    c".",
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
            } else {
                self.open_beneath(&dir.path, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW)
            };
            let fd = match fd {
                Ok(fd) => fd,
                // Replaced or removed by a later entry.
                Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP | Errno::EXDEV) => continue,
                Err(e) => return Err(io_err(format!("opening {:?}", String::from_utf8_lossy(&dir.path)), e)),
            };
            let shown = || String::from_utf8_lossy(&dir.path).into_owned();
            fchmod(fd.as_fd(), Mode::from_bits_truncate(dir.mode))
                .map_err(|e| io_err(format!("setting the mode of {:?}", shown()), e))?;
            futimens(fd.as_fd(), &dir.mtime, &dir.mtime)
                .map_err(|e| io_err(format!("setting the times of {:?}", shown()), e))?;
        }
        if self.options.durable {
            self.flush_files()?;
            self.flush_dirs()?;
        }
        Ok(())
    }

    /// Fsyncs every directory that changed: their entries and their own attributes.
    fn flush_dirs(&mut self) -> Result<()> {
        for path in std::mem::take(&mut self.touched_dirs) {
            let fd = if path.is_empty() {
                openat(
                    self.root.as_fd(),
                    c".",
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
            } else {
                self.open_beneath(&path, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW)
            };
            let fd = match fd {
                Ok(fd) => fd,
                // Replaced or removed by a later entry: its parent is in the set too.
                Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP | Errno::EXDEV) => continue,
                Err(e) => return Err(io_err(format!("opening {:?}", String::from_utf8_lossy(&path)), e)),
            };
            File::from(fd).sync_all().map_err(|e| Error::io("flushing the unpacked layer to disk", e))?;
        }
        Ok(())
    }
}

/// Opens a directory just created in `dir` (not following a symlink), makes its mode
/// independent of the umask for parents that tar creates implicitly, and marks it opaque if
/// asked.
fn open_new_dir(dir: BorrowedFd<'_>, name: &CStr, opaque: bool) -> nix::Result<OwnedFd> {
    let fd = openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    fchmod(fd.as_fd(), Mode::from_bits_truncate(0o755))?;
    if opaque {
        set_opaque(fd.as_fd(), c".")?;
    }
    Ok(fd)
}

/// Sets the overlayfs opaque marker on the directory `name` in `dir` (`.` for `dir` itself).
pub(crate) fn set_opaque(dir: BorrowedFd<'_>, name: &CStr) -> nix::Result<()> {
    let fd = openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let key = CString::new(OPAQUE_XATTR).expect("no NUL in a constant");
    // SAFETY: valid fd, NUL-terminated name, a 1-byte value.
    let rc = unsafe { libc::fsetxattr(fd.as_raw_fd(), key.as_ptr(), b"y".as_ptr().cast(), 1, 0) };
    Errno::result(rc).map(drop)
}

/// Xattrs worth restoring: security (file capabilities, SELinux labels), trusted and user ones.
/// overlayfs' own `trusted.overlay.*` are refused: in a layer they could redirect lookups or fake
/// whiteouts, and the OCI format has `.wh.` files for what they would mean.
fn wanted_xattr(name: &CStr) -> bool {
    let name = name.to_bytes();
    (name.starts_with(b"security.") || name.starts_with(b"trusted.") || name.starts_with(b"user."))
        && !name.starts_with(b"trusted.overlay.")
}

/// xattrs are best effort: the file system or our privileges may not allow a namespace.
fn xattr_result(rc: libc::c_int, key: &CStr, entry: &str) {
    if rc != 0 {
        tracing::debug!(entry, xattr = ?key, error = %Errno::last(), "xattr not applied");
    }
}

/// `"1700000000.123456789"` (PAX time: seconds, optional fraction, maybe negative).
fn parse_pax_time(s: &str) -> Option<TimeSpec> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let nanos: i64 = if digits.is_empty() { 0 } else { format!("{digits:0<9}").parse().ok()? };
    // In "-1.5" the fraction counts backwards too: -2 s + 0.5 s.
    Some(if s.starts_with('-') && nanos > 0 {
        TimeSpec::new(secs - 1, 1_000_000_000 - nanos)
    } else {
        TimeSpec::new(secs, nanos)
    })
}

/// Without openat2: walks the path one component at a time with `O_NOFOLLOW`, so any symlink
/// on the way is refused (stricter than `RESOLVE_BENEATH`, never looser).
fn open_no_symlinks(root: BorrowedFd<'_>, path: &[u8], flags: OFlag) -> nix::Result<OwnedFd> {
    let components: Vec<&[u8]> = path.split(|b| *b == b'/').filter(|c| !c.is_empty()).collect();
    let mut current: Option<OwnedFd> = None;
    for (i, component) in components.iter().enumerate() {
        if *component == b".." {
            return Err(Errno::EXDEV);
        }
        let last = i + 1 == components.len();
        let step_flags = if last {
            flags | OFlag::O_NOFOLLOW
        } else {
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW
        };
        let dir = current.as_ref().map_or(root, |fd| fd.as_fd());
        let name = CString::new(*component).map_err(|_| Errno::EINVAL)?;
        match openat(dir, name.as_c_str(), step_flags | OFlag::O_CLOEXEC, Mode::empty()) {
            Ok(fd) => current = Some(fd),
            Err(Errno::ENOTDIR) => {
                let stat = fstatat(dir, name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW)?;
                return Err(if stat.st_mode & libc::S_IFMT == libc::S_IFLNK {
                    Errno::ELOOP
                } else {
                    Errno::ENOTDIR
                });
            }
            Err(e) => return Err(e),
        }
    }
    match current {
        Some(fd) => Ok(fd),
        None => openat(root, c".", flags | OFlag::O_CLOEXEC, Mode::empty()),
    }
}

/// Removes `name` in `dir` and, if it is a directory, everything below it, without following
/// symlinks anywhere.
pub(crate) fn remove_tree_at(dir: BorrowedFd<'_>, name: &CStr) -> nix::Result<()> {
    match unlinkat(dir, name, UnlinkatFlags::RemoveDir) {
        Ok(()) => return Ok(()),
        Err(Errno::ENOTDIR) => return unlinkat(dir, name, UnlinkatFlags::NoRemoveDir),
        Err(Errno::ENOTEMPTY | Errno::EEXIST) => {}
        Err(e) => return Err(e),
    }
    let fd = openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut listing = nix::dir::Dir::from_fd(fd)?;
    let mut children = Vec::new();
    for child in listing.iter() {
        let child = child?;
        let child_name = child.file_name();
        if child_name != c"." && child_name != c".." {
            children.push((child_name.to_owned(), child.file_type()));
        }
    }
    for (child, file_type) in children {
        match file_type {
            Some(nix::dir::Type::Directory) | None => remove_tree_at(listing.as_fd(), &child)?,
            Some(_) => match unlinkat(listing.as_fd(), child.as_c_str(), UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(e),
            },
        }
    }
    unlinkat(dir, name, UnlinkatFlags::RemoveDir)
}
