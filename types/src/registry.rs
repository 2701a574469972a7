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

/// `PUT /api/v1/registry/repositories`: the settings of a repository this node serves as a
/// registry (`berth serve --registry-listen`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RepositorySettings {
    /// The repository, as clients name it (`team/app`).
    pub name: String,
    /// Anyone may pull it, without credentials.
    pub public: bool,
}

/// One answer of `GET /api/v1/images/search` and of the Docker API's `GET /images/search`
/// (Docker's field names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchResult {
    /// The repository, with its registry unless it is Docker Hub (`127.0.0.1:5000/team/app`).
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub star_count: u64,
    #[serde(default)]
    pub is_official: bool,
    #[serde(default)]
    pub is_automated: bool,
}

/// One tag of a remote repository (`GET /api/v1/registry/tags`): what its manifest says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RemoteTag {
    pub tag: String,
    /// The manifest's (or index's) digest.
    pub digest: String,
    pub media_type: String,
    /// Compressed size of the config and layers (of every platform, for an index).
    pub size: u64,
    /// `os/arch[/variant]` of each image it holds.
    pub platforms: Vec<String>,
}

/// A remote tag's manifest as the dashboard browses it (`GET /api/v1/registry/manifest`): the
/// manifest (or index) and, for each image it names, its config and layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RemoteManifest {
    /// `registry/repository:tag` as asked.
    pub reference: String,
    /// The manifest's (or index's) digest.
    pub digest: String,
    pub media_type: String,
    /// One entry per image: one for an image manifest, one per platform of an index.
    pub images: Vec<RemoteImage>,
}

/// One image of a remote manifest: its platform, config and layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RemoteImage {
    /// The image manifest's digest.
    pub digest: String,
    pub media_type: String,
    /// `os/arch[/variant]`; empty when neither the index nor the config says.
    pub platform: String,
    pub config: RemoteBlob,
    /// When the config says the image was made (RFC 3339), if it does.
    pub created: Option<String>,
    /// The config's command and entrypoint, as they would run.
    pub command: Vec<String>,
    pub layers: Vec<RemoteBlob>,
}

/// A blob a manifest names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RemoteBlob {
    pub digest: String,
    pub media_type: String,
    /// Its size in bytes (compressed, for a layer).
    pub size: u64,
}

impl RemoteImage {
    /// The compressed size of the image: its config and layers.
    pub fn size(&self) -> u64 {
        self.config.size + self.layers.iter().map(|l| l.size).sum::<u64>()
    }
}

/// The filters of a search (`--filter is-official=true`, `stars=3`, `is-automated=false`), as
/// Docker's CLI and API take them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchFilter {
    /// At least this many stars.
    pub stars: Option<u64>,
    pub is_official: Option<bool>,
    pub is_automated: Option<bool>,
}

impl SearchFilter {
    /// From `key=value` pairs; an unknown key or a bad value is refused in Docker's words.
    pub fn parse<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<SearchFilter, String> {
        let mut filter = SearchFilter::default();
        let boolean = |key: &str, value: &str| match value {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(format!("invalid filter '{key}={value}'")),
        };
        for (key, value) in pairs {
            match key {
                "stars" => {
                    filter.stars =
                        Some(value.parse().map_err(|_| format!("invalid filter 'stars={value}'"))?);
                }
                "is-official" => filter.is_official = Some(boolean(key, value)?),
                "is-automated" => filter.is_automated = Some(boolean(key, value)?),
                _ => return Err(format!("invalid filter '{key}'")),
            }
        }
        Ok(filter)
    }

    pub fn matches(&self, result: &SearchResult) -> bool {
        self.stars.is_none_or(|s| result.star_count >= s)
            && self.is_official.is_none_or(|o| result.is_official == o)
            && self.is_automated.is_none_or(|a| result.is_automated == a)
    }
}

/// A registry added as an object (`berth registry add`), as `GET /api/v1/registries` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegistryInfo {
    pub name: String,
    /// `host[:port]`: what references name it by (`host:port/team/app:1`).
    pub url: String,
    /// Reached over plain HTTP.
    pub insecure: bool,
    /// The one team that may use it; `None`: every team.
    pub team: Option<String>,
    /// Credentials are stored for it (`berth login`).
    pub logged_in: bool,
    pub created: String,
}

/// `POST /api/v1/registries`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegistryCreateRequest {
    pub name: String,
    /// `host[:port]`, or a URL (`https://host:port`) of which the host is kept.
    pub url: String,
    #[serde(default)]
    pub insecure: bool,
    /// Only this team may use it (default: every team).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
}
