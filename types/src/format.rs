//! How sizes, durations, times and IDs are written for people, in Docker's words (`4.26MB`,
//! `2 hours ago`, 12-digit IDs). Shared by the CLI and the dashboard so both say the same thing.

use chrono::{DateTime, Utc};

/// Go's `%.{precision}g`: `precision` significant digits, trailing zeros dropped, exponent form
/// for very large or small values (Docker's size functions are built on it).
fn format_g(value: f64, precision: usize) -> String {
    if value == 0.0 {
        return "0".into();
    }
    let sci = format!("{:.*e}", precision - 1, value);
    let (mantissa, exponent) = sci.split_once('e').expect("{:e} has an exponent");
    let exponent: i32 = exponent.parse().expect("{:e} exponent is a number");
    if exponent < -4 || exponent >= precision as i32 {
        let mantissa = trim_zeros(mantissa);
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.abs());
    }
    let decimals = (precision as i32 - 1 - exponent).max(0) as usize;
    trim_zeros(&format!("{value:.decimals$}")).to_string()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Docker's `units.HumanSizeWithPrecision`: decimal units (kB = 1000 B). `docker images` uses
/// precision 3.
pub fn human_size_with_precision(bytes: u64, precision: usize) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit < UNITS.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    format!("{}{}", format_g(size, precision), UNITS[unit])
}

/// Docker's `units.HumanSize` (4 significant digits), as `image prune` prints space reclaimed.
pub fn human_size(bytes: u64) -> String {
    human_size_with_precision(bytes, 4)
}

/// Docker's `units.HumanDuration` for a number of seconds. A negative duration (a clock ahead of
/// the other) reads as less than a second.
pub fn human_duration(seconds: i64) -> String {
    const HOUR: i64 = 3600;
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = seconds / 60;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    // Hours are rounded (1h40m reads "2 hours"); larger units count whole ones.
    let hours = (seconds + HOUR / 2) / HOUR;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", seconds / HOUR / 24 / 365)
}

/// Parses an RFC 3339 time as the API sends it; `None` for an empty or malformed one.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim()).ok().map(|t| t.with_timezone(&Utc))
}

/// `2 hours ago` for an RFC 3339 time seen at `now`; `N/A` when it is missing or unreadable.
pub fn time_ago(time: &str, now: DateTime<Utc>) -> String {
    match parse_time(time) {
        Some(then) => format!("{} ago", human_duration((now - then).num_seconds())),
        None => "N/A".into(),
    }
}

/// The 12 hex digits Docker shows for an ID (`sha256:` dropped).
pub fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.get(..12).unwrap_or(hex)
}

/// Splits `repository:tag` at the tag's colon; a colon before the last `/` belongs to a
/// registry port (`localhost:5000/app`), not to a tag.
pub fn split_tag(reference: &str) -> (&str, Option<&str>) {
    let name_start = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[name_start..].rfind(':') {
        Some(i) => {
            let colon = name_start + i;
            (&reference[..colon], Some(&reference[colon + 1..]))
        }
        None => (reference, None),
    }
}

/// Go's `time.ParseDuration` as Docker users write it (`10m`, `1h30m`, `1.5s`, `300ms`), in
/// nanoseconds; `None` for anything else (a bare number included).
pub fn parse_go_duration_ns(text: &str) -> Option<i64> {
    let mut rest = text;
    let mut total_ns: f64 = 0.0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        if number_end == 0 {
            return None;
        }
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let ns = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total_ns += number * ns;
        rest = &rest[unit_end..];
    }
    Some(total_ns as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_docker() {
        let cases = [
            (0, 3, "0B"),
            (999, 3, "999B"),
            (1000, 3, "1kB"),
            (1234, 3, "1.23kB"),
            (12_345, 3, "12.3kB"),
            (123_456, 3, "123kB"),
            (4_261_000, 3, "4.26MB"),
            // Go's %g carries into exponent form here, and so does Docker.
            (999_700, 3, "1e+03kB"),
            (1_000_000_000, 3, "1GB"),
            (4_261_234, 4, "4.261MB"),
            (u64::MAX, 3, "18.4EB"),
        ];
        for (bytes, precision, want) in cases {
            assert_eq!(human_size_with_precision(bytes, precision), want, "{bytes} bytes");
        }
        assert_eq!(human_size(1_234_567), "1.235MB");
    }

    #[test]
    fn durations_read_like_docker() {
        let cases = [
            (-30, "Less than a second"),
            (0, "Less than a second"),
            (1, "1 second"),
            (59, "59 seconds"),
            (60, "About a minute"),
            (119, "About a minute"),
            (120, "2 minutes"),
            (59 * 60 + 59, "59 minutes"),
            (3600, "About an hour"),
            (5400, "2 hours"),
            (47 * 3600, "47 hours"),
            (48 * 3600, "2 days"),
            (13 * 86_400, "13 days"),
            (14 * 86_400, "2 weeks"),
            (59 * 86_400, "8 weeks"),
            (60 * 86_400, "2 months"),
            (729 * 86_400, "24 months"),
            (730 * 86_400, "2 years"),
        ];
        for (seconds, want) in cases {
            assert_eq!(human_duration(seconds), want, "{seconds} s");
        }
    }

    #[test]
    fn time_ago_parses_rfc3339_with_any_precision_and_offset() {
        let now = parse_time("2026-11-27T12:00:00Z").unwrap();
        assert_eq!(time_ago("2026-11-27T10:00:00Z", now), "2 hours ago");
        assert_eq!(time_ago("2026-11-27T11:58:30.123456789Z", now), "About a minute ago");
        assert_eq!(time_ago("2026-11-27T13:00:00+02:00", now), "About an hour ago");
        assert_eq!(time_ago("", now), "N/A");
        assert_eq!(time_ago("yesterday", now), "N/A");
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration_ns("1h30m"), Some(5400 * 1_000_000_000));
        assert_eq!(parse_go_duration_ns("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_go_duration_ns("300ms"), Some(300_000_000));
        for bad in ["", "10", "m", "5x", "s5"] {
            assert_eq!(parse_go_duration_ns(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ids_and_tags() {
        assert_eq!(short_id("sha256:0123456789abcdef0123"), "0123456789ab");
        assert_eq!(short_id("0123"), "0123");
        assert_eq!(split_tag("localhost:5000/app:v1"), ("localhost:5000/app", Some("v1")));
        assert_eq!(split_tag("localhost:5000/app"), ("localhost:5000/app", None));
    }
}
