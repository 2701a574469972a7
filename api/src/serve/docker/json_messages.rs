//! Docker's progress streams (pull, push, load, build): one JSON object per line, in the shape
//! of Docker's `jsonmessage` — `status`/`id`/`progressDetail` for transfers, `stream` for build
//! output, `aux` for results, and `errorDetail` plus the older `error` for a failure (the CLI
//! reads the first, docker-py the second). bollard-stubs' `CreateImageInfo`, `PushImageInfo`
//! and `BuildInfo` each lack some of these fields, so the one shape below carries them all,
//! built from bollard's `ProgressDetail` and `ErrorDetail`.

use std::convert::Infallible;

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bollard_stubs::models::{ErrorDetail, ProgressDetail};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::mpsc::UnboundedReceiver;

/// One line of a progress stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JsonMessage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "progressDetail", skip_serializing_if = "Option::is_none")]
    pub progress_detail: Option<ProgressDetail>,
    /// The bar as text, as dockerd sends it for clients that print it as is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    #[serde(rename = "errorDetail", skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<ErrorDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aux: Option<serde_json::Value>,
}

impl JsonMessage {
    /// `{"status": ...}`.
    pub fn status(status: impl Into<String>) -> JsonMessage {
        JsonMessage { status: Some(status.into()), ..Default::default() }
    }

    /// `{"status": ..., "id": ...}`: a line about one layer (or the tag being pulled).
    pub fn layer(status: impl Into<String>, id: impl Into<String>) -> JsonMessage {
        JsonMessage { status: Some(status.into()), id: Some(id.into()), ..Default::default() }
    }

    /// A layer's status with its progress (`current` of `total` bytes).
    pub fn layer_progress(
        status: impl Into<String>,
        id: impl Into<String>,
        current: u64,
        total: u64,
    ) -> JsonMessage {
        JsonMessage {
            progress_detail: Some(ProgressDetail {
                current: Some(current as i64),
                total: Some(total as i64),
            }),
            progress: Some(progress_bar(current, total)),
            ..JsonMessage::layer(status, id)
        }
    }

    /// `{"stream": ...}`: build output.
    pub fn stream(text: impl Into<String>) -> JsonMessage {
        JsonMessage { stream: Some(text.into()), ..Default::default() }
    }

    /// `{"aux": ...}`: a result (an image ID, a pushed tag's digest).
    pub fn aux(value: serde_json::Value) -> JsonMessage {
        JsonMessage { aux: Some(value), ..Default::default() }
    }

    /// The failure of a command that ends a stream; the docker CLI exits with `code`.
    pub fn error_with_code(message: impl Into<String>, code: i32) -> JsonMessage {
        let mut m = JsonMessage::error(message);
        if let Some(detail) = m.error_detail.as_mut() {
            detail.code = Some(i64::from(code));
        }
        m
    }

    /// The failure that ends a stream.
    pub fn error(message: impl Into<String>) -> JsonMessage {
        let message = message.into();
        JsonMessage {
            error_detail: Some(ErrorDetail { code: None, message: Some(message.clone()) }),
            error: Some(message),
            ..Default::default()
        }
    }
}

/// The messages as they come, one JSON object per line (`application/json`, as dockerd).
pub fn json_stream(rx: UnboundedReceiver<JsonMessage>) -> Response {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) })
        .map(|message| {
            let mut line = serde_json::to_vec(&message).expect("messages serialise");
            line.push(b'\r');
            line.push(b'\n');
            Ok::<_, Infallible>(Bytes::from(line))
        });
    ([(header::CONTENT_TYPE, "application/json")], Body::from_stream(stream)).into_response()
}

/// Docker's progress bar: 50 columns of `=` up to the share done, then the sizes, e.g.
/// `[=========>                                         ]  1.049MB/5.243MB`.
pub fn progress_bar(current: u64, total: u64) -> String {
    if total == 0 {
        return format!("{:>8}", human_size(current));
    }
    let filled = ((current as f64 / total as f64 * 100.0) as usize / 2).min(50);
    format!(
        "[{}>{}] {:>8}/{}",
        "=".repeat(filled),
        " ".repeat(50 - filled),
        human_size(current),
        human_size(total)
    )
}

/// A size as Docker prints it: decimal units, four significant digits (`1.049MB`, `512B`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    let decimals = if value >= 100.0 {
        1
    } else if value >= 10.0 {
        2
    } else {
        3
    };
    let text = format!("{value:.decimals$}");
    let text = if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.') } else { &text };
    format!("{text}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_docker_prints_them() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(1_048_576), "1.049MB");
        assert_eq!(human_size(2_153_000), "2.153MB");
        assert_eq!(human_size(12_345_678_901), "12.35GB");
    }

    #[test]
    fn bars_fill_with_the_share_done() {
        let bar = progress_bar(50, 100);
        assert!(bar.starts_with(&format!("[{}>{}]", "=".repeat(25), " ".repeat(25))), "{bar}");
        assert!(bar.ends_with("     50B/100B"), "{bar}");
        assert!(progress_bar(100, 100).starts_with(&format!("[{}>]", "=".repeat(50))));
        // More than the total (a size the registry misreported) stays a full bar.
        assert!(progress_bar(300, 100).starts_with(&format!("[{}>]", "=".repeat(50))));
        assert_eq!(progress_bar(10, 0), "     10B");
    }

    #[test]
    fn messages_serialise_as_docker_sends_them() {
        let m = JsonMessage::layer_progress("Downloading", "abc", 1, 2);
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["progressDetail"], serde_json::json!({"current": 1, "total": 2}));
        assert_eq!(v["id"], "abc");
        let e = serde_json::to_value(JsonMessage::error("boom")).unwrap();
        assert_eq!(e, serde_json::json!({"errorDetail": {"message": "boom"}, "error": "boom"}));
        assert_eq!(
            serde_json::to_value(JsonMessage::stream("x\n")).unwrap(),
            serde_json::json!({"stream": "x\n"})
        );
    }
}
