//! Docker Engine API: images. Here the routes, list, inspect, history, tag, remove and prune;
//! `images/transfer` has pull, push and `/auth`, `images/archive` save, load and import.
//!
//! Image names hold slashes and colons (`localhost:5000/team/app:1`), which one path segment
//! cannot capture: the routes with a name take the rest of the path and split the action
//! (`/json`, `/history`, `/tag`, `/push`, `/get`) off its end ([`split_action`]).

mod archive;
pub(super) mod transfer;

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_engine::Reference;
use bollard_stubs::models::{
    DriverData, ImageConfig, ImageDeleteResponseItem, ImageHistoryResponseItem, ImageInspect,
    ImageInspectMetadata, ImageInspectRootFs, ImagePruneResponse, ImageSummary,
};

use super::query::DockerQuery;
use super::DockerState;
use crate::serve::error::ApiError;
use crate::serve::ops::{self, Caller};

pub fn routes() -> Router<DockerState> {
    Router::new()
        .route("/images/json", get(list))
        .route("/images/create", post(transfer::create))
        .route("/images/prune", post(prune))
        .route("/images/load", post(archive::load))
        .route("/images/get", get(archive::save_many))
        .route("/images/search", get(search))
        .route("/images/{*rest}", get(get_named).post(post_named).delete(remove))
        .route("/auth", post(transfer::auth))
}

/// What a route with an image name asks for: the name, and the action after it.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Named<'a> {
    pub name: &'a str,
    pub action: &'a str,
}

/// Splits `localhost:5000/team/app:1/json` into the name and the action (one of `actions`,
/// the last path segment). `None` when the path does not end in one of them or has no name.
pub(super) fn split_action<'a>(rest: &'a str, actions: &[&str]) -> Option<Named<'a>> {
    let rest = rest.trim_start_matches('/');
    let (name, action) = rest.rsplit_once('/')?;
    (!name.is_empty() && actions.contains(&action)).then_some(Named { name, action })
}

async fn get_named(
    state: State<DockerState>,
    caller: Caller,
    Path(rest): Path<String>,
) -> Result<Response, ApiError> {
    match split_action(&rest, &["json", "history", "get"]) {
        Some(Named { name, action: "json" }) => Ok(inspect(state, caller, name).await?.into_response()),
        Some(Named { name, action: "history" }) => Ok(history(state, caller, name).await?.into_response()),
        Some(Named { name, .. }) => archive::save_one(state, caller, name).await,
        None => Err(page_not_found()),
    }
}

async fn post_named(
    state: State<DockerState>,
    caller: Caller,
    Path(rest): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let parsed = DockerQuery::parse(query.as_deref());
    match split_action(&rest, &["tag", "push"]) {
        Some(Named { name, action: "tag" }) => tag(state, caller, name, &parsed).await,
        Some(Named { name, .. }) => transfer::push(state, caller, name, &parsed, &headers).await,
        None => Err(page_not_found()),
    }
}

/// dockerd's answer to a path it has no route for.
fn page_not_found() -> ApiError {
    ApiError::not_found("page not found")
}

/// Docker's wording for an unknown image: `No such image: busybox:latest` (a name without tag
/// or digest is shown with `:latest`).
pub(super) fn no_such_image(name: &str, e: ApiError) -> ApiError {
    if e.status != StatusCode::NOT_FOUND {
        return e;
    }
    let shown = match Reference::parse(name) {
        Ok(r) if !looks_like_id(name) => r.familiar(),
        _ => name.to_string(),
    };
    ApiError::not_found(format!("No such image: {shown}"))
}

/// `sha256:…` or a hex prefix of an ID: names that are not references to show as `name:latest`.
fn looks_like_id(name: &str) -> bool {
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    name.starts_with("sha256:")
        || (!hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) && hex.len() >= 12)
}

/// A normalised reference in the short form Docker shows (`busybox:latest`, `busybox@sha256:…`).
pub(super) fn familiar(reference: &str) -> String {
    Reference::parse(reference).map(|r| r.familiar()).unwrap_or_else(|_| reference.to_string())
}

/// An RFC 3339 time as Unix seconds (0 when there is none).
fn unix_seconds(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339).map(|t| t.timestamp()).unwrap_or(0)
}

/// The filters `GET /images/json` takes.
#[derive(Debug, Default, PartialEq)]
struct ImageFilters {
    dangling: Option<bool>,
    /// `key` or `key=value`.
    labels: Vec<String>,
    /// Patterns (`busybox`, `busybox:1.*`, `team/*`).
    references: Vec<String>,
    before: Option<String>,
    since: Option<String>,
}

impl ImageFilters {
    fn parse(pairs: &[String]) -> Result<ImageFilters, ApiError> {
        let mut filters = ImageFilters::default();
        for pair in pairs {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "dangling" => {
                    filters.dangling = Some(match value {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => {
                            return Err(ApiError::bad_request(format!("Invalid filter 'dangling=[{value}]'")))
                        }
                    })
                }
                "label" => filters.labels.push(value.to_string()),
                "reference" => filters.references.push(value.to_string()),
                "before" => filters.before = Some(value.to_string()),
                "since" => filters.since = Some(value.to_string()),
                _ => return Err(ApiError::bad_request(format!("Invalid filter '{key}'"))),
            }
        }
        Ok(filters)
    }
}

/// Whether `labels` have every `key` / `key=value` of `wanted`.
pub(super) fn labels_match(labels: &HashMap<String, String>, wanted: &[String]) -> bool {
    wanted.iter().all(|w| match w.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
        None => labels.contains_key(w.as_str()),
    })
}

/// Whether an image tagged `tags` (short forms) matches the reference pattern: the pattern is
/// matched against `repo:tag` and, without a tag of its own, against `repo`.
fn reference_matches(pattern: &str, tags: &[String]) -> bool {
    tags.iter().any(|tag| {
        let repo = Reference::parse(tag).map(|r| r.familiar_repository()).unwrap_or_default();
        glob(pattern, tag) || glob(pattern, &repo)
    })
}

/// Go's `path.Match`: `*` is any run of characters other than `/`, `?` one of them.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => {
                (0..=t.len()).take_while(|&i| i == 0 || t[i - 1] != '/').any(|i| go(&p[1..], &t[i..]))
            }
            Some('?') => t.first().is_some_and(|c| *c != '/') && go(&p[1..], &t[1..]),
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    go(&p, &t)
}

/// `GET /images/json?all=&filters=&digests=`: berth has no intermediate images, so `all`
/// changes nothing; repository digests are always listed.
async fn list(
    State(state): State<DockerState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<ImageSummary>>, ApiError> {
    let query = DockerQuery::parse(query.as_deref());
    let filters = ImageFilters::parse(&query.filters()?)?;
    let app = &state.app;
    let before = match &filters.before {
        Some(name) => Some(created_of(&state, &caller, name).await?),
        None => None,
    };
    let since = match &filters.since {
        Some(name) => Some(created_of(&state, &caller, name).await?),
        None => None,
    };
    let mut answer = Vec::new();
    for image in ops::images::list(app, &caller).await? {
        // Labels are in the config, which the list does not read.
        let labels = match ops::images::inspect(app, &caller, &image.id).await {
            Ok(inspect) => inspect.config.labels.into_iter().collect(),
            // Removed meanwhile.
            Err(e) if e.status == StatusCode::NOT_FOUND => continue,
            Err(e) => return Err(e),
        };
        let summary = summary(image, labels);
        if keep(&filters, &summary, before, since) {
            answer.push(summary);
        }
    }
    Ok(Json(answer))
}

/// When the image `name` was made (the `before` and `since` filters).
async fn created_of(state: &DockerState, caller: &Caller, name: &str) -> Result<i64, ApiError> {
    ops::images::inspect(&state.app, caller, name)
        .await
        .map(|i| unix_seconds(&i.created))
        .map_err(|e| no_such_image(name, e))
}

/// berth's image row in Docker's shape.
pub(super) fn summary(image: berth_types::ImageSummary, labels: HashMap<String, String>) -> ImageSummary {
    ImageSummary {
        id: image.id,
        parent_id: String::new(),
        repo_tags: image.repo_tags.iter().map(|t| familiar(t)).collect(),
        repo_digests: image.repo_digests.iter().map(|d| familiar(d)).collect(),
        created: unix_seconds(&image.created),
        size: image.size as i64,
        // Not computed, as dockerd answers without `shared-size`.
        shared_size: -1,
        labels,
        containers: -1,
        manifests: None,
        descriptor: None,
    }
}

fn keep(filters: &ImageFilters, image: &ImageSummary, before: Option<i64>, since: Option<i64>) -> bool {
    let dangling = image.repo_tags.is_empty();
    filters.dangling.is_none_or(|d| d == dangling)
        && labels_match(&image.labels, &filters.labels)
        && (filters.references.is_empty()
            || filters.references.iter().any(|p| reference_matches(p, &image.repo_tags)))
        && before.is_none_or(|b| image.created < b)
        && since.is_none_or(|s| image.created > s)
}

async fn inspect(
    State(state): State<DockerState>,
    caller: Caller,
    name: &str,
) -> Result<Json<ImageInspect>, ApiError> {
    let image = ops::images::inspect(&state.app, &caller, name).await.map_err(|e| no_such_image(name, e))?;
    Ok(Json(inspect_answer(image)))
}

/// berth's inspect in Docker's shape.
fn inspect_answer(image: berth_types::ImageInspect) -> ImageInspect {
    let config = image.config;
    let some_list = |v: Vec<String>| (!v.is_empty()).then_some(v);
    ImageInspect {
        id: Some(image.id),
        repo_tags: Some(image.repo_tags.iter().map(|t| familiar(t)).collect()),
        repo_digests: Some(image.repo_digests.iter().map(|d| familiar(d)).collect()),
        comment: Some(String::new()),
        created: (!image.created.is_empty()).then_some(image.created),
        author: Some(image.author),
        config: Some(ImageConfig {
            user: Some(config.user),
            exposed_ports: some_list(config.exposed_ports),
            env: Some(config.env),
            cmd: some_list(config.cmd),
            volumes: some_list(config.volumes),
            working_dir: Some(config.working_dir),
            entrypoint: some_list(config.entrypoint),
            labels: Some(config.labels.into_iter().collect()),
            stop_signal: (!config.stop_signal.is_empty()).then_some(config.stop_signal),
            ..Default::default()
        }),
        architecture: Some(image.architecture),
        os: Some(image.os),
        size: Some(image.size as i64),
        graph_driver: Some(DriverData { name: "overlay2".into(), data: HashMap::new() }),
        root_fs: Some(ImageInspectRootFs {
            typ: "layers".into(),
            layers: Some(image.layers.into_iter().map(|l| l.diff_id).collect()),
        }),
        metadata: Some(ImageInspectMetadata { last_tag_time: None }),
        ..Default::default()
    }
}

/// `GET /images/{name}/history`: newest first; the newest step carries the image's ID and
/// tags, the older ones `<missing>` (they are not images of their own), as dockerd shows
/// pulled images.
async fn history(
    State(state): State<DockerState>,
    caller: Caller,
    name: &str,
) -> Result<Json<Vec<ImageHistoryResponseItem>>, ApiError> {
    let image = ops::images::inspect(&state.app, &caller, name).await.map_err(|e| no_such_image(name, e))?;
    let steps = ops::images::history(&state.app, &caller, name).await.map_err(|e| no_such_image(name, e))?;
    Ok(Json(history_answer(&image, steps)))
}

fn history_answer(
    image: &berth_types::ImageInspect,
    steps: Vec<berth_types::HistoryEntry>,
) -> Vec<ImageHistoryResponseItem> {
    steps
        .into_iter()
        .enumerate()
        .map(|(i, step)| ImageHistoryResponseItem {
            id: if i == 0 { image.id.clone() } else { "<missing>".into() },
            created: unix_seconds(&step.created),
            created_by: step.created_by,
            tags: if i == 0 { image.repo_tags.iter().map(|t| familiar(t)).collect() } else { Vec::new() },
            size: step.size as i64,
            comment: step.comment,
        })
        .collect()
}

/// The reference `repo` and `tag` of a tag or commit name (`tag` empty: `latest`).
pub(super) fn repo_and_tag(repo: &str, tag: &str) -> Result<String, ApiError> {
    if repo.is_empty() {
        return Err(ApiError::bad_request("repository name must have at least one component"));
    }
    let target = if tag.is_empty() { repo.to_string() } else { format!("{repo}:{tag}") };
    let reference = Reference::parse(&target).map_err(|e| ApiError::bad_request(e.0))?;
    if reference.digest().is_some() {
        return Err(ApiError::bad_request(format!(
            "refusing to create a tag with a digest reference: {target}"
        )));
    }
    Ok(target)
}

/// `POST /images/{name}/tag?repo=&tag=` → 201.
async fn tag(
    State(state): State<DockerState>,
    caller: Caller,
    name: &str,
    query: &DockerQuery,
) -> Result<Response, ApiError> {
    let target = repo_and_tag(query.get("repo").unwrap_or(""), query.get("tag").unwrap_or(""));
    ops::images::tag(&state.app, &caller, name, target).await.map_err(|e| no_such_image(name, e))?;
    Ok(StatusCode::CREATED.into_response())
}

/// `DELETE /images/{name}?force=&noprune=`: `noprune` is accepted (berth keeps no untagged
/// parents to spare).
async fn remove(
    State(state): State<DockerState>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<ImageDeleteResponseItem>>, ApiError> {
    let query = DockerQuery::parse(query.as_deref());
    let force = query.flag("force")?;
    query.flag("noprune")?;
    let name = name.trim_start_matches('/');
    let items =
        ops::images::remove(&state.app, &caller, name, force).await.map_err(|e| no_such_image(name, e))?;
    Ok(Json(items.into_iter().map(delete_item).collect()))
}

fn delete_item(item: berth_types::ImageDeleteItem) -> ImageDeleteResponseItem {
    match item {
        berth_types::ImageDeleteItem::Untagged(r) => {
            ImageDeleteResponseItem { untagged: Some(familiar(&r)), deleted: None }
        }
        berth_types::ImageDeleteItem::Deleted(id) => {
            ImageDeleteResponseItem { untagged: None, deleted: Some(id) }
        }
    }
}

/// Which images a prune's filters ask for: `dangling=false` is every unused image.
fn prune_all(pairs: &[String]) -> Result<bool, ApiError> {
    let mut all = false;
    for pair in pairs {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match (key, value) {
            ("dangling", "true" | "1") => all = false,
            ("dangling", "false" | "0") => all = true,
            ("dangling", _) => {
                return Err(ApiError::bad_request(format!("Invalid filter 'dangling=[{value}]'")))
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "Invalid filter '{key}': this daemon's image prune takes only the filter 'dangling'"
                )))
            }
        }
    }
    Ok(all)
}

async fn prune(
    State(state): State<DockerState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<ImagePruneResponse>, ApiError> {
    let query = DockerQuery::parse(query.as_deref());
    let all = prune_all(&query.filters()?)?;
    let report = ops::images::prune(&state.app, &caller, all).await?;
    Ok(Json(ImagePruneResponse {
        images_deleted: Some(report.images_deleted.into_iter().map(delete_item).collect()),
        space_reclaimed: Some(report.space_reclaimed as i64),
    }))
}

/// `GET /images/search`: berth searches no registry; a clear refusal, not a failure.
async fn search() -> ApiError {
    ApiError::bad_request("search is not supported by this daemon yet")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_from_their_action() {
        let split = |rest| split_action(rest, &["json", "history", "get"]);
        assert_eq!(split("busybox/json"), Some(Named { name: "busybox", action: "json" }));
        assert_eq!(
            split("localhost:5000/team/app:1/history"),
            Some(Named { name: "localhost:5000/team/app:1", action: "history" })
        );
        assert_eq!(split("/a/b@sha256:00/get"), Some(Named { name: "a/b@sha256:00", action: "get" }));
        // An image whose last path segment is an action's word keeps it.
        assert_eq!(split("team/json/json"), Some(Named { name: "team/json", action: "json" }));
        assert_eq!(split("busybox"), None);
        assert_eq!(split("/json"), None);
        assert_eq!(split("busybox/push"), None);
        assert_eq!(split(""), None);
    }

    #[test]
    fn image_filters() {
        let pairs = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let f = ImageFilters::parse(&pairs(&["dangling=true", "label=a=b", "reference=busybox", "since=x"]))
            .unwrap();
        assert_eq!(f.dangling, Some(true));
        assert_eq!(f.labels, ["a=b"]);
        assert_eq!(f.references, ["busybox"]);
        assert_eq!(f.since.as_deref(), Some("x"));
        assert_eq!(ImageFilters::parse(&pairs(&["dangling=maybe"])).unwrap_err().status, 400);
        assert_eq!(ImageFilters::parse(&pairs(&["colour=red"])).unwrap_err().status, 400);

        let labels: HashMap<String, String> = [("a".to_string(), "b".to_string())].into();
        assert!(labels_match(&labels, &pairs(&["a", "a=b"])));
        assert!(!labels_match(&labels, &pairs(&["a=c"])));
        assert!(!labels_match(&labels, &pairs(&["z"])));

        let tags = pairs(&["busybox:latest", "localhost:5000/team/app:1"]);
        assert!(reference_matches("busybox", &tags));
        assert!(reference_matches("busybox:latest", &tags));
        assert!(reference_matches("busy*", &tags));
        assert!(reference_matches("localhost:5000/team/*", &tags));
        assert!(reference_matches("localhost:5000/*/app:?", &tags));
        assert!(!reference_matches("localhost:5000/*", &tags));
        assert!(!reference_matches("busybox:1", &tags));
        assert!(!reference_matches("busybox", &[]));
    }

    #[test]
    fn prune_filters() {
        assert!(!prune_all(&[]).unwrap());
        assert!(prune_all(&["dangling=false".into()]).unwrap());
        assert!(!prune_all(&["dangling=true".into()]).unwrap());
        assert_eq!(prune_all(&["until=24h".into()]).unwrap_err().status, 400);
        assert_eq!(prune_all(&["dangling=x".into()]).unwrap_err().status, 400);
    }

    #[test]
    fn tag_targets() {
        assert_eq!(repo_and_tag("app", "1").unwrap(), "app:1");
        assert_eq!(repo_and_tag("localhost:5000/app", "").unwrap(), "localhost:5000/app");
        assert_eq!(repo_and_tag("", "1").unwrap_err().status, 400);
        assert_eq!(repo_and_tag("App", "1").unwrap_err().status, 400);
        assert_eq!(repo_and_tag("app", "bad tag").unwrap_err().status, 400);
    }

    /// Through the router: names with slashes and colons, Docker's shapes and words, a team's
    /// image hidden from another team.
    #[tokio::test]
    async fn image_routes_through_the_router() {
        use axum::body::Body;

        use crate::serve::auth::Transport;
        use crate::serve::test_support::{call, rootfs_tar, setup};

        let s = setup().await;
        let app = crate::serve::docker::service(s.state.clone(), Transport::Tcp { tls: false });
        let name = "localhost:5000/team/app:1";
        let import = format!("/images/create?fromSrc=-&repo={name}&changes=CMD%20%5B%22sh%22%5D");
        let (status, body) = call(&app, &s.alice, "POST", &import, Body::from(rootfs_tar())).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let id = serde_json::from_str::<serde_json::Value>(body.trim()).unwrap()["status"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(id.starts_with("sha256:"), "{body}");

        let (status, body) =
            call(&app, &s.alice, "GET", &format!("/v1.45/images/{name}/json"), Body::empty()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let inspect: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(inspect["Id"], id.as_str());
        assert_eq!(inspect["RepoTags"][0], name);
        assert_eq!(inspect["Config"]["Cmd"][0], "sh");
        let (status, body) =
            call(&app, &s.alice, "GET", &format!("/images/{name}/history"), Body::empty()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()[0]["Id"], id.as_str());

        let (status, body) =
            call(&app, &s.alice, "POST", &format!("/images/{name}/tag?repo=other&tag=2"), Body::empty())
                .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (_, body) = call(
            &app,
            &s.alice,
            "GET",
            "/images/json?filters=%7B%22reference%22%3A%5B%22other%22%5D%7D",
            Body::empty(),
        )
        .await;
        let list: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(list.as_array().unwrap().len(), 1, "{body}");
        assert_eq!(list[0]["RepoTags"], serde_json::json!(["other:2", name]), "{body}");

        // Another team's image does not exist for bob.
        let (status, body) = call(&app, &s.bob, "GET", "/images/other:2/json", Body::empty()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert!(body.contains("No such image: other:2"), "{body}");
        let (_, body) = call(&app, &s.bob, "GET", "/images/json", Body::empty()).await;
        assert_eq!(body, "[]");

        let (status, body) = call(&app, &s.alice, "GET", "/images/nosuch/json", Body::empty()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("No such image: nosuch:latest"), "{body}");
        let (status, body) =
            call(&app, &s.alice, "DELETE", &format!("/images/{}", &id[7..19]), Body::empty()).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        let (status, body) = call(&app, &s.alice, "GET", "/images/search?term=x", Body::empty()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body.contains("search is not supported"), "{body}");
        let (status, body) =
            call(&app, &s.alice, "GET", "/images/json?filters=%7B%22x%22%3A%5B%22y%22%5D%7D", Body::empty())
                .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

        // Saved and loaded back under its names.
        let (status, tar) = call(&app, &s.alice, "GET", "/images/get?names=other:2", Body::empty()).await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = call(&app, &s.alice, "DELETE", "/images/other:2", Body::empty()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, r#"[{"Untagged":"other:2"}]"#);
        let (status, body) = call(&app, &s.alice, "POST", "/images/load", Body::from(tar.into_bytes())).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.contains(r#"{"stream":"Loaded image: other:2\n"}"#), "{body}");
    }

    #[test]
    fn unknown_images_as_docker_words_them() {
        let e = no_such_image("busybox", ApiError::not_found("No such image: busybox"));
        assert_eq!(e.message, "No such image: busybox:latest");
        let e = no_such_image("sha256:abcd", ApiError::not_found("x"));
        assert_eq!(e.message, "No such image: sha256:abcd");
        let e = no_such_image("busybox", ApiError::conflict("in use"));
        assert_eq!(e.status, 409);
        assert_eq!(familiar("docker.io/library/busybox:latest"), "busybox:latest");
    }
}
