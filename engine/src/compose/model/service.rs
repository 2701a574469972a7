//! A service of a compose file turned into what each of its containers is: image or build,
//! dependencies, network, environment, command, health check, resources and restart policy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_types::container::{ContainerConfig, Resources, RestartPolicy};
use berth_types::health::HealthConfig;
use docker_compose_types as spec;
use indexmap::IndexMap;
use serde::Serialize;

use super::super::interpolate::{parse_env_file, Variables};
use super::mounts::mounts;
use super::ports::parse_ports;
use super::{invalid_project, labels_map, resolve_path, ExtraLimits, Project};
use crate::error::{Error, Result};

/// A service: how to get its image, how many replicas, what each container is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Service {
    pub name: String,
    /// The image to run (`<project>-<service>` for a build without `image:`).
    pub image: String,
    pub build: Option<BuildSpec>,
    pub pull_policy: PullPolicy,
    pub replicas: u32,
    pub container_name: Option<String>,
    pub depends_on: Vec<Dependency>,
    pub network: ServiceNetwork,
    /// What every replica's container is, but its name, the compose labels and the network.
    pub config: ContainerConfig,
}

/// `build:` of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildSpec {
    /// Absolute.
    pub context: PathBuf,
    /// Relative to the context (`Dockerfile` when empty).
    pub dockerfile: Option<String>,
    pub dockerfile_inline: Option<String>,
    pub args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// `pull_policy:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PullPolicy {
    /// Pull when the image is not present (the default).
    Missing,
    Always,
    Never,
    /// Build even when the image is present.
    Build,
}

/// `depends_on:` conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Condition {
    Started,
    Healthy,
    CompletedSuccessfully,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dependency {
    pub service: String,
    pub condition: Condition,
    /// `required: false`: a missing or failing dependency only warns.
    pub required: bool,
}

/// Where a service's containers are on the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ServiceNetwork {
    /// User networks, by key; the first is the one the container is created on.
    Networks(Vec<Attachment>),
    /// `network_mode:` `none`, `host`, `container:NAME`, or `service:NAME` (resolved to the
    /// service's first container when applied).
    Mode(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attachment {
    pub network: String,
    pub aliases: Vec<String>,
    pub ipv4_address: Option<String>,
}

pub(super) fn service_model(
    project: &Project,
    variables: &Variables,
    all_services: &[String],
    name: &str,
    s: spec::Service,
    limits: ExtraLimits,
) -> Result<Service> {
    let working_dir = &project.working_dir;
    let here = |field: &str| format!("services.{name}.{field}");

    let build = match &s.build_ {
        None => None,
        Some(spec::BuildStep::Simple(context)) => Some(BuildSpec {
            context: resolve_path(working_dir, context),
            dockerfile: None,
            dockerfile_inline: None,
            args: BTreeMap::new(),
            target: None,
            labels: BTreeMap::new(),
        }),
        Some(spec::BuildStep::Advanced(b)) => {
            let context = if b.context.is_empty() { "." } else { b.context.as_str() };
            let args = match &b.args {
                None => BTreeMap::new(),
                Some(spec::BuildArgs::Simple(a)) => {
                    [a].into_iter().filter_map(|a| build_arg(a, variables)).collect()
                }
                Some(spec::BuildArgs::List(list)) => {
                    list.iter().filter_map(|a| build_arg(a, variables)).collect()
                }
                Some(spec::BuildArgs::KvPair(map)) => {
                    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
                }
            };
            Some(BuildSpec {
                context: resolve_path(working_dir, context),
                dockerfile: b.dockerfile.clone(),
                dockerfile_inline: b.dockerfile_inline.clone(),
                args,
                target: b.target.clone(),
                labels: labels_map(&b.labels),
            })
        }
    };
    let image = match (&s.image, &build) {
        (Some(image), _) if !image.is_empty() => image.clone(),
        (_, Some(_)) => format!("{}-{name}", project.name),
        _ => {
            return Err(invalid_project(format!(
                "service {name:?} has neither an image nor a build context specified"
            )))
        }
    };
    let pull_policy = match &s.pull_policy {
        None | Some(spec::PullPolicy::Missing) => PullPolicy::Missing,
        Some(spec::PullPolicy::Always) => PullPolicy::Always,
        Some(spec::PullPolicy::Never) => PullPolicy::Never,
        Some(spec::PullPolicy::Build) => PullPolicy::Build,
    };

    let mut depends_on = Vec::new();
    match &s.depends_on {
        spec::DependsOnOptions::Simple(list) => {
            for dep in list {
                depends_on.push(Dependency {
                    service: dep.clone(),
                    condition: Condition::Started,
                    required: true,
                });
            }
        }
        spec::DependsOnOptions::Conditional(map) => {
            for (dep, cond) in map {
                let condition = match cond.condition.as_str() {
                    "" | "service_started" => Condition::Started,
                    "service_healthy" => Condition::Healthy,
                    "service_completed_successfully" => Condition::CompletedSuccessfully,
                    other => {
                        return Err(invalid_project(format!(
                            "services.{name}.depends_on.{dep}.condition: {other:?} is not one of service_started, \
                             service_healthy, service_completed_successfully"
                        )))
                    }
                };
                depends_on.push(Dependency {
                    service: dep.clone(),
                    condition,
                    required: cond.required.unwrap_or(true),
                });
            }
        }
    }
    for dep in &depends_on {
        if !all_services.contains(&dep.service) {
            return Err(invalid_project(format!(
                "service {name:?} depends on undefined service {:?}",
                dep.service
            )));
        }
    }

    // The network.
    let network = if let Some(mode) = s.network_mode.as_deref().filter(|m| !m.is_empty()) {
        if !s.networks.is_empty() {
            return Err(invalid_project(format!(
                "service {name} declares mutually exclusive `network_mode` and `networks`"
            )));
        }
        match mode {
            "none" | "host" => {}
            m if m.starts_with("container:") => {}
            m if m.starts_with("service:") => {
                let other = &m["service:".len()..];
                if !all_services.iter().any(|n| n == other) {
                    return Err(invalid_project(format!(
                        "service {name:?} depends on undefined service {other:?}"
                    )));
                }
                if !depends_on.iter().any(|d| d.service == other) {
                    depends_on.push(Dependency {
                        service: other.to_string(),
                        condition: Condition::Started,
                        required: true,
                    });
                }
            }
            "bridge" => {}
            other => return Err(Error::Unsupported(format!("services.{name}.network_mode {other:?}"))),
        }
        ServiceNetwork::Mode(mode.to_string())
    } else {
        let mut list = Vec::new();
        match &s.networks {
            spec::Networks::Simple(names) => {
                for n in names {
                    list.push(Attachment { network: n.clone(), aliases: Vec::new(), ipv4_address: None });
                }
            }
            spec::Networks::Advanced(map) => {
                for (n, settings) in &map.0 {
                    let settings: Option<spec::AdvancedNetworkSettings> = settings.clone().into();
                    let settings = settings.unwrap_or(spec::AdvancedNetworkSettings {
                        ipv4_address: None,
                        ipv6_address: None,
                        aliases: Vec::new(),
                    });
                    list.push(Attachment {
                        network: n.clone(),
                        aliases: settings.aliases,
                        ipv4_address: settings.ipv4_address,
                    });
                }
            }
        }
        if list.is_empty() {
            list.push(Attachment { network: "default".into(), aliases: Vec::new(), ipv4_address: None });
        }
        for a in &list {
            if !project.networks.contains_key(&a.network) {
                return Err(invalid_project(format!(
                    "service {:?} refers to undefined network {}",
                    name, a.network
                )));
            }
        }
        ServiceNetwork::Networks(list)
    };

    // The environment: env_file entries, then `environment:` over them.
    let mut env: IndexMap<String, String> = IndexMap::new();
    let env_files = match &s.env_file {
        None => Vec::new(),
        Some(spec::StringOrList::Simple(f)) => vec![f.clone()],
        Some(spec::StringOrList::List(list)) => list.clone(),
    };
    for file in env_files {
        let path = resolve_path(working_dir, &file);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::InvalidInput(format!("env file {} not found: {e}", path.display())))?;
        let values =
            parse_env_file(&text, &path.display().to_string(), |k| variables.get(k).map(str::to_string))?;
        env.extend(values);
    }
    match &s.environment {
        spec::Environment::List(list) => {
            for entry in list {
                match entry.split_once('=') {
                    Some((k, v)) => {
                        env.insert(k.to_string(), v.to_string());
                    }
                    None => match variables.get(entry) {
                        Some(v) => {
                            env.insert(entry.clone(), v.to_string());
                        }
                        None => {
                            env.shift_remove(entry);
                        }
                    },
                }
            }
        }
        spec::Environment::KvPair(map) => {
            for (k, v) in map {
                match v {
                    Some(v) => {
                        env.insert(k.clone(), v.to_string());
                    }
                    None => match variables.get(k) {
                        Some(v) => {
                            env.insert(k.clone(), v.to_string());
                        }
                        None => {
                            env.shift_remove(k);
                        }
                    },
                }
            }
        }
    }

    let cmd = match &s.command {
        None => Vec::new(),
        Some(spec::Command::Simple(text)) => words(text, &here("command"))?,
        Some(spec::Command::Args(args)) => args.clone(),
    };
    let entrypoint = match &s.entrypoint {
        None => None,
        Some(spec::Entrypoint::Simple(text)) => Some(words(text, &here("entrypoint"))?),
        Some(spec::Entrypoint::List(list)) => Some(list.clone()),
    };

    let restart_policy = restart_policy(name, &s)?;

    let healthcheck = match &s.healthcheck {
        None => None,
        Some(h) if h.disable => Some(HealthConfig { test: vec!["NONE".into()], ..Default::default() }),
        Some(h) => {
            let test = match &h.test {
                None => Vec::new(),
                Some(spec::HealthcheckTest::Single(cmd)) => vec!["CMD-SHELL".into(), cmd.clone()],
                Some(spec::HealthcheckTest::Multiple(list)) => {
                    match list.first().map(String::as_str) {
                        Some("CMD") | Some("CMD-SHELL") | Some("NONE") => {}
                        _ => {
                            return Err(invalid_project(format!(
                                "services.{name}.healthcheck.test must start either by \"CMD\", \"CMD-SHELL\" or \"NONE\""
                            )))
                        }
                    }
                    list.clone()
                }
            };
            if h.retries < 0 {
                return Err(Error::InvalidInput(format!(
                    "{}: must not be negative",
                    here("healthcheck.retries")
                )));
            }
            Some(HealthConfig {
                test,
                interval: duration_ns(&h.interval, &here("healthcheck.interval"))?,
                timeout: duration_ns(&h.timeout, &here("healthcheck.timeout"))?,
                start_period: duration_ns(&h.start_period, &here("healthcheck.start_period"))?,
                start_interval: duration_ns(&h.start_interval, &here("healthcheck.start_interval"))?,
                retries: h.retries as u32,
            })
        }
    };

    // Resources: deploy.resources.limits over the service-level keys.
    let mut resources = Resources::default();
    if let Some(m) = &s.mem_limit {
        resources.memory = Some(parse_size(m, &here("mem_limit"))?);
    }
    if let Some(c) = &limits.cpus {
        resources.cpus = Some(parse_cpus(c, &here("cpus"))?);
    }
    resources.pids_limit = limits.pids;
    let mut replicas = if s.scale > 0 { s.scale as u32 } else { 1 };
    if let Some(deploy) = &s.deploy {
        if let Some(r) = deploy.replicas {
            if r < 0 {
                return Err(Error::InvalidInput(format!(
                    "{}: must not be negative",
                    here("deploy.replicas")
                )));
            }
            replicas = r as u32;
        }
        if let Some(l) = deploy.resources.as_ref().and_then(|r| r.limits.as_ref()) {
            if let Some(m) = &l.memory {
                resources.memory = Some(parse_size(m, &here("deploy.resources.limits.memory"))?);
            }
            if let Some(c) = &l.cpus {
                resources.cpus = Some(parse_cpus(c, &here("deploy.resources.limits.cpus"))?);
            }
        }
    }

    let ports = parse_ports(name, &s.ports)?;
    let mounts = mounts(project, name, &s.volumes, s.tmpfs.as_ref())?;

    let stop_timeout = match &s.stop_grace_period {
        None => None,
        Some(t) => {
            let ns = berth_types::format::parse_go_duration_ns(t)
                .or_else(|| t.trim().parse::<i64>().ok().map(|s| s * 1_000_000_000))
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    Error::InvalidInput(format!("{}: invalid duration {t:?}", here("stop_grace_period")))
                })?;
            Some((ns / 1_000_000_000) as u32)
        }
    };

    let security_opt = security_opts(working_dir, &s.security_opt, &here("security_opt"))?;
    let devices = s
        .devices
        .iter()
        .map(|d| {
            berth_types::security::parse_device(d)
                .map_err(|e| Error::InvalidInput(format!("{}: {e}", here("devices"))))
        })
        .collect::<Result<Vec<_>>>()?;
    let ulimits = s
        .ulimits
        .0
        .iter()
        .map(|(key, u)| {
            let spec = match u {
                spec::Ulimit::Single(v) => format!("{key}={v}"),
                spec::Ulimit::SoftHard { soft, hard } => format!("{key}={soft}:{hard}"),
            };
            berth_types::security::parse_ulimit(&spec)
                .map_err(|e| Error::InvalidInput(format!("{}: {e}", here("ulimits"))))
        })
        .collect::<Result<Vec<_>>>()?;

    let config = ContainerConfig {
        image: image.clone(),
        cmd,
        entrypoint,
        env: env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        working_dir: s.working_dir.clone().filter(|w| !w.is_empty()),
        user: s.user.clone().filter(|u| !u.is_empty()),
        hostname: s.hostname.clone().filter(|h| !h.is_empty()),
        labels: labels_map(&s.labels),
        tty: s.tty,
        open_stdin: s.stdin_open,
        restart_policy,
        runtime: s.runtime.clone(),
        read_only: s.read_only,
        cap_add: s.cap_add.clone(),
        cap_drop: s.cap_drop.clone(),
        privileged: s.privileged,
        security_opt,
        devices,
        ulimits,
        userns_mode: s.userns_mode.clone().filter(|u| !u.is_empty()),
        init: s.init,
        stop_signal: s.stop_signal.clone(),
        stop_timeout,
        resources,
        ports,
        expose: s.expose.clone(),
        mounts,
        healthcheck,
        // `logging:` as `--log-driver` and `--log-opt` (checked when the container is created).
        log_driver: s.logging.as_ref().and_then(|l| l.driver.clone()),
        log_opts: s
            .logging
            .as_ref()
            .and_then(|l| l.options.as_ref())
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.to_string())).collect())
            .unwrap_or_default(),
        ..Default::default()
    };
    Ok(Service {
        name: name.to_string(),
        image,
        build,
        pull_policy,
        replicas,
        container_name: s.container_name.clone(),
        depends_on,
        network,
        config,
    })
}

/// `security_opt:` as Docker Compose sends it: `seccomp=FILE` (relative to the project
/// directory) becomes the file's JSON, as the CLI's `--security-opt` does.
fn security_opts(working_dir: &Path, opts: &[String], what: &str) -> Result<Vec<String>> {
    opts.iter()
        .map(|opt| match opt.split_once(['=', ':']) {
            Some(("seccomp", file)) if !matches!(file, "unconfined" | "builtin") => {
                let path = working_dir.join(file);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    Error::InvalidInput(format!("{what}: opening seccomp profile ({file}) failed: {e}"))
                })?;
                let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                    Error::InvalidInput(format!(
                        "{what}: compacting json for seccomp profile ({file}) failed: {e}"
                    ))
                })?;
                Ok(format!("seccomp={json}"))
            }
            _ => Ok(opt.clone()),
        })
        .collect()
}

fn build_arg(entry: &str, variables: &Variables) -> Option<(String, String)> {
    match entry.split_once('=') {
        Some((k, v)) => Some((k.to_string(), v.to_string())),
        None => variables.get(entry).map(|v| (entry.to_string(), v.to_string())),
    }
}

fn parse_cpus(text: &str, what: &str) -> Result<f64> {
    berth_types::parse::parse_cpus(text).map_err(|e| Error::InvalidInput(format!("{what}: {e}")))
}

fn restart_policy(name: &str, s: &spec::Service) -> Result<RestartPolicy> {
    if let Some(restart) = &s.restart {
        return berth_types::parse::parse_restart(restart)
            .map_err(|e| invalid_project(format!("services.{name}.restart: {e}")));
    }
    if let Some(p) = s.deploy.as_ref().and_then(|d| d.restart_policy.as_ref()) {
        let max_retries = p.max_attempts.unwrap_or(0).max(0) as u32;
        return match p.condition.as_deref() {
            None | Some("any") => Ok(RestartPolicy::Always),
            Some("on-failure") => Ok(RestartPolicy::OnFailure { max_retries }),
            Some("none") => Ok(RestartPolicy::No),
            Some(other) => Err(invalid_project(format!(
                "services.{name}.deploy.restart_policy.condition: invalid condition {other:?}"
            ))),
        };
    }
    Ok(RestartPolicy::No)
}

/// Compose sizes (`512m`, `1gb`, `1073741824`): Docker's byte units.
pub fn parse_size(text: &str, what: &str) -> Result<u64> {
    berth_types::parse::parse_memory(text).map_err(|e| Error::InvalidInput(format!("{what}: {e}")))
}

fn duration_ns(text: &Option<String>, what: &str) -> Result<u64> {
    match text.as_deref() {
        None | Some("") => Ok(0),
        Some(t) => berth_types::format::parse_go_duration_ns(t)
            .filter(|n| *n >= 0)
            .map(|n| n as u64)
            .ok_or_else(|| Error::InvalidInput(format!("{what}: invalid duration {t:?}"))),
    }
}

fn words(text: &str, what: &str) -> Result<Vec<String>> {
    shlex::split(text).ok_or_else(|| Error::InvalidInput(format!("{what}: unbalanced quotes in {text:?}")))
}
