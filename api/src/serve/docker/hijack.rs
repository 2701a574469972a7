//! Attach and exec streams as Docker serves them: the client asks to upgrade the HTTP
//! connection (`Upgrade: tcp`), the daemon answers 101 and the connection becomes the process's
//! stdio. Without a TTY, output travels in 8-byte-header frames (stream, 0, 0, 0, big-endian
//! length) so stdout and stderr stay apart; with one, as raw bytes. The client half-closes the
//! connection when its stdin ends, and the process reads end of file. A client that does not ask
//! to upgrade gets the output as the body of a 200 answer.

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_engine::container::{LogOptions, OutputStream, ProcessSession, SessionInput, SessionOutput};
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::query::DockerQuery;
use super::DockerState;
use crate::serve::error::ApiError;
use crate::serve::ops::{self, Caller};

/// The content type of a TTY's stream.
pub const RAW_STREAM: &str = "application/vnd.docker.raw-stream";
/// The content type of framed stdout/stderr.
pub const MULTIPLEXED_STREAM: &str = "application/vnd.docker.multiplexed-stream";

/// Which stream a frame carries (its first byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Stdout = 1,
    Stderr = 2,
}

/// One frame of a multiplexed stream.
pub fn frame(kind: StreamKind, data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(8 + data.len());
    out.extend_from_slice(&[kind as u8, 0, 0, 0]);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    out.into()
}

/// `h` and `w` of a resize call: (rows, columns).
pub fn size(query: &DockerQuery) -> Result<(u16, u16), ApiError> {
    let dimension = |name: &str| -> Result<u16, ApiError> {
        match query.int(name)? {
            Some(v) if (0..=i64::from(u16::MAX)).contains(&v) => Ok(v as u16),
            Some(v) => Err(ApiError::bad_request(format!("invalid value for {name}: {v}"))),
            None => Err(ApiError::bad_request(format!("missing parameter {name}"))),
        }
    };
    Ok((dimension("h")?, dimension("w")?))
}

/// The stdin side of the attach sessions open through this API, by container ID: a resize of
/// the container's terminal goes to one of them.
#[derive(Clone, Default)]
pub struct Attached(std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, SessionInput>>>);

impl Attached {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, SessionInput>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn attached(&self, container: &str, input: SessionInput) {
        self.lock().insert(container.to_string(), input);
    }

    pub fn detached(&self, container: &str) {
        self.lock().remove(container);
    }

    pub fn input(&self, container: &str) -> Option<SessionInput> {
        self.lock().get(container).cloned()
    }
}

/// What a stream carries and how it ends.
pub struct Streams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Output already written (attach with `logs=1`), sent first.
    pub before: Vec<Bytes>,
}

/// Called with the process's exit code (or why it is unknown) once its output ended.
pub type OnEnd = Box<dyn FnOnce(Result<i32, String>) -> BoxFuture<'static, ()> + Send>;

/// `POST /containers/{id}/attach?stream=&stdin=&stdout=&stderr=&logs=`.
pub async fn attach(
    State(state): State<DockerState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    req: Request,
) -> Result<Response, ApiError> {
    let query = DockerQuery::parse(raw.as_deref());
    let stream = query.flag("stream")?;
    let logs = query.flag("logs")?;
    if !stream && !logs {
        return Err(ApiError::bad_request("Bad parameters: you must choose at least one stream"));
    }
    let inspect = ops::containers::inspect(&state.app, &caller, &id).await?;
    let mut streams = Streams {
        stdin: query.flag("stdin")?,
        stdout: query.flag("stdout")?,
        stderr: query.flag("stderr")?,
        before: Vec::new(),
    };
    let tty = inspect.config.tty;
    if logs {
        let options = LogOptions { stdout: streams.stdout, stderr: streams.stderr, ..Default::default() };
        if streams.stdout || streams.stderr {
            let mut entries = ops::containers::logs(&state.app, &caller, &id, options).await?;
            while let Some(Ok(entry)) = entries.next().await {
                let kind = if entry.stream == "stderr" { StreamKind::Stderr } else { StreamKind::Stdout };
                streams.before.push(if tty {
                    entry.line.into_bytes().into()
                } else {
                    frame(kind, entry.line.as_bytes())
                });
            }
        }
    }
    if !stream {
        let body = futures_util::stream::iter(streams.before.into_iter().map(Ok::<_, std::io::Error>));
        let content_type = if tty { RAW_STREAM } else { MULTIPLEXED_STREAM };
        return Ok(([(header::CONTENT_TYPE, content_type)], Body::from_stream(body)).into_response());
    }
    let session = ops::containers::attach(&state.app, &caller, &inspect.id).await?;
    state.sessions.attached(&inspect.id, session.input.clone());
    let sessions = state.sessions.clone();
    let container = inspect.id.clone();
    let on_end: OnEnd = Box::new(move |_| {
        Box::pin(async move {
            sessions.detached(&container);
        })
    });
    Ok(hijack(req, session, streams, on_end))
}

/// Serves `session` on the request's connection: upgraded when the client asked for it, else
/// as the body of a 200 answer (output only).
pub fn hijack(mut req: Request, session: ProcessSession, streams: Streams, on_end: OnEnd) -> Response {
    let upgrade = req.headers().get(header::UPGRADE).is_some();
    let pause = pause_before_output(&req);
    let connection = req.extensions().get::<axum::extract::ConnectInfo<UnixConnection>>().map(|c| c.0);
    let tty = session.tty;
    let content_type = HeaderValue::from_static(if tty { RAW_STREAM } else { MULTIPLEXED_STREAM });
    let ProcessSession { output, input, exit, .. } = session;
    if !upgrade {
        let (tx, rx) = mpsc::channel::<Bytes>(16);
        tokio::spawn(async move {
            let end = pump_output(output, &streams, tty, |bytes| {
                let tx = tx.clone();
                async move { tx.send(bytes).await.is_ok() }
            })
            .await;
            drop(tx);
            on_end(finish(end, exit).await).await;
        });
        let body = tokio_stream_of(rx);
        let mut response = Body::from_stream(body).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, content_type);
        return response;
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "the client did not complete the upgrade");
                on_end(Err(e.to_string())).await;
                return;
            }
        };
        let (mut reader, writer) = tokio::io::split(TokioIo::new(upgraded));
        let stdin_task = streams.stdin.then(|| {
            let input = input.clone();
            tokio::spawn(async move { copy_stdin(&mut reader, &input).await })
        });
        let writer = std::sync::Arc::new(tokio::sync::Mutex::new(writer));
        until_output_is_safe(connection, pause).await;
        let end = pump_output(output, &streams, tty, |bytes| {
            let writer = writer.clone();
            async move {
                let mut w = writer.lock().await;
                w.write_all(&bytes).await.is_ok() && w.flush().await.is_ok()
            }
        })
        .await;
        let _ = writer.lock().await.shutdown().await;
        if let Some(task) = stdin_task {
            task.abort();
        }
        drop(input);
        on_end(finish(end, exit).await).await;
    });
    switching_protocols(content_type)
}

/// docker-py (and so testcontainers and Compose v1) reads the 101's headers through a buffered
/// reader and then the raw socket: output that reaches it with the headers is lost (docker-py
/// issue 3332). dockerd's exec and attach take tens of milliseconds to start, so its first
/// output comes later; berth's come at once, so for these clients the output waits (see
/// [`until_output_is_safe`]): at most this long.
fn pause_before_output(req: &Request) -> std::time::Duration {
    let agent = req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if agent.contains("docker-sdk-python") || agent.contains("docker-py") {
        std::time::Duration::from_millis(500)
    } else {
        std::time::Duration::ZERO
    }
}

/// The Docker API's Unix socket connection a request came on (its connect info): its
/// descriptor, open as long as the connection, upgraded or not.
#[derive(Debug, Clone, Copy)]
pub struct UnixConnection {
    fd: std::os::fd::RawFd,
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::UnixListener>>
    for UnixConnection
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::UnixListener>) -> Self {
        use std::os::fd::AsRawFd;
        UnixConnection { fd: stream.io().as_raw_fd() }
    }
}

/// Waits until the client can take output. For a client that loses output sent with the 101
/// (`pause` above zero): on a Unix socket, until it has read the 101 (the socket's unread bytes,
/// `SIOCOUTQ`, are none) or `pause` passed; elsewhere 50 ms, about how long dockerd takes to
/// start a process. A fixed wait alone lost output when a busy machine kept the client from
/// reading in time.
async fn until_output_is_safe(connection: Option<UnixConnection>, pause: std::time::Duration) {
    let Some(connection) = connection.filter(|_| !pause.is_zero()) else {
        tokio::time::sleep(pause.min(std::time::Duration::from_millis(50))).await;
        return;
    };
    let deadline = tokio::time::Instant::now() + pause;
    loop {
        let mut unread: libc::c_int = 0;
        // SAFETY: SIOCOUTQ (TIOCOUTQ) writes one int; the descriptor is the upgraded
        // connection's, which the caller holds open.
        let r = unsafe { libc::ioctl(connection.fd, libc::TIOCOUTQ, &mut unread) };
        if r != 0 || unread == 0 || tokio::time::Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// A process that could not be started, as dockerd answers an exec start then: the connection
/// is upgraded (or answered) as for a process, carries `message` as its only output, and ends.
pub fn hijack_failure(mut req: Request, tty: bool, message: String) -> Response {
    let upgrade = req.headers().get(header::UPGRADE).is_some();
    let content_type = HeaderValue::from_static(if tty { RAW_STREAM } else { MULTIPLEXED_STREAM });
    let bytes = if tty { Bytes::from(message) } else { frame(StreamKind::Stdout, message.as_bytes()) };
    if !upgrade {
        let mut response = Body::from(bytes).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, content_type);
        return response;
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            let mut io = TokioIo::new(upgraded);
            let _ = io.write_all(&bytes).await;
            let _ = io.shutdown().await;
        }
    });
    switching_protocols(content_type)
}

/// The 101 answer that hands the connection over to the stream (`Upgrade: tcp`).
fn switching_protocols(content_type: HeaderValue) -> Response {
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    response
}

/// Why the output stopped: the process's output ended, or the client went away.
enum OutputEnd {
    Ended,
    ClientGone,
}

async fn pump_output<F, Fut>(
    mut output: mpsc::Receiver<SessionOutput>,
    streams: &Streams,
    tty: bool,
    send: F,
) -> OutputEnd
where
    F: Fn(Bytes) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for bytes in &streams.before {
        if !send(bytes.clone()).await {
            return OutputEnd::ClientGone;
        }
    }
    while let Some(item) = output.recv().await {
        let SessionOutput::Data { stream, data } = item else { continue };
        let bytes = match stream {
            OutputStream::Tty if streams.stdout || streams.stderr => Bytes::from(data),
            OutputStream::Stdout if streams.stdout => {
                if tty {
                    Bytes::from(data)
                } else {
                    frame(StreamKind::Stdout, &data)
                }
            }
            OutputStream::Stderr if streams.stderr => {
                if tty {
                    Bytes::from(data)
                } else {
                    frame(StreamKind::Stderr, &data)
                }
            }
            _ => continue,
        };
        if !send(bytes).await {
            return OutputEnd::ClientGone;
        }
    }
    OutputEnd::Ended
}

/// The exit code once the output ended; a client that left does not wait for the process.
async fn finish(
    end: OutputEnd,
    exit: std::pin::Pin<Box<dyn std::future::Future<Output = berth_engine::Result<i32>> + Send>>,
) -> Result<i32, String> {
    match end {
        OutputEnd::Ended => exit.await.map_err(|e| e.to_string()),
        OutputEnd::ClientGone => Err("the client went away".into()),
    }
}

/// The client's bytes to the process's stdin; its half-close closes stdin.
async fn copy_stdin<R: tokio::io::AsyncRead + Unpin>(reader: &mut R, input: &SessionInput) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = input.close_stdin().await;
                return;
            }
            Ok(n) => {
                if input.write(buf[..n].to_vec()).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn tokio_stream_of(
    mut rx: mpsc::Receiver<Bytes>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|item| item.map(Ok)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_stream_and_length() {
        assert_eq!(&frame(StreamKind::Stderr, b"hi")[..], &[2, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']);
        let q = DockerQuery::parse(Some("h=24&w=80"));
        assert_eq!(size(&q).unwrap(), (24, 80));
        assert!(size(&DockerQuery::parse(Some("h=-1&w=80"))).is_err());
        assert!(size(&DockerQuery::parse(Some("w=80"))).is_err());
    }
}
