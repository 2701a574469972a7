//! Pod sandboxes: CRI's `PodSandboxConfig` → the engine's `PodConfig`, and back to CRI's status
//! and list shapes. Stopping or removing a pod stops or removes its containers first.

use std::collections::HashMap;

use berth_engine::pod::{PidMode, PodConfig, PodDns, PodPort, PodRecord, PodState};
use k8s_cri::v1 as cri;
use tonic::Status;

use super::{container, status, Cri};
use crate::serve::ops::{self, Caller};

pub(super) async fn run(
    cri: &Cri,
    caller: &Caller,
    request: cri::RunPodSandboxRequest,
) -> Result<cri::RunPodSandboxResponse, Status> {
    let config = request.config.ok_or_else(|| Status::invalid_argument("RunPodSandbox: no config"))?;
    let mut pod = to_pod_config(config)?;
    pod.runtime_handler = request.runtime_handler;
    let record = ops::pods::run(&cri.state, caller, pod, cri.cni.clone()).await.map_err(status)?;
    Ok(cri::RunPodSandboxResponse { pod_sandbox_id: record.id })
}

fn to_pod_config(config: cri::PodSandboxConfig) -> Result<PodConfig, Status> {
    let metadata = config.metadata.ok_or_else(|| Status::invalid_argument("RunPodSandbox: no metadata"))?;
    let linux = config.linux.unwrap_or_default();
    let namespaces =
        linux.security_context.as_ref().and_then(|s| s.namespace_options.clone()).unwrap_or_default();
    let pid_mode = match cri::NamespaceMode::try_from(namespaces.pid) {
        Ok(cri::NamespaceMode::Node) => PidMode::Host,
        Ok(cri::NamespaceMode::Pod) => PidMode::Pod,
        Ok(cri::NamespaceMode::Container) => PidMode::Container,
        _ => {
            return Err(Status::invalid_argument(
                "RunPodSandbox: the pid namespace mode TARGET is not for pods",
            ))
        }
    };
    let ports = config
        .port_mappings
        .iter()
        .map(|p| {
            let protocol = match cri::Protocol::try_from(p.protocol) {
                Ok(cri::Protocol::Udp) => "udp",
                Ok(cri::Protocol::Sctp) => "sctp",
                _ => "tcp",
            };
            let port = |n: i32, what: &str| {
                u16::try_from(n)
                    .map_err(|_| Status::invalid_argument(format!("RunPodSandbox: bad {what} {n}")))
            };
            Ok(PodPort {
                protocol: protocol.into(),
                container_port: port(p.container_port, "container port")?,
                host_port: port(p.host_port, "host port")?,
                host_ip: p.host_ip.clone(),
            })
        })
        .collect::<Result<Vec<_>, Status>>()?;
    let dns = config.dns_config.unwrap_or_default();
    Ok(PodConfig {
        name: metadata.name,
        namespace: metadata.namespace,
        uid: metadata.uid,
        attempt: metadata.attempt,
        hostname: config.hostname,
        log_directory: config.log_directory,
        labels: config.labels.into_iter().collect(),
        annotations: config.annotations.into_iter().collect(),
        dns: PodDns { servers: dns.servers, searches: dns.searches, options: dns.options },
        ports,
        host_network: namespaces.network == cri::NamespaceMode::Node as i32,
        host_ipc: namespaces.ipc == cri::NamespaceMode::Node as i32,
        pid_mode,
        cgroup_parent: linux.cgroup_parent,
        sysctls: linux.sysctls.into_iter().collect(),
        runtime_handler: String::new(),
    })
}

/// Stops the pod's containers (at once, as kubelet stopped them already) and then the pod.
/// Stopping a pod that is gone succeeds.
pub(super) async fn stop(
    cri: &Cri,
    caller: &Caller,
    request: cri::StopPodSandboxRequest,
) -> Result<cri::StopPodSandboxResponse, Status> {
    let id = match ops::pods::status(&cri.state, caller, &request.pod_sandbox_id).await {
        Ok(pod) => pod.id,
        Err(e) if e.status == axum::http::StatusCode::NOT_FOUND => return Ok(cri::StopPodSandboxResponse {}),
        Err(e) => return Err(status(e)),
    };
    for member in container::members(cri, caller, &id).await? {
        if member.state.status == berth_types::ContainerStatus::Running {
            ops::containers::stop(&cri.state, caller, &member.id, Some(0)).await.map_err(status)?;
        }
    }
    ops::pods::stop(&cri.state, caller, &id, cri.cni.clone()).await.map_err(status)?;
    Ok(cri::StopPodSandboxResponse {})
}

/// Removes the pod's containers and the pod. Removing a pod that is gone succeeds.
pub(super) async fn remove(
    cri: &Cri,
    caller: &Caller,
    request: cri::RemovePodSandboxRequest,
) -> Result<cri::RemovePodSandboxResponse, Status> {
    let id = match ops::pods::status(&cri.state, caller, &request.pod_sandbox_id).await {
        Ok(pod) => pod.id,
        Err(e) if e.status == axum::http::StatusCode::NOT_FOUND => {
            return Ok(cri::RemovePodSandboxResponse {})
        }
        Err(e) => return Err(status(e)),
    };
    for member in container::members(cri, caller, &id).await? {
        container::remove_one(cri, caller, &member.id).await?;
    }
    ops::pods::remove(&cri.state, caller, &id, cri.cni.clone()).await.map_err(status)?;
    Ok(cri::RemovePodSandboxResponse {})
}

pub(super) async fn status_of(
    cri: &Cri,
    caller: &Caller,
    request: cri::PodSandboxStatusRequest,
) -> Result<cri::PodSandboxStatusResponse, Status> {
    let pod = ops::pods::status(&cri.state, caller, &request.pod_sandbox_id).await.map_err(status)?;
    let mut info = HashMap::new();
    if request.verbose {
        info.insert("info".to_string(), serde_json::to_string(&pod).unwrap_or_default());
        // CNI CHECK: whether the plugins still find the pod's network as they made it.
        let check = ops::pods::check_network(&cri.state, caller, &pod.id, cri.cni.clone()).await;
        info.insert("cniCheck".to_string(), check.err().map(|e| e.message).unwrap_or_else(|| "ok".into()));
    }
    let mode = |host: bool| if host { cri::NamespaceMode::Node } else { cri::NamespaceMode::Pod } as i32;
    let pid = match pod.config.pid_mode {
        PidMode::Host => cri::NamespaceMode::Node,
        PidMode::Pod => cri::NamespaceMode::Pod,
        PidMode::Container => cri::NamespaceMode::Container,
    };
    let pid = pid as i32;
    let status = cri::PodSandboxStatus {
        id: pod.id.clone(),
        metadata: Some(metadata(&pod)),
        state: state(&pod),
        created_at: created(&pod),
        network: Some(cri::PodSandboxNetworkStatus {
            ip: pod.ip.clone().unwrap_or_default(),
            additional_ips: Vec::new(),
        }),
        linux: Some(cri::LinuxPodSandboxStatus {
            namespaces: Some(cri::Namespace {
                options: Some(cri::NamespaceOption {
                    network: mode(pod.config.host_network),
                    pid,
                    ipc: mode(pod.config.host_ipc),
                    ..Default::default()
                }),
            }),
        }),
        labels: pod.config.labels.clone().into_iter().collect(),
        annotations: pod.config.annotations.clone().into_iter().collect(),
        runtime_handler: pod.config.runtime_handler.clone(),
    };
    Ok(cri::PodSandboxStatusResponse {
        status: Some(status),
        info,
        containers_statuses: Vec::new(),
        timestamp: chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0),
    })
}

pub(super) async fn list(
    cri: &Cri,
    caller: &Caller,
    request: cri::ListPodSandboxRequest,
) -> Result<cri::ListPodSandboxResponse, Status> {
    let filter = request.filter.unwrap_or_default();
    let pods = ops::pods::list(&cri.state, caller).await.map_err(status)?;
    let items = pods
        .iter()
        .filter(|p| filter.id.is_empty() || p.id.starts_with(&filter.id))
        .filter(|p| filter.state.as_ref().is_none_or(|s| s.state == state(p)))
        .filter(|p| filter.label_selector.iter().all(|(k, v)| p.config.labels.get(k) == Some(v)))
        .map(|p| cri::PodSandbox {
            id: p.id.clone(),
            metadata: Some(metadata(p)),
            state: state(p),
            created_at: created(p),
            labels: p.config.labels.clone().into_iter().collect(),
            annotations: p.config.annotations.clone().into_iter().collect(),
            runtime_handler: p.config.runtime_handler.clone(),
        })
        .collect();
    Ok(cri::ListPodSandboxResponse { items })
}

pub(super) async fn stats(
    cri: &Cri,
    caller: &Caller,
    request: cri::PodSandboxStatsRequest,
) -> Result<cri::PodSandboxStatsResponse, Status> {
    let pod = ops::pods::status(&cri.state, caller, &request.pod_sandbox_id).await.map_err(status)?;
    Ok(cri::PodSandboxStatsResponse { stats: Some(pod_stats(cri, caller, &pod).await?) })
}

pub(super) async fn list_stats(
    cri: &Cri,
    caller: &Caller,
    request: cri::ListPodSandboxStatsRequest,
) -> Result<cri::ListPodSandboxStatsResponse, Status> {
    let filter = request.filter.unwrap_or_default();
    let mut stats = Vec::new();
    for pod in ops::pods::list(&cri.state, caller).await.map_err(status)? {
        let wanted = pod.state == PodState::Ready
            && (filter.id.is_empty() || pod.id.starts_with(&filter.id))
            && filter.label_selector.iter().all(|(k, v)| pod.config.labels.get(k) == Some(v));
        if wanted {
            stats.push(pod_stats(cri, caller, &pod).await?);
        }
    }
    Ok(cri::ListPodSandboxStatsResponse { stats })
}

/// The pod's use: the sum of its running containers' (a container that stops meanwhile is
/// left out), and each container's.
async fn pod_stats(cri: &Cri, caller: &Caller, pod: &PodRecord) -> Result<cri::PodSandboxStats, Status> {
    let mut containers = Vec::new();
    for member in container::members(cri, caller, &pod.id).await? {
        if member.state.status == berth_types::ContainerStatus::Running {
            if let Ok(sample) = container::stats_of(cri, caller, &member.id, &member.labels).await {
                containers.push(sample);
            }
        }
    }
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    let sum = |get: &dyn Fn(&cri::ContainerStats) -> Option<u64>| -> Option<cri::UInt64Value> {
        Some(cri::UInt64Value { value: containers.iter().filter_map(get).sum() })
    };
    let cpu = cri::CpuUsage {
        timestamp: now,
        usage_core_nano_seconds: sum(&|c| Some(c.cpu.as_ref()?.usage_core_nano_seconds.as_ref()?.value)),
        usage_nano_cores: None,
    };
    let memory = cri::MemoryUsage {
        timestamp: now,
        working_set_bytes: sum(&|c| Some(c.memory.as_ref()?.working_set_bytes.as_ref()?.value)),
        usage_bytes: sum(&|c| Some(c.memory.as_ref()?.usage_bytes.as_ref()?.value)),
        ..Default::default()
    };
    Ok(cri::PodSandboxStats {
        attributes: Some(cri::PodSandboxAttributes {
            id: pod.id.clone(),
            metadata: Some(metadata(pod)),
            labels: pod.config.labels.clone().into_iter().collect(),
            annotations: pod.config.annotations.clone().into_iter().collect(),
        }),
        linux: Some(cri::LinuxPodSandboxStats {
            cpu: Some(cpu),
            memory: Some(memory),
            network: None,
            process: None,
            containers,
        }),
        windows: None,
    })
}

pub(super) fn metadata(pod: &PodRecord) -> cri::PodSandboxMetadata {
    cri::PodSandboxMetadata {
        name: pod.config.name.clone(),
        uid: pod.config.uid.clone(),
        namespace: pod.config.namespace.clone(),
        attempt: pod.config.attempt,
    }
}

fn state(pod: &PodRecord) -> i32 {
    match pod.state {
        PodState::Ready => cri::PodSandboxState::SandboxReady as i32,
        PodState::NotReady => cri::PodSandboxState::SandboxNotready as i32,
    }
}

fn created(pod: &PodRecord) -> i64 {
    pod.created.and_then(|t| t.timestamp_nanos_opt()).unwrap_or(0)
}
