//! A horizontal bar for a percentage.

use leptos::prelude::*;

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
