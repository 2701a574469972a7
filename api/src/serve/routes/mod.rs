//! The REST API under `/api/v1`, plus `/_ping` and the dashboard.

use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_types::{Event, SystemInfo, VersionInfo};
use tower_http::trace::TraceLayer;

use super::dashboard;
use super::error::ApiError;
use super::ops::{system, Caller};
pub use super::state::{AppState, JSON_BODY_LIMIT};

mod build;
pub mod containers;
mod images;
mod networks;
mod node;
pub(crate) mod query;
mod registry;
mod session;
pub(crate) mod stacks;
mod volumes;

use query::QueryParams;

/// Version of the HTTP API, as `version` reports it.
pub const API_VERSION: &str = "v1";

/// The OpenAPI description of the routes in this module's files, merged into the served
/// document (`serve::openapi`, whose module comment says how to describe a route); here because
/// the handlers' modules are private. A new route's handler goes in this list.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    ping,
    version,
    info,
    events,
    node::node_stats,
    images::list_images,
    images::inspect_image,
    images::tag_image,
    images::remove_image,
    images::prune_images,
    images::import_image,
    images::load_images,
    images::save_images,
    build::image_history,
    build::build_image,
    registry::pull_image,
    registry::push_image,
    registry::login,
    registry::logout,
    containers::create_container,
    containers::list_containers,
    containers::inspect_container,
    containers::start_container,
    containers::stop_container,
    containers::restart_container,
    containers::kill_container,
    containers::pause_container,
    containers::unpause_container,
    containers::rename_container,
    containers::remove_container,
    containers::wait_container,
    containers::prune_containers,
    containers::top_container,
    containers::container_stats,
    containers::container_logs,
    containers::attach_container,
    containers::exec_container,
    networks::list_networks,
    networks::create_network,
    networks::inspect_network,
    networks::remove_network,
    networks::connect_network,
    networks::disconnect_network,
    networks::prune_networks,
    volumes::list_volumes,
    volumes::create_volume,
    volumes::inspect_volume,
    volumes::remove_volume,
    volumes::prune_volumes,
    stacks::list_stacks,
    stacks::inspect_stack,
    stacks::stack_up,
    stacks::stack_down,
    stacks::stack_operation,
    stacks::stack_logs,
))]
pub struct RoutesDoc;

/// The whole HTTP surface of the daemon.
pub fn router(state: AppState) -> Router {
    // Routes anyone may call, logged in or not.
    let public = Router::new()
        .route("/_ping", get(ping))
        .route("/api/v1/version", get(version))
        .merge(crate::serve::auth::routes::public_router())
        .merge(crate::serve::openapi::router());
    // Routes that need a caller; what each caller may do is the operation's to decide.
    let protected = Router::new()
        .route("/api/v1/info", get(info))
        .route("/api/v1/events", get(events))
        .route("/api/v1/node", get(node::node_stats))
        .route("/api/v1/ws/node", get(node::node_stream))
        .route("/api/v1/images", get(images::list_images))
        // Fixed paths win over `{name}` in the router, so an image literally named `prune`
        // must be sent percent-encoded (the CLI does that).
        .route("/api/v1/images/prune", post(images::prune_images))
        .route("/api/v1/images/import", post(images::import_image))
        .route("/api/v1/images/load", post(images::load_images))
        .route("/api/v1/images/save", get(images::save_images))
        .route("/api/v1/images/pull", post(registry::pull_image))
        .route("/api/v1/images/push", post(registry::push_image))
        .route("/api/v1/registry/login", post(registry::login))
        .route("/api/v1/registry/logout", post(registry::logout))
        .route("/api/v1/images/{name}", get(images::inspect_image).delete(images::remove_image))
        .route("/api/v1/images/{name}/tag", post(images::tag_image))
        .route("/api/v1/images/{name}/history", get(build::image_history))
        .route("/api/v1/build", post(build::build_image))
        // Containers. As with images, fixed paths win over `{name}`: a container named `prune`
        // is sent percent-encoded.
        .route("/api/v1/containers", get(containers::list_containers).post(containers::create_container))
        .route("/api/v1/containers/prune", post(containers::prune_containers))
        .route(
            "/api/v1/containers/{name}",
            get(containers::inspect_container).delete(containers::remove_container),
        )
        .route("/api/v1/containers/{name}/start", post(containers::start_container))
        .route("/api/v1/containers/{name}/stop", post(containers::stop_container))
        .route("/api/v1/containers/{name}/restart", post(containers::restart_container))
        .route("/api/v1/containers/{name}/kill", post(containers::kill_container))
        .route("/api/v1/containers/{name}/pause", post(containers::pause_container))
        .route("/api/v1/containers/{name}/unpause", post(containers::unpause_container))
        .route("/api/v1/containers/{name}/rename", post(containers::rename_container))
        .route("/api/v1/containers/{name}/wait", post(containers::wait_container))
        .route("/api/v1/containers/{name}/top", get(containers::top_container))
        .route("/api/v1/containers/{name}/stats", get(containers::container_stats))
        .route("/api/v1/containers/{name}/logs", get(containers::container_logs))
        .route("/api/v1/containers/{name}/attach", get(containers::attach_container))
        .route("/api/v1/containers/{name}/exec", get(containers::exec_container))
        // Compose stacks. `up` and `down` take a body; stop/start/restart share a handler.
        .route("/api/v1/stacks", get(stacks::list_stacks))
        .route("/api/v1/stacks/{name}", get(stacks::inspect_stack))
        .route("/api/v1/stacks/{name}/up", post(stacks::stack_up))
        .route("/api/v1/stacks/{name}/down", post(stacks::stack_down))
        .route("/api/v1/stacks/{name}/{operation}", post(stacks::stack_operation))
        .route("/api/v1/ws/stacks/{name}/logs", get(stacks::stack_logs))
        // Volumes. `prune` is a fixed path: a volume cannot be named `prune` here (Docker's
        // names allow it, its API has the same route).
        .route("/api/v1/volumes", get(volumes::list_volumes).post(volumes::create_volume))
        .route("/api/v1/volumes/prune", post(volumes::prune_volumes))
        .route("/api/v1/volumes/{name}", get(volumes::inspect_volume).delete(volumes::remove_volume))
        // Networks. `prune` is a fixed path: a network named `prune` is reached by its ID.
        .route("/api/v1/networks", get(networks::list_networks).post(networks::create_network))
        .route("/api/v1/networks/prune", post(networks::prune_networks))
        .route("/api/v1/networks/{name}", get(networks::inspect_network).delete(networks::remove_network))
        .route("/api/v1/networks/{name}/connect", post(networks::connect_network))
        .route("/api/v1/networks/{name}/disconnect", post(networks::disconnect_network))
        // Access, history and the event/log/stats/progress WebSockets.
        .merge(crate::serve::auth::routes::router())
        .merge(crate::serve::history::queries::router())
        .merge(crate::serve::ws::router())
        .route_layer(axum::middleware::from_fn(crate::serve::auth::require_caller));
    public
        .merge(protected)
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        // Who is calling, for every route (see `serve::auth`).
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::serve::auth::identify))
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
