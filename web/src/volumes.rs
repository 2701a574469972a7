//! Volumes: the list with what uses each, create, one volume's details, remove and prune.
//! Follows the event feed.

use std::collections::BTreeMap;

use berth_types::auth::Role;
use berth_types::{ContainerSummary, VolumeCreate, VolumeInspect, VolumePruneReport};
use gloo_net::http::Method;
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_params_map};

use crate::api::{self, enc};
use crate::containers::plural;
use crate::format::{self, human_size, short_volume_name};
use crate::pages::{
    field_error, field_invalid, followed, now, on_created, remove_and_leave, remove_row, set_title,
    CreateActions, ErrorPanel, ListStates, LiveBadge, Loading, NoticeLine, PageHeader,
};
use crate::run_options::valid_volume_name;

/// Checks a new volume's name (empty: the daemon generates one) and labels (`key=value` lines).
pub fn validate(name: &str, labels: &str) -> Result<VolumeCreate, Vec<(&'static str, String)>> {
    let mut errors = Vec::new();
    let name = name.trim();
    if !name.is_empty() && !valid_volume_name(name) {
        errors.push((
            "name",
            format!("\"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed"),
        ));
    }
    let mut map = BTreeMap::new();
    for line in labels.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match line.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                map.insert(k.trim().to_owned(), v.to_owned());
            }
            _ => errors.push(("labels", format!("{line:?} is not key=value"))),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(VolumeCreate { name: name.to_owned(), driver: String::new(), labels: map })
}

/// Container IDs → names, for "used by" (a viewer sees only their teams' containers; others
/// stay IDs).
fn names_by_id() -> RwSignal<BTreeMap<String, String>> {
    let names = RwSignal::new(BTreeMap::new());
    leptos::task::spawn_local(async move {
        if let Ok(list) = api::get::<Vec<ContainerSummary>>("/api/v1/containers?all=1").await {
            names.set(list.into_iter().map(|c| (c.id, c.name)).collect());
        }
    });
    names
}

/// The containers `ids` as links by name (see [`names_by_id`]), `data-test` set where a test
/// looks for the list.
fn used_by_list(
    names: RwSignal<BTreeMap<String, String>>,
    ids: Vec<String>,
    test: Option<&'static str>,
) -> impl IntoView {
    move || {
        names.with(|names| {
            view! {
                <ul class="plain" data-test=test>
                    {ids.iter().map(|id| {
                        let label = names.get(id).cloned().unwrap_or_else(|| format::short_id(id).to_owned());
                        view! { <li><a href=format!("/containers/{}", enc(&label))>{label.clone()}</a></li> }
                    }).collect_view()}
                </ul>
            }
        })
    }
}

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
    let prune = move |_| {
        let all = prune_all.get_untracked();
        let question = if all {
            "Remove every volume no container uses, named ones included? Their data is lost."
        } else {
            "Remove every anonymous volume no container uses? Their data is lost."
        };
        if !window().confirm_with_message(question).unwrap_or(false) {
            return;
        }
        leptos::task::spawn_local(async move {
            let path = if all { "/api/v1/volumes/prune?all=true" } else { "/api/v1/volumes/prune" };
            let result: Result<VolumePruneReport, _> = api::call(Method::POST, path).await;
            notice.set(Some(match result {
                Ok(r) if r.volumes_deleted.is_empty() => (true, "No unused volume to remove.".to_owned()),
                Ok(r) => (
                    true,
                    format!(
                        "Removed {} volume{}, {} freed",
                        r.volumes_deleted.len(),
                        plural(r.volumes_deleted.len()),
                        human_size(r.space_reclaimed)
                    ),
                ),
                Err(e) => (false, e.message()),
            }));
            reload.try_run(());
        });
    };
    view! {
        <PageHeader title="Volumes" on_refresh=reload>
            <LiveBadge live=list.live/>
            {admin.then(|| view! {
                <label class="check-label inline">
                    <input type="checkbox" prop:checked=prune_all on:change=move |e| prune_all.set(event_target_checked(&e))/>
                    "named too"
                </label>
                <button type="button" class="button" on:click=prune>"Prune unused"</button>
            })}
            {operator.then(|| view! {
                <button type="button" class="button primary" data-test="create-volume" on:click=move |_| creating.set(true)>
                    "Create a volume"
                </button>
            })}
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
    view! {
        <p class="summary">{format!("{count} volume{}", plural(count))}</p>
        <div class="table-wrap" role="region" aria-label="Volumes" tabindex="0">
            <table class="data volumes">
                <thead>
                    <tr>
                        <th scope="col">"Name"</th>
                        <th scope="col">"Driver"</th>
                        <th scope="col">"Used by"</th>
                        {sized.then(|| view! { <th scope="col" class="num">"Size"</th> })}
                        <th scope="col">"Created"</th>
                        {operator.then(|| view! { <th scope="col"><span class="visually-hidden">"Actions"</span></th> })}
                    </tr>
                </thead>
                <tbody>
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
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn CreateVolume(on_close: Callback<()>, on_created: Callback<String>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let labels = RwSignal::new(String::new());
    let errors = RwSignal::new(Vec::<(&'static str, String)>::new());
    let busy = RwSignal::new(false);
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let request = match validate(&name.get_untracked(), &labels.get_untracked()) {
            Ok(r) => r,
            Err(e) => {
                errors.set(e);
                return;
            }
        };
        errors.set(Vec::new());
        busy.set(true);
        leptos::task::spawn_local(async move {
            let result: Result<VolumeInspect, _> =
                api::send_json(Method::POST, "/api/v1/volumes", &request).await;
            busy.set(false);
            match result {
                Ok(v) => {
                    on_created.try_run(v.name);
                }
                Err(e) => {
                    let field = if e.message().contains("label") { "labels" } else { "name" };
                    errors.set(vec![(field, e.message())]);
                }
            }
        });
    };
    let error = move |field| field_error(errors, "vol", field);
    let invalid = move |field| field_invalid(errors, field);
    view! {
        <form class="panel form" on:submit=submit novalidate aria-labelledby="create-volume-heading">
            <h2 id="create-volume-heading">"Create a volume"</h2>
            <div class="grid">
                <div class="field">
                    <label for="vol-name">"Name"</label>
                    <input id="vol-name" name="name" autofocus placeholder="generated when empty"
                        aria-invalid=invalid("name") aria-describedby="vol-name-error"
                        prop:value=name on:input=move |e| name.set(event_target_value(&e))/>
                    <p class="hint">"Letters, digits, _ . -"</p>
                    {error("name")}
                </div>
                <div class="field">
                    <label for="vol-labels">"Labels"</label>
                    <textarea id="vol-labels" name="labels" rows="2" placeholder="key=value, one a line"
                        aria-invalid=invalid("labels") aria-describedby="vol-labels-error"
                        prop:value=labels on:input=move |e| labels.set(event_target_value(&e))></textarea>
                    {error("labels")}
                </div>
            </div>
            <CreateActions on_close busy/>
        </form>
    }
}

/// One volume: where its data is, what uses it.
#[component]
pub fn VolumePage() -> impl IntoView {
    let params = use_params_map();
    let name = move || params.with(|p| p.get("name").unwrap_or_default());
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
                        <dt>"Labels"</dt><dd>{if v.labels.is_empty() { "none".to_owned() } else { v.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ") }}</dd>
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_form_rules() {
        let v = validate("data", "team=web\n\n a=b=c").unwrap();
        assert_eq!(v.name, "data");
        assert_eq!(v.labels.get("a").map(String::as_str), Some("b=c"));
        assert_eq!(validate("", "").unwrap().name, "", "the daemon names it");
        let e = validate("my data", "nolabel").unwrap_err();
        assert_eq!(e.iter().map(|(f, _)| *f).collect::<Vec<_>>(), ["name", "labels"]);
        assert!(e[0].1.contains("invalid characters"));
    }
}
