//! Pod sandboxes, as Kubernetes' container runtime interface (CRI) asks for them: a group of
//! containers that share a network, IPC and UTS namespace. The namespaces are made and held by a
//! small pause process (`berth pod-pause`, [`pause`]) that the engine starts itself, so no pause
//! image is pulled; they are pinned (bind-mounted) under `<run-dir>/pods/<id>/` so that the
//! pod's containers join them by path and the CNI plugins ([`cni`]) configure the network one.
//!
//! A pod's container is an ordinary berth container whose network mode is `pod:<id>`
//! (see `network::endpoint`): it joins the pod's namespaces and shares its hosts, resolv.conf
//! and hostname files. The engine knows nothing of gRPC: the CRI face lives in the daemon.
//!
//! On disk: `<root>/pods/<id>/pod.json` (the [`PodRecord`]), `hostname`, `hosts`,
//! `resolv.conf`, `cni-result.json` (what the CNI plugins answered to ADD, for DEL and CHECK).

pub mod cni;
pub mod pause;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use oci_spec::runtime::{LinuxNamespaceBuilder, LinuxNamespaceType, Spec};
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::network::netlink;
use crate::runtime::spec::NetworkNamespace;
use crate::{fsutil, Engine, EngineInner};

pub use cni::CniConfig;

/// The network mode of a pod's containers: `pod:<pod id>`.
pub const POD_NETWORK_PREFIX: &str = "pod:";

/// Serialises pod changes (run, stop, remove): they are rare and touch several files.
static POD_LOCK: Mutex<()> = Mutex::new(());

/// Which process namespace the pod's containers are in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PidMode {
    /// Each container its own (Kubernetes' default).
    #[default]
    Container,
    /// One for the whole pod (`shareProcessNamespace`).
    Pod,
    /// The host's (`hostPID`).
    Host,
}

/// The pod's DNS settings (`resolv.conf`); empty: the host's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PodDns {
    pub servers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

/// A port the pod publishes on the host (through CNI's `portMappings` capability).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PodPort {
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    pub container_port: u16,
    pub host_port: u16,
    pub host_ip: String,
}

/// What a pod is made from (CRI's `PodSandboxConfig`, in the engine's words).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PodConfig {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub attempt: u32,
    pub hostname: String,
    pub log_directory: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub dns: PodDns,
    pub ports: Vec<PodPort>,
    /// The host's network (and UTS) namespace (`hostNetwork`).
    pub host_network: bool,
    /// The host's IPC namespace (`hostIPC`).
    pub host_ipc: bool,
    pub pid_mode: PidMode,
    pub cgroup_parent: String,
    /// Namespaced sysctls (`net.*`, `kernel.shm*`, ...), set in the pod's namespaces.
    pub sysctls: BTreeMap<String, String>,
    /// The CRI runtime handler asked for (berth has one: the empty default).
    pub runtime_handler: String,
}

impl PodConfig {
    /// The pod's hostname: the one asked for, else the node's (as containerd does; kubelet
    /// always gives one, and a pod's name may be longer than a hostname can be).
    pub fn effective_hostname(&self) -> String {
        if self.host_network || self.hostname.is_empty() {
            nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_default()
        } else {
            self.hostname.clone()
        }
    }
}

/// `ready` while the pause process holds the namespaces; `notready` once stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PodState {
    #[default]
    Ready,
    NotReady,
}

/// A pod sandbox, kept in `<root>/pods/<id>/pod.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PodRecord {
    pub id: String,
    pub config: PodConfig,
    pub created: Option<DateTime<Utc>>,
    pub state: PodState,
    /// The pause process while the pod is ready.
    pub pause_pid: i32,
    /// The pod's IPv4 address from the CNI result (none with the host's network).
    pub ip: Option<String>,
    /// The CNI network the pod was attached to (its config's `name`).
    pub cni_network: Option<String>,
}

/// Paths of one pod.
struct PodPaths {
    dir: PathBuf,
    record: PathBuf,
    cni_result: PathBuf,
    /// Pinned namespaces: `net`, `ipc`, `uts`, `pid`.
    pins: PathBuf,
}

fn paths(inner: &EngineInner, id: &str) -> PodPaths {
    let dir = inner.config.root.join("pods").join(id);
    PodPaths {
        record: dir.join("pod.json"),
        cni_result: dir.join("cni-result.json"),
        dir,
        pins: inner.config.run_dir.join("pods").join(id),
    }
}

fn read(inner: &EngineInner, id: &str) -> Result<PodRecord> {
    let bytes = fs::read(paths(inner, id).record).map_err(|_| Error::PodNotFound(id.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::InvalidInput(format!("pod {id}: corrupt record: {e}")))
}

fn save(inner: &EngineInner, record: &PodRecord) -> Result<()> {
    let json = serde_json::to_vec_pretty(record).expect("pod records serialise");
    fsutil::write_atomic(&paths(inner, &record.id).record, &json)
}

fn ids(inner: &EngineInner) -> Vec<String> {
    let Ok(entries) = fs::read_dir(inner.config.root.join("pods")) else { return Vec::new() };
    entries.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).collect()
}

/// The pod whose ID is `id` or starts with it (unique).
fn resolve(inner: &EngineInner, id: &str) -> Result<String> {
    if id.is_empty() {
        return Err(Error::PodNotFound(String::new()));
    }
    let matches: Vec<String> = ids(inner).into_iter().filter(|p| p.starts_with(id)).collect();
    match matches.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Error::PodNotFound(id.to_string())),
        _ => Err(Error::InvalidInput(format!("pod sandbox ID {id} is ambiguous"))),
    }
}

/// The record with its state as it is now: a ready pod whose pause process is gone is not ready.
fn refreshed(mut record: PodRecord) -> PodRecord {
    if record.state == PodState::Ready && !pause::is_running(record.pause_pid, &record.id) {
        record.state = PodState::NotReady;
    }
    record
}

impl Engine {
    /// Makes and starts a pod sandbox: its namespaces (held by a pause process), its network
    /// through CNI, its /etc files. Running the same pod (name, namespace, uid, attempt) again
    /// while it is ready answers the one there is.
    pub async fn run_pod(&self, config: PodConfig, cni: CniConfig) -> Result<PodRecord> {
        self.blocking(move |inner| {
            let _lock = POD_LOCK.lock().unwrap_or_else(|p| p.into_inner());
            run(inner, config, &cni)
        })
        .await
    }

    /// Stops the pod's pause process and releases its network (CNI DEL); the pod's containers
    /// are the caller's to stop first. Stopping a stopped pod succeeds.
    pub async fn stop_pod(&self, id: &str, cni: CniConfig) -> Result<PodRecord> {
        let id = id.to_string();
        self.blocking(move |inner| {
            let _lock = POD_LOCK.lock().unwrap_or_else(|p| p.into_inner());
            let id = resolve(inner, &id)?;
            stop(inner, &id, &cni)
        })
        .await
    }

    /// Stops the pod (see [`Engine::stop_pod`]) and removes its files. Removing a pod that is
    /// not there succeeds (`Ok(false)`), as kubelet expects.
    pub async fn remove_pod(&self, id: &str, cni: CniConfig) -> Result<bool> {
        let id = id.to_string();
        self.blocking(move |inner| {
            let _lock = POD_LOCK.lock().unwrap_or_else(|p| p.into_inner());
            let id = match resolve(inner, &id) {
                Ok(id) => id,
                Err(Error::PodNotFound(_)) => return Ok(false),
                Err(e) => return Err(e),
            };
            stop(inner, &id, &cni)?;
            let p = paths(inner, &id);
            let _ = fs::remove_dir(&p.pins);
            fs::remove_dir_all(&p.dir).context(|| format!("removing {}", p.dir.display()))?;
            Ok(true)
        })
        .await
    }

    /// The pod `id` (or an unambiguous prefix) with its current state.
    pub async fn pod(&self, id: &str) -> Result<PodRecord> {
        let id = id.to_string();
        self.blocking(move |inner| Ok(refreshed(read(inner, &resolve(inner, &id)?)?))).await
    }

    /// Every pod, oldest first.
    pub async fn list_pods(&self) -> Result<Vec<PodRecord>> {
        self.blocking(|inner| {
            let mut pods: Vec<PodRecord> =
                ids(inner).iter().filter_map(|id| read(inner, id).ok()).map(refreshed).collect();
            pods.sort_by_key(|p| p.created);
            Ok(pods)
        })
        .await
    }

    /// A TCP connection to `port` on the loopback of ready pod `id`'s network namespace (the
    /// host's for a host-network pod): kubelet's port forward. The socket is made by a thread
    /// of its own that enters the namespace; it stays in that namespace after the thread ends.
    pub async fn connect_pod_port(&self, id: &str, port: u16) -> Result<std::net::TcpStream> {
        let id = id.to_string();
        let netns = self
            .blocking(move |inner| {
                let record = refreshed(read(inner, &resolve(inner, &id)?)?);
                if record.state != PodState::Ready {
                    return Err(Error::Conflict(format!("pod sandbox {} is not ready", record.id)));
                }
                Ok((!record.config.host_network).then(|| paths(inner, &record.id).pins.join("net")))
            })
            .await?;
        let connect = move || -> Result<std::net::TcpStream> {
            if let Some(netns) = netns {
                let ns = fs::File::open(&netns).context(|| format!("opening {}", netns.display()))?;
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| Error::Runtime(format!("entering the pod's network namespace: {e}")))?;
            }
            let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            std::net::TcpStream::connect_timeout(&address, std::time::Duration::from_secs(5))
                .map_err(|e| Error::Conflict(format!("connecting to port {port} in the pod: {e}")))
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("pod-port".into())
            .spawn(move || {
                let _ = tx.send(connect());
            })
            .context(|| "starting a thread".into())?;
        rx.await.map_err(|_| Error::Runtime("the port forward thread went away".into()))?
    }

    /// CNI CHECK of a ready pod's network: `Ok` when the plugins find it as they made it.
    pub async fn check_pod_network(&self, id: &str, cni: CniConfig) -> Result<()> {
        let id = id.to_string();
        self.blocking(move |inner| {
            let record = refreshed(read(inner, &resolve(inner, &id)?)?);
            if record.state != PodState::Ready || record.config.host_network {
                return Ok(());
            }
            let p = paths(inner, &record.id);
            let previous = fs::read(&p.cni_result).ok().and_then(|b| serde_json::from_slice(&b).ok());
            cni.check(&record.id, &p.pins.join("net"), &record.config, previous)
        })
        .await
    }
}

fn run(inner: &EngineInner, config: PodConfig, cni: &CniConfig) -> Result<PodRecord> {
    if config.name.is_empty() {
        return Err(Error::InvalidInput("pod sandbox metadata: name is required".into()));
    }
    if !config.runtime_handler.is_empty() {
        return Err(Error::InvalidInput(format!(
            "runtime handler {:?} is not supported: berth has only the default one",
            config.runtime_handler
        )));
    }
    for existing in ids(inner).iter().filter_map(|id| read(inner, id).ok()) {
        let same = existing.config.name == config.name
            && existing.config.namespace == config.namespace
            && existing.config.uid == config.uid
            && existing.config.attempt == config.attempt;
        if same {
            let existing = refreshed(existing);
            if existing.state == PodState::Ready {
                return Ok(existing);
            }
            return Err(Error::Conflict(format!(
                "pod sandbox {}_{}_{}_{} is reserved by the stopped pod {}: remove it first",
                config.name, config.namespace, config.uid, config.attempt, existing.id
            )));
        }
    }
    let id = hex::encode(rand::random::<[u8; 32]>());
    let p = paths(inner, &id);
    fsutil::create_private_dir(&inner.config.root.join("pods"))?;
    fsutil::create_private_dir(&p.dir)?;
    let mut record = PodRecord {
        id: id.clone(),
        config,
        created: Some(Utc::now()),
        state: PodState::Ready,
        ..Default::default()
    };
    let made = (|| -> Result<()> {
        write_files(&p.dir, &record.config, None)?;
        // Recorded before anything outside the pod's directory is made, so that a failure or a
        // crash from here on is undone by stop (pause process, pins, CNI).
        save(inner, &record)?;
        let pid = pause::spawn(&inner.config.monitor_exe, &id, &record.config)?;
        record.pause_pid = pid;
        save(inner, &record)?;
        fs::create_dir_all(&p.pins).context(|| format!("creating {}", p.pins.display()))?;
        for kind in pinned_kinds(&record.config) {
            netlink::pin_namespace(Path::new(&format!("/proc/{pid}/ns/{kind}")), &p.pins.join(kind))?;
        }
        if !record.config.host_network {
            let result = cni.add(&id, &p.pins.join("net"), &record.config)?;
            fsutil::write_replace(&p.cni_result, &serde_json::to_vec_pretty(&result.raw).expect("json"))?;
            record.ip = result.ipv4.map(|ip| ip.to_string());
            record.cni_network = Some(result.network);
            write_files(&p.dir, &record.config, record.ip.as_deref())?;
        }
        save(inner, &record)
    })();
    if let Err(e) = made {
        let _ = stop(inner, &id, cni);
        let _ = fs::remove_dir(&p.pins);
        let _ = fs::remove_dir_all(&p.dir);
        return Err(e);
    }
    tracing::info!(pod = %id, name = %record.config.name, namespace = %record.config.namespace, ip = ?record.ip, "pod sandbox ready");
    Ok(record)
}

/// The namespaces the pause process makes (and the engine pins) for `config`.
fn pinned_kinds(config: &PodConfig) -> Vec<&'static str> {
    let mut kinds = Vec::new();
    if !config.host_network {
        kinds.push("net");
        kinds.push("uts");
    }
    if !config.host_ipc {
        kinds.push("ipc");
    }
    if config.pid_mode == PidMode::Pod {
        kinds.push("pid");
    }
    kinds
}

fn stop(inner: &EngineInner, id: &str, cni: &CniConfig) -> Result<PodRecord> {
    let mut record = read(inner, id)?;
    let p = paths(inner, id);
    let net_pin = p.pins.join("net");
    if !record.config.host_network && p.cni_result.exists() {
        let previous = fs::read(&p.cni_result).ok().and_then(|b| serde_json::from_slice(&b).ok());
        // DEL is called even when the namespace is gone (the spec asks plugins to clean up
        // what they can then), and a failure is retried at the next stop or remove.
        let netns = if netlink::is_pinned(&net_pin) { net_pin.clone() } else { PathBuf::new() };
        cni.del(id, &netns, &record.config, previous)?;
        let _ = fs::remove_file(&p.cni_result);
    }
    if record.pause_pid > 0 && pause::is_running(record.pause_pid, id) {
        pause::kill(record.pause_pid);
    }
    for kind in ["net", "ipc", "uts", "pid"] {
        netlink::remove_pin(&p.pins.join(kind))?;
    }
    record.state = PodState::NotReady;
    record.pause_pid = 0;
    save(inner, &record)?;
    Ok(record)
}

const DEFAULT_HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// The pod's `hostname`, `hosts` and `resolv.conf`, which its containers bind-mount. Written in
/// place: running containers have them mounted.
fn write_files(dir: &Path, config: &PodConfig, ip: Option<&str>) -> Result<()> {
    let hostname = config.effective_hostname();
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        fs::write(&path, text).context(|| format!("writing {}", path.display()))
    };
    write("hostname", format!("{hostname}\n"))?;
    let hosts = if config.host_network {
        fs::read_to_string("/etc/hosts").unwrap_or_else(|_| DEFAULT_HOSTS.to_string())
    } else {
        let mut text = DEFAULT_HOSTS.to_string();
        if let Some(ip) = ip {
            text.push_str(&format!("{ip}\t{hostname}\n"));
        }
        text
    };
    write("hosts", hosts)?;
    let dns = &config.dns;
    let resolv = if dns.servers.is_empty() && dns.searches.is_empty() && dns.options.is_empty() {
        fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
    } else {
        let mut text = String::new();
        if !dns.searches.is_empty() {
            text.push_str(&format!("search {}\n", dns.searches.join(" ")));
        }
        for server in &dns.servers {
            text.push_str(&format!("nameserver {server}\n"));
        }
        if !dns.options.is_empty() {
            text.push_str(&format!("options {}\n", dns.options.join(" ")));
        }
        text
    };
    write("resolv.conf", resolv)
}

/// At a pod container's create: the network namespace to join and the directory of the /etc
/// files to mount, and the spec pointed at the pod's IPC and UTS namespaces (and the host's PID
/// namespace for `hostPID`). Refused unless the pod is ready.
pub(crate) fn join(
    inner: &EngineInner,
    pod_id: &str,
    spec: &mut Spec,
) -> Result<(NetworkNamespace, PathBuf)> {
    let record = refreshed(read(inner, pod_id)?);
    if record.state != PodState::Ready {
        return Err(Error::Conflict(format!("pod sandbox {pod_id} is not ready")));
    }
    let p = paths(inner, pod_id);
    let config = &record.config;
    if let Some(linux) = spec.linux_mut() {
        let mut namespaces = linux.namespaces().clone().unwrap_or_default();
        let mut set = |typ: LinuxNamespaceType, path: Option<PathBuf>| -> Result<()> {
            namespaces.retain(|n| n.typ() != typ);
            if let Some(path) = path {
                let mut builder = LinuxNamespaceBuilder::default().typ(typ);
                builder = builder.path(path);
                namespaces.push(
                    builder
                        .build()
                        .map_err(|e| Error::Runtime(format!("building the pod's namespaces: {e}")))?,
                );
            }
            Ok(())
        };
        if config.host_ipc {
            set(LinuxNamespaceType::Ipc, None)?;
        } else {
            set(LinuxNamespaceType::Ipc, Some(p.pins.join("ipc")))?;
        }
        if config.host_network {
            set(LinuxNamespaceType::Uts, None)?;
        } else {
            set(LinuxNamespaceType::Uts, Some(p.pins.join("uts")))?;
        }
        match config.pid_mode {
            PidMode::Host => set(LinuxNamespaceType::Pid, None)?,
            PidMode::Pod => set(LinuxNamespaceType::Pid, Some(p.pins.join("pid")))?,
            PidMode::Container => {}
        }
        linux.set_namespaces(Some(namespaces));
    }
    // The hostname is the pod's, set in its UTS namespace by the pause process.
    spec.set_hostname(None);
    let network =
        if config.host_network { NetworkNamespace::Host } else { NetworkNamespace::Path(p.pins.join("net")) };
    Ok((network, p.dir))
}

/// At a pod container's start: the pod must still hold its namespaces.
pub(crate) fn check_joinable(inner: &EngineInner, pod_id: &str) -> Result<()> {
    let record = refreshed(read(inner, pod_id)?);
    if record.state != PodState::Ready {
        return Err(Error::Conflict(format!("pod sandbox {pod_id} is not ready")));
    }
    Ok(())
}
