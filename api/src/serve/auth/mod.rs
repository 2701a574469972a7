//! Access control of the API: who is calling (unix socket = root, a Bearer API token, or a
//! browser session cookie), whether their role allows the route, and whether the container,
//! image or stack the route names belongs to one of their teams.
//!
//! Everything is decided in one middleware ([`authorize`]) in front of every route, from the
//! method and the path, so that a route added later is covered without touching it: a new
//! route is open to viewers if it is a GET and to operators otherwise, until [`policy`] says
//! more. Every mutating call (and every exec session) is written to the audit log.
//!
//! Teams own containers (their creator's team, `X-Berth-Team` picks one), images (pulled,
//! imported, loaded or built by the team; an image no team owns is shared: members see and run
//! it, admins change it), volumes (named ones made by the team, explicitly or on demand by a
//! container create or a stack up; anonymous ones with their container; unowned ones are
//! shared as images are) and stacks (through their containers). A member's calls see only
//! their teams' objects; someone else's answers 404 as if it did not exist. Objects named in a
//! JSON body (a container's image and volumes, a pushed image, a network connect's container,
//! a stack's services) are checked like those in the path. Reaching into the host (bind mounts,
//! `--cap-add`, the host network, builds from host directories or `env_file:`s in a compose file)
//! is for admins. A member's build uses only their teams' images and shared ones as bases.

pub mod routes;
pub mod store;

use std::collections::HashSet;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
pub use berth_types::auth::{Role, Team, Token, User, Via};

use berth_types::volume::MountType;

use super::error::ApiError;
use super::routes::{AppState, JSON_BODY_LIMIT};
pub use store::AuthStore;
use store::OwnedKind;

/// The browser session cookie.
pub const SESSION_COOKIE: &str = "berth_session";
/// The header a browser page echoes the session's CSRF token in, on every mutating request.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Which of the caller's teams a new container or image goes to (the first team if absent).
pub const TEAM_HEADER: &str = "x-berth-team";

/// The caller of a request, in its extensions for handlers that need it.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: String,
    pub role: Role,
    /// (id, name) of the teams the user is a member of.
    pub teams: Vec<(i64, String)>,
    pub via: Via,
}

impl Principal {
    /// Whoever talks over the unix socket.
    pub fn root() -> Principal {
        Principal { user: "root".into(), role: Role::Admin, teams: Vec::new(), via: Via::Socket }
    }

    fn team_ids(&self) -> Vec<i64> {
        self.teams.iter().map(|(id, _)| *id).collect()
    }
}

/// Which listener a request came in on; set by the daemon on each listener's router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Unix,
    Tcp { tls: bool },
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, logged in or not: liveness, version, login, the API description, the dashboard.
    Public,
    /// At least this role.
    Role(Role),
}

/// The role a route needs, from its method and path.
pub fn policy(method: &Method, path: &str) -> Access {
    let read = matches!(*method, Method::GET | Method::HEAD);
    if !path.starts_with("/api/") {
        // `/_ping` and the dashboard's files; anything else there is 404 or 405.
        return Access::Public;
    }
    match path {
        "/api/v1/version" | "/api/v1/openapi.json" | "/api/v1/docs" if read => return Access::Public,
        "/api/v1/auth/login" => return Access::Public,
        "/api/v1/auth/session" | "/api/v1/auth/logout" => return Access::Role(Role::Viewer),
        _ => {}
    }
    let admin_prefixes =
        ["/api/v1/users", "/api/v1/teams", "/api/v1/tokens", "/api/v1/registry/", "/api/v1/history/audit"];
    if admin_prefixes.iter().any(|p| path.starts_with(p)) || path.ends_with("/prune") {
        return Access::Role(Role::Admin);
    }
    if !read {
        return Access::Role(Role::Operator);
    }
    // Reads that act or show what a viewer may not: a container's output and processes'
    // stdio, an image's whole content, and the progress streams of operations.
    let operator_reads = ["/logs", "/attach", "/exec"];
    if operator_reads.iter().any(|s| path.ends_with(s))
        || path == "/api/v1/images/save"
        || path.starts_with("/api/v1/ws/progress")
    {
        return Access::Role(Role::Operator);
    }
    Access::Role(Role::Viewer)
}

/// A container, image or stack that a path names, for the team check.
#[derive(Debug, PartialEq, Eq)]
enum Named {
    Container(String),
    Image(String),
    Stack(String),
    Volume(String),
}

impl Named {
    /// The answer for an object the caller may not see: the handler's own words for one that
    /// does not exist.
    fn not_found(&self) -> ApiError {
        ApiError::not_found(match self {
            Named::Container(n) => format!("No such container: {n}"),
            Named::Image(n) => format!("No such image: {n}"),
            Named::Stack(n) => format!("no such stack: {n}"),
            Named::Volume(n) => format!("No such volume: {n}"),
        })
    }
}

/// Fixed names under `/containers/` and `/images/` that are operations, not objects.
const CONTAINER_OPS: &[&str] = &["prune", "create"];
const IMAGE_OPS: &[&str] = &["prune", "import", "load", "save", "pull", "push", "build"];

fn named(path: &str) -> Option<Named> {
    let rest = path.strip_prefix("/api/v1/").map(|r| r.strip_prefix("ws/").unwrap_or(r))?;
    let mut parts = rest.split('/');
    let kind = parts.next()?;
    let name = parts.next().filter(|n| !n.is_empty())?;
    let name = percent_encoding::percent_decode_str(name).decode_utf8().ok()?.into_owned();
    match kind {
        "containers" if !CONTAINER_OPS.contains(&name.as_str()) => Some(Named::Container(name)),
        "images" if !IMAGE_OPS.contains(&name.as_str()) => Some(Named::Image(name)),
        "stacks" => Some(Named::Stack(name)),
        "volumes" if name != "prune" => Some(Named::Volume(name)),
        _ => None,
    }
}

fn unauthorized(message: &str) -> Response {
    let mut response = ApiError { status: StatusCode::UNAUTHORIZED, message: message.into() }.into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"berth\""));
    response
}

fn forbidden(message: String) -> Response {
    ApiError { status: StatusCode::FORBIDDEN, message }.into_response()
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Equal, in a time that does not depend on where the first difference is.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A browser's request carries `Origin`; it must be this daemon's own (the `Host` it was sent
/// to), or a page on another site is using the user's cookie.
fn same_origin(headers: &HeaderMap) -> Option<bool> {
    let origin = headers.get(header::ORIGIN)?.to_str().ok()?;
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or("");
    Some(!host.is_empty() && origin_host.eq_ignore_ascii_case(host))
}

/// A request the daemon makes to itself on behalf of a caller already authenticated (the
/// progress WebSockets run the REST POST in-process). Only the daemon can set extensions.
#[derive(Debug, Clone)]
pub struct Preauthenticated(pub Principal);

/// Who the request is from; `Ok(None)` for no credentials at all.
/// (The request's parts are passed separately: a `&Request` cannot be held across an await,
/// its body is not `Sync`.)
async fn authenticate(
    state: &AppState,
    transport: Transport,
    preauthenticated: Option<Preauthenticated>,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Result<Option<Principal>, Response> {
    if let Some(Preauthenticated(p)) = preauthenticated {
        return Ok(Some(p));
    }
    if transport == Transport::Unix {
        return Ok(Some(Principal::root()));
    }
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .ok_or_else(|| unauthorized("the Authorization header must be \"Bearer <API token>\""))?;
        return match state.auth.authenticate_token(token).await {
            Ok(Some(p)) => Ok(Some(p)),
            Ok(None) => Err(unauthorized("invalid API token")),
            Err(e) => Err(e.into_response()),
        };
    }
    let Some(secret) = cookie(headers, SESSION_COOKIE) else { return Ok(None) };
    let (principal, csrf) = match state.auth.session(&secret).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(unauthorized("the session has expired; log in again")),
        Err(e) => return Err(e.into_response()),
    };
    let websocket = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    match same_origin(headers) {
        Some(false) => return Err(forbidden("cross-origin request refused".into())),
        // Browsers always send Origin on a WebSocket handshake; one without it is not from a
        // page of ours (WebSockets are not covered by SameSite in every browser).
        None if websocket => {
            return Err(forbidden("a WebSocket with a session cookie needs an Origin header".into()))
        }
        _ => {}
    }
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && path != "/api/v1/auth/logout" {
        let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !same_secret(sent, &csrf) {
            return Err(forbidden(format!(
                "missing or wrong {CSRF_HEADER} header (see GET /api/v1/auth/session)"
            )));
        }
    }
    Ok(Some(principal))
}

/// The team a new resource goes to: the one named in [`TEAM_HEADER`] (which the caller must
/// be in, unless admin), or the caller's first team. `Ok(None)`: no team (admins, root).
async fn target_team(
    state: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
) -> Result<Option<i64>, ApiError> {
    if let Some(name) = headers.get(TEAM_HEADER) {
        let name = name.to_str().map_err(|_| ApiError::bad_request(format!("{TEAM_HEADER}: not text")))?;
        if let Some((id, _)) = principal.teams.iter().find(|(_, n)| n == name) {
            return Ok(Some(*id));
        }
        if principal.role == Role::Admin {
            return Ok(Some(state.auth.team(name).await?.id));
        }
        return Err(ApiError {
            status: StatusCode::FORBIDDEN,
            message: format!("you are not a member of team {name:?}"),
        });
    }
    if principal.role == Role::Admin {
        return Ok(None);
    }
    match principal.teams.first() {
        Some((id, _)) => Ok(Some(*id)),
        None => Err(ApiError {
            status: StatusCode::FORBIDDEN,
            message: format!("{} is in no team: an admin must add them to one first", principal.user),
        }),
    }
}

/// What a non-admin may do with an object.
#[derive(Debug, PartialEq, Eq)]
enum Reach {
    /// Act on it.
    Allowed,
    /// Not theirs: answered as if it did not exist.
    Hidden,
    /// A shared image, which they may see and use but not change.
    ReadOnly,
}

/// How far a non-admin reaches the named object. Unknown objects are allowed: the handler
/// answers 404 in its own words, and the same words are used for someone else's object, so
/// that a caller cannot tell the two apart.
///
/// Images belong to the teams that pulled, imported, loaded or built them. An image no team
/// owns (put there over the unix socket or by an admin, like a base image) is the node's
/// shared image: every member may see it and run containers from it; only admins change it.
async fn reach(state: &AppState, principal: &Principal, named: &Named) -> Result<Reach, ApiError> {
    let teams = principal.team_ids();
    match named {
        Named::Container(name) => {
            let Ok(c) = state.engine.inspect_container(name).await else { return Ok(Reach::Allowed) };
            Ok(if state.auth.container_owner(&c.id).await?.is_some_and(|t| teams.contains(&t)) {
                Reach::Allowed
            } else {
                Reach::Hidden
            })
        }
        // A stack is its team's when its containers are (see `stack_owned_when_done`); one with
        // no containers yet is anyone's to bring up.
        Named::Stack(name) => {
            let Ok(containers) = state.engine.stack_containers(name, true).await else {
                return Ok(Reach::Allowed);
            };
            if containers.is_empty() {
                return Ok(Reach::Allowed);
            }
            let owned = state.auth.owned(OwnedKind::Containers, &teams).await?;
            Ok(if containers.iter().any(|c| owned.contains(&c.id)) { Reach::Allowed } else { Reach::Hidden })
        }
        // A volume is its team's: the one that made it, or for an anonymous volume its
        // container's. One no team owns (made over the unix socket or by an admin) is shared,
        // as an image is: members mount and inspect it, admins remove it.
        Named::Volume(name) => {
            let Ok(volume) = state.engine.inspect_volume(name).await else { return Ok(Reach::Allowed) };
            let mut owners: Vec<i64> = state.auth.volume_owner(&volume.name).await?.into_iter().collect();
            if owners.is_empty() && volume.anonymous {
                for container in &volume.used_by {
                    owners.extend(state.auth.container_owner(container).await?);
                }
            }
            Ok(if owners.iter().any(|t| teams.contains(t)) {
                Reach::Allowed
            } else if owners.is_empty() {
                Reach::ReadOnly
            } else {
                Reach::Hidden
            })
        }
        Named::Image(name) => {
            let Ok(image) = state.engine.inspect_image(name).await else { return Ok(Reach::Allowed) };
            let owners = state.auth.image_owners(&image.id).await?;
            Ok(if owners.iter().any(|t| teams.contains(t)) {
                Reach::Allowed
            } else if owners.is_empty() {
                Reach::ReadOnly
            } else {
                Reach::Hidden
            })
        }
    }
}

/// The images `principal` may not use (as a build's base, say): every image some team owns
/// but none of theirs. Shared images and their teams' are usable; admins use all.
pub(crate) async fn hidden_images(
    state: &AppState,
    principal: &Principal,
) -> Result<HashSet<String>, ApiError> {
    if principal.role >= Role::Admin {
        return Ok(HashSet::new());
    }
    let theirs = state.auth.owned(OwnedKind::Images, &principal.team_ids()).await?;
    let owned = state.auth.owned_by_any(OwnedKind::Images).await?;
    Ok(owned.into_iter().filter(|id| !theirs.contains(id)).collect())
}

/// Whether a non-admin's POST to `path` names an object in its JSON body ([`used_object`]).
fn names_object_in_body(path: &str) -> bool {
    matches!(path, "/api/v1/containers" | "/api/v1/containers/create" | "/api/v1/images/push")
        || (path.starts_with("/api/v1/networks/")
            && (path.ends_with("/connect") || path.ends_with("/disconnect")))
}

/// Whether a non-admin may see what happens to a stack (its events): it has containers, one
/// of them their team's. (A stack that is down has none, and then its name is not shown.)
pub(crate) async fn stack_visible(state: &AppState, principal: &Principal, name: &str) -> bool {
    let Ok(containers) = state.engine.stack_containers(name, true).await else { return false };
    let Ok(owned) = state.auth.owned(OwnedKind::Containers, &principal.team_ids()).await else {
        return false;
    };
    containers.iter().any(|c| owned.contains(&c.id))
}

/// Why a non-admin may not bring up the stack a `StackUp` body describes: what `host_access`
/// refuses for containers, in any service, and builds (their contexts are directories of the
/// daemon's host), another team's image or container. `None` when it may, or when the body or
/// file is invalid (the handler then says what is wrong).
async fn stack_refusal(
    state: &AppState,
    principal: &Principal,
    stack: &str,
    body: Option<&serde_json::Value>,
) -> Result<Option<ApiError>, ApiError> {
    let Some(request) = body.and_then(|b| serde_json::from_value::<berth_types::StackUp>(b.clone()).ok())
    else {
        return Ok(None);
    };
    let forbidden = |what: String| ApiError {
        status: StatusCode::FORBIDDEN,
        message: format!("permission denied: {what} needs the admin role"),
    };
    // The daemon reads a service's env_file from its own host (the CLI sends only the file's
    // text and its directory): refused before the file is loaded, which would read them.
    if let Some(service) =
        berth_engine::compose::model::services_with_env_files(&request.compose_file).into_iter().next()
    {
        return Ok(Some(forbidden(format!("service {service}: env_file, a file of the daemon's host"))));
    }
    let name = stack.to_string();
    let loaded =
        tokio::task::spawn_blocking(move || berth_engine::compose::model::load(&request, Some(&name)))
            .await
            .map_err(|e| ApiError::internal(format!("reading the compose file: {e}")))?;
    let Ok(project) = loaded else { return Ok(None) };
    for service in project.services.values() {
        let config = serde_json::to_value(&service.config).unwrap_or_default();
        if let Some(what) = host_access(&config) {
            return Ok(Some(forbidden(format!("service {}: {what}", service.name))));
        }
        if service.build.is_some() {
            return Ok(Some(forbidden(format!(
                "service {}: a build from a directory of the daemon's host",
                service.name
            ))));
        }
        let used = match &service.network {
            berth_engine::compose::model::ServiceNetwork::Mode(mode) if mode == "host" => {
                return Ok(Some(forbidden(format!("service {}: the host's network", service.name))));
            }
            berth_engine::compose::model::ServiceNetwork::Mode(mode) => {
                mode.strip_prefix("container:").map(|c| Named::Container(c.to_string()))
            }
            berth_engine::compose::model::ServiceNetwork::Networks(_) => None,
        };
        let volumes = service
            .config
            .mounts
            .iter()
            .filter(|m| m.mount_type == MountType::Volume && !m.source.is_empty())
            .map(|m| Named::Volume(m.source.clone()));
        for object in used.into_iter().chain([Named::Image(service.image.clone())]).chain(volumes) {
            if reach(state, principal, &object).await? == Reach::Hidden {
                return Ok(Some(object.not_found()));
            }
        }
    }
    Ok(None)
}

/// What in a container's config (a create's JSON body) reaches beyond the container, into the
/// host or into other teams' containers: only admins may ask for it, since it is root on the
/// node. `None` when there is nothing of the kind.
fn host_access(config: &serde_json::Value) -> Option<String> {
    let mounts = config["mounts"].as_array().into_iter().flatten();
    if let Some(bind) = mounts.into_iter().find(|m| m["type"] == "bind") {
        return Some(format!("a bind mount of the host path {}", bind["source"]));
    }
    if config["cap_add"].as_array().is_some_and(|caps| !caps.is_empty()) {
        return Some("added capabilities (--cap-add)".into());
    }
    if config["network"] == "host" {
        return Some("the host's network (--network host)".into());
    }
    None
}

/// The object a non-admin's call uses without naming it in the path: a container's image (JSON
/// body `image` of a create), the image a push sends (`reference`), the container a network
/// connect or disconnect acts on (`container`).
fn used_object(path: &str, body: Option<&serde_json::Value>) -> Option<Named> {
    // A container created in another's network namespace (`--network container:NAME`).
    if let Some(other) = matches!(path, "/api/v1/containers" | "/api/v1/containers/create")
        .then(|| body?.get("network")?.as_str()?.strip_prefix("container:"))
        .flatten()
    {
        return Some(Named::Container(other.to_string()));
    }
    let (field, named): (&str, fn(String) -> Named) = match path {
        "/api/v1/containers" | "/api/v1/containers/create" => ("image", Named::Image),
        "/api/v1/images/push" => ("reference", Named::Image),
        _ if names_object_in_body(path) => ("container", Named::Container),
        _ => return None,
    };
    body?.get(field)?.as_str().map(|name| named(name.to_string()))
}

/// The middleware in front of every route: authenticate, check the role and the team, audit
/// mutating calls, and scope lists and new resources to the caller's team.
pub async fn authorize(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let transport = req.extensions().get::<Transport>().copied().unwrap_or(Transport::Tcp { tls: false });
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(String::from);
    let access = policy(&method, &path);
    let preauthenticated = req.extensions().get::<Preauthenticated>().cloned();
    let headers = req.headers().clone();
    let principal = match authenticate(&state, transport, preauthenticated, &method, &path, &headers).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    let principal = match (access, principal) {
        (Access::Public, p) => {
            if let Some(p) = p {
                req.extensions_mut().insert(p);
            }
            return next.run(req).await;
        }
        (Access::Role(_), None) => {
            return unauthorized(
                "authentication required: send \"Authorization: Bearer <API token>\" or log in",
            )
        }
        (Access::Role(needed), Some(p)) if p.role < needed => {
            let response = forbidden(format!(
                "permission denied: {} has the role {}, {method} {path} needs {}",
                p.user,
                p.role.as_str(),
                needed.as_str()
            ));
            audit(&state, &p, &method, &path, response.status(), "", "").await;
            return response;
        }
        (Access::Role(_), Some(p)) => p,
    };

    let read = matches!(method, Method::GET | Method::HEAD);
    if principal.role < Role::Admin {
        if let Some(named) = named(&path) {
            let refusal = match reach(&state, &principal, &named).await {
                Ok(Reach::Allowed) => None,
                Ok(Reach::ReadOnly) if read => None,
                Ok(Reach::ReadOnly) => Some(ApiError {
                    status: StatusCode::FORBIDDEN,
                    message: match &named {
                        Named::Image(n) => {
                            format!("image {n} is shared (no team owns it): only admins change it")
                        }
                        Named::Volume(n) => {
                            format!("volume {n} is shared (no team owns it): only admins remove it")
                        }
                        other => format!("permission denied: {other:?}"),
                    },
                }),
                Ok(Reach::Hidden) => Some(named.not_found()),
                Err(e) => Some(e),
            };
            if let Some(refusal) = refusal {
                let response = refusal.into_response();
                if !read {
                    audit(&state, &principal, &method, &path, response.status(), "", "").await;
                }
                return response;
            }
        }
    }

    let creates = creates(&method, &path);
    let team = match creates {
        Some(_) => match target_team(&state, &principal, &headers).await {
            Ok(t) => t,
            Err(e) => return e.into_response(),
        },
        None => None,
    };
    // Some answers depend on the JSON body, which the handler reads too: take it and put it
    // back. A pull's reference (its image goes to the team); the image a non-admin's container
    // is created from or push sends (theirs or a shared one).
    let pull = path == "/api/v1/images/pull" && creates == Some(Creates::Image) && team.is_some();
    let uses_image = principal.role < Role::Admin && method == Method::POST && names_object_in_body(&path);
    let stack_up = principal.role < Role::Admin && creates == Some(Creates::Stack);
    let volume_create = principal.role < Role::Admin && creates == Some(Creates::Volume);
    let retags = principal.role < Role::Admin
        && method == Method::POST
        && path.starts_with("/api/v1/images/")
        && path.ends_with("/tag");
    let mut body_json = None;
    if pull || uses_image || stack_up || retags || volume_create {
        let (parts, body) = req.into_parts();
        let bytes = match axum::body::to_bytes(body, JSON_BODY_LIMIT).await {
            Ok(b) => b,
            Err(_) => {
                return ApiError {
                    status: StatusCode::PAYLOAD_TOO_LARGE,
                    message: "request body too large".into(),
                }
                .into_response()
            }
        };
        // Malformed JSON is left to the handler, which says what is wrong with it.
        body_json = serde_json::from_slice::<serde_json::Value>(&bytes).ok();
        req = Request::from_parts(parts, Body::from(bytes));
    }
    let pulled = if pull { image_reference(body_json.as_ref()) } else { None };
    if principal.role < Role::Admin {
        if let Some(what) = body_json
            .as_ref()
            .filter(|_| uses_image && path.starts_with("/api/v1/containers"))
            .and_then(host_access)
        {
            let response = ApiError {
                status: StatusCode::FORBIDDEN,
                message: format!("permission denied: {what} needs the admin role"),
            }
            .into_response();
            audit(&state, &principal, &method, &path, response.status(), "", "").await;
            return response;
        }
        if let (true, Some(Named::Stack(stack))) = (stack_up, named(&path)) {
            let refusal = match stack_refusal(&state, &principal, &stack, body_json.as_ref()).await {
                Ok(r) => r,
                Err(e) => Some(e),
            };
            if let Some(refusal) = refusal {
                let response = refusal.into_response();
                audit(&state, &principal, &method, &path, response.status(), "", "").await;
                return response;
            }
        }
        // A tag moved onto another image takes the name from the image it named: only from one
        // of the caller's teams'.
        if let Some(target) = body_json.as_ref().filter(|_| retags).and_then(|b| b["target"].as_str()) {
            let taken = match state.engine.inspect_image(target).await {
                Ok(current) => {
                    reach(&state, &principal, &Named::Image(current.id)).await.map(|r| r != Reach::Allowed)
                }
                Err(_) => Ok(false),
            };
            let refusal = match taken {
                Ok(false) => None,
                Ok(true) => Some(ApiError {
                    status: StatusCode::FORBIDDEN,
                    message: format!("permission denied: {target} names an image your teams do not own"),
                }),
                Err(e) => Some(e),
            };
            if let Some(refusal) = refusal {
                let response = refusal.into_response();
                audit(&state, &principal, &method, &path, response.status(), "", "").await;
                return response;
            }
        }
        let mut used: Vec<Named> = used_object(&path, body_json.as_ref()).into_iter().collect();
        if let Some(image) = matches!(path.as_str(), "/api/v1/containers" | "/api/v1/containers/create")
            .then(|| body_json.as_ref()?.get("image")?.as_str())
            .flatten()
        {
            // `--network container:NAME` named the container above; the image is checked too.
            if !used.iter().any(|u| *u == Named::Image(image.to_string())) {
                used.push(Named::Image(image.to_string()));
            }
        }
        // The named volumes a container mounts (a mount without a type is a volume).
        if matches!(path.as_str(), "/api/v1/containers" | "/api/v1/containers/create") {
            let mounts = body_json.as_ref().and_then(|b| b["mounts"].as_array()).into_iter().flatten();
            used.extend(
                mounts
                    .filter(|m| m["type"].is_null() || m["type"] == "volume")
                    .filter_map(|m| m["source"].as_str().filter(|s| !s.is_empty()))
                    .map(|s| Named::Volume(s.to_string())),
            );
        }
        // A volume created under a name another team's volume has: refused (a create of an
        // existing volume answers that volume, which is not theirs to see).
        if let Some(name) = body_json
            .as_ref()
            .filter(|_| creates == Some(Creates::Volume))
            .and_then(|b| b["name"].as_str())
            .filter(|n| !n.is_empty())
        {
            let refusal = match reach(&state, &principal, &Named::Volume(name.to_string())).await {
                Ok(Reach::Hidden) => Some(ApiError {
                    status: StatusCode::CONFLICT,
                    message: format!("volume name {name:?} is taken by another team's volume"),
                }),
                Ok(_) => None,
                Err(e) => Some(e),
            };
            if let Some(refusal) = refusal {
                let response = refusal.into_response();
                audit(&state, &principal, &method, &path, response.status(), "", "").await;
                return response;
            }
        }
        if path == "/api/v1/images/save" {
            used.extend(
                form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
                    .filter(|(k, _)| k == "name")
                    .map(|(_, v)| Named::Image(v.into_owned())),
            );
        }
        for object in used {
            match reach(&state, &principal, &object).await {
                Ok(Reach::Allowed | Reach::ReadOnly) => {}
                Ok(Reach::Hidden) => {
                    let response = object.not_found().into_response();
                    if !read {
                        audit(&state, &principal, &method, &path, response.status(), "", "").await;
                    }
                    return response;
                }
                Err(e) => return e.into_response(),
            }
        }
    }

    let shared_before = match (creates, team) {
        (Some(Creates::Image | Creates::Build), Some(_)) => shared_images(&state).await,
        _ => HashSet::new(),
    };
    // The volumes before a call that may make some (on demand, for a container's mounts): the
    // ones it makes go to the caller's team, the others keep their owners.
    let volumes_before = match creates {
        Some(Creates::Container | Creates::Stack | Creates::Volume) => volume_names(&state).await,
        _ => HashSet::new(),
    };
    let exec = (method == Method::GET && path.ends_with("/exec")).then(|| exec_command(req.uri().query()));
    let audit_entry = if let Some(command) = &exec {
        let container = match named(&path) {
            Some(Named::Container(n)) => n,
            _ => String::new(),
        };
        let id = state.audit.exec_started(&principal.user, &path, &container, command).await;
        id.map(AuditEntry)
    } else {
        None
    };
    if let Some(entry) = audit_entry {
        req.extensions_mut().insert(entry);
    }
    req.extensions_mut().insert(principal.clone());
    let response = next.run(req).await;
    let status = response.status();

    if let (Some(entry), false) = (audit_entry, status == StatusCode::SWITCHING_PROTOCOLS) {
        // The exec never started: close its audit row with the refusal.
        state.audit.exec_ended(entry.0, None, &format!("refused: {status}")).await;
    }
    if !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS) {
        audit(&state, &principal, &method, &path, status, "", "").await;
    }

    match (creates, team) {
        _ if !status.is_success() => {}
        (Some(Creates::Container), Some(team)) => {
            return record_container_owner(&state, response, team, &volumes_before).await;
        }
        (Some(Creates::Volume), team) => {
            return record_volume_owner(&state, response, team, &volumes_before).await;
        }
        (Some(Creates::Image), Some(team)) => {
            if let Some(reference) = pulled {
                return owned_when_done(state, response, reference, team, shared_before);
            }
            // Import and load answer with the images' IDs.
            return record_image_owners(&state, response, team, &shared_before).await;
        }
        (Some(Creates::Stack), Some(team)) => {
            if let Some(Named::Stack(stack)) = named(&path) {
                return stack_owned_when_done(state, response, stack, team, volumes_before);
            }
        }
        (Some(Creates::Build), team) => {
            let tags = form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
                .filter(|(k, _)| k == "t")
                .map(|(_, v)| v.into_owned())
                .collect();
            let team = team.map(|t| (t, shared_before));
            return super::history::record_build(state, response, principal.user.clone(), tags, team).await;
        }
        _ => {}
    }
    if status.is_client_error() && is_plain_text(&response) {
        return json_error(response).await;
    }
    if status.is_success() && path.starts_with("/api/v1/volumes/") {
        if let (&Method::DELETE, Some(Named::Volume(name))) = (&method, named(&path)) {
            forget_volume(&state, &name).await;
        } else if path == "/api/v1/volumes/prune" {
            return forget_pruned_volumes(&state, response).await;
        }
    }
    if principal.role < Role::Admin && method == Method::GET {
        let kind = match path.as_str() {
            "/api/v1/containers" => Some(OwnedKind::Containers),
            "/api/v1/images" => Some(OwnedKind::Images),
            _ => None,
        };
        if let (Some(kind), true) = (kind, status.is_success()) {
            return filter_list(&state, &principal, response, kind).await;
        }
        if path == "/api/v1/stacks" && status.is_success() {
            return filter_named(&state, &principal, response, Named::Stack).await;
        }
        if path == "/api/v1/volumes" && status.is_success() {
            return filter_named(&state, &principal, response, Named::Volume).await;
        }
    }
    response
}

fn is_plain_text(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"))
}

/// axum's own refusals (a path that does not decode, a WebSocket request without the upgrade
/// headers, ...) answer in plain text; the API answers every error as `{"message": ...}`.
async fn json_error(response: Response) -> Response {
    let status = response.status();
    let text = match axum::body::to_bytes(response.into_body(), 64 * 1024).await {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(_) => status.canonical_reason().unwrap_or("bad request").to_string(),
    };
    ApiError { status, message: text }.into_response()
}

/// The audit row of a running exec session, in the request's extensions: the exec handler
/// closes it with the exit code ([`Audit::exec_ended`]).
#[derive(Debug, Clone, Copy)]
pub struct AuditEntry(pub i64);

async fn audit(
    state: &AppState,
    p: &Principal,
    method: &Method,
    path: &str,
    status: StatusCode,
    container: &str,
    command: &str,
) {
    state.audit.call(&p.user, method.as_str(), path, status.as_u16(), container, command).await;
}

/// `cmd=sh&cmd=-c&cmd=...` as one line, for the audit log.
fn exec_command(query: Option<&str>) -> String {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(|(k, _)| k == "cmd")
        .map(|(_, v)| v.into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Creates {
    Container,
    Image,
    Build,
    Stack,
    Volume,
}

fn creates(method: &Method, path: &str) -> Option<Creates> {
    if *method != Method::POST {
        return None;
    }
    match path {
        "/api/v1/containers" | "/api/v1/containers/create" => Some(Creates::Container),
        "/api/v1/images/pull" | "/api/v1/images/import" | "/api/v1/images/load" => Some(Creates::Image),
        "/api/v1/build" => Some(Creates::Build),
        "/api/v1/volumes" => Some(Creates::Volume),
        _ if path.starts_with("/api/v1/stacks/") && path.ends_with("/up") => Some(Creates::Stack),
        _ => None,
    }
}

/// The image a pull makes (JSON body `reference`).
fn image_reference(body: Option<&serde_json::Value>) -> Option<String> {
    body?.get("reference")?.as_str().map(String::from)
}

/// Records that the images of an import's or load's answer (`ImportReport` `id`, `LoadReport`
/// `loaded[].id`) belong to `team`, and passes the answer on.
async fn record_image_owners(
    state: &AppState,
    response: Response,
    team: i64,
    shared_before: &HashSet<String>,
) -> Response {
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, JSON_BODY_LIMIT).await {
        Ok(b) => b,
        Err(e) => return ApiError::internal(format!("reading the new images: {e}")).into_response(),
    };
    let answer = serde_json::from_slice::<serde_json::Value>(&bytes).unwrap_or_default();
    let ids = answer["loaded"]
        .as_array()
        .map(|loaded| loaded.iter().filter_map(|i| i["id"].as_str()).collect::<Vec<_>>())
        .unwrap_or_else(|| answer["id"].as_str().into_iter().collect());
    for id in ids {
        adopt_image(state, id, team, shared_before).await;
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The shared images (no team owns them) before a call that makes images: one that the call
/// makes again (the same content pulled, loaded or built: the same ID) stays shared instead of
/// becoming the caller's team's.
async fn shared_images(state: &AppState) -> HashSet<String> {
    let (Ok(images), Ok(owned)) =
        (state.engine.list_images().await, state.auth.owned_by_any(OwnedKind::Images).await)
    else {
        return HashSet::new();
    };
    images.into_iter().map(|i| i.id).filter(|id| !owned.contains(id)).collect()
}

/// Records that `team` owns the image `id` a call made, unless it was shared before the call.
pub(crate) async fn adopt_image(state: &AppState, id: &str, team: i64, shared_before: &HashSet<String>) {
    if shared_before.contains(id) {
        return;
    }
    if let Err(e) = state.auth.add_image_owner(id, team).await {
        tracing::error!(image = %id, error = %e.message, "recording the image's team failed");
    }
}

async fn record_container_owner(
    state: &AppState,
    response: Response,
    team: i64,
    volumes_before: &HashSet<String>,
) -> Response {
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, JSON_BODY_LIMIT).await {
        Ok(b) => b,
        Err(e) => return ApiError::internal(format!("reading the created container: {e}")).into_response(),
    };
    if let Some(id) = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("id").or_else(|| v.get("Id")).and_then(|i| i.as_str()).map(String::from))
    {
        if let Err(e) = state.auth.set_container_owner(&id, team).await {
            tracing::error!(container = %id, error = %e.message, "recording the container's team failed");
        }
        adopt_volumes(state, &[id], team, volumes_before).await;
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// Passes a pull's or import's streamed answer through, and when it has ended records that the
/// image belongs to `team` (the stream's end is when the image exists).
fn owned_when_done(
    state: AppState,
    response: Response,
    reference: String,
    team: i64,
    shared_before: HashSet<String>,
) -> Response {
    use futures_util::StreamExt;
    let (parts, body) = response.into_parts();
    let done = futures_util::stream::once(async move {
        match state.engine.inspect_image(&reference).await {
            Ok(image) => adopt_image(&state, &image.id, team, &shared_before).await,
            Err(e) => tracing::debug!(reference, error = %e, "no image after the pull or import"),
        }
        None
    })
    .filter_map(|x: Option<Result<bytes::Bytes, axum::Error>>| async move { x });
    let stream = body.into_data_stream().chain(done);
    Response::from_parts(parts, Body::from_stream(stream))
}

/// Passes a stack up's streamed answer through, and when it has ended records that the stack's
/// containers that no team owns yet (the ones this up made) belong to `team`.
fn stack_owned_when_done(
    state: AppState,
    response: Response,
    stack: String,
    team: i64,
    volumes_before: HashSet<String>,
) -> Response {
    use futures_util::StreamExt;
    let (parts, body) = response.into_parts();
    let done = futures_util::stream::once(async move {
        let record = async {
            let containers = state.engine.stack_containers(&stack, true).await.map_err(ApiError::from)?;
            let owned = state.auth.owned_by_any(OwnedKind::Containers).await?;
            let new: Vec<String> =
                containers.iter().filter(|c| !owned.contains(&c.id)).map(|c| c.id.clone()).collect();
            for id in &new {
                state.auth.set_container_owner(id, team).await?;
            }
            adopt_volumes(&state, &new, team, &volumes_before).await;
            Ok::<(), ApiError>(())
        };
        if let Err(e) = record.await {
            tracing::error!(stack, error = %e.message, "recording the stack's team failed");
        }
        None
    })
    .filter_map(|x: Option<Result<bytes::Bytes, axum::Error>>| async move { x });
    let stream = body.into_data_stream().chain(done);
    Response::from_parts(parts, Body::from_stream(stream))
}

/// The names of the volumes there are.
async fn volume_names(state: &AppState) -> HashSet<String> {
    match state.engine.list_volumes().await {
        Ok(volumes) => volumes.into_iter().map(|v| v.name).collect(),
        Err(e) => {
            tracing::error!(error = %e, "listing the volumes failed");
            HashSet::new()
        }
    }
}

/// Records that `team` owns the volumes `containers` mount that were not there before the call
/// that made the containers (named volumes made on demand, anonymous ones).
async fn adopt_volumes(state: &AppState, containers: &[String], team: i64, before: &HashSet<String>) {
    for id in containers {
        let Ok(container) = state.engine.inspect_container(id).await else { continue };
        let made = container
            .mounts
            .iter()
            .filter(|m| m.mount_type == MountType::Volume && !m.name.is_empty() && !before.contains(&m.name));
        for mount in made {
            if let Err(e) = state.auth.set_volume_owner(&mount.name, team).await {
                tracing::error!(volume = %mount.name, error = %e.message, "recording the volume's team failed");
            }
        }
    }
}

/// Records who owns the volume a create made (`team`, or no team: shared), unless it was
/// there before (a create of an existing volume answers it and changes nothing).
async fn record_volume_owner(
    state: &AppState,
    response: Response,
    team: Option<i64>,
    before: &HashSet<String>,
) -> Response {
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, JSON_BODY_LIMIT).await {
        Ok(b) => b,
        Err(e) => return ApiError::internal(format!("reading the created volume: {e}")).into_response(),
    };
    let answer = serde_json::from_slice::<serde_json::Value>(&bytes).unwrap_or_default();
    if let Some(name) = answer["name"].as_str().filter(|n| !before.contains(*n)) {
        let recorded = match team {
            Some(team) => state.auth.set_volume_owner(name, team).await,
            // An owner recorded for an earlier volume of that name is not this one's.
            None => state.auth.forget_volume(name).await,
        };
        if let Err(e) = recorded {
            tracing::error!(volume = %name, error = %e.message, "recording the volume's team failed");
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}

async fn forget_volume(state: &AppState, name: &str) {
    if let Err(e) = state.auth.forget_volume(name).await {
        tracing::error!(volume = %name, error = %e.message, "forgetting the volume's team failed");
    }
}

/// Forgets the teams of the volumes a prune removed (`VolumePruneReport`).
async fn forget_pruned_volumes(state: &AppState, response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => return ApiError::internal(format!("reading the prune report: {e}")).into_response(),
    };
    let report = serde_json::from_slice::<serde_json::Value>(&bytes).unwrap_or_default();
    for name in report["volumes_deleted"].as_array().into_iter().flatten().filter_map(|n| n.as_str()) {
        forget_volume(state, name).await;
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// Keeps only what a member may see in a list answer of named objects (a JSON array of objects
/// with `name`): their teams' volumes and the shared ones, their teams' stacks.
async fn filter_named(
    state: &AppState,
    principal: &Principal,
    response: Response,
    named: fn(String) -> Named,
) -> Response {
    let (parts, items) = match list_items(response).await {
        Ok(list) => list,
        Err(answer) => return answer,
    };
    let mut kept = Vec::new();
    for item in items {
        let Some(name) = item.get("name").and_then(|n| n.as_str()) else { continue };
        match reach(state, principal, &named(name.to_string())).await {
            Ok(Reach::Allowed | Reach::ReadOnly) => kept.push(item),
            Ok(Reach::Hidden) => {}
            Err(e) => return e.into_response(),
        }
    }
    list_answer(parts, kept)
}

/// The items of a list answer (a JSON array).
async fn list_items(
    response: Response,
) -> std::result::Result<(axum::http::response::Parts, Vec<serde_json::Value>), Response> {
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => return Err(ApiError::internal(format!("reading the list: {e}")).into_response()),
    };
    let Ok(serde_json::Value::Array(items)) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Err(ApiError::internal("the list answer is not a JSON array").into_response());
    };
    Ok((parts, items))
}

/// The list answer with only the `kept` items.
fn list_answer(mut parts: axum::http::response::Parts, kept: Vec<serde_json::Value>) -> Response {
    let body = serde_json::to_vec(&kept).expect("JSON values serialise");
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// Keeps only the caller's teams' objects in a list answer (a JSON array of objects with `id`),
/// and the shared images (owned by no team).
async fn filter_list(
    state: &AppState,
    principal: &Principal,
    response: Response,
    kind: OwnedKind,
) -> Response {
    let owned: HashSet<String> = match state.auth.owned(kind, &principal.team_ids()).await {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    let owned_by_some_team = match kind {
        OwnedKind::Images => match state.auth.owned_by_any(kind).await {
            Ok(o) => Some(o),
            Err(e) => return e.into_response(),
        },
        OwnedKind::Containers => None,
    };
    let visible =
        |id: &str| owned.contains(id) || owned_by_some_team.as_ref().is_some_and(|any| !any.contains(id));
    let (parts, items) = match list_items(response).await {
        Ok(list) => list,
        Err(answer) => return answer,
    };
    let kept = items
        .into_iter()
        .filter(|item| item.get("id").and_then(|i| i.as_str()).is_some_and(visible))
        .collect();
    list_answer(parts, kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(policy(&get, "/_ping"), Access::Public);
        assert_eq!(policy(&get, "/index.html"), Access::Public);
        assert_eq!(policy(&get, "/api/v1/version"), Access::Public);
        assert_eq!(policy(&post, "/api/v1/version"), Access::Role(Role::Operator));
        assert_eq!(policy(&get, "/api/v1/containers"), Access::Role(Role::Viewer));
        assert_eq!(policy(&post, "/api/v1/containers"), Access::Role(Role::Operator));
        assert_eq!(policy(&get, "/api/v1/containers/a/logs"), Access::Role(Role::Operator));
        assert_eq!(policy(&get, "/api/v1/containers/a/exec"), Access::Role(Role::Operator));
        assert_eq!(policy(&get, "/api/v1/ws/containers/a/logs"), Access::Role(Role::Operator));
        assert_eq!(policy(&get, "/api/v1/ws/events"), Access::Role(Role::Viewer));
        assert_eq!(policy(&post, "/api/v1/containers/prune"), Access::Role(Role::Admin));
        assert_eq!(policy(&get, "/api/v1/users"), Access::Role(Role::Admin));
        assert_eq!(policy(&Method::DELETE, "/api/v1/tokens/3"), Access::Role(Role::Admin));
        assert_eq!(policy(&post, "/api/v1/registry/login"), Access::Role(Role::Admin));
        assert_eq!(policy(&post, "/api/v1/auth/login"), Access::Public);
    }

    #[test]
    fn named_objects() {
        assert_eq!(named("/api/v1/containers/web/start"), Some(Named::Container("web".into())));
        assert_eq!(named("/api/v1/ws/containers/web/logs"), Some(Named::Container("web".into())));
        assert_eq!(named("/api/v1/containers/prune"), None);
        assert_eq!(named("/api/v1/containers"), None);
        assert_eq!(named("/api/v1/images/pull"), None);
        assert_eq!(named("/api/v1/images/a%2Fb%3A1/tag"), Some(Named::Image("a/b:1".into())));
        assert_eq!(named("/api/v1/volumes/data"), Some(Named::Volume("data".into())));
        assert_eq!(named("/api/v1/volumes/prune"), None);
        assert_eq!(named("/api/v1/volumes"), None);
    }

    #[test]
    fn cookies_and_origins() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; berth_session=xyz; b=2"));
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("xyz"));
        assert_eq!(same_origin(&h), None);
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:7380"));
        h.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:7380"));
        assert_eq!(same_origin(&h), Some(true));
        h.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert_eq!(same_origin(&h), Some(false));
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}
