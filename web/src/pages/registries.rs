//! The registries page (/registries): the registries the caller may use, a search box over a
//! registry (its `/v1/search`, else its catalog), a repository's tags with size, platforms and
//! digest, and a pull of a tag with its per-layer progress (the images page's pull panel).

use berth_types::auth::Role;
use berth_types::{RegistryInfo, RemoteTag, SearchResult};
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
        leptos::task::spawn_local(async move {
            let path = format!("/api/v1/registry/tags?repository={}", enc(&name));
            tags.set(Some(api::get::<Vec<RemoteTag>>(&path).await.map_err(|e| e.message())));
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
                Some(Ok(list)) => {
                    let name = name.clone();
                    view! {
                        <Table label="Tags" columns=["Tag", "Size", "Platforms", "Digest"] numeric=&["Size"] actions=operator>
                            {list.into_iter().map(|t| {
                                let reference = format!("{name}:{}", t.tag);
                                view! {
                                    <tr data-name=t.tag.clone()>
                                        <td data-label="Tag">{t.tag.clone()}</td>
                                        <td data-label="Size" class="num">{human_size(t.size)}</td>
                                        <td data-label="Platforms">{t.platforms.join(", ")}</td>
                                        <td data-label="Digest"><code title=t.media_type.clone()>{t.digest.clone()}</code></td>
                                        {operator.then(|| view! {
                                            <td class="row-actions">
                                                <button type="button" class="button small" on:click=move |_| pulling.set(Some(reference.clone()))>"Pull"</button>
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
        {move || pulling.get().map(|reference| view! {
            <Transfer kind="pull" initial=reference on_done=Callback::new(|()| {}) on_close=Callback::new(move |()| pulling.set(None))/>
        })}
    }
}
