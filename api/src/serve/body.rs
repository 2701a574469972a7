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

/// The tar of a save (`docker save`) as a response body. When the writer fails half-way the
/// body ends in an error (the connection is cut), not in a clean end that the client would take
/// for a complete tar.
pub(crate) fn save_stream(engine: berth_engine::Engine, plan: berth_engine::image::save::SavePlan) -> Body {
    let (writer, reader) = tokio::io::duplex(STREAM_BUFFER);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _ = done_tx.send(plan.write_to(&engine, writer).await);
    });
    let tail = futures_util::stream::once(async move {
        match done_rx.await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "save failed while streaming");
                Some(Err(io::Error::other(e.to_string())))
            }
            Err(_) => Some(Err(io::Error::other("save ended unexpectedly"))),
        }
    })
    .filter_map(|item| async move { item });
    Body::from_stream(tokio_util::io::ReaderStream::with_capacity(reader, STREAM_BUFFER).chain(tail))
}
