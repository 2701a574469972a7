//! Networks: the list (driver, subnet, gateway, attached containers), create with a subnet,
//! one network's attached containers, remove and prune. Follows the event feed.

use std::net::Ipv4Addr;

use berth_types::auth::Role;
use berth_types::{NetworkCreate, NetworkCreated, NetworkInspect, NetworkPruneReport};
use gloo_net::http::Method;
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_params_map};

use crate::api::{self, enc};
use crate::containers::plural;
use crate::format;
use crate::pages::{
    field_error, field_invalid, followed, now, on_created, remove_and_leave, remove_row, set_title,
    CreateActions, ErrorPanel, ListStates, LiveBadge, Loading, NoticeLine, PageHeader,
};

/// Networks the daemon makes itself; they cannot be removed.
pub const PREDEFINED: [&str; 3] = ["bridge", "host", "none"];

/// What the create form holds, as typed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetworkForm {
    pub name: String,
    pub subnet: String,
    pub gateway: String,
    pub internal: bool,
}

/// `a.b.c.d/n` → (network address, prefix length).
pub fn parse_cidr(text: &str) -> Result<(Ipv4Addr, u8), String> {
    let (address, prefix) = text.split_once('/').ok_or_else(|| format!("invalid CIDR address: {text}"))?;
    let address: Ipv4Addr = address.parse().map_err(|_| format!("invalid CIDR address: {text}"))?;
    let prefix: u8 =
        prefix.parse().ok().filter(|p| *p <= 32).ok_or_else(|| format!("invalid CIDR address: {text}"))?;
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
    let network = Ipv4Addr::from(u32::from(address) & mask);
    if network != address {
        return Err(format!("invalid subnet {text}: it should be {network}/{prefix}"));
    }
    if prefix > 30 {
        return Err(format!("invalid subnet {text}: a /{prefix} leaves no address for containers"));
    }
    Ok((network, prefix))
}

/// Checks the form (Docker's rules and wording) and builds the request; errors by field.
pub fn validate(form: &NetworkForm) -> Result<NetworkCreate, Vec<(&'static str, String)>> {
    let mut errors = Vec::new();
    let name = form.name.trim();
    if name.is_empty() {
        errors.push(("name", "a name is required".to_owned()));
    } else if !name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        errors.push((
            "name",
            format!(
                "invalid network name {name:?}: letters, digits and _ . - (starting with a letter or digit)"
            ),
        ));
    } else if PREDEFINED.contains(&name) {
        errors.push(("name", format!("network with name {name} already exists")));
    }
    let subnet = form.subnet.trim();
    let parsed = if subnet.is_empty() {
        None
    } else {
        match parse_cidr(subnet) {
            Ok(p) => Some(p),
            Err(e) => {
                errors.push(("subnet", e));
                None
            }
        }
    };
    let gateway = form.gateway.trim();
    if !gateway.is_empty() {
        match gateway.parse::<Ipv4Addr>() {
            Err(_) => errors.push(("gateway", format!("invalid gateway address: {gateway}"))),
            Ok(_) if subnet.is_empty() => errors
                .push(("gateway", "every ip-range or gateway must have a corresponding subnet".to_owned())),
            Ok(g) => {
                if let Some((network, prefix)) = parsed {
                    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
                    if u32::from(g) & mask != u32::from(network) {
                        errors.push(("gateway", format!("no matching subnet for gateway {gateway}")));
                    } else if u32::from(g) == u32::from(network) || u32::from(g) == u32::from(network) | !mask
                    {
                        errors.push((
                            "gateway",
                            format!("{gateway} is the subnet's network or broadcast address"),
                        ));
                    }
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(NetworkCreate {
        name: name.to_owned(),
        driver: "bridge".to_owned(),
        subnet: (!subnet.is_empty()).then(|| subnet.to_owned()),
        gateway: (!gateway.is_empty()).then(|| gateway.to_owned()),
        internal: form.internal,
        labels: Default::default(),
    })
}

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
    let prune = move |_| {
        if !window()
            .confirm_with_message("Remove every network no container uses (the predefined ones stay)?")
            .unwrap_or(false)
        {
            return;
        }
        leptos::task::spawn_local(async move {
            let result: Result<NetworkPruneReport, _> =
                api::call(Method::POST, "/api/v1/networks/prune").await;
            notice.set(Some(match result {
                Ok(r) if r.networks_deleted.is_empty() => (true, "No unused network to remove.".to_owned()),
                Ok(r) => (true, format!("Removed {}", r.networks_deleted.join(", "))),
                Err(e) => (false, e.message()),
            }));
            reload.try_run(());
        });
    };
    view! {
        <PageHeader title="Networks" on_refresh=reload>
            <LiveBadge live=list.live/>
            {admin.then(|| view! { <button type="button" class="button" on:click=prune>"Prune unused"</button> })}
            {operator.then(|| view! {
                <button type="button" class="button primary" data-test="create-network" on:click=move |_| creating.set(true)>
                    "Create a network"
                </button>
            })}
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
        <div class="table-wrap" role="region" aria-label="Networks" tabindex="0">
            <table class="data networks">
                <thead>
                    <tr>
                        <th scope="col">"Name"</th>
                        <th scope="col">"Driver"</th>
                        <th scope="col">"Subnet"</th>
                        <th scope="col">"Gateway"</th>
                        <th scope="col" class="num">"Containers"</th>
                        <th scope="col">"Created"</th>
                        {operator.then(|| view! { <th scope="col"><span class="visually-hidden">"Actions"</span></th> })}
                    </tr>
                </thead>
                <tbody>
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
                </tbody>
            </table>
        </div>
    }
}

/// `—` for an empty value.
pub fn dash(text: &str) -> String {
    if text.is_empty() {
        "—".to_owned()
    } else {
        text.to_owned()
    }
}

/// The create form: name, subnet, gateway, internal.
#[component]
fn CreateNetwork(on_close: Callback<()>, on_created: Callback<String>) -> impl IntoView {
    let form = RwSignal::new(NetworkForm::default());
    let errors = RwSignal::new(Vec::<(&'static str, String)>::new());
    let busy = RwSignal::new(false);
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let request = match validate(&form.get_untracked()) {
            Ok(r) => r,
            Err(e) => {
                errors.set(e);
                return;
            }
        };
        errors.set(Vec::new());
        busy.set(true);
        leptos::task::spawn_local(async move {
            let result: Result<NetworkCreated, _> =
                api::send_json(Method::POST, "/api/v1/networks", &request).await;
            busy.set(false);
            match result {
                Ok(_) => {
                    on_created.try_run(request.name);
                }
                Err(e) => {
                    let message = e.message();
                    let lower = message.to_ascii_lowercase();
                    let field = if lower.contains("gateway") {
                        "gateway"
                    } else if lower.contains("subnet") || lower.contains("overlap") || lower.contains("pool")
                    {
                        "subnet"
                    } else if lower.contains("name") || lower.contains("exists") {
                        "name"
                    } else {
                        "form"
                    };
                    errors.set(vec![(field, message)]);
                }
            }
        });
    };
    let error = move |field| field_error(errors, "net", field);
    let invalid = move |field| field_invalid(errors, field);
    view! {
        <form class="panel form" on:submit=submit novalidate aria-labelledby="create-network-heading">
            <h2 id="create-network-heading">"Create a network"</h2>
            <div class="grid three">
                <div class="field">
                    <label for="net-name">"Name"</label>
                    <input id="net-name" name="name" autofocus aria-invalid=invalid("name") aria-describedby="net-name-error"
                        prop:value=move || form.with(|f| f.name.clone())
                        on:input=move |e| form.update(|f| f.name = event_target_value(&e))/>
                    {error("name")}
                </div>
                <div class="field">
                    <label for="net-subnet">"Subnet"</label>
                    <input id="net-subnet" name="subnet" placeholder="picked when empty" aria-invalid=invalid("subnet") aria-describedby="net-subnet-error"
                        prop:value=move || form.with(|f| f.subnet.clone())
                        on:input=move |e| form.update(|f| f.subnet = event_target_value(&e))/>
                    <p class="hint">"e.g. 172.30.0.0/24"</p>
                    {error("subnet")}
                </div>
                <div class="field">
                    <label for="net-gateway">"Gateway"</label>
                    <input id="net-gateway" name="gateway" placeholder="the subnet's first address" aria-invalid=invalid("gateway") aria-describedby="net-gateway-error"
                        prop:value=move || form.with(|f| f.gateway.clone())
                        on:input=move |e| form.update(|f| f.gateway = event_target_value(&e))/>
                    {error("gateway")}
                </div>
            </div>
            <label class="check-label">
                <input type="checkbox" name="internal"
                    prop:checked=move || form.with(|f| f.internal)
                    on:change=move |e| form.update(|f| f.internal = event_target_checked(&e))/>
                "Internal: no traffic leaves the network"
            </label>
            {error("form")}
            <CreateActions on_close busy/>
        </form>
    }
}

/// One network: its facts and the containers attached to it.
#[component]
pub fn NetworkPage() -> impl IntoView {
    let params = use_params_map();
    let name = move || params.with(|p| p.get("name").unwrap_or_default());
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
                        <dt>"Labels"</dt><dd>{if n.labels.is_empty() { "none".to_owned() } else { n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ") }}</dd>
                    </dl>
                    <section class="panel" aria-labelledby="attached-heading">
                        <h2 id="attached-heading">"Attached containers"</h2>
                        {if attached.is_empty() {
                            view! { <p class="muted">"No container is attached."</p> }.into_any()
                        } else {
                            view! {
                                <div class="table-wrap" role="region" aria-label="Attached containers" tabindex="0">
                                    <table class="data" data-test="attached">
                                        <thead>
                                            <tr>
                                                <th scope="col">"Container"</th>
                                                <th scope="col">"Address"</th>
                                                <th scope="col">"MAC"</th>
                                                <th scope="col">"Aliases"</th>
                                                {operator.then(|| view! { <th scope="col"><span class="visually-hidden">"Actions"</span></th> })}
                                            </tr>
                                        </thead>
                                        <tbody>
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
                                        </tbody>
                                    </table>
                                </div>
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

#[cfg(test)]
mod tests {
    use super::*;

    fn form(name: &str, subnet: &str, gateway: &str) -> NetworkForm {
        NetworkForm { name: name.into(), subnet: subnet.into(), gateway: gateway.into(), internal: false }
    }

    #[test]
    fn create_form_rules() {
        let ok = validate(&form("backend", "172.30.0.0/24", "172.30.0.1")).unwrap();
        assert_eq!(ok.subnet.as_deref(), Some("172.30.0.0/24"));
        assert_eq!(ok.gateway.as_deref(), Some("172.30.0.1"));
        assert_eq!(validate(&form("b", "", "")).unwrap().subnet, None);
        let fields = |f: NetworkForm| validate(&f).unwrap_err();
        assert_eq!(fields(form("", "", ""))[0].0, "name");
        assert!(fields(form("bridge", "", ""))[0].1.contains("already exists"));
        assert!(fields(form("-x", "", ""))[0].1.contains("invalid network name"));
        assert_eq!(
            fields(form("n", "172.30.0.5/24", ""))[0].1,
            "invalid subnet 172.30.0.5/24: it should be 172.30.0.0/24"
        );
        assert!(fields(form("n", "172.30.0.0/33", ""))[0].1.contains("invalid CIDR"));
        assert!(fields(form("n", "10.0.0.0", ""))[0].1.contains("invalid CIDR"));
        assert!(fields(form("n", "", "10.0.0.1"))[0].1.contains("corresponding subnet"));
        assert!(fields(form("n", "10.0.0.0/24", "10.0.1.1"))[0].1.contains("no matching subnet"));
        assert!(fields(form("n", "10.0.0.0/24", "10.0.0.255"))[0].1.contains("broadcast"));
    }
}
