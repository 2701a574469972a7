//! Mounts read and checked in one place for the CLI (`-v`, `--mount`, `--tmpfs`), compose files,
//! the dashboard and the engine, with Docker's error wording. The text forms are read by
//! [`parse_volume`], [`parse_mount`] and [`parse_tmpfs`]; [`validate_mounts`] checks a
//! container's mounts as Docker's daemon does. What needs the host (a bind source that must
//! exist) is left to the engine.
//!
//! Pure functions: no I/O, so the dashboard (wasm) runs the same checks.

use std::collections::HashSet;
use std::fmt;

use crate::name::{check_object_name, ObjectKind};
use crate::parse::parse_memory;
use crate::volume::{Mount, MountType};

/// The part of a mount an error is about, for a form to put the message next to its field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MountField {
    /// The text as a whole (`-v a:b:c:d`).
    Spec,
    /// `type=`.
    Type,
    /// The host path or volume name.
    Source,
    /// The path in the container.
    Target,
    /// `-v`'s mode, `--mount`'s other keys, `--tmpfs`'s options (the tmpfs size included).
    Options,
}

/// A refused mount: which field is wrong, and Docker's message (what `Display` shows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountError {
    pub field: MountField,
    pub message: String,
}

impl MountError {
    fn new(field: MountField, message: impl Into<String>) -> MountError {
        MountError { field, message: message.into() }
    }
}

impl fmt::Display for MountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for MountError {}

/// The bind propagation modes Docker takes (`rprivate`, its default, is stored as `None`).
pub const PROPAGATIONS: &[&str] = &["private", "rprivate", "shared", "rshared", "slave", "rslave"];

/// A propagation mode as stored: `None` for the default, `rprivate`.
fn stored_propagation(mode: &str) -> Option<String> {
    (mode != "rprivate").then(|| mode.to_string())
}

/// The word Docker's messages use for a mount type.
pub fn type_name(t: MountType) -> &'static str {
    match t {
        MountType::Bind => "bind",
        MountType::Volume => "volume",
        MountType::Tmpfs => "tmpfs",
    }
}

/// `-v [SOURCE:]TARGET[:MODE]`: SOURCE an absolute host path (a bind, made when missing, as
/// Docker), a path starting with `.` (a bind relative to the caller's directory: the source is
/// left as written for the caller to join), or a volume name; no SOURCE is an anonymous volume.
/// MODE: `ro`/`rw` plus options Docker takes that change nothing here. Volume names are checked
/// by [`validate_mounts`], as Docker's daemon does.
pub fn parse_volume(spec: &str) -> Result<Mount, MountError> {
    let invalid = || format!("invalid volume specification: '{spec}'");
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [target] => ("", *target, ""),
        [source, target] => (*source, *target, ""),
        [source, target, mode] => (*source, *target, *mode),
        _ => return Err(MountError::new(MountField::Spec, invalid())),
    };
    if target.is_empty() || (parts.len() > 1 && source.is_empty()) {
        return Err(MountError::new(MountField::Spec, invalid()));
    }
    let mut read_only = false;
    let mut seen_access = false;
    let mut propagation = None;
    for option in mode.split(',').filter(|o| !o.is_empty()) {
        match option {
            _ if PROPAGATIONS.contains(&option) => {
                if propagation.is_some() {
                    return Err(MountError::new(MountField::Options, format!("invalid mode: {mode}")));
                }
                propagation = Some(option);
            }
            "ro" | "rw" if seen_access => {
                return Err(MountError::new(MountField::Options, format!("invalid mode: {mode}")))
            }
            "ro" | "rw" => {
                seen_access = true;
                read_only = option == "ro";
            }
            // SELinux relabelling and macOS consistency hints: no effect on this engine.
            "z" | "Z" | "consistent" | "cached" | "delegated" => {}
            _ => return Err(MountError::new(MountField::Options, format!("invalid mode: {mode}"))),
        }
    }
    let mount_type = if source.is_empty() {
        MountType::Volume
    } else if source.starts_with('/') || source.starts_with('.') {
        // Docker's CLI (23+) takes `./dir` and `../dir` relative to the current directory.
        MountType::Bind
    } else {
        MountType::Volume
    };
    if !target.starts_with('/') {
        return Err(MountError::new(
            MountField::Target,
            format!(
                "{}: invalid mount config for type \"{}\": invalid mount path: '{target}' mount path must be \
                 absolute",
                invalid(),
                type_name(mount_type)
            ),
        ));
    }
    Ok(Mount {
        mount_type,
        source: source.to_string(),
        target: target.to_string(),
        read_only,
        tmpfs_size: None,
        create_mountpoint: mount_type == MountType::Bind,
        propagation: propagation.and_then(stored_propagation),
    })
}

/// `--mount type=bind|volume|tmpfs,source=,target=,readonly,tmpfs-size=` (Docker's keys and
/// aliases). A bind's missing source is an error, as with Docker.
pub fn parse_mount(spec: &str) -> Result<Mount, MountError> {
    let mut mount = Mount::default();
    let options = |message: String| MountError::new(MountField::Options, message);
    let bool_value = |key: &str, value: Option<&str>| -> Result<bool, MountError> {
        match value.map(str::to_ascii_lowercase).as_deref() {
            None | Some("true") | Some("1") => Ok(true),
            Some("false") | Some("0") => Ok(false),
            Some(other) => Err(options(format!("invalid value for {key}: {other}"))),
        }
    };
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        let need = |at: MountField, value: Option<&str>| {
            value.map(str::to_string).ok_or_else(|| {
                MountError::new(at, format!("invalid field '{field}' must be a key=value pair"))
            })
        };
        match key.as_str() {
            "type" => {
                mount.mount_type = match need(MountField::Type, value)?.to_ascii_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "volume" => MountType::Volume,
                    "tmpfs" => MountType::Tmpfs,
                    other => {
                        return Err(MountError::new(
                            MountField::Type,
                            format!("invalid mount config for type \"{other}\": mount type unknown"),
                        ))
                    }
                }
            }
            "source" | "src" => mount.source = need(MountField::Source, value)?,
            "target" | "destination" | "dst" => mount.target = need(MountField::Target, value)?,
            "readonly" | "ro" => mount.read_only = bool_value(&key, value)?,
            "tmpfs-size" => {
                let size = need(MountField::Options, value)?;
                mount.tmpfs_size = Some(
                    parse_memory(&size).map_err(|e| options(format!("invalid value for tmpfs-size: {e}")))?,
                )
            }
            "bind-propagation" => {
                let mode = need(MountField::Options, value)?;
                if !PROPAGATIONS.contains(&mode.as_str()) {
                    return Err(options(format!("invalid value for bind-propagation: {mode}")));
                }
                mount.propagation = stored_propagation(&mode);
            }
            "consistency" => {}
            "volume-driver" if value == Some("local") => {}
            "volume-nocopy" | "tmpfs-mode" | "volume-driver" | "volume-label" | "volume-opt"
            | "volume-subpath" => {
                return Err(options(format!("--mount option '{field}' is not supported")));
            }
            _ => return Err(options(format!("unexpected key '{key}' in '{field}'"))),
        }
    }
    Ok(mount)
}

/// `--tmpfs PATH[:OPTIONS]`: `size=` (with k/m/g units), `ro`/`rw`; nosuid, nodev and noexec are
/// the defaults.
pub fn parse_tmpfs(spec: &str) -> Result<Mount, MountError> {
    let (target, options) = spec.split_once(':').unwrap_or((spec, ""));
    let mut mount = Mount { mount_type: MountType::Tmpfs, target: target.to_string(), ..Default::default() };
    for option in options.split(',').filter(|o| !o.is_empty()) {
        match option.split_once('=') {
            Some(("size", size)) => {
                mount.tmpfs_size = Some(parse_memory(size).map_err(|e| {
                    MountError::new(MountField::Options, format!("invalid tmpfs size {size}: {e}"))
                })?)
            }
            None if option == "ro" => mount.read_only = true,
            None if option == "rw" => mount.read_only = false,
            None if matches!(option, "nosuid" | "nodev" | "noexec") => {}
            _ => {
                return Err(MountError::new(
                    MountField::Options,
                    format!("unsupported tmpfs option: {option}"),
                ))
            }
        }
    }
    Ok(mount)
}

/// Checks a container's mounts as Docker's daemon does (with its wording) and returns them with
/// their paths cleaned ([`clean_absolute`]). Not checked here: that a bind source exists (the
/// engine's part).
pub fn validate_mounts(mounts: &[Mount]) -> Result<Vec<Mount>, MountError> {
    let mut out = Vec::with_capacity(mounts.len());
    let mut targets = HashSet::new();
    for m in mounts {
        let t = type_name(m.mount_type);
        let bad = |field, why: String| {
            MountError::new(field, format!("invalid mount config for type \"{t}\": {why}"))
        };
        if m.target.is_empty() {
            return Err(bad(MountField::Target, "field Target must not be empty".into()));
        }
        if m.target.contains('\0') {
            return Err(bad(MountField::Target, "a path contains a NUL byte".into()));
        }
        if m.source.contains('\0') {
            return Err(bad(MountField::Source, "a path contains a NUL byte".into()));
        }
        let target = clean_absolute(&m.target).ok_or_else(|| {
            bad(MountField::Target, format!("invalid mount path: '{}' mount path must be absolute", m.target))
        })?;
        if target == "/" {
            return Err(MountError::new(
                MountField::Target,
                "invalid specification: destination can't be '/'",
            ));
        }
        if !targets.insert(target.clone()) {
            return Err(MountError::new(MountField::Target, format!("Duplicate mount point: {target}")));
        }
        if m.tmpfs_size.is_some() && m.mount_type != MountType::Tmpfs {
            return Err(bad(MountField::Options, "field TmpfsOptions must not be specified".into()));
        }
        if let Some(mode) = &m.propagation {
            if m.mount_type != MountType::Bind {
                return Err(bad(MountField::Options, "field BindOptions must not be specified".into()));
            }
            if !PROPAGATIONS.contains(&mode.as_str()) {
                return Err(bad(MountField::Options, format!("invalid propagation mode: {mode}")));
            }
        }
        let source = match m.mount_type {
            MountType::Bind => {
                if m.source.is_empty() {
                    return Err(bad(MountField::Source, "field Source must not be empty".into()));
                }
                clean_absolute(&m.source).ok_or_else(|| {
                    bad(
                        MountField::Source,
                        format!("invalid mount path: '{}' mount path must be absolute", m.source),
                    )
                })?
            }
            MountType::Volume => {
                if !m.source.is_empty() {
                    check_object_name(ObjectKind::Volume, &m.source)
                        .map_err(|e| MountError::new(MountField::Source, e.create_message()))?;
                }
                m.source.clone()
            }
            MountType::Tmpfs => {
                if !m.source.is_empty() {
                    return Err(bad(MountField::Source, "field Source must not be specified".into()));
                }
                if m.tmpfs_size == Some(0) {
                    return Err(bad(MountField::Options, "tmpfs size must be larger than zero".into()));
                }
                String::new()
            }
        };
        out.push(Mount {
            mount_type: m.mount_type,
            source,
            target,
            read_only: m.read_only,
            tmpfs_size: m.tmpfs_size,
            create_mountpoint: m.create_mountpoint && m.mount_type == MountType::Bind,
            propagation: m.propagation.as_deref().and_then(stored_propagation),
        });
    }
    Ok(out)
}

/// `path` cleaned lexically (`//`, `.`, `..` and a trailing `/` resolved, as Go's
/// `filepath.Clean`), or `None` when it is not absolute.
pub fn clean_absolute(path: &str) -> Option<String> {
    path.starts_with('/').then(|| format!("/{}", clean_clamped(path)))
}

/// `path` cleaned lexically, without its leading `/`; a `..` at the top stays at the top (as
/// Docker resolves mount targets and COPY sources). Shared by mounts and builds.
pub fn clean_clamped(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(t: MountType, source: &str, target: &str) -> Mount {
        Mount { mount_type: t, source: source.into(), target: target.into(), ..Default::default() }
    }

    fn message<T: fmt::Debug>(result: Result<T, MountError>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn volume_flags_as_docker_reads_them() {
        let m = parse_volume("data:/var/lib/data:ro").unwrap();
        assert_eq!(
            (m.mount_type, m.source.as_str(), m.target.as_str(), m.read_only),
            (MountType::Volume, "data", "/var/lib/data", true)
        );
        let m = parse_volume("/srv:/srv").unwrap();
        assert_eq!((m.mount_type, m.create_mountpoint, m.read_only), (MountType::Bind, true, false));
        let m = parse_volume("/cache").unwrap();
        assert_eq!((m.mount_type, m.source.as_str()), (MountType::Volume, ""));
        let m = parse_volume("./here:/x:rw,z").unwrap();
        assert_eq!(
            (m.mount_type, m.source.as_str()),
            (MountType::Bind, "./here"),
            "left for the caller to join"
        );
        let e = parse_volume("a:b:c:d").unwrap_err();
        assert_eq!(
            (e.field, e.message.as_str()),
            (MountField::Spec, "invalid volume specification: 'a:b:c:d'")
        );
        assert_eq!(message(parse_volume(":/x")), "invalid volume specification: ':/x'");
        let e = parse_volume("/x:/y:ro,rw").unwrap_err();
        assert_eq!((e.field, e.message.as_str()), (MountField::Options, "invalid mode: ro,rw"));
        assert_eq!(message(parse_volume("/x:/y:bogus")), "invalid mode: bogus");
        let e = parse_volume("data:rel").unwrap_err();
        assert_eq!(e.field, MountField::Target);
        assert_eq!(
            e.message,
            "invalid volume specification: 'data:rel': invalid mount config for type \"volume\": invalid mount \
             path: 'rel' mount path must be absolute"
        );
        assert!(message(parse_volume("/x:rel")).contains("for type \"bind\""));
    }

    #[test]
    fn mount_flags_as_docker_reads_them() {
        let m = parse_mount("type=bind,src=/a,dst=/b,readonly").unwrap();
        assert_eq!(
            (m.mount_type, m.source.as_str(), m.target.as_str(), m.read_only),
            (MountType::Bind, "/a", "/b", true)
        );
        assert!(!m.create_mountpoint, "--mount does not make a missing bind source");
        let m = parse_mount("type=tmpfs,target=/t,tmpfs-size=64m").unwrap();
        assert_eq!(m.tmpfs_size, Some(64 << 20));
        let m = parse_mount("source=v1,target=/v,readonly=false").unwrap();
        assert_eq!((m.mount_type, m.read_only), (MountType::Volume, false));
        let e = parse_mount("type=nfs,target=/x").unwrap_err();
        assert_eq!(e.field, MountField::Type);
        assert_eq!(e.message, "invalid mount config for type \"nfs\": mount type unknown");
        assert_eq!(message(parse_mount("type=bind,foo=bar")), "unexpected key 'foo' in 'foo=bar'");
        assert_eq!(message(parse_mount("type")), "invalid field 'type' must be a key=value pair");
        assert_eq!(parse_mount("target").unwrap_err().field, MountField::Target);
        assert_eq!(message(parse_mount("readonly=maybe")), "invalid value for readonly: maybe");
        assert!(
            message(parse_mount("type=tmpfs,tmpfs-size=lots")).starts_with("invalid value for tmpfs-size")
        );
        assert_eq!(
            message(parse_mount("type=volume,volume-nocopy,target=/x")),
            "--mount option 'volume-nocopy' is not supported"
        );
    }

    #[test]
    fn tmpfs_flags() {
        let m = parse_tmpfs("/run:size=1m,ro").unwrap();
        assert_eq!((m.target.as_str(), m.tmpfs_size, m.read_only), ("/run", Some(1 << 20), true));
        assert_eq!(parse_tmpfs("/run").unwrap().tmpfs_size, None);
        assert!(!parse_tmpfs("/run:nosuid,rw").unwrap().read_only);
        assert_eq!(message(parse_tmpfs("/run:exec")), "unsupported tmpfs option: exec");
        assert!(message(parse_tmpfs("/t:size=lots")).starts_with("invalid tmpfs size lots"));
    }

    #[test]
    fn paths_are_cleaned_as_go_does() {
        assert_eq!(clean_absolute("/data/").as_deref(), Some("/data"));
        assert_eq!(clean_absolute("//a/./b/../c").as_deref(), Some("/a/c"));
        assert_eq!(clean_absolute("/..").as_deref(), Some("/"));
        assert_eq!(clean_absolute("data"), None);
    }

    #[test]
    fn bad_mounts_are_refused_with_dockers_wording() {
        let err = |m: Vec<Mount>| validate_mounts(&m).unwrap_err();
        let e = err(vec![mount(MountType::Volume, "vol", "/data"), mount(MountType::Tmpfs, "", "/data/")]);
        assert_eq!((e.field, e.message.as_str()), (MountField::Target, "Duplicate mount point: /data"));
        assert_eq!(
            err(vec![mount(MountType::Volume, "vol", "data")]).message,
            "invalid mount config for type \"volume\": invalid mount path: 'data' mount path must be absolute"
        );
        assert_eq!(
            err(vec![mount(MountType::Volume, "vol", "")]).message,
            "invalid mount config for type \"volume\": field Target must not be empty"
        );
        let e = err(vec![mount(MountType::Bind, "rel", "/x")]);
        assert_eq!(e.field, MountField::Source);
        assert_eq!(
            e.message,
            "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute"
        );
        assert_eq!(
            err(vec![mount(MountType::Bind, "", "/x")]).message,
            "invalid mount config for type \"bind\": field Source must not be empty"
        );
        assert_eq!(
            err(vec![mount(MountType::Tmpfs, "src", "/x")]).message,
            "invalid mount config for type \"tmpfs\": field Source must not be specified"
        );
        let mut empty = mount(MountType::Tmpfs, "", "/x");
        empty.tmpfs_size = Some(0);
        assert_eq!(
            err(vec![empty]).message,
            "invalid mount config for type \"tmpfs\": tmpfs size must be larger than zero"
        );
        assert_eq!(
            err(vec![mount(MountType::Volume, "", "/")]).message,
            "invalid specification: destination can't be '/'"
        );
        assert_eq!(
            err(vec![mount(MountType::Volume, "", "/a/..")]).message,
            "invalid specification: destination can't be '/'"
        );
        let e = err(vec![mount(MountType::Volume, "a/b", "/x")]);
        assert_eq!(e.field, MountField::Source);
        assert!(e.message.starts_with("create a/b: \"a/b\" includes invalid characters"), "{e}");
        assert!(err(vec![mount(MountType::Bind, "/a\0", "/x")]).message.contains("NUL byte"));
        let mut sized = mount(MountType::Volume, "v1", "/x");
        sized.tmpfs_size = Some(1);
        assert!(err(vec![sized]).message.contains("field TmpfsOptions must not be specified"));
    }

    #[test]
    fn good_mounts_come_back_cleaned() {
        // A missing bind source is not this function's business (the engine checks the host).
        let mut bind = mount(MountType::Bind, "/surely/not/here/", "/x/");
        bind.create_mountpoint = true;
        let mut volume = mount(MountType::Volume, "data", "/data");
        volume.create_mountpoint = true;
        let out = validate_mounts(&[bind, volume, mount(MountType::Tmpfs, "", "/t")]).unwrap();
        assert_eq!((out[0].source.as_str(), out[0].target.as_str()), ("/surely/not/here", "/x"));
        assert!(out[0].create_mountpoint);
        assert!(!out[1].create_mountpoint, "only a bind makes its source");
        assert_eq!(out[2].target, "/t");
    }

    #[test]
    fn bind_propagation_as_docker_reads_it() {
        assert_eq!(parse_volume("/a:/b:rshared").unwrap().propagation.as_deref(), Some("rshared"));
        assert_eq!(parse_volume("/a:/b:ro,rslave").unwrap().propagation.as_deref(), Some("rslave"));
        // The default is stored as none.
        assert_eq!(parse_volume("/a:/b:rprivate").unwrap().propagation, None);
        assert_eq!(message(parse_volume("/a:/b:shared,slave")), "invalid mode: shared,slave");
        let m = parse_mount("type=bind,source=/a,target=/b,bind-propagation=shared").unwrap();
        assert_eq!(m.propagation.as_deref(), Some("shared"));
        assert_eq!(
            message(parse_mount("type=bind,source=/a,target=/b,bind-propagation=sideways")),
            "invalid value for bind-propagation: sideways"
        );
        // Only a bind propagates.
        let volume = parse_volume("data:/b:rshared").unwrap();
        assert_eq!(
            message(validate_mounts(&[volume])),
            "invalid mount config for type \"volume\": field BindOptions must not be specified"
        );
        let odd = Mount { propagation: Some("odd".into()), ..mount(MountType::Bind, "/a", "/b") };
        assert!(message(validate_mounts(&[odd])).contains("invalid propagation mode: odd"));
        let kept = validate_mounts(&[parse_volume("/a:/b:rslave").unwrap()]).unwrap();
        assert_eq!(kept[0].propagation.as_deref(), Some("rslave"));
    }
}
