//! The Kubernetes container runtime interface (CRI v1): kubelet, crictl and critest drive berth
//! over gRPC on a unix socket (`--cri-socket`, default `<run-dir>/cri.sock`). A translation, as
//! the Docker face is: every call goes through the operations (`ops`), so roles, audit and
//! history apply (the audit's `api` column says `cri`); pods are the engine's (`engine::pod`),
//! a pod's containers are berth containers that join the pod's namespaces.
//!
//! One file per service area: `runtime.rs` (the `RuntimeService` trait, which dispatches),
//! `image.rs` (`ImageService`), `pod.rs` (sandboxes), `container.rs` (containers, exec, logs),
//! `streaming/` (exec, attach and port forward URLs, over SPDY or WebSocket). An RPC berth
//! does not honour yet answers `Unimplemented` with a message.

mod authority;
mod container;
mod image;
mod pod;
mod runtime;
mod spdy_framing;
mod streaming;

pub(crate) use container::SANDBOX_LABEL;

use std::future::IntoFuture;
use std::path::PathBuf;

use axum::http::StatusCode;
use berth_engine::pod::CniConfig;
use k8s_cri::v1::image_service_server::ImageServiceServer;
use k8s_cri::v1::runtime_service_server::RuntimeServiceServer;
use tokio_util::sync::CancellationToken;
use tonic::Status;

use super::auth::{Api, Principal};
use super::error::ApiError;
use super::ops::Caller;
use super::state::AppState;

/// The CRI version berth speaks.
pub const CRI_API_VERSION: &str = "v1";
/// The socket's default name under the run directory.
pub const CRI_SOCKET_NAME: &str = "cri.sock";

/// Where the CRI face listens and where pods' networks come from.
#[derive(Debug, Clone)]
pub struct CriConfig {
    pub socket: PathBuf,
    pub cni: CniConfig,
}

/// The CRI services' shared state.
#[derive(Clone)]
pub(crate) struct Cri {
    state: AppState,
    cni: CniConfig,
    logs: container::LogWriters,
    streams: streaming::Streams,
}

impl Cri {
    /// The caller of a CRI call: root (the socket is root's), audited as `cri` with the RPC's
    /// gRPC path.
    fn caller(&self, service: &str, rpc: &str) -> Caller {
        Caller {
            principal: Principal::root(),
            method: "CRI".into(),
            path: format!("/runtime.v1.{service}/{rpc}"),
            team: None,
            api: Api::Cri,
        }
    }
}

/// An operation's error in gRPC's words.
pub(crate) fn status(e: ApiError) -> Status {
    let message = e.message;
    match e.status {
        StatusCode::NOT_FOUND => Status::not_found(message),
        StatusCode::BAD_REQUEST => Status::invalid_argument(message),
        StatusCode::CONFLICT => Status::failed_precondition(message),
        StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => Status::permission_denied(message),
        StatusCode::BAD_GATEWAY => Status::unavailable(message),
        _ => Status::internal(message),
    }
}

/// An engine error in gRPC's words.
pub(crate) fn engine_status(e: berth_engine::Error) -> Status {
    status(ApiError::from(e))
}

/// The answer of an RPC berth does not honour (yet).
pub(crate) fn unimplemented(rpc: &str, why: &str) -> Status {
    Status::unimplemented(format!("berth does not implement the CRI call {rpc}: {why}"))
}

/// Binds the CRI socket and serves it until `stop`. Pods' log writers of running containers
/// are resumed first (they do not survive a daemon restart).
pub async fn serve(
    state: AppState,
    config: CriConfig,
    stop: CancellationToken,
) -> Result<impl std::future::Future<Output = std::io::Result<()>> + Send, String> {
    let listener = super::bind_unix(&config.socket)?;
    let (streams, stream_listener) = streaming::bind().await?;
    let cri = Cri { state, cni: config.cni, logs: Default::default(), streams };
    container::resume_log_writers(&cri).await;
    let incoming =
        tokio_stream::StreamExt::map(tokio_stream::wrappers::UnixListenerStream::new(listener), |conn| {
            conn.map(authority::accept)
        });
    let server = tonic::transport::Server::builder()
        .add_service(RuntimeServiceServer::new(cri.clone()))
        .add_service(ImageServiceServer::new(cri.clone()))
        .serve_with_incoming_shutdown(incoming, stop.clone().cancelled_owned());
    let streaming = axum::serve(stream_listener, streaming::router(cri))
        .with_graceful_shutdown(stop.cancelled_owned())
        .into_future();
    Ok(async move {
        let (grpc, streams) = tokio::join!(server, streaming);
        grpc.map_err(std::io::Error::other)?;
        streams
    })
}

/// Nanoseconds since the epoch of an RFC 3339 time (CRI's timestamps); 0 when empty.
pub(crate) fn nanos(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .filter(|n| *n > 0)
        .unwrap_or(0)
}
