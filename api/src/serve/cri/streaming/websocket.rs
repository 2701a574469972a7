//! Exec and attach over a WebSocket of the `v4.channel.k8s.io` protocol: binary frames whose
//! first byte is the channel (0 stdin, 1 stdout, 2 stderr, 3 the final status as a Kubernetes
//! `Status` JSON, 4 terminal resize `{"Width":..,"Height":..}`).

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use berth_engine::container::{OutputStream, ProcessSession, SessionOutput};
use futures_util::{SinkExt, StreamExt};

/// The WebSocket subprotocols served, newest first.
pub(super) const PROTOCOLS: [&str; 2] = ["v4.channel.k8s.io", "channel.k8s.io"];

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;

/// Connects the session to the socket in the channel protocol until the process ends (its
/// status goes on channel 3) or the client goes away. Returns the exit code when known.
pub(super) async fn pump(socket: WebSocket, session: ProcessSession, stdin: bool) -> Option<i32> {
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
        let mut frame = vec![ERROR];
        frame.extend_from_slice(super::exit_status(code).to_string().as_bytes());
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
                RESIZE => match serde_json::from_slice::<super::TerminalSize>(payload) {
                    Ok(size) => input.resize(size.width, size.height).await,
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
