//! One volume (/volumes/:name): where its data is, what uses it.

use berth_types::auth::Role;
use berth_types::VolumeInspect;
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use super::{names_by_id, used_by_list};
use crate::client::api::enc;
use crate::client::live::followed;
use crate::components::{remove_and_leave, set_title, ErrorPanel, LiveBadge, Loading, NoticeLine};
use crate::format::{human_size, labels_text, short_volume_name};
use crate::pages::route_name;

/// One volume: where its data is, what uses it.
#[component]
pub fn VolumePage() -> impl IntoView {
    let name = route_name();
    view! { {move || { let name = name(); view! { <VolumeView name/> } }} }
}

#[component]
fn VolumeView(name: String) -> impl IntoView {
    set_title(&short_volume_name(&name));
    let operator = crate::session().allows(Role::Operator);
    let volume =
        followed::<VolumeInspect>(format!("/api/v1/volumes/{}", enc(&name)), &["volume", "container"]);
    let reload = volume.reload;
    let names = names_by_id();
    let notice = RwSignal::new(None::<(bool, String)>);
    let navigate = use_navigate();
    let remove = move |name: String| {
        remove_and_leave(
            &format!("Remove volume {name}? Its data is lost."),
            format!("/api/v1/volumes/{}", enc(&name)),
            "/volumes",
            notice,
            navigate.clone(),
        )
    };
    view! {
        <nav class="breadcrumb" aria-label="Breadcrumb"><a href="/volumes">"Volumes"</a>" / "</nav>
        {move || match volume.data.get() {
            None => view! { <Loading what="the volume"/> }.into_any(),
            Some(Err(error)) => view! { <ErrorPanel error retry=reload/> }.into_any(),
            Some(Ok(v)) => {
                let remove = remove.clone();
                let name = v.name.clone();
                let in_use = !v.used_by.is_empty();
                let used_by = v.used_by.clone();
                view! {
                    <div class="page-header">
                        <h1 title=v.name.clone()>{short_volume_name(&v.name)}</h1>
                        <div class="page-actions">
                            <LiveBadge live=volume.live/>
                            {operator.then(|| view! {
                                <button type="button" class="button danger" disabled=in_use
                                    title=if in_use { "In use: remove its containers first" } else { "" }
                                    on:click=move |_| remove(name.clone())>"Remove"</button>
                            })}
                        </div>
                    </div>
                    <NoticeLine notice/>
                    <dl class="facts panel">
                        <dt>"Name"</dt><dd><code>{v.name.clone()}</code></dd>
                        <dt>"Driver"</dt><dd>{v.driver.clone()}</dd>
                        <dt>"Kind"</dt><dd>{if v.anonymous { "anonymous (made for one container)" } else { "named" }}</dd>
                        <dt>"Data on the node"</dt><dd><code>{v.mountpoint.clone()}</code></dd>
                        <dt>"Size"</dt><dd>{v.size.map(human_size).unwrap_or_else(|| "not measured".into())}</dd>
                        <dt>"Created"</dt><dd>{v.created.clone()}</dd>
                        <dt>"Labels"</dt><dd>{labels_text(&v.labels)}</dd>
                    </dl>
                    <section class="panel" aria-labelledby="used-heading">
                        <h2 id="used-heading">"Used by"</h2>
                        {if used_by.is_empty() {
                            view! { <p class="muted">"No container mounts it."</p> }.into_any()
                        } else {
                            used_by_list(names, used_by, Some("used-by")).into_any()
                        }}
                    </section>
                }
                .into_any()
            }
        }}
    }
}
