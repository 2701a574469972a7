//! The node's own load on the wire: `GET /api/v1/node` and the samples of `/api/v1/ws/node`
//! (the dashboard's overview cards).

use serde::{Deserialize, Serialize};

/// CPU, memory and disk of the machine the daemon runs on, at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeStats {
    /// When the sample was taken, RFC 3339.
    pub time: String,
    /// Online CPUs.
    pub cpus: u32,
    /// Share of all CPUs' time spent busy (not idle, not waiting for I/O) since the previous
    /// sample, 0–100 for the whole node (not per CPU, unlike `docker stats`).
    pub cpu_percent: f64,
    /// The 1, 5 and 15 minute load averages.
    pub load_average: [f64; 3],
    /// Physical memory, bytes.
    pub memory_total: u64,
    /// Memory the kernel could give to programs without swapping (MemAvailable), bytes.
    pub memory_available: u64,
    pub swap_total: u64,
    pub swap_free: u64,
    /// The file system holding the engine's root directory.
    pub disk_path: String,
    pub disk_total: u64,
    /// Bytes an unprivileged program could still write (statvfs f_bavail).
    pub disk_available: u64,
    /// Bytes in use (total minus free, root's reserve counted as used, as `df` does).
    pub disk_used: u64,
    /// Seconds since the machine booted.
    pub uptime_seconds: u64,
}

impl NodeStats {
    /// Memory in use, bytes: total minus available, as `free` shows it.
    pub fn memory_used(&self) -> u64 {
        self.memory_total.saturating_sub(self.memory_available)
    }

    /// `part` of `total` as a percentage, 0 when `total` is 0.
    pub fn percent(part: u64, total: u64) -> f64 {
        if total == 0 {
            0.0
        } else {
            part as f64 * 100.0 / total as f64
        }
    }

    /// Memory in use as a percentage of the total.
    pub fn memory_percent(&self) -> f64 {
        Self::percent(self.memory_used(), self.memory_total)
    }

    /// Disk in use as a percentage of what `df` counts (used + available).
    pub fn disk_percent(&self) -> f64 {
        Self::percent(self.disk_used, self.disk_used.saturating_add(self.disk_available))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages() {
        let node = NodeStats {
            memory_total: 1000,
            memory_available: 250,
            disk_used: 30,
            disk_available: 70,
            ..NodeStats::default()
        };
        assert_eq!(node.memory_used(), 750);
        assert_eq!(node.memory_percent(), 75.0);
        assert_eq!(node.disk_percent(), 30.0);
        assert_eq!(NodeStats::default().memory_percent(), 0.0);
        let wire = serde_json::to_string(&node).unwrap();
        assert_eq!(serde_json::from_str::<NodeStats>(&wire).unwrap(), node);
    }
}
