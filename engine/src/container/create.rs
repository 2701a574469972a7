//! `berth create`: a container's record, writable layer and OCI bundle, made all or nothing.

use std::fs;
use std::str::FromStr;
use std::time::Instant;

use berth_types::container::{ContainerConfig, CreatedContainer, RestartPolicy};
use berth_types::signal::Signal;
use chrono::Utc;

use super::events::ContainerAction;
use super::store::{validate_name, ContainerRecord};
use crate::error::{Error, IoContext, Result};
use crate::monitor::protocol::RunState;
use crate::runtime::{self, RuntimeKind};
use crate::{fsutil, Engine, EngineInner};

/// Docker's default seconds between the stop signal and SIGKILL.
const DEFAULT_STOP_TIMEOUT: u32 = 10;

impl Engine {
    /// `berth create`: resolves the image, checks the name, creates the writable layer and the
    /// OCI bundle. Nothing is left behind when it fails.
    pub async fn create_container(&self, config: ContainerConfig) -> Result<CreatedContainer> {
        let begun = Instant::now();
        // A start usually follows a create.
        crate::runtime::cgroup::warm_migrations();
        let record = self.blocking(move |inner| create(inner, config)).await?;
        tracing::debug!(container = %record.id, elapsed_us = begun.elapsed().as_micros() as u64, "created");
        self.emit(&record, ContainerAction::Create);
        if record.config.auto_remove {
            let engine = self.clone();
            let id = record.id.clone();
            tokio::spawn(async move { engine.monitor_ahead(&id).await });
        }
        Ok(CreatedContainer { id: record.id, warnings: Vec::new() })
    }
}

/// Creates the container's files; removes what it made when a step fails.
fn create(inner: &EngineInner, mut config: ContainerConfig) -> Result<ContainerRecord> {
    let store = &inner.containers;
    let name_generated = config.name.as_deref().filter(|n| !n.is_empty()).is_none();
    let name = match config.name.as_deref().filter(|n| !n.is_empty()) {
        Some(n) => {
            let n = validate_name(n)?;
            store.check_name_free(&n)?;
            n
        }
        None => store.generate_name(),
    };
    if config.image.is_empty() {
        return Err(Error::InvalidInput("no image given".into()));
    }
    crate::monitor::log_file::LogRotation::from_options(config.log_driver.as_deref(), &config.log_opts)?;
    let kind = RuntimeKind::from_str(config.runtime.as_deref().unwrap_or(""))?;
    inner.distribution.wait_unpacked(&config.image);
    let image = inner.images.resolve(&config.image)?;
    let content = crate::image::read_image(inner, &image)?;
    let image_config = content.config.config().clone().unwrap_or_default();
    // HEALTHCHECK is not in oci-spec's image config: read from the config JSON (issue 8).
    let image_health = crate::monitor::health::image_healthcheck(&inner.content.read(&image.id)?)?;
    config.healthcheck = crate::monitor::health::merge(image_health, config.healthcheck.take())?;
    let stop_signal = match config.stop_signal.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => s.parse::<Signal>()?,
        None => match image_config.stop_signal().as_deref().filter(|s| !s.is_empty()) {
            Some(s) => s.parse::<Signal>()?,
            None => Signal::TERM,
        },
    };
    if let RestartPolicy::OnFailure { .. } | RestartPolicy::Always | RestartPolicy::UnlessStopped =
        config.restart_policy
    {
        if config.auto_remove {
            return Err(Error::InvalidInput(
                "conflicting options: cannot specify both --restart and --rm".into(),
            ));
        }
    }

    let id = hex::encode(rand::random::<[u8; 32]>());
    let paths = store.paths(&id);
    // Layers must not be collected between here and the record that references them.
    let _gc = inner.gc_lock.read().unwrap_or_else(|p| p.into_inner());
    // A `--rm` container's files are not fsynced: it is removed after a crash anyway (see
    // `recover`, as Docker's daemon removes them at start), so a file a power cut left empty
    // or old is never read, and a run saves the fsyncs' milliseconds.
    let durable = !config.auto_remove;
    let mut attached = None;
    let made = (|| -> Result<ContainerRecord> {
        fsutil::create_private_dir(&paths.dir)?;
        let idmap = runtime::userns::for_container(inner.config.userns_remap.as_ref(), &config)?;
        if let Some(map) = &idmap {
            runtime::userns::open_container_dir(map, &paths.dir)?;
        }
        inner.snapshots.create_writable_mapped(&id, &content.diff_ids, durable, idmap.as_ref())?;
        fs::create_dir(&paths.rootfs).context(|| format!("creating {}", paths.rootfs.display()))?;
        inner.snapshots.mount_writable(&id, &paths.rootfs)?;
        // Volumes and mounts (issue 8): checked, made, filled from the image; `config.mounts`
        // then names every volume the record mounts.
        let volumes = attached.insert(crate::volume::mounts::attach(
            inner,
            &id,
            &mut config,
            &content.config,
            &paths.rootfs,
        )?);
        let mut spec = runtime::build_spec(&id, &config, &content.config, &paths.rootfs)?;
        // Networks (issue 8): the mode, networks and ports; the spec's namespace and /etc files.
        crate::network::endpoint::prepare(inner, &id, &paths.dir, &config, &content.config, &mut spec)?;
        // After the network's /etc files: a user's mount at the same path replaces them (Docker).
        runtime::add_user_mounts(&mut spec, &volumes.mounts)?;
        if let Some(map) = &idmap {
            runtime::userns::apply(&mut spec, map)?;
            runtime::userns::give_files(map, &spec, &paths.dir, &volumes.mounts)?;
        }
        if durable {
            runtime::write_bundle(&paths.dir, &spec)?;
        } else {
            let json = serde_json::to_vec_pretty(&spec).expect("runtime specs serialise");
            fsutil::write_replace(&paths.dir.join("config.json"), &json)?;
        }
        runtime::seccomp::write_program(
            &paths.dir,
            spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()),
        )?;
        let args = spec.process().as_ref().and_then(|p| p.args().clone()).unwrap_or_default();
        let (path, args) = match args.split_first() {
            Some((first, rest)) => (first.clone(), rest.to_vec()),
            None => (String::new(), Vec::new()),
        };
        config.name = Some(name.clone());
        config.runtime = Some(kind.to_string());
        config.stop_signal = Some(stop_signal.to_string());
        config.stop_timeout = Some(config.stop_timeout.unwrap_or(DEFAULT_STOP_TIMEOUT));
        let mut record = ContainerRecord {
            id: id.clone(),
            name: name.clone(),
            created: Utc::now(),
            image: config.image.clone(),
            image_id: image.id.to_string(),
            stop_timeout: config.stop_timeout.unwrap_or(DEFAULT_STOP_TIMEOUT),
            config: config.clone(),
            path,
            args,
            runtime: kind.to_string(),
            snapshotter: inner.snapshots.kind().to_string(),
            stop_signal: stop_signal.number(),
        };
        let state = serde_json::to_vec_pretty(&RunState::created()).expect("state serialises");
        if durable {
            fsutil::write_atomic(&paths.state, &state)?;
        } else {
            fsutil::write_replace(&paths.state, &state)?;
        }
        if name_generated {
            store.insert_generated(&mut record)?;
        } else {
            store.insert(record.clone())?;
        }
        Ok(record)
    })();
    if made.is_err() {
        if let Some(volumes) = attached.take() {
            volumes.undo();
        }
        let _ = inner.snapshots.remove_writable(&id);
        let _ = fs::remove_dir_all(&paths.dir);
    }
    made
}
