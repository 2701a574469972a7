//! The streaming RPCs: `Exec` and `Attach` answer the URL of a request kept for a minute on
//! berth's streaming server (HTTP on a loopback port, as containerd's). The client upgrades
//! its request there to one of the two protocols kubelet's clients use: SPDY/3.1
//! (`spdy.rs`: remotecommand's streams, what kubelet, crictl and critest send) or a WebSocket
//! of the `v4.channel.k8s.io` protocol (`websocket.rs`). Both end with the same Kubernetes
//! `Status` JSON. `PortForward`'s URL is served over SPDY (`port_forward.rs`).

mod port_forward;
mod spdy;
mod websocket;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_types::ExecConfig;
use hyper_util::rt::TokioIo;
use k8s_cri::v1 as cri;
use tonic::Status;

use super::{status, Cri};
use crate::serve::ops::{self, Caller};

/// How long a URL answered by `Exec` or `Attach` may wait for its client.
const REQUEST_TTL: Duration = Duration::from_secs(60);

/// A stream asked for over CRI, waiting for its client.
#[derive(Debug, Clone)]
enum Pending {
    Exec { container: String, cmd: Vec<String>, channels: spdy::Channels },
    Attach { container: String, channels: spdy::Channels },
    PortForward { pod: String, ports: Vec<u16> },
}

/// The streaming server's state: its base URL and the requests waiting, by token.
#[derive(Clone, Default)]
pub(crate) struct Streams {
    base: String,
    pending: Arc<Mutex<HashMap<String, (Instant, Pending)>>>,
}

impl Streams {
    fn add(&self, kind: &str, pending: Pending) -> String {
        let token = hex::encode(rand::random::<[u8; 16]>());
        let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, (made, _)| made.elapsed() < REQUEST_TTL);
        map.insert(token.clone(), (Instant::now(), pending));
        format!("{}/{kind}/{token}", self.base)
    }

    fn take(&self, token: &str) -> Option<Pending> {
        let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(token).filter(|(made, _)| made.elapsed() < REQUEST_TTL).map(|(_, p)| p)
    }
}

/// Binds the streaming server on a loopback port.
pub(super) async fn bind() -> Result<(Streams, tokio::net::TcpListener), String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("binding the CRI streaming server: {e}"))?;
    let address = listener.local_addr().map_err(|e| format!("the CRI streaming server's address: {e}"))?;
    Ok((Streams { base: format!("http://{address}"), pending: Default::default() }, listener))
}

/// The streaming server: `/exec/{token}` and `/attach/{token}`, by GET (WebSocket) or POST
/// (SPDY, as remotecommand sends it; GET is taken too).
pub(super) fn router(cri: Cri) -> axum::Router {
    let serve = axum::routing::get(serve_stream).post(serve_stream);
    let forward = axum::routing::get(serve_port_forward).post(serve_port_forward);
    axum::Router::new()
        .route("/exec/{token}", serve.clone())
        .route("/attach/{token}", serve)
        .route("/portforward/{token}", forward)
        .with_state(cri)
}

pub(super) async fn exec(
    cri: &Cri,
    caller: &Caller,
    request: cri::ExecRequest,
) -> Result<cri::ExecResponse, Status> {
    if request.cmd.is_empty() {
        return Err(Status::invalid_argument("Exec: no command"));
    }
    if !(request.stdin || request.stdout || request.stderr) {
        return Err(Status::invalid_argument("Exec: one of stdin, stdout and stderr must be set"));
    }
    if request.tty && request.stderr {
        return Err(Status::invalid_argument("Exec: tty and stderr cannot both be true"));
    }
    let container =
        ops::containers::inspect(&cri.state, caller, &request.container_id).await.map_err(status)?;
    let channels = spdy::Channels {
        stdin: request.stdin,
        stdout: request.stdout,
        stderr: request.stderr,
        tty: request.tty,
    };
    let pending = Pending::Exec { container: container.id, cmd: request.cmd, channels };
    Ok(cri::ExecResponse { url: cri.streams.add("exec", pending) })
}

pub(super) async fn attach(
    cri: &Cri,
    caller: &Caller,
    request: cri::AttachRequest,
) -> Result<cri::AttachResponse, Status> {
    let container =
        ops::containers::inspect(&cri.state, caller, &request.container_id).await.map_err(status)?;
    if !(request.stdin || request.stdout || request.stderr) {
        return Err(Status::invalid_argument("Attach: one of stdin, stdout and stderr must be set"));
    }
    if request.tty && request.stderr {
        return Err(Status::invalid_argument("Attach: tty and stderr cannot both be true"));
    }
    let channels = spdy::Channels {
        stdin: request.stdin,
        stdout: request.stdout,
        stderr: request.stderr,
        tty: request.tty,
    };
    let pending = Pending::Attach { container: container.id, channels };
    Ok(cri::AttachResponse { url: cri.streams.add("attach", pending) })
}

pub(super) async fn port_forward(
    cri: &Cri,
    caller: &Caller,
    request: cri::PortForwardRequest,
) -> Result<cri::PortForwardResponse, Status> {
    let pod = ops::pods::status(&cri.state, caller, &request.pod_sandbox_id).await.map_err(status)?;
    let ports = request
        .port
        .iter()
        .map(|p| u16::try_from(*p).ok().filter(|p| *p > 0))
        .collect::<Option<Vec<u16>>>()
        .ok_or_else(|| Status::invalid_argument(format!("PortForward: bad port in {:?}", request.port)))?;
    let pending = Pending::PortForward { pod: pod.id, ports };
    Ok(cri::PortForwardResponse { url: cri.streams.add("portforward", pending) })
}

/// A terminal size as remotecommand sends it.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
struct TerminalSize {
    #[serde(rename = "Width")]
    width: u16,
    #[serde(rename = "Height")]
    height: u16,
}

/// The protocol a request upgrades to.
enum Upgrade {
    Spdy,
    WebSocket(WebSocketUpgrade),
}

/// An upgrade to `SPDY/3.1` that offers `protocol`, or a WebSocket upgrade; anything else is
/// answered with the reason.
async fn upgrade_of(request: &mut Request, protocol: &str) -> Result<Upgrade, Response> {
    let upgrade = request.headers().get(header::UPGRADE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if upgrade.eq_ignore_ascii_case("SPDY/3.1") {
        if !offers(request.headers(), protocol) {
            let message = format!("X-Stream-Protocol-Version: only {protocol} is served");
            return Err((StatusCode::FORBIDDEN, message).into_response());
        }
        return Ok(Upgrade::Spdy);
    }
    let (mut parts, body) = std::mem::take(request).into_parts();
    let websocket = WebSocketUpgrade::from_request_parts(&mut parts, &()).await;
    *request = Request::from_parts(parts, body);
    match websocket {
        Ok(websocket) => Ok(Upgrade::WebSocket(websocket)),
        Err(_) => Err((
            StatusCode::BAD_REQUEST,
            "the streaming server speaks SPDY/3.1 (remotecommand) or WebSocket (v4.channel.k8s.io): upgrade to one",
        )
            .into_response()),
    }
}

/// Whether the client offers `protocol` in its `X-Stream-Protocol-Version` headers (one or
/// several, each possibly a comma-separated list).
fn offers(headers: &HeaderMap, protocol: &str) -> bool {
    headers
        .get_all("x-stream-protocol-version")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|offered| offered.trim() == protocol)
}

/// The answer that switches a request to SPDY/3.1 with `protocol`.
fn switching_to_spdy(protocol: &str) -> Response {
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "SPDY/3.1")
        .header("X-Stream-Protocol-Version", protocol)
        .body(axum::body::Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// `/portforward/{token}`: SPDY only, as kubelet's port forward speaks it.
async fn serve_port_forward(
    State(cri): State<Cri>,
    Path(token): Path<String>,
    mut request: Request,
) -> Response {
    match upgrade_of(&mut request, port_forward::PROTOCOL).await {
        Ok(Upgrade::Spdy) => {}
        Ok(Upgrade::WebSocket(_)) => {
            return (StatusCode::BAD_REQUEST, "port forward is served over SPDY/3.1 only").into_response()
        }
        Err(response) => return response,
    }
    let Some(Pending::PortForward { pod, ports }) = cri.streams.take(&token) else {
        return (StatusCode::NOT_FOUND, "no such port forward request, or it expired").into_response();
    };
    let caller = cri.caller("RuntimeService", "PortForward");
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => port_forward::serve(TokioIo::new(upgraded), cri, caller, pod, ports).await,
            Err(e) => tracing::debug!(error = %e, "CRI port forward: the SPDY upgrade failed"),
        }
    });
    switching_to_spdy(port_forward::PROTOCOL)
}

async fn serve_stream(State(cri): State<Cri>, Path(token): Path<String>, mut request: Request) -> Response {
    let upgrade = match upgrade_of(&mut request, spdy::PROTOCOL).await {
        Ok(upgrade) => upgrade,
        Err(response) => return response,
    };
    let pending = match cri.streams.take(&token) {
        Some(pending @ (Pending::Exec { .. } | Pending::Attach { .. })) => pending,
        _ => return (StatusCode::NOT_FOUND, "no such stream request, or it expired").into_response(),
    };
    let caller =
        cri.caller("RuntimeService", if matches!(pending, Pending::Exec { .. }) { "Exec" } else { "Attach" });
    let (session, channels, audit_row) = match pending {
        Pending::Exec { container, cmd, channels } => {
            let config =
                ExecConfig { cmd, tty: channels.tty, open_stdin: channels.stdin, ..Default::default() };
            match ops::containers::exec(&cri.state, &caller, &container, config).await {
                Ok(exec) => (exec.session, channels, exec.audit_row),
                Err(e) => return (e.status, e.message).into_response(),
            }
        }
        Pending::Attach { container, channels } => {
            match ops::containers::attach(&cri.state, &caller, &container).await {
                Ok(session) => (session, channels, None),
                Err(e) => return (e.status, e.message).into_response(),
            }
        }
        Pending::PortForward { .. } => return StatusCode::NOT_FOUND.into_response(),
    };
    let audit = cri.state.audit.clone();
    let end = move |code: Option<i32>| async move {
        if let Some(row) = audit_row {
            audit.exec_ended(row, code, "").await;
        }
    };
    match upgrade {
        Upgrade::WebSocket(websocket) => websocket
            .protocols(websocket::PROTOCOLS)
            .on_upgrade(move |socket| async move {
                end(websocket::pump(socket, session, channels.stdin).await).await;
            })
            .into_response(),
        Upgrade::Spdy => {
            let on_upgrade = hyper::upgrade::on(&mut request);
            tokio::spawn(async move {
                let code = match on_upgrade.await {
                    Ok(upgraded) => spdy::serve(TokioIo::new(upgraded), session, channels).await,
                    Err(e) => {
                        tracing::debug!(error = %e, "CRI stream: the SPDY upgrade failed");
                        None
                    }
                };
                end(code).await;
            });
            switching_to_spdy(spdy::PROTOCOL)
        }
    }
}

/// The end of a stream as a Kubernetes `Status`, remotecommand v4's error channel: success, or
/// the exit code as a `NonZeroExitCode` cause.
fn exit_status(code: Option<i32>) -> serde_json::Value {
    match code {
        Some(0) => serde_json::json!({"metadata": {}, "status": "Success"}),
        Some(code) => serde_json::json!({
            "metadata": {},
            "status": "Failure",
            "message": format!("command terminated with non-zero exit code: {code}"),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        None => {
            serde_json::json!({"metadata": {}, "status": "Failure", "message": "the process's end is unknown"})
        }
    }
}
