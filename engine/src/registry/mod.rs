//! The OCI distribution client: pull and push images, moving only what the other side lacks,
//! and the credentials `login` keeps.
//!
//! - [`client`]: HTTP, endpoints (HTTPS, or plain HTTP for loopback and `--insecure-registry`),
//!   authentication (Basic, Bearer tokens), registry errors.
//! - [`pull`]: manifest (index → this platform) → config → layers, in parallel, each streamed
//!   once into the content store and the snapshot store.
//! - [`push`]: blobs the registry lacks (HEAD first, cross-repository mount, monolithic or
//!   chunked upload), then the manifest.
//!
//! Progress goes out as [`TransferEvent`]s on an unbounded channel: the engine never waits for
//! a slow reader (the API's connection) while bytes are moving.

pub mod auth;
pub mod client;
mod pull;
mod push;
mod search;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_types::{PullReport, PushReport, RegistryAuthReport, TransferEvent};
use oci_spec::image::Digest;
use tokio::sync::mpsc::UnboundedSender;

pub use auth::Credentials;
pub use client::RegistryClient;

use crate::error::{Error, Result};
use crate::reference::DEFAULT_DOMAIN;
use crate::{Engine, EngineInner};

/// Where progress events go. Sending never blocks; a receiver that went away is fine.
#[derive(Clone)]
pub struct Progress(Option<UnboundedSender<TransferEvent>>);

impl Progress {
    pub fn new(tx: UnboundedSender<TransferEvent>) -> Progress {
        Progress(Some(tx))
    }

    /// Progress nobody watches.
    pub fn none() -> Progress {
        Progress(None)
    }

    pub(crate) fn send(&self, event: TransferEvent) {
        if let Some(tx) = &self.0 {
            let _ = tx.send(event);
        }
    }
}

/// State shared by all transfers of the engine.
pub struct Registries {
    pub client: RegistryClient,
    /// One lock per layer digest being downloaded: a second pull of the same layer waits for
    /// the first and then finds the layer in the store.
    in_flight: Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>,
    /// Which repositories (`registry/path`) each blob is known to be in, for cross-repository
    /// mounts on push. Persisted in `<root>/registry/sources.json`.
    sources: Mutex<BTreeMap<String, BTreeSet<String>>>,
    sources_path: PathBuf,
}

impl Registries {
    pub fn open(root: &std::path::Path) -> Result<Registries> {
        let sources_path = root.join("registry").join("sources.json");
        let sources = match std::fs::read(&sources_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                // Only an optimisation is lost: mounts fall back to uploads.
                tracing::warn!(error = %e, path = %sources_path.display(), "ignoring a corrupt blob source list");
                BTreeMap::new()
            }),
            Err(_) => BTreeMap::new(),
        };
        Ok(Registries {
            client: RegistryClient::new(root)?,
            in_flight: Mutex::new(HashMap::new()),
            sources: Mutex::new(sources),
            sources_path,
        })
    }

    /// The lock that serialises downloads of `digest`.
    fn layer_lock(&self, digest: &Digest) -> Arc<tokio::sync::Mutex<()>> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).entry(digest.clone()).or_default().clone()
    }

    /// Drops the lock entry of `digest` when no transfer holds or waits for it any more.
    fn release_layer_lock(&self, digest: &Digest, lock: Arc<tokio::sync::Mutex<()>>) {
        let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        // Ours and the map's are the only references left.
        if Arc::strong_count(&lock) <= 2 {
            map.remove(digest);
        }
    }

    /// Repositories on `registry` other than `path` known to hold `digest`.
    fn mount_sources(&self, digest: &Digest, registry: &str, path: &str) -> Vec<String> {
        let sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        let prefix = format!("{registry}/");
        sources
            .get(digest.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|repo| repo.strip_prefix(&prefix))
            .filter(|p| *p != path)
            .map(str::to_string)
            .collect()
    }

    /// Records that `digests` are in `registry/path` (best effort: a failed write only costs
    /// mounts later).
    fn record_sources(&self, digests: &[Digest], registry: &str, path: &str) {
        let repository = format!("{registry}/{path}");
        let mut sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        for d in digests {
            sources.entry(d.to_string()).or_default().insert(repository.clone());
        }
        let bytes = serde_json::to_vec(&*sources).expect("sources serialise");
        let write = crate::fsutil::create_private_dir(self.sources_path.parent().expect("has a parent"))
            .and_then(|()| crate::fsutil::write_atomic(&self.sources_path, &bytes));
        if let Err(e) = write {
            tracing::warn!(error = %e, "cannot record blob sources");
        }
    }
}

/// Holds the garbage collection lock for reading on a thread of its own for as long as this
/// value lives: the guard of a std `RwLock` cannot cross an `.await`, and a pull must keep
/// collection away from the moment its first blob lands until the image record exists.
pub(crate) struct GcReadHold {
    release: Option<std::sync::mpsc::Sender<()>>,
}

impl GcReadHold {
    pub(crate) async fn take(inner: Arc<EngineInner>) -> Result<GcReadHold> {
        let (acquired_tx, acquired_rx) = tokio::sync::oneshot::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("gc-read-hold".into())
            .spawn(move || {
                let _guard = inner.gc_lock.read().unwrap_or_else(|p| p.into_inner());
                let _ = acquired_tx.send(());
                // Returns (with an error) when the sender is dropped.
                let _ = release_rx.recv();
            })
            .map_err(|e| Error::io("starting a thread", e))?;
        let _ = acquired_rx.await;
        Ok(GcReadHold { release: Some(release_tx) })
    }
}

impl Drop for GcReadHold {
    fn drop(&mut self) {
        self.release.take();
    }
}

/// `server` as login and the credentials file name it: `host[:port]`, Docker Hub as `docker.io`
/// (given as empty, `docker.io`, `index.docker.io`, `registry-1.docker.io` or Docker's
/// `https://index.docker.io/v1/`). A scheme and path are dropped.
pub fn normalise_server(server: &str) -> Result<String> {
    let s = server.trim();
    let s = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://")).unwrap_or(s);
    let host = s.split('/').next().unwrap_or("").to_ascii_lowercase();
    if host.is_empty() || matches!(host.as_str(), "docker.io" | "index.docker.io" | "registry-1.docker.io") {
        return Ok(DEFAULT_DOMAIN.to_string());
    }
    if host.contains(|c: char| !(c.is_ascii_alphanumeric() || "-.:[]".contains(c))) {
        return Err(Error::InvalidInput(format!("invalid registry server {server:?}")));
    }
    Ok(host)
}

impl Engine {
    /// The registries that may be reached over plain HTTP besides loopback
    /// (`--insecure-registry`: host, host:port or IPv4 CIDR).
    pub fn set_insecure_registries(&self, registries: Vec<String>) -> Result<()> {
        self.inner.registries.client.set_insecure(registries)
    }

    /// `docker pull`: the image `reference` names (a tag or digest; short names on Docker Hub),
    /// for `platform` (`os/arch[/variant]`) or this node's. Downloads only the layers the store
    /// lacks, tags the image, and reports each step to `progress`.
    pub async fn pull_image(
        &self,
        reference: &str,
        platform: Option<&str>,
        progress: Progress,
    ) -> Result<PullReport> {
        pull::pull(self, reference, platform, None, progress).await
    }

    /// A pull with the caller's own `credentials` (Docker's `X-Registry-Auth`) instead of the
    /// stored ones; they are used for this pull only and kept nowhere.
    pub async fn pull_image_as(
        &self,
        reference: &str,
        platform: Option<&str>,
        credentials: Option<Credentials>,
        progress: Progress,
    ) -> Result<PullReport> {
        pull::pull(self, reference, platform, credentials, progress).await
    }

    /// `docker push`: uploads the blobs of image `reference` that the registry lacks, then its
    /// manifest, under the reference's tag (or digest). With `credentials`, those instead of
    /// the stored ones, for this push only.
    pub async fn push_image(
        &self,
        reference: &str,
        credentials: Option<Credentials>,
        progress: Progress,
    ) -> Result<PushReport> {
        push::push(self, reference, credentials, progress).await
    }

    /// Checks `credentials` against the registry `server` without storing them (Docker's
    /// `POST /auth`: the client keeps them). Answers the registry's name.
    pub async fn check_credentials(&self, server: &str, credentials: &Credentials) -> Result<String> {
        let server = normalise_server(server)?;
        if credentials.username.is_empty() || credentials.password.is_empty() {
            return Err(Error::InvalidInput("a user name and password are required".into()));
        }
        self.inner.registries.client.check_login(&server, credentials).await?;
        Ok(server)
    }

    /// `docker login`: checks the credentials against the registry and stores them.
    pub async fn login(&self, server: &str, credentials: Credentials) -> Result<RegistryAuthReport> {
        let server = normalise_server(server)?;
        if credentials.username.is_empty() {
            return Err(Error::InvalidInput("username is empty".into()));
        }
        if credentials.password.is_empty() {
            return Err(Error::InvalidInput("password is empty".into()));
        }
        let client = &self.inner.registries.client;
        client.check_login(&server, &credentials).await?;
        let store_server = server.clone();
        self.blocking(move |inner| inner.registries.client.credentials.set(&store_server, &credentials))
            .await?;
        client.forget_tokens(&server);
        tracing::info!(registry = %server, "logged in");
        Ok(RegistryAuthReport { server, status: "Login Succeeded".into() })
    }

    /// `docker logout`: forgets the stored credentials of a registry.
    pub async fn logout(&self, server: &str) -> Result<RegistryAuthReport> {
        let server = normalise_server(server)?;
        let remove_server = server.clone();
        let removed =
            self.blocking(move |inner| inner.registries.client.credentials.remove(&remove_server)).await?;
        self.inner.registries.client.forget_tokens(&server);
        let status = if removed {
            format!("Removing login credentials for {server}")
        } else {
            format!("Not logged in to {server}")
        };
        Ok(RegistryAuthReport { server, status })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_normalise() {
        assert_eq!(normalise_server("").unwrap(), "docker.io");
        assert_eq!(normalise_server("https://index.docker.io/v1/").unwrap(), "docker.io");
        assert_eq!(normalise_server("localhost:5000").unwrap(), "localhost:5000");
        assert_eq!(normalise_server("http://127.0.0.1:5000/v2/").unwrap(), "127.0.0.1:5000");
        assert!(normalise_server("bad host").is_err());
    }
}
