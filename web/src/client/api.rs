//! Calls to the daemon's HTTP API. The daemon serves this page itself, so every URL is relative
//! to the page's origin (`/api/v1/...`) and needs no CORS. The browser session is a cookie the
//! page never sees ([`berth_types::headers::SESSION_COOKIE`]); every mutating call echoes the
//! session's CSRF token in [`CSRF_HEADER`], and a member of several teams names the team that
//! will own what a call creates in [`TEAM_HEADER`].

use std::cell::RefCell;
use std::fmt;

use berth_types::auth::{LoginRequest, SessionInfo};
use berth_types::error::ErrorBody;
use berth_types::headers::{CSRF_HEADER, TEAM_HEADER};
use gloo_net::http::{Method, Request, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

thread_local! {
    /// The CSRF token of the current session (the page is single-threaded).
    static CSRF: RefCell<Option<String>> = const { RefCell::new(None) };
    /// Called when the daemon says the session is gone (401), so the app shows the login.
    static ON_UNAUTHORIZED: RefCell<Option<Box<dyn Fn()>>> = const { RefCell::new(None) };
}

/// Remembers the session's CSRF token for later mutating calls.
pub fn set_csrf(token: Option<String>) {
    CSRF.with(|c| *c.borrow_mut() = token);
}

/// Registers what to do when any call finds the session expired.
pub fn on_unauthorized(callback: impl Fn() + 'static) {
    ON_UNAUTHORIZED.with(|c| *c.borrow_mut() = Some(Box::new(callback)));
}

fn unauthorized() {
    ON_UNAUTHORIZED.with(|c| {
        if let Some(callback) = c.borrow().as_ref() {
            callback();
        }
    });
}

/// Why an API call gave no answer the page can show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// The request never got an HTTP answer: the daemon is stopped, or the network is down.
    Unreachable(String),
    /// The daemon answered with an error status; `message` is its error body's message or, for
    /// a body without one, the status text; `field` the request field the body names, if any.
    Status { status: u16, message: String, field: Option<String> },
    /// The daemon answered 2xx with a body that is not what this page expects (a daemon of
    /// another version, or a proxy's page).
    Unexpected(String),
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Unreachable(detail) => write!(f, "cannot reach the berth daemon: {detail}"),
            ApiError::Status { status, message, .. } => write!(f, "{message} (HTTP {status})"),
            ApiError::Unexpected(detail) => write!(f, "unexpected answer from the daemon: {detail}"),
        }
    }
}

impl ApiError {
    /// The daemon's words only, for a message next to a form field.
    pub fn message(&self) -> String {
        match self {
            ApiError::Status { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    /// The request field the daemon says the error is about (its error body's `field`).
    pub fn field(&self) -> Option<&str> {
        match self {
            ApiError::Status { field, .. } => field.as_deref(),
            _ => None,
        }
    }
}

/// Percent-encodes one path segment or query value (a container or image name may hold `/`
/// and `:`).
pub fn enc(value: &str) -> String {
    String::from(js_sys::encode_uri_component(value))
}

/// `GET path`, decoded as JSON.
pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, ApiError> {
    let request = Request::get(path).header("Accept", "application/json");
    decode(path, send(request.build()).await?).await
}

/// `METHOD path` with a JSON body, decoded as JSON.
pub async fn send_json<B: Serialize, T: DeserializeOwned>(
    method: Method,
    path: &str,
    body: &B,
) -> Result<T, ApiError> {
    let request = with_csrf(RequestBuilder::new(path).method(method)).json(body);
    decode(path, send(request).await?).await
}

/// Like [`send_json`], for a member of several teams: `team` will own what the request creates.
pub async fn send_json_as<B: Serialize, T: DeserializeOwned>(
    method: Method,
    path: &str,
    body: &B,
    team: Option<&str>,
) -> Result<T, ApiError> {
    let mut builder = with_csrf(RequestBuilder::new(path).method(method));
    if let Some(team) = team {
        builder = builder.header(TEAM_HEADER, team);
    }
    decode(path, send(builder.json(body)).await?).await
}

/// `METHOD path` without a body, decoded as JSON (a prune's report).
pub async fn call<T: DeserializeOwned>(method: Method, path: &str) -> Result<T, ApiError> {
    let request = with_csrf(RequestBuilder::new(path).method(method)).build();
    decode(path, send(request).await?).await
}

/// `METHOD path` with a JSON body, for answers that carry nothing the page needs (204).
pub async fn act_json<B: Serialize>(method: Method, path: &str, body: &B) -> Result<(), ApiError> {
    send(with_csrf(RequestBuilder::new(path).method(method)).json(body)).await.map(drop)
}

/// `METHOD path` without a body, for answers that carry nothing the page needs (204).
pub async fn act(method: Method, path: &str) -> Result<(), ApiError> {
    send(with_csrf(RequestBuilder::new(path).method(method)).build()).await.map(drop)
}

fn with_csrf(builder: RequestBuilder) -> RequestBuilder {
    match CSRF.with(|c| c.borrow().clone()) {
        Some(token) => builder.header(CSRF_HEADER, &token),
        None => builder,
    }
}

/// Sends a request; a non-2xx answer becomes an [`ApiError::Status`] with the daemon's message.
async fn send(request: Result<Request, gloo_net::Error>) -> Result<Response, ApiError> {
    let request = request.map_err(|e| ApiError::Unexpected(e.to_string()))?;
    let response = request.send().await.map_err(|e| ApiError::Unreachable(e.to_string()))?;
    if response.ok() {
        return Ok(response);
    }
    // Read the body as text first: an error body may not be JSON at all (a proxy's HTML page).
    let body = response.text().await.unwrap_or_default();
    if response.status() == 401 {
        unauthorized();
    }
    Err(status_error(response.status(), &response.status_text(), &body))
}

async fn decode<T: DeserializeOwned>(path: &str, response: Response) -> Result<T, ApiError> {
    let body = response.text().await.map_err(|e| ApiError::Unreachable(e.to_string()))?;
    serde_json::from_str(&body).map_err(|e| ApiError::Unexpected(format!("{path}: {e}")))
}

/// The error for a non-2xx answer: the daemon's own message (and field) if the body carries
/// one.
fn status_error(status: u16, status_text: &str, body: &str) -> ApiError {
    let (message, field) = match serde_json::from_str::<ErrorBody>(body) {
        Ok(ErrorBody { message, field }) if !message.trim().is_empty() => (message, field),
        _ if !status_text.is_empty() => (status_text.to_owned(), None),
        _ => ("request failed".to_owned(), None),
    };
    ApiError::Status { status, message, field }
}

/// The current session, or `None` when nobody is logged in.
pub async fn session() -> Result<Option<SessionInfo>, ApiError> {
    // Not through `send`: a 401 here is the ordinary "not logged in", not an expiry.
    let response = Request::get("/api/v1/auth/session")
        .send()
        .await
        .map_err(|e| ApiError::Unreachable(e.to_string()))?;
    if response.status() == 401 {
        return Ok(None);
    }
    let body = response.text().await.map_err(|e| ApiError::Unreachable(e.to_string()))?;
    if !response.ok() {
        return Err(status_error(response.status(), &response.status_text(), &body));
    }
    serde_json::from_str(&body).map(Some).map_err(|e| ApiError::Unexpected(format!("session: {e}")))
}

/// Logs in; the daemon sets the session cookie.
pub async fn login(username: String, password: String) -> Result<SessionInfo, ApiError> {
    let body = LoginRequest { username, password };
    let request = Request::post("/api/v1/auth/login").json(&body);
    let request = request.map_err(|e| ApiError::Unexpected(e.to_string()))?;
    let response = request.send().await.map_err(|e| ApiError::Unreachable(e.to_string()))?;
    let text = response.text().await.map_err(|e| ApiError::Unreachable(e.to_string()))?;
    if !response.ok() {
        return Err(status_error(response.status(), &response.status_text(), &text));
    }
    serde_json::from_str(&text).map_err(|e| ApiError::Unexpected(format!("login: {e}")))
}

/// Ends the session (the daemon clears the cookie).
pub async fn logout() -> Result<(), ApiError> {
    act(Method::POST, "/api/v1/auth/logout").await
}

/// `METHOD path` with `body` (as `team`, see [`send_json_as`]), reading the answer as JSON
/// lines as they arrive (a build's output): `on_line` gets each line. gloo-net reads whole bodies only, so this uses the
/// browser's fetch and the body's stream reader directly.
pub async fn stream_lines(
    path: &str,
    body: &JsValue,
    content_type: &str,
    team: Option<&str>,
    mut on_line: impl FnMut(&str),
) -> Result<(), ApiError> {
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(body);
    let headers = web_sys::Headers::new().map_err(js_error)?;
    headers.set("Content-Type", content_type).map_err(js_error)?;
    if let Some(token) = CSRF.with(|c| c.borrow().clone()) {
        headers.set(CSRF_HEADER, &token).map_err(js_error)?;
    }
    if let Some(team) = team {
        headers.set(TEAM_HEADER, team).map_err(js_error)?;
    }
    init.set_headers(&headers);
    let window = web_sys::window().ok_or_else(|| ApiError::Unexpected("no window".into()))?;
    let response: web_sys::Response = JsFuture::from(window.fetch_with_str_and_init(path, &init))
        .await
        .map_err(|e| ApiError::Unreachable(js_text(&e)))?
        .unchecked_into();
    if !response.ok() {
        let text = match response.text() {
            Ok(promise) => JsFuture::from(promise).await.ok().and_then(|t| t.as_string()).unwrap_or_default(),
            Err(_) => String::new(),
        };
        if response.status() == 401 {
            unauthorized();
        }
        return Err(status_error(response.status(), &response.status_text(), &text));
    }
    let stream = response.body().ok_or_else(|| ApiError::Unexpected("an empty answer".into()))?;
    let reader: web_sys::ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(|e| ApiError::Unreachable(js_text(&e)))?;
        let done = js_sys::Reflect::get(&chunk, &"done".into()).map(|d| d.is_truthy()).unwrap_or(true);
        if let Ok(value) = js_sys::Reflect::get(&chunk, &"value".into()) {
            if let Some(bytes) = value.dyn_ref::<js_sys::Uint8Array>() {
                pending.extend(bytes.to_vec());
            }
        }
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line[..line.len() - 1]);
            if !line.trim().is_empty() {
                on_line(&line);
            }
        }
        if done {
            let rest = String::from_utf8_lossy(&pending);
            if !rest.trim().is_empty() {
                on_line(&rest);
            }
            return Ok(());
        }
    }
}

fn js_error(e: JsValue) -> ApiError {
    ApiError::Unexpected(js_text(&e))
}

/// A thrown JavaScript value as text.
pub fn js_text(value: &JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| format!("{value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_error_prefers_the_daemons_message() {
        let err = status_error(404, "Not Found", r#"{"message":"no such image: x"}"#);
        assert_eq!(
            err,
            ApiError::Status { status: 404, message: "no such image: x".to_owned(), field: None }
        );
        assert_eq!(err.to_string(), "no such image: x (HTTP 404)");
        assert_eq!(err.message(), "no such image: x");
        assert_eq!(err.field(), None);
    }

    #[test]
    fn status_error_keeps_the_field_the_daemon_names() {
        let err = status_error(409, "Conflict", r#"{"message":"name in use","field":"name"}"#);
        assert_eq!(err.field(), Some("name"));
        assert_eq!(err.to_string(), "name in use (HTTP 409)");
    }

    #[test]
    fn status_error_falls_back_to_the_status_text() {
        let html = status_error(502, "Bad Gateway", "<html>proxy</html>");
        assert_eq!(html.to_string(), "Bad Gateway (HTTP 502)");
        let blank = status_error(500, "", r#"{"message":"  "}"#);
        assert_eq!(blank.to_string(), "request failed (HTTP 500)");
    }
}
