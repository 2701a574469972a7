//! A container's side of networking: its mode and networks (decided at create), its namespace,
//! veth pairs and addresses (made at start, released when it stops or goes), its `/etc/hosts`,
//! `/etc/resolv.conf` and `/etc/hostname`, and what inspect and ps show.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use berth_types::container::ContainerConfig;
use berth_types::network::{NetworkConnect, NetworkEndpoint, NetworkSettings, PortBinding, PublishedPort};
use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use super::{netlink, proxy, NetworkRecord, DEFAULT_NETWORK};
use crate::container::ContainerRecord;
use crate::error::{Error, IoContext, Result};
use crate::runtime::spec::NetworkNamespace;
use crate::{fsutil, EngineInner};

/// The file under the container's directory that holds its [`ContainerNetwork`].
const FILE: &str = "network.json";

/// A container's networking, kept in `<container dir>/network.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerNetwork {
    /// `none`, `host`, `container:<id>`, or `bridge` (attached to [`Self::networks`]).
    pub mode: String,
    /// What inspect shows as the network mode: `bridge`, `none`, `host`, `container:<id>` or the
    /// user network's name.
    pub network_mode: String,
    pub networks: Vec<Attachment>,
    /// The ports to publish (`-p`, and `-P`'s exposed ports on port 0).
    pub ports: Vec<PortBinding>,
    /// The ports published while the container runs, with the host ports actually bound.
    pub published: Vec<PublishedPort>,
    /// The port proxy while it runs.
    pub proxy_pid: i32,
    /// The pinned namespace while the network is set up.
    pub netns: Option<PathBuf>,
    pub hostname: String,
    /// The runtime makes the namespace with the container's process (`none`): the engine pins
    /// it only when another container joins it (`container:<id>`).
    pub runtime_netns: bool,
}

/// One network of a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Attachment {
    pub network_id: String,
    pub aliases: Vec<String>,
    /// `--ip`.
    pub requested_ip: Option<Ipv4Addr>,
    /// The address while attached.
    pub ip: Option<Ipv4Addr>,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
    pub mac: String,
    /// The host end of the veth pair while attached.
    pub veth: String,
    /// The container's end, `eth0`, `eth1`, ...
    pub ifname: String,
}

impl ContainerNetwork {
    fn is_bridge(&self) -> bool {
        self.mode == "bridge"
    }
}

fn file(inner: &EngineInner, id: &str) -> PathBuf {
    inner.containers.paths(id).dir.join(FILE)
}

/// The container's networking; `None` for a container made before networks existed.
pub fn read(inner: &EngineInner, id: &str) -> Option<ContainerNetwork> {
    let bytes = fs::read(file(inner, id)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn save(inner: &EngineInner, id: &str, net: &ContainerNetwork) -> Result<()> {
    let json = serde_json::to_vec_pretty(net).expect("container network serialises");
    fsutil::write_replace(&file(inner, id), &json)
}

/// At create: decides the container's network mode and networks, checks `--ip`, aliases and
/// ports, writes its hostname, hosts and resolv.conf files and points the spec's network
/// namespace and mounts at them. Writes only into the container's directory `dir`.
pub(crate) fn prepare(
    inner: &EngineInner,
    id: &str,
    dir: &Path,
    config: &ContainerConfig,
    image: &ImageConfiguration,
    spec: &mut Spec,
) -> Result<()> {
    let requested = config.network.as_deref().map(str::trim).filter(|n| !n.is_empty() && *n != "default");
    let requested =
        requested.unwrap_or(if inner.networks.has_default_bridge() { DEFAULT_NETWORK } else { "none" });
    let hostname = spec.hostname().clone().unwrap_or_default();
    let ports = port_bindings(config, image)?;
    let user_network = |r: &NetworkRecord| r.name != DEFAULT_NETWORK;
    let mut net = ContainerNetwork { hostname: hostname.clone(), ..Default::default() };
    let no_extras = |mode: &str| -> Result<()> {
        if !config.network_aliases.is_empty() {
            return Err(Error::InvalidInput(
                "network-scoped aliases are only supported for user-defined networks".into(),
            ));
        }
        if config.ipv4_address.as_deref().is_some_and(|a| !a.is_empty()) {
            return Err(Error::InvalidInput(format!(
                "user specified IP address is supported on user defined networks only, not with --network {mode}"
            )));
        }
        Ok(())
    };
    let files_dir: PathBuf;
    let namespace: NetworkNamespace;
    match requested {
        "host" => {
            no_extras("host")?;
            net.mode = "host".into();
            net.network_mode = "host".into();
            files_dir = dir.to_path_buf();
            namespace = NetworkNamespace::Host;
            copy_host_file("/etc/hosts", &dir.join("hosts"), DEFAULT_HOSTS)?;
            write_resolv_conf(&dir.join("resolv.conf"), None)?;
        }
        "none" => {
            no_extras("none")?;
            net.mode = "none".into();
            net.network_mode = "none".into();
            net.runtime_netns = true;
            files_dir = dir.to_path_buf();
            // Only `lo`: the runtime's new namespace is that, with no netlink work at start.
            namespace = NetworkNamespace::New;
            write_hosts(&dir.join("hosts"), &hostname, &[])?;
            write_resolv_conf(&dir.join("resolv.conf"), None)?;
        }
        other if other.starts_with(crate::pod::POD_NETWORK_PREFIX) => {
            // A pod's container: the pod's namespaces and /etc files (see `pod`).
            no_extras(other)?;
            let pod = &other[crate::pod::POD_NETWORK_PREFIX.len()..];
            let (pod_namespace, pod_dir) = crate::pod::join(inner, pod, spec)?;
            namespace = pod_namespace;
            net.mode = other.to_string();
            net.network_mode = other.to_string();
            files_dir = pod_dir;
        }
        other if other.starts_with("container:") => {
            no_extras(other)?;
            if !ports.is_empty() {
                return Err(Error::InvalidInput(
                    "conflicting options: port publishing and the container type network mode".into(),
                ));
            }
            let target = inner.containers.resolve(&other["container:".len()..])?;
            let target_net = read(inner, &target.id).unwrap_or_default();
            if target_net.mode == "host" {
                namespace = NetworkNamespace::Host;
            } else {
                namespace = NetworkNamespace::Path(inner.networks.netns_path(&target.id));
            }
            net.mode = format!("container:{}", target.id);
            net.network_mode = net.mode.clone();
            // The other container's files: one network, one set of names (as Docker shares them).
            files_dir = inner.containers.paths(&target.id).dir;
        }
        name => {
            let record = inner.networks.resolve(name)?;
            let requested_ip = match config.ipv4_address.as_deref().filter(|a| !a.is_empty()) {
                Some(text) => Some(check_ip(&record, text)?),
                None => None,
            };
            if !user_network(&record) && (!config.network_aliases.is_empty() || requested_ip.is_some()) {
                no_extras(DEFAULT_NETWORK)?;
            }
            net.mode = "bridge".into();
            net.network_mode = record.name.clone();
            net.ports = ports;
            net.networks.push(Attachment {
                network_id: record.id.clone(),
                aliases: config.network_aliases.clone(),
                requested_ip,
                ..Default::default()
            });
            files_dir = dir.to_path_buf();
            namespace = NetworkNamespace::Path(inner.networks.netns_path(id));
            write_hosts(&dir.join("hosts"), &hostname, &[])?;
            let dns = record.has_dns().then_some(record.gateway);
            write_resolv_conf(&dir.join("resolv.conf"), dns)?;
        }
    }
    if files_dir == dir {
        fs::write(dir.join("hostname"), format!("{hostname}\n"))
            .context(|| "writing the hostname file".into())?;
    }
    let files = [
        ("/etc/hosts", files_dir.join("hosts")),
        ("/etc/resolv.conf", files_dir.join("resolv.conf")),
        ("/etc/hostname", files_dir.join("hostname")),
    ];
    crate::runtime::spec::set_network(spec, namespace, &files)?;
    save(inner, id, &net)
}

fn check_ip(record: &NetworkRecord, text: &str) -> Result<Ipv4Addr> {
    let ip: Ipv4Addr =
        text.parse().map_err(|_| Error::InvalidInput(format!("invalid IPv4 address: {text}")))?;
    if !record.subnet.contains(&ip) || ip == record.subnet.network() || ip == record.subnet.broadcast() {
        return Err(Error::InvalidInput(format!(
            "invalid address {ip}: it does not belong to any of this network's subnets ({})",
            record.subnet
        )));
    }
    if ip == record.gateway {
        return Err(Error::InvalidInput(format!("invalid address {ip}: it is the network's gateway")));
    }
    Ok(ip)
}

/// `-p` as given, and with `-P` every exposed port (image EXPOSE, `--expose`) not published yet,
/// on a port the kernel picks.
fn port_bindings(config: &ContainerConfig, image: &ImageConfiguration) -> Result<Vec<PortBinding>> {
    let mut ports = Vec::new();
    for p in &config.ports {
        let protocol = match p.protocol.to_ascii_lowercase().as_str() {
            "" | "tcp" => "tcp",
            "udp" => "udp",
            other => return Err(Error::InvalidInput(format!("invalid proto: {other}"))),
        };
        if p.container_port == 0 {
            return Err(Error::InvalidInput("invalid containerPort: 0".into()));
        }
        if !p.host_ip.is_empty() && p.host_ip.parse::<Ipv4Addr>().is_err() {
            return Err(Error::InvalidInput(format!("invalid IP address: {}", p.host_ip)));
        }
        ports.push(PortBinding { protocol: protocol.into(), ..p.clone() });
    }
    if config.publish_all {
        let image_exposed =
            image.config().as_ref().and_then(|c| c.exposed_ports().clone()).unwrap_or_default();
        for spec in image_exposed.iter().chain(config.expose.iter()) {
            for (port, protocol) in parse_exposed(spec)? {
                if !ports.iter().any(|p| p.container_port == port && p.protocol == protocol) {
                    ports.push(PortBinding {
                        host_ip: String::new(),
                        host_port: 0,
                        container_port: port,
                        protocol,
                    });
                }
            }
        }
    }
    Ok(ports)
}

/// `80`, `80/udp`, `8000-8002/tcp`.
pub fn parse_exposed(spec: &str) -> Result<Vec<(u16, String)>> {
    let bad = || Error::InvalidInput(format!("invalid port format for --expose: {spec}"));
    let (ports, protocol) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let protocol = protocol.to_ascii_lowercase();
    if protocol != "tcp" && protocol != "udp" {
        return Err(bad());
    }
    let (first, last) = match ports.split_once('-') {
        Some((a, b)) => (a.parse::<u16>().map_err(|_| bad())?, b.parse::<u16>().map_err(|_| bad())?),
        None => {
            let p = ports.parse::<u16>().map_err(|_| bad())?;
            (p, p)
        }
    };
    if first == 0 || last < first {
        return Err(bad());
    }
    Ok((first..=last).map(|p| (p, protocol.clone())).collect())
}

const DEFAULT_HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// Written in place (not renamed): a running container has it bind-mounted.
fn write_hosts(path: &Path, hostname: &str, addresses: &[Ipv4Addr]) -> Result<()> {
    let mut text = DEFAULT_HOSTS.to_string();
    for ip in addresses {
        text.push_str(&format!("{ip}\t{hostname}\n"));
    }
    fs::write(path, text).context(|| format!("writing {}", path.display()))
}

fn copy_host_file(source: &str, dest: &Path, fallback: &str) -> Result<()> {
    let text = fs::read_to_string(source).unwrap_or_else(|_| fallback.to_string());
    fs::write(dest, text).context(|| format!("writing {}", dest.display()))
}

/// A user network's containers ask the network's DNS server (on its gateway); the others get
/// the host's resolvers, less the loopback ones a container cannot reach (as Docker filters).
fn write_resolv_conf(path: &Path, dns: Option<Ipv4Addr>) -> Result<()> {
    let host = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut text = String::new();
    match dns {
        Some(server) => {
            text.push_str(&format!("nameserver {server}\n"));
            for line in host.lines().filter(|l| l.starts_with("search ")) {
                text.push_str(line);
                text.push('\n');
            }
            text.push_str("options ndots:0\n");
        }
        None => {
            for line in host.lines() {
                let loopback = line
                    .strip_prefix("nameserver")
                    .map(|s| s.trim())
                    .is_some_and(|s| s.starts_with("127.") || s == "::1");
                if !loopback {
                    text.push_str(line);
                    text.push('\n');
                }
            }
        }
    }
    fs::write(path, text).context(|| format!("writing {}", path.display()))
}

/// At start, before the monitor starts the process: the namespace, veth pairs and addresses,
/// the hosts file, and the port proxy. Undoes what it made when a step fails.
pub(crate) fn setup(inner: &EngineInner, record: &ContainerRecord) -> Result<()> {
    let Some(mut net) = read(inner, &record.id) else { return Ok(()) };
    let result = setup_inner(inner, record, &mut net);
    if result.is_err() {
        release(inner, &record.id);
    }
    result
}

fn setup_inner(inner: &EngineInner, record: &ContainerRecord, net: &mut ContainerNetwork) -> Result<()> {
    let id = &record.id;
    if net.mode == "host" {
        return Ok(());
    }
    if let Some(pod) = net.mode.strip_prefix(crate::pod::POD_NETWORK_PREFIX) {
        return crate::pod::check_joinable(inner, pod);
    }
    if let Some(target) = net.mode.strip_prefix("container:") {
        let target_net = read(inner, target).unwrap_or_default();
        let running = inner.containers.get(target).is_some() && inner.containers.read_state(target).is_live();
        if !running {
            return Err(Error::Conflict(format!("cannot join network of a non running container: {target}")));
        }
        if target_net.runtime_netns && !netlink::is_pinned(&inner.networks.netns_path(target)) {
            pin_process_netns(inner, target, target_net.clone())?;
        }
        if target_net.mode != "host" && !netlink::is_pinned(&inner.networks.netns_path(target)) {
            return Err(Error::Conflict(format!(
                "cannot join network namespace of container {target}: it has none"
            )));
        }
        return Ok(());
    }
    if net.runtime_netns {
        return Ok(());
    }
    let pin = inner.networks.netns_path(id);
    if !netlink::is_pinned(&pin) {
        netlink::remove_pin(&pin)?;
        netlink::run(netlink::Netns::New(&pin), |handle| async move {
            netlink::configure_inside(&handle, None).await
        })?;
    }
    net.netns = Some(pin.clone());
    save(inner, id, net)?;
    if !net.is_bridge() {
        return Ok(());
    }
    for i in 0..net.networks.len() {
        if net.networks[i].ip.is_none() {
            attach(inner, id, net, i, i == 0)?;
        }
    }
    let addresses: Vec<Ipv4Addr> = net.networks.iter().filter_map(|a| a.ip).collect();
    write_hosts(&inner.containers.paths(id).dir.join("hosts"), &net.hostname, &addresses)?;
    if !net.ports.is_empty() && !proxy::is_running(net.proxy_pid, &inner.containers.paths(id).dir) {
        let target = net.networks.first().and_then(|a| a.ip).expect("attached above");
        let (published, pid) = proxy::start(inner, &inner.containers.paths(id).dir, &net.ports, target)?;
        net.published = published;
        net.proxy_pid = pid;
        save(inner, id, net)?;
    }
    Ok(())
}

/// Pins the namespace the runtime made for `target`'s running process where joiners look for
/// it; recorded first, so that the target's release removes the pin even after a crash.
fn pin_process_netns(inner: &EngineInner, target: &str, mut target_net: ContainerNetwork) -> Result<()> {
    let pid = inner.containers.read_state(target).pid;
    if pid <= 0 {
        return Err(Error::Conflict(format!("cannot join network of a non running container: {target}")));
    }
    let pin = inner.networks.netns_path(target);
    target_net.netns = Some(pin.clone());
    save(inner, target, &target_net)?;
    netlink::remove_pin(&pin)?;
    netlink::pin_namespace(Path::new(&format!("/proc/{pid}/ns/net")), &pin)?;
    // The process may have exited (and its PID been reused) before the pin was made.
    if inner.containers.read_state(target).pid != pid {
        let _ = netlink::remove_pin(&pin);
        return Err(Error::Conflict(format!("cannot join network of a non running container: {target}")));
    }
    Ok(())
}

/// Attaches the container (its namespace pinned) to `net.networks[i]`: an address, a veth pair
/// on the network's bridge, the address inside, and with `default_route` the route out.
fn attach(
    inner: &EngineInner,
    id: &str,
    net: &mut ContainerNetwork,
    i: usize,
    default_route: bool,
) -> Result<()> {
    let network = inner
        .networks
        .list()
        .into_iter()
        .find(|r| r.id == net.networks[i].network_id)
        .ok_or_else(|| Error::NetworkNotFound(net.networks[i].network_id.clone()))?;
    // After a reboot the bridge is gone with everything else.
    super::ensure_bridge(&inner.networks, &network)?;
    let ifname = (0..)
        .map(|n| format!("eth{n}"))
        .find(|name| !net.networks.iter().any(|a| &a.ifname == name))
        .expect("a free interface name");
    let veth = format!("veth{}", &hex::encode(rand::random::<[u8; 4]>())[..7]);
    let ip = {
        let _guard = inner.networks.lock.lock().unwrap_or_else(|p| p.into_inner());
        let ip = allocate(inner, &network, net.networks[i].requested_ip)?;
        let octets = ip.octets();
        let attachment = &mut net.networks[i];
        attachment.ip = Some(ip);
        attachment.prefix = network.subnet.prefix_len();
        attachment.gateway = Some(network.gateway);
        attachment.mac =
            format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", octets[0], octets[1], octets[2], octets[3]);
        attachment.veth = veth.clone();
        attachment.ifname = ifname.clone();
        // Recorded before the lock goes: the address is taken from now on.
        save(inner, id, net)?;
        ip
    };
    let pin = inner.networks.netns_path(id);
    let ns = File::open(&pin).context(|| format!("opening {}", pin.display()))?;
    let octets = ip.octets();
    let mac = [0x02, 0x42, octets[0], octets[1], octets[2], octets[3]];
    let (bridge, prefix, gateway) = (network.bridge.clone(), network.subnet.prefix_len(), network.gateway);
    let veth2 = veth.clone();
    let ifname2 = ifname.clone();
    netlink::run(netlink::Netns::Current, move |handle| async move {
        netlink::add_veth(&handle, &veth2, &ifname2, &ns, mac, &bridge).await
    })?;
    let route = (default_route && !network.internal).then_some(gateway);
    netlink::run(netlink::Netns::Join(&pin), move |handle| async move {
        netlink::configure_inside(&handle, Some((&ifname, ip, prefix, route))).await
    })
}

/// A free address of `network` (or the requested one, if free). The caller holds the store lock.
fn allocate(inner: &EngineInner, network: &NetworkRecord, requested: Option<Ipv4Addr>) -> Result<Ipv4Addr> {
    let mut used: BTreeSet<Ipv4Addr> = BTreeSet::new();
    used.insert(network.gateway);
    for record in inner.containers.list() {
        if let Some(net) = read(inner, &record.id) {
            used.extend(net.networks.iter().filter(|a| a.network_id == network.id).filter_map(|a| a.ip));
        }
    }
    if let Some(ip) = requested {
        if used.contains(&ip) {
            return Err(Error::Conflict(format!("Address already in use: {ip} on network {}", network.name)));
        }
        return Ok(ip);
    }
    network
        .subnet
        .hosts()
        .find(|ip| !used.contains(ip))
        .ok_or_else(|| Error::Conflict(format!("no available IPv4 addresses on network {}", network.name)))
}

/// When the container stopped or goes: the port proxy, veth pairs, the namespace's pin and the
/// addresses go. Failures are logged: what is left is retried at the next release.
pub(crate) fn release(inner: &EngineInner, id: &str) {
    // A crash between pinning the namespace and recording it leaves a pin the record does not
    // name: it is at the container's usual place.
    let usual_pin = inner.networks.netns_path(id);
    let Some(mut net) = read(inner, id) else {
        if netlink::is_pinned(&usual_pin) {
            if let Err(e) = netlink::remove_pin(&usual_pin) {
                tracing::warn!(container = %id, error = %e, "removing the container's network namespace");
            }
        }
        return;
    };
    if net.netns.is_none() && netlink::is_pinned(&usual_pin) {
        net.netns = Some(usual_pin);
    }
    let nothing_set_up =
        net.netns.is_none() && net.proxy_pid == 0 && net.networks.iter().all(|a| a.veth.is_empty());
    if nothing_set_up {
        return;
    }
    if net.proxy_pid != 0 {
        proxy::stop(net.proxy_pid, &inner.containers.paths(id).dir);
        net.proxy_pid = 0;
        net.published.clear();
    }
    // Removing the pin of a namespace no process uses any more destroys it, and the kernel
    // deletes its veth pairs then, off this path (deleting a veth waits for an RCU grace
    // period: ~20 ms of every stop and `--rm`). Only a namespace that lives on, joined by a
    // running `--network container:` container, has its veth pairs deleted here.
    let joined = inner.containers.list().iter().any(|other| {
        other.id != id
            && read(inner, &other.id).is_some_and(|n| n.mode == format!("container:{id}"))
            && inner.containers.read_state(&other.id).is_live()
    });
    let veths: Vec<String> = net.networks.iter().map(|a| a.veth.clone()).filter(|v| !v.is_empty()).collect();
    if joined && !veths.is_empty() {
        let deleted = netlink::run(netlink::Netns::Current, move |handle| async move {
            for veth in &veths {
                netlink::delete_link(&handle, veth).await?;
            }
            Ok(())
        });
        if let Err(e) = deleted {
            tracing::warn!(container = %id, error = %e, "deleting the container's veth pairs");
        }
    }
    for attachment in &mut net.networks {
        *attachment = Attachment {
            network_id: std::mem::take(&mut attachment.network_id),
            aliases: std::mem::take(&mut attachment.aliases),
            requested_ip: attachment.requested_ip,
            ..Default::default()
        };
    }
    if let Some(pin) = net.netns.take() {
        if let Err(e) = netlink::remove_pin(&pin) {
            tracing::warn!(container = %id, error = %e, "removing the container's network namespace");
        }
    }
    if let Err(e) = save(inner, id, &net) {
        tracing::warn!(container = %id, error = %e, "recording the container's released network");
    }
}

/// `network connect`: recorded, and attached now when the container's network is set up.
pub(crate) fn connect(
    inner: &EngineInner,
    record: &ContainerRecord,
    network: &str,
    request: &NetworkConnect,
) -> Result<()> {
    let network = inner.networks.resolve(network)?;
    let mut net = read(inner, &record.id).unwrap_or_default();
    if !net.is_bridge() {
        return Err(Error::Conflict(format!(
            "container {} is in network mode {}: it cannot be connected to another network",
            record.name, net.network_mode
        )));
    }
    if net.networks.iter().any(|a| a.network_id == network.id) {
        return Err(Error::Conflict(format!(
            "endpoint with name {} already exists in network {}",
            record.name, network.name
        )));
    }
    let requested_ip = match request.ipv4_address.as_deref().filter(|a| !a.is_empty()) {
        Some(text) => Some(check_ip(&network, text)?),
        None => None,
    };
    if !network.has_dns() && (!request.aliases.is_empty() || requested_ip.is_some()) {
        return Err(Error::InvalidInput(
            "network-scoped aliases and fixed addresses are only supported for user-defined networks".into(),
        ));
    }
    net.networks.push(Attachment {
        network_id: network.id.clone(),
        aliases: request.aliases.clone(),
        requested_ip,
        ..Default::default()
    });
    save(inner, &record.id, &net)?;
    let set_up = net.netns.as_deref().is_some_and(netlink::is_pinned);
    if set_up && inner.containers.read_state(&record.id).is_live() {
        let i = net.networks.len() - 1;
        if let Err(e) = attach(inner, &record.id, &mut net, i, false) {
            net.networks.pop();
            let _ = save(inner, &record.id, &net);
            return Err(e);
        }
    }
    Ok(())
}

/// `network disconnect`.
pub(crate) fn disconnect(
    inner: &EngineInner,
    record: &ContainerRecord,
    network: &str,
    force: bool,
) -> Result<()> {
    let network = match inner.networks.resolve(network) {
        Ok(n) => n,
        // A forced disconnect from a network that is gone still cleans the container up.
        Err(Error::NetworkNotFound(_)) if force => NetworkRecord {
            id: network.to_string(),
            name: network.to_string(),
            driver: String::new(),
            created: chrono::Utc::now(),
            bridge: String::new(),
            subnet: "0.0.0.0/32".parse().expect("valid net"),
            gateway: Ipv4Addr::UNSPECIFIED,
            internal: false,
            labels: BTreeMap::new(),
        },
        Err(e) => return Err(e),
    };
    let mut net = read(inner, &record.id).unwrap_or_default();
    let Some(i) = net.networks.iter().position(|a| a.network_id == network.id) else {
        return Err(Error::Conflict(format!(
            "container {} is not connected to network {}",
            record.id, network.name
        )));
    };
    let attachment = net.networks.remove(i);
    if !attachment.veth.is_empty() {
        let veth = attachment.veth.clone();
        netlink::run(netlink::Netns::Current, move |h| async move { netlink::delete_link(&h, &veth).await })?;
    }
    save(inner, &record.id, &net)
}

/// For `network inspect`/`ls` and the in-use check: the attached containers of each network.
pub(crate) fn attached_endpoints(inner: &EngineInner) -> BTreeMap<String, BTreeMap<String, NetworkEndpoint>> {
    let mut out: BTreeMap<String, BTreeMap<String, NetworkEndpoint>> = BTreeMap::new();
    for record in inner.containers.list() {
        let Some(net) = read(inner, &record.id) else { continue };
        for a in &net.networks {
            if a.ip.is_some() {
                out.entry(a.network_id.clone())
                    .or_default()
                    .insert(record.id.clone(), endpoint(a, &record.name));
            }
        }
    }
    out
}

/// The networks any container is configured for (running or not): what prune keeps.
pub(crate) fn configured_networks(inner: &EngineInner) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for record in inner.containers.list() {
        if let Some(net) = read(inner, &record.id) {
            out.extend(net.networks.iter().map(|a| a.network_id.clone()));
        }
    }
    out
}

fn endpoint(a: &Attachment, name: &str) -> NetworkEndpoint {
    NetworkEndpoint {
        name: name.to_string(),
        ipv4_address: a.ip.map(|ip| format!("{ip}/{}", a.prefix)).unwrap_or_default(),
        mac_address: a.mac.clone(),
        gateway: a.gateway.map(|g| g.to_string()).unwrap_or_default(),
        aliases: a.aliases.clone(),
    }
}

/// The network part of a container's inspect.
pub fn settings(inner: &EngineInner, id: &str) -> NetworkSettings {
    settings_named(inner, id, &network_names(inner))
}

/// Network names by ID: read once for all the containers of a listing, not once per container.
pub fn network_names(inner: &EngineInner) -> BTreeMap<String, String> {
    inner.networks.list().into_iter().map(|r| (r.id, r.name)).collect()
}

fn settings_named(inner: &EngineInner, id: &str, names: &BTreeMap<String, String>) -> NetworkSettings {
    let Some(net) = read(inner, id) else { return NetworkSettings::default() };
    let mut networks = BTreeMap::new();
    match net.mode.as_str() {
        "bridge" => {
            for a in &net.networks {
                let name = names.get(&a.network_id).cloned().unwrap_or_else(|| a.network_id.clone());
                networks.insert(name.clone(), endpoint(a, &name));
            }
        }
        "host" | "none" => {
            networks
                .insert(net.mode.clone(), NetworkEndpoint { name: net.mode.clone(), ..Default::default() });
        }
        _ => {}
    }
    NetworkSettings { network_mode: net.network_mode.clone(), ports: net.published.clone(), networks }
}

/// `ps`'s PORTS and NETWORKS of a container.
pub fn summary(
    inner: &EngineInner,
    id: &str,
    names: &BTreeMap<String, String>,
) -> (Vec<PublishedPort>, Vec<String>) {
    let settings = settings_named(inner, id, names);
    (settings.ports, settings.networks.into_keys().collect())
}

/// The DNS answer of a user network: the address of the running container named `name` (its
/// name, an alias, or a 12-digit ID prefix) on network `network_id`, which the query came in
/// on, or else on another user network of the asking container, the one whose address on
/// `network_id` is `asker` (Docker's resolver answers for all of a container's networks). A
/// query from no container's address (the host) is answered from `network_id` alone.
pub(crate) fn lookup(
    inner: &EngineInner,
    network_id: &str,
    asker: Option<Ipv4Addr>,
    name: &str,
) -> Option<Ipv4Addr> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let nets: Vec<(ContainerRecord, ContainerNetwork)> = inner
        .containers
        .list()
        .into_iter()
        .filter_map(|record| read(inner, &record.id).map(|net| (record, net)))
        .collect();
    let mut searched = vec![network_id.to_string()];
    if let Some(asker) = asker {
        let asking = nets
            .iter()
            .find(|(_, net)| net.networks.iter().any(|a| a.network_id == network_id && a.ip == Some(asker)));
        if let Some((_, net)) = asking {
            // The default `bridge` has no names (see `NetworkRecord::has_dns`).
            let named: BTreeSet<String> =
                inner.networks.list().into_iter().filter(|r| r.has_dns()).map(|r| r.id).collect();
            searched.extend(
                net.networks
                    .iter()
                    .filter(|a| a.ip.is_some() && a.network_id != network_id && named.contains(&a.network_id))
                    .map(|a| a.network_id.clone()),
            );
        }
    }
    searched.iter().find_map(|network| find_on(&nets, network, &name))
}

/// The address on `network_id` of the container called `name` (lowercase, no trailing dot).
fn find_on(nets: &[(ContainerRecord, ContainerNetwork)], network_id: &str, name: &str) -> Option<Ipv4Addr> {
    for (record, net) in nets {
        for a in net.networks.iter().filter(|a| a.network_id == network_id) {
            let Some(ip) = a.ip else { continue };
            let matches = record.name.eq_ignore_ascii_case(name)
                || a.aliases.iter().any(|alias| alias.eq_ignore_ascii_case(name))
                || (name.len() == 12 && record.id.starts_with(name))
                || net.hostname.eq_ignore_ascii_case(name);
            if matches {
                return Some(ip);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposed_ports_parse_like_dockers() {
        assert_eq!(parse_exposed("80").unwrap(), vec![(80, "tcp".to_string())]);
        assert_eq!(parse_exposed("53/udp").unwrap(), vec![(53, "udp".to_string())]);
        assert_eq!(parse_exposed("8000-8002/tcp").unwrap().len(), 3);
        assert!(parse_exposed("0").is_err());
        assert!(parse_exposed("80/sctp").is_err());
        assert!(parse_exposed("9-3").is_err());
        assert!(parse_exposed("http").is_err());
    }
}
