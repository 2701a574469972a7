//! berth's dashboard: a Leptos app rendered in the browser (CSR), built to wasm by Trunk and
//! served by the daemon (`berth serve`) at `/` on the same origin as its API.
//!
//! The shell (header, navigation, `<main>`, the login gate) is here. Each page is a file (or a
//! folder) under `pages/`; the pieces pages share are under `components/`, the calls to the
//! daemon under `client/`. A new page is one `<Route>` below and one link in the navigation.

mod client;
mod components;
mod format;
mod forms;
mod pages;
mod tar;

use berth_types::auth::{Role, SessionInfo};
use leptos::prelude::*;
use leptos::wasm_bindgen::JsCast;
use leptos::web_sys::HtmlElement;
use leptos_router::components::{Route, Router, Routes, A};
use leptos_router::path;

use crate::client::api;
use crate::components::{BrandMark, Loading};
use crate::pages::login::Login;
use crate::pages::not_found::NotFound;
use crate::pages::overview::Overview;
use crate::pages::{admin, containers, history, images, networks, pods, registries, run, stacks, volumes};

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}

/// Who is logged in, for every page: `None` until the session is known, then `Some(None)` for
/// nobody.
#[derive(Clone, Copy)]
pub struct Session(pub RwSignal<Option<Option<SessionInfo>>>);

impl Session {
    /// The logged-in user's role (viewer when unknown, so nothing is offered by mistake).
    pub fn role(&self) -> Role {
        self.0.with(|s| s.as_ref().and_then(|s| s.as_ref()).map(|s| s.role).unwrap_or(Role::Viewer))
    }

    /// The teams the user is a member of.
    pub fn teams(&self) -> Vec<String> {
        self.0.with_untracked(|s| {
            s.as_ref().and_then(|s| s.as_ref()).map(|s| s.teams.clone()).unwrap_or_default()
        })
    }

    /// Whether the user's role is at least `role`.
    pub fn allows(&self, role: Role) -> bool {
        self.role() >= role
    }
}

/// The session from the page's context.
pub fn session() -> Session {
    expect_context::<Session>()
}

/// The whole page: the login form, or the header with navigation and the current route.
#[component]
fn App() -> impl IntoView {
    let state = RwSignal::new(None::<Option<SessionInfo>>);
    let error = RwSignal::new(None::<String>);
    provide_context(Session(state));
    api::on_unauthorized(move || {
        api::set_csrf(None);
        state.set(Some(None));
    });
    leptos::task::spawn_local(async move {
        match api::session().await {
            Ok(session) => {
                api::set_csrf(session.as_ref().and_then(|s| s.csrf_token.clone()));
                state.set(Some(session));
            }
            Err(e) => error.set(Some(e.to_string())),
        }
    });
    view! {
        <Router>
            {move || match (state.get(), error.get()) {
                (_, Some(error)) => view! {
                    <main id="main" class="content">
                        <div class="state error" role="alert">
                            <h1>"Cannot reach the berth daemon"</h1>
                            <p>{error}</p>
                            <button type="button" class="button" on:click=|_| reload()>"Try again"</button>
                        </div>
                    </main>
                }
                .into_any(),
                (None, None) => view! {
                    <main id="main" class="content">
                        <Loading what="your session"/>
                    </main>
                }
                .into_any(),
                (Some(None), None) => view! { <Login/> }.into_any(),
                (Some(Some(user)), None) => view! { <Shell user/> }.into_any(),
            }}
        </Router>
    }
}

fn reload() {
    if let Some(window) = web_sys::window() {
        let _ = window.location().reload();
    }
}

/// Header, navigation (only the pages the role may use), the user menu and the routes.
#[component]
fn Shell(user: SessionInfo) -> impl IntoView {
    let session = session();
    let is_admin = user.role == Role::Admin;
    let logout = move |_| {
        leptos::task::spawn_local(async move {
            // Even if the call fails (the daemon is gone), the page forgets the session.
            let _ = api::logout().await;
            api::set_csrf(None);
            session.0.set(Some(None));
        });
    };
    view! {
        <a class="skip-link" href="#main" on:click=skip_to_main>
            "Skip to content"
        </a>
        <header class="topbar">
            <div class="topbar-inner">
                <a class="brand" href="/">
                    <BrandMark/>
                    <span>"berth"</span>
                </a>
                <nav class="nav" aria-label="Main">
                    <A href="/" exact=true>"Overview"</A>
                    <A href="/containers">"Containers"</A>
                    <A href="/images">"Images"</A>
                    <A href="/registries">"Registries"</A>
                    <A href="/networks">"Networks"</A>
                    <A href="/volumes">"Volumes"</A>
                    <A href="/stacks">"Stacks"</A>
                    <A href="/pods">"Pods"</A>
                    <A href="/history">"History"</A>
                    {is_admin.then(|| view! { <A href="/admin">"Admin"</A> })}
                </nav>
                <div class="user-menu">
                    <span class="user" title=format!("teams: {}", user.teams.join(", "))>
                        {user.user.clone()}
                        <span class=format!("role role-{}", user.role.as_str())>{user.role.as_str()}</span>
                    </span>
                    <button type="button" class="button small" on:click=logout>"Log out"</button>
                </div>
            </div>
        </header>
        <main id="main" class="content" tabindex="-1">
            <Routes fallback=|| view! { <NotFound/> }>
                <Route path=path!("/") view=Overview/>
                <Route path=path!("/containers") view=containers::Containers/>
                <Route path=path!("/containers/:name") view=containers::ContainerPage/>
                <Route path=path!("/run") view=run::RunPage/>
                <Route path=path!("/images") view=images::Images/>
                <Route path=path!("/images/:name") view=images::ImagePage/>
                <Route path=path!("/registries") view=registries::Registries/>
                <Route path=path!("/networks") view=networks::Networks/>
                <Route path=path!("/networks/:name") view=networks::NetworkPage/>
                <Route path=path!("/volumes") view=volumes::Volumes/>
                <Route path=path!("/volumes/:name") view=volumes::VolumePage/>
                <Route path=path!("/stacks") view=stacks::Stacks/>
                <Route path=path!("/stacks/:name") view=stacks::StackPage/>
                <Route path=path!("/pods") view=pods::Pods/>
                <Route path=path!("/history") view=history::History/>
                <Route path=path!("/admin") view=admin::Admin/>
            </Routes>
        </main>
    }
}

/// Moves keyboard focus to `<main>`. The router handles every same-origin link click itself, so
/// the browser's own jump to `#main` (which would move focus there) never happens.
fn skip_to_main(event: leptos::ev::MouseEvent) {
    event.prevent_default();
    if let Some(main) =
        document().get_element_by_id("main").and_then(|element| element.dyn_into::<HtmlElement>().ok())
    {
        // Focus fails only for an element that cannot take it; then the link just does nothing.
        let _ = main.focus();
    }
}
