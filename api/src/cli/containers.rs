//! Container commands with Docker's flags, output and exit codes. Here: the subcommands and
//! their flags, and the commands that act on each named container (stop, kill, restart, pause,
//! unpause, rm, rename, wait, container prune). In `containers/`: `run` (create, run, start: the
//! flags as a `ContainerConfig`), `inspect`, `list` (ps), `stats` (top, stats), `logs`, `exec`.

use berth_types::{ContainerPruneReport, WaitResult};
use clap::{Args, Subcommand};
use hyper::Method;

use super::client::{empty_body, path_segment, query, CliError, Client};
use super::opts::{parse_cpus, parse_memory, parse_restart};
use super::{last_error, out};

mod commit;
mod cp;
mod diff;
mod exec;
mod export;
mod inspect;
mod list;
mod logs;
mod run;
mod stats;
mod update;

pub use commit::{commit, CommitArgs};
pub use cp::{cp, CpArgs};
pub use diff::{diff, DiffArgs};
pub use exec::exec;
pub use export::{export, ExportArgs};
pub use inspect::inspect;
pub(crate) use inspect::InspectTemplate;
pub use list::ps;
pub(crate) use list::ps_row;
pub use logs::logs;
pub use run::{attach, create, run, start};
pub use stats::{stats, top};
pub use update::{update, UpdateArgs};

/// Container subcommands, under `berth container`.
#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// List containers
    #[command(visible_aliases = ["ps", "list"])]
    Ls(PsArgs),
    /// Create a new container
    Create(CreateArgs),
    /// Create and run a new container from an image
    Run(RunArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Pause all processes within one or more containers
    Pause(NamesArgs),
    /// Unpause all processes within one or more containers
    Unpause(NamesArgs),
    /// Remove one or more containers
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(NamesArgs),
    /// Display detailed information on one or more containers
    Inspect(InspectArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// List port mappings or a specific mapping for the container
    Port(super::network::PortArgs),
    /// Remove all stopped containers
    Prune(PruneArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(DiffArgs),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Update configuration of one or more containers
    Update(UpdateArgs),
}

/// The flags `create` and `run` share.
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct CreateArgs {
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables
    #[arg(short, long = "env", value_name = "list")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    pub env_file: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long = "workdir", value_name = "string")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Memory limit
    #[arg(short, long, value_parser = parse_memory, value_name = "bytes")]
    pub memory: Option<u64>,
    /// Number of CPUs
    #[arg(long, value_parser = parse_cpus, value_name = "decimal")]
    pub cpus: Option<f64>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long, allow_negative_numbers = true, value_name = "int")]
    pub pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits (no, always, unless-stopped, on-failure[:N])
    #[arg(long, value_parser = parse_restart, value_name = "string")]
    pub restart: Option<berth_types::RestartPolicy>,
    /// Set meta data on a container
    #[arg(short, long = "label", value_name = "list")]
    pub label: Vec<String>,
    /// Runtime to use for this container (berth, runc, crun)
    #[arg(long)]
    pub runtime: Option<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long)]
    pub read_only: bool,
    /// Add Linux capabilities
    #[arg(long, value_name = "list")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long, value_name = "list")]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Security Options
    #[arg(long, value_name = "list")]
    pub security_opt: Vec<String>,
    /// Add a host device to the container
    #[arg(long, value_name = "list", value_parser = berth_types::security::parse_device)]
    pub device: Vec<berth_types::security::DeviceMapping>,
    /// Ulimit options
    #[arg(long, value_name = "ulimit", value_parser = berth_types::security::parse_ulimit)]
    pub ulimit: Vec<berth_types::security::Ulimit>,
    /// Add additional groups to join
    #[arg(long, value_name = "list")]
    pub group_add: Vec<String>,
    /// User namespace to use ("host" opts out of the daemon's --userns-remap)
    #[arg(long, value_name = "string")]
    pub userns: Option<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Signal to stop the container
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long, value_name = "int")]
    pub stop_timeout: Option<u32>,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Command to run to check health
    #[arg(long, value_name = "string")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h) (default 0s)
    #[arg(long, value_name = "duration", allow_hyphen_values = true)]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h) (default 0s)
    #[arg(long, value_name = "duration", allow_hyphen_values = true)]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long, value_name = "int", allow_negative_numbers = true)]
    pub health_retries: Option<i64>,
    /// Start period for the container to initialize before starting health-retries countdown
    /// (ms|s|m|h) (default 0s)
    #[arg(long, value_name = "duration", allow_hyphen_values = true)]
    pub health_start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h) (default 0s)
    #[arg(long, value_name = "duration", allow_hyphen_values = true)]
    pub health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long)]
    pub no_healthcheck: bool,
    /// Logging driver for the container (json-file or local)
    #[arg(long, value_name = "string")]
    pub log_driver: Option<String>,
    /// Log driver options (max-size, max-file)
    #[arg(long, value_name = "list")]
    pub log_opt: Vec<String>,
    /// Publish a container's port(s) to the host ([ip:][hostPort:]containerPort[/proto])
    #[arg(short = 'p', long = "publish", value_name = "list")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long, value_name = "list")]
    pub expose: Vec<String>,
    /// Connect a container to a network (bridge, none, host, container:NAME, or a network's name)
    #[arg(long, alias = "net", value_name = "network")]
    pub network: Option<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", alias = "net-alias", value_name = "list")]
    pub network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long, value_name = "string")]
    pub ip: Option<String>,
    /// Bind mount a volume ([SOURCE:]TARGET[:ro|rw]; SOURCE a host path or a volume name)
    #[arg(short = 'v', long = "volume", value_name = "list")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container (type=bind|volume|tmpfs,source=,target=,readonly)
    #[arg(long = "mount", value_name = "mount")]
    pub mount: Vec<String>,
    /// Mount a tmpfs directory (PATH[:size=64m,ro])
    #[arg(long = "tmpfs", value_name = "list")]
    pub tmpfs: Vec<String>,
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// The image, then the command and its arguments (everything after the image is the
    /// command's, flags included, as with Docker)
    #[arg(
        required = true,
        value_name = "IMAGE [COMMAND] [ARG...]",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub image_and_command: Vec<String>,
}

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short, long)]
    pub detach: bool,
    #[command(flatten)]
    pub create: CreateArgs,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short, long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short, long)]
    pub interactive: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Do not attach STDIN
    #[arg(long)]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub sig_proxy: bool,
    #[arg(value_name = "CONTAINER")]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "time", visible_alias = "timeout", value_name = "int")]
    pub time: Option<u32>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true, value_name = "CONTAINER")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct NamesArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a Go template, e.g. '{{.State.Status}}' or '{{json .Config}}'
    #[arg(short, long)]
    pub format: Option<String>,
    /// Only inspect objects of the given type (container or image)
    #[arg(long = "type", value_name = "string")]
    pub kind: Option<String>,
    #[arg(required = true, value_name = "NAME|ID")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    #[arg(value_name = "CONTAINER")]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output: "table" (default), "json" (one JSON object per line), or a template
    /// such as 'table {{.Name}}\t{{.CPUPerc}}' or '{{.Container}} {{.MemUsage}}'
    #[arg(long)]
    pub format: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RenameArgs {
    #[arg(value_name = "CONTAINER")]
    pub name: String,
    #[arg(value_name = "NEW_NAME")]
    pub new_name: String,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs (or "all")
    #[arg(short = 'n', long, default_value = "all", value_name = "string")]
    pub tail: String,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long)]
    pub until: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables
    #[arg(short, long = "env", value_name = "list")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    pub env_file: Vec<String>,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// The container, then the command and its arguments
    #[arg(required = true, num_args = 2.., value_name = "CONTAINER COMMAND [ARG...]", trailing_var_arg = true, allow_hyphen_values = true)]
    pub container_and_command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long, value_name = "int")]
    pub last: Option<usize>,
    /// Show the latest created container (includes all states)
    #[arg(short, long)]
    pub latest: bool,
    /// Filter output based on conditions provided (status, name, id, label, ancestor, health)
    #[arg(short, long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Format output: "table" (default), "json", or a template such as '{{.ID}} {{.Names}}'
    #[arg(long)]
    pub format: Option<String>,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
}

/// Whether the command line is one of `run`, `create`, `exec` (also under `container`), whose
/// usage errors exit 125 as Docker's do.
pub fn exits_125_on_usage_errors(args: impl Iterator<Item = String>) -> bool {
    let mut args = args.skip(1);
    let mut words = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-H" | "--host" => {
                args.next();
            }
            a if a.starts_with('-') => {}
            _ => {
                words.push(arg);
                if words.len() == 2 || words[0] != "container" {
                    break;
                }
            }
        }
    }
    let command = match words.as_slice() {
        [first, second] if first == "container" => second.as_str(),
        [first, ..] => first.as_str(),
        [] => "",
    };
    matches!(command, "run" | "create" | "exec")
}

/// `/api/v1/containers/{name}` and what follows.
fn container_path(name: &str, rest: &str) -> String {
    format!("/api/v1/containers/{}{rest}", path_segment(name))
}

/// A short container ID: 12 hex digits.
fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

// ---- simple lifecycle commands ------------------------------------------------------------------

/// Sends `method path` for each name, printing each name that succeeded (Docker's output for
/// stop, kill, restart, pause, unpause, rm); errors are reported and the others go on.
async fn each(
    client: &Client,
    names: &[String],
    method: Method,
    path: impl Fn(&str) -> String,
) -> Result<(), CliError> {
    let mut errors = Vec::new();
    for name in names {
        match client.request(method.clone(), &path(name), None, empty_body()).await {
            Ok(_) => out(&format!("{name}\n"))?,
            Err(e @ CliError::Connect { .. }) => return Err(e),
            Err(e) => errors.push(e),
        }
    }
    last_error(errors)
}

pub async fn stop(client: &Client, args: StopArgs) -> Result<(), CliError> {
    let t = args.time.map(|t| t.to_string());
    each(client, &args.names, Method::POST, |n| {
        container_path(n, &format!("/stop{}", query(t.as_deref().map(|t| ("t", t)))))
    })
    .await
}

pub async fn restart(client: &Client, args: StopArgs) -> Result<(), CliError> {
    let t = args.time.map(|t| t.to_string());
    each(client, &args.names, Method::POST, |n| {
        container_path(n, &format!("/restart{}", query(t.as_deref().map(|t| ("t", t)))))
    })
    .await
}

pub async fn kill(client: &Client, args: KillArgs) -> Result<(), CliError> {
    each(client, &args.names, Method::POST, |n| {
        container_path(n, &format!("/kill{}", query([("signal", args.signal.as_str())])))
    })
    .await
}

pub async fn pause(client: &Client, args: NamesArgs) -> Result<(), CliError> {
    each(client, &args.names, Method::POST, |n| container_path(n, "/pause")).await
}

pub async fn unpause(client: &Client, args: NamesArgs) -> Result<(), CliError> {
    each(client, &args.names, Method::POST, |n| container_path(n, "/unpause")).await
}

pub async fn rm(client: &Client, args: RmArgs) -> Result<(), CliError> {
    let force = if args.force { "1" } else { "0" };
    let volumes = if args.volumes { "1" } else { "0" };
    each(client, &args.names, Method::DELETE, |n| {
        container_path(n, &query([("force", force), ("v", volumes)]))
    })
    .await
}

pub async fn rename(client: &Client, args: RenameArgs) -> Result<(), CliError> {
    let path = container_path(&args.name, &format!("/rename{}", query([("name", args.new_name.as_str())])));
    client.request(Method::POST, &path, None, empty_body()).await?;
    Ok(())
}

/// `berth wait`: each container's exit code, one per line.
pub async fn wait(client: &Client, args: NamesArgs) -> Result<(), CliError> {
    let mut errors = Vec::new();
    for name in &args.names {
        match client
            .call_json::<WaitResult>(Method::POST, &container_path(name, "/wait"), None, empty_body())
            .await
        {
            Ok(r) => out(&format!("{}\n", r.status_code))?,
            Err(e @ CliError::Connect { .. }) => return Err(e),
            Err(e) => errors.push(e),
        }
    }
    last_error(errors)
}

/// `berth container prune`.
pub async fn prune(client: &Client, args: PruneArgs) -> Result<(), CliError> {
    if !args.force && !super::confirm("WARNING! This will remove all stopped containers.")? {
        return out("Total reclaimed space: 0B\n");
    }
    let report: ContainerPruneReport =
        client.call_json(Method::POST, "/api/v1/containers/prune", None, empty_body()).await?;
    let mut text = String::new();
    if !report.containers_deleted.is_empty() {
        text.push_str("Deleted Containers:\n");
        for id in &report.containers_deleted {
            text.push_str(id);
            text.push('\n');
        }
        text.push('\n');
    }
    text.push_str(&format!(
        "Total reclaimed space: {}\n",
        berth_types::format::human_size(report.space_reclaimed)
    ));
    out(&text)
}

#[cfg(test)]
mod tests {
    use berth_types::{ContainerConfig, Resources};
    use clap::Parser;

    use super::run::container_config;
    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: ContainerCommand,
    }

    fn parse(args: &[&str]) -> Result<ContainerCommand, clap::Error> {
        Cli::try_parse_from(std::iter::once("berth").chain(args.iter().copied())).map(|c| c.command)
    }

    fn run_config(args: &[&str]) -> Result<ContainerConfig, String> {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        match parse(&all).map_err(|e| e.to_string())? {
            ContainerCommand::Run(r) => container_config(&r.create),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn run_flags_become_the_request() {
        let c = run_config(&[
            "--name",
            "web",
            "-e",
            "A=1",
            "-e",
            "B=two words",
            "-w",
            "/tmp",
            "-u",
            "1000:1000",
            "-h",
            "box",
            "-m",
            "64m",
            "--cpus",
            "0.5",
            "--pids-limit",
            "20",
            "--restart",
            "on-failure:3",
            "-l",
            "app=shop",
            "--runtime",
            "runc",
            "--read-only",
            "--cap-add",
            "NET_ADMIN",
            "--cap-drop",
            "ALL",
            "--init",
            "--stop-signal",
            "SIGINT",
            "--stop-timeout",
            "3",
            "-it",
            "busybox",
            "sh",
            "-c",
            "echo hi",
        ])
        .unwrap();
        assert_eq!(c.image, "busybox");
        assert_eq!(c.cmd, ["sh", "-c", "echo hi"]);
        assert_eq!(c.name.as_deref(), Some("web"));
        assert_eq!(c.env, ["A=1", "B=two words"]);
        assert_eq!(c.working_dir.as_deref(), Some("/tmp"));
        assert_eq!(c.user.as_deref(), Some("1000:1000"));
        assert_eq!(c.hostname.as_deref(), Some("box"));
        assert_eq!(c.resources, Resources { memory: Some(64 << 20), cpus: Some(0.5), pids_limit: Some(20) });
        assert_eq!(c.restart_policy, berth_types::RestartPolicy::OnFailure { max_retries: 3 });
        assert_eq!(c.labels.get("app").map(String::as_str), Some("shop"));
        assert_eq!(c.runtime.as_deref(), Some("runc"));
        assert!(c.read_only && c.init && c.tty && c.open_stdin && !c.auto_remove);
        assert_eq!(c.cap_add, ["NET_ADMIN"]);
        assert_eq!(c.cap_drop, ["ALL"]);
        assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(c.stop_timeout, Some(3));
        assert_eq!(c.entrypoint, None);
    }

    #[test]
    fn everything_after_the_image_is_the_command() {
        let c = run_config(&["--rm", "busybox", "ls", "-l", "--name", "x", "-e"]).unwrap();
        assert_eq!(c.cmd, ["ls", "-l", "--name", "x", "-e"]);
        assert!(c.auto_remove);
        assert_eq!(c.name, None);
        let c = run_config(&["busybox"]).unwrap();
        assert!(c.cmd.is_empty());
        let c = run_config(&["--entrypoint", "", "busybox"]).unwrap();
        assert_eq!(c.entrypoint, Some(vec![]));
        let c = run_config(&["--entrypoint", "/bin/echo", "busybox", "hi"]).unwrap();
        assert_eq!(c.entrypoint, Some(vec!["/bin/echo".to_string()]));
    }

    #[test]
    fn bad_run_flags() {
        assert!(run_config(&["-m", "lots", "busybox"]).unwrap_err().contains("invalid size: 'lots'"));
        assert!(run_config(&["--cpus", "x", "busybox"]).unwrap_err().contains("rational number"));
        assert!(run_config(&["--restart", "sometimes", "busybox"])
            .unwrap_err()
            .contains("invalid restart policy"));
        assert!(run_config(&["--pids-limit", "many", "busybox"]).is_err());
        assert!(run_config(&["--bogus", "busybox"]).is_err());
        assert!(run_config(&[]).is_err());
        assert_eq!(
            run_config(&["--rm", "--restart", "always", "busybox"]).unwrap_err(),
            "Conflicting options: --restart and --rm"
        );
        assert!(run_config(&["--pids-limit", "-1", "busybox"]).is_ok());
    }

    #[test]
    fn security_flags() {
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("p.json");
        std::fs::write(&profile, "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\"\n}\n").unwrap();
        let seccomp = format!("seccomp={}", profile.display());
        let c = run_config(&[
            "--privileged",
            "--security-opt",
            "no-new-privileges",
            "--security-opt",
            &seccomp,
            "--device",
            "/dev/fuse",
            "--ulimit",
            "nofile=1024:2048",
            "busybox",
        ])
        .unwrap();
        assert!(c.privileged);
        assert_eq!(c.security_opt, ["no-new-privileges", r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW"}"#]);
        assert_eq!(c.devices[0].path_in_container, "/dev/fuse");
        assert_eq!((c.ulimits[0].soft, c.ulimits[0].hard), (1024, 2048));
        let c = run_config(&["--security-opt", "seccomp=unconfined", "busybox"]).unwrap();
        assert_eq!(c.security_opt, ["seccomp=unconfined"]);
        assert_eq!(
            run_config(&["--security-opt", "x", "busybox"]).unwrap_err(),
            r#"Invalid --security-opt: "x""#
        );
        assert!(run_config(&["--security-opt", "seccomp=/nope.json", "busybox"])
            .unwrap_err()
            .starts_with("opening seccomp profile (/nope.json) failed"));
        let c =
            run_config(&["--group-add", "audio", "--group-add", "1234", "-v", "/srv:/srv:rslave", "busybox"])
                .unwrap();
        assert_eq!(c.group_add, ["audio", "1234"]);
        assert_eq!(c.mounts[0].propagation.as_deref(), Some("rslave"));
        assert!(run_config(&["--ulimit", "bogus=1", "busybox"])
            .unwrap_err()
            .contains("invalid ulimit type: bogus"));
        assert!(run_config(&["--device", "/dev/x:/y:q", "busybox"])
            .unwrap_err()
            .contains("invalid device mode: q"));
    }

    #[test]
    fn health_flags() {
        let c = run_config(&[
            "--health-cmd",
            "test -f /ok",
            "--health-interval",
            "200ms",
            "--health-timeout",
            "1s",
            "--health-retries",
            "2",
            "--health-start-period",
            "1m30s",
            "--health-start-interval",
            "100ms",
            "busybox",
        ])
        .unwrap();
        let h = c.healthcheck.unwrap();
        assert_eq!(h.test, ["CMD-SHELL", "test -f /ok"]);
        assert_eq!(
            (h.interval, h.timeout, h.retries, h.start_period, h.start_interval),
            (200_000_000, 1_000_000_000, 2, 90_000_000_000, 100_000_000)
        );
        assert_eq!(run_config(&["busybox"]).unwrap().healthcheck, None);
        let none = run_config(&["--no-healthcheck", "busybox"]).unwrap().healthcheck.unwrap();
        assert_eq!(none.test, ["NONE"]);
        // Only an interval: the image's command stays.
        let h = run_config(&["--health-interval", "5s", "busybox"]).unwrap().healthcheck.unwrap();
        assert!(h.test.is_empty());
        assert_eq!(h.interval, 5_000_000_000);
    }

    #[test]
    fn bad_health_flags() {
        assert_eq!(
            run_config(&["--health-interval", "often", "busybox"]).unwrap_err(),
            "invalid argument \"often\" for \"--health-interval\" flag: time: invalid duration \"often\""
        );
        assert_eq!(
            run_config(&["--health-timeout", "-1s", "busybox"]).unwrap_err(),
            "--health-timeout cannot be negative"
        );
        assert_eq!(
            run_config(&["--health-retries", "-1", "busybox"]).unwrap_err(),
            "--health-retries cannot be negative"
        );
        assert_eq!(
            run_config(&["--no-healthcheck", "--health-cmd", "true", "busybox"]).unwrap_err(),
            "--no-healthcheck conflicts with --health-* options"
        );
        assert!(run_config(&["--health-retries", "x", "busybox"]).is_err());
        assert!(run_config(&["--health-start-period", "5", "busybox"])
            .unwrap_err()
            .contains("invalid duration"));
    }

    #[test]
    fn exec_flags() {
        let ContainerCommand::Exec(e) =
            parse(&["exec", "-it", "-e", "A=1", "-u", "nobody", "-w", "/tmp", "web", "sh", "-c", "ls -l"])
                .unwrap()
        else {
            panic!()
        };
        assert!(e.interactive && e.tty && !e.detach);
        assert_eq!(e.container_and_command, ["web", "sh", "-c", "ls -l"]);
        assert!(parse(&["exec", "web"]).is_err());
    }
}
