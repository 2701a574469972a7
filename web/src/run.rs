//! The run form: image, name, command, environment, labels, published ports, mounts, network,
//! limits, restart policy, health check and terminal options, checked field by field with
//! Docker's rules before anything is sent; then create + start, as `berth run -d` does. The
//! daemon's refusals are shown next to the field they are about.

use berth_types::auth::Role;
use berth_types::{ContainerConfig, CreatedContainer, NetworkInspect, Resources, RestartPolicy};
use gloo_net::http::Method;
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use crate::api::{self, enc};
use crate::forms::{parse_memory, split_words, valid_name, FieldErrors};
use crate::pages::{set_title, PageHeader};
use crate::run_options::{self, HealthFields, MountRow, NetworkFields, PortRow};

/// What the user typed, as text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunForm {
    pub image: String,
    pub name: String,
    pub command: String,
    pub env: String,
    pub labels: String,
    pub memory: String,
    pub cpus: String,
    pub pids: String,
    /// `no`, `on-failure`, `always`, `unless-stopped`.
    pub restart: String,
    pub max_retries: String,
    pub tty: bool,
    pub open_stdin: bool,
    pub auto_remove: bool,
    /// `-p` rows.
    pub ports: Vec<PortRow>,
    /// `-P`.
    pub publish_all: bool,
    /// `--mount` rows.
    pub mounts: Vec<MountRow>,
    pub net: NetworkFields,
    pub health: HealthFields,
}

/// Checks the form and builds the request, or says what is wrong with which field.
pub fn validate(form: &RunForm) -> Result<ContainerConfig, FieldErrors> {
    let mut errors: FieldErrors = Vec::new();
    let image = form.image.trim();
    if image.is_empty() {
        errors.push(("image", "an image is required, e.g. busybox".into()));
    } else if image.chars().any(char::is_whitespace) || image.chars().any(|c| c.is_ascii_uppercase()) {
        errors.push(("image", "an image reference has no spaces or capital letters".into()));
    }
    let name = form.name.trim();
    if !name.is_empty() && !valid_name(name) {
        errors.push(("name", "a name is letters, digits and _ . - (starting with a letter or digit)".into()));
    }
    let cmd = match split_words(&form.command) {
        Ok(words) => words,
        Err(e) => {
            errors.push(("command", e));
            Vec::new()
        }
    };
    let mut env = Vec::new();
    for line in form.env.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match line.split_once('=') {
            Some((key, _)) if !key.is_empty() && !key.contains(char::is_whitespace) => {
                env.push(line.to_owned())
            }
            _ => errors.push(("env", format!("{line:?} is not KEY=VALUE"))),
        }
    }
    let mut labels = std::collections::BTreeMap::new();
    for line in form.labels.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match line.split_once('=') {
            Some((key, value)) if !key.is_empty() => {
                labels.insert(key.to_owned(), value.to_owned());
            }
            _ => errors.push(("labels", format!("{line:?} is not KEY=VALUE"))),
        }
    }
    let memory = match form.memory.trim() {
        "" => None,
        text => match parse_memory(text) {
            Some(bytes) if bytes >= 6 * 1024 * 1024 => Some(bytes),
            Some(_) => {
                errors.push(("memory", "the minimum memory limit is 6m, as Docker's".into()));
                None
            }
            None => {
                errors.push(("memory", format!("{text:?} is not a size like 256m or 1g")));
                None
            }
        },
    };
    let cpus = match form.cpus.trim() {
        "" => None,
        text => match text.parse::<f64>() {
            Ok(c) if c > 0.0 && c.is_finite() => Some(c),
            _ => {
                errors.push(("cpus", format!("{text:?} is not a positive number of CPUs like 0.5")));
                None
            }
        },
    };
    let pids_limit = match form.pids.trim() {
        "" => None,
        text => match text.parse::<i64>() {
            Ok(p) if p > 0 => Some(p),
            _ => {
                errors.push(("pids", format!("{text:?} is not a positive whole number")));
                None
            }
        },
    };
    let ports = run_options::ports(&form.ports, form.net.network.trim(), &mut errors);
    if form.publish_all && matches!(form.net.network.trim(), "none" | "host") {
        errors.push((
            "ports",
            format!("conflicting options: publishing all ports and the {} network", form.net.network.trim()),
        ));
    }
    let mounts = run_options::mounts(&form.mounts, &mut errors);
    let (network, network_aliases, ipv4_address) = run_options::network(&form.net, &mut errors);
    let healthcheck = run_options::health(&form.health, &mut errors);
    let restart_policy = match form.restart.as_str() {
        "" | "no" => RestartPolicy::No,
        "always" => RestartPolicy::Always,
        "unless-stopped" => RestartPolicy::UnlessStopped,
        "on-failure" => match form.max_retries.trim() {
            "" => RestartPolicy::OnFailure { max_retries: 0 },
            text => match text.parse::<u32>() {
                Ok(n) => RestartPolicy::OnFailure { max_retries: n },
                Err(_) => {
                    errors.push(("max_retries", format!("{text:?} is not a whole number")));
                    RestartPolicy::No
                }
            },
        },
        other => {
            errors.push(("restart", format!("unknown restart policy {other:?}")));
            RestartPolicy::No
        }
    };
    if form.auto_remove && restart_policy != RestartPolicy::No {
        errors.push(("restart", "a container removed when it exits cannot also be restarted".into()));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ContainerConfig {
        image: image.to_owned(),
        name: (!name.is_empty()).then(|| name.to_owned()),
        cmd,
        env,
        labels,
        tty: form.tty,
        open_stdin: form.open_stdin,
        auto_remove: form.auto_remove,
        restart_policy,
        resources: Resources { memory, cpus, pids_limit },
        ports,
        publish_all: form.publish_all,
        mounts,
        network,
        network_aliases,
        ipv4_address,
        healthcheck,
        ..ContainerConfig::default()
    })
}

#[component]
pub fn RunPage() -> impl IntoView {
    set_title("Run a container");
    let session = crate::session();
    if !session.allows(Role::Operator) {
        return view! {
            <div class="state error" role="alert">
                <h1>"Not allowed"</h1>
                <p>"Your role can look at containers but not run them. Ask an admin for the operator role."</p>
            </div>
        }
        .into_any();
    }
    let form = RwSignal::new(RunForm { image: "busybox".into(), restart: "no".into(), ..RunForm::default() });
    let errors = RwSignal::new(FieldErrors::new());
    let team = RwSignal::new(String::new());
    let failure = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let navigate = use_navigate();
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        failure.set(None);
        let config = match validate(&form.get_untracked()) {
            Ok(config) => config,
            Err(e) => {
                errors.set(e);
                focus_first_error();
                return;
            }
        };
        errors.set(Vec::new());
        busy.set(true);
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            let owner = crate::team::picked(team);
            let created: Result<CreatedContainer, _> =
                api::send_json_as(Method::POST, "/api/v1/containers", &config, owner.as_deref()).await;
            let result = match created {
                Ok(created) => {
                    match api::act(Method::POST, &format!("/api/v1/containers/{}/start", enc(&created.id)))
                        .await
                    {
                        Ok(()) => Ok(created.id),
                        Err(e) => {
                            // A container that cannot start (a port in use, a missing bind source)
                            // is removed again, so that the corrected form can be sent as it is
                            // (same name) — unlike `docker run`, which leaves it created.
                            let path = format!("/api/v1/containers/{}?force=1", enc(&created.id));
                            let removed = api::act(Method::DELETE, &path).await.is_ok();
                            let note = if removed {
                                ""
                            } else {
                                " (the created container is left; remove it on the Containers page)"
                            };
                            Err(format!("{}{note}", e.message()))
                        }
                    }
                }
                Err(e) => Err(e.message()),
            };
            busy.set(false);
            match result {
                Ok(id) => {
                    let target = config.name.unwrap_or(id);
                    navigate(&format!("/containers/{}", enc(&target)), Default::default());
                }
                Err(message) => {
                    // The daemon's refusal goes next to the field it is about, and in the summary.
                    let field = run_options::field_of_server_error(&message);
                    if field != "form" {
                        errors.set(vec![(field, message.clone())]);
                        focus_first_error();
                    }
                    failure.set(Some(message));
                }
            }
        });
    };
    let error_for = move |field: &'static str| field_errors(errors, field);
    let invalid = move |field: &'static str| move || errors.with(|e| e.iter().any(|(f, _)| *f == field));
    macro_rules! text_field {
        ($field:ident, $label:expr, $placeholder:expr, $hint:expr) => {
            view! {
                <div class="field">
                    <label for=concat!("run-", stringify!($field))>{$label}</label>
                    <input
                        id=concat!("run-", stringify!($field))
                        name=stringify!($field)
                        placeholder=$placeholder
                        aria-invalid=move || invalid(stringify!($field))().to_string()
                        aria-describedby=concat!(stringify!($field), "-error")
                        prop:value=move || form.with(|f| f.$field.clone())
                        on:input=move |e| form.update(|f| f.$field = event_target_value(&e))
                    />
                    <p class="hint">{$hint}</p>
                    {error_for(stringify!($field))}
                </div>
            }
        };
    }
    macro_rules! check_field {
        ($field:ident, $label:expr) => {
            view! {
                <label class="check-label">
                    <input
                        type="checkbox"
                        name=stringify!($field)
                        prop:checked=move || form.with(|f| f.$field)
                        on:change=move |e| form.update(|f| f.$field = event_target_checked(&e))
                    />
                    {$label}
                </label>
            }
        };
    }
    view! {
        <PageHeader title="Run a container"/>
        <form class="panel form run-form" on:submit=submit novalidate>
            <div class="grid">
                {text_field!(image, "Image", "busybox:latest", "A local image; pull others on the Images page.")}
                {text_field!(name, "Name", "generated when empty", "Letters, digits, _ . -")}
            </div>
            <crate::team::TeamPicker team id="run-team"/>
            {text_field!(command, "Command", "the image's default", "Words as a shell splits them: sh -c 'echo hi'")}
            <div class="grid">
                <div class="field">
                    <label for="run-env">"Environment"</label>
                    <textarea
                        id="run-env"
                        name="env"
                        rows="3"
                        placeholder="KEY=value, one a line"
                        aria-invalid=move || invalid("env")().to_string()
                        prop:value=move || form.with(|f| f.env.clone())
                        on:input=move |e| form.update(|f| f.env = event_target_value(&e))
                    ></textarea>
                    {error_for("env")}
                </div>
                <div class="field">
                    <label for="run-labels">"Labels"</label>
                    <textarea
                        id="run-labels"
                        name="labels"
                        rows="3"
                        placeholder="key=value, one a line"
                        aria-invalid=move || invalid("labels")().to_string()
                        prop:value=move || form.with(|f| f.labels.clone())
                        on:input=move |e| form.update(|f| f.labels = event_target_value(&e))
                    ></textarea>
                    {error_for("labels")}
                </div>
            </div>
            <PortRows form errors/>
            <MountRows form errors/>
            <NetworkFieldset form errors/>
            <fieldset>
                <legend>"Limits"</legend>
                <div class="grid three">
                    {text_field!(memory, "Memory", "no limit", "e.g. 256m, 1g")}
                    {text_field!(cpus, "CPUs", "no limit", "e.g. 0.5")}
                    {text_field!(pids, "Processes", "no limit", "Most processes at once")}
                </div>
            </fieldset>
            <fieldset>
                <legend>"Restart policy"</legend>
                <div class="grid">
                    <div class="field">
                        <label for="run-restart">"When it exits"</label>
                        <select
                            id="run-restart"
                            name="restart"
                            on:change=move |e| form.update(|f| f.restart = event_target_value(&e))
                        >
                            <option value="no">"Do not restart"</option>
                            <option value="on-failure">"Restart on failure"</option>
                            <option value="always">"Always restart"</option>
                            <option value="unless-stopped">"Restart unless stopped"</option>
                        </select>
                        {error_for("restart")}
                    </div>
                    {move || (form.with(|f| f.restart == "on-failure")).then(|| {
                        text_field!(max_retries, "Most retries", "no limit", "0 means no limit")
                    })}
                </div>
            </fieldset>
            <HealthFieldset form errors/>
            <fieldset>
                <legend>"Options"</legend>
                {check_field!(tty, "Allocate a terminal (-t)")}
                {check_field!(open_stdin, "Keep stdin open (-i)")}
                {check_field!(auto_remove, "Remove when it exits (--rm)")}
            </fieldset>
            {move || failure.get().map(|f| view! { <p class="form-error" role="alert">{f}</p> })}
            <div class="form-actions">
                <a class="button" href="/containers">"Cancel"</a>
                <button type="submit" class="button primary" disabled=busy>
                    {move || if busy.get() { "Starting…" } else { "Run" }}
                </button>
            </div>
        </form>
    }
    .into_any()
}

/// The messages of `field`, as a list under it.
fn field_errors(errors: RwSignal<FieldErrors>, field: &'static str) -> impl IntoView {
    move || {
        let messages: Vec<String> =
            errors.with(|e| e.iter().filter(|(f, _)| *f == field).map(|(_, m)| m.clone()).collect());
        (!messages.is_empty()).then(|| {
            view! {
                <div class="field-error" id=format!("{field}-error") role="alert">
                    {messages.into_iter().map(|m| view! { <p>{m}</p> }).collect_view()}
                </div>
            }
        })
    }
}

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
fn PortRows(form: RwSignal<RunForm>, errors: RwSignal<FieldErrors>) -> impl IntoView {
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
fn MountRows(form: RwSignal<RunForm>, errors: RwSignal<FieldErrors>) -> impl IntoView {
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
fn NetworkFieldset(form: RwSignal<RunForm>, errors: RwSignal<FieldErrors>) -> impl IntoView {
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
fn HealthFieldset(form: RwSignal<RunForm>, errors: RwSignal<FieldErrors>) -> impl IntoView {
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

/// Puts the keyboard on the first field marked invalid, after the view shows it.
fn focus_first_error() {
    request_animation_frame(|| {
        if let Ok(Some(element)) = document().query_selector("[aria-invalid=true]") {
            use wasm_bindgen::JsCast;
            if let Ok(element) = element.dyn_into::<web_sys::HtmlElement>() {
                let _ = element.focus();
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(image: &str) -> RunForm {
        RunForm { image: image.into(), restart: "no".into(), ..RunForm::default() }
    }

    #[test]
    fn a_valid_form_becomes_the_request() {
        let mut f = form("busybox");
        f.name = "web-1".into();
        f.command = r#"sh -c 'echo "a b"; sleep 1'"#.into();
        f.env = "A=1\n\nB=x=y\n".into();
        f.memory = "256m".into();
        f.cpus = "0.5".into();
        f.restart = "on-failure".into();
        f.max_retries = "3".into();
        let config = validate(&f).unwrap();
        assert_eq!(config.name.as_deref(), Some("web-1"));
        assert_eq!(config.cmd, ["sh", "-c", r#"echo "a b"; sleep 1"#]);
        assert_eq!(config.env, ["A=1", "B=x=y"]);
        assert_eq!(config.resources.memory, Some(256 << 20));
        assert_eq!(config.resources.cpus, Some(0.5));
        assert_eq!(config.restart_policy, RestartPolicy::OnFailure { max_retries: 3 });
    }

    #[test]
    fn every_wrong_field_is_named() {
        let mut f = form("");
        f.name = "-bad".into();
        f.command = "echo 'open".into();
        f.env = "NOEQUALS".into();
        f.memory = "lots".into();
        f.cpus = "-1".into();
        f.pids = "0".into();
        let fields: Vec<&str> = validate(&f).unwrap_err().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["image", "name", "command", "env", "memory", "cpus", "pids"]);
        let mut f = form("busybox");
        f.auto_remove = true;
        f.restart = "always".into();
        assert_eq!(validate(&f).unwrap_err()[0].0, "restart");
        f.memory = "1k".into();
        f.restart = "no".into();
        assert!(validate(&f).unwrap_err()[0].1.contains("minimum"));
    }
}
