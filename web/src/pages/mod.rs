//! The dashboard's pages, one route each (the routes are in main.rs). A list and its detail page
//! share a folder: `containers/list.rs` is /containers, `containers/detail.rs` is
//! /containers/:name.

use leptos::prelude::*;

pub mod admin;
pub mod containers;
pub mod history;
pub mod images;
pub mod login;
pub mod networks;
pub mod not_found;
pub mod overview;
pub mod pods;
pub mod registries;
pub mod run;
pub mod stacks;
pub mod volumes;

/// The `:name` of the current route (`/networks/:name`), read again when the route changes.
pub fn route_name() -> impl Fn() -> String + Copy + Send + Sync + 'static {
    let params = leptos_router::hooks::use_params_map();
    move || params.with(|p| p.get("name").unwrap_or_default())
}
