//! Docker's container create body into berth's `ContainerConfig`: the one translation every
//! route that makes a container uses. Option strings (`Binds`, `Tmpfs`, port bindings, restart
//! policies) go through the same parsers in `berth_types` as the CLI's flags and compose files.
//!
//! A field berth does not implement is refused with a 400 that names it when the client set it
//! to anything but its zero value (clients send every field, mostly empty). Nothing is dropped
//! silently: in particular nothing that would weaken or change isolation (`PidMode`,
//! `UsernsMode`, `Sysctls`, ...).

use std::collections::{BTreeMap, HashMap};

use berth_types::health::HealthConfig;
use berth_types::network::PortBinding;
use berth_types::volume::{Mount, MountType};
use berth_types::{ContainerConfig, Resources, RestartPolicy};
use bollard_stubs::models::{
    ContainerCreateBody, HealthConfig as DockerHealth, HostConfig, Mount as DockerMount,
    MountType as DockerMountType, PortBinding as DockerPortBinding, RestartPolicy as DockerRestart,
};

use crate::serve::error::ApiError;

/// The fields a Docker client may set that berth does not implement (yet), as the README lists
/// them; each is refused when set to anything but its zero value. The refusals themselves are
/// written field by field below; this list is what a test holds the README to.
#[cfg(test)]
pub const REFUSED_FIELDS: &[&str] = &[
    "Domainname",
    "HostConfig.CpuShares",
    "HostConfig.CgroupParent",
    "HostConfig.Blkio*",
    "HostConfig.CpuRealtime*",
    "HostConfig.CpusetCpus",
    "HostConfig.CpusetMems",
    "HostConfig.DeviceCgroupRules",
    "HostConfig.DeviceRequests",
    "HostConfig.MemoryReservation",
    "HostConfig.MemorySwap (other than 0 or -1)",
    "HostConfig.MemorySwappiness",
    "HostConfig.OomKillDisable",
    "HostConfig.CpuCount",
    "HostConfig.CpuPercent",
    "HostConfig.IOMaximum*",
    "HostConfig.LogConfig (drivers other than json-file and local)",
    "HostConfig.VolumeDriver",
    "HostConfig.VolumesFrom",
    "HostConfig.Annotations",
    "HostConfig.CgroupnsMode=host",
    "HostConfig.Dns",
    "HostConfig.DnsOptions",
    "HostConfig.DnsSearch",
    "HostConfig.ExtraHosts",
    "HostConfig.IpcMode (other than private or shareable)",
    "HostConfig.Cgroup",
    "HostConfig.Links",
    "HostConfig.OomScoreAdj",
    "HostConfig.PidMode",
    "HostConfig.StorageOpt",
    "HostConfig.UTSMode",
    "HostConfig.ShmSize",
    "HostConfig.Sysctls",
    "HostConfig.Isolation",
    "HostConfig.Mounts: BindOptions.NonRecursive; VolumeOptions.DriverConfig; type image, npipe, cluster",
    "NetworkingConfig.EndpointsConfig with more than one network",
];

fn refuse(field: &str) -> ApiError {
    ApiError::bad_request(format!("{field} is not supported by berth")).with_field(field)
}

/// Refuses `field` when `value` is set and not its zero value.
fn zero<T: Default + PartialEq>(field: &str, value: &Option<T>) -> Result<(), ApiError> {
    match value {
        Some(v) if *v != T::default() => Err(refuse(field)),
        _ => Ok(()),
    }
}

fn empty<T>(field: &str, value: &Option<Vec<T>>) -> Result<(), ApiError> {
    match value {
        Some(v) if !v.is_empty() => Err(refuse(field)),
        _ => Ok(()),
    }
}

fn empty_map<K, V>(field: &str, value: &Option<HashMap<K, V>>) -> Result<(), ApiError> {
    match value {
        Some(v) if !v.is_empty() => Err(refuse(field)),
        _ => Ok(()),
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

/// `POST /containers/create?name=NAME` with Docker's body → berth's create request.
pub fn container_config(
    name: Option<String>,
    body: ContainerCreateBody,
) -> Result<ContainerConfig, ApiError> {
    let image = non_empty(body.image.clone()).ok_or_else(|| {
        ApiError::bad_request("Config cannot be empty in order to create a container").with_field("Image")
    })?;
    zero("Domainname", &body.domainname)?;
    let host = body.host_config.clone().unwrap_or_default();
    refuse_unsupported_host_config(&host)?;

    let mut config = ContainerConfig {
        image,
        name: non_empty(name),
        cmd: body.cmd.clone().unwrap_or_default(),
        // `--entrypoint ""` arrives as [""]: it clears the image's entrypoint.
        entrypoint: body.entrypoint.clone().map(|e| e.into_iter().filter(|a| !a.is_empty()).collect()),
        env: body.env.clone().unwrap_or_default(),
        working_dir: non_empty(body.working_dir.clone()),
        user: non_empty(body.user.clone()),
        hostname: non_empty(body.hostname.clone()),
        labels: body.labels.clone().unwrap_or_default().into_iter().collect::<BTreeMap<_, _>>(),
        tty: body.tty.unwrap_or(false),
        open_stdin: body.open_stdin.unwrap_or(false),
        auto_remove: host.auto_remove.unwrap_or(false),
        restart_policy: restart_policy(host.restart_policy.as_ref())?,
        runtime: non_empty(host.runtime.clone()),
        read_only: host.readonly_rootfs.unwrap_or(false),
        cap_add: host.cap_add.clone().unwrap_or_default(),
        cap_drop: host.cap_drop.clone().unwrap_or_default(),
        privileged: host.privileged.unwrap_or(false),
        // As Docker's CLI sent them: a seccomp profile is its content, checked at create.
        security_opt: host.security_opt.clone().unwrap_or_default(),
        devices: devices(&host)?,
        ulimits: ulimits(&host)?,
        group_add: host.group_add.clone().unwrap_or_default(),
        // `[]` (the CLI's `--security-opt systempaths=unconfined`) is none; absent, the defaults.
        masked_paths: host.masked_paths.clone(),
        readonly_paths: host.readonly_paths.clone(),
        userns_mode: non_empty(host.userns_mode.clone()),
        init: host.init.unwrap_or(false),
        stop_signal: non_empty(body.stop_signal.clone()),
        stop_timeout: match body.stop_timeout {
            None => None,
            Some(t) if t >= 0 && t <= i64::from(u32::MAX) => Some(t as u32),
            Some(t) => {
                return Err(
                    ApiError::bad_request(format!("invalid StopTimeout {t}")).with_field("StopTimeout")
                )
            }
        },
        resources: resources(&host)?,
        network: None,
        network_aliases: Vec::new(),
        ipv4_address: None,
        ports: port_bindings(&host)?,
        publish_all: host.publish_all_ports.unwrap_or(false),
        expose: body.exposed_ports.clone().unwrap_or_default(),
        mounts: Vec::new(),
        healthcheck: body.healthcheck.as_ref().map(healthcheck).transpose()?,
        // json-file and local both mean berth's JSON-lines log; the options are checked at
        // create (other drivers are refused there by name).
        log_driver: host.log_config.as_ref().and_then(|l| non_empty(l.typ.clone())),
        log_opts: host
            .log_config
            .as_ref()
            .and_then(|l| l.config.clone())
            .unwrap_or_default()
            .into_iter()
            .collect(),
    };
    // Docker's "default" network mode is its default bridge.
    let mode = non_empty(host.network_mode.clone()).filter(|m| m != "default");
    config.network = if body.network_disabled == Some(true) { Some("none".into()) } else { mode };
    networking(&mut config, &body)?;
    config.mounts = mounts(&host, body.volumes.as_deref().unwrap_or_default())?;
    Ok(config)
}

fn refuse_unsupported_host_config(h: &HostConfig) -> Result<(), ApiError> {
    zero("HostConfig.CpuShares", &h.cpu_shares)?;
    zero("HostConfig.CgroupParent", &h.cgroup_parent)?;
    zero("HostConfig.BlkioWeight", &h.blkio_weight)?;
    empty("HostConfig.BlkioWeightDevice", &h.blkio_weight_device)?;
    empty("HostConfig.BlkioDeviceReadBps", &h.blkio_device_read_bps)?;
    empty("HostConfig.BlkioDeviceWriteBps", &h.blkio_device_write_bps)?;
    empty("HostConfig.BlkioDeviceReadIOps", &h.blkio_device_read_iops)?;
    empty("HostConfig.BlkioDeviceWriteIOps", &h.blkio_device_write_iops)?;
    zero("HostConfig.CpuRealtimePeriod", &h.cpu_realtime_period)?;
    zero("HostConfig.CpuRealtimeRuntime", &h.cpu_realtime_runtime)?;
    zero("HostConfig.CpusetCpus", &h.cpuset_cpus)?;
    zero("HostConfig.CpusetMems", &h.cpuset_mems)?;
    empty("HostConfig.DeviceCgroupRules", &h.device_cgroup_rules)?;
    empty("HostConfig.DeviceRequests", &h.device_requests)?;
    zero("HostConfig.MemoryReservation", &h.memory_reservation)?;
    if let Some(swap) = h.memory_swap {
        if swap != 0 && swap != -1 {
            return Err(refuse("HostConfig.MemorySwap"));
        }
    }
    if let Some(s) = h.memory_swappiness {
        if s != -1 {
            return Err(refuse("HostConfig.MemorySwappiness"));
        }
    }
    zero("HostConfig.OomKillDisable", &h.oom_kill_disable)?;
    zero("HostConfig.CpuCount", &h.cpu_count)?;
    zero("HostConfig.CpuPercent", &h.cpu_percent)?;
    zero("HostConfig.IOMaximumIOps", &h.io_maximum_iops)?;
    zero("HostConfig.IOMaximumBandwidth", &h.io_maximum_bandwidth)?;
    if let Some(log) = &h.log_config {
        let driver = log.typ.as_deref().unwrap_or("");
        if !matches!(driver, "" | "json-file" | "local") {
            return Err(ApiError::bad_request(format!(
                "log driver {driver:?} is not supported by berth: json-file or local"
            ))
            .with_field("HostConfig.LogConfig"));
        }
    }
    if h.volume_driver.as_deref().is_some_and(|d| !d.is_empty() && d != "local") {
        return Err(refuse("HostConfig.VolumeDriver"));
    }
    empty("HostConfig.VolumesFrom", &h.volumes_from)?;
    empty_map("HostConfig.Annotations", &h.annotations)?;
    if h.cgroupns_mode.as_ref().is_some_and(|m| m.to_string() == "host") {
        return Err(refuse("HostConfig.CgroupnsMode"));
    }
    empty("HostConfig.Dns", &h.dns)?;
    empty("HostConfig.DnsOptions", &h.dns_options)?;
    empty("HostConfig.DnsSearch", &h.dns_search)?;
    empty("HostConfig.ExtraHosts", &h.extra_hosts)?;
    if h.ipc_mode.as_deref().is_some_and(|m| !matches!(m, "" | "private" | "shareable")) {
        return Err(refuse("HostConfig.IpcMode"));
    }
    zero("HostConfig.Cgroup", &h.cgroup)?;
    empty("HostConfig.Links", &h.links)?;
    zero("HostConfig.OomScoreAdj", &h.oom_score_adj)?;
    zero("HostConfig.PidMode", &h.pid_mode)?;
    empty_map("HostConfig.StorageOpt", &h.storage_opt)?;
    zero("HostConfig.UTSMode", &h.uts_mode)?;
    if h.userns_mode.as_deref().is_some_and(|m| !matches!(m, "" | "host")) {
        return Err(ApiError::bad_request(format!(
            "invalid USER mode: {}",
            h.userns_mode.as_deref().unwrap_or_default()
        ))
        .with_field("HostConfig.UsernsMode"));
    }
    zero("HostConfig.ShmSize", &h.shm_size)?;
    empty_map("HostConfig.Sysctls", &h.sysctls)?;
    if h.isolation.as_ref().is_some_and(|i| !matches!(i.to_string().as_str(), "" | "default")) {
        return Err(refuse("HostConfig.Isolation"));
    }
    Ok(())
}

/// `Devices`: each path checked as the CLI's `--device` is (the daemon checks the node itself).
fn devices(h: &HostConfig) -> Result<Vec<berth_types::security::DeviceMapping>, ApiError> {
    let field = "HostConfig.Devices";
    h.devices
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|d| {
            let host = d.path_on_host.clone().unwrap_or_default();
            let inside =
                d.path_in_container.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| host.clone());
            let perms =
                d.cgroup_permissions.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "rwm".into());
            berth_types::security::parse_device(&format!("{host}:{inside}:{perms}"))
                .map_err(|e| ApiError::bad_request(e).with_field(field))
        })
        .collect()
}

/// `Ulimits`: `{Name, Soft, Hard}` with the CLI's checks.
fn ulimits(h: &HostConfig) -> Result<Vec<berth_types::security::Ulimit>, ApiError> {
    h.ulimits
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|u| {
            let name = u.name.clone().unwrap_or_default();
            let soft = u.soft.unwrap_or(0);
            let hard = u.hard.unwrap_or(soft);
            berth_types::security::parse_ulimit(&format!("{name}={soft}:{hard}"))
                .map_err(|e| ApiError::bad_request(e).with_field("HostConfig.Ulimits"))
        })
        .collect()
}

/// `Memory`, `NanoCpus` or `CpuQuota`/`CpuPeriod`, `PidsLimit` (0 and -1: no limit).
fn resources(h: &HostConfig) -> Result<Resources, ApiError> {
    let memory = match h.memory {
        None | Some(0) => None,
        Some(m) if m > 0 => Some(m as u64),
        Some(m) => {
            return Err(ApiError::bad_request(format!("invalid Memory {m}")).with_field("HostConfig.Memory"))
        }
    };
    let nano = h.nano_cpus.filter(|n| *n != 0);
    let quota = h.cpu_quota.filter(|q| *q > 0);
    if nano.is_some() && quota.is_some() {
        // Docker's own wording.
        return Err(ApiError::bad_request(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        )
        .with_field("HostConfig.NanoCpus"));
    }
    let cpus = match (nano, quota) {
        (Some(n), _) if n < 0 => {
            return Err(
                ApiError::bad_request(format!("invalid NanoCpus {n}")).with_field("HostConfig.NanoCpus")
            )
        }
        (Some(n), _) => Some(n as f64 / 1e9),
        (None, Some(q)) => {
            let period = h.cpu_period.filter(|p| *p > 0).unwrap_or(100_000);
            Some(q as f64 / period as f64)
        }
        (None, None) => None,
    };
    let pids_limit = h.pids_limit.filter(|p| *p > 0);
    Ok(Resources { memory, cpus, pids_limit })
}

fn restart_policy(policy: Option<&DockerRestart>) -> Result<RestartPolicy, ApiError> {
    let Some(policy) = policy else { return Ok(RestartPolicy::No) };
    let retries = policy.maximum_retry_count.unwrap_or(0);
    let name = policy.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
    let text = match name.as_str() {
        "on-failure" if retries > 0 => format!("on-failure:{retries}"),
        "" => "no".to_string(),
        other => other.to_string(),
    };
    if retries > 0 && name != "on-failure" {
        return Err(ApiError::bad_request(
            "invalid restart policy: maximum retry count can only be used with 'on-failure'",
        )
        .with_field("HostConfig.RestartPolicy"));
    }
    berth_types::parse::parse_restart(&text)
        .map_err(|e| ApiError::bad_request(e).with_field("HostConfig.RestartPolicy"))
}

/// `{"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}` → one binding per host port.
fn port_bindings(h: &HostConfig) -> Result<Vec<PortBinding>, ApiError> {
    let mut out = Vec::new();
    let Some(map) = &h.port_bindings else { return Ok(out) };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    for key in keys {
        let bad = || {
            ApiError::bad_request(format!("invalid port specification: {key:?}"))
                .with_field("HostConfig.PortBindings")
        };
        let (port, protocol) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
        let container_port: u16 = port.parse().map_err(|_| bad())?;
        let bindings: Vec<DockerPortBinding> = map[key].clone().unwrap_or_default();
        let bindings = if bindings.is_empty() { vec![DockerPortBinding::default()] } else { bindings };
        for binding in bindings {
            let host_ip = binding.host_ip.unwrap_or_default();
            let host_port = match binding.host_port.as_deref().unwrap_or("") {
                "" => 0,
                // A range: the CLI sends one per port unless asked for "any of"; berth binds the first.
                p => p.split('-').next().unwrap_or("").parse().map_err(|_| bad())?,
            };
            out.push(PortBinding { host_ip, host_port, container_port, protocol: protocol.to_string() });
        }
    }
    Ok(out)
}

/// `Healthcheck` in nanoseconds, as berth keeps it.
fn healthcheck(h: &DockerHealth) -> Result<HealthConfig, ApiError> {
    let nanos = |field: &str, v: Option<i64>| -> Result<u64, ApiError> {
        match v.unwrap_or(0) {
            n if n >= 0 => Ok(n as u64),
            n => Err(ApiError::bad_request(format!("{field} in Healthcheck cannot be negative: {n}"))
                .with_field(&format!("Healthcheck.{field}"))),
        }
    };
    Ok(HealthConfig {
        test: h.test.clone().unwrap_or_default(),
        interval: nanos("Interval", h.interval)?,
        timeout: nanos("Timeout", h.timeout)?,
        start_period: nanos("StartPeriod", h.start_period)?,
        start_interval: nanos("StartInterval", h.start_interval)?,
        retries: match h.retries.unwrap_or(0) {
            n if n >= 0 && n <= i64::from(u32::MAX) => n as u32,
            n => {
                return Err(ApiError::bad_request(format!("Retries in Healthcheck cannot be negative: {n}"))
                    .with_field("Healthcheck.Retries"))
            }
        },
    })
}

/// `NetworkingConfig.EndpointsConfig`: aliases and a fixed address on the network the
/// container joins.
fn networking(config: &mut ContainerConfig, body: &ContainerCreateBody) -> Result<(), ApiError> {
    let Some(endpoints) = body.networking_config.as_ref().and_then(|n| n.endpoints_config.as_ref()) else {
        return Ok(());
    };
    if endpoints.len() > 1 {
        return Err(refuse("NetworkingConfig.EndpointsConfig"));
    }
    let Some((network, endpoint)) = endpoints.iter().next() else { return Ok(()) };
    match &config.network {
        None => config.network = Some(network.clone()),
        Some(mode) if mode == network => {}
        Some(mode) => {
            return Err(ApiError::bad_request(format!(
                "container cannot be connected to network {network:?}: its network mode is {mode:?}"
            ))
            .with_field("NetworkingConfig.EndpointsConfig"))
        }
    }
    config.network_aliases = endpoint.aliases.clone().unwrap_or_default();
    config.ipv4_address = endpoint.ipam_config.as_ref().and_then(|i| non_empty(i.ipv4_address.clone()));
    Ok(())
}

/// `Binds`, `Mounts`, `Tmpfs`, and `Volumes` (the image-style anonymous volumes of the config),
/// in that order; Docker refuses two mounts on one target, and so does berth's validation.
fn mounts(h: &HostConfig, volumes: &[String]) -> Result<Vec<Mount>, ApiError> {
    let mut out = Vec::new();
    for bind in h.binds.iter().flatten() {
        let mount = berth_types::mount::parse_volume(bind)
            .map_err(|e| ApiError::bad_request(e.to_string()).with_field("HostConfig.Binds"))?;
        out.push(mount);
    }
    for m in h.mounts.iter().flatten() {
        out.push(mount(m)?);
    }
    if let Some(tmpfs) = &h.tmpfs {
        let mut targets: Vec<(&String, &String)> = tmpfs.iter().collect();
        targets.sort();
        for (target, options) in targets {
            let spec = if options.is_empty() { target.clone() } else { format!("{target}:{options}") };
            let mount = berth_types::mount::parse_tmpfs(&spec)
                .map_err(|e| ApiError::bad_request(e.to_string()).with_field("HostConfig.Tmpfs"))?;
            out.push(mount);
        }
    }
    for target in volumes {
        if !out.iter().any(|m| m.target == *target) {
            let mount = berth_types::mount::parse_volume(target)
                .map_err(|e| ApiError::bad_request(e.to_string()).with_field("Volumes"))?;
            out.push(mount);
        }
    }
    berth_types::mount::validate_mounts(&out)
        .map_err(|e| ApiError::bad_request(e.to_string()).with_field("HostConfig.Mounts"))
}

fn mount(m: &DockerMount) -> Result<Mount, ApiError> {
    let field = "HostConfig.Mounts";
    let mount_type = match m.typ {
        Some(DockerMountType::BIND) => MountType::Bind,
        Some(DockerMountType::VOLUME) | None => MountType::Volume,
        Some(DockerMountType::TMPFS) => MountType::Tmpfs,
        Some(other) => {
            return Err(ApiError::bad_request(format!("mount type {other} is not supported by berth"))
                .with_field(field))
        }
    };
    let mut propagation = None;
    if let Some(bind) = &m.bind_options {
        if bind.non_recursive == Some(true) {
            return Err(refuse("HostConfig.Mounts.BindOptions"));
        }
        // Checked with the other mounts' fields by validate_mounts.
        propagation =
            bind.propagation.as_ref().map(|p| p.to_string()).filter(|p| !p.is_empty() && p != "rprivate");
    }
    if let Some(volume) = &m.volume_options {
        if volume
            .driver_config
            .as_ref()
            .and_then(|d| d.name.as_deref())
            .is_some_and(|d| !d.is_empty() && d != "local")
        {
            return Err(refuse("HostConfig.Mounts.VolumeOptions.DriverConfig"));
        }
    }
    let tmpfs_size = m.tmpfs_options.as_ref().and_then(|t| t.size_bytes).filter(|s| *s > 0).map(|s| s as u64);
    let create_mountpoint = m.bind_options.as_ref().and_then(|b| b.create_mountpoint).unwrap_or(false);
    Ok(Mount {
        mount_type,
        source: m.source.clone().unwrap_or_default(),
        target: m.target.clone().unwrap_or_default(),
        read_only: m.read_only.unwrap_or(false),
        tmpfs_size,
        create_mountpoint,
        propagation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: serde_json::Value) -> ContainerCreateBody {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn translates_what_the_cli_sends() {
        let b = body(serde_json::json!({
            "Image": "busybox", "Cmd": ["sh", "-c", "true"], "Env": ["A=1"], "Tty": true,
            "Entrypoint": [""], "ExposedPorts": {"80/tcp": {}}, "Volumes": {"/data": {}},
            "Labels": {"a": "b"}, "StopTimeout": 3,
            "HostConfig": {
                "Binds": ["/srv:/srv:ro"], "NetworkMode": "default", "Memory": 67108864,
                "NanoCpus": 500000000, "PidsLimit": 0, "Privileged": false, "CapAdd": null,
                "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]},
                "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2},
                "Tmpfs": {"/run": "size=1m"}, "AutoRemove": true, "MemorySwap": 0,
                "LogConfig": {"Type": "", "Config": {}}
            }
        }));
        let c = container_config(Some("web".into()), b).unwrap();
        assert_eq!(c.image, "busybox");
        assert_eq!(c.name.as_deref(), Some("web"));
        assert_eq!(c.entrypoint, Some(vec![]));
        assert!(c.tty && c.auto_remove);
        assert_eq!(c.network, None);
        assert_eq!(c.resources, Resources { memory: Some(64 << 20), cpus: Some(0.5), pids_limit: None });
        assert_eq!(c.restart_policy, RestartPolicy::OnFailure { max_retries: 2 });
        assert_eq!(c.ports[0].host_port, 8080);
        assert_eq!(c.ports[0].host_ip, "127.0.0.1");
        assert_eq!(c.expose, ["80/tcp"]);
        let targets: Vec<&str> = c.mounts.iter().map(|m| m.target.as_str()).collect();
        assert_eq!(targets, ["/srv", "/run", "/data"]);
        assert_eq!(c.stop_timeout, Some(3));
    }

    #[test]
    fn security_fields() {
        let json = serde_json::json!({"Image": "b", "HostConfig": {
            "Privileged": true, "SecurityOpt": ["no-new-privileges", "seccomp=unconfined"],
            "CapAdd": ["NET_ADMIN"], "CapDrop": ["ALL"], "ReadonlyRootfs": true, "PidsLimit": 20,
            "Devices": [{"PathOnHost": "/dev/fuse", "PathInContainer": "", "CgroupPermissions": "rwm"}],
            "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]}});
        let c = container_config(None, body(json)).unwrap();
        assert!(c.privileged && c.read_only);
        assert_eq!(c.security_opt, ["no-new-privileges", "seccomp=unconfined"]);
        assert_eq!(
            (c.cap_add.as_slice(), c.cap_drop.as_slice()),
            (&["NET_ADMIN".to_string()][..], &["ALL".to_string()][..])
        );
        assert_eq!(c.resources.pids_limit, Some(20));
        assert_eq!(c.devices[0].path_in_container, "/dev/fuse");
        assert_eq!(
            (c.ulimits[0].name.as_str(), c.ulimits[0].soft, c.ulimits[0].hard),
            ("nofile", 1024, 2048)
        );
    }

    #[test]
    fn refuses_what_it_does_not_implement() {
        for (json, field) in [
            (serde_json::json!({"Image": "b", "HostConfig": {"PidMode": "host"}}), "HostConfig.PidMode"),
            (
                serde_json::json!({"Image": "b", "HostConfig": {"UsernsMode": "private"}}),
                "HostConfig.UsernsMode",
            ),
            (
                serde_json::json!({"Image": "b", "HostConfig": {"Devices": [{"PathOnHost": "dev/sda"}]}}),
                "HostConfig.Devices",
            ),
            (
                serde_json::json!({"Image": "b", "HostConfig": {"Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 5}]}}),
                "HostConfig.Ulimits",
            ),
            (
                serde_json::json!({"Image": "b", "HostConfig": {"LogConfig": {"Type": "syslog"}}}),
                "HostConfig.LogConfig",
            ),
            (serde_json::json!({"Image": "b", "HostConfig": {"MemorySwap": 1000}}), "HostConfig.MemorySwap"),
            (
                serde_json::json!({"Image": "b", "HostConfig": {"Mounts": [{"Type": "bind", "Source": "/a", "Target": "/b", "BindOptions": {"NonRecursive": true}}]}}),
                "HostConfig.Mounts.BindOptions",
            ),
            (
                serde_json::json!({"Image": "b", "NetworkingConfig": {"EndpointsConfig": {"a": {}, "b": {}}}}),
                "NetworkingConfig.EndpointsConfig",
            ),
            (serde_json::json!({}), "Image"),
        ] {
            let e = container_config(None, body(json.clone())).unwrap_err();
            assert_eq!(e.status, 400, "{json}");
            assert_eq!(e.field.as_deref(), Some(field), "{json}: {}", e.message);
        }
        let e = container_config(
            None,
            body(serde_json::json!({"Image": "b", "HostConfig": {"Binds": ["relative:"]}})),
        )
        .unwrap_err();
        assert_eq!(e.status, 400);
    }

    #[test]
    fn groups_paths_and_propagation_are_translated() {
        let b = body(serde_json::json!({
            "Image": "busybox",
            "HostConfig": {
                "GroupAdd": ["audio", "1234"],
                "MaskedPaths": [],
                "ReadonlyPaths": ["/proc/sys"],
                "Binds": ["/srv:/srv:rshared"],
                "Mounts": [{"Type": "bind", "Source": "/a", "Target": "/b", "BindOptions": {"Propagation": "rslave"}}]
            }
        }));
        let c = container_config(None, b).unwrap();
        assert_eq!(c.group_add, ["audio", "1234"]);
        // [] is none (the CLI's systempaths=unconfined); absent keeps the defaults.
        assert_eq!(c.masked_paths, Some(vec![]));
        assert_eq!(c.readonly_paths, Some(vec!["/proc/sys".to_string()]));
        let modes: Vec<Option<&str>> = c.mounts.iter().map(|m| m.propagation.as_deref()).collect();
        assert_eq!(modes, [Some("rshared"), Some("rslave")]);
        let c = container_config(None, body(serde_json::json!({"Image": "busybox"}))).unwrap();
        assert_eq!((c.masked_paths, c.readonly_paths), (None, None));
        // Propagation is a bind's: on a volume it is refused.
        let e = container_config(
            None,
            body(serde_json::json!({"Image": "b", "HostConfig": {"Binds": ["data:/data:rshared"]}})),
        )
        .unwrap_err();
        assert_eq!(e.status, 400, "{}", e.message);
    }

    /// Users learn what is refused from the README: every refused field is listed there.
    #[test]
    fn the_readme_lists_every_refused_field() {
        let readme = include_str!("../../../../README.md");
        for field in REFUSED_FIELDS {
            assert!(readme.contains(field), "README.md does not list {field}");
        }
    }

    #[test]
    fn the_endpoint_names_the_network() {
        let b = body(serde_json::json!({
            "Image": "busybox",
            "NetworkingConfig": {"EndpointsConfig": {"app": {"Aliases": ["db"], "IPAMConfig": {"IPv4Address": "10.1.0.9"}}}}
        }));
        let c = container_config(None, b).unwrap();
        assert_eq!(c.network.as_deref(), Some("app"));
        assert_eq!(c.network_aliases, ["db"]);
        assert_eq!(c.ipv4_address.as_deref(), Some("10.1.0.9"));
    }
}
