//! The top of every page: the browser tab's title and the page's heading with its actions.

use leptos::prelude::*;

/// Sets the browser tab's title to `<page> · berth`.
pub fn set_title(page: &str) {
    document().set_title(&format!("{page} · berth"));
}

/// A page's title with its actions (children go before the Refresh button).
#[component]
pub fn PageHeader(
    title: &'static str,
    #[prop(optional)] on_refresh: Option<Callback<()>>,
    #[prop(optional)] children: Option<Children>,
) -> impl IntoView {
    view! {
        <div class="page-header">
            <h1>{title}</h1>
            <div class="page-actions">
                {children.map(|c| c())}
                {on_refresh.map(|refresh| view! {
                    <button type="button" class="button" on:click=move |_| refresh.run(())>
                        "Refresh"
                    </button>
                })}
            </div>
        </div>
    }
}
