//! The streaming RPCs: `Exec` and `Attach` answer the URL of a request kept for a minute on
//! berth's streaming server (HTTP on a loopback port, as containerd's), where the client
//! connects with a WebSocket of the `v4.channel.k8s.io` protocol, kubelet's and crictl's:
//! binary frames whose first byte is the channel (0 stdin, 1 stdout, 2 stderr, 3 the final
//! status as a Kubernetes `Status` JSON, 4 terminal resize `{"Width":..,"Height":..}`).
//! SPDY is not served; `PortForward` answers `Unimplemented`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use berth_engine::container::{OutputStream, ProcessSession, SessionOutput};
use berth_types::ExecConfig;
use futures_util::{SinkExt, StreamExt};
use k8s_cri::v1 as cri;
use tonic::Status;

use super::{status, unimplemented, Cri};
use crate::serve::ops::{self, Caller};

/// How long a URL answered by `Exec` or `Attach` may wait for its client.
const REQUEST_TTL: Duration = Duration::from_secs(60);
/// The WebSocket subprotocols served, newest first.
const PROTOCOLS: [&str; 2] = ["v4.channel.k8s.io", "channel.k8s.io"];

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;

/// A stream asked for over CRI, waiting for its client.
#[derive(Debug, Clone)]
enum Pending {
    Exec { container: String, cmd: Vec<String>, tty: bool, stdin: bool },
    Attach { container: String, stdin: bool },
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

/// The streaming server: `GET /exec/{token}` and `GET /attach/{token}`, WebSocket only.
pub(super) fn router(cri: Cri) -> axum::Router {
    axum::Router::new()
        .route("/exec/{token}", axum::routing::get(serve_stream))
        .route("/attach/{token}", axum::routing::get(serve_stream))
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
    let container =
        ops::containers::inspect(&cri.state, caller, &request.container_id).await.map_err(status)?;
    let pending =
        Pending::Exec { container: container.id, cmd: request.cmd, tty: request.tty, stdin: request.stdin };
    Ok(cri::ExecResponse { url: cri.streams.add("exec", pending) })
}

pub(super) async fn attach(
    cri: &Cri,
    caller: &Caller,
    request: cri::AttachRequest,
) -> Result<cri::AttachResponse, Status> {
    let container =
        ops::containers::inspect(&cri.state, caller, &request.container_id).await.map_err(status)?;
    let pending = Pending::Attach { container: container.id, stdin: request.stdin };
    Ok(cri::AttachResponse { url: cri.streams.add("attach", pending) })
}

pub(super) async fn port_forward(
    _cri: &Cri,
    _caller: &Caller,
    _request: cri::PortForwardRequest,
) -> Result<cri::PortForwardResponse, Status> {
    Err(unimplemented("PortForward", "the streaming server has no port forwarding yet"))
}

async fn serve_stream(State(cri): State<Cri>, Path(token): Path<String>, ws: WebSocketUpgrade) -> Response {
    let Some(pending) = cri.streams.take(&token) else {
        return (axum::http::StatusCode::NOT_FOUND, "no such stream request, or it expired").into_response();
    };
    let caller =
        cri.caller("RuntimeService", if matches!(pending, Pending::Exec { .. }) { "Exec" } else { "Attach" });
    let (session, stdin, audit_row) = match pending {
        Pending::Exec { container, cmd, tty, stdin } => {
            let config = ExecConfig { cmd, tty, open_stdin: stdin, ..Default::default() };
            match ops::containers::exec(&cri.state, &caller, &container, config).await {
                Ok(exec) => (exec.session, stdin, exec.audit_row),
                Err(e) => return (e.status, e.message).into_response(),
            }
        }
        Pending::Attach { container, stdin } => {
            match ops::containers::attach(&cri.state, &caller, &container).await {
                Ok(session) => (session, stdin, None),
                Err(e) => return (e.status, e.message).into_response(),
            }
        }
    };
    let audit = cri.state.audit.clone();
    ws.protocols(PROTOCOLS)
        .on_upgrade(move |socket| async move {
            let code = pump(socket, session, stdin).await;
            if let Some(row) = audit_row {
                audit.exec_ended(row, code, "").await;
            }
        })
        .into_response()
}

/// Connects the session to the socket in the channel protocol until the process ends (its
/// status goes on channel 3) or the client goes away. Returns the exit code when known.
async fn pump(socket: WebSocket, session: ProcessSession, stdin: bool) -> Option<i32> {
    let ProcessSession { tty: _, mut output, input, mut exit, .. } = session;
    let (mut sink, mut incoming) = socket.split();
    let to_client = async {
        while let Some(item) = output.recv().await {
            if let SessionOutput::Data { stream, data } = item {
                let channel = if stream == OutputStream::Stderr { STDERR } else { STDOUT };
                let mut frame = Vec::with_capacity(data.len() + 1);
                frame.push(channel);
                frame.extend_from_slice(&data);
                if sink.send(Message::Binary(frame.into())).await.is_err() {
                    return None;
                }
            }
        }
        let code = (&mut exit).await.ok();
        let status = match code {
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
        };
        let mut frame = vec![ERROR];
        frame.extend_from_slice(status.to_string().as_bytes());
        let _ = sink.send(Message::Binary(frame.into())).await;
        let _ = sink.send(Message::Close(Some(CloseFrame { code: 1000, reason: "".into() }))).await;
        Some(code)
    };
    let from_client = async {
        while let Some(Ok(message)) = incoming.next().await {
            let data = match message {
                Message::Binary(data) => data.to_vec(),
                Message::Close(_) => return,
                _ => continue,
            };
            let Some((&channel, payload)) = data.split_first() else { continue };
            let delivered = match channel {
                STDIN if stdin => input.write(payload.to_vec()).await,
                RESIZE => match serde_json::from_slice::<serde_json::Value>(payload) {
                    Ok(size) => {
                        let dim = |k: &str| size[k].as_u64().unwrap_or(0).min(u16::MAX as u64) as u16;
                        input.resize(dim("Width"), dim("Height")).await
                    }
                    Err(_) => Ok(()),
                },
                _ => Ok(()),
            };
            if let Err(e) = delivered {
                tracing::debug!(error = %e, "CRI stream: input not delivered");
            }
        }
    };
    tokio::select! {
        code = to_client => code.flatten(),
        () = from_client => None,
    }
}
