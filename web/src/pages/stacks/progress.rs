//! A stack operation's output as it streams, as Compose prints it.

use berth_types::StackProgress;
use leptos::prelude::*;

use crate::client::api::{self, ApiError};

/// One line of a stack operation's output as Compose prints it: ` ✔ Container app-web-1  Started`.
fn progress_line(p: &StackProgress) -> (bool, String) {
    let failed = p.action == "Error";
    let object = {
        let mut o = p.object.clone();
        if let Some(first) = o.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        o
    };
    // `Error` and `Warning` lines carry their message; the others are a name and what happened.
    let text = if p.message.is_empty() {
        format!("{object} {}  {}", p.name, p.action)
    } else {
        format!("{object} {}  {}: {}", p.name, p.action, p.message)
    };
    (failed, text)
}

/// Why a stack operation did not end well: the first error's message, and the daemon's own
/// error when it refused the request (before any progress).
pub struct Failed {
    pub message: String,
    pub refused: Option<ApiError>,
}

/// Runs a streamed stack operation (`POST path` with `body`), appending each progress line to
/// `lines`; returns the first error (a refused request or an `Error` line).
pub async fn stream_operation(
    path: String,
    body: String,
    team: Option<String>,
    lines: RwSignal<Vec<(bool, String)>>,
) -> Result<(), Failed> {
    let mut failure = None;
    let body = wasm_bindgen::JsValue::from_str(&body);
    let result =
        api::stream_lines(
            &path,
            &body,
            "application/json",
            team.as_deref(),
            |line| match serde_json::from_str::<StackProgress>(line) {
                Ok(p) => {
                    let (failed, text) = progress_line(&p);
                    if failed && failure.is_none() {
                        failure = Some(if p.message.is_empty() { text.clone() } else { p.message.clone() });
                    }
                    lines.update(|l| l.push((failed, text)));
                }
                Err(_) => lines.update(|l| l.push((true, format!("unreadable progress line: {line}")))),
            },
        )
        .await;
    match (result, failure) {
        (Err(e), _) => Err(Failed { message: e.message(), refused: Some(e) }),
        (Ok(()), Some(message)) => Err(Failed { message, refused: None }),
        (Ok(()), None) => Ok(()),
    }
}

/// The progress lines of an operation.
#[component]
pub fn ProgressLog(lines: RwSignal<Vec<(bool, String)>>) -> impl IntoView {
    view! {
        <ol class="build-log stack-progress" aria-live="polite" data-test="stack-progress">
            {move || lines.get().into_iter().map(|(failed, text)| view! {
                <li class=if failed { "error" } else { "" }>{text}</li>
            }).collect_view()}
        </ol>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_as_compose_prints_it() {
        let p = StackProgress {
            object: "container".into(),
            name: "app-web-1".into(),
            action: "Started".into(),
            message: String::new(),
        };
        assert_eq!(progress_line(&p), (false, "Container app-web-1  Started".to_owned()));
        let e = StackProgress { action: "Error".into(), message: "port is already allocated".into(), ..p };
        assert_eq!(
            progress_line(&e),
            (true, "Container app-web-1  Error: port is already allocated".to_owned())
        );
    }
}
