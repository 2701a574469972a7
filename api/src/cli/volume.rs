//! `berth volume ...`, and the `-v`, `--mount` and `--tmpfs` syntax of `run`/`create`, with
//! Docker's flags, output and error wording.

use berth_types::volume::{Mount, MountType, VolumeCreate, VolumeInspect, VolumePruneReport};
use clap::{Args, Subcommand};
use hyper::Method;

use super::client::{empty_body, json_body, path_segment, query, CliError, Client};
use super::format::{glob_match, human_size, Template};
use super::opts::{parse_labels, parse_memory};
use super::{confirm, last_error, out};

/// `berth volume` subcommands.
#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume
    Create(CreateArgs),
    /// List volumes
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectArgs),
    /// Remove one or more volumes
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove unused local volumes
    Prune(PruneArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Specify volume driver name
    #[arg(short, long, default_value = "local")]
    pub driver: String,
    /// Set metadata for a volume
    #[arg(short, long = "label", value_name = "list")]
    pub label: Vec<String>,
    /// Specify volume name
    #[arg(long = "name", value_name = "string")]
    pub name_flag: Option<String>,
    #[arg(value_name = "VOLUME")]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only display volume names
    #[arg(short, long)]
    pub quiet: bool,
    /// Provide filter values (e.g. "dangling=true", "name=web", "label=k=v", "driver=local")
    #[arg(short, long, value_name = "filter")]
    pub filter: Vec<String>,
    /// Format output: "table" (default), "json", or a template such as '{{.Name}}'
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a template, e.g. '{{.Mountpoint}}'
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true, value_name = "VOLUME")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Force the removal of one or more volumes (no error for one that does not exist)
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true, value_name = "VOLUME")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

/// Runs a `berth volume` subcommand.
pub async fn run(client: &Client, command: VolumeCommand) -> Result<(), CliError> {
    match command {
        VolumeCommand::Create(args) => create(client, args).await,
        VolumeCommand::Ls(args) => ls(client, args).await,
        VolumeCommand::Inspect(args) => inspect(client, args).await,
        VolumeCommand::Rm(args) => rm(client, args).await,
        VolumeCommand::Prune(args) => prune(client, args).await,
    }
}

fn volume_path(name: &str) -> String {
    format!("/api/v1/volumes/{}", path_segment(name))
}

/// The daemon's "No such volume: X" as Docker's CLI prints it (`Error: No such volume: X`).
pub(super) fn not_found_as_docker(e: CliError) -> CliError {
    match e {
        CliError::NotFound(m) => CliError::Usage(format!("Error: {m}")),
        other => other,
    }
}

async fn create(client: &Client, args: CreateArgs) -> Result<(), CliError> {
    let name = match (args.name_flag, args.name) {
        (Some(a), Some(b)) if a != b => {
            return Err(CliError::Usage(format!(
                "conflicting options: either specify --name or provide positional arg, not both ({a} and {b})"
            )))
        }
        (a, b) => a.or(b).unwrap_or_default(),
    };
    let labels = parse_labels(&args.label).map_err(CliError::Usage)?;
    let request = VolumeCreate { name, driver: args.driver, labels };
    let volume: VolumeInspect = client
        .call_json(Method::POST, "/api/v1/volumes", Some("application/json"), json_body(&request))
        .await?;
    out(&format!("{}\n", volume.name))
}

/// The fields of one `volume ls` row and their table headers.
const LS_FIELDS: [(&str, &str); 6] = [
    ("Driver", "DRIVER"),
    ("Labels", "LABELS"),
    ("Mountpoint", "MOUNTPOINT"),
    ("Name", "VOLUME NAME"),
    ("Scope", "SCOPE"),
    ("Links", "LINKS"),
];

const LS_TABLE: &str = "table {{.Driver}}\\t{{.Name}}";

async fn ls(client: &Client, args: LsArgs) -> Result<(), CliError> {
    let filters = Filters::parse(&args.filter).map_err(CliError::Usage)?;
    let names: Vec<&str> = LS_FIELDS.iter().map(|(f, _)| *f).collect();
    let format = match args.format.as_deref() {
        None | Some("table") => LS_TABLE,
        Some("json") => "{{json .}}",
        Some(other) => other,
    };
    let template = Template::parse(format, &names).map_err(CliError::Usage)?;
    let volumes: Vec<VolumeInspect> = client.get_json("/api/v1/volumes").await?;
    let volumes: Vec<&VolumeInspect> = volumes.iter().filter(|v| filters.matches(v)).collect();
    if args.quiet {
        return out(&volumes.iter().map(|v| format!("{}\n", v.name)).collect::<String>());
    }
    let lines = volumes
        .iter()
        .map(|v| {
            let labels = v.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
            let serde_json::Value::Object(fields) = serde_json::json!({
                "Driver": v.driver,
                "Labels": labels,
                "Links": v.used_by.len().to_string(),
                "Mountpoint": v.mountpoint,
                "Name": v.name,
                "Scope": "local",
            }) else {
                unreachable!("json! of an object is an object")
            };
            template.render(&fields)
        })
        .collect();
    out(&template.output(lines, &LS_FIELDS))
}

/// `volume ls --filter`: each kind given must match (several values of a kind: any of them).
#[derive(Debug, Default)]
struct Filters {
    dangling: Option<bool>,
    name: Vec<String>,
    label: Vec<(String, Option<String>)>,
    driver: Vec<String>,
}

impl Filters {
    fn parse(args: &[String]) -> Result<Filters, String> {
        let mut filters = Filters::default();
        for f in args {
            let (key, value) = f
                .split_once('=')
                .ok_or_else(|| format!("bad format of filter (expected name=value): {f}"))?;
            match key {
                "dangling" => {
                    filters.dangling = Some(match value {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(format!("invalid filter 'dangling={value}'")),
                    })
                }
                "name" => filters.name.push(value.to_string()),
                "label" => filters.label.push(match value.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (value.to_string(), None),
                }),
                "driver" => filters.driver.push(value.to_string()),
                other => return Err(format!("invalid filter '{other}'")),
            }
        }
        Ok(filters)
    }

    fn matches(&self, v: &VolumeInspect) -> bool {
        // Docker's name filter matches a substring; a glob pattern is also taken.
        let name_ok = self.name.is_empty()
            || self.name.iter().any(|n| v.name.contains(n.as_str()) || glob_match(n, &v.name));
        let label_ok = self.label.iter().all(|(k, want)| match (v.labels.get(k), want) {
            (Some(have), Some(want)) => have == want,
            (Some(_), None) => true,
            (None, _) => false,
        });
        let driver_ok = self.driver.is_empty() || self.driver.contains(&v.driver);
        let dangling_ok = self.dangling.is_none_or(|d| d == v.used_by.is_empty());
        name_ok && label_ok && driver_ok && dangling_ok
    }
}

/// Docker's `volume inspect` object.
fn docker_inspect(v: &VolumeInspect) -> serde_json::Value {
    serde_json::json!({
        "CreatedAt": v.created,
        "Driver": v.driver,
        "Labels": v.labels,
        "Mountpoint": v.mountpoint,
        "Name": v.name,
        "Options": serde_json::Value::Null,
        "Scope": "local",
        "UsageData": v.size.map(|size| serde_json::json!({"RefCount": v.used_by.len(), "Size": size})),
    })
}

/// One volume as `berth inspect` shows it (Docker's object), for the generic `inspect`.
pub async fn inspect_object(client: &Client, name: &str) -> Result<serde_json::Value, CliError> {
    let volume: VolumeInspect = client.get_json(&volume_path(name)).await?;
    Ok(docker_inspect(&volume))
}

async fn inspect(client: &Client, args: InspectArgs) -> Result<(), CliError> {
    let template = match args.format.as_deref() {
        Some(f) => Some(
            Template::parse(
                f,
                &["CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options", "Scope", "UsageData"],
            )
            .map_err(CliError::Usage)?,
        ),
        None => None,
    };
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &args.names {
        match client.get_json::<VolumeInspect>(&volume_path(name)).await {
            Ok(v) => found.push(docker_inspect(&v)),
            Err(e @ CliError::Connect { .. }) => return Err(e),
            Err(e) => errors.push(not_found_as_docker(e)),
        }
    }
    match template {
        Some(template) => {
            let mut text = String::new();
            for v in &found {
                if let serde_json::Value::Object(fields) = v {
                    text.push_str(&template.render(fields));
                    text.push('\n');
                }
            }
            out(&text)?;
        }
        None => super::print_inspect_json(&found)?,
    }
    last_error(errors)
}

async fn rm(client: &Client, args: RmArgs) -> Result<(), CliError> {
    let mut errors = Vec::new();
    for name in &args.names {
        let path = format!("{}{}", volume_path(name), query(args.force.then_some(("force", "true"))));
        match client.request(Method::DELETE, &path, None, empty_body()).await {
            Ok(_) => out(&format!("{name}\n"))?,
            Err(e @ CliError::Connect { .. }) => return Err(e),
            Err(e) => errors.push(not_found_as_docker(e)),
        }
    }
    last_error(errors)
}

async fn prune(client: &Client, args: PruneArgs) -> Result<(), CliError> {
    if !args.force {
        let warning = if args.all {
            "WARNING! This will remove all local volumes not used by at least one container."
        } else {
            "WARNING! This will remove anonymous local volumes not used by at least one container."
        };
        if !confirm(warning)? {
            return out("Total reclaimed space: 0B\n");
        }
    }
    let path = format!("/api/v1/volumes/prune{}", query(args.all.then_some(("all", "true"))));
    let report: VolumePruneReport = client.call_json(Method::POST, &path, None, empty_body()).await?;
    let mut text = String::new();
    if !report.volumes_deleted.is_empty() {
        text.push_str("Deleted Volumes:\n");
        for name in &report.volumes_deleted {
            text.push_str(name);
            text.push('\n');
        }
        text.push('\n');
    }
    text.push_str(&format!("Total reclaimed space: {}\n", human_size(report.space_reclaimed)));
    out(&text)
}

// ---- -v, --mount, --tmpfs ---------------------------------------------------------------------

/// The mounts of `run`/`create`: `-v` entries, then `--mount`, then `--tmpfs`.
pub fn parse_mounts(volumes: &[String], mounts: &[String], tmpfs: &[String]) -> Result<Vec<Mount>, String> {
    let mut out = Vec::new();
    for v in volumes {
        out.push(parse_volume(v)?);
    }
    for m in mounts {
        out.push(parse_mount(m)?);
    }
    for t in tmpfs {
        out.push(parse_tmpfs(t)?);
    }
    Ok(out)
}

/// `-v [SOURCE:]TARGET[:MODE]`: SOURCE an absolute host path (bind; made when missing, as
/// Docker), a path starting with `.` (relative to here), or a volume name; no SOURCE is an
/// anonymous volume. MODE: `ro`/`rw` plus options Docker takes that change nothing here.
pub fn parse_volume(spec: &str) -> Result<Mount, String> {
    let invalid = || format!("invalid volume specification: '{spec}'");
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [target] => ("", *target, ""),
        [source, target] => (*source, *target, ""),
        [source, target, mode] => (*source, *target, *mode),
        _ => return Err(invalid()),
    };
    if target.is_empty() || (parts.len() > 1 && source.is_empty()) {
        return Err(invalid());
    }
    let mut read_only = false;
    let mut seen_access = false;
    for option in mode.split(',').filter(|o| !o.is_empty()) {
        match option {
            "ro" | "rw" if seen_access => return Err(format!("invalid mode: {mode}")),
            "ro" | "rw" => {
                seen_access = true;
                read_only = option == "ro";
            }
            // SELinux relabelling, macOS consistency hints and the default propagation: no
            // effect on this engine.
            "z" | "Z" | "private" | "rprivate" | "consistent" | "cached" | "delegated" => {}
            _ => return Err(format!("invalid mode: {mode}")),
        }
    }
    let (mount_type, source) = if source.is_empty() {
        (MountType::Volume, String::new())
    } else if source.starts_with('/') {
        (MountType::Bind, source.to_string())
    } else if source.starts_with('.') {
        // Docker's CLI (23+) takes `./dir` and `../dir` relative to the current directory.
        let cwd = std::env::current_dir().map_err(|e| format!("resolving {source}: {e}"))?;
        (MountType::Bind, cwd.join(source).display().to_string())
    } else {
        (MountType::Volume, source.to_string())
    };
    if !target.starts_with('/') {
        let t = if mount_type == MountType::Bind { "bind" } else { "volume" };
        return Err(format!(
            "{}: invalid mount config for type \"{t}\": invalid mount path: '{target}' mount path must be absolute",
            invalid()
        ));
    }
    Ok(Mount {
        mount_type,
        source,
        target: target.to_string(),
        read_only,
        tmpfs_size: None,
        create_mountpoint: mount_type == MountType::Bind,
    })
}

/// `--mount type=bind|volume|tmpfs,source=,target=,readonly,tmpfs-size=` (Docker's keys and
/// aliases). A bind's missing source is an error here, as with Docker.
pub fn parse_mount(spec: &str) -> Result<Mount, String> {
    let mut mount = Mount::default();
    let bool_value = |key: &str, value: Option<&str>| -> Result<bool, String> {
        match value.map(str::to_ascii_lowercase).as_deref() {
            None | Some("true") | Some("1") => Ok(true),
            Some("false") | Some("0") => Ok(false),
            Some(other) => Err(format!("invalid value for {key}: {other}")),
        }
    };
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        let need = |value: Option<&str>| {
            value
                .map(str::to_string)
                .ok_or_else(|| format!("invalid field '{field}' must be a key=value pair"))
        };
        match key.as_str() {
            "type" => {
                mount.mount_type = match need(value)?.to_ascii_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "volume" => MountType::Volume,
                    "tmpfs" => MountType::Tmpfs,
                    other => {
                        return Err(format!("invalid mount config for type \"{other}\": mount type unknown"))
                    }
                }
            }
            "source" | "src" => mount.source = need(value)?,
            "target" | "destination" | "dst" => mount.target = need(value)?,
            "readonly" | "ro" => mount.read_only = bool_value(&key, value)?,
            "tmpfs-size" => {
                mount.tmpfs_size = Some(
                    parse_memory(&need(value)?).map_err(|e| format!("invalid value for tmpfs-size: {e}"))?,
                )
            }
            // The default propagation and consistency: nothing to change.
            "bind-propagation" if matches!(value, Some("rprivate") | Some("private")) => {}
            "consistency" => {}
            "volume-driver" if value == Some("local") => {}
            "volume-nocopy" | "tmpfs-mode" | "bind-propagation" | "volume-driver" | "volume-label"
            | "volume-opt" | "volume-subpath" => {
                return Err(format!("--mount option '{field}' is not supported"));
            }
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    Ok(mount)
}

/// `--tmpfs PATH[:OPTIONS]`: `size=` (with k/m/g units), `ro`/`rw`; nosuid, nodev and noexec are
/// the defaults.
pub fn parse_tmpfs(spec: &str) -> Result<Mount, String> {
    let (target, options) = spec.split_once(':').unwrap_or((spec, ""));
    let mut mount = Mount { mount_type: MountType::Tmpfs, target: target.to_string(), ..Default::default() };
    for option in options.split(',').filter(|o| !o.is_empty()) {
        match option.split_once('=') {
            Some(("size", size)) => {
                mount.tmpfs_size =
                    Some(parse_memory(size).map_err(|e| format!("invalid tmpfs size {size}: {e}"))?)
            }
            None if option == "ro" => mount.read_only = true,
            None if option == "rw" => mount.read_only = false,
            None if matches!(option, "nosuid" | "nodev" | "noexec") => {}
            _ => return Err(format!("unsupported tmpfs option: {option}")),
        }
    }
    Ok(mount)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

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
        assert!(m.source.starts_with('/') && m.source.ends_with("/./here"));
        assert_eq!(parse_volume("a:b:c:d").unwrap_err(), "invalid volume specification: 'a:b:c:d'");
        assert_eq!(parse_volume(":/x").unwrap_err(), "invalid volume specification: ':/x'");
        assert_eq!(parse_volume("/x:/y:ro,rw").unwrap_err(), "invalid mode: ro,rw");
        assert_eq!(parse_volume("/x:/y:bogus").unwrap_err(), "invalid mode: bogus");
        assert_eq!(
            parse_volume("data:rel").unwrap_err(),
            "invalid volume specification: 'data:rel': invalid mount config for type \"volume\": invalid mount \
             path: 'rel' mount path must be absolute"
        );
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
        assert_eq!(
            parse_mount("type=nfs,target=/x").unwrap_err(),
            "invalid mount config for type \"nfs\": mount type unknown"
        );
        assert_eq!(parse_mount("type=bind,foo=bar").unwrap_err(), "unexpected key 'foo' in 'foo=bar'");
        assert_eq!(parse_mount("type").unwrap_err(), "invalid field 'type' must be a key=value pair");
        assert!(parse_mount("type=volume,volume-nocopy,target=/x").is_err());
    }

    #[test]
    fn tmpfs_flags() {
        let m = parse_tmpfs("/run:size=1m,ro").unwrap();
        assert_eq!((m.target.as_str(), m.tmpfs_size, m.read_only), ("/run", Some(1 << 20), true));
        assert_eq!(parse_tmpfs("/run").unwrap().tmpfs_size, None);
        assert_eq!(parse_tmpfs("/run:exec").unwrap_err(), "unsupported tmpfs option: exec");
    }

    #[test]
    fn ls_filters() {
        let v = VolumeInspect {
            name: "web-data".into(),
            driver: "local".into(),
            mountpoint: String::new(),
            created: String::new(),
            labels: BTreeMap::from([("tier".into(), "db".into())]),
            anonymous: false,
            used_by: vec![],
            size: None,
        };
        let f =
            |args: &[&str]| Filters::parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        assert!(f(&["name=web", "dangling=true", "label=tier=db", "driver=local"]).matches(&v));
        assert!(!f(&["label=tier=web"]).matches(&v));
        assert!(!f(&["dangling=false"]).matches(&v));
        assert!(Filters::parse(&["nope=1".into()]).is_err());
    }
}
