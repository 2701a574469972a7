//! One image (/images/:name): what it runs, its layers and its history.

use berth_types::{HistoryEntry, ImageInspect};
use leptos::prelude::*;

use crate::client::api::{self, enc};
use crate::client::live::now;
use crate::components::{set_title, ErrorPanel, Loading, Table};
use crate::format::{self, bytes_title, human_size};
use crate::pages::route_name;

/// One image: what it runs, its layers bottom first, and its history newest first.
#[component]
pub fn ImagePage() -> impl IntoView {
    let name = route_name();
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
            <Table label="Layers" columns=["#", "Digest", "Media type", "Size"] numeric=&["Size"]>
                {image.layers.iter().enumerate().map(|(i, l)| view! {
                    <tr>
                        <td data-label="#">{i + 1}</td>
                        <td data-label="Digest"><code title=l.diff_id.clone()>{l.digest.clone()}</code></td>
                        <td data-label="Media type">{l.media_type.clone()}</td>
                        <td class="num" data-label="Size" title=bytes_title(l.size)>{human_size(l.size)}</td>
                    </tr>
                }).collect_view()}
            </Table>
        </section>
        <section class="panel" aria-labelledby="history-heading">
            <h2 id="history-heading">"History"</h2>
            <Table label="History" columns=["Created", "Created by", "Size", "Comment"] numeric=&["Size"]>
                {history.into_iter().map(|h| view! {
                    <tr>
                        <td data-label="Created"><time title=h.created.clone()>{format::time_ago(&h.created, now)}</time></td>
                        <td data-label="Created by"><code class="command">{h.created_by.clone()}</code></td>
                        <td class="num" data-label="Size">{if h.empty_layer { "0B".to_owned() } else { human_size(h.size) }}</td>
                        <td data-label="Comment">{h.comment.clone()}</td>
                    </tr>
                }).collect_view()}
            </Table>
        </section>
    }
}
