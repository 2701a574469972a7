//! Volumes: the list with what uses each, create, one volume's details, remove and prune.
//! Follows the event feed.

use std::collections::BTreeMap;

use berth_types::ContainerSummary;
use leptos::prelude::*;

use crate::client::api::{self, enc};
use crate::format;

mod create;
pub mod detail;
pub mod list;

pub use detail::VolumePage;
pub use list::Volumes;

/// Container IDs → names, for "used by" (a viewer sees only their teams' containers; others
/// stay IDs).
pub fn names_by_id() -> RwSignal<BTreeMap<String, String>> {
    let names = RwSignal::new(BTreeMap::new());
    leptos::task::spawn_local(async move {
        if let Ok(list) = api::get::<Vec<ContainerSummary>>("/api/v1/containers?all=1").await {
            names.set(list.into_iter().map(|c| (c.id, c.name)).collect());
        }
    });
    names
}

/// The containers `ids` as links by name (see [`names_by_id`]), `data-test` set where a test
/// looks for the list.
pub fn used_by_list(
    names: RwSignal<BTreeMap<String, String>>,
    ids: Vec<String>,
    test: Option<&'static str>,
) -> impl IntoView {
    move || {
        names.with(|names| {
            view! {
                <ul class="plain" data-test=test>
                    {ids.iter().map(|id| {
                        let label = names.get(id).cloned().unwrap_or_else(|| format::short_id(id).to_owned());
                        view! { <li><a href=format!("/containers/{}", enc(&label))>{label.clone()}</a></li> }
                    }).collect_view()}
                </ul>
            }
        })
    }
}
