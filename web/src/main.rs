//! berth's dashboard: a Leptos app rendered in the browser (CSR), built to wasm by Trunk and
//! served by the daemon (`berth serve`) at `/` on the same origin as its API.
//!
//! The shell (header, navigation, `<main>`) is here; each page is a route in [`pages`]. A new
//! page is one `<Route>` below and one link in the navigation.

mod api;
mod format;
mod pages;

use leptos::prelude::*;
use leptos::wasm_bindgen::JsCast;
use leptos::web_sys::HtmlElement;
use leptos_router::components::{Route, Router, Routes, A};
use leptos_router::path;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}

/// The whole page: header with navigation, and the current route in `<main>`.
#[component]
fn App() -> impl IntoView {
    view! {
        <Router>
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
                        <A href="/" exact=true>
                            "Overview"
                        </A>
                        <A href="/images">"Images"</A>
                    </nav>
                </div>
            </header>
            <main id="main" class="content" tabindex="-1">
                <Routes fallback=|| view! { <pages::NotFound/> }>
                    <Route path=path!("/") view=pages::Overview/>
                    <Route path=path!("/images") view=pages::Images/>
                </Routes>
            </main>
        </Router>
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

/// berth's mark: a hull on the water line, drawn inline so it needs no extra request.
#[component]
fn BrandMark() -> impl IntoView {
    view! {
        <svg class="brand-mark" viewBox="0 0 32 32" width="28" height="28" aria-hidden="true">
            <rect width="32" height="32" rx="8" fill="currentColor"></rect>
            <path d="M8 13h16l-2.5 6h-11z" fill="#fff"></path>
            <path d="M14 8h4v5h-4z" fill="#fff" opacity="0.8"></path>
            <path
                d="M6 23c2 0 2-1.4 4-1.4s2 1.4 4 1.4 2-1.4 4-1.4 2 1.4 4 1.4 2-1.4 4-1.4"
                stroke="#fff"
                stroke-width="1.8"
                stroke-linecap="round"
                fill="none"
            ></path>
        </svg>
    }
}
