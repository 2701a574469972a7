//! Headers on every answer of the daemon's HTTP listeners: `X-Content-Type-Options: nosniff`
//! everywhere (a browser must not run an answer as something it does not say it is), and
//! `Cache-Control: no-store` on API answers (they carry containers, users, audit rows: no
//! browser or proxy cache may keep them). The dashboard's own headers (its Content-Security-Policy)
//! are set where it is served (`serve::dashboard`).

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The middleware of berth's own API and dashboard router.
pub async fn berth_api(req: Request, next: Next) -> Response {
    let api = is_api_path(req.uri().path());
    let mut response = next.run(req).await;
    set(&mut response, api);
    response
}

/// The middleware of the Docker Engine API face: every answer is an API answer.
pub async fn docker_api(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    set(&mut response, true);
    response
}

/// `/api/...` and `/_ping`; the rest of the paths are the dashboard's.
fn is_api_path(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/") || path == "/_ping"
}

fn set(response: &mut Response, api: bool) {
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if api {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn api_paths() {
        assert!(super::is_api_path("/api/v1/containers/json"));
        assert!(super::is_api_path("/_ping"));
        assert!(!super::is_api_path("/containers"));
        assert!(!super::is_api_path("/apiary"));
        assert!(!super::is_api_path("/"));
    }
}
