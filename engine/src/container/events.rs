//! Engine events: what happened to which container (and to an image outside any request), for
//! the daemon's event log and watchers.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

/// One event, as Docker's `events` shows them: a type, an action, an actor and attributes.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineEvent {
    Container(ContainerEvent),
    Image(ImageEvent),
}

/// Something that happened to an image in the background, where no request's answer can tell:
/// the unpack of an image pushed to berth's registry. (Requests on images are recorded by the
/// operations that answer them.)
#[derive(Debug, Clone, PartialEq)]
pub struct ImageEvent {
    /// The local name the image has, or would have had (`docker.io/dev/app:1`).
    pub reference: String,
    /// Its manifest digest.
    pub digest: String,
    pub action: ImageAction,
    pub time: DateTime<Utc>,
}

/// Image event actions berth adds to Docker's (which has no background image work).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageAction {
    /// A pushed manifest was accepted (201) but its layers could not be unpacked: the registry
    /// still serves the tag, and no local image has it.
    UnpackFailed { error: String },
}

impl ImageAction {
    /// The event's action name: `unpack_failed` (Docker's style, as `health_status`).
    pub fn name(&self) -> &'static str {
        match self {
            ImageAction::UnpackFailed { .. } => "unpack_failed",
        }
    }
}

/// Something that happened to a container.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerEvent {
    /// Full container ID.
    pub id: String,
    /// Name at the time of the event (the new name for a rename).
    pub name: String,
    /// The image as the user named it.
    pub image: String,
    pub action: ContainerAction,
    pub time: DateTime<Utc>,
}

/// Docker's container event actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerAction {
    Create,
    Start,
    /// The process exited (128+signal when a signal killed it).
    Die {
        exit_code: i32,
    },
    /// The kernel's OOM killer killed a process of the container.
    Oom,
    /// The restart policy started it again.
    Restart,
    Stop,
    Kill {
        signal: String,
    },
    Pause,
    Unpause,
    Destroy,
    Rename {
        old_name: String,
    },
    /// A health check changed the container's health to healthy or unhealthy.
    HealthStatus(berth_types::health::HealthStatus),
}

impl ContainerAction {
    /// Docker's action name: `create`, `start`, `die`, `oom`, `restart`, `stop`, `kill`, ...
    pub fn name(&self) -> &'static str {
        match self {
            ContainerAction::Create => "create",
            ContainerAction::Start => "start",
            ContainerAction::Die { .. } => "die",
            ContainerAction::Oom => "oom",
            ContainerAction::Restart => "restart",
            ContainerAction::Stop => "stop",
            ContainerAction::Kill { .. } => "kill",
            ContainerAction::Pause => "pause",
            ContainerAction::Unpause => "unpause",
            ContainerAction::Destroy => "destroy",
            ContainerAction::Rename { .. } => "rename",
            ContainerAction::HealthStatus(s) => match s {
                berth_types::health::HealthStatus::Starting => "health_status: starting",
                berth_types::health::HealthStatus::Healthy => "health_status: healthy",
                berth_types::health::HealthStatus::Unhealthy => "health_status: unhealthy",
            },
        }
    }
}

impl ContainerEvent {
    /// Docker's actor attributes: `name`, `image`, plus `exitCode`, `signal` or `oldName`.
    pub fn attributes(&self) -> BTreeMap<String, String> {
        let mut attributes = BTreeMap::new();
        attributes.insert("name".to_string(), self.name.clone());
        attributes.insert("image".to_string(), self.image.clone());
        match &self.action {
            ContainerAction::Die { exit_code } => {
                attributes.insert("exitCode".to_string(), exit_code.to_string());
            }
            ContainerAction::Kill { signal } => {
                attributes.insert("signal".to_string(), signal.clone());
            }
            ContainerAction::Rename { old_name } => {
                attributes.insert("oldName".to_string(), old_name.clone());
            }
            _ => {}
        }
        attributes
    }
}
