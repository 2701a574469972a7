//! Pull and push: a reference, then a progress bar per layer over the progress WebSocket.

use berth_types::stream::StreamMessage;
use berth_types::{LayerStatus, PullRequest, PushRequest, TransferEvent};
use leptos::html;
use leptos::prelude::*;

use crate::client::ws::{Frame, Socket};
use crate::format::{self, human_size};

/// One layer's progress in a pull or push.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerProgress {
    pub digest: String,
    pub status: LayerStatus,
    pub current: u64,
    pub total: u64,
}

/// Applies a transfer event to the layer list; returns the line to show for it, if any.
pub fn apply_transfer(layers: &mut Vec<LayerProgress>, event: &TransferEvent) -> Option<String> {
    match event {
        TransferEvent::Resolving { reference } => Some(format!("Resolving {reference}")),
        TransferEvent::Resolved { digest, layers: list, total_bytes } => {
            *layers = list
                .iter()
                .map(|l| LayerProgress {
                    digest: l.digest.clone(),
                    status: LayerStatus::Waiting,
                    current: 0,
                    total: l.size,
                })
                .collect();
            Some(format!("{digest}: {} layers, {}", list.len(), human_size(*total_bytes)))
        }
        TransferEvent::Layer { digest, status, current, total } => {
            match layers.iter_mut().find(|l| &l.digest == digest) {
                Some(l) => {
                    l.status = *status;
                    l.current = *current;
                    l.total = *total;
                }
                None => layers.push(LayerProgress {
                    digest: digest.clone(),
                    status: *status,
                    current: *current,
                    total: *total,
                }),
            }
            None
        }
        TransferEvent::Pulled(r) => Some(format!(
            "Pulled {} ({} layers downloaded, {} already present, {})",
            r.reference,
            r.layers_downloaded,
            r.layers_existing,
            human_size(r.bytes_downloaded)
        )),
        TransferEvent::Pushed(r) => Some(format!(
            "Pushed {} ({} uploaded, {} already there, {} mounted)",
            r.reference, r.blobs_uploaded, r.blobs_existing, r.blobs_mounted
        )),
        TransferEvent::Error { message, .. } => Some(format!("Error: {message}")),
    }
}

/// A layer's state in words, as `docker pull` prints it.
pub fn layer_status_text(status: LayerStatus) -> &'static str {
    match status {
        LayerStatus::Waiting => "Waiting",
        LayerStatus::Downloading => "Downloading",
        LayerStatus::Verifying => "Verifying",
        LayerStatus::Extracting => "Extracting",
        LayerStatus::AlreadyExists => "Already exists",
        LayerStatus::Done => "Pull complete",
        LayerStatus::Uploading => "Pushing",
        LayerStatus::Mounted => "Mounted",
        LayerStatus::Pushed => "Pushed",
    }
}

/// Fraction done, 0 to 1.
fn layer_fraction(l: &LayerProgress) -> f64 {
    match l.status {
        LayerStatus::Done | LayerStatus::AlreadyExists | LayerStatus::Mounted | LayerStatus::Pushed => 1.0,
        _ if l.total == 0 => 0.0,
        _ => (l.current as f64 / l.total as f64).clamp(0.0, 1.0),
    }
}

/// The pull or push panel: a reference, then a progress bar per layer over the progress
/// WebSocket.
#[component]
pub fn Transfer(
    kind: &'static str,
    initial: String,
    on_done: Callback<()>,
    on_close: Callback<()>,
) -> impl IntoView {
    let reference = RwSignal::new(initial);
    let layers = RwSignal::new(Vec::<LayerProgress>::new());
    let lines = RwSignal::new(Vec::<String>::new());
    let running = RwSignal::new(false);
    let outcome = RwSignal::new(None::<bool>);
    let socket = StoredValue::new_local(None::<Socket>);
    let start = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let name = reference.get_untracked().trim().to_owned();
        if name.is_empty() {
            lines.set(vec!["Enter an image reference, e.g. localhost:5000/busybox:latest".into()]);
            return;
        }
        let request = if kind == "pull" {
            serde_json::to_string(&PullRequest { reference: name, platform: None })
        } else {
            serde_json::to_string(&PushRequest { reference: name })
        }
        .unwrap_or_default();
        layers.set(Vec::new());
        lines.set(Vec::new());
        outcome.set(None);
        running.set(true);
        let opened = Socket::open(
            &format!("/api/v1/ws/progress/{kind}"),
            Some(Box::new(move |ws| {
                let _ = ws.send_with_str(&request);
            })),
            move |frame| {
                let Frame::Text(text) = frame else { return };
                match serde_json::from_str::<StreamMessage>(&text) {
                    Ok(StreamMessage::Progress { event }) => {
                        let mut line = None;
                        layers.update(|l| line = apply_transfer(l, &event));
                        match &event {
                            TransferEvent::Pulled(_) | TransferEvent::Pushed(_) => outcome.set(Some(true)),
                            TransferEvent::Error { .. } => outcome.set(Some(false)),
                            _ => {}
                        }
                        if let Some(line) = line {
                            lines.update(|l| l.push(line));
                        }
                    }
                    Ok(StreamMessage::Error { message }) => {
                        outcome.set(Some(false));
                        lines.update(|l| l.push(format!("Error: {message}")));
                    }
                    Ok(StreamMessage::End { .. }) => {}
                    _ => {}
                }
            },
            move |closed| {
                running.set(false);
                if outcome.get_untracked().is_none() {
                    outcome.set(Some(false));
                    lines.update(|l| {
                        l.push(format!("The connection closed before the end (code {}).", closed.code))
                    });
                }
                on_done.run(());
            },
        );
        match opened {
            Ok(s) => socket.set_value(Some(s)),
            Err(e) => {
                running.set(false);
                lines.set(vec![format!("Error: {e}")]);
            }
        }
    };
    let title = if kind == "pull" { "Pull an image" } else { "Push an image" };
    let input_ref = NodeRef::<html::Input>::new();
    input_ref.on_load(|input| {
        let _ = input.focus();
    });
    view! {
        <section class="panel transfer" aria-label=title data-test=format!("{kind}-panel")>
            <div class="panel-head">
                <h2>{title}</h2>
                <button type="button" class="button small" on:click=move |_| on_close.run(()) aria-label="Close">"Close"</button>
            </div>
            <form class="toolbar" on:submit=start>
                <label for=format!("{kind}-reference")>"Reference"</label>
                <input
                    id=format!("{kind}-reference")
                    node_ref=input_ref
                    placeholder="localhost:5000/busybox:latest"
                    prop:value=reference
                    on:input=move |e| reference.set(event_target_value(&e))
                />
                <button type="submit" class="button primary" disabled=running>
                    {move || if running.get() { "Working…" } else if kind == "pull" { "Pull" } else { "Push" }}
                </button>
            </form>
            <ul class="layers" aria-label="Layers">
                <For
                    each=move || layers.get()
                    key=|l| (l.digest.clone(), l.current, l.status as u8)
                    children=|l| {
                        let fraction = layer_fraction(&l);
                        view! {
                            <li class="layer">
                                <code title=l.digest.clone()>{format::short_id(&l.digest).to_owned()}</code>
                                <progress max="1" value=fraction.to_string() aria-label=format!("Layer {}", format::short_id(&l.digest))></progress>
                                <span class="layer-status">
                                    {layer_status_text(l.status)}
                                    {(l.total > 0).then(|| format!(" {}/{}", human_size(l.current.min(l.total)), human_size(l.total)))}
                                </span>
                            </li>
                        }
                    }
                />
            </ul>
            <div class=move || match outcome.get() { Some(true) => "transfer-log ok", Some(false) => "transfer-log failed", None => "transfer-log" } role="status">
                {move || lines.get().into_iter().map(|l| view! { <div>{l}</div> }).collect_view()}
            </div>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_types::LayerSummary;

    #[test]
    fn transfer_events_drive_layer_bars() {
        let mut layers = Vec::new();
        let resolved = TransferEvent::Resolved {
            digest: "sha256:m".into(),
            layers: vec![
                LayerSummary { digest: "sha256:a".into(), size: 100 },
                LayerSummary { digest: "sha256:b".into(), size: 50 },
            ],
            total_bytes: 150,
        };
        assert!(apply_transfer(&mut layers, &resolved).unwrap().contains("2 layers"));
        let progress = TransferEvent::Layer {
            digest: "sha256:a".into(),
            status: LayerStatus::Downloading,
            current: 40,
            total: 100,
        };
        assert_eq!(apply_transfer(&mut layers, &progress), None);
        assert_eq!(layer_fraction(&layers[0]), 0.4);
        let exists = TransferEvent::Layer {
            digest: "sha256:b".into(),
            status: LayerStatus::AlreadyExists,
            current: 0,
            total: 50,
        };
        apply_transfer(&mut layers, &exists);
        assert_eq!(layer_fraction(&layers[1]), 1.0);
        assert_eq!(layer_status_text(layers[1].status), "Already exists");
        let error = TransferEvent::Error { message: "manifest unknown".into(), status: None };
        assert_eq!(apply_transfer(&mut layers, &error).unwrap(), "Error: manifest unknown");
    }
}
