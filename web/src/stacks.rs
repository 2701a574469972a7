//! Compose stacks: the list, `up` from a pasted compose file with its progress as it streams,
//! one stack's services with their containers and states, stop/start/restart/down, and the
//! stack's logs from every container merged over one WebSocket.

use std::collections::VecDeque;

use berth_types::auth::Role;
use berth_types::{
    ContainerStatus, StackDown, StackInspect, StackLogEntry, StackProgress, StackSummary, StackUp,
};
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_params_map};
use serde::Deserialize;

use crate::api::{self, enc};
use crate::containers::{plural, port_text, HealthBadge, StateBadge};
use crate::pages::{
    field_error, field_invalid, followed, set_title, ErrorPanel, ListStates, LiveBadge, Loading, NoticeLine,
    PageHeader,
};
use crate::ws::{Frame, Socket};

/// Most merged log lines the page keeps.
const MAX_LOG_LINES: usize = 3000;

/// Compose's project name rule (and its wording).
pub fn check_project_name(name: &str) -> Result<(), String> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid project name {name:?}: must consist only of lowercase alphanumeric characters, hyphens, and underscores as well as start with a letter or number"
        ))
    }
}

/// Checks the up form and builds the request (the file itself is checked by the daemon, which
/// answers 400 with Compose's wording before anything starts).
pub fn validate_up(
    name: &str,
    file: &str,
    env: &str,
    dir: &str,
) -> Result<StackUp, Vec<(&'static str, String)>> {
    let mut errors = Vec::new();
    if let Err(e) = check_project_name(name.trim()) {
        errors
            .push(("name", if name.trim().is_empty() { "a project name is required".to_owned() } else { e }));
    }
    if file.trim().is_empty() {
        errors.push(("file", "paste a compose file (compose.yaml)".to_owned()));
    } else if !file.lines().any(|l| l.trim_start().starts_with("services:") || l.starts_with("services")) {
        errors.push(("file", "a compose file has a top-level services: section".to_owned()));
    }
    let dir = dir.trim();
    if !dir.is_empty() && !dir.starts_with('/') {
        errors.push(("dir", format!("{dir:?} is not an absolute path on the node")));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(StackUp {
        compose_file: file.to_owned(),
        env_file: (!env.trim().is_empty()).then(|| env.to_owned()),
        working_dir: if dir.is_empty() { "/".to_owned() } else { dir.to_owned() },
        ..StackUp::default()
    })
}

/// One line of a stack operation's output as Compose prints it: ` ✔ Container app-web-1  Started`.
fn progress_line(p: &StackProgress) -> (bool, String) {
    let failed = p.action == "Error";
    let object = {
        let mut o = p.object.clone();
        if let Some(first) = o.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        o
    };
    // `Error` and `Warning` lines carry their message; the others are a name and what happened.
    let text = if p.message.is_empty() {
        format!("{object} {}  {}", p.name, p.action)
    } else {
        format!("{object} {}  {}: {}", p.name, p.action, p.message)
    };
    (failed, text)
}

/// Runs a streamed stack operation (`POST path` with `body`), appending each progress line to
/// `lines`; returns the first error (a refused request or an `Error` line).
async fn stream_operation(
    path: String,
    body: String,
    team: Option<String>,
    lines: RwSignal<Vec<(bool, String)>>,
) -> Result<(), String> {
    let mut failure = None;
    let body = wasm_bindgen::JsValue::from_str(&body);
    let result =
        api::stream_lines(
            &path,
            &body,
            "application/json",
            team.as_deref(),
            |line| match serde_json::from_str::<StackProgress>(line) {
                Ok(p) => {
                    let (failed, text) = progress_line(&p);
                    if failed && failure.is_none() {
                        failure = Some(if p.message.is_empty() { text.clone() } else { p.message.clone() });
                    }
                    lines.update(|l| l.push((failed, text)));
                }
                Err(_) => lines.update(|l| l.push((true, format!("unreadable progress line: {line}")))),
            },
        )
        .await;
    match (result, failure) {
        (Err(e), _) => Err(e.message()),
        (Ok(()), Some(f)) => Err(f),
        (Ok(()), None) => Ok(()),
    }
}

/// The progress lines of an operation.
#[component]
fn ProgressLog(lines: RwSignal<Vec<(bool, String)>>) -> impl IntoView {
    view! {
        <ol class="build-log stack-progress" aria-live="polite" data-test="stack-progress">
            {move || lines.get().into_iter().map(|(failed, text)| view! {
                <li class=if failed { "error" } else { "" }>{text}</li>
            }).collect_view()}
        </ol>
    }
}

#[component]
pub fn Stacks() -> impl IntoView {
    set_title("Stacks");
    let operator = crate::session().allows(Role::Operator);
    let list = followed::<Vec<StackSummary>>("/api/v1/stacks".into(), &["stack", "container"]);
    let reload = list.reload;
    let upping = RwSignal::new(false);
    view! {
        <PageHeader title="Stacks" on_refresh=reload>
            <LiveBadge live=list.live/>
            {operator.then(|| view! {
                <button type="button" class="button primary" data-test="stack-up" on:click=move |_| upping.set(true)>
                    "Up a stack"
                </button>
            })}
        </PageHeader>
        {move || upping.get().then(|| view! { <UpForm on_close=Callback::new(move |()| upping.set(false))/> })}
        <ListStates
            data=list.data
            what="stacks"
            retry=reload
            empty_heading="No stacks yet"
            empty_text={if operator {
                "Paste a compose file with Up a stack, or run berth compose up on the node."
            } else {
                "Stacks started with berth compose up appear here."
            }}
            table={|stacks: Vec<StackSummary>| {
                let count = stacks.len();
                view! {
                    <p class="summary">{format!("{count} stack{}", plural(count))}</p>
                    <div class="table-wrap" role="region" aria-label="Stacks" tabindex="0">
                        <table class="data stacks">
                            <thead>
                                <tr>
                                    <th scope="col">"Name"</th>
                                    <th scope="col">"Status"</th>
                                    <th scope="col" class="num">"Services"</th>
                                    <th scope="col" class="num">"Containers"</th>
                                    <th scope="col">"Working directory"</th>
                                </tr>
                            </thead>
                            <tbody>
                                {stacks.into_iter().map(|s| view! {
                                    <tr data-name=s.name.clone()>
                                        <td data-label="Name"><a href=format!("/stacks/{}", enc(&s.name))>{s.name.clone()}</a></td>
                                        <td data-label="Status">{s.status.clone()}</td>
                                        <td data-label="Services" class="num">{s.services}</td>
                                        <td data-label="Containers" class="num">{s.containers}</td>
                                        <td data-label="Directory"><code>{s.working_dir.clone()}</code></td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }
            }}
        />
    }
}

/// Name, compose file, optional .env and working directory; then the streamed progress, and the
/// stack's page once it is up.
#[component]
fn UpForm(on_close: Callback<()>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let file = RwSignal::new(String::new());
    let env = RwSignal::new(String::new());
    let dir = RwSignal::new(String::new());
    let team = RwSignal::new(String::new());
    let errors = RwSignal::new(Vec::<(&'static str, String)>::new());
    let lines = RwSignal::new(Vec::<(bool, String)>::new());
    let busy = RwSignal::new(false);
    let navigate = use_navigate();
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let stack = name.get_untracked().trim().to_owned();
        let request =
            match validate_up(&stack, &file.get_untracked(), &env.get_untracked(), &dir.get_untracked()) {
                Ok(r) => r,
                Err(e) => {
                    errors.set(e);
                    return;
                }
            };
        errors.set(Vec::new());
        lines.set(Vec::new());
        busy.set(true);
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            let body = serde_json::to_string(&request).unwrap_or_default();
            let path = format!("/api/v1/stacks/{}/up", enc(&stack));
            let result = stream_operation(path, body, crate::team::picked(team), lines).await;
            busy.set(false);
            match result {
                Ok(()) => navigate(&format!("/stacks/{}", enc(&stack)), Default::default()),
                // A file the daemon refuses is about the file; anything later is shown in the log.
                Err(e) if lines.try_with_untracked(Vec::is_empty).unwrap_or(true) => {
                    errors.set(vec![("file", e)])
                }
                Err(e) => errors.set(vec![("form", e)]),
            }
        });
    };
    let error = move |field| field_error(errors, "stack", field);
    let invalid = move |field| field_invalid(errors, field);
    view! {
        <form class="panel form" on:submit=submit novalidate aria-labelledby="stack-up-heading">
            <h2 id="stack-up-heading">"Up a stack"</h2>
            <div class="grid">
                <div class="field">
                    <label for="stack-name">"Project name"</label>
                    <input id="stack-name" name="name" autofocus placeholder="myapp" autocapitalize="off"
                        aria-invalid=invalid("name") aria-describedby="stack-name-error"
                        prop:value=name on:input=move |e| name.set(event_target_value(&e))/>
                    <p class="hint">"Lowercase letters, digits, - and _"</p>
                    {error("name")}
                </div>
                <div class="field">
                    <label for="stack-dir">"Working directory on the node"</label>
                    <input id="stack-dir" name="working_dir" placeholder="/" autocapitalize="off"
                        aria-invalid=invalid("dir") aria-describedby="stack-dir-error"
                        prop:value=dir on:input=move |e| dir.set(event_target_value(&e))/>
                    <p class="hint">"Relative paths in the file (bind mounts, build contexts) start here"</p>
                    {error("dir")}
                </div>
            </div>
            <crate::team::TeamPicker team id="stack-team"/>
            <div class="field">
                <label for="stack-file">"Compose file"</label>
                <textarea id="stack-file" name="compose_file" rows="12" class="code" spellcheck="false"
                    placeholder="services:\n  web:\n    image: busybox\n    command: httpd -f -p 8080"
                    aria-invalid=invalid("file") aria-describedby="stack-file-error"
                    prop:value=file on:input=move |e| file.set(event_target_value(&e))></textarea>
                {error("file")}
            </div>
            <div class="field">
                <label for="stack-env">".env (optional)"</label>
                <textarea id="stack-env" name="env_file" rows="3" class="code" spellcheck="false" placeholder="TAG=1.2"
                    prop:value=env on:input=move |e| env.set(event_target_value(&e))></textarea>
            </div>
            <ProgressLog lines/>
            {error("form")}
            <div class="form-actions">
                <button type="button" class="button" on:click=move |_| on_close.run(())>"Close"</button>
                <button type="submit" class="button primary" disabled=busy>
                    {move || if busy.get() { "Starting…" } else { "Up" }}
                </button>
            </div>
        </form>
    }
}

#[component]
pub fn StackPage() -> impl IntoView {
    let params = use_params_map();
    let name = move || params.with(|p| p.get("name").unwrap_or_default());
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
                    Err(e) => notice.set(Some((false, e))),
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
    let clock = crate::pages::clock();
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
                <div class="table-wrap" role="region" aria-label="Services" tabindex="0">
                    <table class="data services" data-test="services">
                        <thead>
                            <tr>
                                <th scope="col">"Service"</th>
                                <th scope="col">"Image"</th>
                                <th scope="col">"Container"</th>
                                <th scope="col">"State"</th>
                                <th scope="col">"Status"</th>
                                <th scope="col">"Ports"</th>
                            </tr>
                        </thead>
                        <tbody>
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
                        </tbody>
                    </table>
                </div>
            }
            .into_any()
        }}
    }
}

/// What the stack logs WebSocket sends.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum LogFrame {
    Logs { entries: Vec<StackLogEntry> },
    End { reason: String },
    Error { message: String },
    Dropped { count: u64 },
}

/// The stack's logs from every container, merged in time order by the daemon, each line tagged
/// with its container; search, stderr marked, follow on/off.
#[component]
fn StackLogs(name: String) -> impl IntoView {
    let entries = RwSignal::new(VecDeque::<(u64, StackLogEntry)>::new());
    let seq = StoredValue::new(0u64);
    let follow = RwSignal::new(true);
    let search = RwSignal::new(String::new());
    let status = RwSignal::new(String::from("Connecting…"));
    let socket = StoredValue::new_local(None::<Socket>);
    let services = RwSignal::new(Vec::<String>::new());
    Effect::new(move |_| {
        let follow = follow.get();
        socket.set_value(None);
        entries.set(VecDeque::new());
        status.set("Connecting…".into());
        let path = format!(
            "/api/v1/ws/stacks/{}/logs?tail=200{}",
            enc(&name),
            if follow { "&follow=1" } else { "" }
        );
        let opened = Socket::open(
            &path,
            Some(Box::new(move |_| {
                status.set(if follow { "Following".into() } else { "Showing the last lines".into() })
            })),
            move |frame| {
                let Frame::Text(text) = frame else { return };
                match serde_json::from_str::<LogFrame>(&text) {
                    Ok(LogFrame::Logs { entries: batch }) => {
                        services.update(|s| {
                            for e in &batch {
                                if !s.contains(&e.service) {
                                    s.push(e.service.clone());
                                }
                            }
                        });
                        entries.update(|list| {
                            for e in batch {
                                let n = seq.try_get_value().unwrap_or(0);
                                seq.try_set_value(n + 1);
                                list.push_back((n, e));
                            }
                            while list.len() > MAX_LOG_LINES {
                                list.pop_front();
                            }
                        });
                    }
                    Ok(LogFrame::End { reason }) => status.set(format!("Ended: {reason}")),
                    Ok(LogFrame::Error { message }) => status.set(format!("Failed: {message}")),
                    Ok(LogFrame::Dropped { count }) => status.set(format!("{count} lines were skipped")),
                    Err(_) => {}
                }
            },
            move |closed| {
                if closed.code != 1000 {
                    let why = if closed.reason.is_empty() {
                        format!("code {}", closed.code)
                    } else {
                        closed.reason
                    };
                    status.set(format!("Disconnected ({why})"));
                }
            },
        );
        match opened {
            Ok(s) => socket.set_value(Some(s)),
            Err(e) => status.set(format!("Failed: {e}")),
        }
    });
    let shown = Memo::new(move |_| {
        let needle = search.get().to_lowercase();
        entries.with(|list| {
            list.iter()
                .filter(|(_, e)| {
                    needle.is_empty()
                        || e.line.to_lowercase().contains(&needle)
                        || e.container.contains(&needle)
                })
                .cloned()
                .collect::<Vec<_>>()
        })
    });
    view! {
        <section class="panel" aria-labelledby="stack-logs-heading">
            <div class="panel-head">
                <h2 id="stack-logs-heading">"Logs"</h2>
                <span class="muted" role="status" data-test="stack-log-status">{move || status.get()}</span>
            </div>
            <div class="toolbar">
                <label class="visually-hidden" for="stack-log-search">"Search the logs"</label>
                <input id="stack-log-search" type="search" placeholder="Search" prop:value=search on:input=move |e| search.set(event_target_value(&e))/>
                <label class="check-label">
                    <input type="checkbox" prop:checked=follow on:change=move |e| follow.set(event_target_checked(&e))/>
                    "Follow"
                </label>
            </div>
            <div class="log-wrap" role="log" aria-label="Stack logs" tabindex="0">
                <pre class="log" data-test="stack-log">
                    <For
                        each=move || shown.get()
                        key=|(n, _)| *n
                        children=move |(_, e)| {
                            let colour = services.with_untracked(|s| s.iter().position(|x| *x == e.service).unwrap_or(0) % 6);
                            let class = if e.stream == "stderr" { "log-line stderr" } else { "log-line" };
                            view! {
                                <span class=class>
                                    <span class=format!("log-source c{colour}")>{format!("{} |", e.container)}</span>
                                    <span>{e.line.trim_end_matches('\n').to_owned()}</span>
                                </span>
                            }
                        }
                    />
                </pre>
                {move || entries.with(VecDeque::is_empty).then(|| view! { <p class="log-empty muted">"No log lines yet."</p> })}
            </div>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_and_the_up_form() {
        assert!(check_project_name("my-app_2").is_ok());
        assert!(check_project_name("MyApp").unwrap_err().contains("lowercase"));
        assert!(check_project_name("-x").is_err());
        let up = validate_up("app", "services:\n  web:\n    image: busybox\n", "", "").unwrap();
        assert_eq!(up.working_dir, "/");
        assert_eq!(up.env_file, None);
        let e = validate_up("", "", "", "rel").unwrap_err();
        assert_eq!(e.iter().map(|(f, _)| *f).collect::<Vec<_>>(), ["name", "file", "dir"]);
        assert!(validate_up("a", "version: '3'\n", "", "").unwrap_err()[0].1.contains("services"));
    }

    #[test]
    fn progress_as_compose_prints_it() {
        let p = StackProgress {
            object: "container".into(),
            name: "app-web-1".into(),
            action: "Started".into(),
            message: String::new(),
        };
        assert_eq!(progress_line(&p), (false, "Container app-web-1  Started".to_owned()));
        let e = StackProgress { action: "Error".into(), message: "port is already allocated".into(), ..p };
        assert_eq!(
            progress_line(&e),
            (true, "Container app-web-1  Error: port is already allocated".to_owned())
        );
    }
}
