//! Messages of the daemon's WebSocket streams (`/api/v1/ws/events`, `/ws/containers/{name}/logs`,
//! `/ws/containers/{name}/stats`, `/ws/node`, `/ws/progress/{pull|push}`, `/ws/progress/stacks/...`): JSON text frames tagged by
//! `type`.

use serde::{Deserialize, Serialize};

use crate::{ContainerStats, Event, LogEntry, NodeStats, TransferEvent};

/// One message of a stream. `end` or `error` is the last before the daemon closes the socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamMessage {
    /// `/ws/events`: something happened.
    Event { event: Event },
    /// `/ws/containers/{name}/logs`: log lines, batched.
    Logs { entries: Vec<LogEntry> },
    /// `/ws/containers/{name}/stats`: a sample, every second.
    Stats { stats: ContainerStats },
    /// `/ws/node`: the node's CPU, memory and disk, every few seconds.
    Node { node: NodeStats },
    /// `/ws/progress/{pull|push}`: one line of the transfer.
    Progress { event: TransferEvent },
    /// `/ws/progress/stacks/{name}/{up|down|stop|start|restart}`: one line of the operation.
    StackProgress { event: crate::stack::StackProgress },
    /// `count` messages were dropped because the client read too slowly.
    Dropped { count: u64 },
    /// The stream ended (the container stopped, the operation finished).
    End { reason: String },
    /// The stream failed.
    Error { message: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_daemons_frames() {
        let end: StreamMessage = serde_json::from_str(r#"{"type":"end","reason":"finished"}"#).unwrap();
        assert_eq!(end, StreamMessage::End { reason: "finished".into() });
        let logs: StreamMessage = serde_json::from_str(
            r#"{"type":"logs","entries":[{"stream":"stderr","time":"2024-01-01T00:00:00Z","line":"x\n"}]}"#,
        )
        .unwrap();
        assert!(matches!(logs, StreamMessage::Logs { entries } if entries[0].stream == "stderr"));
        let progress: StreamMessage = serde_json::from_str(
            r#"{"type":"progress","event":{"event":"resolving","reference":"busybox"}}"#,
        )
        .unwrap();
        assert!(matches!(progress, StreamMessage::Progress { event: TransferEvent::Resolving { .. } }));
    }
}
