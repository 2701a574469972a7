//! Docker Engine API: `_ping`, `version`, `info`, `events` and `system/df`.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bollard_stubs::models::{SystemInfo, SystemVersion, SystemVersionComponents, SystemVersionPlatform};

use super::query::DockerQuery;
use super::{DockerState, API_VERSION, MIN_API_VERSION};
use crate::serve::error::ApiError;
use crate::serve::ops::{self, Caller};

pub fn routes() -> Router<DockerState> {
    Router::new()
        .route("/_ping", get(ping).head(ping))
        .route("/version", get(version))
        .route("/info", get(info))
        .route("/events", get(events))
        .route("/system/df", get(disk_usage))
}

/// The headers the CLI negotiates with: the API version, the OS, the builder (classic: berth
/// has no BuildKit session API).
async fn ping() -> Response {
    let mut headers = HeaderMap::new();
    headers.insert("ostype", HeaderValue::from_static("linux"));
    headers.insert("docker-experimental", HeaderValue::from_static("false"));
    headers.insert("builder-version", HeaderValue::from_static("1"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-store, must-revalidate"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    (headers, "OK").into_response()
}

/// `GET /system/df` in the shape of API 1.45 (`LayersSize`, `Images`, `Containers`, `Volumes`,
/// `BuildCache`), the one `docker system df` reads at the versions berth negotiates.
async fn disk_usage(
    State(state): State<DockerState>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    let usage = ops::system::disk_usage(&state.app, &caller).await?;
    let mut images = Vec::with_capacity(usage.images.len());
    for used in usage.images {
        let mut image = super::images::summary(used.image, Default::default());
        image.containers = used.containers as i64;
        // Every layer of an image is shared with its other users in berth's store; what only
        // this image holds is not worked out, as dockerd does not either in `docker system df`.
        image.shared_size = -1;
        images.push(image);
    }
    let containers: Vec<serde_json::Value> = usage
        .containers
        .into_iter()
        .map(|used| {
            let mut summary = super::containers::summary(used.container);
            summary.size_rw = Some(used.size_rw as i64);
            serde_json::to_value(summary).unwrap_or_default()
        })
        .collect();
    let volumes: Vec<bollard_stubs::models::Volume> = usage
        .volumes
        .into_iter()
        .map(|volume| {
            let usage = bollard_stubs::models::VolumeUsageData {
                // -1 is Docker's "not measured".
                size: volume.size.map(|s| s as i64).unwrap_or(-1),
                ref_count: volume.used_by.len() as i64,
            };
            let mut answer = super::volumes::volume_answer(volume);
            answer.usage_data = Some(usage);
            answer
        })
        .collect();
    Ok(Json(serde_json::json!({
        "LayersSize": usage.layers_size,
        "Images": images,
        "Containers": containers,
        "Volumes": volumes,
        // berth's build cache is its layers, counted with the images.
        "BuildCache": [],
    })))
}

fn kernel_version() -> String {
    nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default()
}

pub fn go_arch() -> &'static str {
    crate::serve::go_arch(std::env::consts::ARCH)
}

async fn version() -> Json<SystemVersion> {
    let version = env!("CARGO_PKG_VERSION").to_string();
    let component = SystemVersionComponents {
        name: "Engine".into(),
        version: version.clone(),
        details: Some(
            [
                ("ApiVersion".to_string(), API_VERSION.to_string()),
                ("MinAPIVersion".to_string(), MIN_API_VERSION.to_string()),
                ("Os".to_string(), "linux".to_string()),
                ("Arch".to_string(), go_arch().to_string()),
                ("KernelVersion".to_string(), kernel_version()),
            ]
            .into_iter()
            .collect(),
        ),
    };
    Json(SystemVersion {
        platform: Some(SystemVersionPlatform { name: "berth".into() }),
        components: Some(vec![component]),
        version: Some(version),
        api_version: Some(API_VERSION.into()),
        min_api_version: Some(MIN_API_VERSION.into()),
        git_commit: Some(String::new()),
        go_version: Some(String::new()),
        os: Some("linux".into()),
        arch: Some(go_arch().into()),
        kernel_version: Some(kernel_version()),
        experimental: Some(false),
        build_time: Some(String::new()),
    })
}

async fn info(State(state): State<DockerState>, caller: Caller) -> Result<Json<SystemInfo>, ApiError> {
    let app = &state.app;
    let info = ops::system::info(app, &caller).await?;
    let containers = ops::containers::list(app, &caller, true, &Default::default()).await?;
    let count =
        |status: berth_types::ContainerStatus| containers.iter().filter(|c| c.state.status == status).count();
    let uname = nix::sys::utsname::uname().ok();
    let hostname = uname.as_ref().map(|u| u.nodename().to_string_lossy().into_owned()).unwrap_or_default();
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        })
        .unwrap_or(0)
        * 1024;
    let cgroup_version =
        if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() { "2" } else { "1" };
    Ok(Json(SystemInfo {
        id: Some(hostname.clone()),
        containers: Some(containers.len() as i64),
        containers_running: Some(count(berth_types::ContainerStatus::Running) as i64),
        containers_paused: Some(count(berth_types::ContainerStatus::Paused) as i64),
        containers_stopped: Some(
            (containers.len()
                - count(berth_types::ContainerStatus::Running)
                - count(berth_types::ContainerStatus::Paused)) as i64,
        ),
        images: Some(info.images as i64),
        driver: Some(if info.snapshotter == "overlay" {
            "overlay2".into()
        } else {
            info.snapshotter.clone()
        }),
        docker_root_dir: Some(info.root.clone()),
        kernel_version: Some(kernel_version()),
        operating_system: Some(os_name()),
        os_type: Some("linux".into()),
        architecture: Some(std::env::consts::ARCH.into()),
        ncpu: Some(std::thread::available_parallelism().map(|n| n.get() as i64).unwrap_or(1)),
        mem_total: Some(memory),
        name: Some(hostname),
        server_version: Some(info.version.clone()),
        cgroup_driver: Some(bollard_stubs::models::SystemInfoCgroupDriverEnum::CGROUPFS),
        cgroup_version: Some(if cgroup_version == "2" {
            bollard_stubs::models::SystemInfoCgroupVersionEnum::_2
        } else {
            bollard_stubs::models::SystemInfoCgroupVersionEnum::_1
        }),
        logging_driver: Some("json-file".into()),
        default_runtime: Some("berth".into()),
        index_server_address: Some("https://index.docker.io/v1/".into()),
        experimental_build: Some(false),
        live_restore_enabled: Some(true),
        ..Default::default()
    }))
}

/// `PRETTY_NAME` of /etc/os-release, as Docker's info shows it.
fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=")).map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".into())
}

/// `GET /events?since=&until=&filters=`: the recorded events since `since`, then the live ones
/// until `until` (or for as long as the client listens), as Docker's JSON messages.
async fn events(
    State(state): State<DockerState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    caller.require(berth_types::auth::Role::Viewer)?;
    let query = DockerQuery::parse(raw.as_deref());
    let since = query.unix_time("since")?;
    let until = query.unix_time("until")?;
    let filters = EventFilters::parse(&query.filters()?)?;
    // Subscribed before the history is read, so that nothing falls between the two.
    let mut live = state.app.events.subscribe();
    let mut past = Vec::new();
    if since.is_some() || until.is_some() {
        let mut events =
            ops::system::events(&state.app, &caller, crate::serve::events::MAX_LIMIT, None).await?;
        events.reverse();
        past = events
            .into_iter()
            .filter(|e| {
                let time = event_time(e);
                since.is_none_or(|s| time >= s) && until.is_none_or(|u| time <= u)
            })
            .collect();
    }
    let last_past = past.last().map(|e| e.id).unwrap_or(0);
    let ended = until.is_some_and(|u| u <= chrono::Utc::now());
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let app = state.app.clone();
    tokio::spawn(async move {
        for event in past.iter().filter(|e| filters.matches(e)) {
            if tx.send(message_line(event)).await.is_err() {
                return;
            }
        }
        if ended {
            return;
        }
        let deadline = until.map(|u| {
            let wait = (u - chrono::Utc::now()).to_std().unwrap_or_default();
            tokio::time::Instant::now() + wait
        });
        loop {
            let next = async {
                match deadline {
                    Some(d) => tokio::time::timeout_at(d, live.recv()).await.ok(),
                    None => Some(live.recv().await),
                }
            };
            tokio::select! {
                received = next => match received {
                    None | Some(Err(tokio::sync::broadcast::error::RecvError::Closed)) => return,
                    Some(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
                    Some(Ok(event)) => {
                        if event.id <= last_past || !filters.matches(&event)
                            || !ops::system::event_visible(&app, &caller, &event).await
                        {
                            continue;
                        }
                        if tx.send(message_line(&event)).await.is_err() {
                            return;
                        }
                    }
                },
                () = tx.closed() => return,
            }
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    Ok(([(header::CONTENT_TYPE, "application/json")], axum::body::Body::from_stream(body)).into_response())
}

fn event_time(event: &berth_types::Event) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(&event.time).map(|t| t.to_utc()).unwrap_or_default()
}

/// The `key=value` details of an event's message (`id=... image=busybox name=web`); an
/// `error=` comes last and its text, spaces and all, runs to the end.
fn attributes(event: &berth_types::Event) -> std::collections::HashMap<String, String> {
    let (pairs, error) = match event.message.split_once("error=") {
        Some((before, error)) if before.is_empty() || before.ends_with(' ') => (before, Some(error)),
        _ => (event.message.as_str(), None),
    };
    let mut attributes: std::collections::HashMap<String, String> = pairs
        .split(' ')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if let Some(error) = error {
        attributes.insert("error".into(), error.to_string());
    }
    attributes
}

/// Failures that are events in their own right, which Docker reports: not a refused request but
/// something that happened (a container killed for memory; a pushed image berth could not unpack,
/// an action berth adds).
const EVENTS_THAT_ARE_FAILURES: [&str; 2] = ["oom", "unpack_failed"];

/// One event as Docker's events stream carries it (and its older `status`/`id`/`from` fields,
/// which docker-py and Compose 1.x still read).
fn message(event: &berth_types::Event) -> serde_json::Value {
    let mut attributes = attributes(event);
    let id = attributes.remove("id").unwrap_or_else(|| event.subject.clone());
    if event.event_type != "container" {
        attributes.entry("name".into()).or_insert_with(|| event.subject.clone());
    }
    let time = event_time(event);
    let mut value = serde_json::json!({
        "Type": event.event_type,
        "Action": event.action,
        "Actor": {"ID": id, "Attributes": attributes},
        "scope": "local",
        "time": time.timestamp(),
        "timeNano": time.timestamp_nanos_opt().unwrap_or(0),
    });
    if event.event_type == "container" {
        value["status"] = event.action.clone().into();
        value["id"] = id.into();
        if let Some(image) = attributes_image(event) {
            value["from"] = image.into();
        }
    }
    value
}

fn attributes_image(event: &berth_types::Event) -> Option<String> {
    attributes(event).remove("image")
}

fn message_line(event: &berth_types::Event) -> Bytes {
    let mut line = serde_json::to_vec(&message(event)).unwrap_or_default();
    line.push(b'\n');
    line.into()
}

/// `docker events --filter`: `type`, `event` (the action), `container`, `image`, `network`,
/// `volume` (an ID or a name) and `label`; the same key given twice matches either value.
#[derive(Debug, Default)]
struct EventFilters {
    by_key: std::collections::BTreeMap<String, Vec<String>>,
}

impl EventFilters {
    fn parse(pairs: &[String]) -> Result<EventFilters, ApiError> {
        let mut filters = EventFilters::default();
        for pair in pairs {
            let (key, value) = pair.split_once('=').unwrap_or((pair.as_str(), ""));
            if !matches!(key, "type" | "event" | "container" | "image" | "network" | "volume" | "label") {
                return Err(ApiError::bad_request(format!("Invalid filter '{key}'")));
            }
            filters.by_key.entry(key.to_string()).or_default().push(value.to_string());
        }
        Ok(filters)
    }

    fn matches(&self, event: &berth_types::Event) -> bool {
        // Docker reports what happened, not what was refused.
        if event.outcome != "success" && !EVENTS_THAT_ARE_FAILURES.contains(&event.action.as_str()) {
            return false;
        }
        let attributes = attributes(event);
        let id = attributes.get("id").cloned().unwrap_or_else(|| event.subject.clone());
        let name = attributes.get("name").cloned().unwrap_or_else(|| event.subject.clone());
        self.by_key.iter().all(|(key, values)| {
            values.iter().any(|v| match key.as_str() {
                "type" => event.event_type == *v,
                "event" => event.action == *v,
                "label" => match v.split_once('=') {
                    Some((k, val)) => attributes.get(k) == Some(&val.to_string()),
                    None => attributes.contains_key(v),
                },
                kind => event.event_type == kind && (id.starts_with(v.as_str()) || name == *v),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, action: &str, subject: &str, message: &str) -> berth_types::Event {
        berth_types::Event {
            id: 1,
            time: "2024-01-01T00:00:00.5Z".into(),
            event_type: kind.into(),
            action: action.into(),
            subject: subject.into(),
            outcome: "success".into(),
            message: message.into(),
        }
    }

    #[test]
    fn events_as_docker_sends_them() {
        let start = event("container", "start", "web", "id=abc123 image=busybox name=web");
        let m = message(&start);
        assert_eq!(m["Actor"]["ID"], "abc123");
        assert_eq!(m["Actor"]["Attributes"]["name"], "web");
        assert_eq!(m["status"], "start");
        assert_eq!(m["from"], "busybox");
        assert_eq!(m["time"], 1704067200);
        let pull = event("image", "pull", "busybox:latest", "");
        let f = |pairs: &[&str]| {
            EventFilters::parse(&pairs.iter().map(|p| p.to_string()).collect::<Vec<_>>()).unwrap()
        };
        assert!(f(&[]).matches(&start));
        assert!(f(&["type=container", "event=start"]).matches(&start));
        assert!(!f(&["type=image"]).matches(&start));
        assert!(f(&["type=image", "type=container"]).matches(&pull));
        assert!(f(&["container=web"]).matches(&start));
        assert!(f(&["container=abc"]).matches(&start));
        assert!(!f(&["container=web"]).matches(&pull));
        assert!(f(&["image=busybox:latest"]).matches(&pull));
        assert!(EventFilters::parse(&["bogus=1".to_string()]).is_err());
        let mut failed = start.clone();
        failed.outcome = "failure".into();
        assert!(!f(&[]).matches(&failed));
        let mut unpack =
            event("image", "unpack_failed", "docker.io/dev/app:1", "digest=sha256:ab error=layer x: bad tar");
        unpack.outcome = "failure".into();
        assert!(f(&["type=image", "event=unpack_failed"]).matches(&unpack));
        let m = message(&unpack);
        assert_eq!(m["Actor"]["ID"], "docker.io/dev/app:1");
        assert_eq!(m["Actor"]["Attributes"]["digest"], "sha256:ab");
        assert_eq!(m["Actor"]["Attributes"]["error"], "layer x: bad tar");
    }
}
