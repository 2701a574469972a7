//! `docker cp` and `docker export`: a path of a container's file system as a tar, a tar
//! extracted into it, and the whole file system as a tar.
//!
//! A running container can change its files while they are read, so nothing here walks the
//! container's tree by path: the path asked for is resolved once inside the root filesystem
//! (`openat2` with `RESOLVE_IN_ROOT`: symlinks are followed as the container would follow them,
//! never out of it), and the walk below it goes from directory descriptor to directory
//! descriptor without following any symlink. Extraction goes through the layer extractor
//! (`layer::extract_archive`), which resolves every entry beneath the destination directory.
//!
//! Paths inside the container's volumes and bind mounts are read from and written to where the
//! mount's data lives (the volume's `_data`, the bind's host path), as Docker does; the rootfs
//! below a mount point is not what the container sees. tmpfs mounts live in the container's
//! mount namespace only and are refused.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use berth_types::files::PathStat;
use berth_types::volume::MountType;
use chrono::{DateTime, SecondsFormat, Utc};
use nix::fcntl::{openat, readlinkat, OFlag};
use nix::sys::stat::{fstat, FileStat, Mode};

use super::{ensure_mounted, ContainerRecord};
use crate::error::{Error, Result};
use crate::layer::{self, UnpackOptions};
use crate::runtime::userns::IdMap;
use crate::{Engine, EngineInner};

/// A path of a container, resolved and opened, ready to be written as a tar
/// ([`ArchiveSource::write_to`]). Holding it keeps what it names reachable even if the
/// container renames or removes it meanwhile.
pub struct ArchiveSource {
    /// `O_PATH` descriptor of the path (of the symlink itself when it was not followed).
    fd: OwnedFd,
    /// The name of the top entry: the path's base name, or `.` for `dir/.`.
    name: String,
    stat: PathStat,
    /// A remapped container's mapping: the tar holds the container's ids, not the host's.
    ids: Option<IdMap>,
}

impl ArchiveSource {
    pub fn stat(&self) -> &PathStat {
        &self.stat
    }

    /// Streams the tar into `out`, then shuts `out` down.
    pub async fn write_to(
        self,
        engine: &Engine,
        out: impl tokio::io::AsyncWrite + Send + Unpin + 'static,
    ) -> Result<()> {
        let bridge = tokio_util::io::SyncIoBridge::new(out);
        engine
            .blocking(move |_| {
                let mut walker = TarWalker::new(BufWriter::with_capacity(1 << 20, bridge), self.ids);
                walker.append(self.fd, &self.name)?;
                finish_tar(walker)
            })
            .await
    }
}

/// The whole root filesystem of a container as a tar (`docker export`), opened and ready.
pub struct ExportSource {
    root: OwnedFd,
    /// As [`ArchiveSource`]'s: the container's ids in the tar.
    ids: Option<IdMap>,
}

impl ExportSource {
    /// Streams the tar into `out`, then shuts `out` down.
    pub async fn write_to(
        self,
        engine: &Engine,
        out: impl tokio::io::AsyncWrite + Send + Unpin + 'static,
    ) -> Result<()> {
        let bridge = tokio_util::io::SyncIoBridge::new(out);
        engine
            .blocking(move |_| {
                let mut walker = TarWalker::new(BufWriter::with_capacity(1 << 20, bridge), self.ids);
                walker.append_children(self.root.as_fd(), "")?;
                finish_tar(walker)
            })
            .await
    }
}

/// Ends the tar and shuts the stream down, so that the reader sees a clean end.
fn finish_tar<A: tokio::io::AsyncWrite + Unpin>(
    walker: TarWalker<BufWriter<tokio_util::io::SyncIoBridge<A>>>,
) -> Result<()> {
    let werr = |e: io::Error| Error::io("writing the archive", e);
    let buffered = walker.tar.into_inner().map_err(werr)?;
    let mut bridge = buffered.into_inner().map_err(|e| werr(e.into_error()))?;
    bridge.shutdown().map_err(werr)
}

/// How the tar written to a container is extracted (`PUT .../archive`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ExtractOptions {
    /// Refuse to replace a directory with a non-directory and the other way round.
    pub no_overwrite_dir_non_dir: bool,
    /// `cp -a`: files get the container user's uid and gid (when it has a user).
    pub copy_uid_gid: bool,
}

impl Engine {
    /// `HEAD /containers/{id}/archive`: what `path` is in the container.
    pub async fn stat_container_path(&self, name: &str, path: &str) -> Result<PathStat> {
        Ok(self.archive_container_path(name, path).await?.stat)
    }

    /// `GET /containers/{id}/archive`: `path` of the container, as a tar of its base name (a
    /// directory with everything below it; `dir/.` names the directory's contents).
    pub async fn archive_container_path(&self, name: &str, path: &str) -> Result<ArchiveSource> {
        let record = self.inner.containers.resolve(name)?;
        let path = path.to_string();
        self.blocking(move |inner| open_source(inner, &record, &path)).await
    }

    /// `PUT /containers/{id}/archive`: extracts the tar `body` into the directory `path` of the
    /// container (which must exist).
    pub async fn extract_into_container(
        &self,
        name: &str,
        path: &str,
        body: impl tokio::io::AsyncRead + Send + Unpin + 'static,
        options: ExtractOptions,
    ) -> Result<()> {
        let record = self.inner.containers.resolve(name)?;
        let path = path.to_string();
        let body = tokio_util::io::SyncIoBridge::new(body);
        self.blocking(move |inner| extract(inner, &record, &path, body, options)).await
    }

    /// `docker export`: the container's root filesystem (its volumes and mounts left out).
    pub async fn export_container(&self, name: &str) -> Result<ExportSource> {
        let record = self.inner.containers.resolve(name)?;
        self.blocking(move |inner| {
            ensure_mounted(inner, &record.id)?;
            let rootfs = inner.containers.paths(&record.id).rootfs;
            let root = nix::fcntl::open(
                &rootfs,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| Error::io(format!("opening {}", rootfs.display()), e.into()))?;
            let ids = inner.snapshots.writable_idmap(&record.id)?;
            Ok(ExportSource { root, ids })
        })
        .await
    }
}

/// Where a container path lives on the host: the directory it is resolved in and the path
/// relative to it.
struct Located {
    root: PathBuf,
    rel: PathBuf,
    /// The mount it is in is read-only (or it is the rootfs of a `--read-only` container).
    read_only: bool,
    /// In a volume or bind mount, not the container's own file system.
    in_mount: bool,
}

/// `path` as the container sees it: symlinks in it resolved inside the root filesystem (the
/// last component only when `follow_last`), then matched against the container's mounts.
fn locate(inner: &EngineInner, record: &ContainerRecord, path: &str, follow_last: bool) -> Result<Located> {
    if !path.starts_with('/') {
        return Err(Error::InvalidInput(format!("path {path:?} is not absolute")));
    }
    if path.contains('\0') {
        return Err(Error::InvalidInput("the path holds a NUL byte".into()));
    }
    ensure_mounted(inner, &record.id)?;
    let rootfs = inner.containers.paths(&record.id).rootfs;
    let clean = crate::fsutil::clean_relative(Path::new(path));
    let resolved = match (follow_last, clean.file_name()) {
        (false, Some(base)) => {
            let parent = clean.parent().unwrap_or(Path::new(""));
            crate::runtime::builtin::resolve_in_root(&rootfs, &Path::new("/").join(parent))?.join(base)
        }
        _ => crate::runtime::builtin::resolve_in_root(&rootfs, &Path::new("/").join(&clean))?,
    };
    // The innermost mount whose target holds the path.
    let mount = record
        .config
        .mounts
        .iter()
        .filter(|m| {
            let target = crate::fsutil::clean_relative(Path::new(&m.target));
            resolved.starts_with(&target)
        })
        .max_by_key(|m| crate::fsutil::clean_relative(Path::new(&m.target)).components().count());
    let Some(mount) = mount else {
        return Ok(Located {
            root: rootfs,
            rel: resolved,
            read_only: record.config.read_only,
            in_mount: false,
        });
    };
    let target = crate::fsutil::clean_relative(Path::new(&mount.target));
    let rel = resolved.strip_prefix(&target).expect("filtered on the prefix").to_path_buf();
    let root = match mount.mount_type {
        MountType::Volume => inner.volumes.data_path(&mount.source),
        MountType::Bind => PathBuf::from(&mount.source),
        MountType::Tmpfs => {
            return Err(Error::InvalidInput(format!(
                "{path} is on the tmpfs mounted at {}, which berth cannot copy from or to",
                mount.target
            )))
        }
    };
    Ok(Located { root, rel, read_only: mount.read_only, in_mount: true })
}

/// Opens `rel` inside `root` (`RESOLVE_IN_ROOT`: symlinks, absolute or `..`, stay inside),
/// not following the last component unless `follow_last`.
fn open_in_root(root: &Path, rel: &Path, flags: OFlag, follow_last: bool) -> io::Result<OwnedFd> {
    let root_fd =
        nix::fcntl::open(root, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())?;
    let rel = if rel.as_os_str().is_empty() { Path::new(".") } else { rel };
    let mut flags = flags | OFlag::O_CLOEXEC;
    if !follow_last {
        flags |= OFlag::O_NOFOLLOW;
    }
    let how = nix::fcntl::OpenHow::new()
        .flags(flags)
        .resolve(nix::fcntl::ResolveFlag::RESOLVE_IN_ROOT | nix::fcntl::ResolveFlag::RESOLVE_NO_MAGICLINKS);
    loop {
        match nix::fcntl::openat2(root_fd.as_fd(), rel, how) {
            Err(nix::errno::Errno::EAGAIN) => continue,
            result => return result.map_err(io::Error::from),
        }
    }
}

/// Docker follows the last component when the path ends in `/` or `/.`.
fn follows_last(path: &str) -> bool {
    path.ends_with('/') || path.ends_with("/.")
}

/// A path that cannot be opened: bad input when the path itself is the reason.
fn open_error(e: io::Error, path: &str, record: &ContainerRecord) -> Error {
    match e.raw_os_error() {
        Some(libc::ENAMETOOLONG) => Error::InvalidInput(format!("path too long: {path}")),
        Some(libc::ELOOP) => Error::InvalidInput(format!("too many levels of symbolic links: {path}")),
        _ => Error::io(format!("opening {path} in container {}", record.name), e),
    }
}

fn not_found(path: &str, record: &ContainerRecord) -> Error {
    Error::PathNotFound { path: path.to_string(), container: record.name.clone() }
}

fn open_source(inner: &EngineInner, record: &ContainerRecord, path: &str) -> Result<ArchiveSource> {
    let follow = follows_last(path);
    let located = locate(inner, record, path, follow)?;
    let fd = match open_in_root(&located.root, &located.rel, OFlag::O_PATH, follow) {
        Ok(fd) => fd,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
            return Err(not_found(path, record))
        }
        Err(e) => return Err(open_error(e, path, record)),
    };
    let st = fstat(&fd)
        .map_err(|e| Error::io(format!("reading {path} in container {}", record.name), e.into()))?;
    let name = if path.ends_with("/.") {
        ".".to_string()
    } else {
        Path::new(path.trim_end_matches('/'))
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/".to_string())
    };
    let link_target = if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
        // Where the link leads inside the container, as Docker's stat shows it.
        let rootfs = inner.containers.paths(&record.id).rootfs;
        let clean = crate::fsutil::clean_relative(Path::new(path));
        let resolved = crate::runtime::builtin::resolve_in_root(&rootfs, &Path::new("/").join(clean))?;
        format!("/{}", resolved.display())
    } else {
        String::new()
    };
    let stat = PathStat {
        name,
        size: st.st_size.max(0) as u64,
        mode: st.st_mode,
        mtime: time_of(st.st_mtime, st.st_mtime_nsec),
        link_target,
    };
    let ids = inner.snapshots.writable_idmap(&record.id)?;
    Ok(ArchiveSource { fd, name: stat.name.clone(), stat, ids })
}

fn time_of(secs: i64, nanos: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, nanos.clamp(0, 999_999_999) as u32)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn extract(
    inner: &EngineInner,
    record: &ContainerRecord,
    path: &str,
    body: impl Read,
    options: ExtractOptions,
) -> Result<()> {
    // The destination is a directory: its last component is followed (a link to a directory
    // is where the files go, as Docker resolves it).
    let located = locate(inner, record, path, true)?;
    if located.read_only {
        return Err(Error::Forbidden(
            if located.in_mount {
                "mounted volume is marked read-only"
            } else {
                "container rootfs is marked read-only"
            }
            .to_string(),
        ));
    }
    let dir = match open_in_root(&located.root, &located.rel, OFlag::O_PATH | OFlag::O_DIRECTORY, true) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Err(not_found(path, record)),
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
            return Err(Error::InvalidInput(format!("extraction point is not a directory: {path}")))
        }
        Err(e) => return Err(open_error(e, path, record)),
    };
    let owner = if options.copy_uid_gid { container_owner(inner, record)? } else { None };
    let unpack = UnpackOptions {
        allow_device_nodes: false,
        plain: true,
        in_root: true,
        no_overwrite_dir_non_dir: options.no_overwrite_dir_non_dir,
        owner,
        // The archive's ids are the container's (as dockerd maps them, binds included).
        ids: inner.snapshots.writable_idmap(&record.id)?,
        // As `docker cp`: the files are as durable as anything else a container writes.
        durable: false,
    };
    // The resolved directory by its descriptor: nothing can move it between here and there.
    let target = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    layer::extract_archive(body, &target, unpack)?;
    tracing::debug!(container = %record.id, path, "archive extracted");
    Ok(())
}

/// The uid and gid of the container's user (`cp -a`), looked up in its own /etc/passwd and
/// /etc/group; `None` when it runs as the image's default (root, for Docker's cp).
fn container_owner(inner: &EngineInner, record: &ContainerRecord) -> Result<Option<(u32, u32)>> {
    let Some(user) = record.config.user.as_deref().filter(|u| !u.is_empty()) else { return Ok(None) };
    let rootfs = inner.containers.paths(&record.id).rootfs;
    let user = crate::runtime::spec::resolve_user(&rootfs, user)?;
    Ok(Some((user.uid(), user.gid())))
}

/// Writes a tree to a tar by descriptors: no path is looked up twice and no symlink followed.
struct TarWalker<W: Write> {
    tar: tar::Builder<W>,
    /// Host ids are written as the container's of this mapping.
    ids: Option<IdMap>,
    /// Files with more than one link already written: (device, inode) → entry name.
    links: HashMap<(u64, u64), String>,
}

impl<W: Write> TarWalker<W> {
    fn new(out: W, ids: Option<IdMap>) -> Self {
        let mut tar = tar::Builder::new(out);
        tar.follow_symlinks(false);
        TarWalker { tar, ids, links: HashMap::new() }
    }

    /// Appends the file `fd` (`O_PATH`, not followed) as `name`, and what a directory holds.
    fn append(&mut self, fd: OwnedFd, name: &str) -> Result<()> {
        let werr = |e: io::Error| Error::io(format!("archiving {name}"), e);
        let st = fstat(&fd).map_err(|e| werr(e.into()))?;
        let mut h = header(&st, self.ids.as_ref());
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => {
                h.set_entry_type(tar::EntryType::Directory);
                let shown = if name.ends_with('/') { name.to_string() } else { format!("{name}/") };
                append_named(&mut self.tar, &mut h, &shown, io::empty()).map_err(werr)?;
                let dir = openat(
                    fd.as_fd(),
                    c".",
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| werr(e.into()))?;
                // The root's entries are named `/bin`, ... (Docker's are).
                let prefix = if name == "/" { "/" } else { name.trim_end_matches('/') };
                self.append_children(dir.as_fd(), prefix)?;
            }
            libc::S_IFREG => {
                let key = (st.st_dev, st.st_ino);
                if st.st_nlink > 1 {
                    if let Some(first) = self.links.get(&key) {
                        h.set_entry_type(tar::EntryType::Link);
                        h.set_size(0);
                        let first = first.clone();
                        return append_link_named(&mut self.tar, &mut h, name, Path::new(&first))
                            .map_err(werr);
                    }
                    self.links.insert(key, name.to_string());
                }
                // Reopened for reading through its own descriptor: the same file, whatever
                // happened to its name since.
                let file = File::open(format!("/proc/self/fd/{}", fd.as_raw_fd())).map_err(werr)?;
                let size = st.st_size.max(0) as u64;
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(size);
                // A file that shrinks while it is read is padded: the header has promised its size.
                let data = file.take(size).chain(io::repeat(0)).take(size);
                append_named(&mut self.tar, &mut h, name, data).map_err(werr)?;
            }
            libc::S_IFLNK => {
                let target = readlinkat(fd.as_fd(), c"").map_err(|e| werr(e.into()))?;
                h.set_entry_type(tar::EntryType::Symlink);
                append_link_named(&mut self.tar, &mut h, name, Path::new(&target)).map_err(werr)?;
            }
            kind @ (libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO) => {
                h.set_entry_type(match kind {
                    libc::S_IFCHR => tar::EntryType::Char,
                    libc::S_IFBLK => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                });
                h.set_device_major(libc::major(st.st_rdev)).map_err(werr)?;
                h.set_device_minor(libc::minor(st.st_rdev)).map_err(werr)?;
                append_named(&mut self.tar, &mut h, name, io::empty()).map_err(werr)?;
            }
            // Sockets are not archived (neither does Docker).
            _ => {}
        }
        Ok(())
    }

    /// Appends every entry of the open directory `dir`, named `prefix/<name>`.
    fn append_children(&mut self, dir: BorrowedFd<'_>, prefix: &str) -> Result<()> {
        let werr = |e: nix::errno::Errno| Error::io(format!("listing {prefix}/"), e.into());
        let listing =
            openat(dir, c".", OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
                .map_err(werr)?;
        let mut listing = nix::dir::Dir::from_fd(listing).map_err(werr)?;
        let mut names: Vec<CString> = Vec::new();
        for entry in listing.iter() {
            let entry = entry.map_err(werr)?;
            let n = entry.file_name();
            if n != c"." && n != c".." {
                names.push(n.to_owned());
            }
        }
        names.sort();
        for child in names {
            let fd = match openat(
                listing.as_fd(),
                child.as_c_str(),
                OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                // Removed while the directory was read.
                Err(nix::errno::Errno::ENOENT) => continue,
                Err(e) => return Err(werr(e)),
            };
            let shown = name_of(&child);
            let name = match prefix {
                "" => shown,
                "/" => format!("/{shown}"),
                _ => format!("{prefix}/{shown}"),
            };
            self.append(fd, &name)?;
        }
        Ok(())
    }
}

/// Appends an entry named exactly `name`. The tar crate drops a leading `./` from names (and
/// refuses a leading `/`), but the entries of a `dir/.` archive keep it, and those of `/` are
/// absolute, as Docker's are: the docker CLI renames entries by replacing that prefix.
fn append_named<W: Write>(
    tar: &mut tar::Builder<W>,
    h: &mut tar::Header,
    name: &str,
    data: impl Read,
) -> io::Result<()> {
    if !name.starts_with("./") && !name.starts_with('/') {
        return tar.append_data(h, name, data);
    }
    let bytes = name.as_bytes();
    if bytes.len() > 100 {
        // GNU's long name record, as the tar crate writes it for long names.
        let mut long = tar::Header::new_gnu();
        long.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        long.set_mode(0o644);
        long.set_mtime(0);
        long.set_entry_type(tar::EntryType::GNULongName);
        long.set_size(bytes.len() as u64 + 1);
        long.set_cksum();
        tar.append(&long, bytes.chain(&[0u8][..]))?;
    }
    let raw = &mut h.as_old_mut().name;
    raw.fill(0);
    let n = bytes.len().min(raw.len());
    raw[..n].copy_from_slice(&bytes[..n]);
    h.set_cksum();
    tar.append(h, data)
}

/// [`append_named`] for symlinks and hard links.
fn append_link_named<W: Write>(
    tar: &mut tar::Builder<W>,
    h: &mut tar::Header,
    name: &str,
    target: &Path,
) -> io::Result<()> {
    if (name.starts_with("./") || name.starts_with('/')) && h.set_link_name(target).is_ok() {
        return append_named(tar, h, name, io::empty());
    }
    tar.append_link(h, name, target)
}

fn name_of(name: &CStr) -> String {
    String::from_utf8_lossy(name.to_bytes()).into_owned()
}

/// With `ids`, the file's host ids are written as the container's.
fn header(st: &FileStat, ids: Option<&IdMap>) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(ids.map_or(st.st_uid, |m| m.container_uid(st.st_uid)).into());
    h.set_gid(ids.map_or(st.st_gid, |m| m.container_gid(st.st_gid)).into());
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    h
}
