//! Output the way Docker's CLI prints it: tab-aligned tables, human sizes ("4.26MB") and ages
//! ("2 hours ago"), familiar image names ("busybox" for docker.io/library/busybox).

use std::time::Duration;

/// A table aligned like Go's `tabwriter` as Docker configures it (minimum width 10, padding 3,
/// the last column unpadded).
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table { rows: vec![header.iter().map(|s| s.to_string()).collect()] }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                let longest =
                    self.rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0);
                (longest + 3).max(10)
            })
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                line.push_str(cell);
                if c + 1 < row.len() {
                    line.extend(std::iter::repeat_n(' ', widths[c] - cell.chars().count()));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Go's `%.{precision}g`: `precision` significant digits, trailing zeros dropped, exponent form
/// for very large or small values.
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

/// Docker's `units.HumanSizeWithPrecision`: decimal units (kB = 1000 B).
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

/// Docker's `units.HumanDuration`.
pub fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
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
    let hours = (d.as_secs_f64() / 3600.0 + 0.5) as u64;
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
    format!("{} years", seconds / 3600 / 24 / 365)
}

/// "2 hours ago" for an RFC 3339 time, "N/A" when there is none.
pub fn created_since(created: &str, now: chrono::DateTime<chrono::Utc>) -> String {
    match chrono::DateTime::parse_from_rfc3339(created) {
        Ok(t) => {
            let age = (now - t.with_timezone(&chrono::Utc)).to_std().unwrap_or_default();
            format!("{} ago", human_duration(age))
        }
        Err(_) => "N/A".into(),
    }
}

/// Go's `time.Time.String()` form Docker's `{{json .}}` uses for CreatedAt, in UTC.
pub fn created_at(created: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(created) {
        Ok(t) => t.with_timezone(&chrono::Utc).format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string(),
        Err(_) => String::new(),
    }
}

/// Splits a normalised reference into the familiar repository and the tag Docker shows:
/// `docker.io/library/busybox:latest` → (`busybox`, `latest`). A name the engine cannot parse
/// is shown as it is.
pub fn familiar_repo_tag(reference: &str) -> (String, String) {
    let familiar = match berth_engine::Reference::parse(reference) {
        Ok(r) => r.familiar(),
        Err(_) => reference.to_string(),
    };
    let name = familiar.split('@').next().unwrap_or(&familiar);
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[last_slash..].rfind(':') {
        Some(i) => (name[..last_slash + i].to_string(), name[last_slash + i + 1..].to_string()),
        None => (name.to_string(), "<none>".to_string()),
    }
}

/// The short image ID: 12 hex digits without `sha256:`.
pub fn short_id(id: &str) -> String {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.chars().take(12).collect()
}

/// A `--format` Go template, the subset Docker users write: literal text, `{{.Field}}`,
/// `{{json .}}`, the `table ` prefix (a header row and aligned columns), and `\t` / `\n`
/// escapes. Hand-written: a full Go template engine is far more than these forms need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    table: bool,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(String),
    Json,
}

impl Template {
    /// Parses `format`; `fields` are the names `{{.Name}}` may use.
    pub fn parse(format: &str, fields: &[&str]) -> Result<Template, String> {
        let (table, body) = match format.strip_prefix("table") {
            Some(rest) if rest.is_empty() || rest.starts_with(' ') => (true, rest),
            _ => (false, format),
        };
        let body = body.trim_matches(' ').replace("\\t", "\t").replace("\\n", "\n");
        let mut parts = Vec::new();
        let mut rest = body.as_str();
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let close =
                rest[open..].find("}}").ok_or_else(|| format!("template {format:?}: unclosed action"))?;
            let action = rest[open + 2..open + close].trim();
            let part = if action == "json ." {
                Part::Json
            } else if let Some(name) = action.strip_prefix('.').filter(|n| fields.contains(n)) {
                Part::Field(name.to_string())
            } else {
                return Err(format!(
                    "template {format:?}: unsupported action {{{{{action}}}}}; use {{{{json .}}}} or one of {}",
                    fields.iter().map(|f| format!("{{{{.{f}}}}}")).collect::<Vec<_>>().join(", ")
                ));
            };
            parts.push(part);
            rest = &rest[open + close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template { table, parts })
    }

    pub fn is_table(&self) -> bool {
        self.table
    }

    /// The template applied to one object: `fields` by name, `json` for `{{json .}}`.
    pub fn render(&self, fields: &serde_json::Map<String, serde_json::Value>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Field(name) => match fields.get(name) {
                    Some(serde_json::Value::String(s)) => out.push_str(s),
                    Some(other) => out.push_str(&other.to_string()),
                    None => {}
                },
                Part::Json => out.push_str(&serde_json::Value::Object(fields.clone()).to_string()),
            }
        }
        out
    }

    /// The header row of a table: each field's header (`headers`), the text between them kept.
    pub fn header(&self, headers: &[(&str, &str)]) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Field(name) => {
                    out.push_str(headers.iter().find(|(f, _)| f == name).map_or(name.as_str(), |(_, h)| h))
                }
                Part::Json => {}
            }
        }
        out
    }
}

/// Go's `path.Match` for the `images [REPOSITORY[:TAG]]` filter: `*` is any run of characters
/// but `/`, `?` one such character; everything else matches itself.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('*', rest)) => {
                (0..=n.len()).take_while(|&i| i == 0 || n[i - 1] != '/').any(|i| go(rest, &n[i..]))
            }
            Some(('?', rest)) => n.first().is_some_and(|&c| c != '/') && go(rest, &n[1..]),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size_with_precision(0, 3), "0B");
        assert_eq!(human_size_with_precision(999, 3), "999B");
        assert_eq!(human_size_with_precision(1000, 3), "1kB");
        assert_eq!(human_size_with_precision(1_234_567, 3), "1.23MB");
        assert_eq!(human_size_with_precision(4_261_000, 3), "4.26MB");
        assert_eq!(human_size_with_precision(12_000_000, 3), "12MB");
        assert_eq!(human_size_with_precision(123_456_789, 3), "123MB");
        assert_eq!(human_size_with_precision(999_999, 3), "1e+03kB");
        assert_eq!(human_size(1_234_567), "1.235MB");
        assert_eq!(human_size(0), "0B");
    }

    #[test]
    fn durations_like_docker() {
        let s = Duration::from_secs;
        assert_eq!(human_duration(Duration::from_millis(300)), "Less than a second");
        assert_eq!(human_duration(s(1)), "1 second");
        assert_eq!(human_duration(s(59)), "59 seconds");
        assert_eq!(human_duration(s(60)), "About a minute");
        assert_eq!(human_duration(s(59 * 60)), "59 minutes");
        assert_eq!(human_duration(s(3600)), "About an hour");
        assert_eq!(human_duration(s(2 * 3600)), "2 hours");
        assert_eq!(human_duration(s(47 * 3600)), "47 hours");
        assert_eq!(human_duration(s(3 * 86400)), "3 days");
        assert_eq!(human_duration(s(20 * 86400)), "2 weeks");
        assert_eq!(human_duration(s(90 * 86400)), "3 months");
        assert_eq!(human_duration(s(800 * 86400)), "2 years");
    }

    #[test]
    fn table_aligns_like_tabwriter() {
        let mut t = Table::new(&["REPOSITORY", "TAG", "IMAGE ID"]);
        t.row(vec!["busybox".into(), "latest".into(), "0123456789ab".into()]);
        assert_eq!(t.render(), "REPOSITORY   TAG       IMAGE ID\nbusybox      latest    0123456789ab\n");
    }

    #[test]
    fn templates() {
        let fields = ["ID", "Repository", "Tag"];
        let mut row = serde_json::Map::new();
        row.insert("ID".into(), "0123".into());
        row.insert("Repository".into(), "busybox".into());
        row.insert("Tag".into(), "latest".into());
        let t = Template::parse("{{.Repository}}:{{ .Tag }}", &fields).unwrap();
        assert!(!t.is_table());
        assert_eq!(t.render(&row), "busybox:latest");
        let t = Template::parse("table {{.ID}}\\t{{.Repository}}", &fields).unwrap();
        assert!(t.is_table());
        assert_eq!(t.render(&row), "0123\tbusybox");
        assert_eq!(t.header(&[("ID", "IMAGE ID")]), "IMAGE ID\tRepository");
        let t = Template::parse("{{json .}}", &fields).unwrap();
        assert_eq!(t.render(&row), r#"{"ID":"0123","Repository":"busybox","Tag":"latest"}"#);
        assert!(Template::parse("{{.Nope}}", &fields).unwrap_err().contains("unsupported action {{.Nope}}"));
        assert!(Template::parse("{{.ID", &fields).unwrap_err().contains("unclosed"));
        assert!(Template::parse("{{range .}}{{end}}", &fields).is_err());
    }

    #[test]
    fn globs() {
        assert!(glob_match("busybox", "busybox"));
        assert!(glob_match("busy*", "busybox"));
        assert!(glob_match("*/app", "team/app"));
        assert!(!glob_match("*", "team/app"));
        assert!(glob_match("b?sybox", "busybox"));
        assert!(!glob_match("busybox", "busybox2"));
    }

    #[test]
    fn ids_and_times() {
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(created_at("2024-01-01T00:00:00Z"), "2024-01-01 00:00:00 +0000 UTC");
        let now =
            chrono::DateTime::parse_from_rfc3339("2024-01-01T02:00:00Z").unwrap().with_timezone(&chrono::Utc);
        assert_eq!(created_since("2024-01-01T00:00:00Z", now), "2 hours ago");
        assert_eq!(created_since("", now), "N/A");
    }
}
