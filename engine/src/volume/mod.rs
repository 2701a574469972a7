//! Volumes: directories the engine keeps outside any container, mounted into containers, that
//! outlive them. A volume is `<root>/volumes/<name>/` holding `volume.json` (its metadata) and
//! `_data/` (what containers see), as Docker's local driver lays them out.
//!
//! Named volumes come from `berth volume create` or from `-v NAME:/path` on demand; anonymous
//! ones (an image's VOLUME, `-v /path`) are made for one container at its create and go with
//! `rm -v` or `--rm`. A volume that some container's config mounts is in use and cannot be
//! removed. [`mounts`] turns a container's mounts into the runtime spec's.

pub(crate) mod mounts;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use berth_types::name::{check_object_name, ObjectKind};
use berth_types::volume::{MountType, VolumeCreate, VolumeInspect, VolumePruneReport};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::{fsutil, Engine, EngineInner};

/// The only driver: a directory on the engine's file system.
pub const LOCAL_DRIVER: &str = "local";

/// The label Docker puts on anonymous volumes (`volume prune` without `-a` removes only those).
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// Prefix of the directories a create or remove works in; what an interruption leaves of them
/// is removed on open.
const TMP_PREFIX: &str = ".tmp-";

/// What `volume.json` keeps.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct VolumeMeta {
    name: String,
    driver: String,
    created: DateTime<Utc>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    anonymous: bool,
    /// The container whose create made this anonymous volume: a create that a crash cut short
    /// leaves no volume behind (see [`remove_volumes_made_for`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    container: Option<String>,
}

/// The volumes under `<root>/volumes`.
pub struct VolumeStore {
    dir: PathBuf,
    /// Taken by whatever creates or removes volumes, or decides that one is unused.
    lock: Mutex<()>,
    /// Volumes that containers being created mount, by volume: their IDs. A volume listed here
    /// is in use although no record names it yet.
    pending: Mutex<HashMap<String, Vec<String>>>,
}

impl VolumeStore {
    /// Opens (creating) `<root>/volumes` and removes what interrupted creates and removes left.
    pub fn open(root: &Path) -> Result<VolumeStore> {
        let dir = root.join("volumes");
        fsutil::create_private_dir(&dir)?;
        for entry in fs::read_dir(&dir).context(|| format!("reading {}", dir.display()))?.flatten() {
            if entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                tracing::info!(path = %entry.path().display(), "removing an unfinished volume create or remove");
                let _ = fs::remove_dir_all(entry.path());
            }
        }
        Ok(VolumeStore { dir, lock: Mutex::new(()), pending: Mutex::new(HashMap::new()) })
    }

    /// The directory a volume's data lives in (mounted into containers).
    pub fn data_path(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("_data")
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        // The lock guards no data of its own, so a panic that poisoned it left nothing torn.
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<String, Vec<String>>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self, name: &str) -> Result<VolumeMeta> {
        if validate_name(name).is_err() {
            return Err(Error::VolumeNotFound(name.to_string()));
        }
        let path = self.dir.join(name).join("volume.json");
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::VolumeNotFound(name.to_string()))
            }
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::InvalidInput(format!("invalid volume metadata {}: {e}", path.display())))
    }

    /// Every volume's name, sorted.
    fn names(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir).context(|| format!("reading {}", self.dir.display()))? {
            let entry = entry.context(|| format!("reading {}", self.dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with(TMP_PREFIX) && entry.path().join("volume.json").is_file() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Creates the volume unless it exists; the caller holds the lock. Returns its metadata and
    /// whether this call made it.
    fn create_locked(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
        anonymous: bool,
        container: Option<&str>,
    ) -> Result<(VolumeMeta, bool)> {
        validate_name(name)?;
        match self.read(name) {
            Ok(meta) => return Ok((meta, false)),
            Err(Error::VolumeNotFound(_)) => {}
            Err(e) => return Err(e),
        }
        let meta = VolumeMeta {
            name: name.to_string(),
            driver: LOCAL_DRIVER.to_string(),
            created: Utc::now(),
            labels,
            anonymous,
            container: container.map(str::to_string),
        };
        // Made under a temporary name and renamed into place: a crash never leaves a volume
        // without its metadata.
        let tmp = self.dir.join(format!("{TMP_PREFIX}{}", hex::encode(rand::random::<[u8; 8]>())));
        let made = (|| {
            fs::create_dir(&tmp).context(|| format!("creating {}", tmp.display()))?;
            let data = tmp.join("_data");
            // Containers see `_data` as the mounted directory's root: 0755 as Docker's.
            fs::create_dir(&data).context(|| format!("creating {}", data.display()))?;
            let json = serde_json::to_vec_pretty(&meta).expect("volume metadata serialises");
            fsutil::write_atomic(&tmp.join("volume.json"), &json)?;
            let target = self.dir.join(name);
            fs::rename(&tmp, &target).context(|| format!("creating {}", target.display()))?;
            fsutil::sync_dir(&self.dir)
        })();
        if let Err(e) = made {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        Ok((meta, true))
    }

    /// Removes the volume's directory; the caller holds the lock and checked it is unused.
    /// Returns the bytes it held.
    fn remove_locked(&self, name: &str) -> Result<u64> {
        self.read(name)?;
        let dir = self.dir.join(name);
        let size = fsutil::disk_usage(&dir.join("_data"));
        // Renamed away first so that a remove cut short never leaves a half-empty volume.
        let tmp = self.dir.join(format!("{TMP_PREFIX}rm-{}", hex::encode(rand::random::<[u8; 8]>())));
        fs::rename(&dir, &tmp).context(|| format!("removing {}", dir.display()))?;
        fs::remove_dir_all(&tmp).context(|| format!("removing {}", tmp.display()))?;
        Ok(size)
    }

    /// Notes that container `id`, being created, mounts `name`.
    fn add_pending(&self, name: &str, id: &str) {
        self.pending().entry(name.to_string()).or_default().push(id.to_string());
    }

    fn remove_pending(&self, name: &str, id: &str) {
        let mut pending = self.pending();
        if let Some(ids) = pending.get_mut(name) {
            ids.retain(|i| i != id);
            if ids.is_empty() {
                pending.remove(name);
            }
        }
    }
}

/// Docker's rule for local volume names ([`check_object_name`]), worded as Docker's daemon.
pub(crate) fn validate_name(name: &str) -> Result<()> {
    check_object_name(ObjectKind::Volume, name).map(drop).map_err(|e| Error::InvalidInput(e.create_message()))
}

/// Which containers use each volume: those whose record mounts it (running or not, as Docker
/// counts them) and those being created with it.
fn volume_users(inner: &EngineInner) -> HashMap<String, Vec<String>> {
    let mut users: HashMap<String, Vec<String>> = HashMap::new();
    for record in inner.containers.list() {
        for m in &record.config.mounts {
            if m.mount_type == MountType::Volume && !m.source.is_empty() {
                let ids = users.entry(m.source.clone()).or_default();
                if !ids.contains(&record.id) {
                    ids.push(record.id.clone());
                }
            }
        }
    }
    for (name, ids) in inner.volumes.pending().iter() {
        let entry = users.entry(name.clone()).or_default();
        for id in ids {
            if !entry.contains(id) {
                entry.push(id.clone());
            }
        }
    }
    for ids in users.values_mut() {
        ids.sort();
    }
    users
}

fn inspect(inner: &EngineInner, meta: VolumeMeta, users: &HashMap<String, Vec<String>>) -> VolumeInspect {
    VolumeInspect {
        mountpoint: inner.volumes.data_path(&meta.name).display().to_string(),
        used_by: users.get(&meta.name).cloned().unwrap_or_default(),
        created: meta.created.to_rfc3339_opts(SecondsFormat::Secs, true),
        name: meta.name,
        driver: meta.driver,
        labels: meta.labels,
        anonymous: meta.anonymous,
        size: None,
    }
}

/// A new anonymous volume's name: 64 hex digits, as Docker's.
pub(crate) fn anonymous_name() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Removes the anonymous volumes that the container's record mounts and no other container
/// uses (`rm -v`, `--rm`). Failures are logged: the container is gone either way.
pub(crate) fn remove_anonymous_of(inner: &EngineInner, record: &crate::container::ContainerRecord) {
    let store = &inner.volumes;
    let _guard = store.lock();
    let users = volume_users(inner);
    for m in &record.config.mounts {
        if m.mount_type != MountType::Volume || m.source.is_empty() {
            continue;
        }
        let Ok(meta) = store.read(&m.source) else { continue };
        if !meta.anonymous {
            continue;
        }
        let others: Vec<&String> = users
            .get(&m.source)
            .map(|ids| ids.iter().filter(|id| **id != record.id).collect())
            .unwrap_or_default();
        if !others.is_empty() {
            tracing::info!(volume = %m.source, "keeping an anonymous volume that another container uses");
            continue;
        }
        if let Err(e) = store.remove_locked(&m.source) {
            tracing::warn!(volume = %m.source, error = %e, "removing the container's anonymous volume");
        }
    }
}

/// Removes the anonymous volumes that the create of container `id` made, when that create was
/// cut short (the engine found it unfinished on open).
pub(crate) fn remove_volumes_made_for(inner: &EngineInner, id: &str) {
    let store = &inner.volumes;
    let _guard = store.lock();
    let Ok(names) = store.names() else { return };
    let users = volume_users(inner);
    for name in names {
        let Ok(meta) = store.read(&name) else { continue };
        if meta.anonymous && meta.container.as_deref() == Some(id) && !users.contains_key(&name) {
            tracing::info!(volume = %name, container = %id, "removing a volume of an unfinished create");
            if let Err(e) = store.remove_locked(&name) {
                tracing::warn!(volume = %name, error = %e, "removing a volume of an unfinished create");
            }
        }
    }
}

impl Engine {
    /// Removes the anonymous volumes of a container just removed (`rm -v`, `--rm`); see
    /// [`remove_anonymous_of`].
    pub(crate) async fn remove_anonymous_volumes(&self, record: crate::container::ContainerRecord) {
        let _ = self
            .blocking(move |inner| {
                remove_anonymous_of(inner, &record);
                Ok(())
            })
            .await;
    }

    /// `berth volume create`: a new volume, or the existing one of that name (as Docker). An
    /// empty name gets a generated one.
    pub async fn create_volume(&self, request: VolumeCreate) -> Result<VolumeInspect> {
        if !request.driver.is_empty() && request.driver != LOCAL_DRIVER {
            return Err(Error::InvalidInput(format!("plugin {:?} not found", request.driver)));
        }
        for key in request.labels.keys() {
            if key.is_empty() {
                return Err(Error::InvalidInput("invalid label: the key is empty".into()));
            }
        }
        self.blocking(move |inner| {
            let name = if request.name.is_empty() { anonymous_name() } else { request.name };
            let store = &inner.volumes;
            let _guard = store.lock();
            let (meta, _) = store.create_locked(&name, request.labels, false, None)?;
            Ok(inspect(inner, meta, &volume_users(inner)))
        })
        .await
    }

    /// `berth volume ls`: every volume, by name.
    pub async fn list_volumes(&self) -> Result<Vec<VolumeInspect>> {
        self.blocking(|inner| {
            let users = volume_users(inner);
            let mut volumes = Vec::new();
            for name in inner.volumes.names()? {
                match inner.volumes.read(&name) {
                    Ok(meta) => volumes.push(inspect(inner, meta, &users)),
                    // Removed since the listing.
                    Err(Error::VolumeNotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(volumes)
        })
        .await
    }

    /// `berth volume inspect NAME`, with the size of its data.
    pub async fn inspect_volume(&self, name: &str) -> Result<VolumeInspect> {
        let name = name.to_string();
        self.blocking(move |inner| {
            let meta = inner.volumes.read(&name)?;
            let mut volume = inspect(inner, meta, &volume_users(inner));
            volume.size = Some(fsutil::disk_usage(&inner.volumes.data_path(&name)));
            Ok(volume)
        })
        .await
    }

    /// `berth volume rm [-f] NAME`: refused while a container's config mounts it (even with
    /// `force`, as Docker: force only ignores a volume that does not exist).
    pub async fn remove_volume(&self, name: &str, force: bool) -> Result<()> {
        let name = name.to_string();
        self.blocking(move |inner| {
            let store = &inner.volumes;
            let _guard = store.lock();
            match store.read(&name) {
                Ok(_) => {}
                Err(Error::VolumeNotFound(_)) if force => return Ok(()),
                Err(e) => return Err(e),
            }
            if let Some(ids) = volume_users(inner).remove(&name) {
                return Err(Error::VolumeInUse { name, containers: ids });
            }
            store.remove_locked(&name).map(|_| ())
        })
        .await
    }

    /// `berth volume prune [-a]`: removes unused anonymous volumes, and with `all` every unused
    /// volume (Docker 23's behaviour).
    pub async fn prune_volumes(&self, all: bool) -> Result<VolumePruneReport> {
        self.prune_volumes_where(all, |_| true).await
    }

    /// [`Engine::prune_volumes`] of the volumes whose labels `chosen` accepts only (Docker's
    /// `label` filters).
    pub async fn prune_volumes_where(
        &self,
        all: bool,
        chosen: impl Fn(&BTreeMap<String, String>) -> bool + Send + 'static,
    ) -> Result<VolumePruneReport> {
        self.blocking(move |inner| {
            let store = &inner.volumes;
            let _guard = store.lock();
            let users = volume_users(inner);
            let mut report = VolumePruneReport::default();
            for name in store.names()? {
                if users.contains_key(&name) {
                    continue;
                }
                let Ok(meta) = store.read(&name) else { continue };
                if (!all && !meta.anonymous) || !chosen(&meta.labels) {
                    continue;
                }
                report.space_reclaimed += store.remove_locked(&name)?;
                report.volumes_deleted.push(name);
            }
            Ok(report)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dockers_rule() {
        for good in ["db", "my_data.v1-2", "0abc", &"a".repeat(64)] {
            validate_name(good).unwrap();
        }
        assert!(validate_name(&"a".repeat(256)).unwrap_err().to_string().contains("longer than 255"));
        assert!(validate_name(&"é".repeat(200)).is_err());
        for bad in ["", "a", "-x", "_x", ".x", "a/b", "../x", "a b", "/abs", "x:y"] {
            let e = validate_name(bad).unwrap_err().to_string();
            assert!(e.contains("includes invalid characters for a local volume name"), "{bad}: {e}");
        }
    }

    #[test]
    fn create_is_idempotent_and_remove_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let store = VolumeStore::open(root.path()).unwrap();
        let (meta, made) = store.create_locked("data", BTreeMap::new(), false, None).unwrap();
        assert!(made);
        assert!(!meta.anonymous);
        fs::write(store.data_path("data").join("f"), b"x").unwrap();
        let (_, made) = store.create_locked("data", BTreeMap::new(), true, None).unwrap();
        assert!(!made, "an existing volume is returned, not made again");
        assert_eq!(store.names().unwrap(), ["data"]);
        assert!(store.remove_locked("data").unwrap() > 0);
        assert!(matches!(store.read("data"), Err(Error::VolumeNotFound(_))));
        assert_eq!(fs::read_dir(root.path().join("volumes")).unwrap().count(), 0);
        assert!(matches!(store.remove_locked("data"), Err(Error::VolumeNotFound(_))));
    }

    #[test]
    fn anonymous_volumes_remember_the_create_that_made_them() {
        let root = tempfile::tempdir().unwrap();
        let store = VolumeStore::open(root.path()).unwrap();
        store.create_locked("anon1", BTreeMap::new(), true, Some("c1")).unwrap();
        store.create_locked("named", BTreeMap::new(), false, None).unwrap();
        let store = VolumeStore::open(root.path()).unwrap();
        assert_eq!(store.read("anon1").unwrap().container.as_deref(), Some("c1"));
        assert_eq!(store.read("named").unwrap().container, None);
    }

    #[test]
    fn reopening_the_engine_removes_volumes_of_an_unfinished_create() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::EngineConfig::new(dir.path().join("root"), dir.path().join("run"));
        let engine = crate::Engine::open_blocking(config.clone()).unwrap();
        let id = "ab".repeat(32);
        let volumes = &engine.inner().volumes;
        volumes.create_locked("anon-of-crashed", BTreeMap::new(), true, Some(&id)).unwrap();
        volumes.create_locked("anon-of-other", BTreeMap::new(), true, Some(&"cd".repeat(32))).unwrap();
        // The create was cut short after its directory was made, before its record was.
        fs::create_dir_all(engine.inner().containers.paths(&id).dir).unwrap();
        drop(engine);
        let engine = crate::Engine::open_blocking(config).unwrap();
        assert_eq!(engine.inner().volumes.names().unwrap(), ["anon-of-other"]);
    }

    #[test]
    fn open_removes_leftovers_of_interrupted_work() {
        let root = tempfile::tempdir().unwrap();
        let left = root.path().join("volumes").join(".tmp-0123");
        fs::create_dir_all(left.join("_data")).unwrap();
        let store = VolumeStore::open(root.path()).unwrap();
        assert!(!left.exists());
        assert!(store.names().unwrap().is_empty());
    }
}
