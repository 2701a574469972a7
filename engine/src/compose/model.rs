//! A compose file read into a project: the file is parsed as YAML, interpolated, checked, and
//! turned into what the engine creates (networks, volumes, and a [`ContainerConfig`] per
//! service), with Docker Compose's defaults, project name rules and error wording.
//!
//! The file format is the `docker-compose-types` crate's (the Compose Specification as serde
//! types). It lacks a few keys of the specification (`deploy.resources.limits.pids`, the
//! service-level `cpus` and `pids_limit`); those are taken out of the YAML before it is typed
//! and read here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use berth_types::container::{ContainerConfig, Resources, RestartPolicy};
use berth_types::health::HealthConfig;
use berth_types::mount;
use berth_types::network::PortBinding;
use berth_types::name::{check_object_name, ObjectKind};
use berth_types::volume::{Mount, MountType};
use berth_types::StackUp;
use docker_compose_types as spec;
use indexmap::IndexMap;
use serde::Serialize;
use serde_yaml::Value;
use sha2::{Digest as _, Sha256};

use super::interpolate::{parse_env_file, Variables};
use crate::error::{Error, Result};

/// The labels Docker Compose puts on what it creates.
pub const LABEL_PROJECT: &str = "com.docker.compose.project";
pub const LABEL_SERVICE: &str = "com.docker.compose.service";
pub const LABEL_NUMBER: &str = "com.docker.compose.container-number";
pub const LABEL_CONFIG_HASH: &str = "com.docker.compose.config-hash";
pub const LABEL_ONEOFF: &str = "com.docker.compose.oneoff";
pub const LABEL_WORKING_DIR: &str = "com.docker.compose.project.working_dir";
pub const LABEL_NETWORK: &str = "com.docker.compose.network";
pub const LABEL_VOLUME: &str = "com.docker.compose.volume";
pub const LABEL_DEPENDS_ON: &str = "com.docker.compose.depends_on";

/// The file names `compose` looks for, in Compose's order of preference.
pub const DEFAULT_FILES: &[&str] =
    &["compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml"];

/// A compose project, ready to be planned.
#[derive(Debug, Clone)]
pub struct Project {
    pub name: String,
    /// The directory relative paths of the file resolve against.
    pub working_dir: PathBuf,
    /// Services in the order of the file (those of inactive profiles are left out).
    pub services: IndexMap<String, Service>,
    /// Networks by their key in the file; `default` is always there.
    pub networks: IndexMap<String, NetworkSpec>,
    pub volumes: IndexMap<String, VolumeSpec>,
    /// Unset variables, obsolete attributes: what Compose prints as `WARN[0000] ...`.
    pub warnings: Vec<String>,
    /// The file after interpolation, with `name:` set: what `compose config` prints.
    pub document: Value,
}

/// A network of the project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkSpec {
    /// The engine's name: `<project>_<key>`, the `name:` given, or the external network's name.
    pub name: String,
    pub external: bool,
    pub driver: String,
    pub internal: bool,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// A volume of the project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeSpec {
    /// `<project>_<key>`, the `name:` given, or the external volume's name.
    pub name: String,
    pub external: bool,
    pub driver: String,
    pub labels: BTreeMap<String, String>,
}

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

impl Project {
    /// The file after interpolation, as YAML (`berth compose config`).
    pub fn config_yaml(&self) -> Result<String> {
        serde_yaml::to_string(&self.document).map_err(|e| Error::InvalidInput(format!("yaml: {e}")))
    }

    /// The hash of a service's effective configuration (the `config-hash` label): a change
    /// of anything but the replica count recreates its containers.
    pub fn config_hash(&self, service: &Service) -> String {
        #[derive(Serialize)]
        struct Hashed<'a> {
            image: &'a str,
            config: &'a ContainerConfig,
            network: &'a ServiceNetwork,
            networks: Vec<(&'a str, &'a NetworkSpec)>,
            container_name: &'a Option<String>,
        }
        let networks = match &service.network {
            ServiceNetwork::Networks(list) => list
                .iter()
                .filter_map(|a| self.networks.get(&a.network).map(|n| (a.network.as_str(), n)))
                .collect(),
            ServiceNetwork::Mode(_) => Vec::new(),
        };
        let hashed = Hashed {
            image: &service.image,
            config: &service.config,
            network: &service.network,
            networks,
            container_name: &service.container_name,
        };
        let json = serde_json::to_vec(&hashed).expect("service configs serialise");
        hex::encode(Sha256::digest(&json))
    }

    /// The services named and, transitively, those they depend on; all when `names` is empty.
    /// Unknown names are refused as Compose does.
    pub fn selected(&self, names: &[String]) -> Result<BTreeSet<String>> {
        if names.is_empty() {
            return Ok(self.services.keys().cloned().collect());
        }
        let mut selected = BTreeSet::new();
        let mut todo: Vec<String> = names.to_vec();
        while let Some(name) = todo.pop() {
            let Some(service) = self.services.get(&name) else {
                return Err(Error::InvalidInput(format!("no such service: {name}")));
            };
            if selected.insert(name.clone()) {
                todo.extend(service.depends_on.iter().map(|d| d.service.clone()));
            }
        }
        Ok(selected)
    }

    /// Service names with every service after those it depends on (file order otherwise).
    pub fn dependency_order(&self) -> Result<Vec<String>> {
        let mut order = Vec::new();
        let mut state: BTreeMap<&str, bool> = BTreeMap::new(); // false: visiting, true: done
        fn visit<'a>(
            project: &'a Project,
            name: &'a str,
            state: &mut BTreeMap<&'a str, bool>,
            path: &mut Vec<&'a str>,
            order: &mut Vec<String>,
        ) -> Result<()> {
            match state.get(name) {
                Some(true) => return Ok(()),
                Some(false) => {
                    let start = path.iter().position(|n| *n == name).unwrap_or(0);
                    let mut cycle: Vec<&str> = path[start..].to_vec();
                    cycle.push(name);
                    return Err(Error::InvalidInput(format!(
                        "dependency cycle detected: {}",
                        cycle.join(" -> ")
                    )));
                }
                None => {}
            }
            state.insert(name, false);
            path.push(name);
            if let Some(service) = project.services.get(name) {
                for dep in &service.depends_on {
                    visit(project, &dep.service, state, path, order)?;
                }
            }
            path.pop();
            state.insert(name, true);
            order.push(name.to_string());
            Ok(())
        }
        for name in self.services.keys() {
            visit(self, name, &mut state, &mut Vec::new(), &mut order)?;
        }
        Ok(order)
    }

    /// Networks the given services are attached to (by key).
    pub fn networks_used(&self, services: &BTreeSet<String>) -> Vec<String> {
        let mut used = Vec::new();
        for service in self.services.values().filter(|s| services.contains(&s.name)) {
            if let ServiceNetwork::Networks(list) = &service.network {
                for a in list {
                    if !used.contains(&a.network) {
                        used.push(a.network.clone());
                    }
                }
            }
        }
        used
    }

    /// Named volumes the given services mount (by key).
    pub fn volumes_used(&self, services: &BTreeSet<String>) -> Vec<String> {
        let mut used = Vec::new();
        for service in self.services.values().filter(|s| services.contains(&s.name)) {
            for mount in &service.config.mounts {
                if mount.mount_type != MountType::Volume || mount.source.is_empty() {
                    continue;
                }
                if let Some((key, _)) = self.volumes.iter().find(|(_, v)| v.name == mount.source) {
                    if !used.contains(key) {
                        used.push(key.clone());
                    }
                }
            }
        }
        used
    }
}

/// An error in the project's model, worded as Compose words it.
fn invalid_project(message: impl std::fmt::Display) -> Error {
    Error::InvalidInput(format!("{message}: invalid compose project"))
}

/// `-p`, `COMPOSE_PROJECT_NAME`, the file's `name:`, or the directory's name (normalised), in
/// that order. Names given explicitly must already be valid.
pub fn project_name(
    explicit: Option<&str>,
    variables: &Variables,
    file_name: Option<&str>,
    working_dir: &Path,
) -> Result<String> {
    let given = explicit
        .filter(|n| !n.is_empty())
        .or_else(|| variables.get("COMPOSE_PROJECT_NAME").filter(|n| !n.is_empty()))
        .or(file_name.filter(|n| !n.is_empty()));
    if let Some(name) = given {
        check_object_name(ObjectKind::Project, name).map_err(|e| Error::InvalidInput(e.to_string()))?;
        return Ok(name.to_string());
    }
    let base = working_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let normalised: String = base
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    let normalised = normalised.trim_start_matches(['_', '-']).to_string();
    if normalised.is_empty() {
        return Err(Error::InvalidInput(format!(
            "project name must not be empty: the directory name {base:?} has no usable characters, use -p"
        )));
    }
    Ok(normalised)
}

/// Compose's rule (`^[a-z0-9][a-z0-9_-]*$`): [`check_object_name`] with [`ObjectKind::Project`].
pub fn valid_project_name(name: &str) -> bool {
    check_object_name(ObjectKind::Project, name).is_ok()
}

const TOP_LEVEL_KEYS: &[&str] =
    &["version", "name", "include", "services", "networks", "volumes", "secrets", "configs"];

const SERVICE_KEYS: &[&str] = &[
    "annotations",
    "attach",
    "blkio_config",
    "build",
    "cap_add",
    "cap_drop",
    "cgroup",
    "cgroup_parent",
    "command",
    "configs",
    "container_name",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpu_shares",
    "cpus",
    "cpuset",
    "depends_on",
    "deploy",
    "develop",
    "device_cgroup_rules",
    "devices",
    "dns",
    "dns_opt",
    "dns_search",
    "domainname",
    "entrypoint",
    "env_file",
    "environment",
    "expose",
    "extends",
    "external_links",
    "extra_hosts",
    "group_add",
    "healthcheck",
    "hostname",
    "image",
    "init",
    "ipc",
    "isolation",
    "labels",
    "links",
    "logging",
    "mac_address",
    "mem_limit",
    "mem_reservation",
    "mem_swappiness",
    "memswap_limit",
    "network_mode",
    "networks",
    "oom_kill_disable",
    "oom_score_adj",
    "pid",
    "pids_limit",
    "platform",
    "ports",
    "privileged",
    "profiles",
    "pull_policy",
    "read_only",
    "restart",
    "runtime",
    "scale",
    "secrets",
    "security_opt",
    "shm_size",
    "stdin_open",
    "stop_grace_period",
    "stop_signal",
    "storage_opt",
    "sysctls",
    "tmpfs",
    "tty",
    "ulimits",
    "user",
    "userns_mode",
    "uts",
    "volumes",
    "volumes_from",
    "working_dir",
];

/// Keys of a service the engine cannot honour; Compose would apply them, so they are refused
/// rather than silently ignored.
const UNSUPPORTED_SERVICE_KEYS: &[&str] = &[
    "extends",
    "volumes_from",
    "links",
    "external_links",
    "secrets",
    "configs",
    "devices",
    "privileged",
    "pid",
    "ipc",
];

/// The services of a compose file that name `env_file:`s, files that [`load`] reads on the
/// daemon's host; reads nothing itself, so that a caller may refuse a file before loading it.
/// Keys are not interpolated, so the YAML (with its merge keys applied) says it all; a file
/// that does not parse names none (loading it then says what is wrong).
pub fn services_with_env_files(compose_file: &str) -> Vec<String> {
    let Ok(mut document) = serde_yaml::from_str::<Value>(compose_file) else { return Vec::new() };
    if document.apply_merge().is_err() {
        return Vec::new();
    }
    let Some(Value::Mapping(services)) = document.get("services") else { return Vec::new() };
    services
        .iter()
        .filter(|(_, service)| service.get("env_file").is_some_and(|f| !f.is_null()))
        .filter_map(|(name, _)| name.as_str().map(str::to_string))
        .collect()
}

/// Reads a compose project: `request.compose_file` interpolated with `request.env_file` and
/// `request.environment`, relative paths against `request.working_dir`, named `project`
/// (`-p`) or by the other rules of [`project_name`]. `--scale` is applied.
pub fn load(request: &StackUp, project: Option<&str>) -> Result<Project> {
    let working_dir = PathBuf::from(&request.working_dir);
    if !working_dir.is_absolute() {
        return Err(Error::InvalidInput(format!(
            "working directory {:?} is not an absolute path",
            request.working_dir
        )));
    }
    let mut variables = Variables::new(request.env_file.as_deref(), &request.environment)?;
    if request.compose_file.trim().is_empty() {
        return Err(Error::InvalidInput("empty compose file".into()));
    }
    let mut document: Value =
        serde_yaml::from_str(&request.compose_file).map_err(|e| Error::InvalidInput(format!("yaml: {e}")))?;
    document.apply_merge().map_err(|e| Error::InvalidInput(format!("yaml: {e}")))?;
    let Value::Mapping(top) = &document else {
        return Err(Error::InvalidInput("Top-level object must be a mapping".into()));
    };
    for key in top.keys() {
        let key = key.as_str().unwrap_or_default();
        if !TOP_LEVEL_KEYS.contains(&key) && !key.starts_with("x-") {
            return Err(Error::InvalidInput(format!("(root) Additional property {key} is not allowed")));
        }
    }
    variables.interpolate_value(&mut document)?;
    let mut warnings = Vec::new();
    if document.get("version").is_some() {
        warnings.push(
            "the attribute `version` is obsolete, it will be ignored, please remove it to avoid potential confusion"
                .to_string(),
        );
    }
    if document.get("include").is_some() {
        return Err(Error::Unsupported("include is not supported".into()));
    }

    // What the typed model lacks, taken out before typing.
    let mut typed = document.clone();
    let mut extra: BTreeMap<String, ExtraLimits> = BTreeMap::new();
    if let Some(Value::Mapping(services)) = typed.get_mut("services") {
        for (name, service) in services.iter_mut() {
            let name = name.as_str().unwrap_or_default().to_string();
            let Value::Mapping(map) = service else {
                if service.is_null() {
                    continue;
                }
                return Err(Error::InvalidInput(format!("services.{name} must be a mapping")));
            };
            for key in map.keys() {
                let key = key.as_str().unwrap_or_default();
                if !SERVICE_KEYS.contains(&key) && !key.starts_with("x-") {
                    return Err(Error::InvalidInput(format!(
                        "services.{name} Additional property {key} is not allowed"
                    )));
                }
                if UNSUPPORTED_SERVICE_KEYS.contains(&key) {
                    return Err(Error::Unsupported(format!("services.{name}.{key} is not supported")));
                }
            }
            let mut limits = ExtraLimits::default();
            if let Some(v) = map.remove("cpus") {
                limits.cpus = Some(scalar_string(&v, &format!("services.{name}.cpus"))?);
            }
            if let Some(v) = map.remove("pids_limit") {
                limits.pids = Some(scalar_i64(&v, &format!("services.{name}.pids_limit"))?);
            }
            let pids = map
                .get_mut("deploy")
                .and_then(|d| d.get_mut("resources"))
                .and_then(|r| r.get_mut("limits"))
                .and_then(|l| l.as_mapping_mut())
                .and_then(|l| l.remove("pids"));
            if let Some(v) = pids {
                limits.pids = Some(scalar_i64(&v, &format!("services.{name}.deploy.resources.limits.pids"))?);
            }
            // Numbers where the types expect strings (`cpus: 0.5`, `memory: 1073741824`).
            if let Some(Value::Mapping(l)) =
                map.get_mut("deploy").and_then(|d| d.get_mut("resources")).and_then(|r| r.get_mut("limits"))
            {
                for key in ["cpus", "memory"] {
                    if let Some(v @ Value::Number(_)) = l.get_mut(key) {
                        *v = Value::String(scalar_string(v, key)?);
                    }
                }
            }
            for key in ["mem_limit", "stop_grace_period"] {
                if let Some(v @ Value::Number(_)) = map.get_mut(key) {
                    *v = Value::String(scalar_string(v, key)?);
                }
            }
            extra.insert(name, limits);
        }
    }
    let file: spec::Compose =
        serde_yaml::from_value(typed).map_err(|e| Error::InvalidInput(format!("{e}")))?;

    let name = project_name(project, &variables, file.name.as_deref(), &working_dir)?;
    if let Value::Mapping(map) = &mut document {
        map.insert(Value::from("name"), Value::from(name.clone()));
    }

    let mut project = Project {
        name: name.clone(),
        working_dir: working_dir.clone(),
        services: IndexMap::new(),
        networks: IndexMap::new(),
        volumes: IndexMap::new(),
        warnings,
        document,
    };

    for (key, network) in &file.networks.0 {
        let settings: Option<spec::NetworkSettings> = network.clone().into();
        project.networks.insert(key.clone(), network_spec(&name, key, settings)?);
    }
    if !project.networks.contains_key("default") {
        project.networks.insert("default".into(), network_spec(&name, "default", None)?);
    }
    for (key, volume) in &file.volumes.0 {
        let settings: Option<spec::ComposeVolume> = volume.clone().into();
        project.volumes.insert(key.clone(), volume_spec(&name, key, settings));
    }

    let profiles: Vec<String> = variables
        .get("COMPOSE_PROFILES")
        .unwrap_or_default()
        .split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    let names: Vec<String> = file.services.0.keys().cloned().collect();
    for (service_name, service) in &file.services.0 {
        let service = service.clone().unwrap_or_default();
        if !service.profiles.is_empty() && !service.profiles.iter().any(|p| profiles.contains(p)) {
            continue;
        }
        let limits = extra.remove(service_name).unwrap_or_default();
        let model = service_model(&project, &variables, &names, service_name, service, limits)?;
        project.services.insert(service_name.clone(), model);
    }
    // Dependencies on services of inactive profiles are errors, as in Compose.
    for service in project.services.values() {
        for dep in &service.depends_on {
            if !project.services.contains_key(&dep.service) && dep.required {
                return Err(invalid_project(format!(
                    "service {:?} depends on undefined service {:?}",
                    service.name, dep.service
                )));
            }
        }
    }
    project.dependency_order()?;
    for (service, n) in &request.scale {
        let Some(s) = project.services.get_mut(service) else {
            return Err(Error::InvalidInput(format!("no such service: {service}")));
        };
        s.replicas = *n;
    }
    for s in project.services.values() {
        if s.container_name.is_some() && s.replicas > 1 {
            return Err(invalid_project(format!(
                "services.{} can't set container_name and {} as container name must be unique",
                s.name, s.name
            )));
        }
    }
    project.warnings.extend(variables.warnings());
    Ok(project)
}

#[derive(Debug, Default)]
struct ExtraLimits {
    cpus: Option<String>,
    pids: Option<i64>,
}

fn scalar_string(v: &Value, what: &str) -> Result<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(Error::InvalidInput(format!("{what} must be a string or number"))),
    }
}

fn scalar_i64(v: &Value, what: &str) -> Result<i64> {
    match v {
        Value::Number(n) => {
            n.as_i64().ok_or_else(|| Error::InvalidInput(format!("{what} must be an integer")))
        }
        Value::String(s) => {
            s.trim().parse().map_err(|_| Error::InvalidInput(format!("{what} must be an integer")))
        }
        _ => Err(Error::InvalidInput(format!("{what} must be an integer"))),
    }
}

fn labels_map(labels: &spec::Labels) -> BTreeMap<String, String> {
    match labels {
        spec::Labels::List(list) => list
            .iter()
            .map(|l| match l.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (l.clone(), String::new()),
            })
            .collect(),
        spec::Labels::Map(map) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    }
}

fn network_spec(project: &str, key: &str, settings: Option<spec::NetworkSettings>) -> Result<NetworkSpec> {
    let settings = settings.unwrap_or_default();
    let external = match &settings.external {
        Some(spec::ComposeNetwork::Bool(b)) => *b,
        Some(spec::ComposeNetwork::Detailed(_)) => true,
        None => false,
    };
    let name = match (&settings.external, &settings.name) {
        (Some(spec::ComposeNetwork::Detailed(d)), _) => d.name.clone(),
        (_, Some(name)) => name.clone(),
        (_, None) if external => key.to_string(),
        _ => format!("{project}_{key}"),
    };
    let driver = settings.driver.clone().unwrap_or_default();
    if !driver.is_empty() && driver != "bridge" {
        return Err(Error::Unsupported(format!("network {key}: driver {driver:?} (only bridge)")));
    }
    let (subnet, gateway) = match settings.ipam.as_ref().and_then(|i| i.config.first()) {
        Some(c) => (Some(c.subnet.clone()), c.gateway.clone()),
        None => (None, None),
    };
    Ok(NetworkSpec {
        name,
        external,
        driver,
        internal: settings.internal,
        subnet,
        gateway,
        labels: labels_map(&settings.labels),
    })
}

fn volume_spec(project: &str, key: &str, settings: Option<spec::ComposeVolume>) -> VolumeSpec {
    let Some(settings) = settings else {
        return VolumeSpec {
            name: format!("{project}_{key}"),
            external: false,
            driver: String::new(),
            labels: BTreeMap::new(),
        };
    };
    let external = match &settings.external {
        Some(spec::ExternalVolume::Bool(b)) => *b,
        Some(spec::ExternalVolume::Name { .. }) => true,
        None => false,
    };
    let name = match (&settings.external, &settings.name) {
        (Some(spec::ExternalVolume::Name { name }), _) => name.clone(),
        (_, Some(name)) => name.clone(),
        (_, None) if external => key.to_string(),
        _ => format!("{project}_{key}"),
    };
    VolumeSpec {
        name,
        external,
        driver: settings.driver.unwrap_or_default(),
        labels: labels_map(&settings.labels),
    }
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

fn resolve_path(working_dir: &Path, path: &str) -> PathBuf {
    if let Some(rest) = path.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    let joined = working_dir.join(path);
    // Lexically normalised, as Compose shows bind sources (`./data` → `<dir>/data`).
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn service_model(
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
        init: s.init,
        stop_signal: s.stop_signal.clone(),
        stop_timeout,
        resources,
        ports,
        expose: s.expose.clone(),
        mounts,
        healthcheck,
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

/// `ports:` in the short (`[ip:][host:]container[/proto]`, ranges allowed) and long syntax.
pub fn parse_ports(service: &str, ports: &spec::Ports) -> Result<Vec<PortBinding>> {
    let bad = |p: &str| invalid_project(format!("services.{service}.ports: invalid port {p:?}"));
    let range = |text: &str, p: &str| -> Result<(u16, u16)> {
        let (a, b) = text.split_once('-').unwrap_or((text, text));
        let a: u16 = a.trim().parse().map_err(|_| bad(p))?;
        let b: u16 = b.trim().parse().map_err(|_| bad(p))?;
        if b < a {
            return Err(bad(p));
        }
        Ok((a, b))
    };
    let mut out = Vec::new();
    match ports {
        spec::Ports::Short(list) => {
            for p in list {
                let bindings = berth_types::parse::parse_publish(p).map_err(|e| {
                    invalid_project(format!("services.{service}.ports: invalid port {p:?}: {e}"))
                })?;
                out.extend(bindings);
            }
        }
        spec::Ports::Long(list) => {
            for p in list {
                let host_port = match &p.published {
                    None => 0,
                    Some(spec::PublishedPort::Single(n)) => *n,
                    Some(spec::PublishedPort::Range(r)) => range(r, r)?.0,
                };
                out.push(PortBinding {
                    host_ip: p.host_ip.clone().unwrap_or_default(),
                    host_port,
                    container_port: p.target,
                    protocol: p.protocol.clone().unwrap_or_else(|| "tcp".into()),
                });
            }
        }
    }
    Ok(out)
}

fn mounts(
    project: &Project,
    service: &str,
    volumes: &[spec::Volumes],
    tmpfs: Option<&spec::Tmpfs>,
) -> Result<Vec<Mount>> {
    let named =
        |key: &str| -> Result<String> {
            project.volumes.get(key).map(|v| v.name.clone()).ok_or_else(|| {
                invalid_project(format!("service {service:?} refers to undefined volume {key}"))
            })
        };
    let mut out = Vec::new();
    for v in volumes {
        match v {
            spec::Volumes::Simple(text) => {
                // `-v`'s syntax; a source starting with `~` is a bind under $HOME, as Compose has it.
                let mut mount = mount::parse_volume(text)
                    .map_err(|e| invalid_project(format!("services.{service}.volumes: {e}")))?;
                if mount.mount_type == MountType::Volume && mount.source.starts_with('~') {
                    mount.mount_type = MountType::Bind;
                    // The short syntax creates a missing host directory, as `-v` does.
                    mount.create_mountpoint = true;
                }
                match mount.mount_type {
                    MountType::Bind => {
                        mount.source = resolve_path(&project.working_dir, &mount.source).display().to_string()
                    }
                    MountType::Volume if !mount.source.is_empty() => mount.source = named(&mount.source)?,
                    _ => {}
                }
                out.push(mount);
            }
            spec::Volumes::Advanced(a) => {
                let source = a.source.clone().unwrap_or_default();
                let mount = match a._type.as_str() {
                    "bind" => {
                        if source.is_empty() {
                            return Err(invalid_project(format!(
                                "services.{service}.volumes: a bind mount needs a source"
                            )));
                        }
                        Mount {
                            mount_type: MountType::Bind,
                            source: resolve_path(&project.working_dir, &source).display().to_string(),
                            target: a.target.clone(),
                            read_only: a.read_only,
                            tmpfs_size: None,
                            create_mountpoint: a
                                .bind
                                .as_ref()
                                .and_then(|b| b.create_host_path)
                                .unwrap_or(false),
                        }
                    }
                    "volume" => Mount {
                        mount_type: MountType::Volume,
                        source: if source.is_empty() { String::new() } else { named(&source)? },
                        target: a.target.clone(),
                        read_only: a.read_only,
                        tmpfs_size: None,
                        ..Default::default()
                    },
                    "tmpfs" => Mount {
                        mount_type: MountType::Tmpfs,
                        source: String::new(),
                        target: a.target.clone(),
                        read_only: a.read_only,
                        tmpfs_size: a.tmpfs.as_ref().map(|t| t.size).filter(|s| *s > 0),
                        ..Default::default()
                    },
                    other => {
                        return Err(Error::Unsupported(format!("services.{service}.volumes: type {other:?}")))
                    }
                };
                out.push(mount);
            }
        }
    }
    let tmpfs_targets = match tmpfs {
        None => Vec::new(),
        Some(spec::Tmpfs::Simple(t)) => vec![t.clone()],
        Some(spec::Tmpfs::List(list)) => list.clone(),
    };
    for t in tmpfs_targets {
        out.push(mount::parse_tmpfs(&t).map_err(|e| invalid_project(format!("services.{service}.tmpfs: {e}")))?);
    }
    // Refused here rather than when the first container is made; the mounts stay as written
    // (cleaning them would change the config hash of existing stacks).
    mount::validate_mounts(&out).map_err(|e| invalid_project(format!("services.{service}.volumes: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(text: &str) -> StackUp {
        StackUp { compose_file: text.into(), working_dir: "/srv/My App".into(), ..Default::default() }
    }

    fn error(text: &str) -> String {
        load(&request(text), None).unwrap_err().to_string()
    }

    #[test]
    fn project_names() {
        let vars = Variables::default();
        let dir = Path::new("/srv/My App.v2");
        assert_eq!(project_name(None, &vars, None, dir).unwrap(), "myappv2");
        assert_eq!(project_name(None, &vars, Some("fromfile"), dir).unwrap(), "fromfile");
        let env = Variables {
            values: [("COMPOSE_PROJECT_NAME".to_string(), "fromenv".to_string())].into(),
            unset: vec![],
        };
        assert_eq!(project_name(None, &env, Some("fromfile"), dir).unwrap(), "fromenv");
        assert_eq!(project_name(Some("flag"), &env, Some("fromfile"), dir).unwrap(), "flag");
        assert_eq!(
            project_name(Some("Bad"), &vars, None, dir).unwrap_err().to_string(),
            "invalid project name \"Bad\": must consist only of lowercase alphanumeric characters, hyphens, and \
             underscores as well as start with a letter or number"
        );
        assert!(project_name(None, &vars, None, Path::new("/srv/...")).is_err());
        assert_eq!(load(&request("services: {a: {image: busybox}}"), None).unwrap().name, "myapp");
    }

    #[test]
    fn a_full_service() {
        let dir = std::env::temp_dir().join(format!("berth-compose-model-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("app.env"), "FROM_FILE=1\nOVERRIDDEN=file\n").unwrap();
        let text = r#"
name: demo
x-common: &common
  restart: on-failure:3
services:
  web:
    <<: *common
    image: "busybox:${TAG:-latest}"
    command: httpd -f -p "8080"
    entrypoint: ["/bin/sh", "-c"]
    env_file: app.env
    environment:
      OVERRIDDEN: yaml
      FROM_SHELL:
      NUMBER: 3
    ports: ["127.0.0.1:8080:80", "9000-9001:90-91/udp", "5000"]
    volumes: ["data:/data:ro", "./site:/www", "/cache"]
    tmpfs: ["/run:size=1m"]
    networks:
      front:
        aliases: [www]
    healthcheck:
      test: wget -q -O- http://localhost:8080/
      interval: 1s
      timeout: 500ms
      retries: 5
      start_period: 2s
    deploy:
      replicas: 3
      resources:
        limits: {memory: 64M, cpus: 0.5, pids: 100}
    labels: [team=a]
    user: "1000"
    working_dir: /www
    stop_grace_period: 3s
  client:
    image: busybox
    depends_on:
      web: {condition: service_healthy}
    network_mode: none
networks:
  front: {}
volumes:
  data: {}
"#;
        let mut req = request(text);
        req.working_dir = dir.display().to_string();
        req.environment.insert("FROM_SHELL".into(), "shell".into());
        let p = load(&req, None).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(p.name, "demo");
        assert_eq!(p.warnings, Vec::<String>::new());
        let web = &p.services["web"];
        assert_eq!(web.image, "busybox:latest");
        assert_eq!(web.replicas, 3);
        let c = &web.config;
        assert_eq!(c.cmd, ["httpd", "-f", "-p", "8080"]);
        assert_eq!(c.entrypoint.as_deref(), Some(&["/bin/sh".to_string(), "-c".to_string()][..]));
        assert_eq!(c.env, ["FROM_FILE=1", "OVERRIDDEN=yaml", "FROM_SHELL=shell", "NUMBER=3"]);
        assert_eq!(c.restart_policy, RestartPolicy::OnFailure { max_retries: 3 });
        assert_eq!(c.resources, Resources { memory: Some(64 << 20), cpus: Some(0.5), pids_limit: Some(100) });
        assert_eq!(c.labels.get("team").map(String::as_str), Some("a"));
        assert_eq!(
            (c.user.as_deref(), c.working_dir.as_deref(), c.stop_timeout),
            (Some("1000"), Some("/www"), Some(3))
        );
        let ports: Vec<(String, u16, u16, String)> = c
            .ports
            .iter()
            .map(|p| (p.host_ip.clone(), p.host_port, p.container_port, p.protocol.clone()))
            .collect();
        assert_eq!(
            ports,
            [
                ("127.0.0.1".into(), 8080, 80, "tcp".into()),
                ("".into(), 9000, 90, "udp".into()),
                ("".into(), 9001, 91, "udp".into()),
                ("".into(), 0, 5000, "tcp".into()),
            ]
        );
        assert_eq!(c.mounts.len(), 4);
        assert_eq!(
            (c.mounts[0].mount_type, c.mounts[0].source.as_str(), c.mounts[0].read_only),
            (MountType::Volume, "demo_data", true)
        );
        assert_eq!(c.mounts[1].mount_type, MountType::Bind);
        assert_eq!(c.mounts[1].source, dir.join("site").display().to_string());
        assert_eq!((c.mounts[2].mount_type, c.mounts[2].source.as_str()), (MountType::Volume, ""));
        assert_eq!((c.mounts[3].mount_type, c.mounts[3].tmpfs_size), (MountType::Tmpfs, Some(1 << 20)));
        let health = c.healthcheck.as_ref().unwrap();
        assert_eq!(health.test, ["CMD-SHELL", "wget -q -O- http://localhost:8080/"]);
        assert_eq!(
            (health.interval, health.timeout, health.start_period, health.retries),
            (1_000_000_000, 500_000_000, 2_000_000_000, 5)
        );
        assert_eq!(
            web.network,
            ServiceNetwork::Networks(vec![Attachment {
                network: "front".into(),
                aliases: vec!["www".into()],
                ipv4_address: None
            }])
        );
        assert_eq!(p.networks["front"].name, "demo_front");
        assert_eq!(p.volumes["data"].name, "demo_data");
        let client = &p.services["client"];
        assert_eq!(client.network, ServiceNetwork::Mode("none".into()));
        assert_eq!(
            client.depends_on,
            [Dependency { service: "web".into(), condition: Condition::Healthy, required: true }]
        );
        assert_eq!(p.dependency_order().unwrap(), ["web", "client"]);
        let all = p.selected(&[]).unwrap();
        assert_eq!(p.networks_used(&all), ["front"]);
        assert_eq!(p.volumes_used(&all), ["data"]);
        assert_eq!(p.document["name"], Value::from("demo"));
        assert_eq!(p.document["services"]["web"]["image"], Value::from("busybox:latest"));
    }

    #[test]
    fn the_hash_follows_the_config_but_not_the_replicas() {
        let a = load(&request("services: {web: {image: busybox, command: [a]}}"), None).unwrap();
        let b =
            load(&request("services: {web: {image: busybox, command: [a], deploy: {replicas: 4}}}"), None)
                .unwrap();
        let c = load(&request("services: {web: {image: busybox, command: [b]}}"), None).unwrap();
        let hash = |p: &Project| p.config_hash(&p.services["web"]);
        assert_eq!(hash(&a), hash(&b));
        assert_ne!(hash(&a), hash(&c));
        let mut scaled = request("services: {web: {image: busybox}}");
        scaled.scale.insert("web".into(), 5);
        assert_eq!(load(&scaled, None).unwrap().services["web"].replicas, 5);
        scaled.scale.insert("nope".into(), 1);
        assert_eq!(load(&scaled, None).unwrap_err().to_string(), "no such service: nope");
    }

    #[test]
    fn bad_files_are_refused_as_compose_words_it() {
        let cases = [
            ("", "empty compose file"),
            ("services: [", "yaml: "),
            ("- a\n- b\n", "Top-level object must be a mapping"),
            ("servics: {}\n", "(root) Additional property servics is not allowed"),
            ("services: {web: {image: busybox, imagee: x}}", "services.web Additional property imagee is not allowed"),
            (
                "services: {web: {image: busybox, depends_on: [db]}}",
                "service \"web\" depends on undefined service \"db\": invalid compose project",
            ),
            ("services: {web: {command: x}}", "service \"web\" has neither an image nor a build context specified: invalid compose project"),
            (
                "services: {a: {image: x, depends_on: [b]}, b: {image: x, depends_on: [a]}}",
                "dependency cycle detected: a -> b -> a",
            ),
            ("services: {web: {image: x, networks: [front]}}", "service \"web\" refers to undefined network front: invalid compose project"),
            ("services: {web: {image: x, volumes: [\"data:/d\"]}}", "service \"web\" refers to undefined volume data: invalid compose project"),
            ("services: {web: {image: x, volumes: [\"/a:/b:bogus\"]}}", "services.web.volumes: invalid mode: bogus: invalid compose project"),
            (
                "services: {web: {image: x, volumes: [\"/a:rel\"]}}",
                "services.web.volumes: invalid volume specification: '/a:rel': invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute",
            ),
            ("services: {web: {image: x, volumes: [\"/a:/b\", \"/c:/b/\"]}}", "services.web.volumes: Duplicate mount point: /b: invalid compose project"),
            ("services: {web: {image: x, tmpfs: [\"/t:exec\"]}}", "services.web.tmpfs: unsupported tmpfs option: exec: invalid compose project"),
            (
                "services: {web: {image: x, container_name: one, deploy: {replicas: 2}}}",
                "services.web can't set container_name and web as container name must be unique: invalid compose project",
            ),
            ("services: {web: {image: x, restart: sometimes}}", "services.web.restart: invalid restart policy 'sometimes'"),
            ("services: {web: {image: \"${IMAGE:?set IMAGE}\"}}", "required variable IMAGE is missing a value: set IMAGE"),
            ("services: {web: {image: \"${IMAGE\"}}", "Invalid template: \"${IMAGE\""),
            ("services: {web: {image: x, ports: [\"http\"]}}", "services.web.ports: invalid port \"http\": invalid port: http: invalid compose project"),
            ("services: {web: {image: x, deploy: {resources: {limits: {memory: lots}}}}}", "services.web.deploy.resources.limits.memory: invalid size: 'lots'"),
            ("services: {web: {image: x, healthcheck: {test: [wget]}}}", "services.web.healthcheck.test must start either by \"CMD\", \"CMD-SHELL\" or \"NONE\": invalid compose project"),
            ("services: {web: {image: x, links: [db]}}", "unsupported: services.web.links is not supported"),
        ];
        for (text, want) in cases {
            let got = error(text);
            assert!(got.starts_with(want), "{text}: got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn warnings_and_profiles() {
        let mut req = request("version: '3'\nservices:\n  web: {image: \"busybox:${TAG}\"}\n  debug: {image: busybox, profiles: [debug]}\n");
        let p = load(&req, None).unwrap();
        assert_eq!(p.services.keys().collect::<Vec<_>>(), ["web"]);
        assert_eq!(p.services["web"].image, "busybox:");
        assert_eq!(p.warnings.len(), 2);
        assert!(p.warnings[0].starts_with("the attribute `version` is obsolete"));
        assert_eq!(p.warnings[1], "The \"TAG\" variable is not set. Defaulting to a blank string.");
        req.env_file = Some("COMPOSE_PROFILES=debug\nTAG=1\n".into());
        let p = load(&req, None).unwrap();
        assert_eq!(p.services.keys().collect::<Vec<_>>(), ["web", "debug"]);
        assert_eq!(p.services["web"].image, "busybox:1");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512m", "x").unwrap(), 512 << 20);
        assert_eq!(parse_size("1gb", "x").unwrap(), 1 << 30);
        assert_eq!(parse_size("1024", "x").unwrap(), 1024);
        assert_eq!(parse_size("2k", "x").unwrap(), 2048);
        assert!(parse_size("1q", "x").is_err());
    }
}
