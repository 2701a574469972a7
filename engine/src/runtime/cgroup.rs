//! A container's cgroup on cgroup v1, v2 or both (hybrid: v1 controllers plus a cgroup2 mount
//! at /sys/fs/cgroup/unified).
//!
//! Hand-written rather than libcgroups or cgroups-rs: starting a container must cost a handful of
//! syscalls (crun's budget), and both crates create and configure a directory in every mounted
//! v1 hierarchy, take a dbus/systemd dependency (libcgroups) or do not treat the hybrid layout
//! the way runc does (cgroups-rs picks v1 or v2 for the whole machine). What berth needs is
//! small: create `<hierarchy>/<path>` for memory, cpu/cpuacct, pids, freezer and devices (v1)
//! or one directory (v2), write a few limit files, and read a few counters. The layout is
//! runc's cgroupfs layout, so a container looks the same under either runtime.

use std::fs;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use berth_types::BlockIo;
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};

use super::CgroupStats;
use crate::error::{Error, IoContext, Result};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The cgroup every container's cgroup lives under (`/sys/fs/cgroup/<controller>/berth/<id>`).
pub const CGROUP_PARENT: &str = "berth";

/// The cgroups path of container `id` when its spec names none: `/berth/<id>`.
pub fn default_path(id: &str) -> PathBuf {
    PathBuf::from(format!("/{CGROUP_PARENT}/{id}"))
}

/// v1 controllers. A container gets a directory in every mounted v1 hierarchy (as runc gives
/// it), so that its /sys/fs/cgroup shows its own cgroup in each.
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// runc's default device rules: mknod of anything, and use of null, zero, full, random,
/// urandom, tty, console, ptmx, the pty slaves and tun.
const DEFAULT_ALLOWED_DEVICES: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
    "c 10:200 rwm",
];

/// How this machine's cgroups are mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Mount point of the cgroup2 hierarchy, if any (`/sys/fs/cgroup` when unified,
    /// `/sys/fs/cgroup/unified` in hybrid mode).
    pub unified: Option<PathBuf>,
    /// v1 hierarchies: their controllers (e.g. `["cpu", "cpuacct"]`) and mount point.
    pub v1: Vec<(Vec<String>, PathBuf)>,
}

impl Layout {
    /// True when /sys/fs/cgroup is cgroup2 only.
    pub fn is_unified(&self) -> bool {
        self.v1.is_empty() && self.unified.as_deref() == Some(Path::new(CGROUP_ROOT))
    }

    /// Mount point of the v1 hierarchy carrying `controller`.
    pub fn v1_mount(&self, controller: &str) -> Option<&Path> {
        self.v1.iter().find(|(c, _)| c.iter().any(|n| n == controller)).map(|(_, p)| p.as_path())
    }
}

/// The machine's cgroup layout, read once per process from /proc/self/mountinfo.
pub fn layout() -> &'static Layout {
    static LAYOUT: OnceLock<Layout> = OnceLock::new();
    LAYOUT.get_or_init(|| detect().unwrap_or(Layout { unified: None, v1: Vec::new() }))
}

/// True when the host is cgroup v2 only (then containers get a cgroup namespace).
pub fn is_unified() -> bool {
    layout().is_unified()
}

fn detect() -> io::Result<Layout> {
    let root_is_v2 = nix::sys::statfs::statfs(CGROUP_ROOT)
        .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false);
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")?;
    let mut layout = Layout { unified: None, v1: Vec::new() };
    for line in mountinfo.lines() {
        // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let mount_point = left.split(' ').nth(4).unwrap_or_default();
        let mut r = right.split(' ');
        let fstype = r.next().unwrap_or_default();
        let super_opts = r.nth(1).unwrap_or_default();
        match fstype {
            "cgroup2" if layout.unified.is_none() => layout.unified = Some(PathBuf::from(mount_point)),
            "cgroup" => {
                let controllers: Vec<String> = super_opts
                    .split(',')
                    .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                    .map(String::from)
                    .collect();
                if !controllers.is_empty() && !layout.v1.iter().any(|(c, _)| *c == controllers) {
                    layout.v1.push((controllers, PathBuf::from(mount_point)));
                }
            }
            _ => {}
        }
    }
    if root_is_v2 {
        layout.unified = Some(PathBuf::from(CGROUP_ROOT));
        layout.v1.clear();
    }
    Ok(layout)
}

/// How long after the last [`warm_migrations`] the migration lock is kept ready.
const WARM_FOR: Duration = Duration::from_millis(250);
/// Well under one RCU grace period (milliseconds to tens of milliseconds).
const WARM_EVERY: Duration = Duration::from_millis(2);

/// Readies the kernel's cgroup migration lock for a container start (or exec) that is near.
///
/// Every move of a process into a cgroup (a container's first process joining its cgroup: on v1
/// one write per hierarchy; an exec'd process; runc and crun alike) takes one global kernel
/// lock, `cgroup_threadgroup_rwsem`, for writing. When no process was moved in the last RCU grace
/// period, taking it first waits for a whole grace period: measured here, a write to
/// `cgroup.procs` 20 ms after the previous one costs 10–12 ms, one right after it 0.02 ms, and
/// that wait was the largest part of a container start (`RUST_LOG=berth_engine=debug`:
/// `monitor_and_runtime_us`). So while a start is near (the monitor is being made, a start or an
/// exec was asked for) a thread moves itself into the cgroup it is already in every
/// [`WARM_EVERY`]: a move that changes nothing but takes the lock, so the grace period is waited
/// for by that thread, ahead of the start. It stops [`WARM_FOR`] after the last call. The thread
/// moves alone (`cgroup.threads`, v1 `tasks`): moving the whole daemon this way made each
/// container create ~6 ms slower (measured). Where the daemon may not write those files this
/// does nothing.
pub fn warm_migrations() {
    static WARMER: OnceLock<Option<&'static Warmer>> = OnceLock::new();
    let warmer = WARMER.get_or_init(|| {
        let threads = own_threads_file()?;
        let file = fs::OpenOptions::new().write(true).open(&threads).ok()?;
        let warmer: &'static Warmer = Box::leak(Box::new(Warmer {
            until: std::sync::Mutex::new(None),
            wake: std::sync::Condvar::new(),
        }));
        std::thread::Builder::new().name("cgroup-warmer".into()).spawn(move || warmer.run(file)).ok()?;
        Some(warmer)
    });
    if let Some(w) = warmer {
        *w.until.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now() + WARM_FOR);
        w.wake.notify_one();
    }
}

struct Warmer {
    /// Until when the lock is kept ready; `None` once that passed.
    until: std::sync::Mutex<Option<Instant>>,
    wake: std::sync::Condvar,
}

impl Warmer {
    fn run(&self, mut threads: fs::File) {
        let me = nix::unistd::gettid().to_string();
        loop {
            {
                let mut until = self.until.lock().unwrap_or_else(|p| p.into_inner());
                while until.is_none_or(|at| Instant::now() >= at) {
                    *until = None;
                    until = self.wake.wait(until).unwrap_or_else(|p| p.into_inner());
                }
            }
            // This thread, into the cgroup it is in. (Not "0": a move of no thread takes no lock.)
            if let Err(e) = threads.write_all(me.as_bytes()) {
                tracing::debug!(error = %e, "moving a thread into its own cgroup failed: no warming");
                return;
            }
            std::thread::sleep(WARM_EVERY);
        }
    }
}

/// The file that moves one thread into the cgroup this process is in: `cgroup.threads` in the
/// cgroup2 hierarchy when there is one (hybrid too: the lock is the same for every hierarchy),
/// else `tasks` in the first v1 hierarchy.
fn own_threads_file() -> Option<PathBuf> {
    let own = fs::read_to_string("/proc/self/cgroup").ok()?;
    let layout = layout();
    let (mount, path, file) = match &layout.unified {
        Some(unified) => {
            (unified.as_path(), own.lines().find_map(|l| l.strip_prefix("0::"))?, "cgroup.threads")
        }
        None => {
            let (controllers, mount) = layout.v1.first()?;
            let path = own.lines().find_map(|l| {
                let (names, path) = l.split_once(':')?.1.split_once(':')?;
                let mut names: Vec<&str> = names.split(',').collect();
                let mut wanted: Vec<&str> = controllers.iter().map(String::as_str).collect();
                names.sort_unstable();
                wanted.sort_unstable();
                (names == wanted).then_some(path)
            })?;
            (mount.as_path(), path, "tasks")
        }
    };
    Some(mount.join(path.trim_start_matches('/')).join(file))
}

/// One container's cgroup: a directory per v1 hierarchy it uses and/or one in the v2 hierarchy.
#[derive(Debug, Clone)]
pub struct Cgroup {
    /// Relative path under each hierarchy, e.g. `berth/<id>`.
    rel: PathBuf,
    /// v1 directories by controller hierarchy (deduplicated: cpu and cpuacct share one).
    v1: Vec<(Vec<String>, PathBuf)>,
    /// The v2 directory (unified, or hybrid's unified mount).
    v2: Option<PathBuf>,
    /// Controllers are v2 (unified host), not v1.
    unified: bool,
}

impl Cgroup {
    /// The cgroup at `cgroups_path` (the spec's `linux.cgroupsPath`, e.g. `/berth/<id>`) in every
    /// hierarchy berth uses on this machine. Nothing is created yet.
    pub fn new(cgroups_path: &Path) -> Result<Cgroup> {
        let rel = crate::fsutil::clean_relative(cgroups_path);
        if rel.as_os_str().is_empty() {
            return Err(Error::InvalidInput(format!("invalid cgroups path {}", cgroups_path.display())));
        }
        let layout = layout();
        let v1 = layout.v1.iter().map(|(c, mount)| (c.clone(), mount.join(&rel))).collect();
        let v2 = layout.unified.as_ref().map(|m| m.join(&rel));
        if layout.v1.is_empty() && layout.unified.is_none() {
            return Err(Error::Runtime("no cgroup hierarchy is mounted under /sys/fs/cgroup".into()));
        }
        Ok(Cgroup { rel, v1, v2, unified: layout.is_unified() })
    }

    /// The path relative to each hierarchy's root.
    pub fn rel(&self) -> &Path {
        &self.rel
    }

    /// Is this the v2-only layout?
    pub fn is_unified(&self) -> bool {
        self.unified
    }

    /// Directory of the hierarchy carrying `controller` (v2: the one directory).
    pub fn dir(&self, controller: &str) -> Option<&Path> {
        if self.unified {
            return self.v2.as_deref();
        }
        self.v1.iter().find(|(c, _)| c.iter().any(|n| n == controller)).map(|(_, p)| p.as_path())
    }

    /// Every directory of this cgroup (v1 hierarchies, then v2).
    pub fn dirs(&self) -> impl Iterator<Item = &Path> {
        self.v1.iter().map(|(_, p)| p.as_path()).chain(self.v2.as_deref())
    }

    /// The v1 hierarchies: controllers and directory.
    pub fn v1_dirs(&self) -> &[(Vec<String>, PathBuf)] {
        &self.v1
    }

    /// Creates the directories and applies `resources`. On failure, what was created is
    /// removed again.
    pub fn create(&self, resources: Option<&LinuxResources>) -> Result<()> {
        let result = self.create_inner(resources);
        if result.is_err() {
            let _ = self.remove();
        }
        result
    }

    fn create_inner(&self, resources: Option<&LinuxResources>) -> Result<()> {
        if self.unified {
            let v2 = self.v2.as_ref().expect("unified layout has a v2 directory");
            enable_v2_controllers(Path::new(CGROUP_ROOT), &self.rel)?;
            fs::create_dir_all(v2).context(|| format!("creating cgroup {}", v2.display()))?;
        } else {
            for dir in self.dirs() {
                fs::create_dir_all(dir).context(|| format!("creating cgroup {}", dir.display()))?;
            }
            if let Some(mount) = layout().v1_mount("cpuset") {
                init_cpuset(mount, &self.rel)?;
            }
        }
        let Some(res) = resources else { return Ok(()) };
        self.set_limits(res)?;
        if let Some(devices) = res.devices() {
            if self.unified {
                self.set_devices_v2(devices)?;
            } else {
                self.set_devices_v1(devices)?;
            }
        }
        Ok(())
    }

    /// Changes the memory, CPU and pids limits of the existing cgroup (`docker update`); what
    /// `resources` leaves out stays as it is.
    pub fn update(&self, resources: &LinuxResources) -> Result<()> {
        self.set_limits(resources)
    }

    fn set_limits(&self, res: &LinuxResources) -> Result<()> {
        if let Some(mem) = res.memory() {
            if let Some(limit) = mem.limit().filter(|l| *l > 0) {
                self.set_memory(limit, mem.swap())?;
            }
        }
        if let Some(cpu) = res.cpu() {
            if let (Some(quota), Some(period)) = (cpu.quota().filter(|q| *q > 0), cpu.period()) {
                if self.unified {
                    self.write("cpu", "cpu.max", &format!("{quota} {period}"))?;
                } else {
                    self.write("cpu", "cpu.cfs_period_us", &period.to_string())?;
                    self.write("cpu", "cpu.cfs_quota_us", &quota.to_string())?;
                }
            }
        }
        if let Some(pids) = res.pids() {
            let limit = if pids.limit() > 0 { pids.limit().to_string() } else { "max".to_string() };
            self.write("pids", "pids.max", &limit)?;
        }
        Ok(())
    }

    fn set_memory(&self, limit: i64, swap: Option<i64>) -> Result<()> {
        let invalid = |e: Error| match &e {
            Error::Io { source, .. }
                if matches!(source.raw_os_error(), Some(libc::EBUSY) | Some(libc::EINVAL)) =>
            {
                Error::InvalidInput(format!(
                    "memory limit {limit} is below what the container already uses or the kernel allows"
                ))
            }
            _ => e,
        };
        if self.unified {
            self.write("memory", "memory.max", &limit.to_string()).map_err(invalid)?;
            // No swap on top of the limit unless asked: an over-limit container is OOM-killed
            // instead of slowly swapping (the kernel may have no swap controller: ignore).
            let swap_extra = swap.map(|s| (s - limit).max(0)).unwrap_or(0);
            let _ = self.write("memory", "memory.swap.max", &swap_extra.to_string());
        } else {
            let memsw = swap.filter(|s| *s >= limit).unwrap_or(limit);
            // The memory limit may not exceed memory+swap: a raised limit needs the memsw limit
            // raised first (which fails, harmlessly, when the limit is lowered instead).
            let _ = self.write("memory", "memory.memsw.limit_in_bytes", &memsw.to_string());
            self.write("memory", "memory.limit_in_bytes", &limit.to_string()).map_err(invalid)?;
            // Without swap accounting the file does not exist; that is fine.
            match self.write("memory", "memory.memsw.limit_in_bytes", &memsw.to_string()) {
                Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
                r => r?,
            }
        }
        Ok(())
    }

    fn set_devices_v1(&self, rules: &[LinuxDeviceCgroup]) -> Result<()> {
        if self.dir("devices").is_none() {
            return Ok(());
        }
        for rule in rules {
            let typ = rule.typ().map(|t| t.as_str().to_string()).unwrap_or_else(|| "a".into());
            let major = rule.major().map(|m| m.to_string()).unwrap_or_else(|| "*".into());
            let minor = rule.minor().map(|m| m.to_string()).unwrap_or_else(|| "*".into());
            let access = rule.access().clone().unwrap_or_else(|| "rwm".into());
            let line = if typ == "a" { "a".to_string() } else { format!("{typ} {major}:{minor} {access}") };
            let file = if rule.allow() { "devices.allow" } else { "devices.deny" };
            self.write("devices", file, &line)?;
        }
        // The devices every container has, allowed whatever the spec says (as runc does), so
        // that a spec that denies everything still gets a working /dev/null.
        for line in DEFAULT_ALLOWED_DEVICES {
            self.write("devices", "devices.allow", line)?;
        }
        Ok(())
    }

    /// cgroup v2 has no devices files: access to device nodes is decided by an eBPF program
    /// attached to the cgroup (BPF_PROG_TYPE_CGROUP_DEVICE). This one checks the spec's rules
    /// and runc's defaults, the last matching rule winning (v1's semantics), default deny.
    fn set_devices_v2(&self, rules: &[LinuxDeviceCgroup]) -> Result<()> {
        let dir = self.v2.as_ref().expect("unified layout has a v2 directory");
        let mut all: Vec<DeviceRule> = rules.iter().map(DeviceRule::from_spec).collect();
        all.extend(DEFAULT_ALLOWED_DEVICES.iter().filter_map(|l| DeviceRule::parse(l)));
        let program = device_program(&all);
        let dir_fd = fs::File::open(dir).context(|| format!("opening cgroup {}", dir.display()))?;
        attach_device_program(&program, &dir_fd).map_err(|e| {
            Error::Runtime(format!("attaching the device filter to cgroup {}: {e}", dir.display()))
        })
    }

    fn write(&self, controller: &str, file: &str, value: &str) -> Result<()> {
        let dir = self
            .dir(controller)
            .ok_or_else(|| Error::Runtime(format!("the {controller} cgroup controller is not available")))?;
        let path = dir.join(file);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .context(|| format!("opening {}", path.display()))?;
        f.write_all(value.as_bytes()).context(|| format!("writing {value:?} to {}", path.display()))
    }

    fn read(&self, controller: &str, file: &str) -> Result<String> {
        let dir = self
            .dir(controller)
            .ok_or_else(|| Error::Runtime(format!("the {controller} cgroup controller is not available")))?;
        let path = dir.join(file);
        fs::read_to_string(&path).context(|| format!("reading {}", path.display()))
    }

    /// Opens `cgroup.procs` of every directory for writing, so that a forked child can join
    /// by writing "0" to each without touching the file system by path.
    pub fn open_procs(&self) -> Result<Vec<OwnedFd>> {
        self.dirs()
            .map(|d| {
                let p = d.join("cgroup.procs");
                fs::OpenOptions::new()
                    .write(true)
                    .open(&p)
                    .map(OwnedFd::from)
                    .context(|| format!("opening {}", p.display()))
            })
            .collect()
    }

    /// Moves process `pid` into every directory of this cgroup.
    pub fn add_pid(&self, pid: i32) -> Result<()> {
        for dir in self.dirs() {
            let p = dir.join("cgroup.procs");
            fs::write(&p, pid.to_string()).context(|| format!("adding {pid} to {}", p.display()))?;
        }
        Ok(())
    }

    /// PIDs of every process in the cgroup.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let dir = self.dir("pids").or_else(|| self.dir("memory")).or_else(|| self.dirs().next());
        let Some(dir) = dir else { return Ok(Vec::new()) };
        let path = dir.join("cgroup.procs");
        match fs::read_to_string(&path) {
            Ok(text) => Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
        }
    }

    /// Sends `signal` to every process in the cgroup.
    pub fn kill_all(&self, signal: i32) -> Result<()> {
        for pid in self.pids()? {
            // SAFETY: kill(2) with a PID read from the cgroup; ESRCH (already gone) is fine.
            unsafe { libc::kill(pid, signal) };
        }
        Ok(())
    }

    /// Freezes (`true`) or thaws the cgroup and waits until the kernel reports it done.
    pub fn freeze(&self, frozen: bool) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        if self.unified {
            self.write("freezer", "cgroup.freeze", if frozen { "1" } else { "0" })?;
            let want = if frozen { "frozen 1" } else { "frozen 0" };
            loop {
                if self.read("freezer", "cgroup.events")?.lines().any(|l| l.trim() == want) {
                    return Ok(());
                }
                if Instant::now() > deadline {
                    return Err(Error::Runtime("timed out waiting for the cgroup to freeze".into()));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let want = if frozen { "FROZEN" } else { "THAWED" };
        self.write("freezer", "freezer.state", want)?;
        loop {
            if self.read("freezer", "freezer.state")?.trim() == want {
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = self.write("freezer", "freezer.state", "THAWED");
                return Err(Error::Runtime("timed out waiting for the cgroup to freeze".into()));
            }
            std::thread::sleep(Duration::from_millis(1));
            // Freezing can stall on a task in an uninterruptible sleep: ask again, as runc does.
            let _ = self.write("freezer", "freezer.state", want);
        }
    }

    /// Is the cgroup frozen?
    pub fn is_frozen(&self) -> Result<bool> {
        if self.unified {
            return Ok(self.read("freezer", "cgroup.events")?.lines().any(|l| l.trim() == "frozen 1"));
        }
        Ok(self.read("freezer", "freezer.state")?.trim() == "FROZEN")
    }

    /// One sample of resource use.
    pub fn stats(&self) -> Result<CgroupStats> {
        let num = |s: &str| s.trim().parse::<u64>().ok();
        let key = |text: &str, k: &str| {
            text.lines().find_map(|l| l.strip_prefix(k).and_then(|v| v.strip_prefix(' ')).and_then(num))
        };
        // A controller this machine does not have (or does not delegate) reads as nothing
        // rather than failing the whole sample.
        let read = |controller: &str, file: &str| -> Result<String> {
            match self.read(controller, file) {
                Ok(text) => Ok(text),
                Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                    Ok(String::new())
                }
                Err(Error::Runtime(_)) => Ok(String::new()),
                Err(e) => Err(e),
            }
        };
        let mut stats = CgroupStats::default();
        if self.unified {
            stats.cpu_usage_ns = key(&read("cpu", "cpu.stat")?, "usage_usec").unwrap_or(0) * 1000;
            stats.memory_usage = num(&read("memory", "memory.current")?).unwrap_or(0);
            stats.memory_inactive_file = key(&read("memory", "memory.stat")?, "inactive_file").unwrap_or(0);
            stats.memory_limit = num(&read("memory", "memory.max")?);
            stats.pids = num(&read("pids", "pids.current")?).unwrap_or(0);
            stats.oom_kills = key(&read("memory", "memory.events")?, "oom_kill").unwrap_or(0);
            stats.block_io = parse_io_stat(&read("io", "io.stat")?);
        } else {
            stats.cpu_usage_ns = num(&read("cpuacct", "cpuacct.usage")?).unwrap_or(0);
            stats.memory_usage = num(&read("memory", "memory.usage_in_bytes")?).unwrap_or(0);
            // The hierarchy's total, as v2's figure is.
            stats.memory_inactive_file =
                key(&read("memory", "memory.stat")?, "total_inactive_file").unwrap_or(0);
            // v1 reports "no limit" as a huge page-aligned number.
            stats.memory_limit = num(&read("memory", "memory.limit_in_bytes")?).filter(|l| *l < (1 << 62));
            stats.pids = num(&read("pids", "pids.current")?).unwrap_or(0);
            stats.oom_kills = key(&read("memory", "memory.oom_control")?, "oom_kill").unwrap_or(0);
            // What the throttling layer saw: every request, whichever I/O scheduler the device
            // has (`blkio.io_service_bytes_recursive` is only filled by the old CFQ scheduler).
            stats.block_io =
                parse_blkio_service_bytes(&read("blkio", "blkio.throttle.io_service_bytes_recursive")?);
        }
        Ok(stats)
    }

    /// Kills every process left, waits for the cgroup to empty and removes its directories.
    /// Missing directories are fine.
    pub fn remove(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(5);
        if self.dirs().any(|d| d.exists()) {
            // A frozen cgroup's processes cannot die.
            if self.dir("freezer").is_some_and(|d| d.exists()) && self.is_frozen().unwrap_or(false) {
                let _ = self.freeze(false);
            }
            loop {
                let pids = self.pids()?;
                if pids.is_empty() {
                    break;
                }
                self.kill_all(libc::SIGKILL)?;
                if Instant::now() > deadline {
                    return Err(Error::Runtime(format!(
                        "processes {pids:?} of cgroup {} did not die",
                        self.rel.display()
                    )));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        for dir in self.dirs() {
            loop {
                match fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    // The last task may still be exiting (zombies keep a v1 cgroup busy).
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(e) => return Err(Error::io(format!("removing cgroup {}", dir.display()), e)),
                }
            }
        }
        Ok(())
    }
}

/// A new v1 cpuset has no CPUs and memory nodes, and a process cannot join it: copy them down
/// from the parent at each level that lacks them.
fn init_cpuset(mount: &Path, rel: &Path) -> Result<()> {
    let mut parent = mount.to_path_buf();
    for c in rel.components() {
        let dir = parent.join(c);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let current = fs::read_to_string(dir.join(file)).unwrap_or_default();
            if current.trim().is_empty() {
                let value = fs::read_to_string(parent.join(file))
                    .context(|| format!("reading {}", parent.join(file).display()))?;
                fs::write(dir.join(file), value.trim())
                    .context(|| format!("writing {}", dir.join(file).display()))?;
            }
        }
        parent = dir;
    }
    Ok(())
}

/// Enables the memory, cpu and pids controllers for the children of every cgroup from `root`
/// down to the parent of `rel` (v2 needs each level's `cgroup.subtree_control`).
fn enable_v2_controllers(root: &Path, rel: &Path) -> Result<()> {
    let mut dir = root.to_path_buf();
    let parents: Vec<_> = rel.components().collect();
    for (i, c) in parents.iter().enumerate() {
        let available = fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
        let wanted: Vec<String> = ["memory", "cpu", "pids"]
            .iter()
            .filter(|c| available.split_whitespace().any(|a| a == **c))
            .map(|c| format!("+{c}"))
            .collect();
        if !wanted.is_empty() {
            let path = dir.join("cgroup.subtree_control");
            let current = fs::read_to_string(&path).unwrap_or_default();
            if !wanted.iter().all(|w| current.split_whitespace().any(|c| c == &w[1..])) {
                fs::write(&path, wanted.join(" "))
                    .context(|| format!("enabling controllers in {}", path.display()))?;
            }
        }
        if i + 1 < parents.len() {
            dir.push(c);
            if !dir.exists() {
                fs::create_dir(&dir).context(|| format!("creating cgroup {}", dir.display()))?;
            }
        }
    }
    Ok(())
}

/// One device cgroup rule: allow or deny `access` (bits: 1 mknod, 2 read, 4 write) to devices
/// of a type (`None`: all), major and minor (`None`: any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DeviceRule {
    allow: bool,
    typ: Option<u32>,
    major: Option<u32>,
    minor: Option<u32>,
    access: u32,
}

/// bpf_cgroup_dev_ctx's device types.
const BPF_DEVCG_DEV_BLOCK: u32 = 1;
const BPF_DEVCG_DEV_CHAR: u32 = 2;

fn access_bits(access: &str) -> u32 {
    access.chars().fold(0, |bits, c| {
        bits | match c {
            'm' => 1,
            'r' => 2,
            'w' => 4,
            _ => 0,
        }
    })
}

impl DeviceRule {
    fn from_spec(rule: &LinuxDeviceCgroup) -> DeviceRule {
        let typ = match rule.typ().map(|t| t.as_str().to_string()).as_deref() {
            Some("b") => Some(BPF_DEVCG_DEV_BLOCK),
            Some("c") => Some(BPF_DEVCG_DEV_CHAR),
            _ => None,
        };
        DeviceRule {
            allow: rule.allow(),
            typ,
            major: rule.major().and_then(|m| u32::try_from(m).ok()),
            minor: rule.minor().and_then(|m| u32::try_from(m).ok()),
            access: rule.access().as_deref().map(access_bits).unwrap_or(7),
        }
    }

    /// A v1 `devices.allow` line such as `c 1:3 rwm` (allow rules only).
    fn parse(line: &str) -> Option<DeviceRule> {
        let mut parts = line.split(' ');
        let typ = match parts.next()? {
            "b" => Some(BPF_DEVCG_DEV_BLOCK),
            "c" => Some(BPF_DEVCG_DEV_CHAR),
            _ => None,
        };
        let (major, minor) = parts.next()?.split_once(':')?;
        let num = |s: &str| if s == "*" { None } else { s.parse().ok() };
        Some(DeviceRule {
            allow: true,
            typ,
            major: num(major),
            minor: num(minor),
            access: access_bits(parts.next()?),
        })
    }
}

/// One eBPF instruction (struct bpf_insn).
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct BpfInsn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> BpfInsn {
    BpfInsn { code, regs: (src << 4) | dst, off, imm }
}

const LDX_MEM_W: u8 = 0x61;
const ALU64_AND_K: u8 = 0x57;
const ALU64_RSH_K: u8 = 0x77;
const ALU64_MOV_K: u8 = 0xb7;
const ALU64_MOV_X: u8 = 0xbf;
const JMP_JNE_K: u8 = 0x55;
const JMP_EXIT: u8 = 0x95;

/// The device filter: r1 is the bpf_cgroup_dev_ctx {access_type (access << 16 | type), major,
/// minor}; rules are checked last to first, and the first that matches decides.
fn device_program(rules: &[DeviceRule]) -> Vec<BpfInsn> {
    let mut p = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),
        insn(ALU64_MOV_X, 3, 2, 0, 0),
        insn(ALU64_AND_K, 3, 0, 0, 0xffff),
        insn(ALU64_MOV_X, 4, 2, 0, 0),
        insn(ALU64_RSH_K, 4, 0, 0, 16),
        insn(LDX_MEM_W, 5, 1, 4, 0),
        insn(LDX_MEM_W, 6, 1, 8, 0),
    ];
    for rule in rules.iter().rev() {
        let mut block = Vec::new();
        // Each JNE jumps to the end of this block (patched below).
        if let Some(t) = rule.typ {
            block.push(insn(JMP_JNE_K, 3, 0, 0, t as i32));
        }
        if rule.access & 7 != 7 {
            // Every access asked for must be allowed by the rule.
            block.push(insn(ALU64_MOV_X, 7, 4, 0, 0));
            block.push(insn(ALU64_AND_K, 7, 0, 0, (!rule.access & 7) as i32));
            block.push(insn(JMP_JNE_K, 7, 0, 0, 0));
        }
        if let Some(m) = rule.major {
            block.push(insn(JMP_JNE_K, 5, 0, 0, m as i32));
        }
        if let Some(m) = rule.minor {
            block.push(insn(JMP_JNE_K, 6, 0, 0, m as i32));
        }
        block.push(insn(ALU64_MOV_K, 0, 0, 0, rule.allow as i32));
        block.push(insn(JMP_EXIT, 0, 0, 0, 0));
        let len = block.len();
        for (i, ins) in block.iter_mut().enumerate() {
            if ins.code == JMP_JNE_K {
                ins.off = (len - i - 1) as i16;
            }
        }
        p.extend(block);
        if len == 2 {
            // A rule that matches everything ends the program: the verifier refuses
            // unreachable instructions.
            return p;
        }
    }
    p.push(insn(ALU64_MOV_K, 0, 0, 0, 0));
    p.push(insn(JMP_EXIT, 0, 0, 0, 0));
    p
}

/// Loads `program` as a cgroup device program and attaches it to the cgroup directory `dir`.
/// Hand-written bpf(2) calls: two syscalls do not justify a BPF library.
fn attach_device_program(program: &[BpfInsn], dir: &fs::File) -> io::Result<()> {
    use std::os::fd::{AsRawFd, FromRawFd};
    const BPF_PROG_LOAD: libc::c_long = 5;
    const BPF_PROG_ATTACH: libc::c_long = 8;
    const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
    const BPF_CGROUP_DEVICE: u32 = 6;
    const BPF_F_ALLOW_MULTI: u32 = 2;
    #[repr(C)]
    struct ProgLoad {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
        log_level: u32,
        log_size: u32,
        log_buf: u64,
        kern_version: u32,
        prog_flags: u32,
        prog_name: [u8; 16],
        prog_ifindex: u32,
        expected_attach_type: u32,
    }
    #[repr(C)]
    struct ProgAttach {
        target_fd: u32,
        attach_bpf_fd: u32,
        attach_type: u32,
        attach_flags: u32,
    }
    let license = c"Apache-2.0";
    let mut name = [0u8; 16];
    name[..12].copy_from_slice(b"berth_devcg\0");
    let load = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: program.len() as u32,
        insns: program.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        kern_version: 0,
        prog_flags: 0,
        prog_name: name,
        prog_ifindex: 0,
        expected_attach_type: BPF_CGROUP_DEVICE,
    };
    // SAFETY: bpf(2) with a correctly laid out attribute struct whose pointers outlive the call.
    let fd = unsafe {
        libc::syscall(libc::SYS_bpf, BPF_PROG_LOAD, &load as *const ProgLoad, std::mem::size_of::<ProgLoad>())
    };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("loading the program: {e}")));
    }
    // SAFETY: a new descriptor we own; closing it after the attach leaves the program attached.
    let prog = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) };
    let attach = ProgAttach {
        target_fd: dir.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    // SAFETY: as above.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            &attach as *const ProgAttach,
            std::mem::size_of::<ProgAttach>(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// cgroup v2's `io.stat`: `MAJOR:MINOR rbytes=N wbytes=N rios=N ...` per device.
fn parse_io_stat(text: &str) -> Vec<BlockIo> {
    let mut devices = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(device) = fields.next().and_then(parse_device) else { continue };
        let mut io = BlockIo { major: device.0, minor: device.1, ..BlockIo::default() };
        for field in fields {
            match field.split_once('=') {
                Some(("rbytes", v)) => io.read_bytes = v.parse().unwrap_or(0),
                Some(("wbytes", v)) => io.write_bytes = v.parse().unwrap_or(0),
                _ => {}
            }
        }
        devices.push(io);
    }
    devices
}

/// cgroup v1's `blkio.*io_service_bytes*`: `MAJOR:MINOR Read N` (and Write, Sync, Async,
/// Discard, Total) per device, then one `Total N` line.
fn parse_blkio_service_bytes(text: &str) -> Vec<BlockIo> {
    let mut devices: Vec<BlockIo> = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [device, op, value] = fields[..] else { continue };
        let (Some((major, minor)), Ok(value)) = (parse_device(device), value.parse::<u64>()) else {
            continue;
        };
        let at = match devices.iter().position(|d| d.major == major && d.minor == minor) {
            Some(at) => at,
            None => {
                devices.push(BlockIo { major, minor, ..BlockIo::default() });
                devices.len() - 1
            }
        };
        match op {
            "Read" => devices[at].read_bytes = value,
            "Write" => devices[at].write_bytes = value,
            _ => {}
        }
    }
    devices
}

fn parse_device(text: &str) -> Option<(u64, u64)> {
    let (major, minor) = text.split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_io_is_read_from_both_versions_files() {
        let v2 = "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n254:0 rbytes=10 wbytes=0 rios=1 wios=0\nbad line\n";
        assert_eq!(
            parse_io_stat(v2),
            vec![
                BlockIo { major: 8, minor: 0, read_bytes: 4096, write_bytes: 8192 },
                BlockIo { major: 254, minor: 0, read_bytes: 10, write_bytes: 0 },
            ]
        );
        let v1 = "254:0 Read 12288\n254:0 Write 4096\n254:0 Sync 16384\n254:0 Async 0\n254:0 Discard 0\n254:0 Total 16384\nTotal 16384\n";
        assert_eq!(
            parse_blkio_service_bytes(v1),
            vec![BlockIo { major: 254, minor: 0, read_bytes: 12288, write_bytes: 4096 }]
        );
        assert_eq!(parse_blkio_service_bytes("Total 0\n"), vec![]);
        assert_eq!(parse_io_stat(""), vec![]);
    }

    #[test]
    fn the_warmer_moves_a_thread_into_the_cgroup_this_process_is_in() {
        let threads = own_threads_file().expect("cgroups are mounted here");
        let me = nix::unistd::gettid().to_string();
        let listed = fs::read_to_string(&threads).unwrap();
        assert!(listed.lines().any(|t| t == me), "{} does not list {me}", threads.display());
        // Warming twice starts one thread, which stays where it was, as does every other.
        warm_migrations();
        warm_migrations();
        std::thread::sleep(WARM_EVERY * 3);
        let listed = fs::read_to_string(&threads).unwrap();
        let warmer = fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| t.ok())
            .find(|t| fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "cgroup-warmer"))
            .expect("the warmer thread runs");
        for tid in [me, warmer.file_name().to_string_lossy().into_owned()] {
            assert!(listed.lines().any(|t| t == tid), "{} does not list {tid}", threads.display());
        }
    }
}
