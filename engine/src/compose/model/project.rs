//! A compose project as the engine plans it: its services, networks and volumes, the config
//! hash of a service, and the order services start in.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use berth_types::container::ContainerConfig;
use berth_types::volume::MountType;
use docker_compose_types as spec;
use indexmap::IndexMap;
use serde::Serialize;
use serde_yaml::Value;
use sha2::{Digest as _, Sha256};

use super::{labels_map, Service, ServiceNetwork};
use crate::error::{Error, Result};

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

pub(super) fn network_spec(
    project: &str,
    key: &str,
    settings: Option<spec::NetworkSettings>,
) -> Result<NetworkSpec> {
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

pub(super) fn volume_spec(project: &str, key: &str, settings: Option<spec::ComposeVolume>) -> VolumeSpec {
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
