//! Streaming request and response bodies between connections and the engine.

use std::io;
use std::pin::Pin;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio_util::io::StreamReader;

/// Bytes buffered between a request or response body and the engine.
pub(crate) const STREAM_BUFFER: usize = 256 * 1024;

/// How long a refused upload is still read (and thrown away) so that the client, still
/// sending, receives the error answer instead of a reset connection.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Request body chunks buffered between the connection and the engine.
const PUMP_CHUNKS: usize = 32;

/// What the engine reads a request body from.
pub(crate) type BodyReader = StreamReader<Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>, Bytes>;

/// Feeds a request body to the engine through a channel. Two things a plain pipe would get
/// wrong: when the client goes away mid-upload, the engine must see an error, not an end of
/// input (a tar cut at an entry boundary looks complete); and when the engine stops reading
/// early (it refused the input), the rest of the body is still read and thrown away, because
/// answering while the client is still sending makes the kernel reset the connection and the
/// client would see a broken pipe instead of the error message.
pub(crate) struct BodyPump {
    task: tokio::task::JoinHandle<()>,
}

impl BodyPump {
    pub(crate) fn start(body: Body) -> (BodyReader, BodyPump) {
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(PUMP_CHUNKS);
        let task = tokio::spawn(async move {
            let mut stream = body.into_data_stream();
            let mut engine_reading = true;
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(chunk) => {
                        if engine_reading && tx.send(Ok(chunk)).await.is_err() {
                            engine_reading = false;
                        }
                    }
                    Err(e) => {
                        let e = io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("the request body broke off: {e}"),
                        );
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
            }
        });
        let chunks =
            futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
        let chunks: Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>> = Box::pin(chunks);
        (StreamReader::new(chunks), BodyPump { task })
    }

    /// Waits (bounded) until the body has been read to its end.
    pub(crate) async fn finish(self) {
        let mut task = self.task;
        if tokio::time::timeout(DRAIN_TIMEOUT, &mut task).await.is_err() {
            task.abort();
        }
    }
}

/// A response body the engine writes (a tar, ...): `write` gets the writing end and runs as a
/// task. When it fails half-way the body ends in an error, so the connection is cut instead of
/// ending cleanly in what the client would take for a complete answer.
pub(crate) fn engine_body<F, Fut>(what: &'static str, write: F) -> Body
where
    F: FnOnce(tokio::io::DuplexStream) -> Fut,
    Fut: std::future::Future<Output = berth_engine::Result<()>> + Send + 'static,
{
    let (writer, reader) = tokio::io::duplex(STREAM_BUFFER);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let task = write(writer);
    tokio::spawn(async move {
        let _ = done_tx.send(task.await);
    });
    let tail = futures_util::stream::once(async move {
        match done_rx.await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "{what} failed while streaming");
                Some(Err(io::Error::other(e.to_string())))
            }
            Err(_) => Some(Err(io::Error::other(format!("{what} ended unexpectedly")))),
        }
    })
    .filter_map(|item| async move { item });
    let stream = tokio_util::io::ReaderStream::with_capacity(reader, STREAM_BUFFER).chain(tail);
    Body::from_stream(stream)
}

/// The tar of a save (`docker save`) as a response body.
pub(crate) fn save_stream(engine: berth_engine::Engine, plan: berth_engine::image::save::SavePlan) -> Body {
    engine_body("save", move |out| async move { plan.write_to(&engine, out).await })
}
