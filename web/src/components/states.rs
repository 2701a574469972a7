//! What a page shows while its data is not there: loading, an error with a way to try again, or
//! a list's empty state.

use leptos::prelude::*;

use crate::client::api::ApiError;

/// Shown until the first answer arrives.
#[component]
pub fn Loading(what: &'static str) -> impl IntoView {
    view! {
        <div class="state loading" role="status" aria-live="polite">
            <span class="spinner" aria-hidden="true"></span>
            {format!("Loading {what}…")}
        </div>
    }
}

/// Why a page has nothing to show, in words a user can act on, with a way to try again.
#[component]
pub fn ErrorPanel(error: ApiError, retry: Callback<()>) -> impl IntoView {
    let (heading, explanation, detail) = match error {
        ApiError::Unreachable(detail) => (
            "Cannot reach the berth daemon",
            view! {
                "The page got no answer from the daemon that serves it. Check that "
                <code>"berth serve"</code> " is running, then try again."
            }
            .into_any(),
            detail,
        ),
        ApiError::Status { status: 403, message, .. } => {
            ("Not allowed", message.into_any(), "HTTP 403: your role does not allow this".to_owned())
        }
        ApiError::Status { status, message, .. } => {
            ("The daemon reported an error", message.into_any(), format!("HTTP {status}"))
        }
        ApiError::Unexpected(detail) => (
            "Unexpected answer from the daemon",
            "The answer is not what this page understands; the daemon and the page may come \
             from different versions of berth."
                .into_any(),
            detail,
        ),
    };
    view! {
        <div class="state error" role="alert">
            <h2>{heading}</h2>
            <p>{explanation}</p>
            <p class="detail">
                <code>{detail}</code>
            </p>
            <button type="button" class="button" on:click=move |_| retry.run(())>
                "Try again"
            </button>
        </div>
    }
}

/// A followed list's states: loading, failed (with a retry), empty (a heading and a line that
/// says what to do), or its table, drawn by `table`.
#[component]
pub fn ListStates<T, F, V>(
    data: RwSignal<Option<Result<Vec<T>, ApiError>>>,
    /// What is loading: "networks".
    what: &'static str,
    retry: Callback<()>,
    empty_heading: &'static str,
    empty_text: &'static str,
    table: F,
) -> impl IntoView
where
    T: Clone + Send + Sync + 'static,
    F: Fn(Vec<T>) -> V + Send + Sync + 'static,
    V: IntoView + 'static,
{
    move || match data.get() {
        None => view! { <Loading what/> }.into_any(),
        Some(Err(error)) => view! { <ErrorPanel error retry/> }.into_any(),
        Some(Ok(items)) if items.is_empty() => view! {
            <div class="state empty">
                <h2>{empty_heading}</h2>
                <p>{empty_text}</p>
            </div>
        }
        .into_any(),
        Some(Ok(items)) => table(items).into_any(),
    }
}
