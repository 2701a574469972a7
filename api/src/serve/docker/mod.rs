//! The Docker Engine API: a second face of the daemon, so that the docker CLI, Compose, the SDKs
//! and testcontainers drive berth unchanged. Its handlers only translate: Docker's requests
//! into the operations of `ops` (the same calls `/api/v1` makes, so roles, teams, ownership
//! and the audit apply as they do there) and the answers back into Docker's JSON shapes
//! (bollard-stubs' models of the Engine API), status codes and error wording.
//!
//! Served on its own unix socket (root's, trusted like berth's own) and, when asked, on TCP
//! where only API tokens are accepted (`Authorization: Bearer`, the docker CLI's HttpHeaders).
//! Paths come with or without a `/v1.NN` prefix; the version is checked against the range
//! below and removed before routing (one route table for every version).
//!
//! Where things live: `system` (ping, version, info, events, df), `containers` (lifecycle,
//! inspect, logs, stats), `translate` (Docker's create body → berth's `ContainerConfig`, the one
//! translation every route uses), `exec`, `hijack` (attach and exec streams over an upgraded
//! connection), `files` (archive, export, changes, commit, update), `images`, `build`,
//! `networks`, `volumes`, `query` (Docker's query strings and filters).

mod build;
mod containers;
mod exec;
mod files;
mod hijack;
mod images;
mod json_messages;
mod networks;
mod query;
mod system;
mod translate;
mod volumes;

pub use hijack::UnixConnection;

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::de::DeserializeOwned;
use tower::Layer;

use super::auth::{self, Transport};
use super::error::ApiError;
use super::state::{AppState, JSON_BODY_LIMIT};

/// The newest Engine API version berth answers as (Docker 26); clients negotiate down to it.
pub const API_VERSION: &str = "1.45";
/// The oldest version a client may pin (`DOCKER_API_VERSION`), as Docker 25+.
pub const MIN_API_VERSION: &str = "1.24";

/// The Docker face's state: the daemon's, and the exec instances made but not yet gone.
#[derive(Clone)]
pub struct DockerState {
    pub app: AppState,
    pub execs: exec::Execs,
    /// The attach sessions open through this API (a resize goes to them).
    pub sessions: hijack::Attached,
}

impl FromRef<DockerState> for AppState {
    fn from_ref(state: &DockerState) -> AppState {
        state.app.clone()
    }
}

/// The Docker Engine API as one service for a listener (`transport`: which one, see `auth`).
pub fn service(state: AppState, transport: Transport) -> Router {
    let docker = DockerState {
        app: state.clone(),
        execs: exec::Execs::default(),
        sessions: hijack::Attached::default(),
    };
    let routes = Router::new()
        .merge(system::routes())
        .merge(containers::routes())
        .merge(exec::routes())
        .merge(files::routes())
        .merge(images::routes())
        .merge(build::routes())
        .merge(networks::routes())
        .merge(volumes::routes())
        .fallback(not_found)
        .with_state(docker)
        .layer(axum::middleware::from_fn(require_caller))
        .layer(axum::middleware::from_fn_with_state(state, auth::identify))
        .layer(axum::middleware::from_fn(crate::serve::headers::docker_api))
        .layer(axum::middleware::map_request(move |mut req: Request| async move {
            // On TCP only API tokens count: a browser's session cookie must not work here,
            // where no CSRF token is asked for.
            if transport != Transport::Unix {
                req.headers_mut().remove(header::COOKIE);
            }
            req.extensions_mut().insert(transport);
            req.extensions_mut().insert(auth::Api::Docker);
            req
        }))
        .layer(tower_http::trace::TraceLayer::new_for_http());
    // The version prefix is removed before routing, which a layer on the router cannot do.
    let versioned = axum::middleware::from_fn(version_prefix).layer(routes);
    Router::new().fallback_service(versioned)
}

/// Every Docker route needs a caller (`/_ping` included: Docker's TCP socket has no anonymous
/// calls either, and the CLI sends its headers with the ping).
async fn require_caller(req: Request, next: Next) -> Response {
    if req.extensions().get::<auth::Principal>().is_none() {
        return auth::authentication_required();
    }
    next.run(req).await
}

/// dockerd's answer to a path it has no route for, word for word.
async fn not_found() -> ApiError {
    ApiError::not_found("page not found")
}

/// A client's API version, from the path's `/v1.NN` prefix (`None`: no prefix, the newest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(pub u32, pub u32);

impl ApiVersion {
    fn parse(text: &str) -> Option<ApiVersion> {
        let (major, minor) = text.split_once('.')?;
        Some(ApiVersion(major.parse().ok()?, minor.parse().ok()?))
    }

    pub fn current() -> ApiVersion {
        ApiVersion::parse(API_VERSION).expect("API_VERSION is MAJOR.MINOR")
    }
}

/// Checks and removes the `/vMAJOR.MINOR` prefix; every answer names the server's version.
async fn version_prefix(mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let prefix = path
        .strip_prefix("/v")
        .and_then(|rest| rest.split_once('/').or(Some((rest, ""))))
        .and_then(|(v, tail)| ApiVersion::parse(v).map(|version| (v.to_string(), version, tail.to_string())));
    let mut version = ApiVersion::current();
    if let Some((text, asked, tail)) = prefix {
        let min = ApiVersion::parse(MIN_API_VERSION).expect("MIN_API_VERSION is MAJOR.MINOR");
        if asked > ApiVersion::current() {
            return with_server_headers(
                ApiError::bad_request(format!(
                    "client version {text} is too new. Maximum supported API version is {API_VERSION}"
                ))
                .into_response(),
            );
        }
        if asked < min {
            return with_server_headers(
                ApiError::bad_request(format!(
                    "client version {text} is too old. Minimum supported API version is {MIN_API_VERSION}, \
                     please upgrade your client to a newer version"
                ))
                .into_response(),
            );
        }
        version = asked;
        let rest = match req.uri().query() {
            Some(q) => format!("/{tail}?{q}"),
            None => format!("/{tail}"),
        };
        match rest.parse::<Uri>() {
            Ok(uri) => *req.uri_mut() = uri,
            Err(_) => return with_server_headers(ApiError::bad_request("malformed path").into_response()),
        }
    }
    req.extensions_mut().insert(version);
    with_server_headers(next.run(req).await)
}

fn with_server_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert("api-version", HeaderValue::from_static(API_VERSION));
    headers.insert(
        header::SERVER,
        HeaderValue::from_static(concat!("berth/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
    response
}

/// A JSON request body as Docker reads it: whatever the Content-Type (clients send none, or
/// `text/plain`), refused with 400 when malformed. An empty body is `null`, for the route to
/// refuse or default.
pub struct DockerJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for DockerJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes =
            Bytes::from_request(req, state).await.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
        if bytes.len() > JSON_BODY_LIMIT {
            return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"));
        }
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"null" } else { &bytes };
        // The path of a value of the wrong type is named (`HostConfig.Memory: invalid type ...`),
        // so the client knows which field to fix.
        let mut reader = serde_json::Deserializer::from_slice(text);
        let value = serde_path_to_error::deserialize(&mut reader).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            match path.as_str() {
                "." | "" => ApiError::bad_request(format!("invalid JSON: {inner}")),
                _ => ApiError::bad_request(format!("invalid JSON: {path}: {inner}")).with_field(&path),
            }
        })?;
        reader.end().map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
        Ok(DockerJson(value))
    }
}

#[cfg(test)]
mod tests;
