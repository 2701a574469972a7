//! The line above a list that says what an action did, or why it failed.

use leptos::prelude::*;

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
