//! The served index: what the registry server holds beyond the image index. Images pushed by tag
//! live in the image index (`images.json`) like any local image; this file keeps the rest of a
//! registry's state — every manifest pushed to a repository (by tag or digest: image indexes,
//! platform manifests of an index, artifacts, referrers) and the tags that point at manifests
//! which are not local images (indexes, artifacts). One small JSON file, `distribution.json`,
//! rewritten atomically under a lock, as the image index is.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsutil::write_atomic;

/// One repository of the served index.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ServedRepository {
    /// Tag → manifest digest, for manifests that are not local images.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Manifest digest → media type, for every manifest pushed to the repository.
    #[serde(default)]
    pub manifests: BTreeMap<String, String>,
    /// Tag → manifest digest of images pushed by tag whose layers are still being unpacked into a
    /// local image (served by `tags` meanwhile); what a crash leaves here is unpacked at start.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unpacking: BTreeMap<String, String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ServedFile {
    repositories: BTreeMap<String, ServedRepository>,
}

#[derive(Debug)]
pub struct ServedIndex {
    path: PathBuf,
    file: Mutex<ServedFile>,
}

impl ServedIndex {
    pub fn open(root: &Path) -> Result<ServedIndex> {
        let path = root.join("distribution.json");
        let file = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| Error::InvalidInput(format!("corrupt served index {}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ServedFile::default(),
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        Ok(ServedIndex { path, file: Mutex::new(file) })
    }

    /// Every repository, by name.
    pub fn repositories(&self) -> BTreeMap<String, ServedRepository> {
        self.file.lock().expect("served index lock").repositories.clone()
    }

    pub fn repository(&self, name: &str) -> Option<ServedRepository> {
        self.file.lock().expect("served index lock").repositories.get(name).cloned()
    }

    /// Changes one repository under the lock and persists it; a repository left empty is removed.
    pub fn update<T>(&self, name: &str, f: impl FnOnce(&mut ServedRepository) -> T) -> Result<T> {
        let mut file = self.file.lock().expect("served index lock");
        let before = file.repositories.get(name).cloned();
        let repo = file.repositories.entry(name.to_string()).or_default();
        let value = f(repo);
        if repo.tags.is_empty() && repo.manifests.is_empty() {
            file.repositories.remove(name);
        }
        let bytes = serde_json::to_vec_pretty(&*file).expect("served index serialises");
        if let Err(e) = write_atomic(&self.path, &bytes) {
            // Keep memory equal to disk when the change did not land.
            match before {
                Some(b) => file.repositories.insert(name.to_string(), b),
                None => file.repositories.remove(name),
            };
            return Err(e);
        }
        Ok(value)
    }
}
