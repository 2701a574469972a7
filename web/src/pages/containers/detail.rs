//! One container (/containers/:name): its details and actions, and the logs, stats and terminal tabs.

use berth_types::auth::Role;
use berth_types::{ContainerInspect, ContainerStatus};
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use super::actions::{run_action, Action};
use super::logs::Logs;
use super::stats::Stats;
use super::terminal::TerminalTab;
use crate::client::api::{self, enc, ApiError};
use crate::client::live::{clock, event_feed};
use crate::components::{set_title, ErrorPanel, HealthBadge, LiveBadge, Loading, StateBadge, Table};
use crate::format::{self, human_size, port_text};
use crate::pages::route_name;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tab {
    Logs,
    Stats,
    Terminal,
    Inspect,
}

/// The tab a link asks for (`?tab=`), if the user may see it; else Logs (operators) or Stats.
fn first_tab(asked: Option<&str>, operator: bool) -> Tab {
    match asked {
        Some("logs") if operator => Tab::Logs,
        Some("terminal") if operator => Tab::Terminal,
        Some("stats") => Tab::Stats,
        Some("details") => Tab::Inspect,
        _ if operator => Tab::Logs,
        _ => Tab::Stats,
    }
}

#[component]
pub fn ContainerPage() -> impl IntoView {
    let name = route_name();
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
    // `?tab=logs|stats|terminal|details` opens that tab (the Pods page links to logs and exec).
    let asked = leptos_router::hooks::use_query_map().with_untracked(|q| q.get("tab"));
    let tab = RwSignal::new(first_tab(asked.as_deref(), operator));
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
                let privileged = c.config.privileged;
                view! {
                    <div class="page-header">
                        <h1>
                            {c.name.trim_start_matches('/').to_owned()} " " <StateBadge status/>
                            {privileged.then(|| view! {
                                " " <span class="badge warning" title="every capability, the host's devices, no seccomp filter">"privileged"</span>
                            })}
                        </h1>
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
                        <Table label="Last health probes" class="probes" columns=["Started", "Took", "Result", "Output"] numeric=&["Took"]>
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
                        </Table>
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
            <Table label="Networks" test="networks" columns=["Network", "Address", "Gateway", "MAC", "Aliases"]>
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
            </Table>
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
            <Table label="Mounts" test="mounts" columns=["Type", "Source", "Path in the container", "Mode"]>
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
            </Table>
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_opens_the_tab_it_asks_for_if_the_user_may_see_it() {
        assert_eq!(first_tab(Some("terminal"), true), Tab::Terminal);
        assert_eq!(first_tab(Some("logs"), true), Tab::Logs);
        assert_eq!(first_tab(Some("terminal"), false), Tab::Stats);
        assert_eq!(first_tab(Some("details"), false), Tab::Inspect);
        assert_eq!(first_tab(None, true), Tab::Logs);
        assert_eq!(first_tab(Some("bogus"), false), Tab::Stats);
    }
}
