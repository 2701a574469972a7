//! Build: a pasted Dockerfile or an uploaded context; the output streams in.

use berth_types::build::BuildEvent;
use leptos::html;
use leptos::prelude::*;

use crate::client::api::{self, enc};
use crate::format;

/// Build: tags, and a pasted Dockerfile or an uploaded context tar; the output streams in.
#[component]
pub fn Build(on_done: Callback<()>, on_close: Callback<()>) -> impl IntoView {
    let tags = RwSignal::new(String::from("app:latest"));
    let dockerfile = RwSignal::new(String::from(
        "FROM busybox\nRUN echo built by berth > /built\nCMD [\"cat\", \"/built\"]\n",
    ));
    let source = RwSignal::new("paste");
    let no_cache = RwSignal::new(false);
    let output = RwSignal::new(Vec::<(String, String)>::new());
    let running = RwSignal::new(false);
    let outcome = RwSignal::new(None::<bool>);
    let file_ref = NodeRef::<html::Input>::new();
    let start = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let mut query: Vec<String> = tags
            .get_untracked()
            .split([',', ' '])
            .filter(|t| !t.is_empty())
            .map(|t| format!("t={}", enc(t)))
            .collect();
        if no_cache.get_untracked() {
            query.push("nocache=1".into());
        }
        let body: wasm_bindgen::JsValue = if source.get_untracked() == "paste" {
            match crate::tar::single_file("Dockerfile", dockerfile.get_untracked().as_bytes()) {
                Ok(tar) => js_sys::Uint8Array::from(tar.as_slice()).into(),
                Err(e) => {
                    output.set(vec![("error".into(), e)]);
                    return;
                }
            }
        } else {
            match file_ref.get_untracked().and_then(|input| input.files()).and_then(|files| files.get(0)) {
                Some(file) => file.into(),
                None => {
                    output.set(vec![("error".into(), "choose a .tar file with the build context".into())]);
                    return;
                }
            }
        };
        output.set(Vec::new());
        outcome.set(None);
        running.set(true);
        let path = format!("/api/v1/build?{}", query.join("&"));
        leptos::task::spawn_local(async move {
            let result = api::stream_lines(&path, &body, "application/x-tar", None, |line| {
                let (class, text) = match serde_json::from_str::<BuildEvent>(line) {
                    Ok(BuildEvent::Step { stage, instruction, .. }) => {
                        ("step", format!("[{stage}] {instruction}"))
                    }
                    Ok(BuildEvent::Cached { .. }) => ("cached", " ---> Using cache".to_owned()),
                    Ok(BuildEvent::Output { stream, text, .. }) => (
                        if stream == "stderr" { "stderr" } else { "stdout" },
                        text.trim_end_matches('\n').to_owned(),
                    ),
                    Ok(BuildEvent::Done { seconds, .. }) => ("done", format!(" ---> done in {seconds:.1}s")),
                    Ok(BuildEvent::Warning { message }) => ("warning", format!("warning: {message}")),
                    Ok(BuildEvent::Built { id, tags }) => {
                        outcome.set(Some(true));
                        ("built", format!("Built {} {}", format::short_id(&id), tags.join(", ")))
                    }
                    Ok(BuildEvent::Error { message, .. }) => {
                        outcome.set(Some(false));
                        ("error", format!("Error: {message}"))
                    }
                    Err(e) => ("error", format!("unreadable build event: {e}")),
                };
                output.update(|o| o.push((class.to_owned(), text)));
            })
            .await;
            if let Err(e) = result {
                outcome.set(Some(false));
                output.update(|o| o.push(("error".into(), format!("Error: {}", e.message()))));
            }
            running.set(false);
            on_done.run(());
        });
    };
    view! {
        <section class="panel transfer" aria-label="Build an image" data-test="build-panel">
            <div class="panel-head">
                <h2>"Build an image"</h2>
                <button type="button" class="button small" on:click=move |_| on_close.run(())>"Close"</button>
            </div>
            <form class="form" on:submit=start>
                <div class="grid">
                    <div class="field">
                        <label for="build-tags">"Tags"</label>
                        <input id="build-tags" prop:value=tags on:input=move |e| tags.set(event_target_value(&e)) placeholder="app:latest, app:v1"/>
                    </div>
                    <fieldset class="field">
                        <legend>"Context"</legend>
                        <label class="check-label"><input type="radio" name="build-source" prop:checked=move || source.get() == "paste" on:change=move |_| source.set("paste")/>"Paste a Dockerfile"</label>
                        <label class="check-label"><input type="radio" name="build-source" prop:checked=move || source.get() == "upload" on:change=move |_| source.set("upload")/>"Upload a context (.tar)"</label>
                    </fieldset>
                </div>
                <div class="field" class:hidden=move || source.get() != "paste">
                    <label for="build-dockerfile">"Dockerfile"</label>
                    <textarea id="build-dockerfile" class="code" rows="6" prop:value=dockerfile on:input=move |e| dockerfile.set(event_target_value(&e))></textarea>
                </div>
                <div class="field" class:hidden=move || source.get() != "upload">
                    <label for="build-context">"Context archive (tar, with a Dockerfile at its root)"</label>
                    <input id="build-context" type="file" accept=".tar,application/x-tar" node_ref=file_ref/>
                </div>
                <label class="check-label"><input type="checkbox" prop:checked=no_cache on:change=move |e| no_cache.set(event_target_checked(&e))/>"Do not use the cache"</label>
                <div class="form-actions">
                    <button type="submit" class="button primary" disabled=running>{move || if running.get() { "Building…" } else { "Build" }}</button>
                </div>
            </form>
            <div class=move || match outcome.get() { Some(true) => "build-log ok", Some(false) => "build-log failed", None => "build-log" } role="log" aria-label="Build output">
                {move || output.get().into_iter().map(|(class, text)| view! { <div class=class>{text}</div> }).collect_view()}
            </div>
        </section>
    }
}
