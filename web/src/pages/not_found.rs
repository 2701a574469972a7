//! Any path no page claims.

use leptos::prelude::*;

use crate::components::set_title;

/// Any path no page claims.
#[component]
pub fn NotFound() -> impl IntoView {
    set_title("Not found");
    view! {
        <div class="state empty">
            <h1>"Page not found"</h1>
            <p>
                "There is no page here. Go to the " <a href="/">"overview"</a> "."
            </p>
        </div>
    }
}
