//! The overview (/): the node's load, what berth stores, the running containers and the latest
//! events, kept current by the event feed.

use berth_types::stream::StreamMessage;
use berth_types::{ContainerStatus, ContainerSummary, Event, NodeStats, SystemInfo};
use leptos::prelude::*;

use crate::client::api::{self, ApiError};
use crate::client::live::{event_feed, now};
use crate::client::ws::{Frame, Socket};
use crate::components::{set_title, ErrorPanel, LiveBadge, Loading, Meter, PageHeader};
use crate::format::{self, bytes_title, human_size};

/// `GET /api/v1/info`, the containers and the latest events, kept current by the event feed.
#[component]
pub fn Overview() -> impl IntoView {
    set_title("Overview");
    let info = LocalResource::new(|| api::get::<SystemInfo>("/api/v1/info"));
    let containers = LocalResource::new(|| api::get::<Vec<ContainerSummary>>("/api/v1/containers?all=1"));
    let events = RwSignal::new(Vec::<Event>::new());
    let events_error = RwSignal::new(None::<ApiError>);
    leptos::task::spawn_local(async move {
        match api::get::<Vec<Event>>("/api/v1/events?limit=10").await {
            // Merge: events may already have arrived over the socket.
            Ok(list) => events.update(|e| {
                e.extend(list);
                e.sort_by_key(|x| std::cmp::Reverse(x.id));
                e.dedup_by_key(|x| x.id);
                e.truncate(10);
            }),
            Err(e) => events_error.set(Some(e)),
        }
    });
    let live = event_feed(move |event| {
        let refresh = event.event_type == "container";
        events.update(|e| {
            e.insert(0, event);
            e.truncate(10);
        });
        if refresh {
            containers.refetch();
        }
    });
    let refresh = Callback::new(move |()| {
        info.refetch();
        containers.refetch();
    });
    view! {
        <PageHeader title="Overview" on_refresh=refresh>
            <LiveBadge live/>
        </PageHeader>
        <NodeCards/>
        {move || match (info.get(), containers.get()) {
            (Some(Err(error)), _) | (_, Some(Err(error))) => {
                view! { <ErrorPanel error retry=refresh/> }.into_any()
            }
            (Some(Ok(info)), Some(Ok(list))) => view! { <SystemFacts info containers=list/> }.into_any(),
            _ => view! { <Loading what="node details"/> }.into_any(),
        }}
        <section class="panel" aria-labelledby="events-heading">
            <h2 id="events-heading">"Recent events"</h2>
            {move || match events_error.get() {
                Some(e) => view! { <p class="form-error">{e.to_string()}</p> }.into_any(),
                None if events.with(Vec::is_empty) => {
                    view! { <p class="muted">"Nothing has happened yet."</p> }.into_any()
                }
                None => view! { <EventList events=events.get()/> }.into_any(),
            }}
        </section>
    }
}

/// What the node stream has said so far.
#[derive(Clone, PartialEq)]
enum NodeFeed {
    Connecting,
    Sample(NodeStats),
    /// The stream failed before or after samples arrived.
    Failed(String),
}

/// The node's CPU, memory and disk as cards, fed every two seconds by `/api/v1/ws/node` (no
/// timer in the page: the daemon sends the samples).
#[component]
fn NodeCards() -> impl IntoView {
    let feed = RwSignal::new(NodeFeed::Connecting);
    let generation = RwSignal::new(0u32);
    let socket = StoredValue::new_local(None::<Socket>);
    Effect::new(move |_| {
        generation.track();
        socket.set_value(None);
        feed.set(NodeFeed::Connecting);
        let opened = Socket::open(
            "/api/v1/ws/node",
            None,
            move |frame| {
                if let Frame::Text(text) = frame {
                    match serde_json::from_str::<StreamMessage>(&text) {
                        Ok(StreamMessage::Node { node }) => feed.set(NodeFeed::Sample(node)),
                        Ok(StreamMessage::Error { message }) => feed.set(NodeFeed::Failed(message)),
                        _ => {}
                    }
                }
            },
            move |closed| {
                let keep = matches!(feed.get_untracked(), NodeFeed::Failed(_));
                if !keep {
                    let why = if closed.reason.is_empty() {
                        format!("the node stream closed (code {})", closed.code)
                    } else {
                        closed.reason
                    };
                    feed.set(NodeFeed::Failed(why));
                }
            },
        );
        match opened {
            Ok(s) => socket.set_value(Some(s)),
            Err(e) => feed.set(NodeFeed::Failed(e)),
        }
    });
    view! {
        <section class="node" aria-labelledby="node-load-heading">
            <h2 id="node-load-heading" class="visually-hidden">"Node load"</h2>
            {move || match feed.get() {
                NodeFeed::Connecting => view! { <Loading what="node load"/> }.into_any(),
                NodeFeed::Failed(why) => view! {
                    <div class="notice failed" role="alert">
                        {format!("Node CPU, memory and disk are not shown: {why}. ")}
                        <button type="button" class="button small" on:click=move |_| generation.update(|g| *g += 1)>
                            "Reconnect"
                        </button>
                    </div>
                }
                .into_any(),
                NodeFeed::Sample(node) => view! { <NodeFigures node/> }.into_any(),
            }}
        </section>
    }
}

#[component]
fn NodeFigures(node: NodeStats) -> impl IntoView {
    let memory_used = node.memory_used();
    let memory_percent = node.memory_percent();
    let disk_percent = node.disk_percent();
    let load = node.load_average;
    view! {
        <dl class="cards" data-test="node-cards" data-time=node.time.clone()>
            <div class="card">
                <dt>"CPU"</dt>
                <dd class="card-value" data-test="node-cpu">{format!("{:.1}%", node.cpu_percent)}</dd>
                <dd><Meter percent=node.cpu_percent label="CPU busy"/></dd>
                <dd class="card-note">
                    {format!(
                        "{} CPU{} · load {:.2} {:.2} {:.2}",
                        node.cpus,
                        if node.cpus == 1 { "" } else { "s" },
                        load[0],
                        load[1],
                        load[2],
                    )}
                </dd>
            </div>
            <div class="card">
                <dt>"Memory"</dt>
                <dd class="card-value" data-test="node-memory" title=bytes_title(memory_used)>
                    {human_size(memory_used)}
                </dd>
                <dd><Meter percent=memory_percent label="Memory in use"/></dd>
                <dd class="card-note">
                    {format!("{:.0}% of {}", memory_percent, human_size(node.memory_total))}
                    {(node.swap_total > 0).then(|| format!(
                        " · swap {} used",
                        human_size(node.swap_total.saturating_sub(node.swap_free)),
                    ))}
                </dd>
            </div>
            <div class="card">
                <dt>"Disk"</dt>
                <dd class="card-value" data-test="node-disk" title=bytes_title(node.disk_used)>
                    {human_size(node.disk_used)}
                </dd>
                <dd><Meter percent=disk_percent label="Disk in use"/></dd>
                <dd class="card-note" title=node.disk_path.clone()>
                    {format!("{:.0}% · {} free", disk_percent, human_size(node.disk_available))}
                </dd>
            </div>
            <div class="card">
                <dt>"Up"</dt>
                <dd class="card-value">{uptime(node.uptime_seconds)}</dd>
                <dd class="card-note">"since the machine booted"</dd>
            </div>
        </dl>
    }
}

/// Seconds as the largest two units: `3d 4h`, `2h 5m`, `42s`.
pub fn uptime(seconds: u64) -> String {
    let (d, h, m) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{seconds}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// Events as a compact list, newest first.
#[component]
pub fn EventList(events: Vec<Event>) -> impl IntoView {
    let now = now();
    view! {
        <ul class="events">
            {events
                .into_iter()
                .map(|e| {
                    let class = if e.outcome == "success" { "event" } else { "event failed" };
                    view! {
                        <li class=class>
                            <time datetime=e.time.clone() title=e.time.clone()>
                                {format::time_ago(&e.time, now)}
                            </time>
                            <span class="event-what">{format!("{} {}", e.event_type, e.action)}</span>
                            <span class="event-subject">{e.subject}</span>
                            <span class="event-message">{e.message}</span>
                        </li>
                    }
                })
                .collect_view()}
        </ul>
    }
}

#[component]
fn SystemFacts(info: SystemInfo, containers: Vec<ContainerSummary>) -> impl IntoView {
    let total = info.blobs_size.saturating_add(info.layers_size);
    let running: Vec<ContainerSummary> =
        containers.iter().filter(|c| c.state.status == ContainerStatus::Running).cloned().collect();
    let count = containers.len();
    view! {
        <dl class="cards">
            <div class="card">
                <dt>"Containers"</dt>
                <dd class="card-value">{count}</dd>
                <dd class="card-note">
                    <a href="/containers">{format!("{} running", running.len())}</a>
                </dd>
            </div>
            <div class="card">
                <dt>"Images"</dt>
                <dd class="card-value">{info.images}</dd>
                <dd class="card-note">
                    <a href="/images">"View all images"</a>
                </dd>
            </div>
            <div class="card">
                <dt>"Stored by berth"</dt>
                <dd class="card-value" title=bytes_title(total)>
                    {human_size(total)}
                </dd>
                <dd class="card-note">
                    {format!(
                        "Blobs {} · Layers {}",
                        human_size(info.blobs_size),
                        human_size(info.layers_size),
                    )}
                </dd>
            </div>
            <div class="card">
                <dt>"Version"</dt>
                <dd class="card-value">{info.version.clone()}</dd>
                <dd class="card-note">{format!("{} snapshotter", info.snapshotter)}</dd>
            </div>
        </dl>
        <section class="panel" aria-labelledby="running-heading">
            <h2 id="running-heading">"Running containers"</h2>
            {if running.is_empty() {
                view! { <p class="muted">"No container is running."</p> }.into_any()
            } else {
                view! {
                    <ul class="running">
                        {running
                            .into_iter()
                            .map(|c| {
                                view! {
                                    <li>
                                        <a href=format!("/containers/{}", c.name)>{c.name.clone()}</a>
                                        <span class="muted">{format!(" {} · {}", c.image, c.status)}</span>
                                    </li>
                                }
                            })
                            .collect_view()}
                    </ul>
                }
                .into_any()
            }}
        </section>
        <section class="panel" aria-labelledby="node-heading">
            <h2 id="node-heading">"Node"</h2>
            <dl class="facts">
                <dt>"Root directory"</dt>
                <dd>
                    <code>{info.root}</code>
                </dd>
                <dt>"Run directory"</dt>
                <dd>
                    <code>{info.run_dir}</code>
                </dd>
                <dt>"Content store (blobs)"</dt>
                <dd title=bytes_title(info.blobs_size)>{human_size(info.blobs_size)}</dd>
                <dt>"Unpacked layers"</dt>
                <dd title=bytes_title(info.layers_size)>{human_size(info.layers_size)}</dd>
            </dl>
        </section>
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn uptime_in_two_units() {
        assert_eq!(super::uptime(42), "42s");
        assert_eq!(super::uptime(125), "2m");
        assert_eq!(super::uptime(2 * 3600 + 5 * 60), "2h 5m");
        assert_eq!(super::uptime(3 * 86_400 + 4 * 3600 + 59), "3d 4h");
    }
}
