//! The run form's ports, mounts, network and health check: what the user typed in each row,
//! checked with Docker's rules (and Docker's wording where it has one) before anything is
//! sent. Pure functions, unit-tested natively.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use berth_types::format::parse_go_duration_ns;
use berth_types::health::HealthConfig;
use berth_types::mount::validate_mounts;
use berth_types::network::PortBinding;
use berth_types::volume::{Mount, MountType};

use crate::forms::{parse_memory, FieldErrors};

/// One `-p` row as typed.
#[derive(Debug, Clone, PartialEq)]
pub struct PortRow {
    /// Empty: every address (0.0.0.0).
    pub host_ip: String,
    /// Empty: a free port the kernel picks. A range (`8000-8001`) matches a container range.
    pub host_port: String,
    pub container_port: String,
    /// `tcp` or `udp`.
    pub protocol: String,
}

impl Default for PortRow {
    fn default() -> PortRow {
        PortRow {
            host_ip: String::new(),
            host_port: String::new(),
            container_port: String::new(),
            protocol: "tcp".into(),
        }
    }
}

/// One mount row as typed (`--mount type=...,source=...,target=...`).
#[derive(Debug, Clone, PartialEq)]
pub struct MountRow {
    /// `volume`, `bind` or `tmpfs`.
    pub kind: String,
    /// Volume name (empty: a new anonymous volume) or host path; tmpfs: its size (`64m`).
    pub source: String,
    pub target: String,
    pub read_only: bool,
}

impl Default for MountRow {
    fn default() -> MountRow {
        MountRow { kind: "volume".into(), source: String::new(), target: String::new(), read_only: false }
    }
}

/// The health check fields as typed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthFields {
    /// `--health-cmd`, run by the container's shell (CMD-SHELL).
    pub command: String,
    pub interval: String,
    pub timeout: String,
    pub start_period: String,
    pub retries: String,
    /// `--no-healthcheck`.
    pub disable: bool,
}

/// The network fields as typed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetworkFields {
    /// Empty: the daemon's default; `none`, `host`, `bridge` or a user network's name.
    pub network: String,
    /// `--network-alias`, separated by commas or spaces.
    pub aliases: String,
    /// `--ip`.
    pub ip: String,
}

/// `80` or `8000-8010` → the ports; `None` for anything else (0 included: no container
/// listens on port 0).
fn port_range(text: &str) -> Option<Vec<u16>> {
    let (start, end) = match text.split_once('-') {
        Some((a, b)) => (a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?),
        None => {
            let p = text.trim().parse::<u16>().ok()?;
            (p, p)
        }
    };
    (start >= 1 && end >= start).then(|| (start..=end).collect())
}

/// The port rows as bindings, one per port (ranges expanded, as the CLI does); errors name the
/// row (`port row 2: ...`).
pub fn ports(rows: &[PortRow], network: &str, errors: &mut FieldErrors) -> Vec<PortBinding> {
    let mut bindings = Vec::new();
    let mut taken = BTreeSet::new();
    let used: Vec<(usize, &PortRow)> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            !(r.host_ip.trim().is_empty()
                && r.host_port.trim().is_empty()
                && r.container_port.trim().is_empty())
        })
        .map(|(i, r)| (i + 1, r))
        .collect();
    if !used.is_empty() && matches!(network, "none" | "host") {
        errors.push((
            "ports",
            format!("conflicting options: port publishing and the {network} network (the container has no ports of its own to publish)"),
        ));
        return bindings;
    }
    for (n, row) in used {
        let mut fail = |message: String| errors.push(("ports", format!("port row {n}: {message}")));
        let protocol = row.protocol.trim().to_ascii_lowercase();
        if !matches!(protocol.as_str(), "tcp" | "udp") {
            fail(format!("invalid proto: {protocol}"));
            continue;
        }
        let host_ip = row.host_ip.trim();
        if !host_ip.is_empty() && host_ip.parse::<IpAddr>().is_err() {
            fail(format!("invalid IP address: {host_ip}"));
            continue;
        }
        let container_text = row.container_port.trim();
        let Some(container) = port_range(container_text).filter(|_| !container_text.is_empty()) else {
            fail(if container_text.is_empty() {
                "the container port is required".into()
            } else {
                format!("invalid containerPort: {container_text}")
            });
            continue;
        };
        let host_text = row.host_port.trim();
        let host: Vec<u16> = if host_text.is_empty() {
            vec![0; container.len()]
        } else {
            match port_range(host_text) {
                Some(h) if h.len() == container.len() => h,
                Some(_) if container.len() == 1 => {
                    // Docker allows `-p 8000-8010:80` (the first free port of the range); berth's
                    // API takes exact ports, so the form asks for one.
                    fail("a host port range needs a container range of the same length".into());
                    continue;
                }
                Some(_) => {
                    fail("Invalid ranges specified for container and host Ports".into());
                    continue;
                }
                None => {
                    fail(format!("invalid hostPort: {host_text}"));
                    continue;
                }
            }
        };
        for (h, c) in host.into_iter().zip(container) {
            if h != 0 && !taken.insert((host_ip.to_owned(), h, protocol.clone())) {
                fail(format!("host port {h}/{protocol} is published twice"));
                break;
            }
            bindings.push(PortBinding {
                host_ip: host_ip.to_owned(),
                host_port: h,
                container_port: c,
                protocol: protocol.clone(),
            });
        }
    }
    bindings
}

/// The mount rows as mounts, checked with the daemon's own rules ([`validate_mounts`], Docker's
/// wording); errors name the row (`mount row 2: ...`).
pub fn mounts(rows: &[MountRow], errors: &mut FieldErrors) -> Vec<Mount> {
    let mut result: Vec<Mount> = Vec::new();
    for (n, row) in rows.iter().enumerate().map(|(i, r)| (i + 1, r)) {
        let source = row.source.trim();
        let target = row.target.trim();
        if source.is_empty() && target.is_empty() {
            continue;
        }
        let mut fail = |message: String| errors.push(("mounts", format!("mount row {n}: {message}")));
        let mount_type = match row.kind.as_str() {
            "volume" => MountType::Volume,
            "bind" => MountType::Bind,
            "tmpfs" => MountType::Tmpfs,
            other => {
                fail(format!("invalid mount type {other:?}: volume, bind or tmpfs"));
                continue;
            }
        };
        // A tmpfs row's source field holds its size.
        let (source, tmpfs_size) = match mount_type {
            MountType::Tmpfs if source.is_empty() => (String::new(), None),
            MountType::Tmpfs => match parse_memory(source) {
                Some(bytes) if bytes > 0 => (String::new(), Some(bytes)),
                _ => {
                    fail(format!("invalid tmpfs size {source:?}: a size like 64m"));
                    continue;
                }
            },
            _ => (source.to_owned(), None),
        };
        let mount = Mount {
            mount_type,
            source,
            target: target.to_owned(),
            read_only: row.read_only,
            tmpfs_size,
            // As `--mount` (not `-v`): a missing host path is an error, not a new directory.
            create_mountpoint: false,
            propagation: None,
        };
        // The rows so far (already checked) with this one: an error is this row's, a mount point
        // used twice included.
        let mut candidate = result.clone();
        candidate.push(mount);
        match validate_mounts(&candidate) {
            Ok(checked) => result = checked,
            Err(e) => fail(e.message),
        }
    }
    result
}

/// The health check, `None` when nothing was typed (the image's own check applies).
pub fn health(fields: &HealthFields, errors: &mut FieldErrors) -> Option<HealthConfig> {
    let any_set = [&fields.command, &fields.interval, &fields.timeout, &fields.start_period, &fields.retries]
        .iter()
        .any(|f| !f.trim().is_empty());
    if fields.disable {
        if any_set {
            errors.push(("health", "--no-healthcheck conflicts with --health-* options".into()));
            return None;
        }
        return Some(HealthConfig { test: vec!["NONE".into()], ..HealthConfig::default() });
    }
    if !any_set {
        return None;
    }
    let mut duration = |text: &str, flag: &str| -> u64 {
        let text = text.trim();
        if text.is_empty() {
            return 0;
        }
        match parse_go_duration_ns(text) {
            Some(ns) if ns < 0 => {
                errors.push(("health", format!("--health-{flag} cannot be negative")));
                0
            }
            Some(ns) if ns < 1_000_000 => {
                errors.push(("health", format!("--health-{flag} cannot be less than 1ms")));
                0
            }
            Some(ns) => ns as u64,
            None => {
                errors.push((
                    "health",
                    format!("--health-{flag}: {text:?} is not a duration like 30s or 1m30s"),
                ));
                0
            }
        }
    };
    let interval = duration(&fields.interval, "interval");
    let timeout = duration(&fields.timeout, "timeout");
    let start_period = duration(&fields.start_period, "start-period");
    let retries = match fields.retries.trim() {
        "" => 0,
        text => match text.parse::<i64>() {
            Ok(n) if n < 0 => {
                errors.push(("health", "--health-retries cannot be negative".into()));
                0
            }
            Ok(n) => u32::try_from(n).unwrap_or(u32::MAX),
            Err(_) => {
                errors.push(("health", format!("--health-retries: {text:?} is not a whole number")));
                0
            }
        },
    };
    let command = fields.command.trim();
    let test = if command.is_empty() { Vec::new() } else { vec!["CMD-SHELL".into(), command.to_owned()] };
    Some(HealthConfig { test, interval, timeout, start_period, start_interval: 0, retries })
}

/// The network choice: (network, aliases, fixed IPv4 address).
pub fn network(
    fields: &NetworkFields,
    errors: &mut FieldErrors,
) -> (Option<String>, Vec<String>, Option<String>) {
    let network = fields.network.trim();
    let user_defined =
        !matches!(network, "" | "bridge" | "none" | "host") && !network.starts_with("container:");
    let aliases: Vec<String> = fields
        .aliases
        .split([',', ' '])
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    if !aliases.is_empty() && !user_defined {
        errors.push((
            "network_aliases",
            "network-scoped aliases are only supported for user-defined networks".into(),
        ));
    }
    for alias in &aliases {
        if !alias.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            errors.push(("network_aliases", format!("{alias:?} is not a DNS name: letters, digits, - _ .")));
        }
    }
    let ip = fields.ip.trim();
    let ip = if ip.is_empty() {
        None
    } else if ip.parse::<Ipv4Addr>().is_err() {
        errors.push(("ip", format!("invalid IPv4 address: {ip}")));
        None
    } else if !user_defined {
        errors.push(("ip", "user specified IP address is supported on user defined networks only".into()));
        None
    } else {
        Some(ip.to_owned())
    };
    ((!network.is_empty()).then(|| network.to_owned()), aliases, ip)
}

/// The request fields a daemon's refusal may name (`ContainerConfig`'s JSON names, a nested one
/// with a dot), and the form fields they are shown under.
pub const SERVER_FIELDS: &[(&str, &str)] = &[
    ("image", "image"),
    ("name", "name"),
    ("cmd", "command"),
    ("env", "env"),
    ("labels", "labels"),
    ("resources.memory", "memory"),
    ("resources.cpus", "cpus"),
    ("resources.pids_limit", "pids"),
    ("restart_policy", "restart"),
    ("auto_remove", "restart"),
    ("ports", "ports"),
    ("publish_all", "ports"),
    ("mounts", "mounts"),
    ("network", "network"),
    ("network_aliases", "network_aliases"),
    ("ipv4_address", "ip"),
    ("healthcheck", "health"),
    ("cap_add", "cap_add"),
    ("cap_drop", "cap_drop"),
    ("devices", "devices"),
    ("ulimits", "ulimits"),
    ("security_opt", "seccomp"),
    ("userns_mode", "userns"),
];

/// Which form field a daemon's refusal is about, from its words, so that it is shown next to
/// that field (for a daemon that names none).
pub fn field_of_server_error(message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    if m.contains("port") && (m.contains("allocated") || m.contains("bind for") || m.contains("publish")) {
        "ports"
    } else if m.contains("volume") || m.contains("mount") || m.contains("bind source") {
        "mounts"
    } else if m.contains("user namespace") || m.contains("usernsmode") || m.contains("user mode") {
        "userns"
    } else if m.contains("seccomp") || m.contains("security-opt") {
        "seccomp"
    } else if m.contains("capabilit") {
        "cap_add"
    } else if m.contains("ulimit") {
        "ulimits"
    } else if m.contains("device") {
        "devices"
    } else if m.contains("health") {
        "health"
    } else if m.contains("alias") {
        "network_aliases"
    } else if m.contains("ip address") || m.contains("ipv4") {
        "ip"
    } else if m.contains("network") {
        "network"
    } else if m.contains("no such image") || m.contains("reference") {
        "image"
    } else if m.contains("name") && (m.contains("in use") || m.contains("conflict")) {
        "name"
    } else {
        "form"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(host: &str, container: &str) -> PortRow {
        PortRow { host_port: host.into(), container_port: container.into(), ..PortRow::default() }
    }

    fn mount(kind: &str, source: &str, target: &str) -> MountRow {
        MountRow { kind: kind.into(), source: source.into(), target: target.into(), read_only: false }
    }

    #[test]
    fn ports_follow_dockers_rules() {
        let mut errors = FieldErrors::new();
        let rows = [
            port("8080", "80"),
            port("", "53"),
            PortRow { protocol: "udp".into(), host_ip: "127.0.0.1".into(), ..port("5353", "53") },
            port("9000-9001", "90-91"),
            PortRow::default(),
        ];
        let b = ports(&rows, "", &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(b.len(), 5);
        assert_eq!((b[0].host_port, b[0].container_port, b[0].protocol.as_str()), (8080, 80, "tcp"));
        assert_eq!(b[1].host_port, 0, "an empty host port picks a free one");
        assert_eq!((b[2].host_ip.as_str(), b[2].protocol.as_str()), ("127.0.0.1", "udp"));
        assert_eq!((b[4].host_port, b[4].container_port), (9001, 91));

        let bad = [
            port("8080", ""),
            port("8080", "0"),
            port("70000", "80"),
            port("1-3", "1-2"),
            PortRow { host_ip: "300.1.1.1".into(), ..port("1", "1") },
            PortRow { protocol: "sctp".into(), ..port("1", "1") },
            port("8080", "81"),
        ];
        let mut errors = FieldErrors::new();
        ports(&bad, "", &mut errors);
        let messages: Vec<&str> = errors
            .iter()
            .map(|(f, m)| {
                assert_eq!(*f, "ports");
                m.as_str()
            })
            .collect();
        assert_eq!(messages.len(), 6, "{messages:?}");
        assert_eq!(messages[0], "port row 1: the container port is required");
        assert_eq!(messages[1], "port row 2: invalid containerPort: 0");
        assert_eq!(messages[2], "port row 3: invalid hostPort: 70000");
        assert!(messages[3].contains("Invalid ranges"));
        assert!(messages[4].contains("invalid IP address"));
        assert!(messages[5].contains("invalid proto: sctp"));

        let mut errors = FieldErrors::new();
        ports(&[port("8080", "80"), port("8080", "81")], "", &mut errors);
        assert_eq!(errors[0].1, "port row 2: host port 8080/tcp is published twice");
        let mut errors = FieldErrors::new();
        ports(&[port("8080", "80")], "none", &mut errors);
        assert!(errors[0].1.starts_with("conflicting options"));
    }

    #[test]
    fn mounts_follow_dockers_rules() {
        let mut errors = FieldErrors::new();
        let rows = [
            mount("volume", "data", "/data/"),
            mount("volume", "", "/anon"),
            MountRow { read_only: true, ..mount("bind", "/srv/site", "/usr/share/site") },
            mount("tmpfs", "64m", "/tmp"),
            mount("volume", "", ""),
        ];
        let m = mounts(&rows, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(m.len(), 4);
        assert_eq!((m[0].source.as_str(), m[0].target.as_str()), ("data", "/data"));
        assert_eq!(m[1].source, "", "an empty name is an anonymous volume");
        assert!(m[2].read_only && m[2].mount_type == MountType::Bind);
        assert_eq!(
            (m[3].mount_type, m[3].tmpfs_size, m[3].source.as_str()),
            (MountType::Tmpfs, Some(64 << 20), "")
        );

        let bad = [
            mount("volume", "data", "relative"),
            mount("volume", "data", "/"),
            mount("bind", "", "/x"),
            mount("bind", "srv", "/y"),
            mount("volume", "my vol", "/z"),
            mount("tmpfs", "lots", "/t"),
            mount("volume", "a1", "/d"),
            mount("volume", "a2", "/d"),
        ];
        let mut errors = FieldErrors::new();
        mounts(&bad, &mut errors);
        let messages: Vec<&str> = errors.iter().map(|(_, m)| m.as_str()).collect();
        assert_eq!(messages.len(), 7, "{messages:?}");
        assert!(messages[0].contains("mount path must be absolute"));
        assert!(messages[1].contains("destination can't be '/'"));
        assert!(messages[2].contains("field Source must not be empty"));
        assert!(messages[3].contains("'srv' mount path must be absolute"));
        assert!(messages[4].contains("invalid characters for a local volume name"));
        assert!(messages[5].contains("invalid tmpfs size"));
        assert_eq!(messages[6], "mount row 8: Duplicate mount point: /d");
    }

    #[test]
    fn health_check_fields() {
        let mut errors = FieldErrors::new();
        assert_eq!(health(&HealthFields::default(), &mut errors), None);
        let h = health(
            &HealthFields {
                command: "wget -q -O- localhost".into(),
                interval: "5s".into(),
                retries: "2".into(),
                ..HealthFields::default()
            },
            &mut errors,
        )
        .unwrap();
        assert!(errors.is_empty());
        assert_eq!(h.test, ["CMD-SHELL", "wget -q -O- localhost"]);
        assert_eq!((h.interval, h.retries, h.timeout), (5_000_000_000, 2, 0));
        let none = health(&HealthFields { disable: true, ..HealthFields::default() }, &mut errors).unwrap();
        assert_eq!(none.test, ["NONE"]);

        let mut errors = FieldErrors::new();
        health(
            &HealthFields {
                command: "true".into(),
                interval: "10".into(),
                timeout: "1us".into(),
                retries: "-1".into(),
                ..HealthFields::default()
            },
            &mut errors,
        );
        let messages: Vec<&str> = errors.iter().map(|(_, m)| m.as_str()).collect();
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(messages[0].contains("not a duration"));
        assert_eq!(messages[1], "--health-timeout cannot be less than 1ms");
        assert_eq!(messages[2], "--health-retries cannot be negative");
        let mut errors = FieldErrors::new();
        health(
            &HealthFields { disable: true, interval: "1s".into(), ..HealthFields::default() },
            &mut errors,
        );
        assert!(errors[0].1.contains("conflicts"));
    }

    #[test]
    fn network_fields() {
        let mut errors = FieldErrors::new();
        let fields =
            NetworkFields { network: "backend".into(), aliases: "db, cache".into(), ip: "172.30.0.9".into() };
        assert_eq!(
            network(&fields, &mut errors),
            (Some("backend".into()), vec!["db".to_owned(), "cache".to_owned()], Some("172.30.0.9".into()))
        );
        assert!(errors.is_empty());
        assert_eq!(network(&NetworkFields::default(), &mut errors), (None, vec![], None));
        let fields = NetworkFields { network: "bridge".into(), aliases: "db".into(), ip: "10.0.0.2".into() };
        network(&fields, &mut errors);
        let fields = NetworkFields { network: "backend".into(), aliases: "a b!".into(), ip: "10.0.0".into() };
        network(&fields, &mut errors);
        let fields: Vec<&str> = errors.iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["network_aliases", "ip", "network_aliases", "ip"]);
    }

    #[test]
    fn server_errors_land_on_their_field() {
        assert_eq!(field_of_server_error("Bind for 0.0.0.0:8080 failed: port is already allocated"), "ports");
        assert_eq!(field_of_server_error("remove data: volume is in use - [abc]"), "mounts");
        assert_eq!(field_of_server_error("network backend not found"), "network");
        assert_eq!(field_of_server_error("No such image: nope:latest"), "image");
        assert_eq!(
            field_of_server_error(
                "Conflict. The container name \"/web\" is already in use by container \"ab\""
            ),
            "name"
        );
        assert_eq!(field_of_server_error("something else"), "form");
        assert_eq!(
            field_of_server_error("privileged mode is incompatible with user namespaces.  You must run the container in the host namespace when running privileged mode"),
            "userns"
        );
        assert_eq!(field_of_server_error("Decoding seccomp profile failed: EOF"), "seccomp");
        assert_eq!(field_of_server_error("invalid ulimit type: bogus"), "ulimits");
    }
}
