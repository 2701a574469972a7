//! `up` from a pasted compose file: name, file, .env, working directory; then the progress.

use berth_types::name::{check_object_name, ObjectKind};
use berth_types::StackUp;
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use super::progress::{stream_operation, ProgressLog};
use crate::client::api::enc;
use crate::components::team_picker;
use crate::components::{error_field, field_error, field_invalid, TeamPicker};

/// The request fields a daemon's refusal may name (`StackUp`'s JSON names, `name` for the
/// project name in the path), and the form fields they are shown under.
const SERVER_FIELDS: &[(&str, &str)] = &[("name", "name"), ("compose_file", "file"), ("working_dir", "dir")];

/// Checks the up form and builds the request (the file itself is checked by the daemon, which
/// answers 400 with Compose's wording before anything starts).
pub fn validate_up(
    name: &str,
    file: &str,
    env: &str,
    dir: &str,
) -> Result<StackUp, Vec<(&'static str, String)>> {
    let mut errors = Vec::new();
    if let Err(e) = check_object_name(ObjectKind::Project, name.trim()) {
        errors.push((
            "name",
            if name.trim().is_empty() { "a project name is required".to_owned() } else { e.to_string() },
        ));
    }
    if file.trim().is_empty() {
        errors.push(("file", "paste a compose file (compose.yaml)".to_owned()));
    } else if !file.lines().any(|l| l.trim_start().starts_with("services:") || l.starts_with("services")) {
        errors.push(("file", "a compose file has a top-level services: section".to_owned()));
    }
    let dir = dir.trim();
    if !dir.is_empty() && !dir.starts_with('/') {
        errors.push(("dir", format!("{dir:?} is not an absolute path on the node")));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(StackUp {
        compose_file: file.to_owned(),
        env_file: (!env.trim().is_empty()).then(|| env.to_owned()),
        working_dir: if dir.is_empty() { "/".to_owned() } else { dir.to_owned() },
        ..StackUp::default()
    })
}

/// Name, compose file, optional .env and working directory; then the streamed progress, and the
/// stack's page once it is up.
#[component]
pub fn UpForm(on_close: Callback<()>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let file = RwSignal::new(String::new());
    let env = RwSignal::new(String::new());
    let dir = RwSignal::new(String::new());
    let team = RwSignal::new(String::new());
    let errors = RwSignal::new(Vec::<(&'static str, String)>::new());
    let lines = RwSignal::new(Vec::<(bool, String)>::new());
    let busy = RwSignal::new(false);
    let navigate = use_navigate();
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let stack = name.get_untracked().trim().to_owned();
        let request =
            match validate_up(&stack, &file.get_untracked(), &env.get_untracked(), &dir.get_untracked()) {
                Ok(r) => r,
                Err(e) => {
                    errors.set(e);
                    return;
                }
            };
        errors.set(Vec::new());
        lines.set(Vec::new());
        busy.set(true);
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            let body = serde_json::to_string(&request).unwrap_or_default();
            let path = format!("/api/v1/stacks/{}/up", enc(&stack));
            let result = stream_operation(path, body, team_picker::picked(team), lines).await;
            busy.set(false);
            match result {
                Ok(()) => navigate(&format!("/stacks/{}", enc(&stack)), Default::default()),
                Err(failed) => {
                    // A request the daemon refuses goes under the field it names, or is about the
                    // file; anything later is shown in the log.
                    let field = if lines.try_with_untracked(Vec::is_empty).unwrap_or(true) {
                        failed.refused.as_ref().map_or("file", |e| error_field(e, SERVER_FIELDS, |_| "file"))
                    } else {
                        "form"
                    };
                    errors.set(vec![(field, failed.message)])
                }
            }
        });
    };
    let error = move |field| field_error(errors, "stack", field);
    let invalid = move |field| field_invalid(errors, field);
    view! {
        <form class="panel form" on:submit=submit novalidate aria-labelledby="stack-up-heading">
            <h2 id="stack-up-heading">"Up a stack"</h2>
            <div class="grid">
                <div class="field">
                    <label for="stack-name">"Project name"</label>
                    <input id="stack-name" name="name" autofocus placeholder="myapp" autocapitalize="off"
                        aria-invalid=invalid("name") aria-describedby="stack-name-error"
                        prop:value=name on:input=move |e| name.set(event_target_value(&e))/>
                    <p class="hint">"Lowercase letters, digits, - and _"</p>
                    {error("name")}
                </div>
                <div class="field">
                    <label for="stack-dir">"Working directory on the node"</label>
                    <input id="stack-dir" name="working_dir" placeholder="/" autocapitalize="off"
                        aria-invalid=invalid("dir") aria-describedby="stack-dir-error"
                        prop:value=dir on:input=move |e| dir.set(event_target_value(&e))/>
                    <p class="hint">"Relative paths in the file (bind mounts, build contexts) start here"</p>
                    {error("dir")}
                </div>
            </div>
            <TeamPicker team id="stack-team"/>
            <div class="field">
                <label for="stack-file">"Compose file"</label>
                <textarea id="stack-file" name="compose_file" rows="12" class="code" spellcheck="false"
                    placeholder="services:\n  web:\n    image: busybox\n    command: httpd -f -p 8080"
                    aria-invalid=invalid("file") aria-describedby="stack-file-error"
                    prop:value=file on:input=move |e| file.set(event_target_value(&e))></textarea>
                {error("file")}
            </div>
            <div class="field">
                <label for="stack-env">".env (optional)"</label>
                <textarea id="stack-env" name="env_file" rows="3" class="code" spellcheck="false" placeholder="TAG=1.2"
                    prop:value=env on:input=move |e| env.set(event_target_value(&e))></textarea>
            </div>
            <ProgressLog lines/>
            {error("form")}
            <div class="form-actions">
                <button type="button" class="button" on:click=move |_| on_close.run(())>"Close"</button>
                <button type="submit" class="button primary" disabled=busy>
                    {move || if busy.get() { "Starting…" } else { "Up" }}
                </button>
            </div>
        </form>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_and_the_up_form() {
        assert!(validate_up("MyApp", "services: {}\n", "", "").unwrap_err()[0].1.contains("lowercase"));
        let up = validate_up("app", "services:\n  web:\n    image: busybox\n", "", "").unwrap();
        assert_eq!(up.working_dir, "/");
        assert_eq!(up.env_file, None);
        let e = validate_up("", "", "", "rel").unwrap_err();
        assert_eq!(e.iter().map(|(f, _)| *f).collect::<Vec<_>>(), ["name", "file", "dir"]);
        assert!(validate_up("a", "version: '3'\n", "", "").unwrap_err()[0].1.contains("services"));
    }
}
