//! One network (/networks/:name): its facts and the containers attached to it.

use berth_types::auth::Role;
use berth_types::NetworkInspect;
use gloo_net::http::Method;
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use super::PREDEFINED;
use crate::client::api::{self, enc};
use crate::client::live::followed;
use crate::components::{remove_and_leave, set_title, ErrorPanel, LiveBadge, Loading, NoticeLine, Table};
use crate::format::{self, dash, labels_text};
use crate::pages::route_name;

/// One network: its facts and the containers attached to it.
#[component]
pub fn NetworkPage() -> impl IntoView {
    let name = route_name();
    view! { {move || { let name = name(); view! { <NetworkView name/> } }} }
}

#[component]
fn NetworkView(name: String) -> impl IntoView {
    set_title(&name);
    let operator = crate::session().allows(Role::Operator);
    let network =
        followed::<NetworkInspect>(format!("/api/v1/networks/{}", enc(&name)), &["network", "container"]);
    let reload = network.reload;
    let notice = RwSignal::new(None::<(bool, String)>);
    let navigate = use_navigate();
    let remove = move |name: String| {
        remove_and_leave(
            &format!("Remove network {name}?"),
            format!("/api/v1/networks/{}", enc(&name)),
            "/networks",
            notice,
            navigate.clone(),
        )
    };
    let disconnect = move |network: String, container: String| {
        leptos::task::spawn_local(async move {
            let body = berth_types::NetworkDisconnect { container: container.clone(), force: false };
            let path = format!("/api/v1/networks/{}/disconnect", enc(&network));
            notice.set(Some(match api::act_json(Method::POST, &path, &body).await {
                Ok(()) => (true, format!("Disconnected {container}")),
                Err(e) => (false, e.message()),
            }));
            reload.try_run(());
        });
    };
    view! {
        <nav class="breadcrumb" aria-label="Breadcrumb"><a href="/networks">"Networks"</a>" / "</nav>
        {move || match network.data.get() {
            None => view! { <Loading what="the network"/> }.into_any(),
            Some(Err(error)) => view! { <ErrorPanel error retry=reload/> }.into_any(),
            Some(Ok(n)) => {
                let removable = operator && !PREDEFINED.contains(&n.name.as_str());
                let remove = remove.clone();
                let name = n.name.clone();
                let attached: Vec<(String, berth_types::NetworkEndpoint)> = n.containers.clone().into_iter().collect();
                let network_name = n.name.clone();
                view! {
                    <div class="page-header">
                        <h1>{n.name.clone()}</h1>
                        <div class="page-actions">
                            <LiveBadge live=network.live/>
                            {removable.then(|| view! {
                                <button type="button" class="button danger" on:click=move |_| remove(name.clone())>"Remove"</button>
                            })}
                        </div>
                    </div>
                    <NoticeLine notice/>
                    <dl class="facts panel">
                        <dt>"ID"</dt><dd><code>{n.id.clone()}</code></dd>
                        <dt>"Driver"</dt><dd>{format!("{} ({})", n.driver, n.scope)}</dd>
                        <dt>"Bridge device"</dt><dd><code>{dash(&n.bridge)}</code></dd>
                        <dt>"Subnet"</dt><dd><code>{dash(&n.subnet)}</code></dd>
                        <dt>"Gateway"</dt><dd><code>{dash(&n.gateway)}</code></dd>
                        <dt>"Internal"</dt><dd>{if n.internal { "yes: no traffic leaves it" } else { "no" }}</dd>
                        <dt>"Created"</dt><dd>{n.created.clone()}</dd>
                        <dt>"Labels"</dt><dd>{labels_text(&n.labels)}</dd>
                    </dl>
                    <section class="panel" aria-labelledby="attached-heading">
                        <h2 id="attached-heading">"Attached containers"</h2>
                        {if attached.is_empty() {
                            view! { <p class="muted">"No container is attached."</p> }.into_any()
                        } else {
                            view! {
                                <Table label="Attached containers" test="attached" columns=["Container", "Address", "MAC", "Aliases"] actions=operator>
                                    {attached.into_iter().map(|(id, e)| {
                                        let label = if e.name.is_empty() { format::short_id(&id).to_owned() } else { e.name.trim_start_matches('/').to_owned() };
                                        let network_name = network_name.clone();
                                        let target = label.clone();
                                        view! {
                                            <tr>
                                                <td data-label="Container"><a href=format!("/containers/{}", enc(&label))>{label.clone()}</a></td>
                                                <td data-label="Address"><code>{e.ipv4_address.clone()}</code></td>
                                                <td data-label="MAC"><code>{e.mac_address.clone()}</code></td>
                                                <td data-label="Aliases">{e.aliases.join(", ")}</td>
                                                {operator.then(|| view! {
                                                    <td class="row-actions">
                                                        <button type="button" class="button small" aria-label=format!("Disconnect {target}")
                                                            on:click=move |_| disconnect(network_name.clone(), target.clone())>
                                                            "Disconnect"
                                                        </button>
                                                    </td>
                                                })}
                                            </tr>
                                        }
                                    }).collect_view()}
                                </Table>
                            }
                            .into_any()
                        }}
                    </section>
                }
                .into_any()
            }
        }}
    }
}
