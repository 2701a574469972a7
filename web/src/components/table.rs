//! A data table: a keyboard-scrollable region around `<table class="data">` with its header row.

use leptos::prelude::*;

/// `children` are the rows (`<tr>`); the header is one `<th scope="col">` a column.
#[component]
pub fn Table(
    /// The region's accessible name, e.g. "Networks".
    label: &'static str,
    #[prop(into)] columns: Vec<&'static str>,
    /// Columns of numbers, right-aligned.
    #[prop(optional)]
    numeric: &'static [&'static str],
    /// Adds a last column, headed for screen readers only, for each row's buttons.
    #[prop(optional)]
    actions: bool,
    /// More classes of the table, e.g. "networks".
    #[prop(optional)]
    class: &'static str,
    /// `data-test`, where a test looks for the table.
    #[prop(optional)]
    test: Option<&'static str>,
    children: Children,
) -> impl IntoView {
    let class = if class.is_empty() { "data".to_owned() } else { format!("data {class}") };
    view! {
        <div class="table-wrap" role="region" aria-label=label tabindex="0">
            <table class=class data-test=test>
                <thead>
                    <tr>
                        {columns
                            .into_iter()
                            .map(|c| view! { <th scope="col" class=numeric.contains(&c).then_some("num")>{c}</th> })
                            .collect_view()}
                        {actions.then(|| view! { <th scope="col"><span class="visually-hidden">"Actions"</span></th> })}
                    </tr>
                </thead>
                <tbody>{children()}</tbody>
            </table>
        </div>
    }
}
