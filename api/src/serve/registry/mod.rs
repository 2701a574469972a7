//! The registry server (`berth serve --registry-listen ADDR`): the OCI distribution API v2 over
//! the node's own content store. This module is the HTTP side only — paths, headers, bodies,
//! the error shape of the spec and the token flow (`auth`); who may do what is
//! `ops::distribution`, and the blobs and manifests are `berth_engine::distribution`.
//!
//! Repository names contain slashes, so one handler takes every `/v2/...` path and splits it at
//! its last `/manifests/`, `/blobs/`, `/tags/list` or `/referrers/`.

pub mod auth;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use berth_engine::distribution::{self as dist, Code, DistributionError};
use serde::Deserialize;

use super::auth::{client_address, Api, Principal};
use super::ops::distribution::{self as ops, Action, Refusal};
use super::ops::Caller;
use super::state::AppState;

/// The state of the registry's routes.
#[derive(Clone)]
struct Registry {
    app: AppState,
    tokens: Arc<auth::Tokens>,
    /// Whether the listener speaks TLS (the realm's scheme).
    tls: bool,
}

/// The registry's router, served on its own listener.
pub fn service(state: AppState, tls: bool) -> Router {
    let registry = Registry { app: state, tokens: Arc::new(auth::Tokens::default()), tls };
    Router::new()
        .route("/token", get(token))
        .route("/v2", get(base))
        .route("/v2/", get(base))
        .route("/v2/{*rest}", any(dispatch))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "NOT_FOUND", "not found") })
        .with_state(registry)
        .layer(axum::middleware::map_response(|mut response: Response| async move {
            response
                .headers_mut()
                .insert("Docker-Distribution-API-Version", HeaderValue::from_static("registry/2.0"));
            response
        }))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

/// The HTTP status of a spec error code.
pub fn status_of(code: Code) -> StatusCode {
    match code {
        Code::BlobUnknown | Code::BlobUploadUnknown | Code::ManifestUnknown | Code::NameUnknown => {
            StatusCode::NOT_FOUND
        }
        Code::BlobUploadInvalid
        | Code::DigestInvalid
        | Code::ManifestBlobUnknown
        | Code::ManifestInvalid
        | Code::NameInvalid
        | Code::SizeInvalid => StatusCode::BAD_REQUEST,
        Code::Unsupported => StatusCode::METHOD_NOT_ALLOWED,
        Code::RangeInvalid => StatusCode::RANGE_NOT_SATISFIABLE,
        Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An error in the spec's shape: `{"errors":[{"code","message","detail"}]}`.
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "errors": [{ "code": code, "message": message, "detail": null }] });
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn failure(e: DistributionError) -> Response {
    if e.code == Code::Internal {
        tracing::error!(error = %e.message, "registry request failed");
    }
    error(status_of(e.code), e.code.as_str(), &e.message)
}

/// What a `/v2/...` path names.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Catalog,
    Tags(String),
    Manifest(String, String),
    Blob(String, String),
    /// An upload: start (`None`) or one under way.
    Upload(String, Option<String>),
    Referrers(String, String),
}

fn parse_target(rest: &str) -> Option<Target> {
    if rest == "_catalog" {
        return Some(Target::Catalog);
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Target::Tags(name.to_string()));
    }
    if let Some(name) = rest.strip_suffix("/blobs/uploads").or_else(|| rest.strip_suffix("/blobs/uploads/")) {
        return Some(Target::Upload(name.to_string(), None));
    }
    let split = |marker: &str| {
        rest.rfind(marker)
            .map(|i| (rest[..i].to_string(), rest[i + marker.len()..].to_string()))
            .filter(|(name, last)| !name.is_empty() && !last.is_empty() && !last.contains('/'))
    };
    if let Some((name, id)) = split("/blobs/uploads/") {
        return Some(Target::Upload(name, Some(id)));
    }
    if let Some((name, reference)) = split("/manifests/") {
        return Some(Target::Manifest(name, reference));
    }
    if let Some((name, digest)) = split("/blobs/") {
        return Some(Target::Blob(name, digest));
    }
    if let Some((name, digest)) = split("/referrers/") {
        return Some(Target::Referrers(name, digest));
    }
    None
}

impl Target {
    fn repository(&self) -> Option<&str> {
        match self {
            Target::Catalog => None,
            Target::Tags(n)
            | Target::Manifest(n, _)
            | Target::Blob(n, _)
            | Target::Upload(n, _)
            | Target::Referrers(n, _) => Some(n),
        }
    }
}

/// One request, once its caller is known.
struct Call {
    registry: Registry,
    who: Option<Principal>,
    method: Method,
    path: String,
    headers: HeaderMap,
    query: Query,
    address: Option<std::net::IpAddr>,
}

#[derive(Debug, Default, Deserialize)]
struct Query {
    n: Option<usize>,
    last: Option<String>,
    digest: Option<String>,
    mount: Option<String>,
    from: Option<String>,
    #[serde(rename = "artifactType")]
    artifact_type: Option<String>,
}

impl Call {
    fn realm(&self) -> String {
        let host = self.headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
        format!("{}://{host}/token", if self.registry.tls { "https" } else { "http" })
    }

    fn unauthorized(&self, scope: Option<&str>, message: &str) -> Response {
        let mut response = error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message);
        if let Ok(v) = HeaderValue::from_str(&auth::challenge(&self.realm(), scope, false)) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        response
    }

    /// The caller as the operations layer knows it (for the audit log).
    fn caller(&self) -> Option<Caller> {
        let principal = self.who.clone()?;
        let mut caller = Caller::new(principal, self.method.as_str(), &self.path);
        caller.api = Api::Registry;
        Some(caller)
    }

    /// Refuses the request unless the caller may `action` in `path` (a repository's local path).
    async fn authorize(&self, name: &str, path: &str, action: Action) -> Result<(), Response> {
        let scope = format!(
            "repository:{name}:{}",
            match action {
                Action::Pull => "pull",
                Action::Push => "pull,push",
            }
        );
        match ops::authorize(&self.registry.app, self.who.as_ref(), path, action).await {
            Ok(()) => Ok(()),
            Err(Refusal::Unauthenticated) => Err(self.unauthorized(Some(&scope), "authentication required")),
            Err(Refusal::Denied(message)) => Err(error(StatusCode::FORBIDDEN, "DENIED", &message)),
            Err(Refusal::Unknown) => Err(error(
                StatusCode::NOT_FOUND,
                "NAME_UNKNOWN",
                &format!("repository name not known to registry: {name}"),
            )),
            Err(Refusal::Failed(e)) => Err(error(e.status, "UNKNOWN", &e.message)),
        }
    }
}

/// `GET /v2/`: the API is here; 401 with the challenge until the client has credentials.
async fn base(State(registry): State<Registry>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let call = match identify(&registry, &parts).await {
        Ok(call) => call,
        Err(response) => return response,
    };
    if call.who.is_none() && parts.headers.get(header::AUTHORIZATION).is_none() {
        return call.unauthorized(None, "authentication required");
    }
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], "{}").into_response()
}

async fn identify(registry: &Registry, parts: &axum::http::request::Parts) -> Result<Call, Response> {
    let path = parts.uri.path().to_string();
    let address = client_address(&parts.extensions);
    let query: Query = match parts.uri.query() {
        Some(q) => serde_urlencoded_query(q)
            .map_err(|e| error(StatusCode::BAD_REQUEST, "UNSUPPORTED", &format!("bad query: {e}")))?,
        None => Query::default(),
    };
    let mut call = Call {
        registry: registry.clone(),
        who: None,
        method: parts.method.clone(),
        path: path.clone(),
        headers: parts.headers.clone(),
        query,
        address,
    };
    match auth::identify(
        &registry.app,
        &registry.tokens,
        &parts.headers,
        address,
        &path,
        parts.method.as_str(),
    )
    .await
    {
        Ok(auth::Identity::Caller(p)) => call.who = Some(p),
        Ok(auth::Identity::Anonymous) => {}
        Err(bad) if bad.throttled => {
            return Err(error(StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS", &bad.message));
        }
        Err(bad) => return Err(call.unauthorized(None, &bad.message)),
    }
    Ok(call)
}

fn serde_urlencoded_query(q: &str) -> Result<Query, String> {
    axum::extract::Query::<Query>::try_from_uri(&format!("/?{q}").parse().map_err(|e| format!("{e}"))?)
        .map(|q| q.0)
        .map_err(|e| e.body_text())
}

#[derive(Debug, Deserialize)]
struct TokenQuery {
    scope: Option<String>,
}

/// `GET /token`: a token for whoever the Basic credentials say (none: anonymous).
async fn token(State(registry): State<Registry>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let _scope = axum::extract::Query::<TokenQuery>::try_from_uri(&parts.uri).ok().and_then(|q| q.0.scope);
    let address = client_address(&parts.extensions);
    let who = match auth::identify(&registry.app, &registry.tokens, &parts.headers, address, "/token", "GET")
        .await
    {
        Ok(auth::Identity::Caller(p)) => Some(p),
        Ok(auth::Identity::Anonymous) => None,
        Err(bad) if bad.throttled => {
            return error(StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS", &bad.message)
        }
        Err(bad) => return error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", &bad.message),
    };
    let secret = registry.tokens.issue(who);
    let body = serde_json::json!({
        "token": secret,
        "access_token": secret,
        "expires_in": auth::TOKEN_LIFETIME.as_secs(),
        "issued_at": chrono::Utc::now().to_rfc3339(),
    });
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// Every `/v2/<name>/...` request.
async fn dispatch(State(registry): State<Registry>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let call = match identify(&registry, &parts).await {
        Ok(call) => call,
        Err(response) => return response,
    };
    let rest = parts.uri.path().strip_prefix("/v2/").unwrap_or("");
    let Some(target) = parse_target(rest) else {
        return error(StatusCode::NOT_FOUND, "NOT_FOUND", &format!("no such endpoint: {}", parts.uri.path()));
    };
    let path = match target.repository().map(dist::repository_path) {
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => return failure(e),
        None => None,
    };
    let path = path.as_deref().unwrap_or("");
    let result = match (&call.method, &target) {
        (&Method::GET, Target::Catalog) => catalog(&call).await,
        (&Method::GET, Target::Tags(name)) => tags(&call, name, path).await,
        (&Method::GET | &Method::HEAD, Target::Manifest(name, reference)) => {
            get_manifest(&call, name, path, reference).await
        }
        (&Method::PUT, Target::Manifest(name, reference)) => {
            put_manifest(&call, name, path, reference, body).await
        }
        (&Method::DELETE, Target::Manifest(name, reference)) => {
            delete_manifest(&call, name, path, reference).await
        }
        (&Method::GET | &Method::HEAD, Target::Blob(name, digest)) => {
            get_blob(&call, name, path, digest).await
        }
        (&Method::DELETE, Target::Blob(..)) => {
            Err(failure(DistributionError::new(Code::Unsupported, "blobs are deleted by garbage collection")))
        }
        (&Method::POST, Target::Upload(name, None)) => start_upload(&call, name, path, body).await,
        (&Method::PATCH, Target::Upload(name, Some(id))) => patch_upload(&call, name, path, id, body).await,
        (&Method::PUT, Target::Upload(name, Some(id))) => put_upload(&call, name, path, id, body).await,
        (&Method::GET, Target::Upload(name, Some(id))) => upload_status(&call, name, path, id).await,
        (&Method::DELETE, Target::Upload(name, Some(id))) => cancel_upload(&call, name, path, id).await,
        (&Method::GET, Target::Referrers(name, digest)) => referrers(&call, name, path, digest).await,
        _ => Err(failure(DistributionError::new(
            Code::Unsupported,
            format!("{} is not supported on {}", call.method, parts.uri.path()),
        ))),
    };
    result.unwrap_or_else(|r| r)
}

type Answer = Result<Response, Response>;

/// Cuts a sorted list at `last` (exclusive) and `n`, with the `Link` header of the next page.
fn paginate(mut items: Vec<String>, query: &Query, base: &str) -> (Vec<String>, Option<String>) {
    if let Some(last) = &query.last {
        items.retain(|i| i > last);
    }
    let Some(n) = query.n else { return (items, None) };
    if items.len() <= n {
        return (items, None);
    }
    items.truncate(n);
    let last = items.last().cloned().unwrap_or_default();
    let encoded = percent_encoding::utf8_percent_encode(&last, percent_encoding::NON_ALPHANUMERIC);
    (items, Some(format!("<{base}?last={encoded}&n={n}>; rel=\"next\"")))
}

fn json_with_link(body: serde_json::Value, link: Option<String>) -> Response {
    let mut response =
        (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response();
    if let Some(link) = link.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LINK, link);
    }
    response
}

async fn catalog(call: &Call) -> Answer {
    let all = dist::catalog(&call.registry.app.engine).await.map_err(failure)?;
    let mut visible = Vec::new();
    for name in all {
        if ops::authorize(&call.registry.app, call.who.as_ref(), &name, Action::Pull).await.is_ok() {
            visible.push(name);
        }
    }
    let (page, link) = paginate(visible, &call.query, "/v2/_catalog");
    Ok(json_with_link(serde_json::json!({ "repositories": page }), link))
}

async fn tags(call: &Call, name: &str, path: &str) -> Answer {
    call.authorize(name, path, Action::Pull).await?;
    let tags = dist::tags(&call.registry.app.engine, path).await.map_err(failure)?;
    let (page, link) = paginate(tags, &call.query, &format!("/v2/{name}/tags/list"));
    Ok(json_with_link(serde_json::json!({ "name": name, "tags": page }), link))
}

fn digest_headers(response: &mut Response, digest: &str) {
    if let Ok(v) = HeaderValue::from_str(digest) {
        response.headers_mut().insert("Docker-Content-Digest", v);
    }
}

async fn get_manifest(call: &Call, name: &str, path: &str, reference: &str) -> Answer {
    call.authorize(name, path, Action::Pull).await?;
    let manifest = dist::get_manifest(&call.registry.app.engine, path, reference).await.map_err(failure)?;
    let length = manifest.bytes.len();
    let body = if call.method == Method::HEAD { Body::empty() } else { Body::from(manifest.bytes) };
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&manifest.media_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    digest_headers(&mut response, manifest.digest.as_ref());
    if call.method == Method::GET {
        let digest = manifest.digest.to_string();
        ops::record_pull(
            &call.registry.app,
            call.who.as_ref(),
            &call.path,
            call.address,
            name,
            reference,
            &digest,
        )
        .await;
    }
    Ok(response)
}

async fn put_manifest(call: &Call, name: &str, path: &str, reference: &str, body: Body) -> Answer {
    call.authorize(name, path, Action::Push).await?;
    let caller = call.caller().ok_or_else(|| call.unauthorized(None, "authentication required"))?;
    let bytes = axum::body::to_bytes(body, dist::MANIFEST_LIMIT)
        .await
        .map_err(|_| failure(DistributionError::new(Code::SizeInvalid, "manifest too large or cut short")))?;
    let content_type =
        call.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let pushed =
        ops::put_manifest(&call.registry.app, &caller, path, reference, content_type, bytes.to_vec())
            .await
            .map_err(failure)?;
    let mut response = StatusCode::CREATED.into_response();
    let location = format!("/v2/{name}/manifests/{}", pushed.digest);
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    digest_headers(&mut response, pushed.digest.as_ref());
    if let Some(subject) = pushed.subject.and_then(|s| HeaderValue::from_str(&s).ok()) {
        response.headers_mut().insert("OCI-Subject", subject);
    }
    Ok(response)
}

async fn delete_manifest(call: &Call, name: &str, path: &str, reference: &str) -> Answer {
    call.authorize(name, path, Action::Push).await?;
    let caller = call.caller().ok_or_else(|| call.unauthorized(None, "authentication required"))?;
    ops::delete_manifest(&call.registry.app, &caller, path, reference).await.map_err(failure)?;
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn get_blob(call: &Call, name: &str, path: &str, digest: &str) -> Answer {
    call.authorize(name, path, Action::Pull).await?;
    let (mut file, size) = dist::open_blob(&call.registry.app.engine, path, digest).await.map_err(failure)?;
    let range = match call.headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(text) => match byte_range(text, size) {
            Ok(range) => range,
            Err(()) => {
                let mut response = failure(DistributionError::new(
                    Code::RangeInvalid,
                    format!("range {text:?} is not satisfiable: the blob has {size} bytes"),
                ));
                let unsatisfied = HeaderValue::from_str(&format!("bytes */{size}")).expect("a header value");
                response.headers_mut().insert(header::CONTENT_RANGE, unsatisfied);
                return Err(response);
            }
        },
        None => None,
    };
    let (start, length) = range.map_or((0, size), |(start, end)| (start, end - start + 1));
    let body = if call.method == Method::HEAD {
        Body::empty()
    } else {
        if start > 0 {
            use std::io::Seek;
            file.seek(std::io::SeekFrom::Start(start)).map_err(|e| {
                failure(DistributionError::new(Code::Internal, format!("reading blob {digest}: {e}")))
            })?;
        }
        tracing::info!(repository = name, digest, bytes = length, "blob served");
        // Streamed from the content store's file as it lies: no copy is made.
        Body::from_stream(blob_stream(file, length))
    };
    let status = if range.is_some() { StatusCode::PARTIAL_CONTENT } else { StatusCode::OK };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some((start, end)) = range {
        let value = HeaderValue::from_str(&format!("bytes {start}-{end}/{size}")).expect("a header value");
        headers.insert(header::CONTENT_RANGE, value);
    }
    digest_headers(&mut response, digest);
    Ok(response)
}

/// The one range (inclusive `(start, end)`) a `Range: bytes=...` header asks of a blob of
/// `size` bytes: `Ok(None)` when the header is to be ignored (another unit, several ranges, a
/// malformed value: the whole blob is sent, as RFC 9110 allows), `Err` when no byte of it exists.
fn byte_range(text: &str, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = text.trim().strip_prefix("bytes=") else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.split_once('-') else { return Ok(None) };
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| s.parse::<u64>().ok();
    match (first.is_empty(), last.is_empty()) {
        // `bytes=-N`: the last N bytes.
        (true, false) => match number(last) {
            Some(0) => Err(()),
            Some(_) if size == 0 => Err(()),
            Some(n) => Ok(Some((size.saturating_sub(n), size - 1))),
            None => Ok(None),
        },
        (false, _) => {
            let Some(start) = number(first) else { return Ok(None) };
            let end = if last.is_empty() { Some(u64::MAX) } else { number(last) };
            match end {
                None => Ok(None),
                Some(end) if end < start => Ok(None),
                Some(_) if start >= size => Err(()),
                Some(end) => Ok(Some((start, end.min(size - 1)))),
            }
        }
        (true, true) => Ok(None),
    }
}

/// `length` bytes of a blob file from where it stands, read on a blocking thread in large
/// chunks (one system call per MiB, no hashing: the store checked the blob when it came in).
fn blob_stream(
    file: std::fs::File,
    length: u64,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    const CHUNK: usize = 1 << 20;
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut reader = file.take(length);
        loop {
            let mut buffer = bytes::BytesMut::zeroed(CHUNK);
            let result = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => {
                    buffer.truncate(n);
                    Ok(buffer.freeze())
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
            let failed = result.is_err();
            // The client went away: stop reading.
            if tx.blocking_send(result).is_err() || failed {
                break;
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

fn upload_answer(status: StatusCode, name: &str, id: &str, offset: u64) -> Response {
    let mut response = status.into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("/v2/{name}/blobs/uploads/{id}")) {
        headers.insert(header::LOCATION, v);
    }
    // The spec's inclusive range of what the upload holds; "0-0" for nothing yet.
    let range = format!("0-{}", offset.saturating_sub(1));
    headers.insert(header::RANGE, HeaderValue::from_str(&range).expect("a range is a header value"));
    if let Ok(v) = HeaderValue::from_str(id) {
        headers.insert("Docker-Upload-UUID", v);
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    response
}

fn blob_created(name: &str, digest: &str) -> Response {
    let mut response = StatusCode::CREATED.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/v2/{name}/blobs/{digest}")) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    digest_headers(&mut response, digest);
    response
}

fn body_stream(body: Body) -> impl futures_util::Stream<Item = Result<bytes::Bytes, axum::Error>> + Unpin {
    body.into_data_stream()
}

async fn start_upload(call: &Call, name: &str, path: &str, body: Body) -> Answer {
    call.authorize(name, path, Action::Push).await?;
    let engine = &call.registry.app.engine;
    if let (Some(digest), Some(from)) = (&call.query.mount, &call.query.from) {
        // A mount needs the right to pull from the other repository; without it, or when it
        // does not have the blob, the client uploads as usual.
        if let Ok(from_path) = dist::repository_path(from) {
            if call.authorize(from, &from_path, Action::Pull).await.is_ok()
                && dist::mount_blob(engine, path, &from_path, digest).await.map_err(failure)?
            {
                return Ok(blob_created(name, digest));
            }
        }
    }
    let id = dist::start_upload(engine, path).await.map_err(failure)?;
    let Some(digest) = call.query.digest.clone() else {
        return Ok(upload_answer(StatusCode::ACCEPTED, name, &id, 0));
    };
    // A monolithic upload: the blob is the body of this POST.
    let caller = call.caller().ok_or_else(|| call.unauthorized(None, "authentication required"))?;
    let written = dist::write_upload(engine, path, &id, None, body_stream(body)).await;
    if let Err(e) = written {
        let _ = dist::cancel_upload(engine, path, &id).await;
        return Err(failure(e));
    }
    ops::finish_upload(&call.registry.app, &caller, path, &id, &digest).await.map_err(failure)?;
    Ok(blob_created(name, &digest))
}

/// The start of a `Content-Range: <start>-<end>` (the spec's form, without `bytes `).
fn range_start(headers: &HeaderMap) -> Result<Option<u64>, DistributionError> {
    let Some(value) = headers.get(header::CONTENT_RANGE) else { return Ok(None) };
    let text = value.to_str().unwrap_or("");
    let text = text.strip_prefix("bytes ").unwrap_or(text);
    text.split('-')
        .next()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(Some)
        .ok_or_else(|| DistributionError::new(Code::RangeInvalid, "malformed Content-Range"))
}

async fn patch_upload(call: &Call, name: &str, path: &str, id: &str, body: Body) -> Answer {
    call.authorize(name, path, Action::Push).await?;
    let start = range_start(&call.headers).map_err(failure)?;
    let engine = &call.registry.app.engine;
    let offset = dist::write_upload(engine, path, id, start, body_stream(body)).await.map_err(|e| {
        if e.code == Code::RangeInvalid {
            // Tell the client where the upload stands, so that it resumes from there.
            let mut response = failure(e);
            if let Ok(offset) =
                futures_util::FutureExt::now_or_never(dist::upload_offset(engine, path, id)).unwrap_or(Ok(0))
            {
                let range = format!("0-{}", offset.saturating_sub(1));
                response.headers_mut().insert(header::RANGE, HeaderValue::from_str(&range).expect("a range"));
            }
            return response;
        }
        failure(e)
    })?;
    Ok(upload_answer(StatusCode::ACCEPTED, name, id, offset))
}

async fn put_upload(call: &Call, name: &str, path: &str, id: &str, body: Body) -> Answer {
    call.authorize(name, path, Action::Push).await?;
    let caller = call.caller().ok_or_else(|| call.unauthorized(None, "authentication required"))?;
    let Some(digest) = call.query.digest.clone() else {
        return Err(failure(DistributionError::new(
            Code::DigestInvalid,
            "the digest query parameter is missing",
        )));
    };
    let engine = &call.registry.app.engine;
    let start = range_start(&call.headers).map_err(failure)?;
    dist::write_upload(engine, path, id, start, body_stream(body)).await.map_err(failure)?;
    ops::finish_upload(&call.registry.app, &caller, path, id, &digest).await.map_err(failure)?;
    Ok(blob_created(name, &digest))
}

async fn upload_status(call: &Call, name: &str, path: &str, id: &str) -> Answer {
    call.authorize(name, path, Action::Push).await?;
    let offset = dist::upload_offset(&call.registry.app.engine, path, id).await.map_err(failure)?;
    Ok(upload_answer(StatusCode::NO_CONTENT, name, id, offset))
}

async fn cancel_upload(call: &Call, name: &str, path: &str, id: &str) -> Answer {
    call.authorize(name, path, Action::Push).await?;
    dist::cancel_upload(&call.registry.app.engine, path, id).await.map_err(failure)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn referrers(call: &Call, name: &str, path: &str, digest: &str) -> Answer {
    call.authorize(name, path, Action::Pull).await?;
    let filter = call.query.artifact_type.clone();
    let filtered = filter.is_some();
    let index = dist::referrers(&call.registry.app.engine, path, digest, filter).await.map_err(failure)?;
    let mut response = (StatusCode::OK, [(header::CONTENT_TYPE, dist::OCI_INDEX)], index).into_response();
    if filtered {
        response.headers_mut().insert("OCI-Filters-Applied", HeaderValue::from_static("artifactType"));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_at_their_last_marker() {
        assert_eq!(parse_target("_catalog"), Some(Target::Catalog));
        assert_eq!(parse_target("team/app/tags/list"), Some(Target::Tags("team/app".into())));
        assert_eq!(
            parse_target("a/manifests/b/manifests/v1"),
            Some(Target::Manifest("a/manifests/b".into(), "v1".into()))
        );
        assert_eq!(parse_target("x/blobs/uploads/"), Some(Target::Upload("x".into(), None)));
        assert_eq!(parse_target("x/blobs/uploads/abc"), Some(Target::Upload("x".into(), Some("abc".into()))));
        assert_eq!(parse_target("x/y/blobs/sha256:00"), Some(Target::Blob("x/y".into(), "sha256:00".into())));
        assert_eq!(
            parse_target("x/referrers/sha256:00"),
            Some(Target::Referrers("x".into(), "sha256:00".into()))
        );
        assert_eq!(parse_target("x/manifests/"), None);
        assert_eq!(parse_target("nothing"), None);
    }

    #[test]
    fn byte_ranges_as_http_reads_them() {
        assert_eq!(byte_range("bytes=0-99", 1000), Ok(Some((0, 99))));
        assert_eq!(byte_range("bytes=900-", 1000), Ok(Some((900, 999))));
        assert_eq!(byte_range("bytes=900-5000", 1000), Ok(Some((900, 999))));
        assert_eq!(byte_range("bytes=-100", 1000), Ok(Some((900, 999))));
        assert_eq!(byte_range("bytes=-5000", 1000), Ok(Some((0, 999))));
        assert_eq!(byte_range("bytes=1000-", 1000), Err(()));
        assert_eq!(byte_range("bytes=-0", 1000), Err(()));
        assert_eq!(byte_range("bytes=0-", 0), Err(()));
        // Ignored: the whole blob is sent.
        for ignored in ["items=0-1", "bytes=0-1,5-6", "bytes=5-1", "bytes=x-1", "bytes=-", "bytes=0"] {
            assert_eq!(byte_range(ignored, 1000), Ok(None), "{ignored}");
        }
    }

    #[test]
    fn pages_end_with_a_link_to_the_next() {
        let items: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let query = Query { n: Some(2), ..Query::default() };
        let (page, link) = paginate(items.clone(), &query, "/v2/_catalog");
        assert_eq!(page, ["a", "b"]);
        assert_eq!(link.as_deref(), Some("</v2/_catalog?last=b&n=2>; rel=\"next\""));
        let query = Query { n: Some(2), last: Some("b".into()), ..Query::default() };
        assert_eq!(paginate(items, &query, "/v2/_catalog"), (vec!["c".to_string()], None));
    }
}
