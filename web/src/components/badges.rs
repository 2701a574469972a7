//! Small coloured labels: a live stream's state, a container's state, its health.

use berth_types::ContainerStatus;
use leptos::prelude::*;

/// A "Live" / "Not live" badge for a WebSocket-fed view.
#[component]
pub fn LiveBadge(live: RwSignal<bool>) -> impl IntoView {
    view! {
        <span
            class=move || if live.get() { "live on" } else { "live off" }
            title=move || {
                if live.get() { "Updates arrive as they happen" } else { "Not connected: updates paused" }
            }
        >
            {move || if live.get() { "Live" } else { "Offline" }}
        </span>
    }
}

/// A container state as a coloured badge.
#[component]
pub fn StateBadge(status: ContainerStatus) -> impl IntoView {
    view! { <span class=format!("badge state-{}", status.as_str())>{status.as_str()}</span> }
}

/// A health status as a badge: `healthy`, `unhealthy`, `starting`.
#[component]
pub fn HealthBadge(status: berth_types::HealthStatus) -> impl IntoView {
    view! {
        <span class=format!("badge health-{}", status.as_str()) title="Health check">
            {status.as_str()}
        </span>
    }
}
