//! Docker Engine API: networks — list, inspect, create, connect, disconnect, remove, prune.
//!
//! berth's networks are local bridges (and the pre-defined `bridge`, `host` and `none`). What a
//! create asks for beyond that (another driver, IPv6, several subnets, driver options) is
//! refused with 400 naming the field, rather than silently made as something else.

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_types::network::{
    NetworkConnect, NetworkCreate, NetworkDisconnect, NetworkInspect as BerthNetwork,
};
use bollard_stubs::models::{
    ConfigReference, EndpointResource, Ipam, IpamConfig, NetworkConnectRequest, NetworkCreateResponse,
    NetworkDisconnectRequest, NetworkInspect, NetworkPruneResponse,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::images::labels_match;
use super::query::DockerQuery;
use super::{DockerJson, DockerState};
use crate::serve::error::ApiError;
use crate::serve::ops::{self, Caller};

pub fn routes() -> Router<DockerState> {
    Router::new()
        .route("/networks", get(list))
        .route("/networks/create", post(create))
        .route("/networks/prune", post(prune))
        .route("/networks/{id}", get(inspect).delete(remove))
        .route("/networks/{id}/connect", post(connect))
        .route("/networks/{id}/disconnect", post(disconnect))
}

/// The networks dockerd makes itself, which cannot be removed.
const PREDEFINED: [&str; 3] = ["bridge", "host", "none"];

/// An endpoint's ID: berth keeps none, so one is derived from the network and the container
/// (stable across calls, unique per attachment).
fn endpoint_id(network: &str, container: &str) -> String {
    hex::encode(Sha256::digest(format!("{network}/{container}").as_bytes()))
}

/// berth's network in Docker's shape; `with_containers`: the attached containers too (inspect;
/// dockerd's list leaves them out).
fn network_answer(network: BerthNetwork, with_containers: bool) -> NetworkInspect {
    let config = (!network.subnet.is_empty()).then(|| IpamConfig {
        subnet: Some(network.subnet.clone()),
        gateway: (!network.gateway.is_empty()).then(|| network.gateway.clone()),
        ..Default::default()
    });
    let containers = with_containers.then(|| {
        network
            .containers
            .iter()
            .map(|(id, endpoint)| {
                let resource = EndpointResource {
                    name: Some(endpoint.name.clone()),
                    endpoint_id: Some(endpoint_id(&network.id, id)),
                    mac_address: Some(endpoint.mac_address.clone()),
                    ipv4_address: Some(endpoint.ipv4_address.clone()),
                    ipv6_address: Some(String::new()),
                };
                (id.clone(), resource)
            })
            .collect()
    });
    NetworkInspect {
        name: Some(network.name),
        id: Some(network.id),
        created: Some(if network.created.is_empty() {
            "0001-01-01T00:00:00Z".into()
        } else {
            network.created
        }),
        scope: Some(network.scope),
        driver: Some(network.driver),
        enable_ipv4: Some(true),
        enable_ipv6: Some(false),
        ipam: Some(Ipam {
            driver: Some("default".into()),
            config: Some(config.into_iter().collect()),
            options: Some(HashMap::new()),
        }),
        internal: Some(network.internal),
        attachable: Some(false),
        ingress: Some(false),
        config_from: Some(ConfigReference { network: Some(String::new()) }),
        config_only: Some(false),
        containers: Some(containers.unwrap_or_default()),
        options: Some(HashMap::new()),
        labels: Some(network.labels.into_iter().collect()),
        ..Default::default()
    }
}

/// The filters `GET /networks` takes.
#[derive(Debug, Default, PartialEq)]
struct NetworkFilters {
    /// Parts of names (dockerd matches names by substring).
    names: Vec<String>,
    /// ID prefixes.
    ids: Vec<String>,
    labels: Vec<String>,
    drivers: Vec<String>,
    /// `custom` or `builtin`.
    types: Vec<String>,
    dangling: Option<bool>,
    scopes: Vec<String>,
}

impl NetworkFilters {
    fn parse(pairs: &[String]) -> Result<NetworkFilters, ApiError> {
        let mut f = NetworkFilters::default();
        for pair in pairs {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = value.to_string();
            match key {
                "name" => f.names.push(value),
                "id" => f.ids.push(value),
                "label" => f.labels.push(value),
                "driver" => f.drivers.push(value),
                "scope" => f.scopes.push(value),
                "type" => match value.as_str() {
                    "custom" | "builtin" => f.types.push(value),
                    _ => return Err(ApiError::bad_request(format!("Invalid filter: 'type'='{value}'"))),
                },
                "dangling" => {
                    f.dangling = Some(match value.as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(ApiError::bad_request(format!("Invalid filter 'dangling={value}'"))),
                    })
                }
                _ => return Err(ApiError::bad_request(format!("Invalid filter '{key}'"))),
            }
        }
        Ok(f)
    }

    fn keep(&self, n: &BerthNetwork) -> bool {
        let builtin = PREDEFINED.contains(&n.name.as_str());
        let any =
            |list: &[String], test: &dyn Fn(&str) -> bool| list.is_empty() || list.iter().any(|v| test(v));
        any(&self.names, &|v| n.name.contains(v))
            && any(&self.ids, &|v| n.id.starts_with(v))
            && any(&self.drivers, &|v| n.driver == v)
            && any(&self.scopes, &|v| n.scope == v)
            && any(&self.types, &|v| (v == "builtin") == builtin)
            && labels_match(&n.labels.clone().into_iter().collect(), &self.labels)
            // Dangling: a network of one's own that no container uses.
            && self.dangling.is_none_or(|d| d == (!builtin && n.containers.is_empty()))
    }
}

async fn list(
    State(state): State<DockerState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<NetworkInspect>>, ApiError> {
    let query = DockerQuery::parse(query.as_deref());
    let filters = NetworkFilters::parse(&query.filters()?)?;
    let networks = ops::networks::list(&state.app, &caller).await?;
    Ok(Json(networks.into_iter().filter(|n| filters.keep(n)).map(|n| network_answer(n, false)).collect()))
}

async fn inspect(
    State(state): State<DockerState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<NetworkInspect>, ApiError> {
    Ok(Json(network_answer(ops::networks::inspect(&state.app, &caller, &id).await?, true)))
}

/// Docker's create body (`NetworkCreateRequest` with the fields older clients still send).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct CreateBody {
    name: String,
    driver: String,
    scope: String,
    internal: bool,
    attachable: bool,
    ingress: bool,
    config_only: bool,
    config_from: Option<ConfigReference>,
    #[serde(rename = "IPAM")]
    ipam: Option<Ipam>,
    #[serde(rename = "EnableIPv6")]
    enable_ipv6: Option<bool>,
    #[serde(rename = "EnableIPv4")]
    enable_ipv4: Option<bool>,
    options: HashMap<String, String>,
    labels: HashMap<String, String>,
    /// Deprecated: names are always checked.
    check_duplicate: Option<bool>,
}

fn unsupported(field: &str, why: &str) -> ApiError {
    ApiError::bad_request(format!("{field} is not supported by this daemon: {why}"))
}

/// Docker's create body as berth's; what berth cannot make is refused, naming the field.
fn create_request(body: CreateBody) -> Result<NetworkCreate, ApiError> {
    if body.name.trim().is_empty() {
        return Err(ApiError::bad_request("network name is required"));
    }
    match body.driver.as_str() {
        "" | "bridge" => {}
        other => return Err(unsupported("Driver", &format!("{other:?}: only bridge networks can be made"))),
    }
    if !matches!(body.scope.as_str(), "" | "local") {
        return Err(unsupported("Scope", "networks are local"));
    }
    if body.ingress {
        return Err(unsupported("Ingress", "there is no swarm"));
    }
    if body.config_only
        || body.config_from.as_ref().is_some_and(|c| c.network.as_deref().is_some_and(|n| !n.is_empty()))
    {
        return Err(unsupported("ConfigOnly", "configuration-only networks are not made"));
    }
    if body.enable_ipv6 == Some(true) {
        return Err(unsupported("EnableIPv6", "networks are IPv4 only"));
    }
    if body.enable_ipv4 == Some(false) {
        return Err(unsupported("EnableIPv4", "networks are IPv4 only"));
    }
    if let Some(key) = body.options.keys().min() {
        return Err(unsupported(&format!("Options {key:?}"), "bridge driver options cannot be set"));
    }
    // Attachable: every local bridge network can be joined by any container already.
    let _ = (body.attachable, body.check_duplicate);
    let (mut subnet, mut gateway) = (None, None);
    if let Some(ipam) = body.ipam {
        if !matches!(ipam.driver.as_deref(), None | Some("" | "default")) {
            return Err(unsupported("IPAM.Driver", "only the default IPAM driver"));
        }
        if ipam.options.as_ref().is_some_and(|o| !o.is_empty()) {
            return Err(unsupported("IPAM.Options", "IPAM options cannot be set"));
        }
        let configs = ipam.config.unwrap_or_default();
        if configs.len() > 1 {
            return Err(unsupported("IPAM.Config", "one subnet per network"));
        }
        if let Some(config) = configs.into_iter().next() {
            if config.ip_range.as_deref().is_some_and(|r| !r.is_empty()) {
                return Err(unsupported("IPAM.Config.IPRange", "addresses come from the whole subnet"));
            }
            if config.auxiliary_addresses.as_ref().is_some_and(|a| !a.is_empty()) {
                return Err(unsupported("IPAM.Config.AuxiliaryAddresses", "no addresses can be reserved"));
            }
            subnet = config.subnet.filter(|s| !s.is_empty());
            gateway = config.gateway.filter(|g| !g.is_empty());
            if gateway.is_some() && subnet.is_none() {
                return Err(ApiError::bad_request("IPAM.Config.Gateway needs a Subnet"));
            }
        }
    }
    Ok(NetworkCreate {
        name: body.name,
        driver: "bridge".into(),
        subnet,
        gateway,
        internal: body.internal,
        labels: body.labels.into_iter().collect(),
    })
}

/// `POST /networks/create` → 201 `{"Id", "Warning"}`.
async fn create(
    State(state): State<DockerState>,
    caller: Caller,
    DockerJson(body): DockerJson<Option<CreateBody>>,
) -> Result<Response, ApiError> {
    let request = body
        .ok_or_else(|| ApiError::bad_request("the network's settings are missing"))
        .and_then(create_request);
    let created = ops::networks::create(&state.app, &caller, request).await?;
    let answer = NetworkCreateResponse { id: created.id, warning: created.warnings.join("\n") };
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// Docker's connect body as berth's.
fn connect_request(body: NetworkConnectRequest) -> Result<NetworkConnect, ApiError> {
    if body.container.is_empty() {
        return Err(ApiError::bad_request("Container is required"));
    }
    let mut request = NetworkConnect { container: body.container, ..Default::default() };
    if let Some(endpoint) = body.endpoint_config {
        if endpoint.mac_address.as_deref().is_some_and(|m| !m.is_empty()) {
            return Err(unsupported(
                "EndpointConfig.MacAddress",
                "MAC addresses are derived from the IP address",
            ));
        }
        if endpoint.links.as_ref().is_some_and(|l| !l.is_empty()) {
            return Err(unsupported("EndpointConfig.Links", "use aliases"));
        }
        if endpoint.driver_opts.as_ref().is_some_and(|o| !o.is_empty()) {
            return Err(unsupported("EndpointConfig.DriverOpts", "no driver options"));
        }
        request.aliases = endpoint.aliases.unwrap_or_default();
        if let Some(ipam) = endpoint.ipam_config {
            if ipam.ipv6_address.as_deref().is_some_and(|a| !a.is_empty()) {
                return Err(unsupported("EndpointConfig.IPAMConfig.IPv6Address", "networks are IPv4 only"));
            }
            request.ipv4_address = ipam.ipv4_address.filter(|a| !a.is_empty());
        }
    }
    Ok(request)
}

/// `POST /networks/{id}/connect` → 200, as dockerd.
async fn connect(
    State(state): State<DockerState>,
    caller: Caller,
    Path(id): Path<String>,
    DockerJson(body): DockerJson<Option<NetworkConnectRequest>>,
) -> Result<StatusCode, ApiError> {
    let request =
        body.ok_or_else(|| ApiError::bad_request("Container is required")).and_then(connect_request);
    ops::networks::connect(&state.app, &caller, &id, request).await?;
    Ok(StatusCode::OK)
}

/// `POST /networks/{id}/disconnect` → 200.
async fn disconnect(
    State(state): State<DockerState>,
    caller: Caller,
    Path(id): Path<String>,
    DockerJson(body): DockerJson<Option<NetworkDisconnectRequest>>,
) -> Result<StatusCode, ApiError> {
    let request = body
        .filter(|b| !b.container.is_empty())
        .ok_or_else(|| ApiError::bad_request("Container is required"))
        .map(|b| NetworkDisconnect { container: b.container, force: b.force.unwrap_or(false) });
    ops::networks::disconnect(&state.app, &caller, &id, request).await?;
    Ok(StatusCode::OK)
}

/// `DELETE /networks/{id}` → 204; a pre-defined network is refused with 403, as dockerd.
async fn remove(
    State(state): State<DockerState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    match ops::networks::remove(&state.app, &caller, &id).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(e) if e.status == StatusCode::CONFLICT && e.message.contains("pre-defined network") => {
            Err(ApiError::forbidden(e.message))
        }
        Err(e) => Err(e),
    }
}

/// `POST /networks/prune`: every network no container uses; filters are refused (berth's prune
/// does not choose).
async fn prune(
    State(state): State<DockerState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<NetworkPruneResponse>, ApiError> {
    let query = DockerQuery::parse(query.as_deref());
    if let Some(filter) = query.filters()?.first() {
        return Err(ApiError::bad_request(format!(
            "Invalid filter '{filter}': this daemon's network prune takes no filters"
        )));
    }
    let report = ops::networks::prune(&state.app, &caller).await?;
    Ok(Json(NetworkPruneResponse { networks_deleted: Some(report.networks_deleted) }))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use berth_types::network::NetworkEndpoint;
    use bollard_stubs::models::{EndpointIpamConfig, EndpointSettings};

    use super::*;

    fn body(json: &str) -> CreateBody {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn create_bodies() {
        let r = create_request(body(
            r#"{"Name":"n","Driver":"bridge","Internal":true,"Attachable":true,"CheckDuplicate":true,
                "Labels":{"a":"b"},"IPAM":{"Driver":"default","Config":[{"Subnet":"10.9.0.0/24","Gateway":"10.9.0.1"}]},
                "Options":{}}"#,
        ))
        .unwrap();
        assert_eq!(r.name, "n");
        assert!(r.internal);
        assert_eq!(r.subnet.as_deref(), Some("10.9.0.0/24"));
        assert_eq!(r.gateway.as_deref(), Some("10.9.0.1"));
        assert_eq!(r.labels["a"], "b");
        assert_eq!(create_request(body(r#"{"Name":"n"}"#)).unwrap().subnet, None);

        for (json, field) in [
            (r#"{"Name":""}"#, "name"),
            (r#"{"Name":"n","Driver":"overlay"}"#, "Driver"),
            (r#"{"Name":"n","EnableIPv6":true}"#, "EnableIPv6"),
            (
                r#"{"Name":"n","Options":{"com.docker.network.bridge.name":"x"}}"#,
                "com.docker.network.bridge.name",
            ),
            (r#"{"Name":"n","IPAM":{"Driver":"other"}}"#, "IPAM.Driver"),
            (
                r#"{"Name":"n","IPAM":{"Config":[{"Subnet":"10.1.0.0/24"},{"Subnet":"10.2.0.0/24"}]}}"#,
                "IPAM.Config",
            ),
            (
                r#"{"Name":"n","IPAM":{"Config":[{"Subnet":"10.1.0.0/24","IPRange":"10.1.0.0/25"}]}}"#,
                "IPRange",
            ),
            (r#"{"Name":"n","IPAM":{"Config":[{"Gateway":"10.1.0.1"}]}}"#, "Gateway"),
            (r#"{"Name":"n","Ingress":true}"#, "Ingress"),
            (r#"{"Name":"n","Scope":"swarm"}"#, "Scope"),
        ] {
            let e = create_request(body(json)).unwrap_err();
            assert_eq!(e.status, 400, "{json}");
            assert!(e.message.contains(field), "{json}: {}", e.message);
        }
    }

    #[test]
    fn connect_bodies() {
        let body = NetworkConnectRequest {
            container: "c".into(),
            endpoint_config: Some(EndpointSettings {
                aliases: Some(vec!["db".into()]),
                ipam_config: Some(EndpointIpamConfig {
                    ipv4_address: Some("10.9.0.5".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        };
        let r = connect_request(body).unwrap();
        assert_eq!(r.aliases, ["db"]);
        assert_eq!(r.ipv4_address.as_deref(), Some("10.9.0.5"));
        assert_eq!(connect_request(NetworkConnectRequest::default()).unwrap_err().status, 400);
        let mac = NetworkConnectRequest {
            container: "c".into(),
            endpoint_config: Some(EndpointSettings {
                mac_address: Some("02:42:ac:11:00:02".into()),
                ..Default::default()
            }),
        };
        assert!(connect_request(mac).unwrap_err().message.contains("MacAddress"));
    }

    fn network(name: &str, containers: usize) -> BerthNetwork {
        BerthNetwork {
            id: format!("{name}0123456789"),
            name: name.into(),
            driver: if name == "host" { "host".into() } else { "bridge".into() },
            scope: "local".into(),
            created: "2026-01-01T00:00:00Z".into(),
            bridge: String::new(),
            subnet: "172.20.0.0/16".into(),
            gateway: "172.20.0.1".into(),
            internal: false,
            labels: BTreeMap::from([("team".to_string(), "a".to_string())]),
            containers: (0..containers)
                .map(|i| {
                    let endpoint = NetworkEndpoint {
                        name: format!("c{i}"),
                        ipv4_address: format!("172.20.0.{}/16", i + 2),
                        ..Default::default()
                    };
                    (format!("id{i}"), endpoint)
                })
                .collect(),
        }
    }

    #[test]
    fn network_filters() {
        let f =
            |pairs: &[&str]| NetworkFilters::parse(&pairs.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let (app, host, used) = (network("app_default", 0), network("host", 0), network("web", 1));
        assert!(f(&["name=default"]).unwrap().keep(&app));
        assert!(!f(&["name=web"]).unwrap().keep(&app));
        assert!(f(&["id=app_"]).unwrap().keep(&app));
        assert!(f(&["driver=host"]).unwrap().keep(&host));
        assert!(f(&["type=builtin"]).unwrap().keep(&host) && !f(&["type=builtin"]).unwrap().keep(&app));
        assert!(f(&["type=custom"]).unwrap().keep(&used));
        assert!(f(&["label=team=a"]).unwrap().keep(&app) && !f(&["label=team=b"]).unwrap().keep(&app));
        assert!(f(&["dangling=true"]).unwrap().keep(&app));
        assert!(!f(&["dangling=true"]).unwrap().keep(&used) && !f(&["dangling=true"]).unwrap().keep(&host));
        assert!(f(&["dangling=false"]).unwrap().keep(&used));
        for bad in ["type=x", "dangling=x", "colour=red"] {
            assert_eq!(f(&[bad]).unwrap_err().status, 400, "{bad}");
        }
    }

    /// Through the router: the pre-defined networks as dockerd lists them, refusals by name and
    /// with dockerd's status codes.
    #[tokio::test]
    async fn network_routes_through_the_router() {
        use axum::body::Body;

        use crate::serve::auth::Transport;
        use crate::serve::test_support::{call, json, setup};

        let s = setup().await;
        let app = crate::serve::docker::service(s.state.clone(), Transport::Tcp { tls: false });
        let (status, body) = call(&app, &s.alice, "GET", "/v1.45/networks", Body::empty()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let list: serde_json::Value = serde_json::from_str(&body).unwrap();
        let names: Vec<&str> = list.as_array().unwrap().iter().map(|n| n["Name"].as_str().unwrap()).collect();
        assert!(names.contains(&"host") && names.contains(&"none"), "{body}");
        let host_id =
            list.as_array().unwrap().iter().find(|n| n["Name"] == "host").unwrap()["Id"].as_str().unwrap();
        let (status, body) =
            call(&app, &s.alice, "GET", &format!("/networks/{}", &host_id[..12]), Body::empty()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = call(&app, &s.alice, "DELETE", "/networks/host", Body::empty()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let (status, body) = call(&app, &s.alice, "GET", "/networks/nosuch", Body::empty()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        let overlay = serde_json::json!({"Name": "o", "Driver": "overlay"});
        let (status, body) = call(&app, &s.alice, "POST", "/networks/create", json(overlay)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body.contains("Driver"), "{body}");
        let (status, body) = call(&app, &s.alice, "POST", "/networks/create", Body::empty()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let (status, body) =
            call(&app, &s.alice, "GET", "/networks?filters=%7B%22type%22%3A%5B%22x%22%5D%7D", Body::empty())
                .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }

    #[test]
    fn networks_in_dockers_shape() {
        let answer = network_answer(network("web", 1), true);
        let json = serde_json::to_value(&answer).unwrap();
        assert_eq!(json["Name"], "web");
        assert_eq!(json["Scope"], "local");
        assert_eq!(json["IPAM"]["Config"][0]["Subnet"], "172.20.0.0/16");
        assert_eq!(json["Containers"]["id0"]["IPv4Address"], "172.20.0.2/16");
        assert_eq!(json["Containers"]["id0"]["Name"], "c0");
        assert_eq!(json["Containers"]["id0"]["EndpointID"].as_str().unwrap().len(), 64);
        let listed = serde_json::to_value(network_answer(network("web", 1), false)).unwrap();
        assert_eq!(listed["Containers"], serde_json::json!({}));
        let none = network_answer(BerthNetwork { subnet: String::new(), ..network("none", 0) }, true);
        assert_eq!(none.ipam.unwrap().config, Some(vec![]));
    }
}
