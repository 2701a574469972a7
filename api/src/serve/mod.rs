//! `berth serve`: the daemon. The HTTP API on a unix socket under the run directory and on TCP,
//! the engine under the root directory, the history in SQLite beside it.

pub mod auth;
mod body;
pub mod cri;
mod dashboard;
mod docker;
mod error;
mod events;
mod headers;
pub mod history;
pub mod openapi;
mod ops;
mod registry;
mod routes;
mod state;
#[cfg(test)]
mod test_support;
mod tls;

use std::fs::{self, File, OpenOptions};
use std::future::IntoFuture;
use std::io::{Read, Seek, Write};
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_engine::{Engine, EngineConfig, SnapshotterKind};
use nix::fcntl::{Flock, FlockArg};
use tokio_util::sync::CancellationToken;

pub use routes::{go_arch, API_VERSION};

/// Where and how the daemon runs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub root: PathBuf,
    pub run_dir: PathBuf,
    pub listen: SocketAddr,
    pub snapshotter: Option<SnapshotterKind>,
    /// Registries reached over plain HTTP besides loopback (`--insecure-registry`).
    pub insecure_registries: Vec<String>,
    /// PEM certificate chain and private key: TCP speaks TLS (`--tls-cert`, `--tls-key`).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The default network's Linux bridge (`--bridge`); `None` is `--bridge none`.
    pub bridge: Option<String>,
    /// The Docker Engine API's unix socket (`--docker-socket`); `None`: off.
    pub docker_socket: Option<PathBuf>,
    /// The Docker Engine API on TCP, for API tokens only (`--docker-listen`); `None`: off.
    pub docker_listen: Option<SocketAddr>,
    /// Listen on a non-loopback address without TLS all the same (`--insecure`).
    pub insecure: bool,
    /// The registry server (OCI distribution API) on TCP (`--registry-listen`); `None`: off.
    pub registry_listen: Option<SocketAddr>,
    /// Kubernetes' CRI on a unix socket (`--cri-socket`); `None`: off.
    pub cri: Option<cri::CriConfig>,
    /// `--userns-remap`: `default` or `USER[:GROUP]`.
    pub userns_remap: Option<String>,
}

/// The socket's name under the run directory.
pub const SOCKET_NAME: &str = "berth.sock";
/// The Docker Engine API socket's default name under the run directory.
pub const DOCKER_SOCKET_NAME: &str = "docker.sock";
/// Holds the daemon's pid and its lock: one daemon per run directory.
const PID_FILE: &str = "berth.pid";
/// Held by the daemon that uses a root: two daemons on one store would corrupt it.
const ROOT_LOCK: &str = "berth.lock";
/// How long a stop waits for requests in flight (a long import) before it cuts them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Runs the daemon until SIGTERM or SIGINT. Errors are one line for the operator.
pub async fn run(config: ServeConfig) -> Result<(), String> {
    // Test builds only: `BERTH_CRASH_AT` makes the daemon die at a named write.
    berth_engine::crash_point::init();
    check_plain_listeners(&config)?;
    let tls = match &config.tls {
        Some((cert, key)) => Some(tls::server_config(cert, key)?),
        None => None,
    };

    create_dir(&config.run_dir, 0o711)?;
    let socket_path = config.run_dir.join(SOCKET_NAME);
    let _run_lock = lock(&config.run_dir.join(PID_FILE), || {
        format!("another berth daemon is already running on {}", socket_path.display())
    })?;
    create_dir(&config.root, 0o700)?;
    let _root_lock = lock(&config.root.join(ROOT_LOCK), || {
        format!("another berth daemon is already using the root {}", config.root.display())
    })?;

    let userns_remap = match &config.userns_remap {
        Some(spec) => {
            Some(berth_engine::runtime::userns::remap(spec).map_err(|e| format!("--userns-remap: {e}"))?)
        }
        None => None,
    };
    // Each container's monitor is this same binary, re-executed as `berth monitor ...`.
    let engine = Engine::open(EngineConfig {
        snapshotter: config.snapshotter,
        default_bridge: config.bridge.clone(),
        userns_remap,
        ..EngineConfig::new(config.root.clone(), config.run_dir.clone())
    })
    .await
    .map_err(|e| format!("opening the engine at {}: {e}", config.root.display()))?;
    engine.set_insecure_registries(config.insecure_registries.clone()).map_err(|e| e.to_string())?;
    let events = events::EventLog::open(&config.root.join("berth.db")).await?;
    let auth = auth::AuthStore::new(events.pool().clone());
    // The first admin: a password from the environment, or one made up and shown once.
    let admin_password = std::env::var("BERTH_ADMIN_PASSWORD").ok().filter(|p| !p.is_empty());
    let admin_token = std::env::var("BERTH_ADMIN_TOKEN").ok().filter(|t| !t.is_empty());
    if let Some(generated) = auth.bootstrap(admin_password, admin_token).await? {
        // Printed on stdout, once: it is not kept anywhere in clear.
        println!("berth: created the admin account \"admin\" with the password: {generated}");
        println!("berth: change it with `berth admin user update admin --password-stdin`");
    }

    let tcp = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("listening on {}: {e}", config.listen))?;
    let docker_tcp = match config.docker_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("listening on {addr} (--docker-listen): {e}"))?,
        ),
        None => None,
    };
    let registry_tcp = match config.registry_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("listening on {addr} (--registry-listen): {e}"))?,
        ),
        None => None,
    };
    // We hold the run directory's lock, so a socket file left there is stale: a daemon that
    // died without cleaning up. A Docker socket elsewhere (/var/run/docker.sock) may belong to
    // a running dockerd: only a socket nothing answers on is replaced.
    remove_stale_socket(&socket_path, false, "").await?;
    let unix = bind_unix(&socket_path)?;
    if let Some(cri) = &config.cri {
        let ours = cri.socket.parent() == Some(config.run_dir.as_path());
        remove_stale_socket(&cri.socket, !ours, "--cri-socket").await?;
    }
    let docker_unix = match &config.docker_socket {
        Some(path) => {
            let ours = path.parent() == Some(config.run_dir.as_path());
            remove_stale_socket(path, !ours, "--docker-socket").await?;
            Some(bind_unix(path)?)
        }
        None => None,
    };

    let state = state::AppState {
        engine,
        events: events.clone(),
        root: config.root.clone(),
        run_dir: config.run_dir.clone(),
        auth,
        audit: history::Audit::new(events.pool().clone()),
    };
    ops::registries::apply_insecure(&state).await;
    routes::containers::record_engine_events(&state.engine, events.clone());
    history::record_finished_containers(&state.engine, events.pool().clone());
    let app = routes::router(state.clone());
    // Which listener a request came on decides how it is authenticated (see `auth`).
    let unix_app = app.clone().layer(axum::Extension(auth::Transport::Unix));
    let tcp_app = app.layer(axum::Extension(auth::Transport::Tcp { tls: tls.is_some() }));
    let stop = CancellationToken::new();
    tokio::spawn(wait_for_signal(stop.clone()));

    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        root = %config.root.display(),
        socket = %socket_path.display(),
        listen = %config.listen,
        docker_socket = ?config.docker_socket,
        docker_listen = ?config.docker_listen,
        registry_listen = ?config.registry_listen,
        "berth daemon ready"
    );
    // Crash points count from here: what start-up writes (recovery) is not an operation's.
    berth_engine::crash_point::arm();
    let mut servers: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send>>> =
        Vec::new();
    servers.push(Box::pin(
        axum::serve(unix, unix_app).with_graceful_shutdown(stop.clone().cancelled_owned()).into_future(),
    ));
    match tls.clone() {
        Some(tls) => {
            let listener =
                tls::TlsListener::new(tcp, tls).map_err(|e| format!("TLS on {}: {e}", config.listen))?;
            servers.push(Box::pin(
                axum::serve(listener, tcp_app.into_make_service_with_connect_info::<auth::ClientAddr>())
                    .with_graceful_shutdown(stop.clone().cancelled_owned())
                    .into_future(),
            ));
        }
        None => servers.push(Box::pin(
            axum::serve(tcp, tcp_app.into_make_service_with_connect_info::<auth::ClientAddr>())
                .with_graceful_shutdown(stop.clone().cancelled_owned())
                .into_future(),
        )),
    }
    if let Some(listener) = docker_unix {
        let service = docker::service(state.clone(), auth::Transport::Unix)
            .into_make_service_with_connect_info::<docker::UnixConnection>();
        servers.push(Box::pin(
            axum::serve(listener, service)
                .with_graceful_shutdown(stop.clone().cancelled_owned())
                .into_future(),
        ));
    }
    if let Some(listener) = docker_tcp {
        let service = docker::service(state.clone(), auth::Transport::Tcp { tls: false });
        servers.push(Box::pin(
            axum::serve(listener, service.into_make_service_with_connect_info::<auth::ClientAddr>())
                .with_graceful_shutdown(stop.clone().cancelled_owned())
                .into_future(),
        ));
    }
    if let Some(listener) = registry_tcp {
        // The registry speaks TLS with the daemon's certificate when it has one.
        let service = registry::service(state.clone(), tls.is_some())
            .into_make_service_with_connect_info::<auth::ClientAddr>();
        match &tls {
            Some(tls) => {
                let addr = config.registry_listen.expect("bound, so given");
                let listener = tls::TlsListener::new(listener, tls.clone())
                    .map_err(|e| format!("TLS on {addr} (--registry-listen): {e}"))?;
                servers.push(Box::pin(
                    axum::serve(listener, service)
                        .with_graceful_shutdown(stop.clone().cancelled_owned())
                        .into_future(),
                ));
            }
            None => servers.push(Box::pin(
                axum::serve(listener, service)
                    .with_graceful_shutdown(stop.clone().cancelled_owned())
                    .into_future(),
            )),
        }
    }
    if let Some(cri) = config.cri.clone() {
        servers.push(Box::pin(cri::serve(state.clone(), cri, stop.clone()).await?));
    }
    let servers = futures_util::future::try_join_all(servers);
    tokio::pin!(servers);
    let result = tokio::select! {
        r = &mut servers => r.map(|_| ()).map_err(|e| format!("serving: {e}")),
        () = async { stop.cancelled().await; tokio::time::sleep(SHUTDOWN_GRACE).await } => {
            tracing::warn!("requests still running {SHUTDOWN_GRACE:?} after the stop signal; cutting them");
            Ok(())
        }
    };

    if let Some(path) = &config.docker_socket {
        let _ = fs::remove_file(path);
    }
    if let Some(cri) = &config.cri {
        let _ = fs::remove_file(&cri.socket);
    }
    let _ = fs::remove_file(&socket_path);
    let _ = fs::remove_file(config.run_dir.join(PID_FILE));
    events.close().await;
    tracing::info!("berth daemon stopped");
    result
}

/// Refuses a non-loopback listener without TLS (passwords, session cookies and API tokens would
/// cross the network in clear) unless `--insecure` says so; then it is only warned about.
/// `--docker-listen` has no TLS of its own.
fn check_plain_listeners(config: &ServeConfig) -> Result<(), String> {
    let mut plain = Vec::new();
    if !config.listen.ip().is_loopback() && config.tls.is_none() {
        plain.push(format!("--listen {} without --tls-cert/--tls-key", config.listen));
    }
    if let Some(addr) = config.docker_listen.filter(|a| !a.ip().is_loopback()) {
        plain.push(format!("--docker-listen {addr} (plain HTTP)"));
    }
    if let Some(addr) = config.registry_listen.filter(|a| !a.ip().is_loopback()) {
        if config.tls.is_none() {
            plain.push(format!("--registry-listen {addr} without --tls-cert/--tls-key"));
        }
    }
    if plain.is_empty() {
        return Ok(());
    }
    let what = plain.join(" and ");
    if !config.insecure {
        return Err(format!(
            "refusing {what}: passwords and API tokens would cross the network in clear. Give --tls-cert \
             and --tls-key, listen on a loopback address, or pass --insecure to do it anyway"
        ));
    }
    tracing::warn!("--insecure: {what}; passwords and API tokens cross the network in clear");
    Ok(())
}

fn create_dir(dir: &Path, mode: u32) -> Result<(), String> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .map_err(|e| format!("creating {}: {e}", dir.display()))
}

/// Takes an exclusive lock on `path` and writes our pid into it. The lock dies with the process,
/// so a daemon killed with -9 does not block the next one.
fn lock(path: &Path, busy: impl FnOnce() -> String) -> Result<Flock<File>, String> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| format!("opening {}: {e}", path.display()))?;
    let mut locked = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(l) => l,
        Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            return Err(if pid.is_empty() { busy() } else { format!("{} (pid {pid})", busy()) });
        }
        Err((_, e)) => return Err(format!("locking {}: {e}", path.display())),
    };
    let write_pid = |f: &mut File| -> std::io::Result<()> {
        f.set_len(0)?;
        f.rewind()?;
        writeln!(f, "{}", std::process::id())?;
        f.sync_all()
    };
    write_pid(&mut locked).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(locked)
}

/// Removes a socket file left by a daemon that is gone. `check`: first make sure nothing
/// answers on it (a socket outside our run directory may be another daemon's); `flag` is the
/// option that names it.
async fn remove_stale_socket(path: &Path, check: bool, flag: &str) -> Result<(), String> {
    if check && tokio::net::UnixStream::connect(path).await.is_ok() {
        return Err(format!("{} is in use by another daemon (give {flag} PATH or none)", path.display()));
    }
    match fs::remove_file(path) {
        Ok(()) => {
            tracing::info!(path = %path.display(), "removed a stale socket");
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("removing the stale socket {}: {e}", path.display())),
    }
}

/// Binds the API socket with mode 0660 from the start (the umask covers the moment between
/// bind and chmod, when the socket would otherwise be open to everyone).
fn bind_unix(path: &Path) -> Result<tokio::net::UnixListener, String> {
    // SAFETY: umask only swaps the process's file creation mask; nothing else creates files
    // while the daemon is starting.
    let old = unsafe { libc::umask(0o117) };
    let listener = tokio::net::UnixListener::bind(path);
    unsafe { libc::umask(old) };
    let listener = listener.map_err(|e| format!("listening on {}: {e}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o660))
        .map_err(|e| format!("setting the mode of {}: {e}", path.display()))?;
    Ok(listener)
}

/// Cancels `stop` on the first SIGTERM or SIGINT; a second one ends the process at once.
async fn wait_for_signal(stop: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        tracing::error!("cannot install signal handlers; stop the daemon with SIGKILL");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = int.recv() => tracing::info!("SIGINT: stopping"),
    }
    stop.cancel();
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::warn!("second signal: exiting now");
    std::process::exit(130);
}
