//! Flag values of the container commands as Docker reads them: sizes (`-m 512m`), CPUs
//! (`--cpus 1.5`), restart policies, env files, labels, and the times of `logs --since`.

use std::collections::BTreeMap;

use berth_types::RestartPolicy;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// Docker's `RAMInBytes`: a number with an optional binary unit (`b`, `k`, `m`, `g`, `t`, `p`,
/// any case, optionally followed by `b` or `ib`): `512m`, `1.5g`, `100KiB`, `4096`.
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let invalid = || format!("invalid size: '{text}'");
    let t = text.trim();
    let digits_end = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits_end);
    let number: f64 = number.parse().map_err(|_| invalid())?;
    let unit = unit.trim_start().to_ascii_lowercase();
    let unit = unit.strip_suffix("ib").or_else(|| unit.strip_suffix('b')).unwrap_or(&unit);
    let multiplier: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        _ => return Err(invalid()),
    };
    let bytes = number * multiplier as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(invalid());
    }
    Ok(bytes as u64)
}

/// `--cpus`: a positive decimal number of CPUs.
pub fn parse_cpus(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 => Ok(n),
        Ok(_) => Err(format!("invalid number of CPUs: {text}")),
        Err(_) => Err(format!("failed to parse {text} as a rational number")),
    }
}

/// `--restart no|always|unless-stopped|on-failure[:max-retries]`.
pub fn parse_restart(text: &str) -> Result<RestartPolicy, String> {
    let (name, count) = match text.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (text, None),
    };
    let no_count = |policy: RestartPolicy| match count {
        None => Ok(policy),
        Some(_) => Err(format!("maximum retry count cannot be used with restart policy '{name}'")),
    };
    match name {
        "" | "no" => no_count(RestartPolicy::No),
        "always" => no_count(RestartPolicy::Always),
        "unless-stopped" => no_count(RestartPolicy::UnlessStopped),
        "on-failure" => {
            let max_retries = match count {
                None => 0,
                Some(c) => c.parse::<u32>().map_err(|_| {
                    format!("invalid restart policy format: maximum retry count must be an integer: {c}")
                })?,
            };
            Ok(RestartPolicy::OnFailure { max_retries })
        }
        other => Err(format!(
            "invalid restart policy '{other}': choose no, always, unless-stopped or on-failure[:max-retries]"
        )),
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("4096").unwrap(), 4096);
        assert_eq!(parse_memory("512m").unwrap(), 512 << 20);
        assert_eq!(parse_memory("512M").unwrap(), 512 << 20);
        assert_eq!(parse_memory("512mb").unwrap(), 512 << 20);
        assert_eq!(parse_memory("1g").unwrap(), 1 << 30);
        assert_eq!(parse_memory("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_memory("100KiB").unwrap(), 100 << 10);
        assert_eq!(parse_memory("10b").unwrap(), 10);
        for bad in ["", "m", "abc", "12x", "-1m", "1.2.3m", "1e3"] {
            assert_eq!(parse_memory(bad).unwrap_err(), format!("invalid size: '{bad}'"), "{bad}");
        }
    }

    #[test]
    fn cpus() {
        assert_eq!(parse_cpus("1.5").unwrap(), 1.5);
        assert_eq!(parse_cpus("0.01").unwrap(), 0.01);
        assert!(parse_cpus("abc").unwrap_err().contains("rational number"));
        assert!(parse_cpus("-1").is_err());
        assert!(parse_cpus("NaN").is_err());
    }

    #[test]
    fn restart_policies() {
        assert_eq!(parse_restart("no").unwrap(), RestartPolicy::No);
        assert_eq!(parse_restart("always").unwrap(), RestartPolicy::Always);
        assert_eq!(parse_restart("unless-stopped").unwrap(), RestartPolicy::UnlessStopped);
        assert_eq!(parse_restart("on-failure").unwrap(), RestartPolicy::OnFailure { max_retries: 0 });
        assert_eq!(parse_restart("on-failure:3").unwrap(), RestartPolicy::OnFailure { max_retries: 3 });
        assert!(parse_restart("on-failure:x").unwrap_err().contains("must be an integer"));
        assert!(parse_restart("always:3").unwrap_err().contains("cannot be used"));
        assert!(parse_restart("sometimes").unwrap_err().contains("invalid restart policy 'sometimes'"));
    }

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
