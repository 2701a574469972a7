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
        <SecurityPanel config=c.config.clone()/>
        <HealthPanel c=c.clone()/>
        <NetworkPanel c=c.clone()/>
        <MountsPanel mounts=c.mounts.clone()/>
    }
}

/// The security options as `docker inspect` would let one read them, one fact a row; Docker's
/// default where the container asked for none.
pub fn security_facts(config: &berth_types::ContainerConfig) -> Vec<(&'static str, String)> {
    let opts = berth_types::security::parse_security_opts(&config.security_opt).unwrap_or_default();
    let words = |items: &[String], none: &str| {
        if items.is_empty() {
            none.to_owned()
        } else {
            items.join(", ")
        }
    };
    let seccomp = if config.privileged {
        "none (privileged)".to_owned()
    } else {
        match opts.seccomp.as_deref() {
            None | Some("") | Some("builtin") => "Docker's default profile".to_owned(),
            Some("unconfined") => "none (unconfined)".to_owned(),
            Some(json) => {
                let action = serde_json::from_str::<serde_json::Value>(json)
                    .ok()
                    .and_then(|v| v.get("defaultAction").and_then(|a| a.as_str().map(str::to_owned)));
                match action {
                    Some(action) => format!("a profile of its own (default action {action})"),
                    None => "a profile of its own".to_owned(),
                }
            }
        }
    };
    let capabilities = if config.privileged {
        "all (privileged)".to_owned()
    } else {
        let mut parts = Vec::new();
        if !config.cap_add.is_empty() {
            parts.push(format!("added {}", config.cap_add.join(", ")));
        }
        if !config.cap_drop.is_empty() {
            parts.push(format!("dropped {}", config.cap_drop.join(", ")));
        }
        if parts.is_empty() {
            "Docker's default 14".to_owned()
        } else {
            parts.join("; ")
        }
    };
    let devices: Vec<String> = config
        .devices
        .iter()
        .map(|d| format!("{}:{}:{}", d.path_on_host, d.path_in_container, d.cgroup_permissions))
        .collect();
    let ulimits: Vec<String> =
        config.ulimits.iter().map(|u| format!("{}={}:{}", u.name, u.soft, u.hard)).collect();
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_owned();
    vec![
        ("Privileged", yes_no(config.privileged)),
        ("Capabilities", capabilities),
        ("Seccomp", seccomp),
        ("No new privileges", yes_no(opts.no_new_privileges)),
        ("Read-only root", yes_no(config.read_only)),
        (
            "User namespace",
            match config.userns_mode.as_deref() {
                Some("host") => "the host's (--userns=host)".to_owned(),
                _ => "the daemon's (remapped under --userns-remap)".to_owned(),
            },
        ),
        ("Devices", words(&devices, if config.privileged { "all of the host's" } else { "none" })),
        ("Ulimits", words(&ulimits, "the daemon's")),
    ]
}

/// Privileges, capabilities, seccomp and the other security options.
#[component]
fn SecurityPanel(config: berth_types::ContainerConfig) -> impl IntoView {
    let facts = security_facts(&config);
    view! {
        <section class="panel" aria-labelledby="security-heading">
            <h2 id="security-heading">"Security"</h2>
            <dl class="facts" data-test="security">
                {facts
                    .into_iter()
                    .map(|(name, value)| {
                        let warn = (name == "Privileged" && config.privileged)
                            || (name == "Seccomp" && value.starts_with("none"));
                        view! {
                            <dt>{name}</dt>
                            <dd>
                                {value}
                                {warn.then(|| view! { " " <span class="badge warning">"less isolated"</span> })}
                            </dd>
                        }
                    })
                    .collect_view()}
            </dl>
        </section>
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
    use berth_types::security::{parse_device, parse_ulimit};
    use berth_types::ContainerConfig;

    fn fact(config: &ContainerConfig, name: &str) -> String {
        security_facts(config).into_iter().find(|(n, _)| *n == name).unwrap().1
    }

    #[test]
    fn docker_defaults_when_nothing_was_asked() {
        let c = ContainerConfig { image: "busybox".into(), ..ContainerConfig::default() };
        let facts = security_facts(&c);
        let names: Vec<&str> = facts.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "Privileged",
                "Capabilities",
                "Seccomp",
                "No new privileges",
                "Read-only root",
                "User namespace",
                "Devices",
                "Ulimits"
            ]
        );
        assert_eq!(fact(&c, "Privileged"), "no");
        assert_eq!(fact(&c, "Capabilities"), "Docker's default 14");
        assert_eq!(fact(&c, "Seccomp"), "Docker's default profile");
        assert_eq!(fact(&c, "No new privileges"), "no");
        assert_eq!(fact(&c, "User namespace"), "the daemon's (remapped under --userns-remap)");
    }

    #[test]
    fn every_option_is_shown() {
        let c = ContainerConfig {
            cap_add: vec!["NET_ADMIN".into()],
            cap_drop: vec!["ALL".into()],
            security_opt: vec![
                "no-new-privileges".into(),
                r#"seccomp={"defaultAction":"SCMP_ACT_ERRNO","syscalls":[]}"#.into(),
            ],
            read_only: true,
            userns_mode: Some("host".into()),
            devices: vec![parse_device("/dev/fuse").unwrap()],
            ulimits: vec![parse_ulimit("nofile=10:20").unwrap()],
            ..ContainerConfig::default()
        };
        assert_eq!(fact(&c, "Capabilities"), "added NET_ADMIN; dropped ALL");
        assert_eq!(fact(&c, "Seccomp"), "a profile of its own (default action SCMP_ACT_ERRNO)");
        assert_eq!(fact(&c, "No new privileges"), "yes");
        assert_eq!(fact(&c, "Read-only root"), "yes");
        assert_eq!(fact(&c, "User namespace"), "the host's (--userns=host)");
        assert_eq!(fact(&c, "Devices"), "/dev/fuse:/dev/fuse:rwm");
        assert_eq!(fact(&c, "Ulimits"), "nofile=10:20");
        let unconfined = ContainerConfig {
            security_opt: vec!["seccomp=unconfined".into(), "no-new-privileges=false".into()],
            ..ContainerConfig::default()
        };
        assert_eq!(fact(&unconfined, "Seccomp"), "none (unconfined)");
        assert_eq!(fact(&unconfined, "No new privileges"), "no");
    }

    #[test]
    fn privileged_overrides_capabilities_seccomp_and_devices() {
        let c = ContainerConfig {
            privileged: true,
            cap_drop: vec!["NET_RAW".into()],
            userns_mode: Some("host".into()),
            ..ContainerConfig::default()
        };
        assert_eq!(fact(&c, "Privileged"), "yes");
        assert_eq!(fact(&c, "Capabilities"), "all (privileged)");
        assert_eq!(fact(&c, "Seccomp"), "none (privileged)");
        assert_eq!(fact(&c, "Devices"), "all of the host's");
    }

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
