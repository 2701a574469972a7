//! Networks and published ports on the wire: `berth network ...`, `-p`/`-P`, and the network part
//! of a container's `inspect`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `POST /api/v1/networks` (`berth network create`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct NetworkCreate {
    pub name: String,
    /// Only `bridge` is supported; empty means `bridge`.
    pub driver: String,
    /// `--subnet`, e.g. `172.20.0.0/16`; picked from a free range when empty.
    pub subnet: Option<String>,
    /// `--gateway`; the first address of the subnet when empty.
    pub gateway: Option<String>,
    /// `--internal`: no traffic leaves the bridge (no NAT, no forwarding out).
    pub internal: bool,
    /// `-l`.
    pub labels: BTreeMap<String, String>,
}

/// Result of `POST /api/v1/networks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NetworkCreated {
    pub id: String,
    pub warnings: Vec<String>,
}

/// One row of `berth network ls`, and `berth network inspect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NetworkInspect {
    /// 64 hex digits.
    pub id: String,
    pub name: String,
    /// `bridge`, `host` or `null`, as Docker's DRIVER column.
    pub driver: String,
    /// `local`.
    pub scope: String,
    pub created: String,
    /// The Linux bridge device, e.g. `berth0` or `br-<id12>`; empty for `host` and `none`.
    pub bridge: String,
    pub subnet: String,
    pub gateway: String,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    /// Containers attached now, by container ID.
    pub containers: BTreeMap<String, NetworkEndpoint>,
}

/// A container's place on one network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NetworkEndpoint {
    /// Container name (in `network inspect`) or network name (in a container's `inspect`).
    pub name: String,
    /// e.g. `172.18.0.2/16`.
    pub ipv4_address: String,
    pub mac_address: String,
    pub gateway: String,
    /// DNS names other containers on the network reach it by, besides its name.
    pub aliases: Vec<String>,
}

/// `POST /api/v1/networks/{id}/connect` (`berth network connect`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConnect {
    pub container: String,
    /// `--alias`.
    pub aliases: Vec<String>,
    /// `--ip`.
    pub ipv4_address: Option<String>,
}

/// `POST /api/v1/networks/{id}/disconnect`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct NetworkDisconnect {
    pub container: String,
    /// `-f`.
    pub force: bool,
}

/// `POST /api/v1/networks/prune`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NetworkPruneReport {
    pub networks_deleted: Vec<String>,
}

/// One `-p [ip:][host_port:]container_port[/proto]`; a range on the CLI becomes one binding per port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct PortBinding {
    /// Host address to listen on; empty means all addresses (`0.0.0.0`), as Docker does.
    pub host_ip: String,
    /// 0 picks a free port (as `-p 80` and `-P` do).
    pub host_port: u16,
    pub container_port: u16,
    /// `tcp` or `udp`; empty means `tcp`.
    pub protocol: String,
}

/// One published port of a running container, as `ps` and `port` show it
/// (`0.0.0.0:8080->80/tcp`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublishedPort {
    pub host_ip: String,
    /// The port actually bound (chosen by the kernel when 0 was asked).
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: String,
}

/// The network part of a container's `inspect` (Docker's NetworkSettings).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NetworkSettings {
    /// `bridge`, `none`, `host`, `container:<id>` or the user network's name.
    pub network_mode: String,
    /// Published ports while the container runs.
    pub ports: Vec<PublishedPort>,
    /// Attached networks by network name.
    pub networks: BTreeMap<String, NetworkEndpoint>,
}
