//! A container's files and resources on the wire: what `cp` (stat of a path), `diff`, `commit`
//! and `update` send and answer.

use serde::{Deserialize, Serialize};

use crate::container::RestartPolicy;

/// A path in a container as `cp` sees it (Docker's `ContainerPathStat`, with the Unix mode).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PathStat {
    /// The base name.
    pub name: String,
    pub size: u64,
    /// Unix `st_mode`: type bits (`S_IFDIR`, `S_IFLNK`, ...) and permission bits.
    pub mode: u32,
    /// RFC 3339.
    pub mtime: String,
    /// Where a symlink points to, resolved inside the container (absolute); empty otherwise.
    pub link_target: String,
}

impl PathStat {
    pub fn is_dir(&self) -> bool {
        self.mode & 0o170000 == 0o040000
    }

    pub fn is_symlink(&self) -> bool {
        self.mode & 0o170000 == 0o120000
    }
}

/// The HTTP header carrying a [`PathStat`] as base64 of its JSON (Docker's header name, used by
/// berth's own API too).
pub const PATH_STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

/// One line of `berth diff`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContainerChange {
    /// Absolute path in the container.
    pub path: String,
    /// 0 modified (`C`), 1 added (`A`), 2 deleted (`D`), as Docker numbers them.
    pub kind: u8,
}

impl ContainerChange {
    /// `C`, `A` or `D`.
    pub fn letter(&self) -> char {
        match self.kind {
            1 => 'A',
            2 => 'D',
            _ => 'C',
        }
    }
}

/// `POST /api/v1/containers/{name}/commit`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct CommitRequest {
    /// `REPO[:TAG]` to tag the new image with.
    pub reference: Option<String>,
    /// `-a`.
    pub author: Option<String>,
    /// `-m`.
    pub comment: Option<String>,
    /// `-c`: Dockerfile instructions applied to the image config (`CMD ["sh"]`, `ENV A=b`, ...).
    pub changes: Vec<String>,
    /// `-p`: pause the container while its files are read (Docker's default).
    pub pause: bool,
}

/// The answer of a commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommitReport {
    /// `sha256:...`.
    pub id: String,
}

/// `POST /api/v1/containers/{name}/update`: what changes; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct ContainerUpdate {
    /// `-m`, bytes.
    pub memory: Option<u64>,
    /// `--cpus`.
    pub cpus: Option<f64>,
    /// `--pids-limit` (0 or -1: no limit).
    pub pids_limit: Option<i64>,
    /// `--restart`.
    pub restart_policy: Option<RestartPolicy>,
}

/// The answer of an update.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateReport {
    pub warnings: Vec<String>,
}
