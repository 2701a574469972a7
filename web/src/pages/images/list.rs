//! The images list: one row per tag, with tag, push and remove, and the pull, push and build panels above it.

use berth_types::auth::Role;
use berth_types::{ImageSummary, TagRequest};
use gloo_net::http::Method;
use leptos::prelude::*;

use super::build::Build;
use super::transfer::Transfer;
use crate::client::api::{self, enc, ApiError};
use crate::client::live::now;
use crate::components::{set_title, ErrorPanel, Loading, PageHeader, Table};
use crate::format::{self, bytes_title, human_size, ImageRow};

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
        <Table label="Images" columns=["Repository", "Tag", "Image ID", "Created", "Size"] numeric=&["Size"] actions=operator>
            {rows.into_iter().map(|row| view! { <ImageTableRow row now operator refresh notice on_push/> }).collect_view()}
        </Table>
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
