//! `berth network ...`, `berth port`, and the `-p` syntax of `run`/`create`.

use std::collections::BTreeMap;

use berth_types::container::ContainerInspect;
use berth_types::network::{
    NetworkConnect, NetworkCreate, NetworkCreated, NetworkDisconnect, NetworkInspect, NetworkPruneReport,
    PortBinding, PublishedPort,
};
use clap::{Args, Subcommand};
use hyper::Method;

use super::client::{empty_body, json_body, path_segment, CliError, Client};
use super::format::Template;
use super::{last_error, out};

/// `berth network` subcommands.
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network
    Create(CreateArgs),
    /// List networks
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more networks
    Inspect(InspectArgs),
    /// Remove one or more networks
    #[command(visible_alias = "remove")]
    Rm(NamesArgs),
    /// Connect a container to a network
    Connect(ConnectArgs),
    /// Disconnect a container from a network
    Disconnect(DisconnectArgs),
    /// Remove all unused networks
    Prune(PruneArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Driver to manage the Network
    #[arg(short, long, default_value = "bridge")]
    pub driver: String,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long)]
    pub subnet: Option<String>,
    /// IPv4 Gateway for the master subnet
    #[arg(long)]
    pub gateway: Option<String>,
    /// Restrict external access to the network
    #[arg(long)]
    pub internal: bool,
    /// Set metadata on a network
    #[arg(short, long = "label", value_name = "list")]
    pub label: Vec<String>,
    #[arg(value_name = "NETWORK")]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only display network IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate the output
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output: "table" (default), "json", or a template such as '{{.Name}}'
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a custom template: "json" or a template
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true, value_name = "NETWORK")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct NamesArgs {
    #[arg(required = true, value_name = "NETWORK")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long = "alias", value_name = "strings")]
    pub aliases: Vec<String>,
    /// IPv4 address (e.g., "172.30.100.104")
    #[arg(long)]
    pub ip: Option<String>,
    #[arg(value_name = "NETWORK")]
    pub network: String,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Args)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short, long)]
    pub force: bool,
    #[arg(value_name = "NETWORK")]
    pub network: String,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct PortArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// Only this port: PRIVATE_PORT[/PROTO]
    #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
    pub port: Option<String>,
}

fn network_path(name: &str, rest: &str) -> String {
    format!("/api/v1/networks/{}{rest}", path_segment(name))
}

/// Runs one `berth network` subcommand.
pub async fn run(client: &Client, command: NetworkCommand) -> Result<(), CliError> {
    match command {
        NetworkCommand::Create(args) => create(client, args).await,
        NetworkCommand::Ls(args) => ls(client, args).await,
        NetworkCommand::Inspect(args) => inspect(client, args).await,
        NetworkCommand::Rm(args) => rm(client, args).await,
        NetworkCommand::Connect(args) => connect(client, args).await,
        NetworkCommand::Disconnect(args) => disconnect(client, args).await,
        NetworkCommand::Prune(args) => prune(client, args).await,
    }
}

async fn create(client: &Client, args: CreateArgs) -> Result<(), CliError> {
    let mut labels = BTreeMap::new();
    for label in &args.label {
        let (k, v) = label.split_once('=').unwrap_or((label, ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let request = NetworkCreate {
        name: args.name,
        driver: args.driver,
        subnet: args.subnet,
        gateway: args.gateway,
        internal: args.internal,
        labels,
    };
    let created: NetworkCreated = client
        .call_json(Method::POST, "/api/v1/networks", Some("application/json"), json_body(&request))
        .await?;
    for warning in &created.warnings {
        eprintln!("WARNING: {warning}");
    }
    out(&format!("{}\n", created.id))
}

const LS_FIELDS: [(&str, &str); 6] = [
    ("ID", "NETWORK ID"),
    ("Name", "NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("Internal", "INTERNAL"),
    ("CreatedAt", "CREATED AT"),
];

async fn ls(client: &Client, args: LsArgs) -> Result<(), CliError> {
    let mut networks: Vec<NetworkInspect> = client.get_json("/api/v1/networks").await?;
    networks.sort_by(|a, b| a.name.cmp(&b.name));
    let id = |n: &NetworkInspect| if args.no_trunc { n.id.clone() } else { n.id.chars().take(12).collect() };
    if args.quiet {
        return out(&networks.iter().map(|n| id(n) + "\n").collect::<String>());
    }
    let template = Template::for_list(
        args.format.as_deref(),
        "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
        &LS_FIELDS,
    )
    .map_err(CliError::Usage)?;
    let mut lines = Vec::new();
    for n in &networks {
        let serde_json::Value::Object(fields) = serde_json::json!({
            "ID": id(n),
            "Name": n.name,
            "Driver": n.driver,
            "Scope": n.scope,
            "Internal": n.internal.to_string(),
            "CreatedAt": n.created,
        }) else {
            unreachable!("json! of an object is an object")
        };
        lines.push(template.render(&fields));
    }
    out(&template.output(lines, &LS_FIELDS))
}

async fn inspect(client: &Client, args: InspectArgs) -> Result<(), CliError> {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &args.names {
        match client.get_json::<serde_json::Value>(&network_path(name, "")).await {
            Ok(n) => found.push(n),
            Err(e @ CliError::Connect { .. }) => return Err(e),
            Err(e) => errors.push(e),
        }
    }
    match args.format.as_deref() {
        None | Some("") => {
            let json = serde_json::to_string_pretty(&found).expect("JSON values serialise");
            out(&format!("{json}\n"))?;
        }
        Some(format) => {
            let format = if format == "json" { "{{json .}}" } else { format };
            let template = Template::parse(format, &[]).map_err(CliError::Usage)?;
            let mut text = String::new();
            for n in found {
                if let serde_json::Value::Object(fields) = n {
                    text.push_str(&template.render(&fields));
                    text.push('\n');
                }
            }
            out(&text)?;
        }
    }
    last_error(errors)
}

async fn rm(client: &Client, args: NamesArgs) -> Result<(), CliError> {
    let mut errors = Vec::new();
    for name in &args.names {
        match client.request(Method::DELETE, &network_path(name, ""), None, empty_body()).await {
            Ok(_) => out(&format!("{name}\n"))?,
            Err(e @ CliError::Connect { .. }) => return Err(e),
            Err(e) => errors.push(e),
        }
    }
    last_error(errors)
}

async fn connect(client: &Client, args: ConnectArgs) -> Result<(), CliError> {
    let request = NetworkConnect { container: args.container, aliases: args.aliases, ipv4_address: args.ip };
    client
        .request(
            Method::POST,
            &network_path(&args.network, "/connect"),
            Some("application/json"),
            json_body(&request),
        )
        .await?;
    Ok(())
}

async fn disconnect(client: &Client, args: DisconnectArgs) -> Result<(), CliError> {
    let request = NetworkDisconnect { container: args.container, force: args.force };
    client
        .request(
            Method::POST,
            &network_path(&args.network, "/disconnect"),
            Some("application/json"),
            json_body(&request),
        )
        .await?;
    Ok(())
}

async fn prune(client: &Client, args: PruneArgs) -> Result<(), CliError> {
    if !args.force
        && !super::confirm(
            "WARNING! This will remove all custom networks not used by at least one container.",
        )?
    {
        return Ok(());
    }
    let report: NetworkPruneReport =
        client.call_json(Method::POST, "/api/v1/networks/prune", None, empty_body()).await?;
    let mut text = String::new();
    if !report.networks_deleted.is_empty() {
        text.push_str("Deleted Networks:\n");
        for name in &report.networks_deleted {
            text.push_str(name);
            text.push('\n');
        }
    }
    out(&text)
}

/// `berth port CONTAINER [PRIVATE_PORT[/PROTO]]`: the container's published ports, as Docker
/// prints them (`80/tcp -> 0.0.0.0:8080`).
pub async fn port(client: &Client, args: PortArgs) -> Result<(), CliError> {
    let path = format!("/api/v1/containers/{}", path_segment(&args.container));
    let container: ContainerInspect = client.get_json(&path).await?;
    let ports = &container.network_settings.ports;
    let mut text = String::new();
    match &args.port {
        Some(wanted) => {
            let (number, proto) = wanted.split_once('/').unwrap_or((wanted, "tcp"));
            let number: u16 = number
                .parse()
                .map_err(|_| CliError::Usage(format!("Error: invalid port ({wanted}): must be a number")))?;
            let matching: Vec<&PublishedPort> =
                ports.iter().filter(|p| p.container_port == number && p.protocol == proto).collect();
            if matching.is_empty() {
                return Err(CliError::Local(format!(
                    "Error: No public port '{number}/{proto}' published for {}",
                    args.container
                )));
            }
            for p in matching {
                text.push_str(&format!("{}:{}\n", p.host_ip, p.host_port));
            }
        }
        None => {
            for p in ports {
                text.push_str(&format!(
                    "{}/{} -> {}:{}\n",
                    p.container_port, p.protocol, p.host_ip, p.host_port
                ));
            }
        }
    }
    out(&text)
}

/// `ps`'s PORTS cell: `0.0.0.0:8080->80/tcp, 127.0.0.1:53->53/udp`.
pub fn ports_cell(ports: &[PublishedPort]) -> String {
    ports
        .iter()
        .map(|p| format!("{}:{}->{}/{}", p.host_ip, p.host_port, p.container_port, p.protocol))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `-p [ip:][host_port:]container_port[/proto]`, with ranges (`8000-8001:80-81`) as one
/// binding per port, as Docker's CLI reads it.
pub fn parse_publish(spec: &str) -> Result<Vec<PortBinding>, String> {
    berth_types::parse::parse_publish(spec)
        .map_err(|why| format!("invalid argument \"{spec}\" for \"-p, --publish\" flag: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_publish_flag_is_named_as_docker_names_it() {
        assert_eq!(parse_publish("8080:80").unwrap()[0].host_port, 8080);
        assert_eq!(
            parse_publish("80/sctp").unwrap_err(),
            "invalid argument \"80/sctp\" for \"-p, --publish\" flag: invalid proto: sctp"
        );
    }
}
