//! Networks: the default `bridge` network and user-defined bridge networks (a Linux bridge, a
//! subnet and its addresses each), the network namespace, veth pair and address of each
//! container, the embedded DNS server of user networks, and published ports.
//!
//! ```text
//! <root>/networks/<id>.json          a network's record
//! <root>/containers/<id>/network.json   the container's networks, addresses, ports, proxy
//! <root>/containers/<id>/{hosts,resolv.conf,hostname}  bind-mounted over the container's /etc
//! <run_dir>/netns/<container id>      the container's network namespace, pinned by a bind mount
//! ```
//!
//! Isolation and outbound NAT: containers on one network talk through the bridge (layer 2), and
//! published ports go through a userland proxy on the host side. Packets routed off a bridge
//! are governed by berth's nftables table (see [`firewall`]): a network that is not internal
//! reaches out through the host, masqueraded, and nothing else; an internal one reaches no
//! other interface. Only once those rules are in place does a bridge that is not internal get
//! `net.ipv4.conf.<bridge>.forwarding=1` (and the host `net.ipv4.ip_forward=1`); every other
//! bridge keeps forwarding off, so without nftables networks stay isolated, without NAT.

pub(crate) mod counters;
mod dns;
pub(crate) mod endpoint;
pub(crate) mod firewall;
pub(crate) mod netlink;
pub mod proxy;

use std::collections::BTreeMap;
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use berth_types::name::{check_object_name, ObjectKind};
use berth_types::network::{
    NetworkConnect, NetworkCreate, NetworkCreated, NetworkDisconnect, NetworkEndpoint, NetworkInspect,
    NetworkPruneReport,
};
use chrono::{DateTime, SecondsFormat, Utc};
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::{fsutil, Engine, EngineInner};

pub use endpoint::ContainerNetwork;

/// The default network's name, as Docker's.
pub const DEFAULT_NETWORK: &str = "bridge";
/// The default network's Linux bridge when the daemon does not name one (Docker's `docker0`).
pub const DEFAULT_BRIDGE: &str = "berth0";
/// Docker's default bridge subnet, used unless something on the host already has it.
const DEFAULT_SUBNET: &str = "172.17.0.0/16";

/// A network as the engine keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub id: String,
    pub name: String,
    pub driver: String,
    pub created: DateTime<Utc>,
    /// The Linux bridge device.
    pub bridge: String,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
}

impl NetworkRecord {
    /// Whether containers on it reach each other by name (user-defined networks; Docker's
    /// default `bridge` has no name resolution).
    pub fn has_dns(&self) -> bool {
        self.name != DEFAULT_NETWORK
    }
}

/// The networks of one engine.
pub struct NetworkStore {
    dir: PathBuf,
    netns_dir: PathBuf,
    /// The default network's bridge; `None` when the daemon runs with `--bridge none`.
    default_bridge: Option<String>,
    /// Serialises changes to records and address allocation.
    pub(crate) lock: Mutex<()>,
    /// Embedded DNS servers of user networks, by network ID.
    dns: Mutex<BTreeMap<String, dns::DnsServer>>,
    /// Whether berth's nftables rules are in place: bridges forward only then.
    routed: AtomicBool,
}

impl NetworkStore {
    pub(crate) fn open(root: &Path, run_dir: &Path, default_bridge: Option<String>) -> Result<NetworkStore> {
        let dir = root.join("networks");
        fsutil::create_private_dir(&dir)?;
        Ok(NetworkStore {
            dir,
            netns_dir: run_dir.join("netns"),
            default_bridge,
            lock: Mutex::new(()),
            dns: Mutex::new(BTreeMap::new()),
            routed: AtomicBool::new(false),
        })
    }

    /// Where container `id`'s network namespace is pinned while it is set up.
    pub fn netns_path(&self, id: &str) -> PathBuf {
        self.netns_dir.join(id)
    }

    /// Whether containers without `--network` get the default `bridge` network.
    pub fn has_default_bridge(&self) -> bool {
        self.default_bridge.is_some()
    }

    fn record_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Every network record (user networks and the default bridge).
    pub fn list(&self) -> Vec<NetworkRecord> {
        let mut records = Vec::new();
        let Ok(entries) = fs::read_dir(&self.dir) else { return records };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            match fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<NetworkRecord>(&b).map_err(|e| e.to_string()))
            {
                Ok(record) => records.push(record),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "skipping an unreadable network record")
                }
            }
        }
        records.sort_by(|a, b| a.created.cmp(&b.created).then(a.name.cmp(&b.name)));
        records
    }

    /// A network by name, full ID or unique ID prefix.
    pub fn resolve(&self, name: &str) -> Result<NetworkRecord> {
        let records = self.list();
        if let Some(r) = records.iter().find(|r| r.name == name || r.id == name) {
            return Ok(r.clone());
        }
        let matches: Vec<&NetworkRecord> =
            records.iter().filter(|r| !name.is_empty() && r.id.starts_with(name)).collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(Error::NetworkNotFound(name.to_string())),
            _ => Err(Error::InvalidInput(format!(
                "network {name} is ambiguous ({} matches found based on ID prefix)",
                matches.len()
            ))),
        }
    }

    fn save(&self, record: &NetworkRecord) -> Result<()> {
        let json = serde_json::to_vec_pretty(record).expect("network record serialises");
        fsutil::write_atomic(&self.record_path(&record.id), &json)
    }
}

/// Docker's IDs for its pre-defined networks are random; ours are stable, derived from the name.
fn predefined_id(name: &str) -> String {
    crate::digest::sha256_of(format!("berth-network:{name}").as_bytes()).digest().to_string()
}

/// Opens the networks: creates the default network's record and bridge when the daemon has one,
/// and starts the DNS servers of user networks.
pub(crate) fn open(engine: &Engine) -> Result<()> {
    let inner = engine.inner();
    let store = &inner.networks;
    if let Some(bridge) = store.default_bridge.clone() {
        let _guard = store.lock.lock().unwrap_or_else(|p| p.into_inner());
        let record = match store.list().into_iter().find(|r| r.name == DEFAULT_NETWORK) {
            Some(r) => r,
            None => {
                let taken = host_networks()?;
                let default: Ipv4Net = DEFAULT_SUBNET.parse().expect("valid default subnet");
                let subnet =
                    if taken.iter().any(|n| overlaps(n, &default)) { pick_subnet(&taken)? } else { default };
                let record = NetworkRecord {
                    id: predefined_id(DEFAULT_NETWORK),
                    name: DEFAULT_NETWORK.into(),
                    driver: "bridge".into(),
                    created: Utc::now(),
                    bridge: bridge.clone(),
                    subnet,
                    gateway: first_host(&subnet),
                    internal: false,
                    labels: BTreeMap::new(),
                };
                store.save(&record)?;
                record
            }
        };
        ensure_bridge(store, &record)?;
    }
    for record in store.list() {
        if record.has_dns() {
            if let Err(e) = ensure_bridge(store, &record).and_then(|()| start_dns(engine, &record)) {
                tracing::warn!(network = %record.name, error = %e, "setting up a network at start failed");
            }
        }
    }
    // Without networks there is nothing to route (and the host's rules are left alone).
    if !store.list().is_empty() {
        route(store);
    }
    Ok(())
}

/// Writes berth's nftables table for the networks there are now, then lets the bridges that
/// are not internal forward (and the host, `net.ipv4.ip_forward`, when there is one). When the
/// rules cannot be written, no bridge forwards: isolated, without outbound NAT, as said in the
/// log. The caller holds the store lock (or is the daemon's start).
fn route(store: &NetworkStore) {
    let records = store.list();
    let routed = match firewall::apply(&records) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "no outbound NAT: containers reach only their own networks");
            false
        }
    };
    // Setting ip_forward sets every interface's forwarding: the bridges' own values come after.
    if routed && records.iter().any(|r| !r.internal) {
        if let Err(e) = fs::write("/proc/sys/net/ipv4/ip_forward", "1") {
            tracing::warn!(error = %e, "enabling net.ipv4.ip_forward");
        }
    }
    store.routed.store(routed, Ordering::SeqCst);
    for record in &records {
        if let Err(e) = set_forwarding(store, record) {
            tracing::warn!(network = %record.name, error = %e, "setting the bridge's forwarding");
        }
    }
}

/// `net.ipv4.conf.<bridge>.forwarding`, checked for the device packets come in on: on only
/// for a network that is not internal, while berth's rules are in place (see [`route`]).
fn set_forwarding(store: &NetworkStore, record: &NetworkRecord) -> Result<()> {
    let on = store.routed.load(Ordering::SeqCst) && !record.internal;
    let sysctl = format!("/proc/sys/net/ipv4/conf/{}/forwarding", record.bridge);
    fs::write(&sysctl, if on { "1" } else { "0" }).context(|| format!("writing {sysctl}"))
}

/// Creates the network's bridge (if missing), with its gateway address, up, forwarding as
/// [`set_forwarding`] says.
fn ensure_bridge(store: &NetworkStore, record: &NetworkRecord) -> Result<()> {
    let (bridge, gateway, prefix) = (record.bridge.clone(), record.gateway, record.subnet.prefix_len());
    netlink::run(netlink::Netns::Current, move |handle| async move {
        netlink::ensure_bridge(&handle, &bridge, gateway, prefix).await
    })?;
    set_forwarding(store, record)
}

fn start_dns(engine: &Engine, record: &NetworkRecord) -> Result<()> {
    let mut servers = engine.inner.networks.dns.lock().unwrap_or_else(|p| p.into_inner());
    if servers.contains_key(&record.id) {
        return Ok(());
    }
    let server = dns::DnsServer::start(std::sync::Arc::downgrade(&engine.inner), record)?;
    servers.insert(record.id.clone(), server);
    Ok(())
}

fn stop_dns(inner: &EngineInner, id: &str) {
    inner.networks.dns.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
}

/// IPv4 networks on the host's interfaces and the engine's networks: what a new subnet avoids.
fn host_networks() -> Result<Vec<Ipv4Net>> {
    netlink::run(netlink::Netns::Current, |handle| async move { netlink::ipv4_networks(&handle).await })
}

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The first free subnet of Docker's default pools: 172.17-31.0.0/16, then 192.168.0-240.0/20.
fn pick_subnet(taken: &[Ipv4Net]) -> Result<Ipv4Net> {
    let candidates =
        (17..=31u8).map(|b| Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16).expect("valid prefix")).chain(
            (0..=240u8)
                .step_by(16)
                .map(|c| Ipv4Net::new(Ipv4Addr::new(192, 168, c, 0), 20).expect("valid prefix")),
        );
    for candidate in candidates {
        if !taken.iter().any(|t| overlaps(t, &candidate)) {
            return Ok(candidate);
        }
    }
    Err(Error::Conflict(
        "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network".into(),
    ))
}

fn first_host(subnet: &Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(subnet.network()) + 1)
}

/// Docker's rule for network names ([`check_object_name`]).
fn validate_network_name(name: &str) -> Result<()> {
    check_object_name(ObjectKind::Network, name)
        .map(drop)
        .map_err(|e| Error::InvalidField { field: "name", message: e.to_string() })
}

fn is_predefined(name: &str) -> bool {
    matches!(name, DEFAULT_NETWORK | "host" | "none")
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// A pre-defined network without a record (`host`, `none`) as `network ls` shows it.
fn pseudo_network(name: &str) -> NetworkInspect {
    NetworkInspect {
        id: predefined_id(name),
        name: name.into(),
        driver: if name == "host" { "host".into() } else { "null".into() },
        scope: "local".into(),
        created: String::new(),
        bridge: String::new(),
        subnet: String::new(),
        gateway: String::new(),
        internal: false,
        labels: BTreeMap::new(),
        containers: BTreeMap::new(),
    }
}

fn wire(record: &NetworkRecord, containers: BTreeMap<String, NetworkEndpoint>) -> NetworkInspect {
    NetworkInspect {
        id: record.id.clone(),
        name: record.name.clone(),
        driver: record.driver.clone(),
        scope: "local".into(),
        created: rfc3339(record.created),
        bridge: record.bridge.clone(),
        subnet: record.subnet.to_string(),
        gateway: record.gateway.to_string(),
        internal: record.internal,
        labels: record.labels.clone(),
        containers,
    }
}

impl Engine {
    /// `berth network create`: a bridge network with its own subnet (given or picked from
    /// Docker's default pools), its Linux bridge `br-<id12>` and its DNS server.
    pub async fn create_network(&self, request: NetworkCreate) -> Result<NetworkCreated> {
        let record = self.blocking(move |inner| create(inner, request)).await?;
        // Port 53 on the gateway may be taken (a DNS server on the host's wildcard address): the
        // network works without names then, and says so.
        let mut warnings = Vec::new();
        if let Err(e) = start_dns(self, &record) {
            tracing::warn!(network = %record.name, error = %e, "no embedded DNS server");
            warnings.push(format!(
                "containers on network {} will not resolve each other's names: {e}",
                record.name
            ));
        }
        Ok(NetworkCreated { id: record.id, warnings })
    }

    /// `berth network ls`: the user networks, the default `bridge` (when the daemon has one),
    /// `host` and `none`.
    pub async fn list_networks(&self) -> Result<Vec<NetworkInspect>> {
        self.blocking(|inner| {
            let attached = endpoint::attached_endpoints(inner);
            let mut out: Vec<NetworkInspect> = inner
                .networks
                .list()
                .iter()
                .map(|r| wire(r, attached.get(&r.id).cloned().unwrap_or_default()))
                .collect();
            out.push(pseudo_network("host"));
            out.push(pseudo_network("none"));
            Ok(out)
        })
        .await
    }

    /// `berth network inspect`.
    pub async fn inspect_network(&self, name: &str) -> Result<NetworkInspect> {
        let name = name.to_string();
        self.blocking(move |inner| {
            if matches!(name.as_str(), "host" | "none") {
                return Ok(pseudo_network(&name));
            }
            let record = match inner.networks.resolve(&name) {
                Ok(record) => record,
                // `host` and `none` by their IDs (or a prefix), as `network ls` shows them.
                Err(Error::NetworkNotFound(_)) if !name.is_empty() => {
                    match ["host", "none"].into_iter().find(|p| predefined_id(p).starts_with(&name)) {
                        Some(pseudo) => return Ok(pseudo_network(pseudo)),
                        None => return Err(Error::NetworkNotFound(name)),
                    }
                }
                Err(e) => return Err(e),
            };
            let attached = endpoint::attached_endpoints(inner);
            Ok(wire(&record, attached.get(&record.id).cloned().unwrap_or_default()))
        })
        .await
    }

    /// `berth network rm`: refused for the pre-defined networks and for a network that running
    /// containers are attached to; removes the bridge.
    pub async fn remove_network(&self, name: &str) -> Result<()> {
        let name = name.to_string();
        self.blocking(move |inner| remove(inner, &name)).await
    }

    /// `berth network connect`: attaches the container now if it runs, else at its next start.
    pub async fn connect_network(&self, network: &str, request: NetworkConnect) -> Result<()> {
        let record = self.inner().containers.resolve(&request.container)?;
        let lock = self.inner().containers.op_lock(&record.id);
        let _guard = lock.lock().await;
        let network = network.to_string();
        self.blocking(move |inner| endpoint::connect(inner, &record, &network, &request)).await
    }

    /// `berth network disconnect`.
    pub async fn disconnect_network(&self, network: &str, request: NetworkDisconnect) -> Result<()> {
        let record = self.inner().containers.resolve(&request.container)?;
        let lock = self.inner().containers.op_lock(&record.id);
        let _guard = lock.lock().await;
        let network = network.to_string();
        self.blocking(move |inner| endpoint::disconnect(inner, &record, &network, request.force)).await
    }

    /// `berth network prune`: removes the user networks no container uses.
    pub async fn prune_networks(&self) -> Result<NetworkPruneReport> {
        self.blocking(|inner| {
            let mut report = NetworkPruneReport::default();
            let used = endpoint::configured_networks(inner);
            for record in inner.networks.list() {
                if is_predefined(&record.name) || used.contains(&record.id) {
                    continue;
                }
                match remove(inner, &record.id) {
                    Ok(()) => report.networks_deleted.push(record.name),
                    // Attached in the meantime: not unused any more.
                    Err(Error::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(report)
        })
        .await
    }
}

fn create(inner: &EngineInner, request: NetworkCreate) -> Result<NetworkRecord> {
    let store = &inner.networks;
    validate_network_name(&request.name)?;
    if is_predefined(&request.name) {
        return Err(Error::Conflict(format!("network with name {} already exists", request.name)));
    }
    match request.driver.as_str() {
        "" | "bridge" => {}
        other => return Err(Error::NetworkNotFound(format!("plugin \"{other}\" not found"))),
    }
    let _guard = store.lock.lock().unwrap_or_else(|p| p.into_inner());
    let records = store.list();
    if records.iter().any(|r| r.name == request.name) {
        return Err(Error::Conflict(format!("network with name {} already exists", request.name)));
    }
    let mut taken = host_networks()?;
    taken.extend(records.iter().map(|r| r.subnet));
    let subnet = match request.subnet.as_deref().filter(|s| !s.is_empty()) {
        Some(text) => {
            let subnet: Ipv4Net = text
                .parse()
                .map_err(|_| Error::InvalidInput(format!("invalid subnet {text}: not an IPv4 CIDR")))?;
            if subnet.prefix_len() > 30 {
                return Err(Error::InvalidInput(format!("invalid subnet {text}: too small for containers")));
            }
            let subnet = subnet.trunc();
            if let Some(other) = records.iter().find(|r| overlaps(&r.subnet, &subnet)) {
                return Err(Error::Conflict(format!(
                    "invalid pool request: Pool overlaps with other one on this address space ({} of network {})",
                    other.subnet, other.name
                )));
            }
            subnet
        }
        None => pick_subnet(&taken)?,
    };
    let gateway = match request.gateway.as_deref().filter(|g| !g.is_empty()) {
        Some(text) => {
            let gateway: Ipv4Addr =
                text.parse().map_err(|_| Error::InvalidInput(format!("invalid gateway address {text}")))?;
            if !subnet.contains(&gateway) || gateway == subnet.network() || gateway == subnet.broadcast() {
                return Err(Error::InvalidInput(format!(
                    "no matching subnet for gateway {gateway}: it is not a host address of {subnet}"
                )));
            }
            gateway
        }
        None => first_host(&subnet),
    };
    let id = hex::encode(rand::random::<[u8; 32]>());
    let record = NetworkRecord {
        bridge: format!("br-{}", &id[..12]),
        id,
        name: request.name,
        driver: "bridge".into(),
        created: Utc::now(),
        subnet,
        gateway,
        internal: request.internal,
        labels: request.labels,
    };
    let made = ensure_bridge(store, &record).and_then(|()| store.save(&record));
    if let Err(e) = made {
        let bridge = record.bridge.clone();
        let _ =
            netlink::run(
                netlink::Netns::Current,
                move |h| async move { netlink::delete_link(&h, &bridge).await },
            );
        return Err(e);
    }
    route(store);
    Ok(record)
}

fn remove(inner: &EngineInner, name: &str) -> Result<()> {
    let store = &inner.networks;
    if is_predefined(name) {
        return Err(Error::Conflict(format!("{name} is a pre-defined network and cannot be removed")));
    }
    let _guard = store.lock.lock().unwrap_or_else(|p| p.into_inner());
    let record = store.resolve(name)?;
    if record.name == DEFAULT_NETWORK {
        return Err(Error::Conflict(format!(
            "{} is a pre-defined network and cannot be removed",
            record.name
        )));
    }
    if endpoint::attached_endpoints(inner).get(&record.id).is_some_and(|m| !m.is_empty()) {
        return Err(Error::Conflict(format!(
            "error while removing network: network {} id {} has active endpoints",
            record.name, record.id
        )));
    }
    stop_dns(inner, &record.id);
    let bridge = record.bridge.clone();
    netlink::run(netlink::Netns::Current, move |h| async move { netlink::delete_link(&h, &bridge).await })?;
    match fs::remove_file(store.record_path(&record.id)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("removing network {}", record.name), e)),
    }
    // The network's rules go with it.
    route(store);
    Ok(())
}

impl Engine {
    /// Releases container `id`'s network (see [`endpoint::release`]) off the reactor.
    pub(crate) async fn release_network(&self, id: &str) {
        let (inner, id) = (self.inner.clone(), id.to_string());
        // A runtime that shuts down cancels the task: the next release or the recovery at the
        // next open does the work then.
        let _ = tokio::task::spawn_blocking(move || endpoint::release(&inner, &id)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_are_picked_around_the_taken_ones() {
        let taken: Vec<Ipv4Net> = vec!["172.17.0.0/16".parse().unwrap(), "172.18.5.0/24".parse().unwrap()];
        assert_eq!(pick_subnet(&taken).unwrap().to_string(), "172.19.0.0/16");
        let all: Vec<Ipv4Net> = vec!["172.16.0.0/12".parse().unwrap()];
        assert_eq!(pick_subnet(&all).unwrap().to_string(), "192.168.0.0/20");
        let none_left: Vec<Ipv4Net> = vec!["0.0.0.0/0".parse().unwrap()];
        assert!(pick_subnet(&none_left).is_err());
    }

    #[test]
    fn network_names_follow_dockers_rule() {
        assert!(validate_network_name("my_net-1.a").is_ok());
        assert!(validate_network_name("-x").is_err());
        assert!(validate_network_name("a b").is_err());
        assert!(validate_network_name("").is_err());
    }
}
