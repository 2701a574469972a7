//! The node's own load: CPU from `/proc/stat` deltas, memory from `/proc/meminfo`, the disk
//! holding the engine's root from statvfs(2), load averages and uptime from `/proc`.
//!
//! Hand-read rather than through a crate such as `procfs` or `sysinfo`: four small files with
//! stable formats, and those crates pull in far more than these few numbers need.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_types::NodeStats;

use crate::error::{Error, IoContext, Result};
use crate::Engine;

/// How long a one-off sample ([`Engine::node_stats`]) watches the CPUs.
const ONE_OFF_WINDOW: Duration = Duration::from_millis(250);

/// Jiffies spent busy and in total, summed over all CPUs (the `cpu` line of `/proc/stat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTimes {
    pub busy: u64,
    pub total: u64,
}

impl CpuTimes {
    /// Busy share of the time between `earlier` and `self`, 0–100; 0 when no time passed (or
    /// the counters went backwards, as after a CPU went offline).
    pub fn percent_since(&self, earlier: &CpuTimes) -> f64 {
        let total = self.total.saturating_sub(earlier.total);
        let busy = self.busy.saturating_sub(earlier.busy).min(total);
        if total == 0 {
            0.0
        } else {
            busy as f64 * 100.0 / total as f64
        }
    }
}

/// Reads the aggregate `cpu` line of a `/proc/stat` text: user nice system idle iowait irq
/// softirq steal (guest time is already counted in user and nice, so it is left out).
pub fn parse_cpu_times(stat: &str) -> Result<CpuTimes> {
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu ") || l.starts_with("cpu\t"))
        .ok_or_else(|| Error::InvalidInput("/proc/stat has no cpu line".into()))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| {
            f.parse::<u64>().map_err(|_| Error::InvalidInput(format!("/proc/stat: bad cpu field {f:?}")))
        })
        .collect::<Result<_>>()?;
    if fields.len() < 4 {
        return Err(Error::InvalidInput(format!("/proc/stat: cpu line too short: {line:?}")));
    }
    let total: u64 = fields.iter().sum();
    let idle = fields[3] + fields.get(4).copied().unwrap_or(0);
    Ok(CpuTimes { busy: total - idle, total })
}

/// Memory figures of a `/proc/meminfo` text, in bytes: (total, available, swap total, swap free).
/// Kernels before 3.14 have no MemAvailable: free + buffers + cached stands in for it there.
pub fn parse_meminfo(meminfo: &str) -> Result<(u64, u64, u64, u64)> {
    let field = |name: &str| {
        meminfo.lines().find_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix(':')?;
            let kib: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
            Some(kib * 1024)
        })
    };
    let total =
        field("MemTotal").ok_or_else(|| Error::InvalidInput("/proc/meminfo has no MemTotal".into()))?;
    let available = field("MemAvailable").unwrap_or_else(|| {
        field("MemFree").unwrap_or(0) + field("Buffers").unwrap_or(0) + field("Cached").unwrap_or(0)
    });
    Ok((total, available.min(total), field("SwapTotal").unwrap_or(0), field("SwapFree").unwrap_or(0)))
}

fn read_cpu_times() -> Result<CpuTimes> {
    parse_cpu_times(&fs::read_to_string("/proc/stat").context(|| "reading /proc/stat".into())?)
}

/// Samples the node again and again; each sample's CPU share covers the time since the one
/// before, so a live view (the `/ws/node` stream) costs one read of each file per sample.
#[derive(Debug)]
pub struct NodeSampler {
    disk_path: PathBuf,
    last: Option<CpuTimes>,
}

impl NodeSampler {
    /// A sampler measuring the file system that holds `disk_path`.
    pub fn new(disk_path: impl Into<PathBuf>) -> NodeSampler {
        NodeSampler { disk_path: disk_path.into(), last: None }
    }

    /// Starts the CPU window now (the next [`NodeSampler::sample`] covers the time from here).
    pub fn begin(&mut self) -> Result<()> {
        self.last = Some(read_cpu_times()?);
        Ok(())
    }

    /// One sample. The CPU share is over the time since the previous call (or [`begin`]); the
    /// first call without either reports 0.
    ///
    /// [`begin`]: NodeSampler::begin
    pub fn sample(&mut self) -> Result<NodeStats> {
        let cpu = read_cpu_times()?;
        let cpu_percent = self.last.map(|last| cpu.percent_since(&last)).unwrap_or(0.0);
        self.last = Some(cpu);
        let (memory_total, memory_available, swap_total, swap_free) =
            parse_meminfo(&fs::read_to_string("/proc/meminfo").context(|| "reading /proc/meminfo".into())?)?;
        let (disk_total, disk_available, disk_used) = disk(&self.disk_path)?;
        Ok(NodeStats {
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            cpus: std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1),
            cpu_percent,
            load_average: load_average(),
            memory_total,
            memory_available,
            swap_total,
            swap_free,
            disk_path: self.disk_path.display().to_string(),
            disk_total,
            disk_available,
            disk_used,
            uptime_seconds: uptime(),
        })
    }
}

/// (total, available to unprivileged users, used) bytes of the file system holding `path`.
fn disk(path: &Path) -> Result<(u64, u64, u64)> {
    let fs = nix::sys::statvfs::statvfs(path)
        .map_err(std::io::Error::from)
        .context(|| format!("statvfs {}", path.display()))?;
    let block = fs.fragment_size() as u64;
    let total = fs.blocks() as u64 * block;
    let free = fs.blocks_free() as u64 * block;
    let available = fs.blocks_available() as u64 * block;
    Ok((total, available, total.saturating_sub(free)))
}

/// The load averages, zeros when `/proc/loadavg` cannot be read (they are only informative).
fn load_average() -> [f64; 3] {
    let text = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut values = text.split_whitespace().map(|v| v.parse::<f64>().unwrap_or(0.0));
    [values.next().unwrap_or(0.0), values.next().unwrap_or(0.0), values.next().unwrap_or(0.0)]
}

fn uptime() -> u64 {
    fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| t.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()))
        .map(|s| s as u64)
        .unwrap_or(0)
}

impl Engine {
    /// A sampler of this node, measuring the disk that holds the engine's root.
    pub fn node_sampler(&self) -> NodeSampler {
        NodeSampler::new(self.inner.config.root.clone())
    }

    /// One sample of the node, its CPU share measured over a quarter of a second.
    pub async fn node_stats(&self) -> Result<NodeStats> {
        let mut sampler = self.node_sampler();
        sampler.begin()?;
        tokio::time::sleep(ONE_OFF_WINDOW).await;
        // statvfs can block on a slow file system: off the reactor.
        tokio::task::spawn_blocking(move || sampler.sample())
            .await
            .map_err(|e| Error::Runtime(format!("sampling the node: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_share_from_two_readings() {
        let a = parse_cpu_times("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4\n").unwrap();
        assert_eq!(a, CpuTimes { busy: 150, total: 1000 });
        let b = parse_cpu_times("intr 5\ncpu  200 0 100 1100 100 0 0 0 0 0\n").unwrap();
        assert_eq!(b.percent_since(&a), 30.0);
        assert_eq!(a.percent_since(&b), 0.0, "counters going backwards give 0, not garbage");
        assert_eq!(a.percent_since(&a), 0.0);
        assert!(parse_cpu_times("cpu0 1 2 3 4\n").is_err());
        assert!(parse_cpu_times("cpu  1 x 3 4\n").is_err());
        assert!(parse_cpu_times("cpu  1 2\n").is_err());
    }

    #[test]
    fn memory_figures() {
        let text = "MemTotal:       2048 kB\nMemFree:         100 kB\nMemAvailable:    1024 kB\n\
                    SwapTotal:       512 kB\nSwapFree:        256 kB\n";
        assert_eq!(parse_meminfo(text).unwrap(), (2048 * 1024, 1024 * 1024, 512 * 1024, 256 * 1024));
        let old = "MemTotal: 100 kB\nMemFree: 10 kB\nBuffers: 5 kB\nCached: 20 kB\n";
        assert_eq!(parse_meminfo(old).unwrap(), (100 * 1024, 35 * 1024, 0, 0));
        assert!(parse_meminfo("MemFree: 1 kB\n").is_err());
    }

    #[test]
    fn samples_this_machine() {
        let dir = tempfile::tempdir().unwrap();
        let mut sampler = NodeSampler::new(dir.path());
        sampler.begin().unwrap();
        // Burn a little CPU so that the window is not empty.
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let node = sampler.sample().unwrap();
        assert!(node.cpus >= 1);
        assert!((0.0..=100.0).contains(&node.cpu_percent));
        assert!(node.memory_total > 0 && node.memory_available <= node.memory_total);
        assert!(node.disk_total > 0 && node.disk_used <= node.disk_total);
        assert!(node.uptime_seconds > 0);
        assert_eq!(node.disk_path, dir.path().display().to_string());
        let missing = NodeSampler::new(dir.path().join("missing")).sample().unwrap_err();
        assert!(missing.to_string().starts_with("statvfs "), "{missing}");
    }
}
