//! Container commands with Docker's flags, output and exit codes: create, run, start, stop, kill,
//! restart, pause, unpause, rm, wait, inspect, top, stats, rename, container prune, logs, exec,
//! ps.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use berth_types::{
    CommandError, ContainerConfig, ContainerInspect, ContainerPruneReport, ContainerStats, ContainerStatus,
    ContainerSummary, CreatedContainer, LogEntry, Resources, TopReport, WaitResult,
};
use clap::{Args, Subcommand};
use futures_util::TryStreamExt;
use http_body_util::BodyExt;
use hyper::Method;

use super::client::{empty_body, json_body, path_segment, query, CliError, Client};
use super::format::{created_at, Table, Template};
use super::opts::{
    env_entry, parse_cpus, parse_env_file, parse_labels, parse_memory, parse_restart, parse_time_arg,
};
use super::stream::{self, OpenError, Streams};
use super::{last_error, out};

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

// ---- create / run / start ---------------------------------------------------------------------

/// Turns the flags into the request. Errors are the CLI's (bad flag values).
fn container_config(args: &CreateArgs) -> Result<ContainerConfig, String> {
    let (image, cmd) = args.image_and_command.split_first().ok_or("\"run\" requires at least 1 argument")?;
    // The image and command take hyphen values (the command's own flags), so an unknown flag
    // before the image lands here.
    if image.starts_with('-') {
        return Err(format!("unknown flag: {image}"));
    }
    let lookup = |k: &str| std::env::var(k).ok();
    let mut env = Vec::new();
    // As Docker: env files first, then -e, so that -e wins.
    for file in &args.env_file {
        let text = std::fs::read_to_string(file).map_err(|e| format!("open {file}: {e}"))?;
        env.extend(parse_env_file(&text, file, lookup)?);
    }
    for entry in &args.env {
        env.extend(env_entry(entry, lookup)?);
    }
    if args.rm && args.restart.as_ref().is_some_and(|r| *r != berth_types::RestartPolicy::No) {
        return Err("Conflicting options: --restart and --rm".into());
    }
    // `--entrypoint ""` clears the image's; a value is one program (no splitting), as Docker.
    let entrypoint = args.entrypoint.as_ref().map(|e| if e.is_empty() { vec![] } else { vec![e.clone()] });
    let healthcheck = health_config(args)?;
    Ok(ContainerConfig {
        image: image.clone(),
        name: args.name.clone(),
        cmd: cmd.to_vec(),
        entrypoint,
        env,
        working_dir: args.workdir.clone(),
        user: args.user.clone(),
        hostname: args.hostname.clone(),
        labels: parse_labels(&args.label)?,
        tty: args.tty,
        open_stdin: args.interactive,
        auto_remove: args.rm,
        restart_policy: args.restart.clone().unwrap_or_default(),
        runtime: args.runtime.clone(),
        read_only: args.read_only,
        cap_add: args.cap_add.clone(),
        cap_drop: args.cap_drop.clone(),
        init: args.init,
        stop_signal: args.stop_signal.clone(),
        stop_timeout: args.stop_timeout,
        resources: Resources { memory: args.memory, cpus: args.cpus, pids_limit: args.pids_limit },
        healthcheck,
        network: args.network.clone(),
        network_aliases: args.network_alias.clone(),
        ipv4_address: args.ip.clone(),
        ports: {
            let mut ports = Vec::new();
            for spec in &args.publish {
                ports.extend(super::network::parse_publish(spec)?);
            }
            ports
        },
        publish_all: args.publish_all,
        expose: args.expose.clone(),
        mounts: super::volume::parse_mounts(&args.volume, &args.mount, &args.tmpfs)?,
    })
}

/// `--health-*` / `--no-healthcheck` as Docker's CLI reads them: `None` leaves the image's
/// HEALTHCHECK alone, `NONE` disables it, an empty test keeps the image's command.
fn health_config(args: &CreateArgs) -> Result<Option<berth_types::HealthConfig>, String> {
    let duration = |flag: &str, value: &Option<String>| -> Result<u64, String> {
        let Some(text) = value else { return Ok(0) };
        if text.starts_with('-') && berth_types::format::parse_go_duration_ns(&text[1..]).is_some() {
            return Err(format!("--{flag} cannot be negative"));
        }
        berth_types::format::parse_go_duration_ns(text).map(|ns| ns as u64).ok_or_else(|| {
            format!("invalid argument \"{text}\" for \"--{flag}\" flag: time: invalid duration \"{text}\"")
        })
    };
    let interval = duration("health-interval", &args.health_interval)?;
    let timeout = duration("health-timeout", &args.health_timeout)?;
    let start_period = duration("health-start-period", &args.health_start_period)?;
    let start_interval = duration("health-start-interval", &args.health_start_interval)?;
    let retries = args.health_retries.unwrap_or(0);
    if retries < 0 {
        return Err("--health-retries cannot be negative".into());
    }
    let retries = u32::try_from(retries).map_err(|_| format!("--health-retries {retries} is too large"))?;
    let cmd = args.health_cmd.as_deref().filter(|c| !c.is_empty());
    let any = cmd.is_some()
        || interval != 0
        || timeout != 0
        || start_period != 0
        || start_interval != 0
        || retries != 0;
    if args.no_healthcheck {
        if any {
            return Err("--no-healthcheck conflicts with --health-* options".into());
        }
        return Ok(Some(berth_types::HealthConfig { test: vec!["NONE".into()], ..Default::default() }));
    }
    if !any {
        return Ok(None);
    }
    Ok(Some(berth_types::HealthConfig {
        test: cmd.map(|c| vec!["CMD-SHELL".to_string(), c.to_string()]).unwrap_or_default(),
        interval,
        timeout,
        start_period,
        start_interval,
        retries,
    }))
}

/// How `run`, `create` and `start -a` report a failure: Docker's exit codes (125 for the
/// daemon and bad flags, 126/127 for a command that cannot be executed).
struct Failure {
    code: i32,
    message: String,
}

impl Failure {
    fn daemon(e: CliError) -> Failure {
        Failure { code: 125, message: e.to_string() }
    }
}

fn print_failure(command: &str, f: &Failure) -> i32 {
    if f.code == 125 {
        eprintln!("berth: {}.\nSee 'berth {command} --help'.", f.message.trim_end_matches('.'));
    } else {
        eprintln!("berth: {}", f.message);
    }
    f.code
}

async fn create_container(client: &Client, config: &ContainerConfig) -> Result<CreatedContainer, Failure> {
    let created: CreatedContainer = client
        .call_json(Method::POST, "/api/v1/containers", Some("application/json"), json_body(config))
        .await
        .map_err(Failure::daemon)?;
    for warning in &created.warnings {
        eprintln!("WARNING: {warning}");
    }
    Ok(created)
}

/// `POST start`; a command that cannot be executed fails with its exit code.
async fn start_container(client: &Client, name: &str) -> Result<(), Failure> {
    let response = client
        .send(Method::POST, &container_path(name, "/start"), None, empty_body())
        .await
        .map_err(Failure::daemon)?;
    if response.status().is_success() {
        return Ok(());
    }
    let status = response.status();
    let body = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    if let Ok(CommandError { message, exit_code }) = serde_json::from_slice(&body) {
        return Err(Failure { code: exit_code, message: format!("Error response from daemon: {message}") });
    }
    let message = serde_json::from_slice::<berth_types::ErrorBody>(&body)
        .map(|e| e.message)
        .unwrap_or_else(|_| format!("{} {}", status.as_u16(), String::from_utf8_lossy(&body).trim()));
    Err(Failure::daemon(CliError::Daemon(message)))
}

/// `berth create`: prints the new container's ID.
pub async fn create(client: &Client, args: CreateArgs) -> i32 {
    let config = match container_config(&args) {
        Ok(c) => c,
        Err(message) => return print_failure("create", &Failure { code: 125, message }),
    };
    match create_container(client, &config).await {
        Ok(created) => match out(&format!("{}\n", created.id)) {
            Ok(()) => 0,
            Err(e) => print_failure("create", &Failure::daemon(e)),
        },
        Err(f) => print_failure("create", &f),
    }
}

/// `berth run`: create, attach (unless -d), start; returns the container's exit code.
pub async fn run(client: &Client, args: RunArgs) -> i32 {
    match run_inner(client, args).await {
        Ok(code) => code,
        Err(f) => print_failure("run", &f),
    }
}

async fn run_inner(client: &Client, args: RunArgs) -> Result<i32, Failure> {
    let config = container_config(&args.create).map_err(|message| Failure { code: 125, message })?;
    if args.detach && args.create.rm && config.restart_policy != berth_types::RestartPolicy::No {
        return Err(Failure { code: 125, message: "Conflicting options: --restart and --rm".into() });
    }
    if config.tty && config.open_stdin && !args.detach && !std::io::stdin().is_terminal() {
        return Err(Failure { code: 1, message: "the input device is not a TTY".into() });
    }
    let created = create_container(client, &config).await?;
    let id = created.id;

    if args.detach {
        if let Err(f) = start_container(client, &id).await {
            remove_after_failed_start(client, &id, config.auto_remove).await;
            return Err(f);
        }
        out(&format!("{id}\n")).map_err(Failure::daemon)?;
        return Ok(0);
    }

    // Attach before the start, so that no output of the new run is missed.
    let socket = open_attach(client, &id, config.open_stdin).await?;
    if let Err(f) = start_container(client, &id).await {
        remove_after_failed_start(client, &id, config.auto_remove).await;
        return Err(f);
    }
    let proxy = (!config.tty).then(|| proxy_signals(client, &id));
    let code = stream::run_session(socket, Streams { tty: config.tty, stdin: config.open_stdin }).await;
    proxy.into_iter().flatten().for_each(|task| task.abort());
    let code = code.map_err(Failure::daemon)?;
    if config.auto_remove {
        // `run --rm` returns when the container is gone, as Docker's does.
        let path = container_path(&id, &format!("/wait{}", query([("condition", "removed")])));
        match client.call_json::<WaitResult>(Method::POST, &path, None, empty_body()).await {
            // Already gone is what was waited for.
            Ok(_) => {}
            Err(CliError::NotFound(_)) => {}
            Err(e) => return Err(Failure::daemon(e)),
        }
    }
    Ok(code)
}

/// Docker's signal proxy for an attached container without a tty: a SIGINT, SIGTERM, ... the
/// CLI receives is sent to the container instead of ending the CLI. (With a tty, ^C reaches the
/// container through the raw terminal.)
fn proxy_signals(client: &Client, id: &str) -> Vec<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let kinds = [
        (SignalKind::interrupt(), "INT"),
        (SignalKind::terminate(), "TERM"),
        (SignalKind::hangup(), "HUP"),
        (SignalKind::quit(), "QUIT"),
        (SignalKind::user_defined1(), "USR1"),
        (SignalKind::user_defined2(), "USR2"),
    ];
    let mut tasks = Vec::new();
    for (kind, name) in kinds {
        let Ok(mut received) = signal(kind) else { continue };
        let client = client.clone();
        let path = container_path(id, &format!("/kill{}", query([("signal", name)])));
        tasks.push(tokio::spawn(async move {
            while received.recv().await.is_some() {
                if let Err(e) = client.request(Method::POST, &path, None, empty_body()).await {
                    eprintln!("forwarding SIG{name}: {e}");
                }
            }
        }));
    }
    tasks
}

async fn open_attach(client: &Client, id: &str, stdin: bool) -> Result<stream::Socket, Failure> {
    let q = if stdin { query([("stdin", "1")]) } else { String::new() };
    stream::connect(client, &container_path(id, &format!("/attach{q}"))).await.map_err(open_failure)
}

fn open_failure(e: OpenError) -> Failure {
    match e {
        OpenError::Cli(e) => Failure::daemon(e),
        OpenError::Command(CommandError { message, exit_code }) => {
            Failure { code: exit_code, message: format!("Error response from daemon: {message}") }
        }
    }
}

/// `run --rm` whose start failed: the container never ran, so nothing would remove it.
async fn remove_after_failed_start(client: &Client, id: &str, auto_remove: bool) {
    if auto_remove {
        let path = container_path(id, &query([("force", "1")]));
        let _ = client.request(Method::DELETE, &path, None, empty_body()).await;
    }
}

/// `berth start`: prints each name; with `-a`, attaches to the one container and returns its
/// exit code.
pub async fn start(client: &Client, args: StartArgs) -> i32 {
    if args.attach || args.interactive {
        if args.names.len() > 1 {
            eprintln!("berth: you cannot start and attach multiple containers at once");
            return 1;
        }
        let name = &args.names[0];
        let result = async {
            let inspect: ContainerInspect =
                client.get_json(&container_path(name, "")).await.map_err(Failure::daemon)?;
            let stdin = args.interactive && inspect.config.open_stdin;
            let socket = open_attach(client, &inspect.id, stdin).await?;
            start_container(client, &inspect.id).await?;
            let proxy = (!inspect.config.tty).then(|| proxy_signals(client, &inspect.id));
            let code = stream::run_session(socket, Streams { tty: inspect.config.tty, stdin }).await;
            proxy.into_iter().flatten().for_each(|task| task.abort());
            code.map_err(Failure::daemon)
        }
        .await;
        return match result {
            Ok(code) => code,
            Err(f) => {
                eprintln!("{}", f.message);
                if f.code == 125 {
                    1
                } else {
                    f.code
                }
            }
        };
    }
    let mut errors = Vec::new();
    for name in &args.names {
        match start_container(client, name).await {
            Ok(()) => {
                if let Err(e) = out(&format!("{name}\n")) {
                    return super::report(Err(e));
                }
            }
            Err(f) => errors.push(CliError::Local(f.message)),
        }
    }
    super::report(last_error(errors))
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

// ---- inspect ------------------------------------------------------------------------------------

/// `berth inspect`: containers first, then images, as Docker looks names up; a JSON array of
/// what was found, or each object through `--format`. Every name not found is reported and
/// makes the exit code 1.
pub async fn inspect(client: &Client, args: InspectArgs) -> Result<(), CliError> {
    let kind = args.kind.as_deref().unwrap_or("");
    if !["", "container", "image", "volume"].contains(&kind) {
        return Err(CliError::Usage(format!("\"{kind}\" is not a valid value for --type")));
    }
    let template = args.format.as_deref().map(InspectTemplate::parse).transpose().map_err(CliError::Usage)?;
    let mut found: Vec<serde_json::Value> = Vec::new();
    let mut errors = Vec::new();
    for name in &args.names {
        let mut result = Err(CliError::Daemon(format!("No such object: {name}")));
        if kind.is_empty() || kind == "container" {
            result = client.get_json::<serde_json::Value>(&container_path(name, "")).await;
        }
        if (kind.is_empty() || kind == "image")
            && matches!(result, Err(CliError::Daemon(_) | CliError::NotFound(_)))
        {
            result = client.get_json(&format!("/api/v1/images/{}", path_segment(name))).await;
            if kind.is_empty() {
                result = result.map_err(|e| match e {
                    CliError::Daemon(_) | CliError::NotFound(_) => {
                        CliError::Daemon(format!("No such object: {name}"))
                    }
                    other => other,
                });
            }
        }
        // Volumes last, as Docker looks them up (`--type volume` for only them).
        if (kind.is_empty() || kind == "volume")
            && matches!(result, Err(CliError::Daemon(_) | CliError::NotFound(_)))
        {
            let volume = super::volume::inspect_object(client, name).await;
            result = match volume {
                Err(CliError::Daemon(_) | CliError::NotFound(_)) if kind.is_empty() => {
                    Err(CliError::Daemon(format!("No such object: {name}")))
                }
                Err(e) => Err(super::volume::not_found_as_docker(e)),
                ok => ok,
            };
        }
        match result {
            Ok(v) => found.push(v),
            Err(e @ CliError::Connect { .. }) => return Err(e),
            Err(e) => errors.push(e),
        }
    }
    match template {
        Some(t) => {
            let mut text = String::new();
            for object in &found {
                text.push_str(&t.render(object)?);
                text.push('\n');
            }
            out(&text)?;
        }
        None => super::print_inspect_json(&found)?,
    }
    last_error(errors)
}

/// `inspect --format`: literal text, `{{.Path.To.Field}}` and `{{json .Path}}`. Field names
/// match the JSON's snake_case ones ignoring case and underscores, so Docker users' templates
/// (`{{.State.ExitCode}}`) work. Hand-written: a Go template engine is far more than this.
struct InspectTemplate {
    /// Literal text, each followed by the action after it (none after the last).
    parts: Vec<(String, Option<Action>)>,
}

/// `{{.A.B}}` (`json` false) or `{{json .A.B}}`: whether to print JSON, and the field path.
type Action = (bool, Vec<String>);

impl InspectTemplate {
    fn parse(format: &str) -> Result<InspectTemplate, String> {
        let mut parts = Vec::new();
        let mut rest = format;
        while let Some(open) = rest.find("{{") {
            let close =
                rest[open..].find("}}").ok_or_else(|| format!("template {format:?}: unclosed action"))?;
            let action = rest[open + 2..open + close].trim();
            let (json, path) = match action.strip_prefix("json ") {
                Some(p) => (true, p.trim()),
                None => (false, action),
            };
            if !path.starts_with('.') {
                return Err(format!(
                    "template {format:?}: unsupported action {{{{{action}}}}}; use {{{{.Field.Path}}}} or {{{{json .Field}}}}"
                ));
            }
            let path: Vec<String> =
                path[1..].split('.').filter(|s| !s.is_empty()).map(str::to_string).collect();
            parts.push((rest[..open].to_string(), Some((json, path))));
            rest = &rest[open + close + 2..];
        }
        parts.push((rest.to_string(), None));
        Ok(InspectTemplate { parts })
    }

    fn render(&self, object: &serde_json::Value) -> Result<String, CliError> {
        let norm = |s: &str| s.replace('_', "").to_ascii_lowercase();
        let mut text = String::new();
        for (literal, action) in &self.parts {
            text.push_str(literal);
            let Some((json, path)) = action else { continue };
            let mut value = object;
            for key in path {
                let serde_json::Value::Object(map) = value else {
                    return Err(CliError::Usage(format!("template: can't evaluate field {key}")));
                };
                value = map
                    .iter()
                    .find(|(k, _)| norm(k) == norm(key))
                    .map(|(_, v)| v)
                    .ok_or_else(|| CliError::Usage(format!("template: can't evaluate field {key}")))?;
            }
            match value {
                serde_json::Value::String(s) if !json => text.push_str(s),
                other => text.push_str(&other.to_string()),
            }
        }
        Ok(text)
    }
}

// ---- ps -----------------------------------------------------------------------------------------

/// The fields of one `ps` row, as Docker's `--format` knows them, and their table headers.
const PS_FIELDS: [(&str, &str); 10] = [
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Labels", "LABELS"),
    ("Names", "NAMES"),
    ("Ports", "PORTS"),
    ("RunningFor", "CREATED"),
    ("State", "STATE"),
    ("Status", "STATUS"),
];

/// Docker's default `ps` table.
const PS_TABLE: &str =
    "table {{.ID}}\\t{{.Image}}\\t{{.Command}}\\t{{.RunningFor}}\\t{{.Status}}\\t{{.Ports}}\\t{{.Names}}";

/// The COMMAND column: Docker's 20-character ellipsis, then Go's `strconv.Quote` (Rust's
/// debug quoting escapes the same characters for what commands hold).
fn command_cell(command: &str, no_trunc: bool) -> String {
    if no_trunc || command.chars().count() <= 20 {
        return format!("{command:?}");
    }
    let mut cut: String = command.chars().take(19).collect();
    cut.push('…');
    format!("{cut:?}")
}

/// `berth ps`.
pub async fn ps(client: &Client, args: PsArgs) -> Result<(), CliError> {
    let names: Vec<&str> = PS_FIELDS.iter().map(|(f, _)| *f).collect();
    let format = match args.format.as_deref() {
        None | Some("table") => PS_TABLE,
        Some("json") => "{{json .}}",
        Some(other) => other,
    };
    let template = Template::parse(format, &names).map_err(CliError::Usage)?;
    let last = if args.latest { Some(1) } else { args.last };
    let all = args.all || last.is_some();
    let mut pairs: Vec<(&str, &str)> = args.filter.iter().map(|f| ("filter", f.as_str())).collect();
    if all {
        pairs.push(("all", "1"));
    }
    let mut containers: Vec<ContainerSummary> =
        client.get_json(&format!("/api/v1/containers{}", query(pairs))).await?;
    if let Some(n) = last {
        containers.truncate(n);
    }
    let id_of = |id: &str| if args.no_trunc { id.to_string() } else { short(id).to_string() };

    let mut text = String::new();
    if args.quiet {
        for c in &containers {
            text.push_str(&id_of(&c.id));
            text.push('\n');
        }
        return out(&text);
    }
    let now = chrono::Utc::now();
    let mut lines = Vec::new();
    for c in &containers {
        let image = match c.image.strip_prefix("sha256:") {
            Some(hex) if !args.no_trunc => short(hex).to_string(),
            _ => c.image.clone(),
        };
        let serde_json::Value::Object(fields) = serde_json::json!({
            "Command": command_cell(&c.command, args.no_trunc),
            "CreatedAt": created_at(&c.created),
            "ID": id_of(&c.id),
            "Image": image,
            "Labels": c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
            "Names": c.name,
            "Ports": super::network::ports_cell(&c.ports),
            "RunningFor": berth_types::format::time_ago(&c.created, now),
            "State": c.state.status.as_str(),
            "Status": if c.status.is_empty() { c.state.human_status(now) } else { c.status.clone() },
        }) else {
            unreachable!("json! of an object is an object")
        };
        lines.push(template.render(&fields));
    }
    out(&template.output(lines, &PS_FIELDS))
}

// ---- top, stats, logs ---------------------------------------------------------------------------

pub async fn top(client: &Client, args: TopArgs) -> Result<(), CliError> {
    let report: TopReport = client.get_json(&container_path(&args.name, "/top")).await?;
    let mut table = Table::new(&report.titles.iter().map(String::as_str).collect::<Vec<_>>());
    for p in report.processes {
        table.row(p);
    }
    out(&table.render())
}

/// Docker's `units.BytesSize`: binary units, 4 significant digits (`1.5MiB`, `7.657GiB`).
fn bytes_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1024.0 && unit < UNITS.len() - 1 {
        size /= 1024.0;
        unit += 1;
    }
    // Below 1024 `%.4g` never switches to exponent form: four significant digits, zeros trimmed.
    let digits = if size < 1.0 { 1 } else { size.log10().floor() as i32 + 1 };
    let decimals = (4 - digits).max(0) as usize;
    let mut text = format!("{size:.decimals$}");
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{text}{}", UNITS[unit])
}

fn stats_table(samples: &[ContainerStats], no_trunc: bool) -> String {
    let mut table = Table::new(&["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS"]);
    for s in samples {
        let mem_percent =
            if s.memory_limit == 0 { 0.0 } else { s.memory_usage as f64 * 100.0 / s.memory_limit as f64 };
        table.row(vec![
            if no_trunc { s.id.clone() } else { short(&s.id).to_string() },
            s.name.clone(),
            format!("{:.2}%", s.cpu_percent),
            format!("{} / {}", bytes_size(s.memory_usage), bytes_size(s.memory_limit)),
            format!("{mem_percent:.2}%"),
            s.pids.to_string(),
        ]);
    }
    table.render()
}

/// `berth stats`: a table refreshed every second (or one sample with `--no-stream`) of the
/// named containers, else of the running ones (all with `-a`).
pub async fn stats(client: &Client, args: StatsArgs) -> Result<(), CliError> {
    let interval = Duration::from_secs(1);
    let targets = |client: &Client| {
        let names = args.names.clone();
        let all = args.all;
        let client = client.clone();
        async move {
            if !names.is_empty() {
                return Ok::<_, CliError>(names);
            }
            let path = if all { "/api/v1/containers?all=1" } else { "/api/v1/containers" };
            let list: Vec<ContainerSummary> = client.get_json(path).await?;
            Ok(list
                .into_iter()
                .filter(|c| c.state.status == ContainerStatus::Running || all)
                .map(|c| c.id)
                .collect())
        }
    };
    let sample = |client: &Client, names: &[String]| {
        let client = client.clone();
        let names = names.to_vec();
        async move {
            let mut samples = Vec::new();
            let mut errors = Vec::new();
            for name in &names {
                match client.get_json::<ContainerStats>(&container_path(name, "/stats")).await {
                    Ok(s) => samples.push(s),
                    Err(e) => errors.push(e),
                }
            }
            (samples, errors)
        }
    };
    if args.no_stream {
        // CPU use is measured between two samples, as Docker's one-shot does.
        let names = targets(client).await?;
        let (_, _) = sample(client, &names).await;
        tokio::time::sleep(interval).await;
        let (samples, errors) = sample(client, &names).await;
        out(&stats_table(&samples, args.no_trunc))?;
        return last_error(errors);
    }
    loop {
        let names = targets(client).await?;
        let (samples, errors) = sample(client, &names).await;
        if !args.names.is_empty() && samples.is_empty() {
            return last_error(errors);
        }
        // Clear the screen and redraw, as Docker's live view does.
        out(&format!("\x1b[2J\x1b[H{}", stats_table(&samples, args.no_trunc)))?;
        tokio::time::sleep(interval).await;
    }
}

/// `berth logs`: stdout entries to stdout, stderr ones to stderr; `-t` prefixes each line with
/// its time (RFC 3339, nine fractional digits, as Docker).
pub async fn logs(client: &Client, args: LogsArgs) -> Result<(), CliError> {
    let now = chrono::Utc::now();
    let time = |v: &Option<String>, flag: &str| {
        v.as_deref()
            .map(|t| {
                parse_time_arg(t, now)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
                    .map_err(|e| CliError::Usage(format!("invalid value for --{flag}: {e}")))
            })
            .transpose()
    };
    let since = time(&args.since, "since")?;
    let until = time(&args.until, "until")?;
    if args.tail != "all" && args.tail.parse::<usize>().is_err() {
        return Err(CliError::Usage(format!(
            "invalid value for --tail: {:?} (a number or \"all\")",
            args.tail
        )));
    }
    let mut pairs = vec![("tail", args.tail.as_str())];
    if args.follow {
        pairs.push(("follow", "1"));
    }
    if let Some(s) = &since {
        pairs.push(("since", s));
    }
    if let Some(u) = &until {
        pairs.push(("until", u));
    }
    let path = container_path(&args.name, &format!("/logs{}", query(pairs)));
    let response = client.request(Method::GET, &path, None, empty_body()).await?;
    let body = response.into_body().into_data_stream().map_err(std::io::Error::other);
    let reader = tokio_util::io::StreamReader::new(body);
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(reader));
    let broken = |e: std::io::Error| CliError::Local(format!("reading the log from the daemon: {e}"));
    while let Some(line) = lines.next_line().await.map_err(broken)? {
        let entry: LogEntry =
            serde_json::from_str(&line).map_err(|e| CliError::Local(format!("decoding a log entry: {e}")))?;
        let mut text = String::new();
        if args.timestamps {
            let t = berth_types::format::parse_time(&entry.time)
                .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string())
                .unwrap_or(entry.time.clone());
            text.push_str(&t);
            text.push(' ');
        }
        text.push_str(&entry.line);
        let result = if entry.stream == "stderr" {
            let mut e = std::io::stderr().lock();
            e.write_all(text.as_bytes()).and_then(|()| e.flush())
        } else {
            let mut o = std::io::stdout().lock();
            o.write_all(text.as_bytes()).and_then(|()| o.flush())
        };
        match result {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(CliError::Local(format!("writing the log: {e}"))),
        }
    }
    Ok(())
}

// ---- exec ---------------------------------------------------------------------------------------

/// `berth exec`: returns the process's exit code (126/127 when the command cannot run).
pub async fn exec(client: &Client, args: ExecArgs) -> i32 {
    let fail = |code: i32, message: String| {
        eprintln!("{message}");
        code
    };
    let (name, cmd) = args.container_and_command.split_first().expect("clap requires two values");
    let lookup = |k: &str| std::env::var(k).ok();
    let mut env = Vec::new();
    for file in &args.env_file {
        match std::fs::read_to_string(file)
            .map_err(|e| format!("open {file}: {e}"))
            .and_then(|t| parse_env_file(&t, file, lookup))
        {
            Ok(entries) => env.extend(entries),
            Err(e) => return fail(125, e),
        }
    }
    for entry in &args.env {
        match env_entry(entry, lookup) {
            Ok(e) => env.extend(e),
            Err(e) => return fail(125, e),
        }
    }
    if args.tty && args.interactive && !args.detach && !std::io::stdin().is_terminal() {
        return fail(1, "the input device is not a TTY".into());
    }
    let stdin = args.interactive && !args.detach;
    let mut pairs: Vec<(&str, &str)> = cmd.iter().map(|c| ("cmd", c.as_str())).collect();
    pairs.extend(env.iter().map(|e| ("env", e.as_str())));
    if let Some(u) = &args.user {
        pairs.push(("user", u));
    }
    if let Some(w) = &args.workdir {
        pairs.push(("workdir", w));
    }
    if args.tty {
        pairs.push(("tty", "1"));
    }
    if stdin {
        pairs.push(("stdin", "1"));
    }
    let path = format!("{}/exec{}", container_path(name, ""), query(pairs));
    let socket = match stream::connect(client, &path).await {
        Ok(s) => s,
        Err(e) => {
            let f = open_failure(e);
            return fail(if f.code == 125 { 1 } else { f.code }, f.message);
        }
    };
    if args.detach {
        // The daemon keeps the process running when the client goes away.
        drop(socket);
        return 0;
    }
    match stream::run_session(socket, Streams { tty: args.tty, stdin }).await {
        Ok(code) => code,
        Err(e) => fail(1, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

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

    #[test]
    fn command_column() {
        assert_eq!(command_cell("sh", false), "\"sh\"");
        assert_eq!(command_cell("sh -c 'echo \"hi\"'", true), "\"sh -c 'echo \\\"hi\\\"'\"");
        assert_eq!(command_cell("sleep 1000000000000000", false), "\"sleep 1000000000000…\"");
        assert_eq!(command_cell("sleep 1000000000000000", false).chars().count(), 22);
        assert_eq!(command_cell("sleep 1000000000000000", true), "\"sleep 1000000000000000\"");
    }

    #[test]
    fn binary_sizes() {
        assert_eq!(bytes_size(0), "0B");
        assert_eq!(bytes_size(512), "512B");
        assert_eq!(bytes_size(1536), "1.5KiB");
        assert_eq!(bytes_size(1_572_864), "1.5MiB");
        assert_eq!(bytes_size(8_221_675_520), "7.657GiB");
        assert_eq!(bytes_size(64 << 20), "64MiB");
    }

    #[test]
    fn inspect_templates() {
        let v = serde_json::json!({"id": "abc", "state": {"status": "exited", "exit_code": 3}, "config": {"env": ["A=1"]}});
        let t = |f: &str| InspectTemplate::parse(f).unwrap().render(&v).unwrap();
        assert_eq!(t("{{.State.Status}}"), "exited");
        assert_eq!(t("{{.State.ExitCode}} {{.id}}"), "3 abc");
        assert_eq!(t("{{json .Config.Env}}"), "[\"A=1\"]");
        assert_eq!(t("{{json .State.Status}}"), "\"exited\"");
        assert!(InspectTemplate::parse("{{.State").is_err());
        assert!(InspectTemplate::parse("{{range .}}").is_err());
        assert!(InspectTemplate::parse("{{.Nope}}").unwrap().render(&v).is_err());
    }
}
