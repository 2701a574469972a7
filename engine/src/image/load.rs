//! `load`: images from a tar holding an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/...`, as skopeo's `oci-archive:` writes it), a `docker save` archive
//! (`manifest.json` with `Config`/`RepoTags`/`Layers`, legacy `<id>/layer.tar` paths), or both
//! at once (Docker 25+), gzip- or zstd-compressed or not.
//!
//! The archive streams once: blobs go straight into the content store as they pass (checked
//! against the digest their name announces), small JSON files are kept in memory, and the images
//! are resolved after the stream ends, because a tar may put `index.json` before or after the
//! blobs it names. Then every layer is unpacked, and only when all images are complete are they
//! recorded and tagged: a load that fails leaves no image.

use std::collections::HashMap;
use std::io::{self, Read};

use chrono::Utc;
use oci_spec::image::{Descriptor, Digest, ImageConfiguration, ImageIndex, ImageManifest, MediaType};
use serde::Deserialize;

use super::import::{descriptor, layer_media_type, node_platform, write_manifest};
use crate::archive::{decompress, read_head, unsupported_compression};
use crate::digest::{parse_sha256, sha256_of, Sha256Reader};
use crate::error::{Error, IoContext, Result};
use crate::layer::Compression;
use crate::store::ImageRecord;
use crate::{Engine, EngineInner, Reference};

/// Files that are not blobs and at most this big are kept in memory (JSON: index, manifests,
/// configs, `repositories`); bigger ones, and `*.tar` layers, go to the content store.
const MEMORY_FILE_LIMIT: u64 = 8 << 20;
/// All files kept in memory together.
const MEMORY_TOTAL_LIMIT: u64 = 256 << 20;
/// How deep image indexes may nest.
const MAX_INDEX_DEPTH: usize = 4;

const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

impl Engine {
    /// `docker load`: loads every image of the archive `body` (see the module doc for the
    /// formats), unpacks their layers, and tags them with the names the archive gives. Reports
    /// each image by reference, or by ID when the archive names it with none.
    pub async fn load_images(
        &self,
        body: impl tokio::io::AsyncRead + Send + Unpin + 'static,
    ) -> Result<berth_types::LoadReport> {
        let body = tokio_util::io::SyncIoBridge::new(body);
        self.blocking(move |inner| load_blocking(inner, body)).await
    }
}

/// What the stream left behind: where each file of the archive went.
#[derive(Default)]
struct ArchiveFiles {
    files: HashMap<String, Stored>,
    /// Symbolic and hard links: path → the path they point at (both archive paths).
    links: HashMap<String, String>,
    memory_bytes: u64,
}

enum Stored {
    Memory(Vec<u8>),
    Blob(Digest),
}

fn load_blocking(inner: &EngineInner, body: impl Read + Send) -> Result<berth_types::LoadReport> {
    let (head, body) = read_head(body, 6).context(|| "reading the archive".into())?;
    if let Some(name) = unsupported_compression(&head) {
        return Err(Error::Unsupported(format!("{name}-compressed archives; use plain tar, gzip or zstd")));
    }
    let body = decompress(io::BufReader::with_capacity(1 << 20, body), Compression::detect(&head))
        .context(|| "reading the archive".into())?;

    // Nothing the blobs and layers are written for is referenced until the records exist.
    let _gc = inner.gc_lock.read().expect("gc lock poisoned");
    let archive = read_archive(inner, body)?;
    let images = resolve_images(inner, &archive)?;
    if images.is_empty() {
        return Err(Error::InvalidInput("the archive holds no image".into()));
    }
    // Every layer of every image first, so that a failure leaves no image behind.
    let mut records = Vec::new();
    for image in &images {
        records.push(unpack_image(inner, image)?);
    }
    let mut loaded = Vec::new();
    for (image, record) in images.iter().zip(records) {
        let id = record.id.clone();
        inner.images.add(record)?;
        if image.names.is_empty() {
            loaded.push(berth_types::LoadedImage { id: id.to_string(), reference: None });
        }
        for name in &image.names {
            inner.images.tag(name, &id)?;
            loaded.push(berth_types::LoadedImage { id: id.to_string(), reference: Some(name.to_string()) });
        }
        tracing::info!(id = %id, names = ?image.names.iter().map(|n| n.to_string()).collect::<Vec<_>>(), "loaded image");
    }
    Ok(berth_types::LoadReport { loaded })
}

/// Streams the archive: blobs into the content store, small files into memory.
fn read_archive(inner: &EngineInner, body: impl Read) -> Result<ArchiveFiles> {
    let bad = |e: io::Error| Error::InvalidInput(format!("reading the archive: {e}"));
    let mut out = ArchiveFiles::default();
    let mut archive = tar::Archive::new(body);
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = normalise(&String::from_utf8_lossy(&entry.path_bytes()));
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            tar::EntryType::Symlink => {
                if let Some(target) = entry.link_name().map_err(bad)? {
                    let target = target.to_string_lossy();
                    // Relative to the link's directory (`<id>/layer.tar -> ../<id2>/layer.tar`).
                    let base = path.rsplit_once('/').map_or("", |(dir, _)| dir);
                    let target = normalise(&format!("{base}/{target}"));
                    out.links.insert(path, target);
                }
                continue;
            }
            tar::EntryType::Link => {
                if let Some(target) = entry.link_name().map_err(bad)? {
                    out.links.insert(path, normalise(&target.to_string_lossy()));
                }
                continue;
            }
            _ => continue, // directories, and nothing else belongs in an image archive
        }
        let size = entry.header().size().map_err(bad)?;
        let stored = if let Some(rest) = path.strip_prefix("blobs/") {
            let Some(digest) = blob_name(rest) else {
                tracing::warn!(entry = %path, "skipping a blob that is not named by a sha256 digest");
                continue;
            };
            store_blob(inner, &mut entry, &digest, &path)?;
            Stored::Blob(digest)
        } else if size <= MEMORY_FILE_LIMIT && !path.ends_with(".tar") {
            out.memory_bytes += size;
            if out.memory_bytes > MEMORY_TOTAL_LIMIT {
                return Err(Error::InvalidInput("the archive's metadata files are too large".into()));
            }
            let mut bytes = Vec::with_capacity(size as usize);
            entry.read_to_end(&mut bytes).map_err(bad)?;
            Stored::Memory(bytes)
        } else {
            // A legacy layer (`<id>/layer.tar`, `<hex>.tar`): its digest is learnt by storing it.
            let (digest, _) = inner.content.write_from(&mut entry, None)?;
            Stored::Blob(digest)
        };
        out.files.insert(path, stored);
    }
    Ok(out)
}

/// `sha256/<hex>` → the digest; other algorithms are not ours to store.
fn blob_name(rest: &str) -> Option<Digest> {
    let (alg, hex) = rest.split_once('/')?;
    (alg == "sha256").then(|| parse_sha256(&format!("sha256:{hex}")).ok()).flatten()
}

/// Stores a blob entry, refusing it unless it hashes to the digest its name announces. A blob
/// the store already has is only hashed.
fn store_blob(inner: &EngineInner, entry: &mut impl Read, digest: &Digest, path: &str) -> Result<()> {
    let mismatch = |actual: Digest| Error::DigestMismatch {
        what: format!("archive entry {path}"),
        expected: digest.clone(),
        actual,
    };
    if inner.content.contains(digest) {
        let mut reader = Sha256Reader::new(entry);
        io::copy(&mut reader, &mut io::sink())
            .map_err(|e| Error::InvalidInput(format!("reading {path}: {e}")))?;
        let (actual, _, _) = reader.finish();
        return if &actual == digest { Ok(()) } else { Err(mismatch(actual)) };
    }
    let mut w = inner.content.writer()?;
    io::copy(entry, &mut w).map_err(|e| Error::InvalidInput(format!("reading {path}: {e}")))?;
    match w.commit(Some(digest)) {
        Err(Error::DigestMismatch { actual, .. }) => Err(mismatch(actual)),
        other => other.map(|_| ()),
    }
}

/// `./a//b/` → `a/b`; `..` resolved lexically (these paths only name files of the archive).
fn normalise(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

impl ArchiveFiles {
    /// The file at `path`, following links.
    fn get(&self, path: &str) -> Option<&Stored> {
        let mut path = normalise(path);
        for _ in 0..16 {
            if let Some(f) = self.files.get(&path) {
                return Some(f);
            }
            path = self.links.get(&path)?.clone();
        }
        None
    }

    fn read(&self, inner: &EngineInner, path: &str) -> Result<Option<Vec<u8>>> {
        match self.get(path) {
            None => Ok(None),
            Some(Stored::Memory(b)) => Ok(Some(b.clone())),
            Some(Stored::Blob(d)) => inner.content.read(d).map(Some),
        }
    }

    /// The file at `path` as a blob in the content store (stored now if it was kept in memory).
    fn blob(&self, inner: &EngineInner, path: &str) -> Result<Digest> {
        match self.get(path) {
            None => Err(Error::InvalidInput(format!("{path} is missing from the archive"))),
            Some(Stored::Blob(d)) => Ok(d.clone()),
            Some(Stored::Memory(b)) => inner.content.write_bytes(b),
        }
    }
}

/// An image found in the archive, not yet unpacked.
struct FoundImage {
    manifest: Digest,
    manifest_media_type: String,
    manifest_body: ImageManifest,
    names: Vec<Reference>,
}

impl FoundImage {
    fn add_name(&mut self, name: Reference) {
        if !self.names.contains(&name) {
            self.names.push(name);
        }
    }
}

/// One image of `manifest.json`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerSaveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn resolve_images(inner: &EngineInner, archive: &ArchiveFiles) -> Result<Vec<FoundImage>> {
    let mut images: Vec<FoundImage> = Vec::new();
    let oci_index = archive.read(inner, "index.json")?;
    let docker_manifest = archive.read(inner, "manifest.json")?;
    if oci_index.is_none() && docker_manifest.is_none() {
        return Err(Error::InvalidInput(
            "the archive has neither index.json nor manifest.json: not an OCI image layout or docker save archive".into(),
        ));
    }

    if let Some(bytes) = oci_index {
        if let Some(layout) = archive.read(inner, "oci-layout")? {
            check_layout_version(&layout)?;
        }
        let index: ImageIndex =
            serde_json::from_slice(&bytes).map_err(|e| Error::InvalidInput(format!("index.json: {e}")))?;
        for desc in top_level_entries(index.manifests()) {
            let names = annotation_name(desc)?.into_iter().collect::<Vec<_>>();
            let (manifest, media_type, body) = resolve_manifest(inner, desc, 0)?;
            match images.iter_mut().find(|i| i.manifest == manifest) {
                Some(found) => names.into_iter().for_each(|n| found.add_name(n)),
                None => images.push(FoundImage {
                    manifest,
                    manifest_media_type: media_type,
                    manifest_body: body,
                    names,
                }),
            }
        }
    }

    if let Some(bytes) = docker_manifest {
        let entries: Vec<DockerSaveEntry> =
            serde_json::from_slice(&bytes).map_err(|e| Error::InvalidInput(format!("manifest.json: {e}")))?;
        for entry in entries {
            let names = entry
                .repo_tags
                .iter()
                .flatten()
                .map(|t| {
                    tag_reference(t)
                        .map_err(|e| Error::InvalidInput(format!("manifest.json: RepoTags {t:?}: {e}")))
                })
                .collect::<Result<Vec<_>>>()?
                .into_iter()
                .flatten();
            let config_bytes = archive.read(inner, &entry.config)?.ok_or_else(|| {
                Error::InvalidInput(format!("config {} is missing from the archive", entry.config))
            })?;
            let config_digest = sha256_of(&config_bytes);
            // Docker 25+ archives describe each image in index.json too: same config, one image.
            if let Some(found) =
                images.iter_mut().find(|i| i.manifest_body.config().digest() == &config_digest)
            {
                names.for_each(|n| found.add_name(n));
                continue;
            }
            let (manifest, body) = docker_save_manifest(inner, archive, &entry, &config_bytes)?;
            let mut found = FoundImage {
                manifest,
                manifest_media_type: MediaType::ImageManifest.to_string(),
                manifest_body: body,
                names: Vec::new(),
            };
            names.for_each(|n| found.add_name(n));
            images.push(found);
        }
    }
    Ok(images)
}

fn check_layout_version(bytes: &[u8]) -> Result<()> {
    #[derive(Deserialize)]
    struct Layout {
        #[serde(rename = "imageLayoutVersion")]
        version: String,
    }
    let layout: Layout =
        serde_json::from_slice(bytes).map_err(|e| Error::InvalidInput(format!("oci-layout: {e}")))?;
    if layout.version.split('.').next() != Some("1") {
        return Err(Error::Unsupported(format!("OCI image layout version {}", layout.version)));
    }
    Ok(())
}

/// The entries of index.json to load. Each is an image the archive's writer put there; entries
/// for another platform are skipped when some entry is for this node (a layout that lists one
/// image's platforms side by side), else kept (the user saved what they wanted).
fn top_level_entries(entries: &[Descriptor]) -> Vec<&Descriptor> {
    let fits = |d: &&Descriptor| d.platform().as_ref().is_none_or(platform_matches);
    if entries.iter().any(|d| fits(&d)) {
        entries.iter().filter(fits).collect()
    } else {
        entries.iter().collect()
    }
}

fn platform_matches(p: &oci_spec::image::Platform) -> bool {
    let (os, arch, variant) = node_platform();
    p.os().to_string() == os
        && p.architecture().to_string() == arch
        && p.variant().as_deref().is_none_or(|v| Some(v) == variant)
}

/// The name an index.json entry gives its image: containerd's full reference, else the OCI ref
/// name when it is a reference. A bare tag (`latest`, what `skopeo copy ... oci:dir:latest`
/// writes) names no repository, so the image loads untagged.
fn annotation_name(desc: &Descriptor) -> Result<Option<Reference>> {
    let Some(annotations) = desc.annotations() else { return Ok(None) };
    if let Some(name) = annotations.get(ANNOTATION_CONTAINERD_NAME) {
        return tag_reference(name)
            .map_err(|e| Error::InvalidInput(format!("index.json: image name {name:?}: {e}")));
    }
    match annotations.get(ANNOTATION_REF_NAME) {
        Some(name) if name.contains([':', '/']) => tag_reference(name)
            .map_err(|e| Error::InvalidInput(format!("index.json: ref name {name:?}: {e}"))),
        _ => Ok(None),
    }
}

/// A name to tag an image with: `name:tag` (`:latest` added). A `name@digest` without a tag
/// cannot name an image in the store, so it gives none; `name:tag@digest` gives `name:tag`.
fn tag_reference(s: &str) -> Result<Option<Reference>> {
    let reference = Reference::parse(s)?;
    match (reference.digest(), reference.tag()) {
        (None, _) => Ok(Some(reference)),
        (Some(_), None) => {
            tracing::warn!(name = s, "not tagging a digest-only reference");
            Ok(None)
        }
        (Some(_), Some(_)) => {
            let without_digest = s.rsplit_once('@').map_or(s, |(n, _)| n);
            Ok(Some(Reference::parse(without_digest)?))
        }
    }
}

/// Follows `desc` (a manifest, or an index from which this node's platform is picked) to an
/// image manifest: its digest, media type and body.
fn resolve_manifest(
    inner: &EngineInner,
    desc: &Descriptor,
    depth: usize,
) -> Result<(Digest, String, ImageManifest)> {
    let digest = sha256_digest(desc.digest())?;
    let bytes = read_blob(inner, &digest, "manifest")?;
    let declared = desc.media_type().to_string();
    // The blob's own mediaType wins over the descriptor's when the descriptor has a generic one.
    let own = serde_json::from_slice::<serde_json::Value>(&bytes)
        .map_err(|e| Error::InvalidInput(format!("manifest {digest}: {e}")))?
        .get("mediaType")
        .and_then(|m| m.as_str().map(str::to_string));
    let media_type = own.unwrap_or(declared);
    let is_index = media_type == MediaType::ImageIndex.to_string() || media_type == DOCKER_MANIFEST_LIST;
    let is_manifest = media_type == MediaType::ImageManifest.to_string() || media_type == DOCKER_MANIFEST;
    if is_index {
        if depth >= MAX_INDEX_DEPTH {
            return Err(Error::InvalidInput(format!("image index {digest} nests too deep")));
        }
        let index: ImageIndex = serde_json::from_slice(&bytes)
            .map_err(|e| Error::InvalidInput(format!("image index {digest}: {e}")))?;
        let pick = pick_platform(index.manifests()).ok_or_else(|| {
            let (os, arch, _) = node_platform();
            Error::InvalidInput(format!("image index {digest} has no image for {os}/{arch}"))
        })?;
        return resolve_manifest(inner, pick, depth + 1);
    }
    if !is_manifest {
        return Err(Error::Unsupported(format!("manifest {digest} of media type {media_type}")));
    }
    let body: ImageManifest =
        serde_json::from_slice(&bytes).map_err(|e| Error::InvalidInput(format!("manifest {digest}: {e}")))?;
    Ok((digest, media_type, body))
}

/// From an index's entries, this node's image: an exact platform match (variant included) if
/// there is one, else one whose variant is unspecified, else an entry without a platform.
fn pick_platform(entries: &[Descriptor]) -> Option<&Descriptor> {
    let (_, _, variant) = node_platform();
    let matching: Vec<&Descriptor> =
        entries.iter().filter(|d| d.platform().as_ref().is_some_and(platform_matches)).collect();
    matching
        .iter()
        .find(|d| d.platform().as_ref().and_then(|p| p.variant().as_deref()) == variant)
        .or(matching.first())
        .copied()
        .or_else(|| entries.iter().find(|d| d.platform().is_none()))
}

fn sha256_digest(d: &Digest) -> Result<Digest> {
    parse_sha256(d.as_ref()).map_err(|_| Error::Unsupported(format!("digest {d}: only sha256 is supported")))
}

fn read_blob(inner: &EngineInner, digest: &Digest, what: &str) -> Result<Vec<u8>> {
    match inner.content.read(digest) {
        Err(Error::BlobNotFound(_)) => {
            Err(Error::InvalidInput(format!("{what} {digest} is missing from the archive")))
        }
        other => other,
    }
}

/// Builds (and stores) an OCI manifest for a `docker save` entry: the config keeps its bytes,
/// so the image ID is the one it had where it was saved; each layer becomes a blob with the
/// media type its compression calls for.
fn docker_save_manifest(
    inner: &EngineInner,
    archive: &ArchiveFiles,
    entry: &DockerSaveEntry,
    config_bytes: &[u8],
) -> Result<(Digest, ImageManifest)> {
    let config: ImageConfiguration = serde_json::from_slice(config_bytes).map_err(|e| {
        Error::InvalidInput(format!("config {}: not a valid image config: {e}", entry.config))
    })?;
    if config.rootfs().diff_ids().len() != entry.layers.len() {
        return Err(Error::InvalidInput(format!(
            "config {} lists {} layers, manifest.json {}",
            entry.config,
            config.rootfs().diff_ids().len(),
            entry.layers.len()
        )));
    }
    let config_digest = inner.content.write_bytes(config_bytes)?;
    let mut layers = Vec::new();
    for path in &entry.layers {
        let digest = archive.blob(inner, path)?;
        let mut head = Vec::new();
        inner
            .content
            .open_blob(&digest)?
            .take(8)
            .read_to_end(&mut head)
            .context(|| format!("reading blob {digest}"))?;
        let size = inner.content.size(&digest)?;
        layers.push(descriptor(layer_media_type(Compression::detect(&head)), digest, size)?);
    }
    let config_desc = descriptor(MediaType::ImageConfig, config_digest, config_bytes.len() as u64)?;
    let manifest = write_manifest(inner, config_desc, layers)?;
    let body =
        serde_json::from_slice(&inner.content.read(&manifest)?).expect("the manifest just written parses");
    Ok((manifest, body))
}

/// Checks an image's config and unpacks its layers; returns the record to add.
fn unpack_image(inner: &EngineInner, image: &FoundImage) -> Result<ImageRecord> {
    let m = &image.manifest_body;
    let config_digest = sha256_digest(m.config().digest())?;
    let config_media_type = m.config().media_type().to_string();
    if config_media_type != MediaType::ImageConfig.to_string() && config_media_type != DOCKER_CONFIG {
        return Err(Error::Unsupported(format!(
            "manifest {}: config media type {config_media_type} (not an image)",
            image.manifest
        )));
    }
    let config_bytes = read_blob(inner, &config_digest, "config")?;
    let config: ImageConfiguration = serde_json::from_slice(&config_bytes)
        .map_err(|e| Error::InvalidInput(format!("config {config_digest}: not a valid image config: {e}")))?;
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != m.layers().len() {
        return Err(Error::InvalidInput(format!(
            "manifest {} has {} layers, its config {} diff IDs",
            image.manifest,
            m.layers().len(),
            diff_ids.len()
        )));
    }
    for (layer, diff_id) in m.layers().iter().zip(diff_ids) {
        let digest = sha256_digest(layer.digest())?;
        let diff_id = parse_sha256(diff_id)
            .map_err(|e| Error::InvalidInput(format!("config {config_digest}: diff ID: {e}")))?;
        let blob = match inner.content.open_blob(&digest) {
            Err(Error::BlobNotFound(_)) => {
                return Err(Error::InvalidInput(format!("layer {digest} is missing from the archive")))
            }
            other => other?,
        };
        let compression = Compression::from_media_type(layer.media_type())?;
        inner.snapshots.unpack_layer(
            io::BufReader::with_capacity(1 << 20, blob),
            compression,
            Some(&diff_id),
        )?;
        inner.snapshots.record_layer_source(&diff_id, &digest)?;
    }
    Ok(ImageRecord {
        id: config_digest,
        manifest: image.manifest.clone(),
        manifest_media_type: image.manifest_media_type.clone(),
        added: Utc::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalise() {
        assert_eq!(normalise("./blobs//sha256/ab/"), "blobs/sha256/ab");
        assert_eq!(normalise("abc/../def/layer.tar"), "def/layer.tar");
        assert_eq!(normalise("/manifest.json"), "manifest.json");
    }

    #[test]
    fn blob_names() {
        let hex = "a".repeat(64);
        assert_eq!(blob_name(&format!("sha256/{hex}")).unwrap().digest(), hex);
        assert!(blob_name(&format!("sha512/{hex}")).is_none());
        assert!(blob_name("sha256/xyz").is_none());
        assert!(blob_name("sha256").is_none());
    }

    #[test]
    fn links_are_followed_and_loops_end() {
        let mut a = ArchiveFiles::default();
        a.files.insert("x/layer.tar".into(), Stored::Memory(b"1".to_vec()));
        a.links.insert("y/layer.tar".into(), "x/layer.tar".into());
        a.links.insert("z/layer.tar".into(), "y/layer.tar".into());
        a.links.insert("l1".into(), "l2".into());
        a.links.insert("l2".into(), "l1".into());
        assert!(matches!(a.get("./z/layer.tar"), Some(Stored::Memory(b)) if b == b"1"));
        assert!(a.get("l1").is_none());
        assert!(a.get("nothing").is_none());
    }

    fn desc(platform: Option<(&str, &str, Option<&str>)>) -> Descriptor {
        let mut d = descriptor(MediaType::ImageManifest, sha256_of(b"x"), 1).unwrap();
        if let Some((os, arch, variant)) = platform {
            let mut p = oci_spec::image::PlatformBuilder::default().os(os).architecture(arch);
            if let Some(v) = variant {
                p = p.variant(v);
            }
            d.set_platform(Some(p.build().unwrap()));
        }
        d
    }

    #[test]
    fn platform_is_picked_for_this_node() {
        let (os, arch, variant) = node_platform();
        let other = if arch == "amd64" { "arm64" } else { "amd64" };
        let entries = vec![
            desc(Some((os, other, None))),
            desc(Some((os, arch, None))),
            desc(Some(("windows", arch, None))),
        ];
        assert_eq!(
            pick_platform(&entries).unwrap().platform().as_ref().unwrap().architecture().to_string(),
            arch
        );
        if let Some(v) = variant {
            let entries = vec![desc(Some((os, arch, Some("v7")))), desc(Some((os, arch, Some(v))))];
            assert_eq!(
                pick_platform(&entries).unwrap().platform().as_ref().unwrap().variant().as_deref(),
                Some(v)
            );
        }
        assert!(pick_platform(&[desc(Some((os, other, None)))]).is_none());
        assert!(pick_platform(&[desc(None)]).is_some());

        // Top level: other platforms are skipped only when this one is there.
        let top = vec![desc(Some((os, other, None))), desc(None)];
        assert_eq!(top_level_entries(&top).len(), 1);
        let top = vec![desc(Some((os, other, None)))];
        assert_eq!(top_level_entries(&top).len(), 1);
    }
}
