//! What a list's create and remove buttons do once the daemon answers: close the form or leave
//! the page, say so in the notice, reload the list.

use gloo_net::http::Method;
use leptos::prelude::*;
use leptos_router::NavigateOptions;

use crate::client::api;
use crate::components::Notice;

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

/// A list's Prune: asks `question`, then `POST path`, says in `notice` what `done` makes of the
/// daemon's report (or why it failed) and reloads the list.
pub fn prune<R: serde::de::DeserializeOwned + 'static>(
    question: &str,
    path: &'static str,
    done: impl FnOnce(R) -> String + 'static,
    notice: Notice,
    reload: Callback<()>,
) {
    if !window().confirm_with_message(question).unwrap_or(false) {
        return;
    }
    leptos::task::spawn_local(async move {
        notice.set(Some(match api::call::<R>(Method::POST, path).await {
            Ok(report) => (true, done(report)),
            Err(e) => (false, e.message()),
        }));
        reload.try_run(());
    });
}
