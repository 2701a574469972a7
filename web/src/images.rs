//! Images: the list (one row per tag) with tag, push and remove; pull and push with a progress
//! bar per layer; build from a pasted Dockerfile or an uploaded context with the output as it
//! streams; and one image's layers and history.

use berth_types::auth::Role;
use berth_types::build::BuildEvent;
use berth_types::stream::StreamMessage;
use berth_types::{
    HistoryEntry, ImageInspect, ImageSummary, LayerStatus, PullRequest, PushRequest, TagRequest,
    TransferEvent,
};
use gloo_net::http::Method;
use leptos::html;
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::api::{self, enc, ApiError};
use crate::format::{self, human_size, ImageRow};
use crate::pages::{bytes_title, now, set_title, ErrorPanel, Loading, PageHeader};
use crate::ws::{Frame, Socket};

/// `GET /api/v1/images`, with the pull, push and build panels above it.
#[component]
pub fn Images() -> impl IntoView {
    set_title("Images");
    let operator = crate::session().allows(Role::Operator);
    let images = LocalResource::new(|| api::get::<Vec<ImageSummary>>("/api/v1/images"));
    let refresh = Callback::new(move |()| images.refetch());
    let push_target = RwSignal::new(String::new());
    let panel = RwSignal::new(None::<&'static str>);
    let notice = RwSignal::new(None::<(bool, String)>);
    view! {
        <PageHeader title="Images" on_refresh=refresh>
            {operator.then(|| view! {
                <button type="button" class="button primary" data-test="pull-button" on:click=move |_| panel.set(Some("pull"))>"Pull"</button>
                <button type="button" class="button" data-test="build-button" on:click=move |_| panel.set(Some("build"))>"Build"</button>
            })}
        </PageHeader>
        {move || match panel.get() {
            Some("pull") => view! { <Transfer kind="pull" initial=String::new() on_done=refresh on_close=Callback::new(move |()| panel.set(None))/> }.into_any(),
            Some("push") => view! { <Transfer kind="push" initial=push_target.get_untracked() on_done=refresh on_close=Callback::new(move |()| panel.set(None))/> }.into_any(),
            Some("build") => view! { <Build on_done=refresh on_close=Callback::new(move |()| panel.set(None))/> }.into_any(),
            _ => ().into_any(),
        }}
        {move || notice.get().map(|(ok, text)| view! {
            <p class=if ok { "notice ok" } else { "notice failed" } role="status">{text}</p>
        })}
        {move || match images.get() {
            None => view! { <Loading what="images"/> }.into_any(),
            Some(Err(error)) => view! { <ErrorPanel error retry=refresh/> }.into_any(),
            Some(Ok(list)) if list.is_empty() => view! { <NoImages operator/> }.into_any(),
            Some(Ok(list)) => view! {
                <ImageTable images=list operator refresh notice on_push=Callback::new(move |r: String| {
                    push_target.set(r);
                    panel.set(Some("push"));
                })/>
            }
            .into_any(),
        }}
    }
}

#[component]
fn ImageTable(
    images: Vec<ImageSummary>,
    operator: bool,
    refresh: Callback<()>,
    notice: RwSignal<Option<(bool, String)>>,
    on_push: Callback<String>,
) -> impl IntoView {
    let count = images.len();
    let rows = format::image_rows(&images);
    let now = now();
    view! {
        <p class="summary">{if count == 1 { "1 image".to_owned() } else { format!("{count} images") }}</p>
        <div class="table-wrap" role="region" aria-label="Images" tabindex="0">
            <table class="data">
                <thead>
                    <tr>
                        <th scope="col">"Repository"</th>
                        <th scope="col">"Tag"</th>
                        <th scope="col">"Image ID"</th>
                        <th scope="col">"Created"</th>
                        <th scope="col" class="num">"Size"</th>
                        {operator.then(|| view! { <th scope="col"><span class="visually-hidden">"Actions"</span></th> })}
                    </tr>
                </thead>
                <tbody>
                    {rows.into_iter().map(|row| view! { <ImageTableRow row now operator refresh notice on_push/> }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn ImageTableRow(
    row: ImageRow,
    now: chrono::DateTime<chrono::Utc>,
    operator: bool,
    refresh: Callback<()>,
    notice: RwSignal<Option<(bool, String)>>,
    on_push: Callback<String>,
) -> impl IntoView {
    let none = |text: &str| text == format::NONE;
    let repository_class = if none(&row.repository) { "none" } else { "repo" };
    let tag_class = if none(&row.tag) { "none" } else { "tag" };
    let ago = format::time_ago(&row.created, now);
    // The name the row stands for: `repo:tag` when it has one, else the image ID.
    let reference = if none(&row.tag) || row.full_repository.is_empty() {
        row.id.clone()
    } else {
        format!("{}:{}", row.full_repository, row.tag)
    };
    let href = format!("/images/{}", enc(&reference));
    let tag_ref = reference.clone();
    let rm_ref = reference.clone();
    let push_ref = reference.clone();
    let tag = move |_| {
        let Ok(Some(target)) =
            window().prompt_with_message(&format!("New tag for {tag_ref}, e.g. localhost:5000/app:v1"))
        else {
            return;
        };
        let target = target.trim().to_owned();
        if target.is_empty() {
            return;
        }
        let source = tag_ref.clone();
        leptos::task::spawn_local(async move {
            let path = format!("/api/v1/images/{}/tag", enc(&source));
            let result: Result<serde_json::Value, ApiError> =
                api::send_json(Method::POST, &path, &TagRequest { target: target.clone() }).await;
            // The tag route may answer 201/204 without a body: only the status matters.
            let ok = match result {
                Ok(_) | Err(ApiError::Unexpected(_)) => None,
                Err(e) => Some(e.message()),
            };
            notice.set(Some(match ok {
                None => (true, format!("Tagged {source} as {target}")),
                Some(e) => (false, e),
            }));
            refresh.run(());
        });
    };
    let remove = move |_| {
        if !window().confirm_with_message(&format!("Remove {rm_ref}?")).unwrap_or(false) {
            return;
        }
        let reference = rm_ref.clone();
        leptos::task::spawn_local(async move {
            let result = api::act(Method::DELETE, &format!("/api/v1/images/{}", enc(&reference))).await;
            notice.set(Some(match result {
                Ok(()) => (true, format!("Removed {reference}")),
                Err(e) => (false, e.message()),
            }));
            refresh.run(());
        });
    };
    view! {
        <tr>
            <td class=repository_class data-label="Repository" title=row.full_repository.clone()>
                <a href=href>{row.repository.clone()}</a>
            </td>
            <td class=tag_class data-label="Tag">{row.tag.clone()}</td>
            <td data-label="Image ID">
                <code class="id" title=row.id.clone()>{format::short_id(&row.id).to_owned()}</code>
            </td>
            <td data-label="Created">
                <time datetime=row.created.clone() title=row.created.clone()>{ago}</time>
            </td>
            <td class="num" data-label="Size" title=bytes_title(row.size)>{human_size(row.size)}</td>
            {operator.then(|| view! {
                <td class="row-actions">
                    <button type="button" class="button small" on:click=tag>"Tag"</button>
                    <button type="button" class="button small" on:click=move |_| on_push.run(push_ref.clone())>"Push"</button>
                    <button type="button" class="button small danger" on:click=remove>"Remove"</button>
                </td>
            })}
        </tr>
    }
}

#[component]
fn NoImages(operator: bool) -> impl IntoView {
    view! {
        <div class="state empty">
            <h2>"No images yet"</h2>
            <p>
                {if operator { "Pull one from a registry or build one with the buttons above, or " } else { "An operator can pull or build one; or " }}
                "import one with " <code>"berth import rootfs.tar busybox:latest"</code> "."
            </p>
        </div>
    }
}

/// One layer's progress in a pull or push.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerProgress {
    pub digest: String,
    pub status: LayerStatus,
    pub current: u64,
    pub total: u64,
}

/// Applies a transfer event to the layer list; returns the line to show for it, if any.
pub fn apply_transfer(layers: &mut Vec<LayerProgress>, event: &TransferEvent) -> Option<String> {
    match event {
        TransferEvent::Resolving { reference } => Some(format!("Resolving {reference}")),
        TransferEvent::Resolved { digest, layers: list, total_bytes } => {
            *layers = list
                .iter()
                .map(|l| LayerProgress {
                    digest: l.digest.clone(),
                    status: LayerStatus::Waiting,
                    current: 0,
                    total: l.size,
                })
                .collect();
            Some(format!("{digest}: {} layers, {}", list.len(), human_size(*total_bytes)))
        }
        TransferEvent::Layer { digest, status, current, total } => {
            match layers.iter_mut().find(|l| &l.digest == digest) {
                Some(l) => {
                    l.status = *status;
                    l.current = *current;
                    l.total = *total;
                }
                None => layers.push(LayerProgress {
                    digest: digest.clone(),
                    status: *status,
                    current: *current,
                    total: *total,
                }),
            }
            None
        }
        TransferEvent::Pulled(r) => Some(format!(
            "Pulled {} ({} layers downloaded, {} already present, {})",
            r.reference,
            r.layers_downloaded,
            r.layers_existing,
            human_size(r.bytes_downloaded)
        )),
        TransferEvent::Pushed(r) => Some(format!(
            "Pushed {} ({} uploaded, {} already there, {} mounted)",
            r.reference, r.blobs_uploaded, r.blobs_existing, r.blobs_mounted
        )),
        TransferEvent::Error { message } => Some(format!("Error: {message}")),
    }
}

/// A layer's state in words, as `docker pull` prints it.
pub fn layer_status_text(status: LayerStatus) -> &'static str {
    match status {
        LayerStatus::Waiting => "Waiting",
        LayerStatus::Downloading => "Downloading",
        LayerStatus::Verifying => "Verifying",
        LayerStatus::Extracting => "Extracting",
        LayerStatus::AlreadyExists => "Already exists",
        LayerStatus::Done => "Pull complete",
        LayerStatus::Uploading => "Pushing",
        LayerStatus::Mounted => "Mounted",
        LayerStatus::Pushed => "Pushed",
    }
}

/// Fraction done, 0 to 1.
fn layer_fraction(l: &LayerProgress) -> f64 {
    match l.status {
        LayerStatus::Done | LayerStatus::AlreadyExists | LayerStatus::Mounted | LayerStatus::Pushed => 1.0,
        _ if l.total == 0 => 0.0,
        _ => (l.current as f64 / l.total as f64).clamp(0.0, 1.0),
    }
}

/// The pull or push panel: a reference, then a progress bar per layer over the progress
/// WebSocket.
#[component]
fn Transfer(
    kind: &'static str,
    initial: String,
    on_done: Callback<()>,
    on_close: Callback<()>,
) -> impl IntoView {
    let reference = RwSignal::new(initial);
    let layers = RwSignal::new(Vec::<LayerProgress>::new());
    let lines = RwSignal::new(Vec::<String>::new());
    let running = RwSignal::new(false);
    let outcome = RwSignal::new(None::<bool>);
    let socket = StoredValue::new_local(None::<Socket>);
    let start = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let name = reference.get_untracked().trim().to_owned();
        if name.is_empty() {
            lines.set(vec!["Enter an image reference, e.g. localhost:5000/busybox:latest".into()]);
            return;
        }
        let request = if kind == "pull" {
            serde_json::to_string(&PullRequest { reference: name, platform: None })
        } else {
            serde_json::to_string(&PushRequest { reference: name })
        }
        .unwrap_or_default();
        layers.set(Vec::new());
        lines.set(Vec::new());
        outcome.set(None);
        running.set(true);
        let opened = Socket::open(
            &format!("/api/v1/ws/progress/{kind}"),
            Some(Box::new(move |ws| {
                let _ = ws.send_with_str(&request);
            })),
            move |frame| {
                let Frame::Text(text) = frame else { return };
                match serde_json::from_str::<StreamMessage>(&text) {
                    Ok(StreamMessage::Progress { event }) => {
                        let mut line = None;
                        layers.update(|l| line = apply_transfer(l, &event));
                        match &event {
                            TransferEvent::Pulled(_) | TransferEvent::Pushed(_) => outcome.set(Some(true)),
                            TransferEvent::Error { .. } => outcome.set(Some(false)),
                            _ => {}
                        }
                        if let Some(line) = line {
                            lines.update(|l| l.push(line));
                        }
                    }
                    Ok(StreamMessage::Error { message }) => {
                        outcome.set(Some(false));
                        lines.update(|l| l.push(format!("Error: {message}")));
                    }
                    Ok(StreamMessage::End { .. }) => {}
                    _ => {}
                }
            },
            move |closed| {
                running.set(false);
                if outcome.get_untracked().is_none() {
                    outcome.set(Some(false));
                    lines.update(|l| {
                        l.push(format!("The connection closed before the end (code {}).", closed.code))
                    });
                }
                on_done.run(());
            },
        );
        match opened {
            Ok(s) => socket.set_value(Some(s)),
            Err(e) => {
                running.set(false);
                lines.set(vec![format!("Error: {e}")]);
            }
        }
    };
    let title = if kind == "pull" { "Pull an image" } else { "Push an image" };
    let input_ref = NodeRef::<html::Input>::new();
    input_ref.on_load(|input| {
        let _ = input.focus();
    });
    view! {
        <section class="panel transfer" aria-label=title data-test=format!("{kind}-panel")>
            <div class="panel-head">
                <h2>{title}</h2>
                <button type="button" class="button small" on:click=move |_| on_close.run(()) aria-label="Close">"Close"</button>
            </div>
            <form class="toolbar" on:submit=start>
                <label for=format!("{kind}-reference")>"Reference"</label>
                <input
                    id=format!("{kind}-reference")
                    node_ref=input_ref
                    placeholder="localhost:5000/busybox:latest"
                    prop:value=reference
                    on:input=move |e| reference.set(event_target_value(&e))
                />
                <button type="submit" class="button primary" disabled=running>
                    {move || if running.get() { "Working…" } else if kind == "pull" { "Pull" } else { "Push" }}
                </button>
            </form>
            <ul class="layers" aria-label="Layers">
                <For
                    each=move || layers.get()
                    key=|l| (l.digest.clone(), l.current, l.status as u8)
                    children=|l| {
                        let fraction = layer_fraction(&l);
                        view! {
                            <li class="layer">
                                <code title=l.digest.clone()>{format::short_id(&l.digest).to_owned()}</code>
                                <progress max="1" value=fraction.to_string() aria-label=format!("Layer {}", format::short_id(&l.digest))></progress>
                                <span class="layer-status">
                                    {layer_status_text(l.status)}
                                    {(l.total > 0).then(|| format!(" {}/{}", human_size(l.current.min(l.total)), human_size(l.total)))}
                                </span>
                            </li>
                        }
                    }
                />
            </ul>
            <div class=move || match outcome.get() { Some(true) => "transfer-log ok", Some(false) => "transfer-log failed", None => "transfer-log" } role="status">
                {move || lines.get().into_iter().map(|l| view! { <div>{l}</div> }).collect_view()}
            </div>
        </section>
    }
}

/// Build: tags, and a pasted Dockerfile or an uploaded context tar; the output streams in.
#[component]
fn Build(on_done: Callback<()>, on_close: Callback<()>) -> impl IntoView {
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
                    Ok(BuildEvent::Error { message }) => {
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

/// One image: what it runs, its layers bottom first, and its history newest first.
#[component]
pub fn ImagePage() -> impl IntoView {
    let params = use_params_map();
    let name = move || params.with(|p| p.get("name").unwrap_or_default());
    let inspect = LocalResource::new(move || {
        let name = name();
        async move { api::get::<ImageInspect>(&format!("/api/v1/images/{}", enc(&name))).await }
    });
    let retry = Callback::new(move |()| inspect.refetch());
    view! {
        <nav class="breadcrumb" aria-label="Breadcrumb"><a href="/images">"Images"</a>" / "</nav>
        {move || {
            set_title(&name());
            match inspect.get() {
                None => view! { <Loading what="the image"/> }.into_any(),
                Some(Err(error)) => view! { <ErrorPanel error retry/> }.into_any(),
                Some(Ok(image)) => view! { <ImageDetails image title=name()/> }.into_any(),
            }
        }}
    }
}

#[component]
fn ImageDetails(image: ImageInspect, title: String) -> impl IntoView {
    let config = image.config.clone();
    let mut history: Vec<HistoryEntry> = image.history.clone();
    history.reverse();
    let now = now();
    let words = |w: &[String]| if w.is_empty() { "—".to_owned() } else { w.join(" ") };
    view! {
        <div class="page-header"><h1>{title}</h1></div>
        <dl class="facts panel">
            <dt>"ID"</dt><dd><code>{image.id.clone()}</code></dd>
            <dt>"Tags"</dt><dd>{if image.repo_tags.is_empty() { "<none>".to_owned() } else { image.repo_tags.join(", ") }}</dd>
            <dt>"Manifest"</dt><dd><code>{image.manifest_digest.clone()}</code></dd>
            <dt>"Created"</dt><dd>{image.created.clone()}</dd>
            <dt>"Platform"</dt><dd>{format!("{}/{}", image.os, image.architecture)}</dd>
            <dt>"Size"</dt><dd title=bytes_title(image.size)>{human_size(image.size)}</dd>
            <dt>"Entrypoint"</dt><dd><code>{words(&config.entrypoint)}</code></dd>
            <dt>"Command"</dt><dd><code>{words(&config.cmd)}</code></dd>
            <dt>"Environment"</dt><dd><code>{words(&config.env)}</code></dd>
            <dt>"Working directory"</dt><dd><code>{if config.working_dir.is_empty() { "/".to_owned() } else { config.working_dir.clone() }}</code></dd>
            <dt>"Exposed ports"</dt><dd>{words(&config.exposed_ports)}</dd>
        </dl>
        <section class="panel" aria-labelledby="layers-heading">
            <h2 id="layers-heading">{format!("Layers ({})", image.layers.len())}</h2>
            <div class="table-wrap" role="region" aria-label="Layers" tabindex="0">
                <table class="data">
                    <thead><tr><th scope="col">"#"</th><th scope="col">"Digest"</th><th scope="col">"Media type"</th><th scope="col" class="num">"Size"</th></tr></thead>
                    <tbody>
                        {image.layers.iter().enumerate().map(|(i, l)| view! {
                            <tr>
                                <td data-label="#">{i + 1}</td>
                                <td data-label="Digest"><code title=l.diff_id.clone()>{l.digest.clone()}</code></td>
                                <td data-label="Media type">{l.media_type.clone()}</td>
                                <td class="num" data-label="Size" title=bytes_title(l.size)>{human_size(l.size)}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
        <section class="panel" aria-labelledby="history-heading">
            <h2 id="history-heading">"History"</h2>
            <div class="table-wrap" role="region" aria-label="History" tabindex="0">
                <table class="data">
                    <thead><tr><th scope="col">"Created"</th><th scope="col">"Created by"</th><th scope="col" class="num">"Size"</th><th scope="col">"Comment"</th></tr></thead>
                    <tbody>
                        {history.into_iter().map(|h| view! {
                            <tr>
                                <td data-label="Created"><time title=h.created.clone()>{format::time_ago(&h.created, now)}</time></td>
                                <td data-label="Created by"><code class="command">{h.created_by.clone()}</code></td>
                                <td class="num" data-label="Size">{if h.empty_layer { "0B".to_owned() } else { human_size(h.size) }}</td>
                                <td data-label="Comment">{h.comment.clone()}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_types::LayerSummary;

    #[test]
    fn transfer_events_drive_layer_bars() {
        let mut layers = Vec::new();
        let resolved = TransferEvent::Resolved {
            digest: "sha256:m".into(),
            layers: vec![
                LayerSummary { digest: "sha256:a".into(), size: 100 },
                LayerSummary { digest: "sha256:b".into(), size: 50 },
            ],
            total_bytes: 150,
        };
        assert!(apply_transfer(&mut layers, &resolved).unwrap().contains("2 layers"));
        let progress = TransferEvent::Layer {
            digest: "sha256:a".into(),
            status: LayerStatus::Downloading,
            current: 40,
            total: 100,
        };
        assert_eq!(apply_transfer(&mut layers, &progress), None);
        assert_eq!(layer_fraction(&layers[0]), 0.4);
        let exists = TransferEvent::Layer {
            digest: "sha256:b".into(),
            status: LayerStatus::AlreadyExists,
            current: 0,
            total: 50,
        };
        apply_transfer(&mut layers, &exists);
        assert_eq!(layer_fraction(&layers[1]), 1.0);
        assert_eq!(layer_status_text(layers[1].status), "Already exists");
        let error = TransferEvent::Error { message: "manifest unknown".into() };
        assert_eq!(apply_transfer(&mut layers, &error).unwrap(), "Error: manifest unknown");
    }
}
