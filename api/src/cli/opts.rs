//! Flag values of the container commands as Docker reads them: sizes (`-m 512m`), CPUs
//! (`--cpus 1.5`), restart policies, env files, labels, and the times of `logs --since`.

use std::collections::BTreeMap;

pub use berth_types::parse::{parse_cpus, parse_memory, parse_restart};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// One `-e` entry: `KEY=VALUE` as it is, a bare `KEY` takes the value from the CLI's own
/// environment and is left out when that has none (as Docker does).
pub fn env_entry(entry: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<Option<String>, String> {
    let key = entry.split_once('=').map_or(entry, |(k, _)| k);
    if key.is_empty() {
        return Err(format!("invalid environment variable: {entry}"));
    }
    if key.contains(char::is_whitespace) {
        return Err(format!("variable '{key}' contains whitespaces"));
    }
    if entry.contains('=') {
        return Ok(Some(entry.to_string()));
    }
    Ok(lookup(key).map(|v| format!("{key}={v}")))
}

/// An `--env-file`: one `KEY=VALUE` (or bare `KEY`) per line; blank lines and lines starting
/// with `#` are skipped; values are taken literally (no quotes removed), as Docker reads it.
pub fn parse_env_file(
    text: &str,
    file: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let entry = env_entry(trimmed, &lookup).map_err(|e| format!("{file}:{}: {e}", n + 1))?;
        out.extend(entry);
    }
    Ok(out)
}

/// `-l key=value` (a bare `key` has an empty value).
pub fn parse_labels(entries: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut labels = BTreeMap::new();
    for entry in entries {
        let (k, v) = entry.split_once('=').unwrap_or((entry, ""));
        if k.is_empty() {
            return Err(format!("invalid label '{entry}': empty name"));
        }
        labels.insert(k.to_string(), v.to_string());
    }
    Ok(labels)
}

/// Go's `time.ParseDuration` subset Docker users write: `10m`, `1h30m`, `1.5s`, `300ms`.
pub fn parse_go_duration(text: &str) -> Option<chrono::Duration> {
    berth_types::format::parse_go_duration_ns(text).map(chrono::Duration::nanoseconds)
}

/// Docker's `--since`/`--until` values: a duration before `now` (`10m`), a Unix time
/// (`1700000000`, `1700000000.5`), or a date and time (`2024-01-02`, `2024-01-02T15:04:05`,
/// RFC 3339 with a zone; times without a zone are UTC).
pub fn parse_time_arg(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let t = text.trim();
    if let Some(d) = parse_go_duration(t) {
        return Ok(now - d);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(t) {
        return Ok(t.to_utc());
    }
    if let Ok(secs) = t.parse::<f64>() {
        let whole = secs.trunc() as i64;
        let nanos = ((secs - secs.trunc()) * 1e9).round() as u32;
        return DateTime::from_timestamp(whole, nanos).ok_or_else(|| format!("invalid time {text:?}"));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(t, format) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    Err(format!(
        "invalid time {text:?}: use a duration (10m), a Unix time, or a date and time (2024-01-02T15:04:05Z)"
    ))
}

/// `--security-opt` as Docker's CLI sends it: each option needs a value but
/// `no-new-privileges`, and `seccomp=FILE` (other than `unconfined`) becomes the file's JSON,
/// compacted: the daemon reads no client file.
pub fn security_opts(opts: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::with_capacity(opts.len());
    for opt in opts {
        let (key, value) = match opt.split_once('=') {
            Some(kv) => (kv.0, Some(kv.1)),
            None if opt == "no-new-privileges" => (opt.as_str(), None),
            None => match opt.split_once(':') {
                Some(kv) => (kv.0, Some(kv.1)),
                None => (opt.as_str(), None),
            },
        };
        if key != "no-new-privileges" && value.is_none_or(str::is_empty) {
            return Err(format!("Invalid --security-opt: {opt:?}"));
        }
        match (key, value) {
            ("seccomp", Some(file)) if file != "unconfined" && file != "builtin" => {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| format!("opening seccomp profile ({file}) failed: {e}"))?;
                let json: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|e| format!("compacting json for seccomp profile ({file}) failed: {e}"))?;
                out.push(format!("seccomp={json}"));
            }
            _ => out.push(opt.clone()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_entries_and_files() {
        let lookup = |k: &str| (k == "HOME").then(|| "/root".to_string());
        assert_eq!(env_entry("A=b c", lookup).unwrap(), Some("A=b c".into()));
        assert_eq!(env_entry("A=", lookup).unwrap(), Some("A=".into()));
        assert_eq!(env_entry("HOME", lookup).unwrap(), Some("HOME=/root".into()));
        assert_eq!(env_entry("UNSET_HERE", lookup).unwrap(), None);
        assert!(env_entry("=x", lookup).is_err());
        assert!(env_entry("A B=1", lookup).unwrap_err().contains("whitespaces"));
        let file = "# comment\n\nA=1\n  B=\"quoted\"\nHOME\nNOPE\n";
        assert_eq!(parse_env_file(file, "f.env", lookup).unwrap(), ["A=1", "B=\"quoted\"", "HOME=/root"]);
        assert_eq!(
            parse_env_file("X Y=1\n", "f.env", lookup).unwrap_err(),
            "f.env:1: variable 'X Y' contains whitespaces"
        );
    }

    #[test]
    fn labels() {
        let l = parse_labels(&["a=1".into(), "b".into(), "c=x=y".into()]).unwrap();
        assert_eq!(l.get("a").unwrap(), "1");
        assert_eq!(l.get("b").unwrap(), "");
        assert_eq!(l.get("c").unwrap(), "x=y");
        assert!(parse_labels(&["=1".into()]).is_err());
    }

    #[test]
    fn times() {
        let now = DateTime::parse_from_rfc3339("2024-01-02T03:04:05Z").unwrap().to_utc();
        let at = |s: &str| parse_time_arg(s, now).unwrap().to_rfc3339();
        assert_eq!(at("10m"), "2024-01-02T02:54:05+00:00");
        assert_eq!(at("1h30m"), "2024-01-02T01:34:05+00:00");
        assert_eq!(at("1.5s"), "2024-01-02T03:04:03.500+00:00");
        assert_eq!(at("1704164645"), "2024-01-02T03:04:05+00:00");
        assert_eq!(at("2024-01-01"), "2024-01-01T00:00:00+00:00");
        assert_eq!(at("2024-01-01T10:00:00"), "2024-01-01T10:00:00+00:00");
        assert_eq!(at("2024-01-01T10:00:00+02:00"), "2024-01-01T08:00:00+00:00");
        assert!(parse_time_arg("yesterday", now).is_err());
        assert!(parse_go_duration("10").is_none());
        assert!(parse_go_duration("m").is_none());
    }
}
