//! The login form, shown instead of every page while nobody is logged in.

use leptos::prelude::*;

use crate::client::api;
use crate::components::{set_title, BrandMark};
use crate::session;

/// The login form: user name and password, the daemon's error under it.
#[component]
pub fn Login() -> impl IntoView {
    set_title("Log in");
    let session = session();
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        if username.get_untracked().trim().is_empty() || password.get_untracked().is_empty() {
            error.set(Some("enter your user name and password".into()));
            return;
        }
        busy.set(true);
        leptos::task::spawn_local(async move {
            match api::login(username.get_untracked().trim().to_owned(), password.get_untracked()).await {
                Ok(info) => {
                    api::set_csrf(info.csrf_token.clone());
                    session.0.set(Some(Some(info)));
                }
                Err(e) => {
                    error.set(Some(e.message()));
                    busy.set(false);
                }
            }
        });
    };
    view! {
        <main id="main" class="login-page">
            <form class="login panel" on:submit=submit>
                <div class="login-brand">
                    <BrandMark/>
                    <h1>"Log in to berth"</h1>
                </div>
                <label for="login-user">"User name"</label>
                <input
                    id="login-user"
                    name="username"
                    autocomplete="username"
                    autofocus
                    prop:value=username
                    on:input=move |e| username.set(event_target_value(&e))
                />
                <label for="login-password">"Password"</label>
                <input
                    id="login-password"
                    name="password"
                    type="password"
                    autocomplete="current-password"
                    prop:value=password
                    on:input=move |e| password.set(event_target_value(&e))
                />
                {move || error.get().map(|e| view! { <p class="form-error" role="alert">{e}</p> })}
                <button type="submit" class="button primary" disabled=busy>
                    {move || if busy.get() { "Logging in…" } else { "Log in" }}
                </button>
            </form>
        </main>
    }
}
