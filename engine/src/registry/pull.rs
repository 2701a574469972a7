//! Pull: reference → manifest (an index picks this node's platform, or `--platform`) → config →
//! layers, at most [`PARALLEL_LAYERS`] at a time.
//!
//! A layer the store lacks is streamed once: the HTTP body goes through a channel to a blocking
//! thread that tees it into a [`crate::store::BlobWriter`] while the snapshot store decompresses,
//! hashes (diff ID) and unpacks it. The blob becomes visible only when its digest checks out at
//! commit, the layer only when its diff ID matches the config; a blob that fails its digest
//! takes the layer it produced with it. A body that breaks off is asked for again from the byte
//! where it stopped (`Range`), or, where the registry ignores ranges, again from the start with
//! the bytes already passed on skipped; the consumer never notices either.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_types::{LayerStatus, LayerSummary, PullReport, TransferEvent};
use bytes::Bytes;
use chrono::Utc;
use futures_util::{StreamExt, TryStreamExt};
use oci_spec::image::{Descriptor, Digest, ImageConfiguration, ImageIndex, ImageManifest};
use reqwest::header::{ACCEPT, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use reqwest::StatusCode;

use super::client::{answer_error, error_chain, repository_scope, RegistryClient};
use super::{Credentials, GcReadHold, Progress};
use crate::digest::{parse_sha256, sha256_of};
use crate::error::{Error, ErrorKind, IoContext, Result};
use crate::image::import::node_platform;
use crate::layer::Compression;
use crate::store::ImageRecord;
use crate::{Engine, EngineInner, Reference};

/// Layers downloaded at once by one pull.
const PARALLEL_LAYERS: usize = 3;
/// Body chunks buffered between the connection and the unpacking thread (reqwest's chunks are
/// 8–16 KiB, so this bounds a layer's memory at about 1 MiB).
const CHANNEL_CHUNKS: usize = 64;
/// Manifests and indexes larger than this are refused (the spec suggests 4 MiB).
const MANIFEST_LIMIT: usize = 4 << 20;
/// Image configs larger than this are refused.
const CONFIG_LIMIT: usize = 32 << 20;
/// Attempts to resume a layer body after it broke off without progress in between.
const MAX_RESUMES: u32 = 4;
/// At most this often a layer's byte count is reported.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

pub(super) const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";
pub(super) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(super) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(super) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub(super) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// What one pull works with.
struct PullCtx {
    engine: Engine,
    registry: String,
    path: String,
    scopes: Vec<String>,
    progress: Progress,
    /// The caller's own credentials for this pull; `None`: the stored ones (or none).
    credentials: Option<Credentials>,
    bytes_downloaded: AtomicU64,
}

impl PullCtx {
    fn client(&self) -> &RegistryClient {
        &self.engine.inner.registries.client
    }
}

/// How a layer got into the store.
enum LayerOutcome {
    Downloaded,
    Existing,
}

pub(super) async fn pull(
    engine: &Engine,
    reference: &str,
    platform: Option<&str>,
    credentials: Option<Credentials>,
    progress: Progress,
) -> Result<PullReport> {
    let reference = Reference::parse(reference)?;
    let wanted = match platform.filter(|p| !p.is_empty()) {
        Some(p) => Platform::parse(p)?,
        None => Platform::node(),
    };
    progress.send(TransferEvent::Resolving { reference: reference.familiar() });
    let ctx = Arc::new(PullCtx {
        engine: engine.clone(),
        registry: reference.domain().to_string(),
        path: reference.path().to_string(),
        scopes: vec![repository_scope(reference.path(), "pull")],
        progress: progress.clone(),
        credentials,
        bytes_downloaded: AtomicU64::new(0),
    });

    let target = match (reference.digest(), reference.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => unreachable!("a parsed reference has a tag or a digest"),
    };
    let (mut bytes, mut media_type, mut digest) =
        fetch_manifest(&ctx, &reference, &target, reference.digest()).await?;
    let mut index_digest = None;
    if media_type == OCI_INDEX || media_type == DOCKER_LIST {
        let index: ImageIndex = serde_json::from_slice(&bytes)
            .map_err(|e| Error::InvalidInput(format!("image index {digest}: {e}")))?;
        let pick = wanted.pick(index.manifests()).ok_or_else(|| Error::Registry {
            message: format!(
                "no matching manifest for {} in the manifest list entries of {}",
                wanted,
                reference.familiar()
            ),
            kind: ErrorKind::NotFound,
        })?;
        let picked = sha256_only(pick.digest())?;
        index_digest = Some(digest);
        (bytes, media_type, digest) =
            fetch_manifest(&ctx, &reference, picked.as_ref(), Some(&picked)).await?;
    }
    if media_type != OCI_MANIFEST && media_type != DOCKER_MANIFEST {
        return Err(Error::Unsupported(format!(
            "manifest {digest} of {} has media type {media_type:?} (schema 1 and other kinds are not supported)",
            reference.familiar()
        )));
    }
    let manifest: ImageManifest =
        serde_json::from_slice(&bytes).map_err(|e| Error::InvalidInput(format!("manifest {digest}: {e}")))?;

    // From the first blob written until the image record exists, garbage collection waits.
    let _gc = GcReadHold::take(engine.inner.clone()).await?;
    let config_digest = sha256_only(manifest.config().digest())?;
    let config_bytes = fetch_config(&ctx, &config_digest).await?;
    let config: ImageConfiguration = serde_json::from_slice(&config_bytes)
        .map_err(|e| Error::InvalidInput(format!("config {config_digest}: not a valid image config: {e}")))?;
    let diff_ids = config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| parse_sha256(d))
        .collect::<Result<Vec<_>>>()
        .map_err(|e| Error::InvalidInput(format!("config {config_digest}: {e}")))?;
    if diff_ids.len() != manifest.layers().len() {
        return Err(Error::InvalidInput(format!(
            "manifest {digest} has {} layers but its config {config_digest} lists {} diff IDs",
            manifest.layers().len(),
            diff_ids.len()
        )));
    }
    let layers: Vec<(Descriptor, Digest)> = manifest.layers().iter().cloned().zip(diff_ids).collect();
    progress.send(TransferEvent::Resolved {
        digest: digest.to_string(),
        layers: layers
            .iter()
            .map(|(l, _)| LayerSummary { digest: l.digest().to_string(), size: l.size() })
            .collect(),
        total_bytes: layers.iter().map(|(l, _)| l.size()).sum(),
    });
    for (layer, _) in &layers {
        progress.send(layer_event(layer.digest().as_ref(), LayerStatus::Waiting, 0, layer.size()));
    }

    let outcomes: Vec<LayerOutcome> = futures_util::stream::iter(layers.iter().cloned())
        .map(|(layer, diff_id)| {
            let ctx = ctx.clone();
            async move { fetch_layer(&ctx, &layer, &diff_id).await }
        })
        .buffer_unordered(PARALLEL_LAYERS)
        .try_collect()
        .await?;

    let id = config_digest.clone();
    let record_reference = reference.clone();
    let record_digest = digest.clone();
    let record_media_type = media_type.clone();
    engine
        .blocking(move |inner| {
            let mut w = inner.content.writer()?;
            w.write_all(&bytes).context(|| "writing the manifest".into())?;
            w.commit(Some(&record_digest))?;
            inner.images.add(ImageRecord {
                id: id.clone(),
                manifest: record_digest,
                manifest_media_type: record_media_type,
                added: Utc::now(),
            })?;
            if let Some(tag) = record_reference.tag() {
                inner.images.tag(&record_reference.with_tag(tag)?, &id)?;
            }
            Ok(())
        })
        .await?;
    let mut blobs: Vec<Digest> = layers.iter().map(|(l, _)| l.digest().clone()).collect();
    blobs.push(config_digest.clone());
    let (registry, path) = (ctx.registry.clone(), ctx.path.clone());
    engine
        .blocking(move |inner| {
            inner.registries.record_sources(&blobs, &registry, &path);
            Ok(())
        })
        .await?;
    let report = PullReport {
        reference: reference.to_string(),
        digest: digest.to_string(),
        index_digest: index_digest.map(|d| d.to_string()),
        id: config_digest.to_string(),
        layers_downloaded: outcomes.iter().filter(|o| matches!(o, LayerOutcome::Downloaded)).count(),
        layers_existing: outcomes.iter().filter(|o| matches!(o, LayerOutcome::Existing)).count(),
        bytes_downloaded: ctx.bytes_downloaded.load(Ordering::Relaxed),
    };
    tracing::info!(
        reference = %reference,
        digest = %report.digest,
        downloaded = report.layers_downloaded,
        existing = report.layers_existing,
        bytes = report.bytes_downloaded,
        "pulled image"
    );
    Ok(report)
}

fn layer_event(digest: &str, status: LayerStatus, current: u64, total: u64) -> TransferEvent {
    TransferEvent::Layer { digest: digest.to_string(), status, current, total }
}

/// Only sha256 content is stored; other algorithms are refused by name.
fn sha256_only(d: &Digest) -> Result<Digest> {
    parse_sha256(d.as_ref()).map_err(|_| Error::Unsupported(format!("digest {d}: only sha256 is supported")))
}

/// Reads a whole body, refusing more than `limit` bytes.
async fn read_limited(
    response: reqwest::Response,
    limit: usize,
    what: &str,
    registry: &str,
) -> Result<Vec<u8>> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(Error::InvalidInput(format!("{what} is larger than {limit} bytes")));
    }
    let mut out = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| super::client::network_error(registry, &e))?;
        if out.len() + chunk.len() > limit {
            return Err(Error::InvalidInput(format!("{what} is larger than {limit} bytes")));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Fetches a manifest or index by tag or digest: its bytes as received, media type and digest
/// (checked against `expected` when given).
async fn fetch_manifest(
    ctx: &PullCtx,
    reference: &Reference,
    target: &str,
    expected: Option<&Digest>,
) -> Result<(Vec<u8>, String, Digest)> {
    let path = format!("{}/manifests/{target}", ctx.path);
    let response = ctx
        .client()
        .send_as(&ctx.registry, &ctx.scopes, ctx.credentials.as_ref(), &|http, base| {
            http.get(RegistryClient::url(base, &path)).header(ACCEPT, MANIFEST_ACCEPT)
        })
        .await?;
    match response.status() {
        s if s.is_success() => {}
        StatusCode::NOT_FOUND => {
            return Err(
                answer_error(response, &format!("manifest for {} not found", reference.familiar())).await
            )
        }
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            let what = format!(
                "pull access denied for {}, repository does not exist or may require 'docker login'",
                reference.familiar_repository()
            );
            return Err(answer_error(response, &what).await);
        }
        _ => return Err(answer_error(response, &format!("fetching manifest {target} of {}", ctx.path)).await),
    }
    let header_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_string());
    let bytes = read_limited(response, MANIFEST_LIMIT, &format!("manifest {target}"), &ctx.registry).await?;
    let digest = sha256_of(&bytes);
    if let Some(expected) = expected {
        if &digest != expected {
            return Err(Error::DigestMismatch {
                what: format!("manifest {expected} of {}", ctx.path),
                expected: expected.clone(),
                actual: digest,
            });
        }
    }
    // The manifest's own mediaType wins; the Content-Type header is for manifests without one.
    let own = serde_json::from_slice::<serde_json::Value>(&bytes)
        .map_err(|e| Error::InvalidInput(format!("manifest {target} of {}: not JSON: {e}", ctx.path)))?
        .get("mediaType")
        .and_then(|m| m.as_str().map(str::to_string));
    let media_type = own.or(header_type).unwrap_or_default();
    Ok((bytes, media_type, digest))
}

/// The config blob: from the store if there, else downloaded, checked and stored.
async fn fetch_config(ctx: &PullCtx, digest: &Digest) -> Result<Vec<u8>> {
    let d = digest.clone();
    if let Some(bytes) = ctx
        .engine
        .blocking(move |inner| match inner.content.read(&d) {
            Ok(b) => Ok(Some(b)),
            Err(Error::BlobNotFound(_)) => Ok(None),
            Err(e) => Err(e),
        })
        .await?
    {
        return Ok(bytes);
    }
    let path = format!("{}/blobs/{digest}", ctx.path);
    let response = ctx
        .client()
        .send_as(&ctx.registry, &ctx.scopes, ctx.credentials.as_ref(), &|http, base| {
            http.get(RegistryClient::url(base, &path))
        })
        .await?;
    if !response.status().is_success() {
        return Err(answer_error(response, &format!("fetching config {digest}")).await);
    }
    let bytes = read_limited(response, CONFIG_LIMIT, &format!("config {digest}"), &ctx.registry).await?;
    ctx.bytes_downloaded.fetch_add(bytes.len() as u64, Ordering::Relaxed);
    let d = digest.clone();
    let stored = bytes.clone();
    ctx.engine
        .blocking(move |inner| {
            let mut w = inner.content.writer()?;
            w.write_all(&stored).context(|| "writing the config".into())?;
            w.commit(Some(&d)).map_err(|e| match e {
                Error::DigestMismatch { actual, .. } => {
                    Error::DigestMismatch { what: format!("config {d}"), expected: d.clone(), actual }
                }
                e => e,
            })
        })
        .await?;
    Ok(bytes)
}

/// One layer: waits for any other transfer of the same blob, then skips it if the store has
/// it, unpacks it from the store if only the blob is there, or downloads it.
async fn fetch_layer(ctx: &PullCtx, layer: &Descriptor, diff_id: &Digest) -> Result<LayerOutcome> {
    let digest = sha256_only(layer.digest())?;
    let registries = &ctx.engine.inner.registries;
    let lock = registries.layer_lock(&digest);
    let result = {
        let _held = lock.lock().await;
        fetch_layer_locked(ctx, layer, &digest, diff_id).await
    };
    registries.release_layer_lock(&digest, lock);
    result
}

async fn fetch_layer_locked(
    ctx: &PullCtx,
    layer: &Descriptor,
    digest: &Digest,
    diff_id: &Digest,
) -> Result<LayerOutcome> {
    let size = layer.size();
    let shown = digest.as_ref();
    let inner = ctx.engine.inner.clone();
    let has_blob = inner.content.contains(digest);
    // Skipped only when this very blob was shown to be the layer: the config's diff ID alone
    // is a claim (it could name another image's layer).
    if has_blob && inner.snapshots.is_layer_source(diff_id, digest) {
        ctx.progress.send(layer_event(shown, LayerStatus::AlreadyExists, size, size));
        return Ok(LayerOutcome::Existing);
    }
    let compression = Compression::from_media_type(layer.media_type())
        .map_err(|e| Error::Unsupported(format!("layer {digest}: {e}")))?;
    if has_blob {
        ctx.progress.send(layer_event(shown, LayerStatus::Extracting, size, size));
        let (d, id) = (digest.clone(), diff_id.clone());
        ctx.engine
            .blocking(move |inner| {
                let blob = inner.content.open_blob(&d)?;
                inner
                    .snapshots
                    .unpack_layer(io::BufReader::with_capacity(1 << 20, blob), compression, Some(&id))
                    .map_err(|e| name_layer(e, &d))?;
                inner.snapshots.record_layer_source(&id, &d)
            })
            .await?;
        ctx.progress.send(layer_event(shown, LayerStatus::Done, size, size));
        return Ok(LayerOutcome::Existing);
    }

    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(CHANNEL_CHUNKS);
    let finished = Arc::new(AtomicBool::new(false));
    let reader = ChannelReader { rx, current: Bytes::new(), finished: finished.clone() };
    let (d, id) = (digest.clone(), diff_id.clone());
    let consumer = tokio::task::spawn_blocking(move || store_layer(&inner, reader, compression, &d, &id));
    ctx.progress.send(layer_event(shown, LayerStatus::Downloading, 0, size));
    let downloaded = stream_blob(ctx, digest, size, tx, &finished).await;
    if matches!(downloaded, Ok(Some(_))) {
        ctx.progress.send(layer_event(shown, LayerStatus::Verifying, size, size));
    }
    let stored = consumer.await.expect("layer store task panicked");
    match (downloaded, stored) {
        // The download's own failure is the cause; the consumer only saw the stream end.
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => Err(e),
        (Ok(None), Ok(())) => Err(Error::Registry {
            message: format!("layer {digest}: the download stopped early"),
            kind: ErrorKind::Internal,
        }),
        (Ok(Some(_)), Ok(())) => {
            ctx.progress.send(layer_event(shown, LayerStatus::Done, size, size));
            Ok(LayerOutcome::Downloaded)
        }
    }
}

/// Gives a digest mismatch of the unpacker the layer's name.
fn name_layer(e: Error, digest: &Digest) -> Error {
    match e {
        Error::DigestMismatch { what, expected, actual } => {
            Error::DigestMismatch { what: format!("layer {digest} ({what})"), expected, actual }
        }
        e => e,
    }
}

/// The blocking half of a download: the body, as it arrives, into the content store and the
/// snapshot store at once.
fn store_layer(
    inner: &EngineInner,
    body: ChannelReader,
    compression: Compression,
    digest: &Digest,
    diff_id: &Digest,
) -> Result<()> {
    let had_layer = inner.snapshots.has_layer(diff_id);
    let mut blob = inner.content.writer()?;
    let mut tee = TeeReader { inner: body, copy: &mut blob };
    inner.snapshots.unpack_layer(&mut tee, compression, Some(diff_id)).map_err(|e| name_layer(e, digest))?;
    // What the unpacker did not need (padding after the tar's end, or all of it when the layer
    // was unpacked already) belongs to the blob too.
    io::copy(&mut tee, &mut io::sink()).context(|| format!("reading layer {digest}"))?;
    match blob.commit(Some(digest)) {
        Ok(_) => inner.snapshots.record_layer_source(diff_id, digest),
        Err(Error::DigestMismatch { actual, .. }) => {
            // The layer came from bytes that are not the blob the manifest names: it goes too.
            if !had_layer {
                if let Err(e) = inner.snapshots.remove_layer(diff_id) {
                    tracing::warn!(error = %e, %diff_id, "cannot remove the layer of a bad blob");
                }
            }
            Err(Error::DigestMismatch { what: format!("layer {digest}"), expected: digest.clone(), actual })
        }
        Err(e) => Err(e),
    }
}

/// Streams a blob's body into `tx`, resuming after breaks. `Ok(Some(bytes))` when it all
/// arrived; `Ok(None)` when the consumer stopped reading (its own error says why).
async fn stream_blob(
    ctx: &PullCtx,
    digest: &Digest,
    size: u64,
    tx: tokio::sync::mpsc::Sender<Bytes>,
    finished: &AtomicBool,
) -> Result<Option<u64>> {
    let path = format!("{}/blobs/{digest}", ctx.path);
    let shown = digest.as_ref();
    let mut offset: u64 = 0;
    let mut failures = 0u32;
    let mut last_report = Instant::now();
    loop {
        let from = offset;
        let sent = ctx
            .client()
            .send_as(&ctx.registry, &ctx.scopes, ctx.credentials.as_ref(), &|http, base| {
                let request = http.get(RegistryClient::url(base, &path));
                if from > 0 {
                    request.header(RANGE, format!("bytes={from}-"))
                } else {
                    request
                }
            })
            .await;
        let reason = match sent {
            Err(e) => e.to_string(),
            Ok(response) => {
                let status = response.status();
                let mut skip: u64 = if status == StatusCode::PARTIAL_CONTENT {
                    if content_range_start(&response) != Some(from) {
                        return Err(Error::Registry {
                            message: format!(
                                "layer {digest}: the registry answered a range request with another range"
                            ),
                            kind: ErrorKind::Internal,
                        });
                    }
                    0
                } else if status.is_success() {
                    // The whole blob again (ranges not supported): skip what was passed on.
                    from
                } else {
                    return Err(answer_error(response, &format!("fetching layer {digest}")).await);
                };
                if from > 0 {
                    tracing::info!(layer = %digest, from, ranged = skip == 0, "resuming a layer download");
                }
                let mut stream = response.bytes_stream();
                let mut broke = None;
                let before = offset;
                while let Some(chunk) = stream.next().await {
                    let mut bytes = match chunk {
                        Ok(b) => b,
                        Err(e) => {
                            broke = Some(error_chain(&e));
                            break;
                        }
                    };
                    if skip > 0 {
                        let n = skip.min(bytes.len() as u64) as usize;
                        bytes = bytes.slice(n..);
                        skip -= n as u64;
                        if bytes.is_empty() {
                            continue;
                        }
                    }
                    offset += bytes.len() as u64;
                    if offset > size {
                        return Err(Error::Registry {
                            message: format!("layer {digest}: the registry sent more than its {size} bytes"),
                            kind: ErrorKind::Internal,
                        });
                    }
                    ctx.bytes_downloaded.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    if tx.send(bytes).await.is_err() {
                        return Ok(None);
                    }
                    if last_report.elapsed() >= PROGRESS_INTERVAL {
                        last_report = Instant::now();
                        ctx.progress.send(layer_event(shown, LayerStatus::Downloading, offset, size));
                    }
                }
                if offset == size {
                    ctx.progress.send(layer_event(shown, LayerStatus::Downloading, offset, size));
                    finished.store(true, Ordering::SeqCst);
                    return Ok(Some(offset));
                }
                if offset > before {
                    failures = 0;
                }
                broke.unwrap_or_else(|| "the connection closed early".to_string())
            }
        };
        failures += 1;
        if failures > MAX_RESUMES {
            return Err(Error::Registry {
                message: format!(
                    "fetching layer {digest}: the download broke off at byte {offset} of {size} and could not be resumed: {reason}"
                ),
                kind: ErrorKind::Internal,
            });
        }
        tracing::warn!(layer = %digest, offset, size, %reason, attempt = failures, "layer download broke off; resuming");
        tokio::time::sleep(Duration::from_millis(200 * u64::from(failures))).await;
    }
}

/// The first byte of `Content-Range: bytes <first>-<last>/<size>`.
fn content_range_start(response: &reqwest::Response) -> Option<u64> {
    let value = response.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    let range = value.strip_prefix("bytes ")?;
    range.split('-').next()?.trim().parse().ok()
}

/// The body as the blocking thread reads it. The end of the channel is an end of input only if
/// the download side said it finished; otherwise (the pull was cancelled or failed) it is an
/// error, so that nothing takes a cut stream for a whole one.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    current: Bytes,
    finished: Arc<AtomicBool>,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.current = b,
                None if self.finished.load(Ordering::SeqCst) => return Ok(0),
                None => {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the layer download broke off"))
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

/// Copies everything read through it into the blob being written.
struct TeeReader<'a, R> {
    inner: R,
    copy: &'a mut crate::store::BlobWriter,
}

impl<R: Read> Read for TeeReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// An `os/arch[/variant]` to pick from an image index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Platform {
    os: String,
    arch: String,
    variant: Option<String>,
}

impl Platform {
    fn node() -> Platform {
        let (os, arch, variant) = node_platform();
        Platform { os: os.into(), arch: arch.into(), variant: variant.map(str::to_string) }
    }

    fn parse(s: &str) -> Result<Platform> {
        let bad = || {
            Error::InvalidInput(format!("invalid platform {s:?}: want os/arch[/variant], e.g. linux/amd64"))
        };
        let parts: Vec<&str> = s.split('/').collect();
        if parts.iter().any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')) {
            return Err(bad());
        }
        let arch = |a: &str| match a {
            "x86_64" | "x86-64" => "amd64".to_string(),
            "aarch64" => "arm64".to_string(),
            a => a.to_ascii_lowercase(),
        };
        match parts.as_slice() {
            [os, a] => Ok(Platform { os: os.to_ascii_lowercase(), arch: arch(a), variant: None }),
            [os, a, v] => Ok(Platform {
                os: os.to_ascii_lowercase(),
                arch: arch(a),
                variant: Some(v.to_ascii_lowercase()),
            }),
            _ => Err(bad()),
        }
    }

    fn matches(&self, p: &oci_spec::image::Platform) -> bool {
        p.os().to_string() == self.os
            && p.architecture().to_string() == self.arch
            && match (&self.variant, p.variant()) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            }
    }

    /// The entry for this platform: the exact variant first, then any entry that matches.
    fn pick<'a>(&self, entries: &'a [Descriptor]) -> Option<&'a Descriptor> {
        let matching: Vec<&Descriptor> =
            entries.iter().filter(|d| d.platform().as_ref().is_some_and(|p| self.matches(p))).collect();
        matching
            .iter()
            .find(|d| d.platform().as_ref().and_then(|p| p.variant().as_deref()) == self.variant.as_deref())
            .or(matching.first())
            .copied()
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse() {
        assert_eq!(
            Platform::parse("linux/arm64/v8").unwrap(),
            Platform { os: "linux".into(), arch: "arm64".into(), variant: Some("v8".into()) }
        );
        assert_eq!(Platform::parse("linux/x86_64").unwrap().arch, "amd64");
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d", "linux/am d64"] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn channel_reader_tells_a_cut_stream_from_an_end() {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let finished = Arc::new(AtomicBool::new(false));
        tx.blocking_send(Bytes::from_static(b"abc")).unwrap();
        drop(tx);
        let mut r = ChannelReader { rx, current: Bytes::new(), finished: finished.clone() };
        let mut out = Vec::new();
        let err = r.read_to_end(&mut out).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(out, b"abc");

        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.blocking_send(Bytes::from_static(b"abc")).unwrap();
        drop(tx);
        let finished = Arc::new(AtomicBool::new(true));
        let mut r = ChannelReader { rx, current: Bytes::new(), finished };
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc");
    }
}
