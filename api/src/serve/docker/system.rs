//! Docker Engine API: `_ping`, `version`, `info`, `events` and `system/df`.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bollard_stubs::models::{SystemInfo, SystemVersion, SystemVersionComponents, SystemVersionPlatform};

use super::{DockerState, API_VERSION, MIN_API_VERSION};
use crate::serve::error::ApiError;
use crate::serve::ops::{self, Caller};

pub fn routes() -> Router<DockerState> {
    Router::new()
        .route("/_ping", get(ping).head(ping))
        .route("/version", get(version))
        .route("/info", get(info))
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
