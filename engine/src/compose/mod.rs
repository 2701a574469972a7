//! Compose: a compose file becomes networks, volumes and containers, as Docker Compose v2 makes
//! them, and `up` again changes only what the file changed.
//!
//! - [`interpolate`]: `${VAR}` and friends, `.env` files.
//! - [`model`]: the file → a [`model::Project`] (services as [`ContainerConfig`]s, networks,
//!   volumes), project names, Compose's checks and error wording.
//! - [`plan`]: the project + the containers there are → what to create, recreate, start,
//!   remove (by the `com.docker.compose.config-hash` label).
//! - here: [`Engine`]'s stack methods that carry a plan out (networks, volumes, images, then
//!   containers in dependency order, waiting for `depends_on` conditions), and `down`, `ls`,
//!   `ps`, `stop`/`start`/`restart`, logs of a stack.
//!
//! A stack has no state of its own besides a small record (`<root>/stacks/<name>.json`: working
//! directory, services, their order and replicas) kept for `ls`, `inspect` and `start`'s order;
//! what exists is found by the compose labels on containers, networks and volumes, as Compose
//! finds it.

pub mod interpolate;
pub mod model;
pub mod plan;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use berth_types::build::{BuildEvent, BuildOptions};
use berth_types::container::{ContainerConfig, ContainerStatus, ContainerSummary};
use berth_types::health::HealthStatus;
use berth_types::name::{check_object_name, ObjectKind};
use berth_types::network::{NetworkConnect, NetworkCreate};
use berth_types::volume::VolumeCreate;
use berth_types::{
    LogEntry, StackDown, StackInspect, StackLogEntry, StackProgress, StackService, StackSummary, StackUp,
};
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::UnboundedSender;

use crate::container::{LogOptions, WaitCondition};
use crate::error::{Error, IoContext, Result};
use crate::{fsutil, Engine};
use model::{
    Condition, Project, PullPolicy, Service, ServiceNetwork, LABEL_CONFIG_HASH, LABEL_DEPENDS_ON,
    LABEL_NETWORK, LABEL_NUMBER, LABEL_ONEOFF, LABEL_PROJECT, LABEL_SERVICE, LABEL_VOLUME, LABEL_WORKING_DIR,
};
use plan::{Action, Existing};

/// How often `up` looks at a dependency it waits for.
const DEPENDENCY_POLL: Duration = Duration::from_millis(200);

/// Where stack progress goes. Sending never blocks; a receiver that went away is fine.
#[derive(Clone, Default)]
pub struct Progress(Option<UnboundedSender<StackProgress>>);

impl Progress {
    pub fn new(tx: UnboundedSender<StackProgress>) -> Progress {
        Progress(Some(tx))
    }

    /// Progress nobody watches.
    pub fn none() -> Progress {
        Progress(None)
    }

    fn send(&self, object: &str, name: &str, action: &str) {
        self.send_message(object, name, action, "");
    }

    fn send_message(&self, object: &str, name: &str, action: &str, message: &str) {
        if let Some(tx) = &self.0 {
            let _ = tx.send(StackProgress {
                object: object.into(),
                name: name.into(),
                action: action.into(),
                message: message.into(),
            });
        }
    }
}

/// A stack's logs: entries of its containers, each with its container and service.
pub type StackLogStream = std::pin::Pin<Box<dyn Stream<Item = Result<StackLogEntry>> + Send>>;

/// What the engine remembers of a stack between `up` and `down`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct StackRecord {
    working_dir: String,
    /// Services in dependency order, with their image and replicas.
    services: Vec<RecordedService>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct RecordedService {
    name: String,
    image: String,
    replicas: u32,
}

/// Per (engine root, stack name): the lock that `up` and `down` hold.
type StackLocks = Mutex<BTreeMap<(PathBuf, String), Arc<tokio::sync::Mutex<()>>>>;

/// One `up`/`down` at a time per stack (per engine root).
fn stack_lock(root: &std::path::Path, name: &str) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: OnceLock<StackLocks> = OnceLock::new();
    let mut locks = LOCKS.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    locks.entry((root.to_path_buf(), name.to_string())).or_default().clone()
}

fn is_live(status: ContainerStatus) -> bool {
    matches!(status, ContainerStatus::Running | ContainerStatus::Paused | ContainerStatus::Restarting)
}

fn check_name(name: &str) -> Result<()> {
    check_object_name(ObjectKind::Project, name).map(drop).map_err(|e| Error::InvalidInput(e.to_string()))
}

fn not_found(name: &str) -> Error {
    Error::StackNotFound(name.to_string())
}

impl Engine {
    fn stack_record_path(&self, name: &str) -> PathBuf {
        self.root().join("stacks").join(format!("{name}.json"))
    }

    fn read_stack_record(&self, name: &str) -> Option<StackRecord> {
        let text = std::fs::read(self.stack_record_path(name)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// The containers of stack `name` (`all`: stopped ones too), oldest service first.
    pub async fn stack_containers(&self, name: &str, all: bool) -> Result<Vec<ContainerSummary>> {
        let mut containers: Vec<ContainerSummary> = self
            .list_containers(all)
            .await?
            .into_iter()
            .filter(|c| c.labels.get(LABEL_PROJECT).map(String::as_str) == Some(name))
            .collect();
        let key = |c: &ContainerSummary| {
            (
                c.labels.get(LABEL_SERVICE).cloned().unwrap_or_default(),
                c.labels.get(LABEL_NUMBER).and_then(|n| n.parse::<u32>().ok()).unwrap_or(0),
            )
        };
        containers.sort_by_key(key);
        Ok(containers)
    }

    /// `berth compose up`: creates what the file asks for and is missing, recreates what
    /// changed, starts what is stopped, in dependency order. Reports each step to `progress`.
    pub async fn stack_up(&self, name: &str, request: StackUp, progress: Progress) -> Result<()> {
        check_name(name)?;
        let project = {
            let request = request.clone();
            let name = name.to_string();
            tokio::task::spawn_blocking(move || model::load(&request, Some(&name)))
                .await
                .expect("compose load task panicked")?
        };
        let selected = project.selected(&request.services)?;
        let lock = stack_lock(self.root(), name);
        let _guard = lock.lock().await;

        self.ensure_networks(&project, &selected, &progress).await?;
        self.ensure_volumes(&project, &selected, &progress).await?;
        let image_ids = self.ensure_images(&project, &selected, request.build, &progress).await?;

        let existing = Existing::of_project(name, &self.list_containers(true).await?);
        let plan = plan::plan(&project, &selected, &existing, &image_ids, &request)?;
        if !plan.orphans.is_empty() {
            if request.remove_orphans {
                for orphan in &plan.orphans {
                    self.stop_and_remove(&orphan.name, None, &progress).await?;
                }
            } else {
                let names: Vec<&str> = plan.orphans.iter().map(|o| o.name.as_str()).collect();
                progress.send_message(
                    "project",
                    name,
                    "Warning",
                    &format!(
                        "Found orphan containers ([{}]) for this project. If you removed or renamed this service \
                         in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
                        names.join(" ")
                    ),
                );
            }
        }
        self.write_stack_record(&project)?;

        for service_plan in &plan.services {
            let service = &project.services[&service_plan.service];
            self.wait_for_dependencies(&project, service, &progress).await?;
            // Scaled away first, so that new numbers and names are free.
            for action in &service_plan.actions {
                if let Action::Remove { existing } = action {
                    self.stop_and_remove(&existing.name, service.config.stop_timeout, &progress).await?;
                }
            }
            let mut to_start = Vec::new();
            for action in &service_plan.actions {
                match action {
                    Action::Create { number } => {
                        let cname = container_name(&project, service, *number);
                        progress.send("container", &cname, "Creating");
                        let id = self
                            .create_service_container(&project, service, *number, &service_plan.config_hash)
                            .await;
                        let id = id.inspect_err(|e| {
                            progress.send_message("container", &cname, "Error", &e.to_string())
                        })?;
                        progress.send("container", &cname, "Created");
                        to_start.push((id, cname));
                    }
                    Action::Recreate { old } => {
                        progress.send("container", &old.name, "Recreate");
                        self.stop_container(&old.id, service.config.stop_timeout).await?;
                        self.remove_container(&old.id, true).await?;
                        let id = self
                            .create_service_container(
                                &project,
                                service,
                                old.number,
                                &service_plan.config_hash,
                            )
                            .await;
                        let id = id.inspect_err(|e| {
                            progress.send_message("container", &old.name, "Error", &e.to_string())
                        })?;
                        progress.send("container", &old.name, "Recreated");
                        to_start.push((id, old.name.clone()));
                    }
                    Action::Start { existing } => to_start.push((existing.id.clone(), existing.name.clone())),
                    Action::Keep { existing } => progress.send("container", &existing.name, "Running"),
                    Action::Remove { .. } => {}
                }
            }
            for (id, cname) in to_start {
                progress.send("container", &cname, "Starting");
                self.start_container(&id)
                    .await
                    .inspect_err(|e| progress.send_message("container", &cname, "Error", &e.to_string()))?;
                progress.send("container", &cname, "Started");
            }
        }
        Ok(())
    }

    fn write_stack_record(&self, project: &Project) -> Result<()> {
        let order = project.dependency_order()?;
        let record = StackRecord {
            working_dir: project.working_dir.display().to_string(),
            services: order
                .iter()
                .map(|s| {
                    let service = &project.services[s];
                    RecordedService {
                        name: s.clone(),
                        image: service.image.clone(),
                        replicas: service.replicas,
                    }
                })
                .collect(),
        };
        let dir = self.root().join("stacks");
        fsutil::create_private_dir(&dir)?;
        fsutil::write_atomic(
            &self.stack_record_path(&project.name),
            &serde_json::to_vec_pretty(&record).expect("stack records serialise"),
        )
    }

    async fn ensure_networks(
        &self,
        project: &Project,
        selected: &BTreeSet<String>,
        progress: &Progress,
    ) -> Result<()> {
        let used = project.networks_used(selected);
        if used.is_empty() {
            return Ok(());
        }
        let existing = self.list_networks().await?;
        for key in used {
            let spec = &project.networks[&key];
            let found = existing.iter().find(|n| n.name == spec.name);
            if spec.external {
                if found.is_none() {
                    return Err(Error::InvalidInput(format!(
                        "network {} declared as external, but could not be found",
                        spec.name
                    )));
                }
                continue;
            }
            if let Some(found) = found {
                if found.labels.get(LABEL_PROJECT).is_some_and(|p| *p != project.name) {
                    progress.send_message(
                        "network",
                        &spec.name,
                        "Warning",
                        &format!(
                            "a network with name {} exists but was not created for project {:?}",
                            spec.name, project.name
                        ),
                    );
                }
                continue;
            }
            let mut labels = spec.labels.clone();
            labels.insert(LABEL_PROJECT.into(), project.name.clone());
            labels.insert(LABEL_NETWORK.into(), key.clone());
            progress.send("network", &spec.name, "Creating");
            self.create_network(NetworkCreate {
                name: spec.name.clone(),
                driver: spec.driver.clone(),
                subnet: spec.subnet.clone(),
                gateway: spec.gateway.clone(),
                internal: spec.internal,
                labels,
            })
            .await
            .inspect_err(|e| progress.send_message("network", &spec.name, "Error", &e.to_string()))?;
            progress.send("network", &spec.name, "Created");
        }
        Ok(())
    }

    async fn ensure_volumes(
        &self,
        project: &Project,
        selected: &BTreeSet<String>,
        progress: &Progress,
    ) -> Result<()> {
        let used = project.volumes_used(selected);
        if used.is_empty() {
            return Ok(());
        }
        let existing = self.list_volumes().await?;
        for key in used {
            let spec = &project.volumes[&key];
            let found = existing.iter().any(|v| v.name == spec.name);
            if spec.external {
                if !found {
                    return Err(Error::InvalidInput(format!("external volume {:?} not found", spec.name)));
                }
                continue;
            }
            if found {
                continue;
            }
            let mut labels = spec.labels.clone();
            labels.insert(LABEL_PROJECT.into(), project.name.clone());
            labels.insert(LABEL_VOLUME.into(), key.clone());
            progress.send("volume", &spec.name, "Creating");
            self.create_volume(VolumeCreate { name: spec.name.clone(), driver: spec.driver.clone(), labels })
                .await
                .inspect_err(|e| progress.send_message("volume", &spec.name, "Error", &e.to_string()))?;
            progress.send("volume", &spec.name, "Created");
        }
        Ok(())
    }

    /// Builds or pulls what is missing (or asked for); the image IDs of the services.
    async fn ensure_images(
        &self,
        project: &Project,
        selected: &BTreeSet<String>,
        build: bool,
        progress: &Progress,
    ) -> Result<BTreeMap<String, String>> {
        let mut ids = BTreeMap::new();
        for service in project.services.values().filter(|s| selected.contains(&s.name)) {
            let present = self.inspect_image(&service.image).await.ok();
            let must_build = service.build.is_some()
                && (build || service.pull_policy == PullPolicy::Build || present.is_none());
            if must_build {
                self.build_service(project, service, progress).await?;
            } else if service.pull_policy == PullPolicy::Always
                || (present.is_none() && service.pull_policy != PullPolicy::Never)
            {
                progress.send("image", &service.image, "Pulling");
                self.pull_image(&service.image, None, crate::registry::Progress::none()).await.inspect_err(
                    |e| progress.send_message("image", &service.image, "Error", &e.to_string()),
                )?;
                progress.send("image", &service.image, "Pulled");
            } else if present.is_none() {
                return Err(Error::ImageNotFound(service.image.clone()));
            }
            let image = self.inspect_image(&service.image).await?;
            ids.insert(service.name.clone(), image.id);
        }
        Ok(ids)
    }

    /// `build:` through the engine's builder: the context directory tarred to a spool file.
    async fn build_service(&self, project: &Project, service: &Service, progress: &Progress) -> Result<()> {
        let spec = service.build.as_ref().expect("called for services with a build");
        if spec.dockerfile_inline.is_some() {
            return Err(Error::Unsupported(format!("services.{}.build.dockerfile_inline", service.name)));
        }
        progress.send("image", &service.image, "Building");
        let spool = self.inner().config.run_dir.join(format!("compose-build-{}.tar", rand::random::<u64>()));
        let context = spec.context.clone();
        let spool2 = spool.clone();
        let packed = tokio::task::spawn_blocking(move || -> Result<()> {
            let file = std::fs::File::create(&spool2).context(|| format!("creating {}", spool2.display()))?;
            crate::archive::pack_dir(&context, std::io::BufWriter::new(file))?;
            Ok(())
        })
        .await
        .expect("context packing task panicked");
        let result = match packed {
            Ok(()) => {
                let body =
                    tokio::fs::File::open(&spool).await.context(|| format!("opening {}", spool.display()));
                match body {
                    Ok(body) => {
                        let options = BuildOptions {
                            tags: vec![service.image.clone()],
                            dockerfile: spec.dockerfile.clone(),
                            build_args: spec.args.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                            labels: spec.labels.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                            target: spec.target.clone(),
                            ..Default::default()
                        };
                        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<BuildEvent>();
                        let progress2 = progress.clone();
                        let image = service.image.clone();
                        // RUN output is not shown in `up`; errors are.
                        let drain = tokio::spawn(async move {
                            while let Some(event) = rx.recv().await {
                                if let BuildEvent::Warning { message } = event {
                                    progress2.send_message("image", &image, "Warning", &message);
                                }
                            }
                        });
                        let result = self.build_image(body, options, tx).await;
                        let _ = drain.await;
                        result.map(|_| ())
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        let _ = std::fs::remove_file(&spool);
        let _ = project;
        result.inspect_err(|e| progress.send_message("image", &service.image, "Error", &e.to_string()))?;
        progress.send("image", &service.image, "Built");
        Ok(())
    }

    async fn create_service_container(
        &self,
        project: &Project,
        service: &Service,
        number: u32,
        config_hash: &str,
    ) -> Result<String> {
        let mut config: ContainerConfig = service.config.clone();
        let name = container_name(project, service, number);
        config.name = Some(name.clone());
        config.labels.insert(LABEL_PROJECT.into(), project.name.clone());
        config.labels.insert(LABEL_SERVICE.into(), service.name.clone());
        config.labels.insert(LABEL_NUMBER.into(), number.to_string());
        config.labels.insert(LABEL_CONFIG_HASH.into(), config_hash.into());
        config.labels.insert(LABEL_ONEOFF.into(), "False".into());
        config.labels.insert(LABEL_WORKING_DIR.into(), project.working_dir.display().to_string());
        let depends: Vec<String> = service
            .depends_on
            .iter()
            .map(|d| {
                let condition = match d.condition {
                    Condition::Started => "service_started",
                    Condition::Healthy => "service_healthy",
                    Condition::CompletedSuccessfully => "service_completed_successfully",
                };
                format!("{}:{condition}:false", d.service)
            })
            .collect();
        config.labels.insert(LABEL_DEPENDS_ON.into(), depends.join(","));
        let mut more_networks = Vec::new();
        match &service.network {
            ServiceNetwork::Mode(mode) => {
                config.network = Some(match mode.strip_prefix("service:") {
                    Some(other) => {
                        let first = self
                            .stack_containers(&project.name, false)
                            .await?
                            .into_iter()
                            .find(|c| c.labels.get(LABEL_SERVICE).map(String::as_str) == Some(other))
                            .ok_or_else(|| {
                                Error::Conflict(format!(
                                    "service {other:?} has no running container to share a network with"
                                ))
                            })?;
                        format!("container:{}", first.id)
                    }
                    None => mode.clone(),
                });
            }
            ServiceNetwork::Networks(list) => {
                for (i, attachment) in list.iter().enumerate() {
                    let network = project.networks[&attachment.network].name.clone();
                    // Other containers find this one by its service name, as in Compose.
                    let mut aliases = vec![service.name.clone()];
                    aliases.extend(attachment.aliases.iter().cloned());
                    if i == 0 {
                        config.network = Some(network);
                        config.network_aliases = aliases;
                        config.ipv4_address = attachment.ipv4_address.clone();
                    } else {
                        more_networks.push((network, aliases, attachment.ipv4_address.clone()));
                    }
                }
            }
        }
        let created = self.create_container(config).await?;
        for (network, aliases, ipv4_address) in more_networks {
            let connect = NetworkConnect { container: created.id.clone(), aliases, ipv4_address };
            if let Err(e) = self.connect_network(&network, connect).await {
                let _ = self.remove_container(&created.id, true).await;
                return Err(e);
            }
        }
        Ok(created.id)
    }

    /// Waits until every dependency of `service` meets its `depends_on` condition.
    async fn wait_for_dependencies(
        &self,
        project: &Project,
        service: &Service,
        progress: &Progress,
    ) -> Result<()> {
        for dep in &service.depends_on {
            if dep.condition == Condition::Started {
                continue;
            }
            let containers: Vec<ContainerSummary> = self
                .stack_containers(&project.name, true)
                .await?
                .into_iter()
                .filter(|c| c.labels.get(LABEL_SERVICE) == Some(&dep.service))
                .collect();
            for c in containers {
                progress.send("container", &c.name, "Waiting");
                let outcome = match dep.condition {
                    Condition::Healthy => self.wait_healthy(&c.id, &c.name).await,
                    Condition::CompletedSuccessfully => {
                        let result = self.wait_container(&c.id, WaitCondition::NotRunning).await?;
                        if result.status_code == 0 {
                            Ok("Exited")
                        } else {
                            Err(Error::InvalidInput(format!(
                                "service {:?} didn't complete successfully: exit {}",
                                dep.service, result.status_code
                            )))
                        }
                    }
                    Condition::Started => Ok("Started"),
                };
                match outcome {
                    Ok(word) => progress.send("container", &c.name, word),
                    Err(e) if !dep.required => {
                        progress.send_message("container", &c.name, "Warning", &e.to_string());
                    }
                    Err(e) => {
                        progress.send_message("container", &c.name, "Error", &e.to_string());
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }

    async fn wait_healthy(&self, id: &str, name: &str) -> Result<&'static str> {
        loop {
            let inspect = self.inspect_container(id).await?;
            let has_check =
                inspect.config.healthcheck.as_ref().is_some_and(|h| {
                    !h.test.is_empty() && h.test.first().map(String::as_str) != Some("NONE")
                });
            match &inspect.state.health {
                Some(h) if h.status == HealthStatus::Healthy => return Ok("Healthy"),
                Some(h) if h.status == HealthStatus::Unhealthy => {
                    return Err(Error::InvalidInput(format!(
                        "dependency failed to start: container {name} is unhealthy"
                    )))
                }
                None if !has_check && is_live(inspect.state.status) => {
                    // The image's HEALTHCHECK may still show up in the state once probed; a
                    // container with neither has nothing to wait for.
                    let image_check = self
                        .inspect_image(&inspect.image_id)
                        .await
                        .ok()
                        .and_then(|i| serde_json::to_value(i).ok())
                        .is_some_and(|v| v.pointer("/config/Healthcheck").is_some_and(|h| !h.is_null()));
                    if !image_check {
                        return Err(Error::InvalidInput(format!(
                            "dependency failed to start: container {name} has no healthcheck configured"
                        )));
                    }
                }
                _ => {}
            }
            if !is_live(inspect.state.status) {
                return Err(Error::InvalidInput(format!(
                    "dependency failed to start: container {name} exited ({})",
                    inspect.state.exit_code
                )));
            }
            tokio::time::sleep(DEPENDENCY_POLL).await;
        }
    }

    async fn stop_and_remove(&self, name: &str, timeout: Option<u32>, progress: &Progress) -> Result<()> {
        progress.send("container", name, "Stopping");
        self.stop_container(name, timeout).await?;
        progress.send("container", name, "Stopped");
        progress.send("container", name, "Removing");
        self.remove_container(name, true).await?;
        progress.send("container", name, "Removed");
        Ok(())
    }

    /// `berth compose down`: stops and removes the stack's containers, then its networks, and
    /// with `volumes` its named volumes and the containers' anonymous volumes.
    pub async fn stack_down(&self, name: &str, request: StackDown, progress: Progress) -> Result<()> {
        check_name(name)?;
        let lock = stack_lock(self.root(), name);
        let _guard = lock.lock().await;
        let containers = self.stack_containers(name, true).await?;
        let ids: BTreeSet<String> = containers.iter().map(|c| c.id.clone()).collect();
        let anonymous: Vec<String> = if request.volumes {
            self.list_volumes()
                .await?
                .into_iter()
                .filter(|v| v.anonymous && !v.used_by.is_empty() && v.used_by.iter().all(|u| ids.contains(u)))
                .map(|v| v.name)
                .collect()
        } else {
            Vec::new()
        };
        // Stopped together (each waits up to its timeout), removed after.
        let stops = containers.iter().map(|c| {
            let progress = progress.clone();
            async move {
                if is_live(c.state.status) {
                    progress.send("container", &c.name, "Stopping");
                    self.stop_container(&c.id, request.timeout).await?;
                    progress.send("container", &c.name, "Stopped");
                }
                progress.send("container", &c.name, "Removing");
                self.remove_container(&c.id, true).await?;
                progress.send("container", &c.name, "Removed");
                Ok::<(), Error>(())
            }
        });
        for result in futures_util::future::join_all(stops).await {
            result?;
        }
        for network in self.list_networks().await? {
            if network.labels.get(LABEL_PROJECT).map(String::as_str) != Some(name) {
                continue;
            }
            progress.send("network", &network.name, "Removing");
            self.remove_network(&network.id)
                .await
                .inspect_err(|e| progress.send_message("network", &network.name, "Error", &e.to_string()))?;
            progress.send("network", &network.name, "Removed");
        }
        if request.volumes {
            let mut volumes: Vec<String> = self
                .list_volumes()
                .await?
                .into_iter()
                .filter(|v| v.labels.get(LABEL_PROJECT).map(String::as_str) == Some(name))
                .map(|v| v.name)
                .collect();
            volumes.extend(anonymous);
            for volume in volumes {
                progress.send("volume", &volume, "Removing");
                self.remove_volume(&volume, false)
                    .await
                    .inspect_err(|e| progress.send_message("volume", &volume, "Error", &e.to_string()))?;
                progress.send("volume", &volume, "Removed");
            }
        }
        match std::fs::remove_file(self.stack_record_path(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("removing the record of stack {name}"), e)),
        }
        Ok(())
    }

    /// The stack's containers of `services` (all when empty), in the order `start` takes them:
    /// dependencies first (as recorded at `up`), then by service and number.
    async fn stack_targets(&self, name: &str, services: &[String]) -> Result<Vec<ContainerSummary>> {
        check_name(name)?;
        let containers = self.stack_containers(name, true).await?;
        if containers.is_empty() {
            return Err(not_found(name));
        }
        let order: Vec<String> = self
            .read_stack_record(name)
            .map(|r| r.services.into_iter().map(|s| s.name).collect())
            .unwrap_or_default();
        let known: BTreeSet<&str> =
            containers.iter().filter_map(|c| c.labels.get(LABEL_SERVICE)).map(String::as_str).collect();
        for s in services {
            if !known.contains(s.as_str()) && !order.contains(s) {
                return Err(Error::InvalidInput(format!("no such service: {s}")));
            }
        }
        let rank = |c: &ContainerSummary| {
            let service = c.labels.get(LABEL_SERVICE).cloned().unwrap_or_default();
            (order.iter().position(|s| *s == service).unwrap_or(usize::MAX), service)
        };
        let mut targets: Vec<ContainerSummary> = containers
            .into_iter()
            .filter(|c| {
                services.is_empty() || c.labels.get(LABEL_SERVICE).is_some_and(|s| services.contains(s))
            })
            .collect();
        targets.sort_by_key(|c| rank(c));
        Ok(targets)
    }

    /// `berth compose stop`: dependents first.
    pub async fn stack_stop(
        &self,
        name: &str,
        services: &[String],
        timeout: Option<u32>,
        progress: Progress,
    ) -> Result<()> {
        let mut targets = self.stack_targets(name, services).await?;
        targets.reverse();
        for c in targets.iter().filter(|c| is_live(c.state.status)) {
            progress.send("container", &c.name, "Stopping");
            self.stop_container(&c.id, timeout).await?;
            progress.send("container", &c.name, "Stopped");
        }
        Ok(())
    }

    /// `berth compose start`: dependencies first.
    pub async fn stack_start(&self, name: &str, services: &[String], progress: Progress) -> Result<()> {
        for c in self.stack_targets(name, services).await? {
            if is_live(c.state.status) {
                continue;
            }
            progress.send("container", &c.name, "Starting");
            self.start_container(&c.id)
                .await
                .inspect_err(|e| progress.send_message("container", &c.name, "Error", &e.to_string()))?;
            progress.send("container", &c.name, "Started");
        }
        Ok(())
    }

    /// `berth compose restart`.
    pub async fn stack_restart(
        &self,
        name: &str,
        services: &[String],
        timeout: Option<u32>,
        progress: Progress,
    ) -> Result<()> {
        for c in self.stack_targets(name, services).await? {
            progress.send("container", &c.name, "Restarting");
            self.restart_container(&c.id, timeout)
                .await
                .inspect_err(|e| progress.send_message("container", &c.name, "Error", &e.to_string()))?;
            progress.send("container", &c.name, "Started");
        }
        Ok(())
    }

    /// `berth compose ls`: every project that has containers.
    pub async fn list_stacks(&self) -> Result<Vec<StackSummary>> {
        let mut stacks: BTreeMap<String, Vec<ContainerSummary>> = BTreeMap::new();
        for c in self.list_containers(true).await? {
            if let Some(project) = c.labels.get(LABEL_PROJECT) {
                stacks.entry(project.clone()).or_default().push(c);
            }
        }
        Ok(stacks
            .into_iter()
            .map(|(name, containers)| {
                let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
                for c in &containers {
                    *counts.entry(c.state.status.as_str()).or_default() += 1;
                }
                let status = counts.iter().map(|(s, n)| format!("{s}({n})")).collect::<Vec<_>>().join(", ");
                let services: BTreeSet<&String> =
                    containers.iter().filter_map(|c| c.labels.get(LABEL_SERVICE)).collect();
                let working_dir = containers
                    .iter()
                    .find_map(|c| c.labels.get(LABEL_WORKING_DIR).cloned())
                    .or_else(|| self.read_stack_record(&name).map(|r| r.working_dir))
                    .unwrap_or_default();
                StackSummary {
                    status,
                    working_dir,
                    services: services.len(),
                    containers: containers.len(),
                    name,
                }
            })
            .collect())
    }

    /// `GET /api/v1/stacks/{name}`.
    pub async fn inspect_stack(&self, name: &str) -> Result<StackInspect> {
        check_name(name)?;
        let containers = self.stack_containers(name, true).await?;
        let record = self.read_stack_record(name);
        if containers.is_empty() && record.is_none() {
            return Err(not_found(name));
        }
        let record = record.unwrap_or_default();
        let mut services: Vec<StackService> = record
            .services
            .iter()
            .map(|s| StackService {
                name: s.name.clone(),
                image: s.image.clone(),
                replicas: s.replicas,
                containers: Vec::new(),
            })
            .collect();
        for c in &containers {
            let service = c.labels.get(LABEL_SERVICE).cloned().unwrap_or_default();
            match services.iter_mut().find(|s| s.name == service) {
                Some(s) => s.containers.push(c.clone()),
                None => services.push(StackService {
                    name: service,
                    image: c.image.clone(),
                    replicas: 0,
                    containers: vec![c.clone()],
                }),
            }
        }
        let networks = self
            .list_networks()
            .await?
            .into_iter()
            .filter(|n| n.labels.get(LABEL_PROJECT).map(String::as_str) == Some(name))
            .map(|n| n.name)
            .collect();
        let volumes = self
            .list_volumes()
            .await?
            .into_iter()
            .filter(|v| v.labels.get(LABEL_PROJECT).map(String::as_str) == Some(name))
            .map(|v| v.name)
            .collect();
        let working_dir = containers
            .iter()
            .find_map(|c| c.labels.get(LABEL_WORKING_DIR).cloned())
            .unwrap_or(record.working_dir);
        Ok(StackInspect { name: name.to_string(), working_dir, services, networks, volumes })
    }

    /// The logs of the stack's containers (of `services`, all when empty), merged as they come;
    /// each entry with its container's name. With `options.follow` it ends when all stopped.
    pub async fn stack_logs(
        &self,
        name: &str,
        services: &[String],
        options: LogOptions,
    ) -> Result<StackLogStream> {
        let targets = self.stack_targets(name, services).await?;
        let mut streams = Vec::new();
        for c in targets {
            let container = c.name.clone();
            let service = c.labels.get(LABEL_SERVICE).cloned().unwrap_or_default();
            match self.container_logs(&c.id, options.clone()).await {
                Ok(stream) => streams.push(
                    stream
                        .map(move |e| {
                            e.map(|e: LogEntry| StackLogEntry {
                                container: container.clone(),
                                service: service.clone(),
                                stream: e.stream,
                                time: e.time,
                                line: e.line,
                            })
                        })
                        .boxed(),
                ),
                // Removed since the listing.
                Err(Error::ContainerNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(futures_util::stream::select_all(streams).boxed())
    }
}

/// `<project>-<service>-<n>`, or the service's `container_name`.
pub fn container_name(project: &Project, service: &Service, number: u32) -> String {
    match &service.container_name {
        Some(name) => name.clone(),
        None => format!("{}-{}-{number}", project.name, service.name),
    }
}
