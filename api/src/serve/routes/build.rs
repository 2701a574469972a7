//! Build routes: `POST /api/v1/build` (the body is the context tar, the options are in the
//! query; the answer streams `BuildEvent`s as JSON lines, the last one the result or the error)
//! and `GET /api/v1/images/{name}/history`.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::Json;
use berth_types::build::{BuildEvent, BuildOptions};
use berth_types::HistoryEntry;

use super::answer::json_lines;
use super::query::QueryParams;
use crate::serve::body::BodyPump;
use crate::serve::error::ApiError;
use crate::serve::ops::{build, images, Caller};
use crate::serve::state::AppState;

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
    caller: Caller,
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
    Ok(json_lines(build::build(&state, &caller, BodyPump::start(body), options, Default::default()).await?))
}

/// `GET /api/v1/images/{name}/history`: the image's history, newest first (as `docker history`).
#[utoipa::path(get, path = "/api/v1/images/{name}/history", tag = "images",
    params(("name" = String, Path, description = "name, ID or digest; percent-encoded")),
    responses((status = 200, body = Vec<HistoryEntry>), (status = 400, body = crate::serve::openapi::ErrorBody),
        (status = 404, body = crate::serve::openapi::ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
pub(super) async fn image_history(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Vec<HistoryEntry>>, ApiError> {
    Ok(Json(images::history(&state, &caller, &name).await?))
}
