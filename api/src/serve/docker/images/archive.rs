//! Docker Engine API: images to and from tars — save (`GET /images/{name}/get`,
//! `GET /images/get?names=`, a docker-archive tar), load (`POST /images/load`) and import
//! (`POST /images/create?fromSrc=-`).

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use berth_types::{ImportReport, LoadReport};

use super::super::json_messages::{json_stream, JsonMessage};
use super::super::query::DockerQuery;
use super::super::DockerState;
use super::{familiar, no_such_image, repo_and_tag};
use crate::serve::body::{save_stream, BodyPump};
use crate::serve::error::ApiError;
use crate::serve::ops::images::ImportOptions;
use crate::serve::ops::{self, Caller};

pub(super) async fn save_one(
    state: State<DockerState>,
    caller: Caller,
    name: &str,
) -> Result<Response, ApiError> {
    save(state, caller, vec![name.to_string()]).await
}

pub(super) async fn save_many(
    state: State<DockerState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = DockerQuery::parse(query.as_deref());
    let names: Vec<String> = query.all("names").filter(|n| !n.is_empty()).map(str::to_string).collect();
    if names.is_empty() {
        return Err(ApiError::bad_request("no image names given: names= is required"));
    }
    save(state, caller, names).await
}

/// Everything that can be refused (unknown names, another team's image) is refused before the
/// 200 and the tar.
async fn save(
    State(state): State<DockerState>,
    caller: Caller,
    names: Vec<String>,
) -> Result<Response, ApiError> {
    let plan = match ops::images::save(&state.app, &caller, names.clone()).await {
        Ok(plan) => plan,
        Err(e) => {
            // Name the unknown image as dockerd does.
            for name in &names {
                if ops::images::inspect(&state.app, &caller, name).await.is_err() {
                    return Err(no_such_image(name, e));
                }
            }
            return Err(e);
        }
    };
    let body = save_stream(state.app.engine.clone(), plan);
    Ok(([(header::CONTENT_TYPE, "application/x-tar")], body).into_response())
}

/// `POST /images/load?quiet=`: the loaded images as Docker's stream lines.
pub(super) async fn load(
    State(state): State<DockerState>,
    caller: Caller,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let query = DockerQuery::parse(query.as_deref());
    query.flag("quiet")?;
    let report = ops::images::load(&state.app, &caller, BodyPump::start(body)).await?;
    Ok(stream_of(load_messages(&report)))
}

/// `Loaded image: busybox:latest`, or `Loaded image ID: sha256:…` for an image without a name.
fn load_messages(report: &LoadReport) -> Vec<JsonMessage> {
    report
        .loaded
        .iter()
        .map(|image| match &image.reference {
            Some(reference) => JsonMessage::stream(format!("Loaded image: {}\n", familiar(reference))),
            None => JsonMessage::stream(format!("Loaded image ID: {}\n", image.id)),
        })
        .collect()
}

fn stream_of(messages: Vec<JsonMessage>) -> Response {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    for message in messages {
        let _ = tx.send(message);
    }
    json_stream(rx)
}

/// `POST /images/create?fromSrc=-&repo=&tag=&changes=&message=`: the body is the root
/// filesystem tar. A URL to fetch it from is refused: berth fetches no tars.
pub(super) async fn import(
    State(state): State<DockerState>,
    caller: Caller,
    query: &DockerQuery,
    body: Body,
) -> Result<Response, ApiError> {
    if query.get("fromSrc") != Some("-") {
        return Err(ApiError::bad_request(
            "importing from a URL is not supported by this daemon: send the tar in the request (fromSrc=-)",
        ));
    }
    let repo = query.get("repo").unwrap_or("");
    let reference = match repo {
        "" => None,
        repo => Some(repo_and_tag(repo, query.get("tag").unwrap_or(""))?),
    };
    if let Some(platform) = query.get("platform").filter(|p| !p.is_empty()) {
        let own = format!("linux/{}", super::super::system::go_arch());
        if !platform.starts_with(&own) {
            return Err(ApiError::bad_request(format!(
                "platform {platform:?} is not supported: this daemon imports for {own} only"
            )));
        }
    }
    let options = ImportOptions {
        reference,
        changes: query.all("changes").filter(|c| !c.is_empty()).map(str::to_string).collect(),
        message: query.get("message").filter(|m| !m.is_empty()).map(str::to_string),
    };
    let ImportReport { id, .. } =
        ops::images::import(&state.app, &caller, BodyPump::start(body), options).await?;
    Ok(stream_of(vec![JsonMessage::status(id)]))
}

#[cfg(test)]
mod tests {
    use berth_types::LoadedImage;

    use super::*;

    #[test]
    fn loaded_images_in_dockers_words() {
        let report = LoadReport {
            loaded: vec![
                LoadedImage {
                    id: "sha256:a".into(),
                    reference: Some("docker.io/library/busybox:latest".into()),
                },
                LoadedImage { id: "sha256:b".into(), reference: None },
            ],
        };
        let lines: Vec<_> = load_messages(&report).into_iter().map(|m| m.stream.unwrap()).collect();
        assert_eq!(lines, ["Loaded image: busybox:latest\n", "Loaded image ID: sha256:b\n"]);
    }
}
