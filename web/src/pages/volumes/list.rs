//! The volumes list (/volumes) with what uses each, the create form and prune.

use std::collections::BTreeMap;

use berth_types::auth::Role;
use berth_types::{VolumeInspect, VolumePruneReport};
use leptos::prelude::*;

use super::create::CreateVolume;
use super::{names_by_id, used_by_list};
use crate::client::api::enc;
use crate::client::live::{followed, now};
use crate::components::{
    on_created, prune, remove_row, set_title, CreateButton, ListStates, LiveBadge, NoticeLine, PageHeader,
    Table,
};
use crate::format::{self, human_size, plural, short_volume_name};

#[component]
pub fn Volumes() -> impl IntoView {
    set_title("Volumes");
    let session = crate::session();
    let operator = session.allows(Role::Operator);
    let admin = session.allows(Role::Admin);
    let list = followed::<Vec<VolumeInspect>>("/api/v1/volumes".into(), &["volume", "container"]);
    let reload = list.reload;
    let names = names_by_id();
    let creating = RwSignal::new(false);
    let notice = RwSignal::new(None::<(bool, String)>);
    let prune_all = RwSignal::new(false);
    let prune_unused = move |_| {
        let all = prune_all.get_untracked();
        let question = if all {
            "Remove every volume no container uses, named ones included? Their data is lost."
        } else {
            "Remove every anonymous volume no container uses? Their data is lost."
        };
        let path = if all { "/api/v1/volumes/prune?all=true" } else { "/api/v1/volumes/prune" };
        prune::<VolumePruneReport>(
            question,
            path,
            |r| {
                if r.volumes_deleted.is_empty() {
                    "No unused volume to remove.".to_owned()
                } else {
                    format!(
                        "Removed {} volume{}, {} freed",
                        r.volumes_deleted.len(),
                        plural(r.volumes_deleted.len()),
                        human_size(r.space_reclaimed)
                    )
                }
            },
            notice,
            reload,
        )
    };
    view! {
        <PageHeader title="Volumes" on_refresh=reload>
            <LiveBadge live=list.live/>
            {admin.then(|| view! {
                <label class="check-label inline">
                    <input type="checkbox" prop:checked=prune_all on:change=move |e| prune_all.set(event_target_checked(&e))/>
                    "named too"
                </label>
                <button type="button" class="button" on:click=prune_unused>"Prune unused"</button>
            })}
            {operator.then(|| view! { <CreateButton label="Create a volume" test="create-volume" open=creating/> })}
        </PageHeader>
        {move || creating.get().then(|| view! {
            <CreateVolume
                on_close=Callback::new(move |()| creating.set(false))
                on_created=on_created(creating, notice, reload, "volume")
            />
        })}
        <NoticeLine notice/>
        <ListStates
            data=list.data
            what="volumes"
            retry=reload
            empty_heading="No volumes yet"
            empty_text="Volumes keep data beyond a container's life. Create one here, or name one in the run form's mounts."
            table=move |volumes| view! { <VolumeTable volumes operator notice reload names/> }
        />
    }
}

#[component]
fn VolumeTable(
    volumes: Vec<VolumeInspect>,
    operator: bool,
    notice: RwSignal<Option<(bool, String)>>,
    reload: Callback<()>,
    names: RwSignal<BTreeMap<String, String>>,
) -> impl IntoView {
    let count = volumes.len();
    let now = now();
    // The daemon measures sizes only when asked; a column of dashes says nothing.
    let sized = volumes.iter().any(|v| v.size.is_some());
    let mut columns = vec!["Name", "Driver", "Used by"];
    if sized {
        columns.push("Size");
    }
    columns.push("Created");
    view! {
        <p class="summary">{format!("{count} volume{}", plural(count))}</p>
        <Table label="Volumes" class="volumes" columns=columns numeric=&["Size"] actions=operator>
            {volumes
                .into_iter()
                .map(|v| {
                    let name = v.name.clone();
                    let in_use = !v.used_by.is_empty();
                    let remove = move |_| {
                        remove_row(
                            &format!("Remove volume {name}? Its data is lost."),
                            format!("/api/v1/volumes/{}", enc(&name)),
                            format!("Removed volume {}", short_volume_name(&name)),
                            notice,
                            reload,
                        )
                    };
                    let used_by = v.used_by.clone();
                    view! {
                        <tr data-name=v.name.clone()>
                            <td data-label="Name">
                                <a href=format!("/volumes/{}", enc(&v.name)) title=v.name.clone()>{short_volume_name(&v.name)}</a>
                                {v.anonymous.then(|| view! { " " <span class="badge">"anonymous"</span> })}
                            </td>
                            <td data-label="Driver">{v.driver.clone()}</td>
                            <td data-label="Used by">
                                {if used_by.is_empty() {
                                    view! { <span class="muted">"not in use"</span> }.into_any()
                                } else {
                                    used_by_list(names, used_by, None).into_any()
                                }}
                            </td>
                            {sized.then(|| view! { <td data-label="Size" class="num">{v.size.map(human_size).unwrap_or_else(|| "—".into())}</td> })}
                            <td data-label="Created" title=v.created.clone()>{format::time_ago(&v.created, now)}</td>
                            {operator.then(|| view! {
                                <td class="row-actions">
                                    <button
                                        type="button"
                                        class="button small danger"
                                        aria-label=format!("Remove volume {}", v.name)
                                        title=if in_use { "In use: remove its containers first" } else { "" }
                                        disabled=in_use
                                        on:click=remove
                                    >
                                        "Remove"
                                    </button>
                                </td>
                            })}
                        </tr>
                    }
                })
                .collect_view()}
        </Table>
    }
}
