//! The overview page and the pieces every page shares (page header, loading, error and empty
//! states, the live event feed).

use berth_types::stream::StreamMessage;
use berth_types::{ContainerStatus, ContainerSummary, Event, SystemInfo};
use chrono::{DateTime, Utc};
use leptos::prelude::*;

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
                <dt>"Disk used"</dt>
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
