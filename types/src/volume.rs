//! Volumes and mounts on the wire: `berth volume ...`, `-v`/`--mount`/`--tmpfs`, and the mounts of
//! a container's `inspect`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `POST /api/v1/volumes` (`berth volume create`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct VolumeCreate {
    /// Generated (64 hex digits, as Docker's anonymous volumes) when empty.
    pub name: String,
    /// Only `local`; empty means `local`.
    pub driver: String,
    pub labels: BTreeMap<String, String>,
}

/// `berth volume inspect` and one row of `berth volume ls`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VolumeInspect {
    pub name: String,
    pub driver: String,
    /// The directory holding the data, e.g. `/var/lib/berth/volumes/NAME/_data`.
    pub mountpoint: String,
    pub created: String,
    pub labels: BTreeMap<String, String>,
    /// Made for one container from an image's VOLUME or a nameless `-v /path`.
    pub anonymous: bool,
    /// Containers (IDs) whose config mounts it.
    pub used_by: Vec<String>,
    /// Bytes used on disk (`volume ls`/`system df` style); filled only when asked.
    pub size: Option<u64>,
}

/// `POST /api/v1/volumes/prune`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VolumePruneReport {
    pub volumes_deleted: Vec<String>,
    pub space_reclaimed: u64,
}

/// What a mount is made from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    /// A host path.
    Bind,
    /// A named or anonymous volume.
    #[default]
    Volume,
    /// A fresh tmpfs.
    Tmpfs,
}

/// One mount of a container: `-v`, `--mount`, `--tmpfs` as the CLI resolved them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct Mount {
    #[serde(rename = "type")]
    pub mount_type: MountType,
    /// Host path (bind, absolute), volume name (volume; empty = a new anonymous volume), unused for tmpfs.
    pub source: String,
    /// Absolute path inside the container.
    pub target: String,
    pub read_only: bool,
    /// tmpfs only: `size=` in bytes.
    pub tmpfs_size: Option<u64>,
    /// Bind only: a missing host path is created as a directory (`-v`, Compose's short syntax)
    /// instead of refused (`--mount`), as Docker's `BindOptions.CreateMountpoint`.
    pub create_mountpoint: bool,
    /// Bind only: how mounts made under it later propagate between the host and the container
    /// (Docker's `bind-propagation`): `private`, `shared`, `rshared`, `slave` or `rslave`; `None`
    /// is Docker's default, `rprivate`. Left out of the JSON when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub propagation: Option<String>,
}

/// A mount of a container as `inspect` shows it (Docker's Mounts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MountPoint {
    #[serde(rename = "type")]
    pub mount_type: MountType,
    /// Volume name, empty for bind and tmpfs.
    pub name: String,
    /// Host path the data lives in (empty for tmpfs).
    pub source: String,
    pub destination: String,
    pub read_only: bool,
}
