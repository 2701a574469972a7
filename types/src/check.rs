//! `berth system check`: what the consistency check of the node's state found and did.

use serde::{Deserialize, Serialize};

/// One inconsistency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckFinding {
    /// What kind of object: `blob`, `image`, `layer`, `snapshot`, `container`, `mount`,
    /// `cgroup`, `netns`, `monitor`, `port-proxy`, `volume`, `history`, `tmp`.
    pub area: String,
    /// The object (a digest, an ID, a path).
    pub object: String,
    /// What is wrong with it.
    pub problem: String,
    /// With `--repair`: what was done (`None`: left as it is, with the reason in `problem`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repaired: Option<String>,
}

/// `POST /api/v1/system/check`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckReport {
    /// Whether repairs were asked for.
    pub repair: bool,
    /// What was looked at, with how many objects (`blobs: 12`).
    pub checked: Vec<String>,
    pub findings: Vec<CheckFinding>,
    /// Where broken things were moved to (`<root>/lost+found`), when anything was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_to: Option<String>,
}

impl CheckReport {
    /// Clean: nothing found (after a repair, everything found was repaired).
    pub fn is_clean(&self) -> bool {
        self.findings.iter().all(|f| self.repair && f.repaired.is_some())
    }
}
