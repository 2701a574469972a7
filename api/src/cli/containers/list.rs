//! `berth ps`: the container list with Docker's columns, filters and templates.

use berth_types::ContainerSummary;

use super::{short, PsArgs};
use crate::cli::client::{query, CliError, Client};
use crate::cli::format::{created_at, Template};
use crate::cli::out;

/// The fields of one `ps` row, as Docker's `--format` knows them, and their table headers.
const PS_FIELDS: [(&str, &str); 10] = [
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Labels", "LABELS"),
    ("Names", "NAMES"),
    ("Ports", "PORTS"),
    ("RunningFor", "CREATED"),
    ("State", "STATE"),
    ("Status", "STATUS"),
];

/// Docker's default `ps` table.
const PS_TABLE: &str =
    "table {{.ID}}\\t{{.Image}}\\t{{.Command}}\\t{{.RunningFor}}\\t{{.Status}}\\t{{.Ports}}\\t{{.Names}}";

/// The COMMAND column: Docker's 20-character ellipsis, then Go's `strconv.Quote` (Rust's
/// debug quoting escapes the same characters for what commands hold).
fn command_cell(command: &str, no_trunc: bool) -> String {
    if no_trunc || command.chars().count() <= 20 {
        return format!("{command:?}");
    }
    let mut cut: String = command.chars().take(19).collect();
    cut.push('…');
    format!("{cut:?}")
}

/// `berth ps`.
pub async fn ps(client: &Client, args: PsArgs) -> Result<(), CliError> {
    let template =
        Template::for_list(args.format.as_deref(), PS_TABLE, &PS_FIELDS).map_err(CliError::Usage)?;
    let last = if args.latest { Some(1) } else { args.last };
    let all = args.all || last.is_some();
    let mut pairs: Vec<(&str, &str)> = args.filter.iter().map(|f| ("filter", f.as_str())).collect();
    if all {
        pairs.push(("all", "1"));
    }
    let mut containers: Vec<ContainerSummary> =
        client.get_json(&format!("/api/v1/containers{}", query(pairs))).await?;
    if let Some(n) = last {
        containers.truncate(n);
    }
    let id_of = |id: &str| if args.no_trunc { id.to_string() } else { short(id).to_string() };

    let mut text = String::new();
    if args.quiet {
        for c in &containers {
            text.push_str(&id_of(&c.id));
            text.push('\n');
        }
        return out(&text);
    }
    let now = chrono::Utc::now();
    let lines = containers.iter().map(|c| template.render(&ps_row(c, args.no_trunc, now))).collect();
    out(&template.output(lines, &PS_FIELDS))
}

/// One container as Docker's container formatter shows it (`ps`, `system df -v`): the keys and
/// values of its `{{json .}}`, sorted as Go prints a map.
pub(crate) fn ps_row(
    c: &ContainerSummary,
    no_trunc: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> serde_json::Map<String, serde_json::Value> {
    let image = match c.image.strip_prefix("sha256:") {
        Some(hex) if !no_trunc => short(hex).to_string(),
        _ => c.image.clone(),
    };
    let serde_json::Value::Object(fields) = serde_json::json!({
        "Command": command_cell(&c.command, no_trunc),
        "CreatedAt": created_at(&c.created),
        "ID": if no_trunc { c.id.clone() } else { short(&c.id).to_string() },
        "Image": image,
        "Labels": c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
        "Names": c.name,
        "Ports": crate::cli::network::ports_cell(&c.ports),
        "RunningFor": berth_types::format::time_ago(&c.created, now),
        "State": c.state.status.as_str(),
        "Status": if c.status.is_empty() { c.state.human_status(now) } else { c.status.clone() },
    }) else {
        unreachable!("json! of an object is an object")
    };
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_column() {
        assert_eq!(command_cell("sh", false), "\"sh\"");
        assert_eq!(command_cell("sh -c 'echo \"hi\"'", true), "\"sh -c 'echo \\\"hi\\\"'\"");
        assert_eq!(command_cell("sleep 1000000000000000", false), "\"sleep 1000000000000…\"");
        assert_eq!(command_cell("sleep 1000000000000000", false).chars().count(), 22);
        assert_eq!(command_cell("sleep 1000000000000000", true), "\"sleep 1000000000000000\"");
    }
}
