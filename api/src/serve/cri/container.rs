//! A pod's containers: CRI's `ContainerConfig` → berth's, created with the network mode
//! `pod:<id>` so that the container joins its pod's namespaces; their status and lists; the
//! CRI log file; `ExecSync`; stats and resource updates.
//!
//! A CRI container is a berth container named `k8s_<container>_<pod>_<namespace>_<uid>_<attempt>`
//! (dockershim's names), labelled with the pod's `io.kubernetes.*` labels (so `berth ps
//! --filter label=io.kubernetes.pod.name=web` finds it) and with what CRI needs back
//! ([`CriMetadata`]) under [`METADATA_LABEL`].

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use berth_engine::container::{LogOptions, OutputStream, SessionOutput};
use berth_types::security::DeviceMapping;
use berth_types::volume::{Mount, MountType};
use berth_types::{ContainerConfig, ContainerInspect, ContainerStatus, ContainerSummary, ExecConfig};
use futures_util::StreamExt;
use k8s_cri::v1 as cri;
use serde::{Deserialize, Serialize};
use tonic::Status;

use super::{nanos, status, Cri};
use crate::serve::ops::containers::ContainerFilters;
use crate::serve::ops::{self, Caller};

/// The pod a container is in.
pub const SANDBOX_LABEL: &str = "io.berth.cri.sandbox";
/// CRI's own view of the container ([`CriMetadata`] as JSON).
pub const METADATA_LABEL: &str = "io.berth.cri.metadata";

/// What CRI gave at create and asks back in status and lists.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct CriMetadata {
    name: String,
    attempt: u32,
    /// The labels as CRI gave them (berth's labels add the pod's and these two).
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    /// The CRI log file: the pod's log directory joined with the container's log path.
    log_path: String,
    /// The image as CRI named it.
    image: String,
}

/// The CRI log writers of running containers, by container ID.
pub(crate) type LogWriters = Arc<Mutex<HashMap<String, LogWriter>>>;

/// A container's CRI log writer: its task, and whether it has written all there was (the
/// container's log ended).
pub(crate) struct LogWriter {
    task: tokio::task::AbortHandle,
    done: tokio::sync::watch::Receiver<bool>,
}

/// How long `ContainerStatus` of an exited container waits for its log writer to catch up:
/// kubelet and critest read the whole log once the status says exited, as containerd's is then.
const LOG_CATCH_UP: std::time::Duration = std::time::Duration::from_secs(2);

fn metadata(labels: &BTreeMap<String, String>) -> Option<CriMetadata> {
    serde_json::from_str(labels.get(METADATA_LABEL)?).ok()
}

/// The berth containers of pod `pod_id`.
pub(super) async fn members(
    cri: &Cri,
    caller: &Caller,
    pod_id: &str,
) -> Result<Vec<ContainerSummary>, Status> {
    let all = cri_containers(cri, caller).await?;
    Ok(all.into_iter().filter(|c| c.labels.get(SANDBOX_LABEL).map(String::as_str) == Some(pod_id)).collect())
}

async fn cri_containers(cri: &Cri, caller: &Caller) -> Result<Vec<ContainerSummary>, Status> {
    let all = ops::containers::list(&cri.state, caller, true, &ContainerFilters::default())
        .await
        .map_err(status)?;
    Ok(all.into_iter().filter(|c| c.labels.contains_key(SANDBOX_LABEL)).collect())
}

pub(super) async fn create(
    cri: &Cri,
    caller: &Caller,
    request: cri::CreateContainerRequest,
) -> Result<cri::CreateContainerResponse, Status> {
    let pod = ops::pods::status(&cri.state, caller, &request.pod_sandbox_id).await.map_err(status)?;
    let config = request.config.ok_or_else(|| Status::invalid_argument("CreateContainer: no config"))?;
    let berth = to_berth_config(&pod, config)?;
    let created = ops::containers::create(&cri.state, caller, Ok(berth)).await.map_err(status)?;
    Ok(cri::CreateContainerResponse { container_id: created.id })
}

fn to_berth_config(
    pod: &berth_engine::pod::PodRecord,
    config: cri::ContainerConfig,
) -> Result<ContainerConfig, Status> {
    let meta = config.metadata.ok_or_else(|| Status::invalid_argument("CreateContainer: no metadata"))?;
    if meta.name.is_empty() {
        return Err(Status::invalid_argument("CreateContainer: metadata.name is required"));
    }
    let image = config.image.map(|i| i.image).unwrap_or_default();
    if image.is_empty() {
        return Err(Status::invalid_argument("CreateContainer: no image given"));
    }
    let p = &pod.config;
    let name = format!("k8s_{}_{}_{}_{}_{}", meta.name, p.name, p.namespace, p.uid, meta.attempt);
    let log_path = if config.log_path.is_empty() || p.log_directory.is_empty() {
        String::new()
    } else {
        Path::new(&p.log_directory).join(&config.log_path).display().to_string()
    };
    let cri_labels: BTreeMap<String, String> = config.labels.into_iter().collect();
    let mut labels = cri_labels.clone();
    for (key, value) in [
        ("io.kubernetes.pod.name", &p.name),
        ("io.kubernetes.pod.namespace", &p.namespace),
        ("io.kubernetes.pod.uid", &p.uid),
        ("io.kubernetes.container.name", &meta.name),
    ] {
        labels.entry(key.to_string()).or_insert_with(|| value.clone());
    }
    labels.insert(SANDBOX_LABEL.into(), pod.id.clone());
    let cri_meta = CriMetadata {
        name: meta.name.clone(),
        attempt: meta.attempt,
        labels: cri_labels,
        annotations: config.annotations.into_iter().collect(),
        log_path,
        image: image.clone(),
    };
    labels.insert(METADATA_LABEL.into(), serde_json::to_string(&cri_meta).expect("json"));

    let mut mounts = Vec::new();
    for m in config.mounts {
        let propagation = match cri::MountPropagation::try_from(m.propagation) {
            Ok(cri::MountPropagation::PropagationPrivate) => None,
            Ok(cri::MountPropagation::PropagationHostToContainer) => Some("rslave".to_string()),
            Ok(cri::MountPropagation::PropagationBidirectional) => Some("rshared".to_string()),
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "CreateContainer: mount {}: unknown propagation {}",
                    m.container_path, m.propagation
                )))
            }
        };
        if m.image.is_some() {
            return Err(Status::invalid_argument("CreateContainer: image volumes are not supported"));
        }
        mounts.push(Mount {
            mount_type: MountType::Bind,
            source: m.host_path,
            target: m.container_path,
            read_only: m.readonly,
            tmpfs_size: None,
            // kubelet makes the host paths; a missing one is made as a directory, as containerd does.
            create_mountpoint: true,
            propagation,
        });
    }
    let devices = config
        .devices
        .into_iter()
        .map(|d| DeviceMapping {
            path_on_host: d.host_path,
            path_in_container: d.container_path,
            cgroup_permissions: d.permissions,
        })
        .collect();
    let mut berth = ContainerConfig {
        image,
        name: Some(name),
        cmd: config.args,
        entrypoint: (!config.command.is_empty()).then_some(config.command),
        env: config.envs.into_iter().map(|kv| format!("{}={}", kv.key, kv.value)).collect(),
        working_dir: Some(config.working_dir).filter(|w| !w.is_empty()),
        labels,
        tty: config.tty,
        open_stdin: config.stdin,
        network: Some(format!("{}{}", berth_engine::pod::POD_NETWORK_PREFIX, pod.id)),
        mounts,
        devices,
        ..Default::default()
    };
    if let Some(linux) = config.linux {
        if let Some(resources) = linux.resources {
            berth.resources = resources_of(&resources);
        }
        if let Some(security) = linux.security_context {
            apply_security(&mut berth, security)?;
        }
    }
    if berth.security_opt.iter().all(|o| !o.starts_with("seccomp")) {
        // No seccomp profile asked for: unconfined, as kubelet means it (and containerd runs it).
        berth.security_opt.push("seccomp=unconfined".into());
    }
    Ok(berth)
}

fn resources_of(r: &cri::LinuxContainerResources) -> berth_types::container::Resources {
    berth_types::container::Resources {
        memory: (r.memory_limit_in_bytes > 0).then_some(r.memory_limit_in_bytes as u64),
        cpus: (r.cpu_quota > 0 && r.cpu_period > 0).then(|| r.cpu_quota as f64 / r.cpu_period as f64),
        pids_limit: None,
    }
}

fn apply_security(berth: &mut ContainerConfig, s: cri::LinuxContainerSecurityContext) -> Result<(), Status> {
    berth.privileged = s.privileged;
    berth.read_only = s.readonly_rootfs;
    if let Some(caps) = s.capabilities {
        berth.cap_add = caps.add_capabilities;
        berth.cap_drop = caps.drop_capabilities;
    }
    let user = match (&s.run_as_user, s.run_as_username.as_str()) {
        (Some(uid), _) => Some(uid.value.to_string()),
        (None, name) if !name.is_empty() => Some(name.to_string()),
        _ => None,
    };
    berth.user = match (user, &s.run_as_group) {
        (Some(user), Some(gid)) => Some(format!("{user}:{}", gid.value)),
        // containerd refuses it too: the group of which user?
        (None, Some(_)) => {
            return Err(Status::invalid_argument(
                "CreateContainer: run_as_group is set without run_as_user or run_as_username",
            ))
        }
        (user, None) => user,
    };
    if s.no_new_privs {
        berth.security_opt.push("no-new-privileges".into());
    }
    berth.group_add = s.supplemental_groups.iter().map(|g| g.to_string()).collect();
    // An empty list means the runtime's defaults, as containerd reads it (proto3 cannot tell
    // an empty list from none); kubelet sends the defaults, or none for procMount Unmasked.
    berth.masked_paths = (!s.masked_paths.is_empty()).then_some(s.masked_paths);
    berth.readonly_paths = (!s.readonly_paths.is_empty()).then_some(s.readonly_paths);
    if let Some(profile) = s.seccomp {
        match cri::security_profile::ProfileType::try_from(profile.profile_type) {
            Ok(cri::security_profile::ProfileType::RuntimeDefault) => {
                berth.security_opt.push("seccomp=builtin".into())
            }
            Ok(cri::security_profile::ProfileType::Unconfined) => {
                berth.security_opt.push("seccomp=unconfined".into())
            }
            Ok(cri::security_profile::ProfileType::Localhost) => {
                let text = std::fs::read_to_string(&profile.localhost_ref).map_err(|e| {
                    Status::invalid_argument(format!("seccomp profile {}: {e}", profile.localhost_ref))
                })?;
                berth.security_opt.push(format!("seccomp={text}"));
            }
            Err(_) => return Err(Status::invalid_argument("unknown seccomp profile type")),
        }
    }
    Ok(())
}

/// Starts the container and its CRI log writer.
pub(super) async fn start(
    cri: &Cri,
    caller: &Caller,
    request: cri::StartContainerRequest,
) -> Result<cri::StartContainerResponse, Status> {
    let id = request.container_id;
    let inspect = ops::containers::inspect(&cri.state, caller, &id).await.map_err(status)?;
    let meta = metadata(&inspect.config.labels)
        .ok_or_else(|| Status::not_found(format!("container {id} is not a CRI container")))?;
    ops::containers::start(&cri.state, caller, &inspect.id).await.map_err(status)?;
    if !meta.log_path.is_empty() {
        start_log_writer(cri, &inspect.id, PathBuf::from(&meta.log_path));
    }
    Ok(cri::StartContainerResponse {})
}

pub(super) async fn stop(
    cri: &Cri,
    caller: &Caller,
    request: cri::StopContainerRequest,
) -> Result<cri::StopContainerResponse, Status> {
    let timeout = u32::try_from(request.timeout.max(0)).unwrap_or(u32::MAX);
    let inspect =
        ops::containers::inspect(&cri.state, caller, &request.container_id).await.map_err(status)?;
    if matches!(
        inspect.state.status,
        ContainerStatus::Running | ContainerStatus::Paused | ContainerStatus::Restarting
    ) {
        ops::containers::stop(&cri.state, caller, &inspect.id, Some(timeout)).await.map_err(status)?;
    }
    Ok(cri::StopContainerResponse {})
}

/// Removing a container that is gone succeeds.
pub(super) async fn remove(
    cri: &Cri,
    caller: &Caller,
    request: cri::RemoveContainerRequest,
) -> Result<cri::RemoveContainerResponse, Status> {
    remove_one(cri, caller, &request.container_id).await?;
    Ok(cri::RemoveContainerResponse {})
}

pub(super) async fn remove_one(cri: &Cri, caller: &Caller, id: &str) -> Result<(), Status> {
    match ops::containers::remove(&cri.state, caller, id, true, true).await {
        Ok(()) => {}
        Err(e) if e.status == StatusCode::NOT_FOUND => {}
        Err(e) => return Err(status(e)),
    }
    if let Some(writer) = cri.logs.lock().unwrap_or_else(|p| p.into_inner()).remove(id) {
        writer.task.abort();
    }
    Ok(())
}

pub(super) async fn list(
    cri: &Cri,
    caller: &Caller,
    request: cri::ListContainersRequest,
) -> Result<cri::ListContainersResponse, Status> {
    let filter = request.filter.unwrap_or_default();
    let containers = cri_containers(cri, caller)
        .await?
        .into_iter()
        .filter_map(|c| {
            let meta = metadata(&c.labels)?;
            let pod = c.labels.get(SANDBOX_LABEL).cloned().unwrap_or_default();
            let item = cri::Container {
                id: c.id.clone(),
                pod_sandbox_id: pod,
                metadata: Some(cri::ContainerMetadata { name: meta.name.clone(), attempt: meta.attempt }),
                image: Some(cri::ImageSpec { image: meta.image.clone(), ..Default::default() }),
                image_ref: c.image_id.clone(),
                state: state(c.state.status),
                created_at: nanos(&c.created),
                labels: meta.labels.clone().into_iter().collect(),
                annotations: meta.annotations.clone().into_iter().collect(),
                image_id: c.image_id.clone(),
            };
            Some((item, meta))
        })
        .filter(|(c, _)| filter.id.is_empty() || c.id.starts_with(&filter.id))
        .filter(|(c, _)| {
            filter.pod_sandbox_id.is_empty() || c.pod_sandbox_id.starts_with(&filter.pod_sandbox_id)
        })
        .filter(|(c, _)| filter.state.as_ref().is_none_or(|s| s.state == c.state))
        .filter(|(_, m)| filter.label_selector.iter().all(|(k, v)| m.labels.get(k) == Some(v)))
        .map(|(c, _)| c)
        .collect();
    Ok(cri::ListContainersResponse { containers })
}

fn state(status: ContainerStatus) -> i32 {
    let state = match status {
        ContainerStatus::Created => cri::ContainerState::ContainerCreated,
        ContainerStatus::Running | ContainerStatus::Paused | ContainerStatus::Restarting => {
            cri::ContainerState::ContainerRunning
        }
        ContainerStatus::Exited | ContainerStatus::Dead => cri::ContainerState::ContainerExited,
        ContainerStatus::Removing => cri::ContainerState::ContainerUnknown,
    };
    state as i32
}

pub(super) async fn status_of(
    cri: &Cri,
    caller: &Caller,
    request: cri::ContainerStatusRequest,
) -> Result<cri::ContainerStatusResponse, Status> {
    let c = ops::containers::inspect(&cri.state, caller, &request.container_id).await.map_err(status)?;
    let meta = metadata(&c.config.labels).ok_or_else(|| {
        Status::not_found(format!("container {} is not a CRI container", request.container_id))
    })?;
    if matches!(c.state.status, ContainerStatus::Exited | ContainerStatus::Dead) {
        log_caught_up(cri, &c.id).await;
    }
    let mut info = HashMap::new();
    if request.verbose {
        info.insert("info".to_string(), serde_json::to_string(&c).unwrap_or_default());
    }
    Ok(cri::ContainerStatusResponse { status: Some(to_status(&c, &meta)), info })
}

fn to_status(c: &ContainerInspect, meta: &CriMetadata) -> cri::ContainerStatus {
    let exited = matches!(c.state.status, ContainerStatus::Exited | ContainerStatus::Dead);
    let reason = if !exited {
        String::new()
    } else if c.state.oom_killed {
        "OOMKilled".into()
    } else if c.state.exit_code == 0 {
        "Completed".into()
    } else {
        "Error".into()
    };
    let mounts = c
        .config
        .mounts
        .iter()
        .filter(|m| m.mount_type == MountType::Bind)
        .map(|m| cri::Mount {
            container_path: m.target.clone(),
            host_path: m.source.clone(),
            readonly: m.read_only,
            propagation: match m.propagation.as_deref() {
                Some("rslave") | Some("slave") => cri::MountPropagation::PropagationHostToContainer,
                Some("rshared") | Some("shared") => cri::MountPropagation::PropagationBidirectional,
                _ => cri::MountPropagation::PropagationPrivate,
            } as i32,
            ..Default::default()
        })
        .collect();
    let r = &c.config.resources;
    let resources = cri::ContainerResources {
        linux: Some(cri::LinuxContainerResources {
            memory_limit_in_bytes: r.memory.map(|m| m as i64).unwrap_or(0),
            cpu_period: r.cpus.map(|_| 100_000).unwrap_or(0),
            cpu_quota: r.cpus.map(|c| (c * 100_000.0) as i64).unwrap_or(0),
            ..Default::default()
        }),
        windows: None,
    };
    cri::ContainerStatus {
        id: c.id.clone(),
        metadata: Some(cri::ContainerMetadata { name: meta.name.clone(), attempt: meta.attempt }),
        state: state(c.state.status),
        created_at: nanos(&c.created),
        started_at: nanos(&c.state.started_at),
        finished_at: if exited { nanos(&c.state.finished_at) } else { 0 },
        exit_code: c.state.exit_code,
        image: Some(cri::ImageSpec { image: meta.image.clone(), ..Default::default() }),
        image_ref: c.image_id.clone(),
        reason,
        message: c.state.error.clone(),
        labels: meta.labels.clone().into_iter().collect(),
        annotations: meta.annotations.clone().into_iter().collect(),
        mounts,
        log_path: meta.log_path.clone(),
        resources: Some(resources),
        image_id: c.image_id.clone(),
        user: None,
    }
}

pub(super) async fn update_resources(
    cri: &Cri,
    caller: &Caller,
    request: cri::UpdateContainerResourcesRequest,
) -> Result<cri::UpdateContainerResourcesResponse, Status> {
    let Some(linux) = request.linux else { return Ok(cri::UpdateContainerResourcesResponse {}) };
    let r = resources_of(&linux);
    let update = berth_types::ContainerUpdate {
        memory: r.memory,
        cpus: r.cpus,
        pids_limit: None,
        restart_policy: None,
    };
    ops::containers::update(&cri.state, caller, &request.container_id, Ok(update)).await.map_err(status)?;
    Ok(cri::UpdateContainerResourcesResponse {})
}

/// The log writer opens the file for each write, so a file kubelet rotated away is made anew.
pub(super) async fn reopen_log(
    cri: &Cri,
    caller: &Caller,
    request: cri::ReopenContainerLogRequest,
) -> Result<cri::ReopenContainerLogResponse, Status> {
    let c = ops::containers::inspect(&cri.state, caller, &request.container_id).await.map_err(status)?;
    if c.state.status != ContainerStatus::Running {
        return Err(Status::failed_precondition(format!("container {} is not running", c.id)));
    }
    // The writer opens the file by path for each entry, so it already writes to a new file once
    // the old one is moved away; the new file is made here, as kubelet's rotation expects it now.
    if let Some(meta) = metadata(&c.config.labels).filter(|m| !m.log_path.is_empty()) {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&meta.log_path)
            .map_err(|e| Status::internal(format!("reopening the log {}: {e}", meta.log_path)))?;
    }
    Ok(cri::ReopenContainerLogResponse {})
}

/// Runs a command in the container and answers its output and exit code; `timeout` seconds
/// (0: none) bound the wait.
pub(super) async fn exec_sync(
    cri: &Cri,
    caller: &Caller,
    request: cri::ExecSyncRequest,
) -> Result<cri::ExecSyncResponse, Status> {
    let config = ExecConfig { cmd: request.cmd, ..Default::default() };
    let exec =
        ops::containers::exec(&cri.state, caller, &request.container_id, config).await.map_err(status)?;
    let mut session = exec.session;
    let run = async {
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        while let Some(item) = session.output.recv().await {
            if let SessionOutput::Data { stream, data } = item {
                match stream {
                    OutputStream::Stderr => stderr.extend_from_slice(&data),
                    OutputStream::Stdout | OutputStream::Tty => stdout.extend_from_slice(&data),
                }
            }
        }
        let code = (&mut session.exit).await;
        (stdout, stderr, code)
    };
    let answer = if request.timeout > 0 {
        match tokio::time::timeout(Duration::from_secs(request.timeout as u64), run).await {
            Ok(answer) => answer,
            Err(_) => {
                // The process does not outlive its timeout (kubelet's probes rely on it). The
                // session stays open until the monitor reports the end: a kill sent just before
                // the connection closes could go unread.
                if let Err(e) = session.input.kill().await {
                    tracing::debug!(error = %e, "ExecSync: the timed-out process was not killed");
                }
                let _ = tokio::time::timeout(Duration::from_secs(2), &mut session.exit).await;
                if let Some(row) = exec.audit_row {
                    cri.state.audit.exec_ended(row, None, "timed out").await;
                }
                return Err(Status::deadline_exceeded(format!(
                    "command timed out after {} seconds",
                    request.timeout
                )));
            }
        }
    } else {
        run.await
    };
    let (stdout, stderr, code) = answer;
    let code = code.map_err(super::engine_status)?;
    if let Some(row) = exec.audit_row {
        cri.state.audit.exec_ended(row, Some(code), "").await;
    }
    Ok(cri::ExecSyncResponse { stdout, stderr, exit_code: code })
}

pub(super) async fn stats(
    cri: &Cri,
    caller: &Caller,
    request: cri::ContainerStatsRequest,
) -> Result<cri::ContainerStatsResponse, Status> {
    let c = ops::containers::inspect(&cri.state, caller, &request.container_id).await.map_err(status)?;
    Ok(cri::ContainerStatsResponse { stats: Some(stats_of(cri, caller, &c.id, &c.config.labels).await?) })
}

pub(super) async fn list_stats(
    cri: &Cri,
    caller: &Caller,
    request: cri::ListContainerStatsRequest,
) -> Result<cri::ListContainerStatsResponse, Status> {
    let filter = request.filter.unwrap_or_default();
    let mut stats = Vec::new();
    for c in cri_containers(cri, caller).await? {
        let pod = c.labels.get(SANDBOX_LABEL).cloned().unwrap_or_default();
        let Some(meta) = metadata(&c.labels) else { continue };
        let wanted = c.state.status == ContainerStatus::Running
            && (filter.id.is_empty() || c.id.starts_with(&filter.id))
            && (filter.pod_sandbox_id.is_empty() || pod.starts_with(&filter.pod_sandbox_id))
            && filter.label_selector.iter().all(|(k, v)| meta.labels.get(k) == Some(v));
        if wanted {
            stats.push(stats_of(cri, caller, &c.id, &c.labels).await?);
        }
    }
    Ok(cri::ListContainerStatsResponse { stats })
}

pub(super) async fn stats_of(
    cri: &Cri,
    caller: &Caller,
    id: &str,
    labels: &BTreeMap<String, String>,
) -> Result<cri::ContainerStats, Status> {
    let meta = metadata(labels).unwrap_or_default();
    let attributes = cri::ContainerAttributes {
        id: id.to_string(),
        metadata: Some(cri::ContainerMetadata { name: meta.name.clone(), attempt: meta.attempt }),
        labels: meta.labels.clone().into_iter().collect(),
        annotations: meta.annotations.clone().into_iter().collect(),
    };
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    let sample = ops::containers::stats(&cri.state, caller, id).await.map_err(status)?;
    let value = |v: u64| Some(cri::UInt64Value { value: v });
    Ok(cri::ContainerStats {
        attributes: Some(attributes),
        cpu: Some(cri::CpuUsage {
            timestamp: now,
            usage_core_nano_seconds: value(sample.cpu_usage_ns),
            usage_nano_cores: None,
        }),
        memory: Some(cri::MemoryUsage {
            timestamp: now,
            // kubelet's working set: usage less the inactive page cache, as cAdvisor's.
            working_set_bytes: value(sample.memory_in_use()),
            usage_bytes: value(sample.memory_usage),
            ..Default::default()
        }),
        writable_layer: None,
        swap: None,
    })
}

/// Follows the container's log and appends it to `path` in the CRI format kubelet reads:
/// `TIMESTAMP STREAM P|F LINE` (`P`: a partial line, the rest follows; `F`: a full one). Only
/// entries after the file's last one are written, so a resumed writer adds no duplicates.
fn start_log_writer(cri: &Cri, id: &str, path: PathBuf) {
    let state = cri.state.clone();
    let id_owned = id.to_string();
    // The file is there when StartContainer answers, as containerd's is.
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = std::fs::OpenOptions::new().create(true).append(true).open(&path) {
        tracing::warn!(container = %id, path = %path.display(), error = %e, "CRI log writer");
    }
    let (done_tx, done) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        let _done = DoneOnDrop(done_tx);
        let since = last_time(&path).map(|t| t + chrono::Duration::nanoseconds(1));
        let options = LogOptions { follow: true, since, ..Default::default() };
        let mut stream = match state.engine.container_logs(&id_owned, options).await {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(container = %id_owned, error = %e, "CRI log writer: reading the log");
                return;
            }
        };
        while let Some(entry) = stream.next().await {
            let Ok(entry) = entry else { break };
            let (line, tag) = match entry.line.strip_suffix('\n') {
                Some(line) => (line, 'F'),
                None => (entry.line.as_str(), 'P'),
            };
            let text = format!("{} {} {tag} {line}\n", entry.time, entry.stream);
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| f.write_all(text.as_bytes()));
            if let Err(e) = written {
                tracing::warn!(container = %id_owned, path = %path.display(), error = %e, "CRI log writer");
            }
        }
    });
    let writer = LogWriter { task: task.abort_handle(), done };
    if let Some(old) = cri.logs.lock().unwrap_or_else(|p| p.into_inner()).insert(id.to_string(), writer) {
        old.task.abort();
    }
}

/// Says "done" when the writer's task ends, however it ends.
struct DoneOnDrop(tokio::sync::watch::Sender<bool>);

impl Drop for DoneOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(true);
    }
}

/// Waits (a little) for the log writer of an exited container to have written its whole log.
async fn log_caught_up(cri: &Cri, id: &str) {
    let done = cri.logs.lock().unwrap_or_else(|p| p.into_inner()).get(id).map(|w| w.done.clone());
    if let Some(mut done) = done {
        let _ = tokio::time::timeout(LOG_CATCH_UP, done.wait_for(|d| *d)).await;
    }
}

/// The time of the last entry of a CRI log file.
fn last_time(path: &Path) -> Option<chrono::DateTime<chrono::Utc>> {
    let text = std::fs::read_to_string(path).ok()?;
    let last = text.lines().last()?;
    let time = last.split(' ').next()?;
    chrono::DateTime::parse_from_rfc3339(time).ok().map(|t| t.with_timezone(&chrono::Utc))
}

/// After a daemon restart: the log writers of the CRI containers that ran (what they wrote
/// while the daemon was down is added).
pub(super) async fn resume_log_writers(cri: &Cri) {
    let caller = cri.caller("RuntimeService", "StartContainer");
    let Ok(containers) = cri_containers(cri, &caller).await else { return };
    for c in containers.iter().filter(|c| c.state.status != ContainerStatus::Created) {
        if let Some(meta) = metadata(&c.labels).filter(|m| !m.log_path.is_empty()) {
            start_log_writer(cri, &c.id, PathBuf::from(meta.log_path));
        }
    }
}
