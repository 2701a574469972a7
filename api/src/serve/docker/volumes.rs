//! Docker Engine API: volumes — list, create, inspect, remove, prune. berth's volumes are
//! local directories: a create asking for another driver, or for the local driver's mount
//! options (NFS, tmpfs, a device), is refused with 400 naming the option.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_types::volume::{VolumeCreate, VolumeInspect};
use bollard_stubs::models::{
    Volume, VolumeCreateRequest, VolumeListResponse, VolumePruneResponse, VolumeScopeEnum,
};

use super::images::labels_match;
use super::query::DockerQuery;
use super::{DockerJson, DockerState};
use crate::serve::error::ApiError;
use crate::serve::ops::{self, Caller};

pub fn routes() -> Router<DockerState> {
    Router::new()
        .route("/volumes", get(list))
        .route("/volumes/create", post(create))
        .route("/volumes/prune", post(prune))
        .route("/volumes/{name}", get(inspect).delete(remove))
}

/// The label dockerd puts on anonymous volumes (what `volume prune` without `all` removes).
const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

pub(super) fn volume_answer(volume: VolumeInspect) -> Volume {
    let mut labels: HashMap<String, String> = volume.labels.into_iter().collect();
    if volume.anonymous {
        labels.insert(ANONYMOUS_LABEL.into(), String::new());
    }
    Volume {
        name: volume.name,
        driver: volume.driver,
        mountpoint: volume.mountpoint,
        created_at: (!volume.created.is_empty()).then_some(volume.created),
        labels,
        scope: Some(VolumeScopeEnum::LOCAL),
        options: HashMap::new(),
        ..Default::default()
    }
}

/// Docker's wording for an unknown volume.
fn no_such_volume(name: &str, e: ApiError) -> ApiError {
    if e.status == StatusCode::NOT_FOUND {
        return ApiError::not_found(format!("get {name}: no such volume"));
    }
    e
}

/// The filters `GET /volumes` takes.
#[derive(Debug, Default, PartialEq)]
struct VolumeFilters {
    /// Parts of names (dockerd matches names by substring).
    names: Vec<String>,
    labels: Vec<String>,
    drivers: Vec<String>,
    dangling: Option<bool>,
}

impl VolumeFilters {
    fn parse(pairs: &[String]) -> Result<VolumeFilters, ApiError> {
        let mut f = VolumeFilters::default();
        for pair in pairs {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "name" => f.names.push(value.to_string()),
                "label" => f.labels.push(value.to_string()),
                "driver" => f.drivers.push(value.to_string()),
                "dangling" => {
                    f.dangling = Some(match value {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(ApiError::bad_request(format!("Invalid filter 'dangling={value}'"))),
                    })
                }
                _ => return Err(ApiError::bad_request(format!("Invalid filter '{key}'"))),
            }
        }
        Ok(f)
    }

    fn keep(&self, v: &Volume, used: bool) -> bool {
        (self.names.is_empty() || self.names.iter().any(|n| v.name.contains(n.as_str())))
            && (self.drivers.is_empty() || self.drivers.contains(&v.driver))
            && labels_match(&v.labels, &self.labels)
            && self.dangling.is_none_or(|dangling| dangling != used)
    }
}

async fn list(
    State(state): State<DockerState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<VolumeListResponse>, ApiError> {
    let query = DockerQuery::parse(query.as_deref());
    let filters = VolumeFilters::parse(&query.filters()?)?;
    let volumes = ops::volumes::list(&state.app, &caller)
        .await?
        .into_iter()
        .filter_map(|v| {
            let used = !v.used_by.is_empty();
            let answer = volume_answer(v);
            filters.keep(&answer, used).then_some(answer)
        })
        .collect();
    Ok(Json(VolumeListResponse { volumes: Some(volumes), warnings: Some(Vec::new()) }))
}

/// Docker's create body as berth's.
fn create_request(body: VolumeCreateRequest) -> Result<VolumeCreate, ApiError> {
    let driver = body.driver.unwrap_or_default();
    if !matches!(driver.as_str(), "" | "local") {
        return Err(ApiError::bad_request(format!(
            "Driver {driver:?} is not supported by this daemon: only local volumes"
        )));
    }
    if let Some(option) = body.driver_opts.as_ref().and_then(|o| o.keys().min()) {
        return Err(ApiError::bad_request(format!(
            "DriverOpts {option:?} is not supported by this daemon: volumes are plain directories"
        )));
    }
    if body.cluster_volume_spec.is_some() {
        return Err(ApiError::bad_request(
            "ClusterVolumeSpec is not supported by this daemon: there is no swarm",
        ));
    }
    Ok(VolumeCreate {
        name: body.name.unwrap_or_default(),
        driver: "local".into(),
        labels: body.labels.unwrap_or_default().into_iter().collect(),
    })
}

/// `POST /volumes/create` → 201 with the volume (an existing one of that name is answered
/// as it is, as dockerd).
async fn create(
    State(state): State<DockerState>,
    caller: Caller,
    DockerJson(body): DockerJson<Option<VolumeCreateRequest>>,
) -> Result<Response, ApiError> {
    let request = create_request(body.unwrap_or_default());
    let volume = ops::volumes::create(&state.app, &caller, request).await?;
    Ok((StatusCode::CREATED, Json(volume_answer(volume))).into_response())
}

async fn inspect(
    State(state): State<DockerState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Volume>, ApiError> {
    let volume =
        ops::volumes::inspect(&state.app, &caller, &name).await.map_err(|e| no_such_volume(&name, e))?;
    Ok(Json(volume_answer(volume)))
}

/// `DELETE /volumes/{name}?force=` → 204.
async fn remove(
    State(state): State<DockerState>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<StatusCode, ApiError> {
    let force = DockerQuery::parse(query.as_deref()).flag("force")?;
    ops::volumes::remove(&state.app, &caller, &name, force).await.map_err(|e| no_such_volume(&name, e))?;
    Ok(StatusCode::NO_CONTENT)
}

/// A prune's label filters: `label=key`, `label=key=value`, and their negations `label!=`.
#[derive(Debug, Default, PartialEq)]
struct PruneFilters {
    all: bool,
    with: Vec<String>,
    without: Vec<String>,
}

impl PruneFilters {
    fn parse(pairs: &[String]) -> Result<PruneFilters, ApiError> {
        let mut f = PruneFilters::default();
        for pair in pairs {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "label" => f.with.push(value.to_string()),
                "label!" => f.without.push(value.to_string()),
                "all" => {
                    f.all = match value {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(ApiError::bad_request(format!("Invalid filter 'all={value}'"))),
                    }
                }
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "Invalid filter '{key}': this daemon's volume prune takes label and all"
                    )))
                }
            }
        }
        Ok(f)
    }

    fn chosen(&self, labels: &BTreeMap<String, String>) -> bool {
        let labels: HashMap<String, String> = labels.clone().into_iter().collect();
        labels_match(&labels, &self.with)
            && self.without.iter().all(|w| !labels_match(&labels, std::slice::from_ref(w)))
    }
}

/// `POST /volumes/prune?filters=`: unused anonymous volumes, every unused one with
/// `all=true` (Docker 23+).
async fn prune(
    State(state): State<DockerState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<VolumePruneResponse>, ApiError> {
    let query = DockerQuery::parse(query.as_deref());
    let filters = PruneFilters::parse(&query.filters()?)?;
    let all = filters.all;
    let report = ops::volumes::prune(&state.app, &caller, all, move |labels| filters.chosen(labels)).await?;
    Ok(Json(VolumePruneResponse {
        volumes_deleted: Some(report.volumes_deleted),
        space_reclaimed: Some(report.space_reclaimed as i64),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn create_bodies() {
        let body: VolumeCreateRequest =
            serde_json::from_str(r#"{"Name":"db","Driver":"local","Labels":{"a":"b"},"DriverOpts":{}}"#)
                .unwrap();
        let r = create_request(body).unwrap();
        assert_eq!((r.name.as_str(), r.driver.as_str()), ("db", "local"));
        assert_eq!(r.labels["a"], "b");
        assert_eq!(create_request(VolumeCreateRequest::default()).unwrap().name, "");
        let nfs: VolumeCreateRequest =
            serde_json::from_str(r#"{"Name":"n","DriverOpts":{"type":"nfs","o":"addr=1.2.3.4"}}"#).unwrap();
        let e = create_request(nfs).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("\"o\""), "{}", e.message);
        let other: VolumeCreateRequest = serde_json::from_str(r#"{"Driver":"rexray"}"#).unwrap();
        assert!(create_request(other).unwrap_err().message.contains("rexray"));
    }

    fn volume(name: &str, labels: &[(&str, &str)]) -> Volume {
        Volume {
            name: name.into(),
            driver: "local".into(),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn list_filters() {
        let f = |p: &[&str]| VolumeFilters::parse(&pairs(p)).unwrap();
        let v = volume("app_data", &[("team", "a")]);
        assert!(f(&["name=data"]).keep(&v, false));
        assert!(!f(&["name=logs"]).keep(&v, false));
        assert!(f(&["label=team"]).keep(&v, false) && !f(&["label=team=b"]).keep(&v, false));
        assert!(f(&["driver=local"]).keep(&v, true));
        assert!(f(&["dangling=true"]).keep(&v, false) && !f(&["dangling=true"]).keep(&v, true));
        assert!(f(&["dangling=false"]).keep(&v, true));
        for bad in ["dangling=x", "colour=red"] {
            assert_eq!(VolumeFilters::parse(&pairs(&[bad])).unwrap_err().status, 400, "{bad}");
        }
    }

    #[test]
    fn prune_filters() {
        let f = PruneFilters::parse(&pairs(&["all=1", "label=team=a", "label!=pin"])).unwrap();
        assert!(f.all);
        let labels = |p: &[(&str, &str)]| p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert!(f.chosen(&labels(&[("team", "a")])));
        assert!(!f.chosen(&labels(&[("team", "a"), ("pin", "")])));
        assert!(!f.chosen(&labels(&[("team", "b")])));
        assert!(!PruneFilters::parse(&[]).unwrap().all);
        assert_eq!(PruneFilters::parse(&pairs(&["until=1h"])).unwrap_err().status, 400);
        assert_eq!(PruneFilters::parse(&pairs(&["all=x"])).unwrap_err().status, 400);
    }

    /// Through the router: Docker's shapes and status codes, a team's volume hidden from
    /// another team.
    #[tokio::test]
    async fn volume_routes_through_the_router() {
        use axum::body::Body;

        use crate::serve::auth::Transport;
        use crate::serve::test_support::{call, json, setup};

        let s = setup().await;
        let app = crate::serve::docker::service(s.state.clone(), Transport::Tcp { tls: false });
        let create = serde_json::json!({"Name": "data", "Driver": "local", "Labels": {"a": "b"}});
        let (status, body) =
            call(&app, &s.alice, "POST", "/v1.45/volumes/create", json(create.clone())).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["Labels"]["a"], "b");
        // A create of an existing volume answers it.
        let (status, _) = call(&app, &s.alice, "POST", "/volumes/create", json(create)).await;
        assert_eq!(status, StatusCode::CREATED);
        let nfs = serde_json::json!({"Name": "n", "DriverOpts": {"type": "nfs"}});
        let (status, body) = call(&app, &s.alice, "POST", "/volumes/create", json(nfs)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let (status, body) = call(&app, &s.alice, "POST", "/volumes/create", Body::from("{")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

        let (_, body) = call(
            &app,
            &s.alice,
            "GET",
            "/volumes?filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%7D",
            Body::empty(),
        )
        .await;
        let list: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(list["Volumes"][0]["Name"], "data", "{body}");
        assert_eq!(list["Warnings"], serde_json::json!([]));
        let (_, body) = call(&app, &s.bob, "GET", "/volumes", Body::empty()).await;
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&body).unwrap()["Volumes"],
            serde_json::json!([])
        );
        let (status, body) = call(&app, &s.bob, "GET", "/volumes/data", Body::empty()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert!(body.contains("get data: no such volume"), "{body}");

        let (status, body) = call(&app, &s.alice, "DELETE", "/volumes/data", Body::empty()).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let (status, _) = call(&app, &s.alice, "DELETE", "/volumes/data", Body::empty()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[test]
    fn volumes_in_dockers_shape() {
        let inspect = VolumeInspect {
            name: "v".into(),
            driver: "local".into(),
            mountpoint: "/var/lib/berth/volumes/v/_data".into(),
            created: "2026-01-01T00:00:00Z".into(),
            labels: BTreeMap::new(),
            anonymous: true,
            used_by: Vec::new(),
            size: None,
        };
        let json = serde_json::to_value(volume_answer(inspect)).unwrap();
        assert_eq!(json["Scope"], "local");
        assert_eq!(json["CreatedAt"], "2026-01-01T00:00:00Z");
        assert_eq!(json["Labels"][ANONYMOUS_LABEL], "");
        assert_eq!(
            no_such_volume("x", ApiError::not_found("No such volume: x")).message,
            "get x: no such volume"
        );
    }
}
