//! Engine events: what happened to which container, for the daemon's event log and watchers.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

/// One event, as Docker's `events` shows them: a type, an action, an actor and attributes.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineEvent {
    Container(ContainerEvent),
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
