//! A container's live CPU and memory charts tab.

use std::collections::VecDeque;

use berth_types::stream::StreamMessage;
use berth_types::ContainerStats;
use leptos::prelude::*;

use crate::client::api::enc;
use crate::client::ws::{Frame, Socket};
use crate::format::human_size;

/// Stats samples in the charts (one a second).
const STATS_WINDOW: usize = 60;

/// Live CPU and memory charts from the stats stream.
#[component]
pub fn Stats(name: String, running: bool) -> impl IntoView {
    let samples = RwSignal::new(VecDeque::<ContainerStats>::new());
    let status = RwSignal::new(String::new());
    if running {
        status.set("Connecting…".into());
        let socket = Socket::open(
            &format!("/api/v1/ws/containers/{}/stats", enc(&name)),
            Some(Box::new(move |_| status.set("Live".into()))),
            move |frame| {
                let Frame::Text(text) = frame else { return };
                match serde_json::from_str::<StreamMessage>(&text) {
                    Ok(StreamMessage::Stats { stats }) => samples.update(|s| {
                        s.push_back(stats);
                        while s.len() > STATS_WINDOW {
                            s.pop_front();
                        }
                    }),
                    Ok(StreamMessage::End { reason }) => status.set(format!("Stopped: {reason}")),
                    Ok(StreamMessage::Error { message }) => status.set(format!("Error: {message}")),
                    _ => {}
                }
            },
            |_| {},
        );
        StoredValue::new_local(socket.ok());
    }
    view! {
        {(!running).then(|| view! {
            <div class="state empty"><p>"Stats are measured while the container runs."</p></div>
        })}
        {running.then(|| view! {
            <p class="muted" role="status">{move || status.get()}</p>
            <div class="charts">
                <Chart
                    title="CPU"
                    values=Signal::derive(move || samples.with(|s| s.iter().map(|x| x.cpu_percent).collect()))
                    label=Signal::derive(move || samples.with(|s| s.back().map(|x| format!("{:.1}%", x.cpu_percent)).unwrap_or_default()))
                    max=Signal::derive(move || samples.with(|s| s.iter().map(|x| x.cpu_percent).fold(100.0, f64::max)))
                />
                <Chart
                    title="Memory"
                    values=Signal::derive(move || samples.with(|s| s.iter().map(|x| x.memory_in_use() as f64).collect()))
                    label=Signal::derive(move || samples.with(|s| s.back().map(|x| format!("{} / {} · {} processes", human_size(x.memory_in_use()), human_size(x.memory_limit), x.pids)).unwrap_or_default()))
                    max=Signal::derive(move || samples.with(|s| s.back().map(|x| x.memory_limit as f64).unwrap_or(1.0)))
                />
            </div>
        })}
    }
}

/// A line chart of the last samples, scaled to `max`.
#[component]
fn Chart(
    title: &'static str,
    values: Signal<Vec<f64>>,
    label: Signal<String>,
    max: Signal<f64>,
) -> impl IntoView {
    let points = move || {
        let values = values.get();
        let max = max.get().max(f64::MIN_POSITIVE);
        values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let x = (STATS_WINDOW - values.len() + i) as f64 * (300.0 / (STATS_WINDOW - 1) as f64);
                let y = 100.0 - (v / max).clamp(0.0, 1.0) * 96.0 - 2.0;
                format!("{x:.1},{y:.1}")
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    view! {
        <figure class="chart panel">
            <figcaption>
                <strong>{title}</strong>
                " "
                <span class="chart-value">{move || label.get()}</span>
            </figcaption>
            <svg viewBox="0 0 300 100" preserveAspectRatio="none" role="img" aria-label=format!("{title} over the last minute")>
                <polyline points=points fill="none" stroke="currentColor" stroke-width="2" vector-effect="non-scaling-stroke"></polyline>
            </svg>
        </figure>
    }
}
