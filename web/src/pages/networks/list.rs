//! The networks list (/networks) with the create form and prune.

use berth_types::auth::Role;
use berth_types::{NetworkInspect, NetworkPruneReport};
use leptos::prelude::*;

use super::create::CreateNetwork;
use super::PREDEFINED;
use crate::client::api::enc;
use crate::client::live::{followed, now};
use crate::components::{
    on_created, prune, remove_row, set_title, CreateButton, ListStates, LiveBadge, NoticeLine, PageHeader,
    Table,
};
use crate::format::{self, dash, plural};

/// `GET /api/v1/networks` with the create form (operators) and prune (admins).
#[component]
pub fn Networks() -> impl IntoView {
    set_title("Networks");
    let session = crate::session();
    let operator = session.allows(Role::Operator);
    let admin = session.allows(Role::Admin);
    let list = followed::<Vec<NetworkInspect>>("/api/v1/networks".into(), &["network", "container"]);
    let reload = list.reload;
    let creating = RwSignal::new(false);
    let notice = RwSignal::new(None::<(bool, String)>);
    let prune_unused = move |_| {
        prune::<NetworkPruneReport>(
            "Remove every network no container uses (the predefined ones stay)?",
            "/api/v1/networks/prune",
            |r| {
                if r.networks_deleted.is_empty() {
                    "No unused network to remove.".to_owned()
                } else {
                    format!("Removed {}", r.networks_deleted.join(", "))
                }
            },
            notice,
            reload,
        )
    };
    view! {
        <PageHeader title="Networks" on_refresh=reload>
            <LiveBadge live=list.live/>
            {admin.then(|| view! { <button type="button" class="button" on:click=prune_unused>"Prune unused"</button> })}
            {operator.then(|| view! { <CreateButton label="Create a network" test="create-network" open=creating/> })}
        </PageHeader>
        {move || creating.get().then(|| view! {
            <CreateNetwork
                on_close=Callback::new(move |()| creating.set(false))
                on_created=on_created(creating, notice, reload, "network")
            />
        })}
        <NoticeLine notice/>
        <ListStates
            data=list.data
            what="networks"
            retry=reload
            empty_heading="No networks"
            empty_text="This daemon runs without a default bridge. Create a network to give containers addresses and names."
            table=move |networks| view! { <NetworkTable networks operator notice reload/> }
        />
    }
}

#[component]
fn NetworkTable(
    networks: Vec<NetworkInspect>,
    operator: bool,
    notice: RwSignal<Option<(bool, String)>>,
    reload: Callback<()>,
) -> impl IntoView {
    let count = networks.len();
    let now = now();
    view! {
        <p class="summary">{format!("{count} network{}", plural(count))}</p>
        <Table label="Networks" class="networks" columns=["Name", "Driver", "Subnet", "Gateway", "Containers", "Created"] numeric=&["Containers"] actions=operator>
            {networks
                .into_iter()
                .map(|n| {
                    let name = n.name.clone();
                    let removable = !PREDEFINED.contains(&n.name.as_str());
                    let remove = move |_| {
                        remove_row(
                            &format!("Remove network {name}?"),
                            format!("/api/v1/networks/{}", enc(&name)),
                            format!("Removed network {name}"),
                            notice,
                            reload,
                        )
                    };
                    view! {
                        <tr data-name=n.name.clone()>
                            <td data-label="Name">
                                <a href=format!("/networks/{}", enc(&n.name))>{n.name.clone()}</a>
                                <code class="id muted" title=n.id.clone()>{format::short_id(&n.id).to_owned()}</code>
                                {n.internal.then(|| view! { " " <span class="badge">"internal"</span> })}
                            </td>
                            <td data-label="Driver">{n.driver.clone()}</td>
                            <td data-label="Subnet"><code>{dash(&n.subnet)}</code></td>
                            <td data-label="Gateway"><code>{dash(&n.gateway)}</code></td>
                            <td data-label="Containers" class="num">{n.containers.len()}</td>
                            <td data-label="Created" title=n.created.clone()>{format::time_ago(&n.created, now)}</td>
                            {operator.then(|| view! {
                                <td class="row-actions">
                                    {removable.then(|| view! {
                                        <button type="button" class="button small danger" aria-label=format!("Remove network {}", n.name) on:click=remove>
                                            "Remove"
                                        </button>
                                    })}
                                </td>
                            })}
                        </tr>
                    }
                })
                .collect_view()}
        </Table>
    }
}
