//! One container: its details and actions, live logs, live stats charts and an exec terminal.

use std::collections::VecDeque;

use berth_types::auth::Role;
use berth_types::stream::StreamMessage;
use berth_types::{ContainerInspect, ContainerStats, ContainerStatus, LogEntry, StreamControl};
use leptos::html;
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_params_map};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

use crate::api::{self, enc, ApiError};
use crate::containers::{port_text, run_action, Action, HealthBadge, StateBadge};
use crate::format::{self, human_size};
use crate::pages::{clock, event_feed, set_title, ErrorPanel, LiveBadge, Loading};
use crate::ws::{Frame, Socket};

/// Most log lines the page keeps; older ones are dropped from the view (download gets what is
/// kept).
const MAX_LOG_LINES: usize = 5000;
/// Stats samples in the charts (one a second).
const STATS_WINDOW: usize = 60;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tab {
    Logs,
    Stats,
    Terminal,
    Inspect,
}

#[component]
pub fn ContainerPage() -> impl IntoView {
    let params = use_params_map();
    let name = move || params.with(|p| p.get("name").unwrap_or_default());
    view! {
        {move || {
            let name = name();
            view! { <ContainerView name/> }
        }}
    }
}

#[component]
fn ContainerView(name: String) -> impl IntoView {
    set_title(name.trim_start_matches('/'));
    let session = crate::session();
    let operator = session.allows(Role::Operator);
    let inspect = RwSignal::new(None::<Result<ContainerInspect, ApiError>>);
    let path = format!("/api/v1/containers/{}", enc(&name));
    let reload = {
        let path = path.clone();
        move || {
            let path = path.clone();
            leptos::task::spawn_local(async move {
                inspect.set(Some(api::get::<ContainerInspect>(&path).await));
            });
        }
    };
    reload();
    let watched = name.clone();
    let reload2 = reload.clone();
    let live = event_feed(move |event| {
        let id = inspect.with_untracked(|i| i.as_ref().and_then(|r| r.as_ref().ok()).map(|c| c.id.clone()));
        let ours = event.subject == watched
            || id.is_some_and(|id| event.subject == id || event.message.contains(&id));
        if event.event_type == "container" && ours {
            reload2();
        }
    });
    let running = Memo::new(move |_| {
        inspect.with(|i| {
            i.as_ref()
                .and_then(|r| r.as_ref().ok())
                .is_some_and(|c| c.state.status == ContainerStatus::Running)
        })
    });
    let clock = clock();
    let tab = RwSignal::new(if operator { Tab::Logs } else { Tab::Stats });
    let notice = RwSignal::new(None::<String>);
    let navigate = use_navigate();
    let act = move |action: Action, id: String, name: String| {
        if action == Action::Remove
            && !window().confirm_with_message(&format!("Remove {name}?")).unwrap_or(false)
        {
            return;
        }
        let navigate = navigate.clone();
        let reload = reload.clone();
        leptos::task::spawn_local(async move {
            let failures = run_action(action, vec![(id, name)]).await;
            if let Some(f) = failures.first() {
                notice.set(Some(f.clone()));
            } else if action == Action::Remove {
                navigate("/containers", Default::default());
                return;
            } else {
                notice.set(None);
            }
            reload();
        });
    };
    let tabs: Vec<(Tab, &'static str)> = [
        operator.then_some((Tab::Logs, "Logs")),
        Some((Tab::Stats, "Stats")),
        operator.then_some((Tab::Terminal, "Terminal")),
        Some((Tab::Inspect, "Details")),
    ]
    .into_iter()
    .flatten()
    .collect();
    let retry_name = name.clone();
    view! {
        <nav class="breadcrumb" aria-label="Breadcrumb">
            <a href="/containers">"Containers"</a>
            " / "
        </nav>
        {move || match inspect.get() {
            None => view! { <Loading what="the container"/> }.into_any(),
            Some(Err(error)) => {
                let _ = &retry_name;
                view! { <ErrorPanel error retry=Callback::new(move |()| reload_page())/> }.into_any()
            }
            Some(Ok(c)) => {
                let status = c.state.status;
                let act = act.clone();
                let id = c.id.clone();
                let cname = c.name.clone();
                view! {
                    <div class="page-header">
                        <h1>{c.name.trim_start_matches('/').to_owned()} " " <StateBadge status/></h1>
                        <div class="page-actions">
                            <LiveBadge live/>
                            {operator.then(|| Action::ALL
                                .into_iter()
                                .filter(|a| a.applies(status))
                                .map(|action| {
                                    let act = act.clone();
                                    let id = id.clone();
                                    let cname = cname.clone();
                                    let class = if action == Action::Remove { "button danger" } else { "button" };
                                    view! {
                                        <button type="button" class=class on:click=move |_| act(action, id.clone(), cname.clone())>
                                            {action.label()}
                                        </button>
                                    }
                                })
                                .collect_view())}
                        </div>
                    </div>
                    <p class="subtitle">
                        <span class="repo">{c.image.clone()}</span>
                        " · "
                        {
                            let state = c.state.clone();
                            move || state.human_status(clock.get())
                        }
                        {(!c.network_settings.ports.is_empty()).then(|| {
                            let ports: Vec<String> = c.network_settings.ports.iter().map(port_text).collect();
                            view! { " · " <span class="ports-inline">{ports.join(", ")}</span> }
                        })}
                        {(!c.state.error.is_empty()).then(|| view! { <span class="form-error">{format!(" · {}", c.state.error)}</span> })}
                    </p>
                }
                .into_any()
            }
        }}
        {move || notice.get().map(|n| view! { <p class="notice failed" role="alert">{n}</p> })}
        <div class="tabs" role="tablist" aria-label="Container views">
            {tabs
                .into_iter()
                .map(|(t, label)| {
                    view! {
                        <button
                            type="button"
                            role="tab"
                            id=format!("tab-{}", label.to_lowercase())
                            class="tab"
                            aria-selected=move || (tab.get() == t).to_string()
                            on:click=move |_| tab.set(t)
                        >
                            {label}
                        </button>
                    }
                })
                .collect_view()}
        </div>
        <div class="tab-panel" role="tabpanel">
            // Only a tab change rebuilds the panel: a state change must not cut the log stream
            // or the terminal (which says itself when its process ends).
            {move || {
                let name = name.clone();
                match tab.get() {
                    Tab::Logs => view! { <Logs name/> }.into_any(),
                    Tab::Stats => {
                        view! { {move || { let name = name.clone(); let running = running.get(); view! { <Stats name running/> } }} }.into_any()
                    }
                    Tab::Terminal => view! { <TerminalTab name running/> }.into_any(),
                    Tab::Inspect => view! {
                        {move || match inspect.get() {
                            Some(Ok(c)) => view! { <Details c/> }.into_any(),
                            _ => ().into_any(),
                        }}
                    }
                    .into_any(),
                }
            }}
        </div>
    }
}

fn reload_page() {
    let _ = window().location().reload();
}

/// The configuration and state, as facts.
#[component]
fn Details(c: ContainerInspect) -> impl IntoView {
    let command = std::iter::once(c.path.clone()).chain(c.args.iter().cloned()).collect::<Vec<_>>().join(" ");
    let limits = {
        let r = &c.config.resources;
        let mut parts = Vec::new();
        if let Some(m) = r.memory {
            parts.push(format!("memory {}", human_size(m)));
        }
        if let Some(cpus) = r.cpus {
            parts.push(format!("{cpus} CPUs"));
        }
        if let Some(p) = r.pids_limit {
            parts.push(format!("{p} processes"));
        }
        if parts.is_empty() {
            "none".to_owned()
        } else {
            parts.join(", ")
        }
    };
    let restart = match &c.config.restart_policy {
        berth_types::RestartPolicy::No => "no".to_owned(),
        berth_types::RestartPolicy::OnFailure { max_retries: 0 } => "on-failure".to_owned(),
        berth_types::RestartPolicy::OnFailure { max_retries } => format!("on-failure:{max_retries}"),
        berth_types::RestartPolicy::Always => "always".to_owned(),
        berth_types::RestartPolicy::UnlessStopped => "unless-stopped".to_owned(),
    };
    let list = |items: &[String]| {
        if items.is_empty() {
            view! { <span class="muted">"none"</span> }.into_any()
        } else {
            view! { <ul class="plain">{items.iter().map(|i| view! { <li><code>{i.clone()}</code></li> }).collect_view()}</ul> }.into_any()
        }
    };
    let labels: Vec<String> = c.config.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    view! {
        <dl class="facts panel">
            <dt>"ID"</dt><dd><code>{c.id.clone()}</code></dd>
            <dt>"Created"</dt><dd>{c.created.clone()}</dd>
            <dt>"Image"</dt><dd><code>{c.image.clone()}</code> " " <code class="muted">{format::short_id(&c.image_id).to_owned()}</code></dd>
            <dt>"Command"</dt><dd><code>{command}</code></dd>
            <dt>"State"</dt><dd>{format!("{} (pid {}, exit code {}{})", c.state.status.as_str(), c.state.pid, c.state.exit_code, if c.state.oom_killed { ", OOM killed" } else { "" })}</dd>
            <dt>"Started"</dt><dd>{c.state.started_at.clone()}</dd>
            <dt>"Finished"</dt><dd>{c.state.finished_at.clone()}</dd>
            <dt>"Restarts"</dt><dd>{c.restart_count}</dd>
            <dt>"Restart policy"</dt><dd>{restart}</dd>
            <dt>"Limits"</dt><dd>{limits}</dd>
            <dt>"Terminal"</dt><dd>{if c.config.tty { "yes" } else { "no" }}</dd>
            <dt>"Environment"</dt><dd>{list(&c.config.env)}</dd>
            <dt>"Labels"</dt><dd>{list(&labels)}</dd>
            <dt>"Runtime"</dt><dd>{c.runtime.clone()}</dd>
            <dt>"Snapshotter"</dt><dd>{c.snapshotter.clone()}</dd>
            <dt>"Log file"</dt><dd><code>{c.log_path.clone()}</code></dd>
        </dl>
        <HealthPanel c=c.clone()/>
        <NetworkPanel c=c.clone()/>
        <MountsPanel mounts=c.mounts.clone()/>
    }
}

/// The health check: its status, the failing streak and the last probes with their output.
#[component]
fn HealthPanel(c: ContainerInspect) -> impl IntoView {
    let configured =
        c.config.healthcheck.as_ref().filter(|h| h.test.first().map(String::as_str) != Some("NONE"));
    let test = configured.map(|h| match h.test.first().map(String::as_str) {
        Some("CMD-SHELL") => h.test[1..].join(" "),
        Some("CMD") => h.test[1..].join(" "),
        _ => "the image's check".to_owned(),
    });
    let body = match (&c.state.health, test) {
        (Some(health), _) => {
            let probes = health.log.iter().rev().cloned().collect::<Vec<_>>();
            view! {
                <p data-test="health-status">
                    <HealthBadge status=health.status/>
                    {format!(
                        " · {} failing probe{} in a row",
                        health.failing_streak,
                        if health.failing_streak == 1 { "" } else { "s" },
                    )}
                </p>
                {if probes.is_empty() {
                    view! { <p class="muted">"No probe has run yet."</p> }.into_any()
                } else {
                    view! {
                        <div class="table-wrap" role="region" aria-label="Last health probes" tabindex="0">
                            <table class="data probes">
                                <thead>
                                    <tr>
                                        <th scope="col">"Started"</th>
                                        <th scope="col" class="num">"Took"</th>
                                        <th scope="col">"Result"</th>
                                        <th scope="col">"Output"</th>
                                    </tr>
                                </thead>
                                <tbody>
                                    {probes
                                        .into_iter()
                                        .map(|p| {
                                            let took = match (format::parse_time(&p.start), format::parse_time(&p.end)) {
                                                (Some(a), Some(b)) => format!("{} ms", (b - a).num_milliseconds().max(0)),
                                                _ => "—".to_owned(),
                                            };
                                            let result = match p.exit_code {
                                                0 => "healthy (exit 0)".to_owned(),
                                                -1 => "did not finish".to_owned(),
                                                code => format!("unhealthy (exit {code})"),
                                            };
                                            let class = if p.exit_code == 0 { "" } else { "failed" };
                                            view! {
                                                <tr class=class>
                                                    <td data-label="Started" title=p.start.clone()>{p.start.clone()}</td>
                                                    <td data-label="Took" class="num">{took}</td>
                                                    <td data-label="Result">{result}</td>
                                                    <td data-label="Output"><pre class="probe-output">{p.output.trim_end().to_owned()}</pre></td>
                                                </tr>
                                            }
                                        })
                                        .collect_view()}
                                </tbody>
                            </table>
                        </div>
                    }
                    .into_any()
                }}
            }
            .into_any()
        }
        (None, Some(test)) => view! {
            <p class="muted">{format!("Checks with {test}; the state shows once the container runs.")}</p>
        }
        .into_any(),
        (None, None) => view! { <p class="muted">"This container has no health check."</p> }.into_any(),
    };
    view! {
        <section class="panel" aria-labelledby="health-heading">
            <h2 id="health-heading">"Health"</h2>
            {body}
        </section>
    }
}

/// Published ports and the networks the container is attached to.
#[component]
fn NetworkPanel(c: ContainerInspect) -> impl IntoView {
    let settings = c.network_settings;
    let mode =
        if settings.network_mode.is_empty() { "default".to_owned() } else { settings.network_mode.clone() };
    let ports = if settings.ports.is_empty() {
        let why = if c.config.ports.is_empty() && !c.config.publish_all {
            "No published ports."
        } else {
            "Ports are published while the container runs."
        };
        view! { <p class="muted">{why}</p> }.into_any()
    } else {
        view! {
            <ul class="plain" data-test="ports">
                {settings
                    .ports
                    .iter()
                    .map(|p| view! { <li><code>{port_text(p)}</code></li> })
                    .collect_view()}
            </ul>
        }
        .into_any()
    };
    let networks = if settings.networks.is_empty() {
        view! { <p class="muted">"Attached to no network while stopped."</p> }.into_any()
    } else {
        view! {
            <div class="table-wrap" role="region" aria-label="Networks" tabindex="0">
                <table class="data" data-test="networks">
                    <thead>
                        <tr>
                            <th scope="col">"Network"</th>
                            <th scope="col">"Address"</th>
                            <th scope="col">"Gateway"</th>
                            <th scope="col">"MAC"</th>
                            <th scope="col">"Aliases"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {settings
                            .networks
                            .iter()
                            .map(|(name, e)| view! {
                                <tr>
                                    <td data-label="Network"><a href=format!("/networks/{}", enc(name))>{name.clone()}</a></td>
                                    <td data-label="Address"><code>{e.ipv4_address.clone()}</code></td>
                                    <td data-label="Gateway"><code>{e.gateway.clone()}</code></td>
                                    <td data-label="MAC"><code>{e.mac_address.clone()}</code></td>
                                    <td data-label="Aliases">{e.aliases.join(", ")}</td>
                                </tr>
                            })
                            .collect_view()}
                    </tbody>
                </table>
            </div>
        }
        .into_any()
    };
    view! {
        <section class="panel" aria-labelledby="network-heading">
            <h2 id="network-heading">"Network"</h2>
            <dl class="facts">
                <dt>"Mode"</dt><dd><code>{mode}</code></dd>
                <dt>"Published ports"</dt><dd>{ports}</dd>
            </dl>
            {networks}
        </section>
    }
}

/// Volumes, binds and tmpfs mounts.
#[component]
fn MountsPanel(mounts: Vec<berth_types::MountPoint>) -> impl IntoView {
    let body = if mounts.is_empty() {
        view! { <p class="muted">"No volumes or mounts."</p> }.into_any()
    } else {
        view! {
            <div class="table-wrap" role="region" aria-label="Mounts" tabindex="0">
                <table class="data" data-test="mounts">
                    <thead>
                        <tr>
                            <th scope="col">"Type"</th>
                            <th scope="col">"Source"</th>
                            <th scope="col">"Path in the container"</th>
                            <th scope="col">"Mode"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {mounts
                            .into_iter()
                            .map(|m| {
                                let kind = match m.mount_type {
                                    berth_types::MountType::Volume => "volume",
                                    berth_types::MountType::Bind => "bind",
                                    berth_types::MountType::Tmpfs => "tmpfs",
                                };
                                let source = if !m.name.is_empty() {
                                    view! {
                                        <a href=format!("/volumes/{}", enc(&m.name)) title=m.source.clone()>
                                            {format::short_volume_name(&m.name)}
                                        </a>
                                    }
                                    .into_any()
                                } else if m.source.is_empty() {
                                    view! { <span class="muted">"memory"</span> }.into_any()
                                } else {
                                    view! { <code>{m.source.clone()}</code> }.into_any()
                                };
                                view! {
                                    <tr>
                                        <td data-label="Type">{kind}</td>
                                        <td data-label="Source">{source}</td>
                                        <td data-label="Path"><code>{m.destination.clone()}</code></td>
                                        <td data-label="Mode">{if m.read_only { "read-only" } else { "read-write" }}</td>
                                    </tr>
                                }
                            })
                            .collect_view()}
                    </tbody>
                </table>
            </div>
        }
        .into_any()
    };
    view! {
        <section class="panel" aria-labelledby="mounts-heading">
            <h2 id="mounts-heading">"Volumes and mounts"</h2>
            {body}
        </section>
    }
}

/// Live logs: the last 1000 lines, then new ones as they come; search, timestamps, stdout and
/// stderr told apart, follow on/off, download, and auto-scroll that pauses while the user reads
/// further up.
#[component]
fn Logs(name: String) -> impl IntoView {
    let entries = RwSignal::new(VecDeque::<(u64, LogEntry)>::new());
    let seq = StoredValue::new(0u64);
    let follow = RwSignal::new(true);
    let timestamps = RwSignal::new(false);
    let search = RwSignal::new(String::new());
    let status = RwSignal::new(String::from("Connecting…"));
    let pinned = RwSignal::new(true);
    let socket = StoredValue::new_local(None::<Socket>);
    let container = name.clone();
    Effect::new(move |_| {
        let follow = follow.get();
        // Restarting the stream replaces what is shown: the tail comes again.
        socket.set_value(None);
        entries.set(VecDeque::new());
        status.set("Connecting…".into());
        let path = format!(
            "/api/v1/ws/containers/{}/logs?tail=1000{}",
            enc(&container),
            if follow { "&follow=1" } else { "" }
        );
        let opened = Socket::open(
            &path,
            Some(Box::new(move |_| status.set(if follow { "Following".into() } else { "Loaded".into() }))),
            move |frame| {
                let Frame::Text(text) = frame else { return };
                match serde_json::from_str::<StreamMessage>(&text) {
                    Ok(StreamMessage::Logs { entries: batch }) => entries.update(|e| {
                        for entry in batch {
                            let n = seq.get_value();
                            seq.set_value(n + 1);
                            e.push_back((n, entry));
                        }
                        while e.len() > MAX_LOG_LINES {
                            e.pop_front();
                        }
                    }),
                    Ok(StreamMessage::End { reason }) => status.set(format!("Stream ended: {reason}")),
                    Ok(StreamMessage::Error { message }) => status.set(format!("Error: {message}")),
                    _ => {}
                }
            },
            move |closed| {
                if closed.code != 1000 {
                    status.set(format!("Disconnected (code {}) {}", closed.code, closed.reason));
                }
            },
        );
        match opened {
            Ok(s) => socket.set_value(Some(s)),
            Err(e) => status.set(format!("Error: {e}")),
        }
    });
    let log_ref = NodeRef::<html::Div>::new();
    // After new lines arrive, keep the newest in view unless the user scrolled up.
    Effect::new(move |_| {
        entries.track();
        if pinned.get_untracked() {
            request_animation_frame(move || {
                if let Some(el) = log_ref.get_untracked() {
                    el.set_scroll_top(el.scroll_height());
                }
            });
        }
    });
    let on_scroll = move |_| {
        if let Some(el) = log_ref.get_untracked() {
            let at_bottom = el.scroll_top() + el.client_height() >= el.scroll_height() - 8;
            pinned.set(at_bottom);
        }
    };
    let jump = move |_| {
        pinned.set(true);
        if let Some(el) = log_ref.get_untracked() {
            el.set_scroll_top(el.scroll_height());
        }
    };
    let download_name = name.clone();
    let download = move |_| {
        let text: String = entries.with_untracked(|e| {
            e.iter()
                .map(|(_, l)| {
                    let line = l.line.strip_suffix('\n').unwrap_or(&l.line);
                    format!("{} {} {line}\n", l.time, l.stream)
                })
                .collect()
        });
        save_text(&format!("{download_name}.log"), &text);
    };
    let shown = Memo::new(move |_| {
        let needle = search.get().to_lowercase();
        entries.with(|e| {
            e.iter()
                .filter(|(_, l)| needle.is_empty() || l.line.to_lowercase().contains(&needle))
                .cloned()
                .collect::<Vec<_>>()
        })
    });
    view! {
        <div class="toolbar">
            <label class="visually-hidden" for="log-search">"Search the log"</label>
            <input id="log-search" type="search" placeholder="Search the log" prop:value=search on:input=move |e| search.set(event_target_value(&e))/>
            <label class="check-label">
                <input type="checkbox" prop:checked=follow on:change=move |e| follow.set(event_target_checked(&e))/>
                "Follow"
            </label>
            <label class="check-label">
                <input type="checkbox" prop:checked=timestamps on:change=move |e| timestamps.set(event_target_checked(&e))/>
                "Timestamps"
            </label>
            <button type="button" class="button small" on:click=download>"Download"</button>
            <span class="muted" role="status" data-test="log-status">{move || status.get()}</span>
        </div>
        <div class="log-wrap">
            <div class="log" node_ref=log_ref on:scroll=on_scroll tabindex="0" role="log" aria-label="Container log" aria-live="off">
                {move || shown.with(Vec::is_empty).then(|| view! {
                    <p class="muted log-empty">
                        {move || if search.with(String::is_empty) { "No output yet." } else { "No line matches the search." }}
                    </p>
                })}
                <For
                    each=move || shown.get()
                    key=|(n, _)| *n
                    children=move |(_, l)| {
                        let line = l.line.strip_suffix('\n').unwrap_or(&l.line).to_owned();
                        let time = l.time.clone();
                        view! {
                            <div class=format!("log-line {}", l.stream)>
                                {move || timestamps.get().then(|| view! { <time class="log-time">{time.clone()}</time> })}
                                <span class="log-stream" title=l.stream.clone()>{if l.stream == "stderr" { "err" } else { "out" }}</span>
                                <span class="log-text">{line}</span>
                            </div>
                        }
                    }
                />
            </div>
            {move || (!pinned.get()).then(|| view! {
                <button type="button" class="button small jump" on:click=jump>"Auto-scroll paused · Jump to newest"</button>
            })}
        </div>
    }
}

/// Offers `text` as a file download.
fn save_text(file_name: &str, text: &str) {
    let parts = js_sys::Array::of1(&JsValue::from_str(text));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("text/plain");
    let Ok(blob) = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options) else { return };
    let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob) else { return };
    if let Ok(a) = document().create_element("a") {
        if let Ok(a) = a.dyn_into::<web_sys::HtmlAnchorElement>() {
            a.set_href(&url);
            a.set_download(file_name);
            a.click();
        }
    }
    let _ = web_sys::Url::revoke_object_url(&url);
}

/// Live CPU and memory charts from the stats stream.
#[component]
fn Stats(name: String, running: bool) -> impl IntoView {
    let samples = RwSignal::new(VecDeque::<ContainerStats>::new());
    let status = RwSignal::new(String::new());
    if running {
        status.set("Connecting…".into());
        let socket = Socket::open(
            &format!("/api/v1/ws/containers/{}/stats", enc(&name)),
            Some(Box::new(move |_| status.set("Live".into()))),
            move |frame| {
                let Frame::Text(text) = frame else { return };
                match serde_json::from_str::<StreamMessage>(&text) {
                    Ok(StreamMessage::Stats { stats }) => samples.update(|s| {
                        s.push_back(stats);
                        while s.len() > STATS_WINDOW {
                            s.pop_front();
                        }
                    }),
                    Ok(StreamMessage::End { reason }) => status.set(format!("Stopped: {reason}")),
                    Ok(StreamMessage::Error { message }) => status.set(format!("Error: {message}")),
                    _ => {}
                }
            },
            |_| {},
        );
        StoredValue::new_local(socket.ok());
    }
    view! {
        {(!running).then(|| view! {
            <div class="state empty"><p>"Stats are measured while the container runs."</p></div>
        })}
        {running.then(|| view! {
            <p class="muted" role="status">{move || status.get()}</p>
            <div class="charts">
                <Chart
                    title="CPU"
                    values=Signal::derive(move || samples.with(|s| s.iter().map(|x| x.cpu_percent).collect()))
                    label=Signal::derive(move || samples.with(|s| s.back().map(|x| format!("{:.1}%", x.cpu_percent)).unwrap_or_default()))
                    max=Signal::derive(move || samples.with(|s| s.iter().map(|x| x.cpu_percent).fold(100.0, f64::max)))
                />
                <Chart
                    title="Memory"
                    values=Signal::derive(move || samples.with(|s| s.iter().map(|x| x.memory_usage as f64).collect()))
                    label=Signal::derive(move || samples.with(|s| s.back().map(|x| format!("{} / {} · {} processes", human_size(x.memory_usage), human_size(x.memory_limit), x.pids)).unwrap_or_default()))
                    max=Signal::derive(move || samples.with(|s| s.back().map(|x| x.memory_limit as f64).unwrap_or(1.0)))
                />
            </div>
        })}
    }
}

/// A line chart of the last samples, scaled to `max`.
#[component]
fn Chart(
    title: &'static str,
    values: Signal<Vec<f64>>,
    label: Signal<String>,
    max: Signal<f64>,
) -> impl IntoView {
    let points = move || {
        let values = values.get();
        let max = max.get().max(f64::MIN_POSITIVE);
        values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let x = (STATS_WINDOW - values.len() + i) as f64 * (300.0 / (STATS_WINDOW - 1) as f64);
                let y = 100.0 - (v / max).clamp(0.0, 1.0) * 96.0 - 2.0;
                format!("{x:.1},{y:.1}")
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    view! {
        <figure class="chart panel">
            <figcaption>
                <strong>{title}</strong>
                " "
                <span class="chart-value">{move || label.get()}</span>
            </figcaption>
            <svg viewBox="0 0 300 100" preserveAspectRatio="none" role="img" aria-label=format!("{title} over the last minute")>
                <polyline points=points fill="none" stroke="currentColor" stroke-width="2" vector-effect="non-scaling-stroke"></polyline>
            </svg>
        </figure>
    }
}

/// An interactive shell in the container (exec with a tty) in xterm.js.
#[component]
fn TerminalTab(name: String, running: Memo<bool>) -> impl IntoView {
    let command = RwSignal::new(String::from("sh"));
    let session = RwSignal::new(0u32);
    view! {
        {move || (!running.get() && session.get() == 0).then(|| view! {
            <div class="state empty"><p>"A terminal opens in a running container. Start it first."</p></div>
        })}
        <form class="toolbar" on:submit=move |e: leptos::ev::SubmitEvent| { e.prevent_default(); session.update(|n| *n += 1); }>
            <label for="exec-command">"Command"</label>
            <input id="exec-command" prop:value=command on:input=move |e| command.set(event_target_value(&e))/>
            <button type="submit" class="button primary" data-test="open-terminal" disabled=move || !running.get()>
                {move || if session.get() == 0 { "Open terminal" } else { "New session" }}
            </button>
        </form>
        // A session stays on screen after it ends (with its message) until a new one starts.
        {move || {
            let n = session.get();
            (n > 0).then(|| {
                let name = name.clone();
                view! { <Terminal name command=command.get_untracked()/> }
            })
        }}
    }
}

#[component]
fn Terminal(name: String, command: String) -> impl IntoView {
    let holder = NodeRef::<html::Div>::new();
    let status = RwSignal::new(String::from("Connecting…"));
    let ended = RwSignal::new(false);
    let keep = StoredValue::new_local(None::<(crate::xterm::Terminal, Socket, Closure<dyn FnMut(String)>)>);
    let words = match crate::forms::split_words(&command) {
        Ok(w) if !w.is_empty() => w,
        _ => vec!["sh".to_owned()],
    };
    let query: String = words.iter().map(|w| format!("cmd={}&", enc(w))).collect();
    let path = format!("/api/v1/containers/{}/exec?{query}tty=1&stdin=1", enc(&name));
    holder.on_load(move |element| {
        if !crate::xterm::available() {
            status.set("The terminal script (xterm.js) did not load.".into());
            return;
        }
        let options = js_sys::Object::new();
        let set = |k: &str, v: JsValue| {
            let _ = js_sys::Reflect::set(&options, &JsValue::from_str(k), &v);
        };
        set("cursorBlink", JsValue::TRUE);
        set("fontSize", JsValue::from_f64(14.0));
        set("fontFamily", JsValue::from_str("ui-monospace, Menlo, Consolas, \"Liberation Mono\", monospace"));
        set("convertEol", JsValue::FALSE);
        let term = match crate::xterm::Terminal::new(&options) {
            Ok(t) => t,
            Err(e) => {
                status.set(format!("Cannot start the terminal: {}", api::js_text(&e)));
                return;
            }
        };
        let element: web_sys::HtmlElement = (*element).clone().unchecked_into();
        term.open(&element);
        let (cols, rows) = fit(&element);
        term.resize(cols, rows);
        let term_out = term.clone().unchecked_into::<crate::xterm::Terminal>();
        let term_end = term.clone().unchecked_into::<crate::xterm::Terminal>();
        let socket = Socket::open(
            &path,
            Some(Box::new(move |ws| {
                status.set("Connected".into());
                let resize = serde_json::to_string(&StreamControl::Resize { cols, rows }).unwrap_or_default();
                let _ = ws.send_with_str(&resize);
            })),
            move |frame| match frame {
                Frame::Binary(bytes) => term_out.write_bytes(&js_sys::Uint8Array::from(bytes.as_slice())),
                Frame::Text(text) => match serde_json::from_str::<StreamControl>(&text) {
                    Ok(StreamControl::Exit { code }) => {
                        ended.set(true);
                        term_out.write_str(&format!("\r\n\x1b[33m[session ended: exit code {code}]\x1b[0m\r\n"));
                        status.set(format!("Session ended (exit code {code}). If the container stopped, the shell ended with it."));
                    }
                    Ok(StreamControl::Error { message }) => {
                        ended.set(true);
                        term_out.write_str(&format!("\r\n\x1b[31m[{message}]\x1b[0m\r\n"));
                        status.set(format!("Session failed: {message}"));
                    }
                    _ => {}
                },
            },
            move |closed| {
                if !ended.get_untracked() {
                    ended.set(true);
                    let why = if closed.code == 1000 { "closed".to_owned() } else { format!("lost (code {})", closed.code) };
                    term_end.write_str(&format!("\r\n\x1b[33m[connection {why}]\x1b[0m\r\n"));
                    status.set(format!("Connection {why}."));
                }
            },
        );
        let socket = match socket {
            Ok(s) => s,
            Err(e) => {
                status.set(format!("Cannot connect: {e}"));
                return;
            }
        };
        // Keystrokes and pastes go to the process as they are.
        let sender = socket_sender(&socket);
        let on_data = Closure::<dyn FnMut(String)>::new(move |data: String| {
            if !ended.get_untracked() {
                sender(data.as_bytes());
            }
        });
        term.on_data(&on_data);
        term.focus();
        keep.set_value(Some((term, socket, on_data)));
    });
    // A new window size gives the terminal a new size, and the process a SIGWINCH.
    let on_resize = window_event_listener(leptos::ev::resize, move |_| {
        let Some(element) = holder.get_untracked() else { return };
        let element: web_sys::HtmlElement = element.unchecked_into();
        let (cols, rows) = fit(&element);
        keep.with_value(|k| {
            if let Some((term, socket, _)) = k {
                if term.cols() != cols || term.rows() != rows {
                    term.resize(cols, rows);
                    socket.send_text(
                        &serde_json::to_string(&StreamControl::Resize { cols, rows }).unwrap_or_default(),
                    );
                }
            }
        });
    });
    on_cleanup(move || on_resize.remove());
    let copy = move |_| {
        keep.with_value(|k| {
            if let Some((term, _, _)) = k {
                if term.has_selection() {
                    copy_to_clipboard(&term.get_selection());
                }
                term.focus();
            }
        })
    };
    view! {
        <div class="terminal-bar">
            <span role="status" data-test="terminal-status">{move || status.get()}</span>
            <button type="button" class="button small" on:click=copy>"Copy selection"</button>
        </div>
        <div class="terminal" node_ref=holder data-test="terminal"></div>
        <p class="hint">"Paste with Ctrl+V (⌘V); select text and use Copy selection to copy."</p>
    }
}

/// A function that sends bytes on `socket`'s WebSocket (the closure keeps its own handle).
fn socket_sender(socket: &Socket) -> impl Fn(&[u8]) {
    let ws = socket.raw();
    move |bytes| {
        let _ = ws.send_with_u8_array(bytes);
    }
}

/// Columns and rows that fill `element` at the terminal's font size (about 8.4 × 17 px a cell).
fn fit(element: &web_sys::HtmlElement) -> (u16, u16) {
    let width = f64::from(element.client_width()).max(320.0);
    let cols = ((width - 16.0) / 8.43).floor().clamp(20.0, 400.0) as u16;
    (cols, 24)
}

/// Writes `text` to the clipboard (navigator.clipboard; quietly nothing where it is absent).
fn copy_to_clipboard(text: &str) {
    let navigator = window().navigator();
    if let Ok(clipboard) = js_sys::Reflect::get(&navigator, &JsValue::from_str("clipboard")) {
        if let Ok(write) = js_sys::Reflect::get(&clipboard, &JsValue::from_str("writeText")) {
            if let Some(write) = write.dyn_ref::<js_sys::Function>() {
                let _ = write.call1(&clipboard, &JsValue::from_str(text));
            }
        }
    }
}
