//! Answers shared by the routes: progress streams as JSON lines.

use std::convert::Infallible;

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc::UnboundedReceiver;

/// The media type of the progress streams: newline-delimited JSON.
const JSON_LINES: &str = "application/x-ndjson";

/// The events as they come, one JSON object per line.
pub(crate) fn json_lines<T: serde::Serialize + Send + 'static>(rx: UnboundedReceiver<T>) -> Response {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) })
        .map(|event| {
            let mut line = serde_json::to_vec(&event).expect("progress events serialise");
            line.push(b'\n');
            Ok::<_, Infallible>(Bytes::from(line))
        });
    ([(header::CONTENT_TYPE, JSON_LINES)], Body::from_stream(stream)).into_response()
}
