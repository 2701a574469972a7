//! The run form's row lists and groups: published ports, mounts, network, health check.

use berth_types::NetworkInspect;
use leptos::prelude::*;

use super::form::RunForm;
use super::options::{MountRow, PortRow};
use crate::client::api;
use crate::components::field_errors;
use crate::forms::FieldErrors;

/// Whether row `n` (from 1) of a row list has an error: its messages start with `<what> row n:`.
fn row_invalid(
    errors: RwSignal<FieldErrors>,
    field: &'static str,
    what: &'static str,
    n: usize,
) -> impl Fn() -> String {
    move || {
        let prefix = format!("{what} row {n}:");
        errors
            .with(|e| e.iter().any(|(f, m)| *f == field && (m.starts_with(&prefix) || !m.contains(" row "))))
            .to_string()
    }
}

/// `-p` rows: host address, host port, container port, protocol; and `-P`.
#[component]
pub fn PortRows(form: RwSignal<RunForm>, errors: RwSignal<FieldErrors>) -> impl IntoView {
    let count = Memo::new(move |_| form.with(|f| f.ports.len()));
    let cell = move |i: usize, get: fn(&PortRow) -> &String, set: fn(&mut PortRow, String)| {
        (
            move || form.with(|f| f.ports.get(i).map(|r| get(r).clone()).unwrap_or_default()),
            move |e| {
                form.update(|f| {
                    if let Some(r) = f.ports.get_mut(i) {
                        set(r, event_target_value(&e))
                    }
                })
            },
        )
    };
    view! {
        <fieldset class="rows" aria-describedby="ports-error">
            <legend>"Published ports"</legend>
            <p class="hint">
                "Host port empty: a free port is picked. Ranges like 8000-8001 map to a container range of the same length."
            </p>
            {move || {
                (0..count.get())
                    .map(|i| {
                        let n = i + 1;
                        let invalid = row_invalid(errors, "ports", "port", n);
                        let invalid2 = row_invalid(errors, "ports", "port", n);
                        let (ip, set_ip) = cell(i, |r| &r.host_ip, |r, v| r.host_ip = v);
                        let (host, set_host) = cell(i, |r| &r.host_port, |r, v| r.host_port = v);
                        let (container, set_container) = cell(i, |r| &r.container_port, |r, v| r.container_port = v);
                        view! {
                            <div class="row-fields port-row" role="group" aria-label=format!("Port {n}")>
                                <div class="field">
                                    <label for=format!("port-ip-{n}")>"Host address"</label>
                                    <input id=format!("port-ip-{n}") name="port_host_ip" placeholder="all (0.0.0.0)" inputmode="decimal" prop:value=ip on:input=set_ip/>
                                </div>
                                <div class="field">
                                    <label for=format!("port-host-{n}")>"Host port"</label>
                                    <input id=format!("port-host-{n}") name="port_host" placeholder="free port" inputmode="numeric" aria-invalid=invalid prop:value=host on:input=set_host/>
                                </div>
                                <div class="field">
                                    <label for=format!("port-container-{n}")>"Container port"</label>
                                    <input id=format!("port-container-{n}") name="port_container" placeholder="80" inputmode="numeric" aria-invalid=invalid2 prop:value=container on:input=set_container/>
                                </div>
                                <div class="field">
                                    <label for=format!("port-proto-{n}")>"Protocol"</label>
                                    <select
                                        id=format!("port-proto-{n}")
                                        name="port_protocol"
                                        prop:value=move || form.with(|f| f.ports.get(i).map(|r| r.protocol.clone()).unwrap_or_default())
                                        on:change=move |e| form.update(|f| if let Some(r) = f.ports.get_mut(i) { r.protocol = event_target_value(&e) })
                                    >
                                        <option value="tcp">"TCP"</option>
                                        <option value="udp">"UDP"</option>
                                    </select>
                                </div>
                                <button type="button" class="button small row-remove" aria-label=format!("Remove port {n}")
                                    on:click=move |_| form.update(|f| { if i < f.ports.len() { f.ports.remove(i); } })>
                                    "Remove"
                                </button>
                            </div>
                        }
                    })
                    .collect_view()
            }}
            {field_errors(errors, "ports")}
            <div class="row-add">
                <button type="button" class="button small" data-test="add-port" on:click=move |_| form.update(|f| f.ports.push(PortRow::default()))>
                    "Add a port"
                </button>
                <label class="check-label">
                    <input
                        type="checkbox"
                        name="publish_all"
                        prop:checked=move || form.with(|f| f.publish_all)
                        on:change=move |e| form.update(|f| f.publish_all = event_target_checked(&e))
                    />
                    "Publish every exposed port on a free host port (-P)"
                </label>
            </div>
        </fieldset>
    }
}

/// `--mount` rows: type, source, target, read-only.
#[component]
pub fn MountRows(form: RwSignal<RunForm>, errors: RwSignal<FieldErrors>) -> impl IntoView {
    let count = Memo::new(move |_| form.with(|f| f.mounts.len()));
    view! {
        <fieldset class="rows" aria-describedby="mounts-error">
            <legend>"Volumes and mounts"</legend>
            <p class="hint">
                "Volume: a name (created when missing; empty for a new anonymous volume). Bind: an absolute host path. Tmpfs: a size like 64m, or empty."
            </p>
            {move || {
                (0..count.get())
                    .map(|i| {
                        let n = i + 1;
                        let invalid = row_invalid(errors, "mounts", "mount", n);
                        let invalid2 = row_invalid(errors, "mounts", "mount", n);
                        let kind = move || form.with(|f| f.mounts.get(i).map(|r| r.kind.clone()).unwrap_or_default());
                        let source_label = move || match kind().as_str() {
                            "bind" => "Host path",
                            "tmpfs" => "Size",
                            _ => "Volume name",
                        };
                        let source_placeholder = move || match kind().as_str() {
                            "bind" => "/srv/data",
                            "tmpfs" => "no limit",
                            _ => "anonymous",
                        };
                        view! {
                            <div class="row-fields mount-row" role="group" aria-label=format!("Mount {n}")>
                                <div class="field">
                                    <label for=format!("mount-type-{n}")>"Type"</label>
                                    <select
                                        id=format!("mount-type-{n}")
                                        name="mount_type"
                                        prop:value=kind
                                        on:change=move |e| form.update(|f| if let Some(r) = f.mounts.get_mut(i) { r.kind = event_target_value(&e) })
                                    >
                                        <option value="volume">"Volume"</option>
                                        <option value="bind">"Bind (host path)"</option>
                                        <option value="tmpfs">"Tmpfs (memory)"</option>
                                    </select>
                                </div>
                                <div class="field">
                                    <label for=format!("mount-source-{n}")>{source_label}</label>
                                    <input
                                        id=format!("mount-source-{n}")
                                        name="mount_source"
                                        placeholder=source_placeholder
                                        aria-invalid=invalid
                                        prop:value=move || form.with(|f| f.mounts.get(i).map(|r| r.source.clone()).unwrap_or_default())
                                        on:input=move |e| form.update(|f| if let Some(r) = f.mounts.get_mut(i) { r.source = event_target_value(&e) })
                                    />
                                </div>
                                <div class="field">
                                    <label for=format!("mount-target-{n}")>"Path in the container"</label>
                                    <input
                                        id=format!("mount-target-{n}")
                                        name="mount_target"
                                        placeholder="/data"
                                        aria-invalid=invalid2
                                        prop:value=move || form.with(|f| f.mounts.get(i).map(|r| r.target.clone()).unwrap_or_default())
                                        on:input=move |e| form.update(|f| if let Some(r) = f.mounts.get_mut(i) { r.target = event_target_value(&e) })
                                    />
                                </div>
                                <label class="check-label">
                                    <input
                                        type="checkbox"
                                        name="mount_read_only"
                                        prop:checked=move || form.with(|f| f.mounts.get(i).is_some_and(|r| r.read_only))
                                        on:change=move |e| form.update(|f| if let Some(r) = f.mounts.get_mut(i) { r.read_only = event_target_checked(&e) })
                                    />
                                    "Read-only"
                                </label>
                                <button type="button" class="button small row-remove" aria-label=format!("Remove mount {n}")
                                    on:click=move |_| form.update(|f| { if i < f.mounts.len() { f.mounts.remove(i); } })>
                                    "Remove"
                                </button>
                            </div>
                        }
                    })
                    .collect_view()
            }}
            {field_errors(errors, "mounts")}
            <div class="row-add">
                <button type="button" class="button small" data-test="add-mount" on:click=move |_| form.update(|f| f.mounts.push(MountRow::default()))>
                    "Add a mount"
                </button>
                <a class="muted" href="/volumes">"Manage volumes"</a>
            </div>
        </fieldset>
    }
}

/// `--network` (from the daemon's networks), `--network-alias`, `--ip`.
#[component]
pub fn NetworkFieldset(form: RwSignal<RunForm>, errors: RwSignal<FieldErrors>) -> impl IntoView {
    let networks = LocalResource::new(|| api::get::<Vec<NetworkInspect>>("/api/v1/networks"));
    let invalid =
        move |field: &'static str| move || errors.with(|e| e.iter().any(|(f, _)| *f == field)).to_string();
    let user_defined =
        move || form.with(|f| !matches!(f.net.network.as_str(), "" | "bridge" | "none" | "host"));
    view! {
        <fieldset>
            <legend>"Network"</legend>
            <div class="grid three">
                <div class="field">
                    <label for="run-network">"Network"</label>
                    <select
                        id="run-network"
                        name="network"
                        aria-invalid=invalid("network")
                        aria-describedby="network-error"
                        prop:value=move || form.with(|f| f.net.network.clone())
                        on:change=move |e| form.update(|f| f.net.network = event_target_value(&e))
                    >
                        <option value="">"Default (bridge)"</option>
                        {move || match networks.get() {
                            Some(Ok(list)) => list
                                .into_iter()
                                .filter(|n| n.name != "bridge")
                                .map(|n| {
                                    let label = if n.subnet.is_empty() { n.name.clone() } else { format!("{} ({})", n.name, n.subnet) };
                                    view! { <option value=n.name.clone()>{label}</option> }
                                })
                                .collect_view()
                                .into_any(),
                            _ => ().into_any(),
                        }}
                        <option value="none">"None (loopback only)"</option>
                        <option value="host">"Host (the node's network)"</option>
                    </select>
                    {move || match networks.get() {
                        None => Some(view! { <p class="hint">"Loading networks…"</p> }.into_any()),
                        Some(Err(e)) => Some(view! { <p class="hint">{format!("User networks not listed: {}", e.message())}</p> }.into_any()),
                        Some(Ok(_)) => Some(view! { <p class="hint"><a href="/networks">"Manage networks"</a></p> }.into_any()),
                    }}
                    {field_errors(errors, "network")}
                </div>
                <div class="field">
                    <label for="run-aliases">"Aliases"</label>
                    <input
                        id="run-aliases"
                        name="network_aliases"
                        placeholder="db, cache"
                        disabled=move || !user_defined()
                        aria-invalid=invalid("network_aliases")
                        aria-describedby="network_aliases-error"
                        prop:value=move || form.with(|f| f.net.aliases.clone())
                        on:input=move |e| form.update(|f| f.net.aliases = event_target_value(&e))
                    />
                    <p class="hint">"More DNS names on a user network"</p>
                    {field_errors(errors, "network_aliases")}
                </div>
                <div class="field">
                    <label for="run-ip">"IPv4 address"</label>
                    <input
                        id="run-ip"
                        name="ip"
                        placeholder="assigned"
                        inputmode="decimal"
                        disabled=move || !user_defined()
                        aria-invalid=invalid("ip")
                        aria-describedby="ip-error"
                        prop:value=move || form.with(|f| f.net.ip.clone())
                        on:input=move |e| form.update(|f| f.net.ip = event_target_value(&e))
                    />
                    <p class="hint">"A fixed address in a user network's subnet"</p>
                    {field_errors(errors, "ip")}
                </div>
            </div>
        </fieldset>
    }
}

/// `--health-cmd`, `--health-interval`, `--health-timeout`, `--health-start-period`,
/// `--health-retries`, `--no-healthcheck`.
#[component]
pub fn HealthFieldset(form: RwSignal<RunForm>, errors: RwSignal<FieldErrors>) -> impl IntoView {
    let invalid = move || errors.with(|e| e.iter().any(|(f, _)| *f == "health")).to_string();
    let disabled = move || form.with(|f| f.health.disable);
    macro_rules! health_field {
        ($field:ident, $id:expr, $label:expr, $placeholder:expr) => {
            view! {
                <div class="field">
                    <label for=$id>{$label}</label>
                    <input
                        id=$id
                        name=stringify!($field)
                        placeholder=$placeholder
                        disabled=disabled
                        aria-invalid=invalid
                        aria-describedby="health-error"
                        prop:value=move || form.with(|f| f.health.$field.clone())
                        on:input=move |e| form.update(|f| f.health.$field = event_target_value(&e))
                    />
                </div>
            }
        };
    }
    view! {
        <fieldset>
            <legend>"Health check"</legend>
            {health_field!(command, "run-health-cmd", "Command", "the image's check, if any")}
            <div class="grid four">
                {health_field!(interval, "run-health-interval", "Interval", "30s")}
                {health_field!(timeout, "run-health-timeout", "Timeout", "30s")}
                {health_field!(start_period, "run-health-start-period", "Start period", "0s")}
                {health_field!(retries, "run-health-retries", "Retries", "3")}
            </div>
            <p class="hint">"The command runs in the container's shell; exit 0 is healthy. Durations like 10s, 1m30s."</p>
            <label class="check-label">
                <input
                    type="checkbox"
                    name="no_healthcheck"
                    prop:checked=move || form.with(|f| f.health.disable)
                    on:change=move |e| form.update(|f| f.health.disable = event_target_checked(&e))
                />
                "Turn off the image's health check (--no-healthcheck)"
            </label>
            {field_errors(errors, "health")}
        </fieldset>
    }
}
