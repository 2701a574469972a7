//! The registry server's engine side (the OCI distribution spec, served by `berth serve
//! --registry-listen`): repositories, tags, manifests, blobs and uploads, all from the one content
//! store. A blob is served from `blobs/sha256/` as it lies; a pushed blob is written there like a
//! pulled one (hashed while it streams, renamed in only when its digest checks out), so an image
//! pulled, built or pushed once is on disk once.
//!
//! A repository `team/app` is the local repository `docker.io/team/app` (`busybox` is
//! `library/busybox`): an image manifest pushed by tag becomes a local image, its layers unpacked
//! and the tag set, as `berth pull` would; every local image with such a name is served. What is
//! not an image — an image index, an artifact, a platform manifest pushed by digest — lives in the
//! served index (`served`). The caller's rights are the daemon's business: nothing here knows of
//! users or HTTP.

pub mod served;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use futures_util::{Stream, StreamExt};
use oci_spec::image::{Digest, MediaType};
use serde::Deserialize;

use crate::container::{EngineEvent, ImageAction, ImageEvent};
use crate::digest::{parse_sha256, sha256_of};
use crate::error::Error;
use crate::layer::Compression;
use crate::reference::Reference;
use crate::store::{BlobWriter, ImageRecord};
use crate::{Engine, EngineInner};

pub use served::{ServedIndex, ServedRepository};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// Manifests larger than this are refused (the spec's suggestion).
pub const MANIFEST_LIMIT: usize = 4 << 20;
/// How long a blob pushed without a manifest naming it yet stays in its repository (and safe
/// from garbage collection): long enough for a slow push of many layers.
const PENDING_LIFETIME: Duration = Duration::from_secs(6 * 3600);
/// An upload nobody has written to for this long is dropped (its partial file with it).
const UPLOAD_IDLE: Duration = Duration::from_secs(3600);
/// How long a local user of an image waits for its unpack from a push.
const UNPACK_WAIT: Duration = Duration::from_secs(600);

/// The distribution spec's error codes the server answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    Unsupported,
    /// A chunk that does not start where the upload stands (answered 416).
    RangeInvalid,
    /// The store failed (answered 500).
    Internal,
}

impl Code {
    /// The code as the spec spells it in an error body.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BlobUnknown => "BLOB_UNKNOWN",
            Code::BlobUploadInvalid | Code::RangeInvalid => "BLOB_UPLOAD_INVALID",
            Code::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Code::DigestInvalid => "DIGEST_INVALID",
            Code::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            Code::ManifestInvalid => "MANIFEST_INVALID",
            Code::ManifestUnknown => "MANIFEST_UNKNOWN",
            Code::NameInvalid => "NAME_INVALID",
            Code::NameUnknown => "NAME_UNKNOWN",
            Code::SizeInvalid => "SIZE_INVALID",
            Code::Unsupported => "UNSUPPORTED",
            Code::Internal => "UNKNOWN",
        }
    }
}

/// A refusal or failure of the registry server, with its spec code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct DistributionError {
    pub code: Code,
    pub message: String,
}

impl DistributionError {
    pub fn new(code: Code, message: impl Into<String>) -> DistributionError {
        DistributionError { code, message: message.into() }
    }
}

impl From<Error> for DistributionError {
    fn from(e: Error) -> DistributionError {
        let code = match &e {
            Error::DigestMismatch { .. } => Code::DigestInvalid,
            Error::BlobNotFound(_) => Code::BlobUnknown,
            _ => Code::Internal,
        };
        DistributionError::new(code, e.to_string())
    }
}

pub type DResult<T> = std::result::Result<T, DistributionError>;

/// The server's state besides the stores: uploads under way and freshly pushed blobs.
pub struct Distribution {
    pub served: ServedIndex,
    uploads: Mutex<HashMap<String, Upload>>,
    /// Blobs pushed (or mounted) into repositories that no manifest names yet.
    pending: Mutex<HashMap<Digest, Pending>>,
    /// Local references (`docker.io/team/app:1`) of pushed images whose layers are being
    /// unpacked; `unpacked` is notified as each is done.
    unpacking: Mutex<HashMap<String, usize>>,
    unpacked: Condvar,
    /// Serialises the last step of the unpacks (tag the image, drop the served tag).
    finishing: Mutex<()>,
}

struct Upload {
    repository: String,
    /// `None` while a request is writing to it.
    writer: Option<BlobWriter>,
    offset: u64,
    touched: Instant,
}

#[derive(Debug)]
struct Pending {
    repositories: HashSet<String>,
    since: Instant,
}

impl Distribution {
    pub fn open(root: &std::path::Path) -> crate::Result<Distribution> {
        Ok(Distribution {
            served: ServedIndex::open(root)?,
            uploads: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            unpacking: Mutex::new(HashMap::new()),
            unpacked: Condvar::new(),
            finishing: Mutex::new(()),
        })
    }

    /// Waits while the image `name` names (a reference) is being unpacked from a push, so that a
    /// local user of it (run, inspect, tag, ...) finds it whole or not at all; returns at once
    /// for anything else, and after `UNPACK_WAIT` at the latest.
    pub fn wait_unpacked(&self, name: &str) {
        let Ok(reference) = Reference::parse(name) else { return };
        if reference.digest().is_some() {
            return;
        }
        let key = reference.to_string();
        let deadline = Instant::now() + UNPACK_WAIT;
        let mut unpacking = self.unpacking.lock().expect("unpacking lock");
        while unpacking.contains_key(&key) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::warn!(image = key, "still unpacking after {UNPACK_WAIT:?}: not waiting longer");
                return;
            }
            unpacking = self.unpacked.wait_timeout(unpacking, left).expect("unpacking lock").0;
        }
    }

    fn unpack_started(&self, key: &str) {
        *self.unpacking.lock().expect("unpacking lock").entry(key.to_string()).or_default() += 1;
    }

    fn unpack_ended(&self, key: &str) {
        let mut unpacking = self.unpacking.lock().expect("unpacking lock");
        if let Some(n) = unpacking.get_mut(key) {
            *n -= 1;
            if *n == 0 {
                unpacking.remove(key);
            }
        }
        drop(unpacking);
        self.unpacked.notify_all();
    }

    fn link_pending(&self, digest: &Digest, repository: &str) {
        let mut pending = self.pending.lock().expect("pending lock");
        pending.retain(|_, p| p.since.elapsed() < PENDING_LIFETIME);
        let entry = pending
            .entry(digest.clone())
            .or_insert_with(|| Pending { repositories: HashSet::new(), since: Instant::now() });
        entry.repositories.insert(repository.to_string());
        entry.since = Instant::now();
    }

    fn pending_in(&self, repository: &str) -> HashSet<Digest> {
        let pending = self.pending.lock().expect("pending lock");
        pending
            .iter()
            .filter(|(_, p)| p.since.elapsed() < PENDING_LIFETIME && p.repositories.contains(repository))
            .map(|(d, _)| d.clone())
            .collect()
    }
}

/// A manifest as served: its bytes exactly as pushed or pulled, its media type and digest.
#[derive(Debug, Clone)]
pub struct ServedManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

/// What a manifest push did.
#[derive(Debug, Clone)]
pub struct PushedManifest {
    pub digest: Digest,
    /// The local image it made or tagged (its ID), when it is an image pushed by tag.
    pub image: Option<String>,
    /// The manifest's `subject`, for the `OCI-Subject` header.
    pub subject: Option<String>,
}

/// A descriptor as found in a manifest or index (only the fields the server reads).
#[derive(Debug, Clone, Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
}

/// Any manifest or index (only the fields the server reads).
#[derive(Debug, Clone, Deserialize)]
struct AnyManifest {
    #[serde(rename = "schemaVersion", default)]
    schema_version: Option<u32>,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(rename = "artifactType", default)]
    artifact_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    subject: Option<Descriptor>,
    #[serde(default)]
    annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

impl AnyManifest {
    fn is_index(&self, media_type: &str) -> bool {
        media_type == OCI_INDEX || media_type == DOCKER_LIST
    }

    /// The blobs a manifest names (config and layers); an index names none.
    fn blobs(&self) -> Vec<&Descriptor> {
        self.config.iter().chain(self.layers.iter()).collect()
    }
}

fn parse_manifest(bytes: &[u8]) -> Option<AnyManifest> {
    serde_json::from_slice(bytes).ok()
}

/// A repository name as the spec allows it, turned into the local repository's path
/// (`busybox` → `library/busybox`). A first component that names a host cannot be a repository
/// of this node's `docker.io/...` namespace and is refused.
pub fn repository_path(name: &str) -> DResult<String> {
    let invalid = |why: &str| {
        DistributionError::new(Code::NameInvalid, format!("invalid repository name {name:?}: {why}"))
    };
    if name.is_empty() || name.len() > 255 {
        return Err(invalid("empty or longer than 255 characters"));
    }
    for component in name.split('/') {
        let ok = !component.is_empty()
            && component.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && component.as_bytes()[0].is_ascii_alphanumeric()
            && component.as_bytes()[component.len() - 1].is_ascii_alphanumeric();
        if !ok {
            return Err(invalid("components are lowercase letters, digits and separators (. _ -)"));
        }
    }
    let reference = Reference::parse(name).map_err(|e| invalid(&e.to_string()))?;
    if reference.domain() != "docker.io"
        || name.starts_with("docker.io/")
        || name.starts_with("index.docker.io/")
    {
        return Err(invalid("its first component names a host"));
    }
    Ok(reference.path().to_string())
}

/// The local reference of `repository:tag`.
fn local_reference(path: &str, tag: &str) -> DResult<Reference> {
    Reference::parse(&format!("{path}:{tag}"))
        .map_err(|e| DistributionError::new(Code::ManifestInvalid, format!("invalid tag {tag:?}: {e}")))
}

/// Tag → image record of the local images in repository `path`.
fn local_tags(inner: &EngineInner, path: &str) -> BTreeMap<String, ImageRecord> {
    let mut out = BTreeMap::new();
    for (record, tags) in inner.images.list() {
        for tag in tags {
            if let Ok(r) = Reference::parse(&tag) {
                if r.domain() == "docker.io" && r.path() == path {
                    if let Some(t) = r.tag() {
                        out.insert(t.to_string(), record.clone());
                    }
                }
            }
        }
    }
    out
}

/// Every manifest of a repository (digest → media type): its local images' and the served ones.
fn repository_manifests(inner: &EngineInner, path: &str) -> HashMap<Digest, String> {
    let mut out = HashMap::new();
    for record in local_tags(inner, path).into_values() {
        out.insert(record.manifest.clone(), record.manifest_media_type.clone());
    }
    if let Some(repo) = inner.distribution.served.repository(path) {
        for (d, mt) in repo.manifests {
            if let Ok(d) = parse_sha256(&d) {
                out.insert(d, mt);
            }
        }
    }
    out
}

/// Every blob a repository may serve: its manifests, what they name, and what was just pushed.
fn repository_blobs(inner: &EngineInner, path: &str) -> HashSet<Digest> {
    let mut out = inner.distribution.pending_in(path);
    for (digest, _) in repository_manifests(inner, path) {
        if let Some(m) = inner.content.read(&digest).ok().and_then(|b| parse_manifest(&b)) {
            out.extend(m.blobs().iter().filter_map(|d| parse_sha256(&d.digest).ok()));
        }
        out.insert(digest);
    }
    out
}

/// The blobs garbage collection must keep for the registry server: every served manifest and
/// what it names, and blobs pushed that no manifest names yet.
pub(crate) fn kept_blobs(inner: &EngineInner) -> HashSet<Digest> {
    let mut out: HashSet<Digest> = {
        let pending = inner.distribution.pending.lock().expect("pending lock");
        pending.iter().filter(|(_, p)| p.since.elapsed() < PENDING_LIFETIME).map(|(d, _)| d.clone()).collect()
    };
    for repo in inner.distribution.served.repositories().into_values() {
        for digest in repo.manifests.keys().filter_map(|d| parse_sha256(d).ok()) {
            if let Some(m) = inner.content.read(&digest).ok().and_then(|b| parse_manifest(&b)) {
                out.extend(m.blobs().iter().filter_map(|d| parse_sha256(&d.digest).ok()));
            }
            out.insert(digest);
        }
    }
    out
}

fn name_unknown(path: &str) -> DistributionError {
    DistributionError::new(Code::NameUnknown, format!("repository name not known to registry: {path}"))
}

fn manifest_unknown(reference: &str) -> DistributionError {
    DistributionError::new(Code::ManifestUnknown, format!("manifest unknown: {reference}"))
}

fn blob_digest(s: &str) -> DResult<Digest> {
    parse_sha256(s).map_err(|_| {
        DistributionError::new(Code::DigestInvalid, format!("invalid digest {s:?}: only sha256 is supported"))
    })
}

/// Whether a reference in a path is a digest (else a tag).
fn is_digest(reference: &str) -> bool {
    reference.contains(':')
}

async fn run<T: Send + 'static>(
    engine: &Engine,
    f: impl FnOnce(&EngineInner) -> DResult<T> + Send + 'static,
) -> DResult<T> {
    let inner = engine.inner.clone();
    tokio::task::spawn_blocking(move || f(&inner)).await.expect("distribution task panicked")
}

/// Every repository the server has, sorted.
pub async fn catalog(engine: &Engine) -> DResult<Vec<String>> {
    run(engine, |inner| {
        let mut names = BTreeSet::new();
        for (_, tags) in inner.images.list() {
            for tag in tags {
                if let Ok(r) = Reference::parse(&tag) {
                    if r.domain() == "docker.io" {
                        names.insert(r.path().to_string());
                    }
                }
            }
        }
        names.extend(inner.distribution.served.repositories().into_keys());
        Ok(names.into_iter().collect())
    })
    .await
}

/// Whether the repository exists (has a tag or a manifest).
pub async fn exists(engine: &Engine, path: &str) -> bool {
    let path = path.to_string();
    run(engine, move |inner| Ok(!repository_manifests(inner, &path).is_empty())).await.unwrap_or(false)
}

/// The IDs of the local images tagged in the repository (whose teams own it).
pub async fn repository_images(engine: &Engine, path: &str) -> Vec<String> {
    let path = path.to_string();
    run(engine, move |inner| {
        let ids: BTreeSet<String> =
            local_tags(inner, &path).into_values().map(|r| r.id.to_string()).collect();
        Ok(ids.into_iter().collect())
    })
    .await
    .unwrap_or_default()
}

/// The repository's tags, sorted.
pub async fn tags(engine: &Engine, path: &str) -> DResult<Vec<String>> {
    let path = path.to_string();
    run(engine, move |inner| {
        let mut tags: BTreeSet<String> = local_tags(inner, &path).into_keys().collect();
        let served = inner.distribution.served.repository(&path);
        if let Some(repo) = &served {
            tags.extend(repo.tags.keys().cloned());
        }
        if tags.is_empty() && served.is_none() {
            return Err(name_unknown(&path));
        }
        Ok(tags.into_iter().collect())
    })
    .await
}

/// The manifest that `reference` (a tag or a digest) names in the repository.
pub async fn get_manifest(engine: &Engine, path: &str, reference: &str) -> DResult<ServedManifest> {
    let (path, reference) = (path.to_string(), reference.to_string());
    run(engine, move |inner| {
        let manifests = repository_manifests(inner, &path);
        if manifests.is_empty() {
            return Err(name_unknown(&path));
        }
        let (digest, media_type) = if is_digest(&reference) {
            let digest = blob_digest(&reference)?;
            let media_type = manifests.get(&digest).cloned().ok_or_else(|| manifest_unknown(&reference))?;
            (digest, media_type)
        } else {
            resolve_tag(inner, &path, &reference)?.ok_or_else(|| manifest_unknown(&reference))?
        };
        let bytes = inner.content.read(&digest).map_err(|e| match e {
            Error::BlobNotFound(_) => manifest_unknown(&reference),
            other => other.into(),
        })?;
        let media_type = if media_type.is_empty() {
            parse_manifest(&bytes).and_then(|m| m.media_type).unwrap_or_else(|| OCI_MANIFEST.to_string())
        } else {
            media_type
        };
        Ok(ServedManifest { bytes, media_type, digest })
    })
    .await
}

/// A tag: the served index's (indexes, artifacts) before the image index's.
fn resolve_tag(inner: &EngineInner, path: &str, tag: &str) -> DResult<Option<(Digest, String)>> {
    if let Some(repo) = inner.distribution.served.repository(path) {
        if let Some(d) = repo.tags.get(tag) {
            let digest = blob_digest(d)?;
            let media_type = repo.manifests.get(d).cloned().unwrap_or_default();
            return Ok(Some((digest, media_type)));
        }
    }
    Ok(local_tags(inner, path).remove(tag).map(|r| (r.manifest, r.manifest_media_type)))
}

/// Stores a pushed manifest under `reference` (a tag or its digest). Everything it names must be
/// in the repository already (blobs pushed or mounted, an index's manifests pushed). An image
/// manifest pushed by tag becomes a local image: its layers are unpacked and the tag set.
pub async fn put_manifest(
    engine: &Engine,
    path: &str,
    reference: &str,
    content_type: Option<String>,
    bytes: Vec<u8>,
) -> DResult<PushedManifest> {
    let gc = crate::registry::GcReadHold::take(engine.inner.clone()).await?;
    let (path, reference) = (path.to_string(), reference.to_string());
    let shared = engine.inner.clone();
    let result = tokio::task::spawn_blocking(move || {
        put_manifest_blocking(&shared, &path, &reference, content_type, &bytes)
    })
    .await
    .expect("distribution task panicked");
    drop(gc);
    result
}

fn put_manifest_blocking(
    shared: &Arc<EngineInner>,
    path: &str,
    reference: &str,
    content_type: Option<String>,
    bytes: &[u8],
) -> DResult<PushedManifest> {
    let inner: &EngineInner = shared;
    let invalid =
        |why: String| DistributionError::new(Code::ManifestInvalid, format!("manifest invalid: {why}"));
    if bytes.len() > MANIFEST_LIMIT {
        return Err(DistributionError::new(
            Code::SizeInvalid,
            format!("manifest larger than {MANIFEST_LIMIT} bytes"),
        ));
    }
    let digest = sha256_of(bytes);
    let tag = if is_digest(reference) {
        let named = blob_digest(reference)?;
        if named != digest {
            return Err(DistributionError::new(
                Code::DigestInvalid,
                format!("manifest digest {digest} does not match {named} in the path"),
            ));
        }
        None
    } else {
        local_reference(path, reference)?;
        Some(reference.to_string())
    };
    let manifest: AnyManifest =
        serde_json::from_slice(bytes).map_err(|e| invalid(format!("not JSON of a manifest: {e}")))?;
    if manifest.schema_version != Some(2) {
        return Err(invalid("only schemaVersion 2 manifests are accepted".into()));
    }
    let known = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];
    let declared = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim().to_string())
        .filter(|c| known.contains(&c.as_str()));
    let media_type = match (declared, manifest.media_type.clone()) {
        (Some(c), Some(m)) if c != m => {
            return Err(invalid(format!("Content-Type {c} but the manifest says mediaType {m}")));
        }
        (Some(c), _) => c,
        (None, Some(m)) if known.contains(&m.as_str()) => m,
        (None, Some(m)) => return Err(invalid(format!("unsupported media type {m}"))),
        (None, None) if manifest.manifests.is_some() => OCI_INDEX.to_string(),
        (None, None) => OCI_MANIFEST.to_string(),
    };
    let is_index = manifest.is_index(&media_type);

    // Everything named must be in this repository: a manifest may not reach another's blobs.
    if is_index {
        let manifests = repository_manifests(inner, path);
        for child in manifest.manifests.iter().flatten() {
            let d = blob_digest(&child.digest)?;
            if !manifests.contains_key(&d) {
                return Err(DistributionError::new(
                    Code::ManifestBlobUnknown,
                    format!("manifest blob unknown: {d} is not in {path}"),
                ));
            }
        }
    } else {
        if manifest.config.is_none() {
            return Err(invalid("an image manifest needs a config".into()));
        }
        let blobs = repository_blobs(inner, path);
        for blob in manifest.blobs() {
            let d = blob_digest(&blob.digest)?;
            if !blobs.contains(&d) || !inner.content.contains(&d) {
                return Err(DistributionError::new(
                    Code::ManifestBlobUnknown,
                    format!("manifest blob unknown: {d} is not in {path}"),
                ));
            }
        }
    }

    let mut writer = inner.content.writer()?;
    writer.write_all(bytes).map_err(|e| Error::io("writing the manifest", e))?;
    writer.commit(Some(&digest))?;

    let plan = match (&tag, is_index) {
        (Some(_), false) => image_plan(inner, &manifest)?,
        _ => None,
    };
    let digest_text = digest.to_string();
    let local_image = match (plan, &tag) {
        // Layers to unpack: after the answer.
        (Some(plan), Some(t))
            if plan.layers.iter().any(|(_, diff_id, _)| !inner.snapshots.has_layer(diff_id)) =>
        {
            // The manifest is stored (durably) and served by the tag from now on; the layers are
            // unpacked into the local image after the answer (see `spawn_unpack`).
            inner.distribution.served.update(path, |repo| {
                repo.manifests.insert(digest_text.clone(), media_type.clone());
                repo.tags.insert(t.clone(), digest_text.clone());
                repo.unpacking.insert(t.clone(), digest_text.clone());
            })?;
            crate::crash_point::pass("distribution.manifest_stored");
            let config = plan.config.clone();
            spawn_unpack(
                shared.clone(),
                path.to_string(),
                t.clone(),
                digest.clone(),
                media_type.clone(),
                plan,
            );
            let subject = manifest.subject.as_ref().map(|s| s.digest.clone());
            tracing::info!(repository = path, reference, %digest, media_type, "manifest pushed (layers unpacking)");
            return Ok(PushedManifest { digest, image: Some(config.to_string()), subject });
        }
        // The node has every layer already (an image it pulled, built or had pushed under
        // another manifest): the local image is made at once.
        (Some(plan), Some(_)) => {
            unpack_image(inner, &plan, &digest, &media_type)?;
            Some(plan.config)
        }
        _ => None,
    };
    set_tag(inner, path, tag.as_deref(), &digest, &media_type, local_image.as_ref())?;
    let subject = manifest.subject.as_ref().map(|s| s.digest.clone());
    tracing::info!(repository = path, reference, %digest, media_type, "manifest pushed");
    Ok(PushedManifest { digest, image: local_image.map(|d| d.to_string()), subject })
}

/// Records manifest `digest` in the repository under `tag` (if any): the local image's tag when
/// it is one, else the served index's. The image index keeps one manifest per image (config):
/// when the node already had this image under another manifest (another compression, say), the
/// tag is served from the served index, so that what was pushed is what is pulled, byte for byte.
fn set_tag(
    inner: &EngineInner,
    path: &str,
    tag: Option<&str>,
    digest: &Digest,
    media_type: &str,
    local_image: Option<&Digest>,
) -> DResult<()> {
    let same_manifest =
        local_image.and_then(|id| inner.images.get(id)).is_some_and(|r| &r.manifest == digest);
    let served_tag = tag.filter(|_| !same_manifest);
    let reference = tag.map(|t| local_reference(path, t)).transpose()?;
    // The local tag first, the served one second: a crash in between leaves the tag in both
    // places (and the unpack marker, which the next start finishes), never in neither.
    if let (Some(reference), Some(id)) = (&reference, local_image) {
        inner.images.tag(reference, id)?;
    }
    let digest_text = digest.to_string();
    inner.distribution.served.update(path, |repo| {
        repo.manifests.insert(digest_text.clone(), media_type.to_string());
        match (tag, served_tag) {
            (_, Some(t)) => {
                repo.tags.insert(t.to_string(), digest_text.clone());
            }
            (Some(t), None) => {
                repo.tags.remove(t);
            }
            (None, None) => {}
        }
        if let Some(t) = tag {
            repo.unpacking.remove(t);
        }
    })?;
    // The tag now names something that is not an image: no local image keeps it.
    if let (Some(reference), None) = (&reference, local_image) {
        inner.images.untag(&reference.to_string())?;
    }
    Ok(())
}

/// What makes an image manifest a local image: its config and its layers (blob, diff ID,
/// compression), checked before the push is answered.
struct ImagePlan {
    config: Digest,
    layers: Vec<(Digest, Digest, Compression)>,
}

/// The plan of an image manifest: checks its config against its layers. `None` for what is not a
/// runnable image here (an artifact, layers of an unknown kind).
fn image_plan(inner: &EngineInner, manifest: &AnyManifest) -> DResult<Option<ImagePlan>> {
    let invalid =
        |why: String| DistributionError::new(Code::ManifestInvalid, format!("manifest invalid: {why}"));
    let Some(config) = &manifest.config else { return Ok(None) };
    if config.media_type != OCI_CONFIG && config.media_type != DOCKER_CONFIG {
        return Ok(None);
    }
    let config_digest = blob_digest(&config.digest)?;
    let config_value: serde_json::Value = serde_json::from_slice(&inner.content.read(&config_digest)?)
        .map_err(|e| invalid(format!("config {config_digest} is not JSON: {e}")))?;
    let diff_ids: Vec<Digest> = config_value["rootfs"]["diff_ids"]
        .as_array()
        .ok_or_else(|| invalid(format!("config {config_digest} has no rootfs.diff_ids")))?
        .iter()
        .map(|v| v.as_str().map(blob_digest).unwrap_or_else(|| Err(invalid("a diff ID is not text".into()))))
        .collect::<DResult<_>>()?;
    if diff_ids.len() != manifest.layers.len() {
        return Err(invalid(format!(
            "{} layers but the config lists {} diff IDs",
            manifest.layers.len(),
            diff_ids.len()
        )));
    }
    let mut layers = Vec::new();
    for (layer, diff_id) in manifest.layers.iter().zip(diff_ids) {
        match Compression::from_media_type(&MediaType::from(layer.media_type.as_str())) {
            Ok(c) => layers.push((blob_digest(&layer.digest)?, diff_id, c)),
            Err(_) => return Ok(None),
        }
    }
    Ok(Some(ImagePlan { config: config_digest, layers }))
}

/// Unpacks a plan's layers and adds the image record.
fn unpack_image(inner: &EngineInner, plan: &ImagePlan, digest: &Digest, media_type: &str) -> DResult<()> {
    for (blob, diff_id, compression) in &plan.layers {
        let file = inner.content.open_blob(blob)?;
        inner
            .snapshots
            .unpack_layer(io::BufReader::with_capacity(1 << 20, file), *compression, Some(diff_id))
            .map_err(|e| DistributionError::new(Code::ManifestInvalid, format!("layer {blob}: {e}")))?;
        inner.snapshots.record_layer_source(diff_id, blob)?;
    }
    inner.images.add(ImageRecord {
        id: plan.config.clone(),
        manifest: digest.clone(),
        manifest_media_type: media_type.to_string(),
        added: Utc::now(),
    })?;
    Ok(())
}

/// Unpacks a pushed image on a thread of its own, after the push was answered: the layers, the
/// image record, then the tag moves from the served index to the local image. A local user of
/// the tag waits meanwhile (`Distribution::wait_unpacked`); a pull is served from the manifest.
/// A failed unpack leaves the tag served as pushed, with no local image, and sends an
/// `unpack_failed` image event.
fn spawn_unpack(
    inner: Arc<EngineInner>,
    path: String,
    tag: String,
    digest: Digest,
    media_type: String,
    plan: ImagePlan,
) {
    let key = match local_reference(&path, &tag) {
        Ok(r) => r.to_string(),
        Err(_) => return,
    };
    inner.distribution.unpack_started(&key);
    let spawned = std::thread::Builder::new().name("registry-unpack".into()).spawn({
        let inner = inner.clone();
        let (key, path) = (key.clone(), path.clone());
        move || {
            // Requests first: the unpack is work the pusher does not wait for.
            // SAFETY: setpriority on this thread's own ID changes nothing but its priority.
            unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10) };
            let started = Instant::now();
            let result = {
                // Collection keeps away from the layers until the image record names them.
                let _gc = inner.gc_lock.read().unwrap_or_else(|p| p.into_inner());
                unpack_image(&inner, &plan, &digest, &media_type).and_then(|()| {
                    crate::crash_point::pass("distribution.unpacked");
                    finish_unpack(&inner, &path, &tag, &digest, &media_type, Some(&plan.config))
                })
            };
            match result {
                Ok(()) => tracing::info!(
                    repository = path, tag, %digest, elapsed_ms = started.elapsed().as_millis() as u64,
                    "pushed image unpacked"
                ),
                Err(e) => {
                    tracing::error!(repository = path, tag, %digest, error = %e.message, "unpacking a pushed image failed: the tag is served, not a local image");
                    if let Err(e) = finish_unpack(&inner, &path, &tag, &digest, &media_type, None) {
                        tracing::error!(repository = path, tag, error = %e.message, "recording the failed unpack failed");
                    }
                    // The push was answered long ago: an event is how its pusher and the
                    // admins learn (none subscribed is fine).
                    let event = ImageEvent {
                        reference: key.clone(),
                        digest: digest.to_string(),
                        action: ImageAction::UnpackFailed { error: e.message },
                        time: Utc::now(),
                    };
                    let _ = inner.containers.events.send(EngineEvent::Image(event));
                }
            }
            inner.distribution.unpack_ended(&key);
        }
    });
    if let Err(e) = spawned {
        tracing::error!(repository = path, error = %e, "cannot start the unpack of a pushed image (it resumes at the next start)");
        inner.distribution.unpack_ended(&key);
    }
}

/// The unpack's last step, unless another push of the tag came meanwhile (its own unpack then
/// finishes it).
fn finish_unpack(
    inner: &EngineInner,
    path: &str,
    tag: &str,
    digest: &Digest,
    media_type: &str,
    image: Option<&Digest>,
) -> DResult<()> {
    let _finishing = inner.distribution.finishing.lock().expect("finishing lock");
    let current = inner.distribution.served.repository(path).and_then(|r| r.unpacking.get(tag).cloned());
    if current.as_deref() != Some(digest.as_ref()) {
        return Ok(());
    }
    set_tag(inner, path, Some(tag), digest, media_type, image)
}

/// Unpacks what pushes left unpacked when the daemon stopped (called once the engine is open).
pub fn resume_unpacks(engine: &Engine) {
    for (path, repo) in engine.inner.distribution.served.repositories() {
        for (tag, digest) in repo.unpacking {
            let resumed = (|| {
                let digest = blob_digest(&digest)?;
                let bytes = engine.inner.content.read(&digest)?;
                let manifest = parse_manifest(&bytes)
                    .ok_or_else(|| DistributionError::new(Code::ManifestInvalid, "not a manifest"))?;
                let media_type = repo.manifests.get(digest.as_ref()).cloned().unwrap_or_default();
                match image_plan(&engine.inner, &manifest)? {
                    Some(plan) => spawn_unpack(
                        engine.inner.clone(),
                        path.clone(),
                        tag.clone(),
                        digest,
                        media_type,
                        plan,
                    ),
                    None => finish_unpack(&engine.inner, &path, &tag, &digest, &media_type, None)?,
                }
                Ok::<_, DistributionError>(())
            })();
            match resumed {
                Ok(()) => tracing::info!(repository = path, tag, "resuming the unpack of a pushed image"),
                Err(e) => {
                    tracing::error!(repository = path, tag, error = %e.message, "cannot resume the unpack of a pushed image")
                }
            }
        }
    }
}

/// Deletes a tag, or a manifest by digest with every tag that points at it. The blobs stay
/// until garbage collection finds nothing uses them.
pub async fn delete_manifest(engine: &Engine, path: &str, reference: &str) -> DResult<()> {
    let (path, reference) = (path.to_string(), reference.to_string());
    run(engine, move |inner| {
        let locals = local_tags(inner, &path);
        let mut found = false;
        if is_digest(&reference) {
            let digest = blob_digest(&reference)?;
            let text = digest.to_string();
            found |= inner.distribution.served.update(&path, |repo| {
                repo.tags.retain(|_, d| *d != text);
                // An unpack under way then leaves the image untagged.
                repo.unpacking.retain(|_, d| *d != text);
                repo.manifests.remove(&text).is_some()
            })?;
            for (tag, _) in locals.iter().filter(|(_, r)| r.manifest == digest) {
                found |= inner.images.untag(&local_reference(&path, tag)?.to_string())?;
            }
        } else {
            found |= inner.distribution.served.update(&path, |repo| {
                repo.unpacking.remove(&reference);
                repo.tags.remove(&reference).is_some()
            })?;
            if locals.contains_key(&reference) {
                found |= inner.images.untag(&local_reference(&path, &reference)?.to_string())?;
            }
        }
        if !found {
            return Err(manifest_unknown(&reference));
        }
        tracing::info!(repository = path, reference, "manifest deleted");
        Ok(())
    })
    .await
}

/// Opens a blob of the repository for reading, with its size.
pub async fn open_blob(engine: &Engine, path: &str, digest: &str) -> DResult<(std::fs::File, u64)> {
    let digest = blob_digest(digest)?;
    let path = path.to_string();
    run(engine, move |inner| {
        if !repository_blobs(inner, &path).contains(&digest) {
            return Err(DistributionError::new(
                Code::BlobUnknown,
                format!("blob unknown to registry: {digest}"),
            ));
        }
        let file = inner.content.open_blob(&digest)?;
        let size = file.metadata().map_err(|e| Error::io(format!("reading blob {digest}"), e))?.len();
        Ok((file, size))
    })
    .await
}

/// Links a blob of repository `from` into `path` without moving a byte (a cross-repository
/// mount). `false` when `from` does not have it: the client then uploads it.
pub async fn mount_blob(engine: &Engine, path: &str, from: &str, digest: &str) -> DResult<bool> {
    let digest = blob_digest(digest)?;
    let (path, from) = (path.to_string(), from.to_string());
    run(engine, move |inner| {
        if !repository_blobs(inner, &from).contains(&digest) || !inner.content.contains(&digest) {
            return Ok(false);
        }
        inner.distribution.link_pending(&digest, &path);
        Ok(true)
    })
    .await
}

/// Starts an upload into the repository; returns its ID.
pub async fn start_upload(engine: &Engine, path: &str) -> DResult<String> {
    let path = path.to_string();
    run(engine, move |inner| {
        let writer = inner.content.writer()?;
        let id = format!("{:032x}", rand::random::<u128>());
        let mut uploads = inner.distribution.uploads.lock().expect("uploads lock");
        uploads.retain(|_, u| u.writer.is_none() || u.touched.elapsed() < UPLOAD_IDLE);
        uploads.insert(
            id.clone(),
            Upload { repository: path, writer: Some(writer), offset: 0, touched: Instant::now() },
        );
        Ok(id)
    })
    .await
}

fn upload_unknown(id: &str) -> DistributionError {
    DistributionError::new(Code::BlobUploadUnknown, format!("blob upload unknown to registry: {id}"))
}

/// Takes an upload's writer for one request (a second request on the same upload at once is refused).
fn take_writer(inner: &EngineInner, path: &str, id: &str) -> DResult<(BlobWriter, u64)> {
    let mut uploads = inner.distribution.uploads.lock().expect("uploads lock");
    let upload = uploads.get_mut(id).filter(|u| u.repository == path).ok_or_else(|| upload_unknown(id))?;
    let writer = upload.writer.take().ok_or_else(|| {
        DistributionError::new(
            Code::BlobUploadInvalid,
            format!("upload {id} is being written by another request"),
        )
    })?;
    Ok((writer, upload.offset))
}

fn put_writer_back(inner: &EngineInner, id: &str, writer: BlobWriter) -> u64 {
    let mut uploads = inner.distribution.uploads.lock().expect("uploads lock");
    let offset = writer.bytes();
    if let Some(upload) = uploads.get_mut(id) {
        upload.offset = offset;
        upload.touched = Instant::now();
        upload.writer = Some(writer);
    }
    offset
}

/// Where an upload stands: how many bytes it has.
pub async fn upload_offset(engine: &Engine, path: &str, id: &str) -> DResult<u64> {
    let uploads = engine.inner.distribution.uploads.lock().expect("uploads lock");
    let upload = uploads.get(id).filter(|u| u.repository == path).ok_or_else(|| upload_unknown(id))?;
    Ok(upload.offset)
}

/// Appends a request body to an upload. `start`: where the client says the chunk begins
/// (`Content-Range`), which must be where the upload stands. A body cut short keeps what
/// arrived, so that the client can resume from the offset it is told. Returns the new offset.
pub async fn write_upload<S, E>(
    engine: &Engine,
    path: &str,
    id: &str,
    start: Option<u64>,
    mut body: S,
) -> DResult<u64>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let inner = engine.inner.clone();
    let (mut writer, offset) = take_writer(&inner, path, id)?;
    if let Some(start) = start.filter(|s| *s != offset) {
        put_writer_back(&inner, id, writer);
        return Err(DistributionError::new(
            Code::RangeInvalid,
            format!("chunk starts at {start} but the upload has {offset} bytes"),
        ));
    }
    // The file is written on a blocking thread, fed as the body streams in.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let writing = tokio::task::spawn_blocking(move || {
        let mut failed = None;
        while let Some(chunk) = rx.blocking_recv() {
            if let Err(e) = writer.write_all(&chunk) {
                failed = Some(e);
                break;
            }
        }
        (writer, failed)
    });
    let mut cut = None;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(bytes) => {
                if tx.send(bytes).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                cut = Some(e.to_string());
                break;
            }
        }
    }
    drop(tx);
    let (writer, failed) = writing.await.expect("upload writer panicked");
    if let Some(e) = failed {
        // The partial file cannot be trusted any more: the upload is over.
        inner.distribution.uploads.lock().expect("uploads lock").remove(id);
        drop(writer);
        return Err(Error::io("writing an upload", e).into());
    }
    let offset = put_writer_back(&inner, id, writer);
    if let Some(e) = cut {
        return Err(DistributionError::new(
            Code::BlobUploadInvalid,
            format!("upload cut after {offset} bytes ({e}); resume from there"),
        ));
    }
    Ok(offset)
}

/// Completes an upload: the blob must hash to `digest`, or it is discarded with the upload.
pub async fn finish_upload(engine: &Engine, path: &str, id: &str, digest: &str) -> DResult<Digest> {
    let expected = blob_digest(digest)?;
    let (path, id) = (path.to_string(), id.to_string());
    run(engine, move |inner| {
        let (writer, _) = take_writer(inner, &path, &id)?;
        inner.distribution.uploads.lock().expect("uploads lock").remove(&id);
        // Linked before it becomes visible, so that a collection in between keeps it.
        let _gc = inner.gc_lock.read().unwrap_or_else(|p| p.into_inner());
        let (digest, size) = writer.commit(Some(&expected))?;
        inner.distribution.link_pending(&digest, &path);
        tracing::debug!(repository = path, %digest, size, "blob pushed");
        Ok(digest)
    })
    .await
}

/// Abandons an upload, and its partial file with it.
pub async fn cancel_upload(engine: &Engine, path: &str, id: &str) -> DResult<()> {
    let mut uploads = engine.inner.distribution.uploads.lock().expect("uploads lock");
    match uploads.get(id) {
        Some(u) if u.repository == path => {
            uploads.remove(id);
            Ok(())
        }
        _ => Err(upload_unknown(id)),
    }
}

/// The referrers of a manifest in the repository, as an OCI image index (the referrers API);
/// with `artifact_type`, only those of that type.
pub async fn referrers(
    engine: &Engine,
    path: &str,
    digest: &str,
    artifact_type: Option<String>,
) -> DResult<Vec<u8>> {
    let subject = blob_digest(digest)?.to_string();
    let path = path.to_string();
    run(engine, move |inner| {
        let mut descriptors = Vec::new();
        let mut manifests: Vec<(Digest, String)> = repository_manifests(inner, &path).into_iter().collect();
        manifests.sort_by_key(|m| m.0.to_string());
        for (digest, media_type) in manifests {
            let Ok(bytes) = inner.content.read(&digest) else { continue };
            let Some(m) = parse_manifest(&bytes) else { continue };
            if m.subject.as_ref().map(|s| s.digest.as_str()) != Some(subject.as_str()) {
                continue;
            }
            let kind = m.artifact_type.clone().or_else(|| m.config.as_ref().map(|c| c.media_type.clone()));
            if artifact_type.as_ref().is_some_and(|wanted| Some(wanted) != kind.as_ref()) {
                continue;
            }
            let mut d = serde_json::json!({
                "mediaType": media_type,
                "digest": digest.to_string(),
                "size": bytes.len(),
            });
            if let Some(kind) = kind {
                d["artifactType"] = kind.into();
            }
            if let Some(a) = m.annotations {
                d["annotations"] = a.into();
            }
            descriptors.push(d);
        }
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": descriptors,
        });
        Ok(serde_json::to_vec(&index).expect("an index serialises"))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_map_to_local_paths() {
        assert_eq!(repository_path("busybox").unwrap(), "library/busybox");
        assert_eq!(repository_path("team/app").unwrap(), "team/app");
        assert_eq!(repository_path("a/b/c-d.e_f").unwrap(), "a/b/c-d.e_f");
        for bad in ["", "Team/app", "localhost:5000/x", "example.com/x", "docker.io/x", "a//b", "-a", "a/"] {
            let e = repository_path(bad).unwrap_err();
            assert_eq!(e.code, Code::NameInvalid, "{bad}");
        }
    }
}
