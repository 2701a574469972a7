//! The dashboard's pages and the pieces they share (page header, loading, error and empty
//! states).

use berth_types::{ImageSummary, SystemInfo};
use chrono::{DateTime, Utc};
use leptos::prelude::*;

use crate::api::{self, ApiError};
use crate::format::{self, human_size, ImageRow};

/// Sets the browser tab's title to `<page> · berth`.
fn set_title(page: &str) {
    document().set_title(&format!("{page} · berth"));
}

/// The browser's clock as a UTC time, for "2 hours ago".
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(js_sys::Date::now() as i64).unwrap_or_default()
}

/// `GET /api/v1/info`: what the node runs with and how much disk its images take.
#[component]
pub fn Overview() -> impl IntoView {
    set_title("Overview");
    let info = LocalResource::new(api::system_info);
    let refresh = Callback::new(move |()| info.refetch());
    view! {
        <PageHeader title="Overview" on_refresh=refresh/>
        {move || match info.get() {
            None => view! { <Loading what="node details"/> }.into_any(),
            Some(Err(error)) => view! { <ErrorPanel error retry=refresh/> }.into_any(),
            Some(Ok(info)) => view! { <SystemFacts info/> }.into_any(),
        }}
    }
}

#[component]
fn SystemFacts(info: SystemInfo) -> impl IntoView {
    let total = info.blobs_size.saturating_add(info.layers_size);
    let images_note = match info.images {
        0 => "None yet: how to add one",
        _ => "View all images",
    };
    let snapshotter_note = match info.snapshotter.as_str() {
        "overlay" => "Layers shared through overlayfs",
        "copy" => "Copying fallback (no overlayfs)",
        _ => "",
    };
    view! {
        <dl class="cards">
            <div class="card">
                <dt>"Images"</dt>
                <dd class="card-value">{info.images}</dd>
                <dd class="card-note">
                    <a href="/images">{images_note}</a>
                </dd>
            </div>
            <div class="card">
                <dt>"Disk used"</dt>
                <dd class="card-value" title=bytes_title(total)>
                    {human_size(total)}
                </dd>
                <dd class="card-note">
                    {format!(
                        "Blobs {} · Layers {}",
                        human_size(info.blobs_size),
                        human_size(info.layers_size),
                    )}
                </dd>
            </div>
            <div class="card">
                <dt>"Snapshotter"</dt>
                <dd class="card-value">{info.snapshotter.clone()}</dd>
                <dd class="card-note">{snapshotter_note}</dd>
            </div>
            <div class="card">
                <dt>"Version"</dt>
                <dd class="card-value">{info.version.clone()}</dd>
                <dd class="card-note">"berth daemon"</dd>
            </div>
        </dl>
        <section class="panel" aria-labelledby="node-heading">
            <h2 id="node-heading">"Node"</h2>
            <dl class="facts">
                <dt>"Root directory"</dt>
                <dd>
                    <code>{info.root}</code>
                </dd>
                <dt>"Run directory"</dt>
                <dd>
                    <code>{info.run_dir}</code>
                </dd>
                <dt>"Content store (blobs)"</dt>
                <dd title=bytes_title(info.blobs_size)>{human_size(info.blobs_size)}</dd>
                <dt>"Unpacked layers"</dt>
                <dd title=bytes_title(info.layers_size)>{human_size(info.layers_size)}</dd>
            </dl>
        </section>
    }
}

/// `GET /api/v1/images`: the images table, one row per tag as in `docker images`.
#[component]
pub fn Images() -> impl IntoView {
    set_title("Images");
    let images = LocalResource::new(api::images);
    let refresh = Callback::new(move |()| images.refetch());
    view! {
        <PageHeader title="Images" on_refresh=refresh/>
        {move || match images.get() {
            None => view! { <Loading what="images"/> }.into_any(),
            Some(Err(error)) => view! { <ErrorPanel error retry=refresh/> }.into_any(),
            Some(Ok(list)) if list.is_empty() => view! { <NoImages/> }.into_any(),
            Some(Ok(list)) => view! { <ImageTable images=list/> }.into_any(),
        }}
    }
}

#[component]
fn ImageTable(images: Vec<ImageSummary>) -> impl IntoView {
    let count = images.len();
    let rows = format::image_rows(&images);
    let now = now();
    view! {
        <p class="summary">
            {match count {
                1 => "1 image".to_owned(),
                n => format!("{n} images"),
            }}
        </p>
        <div class="table-wrap" role="region" aria-label="Images" tabindex="0">
            <table class="data">
                <thead>
                    <tr>
                        <th scope="col">"Repository"</th>
                        <th scope="col">"Tag"</th>
                        <th scope="col">"Image ID"</th>
                        <th scope="col">"Created"</th>
                        <th scope="col" class="num">"Size"</th>
                    </tr>
                </thead>
                <tbody>
                    {rows.into_iter().map(|row| view! { <ImageTableRow row now/> }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn ImageTableRow(row: ImageRow, now: DateTime<Utc>) -> impl IntoView {
    let none = |text: &str| text == format::NONE;
    let repository_class = if none(&row.repository) { "none" } else { "repo" };
    let tag_class = if none(&row.tag) { "none" } else { "tag" };
    let ago = format::time_ago(&row.created, now);
    view! {
        <tr>
            <td class=repository_class data-label="Repository" title=row.full_repository>
                {row.repository.clone()}
            </td>
            <td class=tag_class data-label="Tag">{row.tag.clone()}</td>
            <td data-label="Image ID">
                <code class="id" title=row.id.clone()>
                    {format::short_id(&row.id).to_owned()}
                </code>
            </td>
            <td data-label="Created">
                <time datetime=row.created.clone() title=row.created>
                    {ago}
                </time>
            </td>
            <td class="num" data-label="Size" title=bytes_title(row.size)>
                {human_size(row.size)}
            </td>
        </tr>
    }
}

#[component]
fn NoImages() -> impl IntoView {
    view! {
        <div class="state empty">
            <h2>"No images yet"</h2>
            <p>
                "Import one with " <code>"berth import rootfs.tar busybox:latest"</code>
                ", or load an image archive with " <code>"berth load -i image.tar"</code> "."
            </p>
        </div>
    }
}

/// A page's title with its actions.
#[component]
fn PageHeader(title: &'static str, on_refresh: Callback<()>) -> impl IntoView {
    view! {
        <div class="page-header">
            <h1>{title}</h1>
            <button type="button" class="button" on:click=move |_| on_refresh.run(())>
                "Refresh"
            </button>
        </div>
    }
}

/// Shown until the first answer arrives.
#[component]
fn Loading(what: &'static str) -> impl IntoView {
    view! {
        <div class="state loading" role="status" aria-live="polite">
            <span class="spinner" aria-hidden="true"></span>
            {format!("Loading {what}…")}
        </div>
    }
}

/// Why a page has nothing to show, in words a user can act on, with a way to try again.
#[component]
fn ErrorPanel(error: ApiError, retry: Callback<()>) -> impl IntoView {
    let (heading, explanation, detail) = match error {
        ApiError::Unreachable(detail) => (
            "Cannot reach the berth daemon",
            view! {
                "The page got no answer from the daemon that serves it. Check that "
                <code>"berth serve"</code> " is running, then try again."
            }
            .into_any(),
            detail,
        ),
        ApiError::Status { status, message } => {
            ("The daemon reported an error", message.into_any(), format!("HTTP {status}"))
        }
        ApiError::Unexpected(detail) => (
            "Unexpected answer from the daemon",
            "The answer is not what this page understands; the daemon and the page may come \
             from different versions of berth."
                .into_any(),
            detail,
        ),
    };
    view! {
        <div class="state error" role="alert">
            <h2>{heading}</h2>
            <p>{explanation}</p>
            <p class="detail">
                <code>{detail}</code>
            </p>
            <button type="button" class="button" on:click=move |_| retry.run(())>
                "Try again"
            </button>
        </div>
    }
}

/// Any path no page claims.
#[component]
pub fn NotFound() -> impl IntoView {
    set_title("Not found");
    view! {
        <div class="state empty">
            <h1>"Page not found"</h1>
            <p>
                "There is no page here. Go to the " <a href="/">"overview"</a> "."
            </p>
        </div>
    }
}

/// Exact size for a tooltip: `4261000 bytes`.
fn bytes_title(bytes: u64) -> String {
    format!("{bytes} bytes")
}
