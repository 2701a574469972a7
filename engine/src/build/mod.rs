//! `build`: a Dockerfile and its context become an image, with a layer cache.
//!
//! The context arrives as a tar stream; it is spooled and indexed ([`context`]), never
//! extracted. Each stage starts from its base's config and layers; each instruction that changes
//! files (RUN, COPY, ADD, a WORKDIR that creates its directory) runs in a writable layer of the
//! snapshot store and becomes one layer ([`layers`]); the others change only the config. RUN
//! runs in a container through the built-in runtime, and COPY/ADD apply their files chrooted into
//! the step's root filesystem, both in a `berth build-step` process ([`step`]).
//!
//! The cache: every step has a key, the hash of its parent's key, the instruction as evaluated
//! (variables substituted), the build args in scope and, for COPY/ADD, the content hash of the
//! source files. The state after the step (config, layers, history) is recorded under
//! `<root>/build/cache/<key>.json`; a step whose key has a record whose layers are all still in
//! the store is not run. A fully cached rebuild therefore reads the context (to hash it) and
//! nothing else, and gives the same image ID. Cache records are weak: garbage collection may
//! remove the layers of a stage no image uses, and the step is then run again.
//!
//! The code: [`dockerfile`] parses, `instructions` interprets each instruction, `copy` plans
//! COPY/ADD, `orchestrate` runs the stages, the cache and the steps' work, [`step`] is the
//! `build-step` process, and this file holds the entry points and the build's state.
//!
//! Nothing is tagged unless the whole build succeeds; writable layers, mounts and temporary
//! files of a build are removed whether it succeeds or not.

pub mod context;
mod copy;
pub mod dockerfile;
pub mod instructions;
pub(crate) mod layers;
mod orchestrate;
pub mod step;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::io::Read;
use std::path::PathBuf;

use berth_types::build::{BuildEvent, BuildOptions, BuildReport};
use berth_types::PullReport;
use chrono::{SecondsFormat, Utc};
use oci_spec::image::{Digest, MediaType};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, IoContext, Result};
use crate::image::import::{descriptor, write_manifest};
use crate::registry::Credentials;
use crate::store::ImageRecord;
use crate::{fsutil, registry, Engine, EngineInner, Reference};
use context::{Context, IgnoreRules, Kind};
use dockerfile::Dockerfile;

/// Writable layers of build steps are keyed `build-<random>`.
const WRITABLE_PREFIX: &str = "build-";

/// The PATH a stage gets when its base has none.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where build progress goes.
pub type Progress = tokio::sync::mpsc::UnboundedSender<BuildEvent>;

impl Engine {
    /// `berth build`: builds the Dockerfile in the context tar `body` (plain, gzip or zstd) as
    /// `options` say, streaming [`BuildEvent`]s to `progress`, and tags the result with every
    /// `options.tags`. The tags are checked before the context is read.
    pub async fn build_image(
        &self,
        body: impl tokio::io::AsyncRead + Send + Unpin + 'static,
        options: BuildOptions,
        progress: Progress,
    ) -> Result<BuildReport> {
        self.build_image_hiding(body, options, HashSet::new(), HashMap::new(), progress).await
    }

    /// [`Engine::build_image`] for a caller who may not use some of the store's images: a
    /// stage's base (`FROM`) or a `COPY --from` that resolves to one of the image IDs in
    /// `hidden` fails as if the image did not exist. (Who may use what is the caller's
    /// business, e.g. the API's teams; the engine only gets the IDs.) A base image pulled from
    /// a registry named in `credentials` (registry → credentials, as Docker's
    /// `X-Registry-Config`) is pulled with those instead of the stored ones.
    pub async fn build_image_hiding(
        &self,
        body: impl tokio::io::AsyncRead + Send + Unpin + 'static,
        options: BuildOptions,
        hidden: HashSet<String>,
        credentials: HashMap<String, Credentials>,
        progress: Progress,
    ) -> Result<BuildReport> {
        let tags = options
            .tags
            .iter()
            .map(|t| {
                let r = Reference::parse(t)?;
                if r.digest().is_some() {
                    return Err(Error::InvalidInput(format!(
                        "invalid tag {t:?}: a tag cannot have a digest"
                    )));
                }
                Ok(r)
            })
            .collect::<Result<Vec<_>>>()?;
        let body = tokio_util::io::SyncIoBridge::new(body);
        // A FROM image that is not in the store is pulled, as `docker build` does. The build
        // runs on a blocking thread, so the pull is driven from there on the daemon's runtime.
        let engine = self.clone();
        let runtime = tokio::runtime::Handle::current();
        let credentials: HashMap<String, Credentials> = credentials
            .into_iter()
            .filter_map(|(server, c)| Some((registry::normalise_server(&server).ok()?, c)))
            .collect();
        let pull_base: PullBase = Box::new(move |name| {
            let given = Reference::parse(name).ok().and_then(|r| credentials.get(r.domain()).cloned());
            runtime.block_on(engine.pull_image_as(name, None, given, registry::Progress::none()))
        });
        self.blocking(move |inner| {
            build_blocking(inner, body, &options, &tags, &progress, &pull_base, &hidden)
        })
        .await
    }
}

/// What a prune of the build cache removed: the records (step keys) and their bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CachePruneReport {
    pub records: Vec<String>,
    pub space_reclaimed: u64,
}

impl Engine {
    /// `docker builder prune`: forgets every cached step, so that the next builds run their
    /// steps again. Only the records go: the layers they name belong to images (or are
    /// garbage already, collected with the images that used them).
    pub async fn prune_build_cache(&self) -> Result<CachePruneReport> {
        self.blocking(|inner| {
            let dir = inner.config.root.join("build").join("cache");
            let mut report = CachePruneReport::default();
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(report),
                Err(e) => return Err(Error::io(format!("reading {}", dir.display()), e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| Error::io(format!("reading {}", dir.display()), e))?;
                let path = entry.path();
                let Some(key) =
                    path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".json"))
                else {
                    continue;
                };
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                match fs::remove_file(&path) {
                    Ok(()) => {
                        report.records.push(key.to_string());
                        report.space_reclaimed += size;
                    }
                    // Removed meanwhile by another prune.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(format!("removing {}", path.display()), e)),
                }
            }
            report.records.sort();
            Ok(report)
        })
        .await
    }
}

/// Pulls a stage's base image that the store lacks.
type PullBase = Box<dyn Fn(&str) -> Result<PullReport> + Send + Sync>;

/// A layer of the image being built.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LayerRef {
    diff_id: Digest,
    blob: Digest,
    size: u64,
    media_type: String,
}

/// The image a stage has built so far; also what a cache record holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    /// The image config's top level (architecture, os, author, ...).
    top: Map<String, Value>,
    /// The runnable config (`Env`, `Cmd`, ...; Docker's field names).
    config: Map<String, Value>,
    layers: Vec<LayerRef>,
    history: Vec<Value>,
}

impl State {
    fn diff_ids(&self) -> Vec<Digest> {
        self.layers.iter().map(|l| l.diff_id.clone()).collect()
    }

    fn env(&self) -> Vec<String> {
        instructions::env_of(&self.config)
    }

    fn env_get(&self, name: &str) -> Option<String> {
        instructions::env_value(&self.config, name)
    }

    fn workdir(&self) -> String {
        instructions::workdir_of(&self.config)
    }

    fn shell(&self) -> Vec<String> {
        instructions::shell_of(&self.config)
    }

    /// The full image config JSON.
    fn image_config(&self) -> Value {
        let mut top = self.top.clone();
        top.insert("config".into(), Value::Object(self.config.clone()));
        top.insert(
            "rootfs".into(),
            json!({ "type": "layers", "diff_ids": self.layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>() }),
        );
        top.insert("history".into(), Value::Array(self.history.clone()));
        if let Some(created) = self.history.last().and_then(|h| h.get("created")) {
            top.insert("created".into(), created.clone());
        }
        Value::Object(top)
    }
}

/// A built stage: its state and its cache key.
#[derive(Clone)]
struct Built {
    state: State,
    key: String,
}

/// A step's cache key: its parent's key, what identifies its inputs, and how it shows.
fn step_key(parent: &str, key_parts: &[String], shown: &str) -> String {
    let mut parts: Vec<&[u8]> = vec![parent.as_bytes()];
    parts.extend(key_parts.iter().map(|p| p.as_bytes()));
    parts.push(shown.as_bytes());
    hex_sha256(&parts)
}

fn hex_sha256(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Removes a build's temporary directory and any writable layer left, whatever happens.
struct Cleanup<'a> {
    inner: &'a EngineInner,
    dir: PathBuf,
    writables: Vec<String>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for key in &self.writables {
            if let Err(e) = self.inner.snapshots.remove_writable(key) {
                tracing::warn!(key, error = %e, "leaving a build writable layer behind");
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

struct Builder<'a> {
    inner: &'a EngineInner,
    ctx: Context,
    file: Dockerfile,
    options: &'a BuildOptions,
    build_args: BTreeMap<String, String>,
    used_args: BTreeSet<String>,
    progress: &'a Progress,
    cleanup: Cleanup<'a>,
    cache_dir: PathBuf,
    step_no: usize,
    total: usize,
    cached: usize,
    host_network: bool,
    pull_base: &'a PullBase,
    /// Image IDs the caller may not build from ([`Engine::build_image_hiding`]).
    hidden: &'a HashSet<String>,
}

fn build_blocking(
    inner: &EngineInner,
    body: impl Read,
    options: &BuildOptions,
    tags: &[Reference],
    progress: &Progress,
    pull_base: &PullBase,
    hidden: &HashSet<String>,
) -> Result<BuildReport> {
    let build_root = inner.config.root.join("build");
    let cache_dir = build_root.join("cache");
    fsutil::create_private_dir(&build_root)?;
    fsutil::create_private_dir(&cache_dir)?;
    fsutil::create_private_dir(&build_root.join("tmp"))?;
    let dir = build_root.join("tmp").join(format!("{:016x}", rand::random::<u64>()));
    fs::create_dir(&dir).context(|| format!("creating {}", dir.display()))?;
    let cleanup = Cleanup { inner, dir: dir.clone(), writables: Vec::new() };

    let host_network = match options.network.as_deref().unwrap_or("") {
        "" | "none" | "default" | "bridge" => false,
        "host" => true,
        other => {
            return Err(Error::InvalidInput(format!(
                "network mode {other:?} is not supported for builds: use none or host"
            )))
        }
    };
    let mut ctx = Context::read(body, &dir.join("context.spool"))?;
    let dockerfile_name = context::clean(options.dockerfile.as_deref().unwrap_or("Dockerfile"))
        .filter(|p| !p.is_empty())
        .ok_or_else(|| Error::InvalidInput("the Dockerfile path must be inside the build context".into()))?;
    let text = match ctx.get(&dockerfile_name) {
        Some(e) if e.kind == Kind::File => ctx.read_file(e)?,
        _ => {
            return Err(Error::InvalidInput(format!("Cannot locate specified Dockerfile: {dockerfile_name}")))
        }
    };
    let text = String::from_utf8(text)
        .map_err(|_| Error::InvalidInput(format!("{dockerfile_name}: not UTF-8 text")))?;
    if let Some(e) = ctx.get(".dockerignore").filter(|e| e.kind == Kind::File).cloned() {
        let rules = IgnoreRules::parse(&String::from_utf8_lossy(&ctx.read_file(&e)?))?;
        ctx.apply_ignore(&rules);
    }
    let file = dockerfile::parse(&dockerfile_name, &text)?;

    let mut build_args = BTreeMap::new();
    for arg in &options.build_args {
        match arg.split_once('=') {
            Some((k, v)) => build_args.insert(k.to_string(), v.to_string()),
            // `--build-arg NAME` without a value and without it in the client's environment.
            None => continue,
        };
    }
    let mut labels = Vec::new();
    for label in &options.labels {
        let (k, v) = label.split_once('=').unwrap_or((label.as_str(), ""));
        if k.is_empty() {
            return Err(Error::InvalidInput(format!("invalid label {label:?}: the key is empty")));
        }
        labels.push((k.to_string(), v.to_string()));
    }

    // Later layers must not be collected before the image that references them is recorded.
    let _gc = inner.gc_lock.read().unwrap_or_else(|p| p.into_inner());
    let mut builder = Builder {
        inner,
        ctx,
        file,
        options,
        build_args,
        used_args: BTreeSet::new(),
        progress,
        cleanup,
        cache_dir,
        step_no: 0,
        total: 0,
        cached: 0,
        host_network,
        pull_base,
        hidden,
    };
    let built = builder.build(&labels)?;

    let unused: Vec<&String> =
        builder.build_args.keys().filter(|k| !builder.used_args.contains(*k)).collect();
    if !unused.is_empty() {
        let names = unused.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ");
        let _ = progress.send(BuildEvent::Warning {
            message: format!("One or more build-args [{names}] were not consumed"),
        });
    }

    let id = write_image(inner, &built.state)?;
    let mut tagged = Vec::new();
    for tag in tags {
        inner.images.tag(tag, &id)?;
        tagged.push(tag.familiar());
    }
    let _ = progress.send(BuildEvent::Built { id: id.to_string(), tags: tagged.clone() });
    Ok(BuildReport { id: id.to_string(), tags: tagged, cached_steps: builder.cached, steps: builder.step_no })
}

/// Removes what builds interrupted by a crash left: their writable layers (unmounting them)
/// and their temporary directories. Called when the engine opens, when no build runs.
pub(crate) fn clean_leftovers(inner: &EngineInner) {
    if let Ok(keys) = inner.snapshots.list_writable() {
        for key in keys.iter().filter(|k| k.starts_with(WRITABLE_PREFIX)) {
            if let Err(e) = inner.snapshots.remove_writable(key) {
                tracing::warn!(key, error = %e, "cannot remove a build's writable layer");
            }
        }
    }
    let tmp = inner.config.root.join("build").join("tmp");
    if let Ok(entries) = fs::read_dir(&tmp) {
        for entry in entries.flatten() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Writes the config and manifest of `state` and records the image; returns its ID.
fn write_image(inner: &EngineInner, state: &State) -> Result<Digest> {
    let config = serde_json::to_vec(&state.image_config()).expect("config serialises");
    let config_digest = inner.content.write_bytes(&config)?;
    let layers = state
        .layers
        .iter()
        .map(|l| {
            let media_type: MediaType = l.media_type.as_str().into();
            descriptor(media_type, l.blob.clone(), l.size)
        })
        .collect::<Result<Vec<_>>>()?;
    let config_desc = descriptor(MediaType::ImageConfig, config_digest.clone(), config.len() as u64)?;
    let manifest = write_manifest(inner, config_desc, layers)?;
    if inner.images.get(&config_digest).is_none() {
        inner.images.add(ImageRecord {
            id: config_digest.clone(),
            manifest,
            manifest_media_type: MediaType::ImageManifest.to_string(),
            added: Utc::now(),
        })?;
    }
    Ok(config_digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupted_build_is_cleaned_up_when_the_engine_opens() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::EngineConfig::new(dir.path().join("root"), dir.path().join("run"));
        let engine = Engine::open_blocking(config.clone()).unwrap();
        let inner = engine.inner();
        inner.snapshots.create_writable("build-00000000deadbeef", &[]).unwrap();
        inner.snapshots.create_writable("0123456789abcdef", &[]).unwrap();
        let leftover = dir.path().join("root/build/tmp/0000000000000001");
        fs::create_dir_all(&leftover).unwrap();
        fs::write(leftover.join("context.spool"), b"x").unwrap();
        drop(engine);

        let engine = Engine::open_blocking(config).unwrap();
        // A build's writable layer and temporary files go; a container's writable layer stays.
        assert_eq!(engine.inner().snapshots.list_writable().unwrap(), vec!["0123456789abcdef".to_string()]);
        assert!(!leftover.exists());
        engine.inner().snapshots.remove_writable("0123456789abcdef").unwrap();
    }
}
