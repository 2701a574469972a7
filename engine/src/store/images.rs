//! The image index: which images the store holds and which references (tags and digests) point
//! at them. It is one small JSON file, `images.json`, rewritten atomically on every change under
//! a lock, so readers never see half an update and a crash loses at most the change under way.
//!
//! An image is identified like Docker does it: its ID is the digest of its config. The record
//! also keeps the manifest it came with, so that `save` and `push` hand out the same bytes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use oci_spec::image::Digest;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::reference::Reference;

/// One image in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Digest of the config blob: the image ID.
    pub id: Digest,
    /// Digest of the manifest blob.
    pub manifest: Digest,
    /// Media type of the manifest (OCI or Docker schema 2).
    pub manifest_media_type: String,
    /// When this store first got the image.
    pub added: DateTime<Utc>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct IndexFile {
    /// Image ID (`sha256:...`) → record.
    images: BTreeMap<String, ImageRecord>,
    /// Normalised tagged reference (`docker.io/library/busybox:latest`) → image ID.
    tags: BTreeMap<String, String>,
}

#[derive(Debug)]
pub struct ImageStore {
    path: PathBuf,
    index: Mutex<IndexFile>,
}

impl ImageStore {
    pub fn open(root: &Path) -> Result<ImageStore> {
        let path = root.join("images.json");
        let index = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| Error::InvalidInput(format!("corrupt image index {}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => IndexFile::default(),
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        Ok(ImageStore { path, index: Mutex::new(index) })
    }

    fn save(&self, index: &IndexFile) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(index).expect("image index serialises");
        write_atomic(&self.path, &bytes)
    }

    /// Runs `f` on the index under the lock and persists the result if `f` succeeds.
    fn update<T>(&self, f: impl FnOnce(&mut IndexFile) -> Result<T>) -> Result<T> {
        let mut index = self.index.lock().expect("image index lock");
        let backup = serde_json::to_vec(&*index).expect("image index serialises");
        match f(&mut index).and_then(|v| self.save(&index).map(|()| v)) {
            Ok(v) => Ok(v),
            Err(e) => {
                // Keep memory equal to disk when the change did not land.
                *index = serde_json::from_slice(&backup).expect("image index round-trips");
                Err(e)
            }
        }
    }

    /// Every image with its tags (sorted).
    pub fn list(&self) -> Vec<(ImageRecord, Vec<String>)> {
        let index = self.index.lock().expect("image index lock");
        index.images.values().map(|r| (r.clone(), tags_of(&index, &r.id))).collect()
    }

    pub fn get(&self, id: &Digest) -> Option<ImageRecord> {
        self.index.lock().expect("image index lock").images.get(&id.to_string()).cloned()
    }

    /// The tags pointing at an image, sorted.
    pub fn tags(&self, id: &Digest) -> Vec<String> {
        tags_of(&self.index.lock().expect("image index lock"), id)
    }

    /// Finds an image the way Docker's CLI does: a reference (tag, or `name@digest` matching the
    /// manifest digest), a full ID (`sha256:<hex>` or `<hex>`), or an unambiguous ID prefix.
    pub fn resolve(&self, name: &str) -> Result<ImageRecord> {
        let index = self.index.lock().expect("image index lock");
        let not_found = || Error::ImageNotFound(name.to_string());
        // An ID or an ID prefix: hex only, optionally with the algorithm.
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        let looks_like_id = !hex.is_empty()
            && hex.len() <= 64
            && hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        if let Ok(reference) = Reference::parse(name) {
            if let Some(digest) = reference.digest() {
                return index.images.values().find(|r| &r.manifest == digest).cloned().ok_or_else(not_found);
            }
            if let Some(id) = index.tags.get(&reference.to_string()) {
                return Ok(index.images[id].clone());
            }
        } else if !looks_like_id {
            return Err(Error::InvalidReference(format!(
                "{name:?}: {}",
                Reference::parse(name).unwrap_err()
            )));
        }
        if looks_like_id {
            let matches: Vec<&ImageRecord> =
                index.images.values().filter(|r| r.id.digest().starts_with(hex)).collect();
            match matches.as_slice() {
                [one] => return Ok((*one).clone()),
                [] => {}
                _ => return Err(Error::InvalidInput(format!("image ID prefix {hex:?} is ambiguous"))),
            }
        }
        Err(not_found())
    }

    /// Adds an image, or keeps the existing record if the store already has that ID.
    pub fn add(&self, record: ImageRecord) -> Result<ImageRecord> {
        self.update(|index| Ok(index.images.entry(record.id.to_string()).or_insert(record).clone()))
    }

    /// Points `reference` at image `id`. Returns the image it pointed at before, if another.
    pub fn tag(&self, reference: &Reference, id: &Digest) -> Result<Option<Digest>> {
        if reference.tag().is_none() {
            return Err(Error::InvalidReference(format!("{reference}: a tag is needed to name an image")));
        }
        self.update(|index| {
            if !index.images.contains_key(&id.to_string()) {
                return Err(Error::ImageNotFound(id.to_string()));
            }
            let previous = index.tags.insert(reference.to_string(), id.to_string());
            Ok(previous
                .filter(|p| p != &id.to_string())
                .map(|p| crate::digest::parse_sha256(&p).expect("stored IDs are digests")))
        })
    }

    /// Removes a tag. Returns whether it existed.
    pub fn untag(&self, reference: &str) -> Result<bool> {
        self.update(|index| Ok(index.tags.remove(reference).is_some()))
    }

    /// Removes an image and every tag pointing at it. Returns the removed tags.
    pub fn remove(&self, id: &Digest) -> Result<Vec<String>> {
        self.update(|index| {
            let tags = tags_of(index, id);
            for t in &tags {
                index.tags.remove(t);
            }
            index.images.remove(&id.to_string());
            Ok(tags)
        })
    }
}

fn tags_of(index: &IndexFile, id: &Digest) -> Vec<String> {
    let id = id.to_string();
    index.tags.iter().filter(|(_, v)| **v == id).map(|(k, _)| k.clone()).collect()
}
