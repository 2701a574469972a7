//! Registry transfers: pull, push, login, logout.
//!
//! `POST /api/v1/images/pull` and `POST /api/v1/images/push` answer with a stream of JSON lines,
//! one [`TransferEvent`] per line; the last line is [`TransferEvent::Pulled`],
//! [`TransferEvent::Pushed`] or [`TransferEvent::Error`].

use serde::{Deserialize, Serialize};

/// `POST /api/v1/images/pull`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PullRequest {
    /// `busybox`, `localhost:5000/a/b:1`, `name@sha256:…`.
    pub reference: String,
    /// `os/arch[/variant]` to pick from an image index; the node's own platform when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

/// `POST /api/v1/images/push`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    /// The image to push, named as it is to be pushed (`localhost:5000/a/b:1`, or
    /// `localhost:5000/a/b@sha256:…` to push by digest).
    pub reference: String,
}

/// `POST /api/v1/registry/login`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
// Not to be confused with the browser's `auth::LoginRequest` in the OpenAPI document.
#[cfg_attr(feature = "openapi", schema(as = RegistryLoginRequest))]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Registry host (`localhost:5000`); empty means Docker Hub.
    #[serde(default)]
    pub server: String,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for LoginRequest {
    // The password never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("server", &self.server)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// `POST /api/v1/registry/logout`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LogoutRequest {
    /// Registry host; empty means Docker Hub.
    #[serde(default)]
    pub server: String,
}

/// The answer to login and logout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegistryAuthReport {
    /// The registry as the daemon names it (`localhost:5000`, `docker.io`).
    pub server: String,
    /// `Login Succeeded`, `Removing login credentials for …`, `Not logged in to …`.
    pub status: String,
}

/// Where one layer (or blob) of a transfer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LayerStatus {
    /// Queued behind other transfers (or behind another pull of the same layer).
    Waiting,
    /// Bytes moving; `current` of `total`.
    Downloading,
    /// All bytes arrived; the digest and diff ID are being checked.
    Verifying,
    /// Being unpacked from a blob the store already had.
    Extracting,
    /// Already there (in the store when pulling, in the registry when pushing): nothing moved.
    AlreadyExists,
    /// Pull: downloaded, verified and unpacked.
    Done,
    /// Push: bytes moving; `current` of `total`.
    Uploading,
    /// Push: mounted from another repository of the same registry, nothing uploaded.
    Mounted,
    /// Push: uploaded.
    Pushed,
}

/// One line of a pull or push stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TransferEvent {
    /// Looking up the reference.
    Resolving { reference: String },
    /// The manifest was found: its digest, and the layers the transfer goes through.
    Resolved { digest: String, layers: Vec<LayerSummary>, total_bytes: u64 },
    /// A layer (blob) changed state or made progress.
    Layer {
        digest: String,
        status: LayerStatus,
        /// Bytes done (downloaded or uploaded) so far.
        current: u64,
        /// The layer's size in bytes.
        total: u64,
    },
    /// The last line of a successful pull.
    Pulled(PullReport),
    /// The last line of a successful push.
    Pushed(PushReport),
    /// The last line of a failed transfer. `status`: the HTTP status the failure answers with
    /// when it is told before the transfer started (as the Docker API tells an unknown tag).
    Error {
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
    },
}

/// A layer as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LayerSummary {
    pub digest: String,
    pub size: u64,
}

/// What a pull did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PullReport {
    /// The normalised reference pulled (`docker.io/library/busybox:latest`).
    pub reference: String,
    /// Digest of the image manifest recorded (for an index: the manifest picked from it).
    pub digest: String,
    /// Digest of the index the manifest was picked from, if the reference named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_digest: Option<String>,
    /// The image ID (config digest).
    pub id: String,
    /// Layers downloaded by this pull.
    pub layers_downloaded: usize,
    /// Layers that were already in the store.
    pub layers_existing: usize,
    /// Bytes received for blobs (layers and config).
    pub bytes_downloaded: u64,
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PushReport {
    /// The normalised reference pushed.
    pub reference: String,
    /// Digest of the manifest pushed.
    pub digest: String,
    /// Size of the manifest in bytes.
    pub size: u64,
    /// Blobs uploaded.
    pub blobs_uploaded: usize,
    /// Blobs the registry already had.
    pub blobs_existing: usize,
    /// Blobs mounted from another repository.
    pub blobs_mounted: usize,
    /// Bytes of blobs sent.
    pub bytes_uploaded: u64,
}
