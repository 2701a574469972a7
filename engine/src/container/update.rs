//! `docker update`: a container's memory, CPU and pids limits and its restart policy, changed
//! in its record and bundle (for the next start) and, while it runs, in its cgroup and monitor.

use berth_types::container::{ContainerConfig, ContainerStatus, RestartPolicy};
use berth_types::files::ContainerUpdate;
use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder,
};

use super::client;
use crate::error::{Error, Result};
use crate::monitor::protocol::Request;
use crate::runtime::cgroup::{self, Cgroup};
use crate::Engine;

/// The CPU period `--cpus` is applied with (Docker's, and the spec's at create).
const CPU_PERIOD: u64 = 100_000;

impl Engine {
    /// `docker update`: returns warnings (none so far).
    pub async fn update_container(&self, name: &str, update: ContainerUpdate) -> Result<Vec<String>> {
        let record = self.inner.containers.resolve(name)?;
        let lock = self.inner.containers.op_lock(&record.id);
        let _guard = lock.lock().await;
        let record = self.inner.containers.resolve(&record.id)?;
        let mut config = record.config.clone();
        apply(&mut config, &update)?;
        let limits = limits(&update)?;
        let state = self.inner.containers.read_state(&record.id);
        if state.status == ContainerStatus::Removing {
            return Err(Error::Conflict(format!("container {} is marked for removal", record.id)));
        }
        let running = matches!(state.status, ContainerStatus::Running | ContainerStatus::Paused);
        let id = record.id.clone();
        let new_config = config.clone();
        self.blocking(move |inner| {
            let dir = inner.containers.paths(&id).dir;
            let mut spec = crate::runtime::read_bundle(&dir)?;
            let cgroups_path = spec
                .linux()
                .as_ref()
                .and_then(|l| l.cgroups_path().clone())
                .unwrap_or_else(|| cgroup::default_path(&id));
            if let Some(limits) = &limits {
                if running {
                    // The running container first: what the kernel refuses (a limit below the
                    // memory in use) is refused before anything is recorded.
                    Cgroup::new(&cgroups_path)?.update(limits)?;
                }
                if let Some(linux) = spec.linux_mut() {
                    let mut resources = linux.resources().clone().unwrap_or_default();
                    if limits.memory().is_some() {
                        resources.set_memory(*limits.memory());
                    }
                    if limits.cpu().is_some() {
                        resources.set_cpu(limits.cpu().clone());
                    }
                    if limits.pids().is_some() {
                        let pids = (*limits.pids()).filter(|p| p.limit() > 0);
                        resources.set_pids(pids);
                    }
                    linux.set_resources(Some(resources));
                }
                crate::runtime::write_bundle(&dir, &spec)?;
            }
            inner.containers.update(&id, |r| r.config = new_config)?;
            Ok(())
        })
        .await?;
        if let Some(policy) = update.restart_policy {
            if state.is_live() {
                let socket = self.paths(&record.id).socket;
                if let Err(e) =
                    client::request(&socket, &Request::SetRestartPolicy { restart_policy: policy }).await
                {
                    // Recorded already: it applies from the next start.
                    tracing::warn!(container = %record.id, error = %e, "the monitor did not take the new restart policy");
                }
            }
        }
        Ok(Vec::new())
    }
}

/// The update applied to the container's config, checked as `create` checks it.
fn apply(config: &mut ContainerConfig, update: &ContainerUpdate) -> Result<()> {
    if let Some(memory) = update.memory {
        config.resources.memory = Some(memory);
    }
    if let Some(cpus) = update.cpus {
        config.resources.cpus = Some(cpus);
    }
    if let Some(pids) = update.pids_limit {
        config.resources.pids_limit = (pids > 0).then_some(pids);
    }
    if let Some(policy) = &update.restart_policy {
        if config.auto_remove && *policy != RestartPolicy::No {
            return Err(Error::InvalidInput(
                "Restart policy cannot be updated because AutoRemove is enabled for the container".into(),
            ));
        }
        config.restart_policy = policy.clone();
    }
    crate::runtime::spec::validate_resources(config)
}

/// The cgroup limits the update changes; `None` when it changes none.
fn limits(update: &ContainerUpdate) -> Result<Option<LinuxResources>> {
    let bad = |e: oci_spec::OciSpecError| Error::InvalidInput(format!("runtime spec: {e}"));
    if update.memory.is_none() && update.cpus.is_none() && update.pids_limit.is_none() {
        return Ok(None);
    }
    let mut resources = LinuxResourcesBuilder::default();
    if let Some(memory) = update.memory {
        let memory =
            i64::try_from(memory).map_err(|_| Error::InvalidInput("memory limit too large".into()))?;
        resources = resources.memory(LinuxMemoryBuilder::default().limit(memory).build().map_err(bad)?);
    }
    if let Some(cpus) = update.cpus {
        let quota = (cpus * CPU_PERIOD as f64).round() as i64;
        resources =
            resources.cpu(LinuxCpuBuilder::default().period(CPU_PERIOD).quota(quota).build().map_err(bad)?);
    }
    if let Some(pids) = update.pids_limit {
        resources = resources.pids(LinuxPidsBuilder::default().limit(pids.max(0)).build().map_err(bad)?);
    }
    resources.build().map(Some).map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_are_checked_like_creates() {
        let mut config = ContainerConfig::default();
        let update = ContainerUpdate { memory: Some(1 << 20), ..Default::default() };
        assert!(apply(&mut config, &update).unwrap_err().to_string().contains("Minimum memory limit"));
        let update = ContainerUpdate {
            memory: Some(64 << 20),
            pids_limit: Some(-1),
            restart_policy: Some(RestartPolicy::Always),
            ..Default::default()
        };
        apply(&mut config, &update).unwrap();
        assert_eq!(config.resources.memory, Some(64 << 20));
        assert_eq!(config.resources.pids_limit, None);
        assert_eq!(config.restart_policy, RestartPolicy::Always);
        let made = limits(&update).unwrap().unwrap();
        assert_eq!(made.memory().as_ref().unwrap().limit(), Some(64 << 20));
        assert!(limits(&ContainerUpdate::default()).unwrap().is_none());

        let mut removed = ContainerConfig { auto_remove: true, ..Default::default() };
        let update = ContainerUpdate { restart_policy: Some(RestartPolicy::Always), ..Default::default() };
        assert!(apply(&mut removed, &update).unwrap_err().to_string().contains("AutoRemove"));
    }
}
