//! What the run form holds, and its check field by field with Docker's rules before anything is
//! sent. Pure functions, unit-tested natively.

use berth_types::name::{check_object_name, ObjectKind};
use berth_types::{ContainerConfig, Resources, RestartPolicy};

use super::options::{self, HealthFields, MountRow, NetworkFields, PortRow};
use crate::forms::{parse_memory, split_words, FieldErrors};

/// What the user typed, as text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunForm {
    pub image: String,
    pub name: String,
    pub command: String,
    pub env: String,
    pub labels: String,
    pub memory: String,
    pub cpus: String,
    pub pids: String,
    /// `no`, `on-failure`, `always`, `unless-stopped`.
    pub restart: String,
    pub max_retries: String,
    pub tty: bool,
    pub open_stdin: bool,
    pub auto_remove: bool,
    /// `-p` rows.
    pub ports: Vec<PortRow>,
    /// `-P`.
    pub publish_all: bool,
    /// `--mount` rows.
    pub mounts: Vec<MountRow>,
    pub net: NetworkFields,
    pub health: HealthFields,
    /// `--privileged`.
    pub privileged: bool,
    /// `--read-only`.
    pub read_only: bool,
    /// `--security-opt no-new-privileges`.
    pub no_new_privileges: bool,
    /// `--security-opt seccomp=...`: empty (Docker's default profile), `unconfined` or `custom`
    /// (the profile in `seccomp_profile`).
    pub seccomp: String,
    /// A custom seccomp profile's JSON, in Docker's format (what `seccomp=PROFILE.json` reads).
    pub seccomp_profile: String,
    /// `--userns`: empty (the daemon's choice: remapped under `--userns-remap`) or `host`.
    pub userns: String,
    /// `--cap-add` / `--cap-drop`, words.
    pub cap_add: String,
    pub cap_drop: String,
    /// `--device`, one a line.
    pub devices: String,
    /// `--ulimit`, one a line.
    pub ulimits: String,
}

/// Checks the form and builds the request, or says what is wrong with which field.
pub fn validate(form: &RunForm) -> Result<ContainerConfig, FieldErrors> {
    let mut errors: FieldErrors = Vec::new();
    let image = form.image.trim();
    if image.is_empty() {
        errors.push(("image", "an image is required, e.g. busybox".into()));
    } else if image.chars().any(char::is_whitespace) || image.chars().any(|c| c.is_ascii_uppercase()) {
        errors.push(("image", "an image reference has no spaces or capital letters".into()));
    }
    let name = match form.name.trim() {
        "" => "",
        typed => check_object_name(ObjectKind::Container, typed).unwrap_or_else(|e| {
            errors.push(("name", e.to_string()));
            typed
        }),
    };
    let cmd = match split_words(&form.command) {
        Ok(words) => words,
        Err(e) => {
            errors.push(("command", e));
            Vec::new()
        }
    };
    let mut env = Vec::new();
    for line in form.env.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match line.split_once('=') {
            Some((key, _)) if !key.is_empty() && !key.contains(char::is_whitespace) => {
                env.push(line.to_owned())
            }
            _ => errors.push(("env", format!("{line:?} is not KEY=VALUE"))),
        }
    }
    let mut labels = std::collections::BTreeMap::new();
    for line in form.labels.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match line.split_once('=') {
            Some((key, value)) if !key.is_empty() => {
                labels.insert(key.to_owned(), value.to_owned());
            }
            _ => errors.push(("labels", format!("{line:?} is not KEY=VALUE"))),
        }
    }
    let memory = match form.memory.trim() {
        "" => None,
        text => match parse_memory(text) {
            Some(bytes) if bytes >= 6 * 1024 * 1024 => Some(bytes),
            Some(_) => {
                errors.push(("memory", "the minimum memory limit is 6m, as Docker's".into()));
                None
            }
            None => {
                errors.push(("memory", format!("{text:?} is not a size like 256m or 1g")));
                None
            }
        },
    };
    let cpus = match form.cpus.trim() {
        "" => None,
        text => match text.parse::<f64>() {
            Ok(c) if c > 0.0 && c.is_finite() => Some(c),
            _ => {
                errors.push(("cpus", format!("{text:?} is not a positive number of CPUs like 0.5")));
                None
            }
        },
    };
    let pids_limit = match form.pids.trim() {
        "" => None,
        text => match text.parse::<i64>() {
            Ok(p) if p > 0 => Some(p),
            _ => {
                errors.push(("pids", format!("{text:?} is not a positive whole number")));
                None
            }
        },
    };
    let ports = options::ports(&form.ports, form.net.network.trim(), &mut errors);
    if form.publish_all && matches!(form.net.network.trim(), "none" | "host") {
        errors.push((
            "ports",
            format!("conflicting options: publishing all ports and the {} network", form.net.network.trim()),
        ));
    }
    let mounts = options::mounts(&form.mounts, &mut errors);
    let (network, network_aliases, ipv4_address) = options::network(&form.net, &mut errors);
    let healthcheck = options::health(&form.health, &mut errors);
    let caps = |text: &str, field: &'static str, errors: &mut FieldErrors| -> Vec<String> {
        let words: Vec<String> =
            text.split([',', ' ', '\n']).filter(|w| !w.is_empty()).map(str::to_owned).collect();
        for w in &words {
            if !w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                errors.push((field, format!("{w:?} is not a capability name like NET_ADMIN or ALL")));
            }
        }
        words
    };
    let cap_add = caps(&form.cap_add, "cap_add", &mut errors);
    let cap_drop = caps(&form.cap_drop, "cap_drop", &mut errors);
    let mut devices = Vec::new();
    for line in form.devices.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match berth_types::security::parse_device(line) {
            Ok(d) => devices.push(d),
            Err(e) => errors.push(("devices", e)),
        }
    }
    let mut ulimits = Vec::new();
    for line in form.ulimits.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match berth_types::security::parse_ulimit(line) {
            Ok(u) => ulimits.push(u),
            Err(e) => errors.push(("ulimits", e)),
        }
    }
    let mut security_opt = Vec::new();
    if form.no_new_privileges {
        security_opt.push("no-new-privileges".to_owned());
    }
    match form.seccomp.as_str() {
        "" => {}
        "unconfined" => security_opt.push("seccomp=unconfined".to_owned()),
        "custom" => match seccomp_profile(&form.seccomp_profile) {
            Ok(json) => security_opt.push(format!("seccomp={json}")),
            Err(e) => errors.push(("seccomp", e)),
        },
        other => errors.push(("seccomp", format!("unknown seccomp choice {other:?}"))),
    }
    let userns_mode = match form.userns.trim() {
        "" => None,
        "host" => Some("host".to_owned()),
        other => {
            // Docker's wording for a mode it does not know.
            errors.push(("userns", format!("invalid USER mode: {other}")));
            None
        }
    };
    let restart_policy = match form.restart.as_str() {
        "" | "no" => RestartPolicy::No,
        "always" => RestartPolicy::Always,
        "unless-stopped" => RestartPolicy::UnlessStopped,
        "on-failure" => match form.max_retries.trim() {
            "" => RestartPolicy::OnFailure { max_retries: 0 },
            text => match text.parse::<u32>() {
                Ok(n) => RestartPolicy::OnFailure { max_retries: n },
                Err(_) => {
                    errors.push(("max_retries", format!("{text:?} is not a whole number")));
                    RestartPolicy::No
                }
            },
        },
        other => {
            errors.push(("restart", format!("unknown restart policy {other:?}")));
            RestartPolicy::No
        }
    };
    if form.auto_remove && restart_policy != RestartPolicy::No {
        errors.push(("restart", "a container removed when it exits cannot also be restarted".into()));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ContainerConfig {
        image: image.to_owned(),
        name: (!name.is_empty()).then(|| name.to_owned()),
        cmd,
        env,
        labels,
        tty: form.tty,
        open_stdin: form.open_stdin,
        auto_remove: form.auto_remove,
        restart_policy,
        resources: Resources { memory, cpus, pids_limit },
        ports,
        publish_all: form.publish_all,
        mounts,
        network,
        network_aliases,
        ipv4_address,
        healthcheck,
        privileged: form.privileged,
        read_only: form.read_only,
        security_opt,
        cap_add,
        cap_drop,
        devices,
        ulimits,
        userns_mode,
        ..ContainerConfig::default()
    })
}

/// A pasted seccomp profile, checked as far as the form can: a JSON object with Docker's
/// `defaultAction`. Sent compact (one line), as the CLI sends a profile file's content.
fn seccomp_profile(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("paste a profile in Docker's JSON format, or choose another filter".into());
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("Decoding seccomp profile failed: {e}"))?;
    match value.get("defaultAction") {
        Some(serde_json::Value::String(_)) => Ok(value.to_string()),
        _ => Err("a seccomp profile needs a \"defaultAction\", e.g. \"SCMP_ACT_ERRNO\"".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(image: &str) -> RunForm {
        RunForm { image: image.into(), restart: "no".into(), ..RunForm::default() }
    }

    #[test]
    fn a_valid_form_becomes_the_request() {
        let mut f = form("busybox");
        f.name = "web-1".into();
        f.command = r#"sh -c 'echo "a b"; sleep 1'"#.into();
        f.env = "A=1\n\nB=x=y\n".into();
        f.memory = "256m".into();
        f.cpus = "0.5".into();
        f.restart = "on-failure".into();
        f.max_retries = "3".into();
        let config = validate(&f).unwrap();
        assert_eq!(config.name.as_deref(), Some("web-1"));
        assert_eq!(config.cmd, ["sh", "-c", r#"echo "a b"; sleep 1"#]);
        assert_eq!(config.env, ["A=1", "B=x=y"]);
        assert_eq!(config.resources.memory, Some(256 << 20));
        assert_eq!(config.resources.cpus, Some(0.5));
        assert_eq!(config.restart_policy, RestartPolicy::OnFailure { max_retries: 3 });
    }

    #[test]
    fn security_fields() {
        let mut f = form("busybox");
        f.privileged = true;
        f.no_new_privileges = true;
        f.cap_add = "NET_ADMIN, SYS_TIME".into();
        f.devices = "/dev/fuse\n".into();
        f.ulimits = "nofile=10:20".into();
        let c = validate(&f).unwrap();
        assert!(c.privileged);
        assert_eq!(c.security_opt, ["no-new-privileges"]);
        assert_eq!(c.cap_add, ["NET_ADMIN", "SYS_TIME"]);
        assert_eq!((c.devices.len(), c.ulimits[0].hard), (1, 20));
        f.ulimits = "bogus=1".into();
        f.cap_drop = "NET-RAW".into();
        let fields: Vec<&str> = validate(&f).unwrap_err().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["cap_drop", "ulimits"]);
    }

    #[test]
    fn seccomp_and_user_namespace() {
        let mut f = form("busybox");
        f.seccomp = "unconfined".into();
        f.userns = "host".into();
        let c = validate(&f).unwrap();
        assert_eq!(c.security_opt, ["seccomp=unconfined"]);
        assert_eq!(c.userns_mode.as_deref(), Some("host"));
        assert_eq!(validate(&form("busybox")).unwrap().userns_mode, None);
        f.seccomp = "custom".into();
        f.seccomp_profile = "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\",\n  \"syscalls\": []\n}\n".into();
        let c = validate(&f).unwrap();
        assert_eq!(c.security_opt, [r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[]}"#]);
        // What the form sends, the daemon's own check takes.
        let opts = berth_types::security::parse_security_opts(&c.security_opt).unwrap();
        assert!(opts.seccomp.unwrap().contains("SCMP_ACT_ALLOW"));
        for bad in ["", "{not json", r#"{"syscalls": []}"#] {
            f.seccomp_profile = bad.into();
            assert_eq!(validate(&f).unwrap_err()[0].0, "seccomp", "{bad}");
        }
        f.seccomp = String::new();
        f.userns = "private".into();
        assert_eq!(validate(&f).unwrap_err(), [("userns", "invalid USER mode: private".to_owned())]);
    }

    #[test]
    fn every_wrong_field_is_named() {
        let mut f = form("");
        f.name = "-bad".into();
        f.command = "echo 'open".into();
        f.env = "NOEQUALS".into();
        f.memory = "lots".into();
        f.cpus = "-1".into();
        f.pids = "0".into();
        let fields: Vec<&str> = validate(&f).unwrap_err().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["image", "name", "command", "env", "memory", "cpus", "pids"]);
        let mut f = form("busybox");
        f.auto_remove = true;
        f.restart = "always".into();
        assert_eq!(validate(&f).unwrap_err()[0].0, "restart");
        f.memory = "1k".into();
        f.restart = "no".into();
        assert!(validate(&f).unwrap_err()[0].1.contains("minimum"));
    }
}
