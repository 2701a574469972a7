//! The REST API under `/api/v1`, plus `/_ping` and the dashboard.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_engine::{Engine, SnapshotterKind};
use berth_types::{
    Event, ImageDeleteItem, ImageInspect, ImagePruneReport, ImageSummary, ImportReport, LoadReport,
    SystemInfo, TagRequest, VersionInfo,
};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio_util::io::{ReaderStream, StreamReader};
use tower_http::trace::TraceLayer;

use super::dashboard;
use super::error::{ApiError, ApiJson};
use super::events::{EventLog, Outcome};

/// JSON request bodies larger than this are refused with 413. Streamed bodies (import, load)
/// are not limited: they are read as streams, not buffered.
pub const JSON_BODY_LIMIT: usize = 1024 * 1024;

/// Version of the HTTP API, as `version` reports it.
pub const API_VERSION: &str = "v1";

/// What every handler works with.
#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub events: EventLog,
    pub root: PathBuf,
    pub run_dir: PathBuf,
}

/// The whole HTTP surface of the daemon.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/_ping", get(ping))
        .route("/api/v1/version", get(version))
        .route("/api/v1/info", get(info))
        .route("/api/v1/events", get(events))
        .route("/api/v1/images", get(list_images))
        // Fixed paths win over `{name}` in the router, so an image literally named `prune`
        // must be sent percent-encoded (the CLI does that).
        .route("/api/v1/images/prune", post(prune_images))
        .route("/api/v1/images/import", post(import_image))
        .route("/api/v1/images/load", post(load_images))
        .route("/api/v1/images/save", get(save_images))
        .route("/api/v1/images/{name}", get(inspect_image).delete(remove_image))
        .route("/api/v1/images/{name}/tag", post(tag_image))
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
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
    ApiError { status: StatusCode::METHOD_NOT_ALLOWED, message: "method not allowed".into() }.into_response()
}

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

async fn version() -> Json<VersionInfo> {
    Json(version_info())
}

async fn info(State(state): State<AppState>) -> Result<Json<SystemInfo>, ApiError> {
    let images = state.engine.list_images().await?.len();
    let root = state.root.clone();
    // Disk usage walks the trees: keep it off the reactor.
    let (blobs_size, layers_size) = tokio::task::spawn_blocking(move || {
        (
            berth_engine::fsutil::disk_usage(&root.join("blobs")),
            berth_engine::fsutil::disk_usage(&root.join("snapshots")),
        )
    })
    .await
    .map_err(|e| ApiError::internal(format!("measuring disk usage: {e}")))?;
    Ok(Json(SystemInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        root: state.root.display().to_string(),
        run_dir: state.run_dir.display().to_string(),
        snapshotter: snapshotter_name(state.engine.snapshotter()).to_string(),
        images,
        blobs_size,
        layers_size,
    }))
}

/// The name `--snapshotter` takes and `info` shows.
pub fn snapshotter_name(kind: SnapshotterKind) -> &'static str {
    match kind {
        SnapshotterKind::Overlay => "overlay",
        SnapshotterKind::Copy => "copy",
    }
}

async fn list_images(State(state): State<AppState>) -> Result<Json<Vec<ImageSummary>>, ApiError> {
    Ok(Json(state.engine.list_images().await?))
}

async fn inspect_image(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ImageInspect>, ApiError> {
    Ok(Json(state.engine.inspect_image(&name).await?))
}

async fn tag_image(
    State(state): State<AppState>,
    Path(source): Path<String>,
    ApiJson(request): ApiJson<TagRequest>,
) -> Result<StatusCode, ApiError> {
    let result = state.engine.tag_image(&source, &request.target).await;
    match &result {
        Ok(()) => {
            state
                .events
                .record("image", "tag", &request.target, Outcome::Success, &format!("tagged {source}"))
                .await
        }
        Err(e) => {
            state.events.record("image", "tag", &request.target, Outcome::Failure, &e.to_string()).await
        }
    }
    result?;
    Ok(StatusCode::CREATED)
}

async fn remove_image(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<ImageDeleteItem>>, ApiError> {
    let query = QueryParams::parse(query, &["force"])?;
    let force = query.flag("force")?;
    match state.engine.remove_image(&name, force).await {
        Ok(items) => {
            for item in &items {
                let (action, subject) = match item {
                    ImageDeleteItem::Untagged(r) => ("untag", r),
                    ImageDeleteItem::Deleted(id) => ("delete", id),
                };
                state.events.record("image", action, subject, Outcome::Success, &format!("rmi {name}")).await;
            }
            Ok(Json(items))
        }
        Err(e) => {
            state.events.record("image", "delete", &name, Outcome::Failure, &e.to_string()).await;
            Err(e.into())
        }
    }
}

async fn prune_images(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<ImagePruneReport>, ApiError> {
    let query = QueryParams::parse(query, &["all"])?;
    let all = query.flag("all")?;
    let subject = if all { "all unused images" } else { "dangling images" };
    match state.engine.prune_images(all).await {
        Ok(report) => {
            let deleted =
                report.images_deleted.iter().filter(|i| matches!(i, ImageDeleteItem::Deleted(_))).count();
            let message = format!("{deleted} images deleted, {} bytes reclaimed", report.space_reclaimed);
            state.events.record("image", "prune", subject, Outcome::Success, &message).await;
            Ok(Json(report))
        }
        Err(e) => {
            state.events.record("image", "prune", subject, Outcome::Failure, &e.to_string()).await;
            Err(e.into())
        }
    }
}

async fn import_image(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Json<ImportReport>, ApiError> {
    let query = QueryParams::parse(query, &["reference", "change", "message"])?;
    let reference = query.one("reference")?.filter(|r| !r.is_empty()).map(str::to_string);
    let changes: Vec<String> = query.all("change").map(str::to_string).collect();
    let message = query.one("message")?.map(str::to_string);
    let subject = reference.clone().unwrap_or_default();

    let (reader, pump) = BodyPump::start(body);
    let result = state.engine.import_image(reader, reference, changes, message).await;
    pump.finish().await;
    match result {
        Ok(report) => {
            let subject = report.reference.clone().unwrap_or_else(|| report.id.clone());
            state
                .events
                .record("image", "import", &subject, Outcome::Success, &format!("imported {}", report.id))
                .await;
            Ok(Json(report))
        }
        Err(e) => {
            state.events.record("image", "import", &subject, Outcome::Failure, &e.to_string()).await;
            Err(e.into())
        }
    }
}

async fn load_images(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Json<LoadReport>, ApiError> {
    QueryParams::parse(query, &[])?;
    let (reader, pump) = BodyPump::start(body);
    let result = state.engine.load_images(reader).await;
    pump.finish().await;
    match result {
        Ok(report) => {
            for image in &report.loaded {
                let subject = image.reference.clone().unwrap_or_else(|| image.id.clone());
                state
                    .events
                    .record("image", "load", &subject, Outcome::Success, &format!("loaded {}", image.id))
                    .await;
            }
            Ok(Json(report))
        }
        Err(e) => {
            state.events.record("image", "load", "", Outcome::Failure, &e.to_string()).await;
            Err(e.into())
        }
    }
}

async fn save_images(State(state): State<AppState>, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    let query = QueryParams::parse(query, &["name"])?;
    let names: Vec<String> = query.all("name").map(str::to_string).collect();
    // Everything that can be refused (unknown names, ...) is refused here, before the 200.
    let plan = state.engine.prepare_save(names).await?;

    let (writer, reader) = tokio::io::duplex(STREAM_BUFFER);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let engine = state.engine.clone();
    tokio::spawn(async move {
        let _ = done_tx.send(plan.write_to(&engine, writer).await);
    });
    // When the writer fails half-way, the body must end in an error (the connection is cut),
    // not in a clean end that the client would take for a complete tar.
    let tail = futures_util::stream::once(async move {
        match done_rx.await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "save failed while streaming");
                Some(Err(io::Error::other(e.to_string())))
            }
            Err(_) => Some(Err(io::Error::other("save ended unexpectedly"))),
        }
    })
    .filter_map(|item| async move { item });
    let stream = ReaderStream::with_capacity(reader, STREAM_BUFFER).chain(tail);
    Ok(([(header::CONTENT_TYPE, "application/x-tar")], Body::from_stream(stream)).into_response())
}

async fn events(
    State(state): State<AppState>,
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
    let before = query.number("before")?;
    let events = state
        .events
        .list(limit, before)
        .await
        .map_err(|e| ApiError::internal(format!("reading events: {e}")))?;
    Ok(Json(events))
}

/// Bytes buffered between a request or response body and the engine.
const STREAM_BUFFER: usize = 256 * 1024;

/// How long a refused upload is still read (and thrown away) so that the client, still
/// sending, receives the error answer instead of a reset connection.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Request body chunks buffered between the connection and the engine.
const PUMP_CHUNKS: usize = 32;

/// What the engine reads a request body from.
type BodyReader = StreamReader<Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>, Bytes>;

/// Feeds a request body to the engine through a channel. Two things a plain pipe would get
/// wrong: when the client goes away mid-upload, the engine must see an error, not an end of
/// input (a tar cut at an entry boundary looks complete); and when the engine stops reading
/// early (it refused the input), the rest of the body is still read and thrown away, because
/// answering while the client is still sending makes the kernel reset the connection and the
/// client would see a broken pipe instead of the error message.
struct BodyPump {
    task: tokio::task::JoinHandle<()>,
}

impl BodyPump {
    fn start(body: Body) -> (BodyReader, BodyPump) {
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(PUMP_CHUNKS);
        let task = tokio::spawn(async move {
            let mut stream = body.into_data_stream();
            let mut engine_reading = true;
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(chunk) => {
                        if engine_reading && tx.send(Ok(chunk)).await.is_err() {
                            engine_reading = false;
                        }
                    }
                    Err(e) => {
                        let e = io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("the request body broke off: {e}"),
                        );
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
            }
        });
        let chunks =
            futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
        let chunks: Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>> = Box::pin(chunks);
        (StreamReader::new(chunks), BodyPump { task })
    }

    /// Waits (bounded) until the body has been read to its end.
    async fn finish(self) {
        let mut task = self.task;
        if tokio::time::timeout(DRAIN_TIMEOUT, &mut task).await.is_err() {
            task.abort();
        }
    }
}

/// Query parameters, some of which may repeat (`change=...&change=...`); unknown ones are
/// refused so that a misspelt option is not silently ignored.
struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    fn parse(raw: Option<String>, allowed: &[&str]) -> Result<QueryParams, ApiError> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if let Some((k, _)) = pairs.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
            return Err(ApiError::bad_request(format!("unknown query parameter {k:?}")));
        }
        Ok(QueryParams(pairs))
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn one<'a>(&'a self, name: &'a str) -> Result<Option<&'a str>, ApiError> {
        let mut values = self.all(name);
        let first = values.next();
        if values.next().is_some() {
            return Err(ApiError::bad_request(format!("query parameter {name:?} given more than once")));
        }
        Ok(first)
    }

    fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.one(name)? {
            None => Ok(false),
            Some("1" | "true" | "True" | "TRUE") => Ok(true),
            Some("" | "0" | "false" | "False" | "FALSE") => Ok(false),
            Some(v) => {
                Err(ApiError::bad_request(format!("query parameter {name:?}: {v:?} is not a boolean")))
            }
        }
    }

    fn number(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.one(name)?
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ApiError::bad_request(format!("query parameter {name:?}: {v:?} is not a number"))
                })
            })
            .transpose()
    }
}
