//! `berth logs`: a container's output, once or followed.

use std::io::Write;

use berth_types::LogEntry;
use futures_util::TryStreamExt;
use http_body_util::BodyExt;
use hyper::Method;

use super::{container_path, LogsArgs};
use crate::cli::client::{empty_body, query, CliError, Client};
use crate::cli::opts::parse_time_arg;

/// `berth logs`: stdout entries to stdout, stderr ones to stderr; `-t` prefixes each line with
/// its time (RFC 3339, nine fractional digits, as Docker).
pub async fn logs(client: &Client, args: LogsArgs) -> Result<(), CliError> {
    let now = chrono::Utc::now();
    let time = |v: &Option<String>, flag: &str| {
        v.as_deref()
            .map(|t| {
                parse_time_arg(t, now)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
                    .map_err(|e| CliError::Usage(format!("invalid value for --{flag}: {e}")))
            })
            .transpose()
    };
    let since = time(&args.since, "since")?;
    let until = time(&args.until, "until")?;
    if args.tail != "all" && args.tail.parse::<usize>().is_err() {
        return Err(CliError::Usage(format!(
            "invalid value for --tail: {:?} (a number or \"all\")",
            args.tail
        )));
    }
    let mut pairs = vec![("tail", args.tail.as_str())];
    if args.follow {
        pairs.push(("follow", "1"));
    }
    if let Some(s) = &since {
        pairs.push(("since", s));
    }
    if let Some(u) = &until {
        pairs.push(("until", u));
    }
    let path = container_path(&args.name, &format!("/logs{}", query(pairs)));
    let response = client.request(Method::GET, &path, None, empty_body()).await?;
    let body = response.into_body().into_data_stream().map_err(std::io::Error::other);
    let reader = tokio_util::io::StreamReader::new(body);
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(reader));
    let broken = |e: std::io::Error| CliError::Local(format!("reading the log from the daemon: {e}"));
    while let Some(line) = lines.next_line().await.map_err(broken)? {
        let entry: LogEntry =
            serde_json::from_str(&line).map_err(|e| CliError::Local(format!("decoding a log entry: {e}")))?;
        let mut text = String::new();
        if args.timestamps {
            let t = berth_types::format::parse_time(&entry.time)
                .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string())
                .unwrap_or(entry.time.clone());
            text.push_str(&t);
            text.push(' ');
        }
        text.push_str(&entry.line);
        let result = if entry.stream == "stderr" {
            let mut e = std::io::stderr().lock();
            e.write_all(text.as_bytes()).and_then(|()| e.flush())
        } else {
            let mut o = std::io::stdout().lock();
            o.write_all(text.as_bytes()).and_then(|()| o.flush())
        };
        match result {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(CliError::Local(format!("writing the log: {e}"))),
        }
    }
    Ok(())
}
