//! Variable interpolation in compose files (`${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:?error}`, `${VAR?error}`, `${VAR:+replacement}`, `${VAR+replacement}`, `$VAR`, `$$`) and
//! the `.env` / `env_file` format, with Docker Compose's rules and error wording.
//!
//! Hand-written: the Compose-specific parts (the `?` errors, unset-variable warnings, values
//! that nest `${...}`) are what matters here, and the general shell-expansion crates either
//! run commands or lack them.

use std::collections::BTreeMap;

use serde_yaml::Value;

use crate::error::{Error, Result};

/// Where variables come from, and what interpolation noticed.
#[derive(Debug, Clone, Default)]
pub struct Variables {
    pub values: BTreeMap<String, String>,
    /// Variables used but not set, in order of first use (Compose warns about each once).
    pub unset: Vec<String>,
}

impl Variables {
    /// The `.env` text's variables, with `environment` (the caller's process environment)
    /// winning over them, as in Docker Compose.
    pub fn new(env_file: Option<&str>, environment: &BTreeMap<String, String>) -> Result<Variables> {
        let mut values = match env_file {
            Some(text) => parse_env_file(text, ".env", |name| environment.get(name).cloned())?,
            None => BTreeMap::new(),
        };
        values.extend(environment.iter().map(|(k, v)| (k.clone(), v.clone())));
        Ok(Variables { values, unset: Vec::new() })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The warnings Compose prints for variables that were used but not set.
    pub fn warnings(&self) -> Vec<String> {
        self.unset
            .iter()
            .map(|name| format!("The \"{name}\" variable is not set. Defaulting to a blank string."))
            .collect()
    }

    fn note_unset(&mut self, name: &str) {
        if !self.unset.iter().any(|n| n == name) {
            self.unset.push(name.to_string());
        }
    }

    /// Interpolates every string value (not the keys) of a parsed YAML document in place.
    pub fn interpolate_value(&mut self, value: &mut Value) -> Result<()> {
        match value {
            Value::String(s) => {
                *s = self.interpolate(s)?;
            }
            Value::Sequence(items) => {
                for item in items {
                    self.interpolate_value(item)?;
                }
            }
            Value::Mapping(map) => {
                for (_, item) in map.iter_mut() {
                    self.interpolate_value(item)?;
                }
            }
            Value::Tagged(tagged) => self.interpolate_value(&mut tagged.value)?,
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
        Ok(())
    }

    /// Interpolates one string.
    pub fn interpolate(&mut self, text: &str) -> Result<String> {
        let lookup = |vars: &mut Variables, name: &str| vars.values.get(name).cloned();
        interpolate_with(text, self, &lookup)
    }
}

fn invalid_template(text: &str) -> Error {
    Error::InvalidInput(format!("Invalid template: {text:?}"))
}

fn is_name_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}

fn is_name_char(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric()
}

/// The interpolation itself; `lookup` reads a variable (and may note it).
fn interpolate_with(
    text: &str,
    vars: &mut Variables,
    lookup: &dyn Fn(&mut Variables, &str) -> Option<String>,
) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '$' {
            out.push(c);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => {
                out.push('$');
                i += 2;
            }
            Some('{') => {
                // The matching brace: defaults may hold `${...}` themselves.
                let start = i + 2;
                let mut depth = 1;
                let mut j = start;
                while j < chars.len() {
                    match chars[j] {
                        '{' if j > 0 && chars[j - 1] == '$' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                if j >= chars.len() {
                    return Err(invalid_template(text));
                }
                let inner: String = chars[start..j].iter().collect();
                out.push_str(&braced(&inner, text, vars, lookup)?);
                i = j + 1;
            }
            Some(&n) if is_name_start(n) => {
                let mut j = i + 1;
                while j < chars.len() && is_name_char(chars[j]) {
                    j += 1;
                }
                let name: String = chars[i + 1..j].iter().collect();
                match lookup(vars, &name) {
                    Some(v) => out.push_str(&v),
                    None => vars.note_unset(&name),
                }
                i = j;
            }
            _ => return Err(invalid_template(text)),
        }
    }
    Ok(out)
}

/// `${...}`'s content: a name, then optionally an operator and its word.
fn braced(
    inner: &str,
    whole: &str,
    vars: &mut Variables,
    lookup: &dyn Fn(&mut Variables, &str) -> Option<String>,
) -> Result<String> {
    let name_len = inner.find(|c: char| !is_name_char(c)).unwrap_or(inner.len());
    let name = &inner[..name_len];
    if name.is_empty() || !name.starts_with(is_name_start) {
        return Err(invalid_template(whole));
    }
    let rest = &inner[name_len..];
    let value = lookup(vars, name);
    let (op, word) = if let Some(w) = rest.strip_prefix(":-") {
        (":-", w)
    } else if let Some(w) = rest.strip_prefix(":?") {
        (":?", w)
    } else if let Some(w) = rest.strip_prefix(":+") {
        (":+", w)
    } else if let Some(w) = rest.strip_prefix('-') {
        ("-", w)
    } else if let Some(w) = rest.strip_prefix('?') {
        ("?", w)
    } else if let Some(w) = rest.strip_prefix('+') {
        ("+", w)
    } else if rest.is_empty() {
        ("", "")
    } else {
        return Err(invalid_template(whole));
    };
    let set_nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
    Ok(match op {
        "" => match value {
            Some(v) => v,
            None => {
                vars.note_unset(name);
                String::new()
            }
        },
        ":-" if set_nonempty => value.unwrap_or_default(),
        ":-" => interpolate_with(word, vars, lookup)?,
        "-" => match value {
            Some(v) => v,
            None => interpolate_with(word, vars, lookup)?,
        },
        ":?" | "?" => {
            let ok = if op == ":?" { set_nonempty } else { value.is_some() };
            if !ok {
                let reason = interpolate_with(word, vars, lookup)?;
                return Err(Error::InvalidInput(if reason.is_empty() {
                    format!("required variable {name} is missing a value")
                } else {
                    format!("required variable {name} is missing a value: {reason}")
                }));
            }
            value.unwrap_or_default()
        }
        ":+" if set_nonempty => interpolate_with(word, vars, lookup)?,
        "+" if value.is_some() => interpolate_with(word, vars, lookup)?,
        _ => String::new(),
    })
}

/// Parses a `.env` / `env_file` text: `KEY=VALUE` lines, `# comments`, an optional `export `,
/// values in single quotes (literal), double quotes (`\n`, `\t`, `\"`, `\\` escapes, `${VAR}`
/// interpolated) or bare (trimmed, ` #...` dropped, `${VAR}` interpolated). A bare `KEY` takes
/// its value from `lookup` (the environment) and is left out when that has none. Variables
/// defined earlier in the file are visible to later lines. `what` names the file in errors.
pub fn parse_env_file(
    text: &str,
    what: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>> {
    let mut values = BTreeMap::new();
    let mut lines = text.lines().enumerate();
    while let Some((index, raw)) = lines.next() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map(str::trim_start).unwrap_or(line);
        let bad =
            |why: &str| Error::InvalidInput(format!("failed to read {what}: line {}: {why}", index + 1));
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim_start())),
            None => (line, None),
        };
        if key.is_empty()
            || !key.starts_with(is_name_start)
            || !key.chars().all(|c| is_name_char(c) || c == '.' || c == '-')
        {
            return Err(bad(&format!("unexpected character in variable name {key:?}")));
        }
        let Some(value) = value else {
            if let Some(v) = lookup(key) {
                values.insert(key.to_string(), v);
            }
            continue;
        };
        // Earlier lines of the file, then the environment.
        let mut vars = Variables { values: values.clone(), unset: Vec::new() };
        let env_lookup =
            |vars: &mut Variables, name: &str| vars.values.get(name).cloned().or_else(|| lookup(name));
        let parsed = if let Some(body) = value.strip_prefix('\'') {
            let mut body = body.to_string();
            // A single-quoted value may span lines.
            while !body.contains('\'') {
                let Some((_, next)) = lines.next() else { return Err(bad("unterminated quoted value")) };
                body.push('\n');
                body.push_str(next);
            }
            let end = body.find('\'').expect("checked above");
            body[..end].to_string()
        } else if let Some(body) = value.strip_prefix('"') {
            let mut body = body.to_string();
            let end = loop {
                if let Some(end) = closing_double_quote(&body) {
                    break end;
                }
                let Some((_, next)) = lines.next() else { return Err(bad("unterminated quoted value")) };
                body.push('\n');
                body.push_str(next);
            };
            let unescaped = unescape_double(&body[..end]);
            interpolate_with(&unescaped, &mut vars, &env_lookup)
                .map_err(|e| Error::InvalidInput(format!("failed to read {what}: line {}: {e}", index + 1)))?
        } else {
            let bare = match value.find(" #") {
                Some(at) => &value[..at],
                None => value,
            };
            interpolate_with(bare.trim_end(), &mut vars, &env_lookup)
                .map_err(|e| Error::InvalidInput(format!("failed to read {what}: line {}: {e}", index + 1)))?
        };
        values.insert(key.to_string(), parsed);
    }
    Ok(values)
}

/// Where an unescaped `"` closes a double-quoted value.
fn closing_double_quote(body: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

fn unescape_double(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Variables {
        Variables {
            values: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            unset: Vec::new(),
        }
    }

    #[test]
    fn forms_of_substitution() {
        let mut v = vars(&[("SET", "value"), ("EMPTY", "")]);
        let cases = [
            ("plain", "plain"),
            ("$SET", "value"),
            ("${SET}", "value"),
            ("a${SET}b", "avalueb"),
            ("$SET-x", "value-x"),
            ("$$SET", "$SET"),
            ("$${SET}", "${SET}"),
            ("${UNSET}", ""),
            ("${UNSET:-dflt}", "dflt"),
            ("${EMPTY:-dflt}", "dflt"),
            ("${EMPTY-dflt}", ""),
            ("${UNSET-dflt}", "dflt"),
            ("${SET:-dflt}", "value"),
            ("${UNSET:-${SET}}", "value"),
            ("${UNSET:-${ALSO_UNSET:-deep}}", "deep"),
            ("${SET:+alt}", "alt"),
            ("${EMPTY:+alt}", ""),
            ("${EMPTY+alt}", "alt"),
            ("${UNSET+alt}", ""),
            ("${SET:?must}", "value"),
            ("${EMPTY?must}", ""),
            ("${UNSET:-a b c}", "a b c"),
        ];
        for (text, want) in cases {
            assert_eq!(v.interpolate(text).unwrap(), want, "{text}");
        }
        assert_eq!(v.unset, ["UNSET"]);
        assert_eq!(v.warnings(), ["The \"UNSET\" variable is not set. Defaulting to a blank string."]);
    }

    #[test]
    fn required_and_invalid() {
        let mut v = vars(&[("EMPTY", "")]);
        let err = |v: &mut Variables, t: &str| v.interpolate(t).unwrap_err().to_string();
        assert_eq!(
            err(&mut v, "${DB:?set DB please}"),
            "required variable DB is missing a value: set DB please"
        );
        assert_eq!(err(&mut v, "${EMPTY:?}"), "required variable EMPTY is missing a value");
        assert_eq!(err(&mut v, "${DB?gone}"), "required variable DB is missing a value: gone");
        assert_eq!(err(&mut v, "${unterminated"), "Invalid template: \"${unterminated\"");
        assert_eq!(err(&mut v, "${}"), "Invalid template: \"${}\"");
        assert_eq!(err(&mut v, "${A B}"), "Invalid template: \"${A B}\"");
        assert_eq!(err(&mut v, "price $5"), "Invalid template: \"price $5\"");
        assert_eq!(err(&mut v, "trailing $"), "Invalid template: \"trailing $\"");
    }

    #[test]
    fn yaml_values_not_keys() {
        let mut v = vars(&[("TAG", "1.2"), ("PORT", "8080")]);
        let mut doc: Value = serde_yaml::from_str(
            "services:\n  $TAG:\n    image: \"busybox:${TAG}\"\n    ports: [\"${PORT}:80\"]\n    x: 3\n",
        )
        .unwrap();
        v.interpolate_value(&mut doc).unwrap();
        let service = &doc["services"]["$TAG"];
        assert_eq!(service["image"], Value::from("busybox:1.2"));
        assert_eq!(service["ports"][0], Value::from("8080:80"));
        assert_eq!(service["x"], Value::from(3));
    }

    #[test]
    fn env_files() {
        let text = "# comment\n\nexport A=1\nB = two words # comment\nC='${A} literal'\nD=\"${A}\\nline\"\nE=${A}-${B}\nF=\nG\nH\nM=\"multi\nline\"\n";
        let env = |name: &str| (name == "G").then(|| "from-env".to_string());
        let values = parse_env_file(text, ".env", env).unwrap();
        let want: BTreeMap<String, String> = [
            ("A", "1"),
            ("B", "two words"),
            ("C", "${A} literal"),
            ("D", "1\nline"),
            ("E", "1-two words"),
            ("F", ""),
            ("G", "from-env"),
            ("M", "multi\nline"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(values, want);
        let err = parse_env_file("A=1\n1X=2\n", ".env", |_| None).unwrap_err().to_string();
        assert_eq!(err, "failed to read .env: line 2: unexpected character in variable name \"1X\"");
        let err = parse_env_file("A=\"open\n", "app.env", |_| None).unwrap_err().to_string();
        assert_eq!(err, "failed to read app.env: line 1: unterminated quoted value");
        let err = parse_env_file("A=${B:?needed}\n", ".env", |_| None).unwrap_err().to_string();
        assert_eq!(err, "failed to read .env: line 1: required variable B is missing a value: needed");
    }

    #[test]
    fn environment_wins_over_env_file() {
        let environment = [("A".to_string(), "shell".to_string())].into_iter().collect();
        let v = Variables::new(Some("A=file\nB=file\n"), &environment).unwrap();
        assert_eq!(v.get("A"), Some("shell"));
        assert_eq!(v.get("B"), Some("file"));
    }
}
