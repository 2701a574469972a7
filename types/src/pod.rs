//! Pods: Kubernetes pod sandboxes run through berth's CRI face (`serve --cri-socket`), as the
//! dashboard's Pods page lists them (`GET /api/v1/pods`).

use serde::{Deserialize, Serialize};

use crate::container::ContainerStatus;

/// A pod sandbox and its containers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct PodSummary {
    pub id: String,
    /// The Kubernetes pod's name and namespace.
    pub name: String,
    pub namespace: String,
    /// `ready` while the pod holds its namespaces, `notready` once stopped.
    pub state: String,
    /// The pod's address from CNI; empty with the host's network.
    pub ip: String,
    pub host_network: bool,
    /// RFC 3339.
    pub created: String,
    pub containers: Vec<PodContainer>,
}

/// A container of a pod: a berth container (its logs and terminal are the container's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct PodContainer {
    pub id: String,
    /// The name Kubernetes gave it in the pod (`io.kubernetes.container.name`).
    pub name: String,
    pub status: ContainerStatus,
}
