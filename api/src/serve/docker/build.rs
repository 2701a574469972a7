//! Docker Engine API: `POST /build` as Docker's classic builder answers it (what the docker CLI
//! uses with `DOCKER_BUILDKIT=0`, and what `_ping`'s `Builder-Version: 1` asks for), and
//! `POST /build/prune`.
//!
//! The body is the context tar (plain, gzip or zstd); the options are in the query. berth's
//! build events become the classic builder's stream: `Step 1/3 : FROM busybox`, the RUN output,
//! ` ---> Using cache`, `{"aux":{"ID":…}}`, `Successfully built …`, `Successfully tagged …`.
//! berth makes no image per step, so the ` ---> <id>` lines after each step are not there.
//! Options that would change the result and that berth's builder cannot honour are refused
//! with 400, naming the option; the ones that change only how the build runs are accepted.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use axum::{Json, Router};
use berth_engine::registry::Credentials;
use berth_types::build::{BuildEvent, BuildOptions};
use bollard_stubs::models::BuildPruneResponse;

use super::images::familiar;
use super::images::transfer::{decode_json_header, AuthConfig};
use super::json_messages::{json_stream, JsonMessage};
use super::query::DockerQuery;
use super::DockerState;
use crate::serve::body::BodyPump;
use crate::serve::error::ApiError;
use crate::serve::ops::{self, Caller};

pub fn routes() -> Router<DockerState> {
    Router::new().route("/build", post(build)).route("/build/prune", post(prune))
}

/// The header carrying credentials per registry for the base images a build pulls.
const REGISTRY_CONFIG_HEADER: &str = "x-registry-config";

/// What a build request asks for besides berth's options.
#[derive(Debug, PartialEq)]
struct BuildRequest {
    options: BuildOptions,
    /// `q`: only the image ID.
    quiet: bool,
    /// `pull`: berth pulls a base image only when the store lacks it.
    pull: bool,
}

/// A JSON object of strings (`buildargs`, `labels`), as `NAME=value` pairs; a null value (an
/// unset build arg) is left out, so the Dockerfile's default applies.
fn json_pairs(query: &DockerQuery, name: &str) -> Result<Vec<String>, ApiError> {
    let Some(raw) = query.get(name).filter(|r| !r.trim().is_empty()) else { return Ok(Vec::new()) };
    let map: HashMap<String, Option<String>> = serde_json::from_str(raw)
        .map_err(|e| ApiError::bad_request(format!("invalid {name}: {e}: want a JSON object of strings")))?;
    let mut pairs: Vec<String> = map.into_iter().filter_map(|(k, v)| v.map(|v| format!("{k}={v}"))).collect();
    pairs.sort();
    Ok(pairs)
}

/// Refuses a non-empty `name` that berth's builder cannot honour.
fn refuse_if_set(query: &DockerQuery, name: &str, why: &str) -> Result<(), ApiError> {
    match query.get(name).map(str::trim) {
        None | Some("" | "[]" | "{}" | "null" | "0" | "false") => Ok(()),
        Some(_) => {
            Err(ApiError::bad_request(format!("{name} is not supported by this daemon's builder: {why}")))
        }
    }
}

fn parse_request(query: &DockerQuery) -> Result<BuildRequest, ApiError> {
    refuse_if_set(query, "remote", "send the context in the request body")?;
    refuse_if_set(query, "extrahosts", "RUN steps get no extra /etc/hosts entries")?;
    refuse_if_set(query, "squash", "layers are not squashed")?;
    refuse_if_set(query, "outputs", "the result is an image in the store")?;
    match query.get("isolation").unwrap_or("") {
        "" | "default" | "process" => {}
        other => {
            return Err(ApiError::bad_request(format!("isolation {other:?} is not supported: only process")))
        }
    }
    match query.get("version").unwrap_or("1") {
        "" | "1" => {}
        other => {
            return Err(ApiError::bad_request(format!(
                "builder version {other:?} (BuildKit) is not supported: this daemon has the classic builder \
                 (DOCKER_BUILDKIT=0)"
            )))
        }
    }
    if let Some(platform) = query.get("platform").filter(|p| !p.is_empty()) {
        let own = format!("linux/{}", super::system::go_arch());
        if platform != own && !platform.starts_with(&format!("{own}/")) {
            return Err(ApiError::bad_request(format!(
                "platform {platform:?} is not supported: this daemon builds for {own} only"
            )));
        }
    }
    let network = match query.get("networkmode").unwrap_or("") {
        // Docker's default gives RUN a bridge network; berth's builder runs RUN without one
        // unless asked for the host's.
        "" | "default" | "bridge" => None,
        "none" => Some("none".to_string()),
        "host" => Some("host".to_string()),
        other => {
            return Err(ApiError::bad_request(format!(
                "networkmode {other:?} is not supported by this daemon's builder: default, none or host"
            )))
        }
    };
    let options = BuildOptions {
        tags: query.all("t").filter(|t| !t.is_empty()).map(str::to_string).collect(),
        dockerfile: query.get("dockerfile").filter(|d| !d.is_empty()).map(str::to_string),
        build_args: json_pairs(query, "buildargs")?,
        labels: json_pairs(query, "labels")?,
        no_cache: query.flag("nocache")?,
        target: query.get("target").filter(|t| !t.is_empty()).map(str::to_string),
        network,
    };
    // Accepted and without effect on the result: cleanup of intermediate containers (berth
    // leaves none), resource limits of RUN steps, cache sources.
    for flag in ["rm", "forcerm"] {
        query.flag_or(flag, true)?;
    }
    // `pull` is "1", "true" or an image name (old clients).
    let pull = !matches!(query.get("pull").unwrap_or(""), "" | "0" | "false");
    Ok(BuildRequest { options, quiet: query.flag("q")?, pull })
}

/// The credentials of `X-Registry-Config`: `{"<registry>": AuthConfig, ...}`.
fn registry_config(headers: &HeaderMap) -> Result<HashMap<String, Credentials>, ApiError> {
    let Some(configs) = decode_json_header::<HashMap<String, AuthConfig>>(headers, REGISTRY_CONFIG_HEADER)?
    else {
        return Ok(HashMap::new());
    };
    let mut credentials = HashMap::new();
    for (server, config) in configs {
        if let Some(c) = config.credentials()? {
            credentials.insert(server, c);
        }
    }
    Ok(credentials)
}

async fn build(
    State(state): State<DockerState>,
    caller: Caller,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let query = DockerQuery::parse(query.as_deref());
    let request = parse_request(&query)?;
    let credentials = registry_config(&headers)?;
    let mut events =
        ops::build::build(&state.app, &caller, BodyPump::start(body), request.options, credentials).await?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut shown = BuildShown { quiet: request.quiet };
    if request.pull && !request.quiet {
        let _ = tx.send(JsonMessage::stream(
            "[Warning] pull: this daemon pulls a base image only when it does not have it\n",
        ));
    }
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            for message in shown.messages(event) {
                let _ = tx.send(message);
            }
        }
    });
    Ok(json_stream(rx))
}

/// How a build's events are shown.
struct BuildShown {
    quiet: bool,
}

impl BuildShown {
    /// The classic builder's lines for one of berth's build events.
    fn messages(&mut self, event: BuildEvent) -> Vec<JsonMessage> {
        let quiet = self.quiet;
        let text = |text: String| if quiet { Vec::new() } else { vec![JsonMessage::stream(text)] };
        match event {
            BuildEvent::Step { step, build_steps, instruction, .. } => {
                text(format!("Step {step}/{} : {instruction}\n", build_steps.max(step)))
            }
            BuildEvent::Cached { .. } => text(" ---> Using cache\n".into()),
            BuildEvent::Output { text: output, .. } => text(output),
            BuildEvent::Done { .. } => Vec::new(),
            BuildEvent::Warning { message } => text(format!("[Warning] {message}\n")),
            BuildEvent::Built { id, tags } => {
                let mut messages = vec![JsonMessage::aux(serde_json::json!({ "ID": id }))];
                if quiet {
                    messages.push(JsonMessage::stream(format!("{id}\n")));
                    return messages;
                }
                let short = id.strip_prefix("sha256:").unwrap_or(&id).chars().take(12).collect::<String>();
                messages.push(JsonMessage::stream(format!("Successfully built {short}\n")));
                for tag in tags {
                    messages.push(JsonMessage::stream(format!("Successfully tagged {}\n", familiar(&tag))));
                }
                messages
            }
            BuildEvent::Error { message, exit_code: Some(code) } => {
                vec![JsonMessage::error_with_code(legacy_builder_words(&message, code), code)]
            }
            BuildEvent::Error { message, exit_code: None } => vec![JsonMessage::error(message)],
        }
    }
}

/// A failed RUN step in the classic builder's words (`The command '/bin/sh -c exit 7' returned a
/// non-zero code: 7`), which scripts match; berth's own words (`Dockerfile:2: process "/bin/sh -c
/// exit 7" did not complete successfully: exit code: 7`) when the command cannot be found in them.
fn legacy_builder_words(message: &str, code: i32) -> String {
    let command = message
        .split_once("process \"")
        .and_then(|(_, rest)| rest.rsplit_once("\" did not complete successfully"))
        .map(|(command, _)| command);
    match command {
        Some(command) => format!("The command '{command}' returned a non-zero code: {code}"),
        None => message.to_string(),
    }
}

/// `POST /build/prune`: forgets berth's cached build steps (records of a few hundred bytes;
/// their layers belong to images and go with `image prune`). Filters and `keep-storage` are
/// refused: berth's cache keeps no ages or sizes to choose by.
async fn prune(
    State(state): State<DockerState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<BuildPruneResponse>, ApiError> {
    let query = DockerQuery::parse(query.as_deref());
    query.flag("all")?;
    if let Some(filter) = query.filters()?.first() {
        return Err(ApiError::bad_request(format!(
            "Invalid filter '{filter}': this daemon's build cache prune takes no filters"
        )));
    }
    for name in ["keep-storage", "reserved-space", "max-used-space", "min-free-space"] {
        if query.get(name).is_some_and(|v| !v.is_empty() && v != "0") {
            return Err(ApiError::bad_request(format!(
                "{name} is not supported by this daemon's build cache"
            )));
        }
    }
    let report = ops::build::prune_cache(&state.app, &caller).await?;
    Ok(Json(BuildPruneResponse {
        caches_deleted: Some(report.records),
        space_reclaimed: Some(report.space_reclaimed as i64),
    }))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use base64::Engine as _;

    use super::*;

    fn request(query: &str) -> Result<BuildRequest, ApiError> {
        parse_request(&DockerQuery::parse(Some(query)))
    }

    #[test]
    fn build_options_from_dockers_query() {
        let r = request(
            "t=app:1&t=app:latest&dockerfile=sub/Dockerfile&buildargs=%7B%22A%22%3A%221%22%2C%22B%22%3Anull%7D\
             &labels=%7B%22k%22%3A%22v%22%7D&nocache=1&target=final&q=1&rm=1&forcerm=0&pull=1&networkmode=host\
             &cachefrom=%5B%5D&memory=0&shmsize=0",
        )
        .unwrap();
        assert_eq!(r.options.tags, ["app:1", "app:latest"]);
        assert_eq!(r.options.dockerfile.as_deref(), Some("sub/Dockerfile"));
        assert_eq!(r.options.build_args, ["A=1"]);
        assert_eq!(r.options.labels, ["k=v"]);
        assert!(r.options.no_cache && r.quiet && r.pull);
        assert_eq!(r.options.target.as_deref(), Some("final"));
        assert_eq!(r.options.network.as_deref(), Some("host"));

        let plain = request("").unwrap();
        assert_eq!(plain.options, BuildOptions::default());
        assert!(!plain.quiet && !plain.pull);
        assert_eq!(request("networkmode=default").unwrap().options.network, None);
        let own = format!("linux/{}", crate::serve::docker::system::go_arch());
        assert!(request(&format!("platform={own}")).is_ok());
    }

    #[test]
    fn options_berth_cannot_honour_are_refused_by_name() {
        for (query, word) in [
            ("platform=linux/s390x", "platform"),
            ("extrahosts=a:1.2.3.4", "extrahosts"),
            ("isolation=hyperv", "isolation"),
            ("remote=https://example.com/x.git", "remote"),
            ("squash=1", "squash"),
            ("version=2", "BuildKit"),
            ("networkmode=container:x", "networkmode"),
            ("buildargs=%5B1%5D", "buildargs"),
            ("labels=%7B%22k%22%3A1%7D", "labels"),
            ("nocache=maybe", "nocache"),
        ] {
            let e = request(query).unwrap_err();
            assert_eq!(e.status, 400, "{query}");
            assert!(e.message.contains(word), "{query}: {}", e.message);
        }
    }

    #[test]
    fn registry_config_headers() {
        let mut headers = HeaderMap::new();
        assert!(registry_config(&headers).unwrap().is_empty());
        let json = r#"{"localhost:5000":{"username":"u","password":"p"},"https://index.docker.io/v1/":{}}"#;
        let value = base64::engine::general_purpose::URL_SAFE.encode(json);
        headers.insert(REGISTRY_CONFIG_HEADER, HeaderValue::from_str(&value).unwrap());
        let credentials = registry_config(&headers).unwrap();
        assert_eq!(credentials.len(), 1);
        assert_eq!(credentials["localhost:5000"].username, "u");
        headers.insert(REGISTRY_CONFIG_HEADER, HeaderValue::from_static("bm90IGpzb24"));
        assert_eq!(registry_config(&headers).unwrap_err().status, 400);
    }

    #[test]
    fn build_events_as_the_classic_builder_shows_them() {
        let mut shown = BuildShown { quiet: false };
        let streams = |shown: &mut BuildShown, event| {
            shown.messages(event).into_iter().filter_map(|m| m.stream).collect::<Vec<_>>()
        };
        let step = BuildEvent::Step {
            step: 1,
            stage: "stage-0".into(),
            index: 1,
            total: 3,
            build_steps: 3,
            instruction: "FROM busybox".into(),
        };
        assert_eq!(streams(&mut shown, step), ["Step 1/3 : FROM busybox\n"]);
        assert_eq!(streams(&mut shown, BuildEvent::Cached { step: 2 }), [" ---> Using cache\n"]);
        let output = BuildEvent::Output { step: 2, stream: "stdout".into(), text: "hi\n".into() };
        assert_eq!(streams(&mut shown, output), ["hi\n"]);
        assert!(shown.messages(BuildEvent::Done { step: 2, seconds: 0.1 }).is_empty());
        let id = format!("sha256:{}", "1a2b3c4d5e6f".repeat(5) + "abcd");
        let built = BuildEvent::Built { id: id.clone(), tags: vec!["docker.io/library/app:1".into()] };
        let messages = shown.messages(built.clone());
        assert_eq!(messages[0].aux, Some(serde_json::json!({ "ID": id })));
        let lines: Vec<_> = messages.into_iter().filter_map(|m| m.stream).collect();
        assert_eq!(lines, ["Successfully built 1a2b3c4d5e6f\n", "Successfully tagged app:1\n"]);
        let error = shown.messages(BuildEvent::Error { message: "boom".into(), exit_code: None });
        assert_eq!(error, [JsonMessage::error("boom")]);
        let failed_run = BuildEvent::Error {
            message:
                "Dockerfile:2: process \"/bin/sh -c exit 7\" did not complete successfully: exit code: 7"
                    .into(),
            exit_code: Some(7),
        };
        let error = shown.messages(failed_run);
        let detail = error[0].error_detail.as_ref().unwrap();
        assert_eq!(detail.code, Some(7));
        assert_eq!(
            error[0].error.as_deref(),
            Some("The command '/bin/sh -c exit 7' returned a non-zero code: 7")
        );

        let mut quiet = BuildShown { quiet: true };
        let step = BuildEvent::Step {
            step: 1,
            stage: String::new(),
            index: 1,
            total: 1,
            build_steps: 0,
            instruction: "FROM x".into(),
        };
        assert!(quiet.messages(step).is_empty());
        let lines: Vec<_> = quiet.messages(built).into_iter().filter_map(|m| m.stream).collect();
        assert_eq!(lines, [format!("{id}\n")]);
    }
}
