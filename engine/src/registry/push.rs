//! Push: every blob of the image (config and layers) is asked for with HEAD first and uploaded
//! only when the registry lacks it: mounted from another repository of the same registry when
//! one is known to hold it, else uploaded in one PUT (small blobs) or in PATCH chunks with
//! `Content-Range` followed by a closing PUT (large ones). The manifest goes last, with the
//! bytes the store keeps, so its digest is the one the image has here.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_types::{LayerStatus, LayerSummary, PushReport, TransferEvent};
use futures_util::{StreamExt, TryStreamExt};
use oci_spec::image::{Descriptor, Digest, ImageManifest};
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode, Url};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::client::{answer_error, repository_scope, RegistryClient};
use super::pull::{DOCKER_MANIFEST, OCI_MANIFEST};
use super::{Credentials, Progress};
use crate::digest::parse_sha256;
use crate::error::{Error, ErrorKind, Result};
use crate::{Engine, Reference};

/// Blobs uploaded at once by one push.
const PARALLEL_BLOBS: usize = 3;
/// Blobs up to this size go in one PUT; larger ones in PATCH chunks of this size.
pub const CHUNK_SIZE: u64 = 16 << 20;
/// At most this often a blob's byte count is reported.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// How a blob got to the registry.
enum BlobOutcome {
    Existing,
    Mounted,
    Uploaded(u64),
}

struct PushCtx {
    engine: Engine,
    registry: String,
    path: String,
    scopes: Vec<String>,
    progress: Progress,
    /// The caller's own credentials for this push; `None`: the stored ones (or none).
    credentials: Option<Credentials>,
}

impl PushCtx {
    fn client(&self) -> &RegistryClient {
        &self.engine.inner.registries.client
    }
}

pub(super) async fn push(
    engine: &Engine,
    name: &str,
    credentials: Option<Credentials>,
    progress: Progress,
) -> Result<PushReport> {
    let reference = Reference::parse(name)?;
    let lookup = name.to_string();
    let (record, manifest_bytes) = engine
        .blocking(move |inner| {
            inner.distribution.wait_unpacked(&lookup);
            let record = inner.images.resolve(&lookup)?;
            let bytes = inner.content.read(&record.manifest)?;
            Ok((record, bytes))
        })
        .await
        .map_err(|e| match e {
            Error::ImageNotFound(_) => {
                Error::ImageNotFound(format!("{} (tag it with `berth tag` first)", reference.familiar()))
            }
            e => e,
        })?;
    if record.manifest_media_type != OCI_MANIFEST && record.manifest_media_type != DOCKER_MANIFEST {
        return Err(Error::Unsupported(format!("pushing a manifest of type {}", record.manifest_media_type)));
    }
    let manifest: ImageManifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| Error::InvalidInput(format!("manifest {}: {e}", record.manifest)))?;
    let mut blobs: Vec<Descriptor> = vec![manifest.config().clone()];
    blobs.extend(manifest.layers().iter().cloned());
    progress.send(TransferEvent::Resolving { reference: reference.familiar() });

    let registry = reference.domain().to_string();
    let path = reference.path().to_string();
    let registries = &engine.inner.registries;
    // A token covers the repositories blobs may be mounted from too.
    let mut scopes = vec![repository_scope(&path, "pull,push")];
    for blob in &blobs {
        for source in registries.mount_sources(blob.digest(), &registry, &path) {
            let scope = repository_scope(&source, "pull");
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
    }
    let ctx = Arc::new(PushCtx {
        engine: engine.clone(),
        registry,
        path,
        scopes,
        progress: progress.clone(),
        credentials,
    });
    progress.send(TransferEvent::Resolved {
        digest: record.manifest.to_string(),
        layers: blobs
            .iter()
            .map(|b| LayerSummary { digest: b.digest().to_string(), size: b.size() })
            .collect(),
        total_bytes: blobs.iter().map(|b| b.size()).sum(),
    });
    for blob in &blobs {
        progress.send(layer_event(blob.digest(), LayerStatus::Waiting, 0, blob.size()));
    }

    let outcomes: Vec<BlobOutcome> = futures_util::stream::iter(blobs.iter().cloned())
        .map(|blob| {
            let ctx = ctx.clone();
            async move { push_blob(&ctx, &blob).await }
        })
        .buffer_unordered(PARALLEL_BLOBS)
        .try_collect()
        .await?;

    // The manifest, by tag, or by digest when the reference names one.
    let target = match (reference.digest(), reference.tag()) {
        (Some(d), _) => {
            if d != &record.manifest {
                return Err(Error::InvalidInput(format!(
                    "{} names manifest {d}, but the image's manifest is {}",
                    reference.familiar(),
                    record.manifest
                )));
            }
            d.to_string()
        }
        (None, Some(t)) => t.to_string(),
        (None, None) => unreachable!("a parsed reference has a tag or a digest"),
    };
    let manifest_path = format!("{}/manifests/{target}", ctx.path);
    let body = manifest_bytes.clone();
    let media_type = record.manifest_media_type.clone();
    let response = ctx
        .client()
        .send_as(&ctx.registry, &ctx.scopes, ctx.credentials.as_ref(), &|http, base| {
            http.put(RegistryClient::url(base, &manifest_path))
                .header(CONTENT_TYPE, media_type.as_str())
                .body(body.clone())
        })
        .await?;
    if !response.status().is_success() {
        return Err(answer_error(response, &format!("pushing manifest of {}", reference.familiar())).await);
    }
    if let Some(echoed) = response.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()) {
        if echoed != record.manifest.as_ref() {
            tracing::warn!(expected = %record.manifest, registry_says = echoed, "registry stored the manifest under another digest");
        }
    }
    let digests: Vec<Digest> = blobs.iter().map(|b| b.digest().clone()).collect();
    let (registry, path) = (ctx.registry.clone(), ctx.path.clone());
    engine
        .blocking(move |inner| {
            inner.registries.record_sources(&digests, &registry, &path);
            Ok(())
        })
        .await?;
    let report = PushReport {
        reference: reference.to_string(),
        digest: record.manifest.to_string(),
        size: manifest_bytes.len() as u64,
        blobs_uploaded: outcomes.iter().filter(|o| matches!(o, BlobOutcome::Uploaded(_))).count(),
        blobs_existing: outcomes.iter().filter(|o| matches!(o, BlobOutcome::Existing)).count(),
        blobs_mounted: outcomes.iter().filter(|o| matches!(o, BlobOutcome::Mounted)).count(),
        bytes_uploaded: outcomes.iter().map(|o| if let BlobOutcome::Uploaded(n) = o { *n } else { 0 }).sum(),
    };
    tracing::info!(
        reference = %reference,
        digest = %report.digest,
        uploaded = report.blobs_uploaded,
        existing = report.blobs_existing,
        mounted = report.blobs_mounted,
        "pushed image"
    );
    Ok(report)
}

fn layer_event(digest: &Digest, status: LayerStatus, current: u64, total: u64) -> TransferEvent {
    TransferEvent::Layer { digest: digest.to_string(), status, current, total }
}

async fn push_blob(ctx: &PushCtx, blob: &Descriptor) -> Result<BlobOutcome> {
    let digest = parse_sha256(blob.digest().as_ref())
        .map_err(|_| Error::Unsupported(format!("digest {}: only sha256 is supported", blob.digest())))?;
    let size = blob.size();
    let head_path = format!("{}/blobs/{digest}", ctx.path);
    let response = ctx
        .client()
        .send_as(&ctx.registry, &ctx.scopes, ctx.credentials.as_ref(), &|http, base| {
            http.head(RegistryClient::url(base, &head_path))
        })
        .await?;
    match response.status() {
        s if s.is_success() => {
            ctx.progress.send(layer_event(&digest, LayerStatus::AlreadyExists, size, size));
            return Ok(BlobOutcome::Existing);
        }
        StatusCode::NOT_FOUND => {}
        _ => return Err(answer_error(response, &format!("checking blob {digest}")).await),
    }

    // A mount, when some repository of this registry is known to hold the blob; the registry
    // answers 201 (mounted) or 202 (no mount: here is an upload session instead).
    let sources = ctx.engine.inner.registries.mount_sources(&digest, &ctx.registry, &ctx.path);
    let mut location = None;
    // One attempt: a refused mount already opens the upload session the blob goes to.
    if let Some(source) = sources.into_iter().next() {
        let url_path = format!("{}/blobs/uploads/", ctx.path);
        let response = ctx
            .client()
            .send_as(&ctx.registry, &ctx.scopes, ctx.credentials.as_ref(), &|http, base| {
                let mut url = RegistryClient::url(base, &url_path);
                url.query_pairs_mut().append_pair("mount", digest.as_ref()).append_pair("from", &source);
                http.post(url).header(CONTENT_LENGTH, "0")
            })
            .await?;
        match response.status() {
            StatusCode::CREATED => {
                tracing::debug!(blob = %digest, from = %source, "mounted");
                ctx.progress.send(layer_event(&digest, LayerStatus::Mounted, size, size));
                return Ok(BlobOutcome::Mounted);
            }
            StatusCode::ACCEPTED => {
                location = Some(upload_location(ctx, &response).await?);
            }
            _ => return Err(answer_error(response, &format!("mounting blob {digest} from {source}")).await),
        }
    }
    let location = match location {
        Some(l) => l,
        None => start_upload(ctx, &digest).await?,
    };
    let uploaded = if size <= CHUNK_SIZE {
        upload_monolithic(ctx, &digest, size, location).await?
    } else {
        upload_chunked(ctx, &digest, size, location).await?
    };
    ctx.progress.send(layer_event(&digest, LayerStatus::Pushed, size, size));
    Ok(BlobOutcome::Uploaded(uploaded))
}

/// `POST /v2/<name>/blobs/uploads/` → the upload session's URL.
async fn start_upload(ctx: &PushCtx, digest: &Digest) -> Result<Url> {
    let url_path = format!("{}/blobs/uploads/", ctx.path);
    let response = ctx
        .client()
        .send_as(&ctx.registry, &ctx.scopes, ctx.credentials.as_ref(), &|http, base| {
            http.post(RegistryClient::url(base, &url_path)).header(CONTENT_LENGTH, "0")
        })
        .await?;
    if response.status() != StatusCode::ACCEPTED {
        let what = format!("starting the upload of blob {digest} to {}", ctx.path);
        return Err(answer_error(response, &what).await);
    }
    upload_location(ctx, &response).await
}

/// The `Location` of an upload answer, resolved against the registry's base (it may be
/// relative).
async fn upload_location(ctx: &PushCtx, response: &reqwest::Response) -> Result<Url> {
    let location =
        response.headers().get(LOCATION).and_then(|v| v.to_str().ok()).ok_or_else(|| Error::Registry {
            message: format!("registry {} gave no upload location", ctx.registry),
            kind: ErrorKind::Internal,
        })?;
    let base = ctx.client().base(&ctx.registry).await?;
    base.join(location).map_err(|e| Error::Registry {
        message: format!("registry {} gave a bad upload location {location:?}: {e}", ctx.registry),
        kind: ErrorKind::Internal,
    })
}

/// A stream of `len` bytes of the blob from `offset`, reporting progress as it goes.
async fn blob_body(
    ctx: &PushCtx,
    digest: &Digest,
    offset: u64,
    len: u64,
    size: u64,
    sent: Arc<AtomicU64>,
) -> Result<reqwest::Body> {
    let file = ctx.engine.inner.content.open_blob(digest)?;
    let mut file = tokio::fs::File::from_std(file);
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(|e| Error::io(format!("reading blob {digest}"), e))?;
    let progress = ctx.progress.clone();
    let shown = digest.clone();
    let mut last = Instant::now();
    let stream =
        tokio_util::io::ReaderStream::with_capacity(file.take(len), 256 << 10).inspect(move |chunk| {
            if let Ok(c) = chunk {
                let done = sent.fetch_add(c.len() as u64, Ordering::Relaxed) + c.len() as u64;
                if last.elapsed() >= PROGRESS_INTERVAL || done == size {
                    last = Instant::now();
                    progress.send(layer_event(&shown, LayerStatus::Uploading, done, size));
                }
            }
        });
    Ok(reqwest::Body::wrap_stream(stream))
}

fn with_digest(mut url: Url, digest: &Digest) -> Url {
    url.query_pairs_mut().append_pair("digest", digest.as_ref());
    url
}

/// One `PUT <location>?digest=…` with the whole blob.
async fn upload_monolithic(ctx: &PushCtx, digest: &Digest, size: u64, location: Url) -> Result<u64> {
    let sent = Arc::new(AtomicU64::new(0));
    let body = blob_body(ctx, digest, 0, size, size, sent).await?;
    // The session is authorized already (the POST was), so the streamed body goes out once.
    let body = std::sync::Mutex::new(Some(body));
    let url = with_digest(location, digest);
    let response = ctx
        .client()
        .send_as(&ctx.registry, &ctx.scopes, ctx.credentials.as_ref(), &|http, _| {
            let request = RegistryClient::request(http, Method::PUT, url.clone())
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_LENGTH, size.to_string());
            match body.lock().unwrap_or_else(|p| p.into_inner()).take() {
                Some(b) => request.body(b),
                None => request,
            }
        })
        .await?;
    if response.status() != StatusCode::CREATED {
        return Err(answer_error(response, &format!("uploading blob {digest}")).await);
    }
    Ok(size)
}

/// PATCH chunks with `Content-Range`, each to the location the previous answer gave, then a
/// closing `PUT ?digest=`.
async fn upload_chunked(ctx: &PushCtx, digest: &Digest, size: u64, mut location: Url) -> Result<u64> {
    let sent = Arc::new(AtomicU64::new(0));
    let mut offset = 0;
    while offset < size {
        let len = CHUNK_SIZE.min(size - offset);
        let body =
            std::sync::Mutex::new(Some(blob_body(ctx, digest, offset, len, size, sent.clone()).await?));
        let url = location.clone();
        let range = format!("{}-{}", offset, offset + len - 1);
        let response = ctx
            .client()
            .send_as(&ctx.registry, &ctx.scopes, ctx.credentials.as_ref(), &|http, _| {
                let request = RegistryClient::request(http, Method::PATCH, url.clone())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_RANGE, range.as_str())
                    .header(CONTENT_LENGTH, len.to_string());
                match body.lock().unwrap_or_else(|p| p.into_inner()).take() {
                    Some(b) => request.body(b),
                    None => request,
                }
            })
            .await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(answer_error(response, &format!("uploading blob {digest} (bytes {range})")).await);
        }
        location = upload_location(ctx, &response).await?;
        offset += len;
    }
    let url = with_digest(location, digest);
    let response = ctx
        .client()
        .send_as(&ctx.registry, &ctx.scopes, ctx.credentials.as_ref(), &|http, _| {
            RegistryClient::request(http, Method::PUT, url.clone()).header(CONTENT_LENGTH, "0")
        })
        .await?;
    if response.status() != StatusCode::CREATED {
        return Err(answer_error(response, &format!("finishing the upload of blob {digest}")).await);
    }
    Ok(size)
}
