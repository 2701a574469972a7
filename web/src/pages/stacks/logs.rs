//! A stack's logs from every container, merged over one WebSocket.

use std::collections::VecDeque;

use berth_types::StackLogEntry;
use leptos::prelude::*;
use serde::Deserialize;

use crate::client::api::enc;
use crate::client::ws::{append_numbered, Frame, Socket};

/// Most merged log lines the page keeps.
const MAX_LOG_LINES: usize = 3000;

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
pub fn StackLogs(name: String) -> impl IntoView {
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
                            seq.try_update_value(|next| append_numbered(list, next, batch, MAX_LOG_LINES));
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
