//! What the list and a container's page can do to containers: start, stop, restart, kill, pause, unpause, remove.

use berth_types::ContainerStatus;
use gloo_net::http::Method;

use crate::client::api::{self, enc};

/// An action on selected containers: the label, the API verb, and the states it applies to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Restart,
    Kill,
    Pause,
    Unpause,
    Remove,
}

impl Action {
    pub const ALL: [Action; 7] = [
        Action::Start,
        Action::Stop,
        Action::Restart,
        Action::Kill,
        Action::Pause,
        Action::Unpause,
        Action::Remove,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Action::Start => "Start",
            Action::Stop => "Stop",
            Action::Restart => "Restart",
            Action::Kill => "Kill",
            Action::Pause => "Pause",
            Action::Unpause => "Unpause",
            Action::Remove => "Remove",
        }
    }

    /// The request that performs the action on container `id`.
    pub fn request(self, id: &str) -> (Method, String) {
        let id = enc(id);
        match self {
            Action::Remove => (Method::DELETE, format!("/api/v1/containers/{id}?force=1")),
            other => (Method::POST, format!("/api/v1/containers/{id}/{}", other.label().to_lowercase())),
        }
    }

    /// Whether the action makes sense for a container in `status` (the others are not offered).
    pub fn applies(self, status: ContainerStatus) -> bool {
        use ContainerStatus::*;
        let running = matches!(status, Running | Restarting);
        match self {
            Action::Start => matches!(status, Created | Exited | Dead),
            Action::Stop | Action::Kill | Action::Restart => running || status == Paused,
            Action::Pause => status == Running,
            Action::Unpause => status == Paused,
            Action::Remove => status != Removing,
        }
    }
}

/// Runs `action` on each container; returns the failures as `name: message`.
pub async fn run_action(action: Action, targets: Vec<(String, String)>) -> Vec<String> {
    let mut failures = Vec::new();
    for (id, name) in targets {
        let (method, path) = action.request(&id);
        if let Err(e) = api::act(method, &path).await {
            failures.push(format!("{name}: {}", e.message()));
        }
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_offered_by_state() {
        assert!(Action::Start.applies(ContainerStatus::Exited));
        assert!(!Action::Start.applies(ContainerStatus::Running));
        assert!(Action::Pause.applies(ContainerStatus::Running));
        assert!(!Action::Unpause.applies(ContainerStatus::Running));
        assert!(Action::Stop.applies(ContainerStatus::Paused));
        assert!(!Action::Remove.applies(ContainerStatus::Removing));
    }
}
