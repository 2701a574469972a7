//! The create form: name, subnet, gateway, internal; checked with Docker's rules and wording.

use std::net::Ipv4Addr;

use berth_types::name::{check_object_name, ObjectKind};
use berth_types::{NetworkCreate, NetworkCreated};
use leptos::prelude::*;

use super::PREDEFINED;
use crate::components::{error_field, field_error, field_invalid, send_create, CreateActions};

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
    } else if let Err(e) = check_object_name(ObjectKind::Network, name) {
        errors.push(("name", e.to_string()));
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

/// The request fields a daemon's refusal may name, and the form fields they are shown under.
const SERVER_FIELDS: &[(&str, &str)] = &[("name", "name"), ("subnet", "subnet"), ("gateway", "gateway")];

/// Which field a daemon's refusal is about, from its words (for a daemon that names none).
fn field_of_error(message: &str) -> &'static str {
    let lower = message.to_ascii_lowercase();
    if lower.contains("gateway") {
        "gateway"
    } else if lower.contains("subnet") || lower.contains("overlap") || lower.contains("pool") {
        "subnet"
    } else if lower.contains("name") || lower.contains("exists") {
        "name"
    } else {
        "form"
    }
}

/// The create form: name, subnet, gateway, internal.
#[component]
pub fn CreateNetwork(on_close: Callback<()>, on_created: Callback<String>) -> impl IntoView {
    let form = RwSignal::new(NetworkForm::default());
    let errors = RwSignal::new(Vec::<(&'static str, String)>::new());
    let busy = RwSignal::new(false);
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        send_create(
            validate(&form.get_untracked()),
            "/api/v1/networks",
            errors,
            busy,
            |request: &NetworkCreate, _: NetworkCreated| request.name.clone(),
            |e| error_field(e, SERVER_FIELDS, field_of_error),
            on_created,
        );
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
