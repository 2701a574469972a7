//! A process's stdio over a WebSocket (`attach`, `exec`).
//!
//! Framing, the same both ways for every client (CLI, dashboard, scripts):
//! - binary frames carry data. Daemon → client: for a process without a tty, one byte of stream
//!   id (1 stdout, 2 stderr) and then the payload; with a tty, the terminal's raw bytes. Client →
//!   daemon: raw stdin bytes.
//! - text frames carry [`StreamControl`] JSON: `resize` and `close_stdin` from the client;
//!   `dropped`, `error` and, last of all, `exit` from the daemon, which then closes the socket.
//!
//! A client that closes the socket (or goes away) before the exit detaches: the process goes on.

use std::future::Future;
use std::pin::Pin;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use berth_engine::container::{OutputStream, ProcessSession, SessionInput, SessionOutput};
use berth_types::StreamControl;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;

/// Stream id byte of stdout data in a binary frame.
pub const STDOUT_ID: u8 = 1;
/// Stream id byte of stderr data in a binary frame.
pub const STDERR_ID: u8 = 2;

/// The exit of a process, as the engine reports it.
type Exit = Pin<Box<dyn Future<Output = berth_engine::Result<i32>> + Send>>;

/// How a session ended for its client.
pub enum SessionEnd {
    /// The process exited with this code; the client was told.
    Exited(i32),
    /// The process's end could not be known (the monitor went away).
    Failed(String),
    /// The client went away first. The process goes on; `exit` resolves when it ends, as long
    /// as the session's input and output are kept (dropping them ends the session with the
    /// monitor, and the exit can no longer be known).
    Detached { exit: Exit, input: SessionInput, output: mpsc::Receiver<SessionOutput> },
}

/// Connects `session` to `socket` until the process exits (then `exit` is sent and the socket
/// closed) or the client goes away. Stdin from the client is passed on only if `stdin`.
pub async fn pump(socket: WebSocket, session: ProcessSession, stdin: bool) {
    run(socket, session, stdin).await;
}

/// [`pump`], telling how the session ended.
async fn run(socket: WebSocket, session: ProcessSession, stdin: bool) -> SessionEnd {
    let ProcessSession { id, tty, mut output, input, mut exit } = session;
    let (mut sink, mut incoming) = socket.split();

    let to_client = async {
        while let Some(item) = output.recv().await {
            let message = match item {
                SessionOutput::Data { stream, data } => Message::Binary(frame(tty, stream, data).into()),
                SessionOutput::Dropped { bytes } => control(&StreamControl::Dropped { bytes }),
            };
            if sink.send(message).await.is_err() {
                return None;
            }
        }
        let (last, end) = match (&mut exit).await {
            Ok(code) => (StreamControl::Exit { code }, SessionEnd::Exited(code)),
            Err(e) => (StreamControl::Error { message: e.to_string() }, SessionEnd::Failed(e.to_string())),
        };
        let _ = sink.send(control(&last)).await;
        let _ = sink.send(Message::Close(Some(CloseFrame { code: 1000, reason: "".into() }))).await;
        Some(end)
    };

    let from_client = async {
        while let Some(message) = incoming.next().await {
            let result = match message {
                Ok(Message::Binary(data)) if stdin => input.write(data.to_vec()).await,
                Ok(Message::Binary(_)) => Ok(()),
                Ok(Message::Text(text)) => match serde_json::from_str::<StreamControl>(&text) {
                    Ok(StreamControl::Resize { cols, rows }) => input.resize(cols, rows).await,
                    Ok(StreamControl::CloseStdin) => input.close_stdin().await,
                    Ok(other) => {
                        tracing::debug!(session = %id, message = ?other, "ignoring a daemon-side control message");
                        Ok(())
                    }
                    Err(e) => {
                        tracing::debug!(session = %id, error = %e, "ignoring a malformed control message");
                        Ok(())
                    }
                },
                Ok(Message::Close(_)) | Err(_) => return,
                Ok(Message::Ping(_) | Message::Pong(_)) => Ok(()),
            };
            // The process ended: its exit is on the way to the client; keep reading so a close
            // from the client is noticed, but there is nothing more to deliver.
            if let Err(e) = result {
                tracing::debug!(session = %id, error = %e, "input not delivered");
            }
        }
    };

    // The output side ends the session when the process exits; the input side ends it when
    // the client closes or goes away (a detach).
    let end = tokio::select! {
        end = to_client => end,
        () = from_client => None,
    };
    end.unwrap_or_else(|| {
        tracing::debug!(session = %id, "client detached");
        SessionEnd::Detached { exit, input, output }
    })
}

/// [`pump`] for an exec session whose audit row `audit` (opened by `serve::auth`) is closed
/// with the process's end time and exit code, also when the client detached first (then when
/// the process ends, if the engine can tell).
pub async fn pump_exec(
    socket: WebSocket,
    session: ProcessSession,
    stdin: bool,
    audit_log: crate::serve::history::Audit,
    audit: Option<i64>,
) {
    let end = run(socket, session, stdin).await;
    let Some(row) = audit else { return };
    match end {
        SessionEnd::Exited(code) => audit_log.exec_ended(row, Some(code), "").await,
        SessionEnd::Failed(e) => audit_log.exec_ended(row, None, &e).await,
        SessionEnd::Detached { exit, input, mut output } => {
            // The session's task ends here; the wait for the process does not hold it. What
            // the process still writes is read and dropped, so that it never blocks on it.
            tokio::spawn(async move {
                let drain = async { while output.recv().await.is_some() {} };
                let ((), exit) = tokio::join!(drain, exit);
                drop(input);
                match exit {
                    Ok(code) => audit_log.exec_ended(row, Some(code), "detached").await,
                    Err(e) => audit_log.exec_ended(row, None, &format!("detached: {e}")).await,
                }
            });
        }
    }
}

/// A binary data frame's payload.
fn frame(tty: bool, stream: OutputStream, mut data: Vec<u8>) -> Vec<u8> {
    let id = match stream {
        _ if tty => return data,
        OutputStream::Stdout | OutputStream::Tty => STDOUT_ID,
        OutputStream::Stderr => STDERR_ID,
    };
    data.insert(0, id);
    data
}

fn control(message: &StreamControl) -> Message {
    Message::Text(serde_json::to_string(message).expect("control messages serialise").into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        assert_eq!(frame(false, OutputStream::Stdout, b"hi".to_vec()), b"\x01hi");
        assert_eq!(frame(false, OutputStream::Stderr, b"oops".to_vec()), b"\x02oops");
        assert_eq!(frame(true, OutputStream::Tty, b"\x1b[1m".to_vec()), b"\x1b[1m");
        assert_eq!(frame(false, OutputStream::Stdout, Vec::new()), b"\x01");
    }
}
