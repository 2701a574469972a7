//! `save`: images to a tar that is an OCI image layout and a `docker save` archive at once, as
//! Docker 25+ writes it:
//!
//! ```text
//! oci-layout                    {"imageLayoutVersion":"1.0.0"}
//! blobs/sha256/<hex>            manifests, configs and layers, each once
//! index.json                    one entry per reference (ref.name = the tag,
//!                               io.containerd.image.name = the full reference)
//! manifest.json                 [{"Config": "blobs/sha256/..", "RepoTags": [..], "Layers": [..]}]
//! ```
//!
//! Saving is split in two so that the API can answer "no such image" before it starts a
//! response: [`Engine::prepare_save`] resolves every name and reads the manifests, and
//! [`SavePlan::write_to`] streams the tar, blob by blob from the store.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, BufWriter, Read, Write};

use oci_spec::image::{Digest, ImageManifest};
use serde_json::{json, Value};

use crate::error::{Error, IoContext, Result};
use crate::{Engine, EngineInner, Reference};

const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

/// What a save will write, worked out before the first byte.
#[derive(Debug, Clone)]
pub struct SavePlan {
    images: Vec<SaveImage>,
    /// Every blob once, in the order they go into the tar, with their sizes.
    blobs: Vec<(Digest, u64)>,
}

#[derive(Debug, Clone)]
struct SaveImage {
    manifest: Digest,
    manifest_media_type: String,
    manifest_size: u64,
    config: Digest,
    layers: Vec<Digest>,
    /// The references the caller named this image by (none when named by ID).
    references: Vec<Reference>,
}

impl Engine {
    /// Resolves the images to save (references, IDs or ID prefixes); fails with
    /// [`Error::ImageNotFound`] for an unknown name before anything is written.
    pub async fn prepare_save(&self, names: Vec<String>) -> Result<SavePlan> {
        if names.is_empty() {
            return Err(Error::InvalidInput("no image to save: name at least one".into()));
        }
        self.blocking(move |inner| prepare_blocking(inner, &names)).await
    }

    /// `docker save` in one call, for callers that need not answer before streaming.
    pub async fn save_images(
        &self,
        names: Vec<String>,
        out: impl tokio::io::AsyncWrite + Send + Unpin + 'static,
    ) -> Result<()> {
        self.prepare_save(names).await?.write_to(self, out).await
    }
}

fn prepare_blocking(inner: &EngineInner, names: &[String]) -> Result<SavePlan> {
    let mut images: Vec<SaveImage> = Vec::new();
    for name in names {
        let record = inner.images.resolve(name)?;
        // Named by a tag: that tag goes into the archive. By ID or digest: no name, as Docker.
        let reference = Reference::parse(name)
            .ok()
            .filter(|r| r.digest().is_none() && inner.images.tags(&record.id).contains(&r.to_string()));
        if let Some(existing) = images.iter_mut().find(|i| i.config == record.id) {
            if let Some(r) = reference {
                if !existing.references.contains(&r) {
                    existing.references.push(r);
                }
            }
            continue;
        }
        let bytes = inner.content.read(&record.manifest)?;
        let manifest: ImageManifest = serde_json::from_slice(&bytes)
            .map_err(|e| Error::InvalidInput(format!("stored manifest {}: {e}", record.manifest)))?;
        images.push(SaveImage {
            manifest: record.manifest.clone(),
            manifest_media_type: record.manifest_media_type.clone(),
            manifest_size: bytes.len() as u64,
            config: manifest.config().digest().clone(),
            layers: manifest.layers().iter().map(|l| l.digest().clone()).collect(),
            references: reference.into_iter().collect(),
        });
    }
    let mut seen = HashSet::new();
    let mut blobs = Vec::new();
    for image in &images {
        for d in image.layers.iter().chain([&image.config, &image.manifest]) {
            if seen.insert(d.clone()) {
                blobs.push((d.clone(), inner.content.size(d)?));
            }
        }
    }
    Ok(SavePlan { images, blobs })
}

impl SavePlan {
    /// The IDs of the images this plan saves, in order.
    pub fn image_ids(&self) -> Vec<String> {
        self.images.iter().map(|i| i.config.to_string()).collect()
    }

    /// Streams the archive into `out`, then shuts `out` down. Layers stream from the store; only
    /// the small JSON files are built in memory.
    pub async fn write_to(
        self,
        engine: &Engine,
        out: impl tokio::io::AsyncWrite + Send + Unpin + 'static,
    ) -> Result<()> {
        let bridge = tokio_util::io::SyncIoBridge::new(out);
        engine
            .blocking(move |inner| {
                // Blobs being saved must not be collected under our feet by a concurrent rmi.
                let _gc = inner.gc_lock.read().expect("gc lock poisoned");
                let writer = BufWriter::with_capacity(1 << 20, bridge);
                let mut bridge = self
                    .write_tar(inner, writer)?
                    .into_inner()
                    .map_err(|e| e.into_error())
                    .context(|| "writing the archive".into())?;
                bridge.shutdown().context(|| "finishing the archive".into())
            })
            .await
    }

    fn write_tar<W: Write>(&self, inner: &EngineInner, writer: W) -> Result<W> {
        let werr = |e: io::Error| Error::io("writing the archive", e);
        let mut tar = tar::Builder::new(writer);
        append_bytes(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(werr)?;
        append_dir(&mut tar, "blobs/").map_err(werr)?;
        append_dir(&mut tar, "blobs/sha256/").map_err(werr)?;
        for (digest, size) in &self.blobs {
            let blob = inner.content.open_blob(digest)?;
            let mut header = file_header(*size);
            let mut counted = CountingReader { inner: blob.take(*size), bytes: 0 };
            tar.append_data(&mut header, blob_path(digest), &mut counted).map_err(werr)?;
            if counted.bytes != *size {
                // The tar already promised `size` bytes; a short blob would corrupt it.
                return Err(Error::io(
                    format!("saving blob {digest}"),
                    io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("{} of {size} bytes", counted.bytes),
                    ),
                ));
            }
        }
        append_bytes(&mut tar, "index.json", &self.index_json()).map_err(werr)?;
        append_bytes(&mut tar, "manifest.json", &self.docker_manifest_json()).map_err(werr)?;
        tar.finish().map_err(werr)?;
        tar.into_inner().map_err(werr)
    }

    /// The OCI index: one entry per reference, or one without names for an image saved by ID.
    fn index_json(&self) -> Vec<u8> {
        let mut manifests = Vec::new();
        for image in &self.images {
            let entry = |annotations: Option<Value>| {
                let mut e = json!({
                    "mediaType": image.manifest_media_type,
                    "digest": image.manifest.to_string(),
                    "size": image.manifest_size,
                });
                if let Some(a) = annotations {
                    e["annotations"] = a;
                }
                e
            };
            if image.references.is_empty() {
                manifests.push(entry(None));
            }
            for r in &image.references {
                let mut annotations = BTreeMap::new();
                annotations.insert(ANNOTATION_CONTAINERD_NAME, r.to_string());
                annotations.insert(ANNOTATION_REF_NAME, r.tag().unwrap_or("latest").to_string());
                manifests.push(entry(Some(json!(annotations))));
            }
        }
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        });
        serde_json::to_vec(&index).expect("index serialises")
    }

    /// Docker's `manifest.json`, pointing into `blobs/`.
    fn docker_manifest_json(&self) -> Vec<u8> {
        let entries: Vec<Value> = self
            .images
            .iter()
            .map(|image| {
                let tags: Vec<String> = image.references.iter().map(|r| r.familiar()).collect();
                json!({
                    "Config": blob_path(&image.config),
                    "RepoTags": if tags.is_empty() { Value::Null } else { json!(tags) },
                    "Layers": image.layers.iter().map(blob_path).collect::<Vec<_>>(),
                })
            })
            .collect();
        serde_json::to_vec(&entries).expect("manifest.json serialises")
    }
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm(), d.digest())
}

/// Fixed owner, mode and time, so the same images always give the same archive.
fn file_header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h
}

fn append_bytes<W: Write>(tar: &mut tar::Builder<W>, path: &str, bytes: &[u8]) -> io::Result<()> {
    let mut h = file_header(bytes.len() as u64);
    tar.append_data(&mut h, path, bytes)
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, path: &str) -> io::Result<()> {
    let mut h = file_header(0);
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    tar.append_data(&mut h, path, io::empty())
}

struct CountingReader<R> {
    inner: R,
    bytes: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}
