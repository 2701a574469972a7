//! `berth inspect` (containers, then images and volumes) and its `--format` templates.

use super::{container_path, InspectArgs};
use crate::cli::client::{path_segment, CliError, Client};
use crate::cli::{last_error, out};

/// `berth inspect`: containers first, then images, as Docker looks names up; a JSON array of
/// what was found, or each object through `--format`. Every name not found is reported and
/// makes the exit code 1.
pub async fn inspect(client: &Client, args: InspectArgs) -> Result<(), CliError> {
    let kind = args.kind.as_deref().unwrap_or("");
    if !["", "container", "image", "volume"].contains(&kind) {
        return Err(CliError::Usage(format!("\"{kind}\" is not a valid value for --type")));
    }
    let template = args.format.as_deref().map(InspectTemplate::parse).transpose().map_err(CliError::Usage)?;
    let mut found: Vec<serde_json::Value> = Vec::new();
    let mut errors = Vec::new();
    for name in &args.names {
        let mut result = Err(CliError::NotFound(format!("No such object: {name}")));
        if kind.is_empty() || kind == "container" {
            result = client.get_json::<serde_json::Value>(&container_path(name, "")).await;
        }
        if (kind.is_empty() || kind == "image") && matches!(result, Err(CliError::NotFound(_))) {
            result = client.get_json(&format!("/api/v1/images/{}", path_segment(name))).await;
            if kind.is_empty() {
                result = result.map_err(|e| match e {
                    CliError::NotFound(_) => CliError::NotFound(format!("No such object: {name}")),
                    other => other,
                });
            }
        }
        // Volumes last, as Docker looks them up (`--type volume` for only them).
        if (kind.is_empty() || kind == "volume") && matches!(result, Err(CliError::NotFound(_))) {
            let volume = crate::cli::volume::inspect_object(client, name).await;
            result = match volume {
                Err(CliError::NotFound(_)) if kind.is_empty() => {
                    Err(CliError::NotFound(format!("No such object: {name}")))
                }
                Err(e) => Err(crate::cli::volume::not_found_as_docker(e)),
                ok => ok,
            };
        }
        match result {
            Ok(v) => found.push(v),
            Err(e @ CliError::Connect { .. }) => return Err(e),
            Err(e) => errors.push(e),
        }
    }
    match template {
        Some(t) => {
            let mut text = String::new();
            for object in &found {
                text.push_str(&t.render(object)?);
                text.push('\n');
            }
            out(&text)?;
        }
        None => crate::cli::print_inspect_json(&found)?,
    }
    last_error(errors)
}

/// `inspect --format` (and `version`, `info`): literal text, `{{.Path.To.Field}}` and
/// `{{json .Path}}`. Field names match the JSON's snake_case ones ignoring case and underscores,
/// so Docker users' templates (`{{.State.ExitCode}}`) work. Hand-written: a Go template engine is
/// far more than this.
pub(crate) struct InspectTemplate {
    /// Literal text, each followed by the action after it (none after the last).
    parts: Vec<(String, Option<Action>)>,
}

/// `{{.A.B}}` (`json` false) or `{{json .A.B}}`: whether to print JSON, and the field path.
type Action = (bool, Vec<String>);

impl InspectTemplate {
    pub(crate) fn parse(format: &str) -> Result<InspectTemplate, String> {
        let mut parts = Vec::new();
        let mut rest = format;
        while let Some(open) = rest.find("{{") {
            let close =
                rest[open..].find("}}").ok_or_else(|| format!("template {format:?}: unclosed action"))?;
            let action = rest[open + 2..open + close].trim();
            let (json, path) = match action.strip_prefix("json ") {
                Some(p) => (true, p.trim()),
                None => (false, action),
            };
            if !path.starts_with('.') {
                return Err(format!(
                    "template {format:?}: unsupported action {{{{{action}}}}}; use {{{{.Field.Path}}}} or {{{{json .Field}}}}"
                ));
            }
            let path: Vec<String> =
                path[1..].split('.').filter(|s| !s.is_empty()).map(str::to_string).collect();
            parts.push((rest[..open].to_string(), Some((json, path))));
            rest = &rest[open + close + 2..];
        }
        parts.push((rest.to_string(), None));
        Ok(InspectTemplate { parts })
    }

    pub(crate) fn render(&self, object: &serde_json::Value) -> Result<String, CliError> {
        let norm = |s: &str| s.replace('_', "").to_ascii_lowercase();
        let mut text = String::new();
        for (literal, action) in &self.parts {
            text.push_str(literal);
            let Some((json, path)) = action else { continue };
            let mut value = object;
            for key in path {
                let serde_json::Value::Object(map) = value else {
                    return Err(CliError::Usage(format!("template: can't evaluate field {key}")));
                };
                value = map
                    .iter()
                    .find(|(k, _)| norm(k) == norm(key))
                    .map(|(_, v)| v)
                    .ok_or_else(|| CliError::Usage(format!("template: can't evaluate field {key}")))?;
            }
            match value {
                serde_json::Value::String(s) if !json => text.push_str(s),
                other => text.push_str(&other.to_string()),
            }
        }
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_templates() {
        let v = serde_json::json!({"id": "abc", "state": {"status": "exited", "exit_code": 3}, "config": {"env": ["A=1"]}});
        let t = |f: &str| InspectTemplate::parse(f).unwrap().render(&v).unwrap();
        assert_eq!(t("{{.State.Status}}"), "exited");
        assert_eq!(t("{{.State.ExitCode}} {{.id}}"), "3 abc");
        assert_eq!(t("{{json .Config.Env}}"), "[\"A=1\"]");
        assert_eq!(t("{{json .State.Status}}"), "\"exited\"");
        assert!(InspectTemplate::parse("{{.State").is_err());
        assert!(InspectTemplate::parse("{{range .}}").is_err());
        assert!(InspectTemplate::parse("{{.Nope}}").unwrap().render(&v).is_err());
    }
}
