//! `docker commit`: a new image of a container's image plus one layer of what the container
//! changed, with the container's config (command, environment, ...) as the image's.
//!
//! The layer is made like a build step's (`build::layers`): the writable layer's changes as a
//! tar with whiteouts, stored in the content store and unpacked into the snapshot store, so the
//! new image shares every lower layer with the container's image and runs like any other.
//! Unlike a build step's, the container's writable layer stays where it is.

use berth_types::container::ContainerStatus;
use chrono::{SecondsFormat, Utc};
use oci_spec::image::{Digest, MediaType};
use serde_json::{json, Map, Value};

use super::changes::is_setup_path;
use super::ContainerRecord;
use crate::error::{Error, Result};
use crate::image::import::{apply_changes, descriptor, write_manifest};
use crate::store::ImageRecord;
use crate::{Engine, EngineInner, Reference};

/// What `docker commit` takes besides the container.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// `REPO[:TAG]` for the new image (`:latest` if no tag).
    pub reference: Option<String>,
    pub author: Option<String>,
    pub comment: Option<String>,
    /// Dockerfile instructions applied to the config, as `import --change` takes them.
    pub changes: Vec<String>,
    /// Pause a running container while its layer is read.
    pub pause: bool,
    /// Fields of an image config (`Cmd`, `Env`, `Labels`, ...) set over the container's, as
    /// the Docker API's commit body gives them; empty values are ignored.
    pub config: Map<String, Value>,
}

impl Engine {
    /// `docker commit`: returns the new image's ID (`sha256:...`).
    pub async fn commit_container(&self, name: &str, options: CommitOptions) -> Result<String> {
        let record = self.inner.containers.resolve(name)?;
        let reference =
            options.reference.as_deref().filter(|r| !r.is_empty()).map(commit_reference).transpose()?;
        // The config first: bad changes are refused before anything is written.
        let image = self.inner.images.resolve(&record.image_id)?;
        let base_config: Value = serde_json::from_slice(&self.inner.content.read(&image.id)?)
            .map_err(|e| Error::InvalidInput(format!("image {}: config is not valid: {e}", image.id)))?;
        let config = image_config(&record, &base_config, &options)?;

        let state = self.inner.containers.read_state(&record.id);
        let paused = options.pause && state.status == ContainerStatus::Running;
        if paused {
            self.pause_container(&record.id).await?;
        }
        let made = {
            let record = record.clone();
            self.blocking(move |inner| write_image(inner, &record, config, reference.as_ref())).await
        };
        if paused {
            if let Err(e) = self.unpause_container(&record.id).await {
                tracing::warn!(container = %record.id, error = %e, "unpausing after the commit failed");
            }
        }
        let id = made?;
        tracing::info!(container = %record.id, image = %id, "committed");
        Ok(id.to_string())
    }
}

/// The reference a commit tags: a name with a tag (`:latest` if none), never a digest.
fn commit_reference(s: &str) -> Result<Reference> {
    let reference = Reference::parse(s)?;
    if reference.digest().is_some() {
        return Err(Error::InvalidInput("refusing to create a tag with a digest reference".into()));
    }
    Ok(reference)
}

/// The new image's config: the container's image's, with the container's own settings, the
/// caller's config fields and the changes over it, one more diff ID and history entry.
fn image_config(record: &ContainerRecord, base: &Value, options: &CommitOptions) -> Result<Value> {
    let mut top = base.as_object().cloned().unwrap_or_default();
    let mut config = top.get("config").and_then(Value::as_object).cloned().unwrap_or_default();
    let c = &record.config;
    // As the container runs: its entrypoint replaces the image's and drops the image's cmd.
    if let Some(entrypoint) = &c.entrypoint {
        set_list(&mut config, "Entrypoint", entrypoint);
        set_list(&mut config, "Cmd", &c.cmd);
    } else if !c.cmd.is_empty() {
        set_list(&mut config, "Cmd", &c.cmd);
    }
    merge_env(&mut config, &c.env);
    if let Some(dir) = c.working_dir.as_deref().filter(|d| !d.is_empty()) {
        config.insert("WorkingDir".into(), json!(dir));
    }
    if let Some(user) = c.user.as_deref().filter(|u| !u.is_empty()) {
        config.insert("User".into(), json!(user));
    }
    for (k, v) in &c.labels {
        merge_object(&mut config, "Labels", k, json!(v));
    }
    for port in &c.expose {
        let port = if port.contains('/') { port.clone() } else { format!("{port}/tcp") };
        merge_object(&mut config, "ExposedPorts", &port, json!({}));
    }
    for (key, value) in &options.config {
        match (key.as_str(), value) {
            (_, Value::Null) => {}
            (_, Value::String(s)) if s.is_empty() => {}
            (_, Value::Array(a)) if a.is_empty() => {}
            (_, Value::Object(o)) if o.is_empty() => {}
            ("Env", Value::Array(entries)) => {
                let entries: Vec<String> =
                    entries.iter().filter_map(|e| e.as_str().map(String::from)).collect();
                merge_env(&mut config, &entries);
            }
            ("Labels" | "ExposedPorts" | "Volumes", Value::Object(entries)) => {
                for (k, v) in entries {
                    merge_object(&mut config, key, k, v.clone());
                }
            }
            _ => {
                config.insert(key.clone(), value.clone());
            }
        }
    }
    apply_changes(&mut top, &mut config, &options.changes)?;
    top.insert("config".into(), Value::Object(config));
    let created = Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true);
    top.insert("created".into(), json!(created));
    match options.author.as_deref().filter(|a| !a.is_empty()) {
        Some(author) => {
            top.insert("author".into(), json!(author));
        }
        None => {
            top.remove("author");
        }
    }
    let mut history = Map::new();
    history.insert("created".into(), json!(created));
    let command = std::iter::once(record.path.as_str()).chain(record.args.iter().map(String::as_str));
    history.insert("created_by".into(), json!(command.collect::<Vec<_>>().join(" ")));
    if let Some(author) = options.author.as_deref().filter(|a| !a.is_empty()) {
        history.insert("author".into(), json!(author));
    }
    if let Some(comment) = options.comment.as_deref().filter(|c| !c.is_empty()) {
        history.insert("comment".into(), json!(comment));
    }
    let history_list = top.entry("history").or_insert_with(|| json!([]));
    if !history_list.is_array() {
        *history_list = json!([]);
    }
    history_list.as_array_mut().expect("made an array").push(Value::Object(history));
    Ok(Value::Object(top))
}

fn set_list(config: &mut Map<String, Value>, key: &str, items: &[String]) {
    if items.is_empty() {
        config.remove(key);
    } else {
        config.insert(key.into(), json!(items));
    }
}

/// `KEY=VALUE` entries over the config's `Env`, by key.
fn merge_env(config: &mut Map<String, Value>, entries: &[String]) {
    if entries.is_empty() {
        return;
    }
    let mut env: Vec<String> = config
        .get("Env")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|e| e.as_str().map(String::from)).collect())
        .unwrap_or_default();
    let key_of = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_string();
    for entry in entries {
        let key = key_of(entry);
        match env.iter_mut().find(|e| key_of(e) == key) {
            Some(e) => *e = entry.clone(),
            None => env.push(entry.clone()),
        }
    }
    config.insert("Env".into(), json!(env));
}

fn merge_object(config: &mut Map<String, Value>, field: &str, key: &str, value: Value) {
    let entry = config.entry(field).or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    entry.as_object_mut().expect("made an object").insert(key.to_string(), value);
}

/// Writes the layer, the config and the manifest, records the image and tags it.
fn write_image(
    inner: &EngineInner,
    record: &ContainerRecord,
    mut config: Value,
    reference: Option<&Reference>,
) -> Result<Digest> {
    // Nothing written here is referenced until the image record exists.
    let _gc = inner.gc_lock.read().unwrap_or_else(|p| p.into_inner());
    let image = inner.images.resolve(&record.image_id)?;
    let content = crate::image::read_image(inner, &image)?;
    super::ensure_mounted(inner, &record.id)?;
    let made = crate::build::layers::layer_of_writable(inner, &record.id, &is_setup_path)?;
    let diff_ids = config
        .pointer_mut("/rootfs/diff_ids")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| Error::InvalidInput(format!("image {}: config has no diff IDs", image.id)))?;
    diff_ids.push(json!(made.diff_id.to_string()));
    let bytes = serde_json::to_vec(&config).expect("config serialises");
    let config_digest = inner.content.write_bytes(&bytes)?;
    let mut layers = content.manifest.layers().clone();
    let media_type: MediaType = made.media_type.as_str().into();
    layers.push(descriptor(media_type, made.blob.clone(), made.blob_size)?);
    let config_desc = descriptor(MediaType::ImageConfig, config_digest.clone(), bytes.len() as u64)?;
    let manifest = write_manifest(inner, config_desc, layers)?;
    inner.images.add(ImageRecord {
        id: config_digest.clone(),
        manifest,
        manifest_media_type: MediaType::ImageManifest.to_string(),
        added: Utc::now(),
    })?;
    if let Some(reference) = reference {
        inner.images.tag(reference, &config_digest)?;
    }
    Ok(config_digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_types::container::ContainerConfig;

    fn record(config: ContainerConfig) -> ContainerRecord {
        ContainerRecord {
            id: "a".repeat(64),
            name: "web".into(),
            created: Utc::now(),
            image: "busybox".into(),
            image_id: "sha256:00".into(),
            config,
            path: "sh".into(),
            args: vec!["-c".into(), "echo hi".into()],
            runtime: "berth".into(),
            snapshotter: "overlay".into(),
            stop_signal: 15,
            stop_timeout: 10,
        }
    }

    #[test]
    fn config_is_the_images_with_the_containers_and_the_changes_over_it() {
        let base = json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Cmd": ["sh"], "Env": ["PATH=/bin", "A=1"]},
            "rootfs": {"type": "layers", "diff_ids": []},
            "history": [{"created_by": "import"}],
        });
        let c = ContainerConfig {
            cmd: vec!["sleep".into(), "1".into()],
            env: vec!["A=2".into(), "B=3".into()],
            ..Default::default()
        };
        let options = CommitOptions {
            author: Some("me".into()),
            comment: Some("why".into()),
            changes: vec!["ENV C=4".into(), r#"ENTRYPOINT ["top"]"#.into()],
            config: serde_json::from_value(json!({"Labels": {"x": "y"}, "User": ""})).unwrap(),
            ..Default::default()
        };
        let got = image_config(&record(c), &base, &options).unwrap();
        assert_eq!(got["config"]["Env"], json!(["PATH=/bin", "A=2", "B=3", "C=4"]));
        assert_eq!(got["config"]["Entrypoint"], json!(["top"]));
        // ENTRYPOINT resets CMD, as in a Dockerfile.
        assert!(got["config"].get("Cmd").is_none(), "{got}");
        assert_eq!(got["config"]["Labels"], json!({"x": "y"}));
        assert!(got["config"].get("User").is_none());
        assert_eq!(got["author"], "me");
        let history = got["history"].as_array().unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[1]["comment"], "why");
        assert_eq!(history[1]["created_by"], "sh -c echo hi");

        let bad = CommitOptions { changes: vec!["RUN true".into()], ..Default::default() };
        let e = image_config(&record(ContainerConfig::default()), &base, &bad).unwrap_err();
        assert!(e.to_string().contains("run is not a valid change command"), "{e}");
        assert!(commit_reference(
            "busybox@sha256:0000000000000000000000000000000000000000000000000000000000000000"
        )
        .is_err());
    }
}
