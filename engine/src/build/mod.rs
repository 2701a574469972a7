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
//! Nothing is tagged unless the whole build succeeds; writable layers, mounts and temporary
//! files of a build are removed whether it succeeds or not.

pub mod context;
pub mod dockerfile;
mod layers;
pub mod step;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Instant;

use berth_types::build::{BuildEvent, BuildOptions, BuildReport};
use berth_types::container::ContainerConfig;
use berth_types::PullReport;
use chrono::{SecondsFormat, Utc};
use oci_spec::image::{Digest, ImageConfiguration, MediaType};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, IoContext, Result};
use crate::image::import::{descriptor, node_platform, write_manifest};
use crate::store::ImageRecord;
use crate::{fsutil, registry, Engine, EngineInner, Reference};
use context::{Context, IgnoreRules, Kind, Pattern};
use dockerfile::{Cmd, CopySpec, Dockerfile, Inst, Step};
use step::{CopyJob, CopyOp, RunJob, Source};

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
        self.build_image_hiding(body, options, HashSet::new(), progress).await
    }

    /// [`Engine::build_image`] for a caller who may not use some of the store's images: a
    /// stage's base (`FROM`) or a `COPY --from` that resolves to one of the image IDs in
    /// `hidden` fails as if the image did not exist. (Who may use what is the caller's
    /// business, e.g. the API's teams; the engine only gets the IDs.)
    pub async fn build_image_hiding(
        &self,
        body: impl tokio::io::AsyncRead + Send + Unpin + 'static,
        options: BuildOptions,
        hidden: HashSet<String>,
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
        let pull_base: PullBase =
            Box::new(move |name| runtime.block_on(engine.pull_image(name, None, registry::Progress::none())));
        self.blocking(move |inner| {
            build_blocking(inner, body, &options, &tags, &progress, &pull_base, &hidden)
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
        self.config.get("Env").and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default()
    }

    fn env_get(&self, name: &str) -> Option<String> {
        self.env().iter().rev().find_map(|e| e.strip_prefix(&format!("{name}=")).map(str::to_string))
    }

    fn workdir(&self) -> String {
        self.config
            .get("WorkingDir")
            .and_then(Value::as_str)
            .filter(|w| !w.is_empty())
            .unwrap_or("/")
            .to_string()
    }

    fn shell(&self) -> Vec<String> {
        self.config
            .get("Shell")
            .and_then(|v| serde_json::from_value::<Vec<String>>(v.clone()).ok())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
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

/// What a step does to the state, once evaluated.
enum Action {
    /// Only the config changes.
    Config(Box<dyn FnOnce(&mut State)>),
    Run {
        args: Vec<String>,
        env: Vec<String>,
    },
    Copy {
        ops: Vec<CopyOp>,
        chown: Option<String>,
        fingerprint: Vec<String>,
    },
    /// WORKDIR: the directory is created if missing (a layer only if it was).
    Workdir {
        path: String,
    },
}

impl Builder<'_> {
    fn send(&self, event: BuildEvent) {
        let _ = self.progress.send(event);
    }

    /// `e` with the Dockerfile's name and `line` in front, unless it names them already.
    fn at_line(&self, line: usize, e: Error) -> Error {
        let prefix = format!("{}:", self.file.file);
        match e {
            Error::CommandFailed { exit_code, message } if !message.starts_with(&prefix) => {
                Error::CommandFailed { exit_code, message: format!("{prefix}{line}: {message}") }
            }
            Error::InvalidInput(m) if !m.starts_with(&prefix) => {
                Error::InvalidInput(format!("{prefix}{line}: {m}"))
            }
            Error::ImageNotFound(_)
            | Error::Conflict(_)
            | Error::Unsupported(_)
            | Error::InvalidReference(_) => Error::InvalidInput(format!("{prefix}{line}: {e}")),
            other => other,
        }
    }

    fn err_at(&self, line: usize, message: impl std::fmt::Display) -> Error {
        Error::InvalidInput(format!("{}:{line}: {message}", self.file.file))
    }

    /// Meta args: ARGs before the first FROM, with their values.
    fn meta_args(&mut self) -> Result<BTreeMap<String, Option<String>>> {
        let mut meta = BTreeMap::new();
        let steps = self.file.meta_args.clone();
        for step in &steps {
            let Inst::Arg(text) = &step.inst else { continue };
            let vars = |n: &str| meta.get(n).cloned().flatten();
            for (name, default) in self.parse_arg(text, &vars, step.line)? {
                let value = self.build_args.get(&name).cloned().or(default);
                if self.build_args.contains_key(&name) {
                    self.used_args.insert(name.clone());
                }
                meta.insert(name, value);
            }
        }
        Ok(meta)
    }

    fn parse_arg(
        &self,
        text: &str,
        vars: &dyn dockerfile::Vars,
        line: usize,
    ) -> Result<Vec<(String, Option<String>)>> {
        let mut out = Vec::new();
        for word in dockerfile::split_raw_words(text, self.file.escape) {
            match word.split_once('=') {
                Some((k, v)) => {
                    let v =
                        dockerfile::expand(v, vars, self.file.escape).map_err(|e| self.err_at(line, e))?;
                    out.push((k.to_string(), Some(v)));
                }
                None => out.push((word, None)),
            }
        }
        if out.is_empty() {
            return Err(self.err_at(line, "ARG requires at least one argument"));
        }
        Ok(out)
    }

    /// Which stages the target needs (itself and, transitively, the stages it builds on or
    /// copies from).
    fn needed_stages(&self, target: usize, meta: &BTreeMap<String, Option<String>>) -> BTreeSet<usize> {
        let mut needed = BTreeSet::new();
        let mut todo = vec![target];
        while let Some(i) = todo.pop() {
            if !needed.insert(i) {
                continue;
            }
            let stage = &self.file.stages[i];
            let vars = |n: &str| meta.get(n).cloned().flatten();
            let base = dockerfile::expand(&stage.base, &vars, self.file.escape).unwrap_or_default();
            let mut refs = vec![base];
            for step in &stage.steps {
                if let Inst::Copy(CopySpec { from: Some(from), .. }) = &step.inst {
                    refs.push(from.clone());
                }
            }
            for r in refs {
                if let Some(j) = self.stage_index(&r, i) {
                    todo.push(j);
                }
            }
        }
        needed
    }

    /// The earlier stage that `name` (a stage name or index) names, seen from stage `before`.
    fn stage_index(&self, name: &str, before: usize) -> Option<usize> {
        let lower = name.to_lowercase();
        if let Ok(i) = name.parse::<usize>() {
            return (i < before).then_some(i);
        }
        self.file.stages[..before].iter().position(|s| s.name.as_deref() == Some(lower.as_str()))
    }

    fn build(&mut self, labels: &[(String, String)]) -> Result<Built> {
        let target = match self.options.target.as_deref().filter(|t| !t.is_empty()) {
            Some(t) => {
                let lower = t.to_lowercase();
                self.file
                    .stages
                    .iter()
                    .position(|s| s.name.as_deref() == Some(lower.as_str()))
                    .ok_or_else(|| Error::InvalidInput(format!("target stage {t:?} could not be found")))?
            }
            None => self.file.stages.len() - 1,
        };
        let meta = self.meta_args()?;
        let needed = self.needed_stages(target, &meta);
        self.total = needed.iter().map(|&i| self.file.stages[i].steps.len() + 1).sum::<usize>()
            + usize::from(!labels.is_empty());
        let mut built: HashMap<usize, Built> = HashMap::new();
        for &i in &needed {
            let last = i == target;
            let result = self.build_stage(i, &meta, &built, if last { labels } else { &[] })?;
            built.insert(i, result);
        }
        Ok(built.remove(&target).expect("target stage built"))
    }

    fn start_step(&mut self, stage: usize, index: usize, count: usize, text: &str) -> (usize, Instant) {
        self.step_no += 1;
        let stage_name = self.file.stages[stage].name.clone().unwrap_or_else(|| format!("stage-{stage}"));
        self.send(BuildEvent::Step {
            step: self.step_no,
            stage: stage_name,
            index,
            total: count,
            instruction: text.to_string(),
        });
        (self.step_no, Instant::now())
    }

    fn build_stage(
        &mut self,
        i: usize,
        meta: &BTreeMap<String, Option<String>>,
        built: &HashMap<usize, Built>,
        labels: &[(String, String)],
    ) -> Result<Built> {
        let stage = self.file.stages[i].clone();
        let count = stage.steps.len() + 1;
        let (n, started) = self.start_step(i, 1, count, &stage.text);
        let vars = |name: &str| meta.get(name).cloned().flatten();
        let base = dockerfile::expand(&stage.base, &vars, self.file.escape)
            .map_err(|e| self.err_at(stage.line, e))?;
        if base.is_empty() {
            return Err(self.err_at(stage.line, "base name (FROM) should not be blank"));
        }
        let mut current = if let Some(j) = self.stage_index(&base, i) {
            built
                .get(&j)
                .cloned()
                .ok_or_else(|| self.err_at(stage.line, format!("stage {base} was not built")))?
        } else if base == "scratch" {
            let (os, arch, variant) = node_platform();
            let mut top = Map::new();
            top.insert("architecture".into(), json!(arch));
            top.insert("os".into(), json!(os));
            if let Some(v) = variant {
                top.insert("variant".into(), json!(v));
            }
            let state = State { top, config: Map::new(), layers: Vec::new(), history: Vec::new() };
            Built { state, key: hex_sha256(&[b"FROM scratch"]) }
        } else {
            self.base_image(&base).map_err(|e| self.err_at(stage.line, e))?
        };
        // As BuildKit and buildah do: a base without PATH gets the default one, so that RUN
        // and the image's users find programs.
        let mut env = current.state.env();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, DEFAULT_PATH.to_string());
            current.state.config.insert("Env".into(), json!(env));
        }
        self.send(BuildEvent::Done { step: n, seconds: started.elapsed().as_secs_f64() });

        // The base's ONBUILD triggers run first, then are dropped from the config.
        let mut steps: Vec<Step> = Vec::new();
        if let Some(triggers) = current.state.config.remove("OnBuild") {
            let triggers: Vec<String> = serde_json::from_value(triggers).unwrap_or_default();
            for trigger in triggers {
                let parsed = dockerfile::parse(&self.file.file, &format!("FROM scratch\n{trigger}\n"))
                    .map_err(|e| self.err_at(stage.line, format!("ONBUILD trigger {trigger:?}: {e}")))?;
                for mut s in parsed.stages.into_iter().flat_map(|s| s.steps) {
                    s.line = stage.line;
                    steps.push(s);
                }
            }
        }
        self.total += steps.len();
        steps.extend(stage.steps.iter().cloned());

        // ARGs declared in this stage: name → value.
        let mut args: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut cmd_set = false;
        let total = steps.len() + 1;
        for (k, step) in steps.iter().enumerate() {
            let (n, started) = self.start_step(i, k + 2, total, &step.text);
            self.run_step(step, n, &mut current, &mut args, meta, built, i, &mut cmd_set)
                .map_err(|e| self.at_line(step.line, e))?;
            self.send(BuildEvent::Done { step: n, seconds: started.elapsed().as_secs_f64() });
        }
        if !labels.is_empty() {
            let text = format!(
                "LABEL {}",
                labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect::<Vec<_>>().join(" ")
            );
            let (n, started) = self.start_step(i, total + 1, total + 1, &text);
            let labels = labels.to_vec();
            let action = Action::Config(Box::new(move |s: &mut State| {
                let entry = s.config.entry("Labels").or_insert_with(|| json!({}));
                for (k, v) in labels {
                    entry[k] = json!(v);
                }
            }));
            self.apply(n, &text, action, &[], &mut current, built)?;
            self.send(BuildEvent::Done { step: n, seconds: started.elapsed().as_secs_f64() });
        }
        Ok(current)
    }

    /// The local image `name` as a stage's base.
    fn base_image(&self, name: &str) -> Result<Built> {
        let record = match self.inner.images.resolve(name) {
            Err(Error::ImageNotFound(_)) if Reference::parse(name).is_ok() => {
                self.send(BuildEvent::Output {
                    step: self.step_no,
                    stream: "stdout".into(),
                    text: format!("pulling {name}\n"),
                });
                let report = (self.pull_base)(name)?;
                self.send(BuildEvent::Output {
                    step: self.step_no,
                    stream: "stdout".into(),
                    text: format!(
                        "pulled {}: {} ({} layers downloaded)\n",
                        report.reference, report.digest, report.layers_downloaded
                    ),
                });
                self.inner.images.resolve(&report.id)?
            }
            other => other?,
        };
        if self.hidden.contains(&record.id.to_string()) {
            return Err(Error::ImageNotFound(name.to_string()));
        }
        let content = crate::image::read_image(self.inner, &record)?;
        let config_bytes = self.inner.content.read(&record.id)?;
        let full: Value = serde_json::from_slice(&config_bytes)
            .map_err(|e| Error::InvalidInput(format!("image {name}: config is not valid: {e}")))?;
        let mut top = full.as_object().cloned().unwrap_or_default();
        let config = top.remove("config").and_then(|c| c.as_object().cloned()).unwrap_or_default();
        let history = top.remove("history").and_then(|h| h.as_array().cloned()).unwrap_or_default();
        top.remove("rootfs");
        let layers = content
            .manifest
            .layers()
            .iter()
            .zip(&content.diff_ids)
            .map(|(l, d)| LayerRef {
                diff_id: d.clone(),
                blob: l.digest().clone(),
                size: l.size(),
                media_type: l.media_type().to_string(),
            })
            .collect();
        for d in &content.diff_ids {
            if !self.inner.snapshots.has_layer(d) {
                return Err(Error::InvalidInput(format!("image {name}: layer {d} is not unpacked")));
            }
        }
        Ok(Built {
            state: State { top, config, layers, history },
            key: hex_sha256(&[b"FROM", record.id.to_string().as_bytes()]),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn run_step(
        &mut self,
        step: &Step,
        n: usize,
        current: &mut Built,
        args: &mut BTreeMap<String, Option<String>>,
        meta: &BTreeMap<String, Option<String>>,
        built: &HashMap<usize, Built>,
        stage: usize,
        cmd_set: &mut bool,
    ) -> Result<()> {
        let escape = self.file.escape;
        let line = step.line;
        // Substitution sees the stage's ENV over its ARGs.
        let env_state = current.state.clone();
        let args_now = args.clone();
        let vars =
            move |name: &str| env_state.env_get(name).or_else(|| args_now.get(name).cloned().flatten());
        let expand = |s: &str| dockerfile::expand(s, &vars, escape).map_err(|e| self.err_at(line, e));
        let args_in_use: Vec<String> =
            args.iter().filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}"))).collect();
        let shell = current.state.shell();
        let nop = |s: &str| format!("/bin/sh -c #(nop) {s}");

        let (shown, action): (String, Action) = match &step.inst {
            Inst::Arg(text) => {
                let mut values = Vec::new();
                for (name, default) in self.parse_arg(text, &vars, line)? {
                    let value = if let Some(v) = self.build_args.get(&name) {
                        self.used_args.insert(name.clone());
                        Some(v.clone())
                    } else if default.is_some() {
                        default
                    } else {
                        meta.get(&name).cloned().flatten()
                    };
                    values.push((name, value));
                }
                let shown = nop(&format!(
                    "ARG {}",
                    values
                        .iter()
                        .map(|(k, v)| match v {
                            Some(v) => format!("{k}={v}"),
                            None => k.clone(),
                        })
                        .collect::<Vec<_>>()
                        .join(" ")
                ));
                for (k, v) in values {
                    args.insert(k, v);
                }
                // An ARG changes no config; its value reaches the cache keys of later steps.
                (shown, Action::Config(Box::new(|_| {})))
            }
            Inst::Env(text) => {
                let pairs =
                    dockerfile::key_values(text, &vars, escape, "ENV").map_err(|e| self.err_at(line, e))?;
                let shown = nop(&format!(
                    "ENV {}",
                    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
                ));
                (
                    shown,
                    Action::Config(Box::new(move |s: &mut State| {
                        let mut env = s.env();
                        for (k, v) in pairs {
                            let entry = format!("{k}={v}");
                            match env.iter_mut().find(|e| {
                                e.split_once('=').map(|(ek, _)| ek) == Some(k.as_str()) || e.as_str() == k
                            }) {
                                Some(e) => *e = entry,
                                None => env.push(entry),
                            }
                        }
                        s.config.insert("Env".into(), json!(env));
                    })),
                )
            }
            Inst::Label(text) => {
                let pairs =
                    dockerfile::key_values(text, &vars, escape, "LABEL").map_err(|e| self.err_at(line, e))?;
                let shown = nop(&format!(
                    "LABEL {}",
                    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
                ));
                (
                    shown,
                    Action::Config(Box::new(move |s: &mut State| {
                        let entry = s.config.entry("Labels").or_insert_with(|| json!({}));
                        if !entry.is_object() {
                            *entry = json!({});
                        }
                        for (k, v) in pairs {
                            entry[k] = json!(v);
                        }
                    })),
                )
            }
            Inst::Maintainer(text) => {
                let name = text.clone();
                (
                    nop(&format!("MAINTAINER {text}")),
                    Action::Config(Box::new(move |s: &mut State| {
                        s.top.insert("author".into(), json!(name));
                    })),
                )
            }
            Inst::User(text) => {
                let user = expand(text)?;
                (
                    nop(&format!("USER {user}")),
                    Action::Config(Box::new(move |s: &mut State| {
                        s.config.insert("User".into(), json!(user));
                    })),
                )
            }
            Inst::StopSignal(text) => {
                let signal = expand(text)?;
                crate::container::parse_signal(&signal).map_err(|e| self.err_at(line, e))?;
                (
                    nop(&format!("STOPSIGNAL {signal}")),
                    Action::Config(Box::new(move |s: &mut State| {
                        s.config.insert("StopSignal".into(), json!(signal));
                    })),
                )
            }
            Inst::Expose(ports) => {
                let mut expanded = Vec::new();
                for p in ports {
                    for word in
                        dockerfile::expand_words(p, &vars, escape).map_err(|e| self.err_at(line, e))?
                    {
                        let (port, proto) = word.split_once('/').unwrap_or((&word, "tcp"));
                        let proto = proto.to_lowercase();
                        let valid_port = port.split('-').all(|p| p.parse::<u16>().is_ok());
                        if !valid_port || !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
                            return Err(self.err_at(line, format!("invalid containerPort: {word}")));
                        }
                        expanded.push(format!("{port}/{proto}"));
                    }
                }
                let shown = nop(&format!("EXPOSE {}", expanded.join(" ")));
                (
                    shown,
                    Action::Config(Box::new(move |s: &mut State| {
                        let entry = s.config.entry("ExposedPorts").or_insert_with(|| json!({}));
                        for p in expanded {
                            entry[p] = json!({});
                        }
                    })),
                )
            }
            Inst::Volume(paths) => {
                let mut expanded = Vec::new();
                for p in paths {
                    let v = expand(p)?;
                    if v.trim().is_empty() {
                        return Err(self.err_at(line, "VOLUME specified can not be an empty string"));
                    }
                    expanded.push(v);
                }
                let shown = nop(&format!("VOLUME {expanded:?}"));
                (
                    shown,
                    Action::Config(Box::new(move |s: &mut State| {
                        let entry = s.config.entry("Volumes").or_insert_with(|| json!({}));
                        for p in expanded {
                            entry[p] = json!({});
                        }
                    })),
                )
            }
            Inst::Shell(words) => {
                if words.is_empty() {
                    return Err(self.err_at(line, "SHELL requires the arguments to be in JSON form"));
                }
                let words = words.clone();
                (
                    nop(&format!("SHELL {words:?}")),
                    Action::Config(Box::new(move |s: &mut State| {
                        s.config.insert("Shell".into(), json!(words));
                    })),
                )
            }
            Inst::OnBuild(trigger) => {
                let trigger = trigger.clone();
                (
                    nop(&format!("ONBUILD {trigger}")),
                    Action::Config(Box::new(move |s: &mut State| {
                        let entry = s.config.entry("OnBuild").or_insert_with(|| json!([]));
                        if let Some(list) = entry.as_array_mut() {
                            list.push(json!(trigger));
                        }
                    })),
                )
            }
            Inst::Cmd(c) => {
                let cmd = command_words(c, &shell);
                *cmd_set = true;
                (
                    nop(&format!("CMD {cmd:?}")),
                    Action::Config(Box::new(move |s: &mut State| {
                        s.config.insert("Cmd".into(), json!(cmd));
                    })),
                )
            }
            Inst::Entrypoint(c) => {
                let entrypoint = command_words(c, &shell);
                let reset_cmd = !*cmd_set;
                (
                    nop(&format!("ENTRYPOINT {entrypoint:?}")),
                    Action::Config(Box::new(move |s: &mut State| {
                        s.config.insert("Entrypoint".into(), json!(entrypoint));
                        // As Docker: an ENTRYPOINT drops a CMD inherited from the base.
                        if reset_cmd {
                            s.config.insert("Cmd".into(), Value::Null);
                        }
                    })),
                )
            }
            Inst::Healthcheck { options, test } => {
                let test = match test {
                    None => vec!["NONE".to_string()],
                    Some(Cmd::Exec(words)) => {
                        std::iter::once("CMD".to_string()).chain(words.iter().cloned()).collect()
                    }
                    Some(Cmd::Shell(s)) => vec!["CMD-SHELL".to_string(), s.clone()],
                };
                let mut hc = Map::new();
                hc.insert("Test".into(), json!(test));
                for (name, value) in options {
                    let key = match name.as_str() {
                        "interval" => "Interval",
                        "timeout" => "Timeout",
                        "start-period" => "StartPeriod",
                        "start-interval" => "StartInterval",
                        _ => "Retries",
                    };
                    if key == "Retries" {
                        let n: i64 = value
                            .parse()
                            .map_err(|_| self.err_at(line, format!("invalid --retries value {value:?}")))?;
                        hc.insert(key.into(), json!(n));
                    } else {
                        let ns = parse_duration_ns(value).ok_or_else(|| {
                            self.err_at(line, format!("invalid --{name} duration {value:?}"))
                        })?;
                        hc.insert(key.into(), json!(ns));
                    }
                }
                let shown = nop(&format!("HEALTHCHECK {}", Value::Object(hc.clone())));
                (
                    shown,
                    Action::Config(Box::new(move |s: &mut State| {
                        s.config.insert("Healthcheck".into(), Value::Object(hc));
                    })),
                )
            }
            Inst::Workdir(text) => {
                let w = expand(text)?;
                let path = if w.starts_with('/') { w } else { format!("{}/{w}", current.state.workdir()) };
                let path = format!("/{}", context::clean_clamped(&path));
                (nop(&format!("WORKDIR {path}")), Action::Workdir { path })
            }
            Inst::Run(c) => {
                let run_args = command_words(c, &shell);
                let env_names: BTreeSet<String> = current
                    .state
                    .env()
                    .iter()
                    .map(|e| e.split('=').next().unwrap_or("").to_string())
                    .collect();
                let env: Vec<String> = args
                    .iter()
                    .filter(|(k, _)| !env_names.contains(*k))
                    .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
                    .collect();
                let prefix = if args_in_use.is_empty() {
                    String::new()
                } else {
                    format!("|{} {} ", args_in_use.len(), args_in_use.join(" "))
                };
                let shown = format!("{prefix}{}", run_args.join(" "));
                (shown, Action::Run { args: run_args, env })
            }
            Inst::Copy(spec) => {
                // COPY --from an earlier stage: that stage's cache key names its content, so a
                // cached step is found without looking at the stage's files.
                let from_stage_key = match &spec.from {
                    Some(f) => {
                        let f = expand(f)?;
                        self.stage_index(&f, stage).and_then(|j| built.get(&j)).map(|b| b.key.clone())
                    }
                    None => None,
                };
                if let Some(src_key) = &from_stage_key {
                    let shown = self.copy_shown(spec, &vars, line)?;
                    let key_parts = vec![shown.clone(), format!("from-stage {src_key}")];
                    if self.cached_step(n, &shown, &key_parts, current) {
                        return Ok(());
                    }
                }
                let (ops, shown, mut fingerprint) =
                    self.plan_copy(spec, &vars, line, current, built, stage)?;
                if let Some(src_key) = from_stage_key {
                    fingerprint = vec![format!("from-stage {src_key}")];
                }
                (shown, Action::Copy { ops, chown: spec.chown.clone(), fingerprint })
            }
        };
        let mut key_parts: Vec<String> = vec![shown.clone()];
        if matches!(action, Action::Run { .. }) {
            key_parts.push(args_in_use.join("\n"));
        }
        if let Action::Copy { fingerprint, .. } = &action {
            // The content hash of the sources.
            key_parts.push(fingerprint.join("\n"));
        }
        self.apply(n, &shown, action, &key_parts, current, built)
    }

    /// Runs `action` on `current` unless the cache has its result.
    fn apply(
        &mut self,
        n: usize,
        shown: &str,
        action: Action,
        key_parts: &[String],
        current: &mut Built,
        _built: &HashMap<usize, Built>,
    ) -> Result<()> {
        if self.cached_step(n, shown, key_parts, current) {
            return Ok(());
        }
        let key = step_key(&current.key, key_parts, shown);
        let record_path = self.cache_dir.join(format!("{key}.json"));
        let mut state = current.state.clone();
        let created = now();
        let mut history = Map::new();
        history.insert("created".into(), json!(created));
        history.insert("created_by".into(), json!(shown));
        let layer = match action {
            Action::Config(change) => {
                change(&mut state);
                None
            }
            Action::Run { args, env } => Some(self.run_in_container(n, &state, args, env)?),
            Action::Copy { ops, chown, fingerprint: _ } => {
                let ops = self.resolve_chown(&state, ops, chown.as_deref())?;
                self.apply_files(&state, ops)?
            }
            Action::Workdir { path } => {
                let ops = vec![CopyOp::MkdirAll { path: path.clone(), uid: 0, gid: 0 }];
                let layer = self.apply_files(&state, ops)?;
                state.config.insert("WorkingDir".into(), json!(path));
                layer
            }
        };
        match layer {
            Some(made) => {
                state.layers.push(LayerRef {
                    diff_id: made.diff_id,
                    blob: made.blob,
                    size: made.blob_size,
                    media_type: made.media_type,
                });
            }
            None => {
                history.insert("empty_layer".into(), json!(true));
            }
        }
        state.history.push(Value::Object(history));
        let json = serde_json::to_vec(&state).expect("state serialises");
        fsutil::write_atomic(&record_path, &json)?;
        *current = Built { state, key };
        Ok(())
    }

    /// Takes the step's result from the cache if it is there (and the cache is in use).
    fn cached_step(&mut self, n: usize, shown: &str, key_parts: &[String], current: &mut Built) -> bool {
        if self.options.no_cache {
            return false;
        }
        let key = step_key(&current.key, key_parts, shown);
        match self.cached_state(&self.cache_dir.join(format!("{key}.json"))) {
            Some(state) => {
                self.cached += 1;
                self.send(BuildEvent::Cached { step: n });
                *current = Built { state, key };
                true
            }
            None => false,
        }
    }

    /// How a COPY/ADD shows in the history (and in its cache key): sources and destination as
    /// evaluated.
    fn copy_shown(&self, spec: &CopySpec, vars: &dyn dockerfile::Vars, line: usize) -> Result<String> {
        let escape = self.file.escape;
        let expand = |s: &str| dockerfile::expand(s, vars, escape).map_err(|e| self.err_at(line, e));
        let keyword = if spec.add { "ADD" } else { "COPY" };
        let sources = spec.sources.iter().map(|s| expand(s)).collect::<Result<Vec<_>>>()?;
        let dest = expand(&spec.dest)?;
        let mut flags = String::new();
        if let Some(f) = &spec.from {
            flags.push_str(&format!("--from={f} "));
        }
        if let Some(c) = &spec.chown {
            flags.push_str(&format!("--chown={c} "));
        }
        if let Some(c) = &spec.chmod {
            flags.push_str(&format!("--chmod={c} "));
        }
        Ok(format!("/bin/sh -c #(nop) {keyword} {flags}{} {dest}", sources.join(" ")))
    }

    /// The recorded state of a step if every layer it needs is still in the store.
    fn cached_state(&self, path: &Path) -> Option<State> {
        let bytes = fs::read(path).ok()?;
        let state: State = serde_json::from_slice(&bytes).ok()?;
        let complete = state
            .layers
            .iter()
            .all(|l| self.inner.snapshots.has_layer(&l.diff_id) && self.inner.content.contains(&l.blob));
        complete.then_some(state)
    }

    /// A writable layer on `state`'s layers, mounted at a fresh directory; returns its key and
    /// the mount point.
    fn writable(&mut self, state: &State) -> Result<(String, PathBuf)> {
        let key = format!("{WRITABLE_PREFIX}{:016x}", rand::random::<u64>());
        self.inner.snapshots.create_writable(&key, &state.diff_ids())?;
        self.cleanup.writables.push(key.clone());
        let rootfs = self.cleanup.dir.join(format!("{key}-rootfs"));
        fs::create_dir(&rootfs).context(|| format!("creating {}", rootfs.display()))?;
        self.inner.snapshots.mount_writable(&key, &rootfs)?;
        Ok((key, rootfs))
    }

    /// Unmounts the writable layer and makes its layer (`None` if nothing changed and
    /// `allow_empty` is false).
    fn commit(&mut self, key: &str, state: &State, allow_empty: bool) -> Result<Option<layers::MadeLayer>> {
        self.inner.snapshots.unmount_writable(key)?;
        let made = if !allow_empty && layers::is_unchanged(self.inner, key)? {
            self.inner.snapshots.remove_writable(key)?;
            None
        } else {
            Some(layers::commit_writable(self.inner, key, &state.diff_ids())?)
        };
        self.cleanup.writables.retain(|k| k != key);
        Ok(made)
    }

    fn step_exe(&self, mode: &str, job: &Path) -> std::process::Command {
        let mut command = std::process::Command::new(&self.inner.config.monitor_exe);
        command.arg("build-step").arg(mode).arg(job).current_dir("/").stdin(Stdio::null());
        command
    }

    fn run_in_container(
        &mut self,
        n: usize,
        state: &State,
        args: Vec<String>,
        env: Vec<String>,
    ) -> Result<layers::MadeLayer> {
        let (key, rootfs) = self.writable(state)?;
        let id = hex::encode(rand::random::<[u8; 32]>());
        let image: ImageConfiguration = serde_json::from_value(state.image_config())
            .map_err(|e| Error::InvalidInput(format!("the image config of the step is not valid: {e}")))?;
        let config = ContainerConfig {
            image: String::new(),
            cmd: args.clone(),
            entrypoint: Some(Vec::new()),
            env,
            ..Default::default()
        };
        let mut spec = crate::runtime::build_spec(&id, &config, &image, &rootfs)?;
        if self.host_network {
            if let Some(linux) = spec.linux_mut() {
                if let Some(ns) = linux.namespaces_mut() {
                    ns.retain(|n| n.typ() != oci_spec::runtime::LinuxNamespaceType::Network);
                }
            }
        }
        let bundle = self.cleanup.dir.join(format!("{key}-bundle"));
        crate::runtime::write_bundle(&bundle, &spec)?;
        let job = RunJob {
            id: id.clone(),
            bundle: bundle.clone(),
            runtime_state_root: self.inner.config.run_dir.join("runtime"),
        };
        let job_path = self.cleanup.dir.join(format!("{key}-run.json"));
        fsutil::write_atomic(&job_path, &serde_json::to_vec(&job).expect("job serialises"))?;
        let mut command = self.step_exe("run", &job_path);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child =
            command.spawn().context(|| format!("starting {}", self.inner.config.monitor_exe.display()))?;
        let (tx, rx) = mpsc::channel::<(String, String)>();
        let mut readers = Vec::new();
        for (stream, pipe) in [
            ("stdout", child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>)),
            ("stderr", child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>)),
        ] {
            let Some(pipe) = pipe else { continue };
            let tx = tx.clone();
            readers.push(std::thread::spawn(move || {
                let mut reader = BufReader::new(pipe);
                let mut line = Vec::new();
                while reader.read_until(b'\n', &mut line).map(|n| n > 0).unwrap_or(false) {
                    let _ = tx.send((stream.to_string(), String::from_utf8_lossy(&line).into_owned()));
                    line.clear();
                }
            }));
        }
        drop(tx);
        let mut tail: Vec<String> = Vec::new();
        for (stream, text) in rx {
            tail.push(text.clone());
            if tail.len() > 20 {
                tail.remove(0);
            }
            self.send(BuildEvent::Output { step: n, stream, text });
        }
        for r in readers {
            let _ = r.join();
        }
        let status = child.wait().context(|| "waiting for the RUN step".into())?;
        let _ = fs::remove_dir_all(&bundle);
        let code = status.code().unwrap_or(128);
        if code != 0 {
            return Err(Error::CommandFailed {
                exit_code: code,
                message: format!(
                    "process \"{}\" did not complete successfully: exit code: {code}",
                    args.join(" ")
                ),
            });
        }
        Ok(self.commit(&key, state, true)?.expect("a layer when empty ones are allowed"))
    }

    fn apply_files(&mut self, state: &State, ops: Vec<CopyOp>) -> Result<Option<layers::MadeLayer>> {
        let allow_empty = !ops.iter().all(|o| matches!(o, CopyOp::MkdirAll { .. }));
        let (key, rootfs) = self.writable(state)?;
        let job = CopyJob { rootfs: rootfs.clone(), ops };
        let job_path = self.cleanup.dir.join(format!("{key}-copy.json"));
        fsutil::write_atomic(&job_path, &serde_json::to_vec(&job).expect("job serialises"))?;
        let host_root = nix::fcntl::open(
            "/",
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| Error::io("opening /", e.into()))?;
        let spool = self.ctx.spool().try_clone().context(|| "duplicating the spool".into())?;
        let (spool_fd, root_fd) =
            (std::os::fd::AsRawFd::as_raw_fd(&spool), std::os::fd::AsRawFd::as_raw_fd(&host_root));
        let mut command = self.step_exe("copy", &job_path);
        command.stdout(Stdio::null()).stderr(Stdio::piped());
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(move || {
                // Move both out of the way first, so that neither dup2 clobbers the other.
                let a = libc::fcntl(spool_fd, libc::F_DUPFD, 10);
                let b = libc::fcntl(root_fd, libc::F_DUPFD, 10);
                if a < 0
                    || b < 0
                    || libc::dup2(a, step::SPOOL_FD) < 0
                    || libc::dup2(b, step::HOST_ROOT_FD) < 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let output =
            command.output().context(|| format!("starting {}", self.inner.config.monitor_exe.display()))?;
        drop(spool);
        drop(host_root);
        if !output.status.success() {
            let message = String::from_utf8_lossy(&output.stderr).trim().to_string();
            return Err(Error::InvalidInput(if message.is_empty() {
                format!("copying files failed ({})", output.status)
            } else {
                message
            }));
        }
        self.commit(&key, state, allow_empty)
    }

    /// `--chown`: names resolved in the destination's /etc/passwd and /etc/group.
    fn resolve_chown(&mut self, state: &State, ops: Vec<CopyOp>, chown: Option<&str>) -> Result<Vec<CopyOp>> {
        let Some(chown) = chown.filter(|c| !c.is_empty()) else { return Ok(ops) };
        let (uid, gid) = match chown.split_once(':') {
            Some((u, g)) => match (u.parse::<u32>(), g.parse::<u32>()) {
                (Ok(u), Ok(g)) => (u, g),
                _ => self.lookup_user(state, chown)?,
            },
            None => match chown.parse::<u32>() {
                Ok(u) => (u, u),
                Err(_) => {
                    let (u, _) = self.lookup_user(state, chown)?;
                    let (_, g) = self.lookup_user(state, &format!("{chown}:{chown}")).unwrap_or((u, u));
                    (u, g)
                }
            },
        };
        Ok(ops
            .into_iter()
            .map(|op| match op {
                CopyOp::MkdirAll { path, .. } => CopyOp::MkdirAll { path, uid, gid },
                CopyOp::Dir { path, mode, mtime, .. } => CopyOp::Dir { path, mode, uid, gid, mtime },
                CopyOp::File { path, source, mode, mtime, .. } => {
                    CopyOp::File { path, source, mode, uid, gid, mtime }
                }
                CopyOp::Symlink { path, target, .. } => CopyOp::Symlink { path, target, uid, gid },
                CopyOp::Extract { path, source, .. } => {
                    CopyOp::Extract { path, source, owner: Some((uid, gid)) }
                }
            })
            .collect())
    }

    fn lookup_user(&mut self, state: &State, spec: &str) -> Result<(u32, u32)> {
        let (key, rootfs) = self.writable(state)?;
        let user = crate::runtime::spec::resolve_user(&rootfs, spec);
        self.inner.snapshots.remove_writable(&key)?;
        self.cleanup.writables.retain(|k| k != &key);
        let user = user?;
        Ok((user.uid(), user.gid()))
    }

    /// The file operations of a COPY/ADD and how the step shows in the history.
    fn plan_copy(
        &self,
        spec: &CopySpec,
        vars: &dyn dockerfile::Vars,
        line: usize,
        current: &Built,
        built: &HashMap<usize, Built>,
        stage: usize,
    ) -> Result<(Vec<CopyOp>, String, Vec<String>)> {
        let escape = self.file.escape;
        let keyword = if spec.add { "ADD" } else { "COPY" };
        let expand = |s: &str| dockerfile::expand(s, vars, escape).map_err(|e| self.err_at(line, e));
        let mode_override = match &spec.chmod {
            Some(m) => Some(u32::from_str_radix(m, 8).ok().filter(|m| *m <= 0o7777).ok_or_else(|| {
                self.err_at(line, format!("invalid chmod parameter {m:?}: want an octal mode"))
            })?),
            None => None,
        };
        let dest_raw = expand(&spec.dest)?;
        let dest_is_dir_syntax = dest_raw.ends_with('/') || dest_raw.ends_with("/.") || dest_raw == ".";
        let dest = if dest_raw.starts_with('/') {
            dest_raw.clone()
        } else {
            format!("{}/{dest_raw}", current.state.workdir())
        };
        let dest = format!("/{}", context::clean_clamped(&dest));

        // Sources: from the context, from an earlier stage, or from an image.
        let from_tree = match &spec.from {
            Some(from) => {
                let from = expand(from)?;
                let layers = match self.stage_index(&from, stage) {
                    Some(j) => built
                        .get(&j)
                        .map(|b| b.state.diff_ids())
                        .ok_or_else(|| self.err_at(line, format!("stage {from} was not built")))?,
                    None => {
                        if spec.add {
                            return Err(self.err_at(line, "ADD does not take --from"));
                        }
                        self.base_image(&from)
                            .map_err(|e| self.err_at(line, format!("COPY --from={from}: {e}")))?
                            .state
                            .diff_ids()
                    }
                };
                let dirs: Vec<PathBuf> = layers.iter().map(|d| self.inner.snapshots.layer_path(d)).collect();
                Some(layers::merged_view(&dirs)?)
            }
            None => None,
        };

        struct Src {
            rel: String,
            kind: Kind,
            mode: u32,
            mtime: i64,
            source: Source,
            size: u64,
            /// Content identity for the cache key.
            hash: String,
        }
        let lookup = |path: &str| -> Option<Src> {
            match &from_tree {
                Some(tree) => {
                    if path.is_empty() {
                        return Some(Src {
                            rel: String::new(),
                            kind: Kind::Dir,
                            mode: 0o755,
                            mtime: 0,
                            source: Source::Spool { offset: 0, size: 0 },
                            size: 0,
                            hash: String::new(),
                        });
                    }
                    let e = tree.get(path)?;
                    use std::os::unix::fs::MetadataExt;
                    let kind = if e.meta.is_dir() {
                        Kind::Dir
                    } else if e.meta.file_type().is_symlink() {
                        Kind::Symlink(fs::read_link(&e.host).ok()?.to_string_lossy().into_owned())
                    } else {
                        Kind::File
                    };
                    // The host path names the layer (by diff ID) that provides the file: its identity.
                    let hash = e.host.display().to_string();
                    Some(Src {
                        rel: path.to_string(),
                        kind,
                        mode: e.meta.mode() & 0o7777,
                        mtime: e.meta.mtime(),
                        source: Source::Host(e.host.clone()),
                        size: e.meta.size(),
                        hash,
                    })
                }
                None => {
                    let e = self.ctx.get(path)?;
                    Some(Src {
                        rel: path.to_string(),
                        kind: e.kind.clone(),
                        mode: e.mode,
                        mtime: e.mtime,
                        source: Source::Spool { offset: e.offset, size: e.size },
                        size: e.size,
                        hash: hex::encode(e.hash),
                    })
                }
            }
        };
        let all_paths: Vec<String> = match &from_tree {
            Some(tree) => tree.keys().cloned().collect(),
            None => self.ctx.paths().map(|(p, _)| p.clone()).filter(|p| !p.is_empty()).collect(),
        };
        let children = |dir: &str| -> Vec<String> {
            let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
            all_paths.iter().filter(|p| p.starts_with(&prefix) && p.len() > prefix.len()).cloned().collect()
        };

        // A source that is a symbolic link is followed (inside the context or the stage), as
        // Docker and buildah do; the destination keeps the link's name.
        let follow = |first: Src| -> Option<(String, Src)> {
            let name = first.rel.rsplit('/').next().unwrap_or(&first.rel).to_string();
            let mut current = first;
            for _ in 0..32 {
                let Kind::Symlink(target) = &current.kind else { return Some((name, current)) };
                let base = current.rel.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                let next = if target.starts_with('/') {
                    context::clean_clamped(target)
                } else {
                    context::clean_clamped(&format!("{base}/{target}"))
                };
                current = lookup(&next)?;
            }
            None
        };
        let mut matches: Vec<(String, Src)> = Vec::new();
        for raw in &spec.sources {
            let src = expand(raw)?;
            if spec.add
                && (src.starts_with("http://") || src.starts_with("https://") || src.starts_with("git@"))
            {
                return Err(self.err_at(line, format!("ADD from a remote URL is not supported (download it in a RUN step or into the context): {src}")));
            }
            let clean = context::clean_clamped(&src);
            if context::has_wildcards(&clean) {
                let pattern = Pattern::new(&clean).map_err(|e| self.err_at(line, e))?;
                let found: Vec<&String> = all_paths.iter().filter(|p| pattern.matches(p)).collect();
                if found.is_empty() {
                    return Err(self.err_at(
                        line,
                        format!("{keyword} failed: no source files were specified matching {src:?}"),
                    ));
                }
                for p in found {
                    matches.extend(lookup(p).and_then(&follow));
                }
            } else {
                match lookup(&clean).and_then(&follow) {
                    Some(s) => matches.push(s),
                    None => {
                        return Err(self.err_at(line, format!(
                            "{keyword} failed: file not found in build context or excluded by .dockerignore: stat {src}: file does not exist"
                        )))
                    }
                }
            }
        }
        if spec.sources.len() > 1 && !dest_is_dir_syntax {
            return Err(self.err_at(line, format!("When using {keyword} with more than one source file, the destination must be a directory and end with a /")));
        }
        let dest_is_dir = dest_is_dir_syntax || matches.len() > 1 || self.is_dir_in(&current.state, &dest);

        let mut fingerprint = Vec::new();
        let mut ops = vec![CopyOp::MkdirAll {
            path: if dest_is_dir { dest.clone() } else { parent_of(&dest) },
            uid: 0,
            gid: 0,
        }];
        let join = |base: &str, rel: &str| {
            if rel.is_empty() {
                base.to_string()
            } else if base == "/" {
                format!("/{rel}")
            } else {
                format!("{base}/{rel}")
            }
        };
        for (name, m) in &matches {
            let mode = |own: u32| mode_override.unwrap_or(own);
            match &m.kind {
                Kind::Dir => {
                    // A directory's contents go to the destination, not the directory itself.
                    let base = dest.clone();
                    for child in children(&m.rel) {
                        let Some(c) = lookup(&child) else { continue };
                        let rel = if m.rel.is_empty() {
                            child.clone()
                        } else {
                            child[m.rel.len() + 1..].to_string()
                        };
                        let path = join(&base, &rel);
                        fingerprint.push(format!("{path} {:o} {}", mode(c.mode), c.hash));
                        ops.push(match c.kind {
                            Kind::Dir => {
                                CopyOp::Dir { path, mode: mode(c.mode), uid: 0, gid: 0, mtime: Some(c.mtime) }
                            }
                            Kind::File => CopyOp::File {
                                path,
                                source: c.source,
                                mode: mode(c.mode),
                                uid: 0,
                                gid: 0,
                                mtime: c.mtime,
                            },
                            Kind::Symlink(target) => CopyOp::Symlink { path, target, uid: 0, gid: 0 },
                        });
                    }
                }
                Kind::File => {
                    let path = if dest_is_dir { join(&dest, name) } else { dest.clone() };
                    fingerprint.push(format!("{path} {:o} {}", mode(m.mode), m.hash));
                    if spec.add && self.is_local_archive(&m.source, m.size) {
                        ops.push(CopyOp::Extract {
                            // An archive is extracted into the destination directory.
                            path: dest.clone(),
                            source: m.source.clone(),
                            owner: None,
                        });
                    } else {
                        ops.push(CopyOp::File {
                            path,
                            source: m.source.clone(),
                            mode: mode(m.mode),
                            uid: 0,
                            gid: 0,
                            mtime: m.mtime,
                        });
                    }
                }
                Kind::Symlink(target) => {
                    let path = if dest_is_dir { join(&dest, name) } else { dest.clone() };
                    fingerprint.push(format!("{path} -> {target}"));
                    ops.push(CopyOp::Symlink { path, target: target.clone(), uid: 0, gid: 0 });
                }
            }
        }
        let shown = self.copy_shown(spec, vars, line)?;
        Ok((ops, shown, fingerprint))
    }

    /// Whether an ADD source is a tar archive (plain, gzip or zstd) to extract.
    fn is_local_archive(&self, source: &Source, size: u64) -> bool {
        let head = match source {
            Source::Spool { offset, .. } => {
                let e = context::Entry {
                    kind: Kind::File,
                    mode: 0,
                    mtime: 0,
                    size: size.min(1024 * 1024),
                    offset: *offset,
                    hash: [0; 32],
                };
                match self.ctx.read_file(&e) {
                    Ok(b) => b,
                    Err(_) => return false,
                }
            }
            Source::Host(path) => {
                let mut buf = Vec::new();
                match fs::File::open(path) {
                    Ok(f) => {
                        let _ = f.take(1024 * 1024).read_to_end(&mut buf);
                    }
                    Err(_) => return false,
                }
                buf
            }
        };
        let compression = crate::layer::Compression::detect(&head);
        let mut block = Vec::new();
        let reader: Box<dyn Read> = match compression {
            crate::layer::Compression::Gzip => Box::new(flate2::read::GzDecoder::new(&head[..])),
            crate::layer::Compression::Zstd => match zstd::stream::read::Decoder::new(&head[..]) {
                Ok(d) => Box::new(d),
                Err(_) => return false,
            },
            crate::layer::Compression::None => Box::new(&head[..]),
        };
        let _ = reader.take(512).read_to_end(&mut block);
        block.len() == 512 && crate::archive::is_tar_header(&block)
    }

    /// Whether `path` (absolute) is a directory in `state`'s layers (the topmost layer that has
    /// the path, or a whiteout of it, decides).
    fn is_dir_in(&self, state: &State, path: &str) -> bool {
        let rel = path.trim_start_matches('/');
        if rel.is_empty() {
            return true;
        }
        for layer in state.layers.iter().rev() {
            let p = self.inner.snapshots.layer_path(&layer.diff_id).join(rel);
            if let Ok(meta) = fs::symlink_metadata(&p) {
                use std::os::unix::fs::{FileTypeExt, MetadataExt};
                if meta.file_type().is_char_device() && meta.rdev() == 0 {
                    return false;
                }
                return meta.is_dir();
            }
        }
        false
    }
}

fn parent_of(path: &str) -> String {
    match path.rsplit_once('/') {
        Some(("", _)) | None => "/".to_string(),
        Some((p, _)) => p.to_string(),
    }
}

/// The words a shell-form or exec-form command runs.
fn command_words(c: &Cmd, shell: &[String]) -> Vec<String> {
    match c {
        Cmd::Exec(words) => words.clone(),
        Cmd::Shell(s) => shell.iter().cloned().chain(std::iter::once(s.clone())).collect(),
    }
}

/// Go duration strings as HEALTHCHECK takes them (`30s`, `1m30s`, `500ms`) in nanoseconds.
fn parse_duration_ns(s: &str) -> Option<i64> {
    berth_types::format::parse_go_duration_ns(s)
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

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ns("30s"), Some(30_000_000_000));
        assert_eq!(parse_duration_ns("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration_ns("500ms"), Some(500_000_000));
        assert_eq!(parse_duration_ns("5"), None);
    }

    #[test]
    fn shell_and_exec_forms() {
        let sh = vec!["/bin/sh".to_string(), "-c".to_string()];
        assert_eq!(command_words(&Cmd::Shell("echo hi".into()), &sh), vec!["/bin/sh", "-c", "echo hi"]);
        assert_eq!(command_words(&Cmd::Exec(vec!["a".into()]), &sh), vec!["a"]);
    }
}
