//! Image operations on the store: list, inspect, tag, remove, prune, garbage collection, and
//! moving images in and out (import, load, save).

pub mod import;
pub mod load;
pub mod save;

use std::collections::{BTreeSet, HashSet};
use std::sync::RwLockWriteGuard;

use berth_types::{
    GcReport, HistoryEntry, ImageConfig, ImageDeleteItem, ImageInspect, ImagePruneReport, ImageSummary,
    LayerInfo,
};
use chrono::{DateTime, FixedOffset};
use oci_spec::image::{Digest, ImageConfiguration, ImageManifest};

use crate::error::{Error, Result};
use crate::reference::Reference;
use crate::store::ImageRecord;
use crate::{Engine, EngineInner};

impl Engine {
    /// Every image, newest first.
    pub async fn list_images(&self) -> Result<Vec<ImageSummary>> {
        self.blocking(|inner| {
            let mut rows: Vec<(Option<DateTime<FixedOffset>>, ImageRecord, ImageSummary)> = inner
                .images
                .list()
                .into_iter()
                .map(|(record, tags)| {
                    let (created, summary) = summarise(inner, &record, tags);
                    (created, record, summary)
                })
                .collect();
            // Newest first: by creation time, then by when this store got the image; images without
            // a creation time go after those with one. The ID breaks the remaining ties, so the order
            // is stable.
            rows.sort_by(|(ca, ra, _), (cb, rb, _)| {
                cb.cmp(ca).then(rb.added.cmp(&ra.added)).then(ra.id.as_ref().cmp(rb.id.as_ref()))
            });
            Ok(rows.into_iter().map(|(_, _, s)| s).collect())
        })
        .await
    }

    /// Config, layers, history and size of one image, by reference, ID or ID prefix.
    pub async fn inspect_image(&self, name: &str) -> Result<ImageInspect> {
        let name = name.to_string();
        self.blocking(move |inner| {
            inner.distribution.wait_unpacked(&name);
            let record = inner.images.resolve(&name)?;
            let tags = inner.images.tags(&record.id);
            inspect(inner, &record, tags)
        })
        .await
    }

    /// Makes `target` (a reference; `:latest` added if it has no tag) point at image `source`.
    pub async fn tag_image(&self, source: &str, target: &str) -> Result<()> {
        let (source, target) = (source.to_string(), target.to_string());
        self.blocking(move |inner| {
            let reference = Reference::parse(&target)?;
            if reference.digest().is_some() {
                return Err(Error::InvalidInput(format!(
                    "refusing to create a tag with a digest reference: {target}"
                )));
            }
            inner.distribution.wait_unpacked(&source);
            let record = inner.images.resolve(&source)?;
            if let Some(previous) = inner.images.tag(&reference, &record.id)? {
                tracing::info!(tag = %reference, from = %previous, to = %record.id, "tag moved");
            }
            Ok(())
        })
        .await
    }

    /// `rmi`: untags `name`; when it was the image's last tag (or `name` is an ID), removes the
    /// image and garbage-collects what only it used. Refused while a container uses the image,
    /// unless `force`.
    ///
    /// Follows Docker: removing a tag of an image that has other tags only untags; naming an
    /// image by ID (or ID prefix) deletes it with its tag, but is refused without `force` when
    /// the image has several tags. A digest reference (`name@sha256:…`) names the image by
    /// content, so it is treated like an ID: this store keeps no digest references apart from
    /// the tags.
    pub async fn remove_image(&self, name: &str, force: bool) -> Result<Vec<ImageDeleteItem>> {
        let name = name.to_string();
        self.blocking(move |inner| {
            inner.distribution.wait_unpacked(&name);
            let gc_guard = write_gc_lock(inner);
            let used = images_used_by_containers(inner);
            let record = inner.images.resolve(&name)?;
            let id = record.id.clone();
            let tags = inner.images.tags(&id);
            let mut items = Vec::new();

            let reference = Reference::parse(&name).ok().filter(|r| r.digest().is_none());
            match reference {
                Some(reference) if !is_id_prefix(&name, &id) => {
                    let last_tag = tags.len() <= 1;
                    if last_tag && !force && used.contains(&id) {
                        return Err(Error::Conflict(format!(
                            "conflict: unable to remove repository reference {name:?} (must force) - a container \
                             is using its referenced image {}",
                            short_id(&id)
                        )));
                    }
                    inner.images.untag(&reference.to_string())?;
                    items.push(ImageDeleteItem::Untagged(reference.familiar()));
                    if !last_tag {
                        return Ok(items);
                    }
                }
                _ => {
                    if tags.len() > 1 && !force {
                        return Err(Error::Conflict(format!(
                            "conflict: unable to delete {} (must be forced) - image is referenced in multiple \
                             repositories",
                            short_id(&id)
                        )));
                    }
                    if used.contains(&id) && !force {
                        return Err(Error::Conflict(format!(
                            "conflict: unable to delete {} (must be forced) - image is being used by a container",
                            short_id(&id)
                        )));
                    }
                }
            }

            let layers = image_layers(inner, &record);
            delete_image(inner, &id, &mut items)?;
            let garbage = collect_garbage_locked(inner, &gc_guard)?;
            report_removed_layers(&layers, &garbage.removed_layers, &mut HashSet::new(), &mut items);
            Ok(items)
        })
        .await
    }

    /// Removes dangling images (no tag), or with `all` every image no container uses, then
    /// collects garbage.
    pub async fn prune_images(&self, all: bool) -> Result<ImagePruneReport> {
        self.blocking(move |inner| {
            let gc_guard = write_gc_lock(inner);
            let used = images_used_by_containers(inner);
            let mut deleted = Vec::new();
            for (record, tags) in inner.images.list() {
                if used.contains(&record.id) || (!all && !tags.is_empty()) {
                    continue;
                }
                let layers = image_layers(inner, &record);
                let mut items = Vec::new();
                delete_image(inner, &record.id, &mut items)?;
                deleted.push((items, layers));
            }
            let garbage = collect_garbage_locked(inner, &gc_guard)?;
            let mut report = ImagePruneReport {
                images_deleted: Vec::new(),
                space_reclaimed: garbage.report.space_reclaimed,
            };
            let mut reported = HashSet::new();
            for (items, layers) in deleted {
                report.images_deleted.extend(items);
                report_removed_layers(
                    &layers,
                    &garbage.removed_layers,
                    &mut reported,
                    &mut report.images_deleted,
                );
            }
            Ok(report)
        })
        .await
    }

    /// Removes blobs and unpacked layers that no image and no container references.
    pub async fn collect_garbage(&self) -> Result<GcReport> {
        self.blocking(|inner| {
            let gc_guard = write_gc_lock(inner);
            Ok(collect_garbage_locked(inner, &gc_guard)?.report)
        })
        .await
    }
}

/// Images that containers were created from; `rmi` and `prune` refuse to (or, with force, may)
/// delete them. (The layers a container stands on are protected separately, through
/// [`crate::snapshot::SnapshotStore::layers_in_use`].)
pub(crate) fn images_used_by_containers(inner: &EngineInner) -> HashSet<Digest> {
    // Every container counts, running or not, as Docker's: its record names the image ID.
    inner
        .containers
        .list()
        .into_iter()
        .filter_map(|record| crate::digest::parse_sha256(&record.image_id).ok())
        .collect()
}

/// Takes the garbage collection lock for writing. It guards no data (only the moment blobs become
/// referenced), so a panic elsewhere that poisoned it leaves nothing inconsistent.
fn write_gc_lock(inner: &EngineInner) -> RwLockWriteGuard<'_, ()> {
    inner.gc_lock.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An image's manifest and config, read (and digest-checked) from the content store.
pub(crate) struct ImageContent {
    pub manifest: ImageManifest,
    pub config: ImageConfiguration,
    /// The config's diff IDs, bottom layer first.
    pub diff_ids: Vec<Digest>,
}

/// Reads the manifest and config of an image and checks that they fit together: the manifest
/// names the config the image ID is the digest of, and lists as many layers as the config has
/// diff IDs. Docker schema 2 manifests have the OCI manifest's shape, so one parser serves both.
pub(crate) fn read_image(inner: &EngineInner, record: &ImageRecord) -> Result<ImageContent> {
    let id = &record.id;
    let manifest_bytes = inner.content.read(&record.manifest)?;
    let manifest: ImageManifest = serde_json::from_slice(&manifest_bytes).map_err(|e| {
        Error::InvalidInput(format!("image {id}: manifest {} is not valid: {e}", record.manifest))
    })?;
    if manifest.config().digest() != id {
        return Err(Error::InvalidInput(format!(
            "image {id}: manifest {} names config {}",
            record.manifest,
            manifest.config().digest()
        )));
    }
    let config_bytes = inner.content.read(id)?;
    let config: ImageConfiguration = serde_json::from_slice(&config_bytes)
        .map_err(|e| Error::InvalidInput(format!("image {id}: config is not valid: {e}")))?;
    let diff_ids = config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| crate::digest::parse_sha256(d))
        .collect::<Result<Vec<_>>>()
        .map_err(|e| Error::InvalidInput(format!("image {id}: config lists a bad diff ID: {e}")))?;
    if diff_ids.len() != manifest.layers().len() {
        return Err(Error::InvalidInput(format!(
            "image {id}: manifest has {} layers but config lists {} diff IDs",
            manifest.layers().len(),
            diff_ids.len()
        )));
    }
    Ok(ImageContent { manifest, config, diff_ids })
}

/// Unpacked size of an image: the sum of its layers' unpacked sizes (a layer not unpacked counts 0).
fn unpacked_size(inner: &EngineInner, diff_ids: &[Digest]) -> Result<u64> {
    let mut total = 0;
    for d in diff_ids {
        if inner.snapshots.has_layer(d) {
            total += inner.snapshots.layer_size(d)?;
        }
    }
    Ok(total)
}

/// `repository@<manifest digest>` for each repository the image is tagged in.
fn repo_digests(record: &ImageRecord, tags: &[String]) -> Vec<String> {
    let repositories: BTreeSet<String> = tags
        .iter()
        .filter_map(|t| Reference::parse(t).ok())
        .map(|r| r.with_digest(record.manifest.clone()).to_string())
        .collect();
    repositories.into_iter().collect()
}

fn parse_created(created: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(created).ok()
}

/// One row of the image list. An image whose manifest or config cannot be read is still listed
/// (with what the index knows), so that it can be seen and removed; the problem is logged.
fn summarise(
    inner: &EngineInner,
    record: &ImageRecord,
    tags: Vec<String>,
) -> (Option<DateTime<FixedOffset>>, ImageSummary) {
    let mut summary = ImageSummary {
        id: record.id.to_string(),
        repo_digests: repo_digests(record, &tags),
        repo_tags: tags,
        created: String::new(),
        size: 0,
    };
    let content = read_image(inner, record).and_then(|c| Ok((unpacked_size(inner, &c.diff_ids)?, c)));
    match content {
        Ok((size, content)) => {
            summary.created = content.config.created().clone().unwrap_or_default();
            summary.size = size;
        }
        Err(e) => tracing::warn!(image = %record.id, error = %e, "cannot read image for the image list"),
    }
    (parse_created(&summary.created), summary)
}

fn inspect(inner: &EngineInner, record: &ImageRecord, tags: Vec<String>) -> Result<ImageInspect> {
    let ImageContent { manifest, config, diff_ids } = read_image(inner, record)?;
    let layers: Vec<LayerInfo> = manifest
        .layers()
        .iter()
        .zip(&diff_ids)
        .map(|(layer, diff_id)| LayerInfo {
            digest: layer.digest().to_string(),
            diff_id: diff_id.to_string(),
            media_type: layer.media_type().to_string(),
            size: layer.size(),
        })
        .collect();
    // History entries that made a layer take the image's layers in order; the others (ENV, CMD,
    // ...) made none.
    let mut layer_sizes = layers.iter().map(|l| l.size);
    let history = config
        .history()
        .iter()
        .flatten()
        .map(|h| {
            let empty_layer = h.empty_layer().unwrap_or(false);
            HistoryEntry {
                created: h.created().clone().unwrap_or_default(),
                created_by: h.created_by().clone().unwrap_or_default(),
                comment: h.comment().clone().unwrap_or_default(),
                empty_layer,
                size: if empty_layer { 0 } else { layer_sizes.next().unwrap_or(0) },
            }
        })
        .collect();
    let runnable = config.config().clone().unwrap_or_default();
    let mut exposed_ports = runnable.exposed_ports().clone().unwrap_or_default();
    exposed_ports.sort();
    let mut volumes = runnable.volumes().clone().unwrap_or_default();
    volumes.sort();
    Ok(ImageInspect {
        id: record.id.to_string(),
        repo_digests: repo_digests(record, &tags),
        repo_tags: tags,
        manifest_digest: record.manifest.to_string(),
        manifest_media_type: record.manifest_media_type.clone(),
        created: config.created().clone().unwrap_or_default(),
        author: config.author().clone().unwrap_or_default(),
        architecture: config.architecture().to_string(),
        os: config.os().to_string(),
        size: unpacked_size(inner, &diff_ids)?,
        config: ImageConfig {
            user: runnable.user().clone().unwrap_or_default(),
            env: runnable.env().clone().unwrap_or_default(),
            entrypoint: runnable.entrypoint().clone().unwrap_or_default(),
            cmd: runnable.cmd().clone().unwrap_or_default(),
            working_dir: runnable.working_dir().clone().unwrap_or_default(),
            exposed_ports,
            volumes,
            labels: runnable.labels().clone().unwrap_or_default().into_iter().collect(),
            stop_signal: runnable.stop_signal().clone().unwrap_or_default(),
        },
        layers,
        history,
    })
}

/// Whether `name` is the image's ID or a prefix of it (with or without `sha256:`), as Docker's
/// `isImageIDPrefix` decides between "untag this reference" and "delete this image".
fn is_id_prefix(name: &str, id: &Digest) -> bool {
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    !hex.is_empty() && id.digest().starts_with(hex)
}

/// The 12 hex digits Docker shows for an ID.
fn short_id(id: &Digest) -> &str {
    &id.digest()[..12.min(id.digest().len())]
}

/// The diff IDs of an image, for reporting which of its layers a deletion freed. An image that
/// cannot be read has none to report; it can still be deleted.
fn image_layers(inner: &EngineInner, record: &ImageRecord) -> Vec<Digest> {
    match read_image(inner, record) {
        Ok(content) => content.diff_ids,
        Err(e) => {
            tracing::warn!(image = %record.id, error = %e, "deleting an image that cannot be read");
            Vec::new()
        }
    }
}

/// Removes the image record and its remaining tags, reporting them as Docker does.
fn delete_image(inner: &EngineInner, id: &Digest, items: &mut Vec<ImageDeleteItem>) -> Result<()> {
    for tag in inner.images.remove(id)? {
        let shown = Reference::parse(&tag).map(|r| r.familiar()).unwrap_or(tag);
        items.push(ImageDeleteItem::Untagged(shown));
    }
    items.push(ImageDeleteItem::Deleted(id.to_string()));
    Ok(())
}

/// Adds a `Deleted:` line for each of `layers` (top first, as Docker lists them) that garbage
/// collection removed and that has not been reported yet.
fn report_removed_layers(
    layers: &[Digest],
    removed: &HashSet<Digest>,
    reported: &mut HashSet<Digest>,
    items: &mut Vec<ImageDeleteItem>,
) {
    for layer in layers.iter().rev() {
        if removed.contains(layer) && reported.insert(layer.clone()) {
            items.push(ImageDeleteItem::Deleted(layer.to_string()));
        }
    }
}

/// What one garbage collection did.
struct Garbage {
    report: GcReport,
    removed_layers: HashSet<Digest>,
}

/// Mark and sweep. The caller holds the GC lock for writing (`_guard` proves it), so no import
/// is between writing content and recording the image that references it.
///
/// Marked: every image's manifest, config and layer blobs; every layer its config lists; every
/// layer a container stands on. If any image cannot be read, nothing is swept: what it references
/// is unknown, and removing it could break an image that is only a repair away.
fn collect_garbage_locked(inner: &EngineInner, _guard: &RwLockWriteGuard<'_, ()>) -> Result<Garbage> {
    let mut blobs = HashSet::new();
    let mut layers = inner.snapshots.layers_in_use()?;
    for (record, _) in inner.images.list() {
        let content = read_image(inner, &record).map_err(|e| {
            let stopped = format!("garbage collection stopped: image {} cannot be read", record.id);
            match e {
                Error::Io { context, source } => {
                    Error::Io { context: format!("{stopped}: {context}"), source }
                }
                // read_image's own messages already name the image.
                Error::InvalidInput(message) => {
                    Error::InvalidInput(format!("garbage collection stopped: {message}"))
                }
                other => Error::InvalidInput(format!("{stopped}: {other}")),
            }
        })?;
        blobs.insert(record.manifest.clone());
        blobs.insert(record.id.clone());
        blobs.extend(content.manifest.layers().iter().map(|l| l.digest().clone()));
        layers.extend(content.diff_ids);
    }
    // What the registry server serves beyond local images (indexes, artifacts, fresh pushes).
    blobs.extend(crate::distribution::kept_blobs(inner));

    let mut report = GcReport::default();
    for blob in inner.content.list()? {
        if blobs.contains(&blob) {
            continue;
        }
        let size = match inner.content.size(&blob) {
            Ok(size) => size,
            Err(Error::BlobNotFound(_)) => continue,
            Err(e) => return Err(e),
        };
        inner.content.delete(&blob)?;
        tracing::debug!(%blob, size, "garbage collected blob");
        report.blobs_removed += 1;
        report.space_reclaimed += size;
    }
    let mut removed_layers = HashSet::new();
    for layer in inner.snapshots.list_layers()? {
        if layers.contains(&layer) {
            continue;
        }
        let freed = inner.snapshots.remove_layer(&layer)?;
        tracing::debug!(%layer, freed, "garbage collected layer");
        report.layers_removed += 1;
        report.space_reclaimed += freed;
        removed_layers.insert(layer);
    }
    if report.blobs_removed + report.layers_removed > 0 {
        tracing::info!(
            blobs = report.blobs_removed,
            layers = report.layers_removed,
            bytes = report.space_reclaimed,
            "garbage collected"
        );
    }
    Ok(Garbage { report, removed_layers })
}
