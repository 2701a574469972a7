//! `berth system check`: a consistency check of the node's state, and its repair.
//!
//! What is checked, in this order (a repair of one step can leave work for the next):
//!
//! - blobs: every blob hashes to its name;
//! - layers: every unpacked layer is complete (its `layer.json`, written last before the rename
//!   that makes it visible, and its `fs/`);
//! - images: every image's manifest, config and layer blobs exist and fit together, and its
//!   layers are unpacked;
//! - mounts: nothing is mounted under the root or run directory that no container owns;
//! - containers: every container directory has a record that parses, and a writable layer
//!   standing on layers that exist;
//! - snapshots: every writable layer belongs to a container (or a build under way);
//! - netns pins, monitors, port proxies: none is left for a container that is gone or stopped;
//! - cgroups: no empty cgroup under `berth/` for a container this daemon does not have;
//! - volumes: every volume's metadata parses and its `_data` directory exists.
//!
//! With `repair`, what nothing references is removed (mounts unmounted, empty cgroups and pins
//! removed, stray monitors' sockets and proxies stopped), a layer missing or broken is unpacked
//! again from its blob, and what is broken and may hold data is moved aside to
//! `<root>/lost+found/<area>/` rather than deleted. Nothing of a user's is deleted.
//!
//! The check holds the garbage collection lock for writing, so no pull, import, build or create
//! is half-way while it looks. (The SQLite history is the API's and checked there.)

use std::collections::{BTreeSet, HashSet};
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_types::check::{CheckFinding, CheckReport};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::layer::Compression;
use crate::network::proxy;
use crate::snapshot::unescape_mountinfo;
use crate::{Engine, EngineInner};

/// The folder broken things are moved to, under the engine's root.
pub const LOST_AND_FOUND: &str = "lost+found";
/// How long an empty cgroup must stay empty to count as an orphan: a container of another daemon
/// on this host may be between making its cgroup and moving its process in.
const CGROUP_SETTLE: Duration = Duration::from_millis(300);
/// The name of a build's writable layers (builds under way are not orphans).
const BUILD_WRITABLE_PREFIX: &str = "build-";

impl Engine {
    /// Checks the state (and repairs it, with `repair`).
    pub async fn check(&self, repair: bool) -> Result<CheckReport> {
        self.blocking(move |inner| check(inner, repair)).await
    }
}

/// What one run of the check collects.
struct Checker<'a> {
    inner: &'a EngineInner,
    repair: bool,
    report: CheckReport,
}

/// Checks the state under the engine's root; see the module's documentation.
pub fn check(inner: &EngineInner, repair: bool) -> Result<CheckReport> {
    let _gc = inner.gc_lock.write().unwrap_or_else(|p| p.into_inner());
    let mut checker = Checker { inner, repair, report: CheckReport { repair, ..CheckReport::default() } };
    checker.blobs()?;
    checker.layers()?;
    checker.images()?;
    checker.mounts()?;
    checker.containers()?;
    checker.snapshots()?;
    checker.netns_pins()?;
    checker.monitors()?;
    checker.port_proxies();
    checker.cgroups();
    checker.volumes()?;
    let lost = inner.config.root.join(LOST_AND_FOUND);
    if checker
        .report
        .findings
        .iter()
        .any(|f| f.repaired.as_deref().is_some_and(|r| r.contains(LOST_AND_FOUND)))
    {
        checker.report.moved_to = Some(lost.display().to_string());
    }
    Ok(checker.report)
}

impl Checker<'_> {
    fn checked(&mut self, what: &str, count: usize) {
        self.report.checked.push(format!("{what}: {count}"));
    }

    /// Records a finding; with `repair`, runs `fix` and records what it did (or why it failed).
    fn found(
        &mut self,
        area: &str,
        object: impl Into<String>,
        problem: impl Into<String>,
        fix: impl FnOnce() -> Result<String>,
    ) {
        let repaired = if self.repair {
            match fix() {
                Ok(done) => Some(done),
                Err(e) => {
                    tracing::warn!(area, error = %e, "system check: repair failed");
                    None
                }
            }
        } else {
            None
        };
        let (object, problem) = (object.into(), problem.into());
        tracing::info!(area, %object, %problem, ?repaired, "system check finding");
        self.report.findings.push(CheckFinding { area: area.to_string(), object, problem, repaired });
    }

    /// Records a finding that no repair can fix (the reason is in `problem`).
    fn found_unrepairable(&mut self, area: &str, object: impl Into<String>, problem: impl Into<String>) {
        self.found(area, object, problem, || Err(Error::InvalidInput("no repair".into())));
    }

    fn blobs(&mut self) -> Result<()> {
        let content = &self.inner.content;
        let blobs = content.list()?;
        self.checked("blobs", blobs.len());
        for digest in blobs {
            let path = content.path(&digest);
            let actual = match hash_file(&path) {
                Ok(actual) => actual,
                // Removed meanwhile (a prune): nothing to check.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
            };
            if actual != digest.digest() {
                let root = self.inner.config.root.clone();
                self.found("blob", digest.to_string(), format!("content hashes to sha256:{actual}"), || {
                    move_aside(&root, "blobs", &path)
                });
            }
        }
        Ok(())
    }

    fn layers(&mut self) -> Result<()> {
        let snapshots = &self.inner.snapshots;
        let dir = snapshots.root().join("layers");
        let mut count = 0;
        for entry in read_dir(&dir)? {
            count += 1;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let problem = if !path.join("layer.json").is_file() {
                "incomplete: no layer.json (the record written last)"
            } else if !path.join("fs").is_dir() {
                "incomplete: no fs/ directory"
            } else if serde_json::from_slice::<serde_json::Value>(
                &fs::read(path.join("layer.json")).unwrap_or_default(),
            )
            .is_err()
            {
                "layer.json does not parse"
            } else {
                continue;
            };
            let root = self.inner.config.root.clone();
            self.found("layer", format!("sha256:{name}"), problem, || move_aside(&root, "layers", &path));
        }
        self.checked("layers", count);
        Ok(())
    }

    fn images(&mut self) -> Result<()> {
        let images = self.inner.images.list();
        self.checked("images", images.len());
        for (record, tags) in images {
            let id = record.id.to_string();
            let shown = match tags.first() {
                Some(tag) => format!("{id} ({tag})"),
                None => id.clone(),
            };
            let content = match crate::image::read_image(self.inner, &record) {
                Ok(content) => content,
                Err(e) => {
                    let inner = self.inner;
                    self.found("image", shown, format!("{e}"), || move_image_aside(inner, &record, &tags));
                    continue;
                }
            };
            let mut missing_blobs = Vec::new();
            for layer in content.manifest.layers() {
                if !self.inner.content.contains(layer.digest()) {
                    missing_blobs.push(layer.digest().to_string());
                }
            }
            for (layer, diff_id) in content.manifest.layers().iter().zip(&content.diff_ids) {
                if self.inner.snapshots.has_layer(diff_id) {
                    continue;
                }
                if !self.inner.content.contains(layer.digest()) {
                    // Reported with the missing blobs below.
                    continue;
                }
                let inner = self.inner;
                let blob = layer.digest().clone();
                let media_type = layer.media_type().clone();
                let diff_id = diff_id.clone();
                self.found(
                    "layer",
                    diff_id.to_string(),
                    format!("layer of image {shown} is not unpacked"),
                    || {
                        let file = inner.content.open_blob(&blob)?;
                        let compression = Compression::from_media_type(&media_type)?;
                        inner.snapshots.unpack_layer(
                            io::BufReader::with_capacity(1 << 20, file),
                            compression,
                            Some(&diff_id),
                        )?;
                        Ok(format!("unpacked again from blob {blob}"))
                    },
                );
            }
            if !missing_blobs.is_empty() {
                let inner = self.inner;
                self.found(
                    "image",
                    shown,
                    format!("layer blobs missing: {}", missing_blobs.join(", ")),
                    || move_image_aside(inner, &record, &tags),
                );
            }
        }
        Ok(())
    }

    /// Mounts under the root or the run directory that no container owns.
    fn mounts(&mut self) -> Result<()> {
        let root = &self.inner.config.root;
        let run_dir = &self.inner.config.run_dir;
        let containers_dir = root.join("containers");
        let netns_dir = run_dir.join("netns");
        let known: HashSet<String> = self.inner.containers.list().into_iter().map(|r| r.id).collect();
        let mut count = 0;
        // Deepest first, so that a repair unmounts what is inside before what holds it.
        let mut mounts = mount_points()?;
        mounts.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
        for mount in mounts {
            if !(mount.starts_with(root) || mount.starts_with(run_dir)) || mount == *root || mount == *run_dir
            {
                continue;
            }
            count += 1;
            let owner = if let Ok(rest) = mount.strip_prefix(&containers_dir) {
                rest.components().next().map(|c| c.as_os_str().to_string_lossy().into_owned())
            } else if let Ok(rest) = mount.strip_prefix(&netns_dir) {
                rest.components().next().map(|c| c.as_os_str().to_string_lossy().into_owned())
            } else if mount.starts_with(root.join("build"))
                || mount.starts_with(root.join("snapshots").join("tmp"))
            {
                // A build or an overlay probe under way.
                continue;
            } else {
                None
            };
            if owner.as_ref().is_some_and(|id| known.contains(id)) {
                continue;
            }
            let area = if mount.starts_with(&netns_dir) { "netns" } else { "mount" };
            let problem = match owner {
                Some(id) => format!("mounted for container {id}, which does not exist"),
                None => "mounted under berth's directories by nothing berth knows".to_string(),
            };
            let path = mount.clone();
            self.found(area, mount.display().to_string(), problem, || {
                nix::mount::umount2(&path, nix::mount::MntFlags::MNT_DETACH)
                    .map_err(|e| Error::io(format!("unmounting {}", path.display()), e.into()))?;
                Ok("unmounted".to_string())
            });
        }
        self.checked("mounts", count);
        Ok(())
    }

    fn containers(&mut self) -> Result<()> {
        let dir = self.inner.config.root.join("containers");
        let writable: HashSet<String> = self.inner.snapshots.list_writable()?.into_iter().collect();
        let mut count = 0;
        for entry in read_dir(&dir)? {
            count += 1;
            let path = entry.path();
            let id = entry.file_name().to_string_lossy().into_owned();
            let record_path = path.join("container.json");
            let parsed = fs::read(&record_path).map_err(|e| e.to_string()).and_then(|b| {
                serde_json::from_slice::<crate::container::ContainerRecord>(&b).map_err(|e| e.to_string())
            });
            let record = match parsed {
                Ok(record) => record,
                Err(e) => {
                    let root = self.inner.config.root.clone();
                    let known = self.inner.containers.get(&id).is_some();
                    let problem = format!("container record {}: {e}", record_path.display());
                    if known {
                        // The daemon has it in memory: moving it would pull it from under a
                        // running daemon. Removing the container is the way out.
                        self.found_unrepairable(
                            "container",
                            id,
                            format!("{problem} (remove it with `berth rm`)"),
                        );
                    } else {
                        self.found("container", id, problem, || move_aside(&root, "containers", &path));
                    }
                    continue;
                }
            };
            if !writable.contains(&record.id) {
                self.found_unrepairable(
                    "container",
                    record.id.clone(),
                    "its writable layer is missing (remove it with `berth rm`)",
                );
                continue;
            }
            if let Ok(layers) = self.inner.snapshots.writable_layers(&record.id) {
                let missing: Vec<String> = layers
                    .iter()
                    .filter(|l| !self.inner.snapshots.has_layer(l))
                    .map(|l| l.to_string())
                    .collect();
                if !missing.is_empty() {
                    self.found_unrepairable(
                        "container",
                        record.id.clone(),
                        format!("stands on layers that are not unpacked: {}", missing.join(", ")),
                    );
                }
            }
        }
        self.checked("containers", count);
        Ok(())
    }

    /// Writable layers without their container.
    fn snapshots(&mut self) -> Result<()> {
        let keys = self.inner.snapshots.list_writable()?;
        self.checked("snapshots", keys.len());
        for key in keys {
            if key.starts_with(BUILD_WRITABLE_PREFIX) || self.inner.containers.get(&key).is_some() {
                continue;
            }
            if self.inner.config.root.join("containers").join(&key).is_dir() {
                // Its container's directory is there: reported (and moved) with the containers.
                continue;
            }
            let root = self.inner.config.root.clone();
            let path = self.inner.snapshots.root().join("containers").join(&key);
            let snapshots = &self.inner.snapshots;
            self.found("snapshot", key.clone(), "writable layer of a container that does not exist", || {
                let _ = snapshots.unmount_writable(&key);
                move_aside(&root, "snapshots", &path)
            });
        }
        Ok(())
    }

    /// Network namespace pins of containers that are gone (pins that are still mounted were
    /// reported with the mounts; here the files left behind).
    fn netns_pins(&mut self) -> Result<()> {
        let dir = self.inner.config.run_dir.join("netns");
        let mut count = 0;
        for entry in read_dir(&dir)? {
            count += 1;
            let id = entry.file_name().to_string_lossy().into_owned();
            if self.inner.containers.get(&id).is_some() {
                continue;
            }
            let path = entry.path();
            self.found(
                "netns",
                path.display().to_string(),
                format!("pin of container {id}, which does not exist"),
                || {
                    let _ = nix::mount::umount2(&path, nix::mount::MntFlags::MNT_DETACH);
                    fs::remove_file(&path)
                        .map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
                    Ok("removed".to_string())
                },
            );
        }
        self.checked("netns pins", count);
        Ok(())
    }

    /// Monitor sockets of containers that are gone; a monitor still answering on one is
    /// stopped.
    fn monitors(&mut self) -> Result<()> {
        let dir = self.inner.config.run_dir.join("containers");
        let known: Vec<String> = self.inner.containers.list().into_iter().map(|r| r.id).collect();
        let mut count = 0;
        for entry in read_dir(&dir)? {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(prefix) = name.strip_suffix(".sock") else { continue };
            count += 1;
            if known.iter().any(|id| id.starts_with(prefix)) {
                continue;
            }
            let path = entry.path();
            self.found(
                "monitor",
                path.display().to_string(),
                "socket of a container that does not exist",
                || {
                    let pids = socket_holders(&path);
                    for pid in &pids {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(*pid),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                    fs::remove_file(&path)
                        .map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
                    Ok(if pids.is_empty() {
                        "removed the socket".to_string()
                    } else {
                        format!("stopped its monitor (pid {pids:?}) and removed the socket")
                    })
                },
            );
        }
        self.checked("monitor sockets", count);
        Ok(())
    }

    /// Port proxies still running for containers that are not.
    fn port_proxies(&mut self) {
        let mut count = 0;
        for record in self.inner.containers.list() {
            let Some(net) = crate::network::endpoint::read(self.inner, &record.id) else { continue };
            if net.proxy_pid == 0 {
                continue;
            }
            count += 1;
            let dir = self.inner.containers.paths(&record.id).dir;
            if self.inner.containers.read_state(&record.id).is_live()
                || !proxy::is_running(net.proxy_pid, &dir)
            {
                continue;
            }
            let pid = net.proxy_pid;
            self.found(
                "port-proxy",
                format!("pid {pid}"),
                format!("port proxy of container {}, which is not running", record.id),
                || {
                    proxy::stop(pid, &dir);
                    Ok("stopped".to_string())
                },
            );
        }
        self.checked("port proxies", count);
    }

    /// Empty cgroups named like a container that this daemon does not have.
    fn cgroups(&mut self) {
        let known: HashSet<String> = self.inner.containers.list().into_iter().map(|r| r.id).collect();
        let empty =
            |path: &Path| fs::read_to_string(path.join("cgroup.procs")).is_ok_and(|p| p.trim().is_empty());
        let mut count = 0;
        let mut candidates = Vec::new();
        for parent in cgroup_parents() {
            let Ok(entries) = fs::read_dir(&parent) else { continue };
            for entry in entries.flatten() {
                let id = entry.file_name().to_string_lossy().into_owned();
                if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) || !entry.path().is_dir() {
                    continue;
                }
                count += 1;
                if !known.contains(&id) && empty(&entry.path()) {
                    candidates.push(entry.path());
                }
            }
        }
        if !candidates.is_empty() {
            // Looked at again a moment later: a container of another daemon on this host may be
            // between making its cgroup and moving its process in.
            std::thread::sleep(CGROUP_SETTLE);
        }
        for path in candidates.into_iter().filter(|p| empty(p)) {
            self.found("cgroup", path.display().to_string(), "empty cgroup of no container", || {
                fs::remove_dir(&path).map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
                Ok("removed".to_string())
            });
        }
        self.checked("cgroups", count);
    }

    fn volumes(&mut self) -> Result<()> {
        let dir = self.inner.config.root.join("volumes");
        let mut count = 0;
        for entry in read_dir(&dir)? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name.starts_with("tmp-") {
                // A volume being made or removed.
                continue;
            }
            count += 1;
            let path = entry.path();
            let meta = path.join("volume.json");
            let parsed = fs::read(&meta)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).map_err(|e| e.to_string()));
            let root = self.inner.config.root.clone();
            if let Err(e) = parsed {
                self.found("volume", name, format!("metadata {}: {e}", meta.display()), || {
                    move_aside(&root, "volumes", &path)
                });
                continue;
            }
            let data = path.join("_data");
            if !data.is_dir() {
                self.found("volume", name, "its _data directory is missing", || {
                    fs::create_dir(&data)
                        .map_err(|e| Error::io(format!("creating {}", data.display()), e))?;
                    Ok("made an empty _data directory".to_string())
                });
            }
        }
        self.checked("volumes", count);
        Ok(())
    }
}

fn read_dir(dir: &Path) -> Result<Vec<fs::DirEntry>> {
    match fs::read_dir(dir) {
        Ok(entries) => entries
            .collect::<io::Result<Vec<_>>>()
            .map_err(|e| Error::io(format!("reading {}", dir.display()), e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::io(format!("reading {}", dir.display()), e)),
    }
}

fn hash_file(path: &Path) -> io::Result<String> {
    let mut file = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// Moves `path` to `<root>/lost+found/<area>/<name>` (with a suffix if that is taken).
fn move_aside(root: &Path, area: &str, path: &Path) -> Result<String> {
    let dir = root.join(LOST_AND_FOUND).join(area);
    crate::fsutil::create_private_dir(&dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "unnamed".into());
    let mut target = dir.join(&name);
    let mut n = 1;
    while target.exists() {
        target = dir.join(format!("{name}.{n}"));
        n += 1;
    }
    fs::rename(path, &target)
        .map_err(|e| Error::io(format!("moving {} to {}", path.display(), target.display()), e))?;
    Ok(format!("moved to {}", target.display()))
}

/// Takes a broken image out of the index; its record and tags are kept in lost+found.
fn move_image_aside(
    inner: &EngineInner,
    record: &crate::store::ImageRecord,
    tags: &[String],
) -> Result<String> {
    let dir = inner.config.root.join(LOST_AND_FOUND).join("images");
    crate::fsutil::create_private_dir(&dir)?;
    let kept = dir.join(format!("{}.json", record.id.digest()));
    let json = serde_json::json!({"record": record, "tags": tags});
    crate::fsutil::write_atomic(&kept, &serde_json::to_vec_pretty(&json).expect("image record serialises"))?;
    inner.images.remove(&record.id)?;
    Ok(format!(
        "removed from the image index (record and tags kept in {}); pull or load it again",
        kept.display()
    ))
}

/// Mount points from /proc/self/mountinfo (octal escapes decoded).
fn mount_points() -> Result<Vec<PathBuf>> {
    let text = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::io("reading /proc/self/mountinfo", e))?;
    let mut seen = BTreeSet::new();
    for line in text.lines() {
        if let Some(field) = line.split(' ').nth(4) {
            seen.insert(PathBuf::from(OsString::from_vec(unescape_mountinfo(field))));
        }
    }
    Ok(seen.into_iter().collect())
}

/// The directories containers' cgroups are made in, in each mounted hierarchy.
fn cgroup_parents() -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    let mut parents = vec![base.join(crate::runtime::cgroup::CGROUP_PARENT)];
    if let Ok(entries) = fs::read_dir(base) {
        for entry in entries.flatten() {
            let candidate = entry.path().join(crate::runtime::cgroup::CGROUP_PARENT);
            if candidate.is_dir() && !parents.contains(&candidate) {
                parents.push(candidate);
            }
        }
    }
    parents.retain(|p| p.is_dir());
    parents
}

/// PIDs of processes holding a unix socket bound at `path` (its listener's owner).
fn socket_holders(path: &Path) -> Vec<i32> {
    // The socket's inode as /proc/net/unix lists it, then the processes with an fd on it.
    let Ok(unix) = fs::read_to_string("/proc/net/unix") else { return Vec::new() };
    let shown = path.display().to_string();
    let inodes: HashSet<String> = unix
        .lines()
        .filter(|l| l.ends_with(&format!(" {shown}")))
        .filter_map(|l| l.split_whitespace().nth(6).map(str::to_string))
        .collect();
    if inodes.is_empty() {
        return Vec::new();
    }
    let mut pids = Vec::new();
    let Ok(procs) = fs::read_dir("/proc") else { return pids };
    for entry in procs.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        if pid == std::process::id() as i32 {
            continue;
        }
        let Ok(fds) = fs::read_dir(entry.path().join("fd")) else { continue };
        let holds = fds.flatten().any(|fd| {
            fs::read_link(fd.path())
                .ok()
                .and_then(|t| {
                    t.to_str()
                        .and_then(|t| t.strip_prefix("socket:["))
                        .map(|t| t.trim_end_matches(']').to_string())
                })
                .is_some_and(|inode| inodes.contains(&inode))
        });
        if holds {
            pids.push(pid);
        }
    }
    pids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_mountinfo("/a\\040b"), b"/a b");
        assert_eq!(unescape_mountinfo("/plain"), b"/plain");
        assert_eq!(unescape_mountinfo("/end\\"), b"/end\\");
    }

    #[test]
    fn a_digest_names_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        fs::write(&p, b"").unwrap();
        assert_eq!(
            hash_file(&p).unwrap(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
