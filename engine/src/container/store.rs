//! Container records and names: `<root>/containers/<id>/container.json` plus the in-memory index
//! the daemon resolves names, IDs and ID prefixes with.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use berth_types::container::ContainerConfig;
use berth_types::name::{check_object_name, ObjectKind};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use super::events::EngineEvent;
use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::monitor::protocol::RunState;

/// The last run state the daemon saw of a container, and whether it was removed since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    pub state: RunState,
    pub removed: bool,
}

/// What the engine keeps about a container besides its run state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// 64 hex digits.
    pub id: String,
    pub name: String,
    pub created: DateTime<Utc>,
    /// The image as the user named it.
    pub image: String,
    /// `sha256:...`.
    pub image_id: String,
    /// The request, with the defaults that were applied (runtime, stop signal and timeout).
    pub config: ContainerConfig,
    /// The process's executable and arguments after merging with the image.
    pub path: String,
    pub args: Vec<String>,
    /// `berth`, `runc` or `crun`.
    pub runtime: String,
    pub snapshotter: String,
    /// The resolved stop signal's number.
    pub stop_signal: i32,
    /// Seconds between the stop signal and SIGKILL.
    pub stop_timeout: u32,
}

/// Files of one container.
#[derive(Debug, Clone)]
pub struct ContainerPaths {
    /// `<root>/containers/<id>`: also the OCI bundle (its `config.json`).
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub record: PathBuf,
    pub state: PathBuf,
    pub log: PathBuf,
    pub monitor_config: PathBuf,
    pub monitor_log: PathBuf,
    /// The monitor's socket under the run directory. Named by a 16-digit prefix of the ID so
    /// that the path stays within the 108 bytes of a unix socket address.
    pub socket: PathBuf,
}

/// Records, names and the daemon-side bookkeeping of the containers (watchers, waiters, stats).
pub struct ContainerStore {
    root: PathBuf,
    run_dir: PathBuf,
    records: Mutex<BTreeMap<String, ContainerRecord>>,
    pub(crate) events: broadcast::Sender<EngineEvent>,
    /// Last known run state of each container that someone watched.
    pub(crate) states: Mutex<HashMap<String, watch::Sender<Seen>>>,
    /// Containers with a task following their monitor.
    pub(crate) watchers: Mutex<HashSet<String>>,
    /// Waits answered by re-reading the state file instead of by an event (see `wait_on`).
    pub(crate) poll_answers: AtomicU64,
    /// Previous CPU sample per container, for `cpu_percent`.
    pub(crate) cpu_samples: Mutex<HashMap<String, (u64, Instant)>>,
    /// Serialises lifecycle operations (start, stop, remove, ...) on one container.
    op_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Cancelled when the engine goes away: its watcher tasks end (the monitors do not).
    pub(crate) cancel: CancellationToken,
}

impl Drop for ContainerStore {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl ContainerStore {
    /// Loads the records under `<root>/containers`. A directory without a readable record is a
    /// create that was interrupted; it is reported and skipped (and removed by
    /// [`ContainerStore::half_created`]'s caller).
    pub fn open(root: &Path, run_dir: &Path) -> Result<ContainerStore> {
        let dir = root.join("containers");
        fsutil::create_private_dir(&dir)?;
        let mut records = BTreeMap::new();
        for entry in fs::read_dir(&dir).context(|| format!("reading {}", dir.display()))? {
            let entry = entry.context(|| format!("reading {}", dir.display()))?;
            let path = entry.path().join("container.json");
            match fs::read(&path) {
                Ok(bytes) => match serde_json::from_slice::<ContainerRecord>(&bytes) {
                    Ok(record) => {
                        records.insert(record.id.clone(), record);
                    }
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "skipping a bad container record")
                    }
                },
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
            }
        }
        Ok(ContainerStore {
            root: dir,
            run_dir: run_dir.to_path_buf(),
            records: Mutex::new(records),
            events: broadcast::channel(1024).0,
            states: Mutex::default(),
            watchers: Mutex::default(),
            poll_answers: AtomicU64::new(0),
            cpu_samples: Mutex::default(),
            op_locks: Mutex::default(),
            cancel: CancellationToken::new(),
        })
    }

    /// Directories under `<root>/containers` without a record: creates that did not finish.
    pub fn half_created(&self) -> Vec<String> {
        let records = self.lock();
        let Ok(entries) = fs::read_dir(&self.root) else { return Vec::new() };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|name| is_full_id(name) && !records.contains_key(name))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, ContainerRecord>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn paths(&self, id: &str) -> ContainerPaths {
        let dir = self.root.join(id);
        ContainerPaths {
            rootfs: dir.join("rootfs"),
            record: dir.join("container.json"),
            state: dir.join("state.json"),
            log: dir.join("container.log"),
            monitor_config: dir.join("monitor.json"),
            monitor_log: dir.join("monitor.log"),
            socket: self.run_dir.join("containers").join(format!("{}.sock", &id[..16.min(id.len())])),
            dir,
        }
    }

    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// Every record.
    pub fn list(&self) -> Vec<ContainerRecord> {
        self.lock().values().cloned().collect()
    }

    pub fn get(&self, id: &str) -> Option<ContainerRecord> {
        self.lock().get(id).cloned()
    }

    /// Resolves a full ID, a name (with or without a leading `/`) or a unique ID prefix, as
    /// Docker does.
    pub fn resolve(&self, name: &str) -> Result<ContainerRecord> {
        let records = self.lock();
        if let Some(record) = records.get(name) {
            return Ok(record.clone());
        }
        let plain = name.strip_prefix('/').unwrap_or(name);
        if let Some(record) = records.values().find(|r| r.name == plain) {
            return Ok(record.clone());
        }
        if !name.is_empty() && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut found = records.values().filter(|r| r.id.starts_with(name));
            if let Some(first) = found.next() {
                if found.next().is_some() {
                    return Err(Error::InvalidInput(format!(
                        "multiple containers found with provided prefix: {name}"
                    )));
                }
                return Ok(first.clone());
            }
        }
        Err(Error::ContainerNotFound(name.to_string()))
    }

    /// Adds a new record (written to its directory first). Fails if the name is taken.
    pub fn insert(&self, record: ContainerRecord) -> Result<()> {
        let mut records = self.lock();
        check_name_free(&records, &record.name)?;
        write_record(&self.paths(&record.id).record, &record)?;
        records.insert(record.id.clone(), record);
        Ok(())
    }

    /// Renames a container; returns the old name.
    pub fn rename(&self, id: &str, new_name: &str) -> Result<String> {
        let mut records = self.lock();
        let mut record = records.get(id).cloned().ok_or_else(|| Error::ContainerNotFound(id.to_string()))?;
        if record.name == new_name {
            return Err(Error::Conflict(
                "Renaming a container with the same name as its current name".into(),
            ));
        }
        check_name_free(&records, new_name)?;
        let old = std::mem::replace(&mut record.name, new_name.to_string());
        record.config.name = Some(new_name.to_string());
        write_record(&self.paths(id).record, &record)?;
        records.insert(id.to_string(), record);
        Ok(old)
    }

    /// Changes a record with `change` and writes it; returns the new record.
    pub fn update(&self, id: &str, change: impl FnOnce(&mut ContainerRecord)) -> Result<ContainerRecord> {
        let mut records = self.lock();
        let mut record = records.get(id).cloned().ok_or_else(|| Error::ContainerNotFound(id.to_string()))?;
        change(&mut record);
        write_record(&self.paths(id).record, &record)?;
        records.insert(id.to_string(), record.clone());
        Ok(record)
    }

    /// Forgets a record (its files are the caller's).
    pub fn forget(&self, id: &str) {
        self.lock().remove(id);
        self.op_locks.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
        self.cpu_samples.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    /// Whether a name is free now (a later [`ContainerStore::insert`] checks again).
    pub fn check_name_free(&self, name: &str) -> Result<()> {
        check_name_free(&self.lock(), name)
    }

    /// A Docker-style `adjective_surname` no container has.
    pub fn generate_name(&self) -> String {
        generate_name(&self.lock())
    }

    /// [`ContainerStore::insert`] for a record whose name the engine chose: a name that a
    /// concurrent create took since it was generated is replaced by a new one, as Docker's
    /// daemon does, so that a create never fails over a name the user did not give.
    pub fn insert_generated(&self, record: &mut ContainerRecord) -> Result<()> {
        let mut records = self.lock();
        if check_name_free(&records, &record.name).is_err() {
            let name = generate_name(&records);
            record.config.name = Some(name.clone());
            record.name = name;
        }
        write_record(&self.paths(&record.id).record, record)?;
        records.insert(record.id.clone(), record.clone());
        Ok(())
    }

    /// The lock that serialises lifecycle operations on container `id`.
    pub fn op_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.op_locks.lock().unwrap_or_else(|p| p.into_inner()).entry(id.to_string()).or_default().clone()
    }

    /// The run state in the state file (created when there is none yet).
    pub fn read_state(&self, id: &str) -> RunState {
        read_state_file(&self.paths(id).state)
    }
}

pub(crate) fn read_state_file(path: &Path) -> RunState {
    fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_else(RunState::created)
}

/// Writes a record, fsynced unless the container is a `--rm` one: such a container is removed
/// after a crash anyway (by the engine's recovery), so its record needs no durability.
fn write_record(path: &Path, record: &ContainerRecord) -> Result<()> {
    let json = serde_json::to_vec_pretty(record).expect("container records serialise");
    if record.config.auto_remove {
        fsutil::write_replace(path, &json)
    } else {
        fsutil::write_atomic(path, &json)
    }
}

fn generate_name(records: &BTreeMap<String, ContainerRecord>) -> String {
    let taken: HashSet<&str> = records.values().map(|r| r.name.as_str()).collect();
    for attempt in 0.. {
        let name = super::names::random_name(attempt / 10);
        if !taken.contains(name.as_str()) {
            return name;
        }
    }
    unreachable!("names with a growing suffix run out of collisions")
}

fn check_name_free(records: &BTreeMap<String, ContainerRecord>, name: &str) -> Result<()> {
    if let Some(other) = records.values().find(|r| r.name == name) {
        return Err(Error::Conflict(format!(
            "Conflict. The container name \"/{name}\" is already in use by container \"{}\". You have to remove \
             (or rename) that container to be able to reuse that name.",
            other.id
        )));
    }
    Ok(())
}

/// Docker's container name rule ([`check_object_name`]): the name as stored, without a leading `/`.
pub fn validate_name(name: &str) -> Result<String> {
    check_object_name(ObjectKind::Container, name)
        .map(str::to_string)
        .map_err(|e| Error::InvalidField { field: "name", message: e.to_string() })
}

fn is_full_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, name: &str) -> ContainerRecord {
        ContainerRecord {
            id: id.to_string(),
            name: name.to_string(),
            created: Utc::now(),
            image: "busybox".into(),
            image_id: "sha256:00".into(),
            config: ContainerConfig::default(),
            path: "sh".into(),
            args: vec![],
            runtime: "berth".into(),
            snapshotter: "overlay".into(),
            stop_signal: 15,
            stop_timeout: 10,
        }
    }

    #[test]
    fn names_follow_dockers_rule() {
        assert_eq!(validate_name("/web-1").unwrap(), "web-1");
        assert_eq!(validate_name("a.b_c").unwrap(), "a.b_c");
        for bad in ["", "a", "-x", "_x", "a/b", "a b", "é1"] {
            let e = validate_name(bad).unwrap_err().to_string();
            assert!(e.starts_with("Invalid container name"), "{bad}: {e}");
        }
    }

    #[test]
    fn resolve_by_id_name_and_unique_prefix() {
        let root = tempfile::tempdir().unwrap();
        let store = ContainerStore::open(root.path(), &root.path().join("run")).unwrap();
        let a = format!("ab{}", "1".repeat(62));
        let b = format!("ac{}", "2".repeat(62));
        for (id, name) in [(&a, "one"), (&b, "two")] {
            fs::create_dir_all(store.paths(id).dir).unwrap();
            store.insert(record(id, name)).unwrap();
        }
        assert_eq!(store.resolve(&a).unwrap().name, "one");
        assert_eq!(store.resolve("two").unwrap().id, b);
        assert_eq!(store.resolve("/two").unwrap().id, b);
        assert_eq!(store.resolve("ab").unwrap().id, a);
        assert!(store.resolve("a").unwrap_err().to_string().contains("multiple containers"));
        let e = store.resolve("nope").unwrap_err();
        assert_eq!(e.to_string(), "No such container: nope");
        assert_eq!(e.kind(), crate::ErrorKind::NotFound);

        let e = store.insert(record(&format!("ad{}", "3".repeat(62)), "one")).unwrap_err();
        assert!(e.to_string().contains("The container name \"/one\" is already in use"), "{e}");
        assert_eq!(store.rename(&a, "three").unwrap(), "one");
        assert!(store.rename(&b, "three").is_err());

        // A second store reads what the first wrote.
        let again = ContainerStore::open(root.path(), &root.path().join("run")).unwrap();
        assert_eq!(again.resolve("three").unwrap().id, a);
        assert!(again.half_created().is_empty());
        let generated = again.generate_name();
        assert!(validate_name(&generated).is_ok(), "{generated}");
    }

    #[test]
    fn a_generated_name_taken_meanwhile_is_replaced() {
        let root = tempfile::tempdir().unwrap();
        let store = ContainerStore::open(root.path(), &root.path().join("run")).unwrap();
        let (a, b) = (format!("ab{}", "1".repeat(62)), format!("ac{}", "2".repeat(62)));
        // Two creates were given the same generated name; the first to insert keeps it.
        let name = store.generate_name();
        for id in [&a, &b] {
            fs::create_dir_all(store.paths(id).dir).unwrap();
        }
        store.insert_generated(&mut record(&a, &name)).unwrap();
        let mut second = record(&b, &name);
        store.insert_generated(&mut second).unwrap();
        assert_ne!(second.name, name);
        assert_eq!(second.config.name.as_deref(), Some(second.name.as_str()));
        assert!(validate_name(&second.name).is_ok(), "{}", second.name);
        assert_eq!(store.resolve(&second.name).unwrap().id, b);
        // Written with the new name: a second store reads it back.
        let again = ContainerStore::open(root.path(), &root.path().join("run")).unwrap();
        assert_eq!(again.resolve(&second.name).unwrap().id, b);
        assert_eq!(again.resolve(&name).unwrap().id, a);
    }
}
