//! The containers page: every container with its state, image, uptime and live CPU/memory;
//! search and a state filter; start/stop/restart/kill/pause/remove on several at once. The list
//! follows the daemon's event feed (a container event reloads it), never a timer.

use std::collections::BTreeSet;

use berth_types::auth::Role;
use berth_types::stream::StreamMessage;
use berth_types::{ContainerStats, ContainerStatus, ContainerSummary};
use leptos::prelude::*;

use super::actions::{run_action, Action};
use crate::client::api::{self, enc, ApiError};
use crate::client::live::{clock, event_feed};
use crate::client::ws::{Frame, Socket};
use crate::components::{set_title, ErrorPanel, HealthBadge, LiveBadge, Loading, PageHeader, StateBadge};
use crate::format::{self, human_size, plural, port_text};

/// Live CPU/memory columns open one stats stream per running container; above this many
/// running containers the columns stay empty rather than open hundreds of sockets.
const LIVE_STATS_LIMIT: usize = 24;

/// Whether a container matches the search text (name, image, ID prefix or command) and state.
pub fn matches(c: &ContainerSummary, search: &str, state: &str) -> bool {
    let search = search.trim().to_lowercase();
    let state_ok = state.is_empty() || c.state.status.as_str() == state;
    state_ok
        && (search.is_empty()
            || c.name.to_lowercase().contains(&search)
            || c.image.to_lowercase().contains(&search)
            || c.id.starts_with(&search)
            || c.command.to_lowercase().contains(&search))
}

#[component]
pub fn Containers() -> impl IntoView {
    set_title("Containers");
    let session = crate::session();
    let operator = session.allows(Role::Operator);
    let list = RwSignal::new(None::<Result<Vec<ContainerSummary>, ApiError>>);
    // Reloads are serialised: an event during a reload asks for one more afterwards.
    let loading = StoredValue::new(false);
    let again = StoredValue::new(false);
    // The page may be left while a request is out: the `try_` forms find the values gone then.
    let reload = move || {
        if loading.try_get_value().unwrap_or(true) {
            again.try_set_value(true);
            return;
        }
        loading.try_set_value(true);
        leptos::task::spawn_local(async move {
            loop {
                let result = api::get::<Vec<ContainerSummary>>("/api/v1/containers?all=1").await;
                if list.try_set(Some(result)).is_some() || !again.try_get_value().unwrap_or(false) {
                    break;
                }
                again.try_set_value(false);
            }
            loading.try_set_value(false);
        });
    };
    reload();
    let live = event_feed(move |event| {
        if event.event_type == "container" {
            reload();
        }
    });
    provide_context(clock());
    let search = RwSignal::new(String::new());
    let state_filter = RwSignal::new(String::new());
    let selected = RwSignal::new(BTreeSet::<String>::new());
    let busy = RwSignal::new(false);
    let notice = RwSignal::new(None::<(bool, String)>);
    let shown = Memo::new(move |_| {
        list.with(|l| match l {
            Some(Ok(all)) => all
                .iter()
                .filter(|c| search.with(|s| state_filter.with(|st| matches(c, s, st))))
                .cloned()
                .collect::<Vec<_>>(),
            _ => Vec::new(),
        })
    });
    let live_stats = Memo::new(move |_| {
        list.with(|l| match l {
            Some(Ok(all)) => {
                all.iter().filter(|c| c.state.status == ContainerStatus::Running).count() <= LIVE_STATS_LIMIT
            }
            _ => false,
        })
    });
    let bulk = move |action: Action| {
        let targets: Vec<(String, String)> = list.with_untracked(|l| match l {
            Some(Ok(all)) => selected.with_untracked(|sel| {
                all.iter().filter(|c| sel.contains(&c.id)).map(|c| (c.id.clone(), c.name.clone())).collect()
            }),
            _ => Vec::new(),
        });
        if targets.is_empty() {
            return;
        }
        if action == Action::Remove {
            let names: Vec<&str> = targets.iter().map(|(_, n)| n.as_str()).collect();
            let question = format!("Remove {}? Running ones are killed first.", names.join(", "));
            if !window().confirm_with_message(&question).unwrap_or(false) {
                return;
            }
        }
        busy.set(true);
        leptos::task::spawn_local(async move {
            let count = targets.len();
            let failures = run_action(action, targets).await;
            busy.set(false);
            selected.set(BTreeSet::new());
            notice.set(Some(if failures.is_empty() {
                (true, format!("{}: done for {count} container{}", action.label(), plural(count)))
            } else {
                (false, failures.join("; "))
            }));
            reload();
        });
    };
    view! {
        <PageHeader title="Containers" on_refresh=Callback::new(move |()| reload())>
            <LiveBadge live/>
            {operator.then(|| view! {
                <a class="button primary" href="/run" data-test="run-button">"Run a container"</a>
            })}
        </PageHeader>
        <div class="toolbar" role="search">
            <label class="visually-hidden" for="container-search">"Search containers"</label>
            <input
                id="container-search"
                type="search"
                placeholder="Search name, image, ID, command"
                prop:value=search
                on:input=move |e| search.set(event_target_value(&e))
            />
            <label class="visually-hidden" for="container-state">"State"</label>
            <select id="container-state" on:change=move |e| state_filter.set(event_target_value(&e))>
                <option value="">"All states"</option>
                {["running", "paused", "restarting", "created", "exited", "dead"]
                    .into_iter()
                    .map(|s| view! { <option value=s>{s}</option> })
                    .collect_view()}
            </select>
            {operator.then(|| view! {
                <div class="bulk" role="group" aria-label="Act on the selected containers">
                    <span class="muted">
                        {move || format!("{} selected", selected.with(BTreeSet::len))}
                    </span>
                    {Action::ALL
                        .into_iter()
                        .map(|action| {
                            let class = if action == Action::Remove { "button small danger" } else { "button small" };
                            view! {
                                <button
                                    type="button"
                                    class=class
                                    disabled=move || busy.get() || selected.with(BTreeSet::is_empty)
                                    on:click=move |_| bulk(action)
                                >
                                    {action.label()}
                                </button>
                            }
                        })
                        .collect_view()}
                </div>
            })}
        </div>
        {move || notice.get().map(|(ok, text)| {
            view! {
                <p class=if ok { "notice ok" } else { "notice failed" } role="status">{text}</p>
            }
        })}
        {move || match list.get() {
            None => view! { <Loading what="containers"/> }.into_any(),
            Some(Err(error)) => view! { <ErrorPanel error retry=Callback::new(move |()| reload())/> }.into_any(),
            Some(Ok(all)) if all.is_empty() => view! {
                <div class="state empty">
                    <h2>"No containers yet"</h2>
                    <p>
                        {if operator {
                            view! { <a href="/run">"Run a container"</a> " from an image to see it here." }.into_any()
                        } else {
                            "Containers your teams run appear here.".into_any()
                        }}
                    </p>
                </div>
            }
            .into_any(),
            Some(Ok(_)) => view! {
                <ContainerTable shown selected operator live_stats/>
            }
            .into_any(),
        }}
    }
}

#[component]
fn ContainerTable(
    shown: Memo<Vec<ContainerSummary>>,
    selected: RwSignal<BTreeSet<String>>,
    operator: bool,
    live_stats: Memo<bool>,
) -> impl IntoView {
    let all_selected =
        move || shown.with(|s| !s.is_empty() && selected.with(|sel| s.iter().all(|c| sel.contains(&c.id))));
    let toggle_all = move |_| {
        let ids: Vec<String> = shown.with_untracked(|s| s.iter().map(|c| c.id.clone()).collect());
        if all_selected() {
            selected.update(|sel| {
                ids.iter().for_each(|id| {
                    sel.remove(id);
                })
            });
        } else {
            selected.update(|sel| sel.extend(ids));
        }
    };
    view! {
        <p class="summary">{move || shown.with(|s| format!("{} container{}", s.len(), plural(s.len())))}</p>
        <div class="table-wrap" role="region" aria-label="Containers" tabindex="0">
            <table class="data containers">
                <thead>
                    <tr>
                        {operator.then(|| view! {
                            <th scope="col" class="check">
                                <input
                                    type="checkbox"
                                    aria-label="Select all shown containers"
                                    prop:checked=all_selected
                                    on:change=toggle_all
                                />
                            </th>
                        })}
                        <th scope="col">"Name"</th>
                        <th scope="col">"State"</th>
                        <th scope="col">"Image"</th>
                        <th scope="col">"Command"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col">"Ports"</th>
                        <th scope="col" class="num">"CPU"</th>
                        <th scope="col" class="num">"Memory"</th>
                    </tr>
                </thead>
                <tbody>
                    <For
                        each=move || shown.get()
                        key=|c| (c.id.clone(), c.status.clone(), c.name.clone())
                        children=move |c| view! { <ContainerRow c selected operator live_stats/> }
                    />
                </tbody>
            </table>
        </div>
        {move || shown.with(Vec::is_empty).then(|| view! {
            <p class="state empty">"No container matches the search."</p>
        })}
    }
}

#[component]
fn ContainerRow(
    c: ContainerSummary,
    selected: RwSignal<BTreeSet<String>>,
    operator: bool,
    live_stats: Memo<bool>,
) -> impl IntoView {
    let id = c.id.clone();
    let id2 = c.id.clone();
    let status = c.state.status;
    let stats = RwSignal::new(None::<ContainerStats>);
    if status == ContainerStatus::Running && live_stats.get_untracked() {
        let socket = Socket::open(
            &format!("/api/v1/ws/containers/{}/stats", enc(&c.id)),
            None,
            move |frame| {
                if let Frame::Text(text) = frame {
                    if let Ok(StreamMessage::Stats { stats: s }) = serde_json::from_str(&text) {
                        stats.set(Some(s));
                    }
                }
            },
            |_| {},
        );
        StoredValue::new_local(socket.ok());
    }
    let clock = expect_context::<Signal<chrono::DateTime<chrono::Utc>>>();
    let href = format!("/containers/{}", enc(&c.name));
    let created = c.created.clone();
    view! {
        <tr data-name=c.name.clone() class=move || if selected.with(|s| s.contains(&id2)) { "selected" } else { "" }>
            {operator.then(|| {
                let id = id.clone();
                let id3 = id.clone();
                view! {
                    <td class="check">
                        <input
                            type="checkbox"
                            aria-label=format!("Select {}", c.name)
                            prop:checked=move || selected.with(|s| s.contains(&id))
                            on:change=move |_| selected.update(|s| {
                                if !s.remove(&id3) {
                                    s.insert(id3.clone());
                                }
                            })
                        />
                    </td>
                }
            })}
            <td data-label="Name">
                <a href=href>{c.name.clone()}</a>
                <code class="id muted" title=c.id.clone()>{format::short_id(&c.id).to_owned()}</code>
            </td>
            <td data-label="State">
                <StateBadge status/>
                {c.state.health.as_ref().filter(|_| status == ContainerStatus::Running).map(|h| view! { " " <HealthBadge status=h.status/> })}
            </td>
            <td data-label="Image" class="repo">{c.image.clone()}</td>
            <td data-label="Command">
                <code class="command" title=c.command.clone()>{c.command.clone()}</code>
            </td>
            <td data-label="Status" title=created>
                {
                    let state = c.state.clone();
                    move || state.human_status(clock.get())
                }
            </td>
            <td data-label="Ports" class="ports">
                {if c.ports.is_empty() {
                    view! { <span class="muted">"—"</span> }.into_any()
                } else {
                    view! {
                        <ul class="plain">
                            {c.ports.iter().map(|p| view! { <li><code>{port_text(p)}</code></li> }).collect_view()}
                        </ul>
                    }
                    .into_any()
                }}
            </td>
            <td data-label="CPU" class="num">
                {move || stats.get().map(|s| format!("{:.1}%", s.cpu_percent)).unwrap_or_else(|| "—".into())}
            </td>
            <td data-label="Memory" class="num">
                {move || stats.get().map(|s| human_size(s.memory_in_use())).unwrap_or_else(|| "—".into())}
            </td>
        </tr>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_types::ContainerState;

    fn container(name: &str, image: &str, status: ContainerStatus) -> ContainerSummary {
        ContainerSummary {
            id: format!("{name:a<64}"),
            name: name.into(),
            image: image.into(),
            command: "sh -c 'sleep 1'".into(),
            state: ContainerState { status, ..Default::default() },
            ..Default::default()
        }
    }

    #[test]
    fn search_and_state_filter() {
        let web = container("web", "nginx", ContainerStatus::Running);
        assert!(matches(&web, "", ""));
        assert!(matches(&web, "WE", "running"));
        assert!(matches(&web, "ngin", ""));
        assert!(matches(&web, "sleep", ""));
        assert!(!matches(&web, "db", ""));
        assert!(!matches(&web, "", "exited"));
    }
}
