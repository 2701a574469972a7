//! A compose file read into a project: the file is parsed as YAML, interpolated, checked, and
//! turned into what the engine creates (networks, volumes, and a [`ContainerConfig`] per
//! service), with Docker Compose's defaults, project name rules and error wording.
//!
//! Here: reading the file (`load`, the project's name, the keys taken); `project` (the project
//! and its networks and volumes), `service` (a service and its container config), `mounts`
//! (`volumes:` and `tmpfs:` of a service) and `ports` (`ports:`).
//!
//! The file format is the `docker-compose-types` crate's (the Compose Specification as serde
//! types). It lacks a few keys of the specification (`deploy.resources.limits.pids`, the
//! service-level `cpus` and `pids_limit`); those are taken out of the YAML before it is typed
//! and read here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_types::name::{check_object_name, ObjectKind};
use berth_types::StackUp;
use docker_compose_types as spec;
use indexmap::IndexMap;
use serde_yaml::Value;

use super::interpolate::Variables;
use crate::error::{Error, Result};

mod mounts;
mod ports;
mod project;
mod service;

pub use ports::parse_ports;
use project::{network_spec, volume_spec};
pub use project::{NetworkSpec, Project, VolumeSpec};
use service::service_model;
pub use service::{
    parse_size, Attachment, BuildSpec, Condition, Dependency, PullPolicy, Service, ServiceNetwork,
};

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
const UNSUPPORTED_SERVICE_KEYS: &[&str] =
    &["extends", "volumes_from", "links", "external_links", "secrets", "configs", "pid", "ipc"];

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

#[cfg(test)]
mod tests {
    use berth_types::container::{Resources, RestartPolicy};
    use berth_types::volume::MountType;

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
    fn security_keys() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("profile.json"), "{ \"defaultAction\": \"SCMP_ACT_ALLOW\" }").unwrap();
        let text = r#"
services:
  web:
    image: busybox
    privileged: true
    read_only: true
    cap_add: [NET_ADMIN]
    cap_drop: [ALL]
    security_opt: [no-new-privileges, "seccomp=profile.json"]
    devices: ["/dev/fuse:/dev/fuse:rw"]
    pids_limit: 10
    ulimits:
      nproc: 65535
      nofile: {soft: 20000, hard: 40000}
"#;
        let mut req = request(text);
        req.working_dir = dir.path().display().to_string();
        let p = load(&req, None).unwrap();
        let c = &p.services["web"].config;
        assert!(c.privileged && c.read_only);
        assert_eq!(c.security_opt, ["no-new-privileges", r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW"}"#]);
        assert_eq!(c.devices[0].cgroup_permissions, "rw");
        assert_eq!(c.resources.pids_limit, Some(10));
        let limits: Vec<(&str, i64, i64)> =
            c.ulimits.iter().map(|u| (u.name.as_str(), u.soft, u.hard)).collect();
        assert_eq!(limits, [("nproc", 65535, 65535), ("nofile", 20000, 40000)]);
        let bad = load(&request("services: {web: {image: x, ulimits: {bogus: 1}}}"), None).unwrap_err();
        assert!(bad.to_string().contains("services.web.ulimits: invalid ulimit type: bogus"), "{bad}");
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
