//! Output the way Docker's CLI prints it: tab-aligned tables, human sizes ("4.26MB") and ages
//! ("2 hours ago"), familiar image names ("busybox" for docker.io/library/busybox).

pub use berth_types::format::{human_size, human_size_with_precision, short_id, time_ago};

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

    /// The template of a list command's `--format`: its `default` table when none (or `table`)
    /// is given, `{{json .}}` for `json`, else the template given; `fields` are the command's
    /// fields with their table headers.
    pub fn for_list(
        format: Option<&str>,
        default: &str,
        fields: &[(&str, &str)],
    ) -> Result<Template, String> {
        let format = match format {
            None | Some("") | Some("table") => default,
            Some("json") => "{{json .}}",
            Some(other) => other,
        };
        let names: Vec<&str> = fields.iter().map(|(f, _)| *f).collect();
        Template::parse(format, &names)
    }

    /// Output of `lines` rendered by this template: an aligned table under a header row for a
    /// `table` template, else one line each.
    pub fn output(&self, lines: Vec<String>, header_names: &[(&str, &str)]) -> String {
        if !self.is_table() {
            return lines.into_iter().map(|line| line + "\n").collect();
        }
        let header = self.header(header_names);
        let mut table = Table::new(&header.split('\t').collect::<Vec<_>>());
        for line in lines {
            table.row(line.split('\t').map(str::to_string).collect());
        }
        table.render()
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
                Part::Json => out.push_str(&go_json(&serde_json::Value::Object(fields.clone()))),
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

/// JSON as Go's `json.Marshal` writes it: `<`, `>`, `&`, U+2028 and U+2029 escaped (so `<none>`
/// is `\u003cnone\u003e`, as in Docker's `--format json`). They occur only inside strings, so
/// replacing them in the serialised text is exact.
fn go_json(value: &serde_json::Value) -> String {
    let mut out = String::new();
    for c in value.to_string().chars() {
        match c {
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
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
        row.insert("Tag".into(), "<none> & more".into());
        assert_eq!(
            t.render(&row),
            r#"{"ID":"0123","Repository":"busybox","Tag":"\u003cnone\u003e \u0026 more"}"#
        );
        assert!(Template::parse("{{.Nope}}", &fields).unwrap_err().contains("unsupported action {{.Nope}}"));
        assert!(Template::parse("{{.ID", &fields).unwrap_err().contains("unclosed"));
        assert!(Template::parse("{{range .}}{{end}}", &fields).is_err());
        let headers = [("ID", "IMAGE ID"), ("Tag", "TAG")];
        for default in [None, Some(""), Some("table")] {
            assert_eq!(
                Template::for_list(default, "table {{.ID}}", &headers),
                Template::parse("table {{.ID}}", &fields)
            );
        }
        assert_eq!(
            Template::for_list(Some("json"), "table {{.ID}}", &headers),
            Template::parse("{{json .}}", &fields)
        );
        assert!(Template::for_list(Some("{{.Repository}}"), "", &headers).is_err());
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
        assert_eq!(created_at("2024-01-01T00:00:00Z"), "2024-01-01 00:00:00 +0000 UTC");
    }
}
