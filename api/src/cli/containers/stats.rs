//! `berth top` and `berth stats`: processes and resource usage of running containers.

use std::time::Duration;

use berth_types::format::human_size_with_precision;
use berth_types::{ContainerStats, ContainerStatus, ContainerSummary, TopReport};

use super::{container_path, short, StatsArgs, TopArgs};
use crate::cli::client::{CliError, Client};
use crate::cli::format::{Table, Template};
use crate::cli::{last_error, out};

pub async fn top(client: &Client, args: TopArgs) -> Result<(), CliError> {
    let report: TopReport = client.get_json(&container_path(&args.name, "/top")).await?;
    let mut table = Table::new(&report.titles.iter().map(String::as_str).collect::<Vec<_>>());
    for p in report.processes {
        table.row(p);
    }
    out(&table.render())
}

/// Docker's `units.BytesSize`: binary units, 4 significant digits (`1.5MiB`, `7.657GiB`).
fn bytes_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1024.0 && unit < UNITS.len() - 1 {
        size /= 1024.0;
        unit += 1;
    }
    // Below 1024 `%.4g` never switches to exponent form: four significant digits, zeros trimmed.
    let digits = if size < 1.0 { 1 } else { size.log10().floor() as i32 + 1 };
    let decimals = (4 - digits).max(0) as usize;
    let mut text = format!("{size:.decimals$}");
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{text}{}", UNITS[unit])
}

/// The fields of one `stats` row, as Docker's `--format` knows them, and their table headers.
const STATS_FIELDS: [(&str, &str); 9] = [
    ("BlockIO", "BLOCK I/O"),
    ("CPUPerc", "CPU %"),
    ("Container", "CONTAINER"),
    ("ID", "CONTAINER ID"),
    ("MemPerc", "MEM %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("Name", "NAME"),
    ("NetIO", "NET I/O"),
    ("PIDs", "PIDS"),
];

/// Docker's default `stats` table.
const STATS_TABLE: &str = "table {{.ID}}\\t{{.Name}}\\t{{.CPUPerc}}\\t{{.MemUsage}}\\t{{.MemPerc}}\\t{{.NetIO}}\\t{{.BlockIO}}\\t{{.PIDs}}";

/// `samples` through `template`; each is paired with what names it in `.Container`: the name the
/// user gave, else the short ID, as Docker does.
fn stats_output(template: &Template, samples: &[(String, ContainerStats)], no_trunc: bool) -> String {
    let mut lines = Vec::new();
    for (container, s) in samples {
        let mem_percent =
            if s.memory_limit == 0 { 0.0 } else { s.memory_in_use() as f64 * 100.0 / s.memory_limit as f64 };
        // Docker's `units.HumanSizeWithPrecision(_, 3)` of the sums over interfaces and devices.
        let pair = |a: u64, b: u64| {
            format!("{} / {}", human_size_with_precision(a, 3), human_size_with_precision(b, 3))
        };
        let net_io = pair(
            s.networks.values().map(|n| n.rx_bytes).sum(),
            s.networks.values().map(|n| n.tx_bytes).sum(),
        );
        let block_io = pair(
            s.block_io.iter().map(|d| d.read_bytes).sum(),
            s.block_io.iter().map(|d| d.write_bytes).sum(),
        );
        // The keys and values of Docker's `{{json .}}`, sorted as Go prints a map.
        let serde_json::Value::Object(fields) = serde_json::json!({
            "BlockIO": block_io,
            "CPUPerc": format!("{:.2}%", s.cpu_percent),
            "Container": container,
            "ID": if no_trunc { s.id.clone() } else { short(&s.id).to_string() },
            "MemPerc": format!("{mem_percent:.2}%"),
            "MemUsage": format!("{} / {}", bytes_size(s.memory_in_use()), bytes_size(s.memory_limit)),
            "Name": s.name,
            "NetIO": net_io,
            "PIDs": s.pids.to_string(),
        }) else {
            unreachable!("json! of an object is an object")
        };
        lines.push(template.render(&fields));
    }
    template.output(lines, &STATS_FIELDS)
}

/// `berth stats`: a table refreshed every second (or one sample with `--no-stream`) of the
/// named containers, else of the running ones (all with `-a`), through `--format` if given.
pub async fn stats(client: &Client, args: StatsArgs) -> Result<(), CliError> {
    let template =
        Template::for_list(args.format.as_deref(), STATS_TABLE, &STATS_FIELDS).map_err(CliError::Usage)?;
    let interval = Duration::from_secs(1);
    let targets = |client: &Client| {
        let names = args.names.clone();
        let all = args.all;
        let client = client.clone();
        async move {
            if !names.is_empty() {
                return Ok::<_, CliError>(names);
            }
            let path = if all { "/api/v1/containers?all=1" } else { "/api/v1/containers" };
            let list: Vec<ContainerSummary> = client.get_json(path).await?;
            Ok(list
                .into_iter()
                .filter(|c| c.state.status == ContainerStatus::Running || all)
                .map(|c| short(&c.id).to_string())
                .collect())
        }
    };
    let sample = |client: &Client, names: &[String]| {
        let client = client.clone();
        let names = names.to_vec();
        async move {
            let mut samples = Vec::new();
            let mut errors = Vec::new();
            for name in &names {
                match client.get_json::<ContainerStats>(&container_path(name, "/stats")).await {
                    Ok(s) => samples.push((name.clone(), s)),
                    Err(e) => errors.push(e),
                }
            }
            (samples, errors)
        }
    };
    if args.no_stream {
        // CPU use is measured between two samples, as Docker's one-shot does.
        let names = targets(client).await?;
        let (_, _) = sample(client, &names).await;
        tokio::time::sleep(interval).await;
        let (samples, errors) = sample(client, &names).await;
        out(&stats_output(&template, &samples, args.no_trunc))?;
        return last_error(errors);
    }
    loop {
        let names = targets(client).await?;
        let (samples, errors) = sample(client, &names).await;
        if !args.names.is_empty() && samples.is_empty() {
            return last_error(errors);
        }
        // Clear the screen and redraw, as Docker's live view does.
        out(&format!("\x1b[2J\x1b[H{}", stats_output(&template, &samples, args.no_trunc)))?;
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_sizes() {
        assert_eq!(bytes_size(0), "0B");
        assert_eq!(bytes_size(512), "512B");
        assert_eq!(bytes_size(1536), "1.5KiB");
        assert_eq!(bytes_size(1_572_864), "1.5MiB");
        assert_eq!(bytes_size(8_221_675_520), "7.657GiB");
        assert_eq!(bytes_size(64 << 20), "64MiB");
    }
}
