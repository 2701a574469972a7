//! Build routes: `POST /api/v1/build` (the body is the context tar, the options are in the
//! query; the answer streams `BuildEvent`s as JSON lines, the last one the result or the error)
//! and `GET /api/v1/images/{name}/history`.

use std::collections::HashSet;
use std::convert::Infallible;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_engine::Reference;
use berth_types::build::{BuildEvent, BuildOptions};
use berth_types::HistoryEntry;
use bytes::Bytes;
use futures_util::StreamExt;

use super::body::BodyPump;
use super::query::QueryParams;
use super::AppState;
use crate::serve::auth::{hidden_images, Principal};
use crate::serve::error::ApiError;
use crate::serve::events::Outcome;

/// The media type of the progress stream: newline-delimited JSON.
const JSON_LINES: &str = "application/x-ndjson";

/// `POST /api/v1/build?t=&dockerfile=&buildarg=&label=&nocache=&target=&network=`, Docker's
/// parameter names (`buildarg` and `label` repeat, as `t` does).
#[utoipa::path(post, path = "/api/v1/build", tag = "build",
    description = "Builds an image from the context tar in the body (its Dockerfile, or the one \
        `dockerfile` names, inside it). The answer is a stream of JSON lines, one BuildEvent each, the \
        last one `built` or `error`; malformed options are refused before the stream starts. The build \
        goes on if the client goes away, and is recorded (GET /api/v1/history/builds). Operators; the \
        image goes to the caller's team (header X-Berth-Team picks one; a header is not described as a \
        parameter because fuzzers send values the HTTP parser refuses before any route).",
    params(
        ("t" = Option<Vec<String>>, Query, description = "name:tag of the image; repeat for more"),
        ("dockerfile" = Option<String>, Query, description = "path of the Dockerfile in the context"),
        ("buildarg" = Option<Vec<String>>, Query, description = "NAME=value of an ARG; repeat"),
        ("label" = Option<Vec<String>>, Query, description = "key=value label; repeat"),
        ("nocache" = Option<bool>, Query, description = "do not use the build cache"),
        ("target" = Option<String>, Query, description = "the stage to build"),
        ("network" = Option<String>, Query, description = "`host` gives RUN the host's network")),
    request_body(description = "the build context: a tar (gzip, zstd or plain); any content type",
        content((Vec<u8> = "application/x-tar"), (Vec<u8> = "application/octet-stream"))),
    responses((status = 200, content_type = "application/x-ndjson", body = BuildEvent,
            description = "one BuildEvent per line"),
        (status = 400, body = crate::serve::openapi::ErrorBody), (status = 403, body = crate::serve::openapi::ErrorBody),
        (status = 404, body = crate::serve::openapi::ErrorBody, description = "no such team")),
    security(("bearer" = []), ("session" = [])))]
pub(super) async fn build_image(
    State(state): State<AppState>,
    principal: Option<axum::Extension<Principal>>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let query =
        QueryParams::parse(query, &["t", "dockerfile", "buildarg", "label", "nocache", "target", "network"])?;
    let options = BuildOptions {
        tags: query.all("t").map(str::to_string).collect(),
        dockerfile: query.one("dockerfile")?.filter(|d| !d.is_empty()).map(str::to_string),
        build_args: query.all("buildarg").map(str::to_string).collect(),
        labels: query.all("label").map(str::to_string).collect(),
        no_cache: query.flag("nocache")?,
        target: query.one("target")?.filter(|t| !t.is_empty()).map(str::to_string),
        network: query.one("network")?.filter(|n| !n.is_empty()).map(str::to_string),
    };
    // A malformed tag is refused before the stream starts, with a status that says so.
    for tag in &options.tags {
        let reference = Reference::parse(tag)
            .map_err(|e| ApiError::bad_request(berth_engine::Error::from(e).to_string()))?;
        if reference.digest().is_some() {
            return Err(ApiError::bad_request(format!("invalid tag {tag:?}: a tag cannot have a digest")));
        }
    }
    // A member builds from their teams' images and shared ones only (FROM, COPY --from).
    let hidden = match principal {
        Some(axum::Extension(p)) => hidden_images(&state, &p).await?,
        None => HashSet::new(),
    };
    let subject = options.tags.first().cloned().unwrap_or_default();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let engine = state.engine.clone();
    let events = state.events.clone();
    // The build runs to its end even if the client goes away (as a pull does).
    tokio::spawn(async move {
        let (reader, pump) = BodyPump::start(body);
        let result = engine.build_image_hiding(reader, options, hidden, tx.clone()).await;
        pump.finish().await;
        match result {
            Ok(report) => {
                let message =
                    format!("built {} ({}/{} steps cached)", report.id, report.cached_steps, report.steps);
                let subject = if subject.is_empty() { report.id.clone() } else { subject };
                events.record("image", "build", &subject, Outcome::Success, &message).await;
            }
            Err(e) => {
                events.record("image", "build", &subject, Outcome::Failure, &e.to_string()).await;
                let _ = tx.send(BuildEvent::Error { message: e.to_string() });
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) })
        .map(|event| {
            let mut line = serde_json::to_vec(&event).expect("build events serialise");
            line.push(b'\n');
            Ok::<_, Infallible>(Bytes::from(line))
        });
    Ok(([(header::CONTENT_TYPE, JSON_LINES)], Body::from_stream(stream)).into_response())
}

/// `GET /api/v1/images/{name}/history`: the image's history, newest first (as `docker history`).
#[utoipa::path(get, path = "/api/v1/images/{name}/history", tag = "images",
    params(("name" = String, Path, description = "name, ID or digest; percent-encoded")),
    responses((status = 200, body = Vec<HistoryEntry>), (status = 400, body = crate::serve::openapi::ErrorBody),
        (status = 404, body = crate::serve::openapi::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(super) async fn image_history(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Vec<HistoryEntry>>, ApiError> {
    let mut history = state.engine.inspect_image(&name).await?.history;
    history.reverse();
    Ok(Json(history))
}
