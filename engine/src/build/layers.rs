//! A build step's layer: what the step changed, as an OCI layer tar (gzip) in the content store
//! and as an unpacked layer in the snapshot store.
//!
//! With the overlay snapshotter the step's upper directory *is* the diff: new and changed files,
//! whiteouts (0/0 character devices) and opaque directories (`trusted.overlay.opaque`), which
//! become OCI `.wh.` entries in the tar; and the directory itself is adopted as the unpacked
//! layer, so nothing is unpacked again. With the copy snapshotter the step's tree is compared
//! with the merged view of the layers below, and the tar is unpacked like any pulled layer.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use oci_spec::image::Digest;

use crate::digest::Sha256Writer;
use crate::error::{Error, IoContext, Result};
use crate::layer::{Compression, OPAQUE_XATTR};
use crate::snapshot::SnapshotterKind;
use crate::EngineInner;

/// One entry of the merged view of some layers: where its bytes are and what it is.
#[derive(Debug, Clone)]
pub struct TreeEntry {
    /// The file in the layer that provides it.
    pub host: PathBuf,
    pub meta: fs::Metadata,
}

/// The merged view of unpacked layers (bottom first), as overlayfs would show them: path
/// (relative, `a/b`) → entry.
pub fn merged_view(layer_dirs: &[PathBuf]) -> Result<BTreeMap<String, TreeEntry>> {
    let mut map = BTreeMap::new();
    for dir in layer_dirs {
        if is_opaque(dir) {
            map.clear();
        }
        apply_dir(dir, "", &mut map)?;
    }
    Ok(map)
}

fn remove_under(map: &mut BTreeMap<String, TreeEntry>, path: &str) {
    let prefix = if path.is_empty() { String::new() } else { format!("{path}/") };
    let keys: Vec<String> = map
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(k, _)| k.clone())
        .collect();
    for k in keys {
        map.remove(&k);
    }
}

fn is_opaque(path: &Path) -> bool {
    matches!(xattr_get(path, OPAQUE_XATTR), Some(v) if v == b"y")
}

fn xattr_get(path: &Path, name: &str) -> Option<Vec<u8>> {
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let c_name = std::ffi::CString::new(name).ok()?;
    let mut buf = [0u8; 16];
    // SAFETY: valid NUL-terminated strings and a buffer of the given length.
    let n = unsafe { libc::lgetxattr(c_path.as_ptr(), c_name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (n >= 0).then(|| buf[..n as usize].to_vec())
}

fn is_whiteout(meta: &fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

fn join(rel: &str, name: &OsStr) -> String {
    let name = name.to_string_lossy();
    if rel.is_empty() {
        name.into_owned()
    } else {
        format!("{rel}/{name}")
    }
}

fn sorted_children(dir: &Path) -> Result<Vec<std::ffi::OsString>> {
    let mut names = fs::read_dir(dir)
        .context(|| format!("listing {}", dir.display()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<Vec<_>>>()
        .context(|| format!("listing {}", dir.display()))?;
    names.sort();
    Ok(names)
}

fn apply_dir(dir: &Path, rel: &str, map: &mut BTreeMap<String, TreeEntry>) -> Result<()> {
    for name in sorted_children(dir)? {
        let host = dir.join(&name);
        let path = join(rel, &name);
        let meta = fs::symlink_metadata(&host).context(|| format!("reading {}", host.display()))?;
        if is_whiteout(&meta) {
            map.remove(&path);
            remove_under(map, &path);
            continue;
        }
        if meta.is_dir() {
            let was_dir = map.get(&path).is_some_and(|e| e.meta.is_dir());
            if !was_dir || is_opaque(&host) {
                remove_under(map, &path);
            }
            map.insert(path.clone(), TreeEntry { host: host.clone(), meta });
            apply_dir(&host, &path, map)?;
        } else {
            remove_under(map, &path);
            map.insert(path, TreeEntry { host, meta });
        }
    }
    Ok(())
}

/// One change of a step, in tar order.
enum Change {
    /// A file, directory or link as it now is (at `host`).
    Put { host: PathBuf, meta: fs::Metadata },
    /// A deleted path (`.wh.<name>`).
    Whiteout,
    /// A directory whose lower contents are hidden (`<dir>/.wh..wh..opq`), after its own entry.
    Opaque,
}

/// The changes recorded in an overlay upper directory.
fn upper_changes(upper: &Path) -> Result<Vec<(String, Change)>> {
    let mut out = Vec::new();
    walk_upper(upper, "", &mut out)?;
    Ok(out)
}

fn walk_upper(dir: &Path, rel: &str, out: &mut Vec<(String, Change)>) -> Result<()> {
    for name in sorted_children(dir)? {
        let host = dir.join(&name);
        let path = join(rel, &name);
        let meta = fs::symlink_metadata(&host).context(|| format!("reading {}", host.display()))?;
        if is_whiteout(&meta) {
            out.push((path, Change::Whiteout));
        } else if meta.is_dir() {
            let opaque = is_opaque(&host);
            out.push((path.clone(), Change::Put { host: host.clone(), meta }));
            if opaque {
                out.push((path.clone(), Change::Opaque));
            }
            walk_upper(&host, &path, out)?;
        } else {
            out.push((path, Change::Put { host, meta }));
        }
    }
    Ok(())
}

/// The changes of a copy-snapshotter tree against the merged view of its layers.
fn tree_changes(tree: &Path, base: &BTreeMap<String, TreeEntry>) -> Result<Vec<(String, Change)>> {
    let mut now = BTreeMap::new();
    apply_dir(tree, "", &mut now)?;
    let mut out = Vec::new();
    // Deletions first in path order (only the topmost deleted path is recorded), then what is
    // new or changed. A tar may list them in any order; the extraction applies whiteouts as they
    // come, and no whiteout names a path that is also put.
    let mut deleted_prefix: Option<String> = None;
    for (path, old) in base {
        if let Some(p) = &deleted_prefix {
            if path.starts_with(&format!("{p}/")) {
                continue;
            }
        }
        let replaced = match now.get(path) {
            None => true,
            // A directory that became something else (or the other way round): the old one goes.
            Some(new) => new.meta.is_dir() != old.meta.is_dir() && old.meta.is_dir(),
        };
        if replaced {
            deleted_prefix = Some(path.clone());
            out.push((path.clone(), Change::Whiteout));
        }
    }
    for (path, new) in now {
        let changed = match base.get(&path) {
            None => true,
            Some(old) => differs(&old.meta, &new.meta, &old.host, &new.host),
        };
        if changed {
            out.push((path, Change::Put { host: new.host, meta: new.meta }));
        }
    }
    Ok(out)
}

fn differs(a: &fs::Metadata, b: &fs::Metadata, ha: &Path, hb: &Path) -> bool {
    if a.mode() != b.mode() || a.uid() != b.uid() || a.gid() != b.gid() {
        return true;
    }
    if a.is_dir() {
        return a.mtime() != b.mtime() || a.mtime_nsec() != b.mtime_nsec();
    }
    if a.size() != b.size() || a.mtime() != b.mtime() || a.mtime_nsec() != b.mtime_nsec() {
        return true;
    }
    if a.file_type().is_symlink() {
        return fs::read_link(ha).ok() != fs::read_link(hb).ok();
    }
    false
}

/// A layer made by a step.
#[derive(Debug, Clone)]
pub struct MadeLayer {
    pub diff_id: Digest,
    pub blob: Digest,
    pub blob_size: u64,
    pub media_type: String,
}

/// Makes the layer of the writable layer `key` (already unmounted) and removes the writable
/// layer. `base_layers` are the layers it stood on, bottom first.
pub fn commit_writable(inner: &EngineInner, key: &str, base_layers: &[Digest]) -> Result<MadeLayer> {
    let changes_dir = inner.snapshots.writable_changes_path(key)?;
    let overlay = changes_dir.file_name() == Some(OsStr::new("upper"));
    let changes = if overlay {
        upper_changes(&changes_dir)?
    } else {
        let dirs: Vec<PathBuf> = base_layers.iter().map(|d| inner.snapshots.layer_path(d)).collect();
        tree_changes(&changes_dir, &merged_view(&dirs)?)?
    };
    let (made, content_bytes, tar_bytes) = write_layer_blob(inner, &changes, None)?;
    if overlay && inner.snapshots.kind() == SnapshotterKind::Overlay {
        strip_overlay_xattrs(&changes_dir)?;
        inner.snapshots.adopt_layer(&changes_dir, &made.diff_id, content_bytes, tar_bytes)?;
    } else if !inner.snapshots.has_layer(&made.diff_id) {
        let blob = inner.content.open_blob(&made.blob)?;
        inner.snapshots.unpack_layer(io::BufReader::new(blob), Compression::Gzip, Some(&made.diff_id))?;
    }
    inner.snapshots.remove_writable(key)?;
    Ok(made)
}

/// overlayfs bookkeeping (`origin`, `impure`, ...) means nothing once the directory is a lower
/// layer of other mounts; only the opaque marker and whiteouts carry meaning.
fn strip_overlay_xattrs(dir: &Path) -> Result<()> {
    fn strip(path: &Path) {
        let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else { return };
        let mut buf = vec![0u8; 4096];
        // SAFETY: valid path and buffer.
        let n = unsafe { libc::llistxattr(c_path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            return;
        }
        for name in buf[..n as usize].split(|&b| b == 0).filter(|n| !n.is_empty()) {
            if name.starts_with(b"trusted.overlay.") && name != OPAQUE_XATTR.as_bytes() {
                if let Ok(c_name) = std::ffi::CString::new(name) {
                    // SAFETY: valid strings.
                    unsafe { libc::lremovexattr(c_path.as_ptr(), c_name.as_ptr()) };
                }
            }
        }
    }
    fn walk(dir: &Path) -> Result<()> {
        strip(dir);
        for entry in fs::read_dir(dir).context(|| format!("listing {}", dir.display()))? {
            let entry = entry.context(|| format!("listing {}", dir.display()))?;
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&path)?;
            } else {
                strip(&path);
            }
        }
        Ok(())
    }
    walk(dir)
}

/// Writes the changes as a gzip layer blob; returns it with the content bytes (as Docker counts
/// a layer's size) and the tar's length.
/// With `ids`, the files' host ids are written as the container's of that mapping.
fn write_layer_blob(
    inner: &EngineInner,
    changes: &[(String, Change)],
    ids: Option<&crate::runtime::userns::IdMap>,
) -> Result<(MadeLayer, u64, u64)> {
    let blob = inner.content.writer()?;
    let gz = GzEncoder::new(io::BufWriter::with_capacity(1 << 20, blob), flate2::Compression::fast());
    let mut builder = tar::Builder::new(Sha256Writer::new(gz));
    let mut links: HashMap<(u64, u64), String> = HashMap::new();
    let mut content_bytes = 0u64;
    let io_err = |what: &str, e: io::Error| Error::io(format!("writing the layer tar: {what}"), e);
    for (path, change) in changes {
        match change {
            Change::Whiteout => {
                let (parent, name) = match path.rsplit_once('/') {
                    Some((p, n)) => (format!("{p}/"), n),
                    None => (String::new(), path.as_str()),
                };
                let mut h = empty_header(tar::EntryType::Regular);
                builder
                    .append_data(&mut h, format!("{parent}.wh.{name}"), io::empty())
                    .map_err(|e| io_err(path, e))?;
            }
            Change::Opaque => {
                let mut h = empty_header(tar::EntryType::Regular);
                builder
                    .append_data(&mut h, format!("{path}/.wh..wh..opq"), io::empty())
                    .map_err(|e| io_err(path, e))?;
            }
            Change::Put { host, meta } => {
                let mut h = tar::Header::new_gnu();
                h.set_mode(meta.mode() & 0o7777);
                h.set_uid(ids.map_or(meta.uid(), |m| m.container_uid(meta.uid())).into());
                h.set_gid(ids.map_or(meta.gid(), |m| m.container_gid(meta.gid())).into());
                h.set_mtime(meta.mtime().max(0) as u64);
                let ft = meta.file_type();
                if ft.is_dir() {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    builder
                        .append_data(&mut h, format!("{path}/"), io::empty())
                        .map_err(|e| io_err(path, e))?;
                } else if ft.is_symlink() {
                    let target = fs::read_link(host).context(|| format!("reading {}", host.display()))?;
                    content_bytes += target.as_os_str().len() as u64;
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_size(0);
                    builder.append_link(&mut h, path, &target).map_err(|e| io_err(path, e))?;
                } else if ft.is_file() {
                    if meta.nlink() > 1 {
                        if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                            h.set_entry_type(tar::EntryType::Link);
                            h.set_size(0);
                            builder.append_link(&mut h, path, first).map_err(|e| io_err(path, e))?;
                            continue;
                        }
                        links.insert((meta.dev(), meta.ino()), path.clone());
                    }
                    content_bytes += meta.size();
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(meta.size());
                    let file = fs::File::open(host).context(|| format!("opening {}", host.display()))?;
                    builder.append_data(&mut h, path, file).map_err(|e| io_err(path, e))?;
                } else if ft.is_fifo() || ft.is_char_device() || ft.is_block_device() {
                    let kind = if ft.is_fifo() {
                        tar::EntryType::Fifo
                    } else if ft.is_char_device() {
                        tar::EntryType::Char
                    } else {
                        tar::EntryType::Block
                    };
                    h.set_entry_type(kind);
                    h.set_size(0);
                    let rdev = meta.rdev();
                    h.set_device_major(libc::major(rdev)).map_err(|e| io_err(path, e))?;
                    h.set_device_minor(libc::minor(rdev)).map_err(|e| io_err(path, e))?;
                    builder.append_data(&mut h, path, io::empty()).map_err(|e| io_err(path, e))?;
                }
                // Sockets are not archived (as Docker's archiver skips them).
            }
        }
    }
    builder.finish().map_err(|e| io_err("end", e))?;
    let hashed = builder.into_inner().map_err(|e| io_err("end", e))?;
    let (diff_id, tar_bytes, gz) = hashed.finish();
    let mut buffered = gz.finish().map_err(|e| io_err("compressing", e))?;
    buffered.flush().map_err(|e| io_err("flushing", e))?;
    let blob = buffered.into_inner().map_err(|e| io_err("flushing", e.into_error()))?;
    let (digest, size) = blob.commit(None)?;
    let made = MadeLayer {
        diff_id,
        blob: digest,
        blob_size: size,
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
    };
    Ok((made, content_bytes, tar_bytes))
}

fn empty_header(kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(0);
    h.set_mode(0o644);
    h.set_mtime(0);
    h
}

/// Whether the (unmounted) writable layer `key` holds no change.
pub fn is_unchanged(inner: &EngineInner, key: &str) -> Result<bool> {
    let changes_dir = inner.snapshots.writable_changes_path(key)?;
    if changes_dir.file_name() == Some(OsStr::new("upper")) {
        let mut entries =
            fs::read_dir(&changes_dir).context(|| format!("listing {}", changes_dir.display()))?;
        return Ok(entries.next().is_none());
    }
    let layers = inner.snapshots.writable_layers(key)?;
    let dirs: Vec<PathBuf> = layers.iter().map(|d| inner.snapshots.layer_path(d)).collect();
    Ok(tree_changes(&changes_dir, &merged_view(&dirs)?)?.is_empty())
}

/// How a path differs from the layers below a writable layer (Docker's numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    Modified = 0,
    Added = 1,
    Deleted = 2,
}

/// One changed path of a writable layer (`docker diff`).
#[derive(Debug, Clone)]
pub(crate) struct PathChange {
    /// Relative (`etc/hosts`).
    pub path: String,
    pub kind: ChangeKind,
    /// A directory whose mode and owner are those of the one below: only its times (or its
    /// content) changed.
    pub same_dir_attributes: bool,
}

/// The changes of the writable layer `key` (mounted or not) against the layers it stands on.
pub(crate) fn writable_changes(inner: &EngineInner, key: &str) -> Result<Vec<PathChange>> {
    let changes_dir = inner.snapshots.writable_changes_path(key)?;
    let layers = inner.snapshots.writable_layers(key)?;
    let dirs: Vec<PathBuf> = layers.iter().map(|d| inner.snapshots.layer_path(d)).collect();
    let base = merged_view(&dirs)?;
    let changes = if changes_dir.file_name() == Some(OsStr::new("upper")) {
        upper_changes(&changes_dir)?
    } else {
        tree_changes(&changes_dir, &base)?
    };
    let mut out = Vec::new();
    for (path, change) in changes {
        match change {
            Change::Whiteout => {
                // A whiteout of something no lower layer has hides nothing.
                if base.contains_key(&path) {
                    out.push(PathChange { path, kind: ChangeKind::Deleted, same_dir_attributes: false });
                }
            }
            Change::Opaque => {
                // What the lower layers had in the directory is gone.
                let prefix = format!("{path}/");
                let hidden: Vec<String> = base
                    .range(prefix.clone()..)
                    .take_while(|(k, _)| k.starts_with(&prefix))
                    .filter(|(k, _)| !k[prefix.len()..].contains('/'))
                    .map(|(k, _)| k.clone())
                    .collect();
                for lower in hidden {
                    if !out.iter().any(|c: &PathChange| c.path == lower) {
                        out.push(PathChange {
                            path: lower,
                            kind: ChangeKind::Deleted,
                            same_dir_attributes: false,
                        });
                    }
                }
            }
            Change::Put { meta, .. } => match base.get(&path) {
                None => out.push(PathChange { path, kind: ChangeKind::Added, same_dir_attributes: false }),
                Some(old) => {
                    let same_dir_attributes = meta.is_dir()
                        && old.meta.is_dir()
                        && meta.mode() == old.meta.mode()
                        && meta.uid() == old.meta.uid()
                        && meta.gid() == old.meta.gid();
                    // A put over a deleted path of the same layer is a replacement.
                    out.retain(|c| !(c.path == path && c.kind == ChangeKind::Deleted));
                    out.push(PathChange { path, kind: ChangeKind::Modified, same_dir_attributes });
                }
            },
        }
    }
    Ok(out)
}

/// Makes a layer (blob in the content store, unpacked layer in the snapshot store) of what the
/// writable layer `key` changed, leaving the writable layer as it is (a container's commit):
/// paths for which `skip` is true (relative, `etc/hosts`) are left out with what is below them.
pub(crate) fn layer_of_writable(
    inner: &EngineInner,
    key: &str,
    skip: &dyn Fn(&str) -> bool,
) -> Result<MadeLayer> {
    let changes_dir = inner.snapshots.writable_changes_path(key)?;
    let changes = if changes_dir.file_name() == Some(OsStr::new("upper")) {
        upper_changes(&changes_dir)?
    } else {
        let layers = inner.snapshots.writable_layers(key)?;
        let dirs: Vec<PathBuf> = layers.iter().map(|d| inner.snapshots.layer_path(d)).collect();
        tree_changes(&changes_dir, &merged_view(&dirs)?)?
    };
    let changes: Vec<(String, Change)> = changes.into_iter().filter(|(path, _)| !skip(path)).collect();
    // A remapped container's files hold host ids: the layer gets the container's, so that it
    // is the same as one committed without remapping.
    let ids = inner.snapshots.writable_idmap(key)?;
    let (made, _, _) = write_layer_blob(inner, &changes, ids.as_ref())?;
    if !inner.snapshots.has_layer(&made.diff_id) {
        let blob = inner.content.open_blob(&made.blob)?;
        inner.snapshots.unpack_layer(io::BufReader::new(blob), Compression::Gzip, Some(&made.diff_id))?;
    }
    Ok(made)
}
