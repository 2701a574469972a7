//! `berth compose`: Docker Compose v2's commands over the daemon's stack routes. The file is
//! found and read here (for the project name, `config`, and errors before anything is sent),
//! and sent with the `.env` text and this process's environment; the daemon reads it again and
//! does the work (its relative paths resolve against the file's directory, sent as
//! `working_dir`: the daemon is local).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use berth_engine::compose::model::{self, Project, DEFAULT_FILES};
use berth_types::name::{check_object_name, ObjectKind};
use berth_types::{ContainerSummary, StackDown, StackLogEntry, StackProgress, StackSummary, StackUp};
use clap::{Args, Parser, Subcommand};
use futures_util::{StreamExt, TryStreamExt};
use http_body_util::BodyExt;
use hyper::Method;
use tokio::io::AsyncBufReadExt;
use tokio_tungstenite::tungstenite::protocol::Message;

use super::client::{empty_body, json_body, path_segment, query, CliError, Client};
use super::format::{time_ago, Table};
use super::stream::{self, OpenError};

#[derive(Debug, Args)]
pub struct ComposeArgs {
    /// Compose configuration file
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Vec<String>,
    /// Project name
    #[arg(short = 'p', long = "project-name", value_name = "NAME")]
    pub project_name: Option<String>,
    /// Specify an alternate environment file
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: ComposeCommand,
}

#[derive(Debug, Subcommand)]
pub enum ComposeCommand {
    /// Create and start containers
    Up(UpArgs),
    /// Stop and remove containers, networks
    Down(DownArgs),
    /// List containers
    Ps(PsArgs),
    /// View output from containers
    Logs(LogsArgs),
    /// Restart service containers
    Restart(TimeoutArgs),
    /// Stop services
    Stop(TimeoutArgs),
    /// Start services
    Start(ServicesArgs),
    /// Pull service images
    Pull(ServicesArgs),
    /// Build or rebuild services
    Build(ServicesArgs),
    /// Parse, resolve and render compose file in canonical format
    Config(ConfigArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Scale services
    Scale(ScaleArgs),
    /// List running compose projects
    Ls(LsArgs),
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Detached mode: Run containers in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Build images before starting containers
    #[arg(long)]
    pub build: bool,
    /// Scale SERVICE to NUM instances. Overrides the `scale` setting in the Compose file if present
    #[arg(long, value_name = "SERVICE=NUM")]
    pub scale: Vec<String>,
    /// Recreate containers even if their configuration and image haven't changed
    #[arg(long, conflicts_with = "no_recreate")]
    pub force_recreate: bool,
    /// If containers already exist, don't recreate them
    #[arg(long)]
    pub no_recreate: bool,
    /// Remove containers for services not defined in the Compose file
    #[arg(long)]
    pub remove_orphans: bool,
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Remove named volumes declared in the "volumes" section of the Compose file and anonymous
    /// volumes attached to containers
    #[arg(short, long)]
    pub volumes: bool,
    /// Remove containers for services not defined in the Compose file
    #[arg(long)]
    pub remove_orphans: bool,
    /// Specify a shutdown timeout in seconds
    #[arg(short, long)]
    pub timeout: Option<u32>,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all stopped containers (including those created by the run command)
    #[arg(short, long)]
    pub all: bool,
    /// Only display IDs
    #[arg(short, long)]
    pub quiet: bool,
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Number of lines to show from the end of the logs for each container
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Don't print prefix in logs
    #[arg(long)]
    pub no_log_prefix: bool,
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TimeoutArgs {
    /// Specify a shutdown timeout in seconds
    #[arg(short, long)]
    pub timeout: Option<u32>,
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ServicesArgs {
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Only validate the configuration, don't print anything
    #[arg(short, long)]
    pub quiet: bool,
    /// Print the service names, one per line
    #[arg(long)]
    pub services: bool,
    /// Print the volume names, one per line
    #[arg(long)]
    pub volumes: bool,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Detached mode: Run command in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Disable pseudo-TTY allocation. By default `compose exec` allocates a TTY
    #[arg(short = 'T', long = "no-TTY")]
    pub no_tty: bool,
    /// Set environment variables
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Run the command as this user
    #[arg(short, long)]
    pub user: Option<String>,
    /// Path to workdir directory for this command
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Index of the container if service has multiple replicas
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    /// The service, then the command and its arguments
    #[arg(required = true, num_args = 2.., value_name = "SERVICE COMMAND [ARGS...]", trailing_var_arg = true, allow_hyphen_values = true)]
    pub service_and_command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ScaleArgs {
    #[arg(required = true, value_name = "SERVICE=REPLICAS")]
    pub scale: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Show all stopped Compose projects
    #[arg(short, long)]
    pub all: bool,
    /// Only display project names
    #[arg(short, long)]
    pub quiet: bool,
}

/// What the local side knows: the request to send and the project as read.
struct Loaded {
    request: StackUp,
    project: Project,
}

/// `COMPOSE_FILE`, `-f`, or the first default file name in this directory or a parent.
fn find_file(args: &ComposeArgs) -> Result<PathBuf, CliError> {
    let given = match args.file.as_slice() {
        [] => std::env::var("COMPOSE_FILE").ok().filter(|f| !f.is_empty()),
        [one] => Some(one.clone()),
        _ => {
            return Err(CliError::Usage(
                "merging several compose files (-f ... -f ...) is not supported".into(),
            ))
        }
    };
    let cwd = std::env::current_dir().map_err(|e| CliError::Local(format!("the current directory: {e}")))?;
    if let Some(file) = given {
        if file == "-" {
            return Ok(PathBuf::from("-"));
        }
        let path = cwd.join(&file);
        if !path.exists() {
            return Err(CliError::Local(format!("open {}: no such file or directory", path.display())));
        }
        return Ok(path);
    }
    let mut dir = Some(cwd.as_path());
    while let Some(d) = dir {
        for name in DEFAULT_FILES {
            let candidate = d.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
        dir = d.parent();
    }
    Err(CliError::Local("no configuration file provided: not found".into()))
}

/// Finds and reads the file, `.env` and the environment; prints the warnings as Compose does.
fn load(args: &ComposeArgs) -> Result<Loaded, CliError> {
    let file = find_file(args)?;
    let (text, working_dir) = if file == Path::new("-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| CliError::Local(format!("reading the compose file from stdin: {e}")))?;
        let cwd =
            std::env::current_dir().map_err(|e| CliError::Local(format!("the current directory: {e}")))?;
        (text, cwd)
    } else {
        let file = std::fs::canonicalize(&file).unwrap_or(file);
        let text = std::fs::read_to_string(&file)
            .map_err(|e| CliError::Local(format!("open {}: {e}", file.display())))?;
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/"));
        (text, dir)
    };
    let env_file = match &args.env_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| CliError::Local(format!("couldn't find env file: {}: {e}", path.display())))?,
        ),
        None => std::fs::read_to_string(working_dir.join(".env")).ok(),
    };
    let request = StackUp {
        compose_file: text,
        env_file,
        environment: std::env::vars().collect(),
        working_dir: working_dir.display().to_string(),
        ..Default::default()
    };
    let project =
        model::load(&request, args.project_name.as_deref()).map_err(|e| CliError::Local(e.to_string()))?;
    for warning in &project.warnings {
        eprintln!("WARN[0000] {warning}");
    }
    Ok(Loaded { request, project })
}

/// The project's name: `-p` (no file needed), else from the file's rules.
fn project_name(args: &ComposeArgs) -> Result<String, CliError> {
    if let Some(name) = &args.project_name {
        check_object_name(ObjectKind::Project, name).map_err(|e| CliError::Local(e.to_string()))?;
        if args.file.is_empty() && find_file(args).is_err() {
            return Ok(name.clone());
        }
    }
    Ok(load(args)?.project.name)
}

/// `berth compose ...`.
pub async fn run(client: &Client, args: ComposeArgs) -> i32 {
    let result = match &args.command {
        ComposeCommand::Up(up) => return run_up(client, &args, up).await,
        ComposeCommand::Exec(exec) => return run_exec(client, &args, exec).await,
        ComposeCommand::Down(down) => run_down(client, &args, down).await,
        ComposeCommand::Ps(ps) => run_ps(client, &args, ps).await,
        ComposeCommand::Logs(logs) => run_logs(client, &args, logs).await,
        ComposeCommand::Restart(t) => operation(client, &args, "restart", &t.services, t.timeout).await,
        ComposeCommand::Stop(t) => operation(client, &args, "stop", &t.services, t.timeout).await,
        ComposeCommand::Start(s) => operation(client, &args, "start", &s.services, None).await,
        ComposeCommand::Pull(s) => run_pull(client, &args, &s.services).await,
        ComposeCommand::Build(s) => run_build(client, &args, &s.services).await,
        ComposeCommand::Config(c) => run_config(&args, c),
        ComposeCommand::Scale(s) => run_scale(client, &args, s).await,
        ComposeCommand::Ls(ls) => run_ls(client, ls).await,
    };
    super::report(result)
}

fn parse_scale(entries: &[String]) -> Result<BTreeMap<String, u32>, CliError> {
    entries
        .iter()
        .map(|e| {
            let (service, n) = e
                .split_once('=')
                .ok_or_else(|| CliError::Usage(format!("invalid scale specifier: {e:?} (SERVICE=NUM)")))?;
            let n = n
                .parse()
                .map_err(|_| CliError::Usage(format!("invalid scale specifier: {e:?} (SERVICE=NUM)")))?;
            Ok((service.to_string(), n))
        })
        .collect()
}

/// Prints one progress line as Compose does (` Container app-web-1  Started`); warnings and
/// errors go to stderr.
fn show(event: &StackProgress) {
    match event.action.as_str() {
        "Warning" => eprintln!("WARN[0000] {}", event.message),
        "Error" if event.object == "project" => {}
        "Error" => eprintln!(" {} {}  Error {}", capitalised(&event.object), event.name, event.message),
        _ if event.object == "project" => {}
        action => {
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, " {} {}  {action}", capitalised(&event.object), event.name);
            let _ = stdout.flush();
        }
    }
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// POSTs and follows a stack progress stream to its last line.
async fn progress(client: &Client, path: &str, body: Option<&impl serde::Serialize>) -> Result<(), CliError> {
    let (content_type, body) = match body {
        Some(b) => (Some("application/json"), json_body(b)),
        None => (None, empty_body()),
    };
    let response = client.request(Method::POST, path, content_type, body).await?;
    let body = response.into_body().into_data_stream().map_err(std::io::Error::other);
    let mut lines = tokio::io::BufReader::new(tokio_util::io::StreamReader::new(body)).lines();
    while let Some(line) = lines
        .next_line()
        .await
        .map_err(|e| CliError::Local(format!("reading the daemon's progress stream: {e}")))?
    {
        if line.trim().is_empty() {
            continue;
        }
        let event: StackProgress = serde_json::from_str(&line)
            .map_err(|e| CliError::Local(format!("decoding the daemon's progress stream: {e}")))?;
        show(&event);
        if event.object == "project" {
            match event.action.as_str() {
                "Done" => return Ok(()),
                "Error" => return Err(CliError::Local(event.message)),
                _ => {}
            }
        }
    }
    Err(CliError::Local("the daemon's progress stream ended without a result".into()))
}

fn stack_path(name: &str, rest: &str) -> String {
    format!("/api/v1/stacks/{}{rest}", path_segment(name))
}

async fn run_up(client: &Client, args: &ComposeArgs, up: &UpArgs) -> i32 {
    let loaded = match load(args) {
        Ok(l) => l,
        Err(e) => return super::report(Err(e)),
    };
    let scale = match parse_scale(&up.scale) {
        Ok(s) => s,
        Err(e) => return super::report(Err(e)),
    };
    let name = loaded.project.name.clone();
    let request = StackUp {
        services: up.services.clone(),
        scale,
        build: up.build,
        force_recreate: up.force_recreate,
        no_recreate: up.no_recreate,
        remove_orphans: up.remove_orphans,
        ..loaded.request
    };
    let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    if let Err(e) = progress(client, &stack_path(&name, "/up"), Some(&request)).await {
        return super::report(Err(e));
    }
    if up.detach {
        return 0;
    }
    // Attached: the services' logs until they all stop, or Ctrl-C stops them (as Compose does).
    let mut pairs = vec![("follow", "1"), ("since", since.as_str())];
    let services = up.services.join(",");
    if !services.is_empty() {
        pairs.push(("services", &services));
    }
    let path = format!("/api/v1/ws/stacks/{}/logs{}", path_segment(&name), query(pairs));
    if let Ok(containers) = project_containers(client, &name, false).await {
        let attached: Vec<&str> = containers
            .iter()
            .filter(|c| {
                up.services.is_empty()
                    || c.labels.get(model::LABEL_SERVICE).is_some_and(|s| up.services.contains(s))
            })
            .map(|c| short_name(&name, &c.name))
            .collect();
        println!("Attaching to {}", attached.join(", "));
    }
    let printer = LogPrinter::new(&name, false, false);
    tokio::select! {
        result = follow_logs(client, &path, printer) => {
            if let Err(e) = result {
                return super::report(Err(e));
            }
            // Every container stopped: say how each ended.
            let path = format!(
                "/api/v1/containers{}",
                query([("all", "1"), ("filter", format!("label=com.docker.compose.project={name}").as_str())])
            );
            if let Ok(containers) = client.get_json::<Vec<ContainerSummary>>(&path).await {
                for c in containers.iter().rev() {
                    println!("{} exited with code {}", short_name(&name, &c.name), c.state.exit_code);
                }
            }
            0
        }
        _ = tokio::signal::ctrl_c() => {
            eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
            let path = format!("{}{}", stack_path(&name, "/stop"), query([("services", services.as_str())]));
            let stop = progress(client, &path, None::<&()>);
            tokio::select! {
                result = stop => {
                    if let Err(e) = result {
                        return super::report(Err(e));
                    }
                }
                _ = tokio::signal::ctrl_c() => {}
            }
            130
        }
    }
}

/// `app-web-1` → `web-1`, as Compose prefixes log lines.
fn short_name<'a>(project: &str, container: &'a str) -> &'a str {
    container.strip_prefix(project).and_then(|r| r.strip_prefix('-')).unwrap_or(container)
}

struct LogPrinter {
    project: String,
    timestamps: bool,
    no_prefix: bool,
    width: usize,
}

impl LogPrinter {
    fn new(project: &str, timestamps: bool, no_prefix: bool) -> LogPrinter {
        LogPrinter { project: project.to_string(), timestamps, no_prefix, width: 0 }
    }

    fn print(&mut self, entry: &StackLogEntry) -> std::io::Result<()> {
        let mut text = String::new();
        if !self.no_prefix {
            let name = short_name(&self.project, &entry.container);
            self.width = self.width.max(name.len());
            text.push_str(&format!("{name:<width$}  | ", width = self.width));
        }
        if self.timestamps {
            text.push_str(&entry.time);
            text.push(' ');
        }
        text.push_str(&entry.line);
        if !text.ends_with('\n') {
            text.push('\n');
        }
        if entry.stream == "stderr" {
            let mut e = std::io::stderr().lock();
            e.write_all(text.as_bytes()).and_then(|()| e.flush())
        } else {
            let mut o = std::io::stdout().lock();
            o.write_all(text.as_bytes()).and_then(|()| o.flush())
        }
    }
}

async fn follow_logs(client: &Client, path: &str, mut printer: LogPrinter) -> Result<(), CliError> {
    let mut socket = match stream::connect(client, path).await {
        Ok(s) => s,
        Err(OpenError::Cli(e)) => return Err(e),
        Err(OpenError::Command(e)) => return Err(CliError::Daemon(e.message)),
    };
    while let Some(message) = socket.next().await {
        let message = message.map_err(|e| CliError::Local(format!("reading the logs: {e}")))?;
        let text = match message {
            Message::Text(t) => t,
            Message::Close(_) => break,
            _ => continue,
        };
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| CliError::Local(format!("decoding the logs: {e}")))?;
        match value["type"].as_str() {
            Some("logs") => {
                let entries: Vec<StackLogEntry> = serde_json::from_value(value["entries"].clone())
                    .map_err(|e| CliError::Local(format!("decoding the logs: {e}")))?;
                for entry in &entries {
                    match printer.print(entry) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                        Err(e) => return Err(CliError::Local(format!("writing the logs: {e}"))),
                    }
                }
            }
            Some("error") => {
                return Err(CliError::Daemon(value["message"].as_str().unwrap_or_default().into()))
            }
            Some("end") => break,
            _ => {}
        }
    }
    Ok(())
}

async fn run_down(client: &Client, args: &ComposeArgs, down: &DownArgs) -> Result<(), CliError> {
    let name = project_name(args)?;
    let request =
        StackDown { volumes: down.volumes, remove_orphans: down.remove_orphans, timeout: down.timeout };
    progress(client, &stack_path(&name, "/down"), Some(&request)).await
}

async fn operation(
    client: &Client,
    args: &ComposeArgs,
    op: &str,
    services: &[String],
    timeout: Option<u32>,
) -> Result<(), CliError> {
    let name = project_name(args)?;
    let services = services.join(",");
    let timeout = timeout.map(|t| t.to_string());
    let mut pairs = Vec::new();
    if !services.is_empty() {
        pairs.push(("services", services.as_str()));
    }
    if let Some(t) = &timeout {
        pairs.push(("t", t.as_str()));
    }
    let path = format!("{}{}", stack_path(&name, &format!("/{op}")), query(pairs));
    progress(client, &path, None::<&()>).await
}

async fn project_containers(
    client: &Client,
    name: &str,
    all: bool,
) -> Result<Vec<ContainerSummary>, CliError> {
    let filter = format!("label=com.docker.compose.project={name}");
    let mut pairs = vec![("filter", filter.as_str())];
    if all {
        pairs.push(("all", "1"));
    }
    let mut containers: Vec<ContainerSummary> =
        client.get_json(&format!("/api/v1/containers{}", query(pairs))).await?;
    containers.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(containers)
}

async fn run_ps(client: &Client, args: &ComposeArgs, ps: &PsArgs) -> Result<(), CliError> {
    let name = project_name(args)?;
    let containers: Vec<ContainerSummary> = project_containers(client, &name, ps.all)
        .await?
        .into_iter()
        .filter(|c| {
            ps.services.is_empty()
                || c.labels.get(model::LABEL_SERVICE).is_some_and(|s| ps.services.contains(s))
        })
        .collect();
    if ps.quiet {
        let ids: String = containers.iter().map(|c| format!("{}\n", c.id)).collect();
        return super::out(&ids);
    }
    let now = chrono::Utc::now();
    let mut table = Table::new(&["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"]);
    for c in &containers {
        let mut command = c.command.clone();
        if command.chars().count() > 20 {
            command = format!("{}…", command.chars().take(19).collect::<String>());
        }
        let ports = c
            .ports
            .iter()
            .map(|p| {
                let ip = if p.host_ip.is_empty() { "0.0.0.0" } else { p.host_ip.as_str() };
                format!("{ip}:{}->{}/{}", p.host_port, p.container_port, p.protocol)
            })
            .collect::<Vec<_>>()
            .join(", ");
        table.row(vec![
            c.name.clone(),
            c.image.clone(),
            format!("\"{command}\""),
            c.labels.get(model::LABEL_SERVICE).cloned().unwrap_or_default(),
            time_ago(&c.created, now),
            c.state.human_status(now),
            ports,
        ]);
    }
    super::out(&table.render())
}

async fn run_logs(client: &Client, args: &ComposeArgs, logs: &LogsArgs) -> Result<(), CliError> {
    let name = project_name(args)?;
    if logs.tail != "all" && logs.tail.parse::<usize>().is_err() {
        return Err(CliError::Usage(format!(
            "invalid value for --tail: {:?} (a number or \"all\")",
            logs.tail
        )));
    }
    let services = logs.services.join(",");
    let mut pairs = vec![("tail", logs.tail.as_str())];
    if logs.follow {
        pairs.push(("follow", "1"));
    }
    if !services.is_empty() {
        pairs.push(("services", &services));
    }
    let path = format!("/api/v1/ws/stacks/{}/logs{}", path_segment(&name), query(pairs));
    follow_logs(client, &path, LogPrinter::new(&name, logs.timestamps, logs.no_log_prefix)).await
}

/// Parses flags for another command's argument struct, so its validation is reused.
fn parse_as<T: Args>(argv: &[String]) -> Result<T, CliError> {
    #[derive(Parser)]
    struct Wrap<T: Args> {
        #[command(flatten)]
        inner: T,
    }
    Wrap::<T>::try_parse_from(std::iter::once("berth".to_string()).chain(argv.iter().cloned()))
        .map(|w| w.inner)
        .map_err(|e| CliError::Usage(e.to_string()))
}

async fn run_pull(client: &Client, args: &ComposeArgs, services: &[String]) -> Result<(), CliError> {
    let loaded = load(args)?;
    let selected = loaded.project.selected(services).map_err(|e| CliError::Local(e.to_string()))?;
    for service in loaded.project.services.values().filter(|s| selected.contains(&s.name)) {
        if service.build.is_some() && loaded.project.document["services"][&service.name]["image"].is_null() {
            continue;
        }
        println!(" Image {}  Pulling", service.image);
        let pull: super::registry::PullArgs = parse_as(&["-q".into(), service.image.clone()])?;
        super::registry::pull(client, pull).await?;
        println!(" Image {}  Pulled", service.image);
    }
    Ok(())
}

async fn run_build(client: &Client, args: &ComposeArgs, services: &[String]) -> Result<(), CliError> {
    let loaded = load(args)?;
    let selected = loaded.project.selected(services).map_err(|e| CliError::Local(e.to_string()))?;
    for service in loaded.project.services.values().filter(|s| selected.contains(&s.name)) {
        let Some(build) = &service.build else { continue };
        let mut argv = vec!["-t".to_string(), service.image.clone()];
        if let Some(dockerfile) = &build.dockerfile {
            argv.push("-f".into());
            argv.push(build.context.join(dockerfile).display().to_string());
        }
        for (k, v) in &build.args {
            argv.push("--build-arg".into());
            argv.push(format!("{k}={v}"));
        }
        for (k, v) in &build.labels {
            argv.push("--label".into());
            argv.push(format!("{k}={v}"));
        }
        if let Some(target) = &build.target {
            argv.push("--target".into());
            argv.push(target.clone());
        }
        argv.push(build.context.display().to_string());
        let build_args: super::build::BuildArgs = parse_as(&argv)?;
        super::build::build(client, build_args).await?;
    }
    Ok(())
}

fn run_config(args: &ComposeArgs, config: &ConfigArgs) -> Result<(), CliError> {
    let loaded = load(args)?;
    if config.quiet {
        return Ok(());
    }
    if config.services {
        let names: String = loaded.project.services.keys().map(|s| format!("{s}\n")).collect();
        return super::out(&names);
    }
    if config.volumes {
        let names: String = loaded.project.volumes.keys().map(|s| format!("{s}\n")).collect();
        return super::out(&names);
    }
    let yaml = loaded.project.config_yaml().map_err(|e| CliError::Local(e.to_string()))?;
    super::out(&yaml)
}

async fn run_scale(client: &Client, args: &ComposeArgs, scale: &ScaleArgs) -> Result<(), CliError> {
    let loaded = load(args)?;
    let scale = parse_scale(&scale.scale)?;
    let request = StackUp { services: scale.keys().cloned().collect(), scale, ..loaded.request };
    progress(client, &stack_path(&loaded.project.name, "/up"), Some(&request)).await
}

async fn run_ls(client: &Client, ls: &LsArgs) -> Result<(), CliError> {
    let stacks: Vec<StackSummary> = client.get_json("/api/v1/stacks").await?;
    let stacks: Vec<&StackSummary> = stacks
        .iter()
        .filter(|s| ls.all || s.status.contains("running") || s.status.contains("restarting"))
        .collect();
    if ls.quiet {
        return super::out(&stacks.iter().map(|s| format!("{}\n", s.name)).collect::<String>());
    }
    let mut table = Table::new(&["NAME", "STATUS", "WORKING DIR"]);
    for s in stacks {
        table.row(vec![s.name.clone(), s.status.clone(), s.working_dir.clone()]);
    }
    super::out(&table.render())
}

async fn run_exec(client: &Client, args: &ComposeArgs, exec: &ExecArgs) -> i32 {
    let name = match project_name(args) {
        Ok(n) => n,
        Err(e) => return super::report(Err(e)),
    };
    let (service, command) = exec.service_and_command.split_first().expect("clap requires two values");
    // The container of that service and index, as Compose picks it.
    let containers = match project_containers(client, &name, false).await {
        Ok(c) => c,
        Err(e) => return super::report(Err(e)),
    };
    let Some(container) = containers.iter().find(|c| {
        c.labels.get(model::LABEL_SERVICE) == Some(service)
            && c.labels.get(model::LABEL_NUMBER).map(String::as_str) == Some(exec.index.to_string().as_str())
    }) else {
        eprintln!("service {service:?} is not running");
        return 1;
    };
    let mut argv = Vec::new();
    if exec.detach {
        argv.push("-d".to_string());
    } else {
        argv.push("-i".to_string());
    }
    if !exec.no_tty && !exec.detach && std::io::stdin().is_terminal() {
        argv.push("-t".into());
    }
    for e in &exec.env {
        argv.push("-e".into());
        argv.push(e.clone());
    }
    if let Some(u) = &exec.user {
        argv.push("-u".into());
        argv.push(u.clone());
    }
    if let Some(w) = &exec.workdir {
        argv.push("-w".into());
        argv.push(w.clone());
    }
    argv.push(container.name.clone());
    argv.extend(command.iter().cloned());
    match parse_as::<super::containers::ExecArgs>(&argv) {
        Ok(exec_args) => super::containers::exec(client, exec_args).await,
        Err(e) => super::report(Err(e)),
    }
}
