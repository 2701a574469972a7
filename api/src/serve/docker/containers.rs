//! Docker Engine API: containers — list, create, inspect, the lifecycle, wait, remove, prune,
//! logs, top, stats and resize. Attach is in `hijack`, archive/export/changes/update in `files`.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use berth_engine::container::{LogOptions, WaitCondition};
use berth_types::volume::MountType;
use berth_types::{ContainerInspect, ContainerStatus, ContainerSummary};
use bollard_stubs::models::{
    ContainerConfig as DockerConfig, ContainerCreateBody, ContainerCreateResponse, ContainerInspectResponse,
    ContainerPruneResponse, ContainerState as DockerState_, ContainerStateStatusEnum,
    ContainerSummary as DockerSummary, ContainerSummaryHostConfig, ContainerSummaryNetworkSettings,
    ContainerSummaryStateEnum, ContainerTopResponse, ContainerWaitResponse, EndpointSettings, Health,
    HealthConfig as DockerHealthConfig, HealthStatusEnum, HealthcheckResult, HostConfig, MountPoint,
    NetworkSettings, PortBinding, PortSummary, PortSummaryTypeEnum, RestartPolicy, RestartPolicyNameEnum,
};
use futures_util::StreamExt;

use super::hijack::{self, frame, StreamKind};
use super::query::DockerQuery;
use super::{translate, DockerJson, DockerState};
use crate::serve::error::ApiError;
use crate::serve::ops::containers::ContainerFilters;
use crate::serve::ops::{self, Caller};

pub fn routes() -> Router<DockerState> {
    Router::new()
        .route("/containers/json", get(list))
        .route("/containers/create", post(create))
        .route("/containers/prune", post(prune))
        .route("/containers/{id}", delete(remove))
        .route("/containers/{id}/json", get(inspect))
        .route("/containers/{id}/start", post(start))
        .route("/containers/{id}/stop", post(stop))
        .route("/containers/{id}/restart", post(restart))
        .route("/containers/{id}/kill", post(kill))
        .route("/containers/{id}/pause", post(pause))
        .route("/containers/{id}/unpause", post(unpause))
        .route("/containers/{id}/rename", post(rename))
        .route("/containers/{id}/wait", post(wait))
        .route("/containers/{id}/logs", get(logs))
        .route("/containers/{id}/top", get(top))
        .route("/containers/{id}/stats", get(stats))
        .route("/containers/{id}/resize", post(resize))
        .route("/containers/{id}/attach", post(hijack::attach))
}

/// Docker's zero time, for a start or finish that has not happened.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn time_or_zero(time: &str) -> String {
    if time.is_empty() {
        ZERO_TIME.to_string()
    } else {
        time.to_string()
    }
}

fn unix_seconds(time: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(time).map(|t| t.timestamp()).unwrap_or(0)
}

async fn list(
    State(state): State<DockerState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<Vec<DockerSummary>>, ApiError> {
    let query = DockerQuery::parse(raw.as_deref());
    let pairs = query.filters()?;
    let filters = ContainerFilters::parse(pairs.iter().map(String::as_str))
        .map_err(super::query::filter_error_in_dockers_words)?;
    let mut containers = ops::containers::list(&state.app, &caller, query.flag("all")?, &filters).await?;
    if let Some(limit) = query.int("limit")?.filter(|l| *l > 0) {
        containers.truncate(limit as usize);
    }
    Ok(Json(containers.into_iter().map(summary).collect()))
}

pub(super) fn summary(c: ContainerSummary) -> DockerSummary {
    let networks: HashMap<String, EndpointSettings> =
        c.networks.iter().map(|n| (n.clone(), EndpointSettings::default())).collect();
    let network_mode = c.networks.first().cloned().unwrap_or_else(|| "none".into());
    DockerSummary {
        id: Some(c.id),
        names: Some(vec![format!("/{}", c.name)]),
        image: Some(c.image),
        image_id: Some(c.image_id),
        command: Some(c.command),
        created: Some(unix_seconds(&c.created)),
        ports: Some(
            c.ports
                .iter()
                .map(|p| PortSummary {
                    ip: Some(if p.host_ip.is_empty() { "0.0.0.0".into() } else { p.host_ip.clone() }),
                    private_port: p.container_port,
                    public_port: Some(p.host_port),
                    typ: Some(if p.protocol == "udp" {
                        PortSummaryTypeEnum::UDP
                    } else {
                        PortSummaryTypeEnum::TCP
                    }),
                })
                .collect(),
        ),
        labels: Some(c.labels.into_iter().collect()),
        state: Some(summary_state(c.state.status)),
        status: Some(c.status),
        host_config: Some(ContainerSummaryHostConfig { network_mode: Some(network_mode), annotations: None }),
        network_settings: Some(ContainerSummaryNetworkSettings { networks: Some(networks) }),
        mounts: Some(Vec::new()),
        ..Default::default()
    }
}

fn summary_state(status: ContainerStatus) -> ContainerSummaryStateEnum {
    match status {
        ContainerStatus::Created => ContainerSummaryStateEnum::CREATED,
        ContainerStatus::Running => ContainerSummaryStateEnum::RUNNING,
        ContainerStatus::Paused => ContainerSummaryStateEnum::PAUSED,
        ContainerStatus::Restarting => ContainerSummaryStateEnum::RESTARTING,
        ContainerStatus::Removing => ContainerSummaryStateEnum::REMOVING,
        ContainerStatus::Exited => ContainerSummaryStateEnum::EXITED,
        ContainerStatus::Dead => ContainerSummaryStateEnum::DEAD,
    }
}

async fn create(
    State(state): State<DockerState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
    body: Result<DockerJson<Option<ContainerCreateBody>>, ApiError>,
) -> Result<Response, ApiError> {
    let query = DockerQuery::parse(raw.as_deref());
    let config = body.and_then(|DockerJson(body)| {
        let body = body
            .ok_or_else(|| ApiError::bad_request("Config cannot be empty in order to create a container"))?;
        if let Some(platform) = query.get("platform").filter(|p| !p.is_empty()) {
            let ours = format!("linux/{}", super::system::go_arch());
            if platform != ours && platform != "linux" {
                return Err(ApiError::bad_request(format!(
                    "image platform {platform} is not supported by this daemon ({ours})"
                )));
            }
        }
        translate::container_config(query.get("name").map(str::to_string), body)
    });
    let image = config.as_ref().map(|c| c.image.clone()).unwrap_or_default();
    let created = ops::containers::create(&state.app, &caller, config).await.map_err(|e| {
        if e.message.starts_with("No such image") {
            super::images::no_such_image(&image, e)
        } else {
            e
        }
    })?;
    Ok((StatusCode::CREATED, Json(ContainerCreateResponse { id: created.id, warnings: created.warnings }))
        .into_response())
}

async fn inspect(
    State(state): State<DockerState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let c = ops::containers::inspect(&state.app, &caller, &id).await?;
    let exec_ids = state.execs.of_container(&c.id);
    // Docker shows the config the process runs with: the image's, overridden by the container's.
    let image =
        ops::images::inspect(&state.app, &caller, &c.image_id).await.map(|i| i.config).unwrap_or_default();
    Ok(Json(inspect_shape(c, &image, exec_ids)))
}

/// berth's inspect in Docker's shape. A JSON value rather than the model alone: older clients
/// still read the network fields Docker kept at the top of NetworkSettings until API 1.44.
fn inspect_shape(
    c: ContainerInspect,
    image: &berth_types::ImageConfig,
    exec_ids: Vec<String>,
) -> serde_json::Value {
    let config = &c.config;
    let state = &c.state;
    let health = state.health.as_ref().map(|h| Health {
        status: Some(match h.status {
            berth_types::HealthStatus::Starting => HealthStatusEnum::STARTING,
            berth_types::HealthStatus::Healthy => HealthStatusEnum::HEALTHY,
            berth_types::HealthStatus::Unhealthy => HealthStatusEnum::UNHEALTHY,
        }),
        failing_streak: Some(i64::from(h.failing_streak)),
        log: Some(
            h.log
                .iter()
                .map(|p| HealthcheckResult {
                    start: Some(p.start.clone()),
                    end: Some(p.end.clone()),
                    exit_code: Some(i64::from(p.exit_code)),
                    output: Some(p.output.clone()),
                })
                .collect(),
        ),
    });
    let docker_state = DockerState_ {
        status: Some(match state.status {
            ContainerStatus::Created => ContainerStateStatusEnum::CREATED,
            ContainerStatus::Running => ContainerStateStatusEnum::RUNNING,
            ContainerStatus::Paused => ContainerStateStatusEnum::PAUSED,
            ContainerStatus::Restarting => ContainerStateStatusEnum::RESTARTING,
            ContainerStatus::Removing => ContainerStateStatusEnum::REMOVING,
            ContainerStatus::Exited => ContainerStateStatusEnum::EXITED,
            ContainerStatus::Dead => ContainerStateStatusEnum::DEAD,
        }),
        running: Some(matches!(
            state.status,
            ContainerStatus::Running | ContainerStatus::Paused | ContainerStatus::Restarting
        )),
        paused: Some(state.status == ContainerStatus::Paused),
        restarting: Some(state.status == ContainerStatus::Restarting),
        oom_killed: Some(state.oom_killed),
        dead: Some(state.status == ContainerStatus::Dead),
        pid: Some(i64::from(state.pid)),
        exit_code: Some(i64::from(state.exit_code)),
        error: Some(state.error.clone()),
        started_at: Some(time_or_zero(&state.started_at)),
        finished_at: Some(time_or_zero(&state.finished_at)),
        health,
    };
    let mut binds = Vec::new();
    let mut tmpfs = HashMap::new();
    for m in &config.mounts {
        match m.mount_type {
            MountType::Tmpfs => {
                let options = m.tmpfs_size.map(|s| format!("size={s}")).unwrap_or_default();
                tmpfs.insert(m.target.clone(), options);
            }
            _ if m.source.is_empty() => {}
            _ => binds.push(format!("{}:{}{}", m.source, m.target, if m.read_only { ":ro" } else { "" })),
        }
    }
    let mut port_bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for p in &config.ports {
        let protocol = if p.protocol.is_empty() { "tcp" } else { p.protocol.as_str() };
        port_bindings
            .entry(format!("{}/{protocol}", p.container_port))
            .or_default()
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: Some(p.host_ip.clone()),
                host_port: Some(if p.host_port == 0 { String::new() } else { p.host_port.to_string() }),
            });
    }
    let restart = match &config.restart_policy {
        berth_types::RestartPolicy::No => (RestartPolicyNameEnum::NO, 0),
        berth_types::RestartPolicy::Always => (RestartPolicyNameEnum::ALWAYS, 0),
        berth_types::RestartPolicy::UnlessStopped => (RestartPolicyNameEnum::UNLESS_STOPPED, 0),
        berth_types::RestartPolicy::OnFailure { max_retries } => {
            (RestartPolicyNameEnum::ON_FAILURE, i64::from(*max_retries))
        }
    };
    let network_mode = if c.network_settings.network_mode.is_empty() {
        config.network.clone().unwrap_or_else(|| "bridge".into())
    } else {
        c.network_settings.network_mode.clone()
    };
    let host_config = HostConfig {
        binds: Some(binds),
        network_mode: Some(network_mode),
        port_bindings: Some(port_bindings),
        restart_policy: Some(RestartPolicy { name: Some(restart.0), maximum_retry_count: Some(restart.1) }),
        auto_remove: Some(config.auto_remove),
        memory: Some(config.resources.memory.unwrap_or(0) as i64),
        nano_cpus: Some(config.resources.cpus.map(|c| (c * 1e9).round() as i64).unwrap_or(0)),
        pids_limit: config.resources.pids_limit,
        cap_add: Some(config.cap_add.clone()),
        cap_drop: Some(config.cap_drop.clone()),
        readonly_rootfs: Some(config.read_only),
        init: Some(config.init),
        runtime: Some(c.runtime.clone()),
        publish_all_ports: Some(config.publish_all),
        tmpfs: Some(tmpfs),
        privileged: Some(config.privileged),
        userns_mode: Some(config.userns_mode.clone().unwrap_or_default()),
        security_opt: (!config.security_opt.is_empty()).then(|| config.security_opt.clone()),
        devices: Some(
            config
                .devices
                .iter()
                .map(|d| bollard_stubs::models::DeviceMapping {
                    path_on_host: Some(d.path_on_host.clone()),
                    path_in_container: Some(d.path_in_container.clone()),
                    cgroup_permissions: Some(d.cgroup_permissions.clone()),
                })
                .collect(),
        ),
        // null when none, as Docker answers.
        ulimits: (!config.ulimits.is_empty()).then(|| {
            config
                .ulimits
                .iter()
                .map(|u| bollard_stubs::models::ResourcesUlimits {
                    name: Some(u.name.clone()),
                    soft: Some(u.soft),
                    hard: Some(u.hard),
                })
                .collect()
        }),
        log_config: Some(bollard_stubs::models::HostConfigLogConfig {
            typ: Some(config.log_driver.clone().unwrap_or_else(|| "json-file".into())),
            config: Some(config.log_opts.clone().into_iter().collect()),
        }),
        ..Default::default()
    };
    let mut volumes: Vec<String> = image.volumes.clone();
    for m in config.mounts.iter().filter(|m| m.mount_type == MountType::Volume) {
        if !volumes.contains(&m.target) {
            volumes.push(m.target.clone());
        }
    }
    let mut exposed = image.exposed_ports.clone();
    for port in &config.expose {
        let port = if port.contains('/') { port.clone() } else { format!("{port}/tcp") };
        if !exposed.contains(&port) {
            exposed.push(port);
        }
    }
    let mut labels: HashMap<String, String> = image.labels.clone().into_iter().collect();
    labels.extend(config.labels.clone());
    let docker_config = DockerConfig {
        hostname: Some(config.hostname.clone().unwrap_or_else(|| c.id.chars().take(12).collect())),
        domainname: Some(String::new()),
        user: Some(config.user.clone().unwrap_or_else(|| image.user.clone())),
        attach_stdin: Some(config.open_stdin),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        exposed_ports: Some(exposed.clone()),
        tty: Some(config.tty),
        open_stdin: Some(config.open_stdin),
        stdin_once: Some(config.open_stdin),
        env: Some(merge_env(&image.env, &config.env)),
        cmd: Some(if config.cmd.is_empty() && config.entrypoint.is_none() {
            image.cmd.clone()
        } else {
            config.cmd.clone()
        }),
        healthcheck: config.healthcheck.as_ref().map(|h| DockerHealthConfig {
            test: Some(h.test.clone()),
            interval: Some(h.interval as i64),
            timeout: Some(h.timeout as i64),
            retries: Some(i64::from(h.retries)),
            start_period: Some(h.start_period as i64),
            start_interval: Some(h.start_interval as i64),
        }),
        image: Some(c.image.clone()),
        volumes: Some(volumes),
        working_dir: Some(config.working_dir.clone().unwrap_or_else(|| image.working_dir.clone())),
        entrypoint: Some(config.entrypoint.clone().unwrap_or_else(|| image.entrypoint.clone())),
        labels: Some(labels),
        stop_signal: config
            .stop_signal
            .clone()
            .or_else(|| (!image.stop_signal.is_empty()).then(|| image.stop_signal.clone())),
        stop_timeout: config.stop_timeout.map(i64::from),
        ..Default::default()
    };
    let mounts: Vec<MountPoint> = c
        .mounts
        .iter()
        .map(|m| MountPoint {
            typ: Some(berth_types::mount::type_name(m.mount_type).to_string()),
            name: (!m.name.is_empty()).then(|| m.name.clone()),
            source: Some(m.source.clone()),
            destination: Some(m.destination.clone()),
            driver: (m.mount_type == MountType::Volume).then(|| "local".to_string()),
            mode: Some(mount_mode(m)),
            rw: Some(!m.read_only),
            propagation: Some(if m.mount_type == MountType::Bind {
                "rprivate".into()
            } else {
                String::new()
            }),
        })
        .collect();
    let mut ports: HashMap<String, Option<Vec<PortBinding>>> = config
        .expose
        .iter()
        .map(|e| (if e.contains('/') { e.clone() } else { format!("{e}/tcp") }, None))
        .collect();
    for p in &c.network_settings.ports {
        let protocol = if p.protocol.is_empty() { "tcp" } else { p.protocol.as_str() };
        ports
            .entry(format!("{}/{protocol}", p.container_port))
            .or_default()
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: Some(if p.host_ip.is_empty() { "0.0.0.0".into() } else { p.host_ip.clone() }),
                host_port: Some(p.host_port.to_string()),
            });
    }
    let networks: HashMap<String, EndpointSettings> =
        c.network_settings.networks.iter().map(|(name, e)| (name.clone(), endpoint(e))).collect();
    let network_settings = NetworkSettings {
        sandbox_id: Some(String::new()),
        sandbox_key: Some(String::new()),
        ports: Some(ports),
        networks: Some(networks),
    };
    let response = ContainerInspectResponse {
        id: Some(c.id.clone()),
        created: Some(c.created.clone()),
        path: Some(c.path.clone()),
        args: Some(c.args.clone()),
        state: Some(docker_state),
        image: Some(c.image_id.clone()),
        resolv_conf_path: Some(String::new()),
        hostname_path: Some(String::new()),
        hosts_path: Some(String::new()),
        log_path: Some(c.log_path.clone()),
        name: Some(format!("/{}", c.name.trim_start_matches('/'))),
        restart_count: Some(i64::from(c.restart_count)),
        driver: Some(if c.snapshotter == "overlay" { "overlay2".into() } else { c.snapshotter.clone() }),
        platform: Some("linux".into()),
        mount_label: Some(String::new()),
        process_label: Some(String::new()),
        app_armor_profile: Some(String::new()),
        exec_ids: (!exec_ids.is_empty()).then_some(exec_ids),
        host_config: Some(host_config),
        mounts: Some(mounts),
        config: Some(docker_config),
        network_settings: Some(network_settings),
        ..Default::default()
    };
    let mut value = serde_json::to_value(response).unwrap_or_default();
    // The top-level network fields of API < 1.44, from the first network.
    if let Some(settings) = value.get_mut("NetworkSettings").and_then(|v| v.as_object_mut()) {
        let first = c.network_settings.networks.values().next();
        let (ip, prefix) = first.map(|e| split_cidr(&e.ipv4_address)).unwrap_or_default();
        settings.insert("IPAddress".into(), ip.into());
        settings.insert("IPPrefixLen".into(), prefix.into());
        settings.insert("Gateway".into(), first.map(|e| e.gateway.clone()).unwrap_or_default().into());
        settings.insert("MacAddress".into(), first.map(|e| e.mac_address.clone()).unwrap_or_default().into());
        settings.insert("Bridge".into(), "".into());
    }
    value
}

/// The image's environment with the container's entries over it, by name, in Docker's order.
fn merge_env(image: &[String], container: &[String]) -> Vec<String> {
    let key = |e: &String| e.split_once('=').map(|(k, _)| k.to_string()).unwrap_or_else(|| e.clone());
    let mut env: Vec<String> =
        image.iter().filter(|e| !container.iter().any(|c| key(c) == key(e))).cloned().collect();
    env.extend(container.iter().cloned());
    // The default PATH the process gets when neither sets one is not shown, as dockerd 20.10.
    env
}

/// The Mode dockerd shows: `ro` for read-only mounts, and `z` (its default relabel mode) for a
/// named volume, which `-v NAME:/path` gives; berth keeps no record of whether a volume came
/// from `-v` or `--mount` (where dockerd shows an empty mode), so `-v`'s answer is shown.
fn mount_mode(m: &berth_types::volume::MountPoint) -> String {
    let anonymous = m.name.len() == 64 && m.name.bytes().all(|b| b.is_ascii_hexdigit());
    match (m.read_only, m.mount_type) {
        (true, _) => "ro".into(),
        (false, MountType::Volume) if !anonymous => "z".into(),
        _ => String::new(),
    }
}

/// `172.18.0.2/16` → (`172.18.0.2`, 16).
fn split_cidr(cidr: &str) -> (String, i64) {
    match cidr.split_once('/') {
        Some((ip, prefix)) => (ip.to_string(), prefix.parse().unwrap_or(0)),
        None => (cidr.to_string(), 0),
    }
}

fn endpoint(e: &berth_types::network::NetworkEndpoint) -> EndpointSettings {
    let (ip, prefix) = split_cidr(&e.ipv4_address);
    EndpointSettings {
        aliases: Some(e.aliases.clone()),
        mac_address: Some(e.mac_address.clone()),
        gateway: Some(e.gateway.clone()),
        ip_address: Some(ip),
        ip_prefix_len: Some(prefix),
        dns_names: Some(e.aliases.clone()),
        ..Default::default()
    }
}

/// Docker answers 304 to a start of a running container and a stop of a stopped one.
async fn current_status(state: &DockerState, caller: &Caller, id: &str) -> Result<ContainerStatus, ApiError> {
    Ok(ops::containers::inspect(&state.app, caller, id).await?.state.status)
}

async fn start(
    State(state): State<DockerState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if matches!(
        current_status(&state, &caller, &id).await?,
        ContainerStatus::Running | ContainerStatus::Paused
    ) {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    ops::containers::start(&state.app, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `t` (seconds; Docker's `-1` waits forever, berth's longest wait is then used).
fn timeout(query: &DockerQuery) -> Result<Option<u32>, ApiError> {
    if query.get("signal").is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::bad_request("stop with a signal is not supported by berth; kill it instead"));
    }
    match query.int("t")? {
        None => Ok(None),
        Some(t) if t < 0 => Ok(Some(u32::MAX)),
        Some(t) => Ok(Some(u32::try_from(t).unwrap_or(u32::MAX))),
    }
}

async fn stop(
    State(state): State<DockerState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let timeout = timeout(&DockerQuery::parse(raw.as_deref()))?;
    if !matches!(
        current_status(&state, &caller, &id).await?,
        ContainerStatus::Running | ContainerStatus::Paused | ContainerStatus::Restarting
    ) {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    ops::containers::stop(&state.app, &caller, &id, timeout).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn restart(
    State(state): State<DockerState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<StatusCode, ApiError> {
    let timeout = timeout(&DockerQuery::parse(raw.as_deref()))?;
    ops::containers::restart(&state.app, &caller, &id, timeout).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn kill(
    State(state): State<DockerState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<StatusCode, ApiError> {
    let query = DockerQuery::parse(raw.as_deref());
    let signal = query.get("signal").filter(|s| !s.is_empty()).map(str::to_string);
    // dockerd's words: a capital for a bad signal, the name as given for one that is not running.
    ops::containers::kill(&state.app, &caller, &id, signal).await.map_err(|e| match e.status {
        StatusCode::BAD_REQUEST if e.message.starts_with("invalid signal") => {
            ApiError { message: format!("I{}", &e.message[1..]), ..e }
        }
        StatusCode::CONFLICT => {
            ApiError { message: format!("Cannot kill container: {id}: {}", e.message), ..e }
        }
        _ => e,
    })?;
    Ok(StatusCode::NO_CONTENT)
}

async fn pause(
    State(state): State<DockerState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    ops::containers::pause(&state.app, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn unpause(
    State(state): State<DockerState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    ops::containers::unpause(&state.app, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn rename(
    State(state): State<DockerState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<StatusCode, ApiError> {
    let query = DockerQuery::parse(raw.as_deref());
    let name = query.get("name").unwrap_or("").trim_start_matches('/').to_string();
    ops::containers::rename(&state.app, &caller, &id, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The wait is armed before the answer's head is sent, and the body follows when the condition
/// holds: clients send `wait` before `start` and rely on that order.
async fn wait(
    State(state): State<DockerState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = DockerQuery::parse(raw.as_deref());
    let condition = match query.get("condition").unwrap_or("") {
        "" | "not-running" => WaitCondition::NotRunning,
        "next-exit" => WaitCondition::NextExit,
        "removed" => WaitCondition::Removed,
        other => {
            return Err(ApiError::bad_request(format!(
                "invalid condition: {other:?} (choose not-running, next-exit or removed)"
            )))
        }
    };
    let done = ops::containers::watch(&state.app, &caller, &id, condition).await?;
    let body = futures_util::stream::once(async move {
        let result = done.await;
        let answer = ContainerWaitResponse { status_code: i64::from(result.status_code), error: None };
        let mut bytes = serde_json::to_vec(&answer).unwrap_or_default();
        bytes.push(b'\n');
        Ok::<_, std::io::Error>(bytes)
    });
    Ok(([(header::CONTENT_TYPE, "application/json")], Body::from_stream(body)).into_response())
}

async fn remove(
    State(state): State<DockerState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<StatusCode, ApiError> {
    let query = DockerQuery::parse(raw.as_deref());
    if query.flag("link")? {
        return Err(ApiError::bad_request("links are not supported by berth"));
    }
    ops::containers::remove(&state.app, &caller, &id, query.flag("force")?, query.flag("v")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn prune(
    State(state): State<DockerState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<ContainerPruneResponse>, ApiError> {
    let query = DockerQuery::parse(raw.as_deref());
    if let Some(filter) = query.filters()?.first() {
        return Err(ApiError::bad_request(format!(
            "Invalid filter {filter:?}: container prune takes no filters in berth"
        )));
    }
    let report = ops::containers::prune(&state.app, &caller).await?;
    Ok(Json(ContainerPruneResponse {
        containers_deleted: Some(report.containers_deleted),
        space_reclaimed: Some(report.space_reclaimed as i64),
    }))
}

async fn logs(
    State(state): State<DockerState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = DockerQuery::parse(raw.as_deref());
    let (stdout, stderr) = (query.flag("stdout")?, query.flag("stderr")?);
    if !stdout && !stderr {
        return Err(ApiError::bad_request("Bad parameters: you must choose at least one stream"));
    }
    let tail = match query.get("tail").unwrap_or("all") {
        "all" | "" => None,
        n => match n.parse::<i64>() {
            Ok(n) if n < 0 => None,
            Ok(n) => Some(n as usize),
            Err(_) => return Err(ApiError::bad_request(format!("invalid value for tail: {n:?}"))),
        },
    };
    let options = LogOptions {
        follow: query.flag("follow")?,
        tail,
        since: query.unix_time("since")?,
        until: query.unix_time("until")?,
        stdout,
        stderr,
    };
    let timestamps = query.flag("timestamps")?;
    let tty = ops::containers::inspect(&state.app, &caller, &id).await?.config.tty;
    let entries = ops::containers::logs(&state.app, &caller, &id, options).await?;
    let body = entries.map(move |entry| {
        let entry = entry.map_err(|e| std::io::Error::other(e.to_string()))?;
        let line = if timestamps {
            let time = chrono::DateTime::parse_from_rfc3339(&entry.time)
                .map(|t| t.to_utc().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
                .unwrap_or(entry.time);
            format!("{time} {}", entry.line)
        } else {
            entry.line
        };
        let kind = if entry.stream == "stderr" { StreamKind::Stderr } else { StreamKind::Stdout };
        Ok::<_, std::io::Error>(if tty { line.into_bytes().into() } else { frame(kind, line.as_bytes()) })
    });
    let content_type = if tty { hijack::RAW_STREAM } else { hijack::MULTIPLEXED_STREAM };
    Ok(([(header::CONTENT_TYPE, content_type)], Body::from_stream(body)).into_response())
}

async fn top(
    State(state): State<DockerState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<ContainerTopResponse>, ApiError> {
    let query = DockerQuery::parse(raw.as_deref());
    if let Some(args) = query.get("ps_args").filter(|a| !a.is_empty() && *a != "-ef") {
        return Err(ApiError::bad_request(format!(
            "ps_args {args:?} are not supported by berth (it lists as ps -ef)"
        )));
    }
    let report = ops::containers::top(&state.app, &caller, &id).await?;
    Ok(Json(ContainerTopResponse { titles: Some(report.titles), processes: Some(report.processes) }))
}

/// The host's CPU time in nanoseconds (/proc/stat's first line), which Docker's clients divide
/// a container's CPU time by.
fn system_cpu_ns() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else { return 0 };
    let Some(line) = stat.lines().next() else { return 0 };
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let jiffies: u64 = line.split_whitespace().skip(1).take(8).filter_map(|v| v.parse::<u64>().ok()).sum();
    jiffies * (1_000_000_000 / ticks)
}

fn online_cpus() -> u64 {
    std::thread::available_parallelism().map(|n| n.get() as u64).unwrap_or(1)
}

/// One stats sample in Docker's shape; `previous` fills `precpu_stats` (the CLI's CPU % is the
/// difference of the two).
fn stats_shape(
    s: &berth_types::ContainerStats,
    system: u64,
    previous: Option<(&berth_types::ContainerStats, u64)>,
) -> serde_json::Value {
    let cpu = |usage: u64, system: u64| {
        serde_json::json!({
            "cpu_usage": {"total_usage": usage, "usage_in_kernelmode": 0, "usage_in_usermode": usage},
            "system_cpu_usage": system,
            "online_cpus": online_cpus(),
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}
        })
    };
    let (precpu, preread) = match previous {
        Some((p, psystem)) => (cpu(p.cpu_usage_ns, psystem), p.read.clone()),
        None => (
            serde_json::json!({"cpu_usage": {"total_usage": 0}, "throttling_data": {}}),
            ZERO_TIME.to_string(),
        ),
    };
    // Docker's per-device entries, one per operation (its cgroup v2 names).
    let block_io: Vec<serde_json::Value> = s
        .block_io
        .iter()
        .flat_map(|d| {
            [("read", d.read_bytes), ("write", d.write_bytes)].map(|(op, value)| {
                serde_json::json!({"major": d.major, "minor": d.minor, "op": op, "value": value})
            })
        })
        .collect();
    let mut answer = serde_json::json!({
        "id": s.id,
        "name": format!("/{}", s.name),
        "read": s.read,
        "preread": preread,
        "pids_stats": {"current": s.pids},
        "cpu_stats": cpu(s.cpu_usage_ns, system),
        "precpu_stats": precpu,
        // The docker CLI shows `usage` less `total_inactive_file` (cgroup v1's name, tried first)
        // or `inactive_file`; dockerd sends both names on v1.
        "memory_stats": {
            "usage": s.memory_usage,
            "limit": s.memory_limit,
            "stats": {"inactive_file": s.memory_inactive_file, "total_inactive_file": s.memory_inactive_file}
        },
        "blkio_stats": {"io_service_bytes_recursive": block_io},
        "num_procs": 0,
        "storage_stats": {},
    });
    // Docker leaves `networks` out for a container without interfaces of its own.
    if !s.networks.is_empty() {
        answer["networks"] = serde_json::to_value(&s.networks).expect("counters serialise");
    }
    answer
}

async fn stats(
    State(state): State<DockerState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = DockerQuery::parse(raw.as_deref());
    let stream = query.flag_or("stream", true)?;
    let one_shot = query.flag("one-shot")?;
    if one_shot && stream {
        return Err(ApiError::bad_request("cannot have stream=true and one-shot=true"));
    }
    let first = ops::containers::stats(&state.app, &caller, &id).await?;
    let first_system = system_cpu_ns();
    if !stream {
        let value = if one_shot {
            stats_shape(&first, first_system, None)
        } else {
            // As Docker: a second sample a second later, so that the CPU use can be computed.
            tokio::time::sleep(Duration::from_secs(1)).await;
            let second = ops::containers::stats(&state.app, &caller, &id).await?;
            stats_shape(&second, system_cpu_ns(), Some((&first, first_system)))
        };
        return Ok(Json(value).into_response());
    }
    let app = state.app.clone();
    let body = futures_util::stream::unfold(
        (Some((first, first_system)), None::<(berth_types::ContainerStats, u64)>),
        move |(next, previous)| {
            let (app, caller, id) = (app.clone(), caller.clone(), id.clone());
            async move {
                let (sample, system) = match next {
                    Some(s) => s,
                    None => {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        match ops::containers::stats(&app, &caller, &id).await {
                            Ok(s) => (s, system_cpu_ns()),
                            // The container is gone: the stream ends.
                            Err(_) => return None,
                        }
                    }
                };
                let value = stats_shape(&sample, system, previous.as_ref().map(|(p, ps)| (p, *ps)));
                let mut line = serde_json::to_vec(&value).unwrap_or_default();
                line.push(b'\n');
                Some((Ok::<_, std::io::Error>(line), (None, Some((sample, system)))))
            }
        },
    );
    Ok(([(header::CONTENT_TYPE, "application/json")], Body::from_stream(body)).into_response())
}

/// `POST /containers/{id}/resize?h=&w=`: the size of the container's terminal.
async fn resize(
    State(state): State<DockerState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<StatusCode, ApiError> {
    let query = DockerQuery::parse(raw.as_deref());
    let (rows, cols) = hijack::size(&query)?;
    let container = ops::containers::inspect(&state.app, &caller, &id).await?;
    if !container.config.tty {
        // Docker ignores a resize of a container without a terminal.
        return Ok(StatusCode::OK);
    }
    match state.sessions.input(&container.id) {
        Some(input) => input.resize(cols, rows).await.map_err(ApiError::from)?,
        None => {
            let session = ops::containers::attach(&state.app, &caller, &container.id).await?;
            session.input.resize(cols, rows).await.map_err(ApiError::from)?;
        }
    }
    Ok(StatusCode::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(split_cidr("172.18.0.2/16"), ("172.18.0.2".to_string(), 16));
        let image = ["PATH=/bin".to_string(), "A=0".to_string()];
        assert_eq!(merge_env(&image, &["A=1".to_string(), "B=2".to_string()]), ["PATH=/bin", "A=1", "B=2"]);
        assert_eq!(merge_env(&[], &["X=1".to_string()]), ["X=1"]);
    }
}
