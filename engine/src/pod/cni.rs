//! Pod networking through CNI plugins, as the CNI specification has runtimes call them: the
//! first network configuration (list) of the configuration directory, each plugin run as
//! `<bin dir>/<type>` with `CNI_COMMAND` (`ADD`, `DEL`, `CHECK`), `CNI_CONTAINERID`,
//! `CNI_NETNS`, `CNI_IFNAME`, `CNI_PATH` in its environment and its configuration (with `name`,
//! `cniVersion`, `prevResult` and `runtimeConfig`) on stdin; ADD in order, DEL in reverse.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use super::PodConfig;
use crate::error::{Error, Result};

/// The interface CNI plugins make in the pod.
const IFNAME: &str = "eth0";

/// Where the CNI configurations and plugins are (`--cni-conf-dir`, `--cni-bin-dir`).
#[derive(Debug, Clone)]
pub struct CniConfig {
    pub conf_dir: PathBuf,
    /// Searched in order for a plugin (`CNI_PATH`).
    pub bin_dirs: Vec<PathBuf>,
}

impl Default for CniConfig {
    fn default() -> CniConfig {
        CniConfig { conf_dir: PathBuf::from("/etc/cni/net.d"), bin_dirs: vec![PathBuf::from("/usr/lib/cni")] }
    }
}

/// What ADD answered: the whole result (kept for DEL and CHECK), the network's name and the
/// pod's first IPv4 address.
#[derive(Debug, Clone)]
pub struct CniResult {
    pub raw: Value,
    pub network: String,
    pub ipv4: Option<Ipv4Addr>,
}

/// A network configuration list, as read from the configuration directory.
struct NetworkList {
    name: String,
    version: String,
    plugins: Vec<Value>,
}

impl CniConfig {
    /// The first configuration of the directory in lexical order (`*.conflist`, or a single
    /// plugin's `*.conf` / `*.json`), as kubelet's runtimes pick it.
    fn network(&self) -> Result<NetworkList> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.conf_dir)
            .map_err(|e| {
                Error::InvalidInput(format!(
                    "no CNI network configuration: reading {}: {e}",
                    self.conf_dir.display()
                ))
            })?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("conflist" | "conf" | "json")))
            .collect();
        files.sort();
        let Some(file) = files.first() else {
            return Err(Error::InvalidInput(format!(
                "no CNI network configuration in {}",
                self.conf_dir.display()
            )));
        };
        let bad = |what: String| Error::InvalidInput(format!("CNI configuration {}: {what}", file.display()));
        let text = std::fs::read(file).map_err(|e| bad(e.to_string()))?;
        let value: Value = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
        let name = value["name"].as_str().ok_or_else(|| bad("no name".into()))?.to_string();
        let version = value["cniVersion"].as_str().unwrap_or("0.4.0").to_string();
        let plugins = match value.get("plugins") {
            Some(Value::Array(list)) => list.clone(),
            Some(_) => return Err(bad("plugins is not a list".into())),
            None => vec![value.clone()],
        };
        if plugins.is_empty() {
            return Err(bad("no plugins".into()));
        }
        Ok(NetworkList { name, version, plugins })
    }

    /// Whether a network configuration is there to give pods a network (CRI's `NetworkReady`).
    pub fn ready(&self) -> Result<()> {
        self.network().map(|_| ())
    }

    /// ADD: the pod's network, through every plugin of the list in order.
    pub(crate) fn add(&self, id: &str, netns: &Path, pod: &PodConfig) -> Result<CniResult> {
        let network = self.network()?;
        let mut previous: Option<Value> = None;
        for plugin in &network.plugins {
            let result = self.call("ADD", id, netns, &network, plugin, pod, previous.take())?;
            previous = Some(result);
        }
        let raw = previous.unwrap_or(Value::Null);
        let ipv4 = first_ipv4(&raw);
        Ok(CniResult { raw, network: network.name, ipv4 })
    }

    /// DEL: every plugin of the list in reverse order, with ADD's result.
    pub(crate) fn del(&self, id: &str, netns: &Path, pod: &PodConfig, previous: Option<Value>) -> Result<()> {
        let network = self.network()?;
        for plugin in network.plugins.iter().rev() {
            self.call("DEL", id, netns, &network, plugin, pod, previous.clone())?;
        }
        Ok(())
    }

    /// CHECK (CNI 0.4.0 and later): every plugin in order, with ADD's result.
    pub(crate) fn check(
        &self,
        id: &str,
        netns: &Path,
        pod: &PodConfig,
        previous: Option<Value>,
    ) -> Result<()> {
        let network = self.network()?;
        if network.version.starts_with("0.1")
            || network.version.starts_with("0.2")
            || network.version.starts_with("0.3")
        {
            return Ok(());
        }
        for plugin in &network.plugins {
            self.call("CHECK", id, netns, &network, plugin, pod, previous.clone())?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn call(
        &self,
        command: &str,
        id: &str,
        netns: &Path,
        network: &NetworkList,
        plugin: &Value,
        pod: &PodConfig,
        previous: Option<Value>,
    ) -> Result<Value> {
        let kind = plugin["type"].as_str().ok_or_else(|| {
            Error::InvalidInput(format!("CNI network {}: a plugin without type", network.name))
        })?;
        let binary = self.bin_dirs.iter().map(|d| d.join(kind)).find(|p| p.is_file()).ok_or_else(|| {
            Error::InvalidInput(format!("CNI plugin {kind:?} not found in {:?}", self.bin_dirs))
        })?;
        let mut conf = plugin.clone();
        conf["name"] = json!(network.name);
        conf["cniVersion"] = json!(network.version);
        if let Some(previous) = previous {
            conf["prevResult"] = previous;
        }
        let wants_ports = plugin["capabilities"]["portMappings"].as_bool().unwrap_or(false);
        if wants_ports && !pod.ports.is_empty() {
            let mappings: Vec<Value> = pod
                .ports
                .iter()
                .filter(|p| p.host_port != 0)
                .map(|p| {
                    json!({
                        "hostPort": p.host_port,
                        "containerPort": p.container_port,
                        "protocol": p.protocol,
                        "hostIP": p.host_ip,
                    })
                })
                .collect();
            conf["runtimeConfig"] = json!({ "portMappings": mappings });
        }
        let cni_path = std::env::join_paths(&self.bin_dirs).unwrap_or_default();
        let args = format!(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={};K8S_POD_INFRA_CONTAINER_ID={id};K8S_POD_UID={}",
            pod.namespace, pod.name, pod.uid
        );
        let mut child = Command::new(&binary)
            .env_clear()
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", id)
            .env("CNI_NETNS", netns)
            .env("CNI_IFNAME", IFNAME)
            .env("CNI_PATH", cni_path)
            .env("CNI_ARGS", args)
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::io(format!("running the CNI plugin {}", binary.display()), e))?;
        let input = serde_json::to_vec(&conf).expect("json");
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(&input);
        }
        let out = child
            .wait_with_output()
            .map_err(|e| Error::io(format!("running the CNI plugin {}", binary.display()), e))?;
        if !out.status.success() {
            let answer: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            let message = match answer["msg"].as_str() {
                Some(msg) => match answer["details"].as_str() {
                    Some(details) if !details.is_empty() => format!("{msg}: {details}"),
                    _ => msg.to_string(),
                },
                None => String::from_utf8_lossy(&out.stderr).trim().to_string(),
            };
            return Err(Error::Runtime(format!("CNI plugin {kind} {command} failed: {message}")));
        }
        if command != "ADD" {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&out.stdout)
            .map_err(|e| Error::Runtime(format!("CNI plugin {kind} ADD answered no result: {e}")))
    }
}

/// The first IPv4 address of a CNI result (`ips` of 0.3.0 and later, `ip4` of 0.2.0).
fn first_ipv4(result: &Value) -> Option<Ipv4Addr> {
    let addresses = result["ips"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|ip| ip["address"].as_str())
        .chain(result["ip4"]["ip"].as_str());
    addresses.filter_map(|a| a.split('/').next()?.parse::<Ipv4Addr>().ok()).next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_ipv4_of_current_and_old_results() {
        let current = json!({"ips": [{"address": "fd00::2/64"}, {"address": "10.88.0.5/16"}]});
        assert_eq!(first_ipv4(&current), Some(Ipv4Addr::new(10, 88, 0, 5)));
        let old = json!({"ip4": {"ip": "10.1.2.3/24"}});
        assert_eq!(first_ipv4(&old), Some(Ipv4Addr::new(10, 1, 2, 3)));
        assert_eq!(first_ipv4(&json!({})), None);
    }
}
