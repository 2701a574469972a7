//! The OCI runtime spec (`config.json`) of a container, from its image's config and the options
//! of `berth create`/`run`, with Docker's defaults: capabilities, mounts, devices, masked and
//! read-only paths.

use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::fs;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use berth_types::container::{ContainerConfig, ExecConfig};
use berth_types::security::{parse_security_opts, DeviceMapping, Ulimit};
use berth_types::volume::MountType;
use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilities, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxDevice,
    LinuxDeviceBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxMemoryBuilder,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder, Mount, MountBuilder,
    PosixRlimit, PosixRlimitBuilder, PosixRlimitType, Process, ProcessBuilder, RootBuilder, Spec,
    SpecBuilder, User, UserBuilder,
};

use crate::error::{Error, IoContext, Result};
use crate::fsutil;

/// `PATH` when the image sets none (Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The smallest `-m` Docker accepts.
pub const MIN_MEMORY: u64 = 6 * 1024 * 1024;

/// Docker's default capabilities.
const DEFAULT_CAPS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// Every capability `--cap-add ALL` grants, indexed by capability number: those up to
/// CAP_CHECKPOINT_RESTORE (Linux 5.9).
pub(crate) const CAP_NAMES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Docker's masked paths: bind-mounted over with /dev/null (files) or an empty read-only tmpfs.
const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths.
const READONLY_PATHS: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// Builds the runtime spec of container `id` from its image's config and its options.
///
/// `rootfs` is the container's root filesystem, already assembled (its `/etc/passwd` and
/// `/etc/group` resolve `-u`); it becomes `root.path` as given, so pass an absolute path or one
/// relative to the bundle directory. Requested rlimits are clamped to the caller's hard limits
/// (root may lack CAP_SYS_RESOURCE), so the spec runs under runc and crun as well.
pub fn build_spec(
    id: &str,
    config: &ContainerConfig,
    image: &ImageConfiguration,
    rootfs: &Path,
) -> Result<Spec> {
    let image_config = image.config().as_ref();
    validate_resources(config)?;

    let args = merge_args(config, image)?;
    let hostname = match config.hostname.as_deref() {
        Some(h) if !h.is_empty() => {
            validate_hostname(h)?;
            h.to_string()
        }
        _ => id.chars().take(12).collect(),
    };
    let image_env = image_config.and_then(|c| c.env().clone()).unwrap_or_default();
    let mut env = merge_env(&image_env, &config.env)?;
    if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
        env.insert(1.min(env.len()), format!("HOSTNAME={hostname}"));
    }
    if config.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".to_string());
    }
    let cwd = match config.working_dir.as_deref().filter(|w| !w.is_empty()) {
        Some(w) => w.to_string(),
        None => {
            image_config.and_then(|c| c.working_dir().clone()).filter(|w| !w.is_empty()).unwrap_or("/".into())
        }
    };
    if !cwd.starts_with('/') {
        return Err(Error::InvalidInput(format!(
            "the working directory '{cwd}' is invalid, it needs to be an absolute path"
        )));
    }
    let user_spec = match config.user.as_deref().filter(|u| !u.is_empty()) {
        Some(u) => u.to_string(),
        None => image_config.and_then(|c| c.user().clone()).unwrap_or_default(),
    };
    let mut user = resolve_user(rootfs, &user_spec)?;
    add_groups(&mut user, rootfs, &config.group_add)?;
    let security = parse_security_opts(&config.security_opt).map_err(Error::InvalidInput)?;
    // --privileged is every capability, whatever --cap-drop says (as Docker).
    let capabilities = if config.privileged {
        capabilities(&["ALL".to_string()], &[], user.uid() == 0)?
    } else {
        capabilities(&config.cap_add, &config.cap_drop, user.uid() == 0)?
    };
    let seccomp = seccomp_for(config.privileged, security.seccomp.as_deref(), &capabilities)?;

    let process = ProcessBuilder::default()
        .terminal(config.tty)
        .user(user)
        .args(args)
        .env(env)
        .cwd(cwd)
        .capabilities(capabilities)
        .rlimits(rlimits(&config.ulimits)?)
        .no_new_privileges(security.no_new_privileges)
        .build()
        .map_err(spec_error)?;

    let (devices, device_rules) = devices(config.privileged, &config.devices)?;
    let mut resources = LinuxResourcesBuilder::default().devices(device_rules);
    if let Some(memory) = config.resources.memory {
        let memory =
            i64::try_from(memory).map_err(|_| Error::InvalidInput("memory limit too large".into()))?;
        resources =
            resources.memory(LinuxMemoryBuilder::default().limit(memory).build().map_err(spec_error)?);
    }
    if let Some(cpus) = config.resources.cpus {
        let period = 100_000u64;
        let quota = (cpus * period as f64).round() as i64;
        resources = resources
            .cpu(LinuxCpuBuilder::default().period(period).quota(quota).build().map_err(spec_error)?);
    }
    if let Some(limit) = config.resources.pids_limit.filter(|l| *l > 0) {
        resources = resources.pids(LinuxPidsBuilder::default().limit(limit).build().map_err(spec_error)?);
    }

    let mut namespaces = Vec::new();
    for typ in [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ] {
        namespaces.push(LinuxNamespaceBuilder::default().typ(typ).build().map_err(spec_error)?);
    }
    // A private cgroup namespace where the host is cgroup v2 only (Docker's default there);
    // with v1 controllers the container sees its cgroups bind-mounted, as runc sets them up.
    if crate::runtime::cgroup::is_unified() {
        namespaces.push(
            LinuxNamespaceBuilder::default().typ(LinuxNamespaceType::Cgroup).build().map_err(spec_error)?,
        );
    }

    // --privileged: nothing of /proc or /sys hidden or read-only; else the paths asked for
    // (Docker's MaskedPaths, ReadonlyPaths) or the defaults.
    let (masked, readonly): (Vec<String>, Vec<String>) = if config.privileged {
        (Vec::new(), Vec::new())
    } else {
        let defaults = |paths: &[&str]| paths.iter().map(|s| s.to_string()).collect();
        (
            config.masked_paths.clone().unwrap_or_else(|| defaults(MASKED_PATHS)),
            config.readonly_paths.clone().unwrap_or_else(|| defaults(READONLY_PATHS)),
        )
    };
    for path in masked.iter().chain(&readonly) {
        if !path.starts_with('/') || path.contains('\0') {
            return Err(Error::InvalidInput(format!("masked or read-only path '{path}' must be absolute")));
        }
    }
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .devices(devices)
        .resources(resources.build().map_err(spec_error)?)
        .cgroups_path(super::cgroup::default_path(id))
        .masked_paths(masked)
        .readonly_paths(readonly);
    if let Some(seccomp) = seccomp {
        linux = linux.seccomp(seccomp);
    }
    let linux = linux.build().map_err(spec_error)?;

    let annotations: HashMap<String, String> =
        config.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    SpecBuilder::default()
        .version("1.0.2")
        .root(RootBuilder::default().path(rootfs).readonly(config.read_only).build().map_err(spec_error)?)
        .hostname(hostname)
        .mounts(default_mounts(config.privileged)?)
        .process(process)
        .linux(linux)
        .annotations(annotations)
        .build()
        .map_err(spec_error)
}

/// The process of `berth exec` in a container whose spec is `spec` and root filesystem
/// `rootfs`: the container's env with the exec's `-e` over it, its user unless `-u`, its working
/// directory unless `-w`, and the container's capabilities, rlimits and no_new_privs.
pub fn build_exec_process(spec: &Spec, rootfs: &Path, exec: &ExecConfig) -> Result<Process> {
    if exec.cmd.is_empty() {
        return Err(Error::InvalidInput("No exec command specified".into()));
    }
    let base =
        spec.process().as_ref().ok_or_else(|| Error::InvalidInput("container spec has no process".into()))?;
    let env = merge_env(base.env().as_deref().unwrap_or_default(), &exec.env)?;
    let user = match exec.user.as_deref().filter(|u| !u.is_empty()) {
        Some(u) => resolve_user(rootfs, u)?,
        None => base.user().clone(),
    };
    let cwd = match exec.working_dir.as_deref().filter(|w| !w.is_empty()) {
        Some(w) if w.starts_with('/') => PathBuf::from(w),
        Some(w) => {
            return Err(Error::InvalidInput(format!(
                "the working directory '{w}' is invalid, it needs to be an absolute path"
            )))
        }
        None => base.cwd().clone(),
    };
    let mut caps = base.capabilities().clone();
    if user.uid() != 0 {
        // As for the container's process: a non-root user starts with no effective capabilities.
        if let Some(c) = caps.as_mut() {
            c.set_effective(Some(HashSet::new()));
            c.set_permitted(Some(HashSet::new()));
        }
    } else if let Some(c) = caps.as_mut() {
        // A root exec gets the container's bounding set as effective and permitted, as it would
        // as the container's process.
        c.set_effective(c.bounding().clone());
        c.set_permitted(c.bounding().clone());
    }
    let mut env = env;
    if exec.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".to_string());
    }
    let mut builder = ProcessBuilder::default()
        .terminal(exec.tty)
        .user(user)
        .args(exec.cmd.clone())
        .env(env)
        .cwd(cwd)
        .no_new_privileges(base.no_new_privileges().unwrap_or(false));
    if let Some(caps) = caps {
        builder = builder.capabilities(caps);
    }
    if let Some(rlimits) = base.rlimits() {
        builder = builder.rlimits(rlimits.clone());
    }
    builder.build().map_err(spec_error)
}

/// Writes `spec` as `bundle_dir/config.json` (atomically), creating the directory.
pub fn write_bundle(bundle_dir: &Path, spec: &Spec) -> Result<()> {
    fs::create_dir_all(bundle_dir)
        .context(|| format!("creating bundle directory {}", bundle_dir.display()))?;
    let bytes = serde_json::to_vec_pretty(spec)
        .map_err(|e| Error::InvalidInput(format!("serializing runtime spec: {e}")))?;
    fsutil::write_atomic(&bundle_dir.join("config.json"), &bytes)
}

/// Reads `bundle_dir/config.json`.
pub fn read_bundle(bundle_dir: &Path) -> Result<Spec> {
    let path = bundle_dir.join("config.json");
    let bytes = fs::read(&path).context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::InvalidInput(format!("invalid runtime spec {}: {e}", path.display())))
}

/// The network namespace a container's process joins (see [`crate::network`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkNamespace {
    /// The host's: no network namespace entry.
    Host,
    /// A namespace pinned (or owned by a process) at this path, made by the engine at start.
    Path(PathBuf),
    /// A new namespace the runtime makes with the container, with only `lo` (up).
    New,
}

/// Points the spec's network namespace at `namespace` and bind-mounts `files` (destination in
/// the container, host file) over the image's `/etc/hosts`, `/etc/resolv.conf` and
/// `/etc/hostname`, as Docker does; a destination the user mounted something on keeps that.
pub fn set_network(spec: &mut Spec, namespace: NetworkNamespace, files: &[(&str, PathBuf)]) -> Result<()> {
    if let Some(linux) = spec.linux_mut() {
        let mut namespaces = linux.namespaces().clone().unwrap_or_default();
        namespaces.retain(|n| n.typ() != LinuxNamespaceType::Network);
        let entry = match namespace {
            NetworkNamespace::Host => None,
            NetworkNamespace::Path(path) => Some(
                LinuxNamespaceBuilder::default()
                    .typ(LinuxNamespaceType::Network)
                    .path(path)
                    .build()
                    .map_err(spec_error)?,
            ),
            NetworkNamespace::New => Some(
                LinuxNamespaceBuilder::default()
                    .typ(LinuxNamespaceType::Network)
                    .build()
                    .map_err(spec_error)?,
            ),
        };
        if let Some(entry) = entry {
            namespaces.insert(1.min(namespaces.len()), entry);
        }
        linux.set_namespaces(Some(namespaces));
    }
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    for (destination, source) in files {
        if mounts.iter().any(|m| m.destination() == Path::new(destination)) {
            continue;
        }
        mounts.push(
            MountBuilder::default()
                .destination(destination)
                .typ("bind")
                .source(source)
                .options(vec!["rbind".to_string(), "rprivate".to_string()])
                .build()
                .map_err(spec_error)?,
        );
    }
    spec.set_mounts(Some(mounts));
    Ok(())
}

fn spec_error(e: oci_spec::OciSpecError) -> Error {
    Error::InvalidInput(format!("runtime spec: {e}"))
}

pub(crate) fn validate_resources(config: &ContainerConfig) -> Result<()> {
    if let Some(memory) = config.resources.memory {
        if memory < MIN_MEMORY {
            return Err(Error::InvalidInput("Minimum memory limit allowed is 6MB".into()));
        }
    }
    if let Some(cpus) = config.resources.cpus {
        let ncpu = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        if !(cpus.is_finite() && cpus >= 0.01 && cpus <= ncpu as f64) {
            return Err(Error::InvalidInput(format!(
                "Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
            )));
        }
    }
    Ok(())
}

fn validate_hostname(h: &str) -> Result<()> {
    let ok = h.len() <= 64
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!("invalid hostname format: {h}")))
    }
}

/// Docker's merge: `--entrypoint` replaces the image's entrypoint *and* drops its CMD; a
/// command replaces the image's CMD.
fn merge_args(config: &ContainerConfig, image: &ImageConfiguration) -> Result<Vec<String>> {
    let image_config = image.config().as_ref();
    let (entrypoint, image_cmd) = match &config.entrypoint {
        Some(e) => (e.clone(), Vec::new()),
        None => (
            image_config.and_then(|c| c.entrypoint().clone()).unwrap_or_default(),
            image_config.and_then(|c| c.cmd().clone()).unwrap_or_default(),
        ),
    };
    let cmd = if config.cmd.is_empty() { image_cmd } else { config.cmd.clone() };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(Error::InvalidInput("no command specified".into()));
    }
    if args.iter().any(|a| a.contains('\0')) {
        return Err(Error::InvalidInput("command contains a NUL byte".into()));
    }
    Ok(args)
}

/// `base` with `overrides` applied by key; `KEY` alone (no `=`) in `overrides` is dropped, as
/// Docker drops a `-e KEY` whose variable is not set in the client. PATH is added when missing.
fn merge_env(base: &[String], overrides: &[String]) -> Result<Vec<String>> {
    let mut env: Vec<String> = Vec::with_capacity(base.len() + overrides.len() + 2);
    let key = |e: &str| e.split_once('=').map(|(k, _)| k.to_string()).unwrap_or_else(|| e.to_string());
    for entry in base.iter().chain(overrides) {
        if entry.contains('\0') {
            return Err(Error::InvalidInput(format!("invalid environment variable: {entry:?}")));
        }
        let k = key(entry);
        if k.is_empty() {
            return Err(Error::InvalidInput(format!("invalid environment variable: {entry}")));
        }
        if !entry.contains('=') {
            continue;
        }
        match env.iter_mut().find(|e| key(e) == k) {
            Some(existing) => *existing = entry.clone(),
            None => env.push(entry.clone()),
        }
    }
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    Ok(env)
}

/// Parses a capability name as `--cap-add` takes it: `NET_ADMIN`, `cap_net_admin`, ...
fn parse_cap(name: &str) -> Result<Capability> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    Capability::from_str(bare).map_err(|_| Error::InvalidInput(format!("unknown capability: \"{name}\"")))
}

/// The container's `linux.seccomp`: none with `--privileged` or `seccomp=unconfined`, else the
/// given profile (Docker's format) or the default one, resolved for its capabilities.
fn seccomp_for(
    privileged: bool,
    option: Option<&str>,
    caps: &LinuxCapabilities,
) -> Result<Option<oci_spec::runtime::LinuxSeccomp>> {
    use super::seccomp;
    if privileged || option == Some("unconfined") {
        return Ok(None);
    }
    let profile = match option {
        None | Some("builtin") | Some("") => seccomp::default::profile(),
        Some(json) => seccomp::parse_profile(json)?,
    };
    let bounding = caps.bounding().clone().unwrap_or_default();
    seccomp::to_oci(&profile, &bounding).map(Some)
}

/// Docker's default set with `--cap-add`/`--cap-drop` applied (`ALL` on either side). A
/// non-root process starts with empty effective and permitted sets, as Docker gives it.
fn capabilities(add: &[String], drop: &[String], root: bool) -> Result<LinuxCapabilities> {
    let all = |list: &[String]| {
        list.iter().any(|c| c.eq_ignore_ascii_case("ALL") || c.eq_ignore_ascii_case("CAP_ALL"))
    };
    let mut set: HashSet<Capability> = HashSet::new();
    if all(add) {
        // Those this process holds: a capability the engine lacks (CAP_SYS_RESOURCE in some
        // nested setups) could not be given, and would fail every `--privileged` start.
        let held = own_bounding_set();
        for (bit, c) in CAP_NAMES.iter().enumerate() {
            if held & (1u64 << bit) != 0 {
                set.insert(parse_cap(c)?);
            }
        }
    } else {
        for c in DEFAULT_CAPS {
            set.insert(parse_cap(c)?);
        }
    }
    if all(drop) {
        set.clear();
    } else {
        for c in drop {
            set.remove(&parse_cap(c)?);
        }
    }
    // Explicit adds win over drops, as in Docker (`--cap-drop ALL --cap-add CHOWN`).
    for c in add.iter().filter(|c| !all(std::slice::from_ref(c))) {
        set.insert(parse_cap(c)?);
    }
    let running = if root { set.clone() } else { HashSet::new() };
    LinuxCapabilitiesBuilder::default()
        .bounding(set)
        .effective(running.clone())
        .permitted(running)
        .inheritable(HashSet::new())
        .ambient(HashSet::new())
        .build()
        .map_err(spec_error)
}

/// This process's capability bounding set (every bit when it cannot be read).
fn own_bounding_set() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX)
}

/// RLIMIT_NOFILE 1048576 as Docker's daemon gives its containers, then `--ulimit`s, each
/// clamped to what this process may set: without CAP_SYS_RESOURCE a hard limit cannot be raised.
fn rlimits(ulimits: &[Ulimit]) -> Result<Vec<PosixRlimit>> {
    let mut wanted: Vec<(PosixRlimitType, u64, u64)> =
        vec![(PosixRlimitType::RlimitNofile, 1_048_576, 1_048_576)];
    for u in ulimits {
        let typ = PosixRlimitType::from_str(&format!("RLIMIT_{}", u.name.to_ascii_uppercase()))
            .map_err(|_| Error::InvalidInput(format!("invalid ulimit type: {}", u.name)))?;
        let value = |v: i64| if v < 0 { u64::MAX } else { v as u64 };
        let (soft, hard) = (value(u.soft), value(u.hard));
        if soft > hard {
            return Err(Error::InvalidInput(format!(
                "ulimit soft limit must be less than or equal to hard limit: {} > {}",
                u.soft, u.hard
            )));
        }
        wanted.retain(|w| w.0 != typ);
        wanted.push((typ, soft, hard));
    }
    wanted
        .into_iter()
        .map(|(typ, soft, hard)| {
            let (soft, hard) = clamp_rlimit(rlimit_number(typ), soft, hard);
            PosixRlimitBuilder::default().typ(typ).soft(soft).hard(hard).build().map_err(spec_error)
        })
        .collect()
}

/// The setrlimit(2) resource of an OCI rlimit type.
pub(crate) fn rlimit_number(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

/// `(soft, hard)` lowered to the calling process's hard limit of `resource`.
pub fn clamp_rlimit(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> (u64, u64) {
    let mut cur = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(resource, &mut cur) } != 0 {
        return (soft, hard);
    }
    let max = cur.rlim_max;
    (soft.min(max), hard.min(max))
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(spec_error)
}

/// Docker's default mounts; `/sys` and the cgroup filesystem are writable with `--privileged`.
fn default_mounts(privileged: bool) -> Result<Vec<Mount>> {
    let ro = if privileged { "rw" } else { "ro" };
    Ok(vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount("/dev", "tmpfs", "tmpfs", &["nosuid", "strictatime", "mode=755", "size=65536k"])?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        )?,
        mount("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", ro])?,
        mount("/sys/fs/cgroup", "cgroup", "cgroup", &[ro, "nosuid", "noexec", "nodev"])?,
        mount("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"])?,
        mount("/dev/shm", "tmpfs", "shm", &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"])?,
    ])
}

/// A mount from `-v`, `--mount`, `--tmpfs` or an image's VOLUME, resolved to what the host
/// provides (see [`crate::volume`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserMount {
    pub kind: MountType,
    /// The host path bind-mounted (a bind's source, a volume's data); unused for tmpfs.
    pub source: PathBuf,
    /// Absolute and clean, inside the container.
    pub destination: PathBuf,
    pub read_only: bool,
    /// tmpfs only: its size limit in bytes.
    pub tmpfs_size: Option<u64>,
    /// Binds and volumes: `private`, `shared`, `rshared`, `slave` or `rslave`; `None` is
    /// `rprivate`.
    pub propagation: Option<String>,
}

/// Adds the container's own mounts to `spec`, after the default ones, replacing a default one
/// at the same destination (a tmpfs on /dev/shm, ...) as Docker does. Binds and volumes are
/// recursive binds with private propagation, read-only by a remount when asked; a tmpfs is
/// nosuid, nodev and noexec as Docker's `--tmpfs`.
pub fn add_user_mounts(spec: &mut Spec, mounts: &[UserMount]) -> Result<()> {
    if mounts.is_empty() {
        return Ok(());
    }
    let mut all = spec.mounts().clone().unwrap_or_default();
    all.retain(|m| !mounts.iter().any(|u| u.destination == *m.destination()));
    for u in mounts {
        let access = if u.read_only { "ro" } else { "rw" };
        let m = match u.kind {
            MountType::Bind | MountType::Volume => MountBuilder::default()
                .destination(&u.destination)
                .typ("bind")
                .source(&u.source)
                .options(vec![
                    "rbind".to_string(),
                    u.propagation.clone().unwrap_or_else(|| "rprivate".to_string()),
                    access.to_string(),
                ])
                .build()
                .map_err(spec_error)?,
            MountType::Tmpfs => {
                let mut options: Vec<String> =
                    ["nosuid", "nodev", "noexec", access].iter().map(|s| s.to_string()).collect();
                if let Some(size) = u.tmpfs_size {
                    options.push(format!("size={size}"));
                }
                MountBuilder::default()
                    .destination(&u.destination)
                    .typ("tmpfs")
                    .source("tmpfs")
                    .options(options)
                    .build()
                    .map_err(spec_error)?
            }
        };
        all.push(m);
    }
    spec.set_mounts(Some(all));
    // A shared bind propagates back to the host only if the container's root is shared too
    // (runc and the built-in runtime make it a slave otherwise), as Docker and containerd set it.
    let modes: Vec<&str> = mounts.iter().filter_map(|u| u.propagation.as_deref()).collect();
    let root = if modes.iter().any(|m| m.ends_with("shared")) {
        Some("rshared")
    } else if modes.iter().any(|m| m.ends_with("slave")) {
        Some("rslave")
    } else {
        None
    };
    if let (Some(root), Some(linux)) = (root, spec.linux_mut().as_mut()) {
        linux.set_rootfs_propagation(Some(root.to_string()));
    }
    Ok(())
}

/// The device nodes every container gets (as runc and Docker create them).
fn default_devices() -> Result<Vec<LinuxDevice>> {
    let dev = |path: &str, major: i64, minor: i64| {
        LinuxDeviceBuilder::default()
            .path(path)
            .typ(LinuxDeviceType::C)
            .major(major)
            .minor(minor)
            .file_mode(0o666u32)
            .uid(0u32)
            .gid(0u32)
            .build()
            .map_err(spec_error)
    };
    Ok(vec![
        dev("/dev/null", 1, 3)?,
        dev("/dev/zero", 1, 5)?,
        dev("/dev/full", 1, 7)?,
        dev("/dev/random", 1, 8)?,
        dev("/dev/urandom", 1, 9)?,
        dev("/dev/tty", 5, 0)?,
    ])
}

/// The container's device nodes and device cgroup rules: the defaults, then `--device`s; with
/// `--privileged` every device of the host's /dev and access to all of them.
fn devices(
    privileged: bool,
    mappings: &[DeviceMapping],
) -> Result<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>)> {
    let mut nodes = default_devices()?;
    let mut rules = device_cgroup_rules();
    let mut add = |node: LinuxDevice, access: &str, nodes: &mut Vec<LinuxDevice>| -> Result<()> {
        rules.push(
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(node.typ())
                .major(node.major())
                .minor(node.minor())
                .access(access)
                .build()
                .map_err(spec_error)?,
        );
        nodes.retain(|n| n.path() != node.path());
        nodes.push(node);
        Ok(())
    };
    if privileged {
        for host in host_devices(Path::new("/dev")) {
            if let Ok(node) = device_node(&host, &host) {
                add(node, "rwm", &mut nodes)?;
            }
        }
    }
    for m in mappings {
        let inside = if m.path_in_container.is_empty() { &m.path_on_host } else { &m.path_in_container };
        let node = device_node(Path::new(&m.path_on_host), Path::new(inside))?;
        let access = if m.cgroup_permissions.is_empty() { "rwm" } else { m.cgroup_permissions.as_str() };
        add(node, access, &mut nodes)?;
    }
    if privileged {
        rules = vec![LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::A)
            .access("rwm")
            .build()
            .map_err(spec_error)?];
    }
    Ok((nodes, rules))
}

/// The device nodes under `dir`, as Docker's `--privileged` takes them: not those of the
/// container's own pty, shm and mqueue mounts, nor the host's console.
fn host_devices(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else { return out };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            let name = entry.file_name();
            if !matches!(
                name.to_str(),
                Some("pts" | "shm" | "fd" | "mqueue" | ".lxc" | ".lxd-mounts" | ".udev")
            ) {
                out.extend(host_devices(&path));
            }
        } else if (ft.is_char_device() || ft.is_block_device()) && path != Path::new("/dev/console") {
            out.push(path);
        }
    }
    out
}

/// The node at `inside` for the host device `host` (its type, numbers, mode and owner).
fn device_node(host: &Path, inside: &Path) -> Result<LinuxDevice> {
    let meta = fs::metadata(host).map_err(|e| {
        Error::InvalidInput(format!(
            "error gathering device information while adding custom device {:?}: {e}",
            host.display().to_string()
        ))
    })?;
    let typ = if meta.file_type().is_char_device() {
        LinuxDeviceType::C
    } else if meta.file_type().is_block_device() {
        LinuxDeviceType::B
    } else {
        return Err(Error::InvalidInput(format!(
            "error gathering device information while adding custom device {:?}: not a device node",
            host.display().to_string()
        )));
    };
    let rdev = meta.rdev();
    LinuxDeviceBuilder::default()
        .path(inside)
        .typ(typ)
        .major(libc::major(rdev) as i64)
        .minor(libc::minor(rdev) as i64)
        .file_mode(meta.mode() & 0o777)
        .uid(meta.uid())
        .gid(meta.gid())
        .build()
        .map_err(spec_error)
}

/// Docker's device cgroup: deny everything, allow mknod of any node and use of the defaults,
/// the pty devices and /dev/net/tun.
fn device_cgroup_rules() -> Vec<LinuxDeviceCgroup> {
    let rule = |allow: bool, typ: LinuxDeviceType, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut b = LinuxDeviceCgroupBuilder::default().allow(allow).typ(typ).access(access);
        if let Some(m) = major {
            b = b.major(m);
        }
        if let Some(m) = minor {
            b = b.minor(m);
        }
        b.build().expect("device cgroup rule has all fields")
    };
    use LinuxDeviceType::{A, B, C};
    vec![
        rule(false, A, None, None, "rwm"),
        rule(true, C, None, None, "m"),
        rule(true, B, None, None, "m"),
        rule(true, C, Some(1), Some(3), "rwm"),
        rule(true, C, Some(1), Some(5), "rwm"),
        rule(true, C, Some(1), Some(7), "rwm"),
        rule(true, C, Some(1), Some(8), "rwm"),
        rule(true, C, Some(1), Some(9), "rwm"),
        rule(true, C, Some(5), Some(0), "rwm"),
        rule(true, C, Some(5), Some(1), "rwm"),
        rule(true, C, Some(5), Some(2), "rwm"),
        rule(true, C, Some(136), None, "rwm"),
        rule(true, C, Some(10), Some(200), "rwm"),
    ]
}

/// Reads `path` (absolute, inside the container) from `rootfs` with symlinks resolved inside
/// it (`openat2` + `RESOLVE_IN_ROOT`), so an image's `/etc/passwd -> /host/file` link cannot make
/// the engine read a host file. `None` when it does not exist.
fn read_in_root(rootfs: &Path, path: &str) -> Result<Option<String>> {
    let root = fs::File::open(rootfs).context(|| format!("opening root filesystem {}", rootfs.display()))?;
    let cpath =
        CString::new(path.trim_start_matches('/')).map_err(|_| Error::InvalidInput("NUL in path".into()))?;
    // SAFETY: open_how is plain data; all-zero is its "nothing set" value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_RDONLY | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    use std::os::fd::AsRawFd;
    // SAFETY: openat2 with a valid dirfd, a NUL-terminated path and a correctly sized open_how.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            cpath.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ENOENT) {
            return Ok(None);
        }
        return Err(Error::io(format!("opening {path} in {}", rootfs.display()), err));
    }
    // SAFETY: fd is a new descriptor we own.
    let mut file = fs::File::from(unsafe { OwnedFd::from_raw_fd(fd as i32) });
    let mut text = String::new();
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).context(|| format!("reading {path} in {}", rootfs.display()))?;
    text.push_str(&String::from_utf8_lossy(&bytes));
    Ok(Some(text))
}

/// One line of /etc/passwd.
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
}

/// One line of /etc/group.
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// The home directory of `uid` in the root filesystem's /etc/passwd, `/` when it has none (as
/// runc sets `HOME` for a process whose environment lacks it).
pub fn home_dir(rootfs: &Path, uid: u32) -> String {
    read_in_root(rootfs, "/etc/passwd")
        .ok()
        .flatten()
        .and_then(|text| {
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.get(2).and_then(|u| u.parse::<u32>().ok()) == Some(uid))
                .and_then(|f| f.get(5).filter(|h| !h.is_empty()).map(|h| h.to_string()))
        })
        .unwrap_or_else(|| "/".to_string())
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(GroupEntry {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| m.split(',').filter(|s| !s.is_empty()).map(String::from).collect())
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Adds `--group-add`'s groups (numbers, or names in the root filesystem's /etc/group) to the
/// user's supplementary groups.
pub fn add_groups(user: &mut User, rootfs: &Path, group_add: &[String]) -> Result<()> {
    if group_add.is_empty() {
        return Ok(());
    }
    let groups = parse_group(&read_in_root(rootfs, "/etc/group")?.unwrap_or_default());
    let mut additional = user.additional_gids().clone().unwrap_or_default();
    for g in group_add {
        let gid = match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => groups.iter().find(|e| e.name == *g).map(|e| e.gid).ok_or_else(|| {
                Error::InvalidInput(format!("Unable to find group {g}: no matching entries in group file"))
            })?,
        };
        if !additional.contains(&gid) {
            additional.push(gid);
        }
    }
    user.set_additional_gids(Some(additional));
    Ok(())
}

/// Resolves `-u` (`name`, `uid`, `name:group`, `uid:gid`, empty for root) in the root
/// filesystem's /etc/passwd and /etc/group, with the supplementary groups that list the user,
/// the way runc's user lookup does for Docker.
pub fn resolve_user(rootfs: &Path, spec: &str) -> Result<User> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = parse_passwd(&read_in_root(rootfs, "/etc/passwd")?.unwrap_or_default());
    let groups = parse_group(&read_in_root(rootfs, "/etc/group")?.unwrap_or_default());

    let (uid, mut gid, name) = if user_part.is_empty() {
        let root = passwd.iter().find(|p| p.uid == 0);
        (0, root.map(|p| p.gid).unwrap_or(0), root.map(|p| p.name.clone()))
    } else if let Ok(uid) = user_part.parse::<u32>() {
        let entry = passwd.iter().find(|p| p.uid == uid);
        (uid, entry.map(|p| p.gid).unwrap_or(0), entry.map(|p| p.name.clone()))
    } else {
        let entry = passwd.iter().find(|p| p.name == user_part).ok_or_else(|| {
            Error::InvalidInput(format!(
                "unable to find user {user_part}: no matching entries in passwd file"
            ))
        })?;
        (entry.uid, entry.gid, Some(entry.name.clone()))
    };
    if let Some(g) = group_part.filter(|g| !g.is_empty()) {
        gid = match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => groups.iter().find(|e| e.name == g).map(|e| e.gid).ok_or_else(|| {
                Error::InvalidInput(format!("unable to find group {g}: no matching entries in group file"))
            })?,
        };
    }
    let mut additional: Vec<u32> = match &name {
        Some(n) => groups.iter().filter(|g| g.members.iter().any(|m| m == n)).map(|g| g.gid).collect(),
        None => Vec::new(),
    };
    additional.retain(|g| *g != gid);
    additional.dedup();
    let mut builder = UserBuilder::default().uid(uid).gid(gid).additional_gids(additional);
    if !user_part.is_empty() && user_part.parse::<u32>().is_err() {
        builder = builder.username(user_part);
    }
    builder.build().map_err(spec_error)
}

#[cfg(test)]
mod tests;
