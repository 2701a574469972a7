//! The Dockerfile instruction interpreter, shared by `build` and `import --change` (Docker
//! runs both through its builder's dispatchers too): a config instruction (ENV, LABEL, CMD,
//! EXPOSE, STOPSIGNAL, ...), its words substituted, becomes a [`ConfigChange`] with the text
//! the history shows for it, applied to the image config. A build's step loop adds the
//! instructions that run or copy (RUN, COPY, ADD) and ARG ([`Action`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use berth_types::signal::Signal;
use serde_json::{json, Map, Value};

use super::dockerfile::{self, Cmd, Inst, Step};
use super::step::CopyOp;
use super::{context, Builder, Built};
use crate::error::{Error, Result};

/// What a step does to the state, once evaluated.
pub(super) enum Action {
    /// Only the config changes (`None`: nothing does, as for ARG).
    Config(Option<ConfigChange>),
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

/// What a config instruction changes in the image config, its words substituted.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigChange {
    Env(Vec<(String, String)>),
    Label(Vec<(String, String)>),
    Maintainer(String),
    User(String),
    /// As written (substituted): Docker keeps the text, checked to be a signal.
    StopSignal(String),
    /// One `port/proto` per port (ranges expanded).
    Expose(Vec<String>),
    Volume(Vec<String>),
    Shell(Vec<String>),
    OnBuild(String),
    Cmd(Vec<String>),
    /// `reset_cmd`: no CMD came before in this stage (or these changes), so an inherited CMD
    /// goes, as Docker does.
    Entrypoint {
        words: Vec<String>,
        reset_cmd: bool,
    },
    Healthcheck(Map<String, Value>),
    /// The absolute, clean working directory.
    Workdir(String),
}

/// What a config instruction is evaluated against.
pub struct Scope<'a> {
    /// Variables for substitution: a build's ENV over its ARGs; an import's ENV so far.
    pub vars: &'a dyn dockerfile::Vars,
    pub escape: char,
    /// The SHELL that runs shell-form commands.
    pub shell: &'a [String],
    /// Where a relative WORKDIR continues from.
    pub workdir: &'a str,
    /// Whether a CMD came before (then an ENTRYPOINT keeps it).
    pub cmd_set: bool,
}

/// The config's `Env`.
pub fn env_of(config: &Map<String, Value>) -> Vec<String> {
    config.get("Env").and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default()
}

/// The value of variable `name` in the config's `Env` (the last one set).
pub fn env_value(config: &Map<String, Value>, name: &str) -> Option<String> {
    env_of(config).iter().rev().find_map(|e| e.strip_prefix(&format!("{name}=")).map(str::to_string))
}

/// The config's `WorkingDir`, `/` when unset.
pub fn workdir_of(config: &Map<String, Value>) -> String {
    config.get("WorkingDir").and_then(Value::as_str).filter(|w| !w.is_empty()).unwrap_or("/").to_string()
}

/// The config's `Shell`, `/bin/sh -c` when unset.
pub fn shell_of(config: &Map<String, Value>) -> Vec<String> {
    config
        .get("Shell")
        .and_then(|v| serde_json::from_value::<Vec<String>>(v.clone()).ok())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
}

/// Evaluates a config instruction; `None` for RUN, COPY, ADD and ARG, which change no config.
pub fn evaluate(inst: &Inst, scope: &Scope<'_>) -> Result<Option<ConfigChange>> {
    let expand = |s: &str| dockerfile::expand(s, scope.vars, scope.escape).map_err(Error::InvalidInput);
    let words = |s: &str| dockerfile::expand_words(s, scope.vars, scope.escape).map_err(Error::InvalidInput);
    let key_values = |s: &str, name: &str| {
        dockerfile::key_values(s, scope.vars, scope.escape, name).map_err(Error::InvalidInput)
    };
    let one_word = |s: &str, name: &str| match words(s)?.as_slice() {
        [word] => Ok(word.clone()),
        _ => Err(Error::InvalidInput(format!("{name} requires exactly one argument"))),
    };
    let change = match inst {
        Inst::Run(_) | Inst::Copy(_) | Inst::Arg(_) => return Ok(None),
        Inst::Env(text) => ConfigChange::Env(key_values(text, "ENV")?),
        Inst::Label(text) => ConfigChange::Label(key_values(text, "LABEL")?),
        Inst::Maintainer(text) => ConfigChange::Maintainer(text.clone()),
        Inst::User(text) => ConfigChange::User(one_word(text, "USER")?),
        Inst::StopSignal(text) => {
            let signal = one_word(text, "STOPSIGNAL")?;
            // Refused here, not when a container is made from the image.
            signal.parse::<Signal>()?;
            ConfigChange::StopSignal(signal)
        }
        Inst::Expose(ports) => {
            let mut expanded = Vec::new();
            for p in ports {
                for word in words(p)? {
                    expanded.extend(port_spec(&word)?);
                }
            }
            if expanded.is_empty() {
                return Err(Error::InvalidInput("EXPOSE requires at least one argument".into()));
            }
            ConfigChange::Expose(expanded)
        }
        Inst::Volume(paths) => {
            let mut expanded = Vec::new();
            for p in paths {
                let v = expand(p)?;
                let v = v.trim();
                if v.is_empty() {
                    return Err(Error::InvalidInput("VOLUME specified can not be an empty string".into()));
                }
                expanded.push(v.to_string());
            }
            if expanded.is_empty() {
                return Err(Error::InvalidInput("VOLUME requires at least one argument".into()));
            }
            ConfigChange::Volume(expanded)
        }
        Inst::Shell(words) => {
            if words.is_empty() {
                return Err(Error::InvalidInput("SHELL requires the arguments to be in JSON form".into()));
            }
            ConfigChange::Shell(words.clone())
        }
        Inst::OnBuild(trigger) => ConfigChange::OnBuild(trigger.clone()),
        Inst::Cmd(c) => ConfigChange::Cmd(command_words(c, scope.shell)),
        Inst::Entrypoint(c) => {
            ConfigChange::Entrypoint { words: command_words(c, scope.shell), reset_cmd: !scope.cmd_set }
        }
        Inst::Healthcheck { options, test } => {
            ConfigChange::Healthcheck(healthcheck(options, test.as_ref())?)
        }
        Inst::Workdir(text) => {
            let w = expand(text)?;
            let path = if w.starts_with('/') { w } else { format!("{}/{w}", scope.workdir) };
            ConfigChange::Workdir(format!("/{}", context::clean_clamped(&path)))
        }
    };
    Ok(Some(change))
}

impl ConfigChange {
    /// How the step shows in the history (and in its cache key).
    pub fn shown(&self) -> String {
        let pairs =
            |p: &[(String, String)]| p.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
        let text = match self {
            ConfigChange::Env(p) => format!("ENV {}", pairs(p)),
            ConfigChange::Label(p) => format!("LABEL {}", pairs(p)),
            ConfigChange::Maintainer(name) => format!("MAINTAINER {name}"),
            ConfigChange::User(user) => format!("USER {user}"),
            ConfigChange::StopSignal(signal) => format!("STOPSIGNAL {signal}"),
            ConfigChange::Expose(ports) => format!("EXPOSE {}", ports.join(" ")),
            ConfigChange::Volume(paths) => format!("VOLUME {paths:?}"),
            ConfigChange::Shell(words) => format!("SHELL {words:?}"),
            ConfigChange::OnBuild(trigger) => format!("ONBUILD {trigger}"),
            ConfigChange::Cmd(words) => format!("CMD {words:?}"),
            ConfigChange::Entrypoint { words, .. } => format!("ENTRYPOINT {words:?}"),
            ConfigChange::Healthcheck(hc) => format!("HEALTHCHECK {}", Value::Object(hc.clone())),
            ConfigChange::Workdir(path) => format!("WORKDIR {path}"),
        };
        format!("/bin/sh -c #(nop) {text}")
    }

    /// Applies the change to an image config: `config` is its runnable part (`Env`, `Cmd`, ...
    /// in Docker's field names), `top` the rest (`author`).
    pub fn apply(self, top: &mut Map<String, Value>, config: &mut Map<String, Value>) {
        // An object or array field that is missing (or null) starts empty.
        fn field<'a>(config: &'a mut Map<String, Value>, name: &str, empty: Value) -> &'a mut Value {
            let entry = config.entry(name).or_insert_with(|| empty.clone());
            if std::mem::discriminant(entry) != std::mem::discriminant(&empty) {
                *entry = empty;
            }
            entry
        }
        match self {
            ConfigChange::Env(pairs) => {
                let mut env = env_of(config);
                for (k, v) in pairs {
                    let entry = format!("{k}={v}");
                    match env.iter_mut().find(|e| e.split_once('=').map_or(e.as_str(), |(ek, _)| ek) == k) {
                        Some(e) => *e = entry,
                        None => env.push(entry),
                    }
                }
                config.insert("Env".into(), json!(env));
            }
            ConfigChange::Label(pairs) => {
                let labels = field(config, "Labels", json!({}));
                for (k, v) in pairs {
                    labels[k] = json!(v);
                }
            }
            ConfigChange::Maintainer(name) => {
                top.insert("author".into(), json!(name));
            }
            ConfigChange::User(user) => {
                config.insert("User".into(), json!(user));
            }
            ConfigChange::StopSignal(signal) => {
                config.insert("StopSignal".into(), json!(signal));
            }
            ConfigChange::Expose(ports) => {
                let exposed = field(config, "ExposedPorts", json!({}));
                for p in ports {
                    exposed[p] = json!({});
                }
            }
            ConfigChange::Volume(paths) => {
                let volumes = field(config, "Volumes", json!({}));
                for p in paths {
                    volumes[p] = json!({});
                }
            }
            ConfigChange::Shell(words) => {
                config.insert("Shell".into(), json!(words));
            }
            ConfigChange::OnBuild(trigger) => {
                if let Some(list) = field(config, "OnBuild", json!([])).as_array_mut() {
                    list.push(json!(trigger));
                }
            }
            ConfigChange::Cmd(words) => {
                config.insert("Cmd".into(), json!(words));
            }
            ConfigChange::Entrypoint { words, reset_cmd } => {
                config.insert("Entrypoint".into(), json!(words));
                if reset_cmd {
                    config.insert("Cmd".into(), Value::Null);
                }
            }
            ConfigChange::Healthcheck(hc) => {
                config.insert("Healthcheck".into(), Value::Object(hc));
            }
            ConfigChange::Workdir(path) => {
                config.insert("WorkingDir".into(), json!(path));
            }
        }
    }
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
                (shown, Action::Config(None))
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
            other => {
                let workdir = current.state.workdir();
                let scope =
                    Scope { vars: &vars, escape, shell: &shell, workdir: &workdir, cmd_set: *cmd_set };
                let Some(change) = evaluate(other, &scope).map_err(|e| self.err_at(line, e))? else {
                    unreachable!("RUN, COPY and ARG are matched above")
                };
                if matches!(change, ConfigChange::Cmd(_)) {
                    *cmd_set = true;
                }
                let shown = change.shown();
                match change {
                    ConfigChange::Workdir(path) => (shown, Action::Workdir { path }),
                    change => (shown, Action::Config(Some(change))),
                }
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

/// HEALTHCHECK's test and options as the config's `Healthcheck` (durations in nanoseconds).
fn healthcheck(options: &[(String, String)], test: Option<&Cmd>) -> Result<Map<String, Value>> {
    let test = match test {
        None => vec!["NONE".to_string()],
        Some(Cmd::Exec(words)) => std::iter::once("CMD".to_string()).chain(words.iter().cloned()).collect(),
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
                .map_err(|_| Error::InvalidInput(format!("invalid --retries value {value:?}")))?;
            hc.insert(key.into(), json!(n));
        } else {
            let ns = parse_duration_ns(value)
                .ok_or_else(|| Error::InvalidInput(format!("invalid --{name} duration {value:?}")))?;
            hc.insert(key.into(), json!(ns));
        }
    }
    Ok(hc)
}

/// `80`, `80/udp`, `8000-8010/tcp` → `80/tcp`, ...: one entry per port, as Docker stores
/// them. Port 0 is taken, as Docker's port parser takes it.
fn port_spec(spec: &str) -> Result<Vec<String>> {
    let (ports, proto) = match spec.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(Error::InvalidInput(format!("invalid proto: {proto}")));
    }
    let bad = || Error::InvalidInput(format!("invalid containerPort: {ports}"));
    let port = |s: &str| s.parse::<u16>().map_err(|_| bad());
    let (first, last) = match ports.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => (port(ports)?, port(ports)?),
    };
    if last < first {
        return Err(bad());
    }
    Ok((first..=last).map(|p| format!("{p}/{proto}")).collect())
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

    /// `text` as a build evaluates it, in a stage with no ENV and no ARG.
    fn evaluate_line(text: &str) -> Result<ConfigChange> {
        let file = dockerfile::parse("Dockerfile", &format!("FROM scratch\n{text}\n")).unwrap();
        let vars = |_: &str| None::<String>;
        let shell = vec!["/bin/sh".to_string(), "-c".to_string()];
        let scope = Scope { vars: &vars, escape: '\\', shell: &shell, workdir: "/", cmd_set: false };
        evaluate(&file.stages[0].steps[0].inst, &scope).map(|c| c.expect("a config instruction"))
    }

    /// The cases `build` and `import --change` once decided differently, decided as Docker does.
    #[test]
    fn port_zero_ranges_and_real_time_stop_signals_as_docker() {
        let ports = |p: &[&str]| ConfigChange::Expose(p.iter().map(|s| s.to_string()).collect());
        assert_eq!(evaluate_line("EXPOSE 0").unwrap(), ports(&["0/tcp"]));
        assert_eq!(
            evaluate_line("EXPOSE 8000-8002 53/UDP").unwrap(),
            ports(&["8000/tcp", "8001/tcp", "8002/tcp", "53/udp"])
        );
        let err = |text: &str| evaluate_line(text).unwrap_err().to_string();
        assert_eq!(err("EXPOSE 90-80"), "invalid containerPort: 90-80");
        assert_eq!(err("EXPOSE 80/icmp"), "invalid proto: icmp");
        assert_eq!(err("EXPOSE 70000"), "invalid containerPort: 70000");
        for signal in ["SIGRTMIN+3", "RTMAX-2", "sigterm", "9"] {
            let change = evaluate_line(&format!("STOPSIGNAL {signal}")).unwrap();
            assert_eq!(change, ConfigChange::StopSignal(signal.to_string()));
        }
        for signal in ["0", "65", "SIGFOO", "RTMIN+40"] {
            assert_eq!(err(&format!("STOPSIGNAL {signal}")), format!("invalid signal: {signal}"));
        }
        assert_eq!(err("USER a b"), "USER requires exactly one argument");
        assert_eq!(err("ENV ONLYKEY"), "ENV must have two arguments");
    }

    #[test]
    fn shell_and_exec_forms() {
        let sh = vec!["/bin/sh".to_string(), "-c".to_string()];
        assert_eq!(command_words(&Cmd::Shell("echo hi".into()), &sh), vec!["/bin/sh", "-c", "echo hi"]);
        assert_eq!(command_words(&Cmd::Exec(vec!["a".into()]), &sh), vec!["a"]);
    }
}
