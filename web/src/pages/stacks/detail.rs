//! One stack (/stacks/:name): its services and containers, start/stop/restart/down, its logs.

use berth_types::auth::Role;
use berth_types::{ContainerStatus, StackDown, StackInspect};
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use super::logs::StackLogs;
use super::progress::{stream_operation, ProgressLog};
use crate::client::api::enc;
use crate::client::live::{clock, followed};
use crate::components::{
    set_title, ErrorPanel, HealthBadge, LiveBadge, Loading, NoticeLine, StateBadge, Table,
};
use crate::format::port_text;
use crate::pages::route_name;

#[component]
pub fn StackPage() -> impl IntoView {
    let name = route_name();
    view! { {move || { let name = name(); view! { <StackView name/> } }} }
}

#[component]
fn StackView(name: String) -> impl IntoView {
    set_title(&name);
    let operator = crate::session().allows(Role::Operator);
    let stack = followed::<StackInspect>(format!("/api/v1/stacks/{}", enc(&name)), &["stack", "container"]);
    let reload = stack.reload;
    let lines = RwSignal::new(Vec::<(bool, String)>::new());
    let busy = RwSignal::new(false);
    let notice = RwSignal::new(None::<(bool, String)>);
    let remove_volumes = RwSignal::new(false);
    let navigate = use_navigate();
    let run = {
        let name = name.clone();
        move |operation: &'static str| {
            let (path, body) = match operation {
                "down" => {
                    let question = if remove_volumes.get_untracked() {
                        format!("Stop and remove every container, network and volume of {name}? Volume data is lost.")
                    } else {
                        format!("Stop and remove every container and network of {name}? Its volumes stay.")
                    };
                    if !window().confirm_with_message(&question).unwrap_or(false) {
                        return;
                    }
                    let down = StackDown { volumes: remove_volumes.get_untracked(), ..StackDown::default() };
                    (
                        format!("/api/v1/stacks/{}/down", enc(&name)),
                        serde_json::to_string(&down).unwrap_or_default(),
                    )
                }
                other => (format!("/api/v1/stacks/{}/{other}", enc(&name)), String::new()),
            };
            lines.set(Vec::new());
            notice.set(None);
            busy.set(true);
            let navigate = navigate.clone();
            leptos::task::spawn_local(async move {
                let result = stream_operation(path, body, None, lines).await;
                busy.set(false);
                match result {
                    Ok(()) if operation == "down" => navigate("/stacks", Default::default()),
                    Ok(()) => notice.set(Some((true, format!("{operation}: done")))),
                    Err(failed) => notice.set(Some((false, failed.message))),
                }
                reload.try_run(());
            });
        }
    };
    let stack_name = name.clone();
    view! {
        <nav class="breadcrumb" aria-label="Breadcrumb"><a href="/stacks">"Stacks"</a>" / "</nav>
        <div class="page-header">
            <h1>{name.clone()}</h1>
            <div class="page-actions">
                <LiveBadge live=stack.live/>
                {operator.then(|| {
                    let button = |operation: &'static str, label: &'static str, class: &'static str| {
                        let run = run.clone();
                        view! {
                            <button type="button" class=class disabled=busy on:click=move |_| run(operation)>{label}</button>
                        }
                    };
                    view! {
                        {button("start", "Start", "button")}
                        {button("stop", "Stop", "button")}
                        {button("restart", "Restart", "button")}
                        <label class="check-label inline">
                            <input type="checkbox" prop:checked=remove_volumes on:change=move |e| remove_volumes.set(event_target_checked(&e))/>
                            "with volumes"
                        </label>
                        {button("down", "Down", "button danger")}
                    }
                })}
                <button type="button" class="button" on:click=move |_| reload.run(())>"Refresh"</button>
            </div>
        </div>
        <NoticeLine notice/>
        {move || (!lines.with(Vec::is_empty)).then(|| view! { <ProgressLog lines/> })}
        {move || match stack.data.get() {
            None => view! { <Loading what="the stack"/> }.into_any(),
            Some(Err(error)) => view! { <ErrorPanel error retry=reload/> }.into_any(),
            Some(Ok(s)) => view! { <Services stack=s/> }.into_any(),
        }}
        {if operator {
            view! { <StackLogs name=stack_name/> }.into_any()
        } else {
            view! { <p class="muted">"Logs are shown to operators and admins."</p> }.into_any()
        }}
    }
}

#[component]
fn Services(stack: StackInspect) -> impl IntoView {
    let clock = clock();
    view! {
        <dl class="facts panel">
            <dt>"Working directory"</dt><dd><code>{stack.working_dir.clone()}</code></dd>
            <dt>"Networks"</dt>
            <dd>
                {if stack.networks.is_empty() { view! { <span class="muted">"none"</span> }.into_any() } else {
                    stack.networks.iter().map(|n| view! { <a href=format!("/networks/{}", enc(n))>{n.clone()}</a>" " }).collect_view().into_any()
                }}
            </dd>
            <dt>"Volumes"</dt>
            <dd>
                {if stack.volumes.is_empty() { view! { <span class="muted">"none"</span> }.into_any() } else {
                    stack.volumes.iter().map(|v| view! { <a href=format!("/volumes/{}", enc(v))>{v.clone()}</a>" " }).collect_view().into_any()
                }}
            </dd>
        </dl>
        {if stack.services.is_empty() {
            view! { <div class="state empty"><p>"This stack has no services left."</p></div> }.into_any()
        } else {
            view! {
                <Table label="Services" class="services" test="services" columns=["Service", "Image", "Container", "State", "Status", "Ports"]>
                    {stack.services.into_iter().flat_map(|service| {
                        let replicas = format!("{}/{}", service.containers.iter().filter(|c| c.state.status == ContainerStatus::Running).count(), service.replicas);
                        let rows = if service.containers.is_empty() { vec![None] } else { service.containers.into_iter().map(Some).collect() };
                        let service_name = service.name.clone();
                        let image = service.image.clone();
                        rows.into_iter().enumerate().map(move |(i, c)| {
                            let head = (i == 0).then(|| view! {
                                <strong>{service_name.clone()}</strong>
                                <span class="muted">{format!(" {replicas} running")}</span>
                            });
                            match c {
                                None => view! {
                                    <tr>
                                        <td data-label="Service">{head}</td>
                                        <td data-label="Image" class="repo">{image.clone()}</td>
                                        <td data-label="Container" colspan="4" class="muted">"no container"</td>
                                    </tr>
                                }.into_any(),
                                Some(c) => {
                                    let status = c.state.status;
                                    let state = c.state.clone();
                                    view! {
                                        <tr data-name=c.name.clone()>
                                            <td data-label="Service">{head}</td>
                                            <td data-label="Image" class="repo">{(i == 0).then(|| image.clone())}</td>
                                            <td data-label="Container"><a href=format!("/containers/{}", enc(&c.name))>{c.name.clone()}</a></td>
                                            <td data-label="State">
                                                <StateBadge status/>
                                                {c.state.health.as_ref().filter(|_| status == ContainerStatus::Running).map(|h| view! { " " <HealthBadge status=h.status/> })}
                                            </td>
                                            <td data-label="Status">{move || state.human_status(clock.get())}</td>
                                            <td data-label="Ports">{c.ports.iter().map(port_text).collect::<Vec<_>>().join(", ")}</td>
                                        </tr>
                                    }.into_any()
                                }
                            }
                        }).collect::<Vec<_>>()
                    }).collect_view()}
                </Table>
            }
            .into_any()
        }}
    }
}
