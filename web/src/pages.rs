//! The overview page and the pieces every page shares (page header, loading, error and empty
//! states, the live event feed).

use berth_types::stream::StreamMessage;
use berth_types::{ContainerStatus, ContainerSummary, Event, NodeStats, SystemInfo};
use chrono::{DateTime, Utc};
use gloo_net::http::Method;
use leptos::prelude::*;
use leptos_router::NavigateOptions;

use crate::api::{self, ApiError};
use crate::format::{self, human_size};
use crate::ws::{Frame, Socket};

/// Sets the browser tab's title to `<page> · berth`.
pub fn set_title(page: &str) {
    document().set_title(&format!("{page} · berth"));
}

/// The browser's clock as a UTC time, for "2 hours ago".
pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(js_sys::Date::now() as i64).unwrap_or_default()
}

/// The browser's clock, moved on every 15 s while the calling component lives, so that "Up 2
/// minutes" stays true on a page left open. Only the wording changes: no data is fetched.
pub fn clock() -> Signal<DateTime<Utc>> {
    let time = RwSignal::new(now());
    if let Ok(handle) = set_interval_with_handle(move || time.set(now()), std::time::Duration::from_secs(15))
    {
        on_cleanup(move || handle.clear());
    }
    time.into()
}

/// Calls `on_event` for every event the daemon reports from now on (`/api/v1/ws/events`), for
/// as long as the calling component lives. Returns whether the feed is connected.
pub fn event_feed(on_event: impl Fn(Event) + 'static) -> RwSignal<bool> {
    let live = RwSignal::new(false);
    let socket = Socket::open(
        "/api/v1/ws/events",
        Some(Box::new(move |_| live.set(true))),
        move |frame| {
            if let Frame::Text(text) = frame {
                if let Ok(StreamMessage::Event { event }) = serde_json::from_str(&text) {
                    on_event(event);
                }
            }
        },
        move |_| live.set(false),
    );
    StoredValue::new_local(socket.ok());
    live
}

/// A daemon object (or list) kept current: loaded once, reloaded whenever the event feed reports
/// an event of one of `types` (and on `reload`), never on a timer. Reloads are serialised: an
/// event during a reload asks for one more afterwards.
pub struct Followed<T: Send + Sync + 'static> {
    pub data: RwSignal<Option<Result<T, ApiError>>>,
    pub reload: Callback<()>,
    pub live: RwSignal<bool>,
}

/// Loads `path` and follows it (see [`Followed`]).
pub fn followed<T>(path: String, types: &'static [&'static str]) -> Followed<T>
where
    T: serde::de::DeserializeOwned + Send + Sync + 'static,
{
    let data = RwSignal::new(None::<Result<T, ApiError>>);
    let loading = StoredValue::new(false);
    let again = StoredValue::new(false);
    // The page may be left while a request is out: the `try_` forms find the values gone
    // then, and the loop ends quietly.
    let reload = Callback::new(move |()| {
        if loading.try_get_value().unwrap_or(true) {
            again.try_set_value(true);
            return;
        }
        loading.try_set_value(true);
        let path = path.clone();
        leptos::task::spawn_local(async move {
            loop {
                let result = api::get::<T>(&path).await;
                if data.try_set(Some(result)).is_some() || !again.try_get_value().unwrap_or(false) {
                    break;
                }
                again.try_set_value(false);
            }
            loading.try_set_value(false);
        });
    });
    reload.try_run(());
    let live = event_feed(move |event| {
        if types.contains(&event.event_type.as_str()) {
            reload.try_run(());
        }
    });
    Followed { data, reload, live }
}

/// A notice above a list: what an action did, or why it failed.
pub type Notice = RwSignal<Option<(bool, String)>>;

/// Shows a [`Notice`].
#[component]
pub fn NoticeLine(notice: Notice) -> impl IntoView {
    move || {
        notice.get().map(|(ok, text)| {
            view! { <p class=if ok { "notice ok" } else { "notice failed" } role="status">{text}</p> }
        })
    }
}

/// What a create form calls once the daemon made `name` (a `kind`): closes the form (`open`),
/// says so in `notice` and reloads the list.
pub fn on_created(
    open: RwSignal<bool>,
    notice: Notice,
    reload: Callback<()>,
    kind: &'static str,
) -> Callback<String> {
    Callback::new(move |name: String| {
        open.set(false);
        notice.set(Some((true, format!("Created {kind} {name}"))));
        reload.try_run(());
    })
}

/// A create form's Cancel and Create buttons (Create reads "Creating…" while `busy`).
#[component]
pub fn CreateActions(on_close: Callback<()>, busy: RwSignal<bool>) -> impl IntoView {
    view! {
        <div class="form-actions">
            <button type="button" class="button" on:click=move |_| on_close.run(())>"Cancel"</button>
            <button type="submit" class="button primary" disabled=busy>
                {move || if busy.get() { "Creating…" } else { "Create" }}
            </button>
        </div>
    }
}

/// A list row's Remove: asks `question`, then `DELETE path`, says `done` (or why not) in
/// `notice` and reloads the list.
pub fn remove_row(question: &str, path: String, done: String, notice: Notice, reload: Callback<()>) {
    if !window().confirm_with_message(question).unwrap_or(false) {
        return;
    }
    leptos::task::spawn_local(async move {
        notice.set(Some(match api::act(Method::DELETE, &path).await {
            Ok(()) => (true, done),
            Err(e) => (false, e.message()),
        }));
        reload.try_run(());
    });
}

/// A detail page's Remove: asks `question`, then `DELETE path` and goes back to the list at
/// `back`, or says why not in `notice`.
pub fn remove_and_leave(
    question: &str,
    path: String,
    back: &'static str,
    notice: Notice,
    navigate: impl Fn(&str, NavigateOptions) + 'static,
) {
    if !window().confirm_with_message(question).unwrap_or(false) {
        return;
    }
    leptos::task::spawn_local(async move {
        match api::act(Method::DELETE, &path).await {
            Ok(()) => navigate(back, Default::default()),
            Err(e) => notice.set(Some((false, e.message()))),
        }
    });
}

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

/// A horizontal bar for a percentage; red from 90 %.
#[component]
pub fn Meter(percent: f64, label: &'static str) -> impl IntoView {
    let clamped = percent.clamp(0.0, 100.0);
    let class = if clamped >= 90.0 { "meter high" } else { "meter" };
    view! {
        <span
            class=class
            role="meter"
            aria-label=label
            aria-valuemin="0"
            aria-valuemax="100"
            aria-valuenow=format!("{clamped:.0}")
        >
            <span class="meter-fill" style=format!("width: {clamped:.1}%")></span>
        </span>
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

/// A page's title with its actions (children go before the Refresh button).
#[component]
pub fn PageHeader(
    title: &'static str,
    #[prop(optional)] on_refresh: Option<Callback<()>>,
    #[prop(optional)] children: Option<Children>,
) -> impl IntoView {
    view! {
        <div class="page-header">
            <h1>{title}</h1>
            <div class="page-actions">
                {children.map(|c| c())}
                {on_refresh.map(|refresh| view! {
                    <button type="button" class="button" on:click=move |_| refresh.run(())>
                        "Refresh"
                    </button>
                })}
            </div>
        </div>
    }
}

/// A followed list's states: loading, failed (with a retry), empty (a heading and a line that
/// says what to do), or its table, drawn by `table`.
#[component]
pub fn ListStates<T, F, V>(
    data: RwSignal<Option<Result<Vec<T>, ApiError>>>,
    /// What is loading: "networks".
    what: &'static str,
    retry: Callback<()>,
    empty_heading: &'static str,
    empty_text: &'static str,
    table: F,
) -> impl IntoView
where
    T: Clone + Send + Sync + 'static,
    F: Fn(Vec<T>) -> V + Send + Sync + 'static,
    V: IntoView + 'static,
{
    move || match data.get() {
        None => view! { <Loading what/> }.into_any(),
        Some(Err(error)) => view! { <ErrorPanel error retry/> }.into_any(),
        Some(Ok(items)) if items.is_empty() => view! {
            <div class="state empty">
                <h2>{empty_heading}</h2>
                <p>{empty_text}</p>
            </div>
        }
        .into_any(),
        Some(Ok(items)) => table(items).into_any(),
    }
}

/// A form's errors by field (`"form"`: the whole form's).
pub type FormErrors = RwSignal<Vec<(&'static str, String)>>;

/// The message under `field`, with the id `{prefix}-{field}-error` that the input's
/// `aria-describedby` names.
pub fn field_error(errors: FormErrors, prefix: &'static str, field: &'static str) -> impl IntoView {
    move || {
        errors.with(|e| e.iter().find(|(f, _)| *f == field).map(|(_, m)| m.clone())).map(|m| {
            view! { <p class="field-error" id=format!("{prefix}-{field}-error") role="alert">{m}</p> }
        })
    }
}

/// `aria-invalid` of `field`'s input.
pub fn field_invalid(errors: FormErrors, field: &'static str) -> impl Fn() -> String + Copy {
    move || errors.with(|e| e.iter().any(|(f, _)| *f == field)).to_string()
}

/// Shown until the first answer arrives.
#[component]
pub fn Loading(what: &'static str) -> impl IntoView {
    view! {
        <div class="state loading" role="status" aria-live="polite">
            <span class="spinner" aria-hidden="true"></span>
            {format!("Loading {what}…")}
        </div>
    }
}

/// Why a page has nothing to show, in words a user can act on, with a way to try again.
#[component]
pub fn ErrorPanel(error: ApiError, retry: Callback<()>) -> impl IntoView {
    let (heading, explanation, detail) = match error {
        ApiError::Unreachable(detail) => (
            "Cannot reach the berth daemon",
            view! {
                "The page got no answer from the daemon that serves it. Check that "
                <code>"berth serve"</code> " is running, then try again."
            }
            .into_any(),
            detail,
        ),
        ApiError::Status { status: 403, message } => {
            ("Not allowed", message.into_any(), "HTTP 403: your role does not allow this".to_owned())
        }
        ApiError::Status { status, message } => {
            ("The daemon reported an error", message.into_any(), format!("HTTP {status}"))
        }
        ApiError::Unexpected(detail) => (
            "Unexpected answer from the daemon",
            "The answer is not what this page understands; the daemon and the page may come \
             from different versions of berth."
                .into_any(),
            detail,
        ),
    };
    view! {
        <div class="state error" role="alert">
            <h2>{heading}</h2>
            <p>{explanation}</p>
            <p class="detail">
                <code>{detail}</code>
            </p>
            <button type="button" class="button" on:click=move |_| retry.run(())>
                "Try again"
            </button>
        </div>
    }
}

/// Any path no page claims.
#[component]
pub fn NotFound() -> impl IntoView {
    set_title("Not found");
    view! {
        <div class="state empty">
            <h1>"Page not found"</h1>
            <p>
                "There is no page here. Go to the " <a href="/">"overview"</a> "."
            </p>
        </div>
    }
}

/// Exact size for a tooltip: `4261000 bytes`.
pub fn bytes_title(bytes: u64) -> String {
    format!("{bytes} bytes")
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
