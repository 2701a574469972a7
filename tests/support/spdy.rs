//! A SPDY/3.1 remotecommand client, as kubelet, crictl and critest reach a CRI runtime's
//! streaming server (`POST` upgraded to `SPDY/3.1`, protocol `v4.channel.k8s.io`, one stream
//! per channel typed by its `streamtype` header), to drive berth's and containerd's alike.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The frames are read and written by the server's own framing module: one implementation of
/// SPDY in the repository. Not all of it is used by a client.
#[allow(dead_code)]
#[path = "../../api/src/serve/cri/spdy_framing.rs"]
mod framing;

use framing::{Decoder, Encoder, Frame};

/// What a session gave back.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub stdout: String,
    pub stderr: String,
    /// The Kubernetes `Status` JSON of the error stream (`Null` when it was empty).
    pub status: serde_json::Value,
}

/// Upgrades `url` (`http://HOST:PORT/PATH`) to SPDY/3.1 offering `protocols`; the connection
/// and the bytes already read past the answer, or the refusal's status line and body.
pub async fn upgrade(url: &str, protocols: &[&str]) -> Result<(TcpStream, Vec<u8>), String> {
    let rest = url.strip_prefix("http://").ok_or("not an http URL")?;
    let (host, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((rest, "/".into()));
    let mut tcp = TcpStream::connect(host).await.map_err(|e| format!("connecting to {host}: {e}"))?;
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nContent-Length: 0\r\n"
    );
    for p in protocols {
        request.push_str(&format!("X-Stream-Protocol-Version: {p}\r\n"));
    }
    request.push_str("\r\n");
    tcp.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut buffer = Vec::new();
    let end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut chunk))
            .await
            .map_err(|_| "no answer to the upgrade")?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("connection closed: {}", String::from_utf8_lossy(&buffer)));
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..end]).to_string();
    if !head.starts_with("HTTP/1.1 101") {
        // The refusal's body, as much as came.
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(2), tcp.read(&mut chunk))
            .await
            .ok()
            .and_then(|r| r.ok());
        let body = String::from_utf8_lossy(&[&buffer[end..], &chunk[..n.unwrap_or(0)]].concat()).to_string();
        return Err(format!("{} {body}", head.lines().next().unwrap_or("")));
    }
    let lower = head.to_ascii_lowercase();
    if !lower.contains("upgrade: spdy/3.1") {
        return Err(format!("not a SPDY/3.1 upgrade: {head}"));
    }
    Ok((tcp, buffer[end..].to_vec()))
}

/// Runs an exec or attach URL's session as remotecommand does: opens the error, stdin (when
/// `stdin` is given, sent then closed), stdout and (when `stderr`) stderr streams, and
/// collects the output and the final status.
pub async fn run(url: &str, stdin: Option<&[u8]>, stderr: bool) -> Result<Session, String> {
    let (mut tcp, mut buffer) = upgrade(url, &["v4.channel.k8s.io", "v3.channel.k8s.io"]).await?;
    let mut encoder = Encoder::default();
    let mut decoder = Decoder::default();
    let mut out = Vec::new();
    let mut streams = vec![(1, "error"), (5, "stdout")];
    if stdin.is_some() {
        streams.push((3, "stdin"));
    }
    if stderr {
        streams.push((7, "stderr"));
    }
    streams.sort();
    for (id, kind) in &streams {
        let headers = vec![("streamType".to_string(), kind.to_string())];
        encoder
            .encode(&Frame::SynStream { stream: *id, fin: false, headers }, &mut out)
            .map_err(|e| e.to_string())?;
    }
    if let Some(data) = stdin {
        encoder
            .encode(&Frame::Data { stream: 3, fin: true, data: data.to_vec() }, &mut out)
            .map_err(|e| e.to_string())?;
    }
    tcp.write_all(&out).await.map_err(|e| e.to_string())?;

    let (mut stdout, mut errout, mut status) = (Vec::new(), Vec::new(), Vec::new());
    let mut open: Vec<u32> = vec![1, 5];
    if stderr {
        open.push(7);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !open.is_empty() {
        let Some(frame) = next_frame(&mut decoder, &mut buffer, &mut tcp, deadline, "the session").await?
        else {
            break;
        };
        match frame {
            Frame::Data { stream, fin, data } => {
                match stream {
                    1 => status.extend_from_slice(&data),
                    5 => stdout.extend_from_slice(&data),
                    7 => errout.extend_from_slice(&data),
                    _ => {}
                }
                if fin {
                    open.retain(|s| *s != stream);
                }
            }
            // kubelet's server (containerd's) resets the streams it has finished writing when
            // it closes the connection: an end like FIN.
            Frame::RstStream { stream, .. } => open.retain(|s| *s != stream),
            Frame::Ping { id } => {
                let mut pong = Vec::new();
                encoder.encode(&Frame::Ping { id }, &mut pong).map_err(|e| e.to_string())?;
                tcp.write_all(&pong).await.map_err(|e| e.to_string())?;
            }
            Frame::GoAway { .. } => break,
            _ => {}
        }
    }
    // As remotecommand's client closes its connection.
    let mut goaway = Vec::new();
    if encoder.encode(&Frame::GoAway { last_stream: 0, status: 0 }, &mut goaway).is_ok() {
        let _ = tcp.write_all(&goaway).await;
    }
    let status = if status.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&status).map_err(|e| format!("the status is not JSON: {e}"))?
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).to_string();
    Ok(Session { stdout: text(&stdout), stderr: text(&errout), status })
}

/// Upgrades `url`, sends `bytes` as they are, and returns what the server sent back until it
/// closed the connection (or 10 s passed).
pub async fn send_raw(url: &str, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let (mut tcp, mut answer) = upgrade(url, &["v4.channel.k8s.io"]).await?;
    tcp.write_all(bytes).await.map_err(|e| e.to_string())?;
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = tcp.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&chunk[..n]);
        }
    })
    .await;
    Ok(answer)
}

/// Whether `bytes` hold a GOAWAY frame (from a fresh decoder: the server's first frames).
pub fn has_goaway(bytes: &[u8]) -> bool {
    let mut bytes = bytes.to_vec();
    let mut decoder = Decoder::default();
    while let Ok(Some(frame)) = decoder.decode(&mut bytes) {
        if matches!(frame, Frame::GoAway { .. }) {
            return true;
        }
    }
    false
}

/// One connection through a port forward URL, as kubelet's portforward client makes it: an
/// error and a data stream for `port`, `send` written then closed; what came back on the data
/// stream, and the error stream's text.
pub async fn port_forward(url: &str, port: u16, send: &[u8]) -> Result<(String, String), String> {
    let (mut tcp, mut buffer) = upgrade(url, &["portforward.k8s.io"]).await?;
    let mut encoder = Encoder::default();
    let mut decoder = Decoder::default();
    let mut out = Vec::new();
    for (id, kind) in [(1, "error"), (3, "data")] {
        let headers = vec![
            ("streamType".to_string(), kind.to_string()),
            ("port".to_string(), port.to_string()),
            ("requestID".to_string(), "0".to_string()),
        ];
        encoder
            .encode(&Frame::SynStream { stream: id, fin: false, headers }, &mut out)
            .map_err(|e| e.to_string())?;
    }
    encoder
        .encode(&Frame::Data { stream: 3, fin: true, data: send.to_vec() }, &mut out)
        .map_err(|e| e.to_string())?;
    tcp.write_all(&out).await.map_err(|e| e.to_string())?;
    let (mut data, mut error) = (Vec::new(), Vec::new());
    let mut open = vec![1u32, 3];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !open.is_empty() {
        let Some(frame) =
            next_frame(&mut decoder, &mut buffer, &mut tcp, deadline, "the forwarded connection").await?
        else {
            break;
        };
        match frame {
            Frame::Data { stream, fin, data: bytes } => {
                if stream == 1 {
                    error.extend_from_slice(&bytes);
                } else if stream == 3 {
                    data.extend_from_slice(&bytes);
                }
                if fin {
                    open.retain(|s| *s != stream);
                }
            }
            Frame::RstStream { stream, .. } => open.retain(|s| *s != stream),
            Frame::GoAway { .. } => break,
            _ => {}
        }
    }
    let mut goaway = Vec::new();
    if encoder.encode(&Frame::GoAway { last_stream: 0, status: 0 }, &mut goaway).is_ok() {
        let _ = tcp.write_all(&goaway).await;
    }
    Ok((String::from_utf8_lossy(&data).to_string(), String::from_utf8_lossy(&error).to_string()))
}

/// The next frame the server sent, reading more from `tcp` as needed; `None` once it closed.
/// `what` names the exchange in the error when it does not end by `deadline`.
async fn next_frame(
    decoder: &mut Decoder,
    buffer: &mut Vec<u8>,
    tcp: &mut TcpStream,
    deadline: tokio::time::Instant,
    what: &str,
) -> Result<Option<Frame>, String> {
    loop {
        if let Some(frame) = decoder.decode(buffer).map_err(|e| e.to_string())? {
            return Ok(Some(frame));
        }
        let mut chunk = [0u8; 16384];
        let n = tokio::time::timeout_at(deadline, tcp.read(&mut chunk))
            .await
            .map_err(|_| format!("{what} did not end in time"))?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}
