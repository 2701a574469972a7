//! Port forward over SPDY/3.1, as Kubernetes' portforward client (kubelet, crictl, critest)
//! speaks it (protocol `portforward.k8s.io`): for each forwarded connection the client opens
//! two streams with the same `requestID` and `port` headers, `streamtype` `error` and `data`.
//! The data stream is copied both ways to a TCP connection made to that port on the pod's
//! loopback (in its network namespace); a connection that cannot be made is told on the error
//! stream.

use std::collections::HashMap;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::serve::cri::spdy_framing::{Decoder, Encoder, Frame, RST_REFUSED_STREAM};
use crate::serve::cri::Cri;
use crate::serve::ops::{self, Caller};

/// The protocol served (the client offers it in `X-Stream-Protocol-Version`).
pub(super) const PROTOCOL: &str = "portforward.k8s.io";
/// Data read from a pod's connection is sent in DATA frames of at most this size.
const DATA_CHUNK: usize = 32 * 1024;
/// Frames waiting for the connection's writer.
const QUEUE: usize = 64;

/// One forwarded connection's streams, by request ID.
#[derive(Default)]
struct Pair {
    error: Option<u32>,
    data: Option<u32>,
    port: u16,
    /// Bytes for the pod's connection once it is made; `None` closes its write side.
    to_pod: Option<mpsc::UnboundedSender<Option<Vec<u8>>>>,
}

/// Serves one port forward connection until the client goes away.
pub(super) async fn serve<IO>(io: IO, cri: Cri, caller: Caller, pod: String, ports: Vec<u16>)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(io);
    let (frames, mut outgoing) = mpsc::channel::<Frame>(QUEUE);
    let writing = tokio::spawn(async move {
        let mut encoder = Encoder::default();
        while let Some(frame) = outgoing.recv().await {
            let mut bytes = Vec::new();
            if encoder.encode(&frame, &mut bytes).is_err() || writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });
    let mut decoder = Decoder::default();
    let mut buffer = Vec::new();
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    // Stream ID → request ID, for the client's data.
    let mut data_streams: HashMap<u32, String> = HashMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    'session: loop {
        let frame = loop {
            match decoder.decode(&mut buffer) {
                Ok(Some(frame)) => break frame,
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "CRI port forward: bad SPDY frame");
                    let _ = frames.send(Frame::GoAway { last_stream: 0, status: 1 }).await;
                    break 'session;
                }
            }
            match reader.read_buf(&mut buffer).await {
                Ok(0) | Err(_) => break 'session,
                Ok(_) => {}
            }
        };
        match frame {
            Frame::SynStream { stream, headers, .. } => {
                let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
                let kind = header("streamtype").unwrap_or_default();
                let request = header("requestid").unwrap_or_default();
                let port = header("port").and_then(|p| p.parse::<u16>().ok()).filter(|p| *p > 0);
                let allowed = port.is_some_and(|p| ports.is_empty() || ports.contains(&p));
                if !allowed || !matches!(kind.as_str(), "error" | "data") {
                    let _ = frames.send(Frame::RstStream { stream, status: RST_REFUSED_STREAM }).await;
                    continue;
                }
                if frames.send(Frame::SynReply { stream, fin: false, headers: Vec::new() }).await.is_err() {
                    break;
                }
                let pair = pairs.entry(request.clone()).or_default();
                pair.port = port.unwrap_or(0);
                if kind == "error" {
                    pair.error = Some(stream);
                } else {
                    pair.data = Some(stream);
                    data_streams.insert(stream, request.clone());
                }
                // Both streams there: connect and copy.
                if let (Some(error), Some(data), None) = (pair.error, pair.data, &pair.to_pod) {
                    let (to_pod, from_client) = mpsc::unbounded_channel();
                    pair.to_pod = Some(to_pod);
                    let (cri, caller, pod, frames, port) =
                        (cri.clone(), caller.clone(), pod.clone(), frames.clone(), pair.port);
                    tasks.spawn(async move {
                        forward(&cri, &caller, &pod, port, error, data, from_client, frames).await;
                    });
                }
            }
            Frame::Data { stream, fin, data } => {
                let Some(pair) = data_streams.get(&stream).and_then(|r| pairs.get(r)) else { continue };
                let length = data.len() as u32;
                if let Some(to_pod) = &pair.to_pod {
                    if !data.is_empty() {
                        let _ = to_pod.send(Some(data));
                    }
                    if fin {
                        let _ = to_pod.send(None);
                    }
                }
                if length > 0 {
                    let _ = frames.send(Frame::WindowUpdate { stream, delta: length }).await;
                    let _ = frames.send(Frame::WindowUpdate { stream: 0, delta: length }).await;
                }
            }
            Frame::RstStream { stream, .. } => {
                if let Some(to_pod) = data_streams.get(&stream).and_then(|r| pairs.get(r)?.to_pod.as_ref()) {
                    let _ = to_pod.send(None);
                }
            }
            Frame::Ping { id } => {
                let _ = frames.send(Frame::Ping { id }).await;
            }
            Frame::GoAway { .. } => break,
            _ => {}
        }
    }
    tasks.abort_all();
    drop(frames);
    let _ = writing.await;
}

/// One forwarded connection: connects to the pod's port and copies both ways until both sides
/// are done; a failure is written on the error stream.
#[allow(clippy::too_many_arguments)]
async fn forward(
    cri: &Cri,
    caller: &Caller,
    pod: &str,
    port: u16,
    error: u32,
    data: u32,
    mut from_client: mpsc::UnboundedReceiver<Option<Vec<u8>>>,
    frames: mpsc::Sender<Frame>,
) {
    let tcp = match ops::pods::connect_port(&cri.state, caller, pod, port).await {
        Ok(tcp) => tcp.set_nonblocking(true).and_then(|()| tokio::net::TcpStream::from_std(tcp)),
        Err(e) => Err(std::io::Error::other(e.message)),
    };
    let tcp = match tcp {
        Ok(tcp) => tcp,
        Err(e) => {
            let message = format!("error forwarding port {port} to pod {pod}: {e}");
            let _ = frames.send(Frame::Data { stream: error, fin: true, data: message.into_bytes() }).await;
            let _ = frames.send(Frame::Data { stream: data, fin: true, data: Vec::new() }).await;
            return;
        }
    };
    let (mut pod_reader, mut pod_writer) = tcp.into_split();
    let to_pod = async move {
        while let Some(Some(bytes)) = from_client.recv().await {
            if pod_writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = pod_writer.shutdown().await;
    };
    let frames_out = frames.clone();
    let to_client = async move {
        let mut chunk = vec![0u8; DATA_CHUNK];
        loop {
            match pod_reader.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let frame = Frame::Data { stream: data, fin: false, data: chunk[..n].to_vec() };
                    if frames_out.send(frame).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = frames_out.send(Frame::Data { stream: data, fin: true, data: Vec::new() }).await;
    };
    tokio::join!(to_pod, to_client);
    let _ = frames.send(Frame::Data { stream: error, fin: true, data: Vec::new() }).await;
}
