//! Data kept current without polling: the daemon's event feed, objects reloaded when it reports
//! a change to them, and the browser's clock for wording like "Up 2 minutes".

use berth_types::stream::StreamMessage;
use berth_types::Event;
use chrono::{DateTime, Utc};
use leptos::prelude::*;

use crate::client::api::{self, ApiError};
use crate::client::ws::{Frame, Socket};

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
