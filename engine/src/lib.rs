//! berth's node engine: everything that happens on the node, as a library. It knows nothing of
//! HTTP, SQL or users; the daemon (`api/`) drives it through [`Engine`].
//!
//! State lives under one root directory (default `/var/lib/berth`):
//!
//! ```text
//! blobs/sha256/<hex>     content store: manifests, configs, layer blobs (store::content)
//! ingest/                blobs being written; emptied on open
//! images.json            images and tags (store::images)
//! snapshots/             unpacked layers and writable layers (snapshot)
//! containers/<id>/       container record, state, log, OCI bundle + rootfs mount (container)
//! volumes/<name>/        volume.json + _data/, mounted into containers (volume)
//! pods/<id>/             pod sandbox record, hosts/resolv.conf/hostname, CNI result (pod)
//! ```

pub mod archive;
pub mod build;
pub mod check;
pub mod compose;
pub mod container;
pub mod crash_point;
pub mod digest;
pub mod distribution;
pub mod error;
pub mod fsutil;
pub mod image;
pub mod layer;
pub mod monitor;
pub mod network;
pub mod node;
pub mod pod;
pub mod reference;
pub mod registry;
pub mod runtime;
pub mod snapshot;
pub mod store;
pub mod volume;

use std::path::PathBuf;
use std::sync::Arc;

pub use error::{Error, ErrorKind, Result};
pub use reference::Reference;
pub use snapshot::SnapshotterKind;

use container::ContainerStore;
use snapshot::SnapshotStore;
use store::{ContentStore, ImageStore};

/// Where the engine keeps its state and how it assembles root filesystems.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// State directory, e.g. `/var/lib/berth`.
    pub root: PathBuf,
    /// `None` picks overlay where the kernel supports it, else copy.
    pub snapshotter: Option<SnapshotterKind>,
    /// Runtime state (monitor sockets, runtime state), e.g. `/run/berth`.
    pub run_dir: PathBuf,
    /// The program started as each container's monitor, with `monitor` and its arguments
    /// (the `berth` binary itself: `berth monitor ...`).
    pub monitor_exe: PathBuf,
    /// The default `bridge` network's Linux bridge (`berth serve` uses `berth0`); `None`, as
    /// `--bridge none`, leaves it out: containers without `--network` then get `none`.
    pub default_bridge: Option<String>,
    /// `berth serve --userns-remap`: containers run in a user namespace with this mapping
    /// unless they opt out (`--userns=host`).
    pub userns_remap: Option<runtime::userns::IdMap>,
}

impl EngineConfig {
    /// A configuration with state under `root`, runtime state under `run_dir`, the default
    /// snapshotter, and the running program as the monitor.
    pub fn new(root: impl Into<PathBuf>, run_dir: impl Into<PathBuf>) -> EngineConfig {
        EngineConfig {
            root: root.into(),
            snapshotter: None,
            run_dir: run_dir.into(),
            monitor_exe: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe")),
            default_bridge: None,
            userns_remap: None,
        }
    }
}

/// The engine. Cheap to clone; every clone is the same engine.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<EngineInner>,
}

/// The engine's stores. Public so that engine modules and tests can reach them; the API uses
/// [`Engine`]'s methods only.
pub struct EngineInner {
    pub config: EngineConfig,
    pub content: ContentStore,
    pub images: ImageStore,
    pub snapshots: SnapshotStore,
    /// Container records, names, and the daemon's side of the monitors.
    pub containers: ContainerStore,
    /// Garbage collection takes this for writing; everything that writes blobs or layers before
    /// an image record points at them (import, load, pull, build) holds it for reading, so a
    /// collection never removes content that is about to be referenced.
    pub gc_lock: std::sync::RwLock<()>,
    /// Registry client state: endpoints, tokens, credentials, downloads in flight.
    pub registries: registry::Registries,
    /// Named and anonymous volumes under `<root>/volumes`.
    pub volumes: volume::VolumeStore,
    /// Networks under `<root>/networks`, namespaces pinned under `<run_dir>/netns`.
    pub networks: network::NetworkStore,
    /// The registry server's state: the served index, uploads under way.
    pub distribution: distribution::Distribution,
}

impl Engine {
    /// Opens the state under `config.root`, creating it on first use, and cleans up what an
    /// interrupted run left behind (unfinished blob writes and unpacks).
    pub async fn open(config: EngineConfig) -> Result<Engine> {
        tokio::task::spawn_blocking(move || Engine::open_blocking(config))
            .await
            .expect("engine open task panicked")
    }

    /// [`Engine::open`] for callers that are not async (tests, benchmarks).
    pub fn open_blocking(config: EngineConfig) -> Result<Engine> {
        fsutil::create_private_dir(&config.root)?;
        // What writes cut short by a crash left (their renames never happened).
        let stale = fsutil::remove_stale_temporaries(&config.root);
        if stale > 0 {
            tracing::info!(files = stale, "removed the temporaries of writes a crash cut short");
        }
        let content = ContentStore::open(&config.root)?;
        let images = ImageStore::open(&config.root)?;
        let snapshots = SnapshotStore::open(&config.root.join("snapshots"), config.snapshotter)?;
        let registries = registry::Registries::open(&config.root)?;
        let distribution = distribution::Distribution::open(&config.root)?;
        let containers = ContainerStore::open(&config.root, &config.run_dir)?;
        let volumes = volume::VolumeStore::open(&config.root)?;
        let networks =
            network::NetworkStore::open(&config.root, &config.run_dir, config.default_bridge.clone())?;
        runtime::userns::open_daemon_dirs(config.userns_remap.as_ref(), &config.root)?;
        let engine = Engine {
            inner: Arc::new(EngineInner {
                config,
                content,
                images,
                snapshots,
                containers,
                gc_lock: Default::default(),
                registries,
                volumes,
                networks,
                distribution,
            }),
        };
        // The default bridge and the user networks' DNS servers, before containers come back.
        network::open(&engine)?;
        // Monitors survive the daemon: find them again (and follow them when called within a
        // tokio runtime, as `open` is).
        container::recover::recover(&engine);
        // What a build interrupted by a crash left: writable layers, mounts, spools.
        build::clean_leftovers(engine.inner());
        // Pushed images whose unpack a stop cut short.
        distribution::resume_unpacks(&engine);
        Ok(engine)
    }

    pub fn inner(&self) -> &EngineInner {
        &self.inner
    }

    pub fn root(&self) -> &std::path::Path {
        &self.inner.config.root
    }

    pub fn snapshotter(&self) -> SnapshotterKind {
        self.inner.snapshots.kind()
    }

    /// Container waits the state poll answered instead of an event (a lost wake-up each).
    pub fn waits_answered_by_poll(&self) -> u64 {
        self.inner.containers.poll_answers.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs blocking engine work (file system, tar, hashing) off the async reactor.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&EngineInner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner)).await.expect("engine task panicked")
    }
}
