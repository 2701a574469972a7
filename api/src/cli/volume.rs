//! `berth volume ...`, and the `-v`, `--mount` and `--tmpfs` syntax of `run`/`create`, with
//! Docker's flags, output and error wording.

use berth_types::mount;
use berth_types::volume::{Mount, MountType, VolumeCreate, VolumeInspect, VolumePruneReport};
use clap::{Args, Subcommand};
use hyper::Method;

use super::client::{empty_body, json_body, path_segment, query, CliError, Client};
use super::format::{glob_match, human_size, Template};
use super::opts::parse_labels;
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
    let template =
        Template::for_list(args.format.as_deref(), LS_TABLE, &LS_FIELDS).map_err(CliError::Usage)?;
    let volumes: Vec<VolumeInspect> = client.get_json("/api/v1/volumes").await?;
    let volumes: Vec<&VolumeInspect> = volumes.iter().filter(|v| filters.matches(v)).collect();
    if args.quiet {
        return out(&volumes.iter().map(|v| format!("{}\n", v.name)).collect::<String>());
    }
    let lines = volumes.iter().map(|v| template.render(&ls_row(v))).collect();
    out(&template.output(lines, &LS_FIELDS))
}

/// One volume as Docker's volume formatter shows it (`volume ls`, `system df -v`): the keys and
/// values of its `{{json .}}`, sorted as Go prints a map.
pub(super) fn ls_row(v: &VolumeInspect) -> serde_json::Map<String, serde_json::Value> {
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
    fields
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

/// The mounts of `run`/`create`: `-v` entries, then `--mount`, then `--tmpfs`, read by
/// [`berth_types::mount`]; a `-v` source starting with `.` is taken relative to the current
/// directory, as Docker's CLI (23+) does. The daemon checks the rest.
pub fn parse_mounts(volumes: &[String], mounts: &[String], tmpfs: &[String]) -> Result<Vec<Mount>, String> {
    let mut out = Vec::new();
    for v in volumes {
        let mut m = mount::parse_volume(v).map_err(|e| e.to_string())?;
        if m.mount_type == MountType::Bind && !m.source.starts_with('/') {
            let cwd = std::env::current_dir().map_err(|e| format!("resolving {}: {e}", m.source))?;
            m.source = cwd.join(&m.source).display().to_string();
        }
        out.push(m);
    }
    for m in mounts {
        out.push(mount::parse_mount(m).map_err(|e| e.to_string())?);
    }
    for t in tmpfs {
        out.push(mount::parse_tmpfs(t).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn mount_flags_in_order_with_relative_binds_resolved() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let mounts =
            parse_mounts(&s(&["./here:/x:rw,z"]), &s(&["type=tmpfs,target=/t"]), &s(&["/run"])).unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(mounts[0].source, cwd.join("./here").display().to_string());
        assert_eq!((mounts[1].target.as_str(), mounts[2].target.as_str()), ("/t", "/run"));
        assert_eq!(
            parse_mounts(&s(&["a:b:c:d"]), &[], &[]).unwrap_err(),
            "invalid volume specification: 'a:b:c:d'"
        );
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
