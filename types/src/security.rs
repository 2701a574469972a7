//! A container's security and host-access options as they travel: `--device`, `--ulimit`, and
//! the parsers the CLI, compose and the Docker API share, with Docker's wording for bad values.

use serde::{Deserialize, Serialize};

/// `--device HOST[:CONTAINER[:PERMS]]`: a host device node made in the container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct DeviceMapping {
    pub path_on_host: String,
    /// The host path when empty.
    pub path_in_container: String,
    /// Any of `r`, `w`, `m` (read, write, mknod); `rwm` when empty.
    pub cgroup_permissions: String,
}

/// `--ulimit NAME=SOFT[:HARD]`; -1 is unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct Ulimit {
    /// `nofile`, `nproc`, `core`, ...
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// The names `--ulimit` takes (the resources of setrlimit(2), lowercase, without `RLIMIT_`).
pub const ULIMIT_NAMES: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// `rwm`, `r`, `mw`, ...: each of r, w, m at most once.
pub fn valid_device_mode(mode: &str) -> bool {
    !mode.is_empty()
        && mode.len() <= 3
        && mode.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
        && mode.chars().enumerate().all(|(i, c)| !mode[..i].contains(c))
}

/// Parses `--device`, as Docker's CLI does.
pub fn parse_device(spec: &str) -> Result<DeviceMapping, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, mut dst, mut perms) = (parts[0], "", "rwm");
    match parts.len() {
        1 => {}
        2 if valid_device_mode(parts[1]) => perms = parts[1],
        2 => dst = parts[1],
        3 => {
            dst = parts[1];
            perms = parts[2];
        }
        _ => return Err(format!("invalid device specification: {spec}")),
    }
    if !valid_device_mode(perms) {
        return Err(format!("invalid device mode: {perms}"));
    }
    for path in [src, dst] {
        if !path.is_empty() && !path.starts_with('/') {
            return Err(format!("bad format for path: {path}"));
        }
    }
    if src.is_empty() {
        return Err(format!("bad format for path: {spec}"));
    }
    Ok(DeviceMapping {
        path_on_host: src.to_string(),
        path_in_container: if dst.is_empty() { src } else { dst }.to_string(),
        cgroup_permissions: perms.to_string(),
    })
}

/// Parses `--ulimit NAME=SOFT[:HARD]`, as Docker's CLI does (HARD is SOFT when omitted).
pub fn parse_ulimit(spec: &str) -> Result<Ulimit, String> {
    let Some((name, values)) = spec.split_once('=') else {
        return Err(format!("invalid ulimit argument: {spec}"));
    };
    if !ULIMIT_NAMES.contains(&name) {
        return Err(format!("invalid ulimit type: {name}"));
    }
    let number = |v: &str| -> Result<i64, String> {
        v.parse::<i64>().map_err(|_| format!("invalid ulimit argument: {spec}"))
    };
    let (soft, hard) = match values.split_once(':') {
        Some((s, h)) => (number(s)?, number(h)?),
        None => (number(values)?, number(values)?),
    };
    if soft < -1 || hard < -1 {
        return Err(format!("invalid ulimit argument: {spec}"));
    }
    let limit = |v: i64| if v == -1 { u64::MAX } else { v as u64 };
    if limit(soft) > limit(hard) {
        return Err(format!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"));
    }
    Ok(Ulimit { name: name.to_string(), soft, hard })
}

/// Checks `--security-opt` values as Docker's daemon does: `no-new-privileges[=BOOL]`,
/// `seccomp=unconfined|builtin|PROFILE` (the profile's JSON content), `apparmor=...` and
/// `label=...` / `label:...` (accepted; berth applies no LSM profile). Returns the
/// no_new_privs setting and the seccomp value, if any.
pub fn parse_security_opts(opts: &[String]) -> Result<SecurityOpts, String> {
    let mut out = SecurityOpts::default();
    for opt in opts {
        if opt == "no-new-privileges" {
            out.no_new_privileges = true;
            continue;
        }
        if opt == "disable" {
            continue;
        }
        let split = if opt.contains('=') { opt.split_once('=') } else { opt.split_once(':') };
        let Some((key, value)) = split else {
            return Err(format!("invalid --security-opt 1: {opt:?}"));
        };
        match key {
            "label" | "apparmor" => {}
            "seccomp" => out.seccomp = Some(value.to_string()),
            "no-new-privileges" => {
                out.no_new_privileges =
                    parse_go_bool(value).ok_or_else(|| format!("invalid --security-opt 2: {opt:?}"))?;
            }
            _ => return Err(format!("invalid --security-opt 2: {opt:?}")),
        }
    }
    Ok(out)
}

/// What `--security-opt` asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityOpts {
    pub no_new_privileges: bool,
    /// `unconfined`, `builtin` (the default) or a profile's JSON.
    pub seccomp: Option<String>,
}

/// Go's strconv.ParseBool.
fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices() {
        let d = parse_device("/dev/fuse").unwrap();
        assert_eq!((d.path_in_container.as_str(), d.cgroup_permissions.as_str()), ("/dev/fuse", "rwm"));
        let d = parse_device("/dev/sda:/dev/xvda:r").unwrap();
        assert_eq!(
            (d.path_on_host.as_str(), d.path_in_container.as_str(), d.cgroup_permissions.as_str()),
            ("/dev/sda", "/dev/xvda", "r")
        );
        assert_eq!(parse_device("/dev/null:rw").unwrap().cgroup_permissions, "rw");
        assert_eq!(parse_device("/dev/null:/x:rwx").unwrap_err(), "invalid device mode: rwx");
        assert_eq!(parse_device("a:b:c:d").unwrap_err(), "invalid device specification: a:b:c:d");
        assert_eq!(parse_device("dev/null").unwrap_err(), "bad format for path: dev/null");
    }

    #[test]
    fn ulimits() {
        assert_eq!(
            parse_ulimit("nofile=1024:2048").unwrap(),
            Ulimit { name: "nofile".into(), soft: 1024, hard: 2048 }
        );
        assert_eq!(parse_ulimit("nproc=10").unwrap(), Ulimit { name: "nproc".into(), soft: 10, hard: 10 });
        assert_eq!(parse_ulimit("core=-1").unwrap().hard, -1);
        assert_eq!(parse_ulimit("bogus=1").unwrap_err(), "invalid ulimit type: bogus");
        assert_eq!(parse_ulimit("nofile").unwrap_err(), "invalid ulimit argument: nofile");
        assert_eq!(
            parse_ulimit("nofile=10:5").unwrap_err(),
            "ulimit soft limit must be less than or equal to hard limit: 10 > 5"
        );
    }

    #[test]
    fn security_opts() {
        let o = parse_security_opts(&["no-new-privileges".into(), "seccomp=unconfined".into()]).unwrap();
        assert!(o.no_new_privileges && o.seccomp.as_deref() == Some("unconfined"));
        assert!(!parse_security_opts(&["no-new-privileges=false".into()]).unwrap().no_new_privileges);
        assert!(parse_security_opts(&["no-new-privileges:true".into()]).unwrap().no_new_privileges);
        assert_eq!(parse_security_opts(&["x".into()]).unwrap_err(), r#"invalid --security-opt 1: "x""#);
        assert_eq!(
            parse_security_opts(&["foo=bar".into()]).unwrap_err(),
            r#"invalid --security-opt 2: "foo=bar""#
        );
        assert_eq!(
            parse_security_opts(&["no-new-privileges=maybe".into()]).unwrap_err(),
            r#"invalid --security-opt 2: "no-new-privileges=maybe""#
        );
    }
}
