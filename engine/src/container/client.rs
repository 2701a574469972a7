//! The daemon's side of a monitor's socket: one-shot requests, the state watch, and attach/exec
//! sessions (see [`crate::monitor::protocol`]).

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};

use super::session::{InputMessage, OutputStream, ProcessSession, SessionInput, SessionOutput};
use crate::error::{Error, Result};
use crate::monitor::protocol::*;

/// How long a one-shot request may take (a start through runc takes some 100 ms).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Connects to a monitor; `None` when no monitor listens there.
pub(crate) async fn connect(socket: &Path) -> Option<UnixStream> {
    UnixStream::connect(socket).await.ok()
}

/// Sends `request` on a new connection and returns the reader (positioned after the request
/// line) and the writer.
async fn open(socket: &Path, request: &Request) -> Result<(BufReader<OwnedReadHalf>, OwnedWriteHalf)> {
    let stream = connect(socket).await.ok_or_else(|| monitor_gone(socket))?;
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_vec(request).expect("requests serialise");
    line.push(b'\n');
    write.write_all(&line).await.map_err(|e| io_error(socket, "writing to", e))?;
    Ok((BufReader::new(read), write))
}

/// A monitor that exits while a request is on its way resets the connection: that is a
/// monitor that is gone, not an I/O failure.
fn io_error(socket: &Path, doing: &str, e: std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe => monitor_gone(socket),
        _ => Error::io(format!("{doing} {}", socket.display()), e),
    }
}

fn monitor_gone(socket: &Path) -> Error {
    Error::MonitorGone(socket.to_path_buf())
}

async fn read_reply(reader: &mut BufReader<OwnedReadHalf>, socket: &Path) -> Result<Reply> {
    let mut line = String::new();
    let n = tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line))
        .await
        .map_err(|_| {
            Error::Runtime(format!("the container's monitor did not answer ({})", socket.display()))
        })?
        .map_err(|e| io_error(socket, "reading from", e))?;
    if n == 0 {
        return Err(monitor_gone(socket));
    }
    serde_json::from_str(&line)
        .map_err(|e| Error::Runtime(format!("bad answer from the container's monitor: {e}")))
}

/// A one-shot request: the process ID on success (start), the monitor's error otherwise.
pub(crate) async fn request(socket: &Path, request: &Request) -> Result<i32> {
    let (mut reader, _write) = open(socket, request).await?;
    let reply = read_reply(&mut reader, socket).await?;
    match reply.error {
        Some(e) => Err(e.into()),
        None => Ok(reply.pid),
    }
}

/// Opens a state watch: the monitor's current state, then one line per change. Keep the write
/// half: dropping it shuts the connection down for writing, which the monitor takes for a
/// client that left.
pub(crate) async fn watch(
    socket: &Path,
) -> Result<(tokio::io::Lines<BufReader<OwnedReadHalf>>, OwnedWriteHalf)> {
    let (reader, write) = open(socket, &Request::Watch).await?;
    Ok((reader.lines(), write))
}

/// Opens an attach (`Request::Attach`) or exec (`Request::Exec`) session.
pub(crate) async fn session(
    socket: &Path,
    request: &Request,
    id: String,
    tty: bool,
) -> Result<ProcessSession> {
    let (mut reader, mut writer) = open(socket, request).await?;
    let reply = read_reply(&mut reader, socket).await?;
    if let Some(e) = reply.error {
        return Err(e.into());
    }
    let (output_tx, output_rx) = mpsc::channel(64);
    let (input_tx, mut input_rx) = mpsc::channel::<InputMessage>(64);
    let (exit_tx, exit_rx) = oneshot::channel::<i32>();

    // Monitor → client. A client that does not keep up loses output (counted and reported), so
    // the monitor never waits for it.
    tokio::spawn(async move {
        let mut exit_tx = Some(exit_tx);
        let mut dropped = 0u64;
        loop {
            let mut header = [0u8; 5];
            if reader.read_exact(&mut header).await.is_err() {
                break;
            }
            let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
            if len > MAX_FRAME {
                break;
            }
            let mut payload = vec![0u8; len];
            if reader.read_exact(&mut payload).await.is_err() {
                break;
            }
            let item = match header[0] {
                FRAME_STDOUT => SessionOutput::Data {
                    stream: if tty { OutputStream::Tty } else { OutputStream::Stdout },
                    data: payload,
                },
                FRAME_STDERR => SessionOutput::Data { stream: OutputStream::Stderr, data: payload },
                FRAME_DROPPED if len == 8 => {
                    dropped += u64::from_be_bytes(payload.try_into().expect("8 bytes"));
                    continue;
                }
                FRAME_EXIT if len == 4 => {
                    let code = i32::from_be_bytes(payload.try_into().expect("4 bytes"));
                    if dropped > 0 {
                        let _ = output_tx.send(SessionOutput::Dropped { bytes: dropped }).await;
                    }
                    if let Some(tx) = exit_tx.take() {
                        let _ = tx.send(code);
                    }
                    break;
                }
                _ => continue,
            };
            if dropped > 0 {
                match output_tx.try_send(SessionOutput::Dropped { bytes: dropped }) {
                    Ok(()) => dropped = 0,
                    Err(mpsc::error::TrySendError::Closed(_)) => break,
                    Err(mpsc::error::TrySendError::Full(_)) => {}
                }
            }
            let bytes = match &item {
                SessionOutput::Data { data, .. } => data.len() as u64,
                SessionOutput::Dropped { .. } => 0,
            };
            match output_tx.try_send(item) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => dropped += bytes,
                Err(mpsc::error::TrySendError::Closed(_)) => break,
            }
        }
    });

    // Client → monitor.
    tokio::spawn(async move {
        while let Some(message) = input_rx.recv().await {
            let mut frame = Vec::new();
            match message {
                InputMessage::Stdin(data) => {
                    for chunk in data.chunks(MAX_FRAME) {
                        push_frame(&mut frame, FRAME_STDIN, chunk);
                    }
                }
                InputMessage::CloseStdin => push_frame(&mut frame, FRAME_CLOSE_STDIN, &[]),
                InputMessage::Kill => push_frame(&mut frame, FRAME_KILL, &[]),
                InputMessage::Resize { cols, rows } => {
                    let mut size = cols.to_be_bytes().to_vec();
                    size.extend_from_slice(&rows.to_be_bytes());
                    push_frame(&mut frame, FRAME_RESIZE, &size);
                }
            }
            if writer.write_all(&frame).await.is_err() {
                break;
            }
        }
    });

    let socket = socket.to_path_buf();
    Ok(ProcessSession {
        id,
        tty,
        output: output_rx,
        input: SessionInput { tx: input_tx },
        exit: Box::pin(async move {
            exit_rx.await.map_err(|_| {
                Error::Runtime(format!(
                    "the connection to the container's monitor ended before the process exited ({})",
                    socket.display()
                ))
            })
        }),
    })
}
