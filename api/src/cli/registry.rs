//! `berth pull`, `push`, `login`, `logout`. Pull and push read the daemon's stream of JSON lines
//! and show it as Docker does: a progress bar per layer on a terminal (indicatif), one line per
//! layer state otherwise.

use std::collections::HashMap;
use std::io::{IsTerminal, Read};

use berth_types::{
    LayerStatus, LoginRequest, LogoutRequest, PullRequest, PushRequest, RegistryAuthReport, TransferEvent,
};
use clap::Args;
use futures_util::TryStreamExt;
use http_body_util::BodyExt;
use hyper::Method;
use tokio::io::AsyncBufReadExt;

use super::client::{json_body, CliError, Client};
use super::out;

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Set platform if server is multi-platform capable (os/arch[/variant])
    #[arg(long)]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub reference: String,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub reference: String,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Username
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password
    #[arg(short, long)]
    pub password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    /// Registry (default: Docker Hub)
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Registry (default: Docker Hub)
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

/// `berth pull`.
pub async fn pull(client: &Client, args: PullArgs) -> Result<(), CliError> {
    let shown = familiar(&args.reference);
    if !args.quiet && !args.reference.contains('@') && !has_tag(&args.reference) {
        out("Using default tag: latest\n")?;
    }
    let request = PullRequest { reference: args.reference.clone(), platform: args.platform.clone() };
    let mut view = View::new(args.quiet, Direction::Pull);
    let last = stream(client, "/api/v1/images/pull", &request, &mut view).await?;
    view.finish();
    match last {
        TransferEvent::Pulled(report) => {
            if args.quiet {
                return out(&format!("{}\n", report.reference));
            }
            let status = if report.layers_downloaded == 0 && report.bytes_downloaded == 0 {
                format!("Image is up to date for {shown}")
            } else {
                format!("Downloaded newer image for {shown}")
            };
            let digest = report.index_digest.as_deref().unwrap_or(&report.digest);
            out(&format!("Digest: {digest}\nStatus: {status}\n{}\n", report.reference))
        }
        other => Err(CliError::Local(format!("unexpected end of the pull stream: {other:?}"))),
    }
}

/// `berth push`.
pub async fn push(client: &Client, args: PushArgs) -> Result<(), CliError> {
    if !args.quiet {
        let repository = berth_engine::Reference::parse(&args.reference)
            .map(|r| r.familiar_repository())
            .unwrap_or_else(|_| args.reference.clone());
        out(&format!("The push refers to repository [{repository}]\n"))?;
    }
    let request = PushRequest { reference: args.reference.clone() };
    let mut view = View::new(args.quiet, Direction::Push);
    let last = stream(client, "/api/v1/images/push", &request, &mut view).await?;
    view.finish();
    match last {
        TransferEvent::Pushed(report) => {
            if args.quiet {
                return out(&format!("{}\n", report.reference));
            }
            let name = berth_engine::Reference::parse(&report.reference)
                .ok()
                .and_then(|r| r.tag().map(str::to_string))
                .unwrap_or_else(|| report.digest.clone());
            out(&format!("{name}: digest: {} size: {}\n", report.digest, report.size))
        }
        other => Err(CliError::Local(format!("unexpected end of the push stream: {other:?}"))),
    }
}

/// Sends the request and feeds every line to `view`; returns the last event (the result), or
/// the error it carries.
async fn stream(
    client: &Client,
    path: &str,
    request: &impl serde::Serialize,
    view: &mut View,
) -> Result<TransferEvent, CliError> {
    let response = client.request(Method::POST, path, Some("application/json"), json_body(request)).await?;
    let body = response.into_body().into_data_stream().map_err(std::io::Error::other);
    let mut lines = tokio::io::BufReader::new(tokio_util::io::StreamReader::new(body)).lines();
    let mut last = None;
    while let Some(line) = lines
        .next_line()
        .await
        .map_err(|e| CliError::Local(format!("reading the daemon's progress stream: {e}")))?
    {
        if line.trim().is_empty() {
            continue;
        }
        let event: TransferEvent = serde_json::from_str(&line)
            .map_err(|e| CliError::Local(format!("decoding the daemon's progress stream: {e}")))?;
        match event {
            TransferEvent::Error { message, .. } => {
                view.finish();
                return Err(CliError::Daemon(message));
            }
            TransferEvent::Pulled(_) | TransferEvent::Pushed(_) => last = Some(event),
            event => view.show(&event)?,
        }
    }
    last.ok_or_else(|| CliError::Local("the daemon's progress stream ended without a result".into()))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Pull,
    Push,
}

/// How progress is shown: bars on a terminal, lines otherwise, nothing with `-q`.
struct View {
    quiet: bool,
    direction: Direction,
    bars: Option<indicatif::MultiProgress>,
    layers: HashMap<String, indicatif::ProgressBar>,
    /// The last status printed per layer (plain output prints changes only).
    printed: HashMap<String, LayerStatus>,
}

impl View {
    fn new(quiet: bool, direction: Direction) -> View {
        let bars = (!quiet && std::io::stdout().is_terminal()).then(indicatif::MultiProgress::new);
        View { quiet, direction, bars, layers: HashMap::new(), printed: HashMap::new() }
    }

    fn show(&mut self, event: &TransferEvent) -> Result<(), CliError> {
        if self.quiet {
            return Ok(());
        }
        match event {
            TransferEvent::Resolving { reference } if self.direction == Direction::Pull => {
                let tag = reference.rsplit_once(':').map(|(_, t)| t).filter(|t| !t.contains('/'));
                let repository = berth_engine::Reference::parse(reference)
                    .map(|r| r.path().to_string())
                    .unwrap_or_else(|_| reference.clone());
                let line = match tag {
                    Some(tag) if !reference.contains('@') => format!("{tag}: Pulling from {repository}"),
                    _ => format!("Pulling from {repository}"),
                };
                self.line(&line)
            }
            TransferEvent::Layer { digest, status, current, total } => {
                let id = short(digest);
                let text = status_text(*status, self.direction);
                if let Some(multi) = &self.bars {
                    let bar = self.layers.entry(digest.clone()).or_insert_with(|| {
                        let bar = multi.add(indicatif::ProgressBar::new(*total));
                        bar.set_style(
                            indicatif::ProgressStyle::with_template(
                                "{prefix}: {msg:<20} [{bar:30}] {bytes}/{total_bytes}",
                            )
                            .expect("valid template")
                            .progress_chars("=> "),
                        );
                        bar.set_prefix(id.clone());
                        bar
                    });
                    bar.set_length(*total);
                    bar.set_position(*current);
                    bar.set_message(text);
                    if matches!(
                        status,
                        LayerStatus::Done
                            | LayerStatus::AlreadyExists
                            | LayerStatus::Pushed
                            | LayerStatus::Mounted
                    ) {
                        bar.set_style(
                            indicatif::ProgressStyle::with_template("{prefix}: {msg}").expect("valid"),
                        );
                        bar.finish_with_message(text);
                    }
                    return Ok(());
                }
                // Plain output: state changes only, never byte counts.
                if self.printed.get(digest) == Some(status) {
                    return Ok(());
                }
                self.printed.insert(digest.clone(), *status);
                self.line(&format!("{id}: {text}"))
            }
            _ => Ok(()),
        }
    }

    fn line(&self, text: &str) -> Result<(), CliError> {
        match &self.bars {
            Some(multi) => {
                let _ = multi.println(text);
                Ok(())
            }
            None => out(&format!("{text}\n")),
        }
    }

    fn finish(&mut self) {
        for bar in self.layers.values() {
            if !bar.is_finished() {
                bar.abandon();
            }
        }
        self.layers.clear();
    }
}

fn status_text(status: LayerStatus, direction: Direction) -> &'static str {
    match (status, direction) {
        (LayerStatus::Waiting, Direction::Push) => "Preparing",
        (LayerStatus::Waiting, Direction::Pull) => "Waiting",
        (LayerStatus::Downloading, _) => "Downloading",
        (LayerStatus::Verifying, _) => "Verifying Checksum",
        (LayerStatus::Extracting, _) => "Extracting",
        (LayerStatus::AlreadyExists, Direction::Pull) => "Already exists",
        (LayerStatus::AlreadyExists, Direction::Push) => "Layer already exists",
        (LayerStatus::Done, _) => "Pull complete",
        (LayerStatus::Uploading, _) => "Pushing",
        (LayerStatus::Mounted, _) => "Mounted from another repository",
        (LayerStatus::Pushed, _) => "Pushed",
    }
}

/// The 12 hex digits Docker shows for a layer.
fn short(digest: &str) -> String {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    hex.chars().take(12).collect()
}

fn has_tag(reference: &str) -> bool {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    last.contains(':')
}

fn familiar(reference: &str) -> String {
    berth_engine::Reference::parse(reference).map(|r| r.familiar()).unwrap_or_else(|_| reference.to_string())
}

/// `berth login`.
pub async fn login(client: &Client, args: LoginArgs) -> Result<(), CliError> {
    if args.password.is_some() && args.password_stdin {
        return Err(CliError::Usage("--password and --password-stdin are mutually exclusive".into()));
    }
    let server = args.server.clone().unwrap_or_default();
    let username = match args.username.clone() {
        Some(u) => u,
        None if args.password_stdin => {
            return Err(CliError::Usage("Must provide --username with --password-stdin".into()))
        }
        None => prompt("Username: ", true)?,
    };
    let password = if args.password_stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| CliError::Local(format!("reading the password from stdin: {e}")))?;
        text.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(p) = args.password.clone() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p
    } else {
        let p = prompt("Password: ", false)?;
        eprintln!();
        p
    };
    if username.trim().is_empty() {
        return Err(CliError::Usage("Error: Non-null Username Required".into()));
    }
    if password.is_empty() {
        return Err(CliError::Usage("Error: Password Required".into()));
    }
    let request = LoginRequest { server, username, password };
    let report: RegistryAuthReport = client
        .call_json(Method::POST, "/api/v1/registry/login", Some("application/json"), json_body(&request))
        .await?;
    out(&format!("{}\n", report.status))
}

/// Reads a line from the terminal (echo off for passwords). Without a terminal, stdin's first
/// line is the answer.
fn prompt(label: &str, echo: bool) -> Result<String, CliError> {
    use std::io::Write;
    let stdin = std::io::stdin();
    let on_terminal = stdin.is_terminal();
    if !on_terminal && !echo {
        return Err(CliError::Usage("Cannot perform an interactive login from a non TTY device".into()));
    }
    eprint!("{label}");
    let _ = std::io::stderr().flush();
    let saved = if !echo && on_terminal {
        use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
        let saved =
            tcgetattr(&stdin).map_err(|e| CliError::Local(format!("reading terminal settings: {e}")))?;
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        tcsetattr(&stdin, SetArg::TCSANOW, &quiet)
            .map_err(|e| CliError::Local(format!("turning terminal echo off: {e}")))?;
        Some(saved)
    } else {
        None
    };
    let mut line = String::new();
    let read = stdin.read_line(&mut line);
    if let Some(saved) = saved {
        let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &saved);
    }
    read.map_err(|e| CliError::Local(format!("reading the answer: {e}")))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// `berth logout`.
pub async fn logout(client: &Client, args: LogoutArgs) -> Result<(), CliError> {
    let request = LogoutRequest { server: args.server.unwrap_or_default() };
    let report: RegistryAuthReport = client
        .call_json(Method::POST, "/api/v1/registry/logout", Some("application/json"), json_body(&request))
        .await?;
    out(&format!("{}\n", report.status))
}

/// `berth registry`: registries as objects, shared by pull, push and search (admins manage
/// them; credentials come from `berth login HOST`).
#[derive(Debug, clap::Subcommand)]
pub enum RegistryCommand {
    /// Add a registry: a name for its host, whether it is reached over plain HTTP, which team may use it
    Add(RegistryAddArgs),
    /// List the registries you may use
    #[command(visible_alias = "list")]
    Ls(RegistryLsArgs),
    /// Remove one or more registries
    #[command(visible_alias = "remove")]
    Rm(RegistryRmArgs),
}

#[derive(Debug, Args)]
pub struct RegistryAddArgs {
    /// Reach it over plain HTTP (loopback registries always may)
    #[arg(long)]
    pub insecure: bool,
    /// Only this team may use it (default: every team)
    #[arg(long)]
    pub team: Option<String>,
    pub name: String,
    /// host[:port], or a URL whose host is kept
    pub url: String,
}

#[derive(Debug, Args)]
pub struct RegistryLsArgs {
    /// Only display names
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct RegistryRmArgs {
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// `berth registry ...`.
pub async fn registry(client: &Client, command: RegistryCommand) -> Result<(), CliError> {
    use berth_types::{RegistryCreateRequest, RegistryInfo};
    match command {
        RegistryCommand::Add(args) => {
            let request = RegistryCreateRequest {
                name: args.name,
                url: args.url,
                insecure: args.insecure,
                team: args.team,
            };
            let added: RegistryInfo = client
                .call_json(Method::POST, "/api/v1/registries", Some("application/json"), json_body(&request))
                .await?;
            out(&format!("{}\n", added.name))
        }
        RegistryCommand::Ls(args) => {
            let list: Vec<RegistryInfo> = client.get_json("/api/v1/registries").await?;
            if args.quiet {
                return out(&list.iter().map(|r| format!("{}\n", r.name)).collect::<String>());
            }
            let mut table = super::format::Table::new(&["NAME", "URL", "INSECURE", "TEAM", "LOGGED IN"]);
            for r in list {
                let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
                table.row(vec![
                    r.name,
                    r.url,
                    yes_no(r.insecure),
                    r.team.unwrap_or_else(|| "(all)".into()),
                    yes_no(r.logged_in),
                ]);
            }
            out(&table.render())
        }
        RegistryCommand::Rm(args) => {
            let mut failed = None;
            for name in args.names {
                let path = format!("/api/v1/registries/{}", super::client::path_segment(&name));
                match client.request(Method::DELETE, &path, None, super::client::empty_body()).await {
                    Ok(_) => out(&format!("{name}\n"))?,
                    Err(e) => {
                        eprintln!("Error: {e}");
                        failed = Some(e);
                    }
                }
            }
            failed.map_or(Ok(()), Err)
        }
    }
}
