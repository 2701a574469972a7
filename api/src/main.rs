//! `berth`: the daemon (`berth serve`) and the command-line client (every other subcommand),
//! in one binary.

mod cli;
mod serve;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use cli::client::{Client, DEFAULT_HOST};
use cli::containers::ContainerCommand;
use cli::ImageCommand;

#[derive(Debug, Parser)]
#[command(name = "berth", version, about = "A container platform for one Linux node")]
struct Cli {
    /// Daemon socket to connect to: unix:///path or tcp://host:port
    #[arg(short = 'H', long, global = true, env = "BERTH_HOST", default_value = DEFAULT_HOST)]
    host: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon: the HTTP API on a unix socket and on TCP, and the dashboard
    Serve(ServeArgs),
    /// List images
    Images(cli::ImagesArgs),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(cli::TagArgs),
    /// Remove one or more images
    Rmi(cli::RmiArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(cli::ImportArgs),
    /// Load an image from a tar archive or STDIN
    Load(cli::LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(cli::SaveArgs),
    /// Show the berth version information
    Version(cli::VersionArgs),
    /// Display system-wide information
    Info(cli::InfoArgs),
    /// Download an image from a registry
    Pull(cli::registry::PullArgs),
    /// Upload an image to a registry
    Push(cli::registry::PushArgs),
    /// Log in to a registry
    Login(cli::registry::LoginArgs),
    /// Log out from a registry
    Logout(cli::registry::LogoutArgs),
    /// Search a registry for images (or list a repository's tags with --tags)
    Search(cli::search::SearchArgs),
    /// Manage registries (add, ls, rm): shared by pull, push and search
    #[command(subcommand)]
    Registry(cli::registry::RegistryCommand),
    /// Define and run multi-container applications (Docker Compose)
    Compose(cli::compose::ComposeArgs),
    /// Manage networks
    #[command(subcommand)]
    Network(cli::network::NetworkCommand),
    /// List port mappings or a specific mapping for the container
    Port(cli::network::PortArgs),
    /// Create and run a new container from an image
    Run(cli::containers::RunArgs),
    /// Create a new container
    Create(cli::containers::CreateArgs),
    /// Start one or more stopped containers
    Start(cli::containers::StartArgs),
    /// Stop one or more running containers
    Stop(cli::containers::StopArgs),
    /// Restart one or more containers
    Restart(cli::containers::StopArgs),
    /// Kill one or more running containers
    Kill(cli::containers::KillArgs),
    /// Pause all processes within one or more containers
    Pause(cli::containers::NamesArgs),
    /// Unpause all processes within one or more containers
    Unpause(cli::containers::NamesArgs),
    /// Remove one or more containers
    Rm(cli::containers::RmArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(cli::containers::NamesArgs),
    /// Return low-level information on containers or images
    Inspect(cli::containers::InspectArgs),
    /// Display the running processes of a container
    Top(cli::containers::TopArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(cli::containers::StatsArgs),
    /// Rename a container
    Rename(cli::containers::RenameArgs),
    /// Fetch the logs of a container
    Logs(cli::containers::LogsArgs),
    /// Execute a command in a running container
    Exec(cli::containers::ExecArgs),
    /// List containers
    Ps(cli::containers::PsArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(cli::containers::CpArgs),
    /// Create a new image from a container's changes
    Commit(cli::containers::CommitArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(cli::containers::DiffArgs),
    /// Export a container's filesystem as a tar archive
    Export(cli::containers::ExportArgs),
    /// Update configuration of one or more containers
    Update(cli::containers::UpdateArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(cli::containers::ContainerCommand),
    /// Build an image from a Dockerfile
    Build(cli::build::BuildArgs),
    /// Show the history of an image
    History(cli::build::HistoryArgs),
    /// Manage volumes
    #[command(subcommand)]
    Volume(cli::volume::VolumeCommand),
    /// Attach local standard input, output, and error streams to a running container
    Attach(cli::containers::AttachArgs),
    /// Get real time events from the server
    Events(cli::system::EventsArgs),
    /// Manage berth (disk usage, prune, events, info)
    #[command(subcommand)]
    System(cli::system::SystemCommand),
    /// Manage the API's users, teams and tokens (admins)
    #[command(subcommand)]
    Admin(cli::admin::AdminCommand),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Engine state directory
    #[arg(long, env = "BERTH_ROOT", default_value = "/var/lib/berth")]
    root: PathBuf,
    /// Runtime state directory; the API socket is <run-dir>/berth.sock
    #[arg(long, env = "BERTH_RUN_DIR", default_value = "/run/berth")]
    run_dir: PathBuf,
    /// TCP address of the API and the dashboard
    #[arg(long, env = "BERTH_LISTEN", default_value = "127.0.0.1:7380")]
    listen: SocketAddr,
    /// How container root filesystems are assembled (default: overlay where the kernel has it)
    #[arg(long, value_enum)]
    snapshotter: Option<Snapshotter>,
    /// A registry that may be reached over plain HTTP (host, host:port or IPv4 CIDR);
    /// localhost and 127.0.0.0/8 always may. Repeat for several
    #[arg(long = "insecure-registry", value_name = "REGISTRY")]
    insecure_registries: Vec<String>,
    /// PEM certificate (chain) for TLS on the TCP listener; needs --tls-key
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Linux bridge of the default `bridge` network; "none" disables it (containers without
    /// --network then get none), as dockerd's -b
    #[arg(short = 'b', long, value_name = "BRIDGE", default_value = berth_engine::network::DEFAULT_BRIDGE)]
    bridge: String,
    /// Unix socket of the Docker Engine API, root's and trusted like the API socket
    /// (e.g. /var/run/docker.sock); "none" turns it off [default: <run-dir>/docker.sock]
    #[arg(long, env = "BERTH_DOCKER_SOCKET", value_name = "PATH")]
    docker_socket: Option<PathBuf>,
    /// TCP address of the Docker Engine API (off unless given); callers send a berth API token
    /// as "Authorization: Bearer TOKEN" (the docker CLI's HttpHeaders)
    #[arg(long, env = "BERTH_DOCKER_LISTEN", value_name = "ADDR")]
    docker_listen: Option<SocketAddr>,
    /// Allow --listen on a non-loopback address without TLS, and --docker-listen on one (plain
    /// HTTP): passwords and API tokens then cross the network in clear
    #[arg(long, env = "BERTH_INSECURE")]
    insecure: bool,
    /// TCP address of the registry server (the OCI distribution API over this node's images;
    /// off unless given). TLS with --tls-cert/--tls-key when they are given; a non-loopback
    /// address without them needs --insecure
    #[arg(long, env = "BERTH_REGISTRY_LISTEN", value_name = "ADDR")]
    registry_listen: Option<SocketAddr>,
    /// Unix socket of the Kubernetes container runtime interface (CRI v1, for kubelet and
    /// crictl), root's; "none" turns it off [default: <run-dir>/cri.sock]
    #[arg(long, env = "BERTH_CRI_SOCKET", value_name = "PATH")]
    cri_socket: Option<PathBuf>,
    /// Directory of the CNI network configurations CRI pods get their network from
    #[arg(long, value_name = "DIR", default_value = "/etc/cni/net.d")]
    cni_conf_dir: PathBuf,
    /// Directory of the CNI plugins; repeat for several
    #[arg(long, value_name = "DIR", default_value = "/usr/lib/cni")]
    cni_bin_dir: Vec<PathBuf>,
    /// Run containers in a user namespace: root in a container is an unprivileged id of the
    /// host, from the subordinate ranges of USER in /etc/subuid and /etc/subgid; "default"
    /// makes and uses the user "berth" (as dockerd's --userns-remap)
    #[arg(long, value_name = "default|USER[:GROUP]")]
    userns_remap: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Snapshotter {
    Overlay,
    Copy,
}

fn main() {
    // `berth monitor ...`: a container's monitor, started by the daemon (hidden, no async
    // runtime: it must stay small).
    let mut args = std::env::args();
    match args.nth(1).as_deref() {
        Some("monitor") => std::process::exit(berth_engine::monitor::main(args.collect())),
        // `berth build-step ...`: a RUN or COPY step of a build, started by the daemon (hidden).
        Some("build-step") => std::process::exit(berth_engine::build::step::main(args.collect())),
        // `berth port-proxy ...`: a container's published ports, started by the daemon (hidden).
        Some("port-proxy") => std::process::exit(berth_engine::network::proxy::main(args.collect())),
        // `berth pod-pause ...`: a CRI pod's pause process, started by the daemon (hidden).
        Some(berth_engine::pod::pause::SUBCOMMAND) => {
            std::process::exit(berth_engine::pod::pause::main(args.collect()))
        }
        _ => {}
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Docker's `run`, `create` and `exec` exit 125 on bad flags, so that scripts can tell
            // them from the container's own exit codes.
            let code = match e.exit_code() {
                0 => 0,
                _ if cli::containers::exits_125_on_usage_errors(std::env::args()) => 125,
                other => other,
            };
            std::process::exit(code);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("starting the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(run(cli));
    // Do not wait for blocking tasks still draining a pipe (an interrupted save, ...).
    runtime.shutdown_background();
    std::process::exit(code);
}

async fn run(cli: Cli) -> i32 {
    if let Command::Serve(args) = cli.command {
        return serve(args).await;
    }
    let client = match Client::new(&cli.host) {
        Ok(c) => c,
        Err(e) => return cli::report(Err(e)),
    };
    let result = match cli.command {
        Command::Serve(_) => unreachable!("handled above"),
        Command::Images(args) | Command::Image(ImageCommand::Ls(args)) => cli::images(&client, args).await,
        Command::Image(ImageCommand::Inspect(args)) => cli::inspect(&client, args).await,
        Command::Rmi(args) | Command::Image(ImageCommand::Rm(args)) => cli::rmi(&client, args).await,
        Command::Image(ImageCommand::Prune(args)) => cli::prune(&client, args).await,
        Command::Tag(args) | Command::Image(ImageCommand::Tag(args)) => cli::tag(&client, args).await,
        Command::Import(args) | Command::Image(ImageCommand::Import(args)) => {
            cli::import(&client, args).await
        }
        Command::Load(args) | Command::Image(ImageCommand::Load(args)) => cli::load(&client, args).await,
        Command::Save(args) | Command::Image(ImageCommand::Save(args)) => cli::save(&client, args).await,
        Command::Version(args) => cli::version(&client, args).await,
        Command::Info(args) => cli::info(&client, args).await,
        Command::Pull(args) | Command::Image(ImageCommand::Pull(args)) => {
            cli::registry::pull(&client, args).await
        }
        Command::Push(args) | Command::Image(ImageCommand::Push(args)) => {
            cli::registry::push(&client, args).await
        }
        Command::Login(args) => cli::registry::login(&client, args).await,
        Command::Search(args) => cli::search::search(&client, args).await,
        Command::Registry(command) => cli::registry::registry(&client, command).await,
        Command::Logout(args) => cli::registry::logout(&client, args).await,
        Command::Run(args) | Command::Container(ContainerCommand::Run(args)) => {
            return cli::containers::run(&client, args).await
        }
        Command::Create(args) | Command::Container(ContainerCommand::Create(args)) => {
            return cli::containers::create(&client, args).await
        }
        Command::Start(args) | Command::Container(ContainerCommand::Start(args)) => {
            return cli::containers::start(&client, args).await
        }
        Command::Exec(args) | Command::Container(ContainerCommand::Exec(args)) => {
            return cli::containers::exec(&client, args).await
        }
        Command::Stop(args) | Command::Container(ContainerCommand::Stop(args)) => {
            cli::containers::stop(&client, args).await
        }
        Command::Restart(args) | Command::Container(ContainerCommand::Restart(args)) => {
            cli::containers::restart(&client, args).await
        }
        Command::Kill(args) | Command::Container(ContainerCommand::Kill(args)) => {
            cli::containers::kill(&client, args).await
        }
        Command::Pause(args) | Command::Container(ContainerCommand::Pause(args)) => {
            cli::containers::pause(&client, args).await
        }
        Command::Unpause(args) | Command::Container(ContainerCommand::Unpause(args)) => {
            cli::containers::unpause(&client, args).await
        }
        Command::Rm(args) | Command::Container(ContainerCommand::Rm(args)) => {
            cli::containers::rm(&client, args).await
        }
        Command::Wait(args) | Command::Container(ContainerCommand::Wait(args)) => {
            cli::containers::wait(&client, args).await
        }
        Command::Inspect(args) => cli::containers::inspect(&client, args).await,
        Command::Container(ContainerCommand::Inspect(mut args)) => {
            args.kind = Some("container".into());
            cli::containers::inspect(&client, args).await
        }
        Command::Top(args) | Command::Container(ContainerCommand::Top(args)) => {
            cli::containers::top(&client, args).await
        }
        Command::Stats(args) | Command::Container(ContainerCommand::Stats(args)) => {
            cli::containers::stats(&client, args).await
        }
        Command::Rename(args) | Command::Container(ContainerCommand::Rename(args)) => {
            cli::containers::rename(&client, args).await
        }
        Command::Logs(args) | Command::Container(ContainerCommand::Logs(args)) => {
            cli::containers::logs(&client, args).await
        }
        Command::Ps(args) | Command::Container(ContainerCommand::Ls(args)) => {
            cli::containers::ps(&client, args).await
        }
        Command::Container(ContainerCommand::Prune(args)) => cli::containers::prune(&client, args).await,
        Command::Cp(args) | Command::Container(ContainerCommand::Cp(args)) => {
            cli::containers::cp(&client, args).await
        }
        Command::Commit(args) | Command::Container(ContainerCommand::Commit(args)) => {
            cli::containers::commit(&client, args).await
        }
        Command::Diff(args) | Command::Container(ContainerCommand::Diff(args)) => {
            cli::containers::diff(&client, args).await
        }
        Command::Export(args) | Command::Container(ContainerCommand::Export(args)) => {
            cli::containers::export(&client, args).await
        }
        Command::Update(args) | Command::Container(ContainerCommand::Update(args)) => {
            cli::containers::update(&client, args).await
        }
        Command::Network(command) => cli::network::run(&client, command).await,
        Command::Compose(args) => return cli::compose::run(&client, args).await,
        Command::Port(args) | Command::Container(ContainerCommand::Port(args)) => {
            cli::network::port(&client, args).await
        }
        Command::Build(args) | Command::Image(ImageCommand::Build(args)) => {
            cli::build::build(&client, args).await
        }
        Command::History(args) | Command::Image(ImageCommand::History(args)) => {
            cli::build::history(&client, args).await
        }
        Command::Admin(command) => cli::admin::run(&client, command).await,
        Command::Volume(command) => cli::volume::run(&client, command).await,
        Command::Attach(args) | Command::Container(ContainerCommand::Attach(args)) => {
            return cli::containers::attach(&client, args).await
        }
        Command::Events(args) | Command::System(cli::system::SystemCommand::Events(args)) => {
            cli::system::events(&client, args).await
        }
        Command::System(cli::system::SystemCommand::Df(args)) => cli::system::df(&client, args).await,
        Command::System(cli::system::SystemCommand::Prune(args)) => cli::system::prune(&client, args).await,
        Command::System(cli::system::SystemCommand::Info(args)) => cli::info(&client, args).await,
        Command::System(cli::system::SystemCommand::Check(args)) => cli::system::check(&client, args).await,
    };
    cli::report(result)
}

async fn serve(args: ServeArgs) -> i32 {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = serve::ServeConfig {
        root: args.root,
        run_dir: args.run_dir.clone(),
        listen: args.listen,
        snapshotter: args.snapshotter.map(|s| match s {
            Snapshotter::Overlay => berth_engine::SnapshotterKind::Overlay,
            Snapshotter::Copy => berth_engine::SnapshotterKind::Copy,
        }),
        insecure_registries: args.insecure_registries,
        tls: args.tls_cert.zip(args.tls_key),
        bridge: Some(args.bridge).filter(|b| b != "none"),
        docker_socket: match args.docker_socket {
            Some(path) if path.as_os_str() == "none" => None,
            Some(path) => Some(path),
            None => Some(args.run_dir.join(serve::DOCKER_SOCKET_NAME)),
        },
        docker_listen: args.docker_listen,
        insecure: args.insecure,
        registry_listen: args.registry_listen,
        cri: match args.cri_socket {
            Some(path) if path.as_os_str() == "none" => None,
            socket => Some(serve::cri::CriConfig {
                socket: socket.unwrap_or_else(|| args.run_dir.join(serve::cri::CRI_SOCKET_NAME)),
                cni: berth_engine::pod::CniConfig { conf_dir: args.cni_conf_dir, bin_dirs: args.cni_bin_dir },
            }),
        },
        userns_remap: args.userns_remap,
    };
    match serve::run(config).await {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("berth serve: {message}");
            1
        }
    }
}
