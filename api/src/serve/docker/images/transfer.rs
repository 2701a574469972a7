//! Docker Engine API: pull (`POST /images/create?fromImage=`), push (`POST /images/{name}/push`)
//! and `POST /auth`. Pull and push answer Docker's progress stream, translated from berth's
//! `TransferEvent`s, so that the docker CLI draws its own bars; the credentials come in the
//! `X-Registry-Auth` header (base64url JSON), and are used for that one transfer only.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use base64::Engine as _;
use berth_engine::registry::Credentials;
use berth_engine::Reference;
use berth_types::{LayerStatus, PullRequest, PushRequest, TransferEvent};
use bollard_stubs::models::AuthResponse;
use serde::Deserialize;
use tokio::sync::mpsc::UnboundedReceiver;

use super::super::json_messages::{json_stream, JsonMessage};
use super::super::query::DockerQuery;
use super::super::{DockerJson, DockerState};
use super::archive;
use crate::serve::error::ApiError;
use crate::serve::ops::{self, Caller};

/// The header carrying a pull's or push's registry credentials.
pub const REGISTRY_AUTH_HEADER: &str = "x-registry-auth";

/// Docker's `AuthConfig`, as `X-Registry-Auth` and `POST /auth` carry it.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct AuthConfig {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    /// `base64(username:password)`, what config.json keeps.
    #[serde(default)]
    auth: String,
    #[serde(default)]
    serveraddress: String,
    #[serde(default)]
    identitytoken: String,
}

impl AuthConfig {
    /// The credentials it holds; `None` when it holds none (an anonymous transfer, or one with
    /// the daemon's stored credentials).
    pub(crate) fn credentials(&self) -> Result<Option<Credentials>, ApiError> {
        if !self.identitytoken.is_empty() {
            return Err(ApiError::bad_request(
                "identity tokens are not supported by this daemon: log in with a user name and password",
            ));
        }
        let (username, password) = if self.username.is_empty() && !self.auth.is_empty() {
            let raw =
                decode_base64(&self.auth).ok_or_else(|| ApiError::bad_request("invalid auth: not base64"))?;
            let raw = String::from_utf8(raw).map_err(|_| ApiError::bad_request("invalid auth: not text"))?;
            let (u, p) = raw
                .split_once(':')
                .ok_or_else(|| ApiError::bad_request("invalid auth: not username:password"))?;
            (u.to_string(), p.to_string())
        } else {
            (self.username.clone(), self.password.clone())
        };
        if username.is_empty() && password.is_empty() {
            return Ok(None);
        }
        Ok(Some(Credentials { username, password }))
    }
}

/// base64 as clients send it: URL-safe (Docker's CLI, docker-py) or standard, padded or not.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let config = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let text = text.trim();
    GeneralPurpose::new(&base64::alphabet::URL_SAFE, config)
        .decode(text)
        .or_else(|_| GeneralPurpose::new(&base64::alphabet::STANDARD, config).decode(text))
        .ok()
}

/// Decodes a base64 JSON header (`X-Registry-Auth`, `X-Registry-Config`); absent or empty is
/// `None`, malformed is refused.
pub(crate) fn decode_json_header<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    name: &str,
) -> Result<Option<T>, ApiError> {
    let Some(value) = headers.get(name) else { return Ok(None) };
    let value =
        value.to_str().map_err(|_| ApiError::bad_request(format!("invalid {name} header: not text")))?;
    if value.trim().is_empty() {
        return Ok(None);
    }
    let raw = decode_base64(value)
        .ok_or_else(|| ApiError::bad_request(format!("invalid {name} header: not base64")))?;
    serde_json::from_slice(&raw)
        .map(Some)
        .map_err(|e| ApiError::bad_request(format!("invalid {name} header: {e}")))
}

/// The credentials of `X-Registry-Auth`.
pub(crate) fn registry_auth(headers: &HeaderMap) -> Result<Option<Credentials>, ApiError> {
    match decode_json_header::<AuthConfig>(headers, REGISTRY_AUTH_HEADER)? {
        Some(config) => config.credentials(),
        None => Ok(None),
    }
}

/// `POST /images/create`: a pull (`fromImage`) or an import (`fromSrc`).
pub(super) async fn create(
    State(state): State<DockerState>,
    caller: Caller,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let query = DockerQuery::parse(query.as_deref());
    let from_image = query.get("fromImage").unwrap_or("");
    let from_src = query.get("fromSrc").unwrap_or("");
    match (from_image.is_empty(), from_src.is_empty()) {
        (false, true) => pull(State(state), caller, &query, &headers).await,
        (true, false) => archive::import(State(state), caller, &query, body).await,
        (false, false) => Err(ApiError::bad_request("only one of fromImage and fromSrc may be given")),
        (true, true) => Err(ApiError::bad_request("fromImage or fromSrc is required")),
    }
}

/// The reference a pull names: `fromImage` with `tag` (a tag, or a digest) when given.
pub(crate) fn pull_reference(from_image: &str, tag: &str) -> Result<Reference, ApiError> {
    let bad = |e: berth_engine::reference::ReferenceError| ApiError::bad_request(e.0);
    let reference = Reference::parse(from_image).map_err(bad)?;
    if tag.is_empty() {
        return Ok(reference);
    }
    if tag.starts_with("sha256:") {
        return Reference::parse(&format!("{}@{tag}", reference.repository())).map_err(bad);
    }
    reference.with_tag(tag).map_err(bad)
}

/// What a pull's stream says besides the events: the names Docker shows.
pub(crate) struct PullShown {
    /// `library/busybox`: the repository's path, as "Pulling from".
    path: String,
    /// The tag or digest pulled.
    target: String,
    /// `busybox:latest`.
    familiar: String,
    /// The image the reference named before the pull: unchanged means "up to date".
    before: Option<String>,
    /// Layer lines held back until a layer is downloaded (see [`PullShown::messages`]).
    held: Vec<JsonMessage>,
    /// A layer is being downloaded: lines pass as they come.
    downloading: bool,
}

impl PullShown {
    pub(crate) fn new(reference: &Reference, before: Option<String>) -> PullShown {
        let target = match (reference.digest(), reference.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_string(),
            (None, None) => String::new(),
        };
        PullShown {
            path: reference.path().to_string(),
            target,
            familiar: reference.familiar(),
            before,
            held: Vec::new(),
            downloading: false,
        }
    }

    /// Docker's lines for one of berth's pull events. The layer lines are held until one layer
    /// is downloaded, as dockerd shows them: a layer already here shows only "Already exists"
    /// (no "Pulling fs layer" first), and a pull that downloads nothing shows no layer lines
    /// (dockerd finds the image's config and looks no further; berth checks every layer, so a
    /// new image made only of layers already here shows none either, where dockerd lists them).
    pub(crate) fn messages(&mut self, event: TransferEvent) -> Vec<JsonMessage> {
        if let TransferEvent::Layer { digest, status, .. } = &event {
            if !self.downloading {
                let id = short_digest(digest);
                match status {
                    LayerStatus::Waiting => {
                        self.held.push(JsonMessage::layer("Pulling fs layer", &id));
                        return Vec::new();
                    }
                    LayerStatus::AlreadyExists => {
                        let line = JsonMessage::layer("Already exists", &id);
                        match self.held.iter_mut().find(|m| m.id.as_deref() == Some(id.as_str())) {
                            Some(waiting) => *waiting = line,
                            None => self.held.push(line),
                        }
                        return Vec::new();
                    }
                    _ => {
                        self.downloading = true;
                        let mut messages = std::mem::take(&mut self.held);
                        messages.extend(self.translate(event));
                        return messages;
                    }
                }
            }
        }
        self.translate(event)
    }

    fn translate(&self, event: TransferEvent) -> Vec<JsonMessage> {
        match event {
            TransferEvent::Resolving { .. } => {
                vec![JsonMessage::layer(format!("Pulling from {}", self.path), &self.target)]
            }
            TransferEvent::Resolved { .. } => Vec::new(),
            TransferEvent::Layer { digest, status, current, total } => {
                let id = short_digest(&digest);
                match status {
                    LayerStatus::Waiting => vec![JsonMessage::layer("Pulling fs layer", id)],
                    LayerStatus::Downloading => {
                        vec![JsonMessage::layer_progress("Downloading", id, current, total)]
                    }
                    LayerStatus::Verifying => vec![
                        JsonMessage::layer("Verifying Checksum", &id),
                        JsonMessage::layer("Download complete", id),
                    ],
                    LayerStatus::Extracting => {
                        vec![JsonMessage::layer_progress("Extracting", id, current, total)]
                    }
                    LayerStatus::AlreadyExists => vec![JsonMessage::layer("Already exists", id)],
                    LayerStatus::Done => vec![JsonMessage::layer("Pull complete", id)],
                    other => vec![JsonMessage::layer(format!("{other:?}"), id)],
                }
            }
            TransferEvent::Pulled(report) => {
                let digest = report.index_digest.unwrap_or(report.digest);
                let status = if self.before.as_deref() == Some(report.id.as_str()) {
                    format!("Status: Image is up to date for {}", self.familiar)
                } else {
                    format!("Status: Downloaded newer image for {}", self.familiar)
                };
                vec![JsonMessage::status(format!("Digest: {digest}")), JsonMessage::status(status)]
            }
            TransferEvent::Pushed(_) => Vec::new(),
            TransferEvent::Error { message, .. } => vec![JsonMessage::error(message)],
        }
    }
}

/// A layer's ID as Docker shows it: 12 hex digits of its digest.
pub(crate) fn short_digest(digest: &str) -> String {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    hex.chars().take(12).collect()
}

async fn pull(
    State(state): State<DockerState>,
    caller: Caller,
    query: &DockerQuery,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let reference = pull_reference(query.get("fromImage").unwrap_or(""), query.get("tag").unwrap_or(""))?;
    let credentials = registry_auth(headers)?;
    let before = ops::images::inspect(&state.app, &caller, &reference.to_string()).await.ok().map(|i| i.id);
    let mut shown = PullShown::new(&reference, before);
    let platform = query.get("platform").filter(|p| !p.is_empty()).map(str::to_string);
    let request = PullRequest { reference: reference.to_string(), platform };
    let mut events = ops::registry::pull(&state.app, &caller, Ok(request), credentials).await?;
    // A pull that fails before it found the manifest (an unknown tag, a registry that refuses
    // the caller) answers an HTTP error, as dockerd: the stream starts once the manifest is in.
    let mut held = Vec::new();
    while let Some(event) = events.recv().await {
        match event {
            TransferEvent::Resolving { .. } => held.push(event),
            TransferEvent::Error { message, status: Some(status) } => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return Err(ApiError::new(status, message));
            }
            event => {
                held.push(event);
                break;
            }
        }
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    for event in held {
        let _ = tx.send(event);
    }
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if tx.send(event).is_err() {
                break;
            }
        }
    });
    Ok(translated(rx, move |event| shown.messages(event)))
}

/// The events as Docker's messages, as they come.
fn translated<T: Send + 'static>(
    mut events: UnboundedReceiver<T>,
    mut translate: impl FnMut(T) -> Vec<JsonMessage> + Send + 'static,
) -> Response {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            for message in translate(event) {
                let _ = tx.send(message);
            }
        }
    });
    json_stream(rx)
}

/// What a push's stream shows besides the events.
pub(crate) struct PushShown {
    /// `localhost:5000/team/app`, `docker.io/library/busybox`.
    repository: String,
    tag: String,
    /// The image's ID, its config blob's digest: berth pushes the config as a blob, which
    /// Docker does not show as a layer.
    config: String,
}

impl PushShown {
    pub(crate) fn new(reference: &Reference, id: &str) -> PushShown {
        let tag = match (reference.tag(), reference.digest()) {
            (Some(t), _) => t.to_string(),
            (None, Some(d)) => d.to_string(),
            (None, None) => String::new(),
        };
        PushShown { repository: reference.repository(), tag, config: id.to_string() }
    }

    /// Docker's lines for one of berth's push events.
    pub(crate) fn messages(&self, event: TransferEvent) -> Vec<JsonMessage> {
        match event {
            TransferEvent::Resolving { .. } => {
                vec![JsonMessage::status(format!("The push refers to repository [{}]", self.repository))]
            }
            TransferEvent::Resolved { .. } => Vec::new(),
            TransferEvent::Layer { digest, .. } if digest == self.config => Vec::new(),
            TransferEvent::Layer { digest, status, current, total } => {
                let id = short_digest(&digest);
                match status {
                    LayerStatus::Waiting => vec![JsonMessage::layer("Preparing", id)],
                    LayerStatus::Uploading => {
                        vec![JsonMessage::layer_progress("Pushing", id, current, total)]
                    }
                    LayerStatus::AlreadyExists => vec![JsonMessage::layer("Layer already exists", id)],
                    LayerStatus::Mounted => vec![JsonMessage::layer("Mounted from another repository", id)],
                    LayerStatus::Pushed => vec![JsonMessage::layer("Pushed", id)],
                    other => vec![JsonMessage::layer(format!("{other:?}"), id)],
                }
            }
            TransferEvent::Pushed(report) => vec![
                JsonMessage::status(format!("{}: digest: {} size: {}", self.tag, report.digest, report.size)),
                JsonMessage::aux(serde_json::json!({
                    "Tag": self.tag, "Digest": report.digest, "Size": report.size,
                })),
            ],
            TransferEvent::Pulled(_) => Vec::new(),
            TransferEvent::Error { message, .. } => vec![JsonMessage::error(message)],
        }
    }
}

/// `POST /images/{name}/push?tag=`: `name` is the repository (a tag in it is used when `tag`
/// is empty); without any tag every local tag of the repository is pushed, as dockerd does.
pub(super) async fn push(
    State(state): State<DockerState>,
    caller: Caller,
    name: &str,
    query: &DockerQuery,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let credentials = registry_auth(headers)?;
    let tag = query.get("tag").unwrap_or("");
    let named = Reference::parse(name).map_err(|e| ApiError::bad_request(e.0))?;
    let name_has_tag =
        name.rsplit('/').next().is_some_and(|last| last.contains(':')) || named.digest().is_some();
    let references: Vec<Reference> = if !tag.is_empty() {
        vec![pull_reference(name, tag)?]
    } else if name_has_tag {
        vec![named]
    } else {
        let repository = named.repository();
        let mut tags: Vec<Reference> = ops::images::list(&state.app, &caller)
            .await?
            .into_iter()
            .flat_map(|i| i.repo_tags)
            .filter_map(|t| Reference::parse(&t).ok())
            .filter(|r| r.repository() == repository)
            .collect();
        tags.sort_by_key(|r| r.to_string());
        if tags.is_empty() {
            return Err(ApiError::not_found(format!(
                "An image does not exist locally with the tag: {}",
                named.familiar_repository()
            )));
        }
        tags
    };
    // Every name is checked before the stream starts: an unknown one is a 404, in dockerd's
    // words.
    let mut ids = Vec::new();
    for reference in &references {
        let image = ops::images::inspect(&state.app, &caller, &reference.to_string()).await.map_err(|e| {
            if e.status != StatusCode::NOT_FOUND {
                return e;
            }
            ApiError::not_found(format!(
                "An image does not exist locally with the tag: {}",
                reference.familiar_repository()
            ))
        })?;
        ids.push(image.id);
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut first = true;
    let mut pushes = Vec::new();
    for (reference, id) in references.into_iter().zip(ids) {
        let request = PushRequest { reference: reference.to_string() };
        let events = ops::registry::push(&state.app, &caller, Ok(request), credentials.clone()).await?;
        pushes.push((PushShown::new(&reference, &id), events, std::mem::take(&mut first)));
    }
    tokio::spawn(async move {
        for (shown, mut events, first) in pushes {
            while let Some(event) = events.recv().await {
                // One "The push refers to" line for all the tags.
                if !first && matches!(event, TransferEvent::Resolving { .. }) {
                    continue;
                }
                let failed = matches!(event, TransferEvent::Error { .. });
                for message in shown.messages(event) {
                    let _ = tx.send(message);
                }
                if failed {
                    return;
                }
            }
        }
    });
    Ok(json_stream(rx))
}

/// `POST /auth`: checks the credentials with the registry (nothing is kept: the docker CLI
/// keeps them, and sends them with each pull and push).
pub(super) async fn auth(
    State(state): State<DockerState>,
    caller: Caller,
    DockerJson(config): DockerJson<Option<AuthConfig>>,
) -> Result<Json<AuthResponse>, ApiError> {
    let config = config.ok_or_else(|| ApiError::bad_request("the credentials are missing"))?;
    let credentials = config.credentials().and_then(|c| {
        c.filter(|c| !c.username.is_empty() && !c.password.is_empty())
            .ok_or_else(|| ApiError::bad_request("a user name and password are required"))
    });
    let server = config.serveraddress.clone();
    ops::registry::check_login(&state.app, &caller, &server, credentials).await?;
    Ok(Json(AuthResponse { status: "Login Succeeded".into(), identity_token: Some(String::new()) }))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use berth_types::{PullReport, PushReport};

    use super::*;

    fn header(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(REGISTRY_AUTH_HEADER, HeaderValue::from_str(value).unwrap());
        headers
    }

    fn url_safe(json: &str) -> String {
        base64::engine::general_purpose::URL_SAFE.encode(json)
    }

    #[test]
    fn registry_auth_headers() {
        assert_eq!(registry_auth(&HeaderMap::new()).unwrap(), None);
        assert_eq!(registry_auth(&header("")).unwrap(), None);
        // `{}`: what the CLI sends without a login.
        assert_eq!(registry_auth(&header("e30=")).unwrap(), None);
        assert_eq!(registry_auth(&header("e30")).unwrap(), None);
        let c = registry_auth(&header(&url_safe(
            r#"{"username":"u","password":"p?>","serveraddress":"localhost:5000"}"#,
        )))
        .unwrap()
        .unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p?>"));
        // `auth` as config.json keeps it.
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3:cret");
        let c = registry_auth(&header(&url_safe(&format!(r#"{{"auth":"{auth}"}}"#)))).unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("alice", "s3:cret"));
        for bad in [
            "!!!",
            &url_safe("not json"),
            &url_safe("[1]"),
            &url_safe(r#"{"auth":"%%"}"#),
            &url_safe(r#"{"auth":"bm9jb2xvbg=="}"#),
            &url_safe(r#"{"identitytoken":"t"}"#),
        ] {
            assert_eq!(registry_auth(&header(bad)).unwrap_err().status, 400, "{bad}");
        }
    }

    #[test]
    fn pull_references() {
        let r = |image, tag| pull_reference(image, tag).map(|r| r.to_string());
        assert_eq!(r("busybox", "latest").unwrap(), "docker.io/library/busybox:latest");
        assert_eq!(r("busybox", "").unwrap(), "docker.io/library/busybox:latest");
        assert_eq!(r("busybox:1.36", "").unwrap(), "docker.io/library/busybox:1.36");
        assert_eq!(r("localhost:5000/team/app", "1").unwrap(), "localhost:5000/team/app:1");
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(r("localhost:5000/app", &digest).unwrap(), format!("localhost:5000/app@{digest}"));
        assert_eq!(r("Busybox", "").unwrap_err().status, 400);
        assert_eq!(r("busybox", "bad tag").unwrap_err().status, 400);
        assert_eq!(r("", "").unwrap_err().status, 400);
    }

    fn layer(status: LayerStatus, current: u64) -> TransferEvent {
        TransferEvent::Layer { digest: format!("sha256:{}", "ab".repeat(32)), status, current, total: 100 }
    }

    /// Layers already here show only "Already exists"; a pull that downloads nothing shows no
    /// layer lines, as dockerd.
    #[test]
    fn layer_lines_wait_for_a_download() {
        let reference = Reference::parse("busybox").unwrap();
        let other = |status| TransferEvent::Layer {
            digest: format!("sha256:{}", "cd".repeat(32)),
            status,
            current: 0,
            total: 100,
        };
        let mut shown = PullShown::new(&reference, None);
        assert!(shown.messages(layer(LayerStatus::Waiting, 0)).is_empty());
        assert!(shown.messages(other(LayerStatus::Waiting)).is_empty());
        assert!(shown.messages(layer(LayerStatus::AlreadyExists, 100)).is_empty());
        let lines: Vec<_> = shown
            .messages(other(LayerStatus::Downloading))
            .into_iter()
            .map(|m| format!("{}: {}", m.id.unwrap(), m.status.unwrap()))
            .collect();
        assert_eq!(
            lines,
            ["abababababab: Already exists", "cdcdcdcdcdcd: Pulling fs layer", "cdcdcdcdcdcd: Downloading"]
        );

        let mut nothing_new = PullShown::new(&reference, None);
        assert!(nothing_new.messages(layer(LayerStatus::Waiting, 0)).is_empty());
        assert!(nothing_new.messages(layer(LayerStatus::AlreadyExists, 100)).is_empty());
    }

    #[test]
    fn pull_progress_in_dockers_words() {
        let reference = Reference::parse("busybox").unwrap();
        let mut shown = PullShown::new(&reference, None);
        let first = shown.messages(TransferEvent::Resolving { reference: "busybox:latest".into() });
        assert_eq!(first, [JsonMessage::layer("Pulling from library/busybox", "latest")]);
        let down = shown.messages(layer(LayerStatus::Downloading, 40));
        assert_eq!(down[0].status.as_deref(), Some("Downloading"));
        assert_eq!(down[0].id.as_deref(), Some("abababababab"));
        assert_eq!(down[0].progress_detail.as_ref().unwrap().current, Some(40));
        let mut statuses =
            |event| shown.messages(event).into_iter().map(|m| m.status.unwrap()).collect::<Vec<_>>();
        assert_eq!(statuses(layer(LayerStatus::Waiting, 0)), ["Pulling fs layer"]);
        assert_eq!(statuses(layer(LayerStatus::Verifying, 100)), ["Verifying Checksum", "Download complete"]);
        assert_eq!(statuses(layer(LayerStatus::AlreadyExists, 100)), ["Already exists"]);
        assert_eq!(statuses(layer(LayerStatus::Done, 100)), ["Pull complete"]);
        let report = PullReport {
            reference: "docker.io/library/busybox:latest".into(),
            digest: "sha256:m".into(),
            index_digest: Some("sha256:i".into()),
            id: "sha256:new".into(),
            layers_downloaded: 1,
            layers_existing: 0,
            bytes_downloaded: 1,
        };
        assert_eq!(
            statuses(TransferEvent::Pulled(report.clone())),
            ["Digest: sha256:i", "Status: Downloaded newer image for busybox:latest"]
        );
        let mut same = PullShown::new(&reference, Some("sha256:new".into()));
        let last = same.messages(TransferEvent::Pulled(report)).pop().unwrap();
        assert_eq!(last.status.as_deref(), Some("Status: Image is up to date for busybox:latest"));
        let error = shown.messages(TransferEvent::Error { message: "no such tag".into(), status: None });
        assert_eq!(error, [JsonMessage::error("no such tag")]);

        let mut local = PullShown::new(&Reference::parse("localhost:5000/team/app:1").unwrap(), None);
        let first = local.messages(TransferEvent::Resolving { reference: String::new() });
        assert_eq!(first, [JsonMessage::layer("Pulling from team/app", "1")]);
    }

    #[test]
    fn push_progress_in_dockers_words() {
        let config = format!("sha256:{}", "cd".repeat(32));
        let shown = PushShown::new(&Reference::parse("localhost:5000/team/app:1").unwrap(), &config);
        let first = shown.messages(TransferEvent::Resolving { reference: String::new() });
        assert_eq!(first, [JsonMessage::status("The push refers to repository [localhost:5000/team/app]")]);
        let hub = PushShown::new(&Reference::parse("user/app").unwrap(), &config);
        let first = hub.messages(TransferEvent::Resolving { reference: String::new() });
        assert_eq!(first, [JsonMessage::status("The push refers to repository [docker.io/user/app]")]);
        let statuses = |event| shown.messages(event).into_iter().filter_map(|m| m.status).collect::<Vec<_>>();
        assert_eq!(statuses(layer(LayerStatus::Waiting, 0)), ["Preparing"]);
        assert_eq!(statuses(layer(LayerStatus::Uploading, 5)), ["Pushing"]);
        assert_eq!(statuses(layer(LayerStatus::AlreadyExists, 100)), ["Layer already exists"]);
        assert_eq!(statuses(layer(LayerStatus::Pushed, 100)), ["Pushed"]);
        // The config blob is no layer to show.
        let config_event =
            TransferEvent::Layer { digest: config, status: LayerStatus::Pushed, current: 1, total: 1 };
        assert!(shown.messages(config_event).is_empty());
        let report = PushReport {
            reference: String::new(),
            digest: "sha256:d".into(),
            size: 527,
            blobs_uploaded: 1,
            blobs_existing: 0,
            blobs_mounted: 0,
            bytes_uploaded: 1,
        };
        let last = shown.messages(TransferEvent::Pushed(report));
        assert_eq!(last[0].status.as_deref(), Some("1: digest: sha256:d size: 527"));
        assert_eq!(last[1].aux, Some(serde_json::json!({"Tag": "1", "Digest": "sha256:d", "Size": 527})));
    }
}
