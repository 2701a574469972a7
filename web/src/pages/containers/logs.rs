//! A container's live logs tab.

use std::collections::VecDeque;

use berth_types::stream::StreamMessage;
use berth_types::LogEntry;
use leptos::html;
use leptos::prelude::*;
use wasm_bindgen::{JsCast, JsValue};

use crate::client::api::enc;
use crate::client::ws::{append_numbered, Frame, Socket};

/// Most log lines the page keeps; older ones are dropped from the view (download gets what is
/// kept).
const MAX_LOG_LINES: usize = 5000;

/// Live logs: the last 1000 lines, then new ones as they come; search, timestamps, stdout and
/// stderr told apart, follow on/off, download, and auto-scroll that pauses while the user reads
/// further up.
#[component]
pub fn Logs(name: String) -> impl IntoView {
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
                    Ok(StreamMessage::Logs { entries: batch }) => entries
                        .update(|e| seq.update_value(|next| append_numbered(e, next, batch, MAX_LOG_LINES))),
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
