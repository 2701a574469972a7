//! The Dockerfile instruction interpreter: each instruction, its arguments substituted, becomes
//! the change it makes ([`Action`]) and the text the history shows for it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{json, Map, Value};

use super::dockerfile::{self, Cmd, Inst, Step};
use super::step::CopyOp;
use super::{context, Built, Builder, State};
use crate::error::Result;

/// What a step does to the state, once evaluated.
pub(super) enum Action {
    /// Only the config changes.
    Config(Box<dyn FnOnce(&mut State)>),
    Run {
        args: Vec<String>,
        env: Vec<String>,
    },
    Copy {
        ops: Vec<CopyOp>,
        chown: Option<String>,
        fingerprint: Vec<String>,
    },
    /// WORKDIR: the directory is created if missing (a layer only if it was).
    Workdir {
        path: String,
    },
}

impl Builder<'_> {
    /// Meta args: ARGs before the first FROM, with their values.
    pub(super) fn meta_args(&mut self) -> Result<BTreeMap<String, Option<String>>> {
        let mut meta = BTreeMap::new();
        let steps = self.file.meta_args.clone();
        for step in &steps {
            let Inst::Arg(text) = &step.inst else { continue };
            let vars = |n: &str| meta.get(n).cloned().flatten();
            for (name, default) in self.parse_arg(text, &vars, step.line)? {
                let value = self.build_args.get(&name).cloned().or(default);
                if self.build_args.contains_key(&name) {
                    self.used_args.insert(name.clone());
                }
                meta.insert(name, value);
            }
        }
        Ok(meta)
    }

    pub(super) fn parse_arg(
        &self,
        text: &str,
        vars: &dyn dockerfile::Vars,
        line: usize,
    ) -> Result<Vec<(String, Option<String>)>> {
        let mut out = Vec::new();
        for word in dockerfile::split_raw_words(text, self.file.escape) {
            match word.split_once('=') {
                Some((k, v)) => {
                    let v =
                        dockerfile::expand(v, vars, self.file.escape).map_err(|e| self.err_at(line, e))?;
                    out.push((k.to_string(), Some(v)));
                }
                None => out.push((word, None)),
            }
        }
        if out.is_empty() {
            return Err(self.err_at(line, "ARG requires at least one argument"));
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn run_step(
        &mut self,
        step: &Step,
        n: usize,
        current: &mut Built,
        args: &mut BTreeMap<String, Option<String>>,
        meta: &BTreeMap<String, Option<String>>,
        built: &HashMap<usize, Built>,
        stage: usize,
        cmd_set: &mut bool,
    ) -> Result<()> {
        let escape = self.file.escape;
        let line = step.line;
        // Substitution sees the stage's ENV over its ARGs.
        let env_state = current.state.clone();
        let args_now = args.clone();
        let vars =
            move |name: &str| env_state.env_get(name).or_else(|| args_now.get(name).cloned().flatten());
        let expand = |s: &str| dockerfile::expand(s, &vars, escape).map_err(|e| self.err_at(line, e));
        let args_in_use: Vec<String> =
            args.iter().filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}"))).collect();
        let shell = current.state.shell();
        let nop = |s: &str| format!("/bin/sh -c #(nop) {s}");

        let (shown, action): (String, Action) = match &step.inst {
            Inst::Arg(text) => {
                let mut values = Vec::new();
                for (name, default) in self.parse_arg(text, &vars, line)? {
                    let value = if let Some(v) = self.build_args.get(&name) {
                        self.used_args.insert(name.clone());
                        Some(v.clone())
                    } else if default.is_some() {
                        default
                    } else {
                        meta.get(&name).cloned().flatten()
                    };
                    values.push((name, value));
                }
                let shown = nop(&format!(
                    "ARG {}",
                    values
                        .iter()
                        .map(|(k, v)| match v {
                            Some(v) => format!("{k}={v}"),
                            None => k.clone(),
                        })
                        .collect::<Vec<_>>()
                        .join(" ")
                ));
                for (k, v) in values {
                    args.insert(k, v);
                }
                // An ARG changes no config; its value reaches the cache keys of later steps.
                (shown, Action::Config(Box::new(|_| {})))
            }
            Inst::Env(text) => {
                let pairs =
                    dockerfile::key_values(text, &vars, escape, "ENV").map_err(|e| self.err_at(line, e))?;
                let shown = nop(&format!(
                    "ENV {}",
                    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
                ));
                (
                    shown,
                    Action::Config(Box::new(move |s: &mut State| {
                        let mut env = s.env();
                        for (k, v) in pairs {
                            let entry = format!("{k}={v}");
                            match env.iter_mut().find(|e| {
                                e.split_once('=').map(|(ek, _)| ek) == Some(k.as_str()) || e.as_str() == k
                            }) {
                                Some(e) => *e = entry,
                                None => env.push(entry),
                            }
                        }
                        s.config.insert("Env".into(), json!(env));
                    })),
                )
            }
            Inst::Label(text) => {
                let pairs =
                    dockerfile::key_values(text, &vars, escape, "LABEL").map_err(|e| self.err_at(line, e))?;
                let shown = nop(&format!(
                    "LABEL {}",
                    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
                ));
                (
                    shown,
                    Action::Config(Box::new(move |s: &mut State| {
                        let entry = s.config.entry("Labels").or_insert_with(|| json!({}));
                        if !entry.is_object() {
                            *entry = json!({});
                        }
                        for (k, v) in pairs {
                            entry[k] = json!(v);
                        }
                    })),
                )
            }
            Inst::Maintainer(text) => {
                let name = text.clone();
                (
                    nop(&format!("MAINTAINER {text}")),
                    Action::Config(Box::new(move |s: &mut State| {
                        s.top.insert("author".into(), json!(name));
                    })),
                )
            }
            Inst::User(text) => {
                let user = expand(text)?;
                (
                    nop(&format!("USER {user}")),
                    Action::Config(Box::new(move |s: &mut State| {
                        s.config.insert("User".into(), json!(user));
                    })),
                )
            }
            Inst::StopSignal(text) => {
                let signal = expand(text)?;
                signal.parse::<berth_types::signal::Signal>().map_err(|e| self.err_at(line, e))?;
                (
                    nop(&format!("STOPSIGNAL {signal}")),
                    Action::Config(Box::new(move |s: &mut State| {
                        s.config.insert("StopSignal".into(), json!(signal));
                    })),
                )
            }
            Inst::Expose(ports) => {
                let mut expanded = Vec::new();
                for p in ports {
                    for word in
                        dockerfile::expand_words(p, &vars, escape).map_err(|e| self.err_at(line, e))?
                    {
                        let (port, proto) = word.split_once('/').unwrap_or((&word, "tcp"));
                        let proto = proto.to_lowercase();
                        let valid_port = port.split('-').all(|p| p.parse::<u16>().is_ok());
                        if !valid_port || !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
                            return Err(self.err_at(line, format!("invalid containerPort: {word}")));
                        }
                        expanded.push(format!("{port}/{proto}"));
                    }
                }
                let shown = nop(&format!("EXPOSE {}", expanded.join(" ")));
                (
                    shown,
                    Action::Config(Box::new(move |s: &mut State| {
                        let entry = s.config.entry("ExposedPorts").or_insert_with(|| json!({}));
                        for p in expanded {
                            entry[p] = json!({});
                        }
                    })),
                )
            }
            Inst::Volume(paths) => {
                let mut expanded = Vec::new();
                for p in paths {
                    let v = expand(p)?;
                    if v.trim().is_empty() {
                        return Err(self.err_at(line, "VOLUME specified can not be an empty string"));
                    }
                    expanded.push(v);
                }
                let shown = nop(&format!("VOLUME {expanded:?}"));
                (
                    shown,
                    Action::Config(Box::new(move |s: &mut State| {
                        let entry = s.config.entry("Volumes").or_insert_with(|| json!({}));
                        for p in expanded {
                            entry[p] = json!({});
                        }
                    })),
                )
            }
            Inst::Shell(words) => {
                if words.is_empty() {
                    return Err(self.err_at(line, "SHELL requires the arguments to be in JSON form"));
                }
                let words = words.clone();
                (
                    nop(&format!("SHELL {words:?}")),
                    Action::Config(Box::new(move |s: &mut State| {
                        s.config.insert("Shell".into(), json!(words));
                    })),
                )
            }
            Inst::OnBuild(trigger) => {
                let trigger = trigger.clone();
                (
                    nop(&format!("ONBUILD {trigger}")),
                    Action::Config(Box::new(move |s: &mut State| {
                        let entry = s.config.entry("OnBuild").or_insert_with(|| json!([]));
                        if let Some(list) = entry.as_array_mut() {
                            list.push(json!(trigger));
                        }
                    })),
                )
            }
            Inst::Cmd(c) => {
                let cmd = command_words(c, &shell);
                *cmd_set = true;
                (
                    nop(&format!("CMD {cmd:?}")),
                    Action::Config(Box::new(move |s: &mut State| {
                        s.config.insert("Cmd".into(), json!(cmd));
                    })),
                )
            }
            Inst::Entrypoint(c) => {
                let entrypoint = command_words(c, &shell);
                let reset_cmd = !*cmd_set;
                (
                    nop(&format!("ENTRYPOINT {entrypoint:?}")),
                    Action::Config(Box::new(move |s: &mut State| {
                        s.config.insert("Entrypoint".into(), json!(entrypoint));
                        // As Docker: an ENTRYPOINT drops a CMD inherited from the base.
                        if reset_cmd {
                            s.config.insert("Cmd".into(), Value::Null);
                        }
                    })),
                )
            }
            Inst::Healthcheck { options, test } => {
                let test = match test {
                    None => vec!["NONE".to_string()],
                    Some(Cmd::Exec(words)) => {
                        std::iter::once("CMD".to_string()).chain(words.iter().cloned()).collect()
                    }
                    Some(Cmd::Shell(s)) => vec!["CMD-SHELL".to_string(), s.clone()],
                };
                let mut hc = Map::new();
                hc.insert("Test".into(), json!(test));
                for (name, value) in options {
                    let key = match name.as_str() {
                        "interval" => "Interval",
                        "timeout" => "Timeout",
                        "start-period" => "StartPeriod",
                        "start-interval" => "StartInterval",
                        _ => "Retries",
                    };
                    if key == "Retries" {
                        let n: i64 = value
                            .parse()
                            .map_err(|_| self.err_at(line, format!("invalid --retries value {value:?}")))?;
                        hc.insert(key.into(), json!(n));
                    } else {
                        let ns = parse_duration_ns(value).ok_or_else(|| {
                            self.err_at(line, format!("invalid --{name} duration {value:?}"))
                        })?;
                        hc.insert(key.into(), json!(ns));
                    }
                }
                let shown = nop(&format!("HEALTHCHECK {}", Value::Object(hc.clone())));
                (
                    shown,
                    Action::Config(Box::new(move |s: &mut State| {
                        s.config.insert("Healthcheck".into(), Value::Object(hc));
                    })),
                )
            }
            Inst::Workdir(text) => {
                let w = expand(text)?;
                let path = if w.starts_with('/') { w } else { format!("{}/{w}", current.state.workdir()) };
                let path = format!("/{}", context::clean_clamped(&path));
                (nop(&format!("WORKDIR {path}")), Action::Workdir { path })
            }
            Inst::Run(c) => {
                let run_args = command_words(c, &shell);
                let env_names: BTreeSet<String> = current
                    .state
                    .env()
                    .iter()
                    .map(|e| e.split('=').next().unwrap_or("").to_string())
                    .collect();
                let env: Vec<String> = args
                    .iter()
                    .filter(|(k, _)| !env_names.contains(*k))
                    .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
                    .collect();
                let prefix = if args_in_use.is_empty() {
                    String::new()
                } else {
                    format!("|{} {} ", args_in_use.len(), args_in_use.join(" "))
                };
                let shown = format!("{prefix}{}", run_args.join(" "));
                (shown, Action::Run { args: run_args, env })
            }
            Inst::Copy(spec) => {
                // COPY --from an earlier stage: that stage's cache key names its content, so a
                // cached step is found without looking at the stage's files.
                let from_stage_key = match &spec.from {
                    Some(f) => {
                        let f = expand(f)?;
                        self.stage_index(&f, stage).and_then(|j| built.get(&j)).map(|b| b.key.clone())
                    }
                    None => None,
                };
                if let Some(src_key) = &from_stage_key {
                    let shown = self.copy_shown(spec, &vars, line)?;
                    let key_parts = vec![shown.clone(), format!("from-stage {src_key}")];
                    if self.cached_step(n, &shown, &key_parts, current) {
                        return Ok(());
                    }
                }
                let (ops, shown, mut fingerprint) =
                    self.plan_copy(spec, &vars, line, current, built, stage)?;
                if let Some(src_key) = from_stage_key {
                    fingerprint = vec![format!("from-stage {src_key}")];
                }
                (shown, Action::Copy { ops, chown: spec.chown.clone(), fingerprint })
            }
        };
        let mut key_parts: Vec<String> = vec![shown.clone()];
        if matches!(action, Action::Run { .. }) {
            key_parts.push(args_in_use.join("\n"));
        }
        if let Action::Copy { fingerprint, .. } = &action {
            // The content hash of the sources.
            key_parts.push(fingerprint.join("\n"));
        }
        self.apply(n, &shown, action, &key_parts, current, built)
    }
}

/// The words a shell-form or exec-form command runs.
fn command_words(c: &Cmd, shell: &[String]) -> Vec<String> {
    match c {
        Cmd::Exec(words) => words.clone(),
        Cmd::Shell(s) => shell.iter().cloned().chain(std::iter::once(s.clone())).collect(),
    }
}

/// Go duration strings as HEALTHCHECK takes them (`30s`, `1m30s`, `500ms`) in nanoseconds.
fn parse_duration_ns(s: &str) -> Option<i64> {
    berth_types::format::parse_go_duration_ns(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ns("30s"), Some(30_000_000_000));
        assert_eq!(parse_duration_ns("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration_ns("500ms"), Some(500_000_000));
        assert_eq!(parse_duration_ns("5"), None);
    }

    #[test]
    fn shell_and_exec_forms() {
        let sh = vec!["/bin/sh".to_string(), "-c".to_string()];
        assert_eq!(command_words(&Cmd::Shell("echo hi".into()), &sh), vec!["/bin/sh", "-c", "echo hi"]);
        assert_eq!(command_words(&Cmd::Exec(vec!["a".into()]), &sh), vec!["a"]);
    }
}
