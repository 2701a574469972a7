//! Pod sandbox operations (the CRI face's pods): run, stop, remove, status, list. Operators run,
//! stop and remove pods (admins: a pod may use the host's network); viewers read them. Pods are
//! not owned by a team: they come from kubelet over the root-only CRI socket.

use axum::http::StatusCode;
use berth_engine::pod::{CniConfig, PodConfig, PodRecord, PodState};
use berth_types::auth::Role;
use berth_types::pod::{PodContainer, PodSummary};

use super::{recorded, Caller};
use crate::serve::error::ApiError;
use crate::serve::state::AppState;

pub async fn run(
    state: &AppState,
    caller: &Caller,
    config: PodConfig,
    cni: CniConfig,
) -> Result<PodRecord, ApiError> {
    let result = async {
        caller.require(Role::Operator)?;
        if config.host_network || config.host_ipc {
            caller.require(Role::Admin)?;
        }
        let subject = format!("{}/{}", config.namespace, config.name);
        let result = state.engine.run_pod(config, cni).await;
        let message = match &result {
            Ok(pod) => format!("pod sandbox {} ready (ip {})", pod.id, pod.ip.as_deref().unwrap_or("none")),
            Err(_) => String::new(),
        };
        recorded(state, "pod", "run", &subject, &message, result).await
    }
    .await;
    caller.audited(state, StatusCode::CREATED, result).await
}

/// Stops the pod's sandbox (its containers are the caller's to stop first).
pub async fn stop(
    state: &AppState,
    caller: &Caller,
    id: &str,
    cni: CniConfig,
) -> Result<PodRecord, ApiError> {
    let result = async {
        caller.require(Role::Operator)?;
        recorded(state, "pod", "stop", id, "pod sandbox stopped", state.engine.stop_pod(id, cni).await).await
    }
    .await;
    caller.audited(state, StatusCode::NO_CONTENT, result).await
}

/// Removes the pod's sandbox; `Ok(false)`: there was none.
pub async fn remove(state: &AppState, caller: &Caller, id: &str, cni: CniConfig) -> Result<bool, ApiError> {
    let result = async {
        caller.require(Role::Operator)?;
        recorded(state, "pod", "remove", id, "pod sandbox removed", state.engine.remove_pod(id, cni).await)
            .await
    }
    .await;
    caller.audited(state, StatusCode::NO_CONTENT, result).await
}

pub async fn status(state: &AppState, caller: &Caller, id: &str) -> Result<PodRecord, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(state.engine.pod(id).await?)
}

/// A connection to `port` inside pod `id`'s network (CRI's port forward): an operator's, as an
/// exec is.
pub async fn connect_port(
    state: &AppState,
    caller: &Caller,
    id: &str,
    port: u16,
) -> Result<std::net::TcpStream, ApiError> {
    caller.require(Role::Operator)?;
    Ok(state.engine.connect_pod_port(id, port).await?)
}

pub async fn list(state: &AppState, caller: &Caller) -> Result<Vec<PodRecord>, ApiError> {
    caller.require(Role::Viewer)?;
    Ok(state.engine.list_pods().await?)
}

/// Every pod with its containers (those the caller may see), for the dashboard's Pods page.
pub async fn summaries(state: &AppState, caller: &Caller) -> Result<Vec<PodSummary>, ApiError> {
    let pods = list(state, caller).await?;
    let containers =
        super::containers::list(state, caller, true, &super::containers::ContainerFilters::default()).await?;
    Ok(pods
        .into_iter()
        .map(|pod| {
            let mut members: Vec<PodContainer> = containers
                .iter()
                .filter(|c| c.labels.get(crate::serve::cri::SANDBOX_LABEL) == Some(&pod.id))
                .map(|c| PodContainer {
                    id: c.id.clone(),
                    name: c
                        .labels
                        .get("io.kubernetes.container.name")
                        .cloned()
                        .unwrap_or_else(|| c.name.clone()),
                    status: c.state.status,
                })
                .collect();
            members.sort_by(|a, b| a.name.cmp(&b.name));
            PodSummary {
                id: pod.id,
                name: pod.config.name,
                namespace: pod.config.namespace,
                state: match pod.state {
                    PodState::Ready => "ready".into(),
                    PodState::NotReady => "notready".into(),
                },
                ip: pod.ip.unwrap_or_default(),
                host_network: pod.config.host_network,
                created: pod.created.map(|t| t.to_rfc3339()).unwrap_or_default(),
                containers: members,
            }
        })
        .collect())
}

/// CNI CHECK of the pod's network.
pub async fn check_network(
    state: &AppState,
    caller: &Caller,
    id: &str,
    cni: CniConfig,
) -> Result<(), ApiError> {
    caller.require(Role::Viewer)?;
    Ok(state.engine.check_pod_network(id, cni).await?)
}
