//! The JSON shapes of berth's HTTP API, shared by the daemon (`api/`), the CLI and the dashboard
//! (`web/`, compiled to wasm). Only plain data lives here: no I/O, no engine logic.
//!
//! Field names are snake_case on the wire. Times are RFC 3339 strings; sizes are bytes; digests
//! are `sha256:<hex>` strings.

use serde::{Deserialize, Serialize};

pub mod auth;
pub mod build;
pub mod check;
pub mod container;
pub mod error;
pub mod files;
pub use files::*;
pub mod format;
pub mod headers;
pub mod health;
pub use health::*;
pub mod history;
pub mod mount;
pub mod name;
pub mod network;
pub mod node;
pub mod parse;
pub mod pod;
pub use container::*;
pub use network::*;
pub use node::NodeStats;
pub mod registry;
pub mod security;
pub use registry::*;
pub mod signal;
pub mod stack;
pub use stack::*;
pub mod stream;
pub mod volume;
pub use volume::*;

pub use error::ErrorBody;

/// `GET /api/v1/version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionInfo {
    pub version: String,
    pub api_version: String,
    pub os: String,
    pub arch: String,
}

/// `GET /api/v1/info`: what the daemon runs with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SystemInfo {
    pub version: String,
    /// Engine state directory (`--root`).
    pub root: String,
    /// Runtime state directory (`--run-dir`).
    pub run_dir: String,
    /// `overlay` or `copy`.
    pub snapshotter: String,
    pub images: usize,
    /// Bytes used by the content store (blobs).
    pub blobs_size: u64,
    /// Bytes used by unpacked layers.
    pub layers_size: u64,
    /// Container waits answered by re-reading a state file rather than by an event since the
    /// daemon started: each one is a wake-up that was lost (and came up to 200 ms late).
    #[serde(default)]
    pub waits_answered_by_poll: u64,
}

/// `berth system df`: what images, containers and volumes hold on disk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiskUsage {
    /// Bytes of the unpacked layers (shared by every image and container that uses them).
    pub layers_size: u64,
    pub images: Vec<ImageDiskUsage>,
    pub containers: Vec<ContainerDiskUsage>,
    /// With their sizes and users.
    pub volumes: Vec<volume::VolumeInspect>,
}

/// An image in `system df`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImageDiskUsage {
    pub image: ImageSummary,
    /// How many containers use it.
    pub containers: usize,
}

/// A container in `system df`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContainerDiskUsage {
    pub container: ContainerSummary,
    /// Bytes in its writable layer.
    pub size_rw: u64,
}

/// One row of `berth images`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImageSummary {
    /// `sha256:<hex>` of the image config, as Docker shows it.
    pub id: String,
    /// Normalised references, e.g. `docker.io/library/busybox:latest`.
    pub repo_tags: Vec<String>,
    /// `repository@sha256:<manifest digest>`, one per repository the image is tagged in.
    pub repo_digests: Vec<String>,
    /// When the image was created (from its config), RFC 3339; empty if the config has none.
    pub created: String,
    /// Unpacked size of all layers, in bytes.
    pub size: u64,
}

/// `berth image inspect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImageInspect {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub manifest_digest: String,
    pub manifest_media_type: String,
    pub created: String,
    pub author: String,
    pub architecture: String,
    pub os: String,
    /// Unpacked size of all layers, in bytes.
    pub size: u64,
    pub config: ImageConfig,
    pub layers: Vec<LayerInfo>,
    pub history: Vec<HistoryEntry>,
}

/// The runnable part of an image config (what `docker inspect` shows under Config).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImageConfig {
    pub user: String,
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub working_dir: String,
    /// e.g. `80/tcp`.
    pub exposed_ports: Vec<String>,
    pub volumes: Vec<String>,
    pub labels: std::collections::BTreeMap<String, String>,
    pub stop_signal: String,
}

/// One layer of an image, bottom first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LayerInfo {
    /// Digest of the blob as stored (compressed or not).
    pub digest: String,
    /// Digest of the uncompressed tar.
    pub diff_id: String,
    pub media_type: String,
    /// Size of the blob, in bytes.
    pub size: u64,
}

/// One entry of `berth history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryEntry {
    pub created: String,
    pub created_by: String,
    pub comment: String,
    pub empty_layer: bool,
    /// Blob size of the layer this step made (0 for an empty layer).
    pub size: u64,
}

/// One line of what `rmi` / `image prune` did, as Docker prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ImageDeleteItem {
    Untagged(String),
    Deleted(String),
}

/// `POST /api/v1/images/prune`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImagePruneReport {
    pub images_deleted: Vec<ImageDeleteItem>,
    /// Bytes freed on disk (blobs and unpacked layers).
    pub space_reclaimed: u64,
}

/// `POST /api/v1/images/import`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImportReport {
    pub id: String,
    pub reference: Option<String>,
}

/// `POST /api/v1/images/load`: one entry per image found in the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoadReport {
    /// References tagged by the load (normalised), and IDs of images that had none.
    pub loaded: Vec<LoadedImage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoadedImage {
    pub id: String,
    pub reference: Option<String>,
}

/// Body of `POST /api/v1/images/{name}/tag`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TagRequest {
    /// The new reference, e.g. `localhost:5000/app:v1`.
    pub target: String,
}

/// Result of a garbage collection of the store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GcReport {
    pub blobs_removed: usize,
    pub layers_removed: usize,
    pub space_reclaimed: u64,
}

/// One entry of the daemon's history (`GET /api/v1/events`): a mutating operation and how it
/// ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    /// Increases with every event; `before=ID` pages back through older ones.
    pub id: i64,
    /// When the operation ended, RFC 3339.
    pub time: String,
    /// What kind of object it touched, e.g. `image`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// What was done, e.g. `import`, `tag`, `untag`, `delete`, `load`, `prune`.
    pub action: String,
    /// The object's name as the caller gave it or as the engine reported it.
    pub subject: String,
    /// `success` or `failure`.
    pub outcome: String,
    /// Details: the error message on failure, what changed on success.
    pub message: String,
}
