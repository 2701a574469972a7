//! Snapshots: every layer unpacked once, under `layers/<diff id hex>/`, and shared by every image
//! and container built on it; and a writable layer per container on top, mounted with overlayfs,
//! or, where overlayfs is not available or not wanted, assembled by copying (the `copy`
//! snapshotter).
//!
//! Layout under the store's root (`<engine root>/snapshots`):
//!
//! ```text
//! layers/<hex>/fs           the layer's diff, whiteouts in overlayfs' format
//! layers/<hex>/layer.json   its sizes
//! containers/<key>/         a writable layer: writable.json (snapshotter, layers bottom first),
//!                           upper/ + work/ (overlay) or fs/ (copy), mountpoint while mounted
//! tmp/                      unpacks and creations in progress, removals; emptied on open
//! ```
//!
//! Everything appears under `layers/` and `containers/` by one rename of a complete directory,
//! so an interrupted unpack or creation leaves nothing but a leftover in `tmp/`, and two
//! concurrent unpacks of the same layer cannot mix: the second rename finds the first's result
//! and its own copy is dropped.

pub(crate) mod copy;
mod overlay;

pub(crate) use overlay::unescape_mountinfo;

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use oci_spec::image::Digest;
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::layer::{self, Compression, UnpackOptions};
use crate::runtime::userns::IdMap;

/// How container root filesystems are assembled from layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotterKind {
    Overlay,
    Copy,
}

impl std::fmt::Display for SnapshotterKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SnapshotterKind::Overlay => "overlay",
            SnapshotterKind::Copy => "copy",
        })
    }
}

impl std::str::FromStr for SnapshotterKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "overlay" | "overlayfs" | "overlay2" => Ok(SnapshotterKind::Overlay),
            "copy" | "native" | "vfs" => Ok(SnapshotterKind::Copy),
            _ => Err(Error::InvalidInput(format!("unknown snapshotter {s:?}: want overlay or copy"))),
        }
    }
}

#[derive(Debug)]
pub struct SnapshotStore {
    root: PathBuf,
    kind: SnapshotterKind,
    /// Held while a writable layer is mounted or unmounted: the mount and its record change
    /// together. (A stopped container's unmount racing a `cp`'s mount could otherwise leave the
    /// root filesystem mounted with no record, which `rm` then could not unmount.) One lock per
    /// layer key (striped): an unmount waits for an RCU grace period (~10 ms here), and one lock
    /// for all made each `run --rm` container's create wait behind the previous one's unmount.
    mounting: [std::sync::Mutex<()>; MOUNT_LOCK_STRIPES],
}

const MOUNT_LOCK_STRIPES: usize = 64;

/// What is recorded next to an unpacked layer.
#[derive(Debug, Serialize, Deserialize)]
struct LayerRecord {
    /// Bytes of file content (regular files, symlink targets), as Docker counts a layer's size.
    size: u64,
    /// Bytes of the uncompressed tar.
    tar_bytes: u64,
}

/// What is recorded for a writable layer.
#[derive(Debug, Serialize, Deserialize)]
struct WritableRecord {
    /// The snapshotter it was created with (which decides how it is mounted, whatever the
    /// store's current default).
    snapshotter: SnapshotterKind,
    /// The layers it stands on, bottom first.
    layers: Vec<Digest>,
    /// The user namespace mapping of its container (`--userns-remap`): the layers are seen
    /// through idmapped mounts, and its own files are owned by the mapped ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    idmap: Option<IdMap>,
    /// Created without `durable` (a layer removed after a crash anyway): overlayfs mounts it
    /// `volatile`, without syncs (see [`overlay::mount`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    volatile: bool,
}

const WRITABLE_RECORD: &str = "writable.json";

/// Which layers remapped containers stand on was logged.
static MAPPED_LAYERS_SAID: AtomicBool = AtomicBool::new(false);
/// An idmapped mount failed here: later remapped containers go straight to the layer copies.
static IDMAPPED_MOUNTS_MISSING: AtomicBool = AtomicBool::new(false);

/// Whether remapped containers skip idmapped mounts: after one failed, or (debug builds only, for
/// the tests of the fallback) with `BERTH_NO_IDMAPPED_MOUNTS=1` in the daemon's environment.
fn no_idmapped_mounts() -> bool {
    IDMAPPED_MOUNTS_MISSING.load(Ordering::Relaxed)
        || (cfg!(debug_assertions) && std::env::var_os("BERTH_NO_IDMAPPED_MOUNTS").is_some_and(|v| v == "1"))
}
const MOUNTPOINT_RECORD: &str = "mountpoint";

impl SnapshotStore {
    /// Opens (creating) the store under `root`; `kind: None` picks overlay where it works.
    pub fn open(root: &Path, kind: Option<SnapshotterKind>) -> Result<SnapshotStore> {
        for dir in ["layers", "containers", "tmp"] {
            fsutil::create_private_dir(&root.join(dir))?;
        }
        let store = SnapshotStore {
            root: root.to_path_buf(),
            kind: SnapshotterKind::Copy,
            mounting: std::array::from_fn(|_| std::sync::Mutex::new(())),
        };
        store.clean_tmp()?;
        let kind = match kind {
            Some(SnapshotterKind::Copy) => SnapshotterKind::Copy,
            Some(SnapshotterKind::Overlay) => {
                overlay::probe(&store.tmp_dir("probe")?).map_err(|reason| {
                    Error::Unsupported(format!("overlay snapshotter on {}: {reason}", root.display()))
                })?;
                SnapshotterKind::Overlay
            }
            None => match overlay::probe(&store.tmp_dir("probe")?) {
                Ok(()) => SnapshotterKind::Overlay,
                Err(reason) => {
                    tracing::info!(%reason, "overlayfs unavailable, using the copy snapshotter");
                    SnapshotterKind::Copy
                }
            },
        };
        Ok(SnapshotStore { kind, ..store })
    }

    pub fn kind(&self) -> SnapshotterKind {
        self.kind
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.digest())
    }

    /// The directory holding a layer's unpacked content (whiteouts in overlayfs' format).
    pub fn layer_path(&self, diff_id: &Digest) -> PathBuf {
        self.layer_dir(diff_id).join("fs")
    }

    fn writable_dir(&self, key: &str) -> PathBuf {
        self.root.join("containers").join(key)
    }

    /// A fresh directory in `tmp/`, removed by the guard unless kept.
    fn tmp_dir(&self, purpose: &str) -> Result<TmpDir> {
        let path = self.root.join("tmp").join(format!("{purpose}-{:016x}", rand::random::<u64>()));
        fs::create_dir(&path).context(|| format!("creating {}", path.display()))?;
        Ok(TmpDir { path: Some(path) })
    }

    /// Removes what interrupted unpacks, creations and removals left in `tmp/`.
    fn clean_tmp(&self) -> Result<()> {
        let tmp = self.root.join("tmp");
        for entry in fs::read_dir(&tmp).context(|| format!("reading {}", tmp.display()))? {
            let entry = entry.context(|| format!("reading {}", tmp.display()))?;
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with("probe-") {
                // A probe mount left by a crash must go before its directories do.
                let _ = nix::mount::umount2(&path.join("merged"), nix::mount::MntFlags::MNT_DETACH);
            }
            remove_path(&path)?;
        }
        Ok(())
    }

    pub fn has_layer(&self, diff_id: &Digest) -> bool {
        self.layer_dir(diff_id).join("layer.json").is_file()
    }

    /// Whether the blob `blob` was shown to unpack to the layer `diff_id` (it was unpacked or
    /// hashed into it, see [`SnapshotStore::record_layer_source`]): a pull may then skip the
    /// blob, trusting nothing an image's config claims.
    pub fn is_layer_source(&self, diff_id: &Digest, blob: &Digest) -> bool {
        self.has_layer(diff_id) && self.layer_dir(diff_id).join("sources").join(blob.digest()).is_file()
    }

    /// Records that `blob` unpacks to the layer `diff_id` (only after the blob's digest and the
    /// layer's diff ID were both verified). Kept inside the layer's directory, so the record
    /// goes with the layer; losing one in a crash only costs a hash of the blob next time.
    pub fn record_layer_source(&self, diff_id: &Digest, blob: &Digest) -> Result<()> {
        let dir = self.layer_dir(diff_id).join("sources");
        fs::create_dir_all(&dir).context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(blob.digest());
        fs::File::create(&path).context(|| format!("creating {}", path.display()))?;
        Ok(())
    }

    /// Unpacked size of a layer in bytes.
    pub fn layer_size(&self, diff_id: &Digest) -> Result<u64> {
        Ok(self.layer_record(diff_id)?.size)
    }

    fn layer_record(&self, diff_id: &Digest) -> Result<LayerRecord> {
        let path = self.layer_dir(diff_id).join("layer.json");
        let bytes = fs::read(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                Error::io(format!("layer {diff_id} is not unpacked"), e)
            } else {
                Error::io(format!("reading {}", path.display()), e)
            }
        })?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::io(format!("reading {}", path.display()), io::Error::other(e)))
    }

    /// Unpacks a layer blob unless the layer is already there; returns its diff ID.
    pub fn unpack_layer(
        &self,
        blob: impl Read + Send,
        compression: Compression,
        expected_diff_id: Option<&Digest>,
    ) -> Result<Digest> {
        self.unpack_layer_with(blob, compression, expected_diff_id, UnpackOptions::default())
    }

    /// [`SnapshotStore::unpack_layer`] with explicit options (device nodes).
    pub fn unpack_layer_with(
        &self,
        blob: impl Read + Send,
        compression: Compression,
        expected_diff_id: Option<&Digest>,
        options: UnpackOptions,
    ) -> Result<Digest> {
        if let Some(expected) = expected_diff_id {
            if self.has_layer(expected) {
                // The blob must be shown to be that layer (hashed, not extracted again): an
                // image's config may claim any diff ID, and trusting the claim would give the
                // image another image's layer.
                let actual = layer::diff_id_of(blob, compression)?;
                if actual != *expected {
                    return Err(Error::DigestMismatch {
                        what: "layer diff ID".to_string(),
                        expected: expected.clone(),
                        actual,
                    });
                }
                return Ok(actual);
            }
        }
        let work = self.tmp_dir("unpack")?;
        let fs_dir = work.path().join("fs");
        fs::create_dir(&fs_dir).context(|| format!("creating {}", fs_dir.display()))?;
        // Durable: the layer must be on disk before the rename makes it visible, or a crash
        // could leave a complete-looking layer of empty files.
        let stats = layer::unpack(blob, compression, &fs_dir, UnpackOptions { durable: true, ..options })?;
        if let Some(expected) = expected_diff_id {
            if stats.diff_id != *expected {
                return Err(Error::DigestMismatch {
                    what: "layer diff ID".to_string(),
                    expected: expected.clone(),
                    actual: stats.diff_id,
                });
            }
        }
        if self.has_layer(&stats.diff_id) {
            return Ok(stats.diff_id);
        }
        let record = LayerRecord { size: stats.content_bytes, tar_bytes: stats.tar_bytes };
        let json = serde_json::to_vec_pretty(&record).expect("layer record serialises");
        fsutil::write_atomic(&work.path().join("layer.json"), &json)?;
        let target = self.layer_dir(&stats.diff_id);
        match rename_noreplace(work.path(), &target) {
            Ok(()) => {
                work.keep();
                fsutil::sync_dir(&self.root.join("layers"))?;
                tracing::debug!(diff_id = %stats.diff_id, size = record.size, "layer unpacked");
            }
            // Another unpack of the same layer finished first; its result is as good as ours.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EEXIST | libc::ENOTEMPTY)) => {}
            Err(e) => return Err(Error::io(format!("renaming into {}", target.display()), e)),
        }
        Ok(stats.diff_id)
    }

    /// Takes the directory `diff` (a layer's content in overlayfs' format, e.g. a build step's
    /// upper directory, on this store's file system) as the unpacked layer `diff_id`, moving it
    /// rather than unpacking the layer's tar again. When the layer is already there, `diff` is
    /// left where it is. `size` and `tar_bytes` are what [`SnapshotStore::layer_size`] reports.
    pub fn adopt_layer(&self, diff: &Path, diff_id: &Digest, size: u64, tar_bytes: u64) -> Result<()> {
        if self.has_layer(diff_id) {
            return Ok(());
        }
        let work = self.tmp_dir("adopt")?;
        let fs_dir = work.path().join("fs");
        fs::rename(diff, &fs_dir).context(|| format!("moving {} into the layer store", diff.display()))?;
        fsutil::sync_tree(&fs_dir)?;
        let record = LayerRecord { size, tar_bytes };
        let json = serde_json::to_vec_pretty(&record).expect("layer record serialises");
        fsutil::write_atomic(&work.path().join("layer.json"), &json)?;
        let target = self.layer_dir(diff_id);
        match rename_noreplace(work.path(), &target) {
            Ok(()) => {
                work.keep();
                fsutil::sync_dir(&self.root.join("layers"))
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::EEXIST | libc::ENOTEMPTY)) => Ok(()),
            Err(e) => Err(Error::io(format!("renaming into {}", target.display()), e)),
        }
    }

    pub fn list_layers(&self) -> Result<Vec<Digest>> {
        let dir = self.root.join("layers");
        let mut layers = Vec::new();
        for entry in fs::read_dir(&dir).context(|| format!("reading {}", dir.display()))? {
            let entry = entry.context(|| format!("reading {}", dir.display()))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Ok(digest) = crate::digest::parse_sha256(&format!("sha256:{name}")) {
                layers.push(digest);
            }
        }
        layers.sort_by_key(|d| d.to_string());
        Ok(layers)
    }

    /// Removes an unpacked layer; returns the bytes freed.
    pub fn remove_layer(&self, diff_id: &Digest) -> Result<u64> {
        if self.layers_in_use()?.contains(diff_id) {
            return Err(Error::Conflict(format!("layer {diff_id} is in use by a container")));
        }
        let dir = self.layer_dir(diff_id);
        if !dir.exists() {
            return Ok(0);
        }
        // Out of `layers/` in one step, so a crash midway leaves a leftover in tmp/, never a
        // half-deleted layer that looks complete.
        let trash = self.root.join("tmp").join(format!("remove-{:016x}", rand::random::<u64>()));
        fs::rename(&dir, &trash).context(|| format!("moving {} out of the store", dir.display()))?;
        fsutil::sync_dir(&self.root.join("layers"))?;
        let mut freed = fsutil::disk_usage(&trash);
        remove_path(&trash)?;
        // Its copies for remapped containers go with it.
        for mapping in fs::read_dir(self.root.join("shifted")).into_iter().flatten().flatten() {
            let copy = mapping.path().join(diff_id.digest());
            if copy.exists() {
                freed += fsutil::disk_usage(&copy);
                remove_path(&copy)?;
            }
        }
        Ok(freed)
    }

    /// Layers that some writable layer (a container) stands on.
    pub fn layers_in_use(&self) -> Result<HashSet<Digest>> {
        let mut used = HashSet::new();
        for key in self.list_writable()? {
            used.extend(self.writable_record(&key)?.layers);
        }
        Ok(used)
    }

    /// Creates the writable layer `key` on `layers` (bottom first). With the copy snapshotter the
    /// layers are assembled into its directory now.
    pub fn create_writable(&self, key: &str, layers: &[Digest]) -> Result<()> {
        self.create_writable_with(key, layers, true)
    }

    /// [`SnapshotStore::create_writable`]; without `durable` nothing is fsynced: for a layer
    /// that is removed after a crash anyway (a `--rm` container's), where the fsyncs would only
    /// slow the container's start. After a power cut such a layer may be left incomplete (its
    /// record missing or empty); its owner removes it.
    pub fn create_writable_with(&self, key: &str, layers: &[Digest], durable: bool) -> Result<()> {
        self.create_writable_mapped(key, layers, durable, None)
    }

    /// [`SnapshotStore::create_writable_with`] for a container in a user namespace with `idmap`:
    /// the layers stay as they are, shared (mounted idmapped, see
    /// [`SnapshotStore::mount_writable`]); only the writable layer's own root is the mapped
    /// root's. With the copy snapshotter the container's copy is owned by the mapped ids.
    pub fn create_writable_mapped(
        &self,
        key: &str,
        layers: &[Digest],
        durable: bool,
        idmap: Option<&IdMap>,
    ) -> Result<()> {
        check_key(key)?;
        let dir = self.writable_dir(key);
        if dir.exists() {
            return Err(Error::Conflict(format!("writable layer {key:?} already exists")));
        }
        for diff_id in layers {
            if !self.has_layer(diff_id) {
                return Err(Error::InvalidInput(format!("layer {diff_id} is not unpacked")));
            }
        }
        if self.kind == SnapshotterKind::Overlay {
            overlay::check_layer_count(layers.len())?;
        }
        let work = self.tmp_dir("create")?;
        match self.kind {
            SnapshotterKind::Overlay => {
                for sub in ["upper", "work", "lower"] {
                    create_dir_mode(&work.path().join(sub), 0o755)?;
                }
                if let Some(map) = idmap {
                    let (uid, gid) = map.root();
                    std::os::unix::fs::lchown(work.path().join("upper"), Some(uid), Some(gid))
                        .context(|| "giving the writable layer to the mapped root".into())?;
                }
            }
            SnapshotterKind::Copy => {
                let fs_dir = work.path().join("fs");
                create_dir_mode(&fs_dir, 0o755)?;
                for diff_id in layers {
                    copy::apply_layer(&self.layer_path(diff_id), &fs_dir)?;
                }
                if let Some(map) = idmap {
                    shift_tree(&fs_dir, map)?;
                }
                if durable {
                    fsutil::sync_tree(&fs_dir)?;
                }
            }
        }
        let record = WritableRecord {
            snapshotter: self.kind,
            layers: layers.to_vec(),
            idmap: idmap.cloned(),
            volatile: !durable,
        };
        let json = serde_json::to_vec_pretty(&record).expect("writable record serialises");
        if durable {
            fsutil::write_atomic(&work.path().join(WRITABLE_RECORD), &json)?;
        } else {
            fsutil::write_replace(&work.path().join(WRITABLE_RECORD), &json)?;
        }
        match rename_noreplace(work.path(), &dir) {
            Ok(()) => work.keep(),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EEXIST | libc::ENOTEMPTY)) => {
                return Err(Error::Conflict(format!("writable layer {key:?} already exists")))
            }
            Err(e) => return Err(Error::io(format!("renaming into {}", dir.display()), e)),
        }
        if durable {
            fsutil::sync_dir(&self.root.join("containers"))?;
        }
        Ok(())
    }

    fn writable_record(&self, key: &str) -> Result<WritableRecord> {
        check_key(key)?;
        let path = self.writable_dir(key).join(WRITABLE_RECORD);
        let bytes = fs::read(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                Error::InvalidInput(format!("no such writable layer: {key}"))
            } else {
                Error::io(format!("reading {}", path.display()), e)
            }
        })?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::io(format!("reading {}", path.display()), io::Error::other(e)))
    }

    /// The user namespace mapping a writable layer was made for: its own files hold the
    /// mapped (host) ids.
    pub fn writable_idmap(&self, key: &str) -> Result<Option<IdMap>> {
        Ok(self.writable_record(key)?.idmap)
    }

    /// The layers a writable layer stands on, bottom first.
    pub fn writable_layers(&self, key: &str) -> Result<Vec<Digest>> {
        Ok(self.writable_record(key)?.layers)
    }

    /// The directory a writable layer's changes go to (overlay's upper directory, or the copy
    /// snapshotter's assembled tree).
    pub fn writable_changes_path(&self, key: &str) -> Result<PathBuf> {
        let record = self.writable_record(key)?;
        Ok(self.writable_dir(key).join(match record.snapshotter {
            SnapshotterKind::Overlay => "upper",
            SnapshotterKind::Copy => "fs",
        }))
    }

    /// Mounts the writable layer `key` at `target` (an existing directory): overlayfs over its
    /// layers, or a bind mount of the copy snapshotter's tree.
    pub fn mount_writable(&self, key: &str, target: &Path) -> Result<()> {
        let _mounting = self.mount_lock(key);
        let record = self.writable_record(key)?;
        let dir = self.writable_dir(key);
        let recorded = dir.join(MOUNTPOINT_RECORD);
        if let Ok(previous) = fs::read_to_string(&recorded) {
            if overlay::is_mountpoint(Path::new(&previous)) {
                return Err(Error::Conflict(format!(
                    "writable layer {key:?} is already mounted at {previous}"
                )));
            }
        }
        let target =
            fs::canonicalize(target).context(|| format!("resolving mount target {}", target.display()))?;
        match record.snapshotter {
            SnapshotterKind::Overlay => {
                let mut lowers: Vec<PathBuf> =
                    record.layers.iter().rev().map(|d| self.layer_path(d)).collect();
                if lowers.is_empty() {
                    // overlayfs needs a lower directory; a container on no layers gets an empty one.
                    lowers.push(dir.join("lower"));
                }
                match &record.idmap {
                    None => overlay::mount(
                        &lowers,
                        &dir.join("upper"),
                        &dir.join("work"),
                        &target,
                        record.volatile,
                    )?,
                    Some(map) => {
                        self.mount_mapped(&record.layers, &lowers, &dir, &target, map, record.volatile)?
                    }
                }
            }
            SnapshotterKind::Copy => {
                let source = dir.join("fs");
                nix::mount::mount(
                    Some(&source),
                    &target,
                    None::<&str>,
                    nix::mount::MsFlags::MS_BIND,
                    None::<&str>,
                )
                .map_err(|e| {
                    Error::io(format!("bind-mounting {} at {}", source.display(), target.display()), e.into())
                })?;
            }
        }
        // Not fsynced: mounts do not outlive a reboot, and a stale or empty record after one is
        // read as "not mounted" (the mount point check above).
        if let Err(e) = fsutil::write_replace(&recorded, target.as_os_str().as_encoded_bytes()) {
            let _ = unmount_path(&target);
            return Err(e);
        }
        Ok(())
    }

    /// Mounts the overlay of a remapped container: on idmapped mounts of the shared layers where
    /// the kernel has them, else on chowned copies of the layers, one per mapping (dockerd's way).
    fn mount_mapped(
        &self,
        layers: &[Digest],
        lowers: &[PathBuf],
        dir: &Path,
        target: &Path,
        map: &IdMap,
        volatile: bool,
    ) -> Result<()> {
        let (upper, work) = (dir.join("upper"), dir.join("work"));
        if !no_idmapped_mounts() {
            match overlay::mount_idmapped(lowers, &upper, &work, target, map, dir, volatile) {
                Ok(()) => {
                    if !MAPPED_LAYERS_SAID.swap(true, Ordering::Relaxed) {
                        tracing::info!("remapped containers stand on idmapped mounts of the shared layers");
                    }
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "no idmapped mounts: remapped containers use chowned copies of their layers");
                    IDMAPPED_MOUNTS_MISSING.store(true, Ordering::Relaxed);
                }
            }
        }
        if !MAPPED_LAYERS_SAID.swap(true, Ordering::Relaxed) {
            tracing::info!(mapping = %map.name(), "remapped containers stand on chowned copies of their layers");
        }
        let mut copies: Vec<PathBuf> =
            layers.iter().rev().map(|d| self.shifted_layer(d, map)).collect::<Result<_>>()?;
        if copies.is_empty() {
            copies.push(dir.join("lower"));
        }
        overlay::mount(&copies, &upper, &work, target, volatile)
    }

    /// The layer `diff_id` copied for the mapping `map`, its files owned by the mapped ids: made
    /// on first use and shared by every container of that mapping (removed with the layer).
    fn shifted_layer(&self, diff_id: &Digest, map: &IdMap) -> Result<PathBuf> {
        let parent = self.root.join("shifted").join(map.name());
        let path = parent.join(diff_id.digest());
        if path.exists() {
            return Ok(path);
        }
        fsutil::create_private_dir(&parent)?;
        let work = self.tmp_dir("shift")?;
        let fs_dir = work.path().join("fs");
        create_dir_mode(&fs_dir, 0o755)?;
        copy::copy_layer(&self.layer_path(diff_id), &fs_dir)?;
        shift_tree(&fs_dir, map)?;
        fsutil::sync_tree(&fs_dir)?;
        match rename_noreplace(&fs_dir, &path) {
            Ok(()) => {}
            // Another container of the mapping made it meanwhile.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EEXIST | libc::ENOTEMPTY)) => {}
            Err(e) => return Err(Error::io(format!("renaming into {}", path.display()), e)),
        }
        fsutil::sync_dir(&parent)?;
        Ok(path)
    }

    /// Unmounts the writable layer `key` if it is mounted.
    pub fn unmount_writable(&self, key: &str) -> Result<()> {
        check_key(key)?;
        let _mounting = self.mount_lock(key);
        let recorded = self.writable_dir(key).join(MOUNTPOINT_RECORD);
        let target = match fs::read_to_string(&recorded) {
            Ok(target) => PathBuf::from(target),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(format!("reading {}", recorded.display()), e)),
        };
        unmount_path(&target)?;
        fs::remove_file(&recorded).context(|| format!("removing {}", recorded.display()))
    }

    /// Unmounts (if mounted) and removes the writable layer `key`; a missing one is not an
    /// error.
    pub fn remove_writable(&self, key: &str) -> Result<()> {
        check_key(key)?;
        let dir = self.writable_dir(key);
        if !dir.exists() {
            return Ok(());
        }
        // A layer made without durability is not synced away either.
        let durable = !self.writable_record(key).is_ok_and(|r| r.volatile);
        self.unmount_writable(key)?;
        let trash = self.root.join("tmp").join(format!("remove-{:016x}", rand::random::<u64>()));
        fs::rename(&dir, &trash).context(|| format!("moving {} out of the store", dir.display()))?;
        if durable {
            fsutil::sync_dir(&self.root.join("containers"))?;
        }
        remove_path(&trash)
    }

    /// The lock of writable layer `key`'s mount (see `mounting`).
    fn mount_lock(&self, key: &str) -> std::sync::MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut hasher);
        let stripe = (hasher.finish() % MOUNT_LOCK_STRIPES as u64) as usize;
        self.mounting[stripe].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Unmounts whatever is mounted at `target` (the root filesystem of the removed container
    /// whose layer is `key`), however many mounts are stacked there, so that the directory can be
    /// removed.
    pub fn unmount_all_at(&self, key: &str, target: &Path) -> Result<()> {
        let _mounting = self.mount_lock(key);
        for _ in 0..16 {
            if !overlay::is_mountpoint(target) {
                return Ok(());
            }
            tracing::warn!(path = %target.display(), "unmounting a root filesystem mount that has no record");
            unmount_path(target)?;
        }
        Err(Error::Conflict(format!("{} stays mounted", target.display())))
    }

    /// Keys of the writable layers, sorted.
    pub fn list_writable(&self) -> Result<Vec<String>> {
        let dir = self.root.join("containers");
        let mut keys = Vec::new();
        for entry in fs::read_dir(&dir).context(|| format!("reading {}", dir.display()))? {
            let entry = entry.context(|| format!("reading {}", dir.display()))?;
            if let Some(key) = entry.file_name().to_str() {
                if check_key(key).is_ok() {
                    keys.push(key.to_string());
                }
            }
        }
        keys.sort();
        Ok(keys)
    }
}

/// Keys name directories: letters, digits, `_`, `.`, `-`, not starting with `.` or `-`.
fn check_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 128
        && !key.starts_with(['.', '-'])
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "invalid writable layer key {key:?}: want up to 128 letters, digits, '_', '.', '-'"
        )))
    }
}

/// A directory under `tmp/`, removed on drop unless [`TmpDir::keep`] was called.
struct TmpDir {
    path: Option<PathBuf>,
}

impl TmpDir {
    fn path(&self) -> &Path {
        self.path.as_deref().expect("path present until dropped")
    }

    fn keep(mut self) {
        self.path = None;
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            if let Err(e) = remove_path(&path) {
                tracing::warn!(error = %e, "leaving a temporary directory behind");
            }
        }
    }
}

/// Gives every file under `dir` the mapped ids of its owner (the copy snapshotter's tree of a
/// container in a user namespace).
fn shift_tree(dir: &Path, map: &IdMap) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::symlink_metadata(dir).context(|| format!("reading {}", dir.display()))?;
    let uid = map.host_uid(meta.uid()).unwrap_or(map.root().0);
    let gid = map.host_gid(meta.gid()).unwrap_or(map.root().1);
    std::os::unix::fs::lchown(dir, Some(uid), Some(gid))
        .context(|| format!("changing the owner of {}", dir.display()))?;
    if !meta.file_type().is_symlink() && meta.mode() & 0o7000 != 0 {
        // chown clears setuid and setgid bits: put them back.
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .context(|| format!("restoring the mode of {}", dir.display()))?;
    }
    if meta.is_dir() {
        for entry in fs::read_dir(dir).context(|| format!("reading {}", dir.display()))? {
            let entry = entry.context(|| format!("reading {}", dir.display()))?;
            shift_tree(&entry.path(), map)?;
        }
    }
    Ok(())
}

fn create_dir_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    fs::DirBuilder::new().mode(mode).create(path).context(|| format!("creating {}", path.display()))?;
    // Not left to the umask.
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .context(|| format!("setting the mode of {}", path.display()))
}

/// Removes a file or a whole tree (never following symlinks).
fn remove_path(path: &Path) -> Result<()> {
    let result = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    result.context(|| format!("removing {}", path.display()))
}

fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use nix::fcntl::AT_FDCWD;
    nix::fcntl::renameat2(AT_FDCWD, from, AT_FDCWD, to, nix::fcntl::RenameFlags::RENAME_NOREPLACE)
        .map_err(io::Error::from)
}

/// Unmounts `target`; not mounted is fine, busy falls back to a lazy unmount.
fn unmount_path(target: &Path) -> Result<()> {
    use nix::errno::Errno;
    use nix::mount::{umount2, MntFlags};
    match umount2(target, MntFlags::empty()) {
        Ok(()) | Err(Errno::EINVAL | Errno::ENOENT) => Ok(()),
        Err(Errno::EBUSY) => umount2(target, MntFlags::MNT_DETACH)
            .map_err(|e| Error::io(format!("unmounting {}", target.display()), e.into())),
        Err(e) => Err(Error::io(format!("unmounting {}", target.display()), e.into())),
    }
}

#[cfg(test)]
mod tests;
