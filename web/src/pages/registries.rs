//! The registries page (/registries): the registries the caller may use, a search box over a
//! registry (its `/v1/search`, else its catalog), a repository's tags with size, platforms and
//! digest, a tag's manifest (each image's platform, config and layers), a pull of a tag with its
//! per-layer progress (the images page's pull panel) and the deletion of a tag (operators; where
//! the registry allows it).

use berth_types::auth::Role;
use berth_types::{RegistryInfo, RemoteImage, RemoteManifest, RemoteTag, SearchResult};
use gloo_net::http::Method;
use leptos::prelude::*;

use super::images::transfer::Transfer;
use crate::client::api::{self, enc};
use crate::components::{set_title, ErrorPanel, Loading, PageHeader, Table};
use crate::format::human_size;

/// `GET /api/v1/registries`, and search and browse below.
#[component]
pub fn Registries() -> impl IntoView {
    set_title("Registries");
    let operator = crate::session().allows(Role::Operator);
    let registries = LocalResource::new(|| api::get::<Vec<RegistryInfo>>("/api/v1/registries"));
    let refresh = Callback::new(move |()| registries.refetch());
    let term = RwSignal::new(String::new());
    let searched = RwSignal::new(None::<Result<Vec<SearchResult>, String>>);
    let repository = RwSignal::new(None::<String>);
    let tags = RwSignal::new(None::<Result<Vec<RemoteTag>, String>>);
    let pulling = RwSignal::new(None::<String>);
    // The tag whose manifest is shown, and what was read of it.
    let shown = RwSignal::new(None::<String>);
    let manifest = RwSignal::new(None::<Result<RemoteManifest, String>>);
    let notice = RwSignal::new(None::<(bool, String)>);

    let search = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let wanted = term.get_untracked().trim().to_owned();
        if wanted.is_empty() {
            return;
        }
        searched.set(None);
        leptos::task::spawn_local(async move {
            let path = format!("/api/v1/images/search?term={}", enc(&wanted));
            searched.set(Some(api::get::<Vec<SearchResult>>(&path).await.map_err(|e| e.message())));
        });
    };
    let browse = move |name: String| {
        repository.set(Some(name.clone()));
        tags.set(None);
        shown.set(None);
        leptos::task::spawn_local(async move {
            let path = format!("/api/v1/registry/tags?repository={}", enc(&name));
            tags.set(Some(match api::get::<Vec<RemoteTag>>(&path).await {
                // A registry knows no repository without tags: distribution answers NAME_UNKNOWN
                // once its last tag is deleted.
                Err(api::ApiError::Status { status: 404, .. }) => Ok(Vec::new()),
                other => other.map_err(|e| e.message()),
            }));
        });
    };
    let show = move |reference: String| {
        shown.set(Some(reference.clone()));
        manifest.set(None);
        leptos::task::spawn_local(async move {
            let path = format!("/api/v1/registry/manifest?reference={}", enc(&reference));
            manifest.set(Some(api::get::<RemoteManifest>(&path).await.map_err(|e| e.message())));
        });
    };
    let delete = move |name: String, reference: String| {
        if !window().confirm_with_message(&format!("Delete the tag {reference}?")).unwrap_or(false) {
            return;
        }
        leptos::task::spawn_local(async move {
            let path = format!("/api/v1/registry/manifest?reference={}", enc(&reference));
            let result = api::act(Method::DELETE, &path).await;
            notice.set(Some(match result {
                Ok(()) => (true, format!("Deleted {reference}")),
                Err(e) => (false, e.message()),
            }));
            browse(name);
        });
    };

    view! {
        <PageHeader title="Registries" on_refresh=refresh/>
        {move || match registries.get() {
            None => view! { <Loading what="registries"/> }.into_any(),
            Some(Err(error)) => view! { <ErrorPanel error retry=refresh/> }.into_any(),
            Some(Ok(list)) if list.is_empty() => view! {
                <p class="summary">"No registries added yet (admins: " <code>"berth registry add NAME HOST"</code> ")."</p>
            }.into_any(),
            Some(Ok(list)) => view! {
                <Table label="Registries" columns=["Name", "Host", "Insecure", "Team", "Logged in"]>
                    {list.into_iter().map(|r| {
                        let host = r.url.clone();
                        view! {
                            <tr data-name=r.name.clone()>
                                <td data-label="Name">{r.name.clone()}</td>
                                <td data-label="Host">
                                    <button type="button" class="link" on:click=move |_| term.set(format!("{host}/"))>{r.url.clone()}</button>
                                </td>
                                <td data-label="Insecure">{if r.insecure { "yes" } else { "no" }}</td>
                                <td data-label="Team">{r.team.clone().unwrap_or_else(|| "(all)".into())}</td>
                                <td data-label="Logged in">{if r.logged_in { "yes" } else { "no" }}</td>
                            </tr>
                        }
                    }).collect_view()}
                </Table>
            }.into_any(),
        }}
        <form class="search" role="search" on:submit=search>
            <label for="registry-search">"Search"</label>
            <input id="registry-search" type="search" placeholder="host:port/term" data-test="registry-search"
                prop:value=move || term.get() on:input=move |ev| term.set(event_target_value(&ev))/>
            <button type="submit" class="button primary">"Search"</button>
        </form>
        {move || searched.get().map(|result| match result {
            Err(message) => view! { <p class="notice failed" role="status">{message}</p> }.into_any(),
            Ok(found) if found.is_empty() => view! { <p class="summary">"Nothing found."</p> }.into_any(),
            Ok(found) => view! {
                <Table label="Search results" columns=["Name", "Description", "Stars", "Official"] numeric=&["Stars"]>
                    {found.into_iter().map(|r| {
                        let name = r.name.clone();
                        view! {
                            <tr data-name=r.name.clone()>
                                <td data-label="Name">
                                    <button type="button" class="link" on:click=move |_| browse(name.clone())>{r.name.clone()}</button>
                                </td>
                                <td data-label="Description">{r.description.clone()}</td>
                                <td data-label="Stars" class="num">{r.star_count}</td>
                                <td data-label="Official">{if r.is_official { "[OK]" } else { "" }}</td>
                            </tr>
                        }
                    }).collect_view()}
                </Table>
            }.into_any(),
        })}
        {move || repository.get().map(|name| view! {
            <h2>{format!("Tags of {name}")}</h2>
            {move || match tags.get() {
                None => view! { <Loading what="tags"/> }.into_any(),
                Some(Err(message)) => view! { <p class="notice failed" role="status">{message}</p> }.into_any(),
                Some(Ok(list)) if list.is_empty() => view! { <p class="summary">"No tags."</p> }.into_any(),
                Some(Ok(list)) => {
                    let name = name.clone();
                    view! {
                        <Table label="Tags" columns=["Tag", "Size", "Platforms", "Digest"] numeric=&["Size"] actions=operator>
                            {list.into_iter().map(|t| {
                                let reference = tag_reference(&name, &t.tag);
                                let (pull_ref, show_ref, delete_ref) = (reference.clone(), reference.clone(), reference);
                                let repository_name = name.clone();
                                view! {
                                    <tr data-name=t.tag.clone()>
                                        <td data-label="Tag">
                                            <button type="button" class="link" title="Manifest, config and layers"
                                                on:click=move |_| show(show_ref.clone())>{t.tag.clone()}</button>
                                        </td>
                                        <td data-label="Size" class="num">{human_size(t.size)}</td>
                                        <td data-label="Platforms">{t.platforms.join(", ")}</td>
                                        <td data-label="Digest"><code title=t.media_type.clone()>{t.digest.clone()}</code></td>
                                        {operator.then(|| view! {
                                            <td class="row-actions">
                                                <button type="button" class="button small" on:click=move |_| pulling.set(Some(pull_ref.clone()))>"Pull"</button>
                                                <button type="button" class="button small danger"
                                                    on:click=move |_| delete(repository_name.clone(), delete_ref.clone())>"Delete"</button>
                                            </td>
                                        })}
                                    </tr>
                                }
                            }).collect_view()}
                        </Table>
                    }.into_any()
                }
            }}
        })}
        {move || notice.get().map(|(ok, message)| view! {
            <p class=if ok { "notice" } else { "notice failed" } role="status">{message}</p>
        })}
        {move || shown.get().map(|reference| view! {
            <h2>{format!("Manifest of {reference}")}</h2>
            {move || match manifest.get() {
                None => view! { <Loading what="manifest"/> }.into_any(),
                Some(Err(message)) => view! { <p class="notice failed" role="status">{message}</p> }.into_any(),
                Some(Ok(m)) => view! { <ManifestView manifest=m/> }.into_any(),
            }}
        })}
        {move || pulling.get().map(|reference| view! {
            <Transfer kind="pull" initial=reference on_done=Callback::new(|()| {}) on_close=Callback::new(move |()| pulling.set(None))/>
        })}
    }
}

/// A tag's manifest: its digest and type, then each image's platform, config and layers.
#[component]
fn ManifestView(manifest: RemoteManifest) -> impl IntoView {
    view! {
        <dl class="facts" data-test="manifest">
            <dt>"Digest"</dt><dd><code>{manifest.digest.clone()}</code></dd>
            <dt>"Media type"</dt><dd>{manifest.media_type.clone()}</dd>
            <dt>"Size"</dt><dd>{human_size(manifest.images.iter().map(RemoteImage::size).sum())}</dd>
        </dl>
        {manifest.images.into_iter().map(|image| view! {
            <h3>{image_heading(&image)}</h3>
            <dl class="facts">
                <dt>"Manifest"</dt><dd><code title=image.media_type.clone()>{image.digest.clone()}</code></dd>
                <dt>"Config"</dt>
                <dd><code title=image.config.media_type.clone()>{image.config.digest.clone()}</code>
                    {format!(" ({})", human_size(image.config.size))}</dd>
                <dt>"Created"</dt><dd>{image.created.clone().unwrap_or_else(|| "-".into())}</dd>
                <dt>"Command"</dt><dd><code>{command_text(&image.command)}</code></dd>
            </dl>
            <Table label="Layers" columns=["#", "Digest", "Type", "Size"] numeric=&["#", "Size"]>
                {layer_rows(&image).into_iter().map(|row| view! {
                    <tr data-name=row.digest.clone()>
                        <td data-label="#" class="num">{row.number}</td>
                        <td data-label="Digest"><code title=row.digest.clone()>{short_digest(&row.digest)}</code></td>
                        <td data-label="Type" title=row.media_type.clone()>{row.kind}</td>
                        <td data-label="Size" class="num">{human_size(row.size)}</td>
                    </tr>
                }).collect_view()}
            </Table>
        }).collect_view()}
    }
}

/// `repository:tag` of a listed tag.
fn tag_reference(repository: &str, tag: &str) -> String {
    format!("{repository}:{tag}")
}

/// An image's heading: its platform and size.
fn image_heading(image: &RemoteImage) -> String {
    let platform = if image.platform.is_empty() { "image" } else { image.platform.as_str() };
    let layers = image.layers.len();
    format!("{platform}: {layers} layer{}, {}", if layers == 1 { "" } else { "s" }, human_size(image.size()))
}

/// A command as a shell would show it; `-` for none.
fn command_text(command: &[String]) -> String {
    if command.is_empty() {
        return "-".into();
    }
    command
        .iter()
        .map(|a| if a.is_empty() || a.contains(char::is_whitespace) { format!("{a:?}") } else { a.clone() })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `sha256:` and the first 12 hex digits.
fn short_digest(digest: &str) -> String {
    match digest.split_once(':') {
        Some((algorithm, hex)) => format!("{algorithm}:{}", &hex[..hex.len().min(12)]),
        None => digest.to_string(),
    }
}

/// One row of a layer table.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LayerRow {
    number: usize,
    digest: String,
    media_type: String,
    /// The layer's format from its media type: `tar+gzip`, `tar+zstd`, `tar`, ...
    kind: String,
    size: u64,
}

fn layer_rows(image: &RemoteImage) -> Vec<LayerRow> {
    image
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| LayerRow {
            number: i + 1,
            digest: l.digest.clone(),
            media_type: l.media_type.clone(),
            kind: layer_kind(&l.media_type),
            size: l.size,
        })
        .collect()
}

/// A layer's format from its media type (OCI's `...layer.v1.tar+gzip`, Docker's
/// `...rootfs.diff.tar.gzip`); another type as it is.
fn layer_kind(media_type: &str) -> String {
    for marker in [".layer.v1.", ".rootfs.diff.", ".rootfs.foreign.diff."] {
        if let Some(i) = media_type.find(marker) {
            return media_type[i + marker.len()..].replace("tar.gzip", "tar+gzip");
        }
    }
    media_type.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_types::RemoteBlob;

    fn blob(digest: &str, media_type: &str, size: u64) -> RemoteBlob {
        RemoteBlob { digest: digest.into(), media_type: media_type.into(), size }
    }

    fn image(platform: &str) -> RemoteImage {
        RemoteImage {
            digest: format!("sha256:{}", "a".repeat(64)),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            platform: platform.into(),
            config: blob("sha256:c", "application/vnd.oci.image.config.v1+json", 1000),
            created: None,
            command: vec!["sh".into(), "-c".into(), "echo hi".into()],
            layers: vec![
                blob(
                    &format!("sha256:{}", "1".repeat(64)),
                    "application/vnd.oci.image.layer.v1.tar+gzip",
                    2048,
                ),
                blob("sha256:2", "application/vnd.docker.image.rootfs.diff.tar.gzip", 1024),
            ],
        }
    }

    #[test]
    fn layers_are_numbered_with_their_format_and_size() {
        let rows = layer_rows(&image("linux/amd64"));
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].number, rows[0].kind.as_str(), rows[0].size), (1, "tar+gzip", 2048));
        assert_eq!((rows[1].number, rows[1].kind.as_str()), (2, "tar+gzip"));
        assert_eq!(layer_kind("application/vnd.oci.image.layer.v1.tar+zstd"), "tar+zstd");
        assert_eq!(layer_kind("application/vnd.oci.image.layer.v1.tar"), "tar");
        assert_eq!(layer_kind("application/x-custom"), "application/x-custom");
    }

    #[test]
    fn headings_digests_and_commands_read_as_docker_shows_them() {
        assert_eq!(image("linux/arm64/v8").size(), 1000 + 2048 + 1024);
        assert_eq!(
            image_heading(&image("linux/arm64/v8")),
            format!("linux/arm64/v8: 2 layers, {}", human_size(4072))
        );
        let mut one = image("");
        one.layers.truncate(1);
        assert!(image_heading(&one).starts_with("image: 1 layer, "));
        assert_eq!(short_digest(&format!("sha256:{}", "1".repeat(64))), "sha256:111111111111");
        assert_eq!(short_digest("sha256:2"), "sha256:2");
        assert_eq!(command_text(&image("").command), r#"sh -c "echo hi""#);
        assert_eq!(command_text(&[]), "-");
        assert_eq!(tag_reference("127.0.0.1:5000/team/app", "1"), "127.0.0.1:5000/team/app:1");
    }
}
