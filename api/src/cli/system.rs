//! `berth system df|prune` and `berth events`.

use berth_types::check::CheckReport;
use berth_types::stream::StreamMessage;
use berth_types::{
    ContainerPruneReport, DiskUsage, Event, ImagePruneReport, NetworkPruneReport, VolumePruneReport,
};
use clap::{Args, Subcommand};
use futures_util::StreamExt;
use hyper::Method;

use super::client::{empty_body, query, CliError, Client};
use super::format::{familiar_repo_tag, human_size, human_size_with_precision, Template};
use super::{confirm, out, stream};

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show berth disk usage
    Df(DfArgs),
    /// Remove unused data
    Prune(SystemPruneArgs),
    /// Get real time events from the server
    Events(EventsArgs),
    /// Display system-wide information
    Info(super::InfoArgs),
    /// Check the consistency of the daemon's state (admins); exit 1 on findings
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Remove what nothing references and move what is broken aside (to <root>/lost+found)
    #[arg(long)]
    pub repair: bool,
    /// Print the report as JSON
    #[arg(long, value_parser = ["json"])]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct DfArgs {
    /// Show detailed information on space usage
    #[arg(short, long)]
    pub verbose: bool,
    /// Format output: "table" (default), "json" (one JSON object per line), or a template
    /// such as 'table {{.Type}}\t{{.Size}}' or '{{.Type}}: {{.Reclaimable}}'
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Prune anonymous volumes
    #[arg(long)]
    pub volumes: bool,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Filter output based on conditions provided (type=, event=, container=, image=)
    #[arg(short, long = "filter", value_name = "filter")]
    pub filters: Vec<String>,
    /// Format the output using a template, e.g. '{{.Type}} {{.Action}} {{.Subject}}', or json
    #[arg(long)]
    pub format: Option<String>,
    /// Show the recorded events first (the last N; the daemon keeps them in its history)
    #[arg(long, value_name = "N")]
    pub past: Option<i64>,
}

/// `berth system check [--repair]`: what the daemon's consistency check found, one line per
/// finding; exits 1 unless the state is clean (after `--repair`: unless everything found was
/// repaired).
pub async fn check(client: &Client, args: CheckArgs) -> Result<(), CliError> {
    let path = format!("/api/v1/system/check{}", if args.repair { "?repair=true" } else { "" });
    let report: CheckReport = client.call_json(Method::POST, &path, None, empty_body()).await?;
    let text = if args.format.is_some() {
        serde_json::to_string_pretty(&report).expect("reports serialise") + "\n"
    } else {
        let mut text = format!("checked {}\n", report.checked.join(", "));
        for f in &report.findings {
            text.push_str(&format!("{}\t{}\t{}", f.area, f.object, f.problem));
            match &f.repaired {
                Some(done) => text.push_str(&format!("\trepaired: {done}\n")),
                None if report.repair => text.push_str("\tnot repaired\n"),
                None => text.push('\n'),
            }
        }
        if report.findings.is_empty() {
            text.push_str("clean\n");
        }
        text
    };
    out(&text)?;
    if report.is_clean() {
        Ok(())
    } else {
        let open = report.findings.iter().filter(|f| f.repaired.is_none()).count();
        Err(CliError::Local(if report.repair {
            format!("system check: {open} of {} findings not repaired", report.findings.len())
        } else {
            format!(
                "system check: {} findings (berth system check --repair mends them)",
                report.findings.len()
            )
        }))
    }
}

/// The fields of one `system df` row, as Docker's `--format` knows them, and their table headers.
const DF_FIELDS: [(&str, &str); 5] = [
    ("Active", "ACTIVE"),
    ("Reclaimable", "RECLAIMABLE"),
    ("Size", "SIZE"),
    ("TotalCount", "TOTAL"),
    ("Type", "TYPE"),
];

/// Docker's default `system df` table.
const DF_TABLE: &str = "table {{.Type}}\\t{{.TotalCount}}\\t{{.Active}}\\t{{.Size}}\\t{{.Reclaimable}}";

/// `berth system df`: Docker's table, or each row through `--format` (`-v`: also every image,
/// container and volume; with `--format`, one object holding them all, as Docker's).
pub async fn df(client: &Client, args: DfArgs) -> Result<(), CliError> {
    if args.verbose {
        if let Some(format) = &args.format {
            let format = if format == "json" { "{{json .}}" } else { format.as_str() };
            let template = super::containers::InspectTemplate::parse(format).map_err(CliError::Usage)?;
            let usage: DiskUsage = client.get_json("/api/v1/system/df").await?;
            return out(&format!("{}\n", template.render(&verbose_object(&usage))?));
        }
    }
    let template =
        Template::for_list(args.format.as_deref(), DF_TABLE, &DF_FIELDS).map_err(CliError::Usage)?;
    let usage: DiskUsage = client.get_json("/api/v1/system/df").await?;
    let active_images = usage.images.iter().filter(|i| i.containers > 0).count();
    let unused_images: u64 = usage.images.iter().filter(|i| i.containers == 0).map(|i| i.image.size).sum();
    let image_total: u64 = usage.images.iter().map(|i| i.image.size).sum();
    let running = usage.containers.iter().filter(|c| c.container.state.status.as_str() == "running").count();
    let container_size: u64 = usage.containers.iter().map(|c| c.size_rw).sum();
    let stopped_size: u64 = usage
        .containers
        .iter()
        .filter(|c| c.container.state.status.as_str() != "running")
        .map(|c| c.size_rw)
        .sum();
    let active_volumes = usage.volumes.iter().filter(|v| !v.used_by.is_empty()).count();
    let volume_size: u64 = usage.volumes.iter().filter_map(|v| v.size).sum();
    let unused_volume_size: u64 =
        usage.volumes.iter().filter(|v| v.used_by.is_empty()).filter_map(|v| v.size).sum();
    // Docker adds the share only when there is something to take a share of.
    let reclaimable = |part: u64, whole: u64| match (part * 100).checked_div(whole) {
        Some(percent) => format!("{} ({percent}%)", human_size(part)),
        None => human_size(part),
    };
    let rows = [
        (
            "Images",
            usage.images.len(),
            active_images,
            usage.layers_size,
            reclaimable(unused_images, image_total),
        ),
        (
            "Containers",
            usage.containers.len(),
            running,
            container_size,
            reclaimable(stopped_size, container_size),
        ),
        (
            "Local Volumes",
            usage.volumes.len(),
            active_volumes,
            volume_size,
            reclaimable(unused_volume_size, volume_size),
        ),
    ];
    let mut lines = Vec::new();
    for (kind, total, active, size, reclaimable) in rows {
        // The keys and values of Docker's `{{json .}}`, sorted as Go prints a map.
        let serde_json::Value::Object(fields) = serde_json::json!({
            "Active": active.to_string(),
            "Reclaimable": reclaimable,
            "Size": human_size(size),
            "TotalCount": total.to_string(),
            "Type": kind,
        }) else {
            unreachable!("json! of an object is an object")
        };
        lines.push(template.render(&fields));
    }
    let mut text = template.output(lines, &DF_FIELDS);
    if args.verbose {
        text.push_str("\nImages space usage:\n\nREPOSITORY:TAG                          IMAGE ID       SIZE      CONTAINERS\n");
        for i in &usage.images {
            let name = i.image.repo_tags.first().cloned().unwrap_or_else(|| "<none>".into());
            let id = i.image.id.trim_start_matches("sha256:").chars().take(12).collect::<String>();
            text.push_str(&format!("{name:<39} {id:<14} {:<9} {}\n", human_size(i.image.size), i.containers));
        }
        text.push_str("\nContainers space usage:\n\nCONTAINER ID   IMAGE     SIZE      STATUS    NAMES\n");
        for c in &usage.containers {
            let id: String = c.container.id.chars().take(12).collect();
            text.push_str(&format!(
                "{id:<14} {:<9} {:<9} {:<9} {}\n",
                c.container.image,
                human_size(c.size_rw),
                c.container.state.status.as_str(),
                c.container.name
            ));
        }
        text.push_str(
            "\nLocal Volumes space usage:\n\nVOLUME NAME                             LINKS     SIZE\n",
        );
        for v in &usage.volumes {
            text.push_str(&format!(
                "{:<39} {:<9} {}\n",
                v.name,
                v.used_by.len(),
                human_size(v.size.unwrap_or(0))
            ));
        }
    }
    out(&text)
}

/// What `system df -v --format` renders, as Docker's verbose formatter has it: `Images`,
/// `Containers`, `Volumes` (each row with the fields of `images`, `ps` and `volume ls` and their
/// sizes; IDs untruncated) and `BuildCache` (berth's build cache is its images: empty).
fn verbose_object(usage: &DiskUsage) -> serde_json::Value {
    let now = chrono::Utc::now();
    let images: Vec<serde_json::Value> = usage
        .images
        .iter()
        .map(|i| {
            // Docker shows the first tag only.
            let (repository, tag) = match i.image.repo_tags.first() {
                Some(t) => familiar_repo_tag(t),
                None => ("<none>".into(), "<none>".into()),
            };
            let mut row = super::image_row(&i.image, repository, tag, i.image.id.clone(), now);
            row.insert("Containers".into(), i.containers.to_string().into());
            serde_json::Value::Object(row)
        })
        .collect();
    let containers: Vec<serde_json::Value> = usage
        .containers
        .iter()
        .map(|c| {
            let mut row = super::containers::ps_row(&c.container, true, now);
            let id = &c.container.id;
            let mounts: Vec<&str> = usage
                .volumes
                .iter()
                .filter(|v| v.used_by.iter().any(|u| u == id))
                .map(|v| v.name.as_str())
                .collect();
            row.insert("LocalVolumes".into(), mounts.len().to_string().into());
            row.insert("Mounts".into(), mounts.join(",").into());
            row.insert("Networks".into(), c.container.networks.join(",").into());
            row.insert("Platform".into(), serde_json::Value::Null);
            row.insert("Size".into(), human_size_with_precision(c.size_rw, 3).into());
            serde_json::Value::Object(row)
        })
        .collect();
    let volumes: Vec<serde_json::Value> = usage
        .volumes
        .iter()
        .map(|v| {
            let mut row = super::volume::ls_row(v);
            for na in ["Availability", "Group", "Status"] {
                row.insert(na.into(), "N/A".into());
            }
            row.insert("Size".into(), v.size.map_or("N/A".into(), human_size).into());
            serde_json::Value::Object(row)
        })
        .collect();
    serde_json::json!({
        "Images": images,
        "Containers": containers,
        "Volumes": volumes,
        "BuildCache": [],
    })
}

/// `berth system prune`: stopped containers, unused networks, dangling (`-a`: unused) images
/// and, with `--volumes`, unused anonymous volumes; asks first unless `-f`, as Docker does.
pub async fn prune(client: &Client, args: SystemPruneArgs) -> Result<(), CliError> {
    if !args.force {
        let mut warning = String::from("WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n");
        if args.volumes {
            warning.push_str("  - all anonymous volumes not used by at least one container\n");
        }
        warning.push_str(if args.all {
            "  - all images without at least one container associated to them\n"
        } else {
            "  - all dangling images\n"
        });
        if !confirm(&warning)? {
            return out("Total reclaimed space: 0B\n");
        }
    }
    let mut text = String::new();
    let mut reclaimed = 0;
    let containers: ContainerPruneReport =
        client.call_json(Method::POST, "/api/v1/containers/prune", None, empty_body()).await?;
    reclaimed += containers.space_reclaimed;
    section(&mut text, "Deleted Containers:", &containers.containers_deleted);
    let networks: NetworkPruneReport =
        client.call_json(Method::POST, "/api/v1/networks/prune", None, empty_body()).await?;
    section(&mut text, "Deleted Networks:", &networks.networks_deleted);
    if args.volumes {
        let volumes: VolumePruneReport =
            client.call_json(Method::POST, "/api/v1/volumes/prune", None, empty_body()).await?;
        reclaimed += volumes.space_reclaimed;
        section(&mut text, "Deleted Volumes:", &volumes.volumes_deleted);
    }
    let path = format!("/api/v1/images/prune{}", query(args.all.then_some(("all", "true"))));
    let images: ImagePruneReport = client.call_json(Method::POST, &path, None, empty_body()).await?;
    reclaimed += images.space_reclaimed;
    if !images.images_deleted.is_empty() {
        text.push_str("Deleted Images:\n");
        text.push_str(&super::delete_lines(&images.images_deleted, "untagged", "deleted"));
        text.push('\n');
    }
    text.push_str(&format!("Total reclaimed space: {}\n", human_size(reclaimed)));
    out(&text)
}

fn section(text: &mut String, title: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    text.push_str(title);
    text.push('\n');
    for item in items {
        text.push_str(item);
        text.push('\n');
    }
    text.push('\n');
}

/// `berth events`: the daemon's events as they happen (`--past N`: the last N recorded ones
/// first), one line each: `TIME TYPE ACTION SUBJECT (details)` as Docker prints them.
pub async fn events(client: &Client, args: EventsArgs) -> Result<(), CliError> {
    let filters = EventFilter::parse(&args.filters)?;
    const FIELDS: &[&str] = &["ID", "Time", "Type", "Action", "Subject", "Outcome", "Message"];
    let template = match args.format.as_deref() {
        None | Some("") => None,
        Some("json") => Some(Template::parse("{{json .}}", FIELDS).map_err(CliError::Usage)?),
        Some(text) => Some(Template::parse(text, FIELDS).map_err(CliError::Usage)?),
    };
    let print = |event: &Event| -> Result<(), CliError> {
        if !filters.matches(event) {
            return Ok(());
        }
        match &template {
            Some(t) => {
                let fields: serde_json::Map<String, serde_json::Value> = [
                    ("ID", serde_json::json!(event.id)),
                    ("Time", event.time.clone().into()),
                    ("Type", event.event_type.clone().into()),
                    ("Action", event.action.clone().into()),
                    ("Subject", event.subject.clone().into()),
                    ("Outcome", event.outcome.clone().into()),
                    ("Message", event.message.clone().into()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
                out(&format!("{}\n", t.render(&fields)))
            }
            None => {
                let details =
                    if event.message.is_empty() { String::new() } else { format!(" ({})", event.message) };
                out(&format!(
                    "{} {} {} {}{details}\n",
                    event.time, event.event_type, event.action, event.subject
                ))
            }
        }
    };
    let mut socket = stream::connect(client, "/api/v1/ws/events").await.map_err(|e| match e {
        stream::OpenError::Cli(e) => e,
        stream::OpenError::Command(e) => CliError::Daemon(e.message),
    })?;
    if let Some(n) = args.past {
        let mut past: Vec<Event> =
            client.get_json(&format!("/api/v1/events{}", query([("limit", n.to_string().as_str())]))).await?;
        past.reverse();
        for event in &past {
            print(event)?;
        }
    }
    while let Some(message) = socket.next().await {
        let message = message.map_err(|e| CliError::Local(format!("reading the events: {e}")))?;
        let tokio_tungstenite::tungstenite::Message::Text(text) = message else { continue };
        match serde_json::from_str::<StreamMessage>(&text) {
            Ok(StreamMessage::Event { event }) => print(&event)?,
            Ok(StreamMessage::End { .. }) => return Ok(()),
            Ok(StreamMessage::Error { message }) => return Err(CliError::Daemon(message)),
            _ => {}
        }
    }
    Ok(())
}

/// `--filter` of `berth events`: the same key twice matches either value.
struct EventFilter(Vec<(String, String)>);

impl EventFilter {
    fn parse(filters: &[String]) -> Result<EventFilter, CliError> {
        let mut pairs = Vec::new();
        for f in filters {
            let Some((k, v)) = f.split_once('=') else {
                return Err(CliError::Usage(format!("bad format of filter (expected name=value): {f}")));
            };
            if !matches!(k, "type" | "event" | "container" | "image" | "network" | "volume") {
                return Err(CliError::Usage(format!("invalid filter '{k}'")));
            }
            pairs.push((k.to_string(), v.to_string()));
        }
        Ok(EventFilter(pairs))
    }

    fn matches(&self, event: &Event) -> bool {
        let keys: std::collections::BTreeSet<&str> = self.0.iter().map(|(k, _)| k.as_str()).collect();
        keys.into_iter().all(|key| {
            self.0.iter().filter(|(k, _)| k == key).any(|(_, v)| match key {
                "type" => event.event_type == *v,
                "event" => event.action == *v,
                kind => {
                    event.event_type == kind
                        && (event.subject == *v || event.message.contains(&format!("id={v}")))
                }
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_filters() {
        let event = Event {
            id: 1,
            time: "t".into(),
            event_type: "container".into(),
            action: "start".into(),
            subject: "web".into(),
            outcome: "success".into(),
            message: "id=abc image=busybox".into(),
        };
        let f =
            |v: &[&str]| EventFilter::parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        assert!(f(&[]).matches(&event));
        assert!(f(&["type=container", "event=start"]).matches(&event));
        assert!(f(&["event=stop", "event=start"]).matches(&event));
        assert!(!f(&["type=image"]).matches(&event));
        assert!(f(&["container=web"]).matches(&event));
        assert!(f(&["container=abc"]).matches(&event));
        assert!(EventFilter::parse(&["x".into()]).is_err());
        assert!(EventFilter::parse(&["bogus=1".into()]).is_err());
    }
}
