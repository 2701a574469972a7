//! Every route of the daemon: the REST API under `/api/v1`, its WebSockets, `/_ping` and the
//! dashboard. Each route is registered once, with its OpenAPI description (utoipa-axum's
//! `routes!` takes both from the handler's `#[utoipa::path]`), so a route cannot be missing
//! from the document or registered twice.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use berth_types::{Event, SystemInfo, VersionInfo};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dashboard;
use super::error::ApiError;
use super::openapi;
use super::ops::{system, Caller};
use super::state::{AppState, JSON_BODY_LIMIT};

mod access;
mod answer;
mod build;
pub(crate) mod containers;
mod history;
mod images;
mod networks;
mod node;
mod pods;
pub(crate) mod query;
pub(crate) mod registry;
mod session;
mod stacks;
mod streams;
mod volumes;

use query::QueryParams;

/// Version of the HTTP API, as `version` reports it.
pub const API_VERSION: &str = "v1";

/// The routes with their descriptions, without state: the router and the OpenAPI document.
fn described() -> OpenApiRouter<AppState> {
    // Routes anyone may call, logged in or not.
    let public = OpenApiRouter::new()
        .routes(routes!(ping))
        .routes(routes!(version))
        .routes(routes!(access::login))
        .routes(routes!(access::logout))
        .routes(routes!(openapi::openapi_json))
        .routes(routes!(openapi::docs));
    // Routes that need a caller; what each caller may do is its operation's to decide.
    // Fixed paths win over `{name}` in the router: an object named `prune` is sent
    // percent-encoded (the CLI does that).
    let protected = OpenApiRouter::new()
        .routes(routes!(info))
        .routes(routes!(events))
        .routes(routes!(node::node_stats))
        .routes(routes!(node::node_stream))
        .routes(routes!(node::disk_usage))
        .routes(routes!(node::system_check))
        .routes(routes!(images::list_images))
        .routes(routes!(images::prune_images))
        .routes(routes!(images::import_image))
        .routes(routes!(images::load_images))
        .routes(routes!(images::save_images))
        .routes(routes!(registry::pull_image))
        .routes(routes!(registry::push_image))
        .routes(routes!(registry::login))
        .routes(routes!(registry::logout))
        .routes(routes!(registry::set_repository))
        .routes(routes!(registry::search_images))
        .routes(routes!(registry::remote_tags))
        .routes(routes!(registry::list_registries, registry::add_registry))
        .routes(routes!(registry::remove_registry))
        .routes(routes!(images::inspect_image, images::remove_image))
        .routes(routes!(images::tag_image))
        .routes(routes!(build::image_history))
        .routes(routes!(build::build_image))
        .routes(routes!(containers::list_containers, containers::create_container))
        .routes(routes!(containers::prune_containers))
        .routes(routes!(containers::inspect_container, containers::remove_container))
        .routes(routes!(containers::start_container))
        .routes(routes!(containers::stop_container))
        .routes(routes!(containers::restart_container))
        .routes(routes!(containers::kill_container))
        .routes(routes!(containers::pause_container))
        .routes(routes!(containers::unpause_container))
        .routes(routes!(containers::rename_container))
        .routes(routes!(containers::wait_container))
        .routes(routes!(containers::top_container))
        .routes(routes!(containers::container_stats))
        .routes(routes!(containers::container_logs))
        .routes(routes!(containers::attach_container))
        .routes(routes!(containers::exec_container))
        .routes(routes!(containers::get_archive, containers::head_archive, containers::put_archive))
        .routes(routes!(containers::export_container))
        .routes(routes!(containers::container_changes))
        .routes(routes!(containers::commit_container))
        .routes(routes!(containers::update_container))
        .routes(routes!(stacks::list_stacks))
        .routes(routes!(stacks::inspect_stack))
        .routes(routes!(stacks::stack_up))
        .routes(routes!(stacks::stack_down))
        .routes(routes!(stacks::stack_operation))
        .routes(routes!(stacks::stack_logs))
        .routes(routes!(volumes::list_volumes, volumes::create_volume))
        .routes(routes!(volumes::prune_volumes))
        .routes(routes!(volumes::inspect_volume, volumes::remove_volume))
        .routes(routes!(networks::list_networks, networks::create_network))
        .routes(routes!(networks::prune_networks))
        .routes(routes!(networks::inspect_network, networks::remove_network))
        .routes(routes!(networks::connect_network))
        .routes(routes!(networks::disconnect_network))
        .routes(routes!(pods::list_pods))
        .routes(routes!(access::session))
        .routes(routes!(access::list_users, access::create_user))
        .routes(routes!(access::get_user, access::update_user, access::delete_user))
        .routes(routes!(access::list_teams, access::create_team))
        .routes(routes!(access::delete_team))
        .routes(routes!(access::add_member, access::remove_member))
        .routes(routes!(access::list_tokens, access::create_token))
        .routes(routes!(access::delete_token))
        .routes(routes!(history::history_events))
        .routes(routes!(history::history_containers))
        .routes(routes!(history::history_audit))
        .routes(routes!(history::history_builds))
        .routes(routes!(history::history_build))
        .routes(routes!(streams::events))
        .routes(routes!(streams::logs))
        .routes(routes!(streams::stats))
        .routes(routes!(streams::progress))
        .routes(routes!(streams::stack_progress))
        .route_layer(axum::middleware::from_fn(crate::serve::auth::require_caller));
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi()).merge(public).merge(protected)
}

/// The OpenAPI document of every route.
#[cfg(test)]
pub fn document() -> utoipa::openapi::OpenApi {
    described().into_openapi()
}

/// The whole HTTP surface of the daemon.
pub fn router(state: AppState) -> Router {
    let (routes, document) = described().split_for_parts();
    routes
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::Extension(Arc::new(openapi::Served::new(document))))
        // Who is calling, for every route (see `serve::auth`).
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::serve::auth::identify))
        // Outside `identify`: its refusals (401, 429) get the headers too.
        .layer(axum::middleware::from_fn(crate::serve::headers::berth_api))
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn fallback(method: Method, uri: Uri) -> Response {
    if uri.path().starts_with("/api/") {
        return ApiError::not_found(format!("page not found: {}", uri.path())).into_response();
    }
    if method != Method::GET && method != Method::HEAD {
        return method_not_allowed().await;
    }
    dashboard::serve(uri).await
}

async fn method_not_allowed() -> Response {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed").into_response()
}

#[utoipa::path(get, path = "/_ping", tag = "system", responses((status = 200, content_type = "text/plain", body = String, description = "OK")))]
async fn ping() -> &'static str {
    "OK"
}

fn version_info() -> VersionInfo {
    VersionInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        api_version: API_VERSION.to_string(),
        os: std::env::consts::OS.to_string(),
        arch: go_arch(std::env::consts::ARCH).to_string(),
    }
}

/// Architecture names as OCI (and Docker) spell them.
pub fn go_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

#[utoipa::path(get, path = "/api/v1/version", tag = "system", responses((status = 200, body = VersionInfo)))]
async fn version() -> Json<VersionInfo> {
    Json(version_info())
}

#[utoipa::path(get, path = "/api/v1/info", tag = "system", responses((status = 200, body = SystemInfo)), security(("bearer" = []), ("session" = [])))]
async fn info(State(state): State<AppState>, caller: Caller) -> Result<Json<SystemInfo>, ApiError> {
    Ok(Json(system::info(&state, &caller).await?))
}

#[utoipa::path(get, path = "/api/v1/events", tag = "system", params(("limit" = Option<i64>, Query), ("before" = Option<i64>, Query)), responses((status = 200, body = Vec<Event>, description = "newest first"), (status = 400, body = crate::serve::openapi::ErrorBody)), security(("bearer" = []), ("session" = [])))]
async fn events(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<Event>>, ApiError> {
    let query = QueryParams::parse(query, &["limit", "before"])?;
    let limit = query.number("limit")?.unwrap_or(100);
    if !(1..=super::events::MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {}",
            super::events::MAX_LIMIT
        )));
    }
    Ok(Json(system::events(&state, &caller, limit, query.number("before")?).await?))
}

#[cfg(test)]
mod tests {
    use berth_types::name::is_reserved_segment;

    /// A fixed word where an object's name goes (`/api/v1/containers/prune`) must be in the one
    /// list of reserved words the CLI encodes names by: otherwise an object of that name could
    /// not be reached.
    #[test]
    fn fixed_segments_are_reserved_names() {
        let doc = serde_json::to_value(super::document()).unwrap();
        let mut fixed = Vec::new();
        for path in doc["paths"].as_object().unwrap().keys() {
            let parts: Vec<&str> = path.split('/').collect();
            if let ["", "api", "v1", "containers" | "images" | "volumes" | "networks", word, ..] = parts[..] {
                if !word.starts_with('{') {
                    assert!(is_reserved_segment(word), "{path}: {word:?} is not in RESERVED_SEGMENTS");
                    fixed.push(word.to_string());
                }
            }
        }
        assert!(fixed.len() >= 8, "{fixed:?}");
    }
}
