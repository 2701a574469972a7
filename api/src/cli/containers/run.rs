//! `create`, `run` and `start`: the flags turned into a [`ContainerConfig`], the container
//! created, attached to and started, with Docker's exit codes (125, 126, 127).

use std::collections::BTreeMap;
use std::io::IsTerminal;

use berth_types::{
    CommandError, ContainerConfig, ContainerInspect, ContainerStatus, CreatedContainer, Resources, WaitResult,
};
use http_body_util::BodyExt;
use hyper::Method;

use super::{container_path, AttachArgs, CreateArgs, RunArgs, StartArgs};
use crate::cli::client::{empty_body, json_body, query, CliError, Client};
use crate::cli::opts::{env_entry, parse_env_file, parse_labels};
use crate::cli::stream::{self, OpenError, Streams};
use crate::cli::{last_error, out};

/// Turns the flags into the request. Errors are the CLI's (bad flag values).
pub(super) fn container_config(args: &CreateArgs) -> Result<ContainerConfig, String> {
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
        privileged: args.privileged,
        security_opt: crate::cli::opts::security_opts(&args.security_opt)?,
        devices: args.device.clone(),
        ulimits: args.ulimit.clone(),
        group_add: args.group_add.clone(),
        masked_paths: None,
        readonly_paths: None,
        userns_mode: args.userns.clone().filter(|u| !u.is_empty()),
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
                ports.extend(crate::cli::network::parse_publish(spec)?);
            }
            ports
        },
        publish_all: args.publish_all,
        expose: args.expose.clone(),
        mounts: crate::cli::volume::parse_mounts(&args.volume, &args.mount, &args.tmpfs)?,
        log_driver: args.log_driver.clone(),
        log_opts: parse_log_opts(&args.log_opt)?,
    })
}

/// `--log-opt KEY=VALUE`, as Docker's CLI splits them (checked by the daemon).
fn parse_log_opts(opts: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    for opt in opts {
        let Some((key, value)) = opt.split_once('=') else {
            return Err(format!("invalid key value pair format in logging opts: {opt:?}"));
        };
        map.insert(key.to_string(), value.to_string());
    }
    Ok(map)
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
pub(super) struct Failure {
    pub(super) code: i32,
    pub(super) message: String,
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

pub(super) fn open_failure(e: OpenError) -> Failure {
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

/// `berth attach`: the local stdio to a running container's, until it exits (its exit code) or
/// the stream ends.
pub async fn attach(client: &Client, args: AttachArgs) -> i32 {
    let result = async {
        let inspect: ContainerInspect =
            client.get_json(&container_path(&args.name, "")).await.map_err(Failure::daemon)?;
        if !matches!(inspect.state.status, ContainerStatus::Running | ContainerStatus::Paused) {
            return Err(Failure::daemon(CliError::Daemon(
                "You cannot attach to a stopped container, start it first".into(),
            )));
        }
        let stdin = !args.no_stdin && inspect.config.open_stdin;
        let socket = open_attach(client, &inspect.id, stdin).await?;
        let proxy = (args.sig_proxy && !inspect.config.tty).then(|| proxy_signals(client, &inspect.id));
        let code = stream::run_session(socket, Streams { tty: inspect.config.tty, stdin }).await;
        proxy.into_iter().flatten().for_each(|task| task.abort());
        code.map_err(Failure::daemon)
    }
    .await;
    match result {
        Ok(code) => code,
        Err(f) => {
            eprintln!("{}", f.message);
            1
        }
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
                    return crate::cli::report(Err(e));
                }
            }
            Err(f) => errors.push(CliError::Local(f.message)),
        }
    }
    crate::cli::report(last_error(errors))
}
