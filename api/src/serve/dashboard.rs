//! The dashboard: the files Trunk built into `dist/`, embedded in the binary at build time and
//! served at `/`, with every other path that is not a file answered by `index.html` (the app
//! routes in the browser).
//!
//! Every dashboard answer carries a Content-Security-Policy that lets the page run only its own
//! files: scripts from this origin and the inline start-up script Trunk writes into
//! `index.html` (by its SHA-256, computed from the embedded file), WebAssembly compiled from
//! them (`'wasm-unsafe-eval'`: no JavaScript `eval`), requests and WebSockets to this origin
//! only, and no framing by any other page (`frame-ancestors 'none'`, against clickjacking).
//! Styles may be inline: Leptos and xterm.js set `style` attributes and elements.

use std::sync::OnceLock;

use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine as _;
use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};

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
        None => with_policy((StatusCode::OK, Html(NOT_BUILT)).into_response()),
    }
}

fn file_response(path: &str, file: rust_embed::EmbeddedFile) -> Response {
    let mut response =
        ([(header::CONTENT_TYPE, file.metadata.mimetype().to_string())], file.data.into_owned())
            .into_response();
    if path == "index.html" {
        // It names the current wasm and JS bundles: a browser must not keep an old one.
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    with_policy(response)
}

fn with_policy(mut response: Response) -> Response {
    static POLICY: OnceLock<HeaderValue> = OnceLock::new();
    let policy = POLICY.get_or_init(|| {
        let index = Dist::get("index.html").map(|f| String::from_utf8_lossy(&f.data).into_owned());
        HeaderValue::from_str(&content_security_policy(index.as_deref().unwrap_or("")))
            .expect("the policy is ASCII")
    });
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, policy.clone());
    // For browsers without CSP's frame-ancestors.
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// The policy for a page whose HTML is `index`: its inline scripts are allowed by hash.
fn content_security_policy(index: &str) -> String {
    let hashes: String = inline_scripts(index)
        .map(|body| {
            let digest = Sha256::digest(body.as_bytes());
            format!(" 'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest))
        })
        .collect();
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'{hashes}; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

/// The text of each `<script>` element without a `src` (what a browser hashes for CSP).
fn inline_scripts(html: &str) -> impl Iterator<Item = &str> {
    let mut rest = html;
    std::iter::from_fn(move || loop {
        let start = rest.find("<script")?;
        let after = &rest[start..];
        let open_end = after.find('>')?;
        let tag = &after[..open_end];
        let body_and_more = &after[open_end + 1..];
        let close = body_and_more.find("</script>")?;
        rest = &body_and_more[close + "</script>".len()..];
        if !tag.contains(" src=") {
            return Some(&body_and_more[..close]);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_scripts_are_hashed() {
        let html = "<head><script src=\"/x.js\" integrity=\"sha384-a\"></script>\n<script type=\"module\">\nimport init from '/a.js';\n</script></head>";
        let scripts: Vec<&str> = inline_scripts(html).collect();
        assert_eq!(scripts, ["\nimport init from '/a.js';\n"]);
        let policy = content_security_policy(html);
        let digest = Sha256::digest(b"\nimport init from '/a.js';\n");
        let expected = format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest));
        assert!(policy.contains(&format!("script-src 'self' 'wasm-unsafe-eval' {expected};")), "{policy}");
        assert!(policy.contains("frame-ancestors 'none'"));
        assert!(!policy.contains("'unsafe-eval'"));
        assert!(!content_security_policy("<p>no scripts</p>").contains("sha256"));
    }
}
