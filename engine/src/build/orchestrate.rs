//! The build loop: stages in order, each step's cache lookup, and the work of the steps that
//! change files (RUN in a container, COPY/ADD and WORKDIR applied by a `build-step` process),
//! each committed as a layer.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Instant;

use berth_types::build::BuildEvent;
use berth_types::container::ContainerConfig;
use oci_spec::image::ImageConfiguration;
use serde_json::{json, Map, Value};

use super::dockerfile::{CopySpec, Inst, Step};
use super::instructions::{Action, ConfigChange};
use super::step::{self, CopyJob, CopyOp, RunJob};
use super::{
    dockerfile, hex_sha256, layers, now, step_key, Builder, Built, LayerRef, State, DEFAULT_PATH,
    WRITABLE_PREFIX,
};
use crate::error::{Error, IoContext, Result};
use crate::image::import::node_platform;
use crate::{fsutil, Reference};

impl Builder<'_> {
    pub(super) fn send(&self, event: BuildEvent) {
        let _ = self.progress.send(event);
    }

    /// `e` with the Dockerfile's name and `line` in front, unless it names them already.
    pub(super) fn at_line(&self, line: usize, e: Error) -> Error {
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

    pub(super) fn err_at(&self, line: usize, message: impl std::fmt::Display) -> Error {
        Error::InvalidInput(format!("{}:{line}: {message}", self.file.file))
    }

    /// Which stages the target needs (itself and, transitively, the stages it builds on or
    /// copies from).
    pub(super) fn needed_stages(
        &self,
        target: usize,
        meta: &BTreeMap<String, Option<String>>,
    ) -> BTreeSet<usize> {
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
    pub(super) fn stage_index(&self, name: &str, before: usize) -> Option<usize> {
        let lower = name.to_lowercase();
        if let Ok(i) = name.parse::<usize>() {
            return (i < before).then_some(i);
        }
        self.file.stages[..before].iter().position(|s| s.name.as_deref() == Some(lower.as_str()))
    }

    pub(super) fn build(&mut self, labels: &[(String, String)]) -> Result<Built> {
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

    pub(super) fn start_step(
        &mut self,
        stage: usize,
        index: usize,
        count: usize,
        text: &str,
    ) -> (usize, Instant) {
        self.step_no += 1;
        let stage_name = self.file.stages[stage].name.clone().unwrap_or_else(|| format!("stage-{stage}"));
        self.send(BuildEvent::Step {
            step: self.step_no,
            stage: stage_name,
            index,
            total: count,
            build_steps: self.total,
            instruction: text.to_string(),
        });
        (self.step_no, Instant::now())
    }

    pub(super) fn build_stage(
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
            let action = Action::Config(Some(ConfigChange::Label(labels.to_vec())));
            self.apply(n, &text, action, &[], &mut current, built)?;
            self.send(BuildEvent::Done { step: n, seconds: started.elapsed().as_secs_f64() });
        }
        Ok(current)
    }

    /// The local image `name` as a stage's base.
    pub(super) fn base_image(&self, name: &str) -> Result<Built> {
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

    /// Runs `action` on `current` unless the cache has its result.
    pub(super) fn apply(
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
                if let Some(change) = change {
                    change.apply(&mut state.top, &mut state.config);
                }
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
    pub(super) fn cached_step(
        &mut self,
        n: usize,
        shown: &str,
        key_parts: &[String],
        current: &mut Built,
    ) -> bool {
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

    /// The recorded state of a step if every layer it needs is still in the store.
    pub(super) fn cached_state(&self, path: &Path) -> Option<State> {
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
    pub(super) fn writable(&mut self, state: &State) -> Result<(String, PathBuf)> {
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
    pub(super) fn commit(
        &mut self,
        key: &str,
        state: &State,
        allow_empty: bool,
    ) -> Result<Option<layers::MadeLayer>> {
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

    pub(super) fn step_exe(&self, mode: &str, job: &Path) -> std::process::Command {
        let mut command = std::process::Command::new(&self.inner.config.monitor_exe);
        command.arg("build-step").arg(mode).arg(job).current_dir("/").stdin(Stdio::null());
        command
    }

    pub(super) fn run_in_container(
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

    pub(super) fn apply_files(
        &mut self,
        state: &State,
        ops: Vec<CopyOp>,
    ) -> Result<Option<layers::MadeLayer>> {
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
}
