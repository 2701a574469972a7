//! Calls to the daemon's HTTP API. The daemon serves this page itself, so every URL is relative
//! to the page's origin (`/api/v1/...`) and needs no CORS.

use std::fmt;

use berth_types::{ErrorBody, ImageSummary, SystemInfo};
use gloo_net::http::Request;
use serde::de::DeserializeOwned;

/// Why an API call gave no answer the page can show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// The request never got an HTTP answer: the daemon is stopped, or the network is down.
    Unreachable(String),
    /// The daemon answered with an error status; `message` is its `{"message": ...}` or, for a
    /// body without one, the status text.
    Status { status: u16, message: String },
    /// The daemon answered 2xx with a body that is not what this page expects (a daemon of
    /// another version, or a proxy's page).
    Unexpected(String),
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Unreachable(detail) => write!(f, "cannot reach the berth daemon: {detail}"),
            ApiError::Status { status, message } => write!(f, "{message} (HTTP {status})"),
            ApiError::Unexpected(detail) => write!(f, "unexpected answer from the daemon: {detail}"),
        }
    }
}

/// `GET /api/v1/info`.
pub async fn system_info() -> Result<SystemInfo, ApiError> {
    get_json("/api/v1/info").await
}

/// `GET /api/v1/images`.
pub async fn images() -> Result<Vec<ImageSummary>, ApiError> {
    get_json("/api/v1/images").await
}

async fn get_json<T: DeserializeOwned>(path: &str) -> Result<T, ApiError> {
    let response = Request::get(path)
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| ApiError::Unreachable(e.to_string()))?;
    // Read the body as text first: an error body may not be JSON at all (a proxy's HTML page),
    // and a decode error should say what was wrong with it.
    let body = response.text().await.map_err(|e| ApiError::Unreachable(e.to_string()))?;
    if !response.ok() {
        return Err(status_error(response.status(), &response.status_text(), &body));
    }
    serde_json::from_str(&body).map_err(|e| ApiError::Unexpected(format!("GET {path}: {e}")))
}

/// The error for a non-2xx answer: the daemon's own message if the body carries one.
fn status_error(status: u16, status_text: &str, body: &str) -> ApiError {
    let message = match serde_json::from_str::<ErrorBody>(body) {
        Ok(ErrorBody { message }) if !message.trim().is_empty() => message,
        _ if !status_text.is_empty() => status_text.to_owned(),
        _ => "request failed".to_owned(),
    };
    ApiError::Status { status, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_error_prefers_the_daemons_message() {
        let err = status_error(404, "Not Found", r#"{"message":"no such image: x"}"#);
        assert_eq!(err, ApiError::Status { status: 404, message: "no such image: x".to_owned() });
        assert_eq!(err.to_string(), "no such image: x (HTTP 404)");
    }

    #[test]
    fn status_error_falls_back_to_the_status_text() {
        let html = status_error(502, "Bad Gateway", "<html>proxy</html>");
        assert_eq!(html.to_string(), "Bad Gateway (HTTP 502)");
        let blank = status_error(500, "", r#"{"message":"  "}"#);
        assert_eq!(blank.to_string(), "request failed (HTTP 500)");
    }
}
