//! Health checks on the wire: HEALTHCHECK / `--health-*`, and the health part of a container's state.

use serde::{Deserialize, Serialize};

/// What to run and how often (Docker's HealthConfig). Durations are nanoseconds; 0 means the
/// default (interval 30s, timeout 30s, start period 0, start interval 5s, retries 3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// `["CMD", args...]`, `["CMD-SHELL", "command"]`, or `["NONE"]` (disables the image's check);
    /// empty inherits the image's test.
    pub test: Vec<String>,
    pub interval: u64,
    pub timeout: u64,
    pub start_period: u64,
    pub start_interval: u64,
    pub retries: u32,
}

/// `starting`, `healthy`, `unhealthy` (Docker's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Starting,
    Healthy,
    Unhealthy,
}

/// The health part of a running container's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    pub status: HealthStatus,
    /// Consecutive failed probes.
    pub failing_streak: u32,
    /// The last probes (at most 5), oldest first.
    pub log: Vec<HealthProbe>,
}

/// One run of the health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthProbe {
    pub start: String,
    pub end: String,
    /// 0 healthy, 1 unhealthy, -1 could not run (timeout or error).
    pub exit_code: i32,
    /// The probe's output, truncated to 4 KiB.
    pub output: String,
}

impl HealthStatus {
    /// The word `ps` puts in parentheses after `Up ...`, e.g. `(healthy)`, `(health: starting)`.
    pub fn ps_suffix(self) -> &'static str {
        match self {
            HealthStatus::Starting => "(health: starting)",
            HealthStatus::Healthy => "(healthy)",
            HealthStatus::Unhealthy => "(unhealthy)",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}
