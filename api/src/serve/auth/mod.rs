//! Who is calling: the unix socket (root), a Bearer API token, or a browser session cookie
//! (with its CSRF header on mutating requests and a same-origin check). [`identify`] runs in
//! front of every route and puts the caller, a [`Principal`], in the request's extensions; it
//! reads no paths and no bodies. What the caller may do is decided by the operation it calls
//! (`serve::ops`), and routes that need a caller refuse anonymous requests ([`require_caller`]).

pub mod store;
pub mod throttle;

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
pub use berth_types::auth::{Role, Team, Token, User, Via};
use berth_types::headers::{CSRF_HEADER, SESSION_COOKIE};

use super::error::ApiError;
use super::state::AppState;
pub use store::AuthStore;
use store::TokenCheck;
use throttle::{AfterFailure, Refusal, Subject};

/// The TCP peer of a request: the daemon serves its TCP listeners with it as connect info
/// (`ConnectInfo<ClientAddr>`); absent on the unix sockets.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

impl Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>> for ClientAddr {
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> ClientAddr {
        ClientAddr(*stream.remote_addr())
    }
}

/// The client address of a request, if it came over TCP.
pub fn client_address(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    extensions.get::<ConnectInfo<ClientAddr>>().map(|c| c.0 .0.ip())
}

/// The answer to an attempt refused by the throttle: `429` with `Retry-After`.
pub(crate) fn throttled(refusal: Refusal) -> Response {
    let secs = refusal.retry_after_secs();
    let message = if refusal.locked {
        format!("too many failed authentications: locked, try again in {secs} seconds")
    } else {
        format!("too many failed authentications: try again in {secs} seconds")
    };
    let mut response = ApiError::new(StatusCode::TOO_MANY_REQUESTS, message).into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    response
}

/// Whether any of `subjects` must wait before it may try to authenticate.
pub(crate) fn check_throttle(state: &AppState, subjects: &[Subject]) -> Result<(), Refusal> {
    let now = Instant::now();
    for subject in subjects {
        state.auth.throttle.check(subject, now)?;
    }
    Ok(())
}

/// What the audit log and the throttle need to know of a refused or accepted authentication.
pub(crate) struct Attempt<'a> {
    pub api: Api,
    /// The user name tried (a login), the token's user (an expired token), or `anonymous`.
    pub user: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub address: Option<IpAddr>,
}

impl Attempt<'_> {
    /// Counts a failure against `subjects` and writes it to the audit log with why, and who
    /// it locked.
    pub(crate) async fn failed(&self, state: &AppState, subjects: &[Subject], why: &str) {
        let now = Instant::now();
        let mut message = why.to_string();
        for subject in subjects {
            if state.auth.throttle.failed(subject, now) == AfterFailure::Locked {
                let who = match subject {
                    Subject::User(name) => format!("user {name}"),
                    Subject::Address(ip) => format!("address {ip}"),
                };
                message.push_str(&format!("; {who} locked for {} minutes", throttle::LOCK.as_secs() / 60));
                tracing::warn!(%who, "locked after repeated failed authentications");
            }
        }
        self.audit(state, StatusCode::UNAUTHORIZED, &message).await;
    }

    pub(crate) async fn audit(&self, state: &AppState, status: StatusCode, message: &str) {
        let address = self.address.map(|a| a.to_string()).unwrap_or_default();
        state
            .audit
            .authentication(
                self.api.as_str(),
                self.user,
                self.method,
                self.path,
                status.as_u16(),
                &address,
                message,
            )
            .await;
    }
}

/// The caller of a request, in its extensions.
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
}

/// Which API a request came through: berth's own (`/api/v1`) or the Docker Engine API face.
/// Set by the face's router; the audit log records it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Api {
    #[default]
    Berth,
    Docker,
}

impl Api {
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Berth => "berth",
            Api::Docker => "docker",
        }
    }
}

/// Which listener a request came in on; set by the daemon on each listener's router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Unix,
    Tcp { tls: bool },
}

pub(crate) fn unauthorized(message: &str) -> Response {
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, message).into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"berth\""));
    response
}

fn forbidden(message: String) -> Response {
    ApiError::forbidden(message).into_response()
}

pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
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

/// Who a request is from.
#[derive(Debug, Clone)]
enum Identity {
    Caller(Principal),
    /// A browser session's mutating request without its CSRF token: refused by every route
    /// that needs a caller ([`CsrfMissing`]), but enough to log out.
    WithoutCsrf(Principal),
}

/// In a request's extensions when it came with a session cookie but without the CSRF header
/// a mutating request needs.
#[derive(Debug, Clone)]
pub struct CsrfMissing(pub Principal);

impl CsrfMissing {
    pub fn refusal() -> Response {
        forbidden(format!("missing or wrong {CSRF_HEADER} header (see GET /api/v1/auth/session)"))
    }
}

/// Who the request is from; `Ok(None)` for no credentials at all.
/// (The request's parts are passed separately: a `&Request` cannot be held across an await,
/// its body is not `Sync`.)
async fn authenticate(
    state: &AppState,
    transport: Transport,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    address: Option<IpAddr>,
    api: Api,
) -> Result<Option<Identity>, Response> {
    if transport == Transport::Unix {
        return Ok(Some(Identity::Caller(Principal::root())));
    }
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .ok_or_else(|| unauthorized("the Authorization header must be \"Bearer <API token>\""))?;
        // Bad tokens are counted per address (no user is known to count them against). A valid
        // token is taken even from a throttled address: 256 random bits are not guessed, and
        // one client guessing passwords must not lock out the automation behind the same NAT.
        // Only the failures wait: `429` instead of `401` until the address's delay is over.
        let subjects: Vec<Subject> = address.map(Subject::address).into_iter().collect();
        let attempt = |user| Attempt { api, user, method: method.as_str(), path, address };
        let (user, why, answer) = match state.auth.authenticate_token(token).await {
            Ok(TokenCheck::Valid(p)) => return Ok(Some(Identity::Caller(p))),
            Ok(TokenCheck::Unknown) => ("anonymous".to_string(), "invalid API token", "invalid API token"),
            Ok(TokenCheck::Expired(user)) => (user, "expired API token", "the API token has expired"),
            Err(e) => return Err(e.into_response()),
        };
        check_throttle(state, &subjects).map_err(throttled)?;
        attempt(&user).failed(state, &subjects, why).await;
        return Err(unauthorized(answer));
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
    let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !safe && !same_secret(sent, &csrf) {
        return Ok(Some(Identity::WithoutCsrf(principal)));
    }
    Ok(Some(Identity::Caller(principal)))
}

/// The middleware in front of every route: who is calling. Bad credentials are refused here;
/// no credentials leave the request anonymous (public routes answer it, others refuse it).
pub async fn identify(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let transport = req.extensions().get::<Transport>().copied().unwrap_or(Transport::Tcp { tls: false });
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let address = client_address(req.extensions());
    let api = req.extensions().get::<Api>().copied().unwrap_or_default();
    match authenticate(&state, transport, &method, &path, req.headers(), address, api).await {
        Ok(Some(Identity::Caller(principal))) => {
            req.extensions_mut().insert(principal);
        }
        Ok(Some(Identity::WithoutCsrf(principal))) => {
            req.extensions_mut().insert(CsrfMissing(principal));
        }
        Ok(None) => {}
        Err(response) => return response,
    }
    let response = next.run(req).await;
    if response.status().is_client_error() && is_plain_text(&response) {
        return json_error(response).await;
    }
    response
}

/// The refusal of a call that needs a caller but came without credentials.
pub(crate) fn authentication_required() -> Response {
    unauthorized("authentication required: send \"Authorization: Bearer <API token>\" or log in")
}

/// In front of the routes that need a caller: an anonymous request is refused with 401.
pub async fn require_caller(req: Request, next: Next) -> Response {
    if req.extensions().get::<CsrfMissing>().is_some() {
        return CsrfMissing::refusal();
    }
    if req.extensions().get::<Principal>().is_none() {
        return authentication_required();
    }
    next.run(req).await
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
    ApiError::new(status, text).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

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
