//! The dashboard: the files Trunk built into `dist/`, embedded in the binary at build time and
//! served at `/`, with every other path that is not a file answered by `index.html` (the app
//! routes in the browser).

use axum::http::{header, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "../dist"]
#[allow_missing = true]
struct Dist;

/// What `/` answers when the binary was built without the dashboard.
const NOT_BUILT: &str = "<!doctype html>
<html lang=\"en\">
<head><meta charset=\"utf-8\"><title>berth</title></head>
<body>
<h1>berth</h1>
<p>The daemon is running, but this binary was built without the dashboard.</p>
<p>Build it with <code>scripts/start.sh</code>, or by hand: <code>trunk build --release --offline</code>
(it writes <code>dist/</code>), then <code>cargo build -p berth</code> again to embed it.</p>
<p>The API answers under <a href=\"/api/v1/version\"><code>/api/v1</code></a>.</p>
</body>
</html>
";

/// Serves a dashboard file, `index.html` for app routes, or the not-built page.
pub async fn serve(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    if let Some(file) = (!path.is_empty()).then(|| Dist::get(path)).flatten() {
        return file_response(path, file);
    }
    match Dist::get("index.html") {
        Some(index) => file_response("index.html", index),
        None => (StatusCode::OK, Html(NOT_BUILT)).into_response(),
    }
}

fn file_response(path: &str, file: rust_embed::EmbeddedFile) -> Response {
    let mut response =
        ([(header::CONTENT_TYPE, file.metadata.mimetype().to_string())], file.data.into_owned())
            .into_response();
    if path == "index.html" {
        // It names the current wasm and JS bundles: a browser must not keep an old one.
        response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-cache"));
    }
    response
}
