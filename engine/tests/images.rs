//! Image operations on a real store in a temporary root: list, inspect, tag, rmi, prune and
//! garbage collection. Images are built here by writing blobs and an image record directly (not
//! through import), so these tests depend only on the stores.

use std::collections::HashSet;

use berth_engine::layer::Compression;
use berth_engine::store::ImageRecord;
use berth_engine::{Engine, EngineConfig, Error, ErrorKind, Reference, SnapshotterKind};
use berth_types::ImageDeleteItem::{self, Deleted, Untagged};
use chrono::{DateTime, Utc};
use oci_spec::image::Digest;
use serde_json::{json, Value};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// An engine in its own temporary root, removed when the test ends (passed or not).
struct TestEngine {
    engine: Engine,
    _root: tempfile::TempDir,
}

fn engine() -> TestEngine {
    let root = tempfile::tempdir().unwrap();
    let engine = Engine::open_blocking(EngineConfig {
        snapshotter: Some(SnapshotterKind::Copy),
        ..EngineConfig::new(root.path(), root.path().join("run"))
    })
    .unwrap();
    TestEngine { engine, _root: root }
}

/// An uncompressed layer tar holding `files` (path, content).
fn layer(files: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        builder.append_data(&mut header, path, content.as_bytes()).unwrap();
    }
    builder.into_inner().unwrap()
}

/// What an image built by [`ImageSpec::build`] consists of.
struct Built {
    record: ImageRecord,
    /// Layer blob digests (uncompressed, so also the diff IDs), bottom first.
    layers: Vec<Digest>,
}

/// A test image: layers, creation time, config, and the tags to give it.
struct ImageSpec {
    layers: Vec<Vec<u8>>,
    created: Option<String>,
    /// Extra fields of the config (e.g. a label that makes two configs differ).
    config: Value,
    /// `(created_by, empty_layer)`; defaults to one entry per layer.
    history: Option<Vec<(&'static str, bool)>>,
    tags: Vec<&'static str>,
    docker_manifest: bool,
    /// When the store got the image; now if not set.
    added: Option<DateTime<Utc>>,
}

impl ImageSpec {
    fn new(layers: Vec<Vec<u8>>) -> ImageSpec {
        ImageSpec {
            layers,
            created: Some("2024-01-01T00:00:00Z".into()),
            config: json!({}),
            history: None,
            tags: Vec::new(),
            docker_manifest: false,
            added: None,
        }
    }

    fn created(mut self, created: Option<&str>) -> Self {
        self.created = created.map(str::to_string);
        self
    }

    fn config(mut self, config: Value) -> Self {
        self.config = config;
        self
    }

    fn added(mut self, rfc3339: &str) -> Self {
        self.added = Some(rfc3339.parse().unwrap());
        self
    }

    fn tags(mut self, tags: &[&'static str]) -> Self {
        self.tags = tags.to_vec();
        self
    }

    /// Writes the layer blobs (and unpacks them), the config, the manifest, the image record and
    /// the tags, as an import would.
    fn build(self, t: &TestEngine) -> Built {
        let inner = t.engine.inner();
        let mut layers = Vec::new();
        for tar in &self.layers {
            let digest = inner.content.write_bytes(tar).unwrap();
            let diff_id = inner.snapshots.unpack_layer(&tar[..], Compression::None, Some(&digest)).unwrap();
            assert_eq!(diff_id, digest);
            layers.push(digest);
        }
        let history: Vec<Value> = match &self.history {
            Some(h) => h.iter().map(|(by, empty)| json!({"created_by": by, "empty_layer": empty})).collect(),
            None => (0..layers.len()).map(|i| json!({"created_by": format!("layer {i}")})).collect(),
        };
        let mut config = json!({
            "architecture": "amd64",
            "os": "linux",
            "config": self.config,
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
            "history": history,
        });
        if let Some(created) = &self.created {
            config["created"] = json!(created);
        }
        let config_bytes = serde_json::to_vec(&config).unwrap();
        let id = inner.content.write_bytes(&config_bytes).unwrap();
        let (manifest_type, config_type, layer_type) = if self.docker_manifest {
            (
                DOCKER_MANIFEST,
                "application/vnd.docker.container.image.v1+json",
                "application/vnd.docker.image.rootfs.diff.tar",
            )
        } else {
            (
                OCI_MANIFEST,
                "application/vnd.oci.image.config.v1+json",
                "application/vnd.oci.image.layer.v1.tar",
            )
        };
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": manifest_type,
            "config": {"mediaType": config_type, "digest": id.to_string(), "size": config_bytes.len()},
            "layers": layers.iter().zip(&self.layers).map(|(d, tar)| json!({
                "mediaType": layer_type, "digest": d.to_string(), "size": tar.len(),
            })).collect::<Vec<_>>(),
        });
        let manifest = inner.content.write_bytes(&serde_json::to_vec(&manifest).unwrap()).unwrap();
        let record = inner
            .images
            .add(ImageRecord {
                id,
                manifest,
                manifest_media_type: manifest_type.into(),
                added: self.added.unwrap_or_else(Utc::now),
            })
            .unwrap();
        for tag in &self.tags {
            inner.images.tag(&Reference::parse(tag).unwrap(), &record.id).unwrap();
        }
        Built { record, layers }
    }
}

fn short(id: &Digest) -> String {
    id.digest()[..12].to_string()
}

fn blobs(t: &TestEngine) -> HashSet<Digest> {
    t.engine.inner().content.list().unwrap().into_iter().collect()
}

fn unpacked(t: &TestEngine) -> HashSet<Digest> {
    t.engine.inner().snapshots.list_layers().unwrap().into_iter().collect()
}

fn ids(t: &TestEngine) -> Vec<Digest> {
    t.engine.inner().images.list().into_iter().map(|(r, _)| r.id).collect()
}

/// Bytes that removing `blobs` and `layers` frees, measured before: blob sizes, and the disk
/// usage of each unpacked layer's directory (its files and the store's record of it).
fn footprint(t: &TestEngine, blobs: &[&Digest], layers: &[&Digest]) -> u64 {
    let inner = t.engine.inner();
    blobs.iter().map(|b| inner.content.size(b).unwrap()).sum::<u64>()
        + layers
            .iter()
            .map(|l| berth_engine::fsutil::disk_usage(inner.snapshots.layer_path(l).parent().unwrap()))
            .sum::<u64>()
}

#[tokio::test]
async fn list_is_newest_first_with_sizes_and_repo_digests() {
    let t = engine();
    let old = ImageSpec::new(vec![layer(&[("old", "o")])])
        .created(Some("2020-05-01T00:00:00Z"))
        .added("2025-01-01T00:00:00Z")
        .tags(&["old:1"])
        .build(&t);
    let undated = ImageSpec::new(vec![layer(&[("undated", "u")])]).created(None).build(&t);
    let new = ImageSpec::new(vec![layer(&[("a", "1")]), layer(&[("b", "22")])])
        .created(Some("2024-06-01T12:00:00+02:00"))
        .tags(&["busybox:latest", "busybox:1.36", "localhost:5000/team/app:v1"])
        .build(&t);
    // Same creation time as `old`, but added later: comes first of the two.
    let old_later = ImageSpec::new(vec![layer(&[("old2", "o")])])
        .created(Some("2020-05-01T00:00:00Z"))
        .added("2025-01-02T00:00:00Z")
        .build(&t);

    let list = t.engine.list_images().await.unwrap();
    let order: Vec<&str> = list.iter().map(|s| s.id.as_str()).collect();
    let want: Vec<String> =
        [&new, &old_later, &old, &undated].iter().map(|b| b.record.id.to_string()).collect();
    assert_eq!(order, want);

    let top = &list[0];
    assert_eq!(top.created, "2024-06-01T12:00:00+02:00");
    assert_eq!(
        top.repo_tags,
        vec![
            "docker.io/library/busybox:1.36",
            "docker.io/library/busybox:latest",
            "localhost:5000/team/app:v1"
        ]
    );
    let m = &new.record.manifest;
    assert_eq!(
        top.repo_digests,
        vec![format!("docker.io/library/busybox@{m}"), format!("localhost:5000/team/app@{m}")]
    );
    let snapshots = &t.engine.inner().snapshots;
    let size: u64 = new.layers.iter().map(|l| snapshots.layer_size(l).unwrap()).sum();
    assert!(size > 0);
    assert_eq!(top.size, size);
    assert_eq!(list[3].created, "");
    assert!(list[3].repo_tags.is_empty() && list[3].repo_digests.is_empty());
}

#[tokio::test]
async fn inspect_reports_config_layers_and_history() {
    let t = engine();
    let mut spec = ImageSpec::new(vec![layer(&[("bin/app", "binary")]), layer(&[("etc/conf", "x=1")])])
        .created(Some("2024-02-03T04:05:06Z"))
        .config(json!({
            "User": "app",
            "Env": ["PATH=/bin", "MODE=prod"],
            "Entrypoint": ["/bin/app"],
            "Cmd": ["--serve"],
            "WorkingDir": "/srv",
            "ExposedPorts": {"8080/tcp": {}, "53/udp": {}},
            "Volumes": {"/data": {}},
            "Labels": {"org.example.team": "core"},
            "StopSignal": "SIGTERM",
        }))
        .tags(&["example.com/app:v2"]);
    spec.history = Some(vec![("ADD app", false), ("ENV MODE=prod", true), ("COPY conf", false)]);
    spec.docker_manifest = true;
    let built = spec.build(&t);
    let id = built.record.id.to_string();

    // Every way of naming the image finds it.
    for name in [
        "example.com/app:v2".to_string(),
        id.clone(),
        built.record.id.digest().to_string(),
        id[..19].to_string(),
        built.record.id.digest()[..12].to_string(),
        format!("example.com/app@{}", built.record.manifest),
    ] {
        assert_eq!(t.engine.inspect_image(&name).await.unwrap().id, id, "inspect {name}");
    }

    let i = t.engine.inspect_image("example.com/app:v2").await.unwrap();
    assert_eq!(i.repo_tags, vec!["example.com/app:v2"]);
    assert_eq!(i.repo_digests, vec![format!("example.com/app@{}", built.record.manifest)]);
    assert_eq!(i.manifest_digest, built.record.manifest.to_string());
    assert_eq!(i.manifest_media_type, DOCKER_MANIFEST);
    assert_eq!(i.created, "2024-02-03T04:05:06Z");
    assert_eq!((i.architecture.as_str(), i.os.as_str()), ("amd64", "linux"));
    assert_eq!(i.config.user, "app");
    assert_eq!(i.config.env, vec!["PATH=/bin", "MODE=prod"]);
    assert_eq!(i.config.entrypoint, vec!["/bin/app"]);
    assert_eq!(i.config.cmd, vec!["--serve"]);
    assert_eq!(i.config.working_dir, "/srv");
    assert_eq!(i.config.exposed_ports, vec!["53/udp", "8080/tcp"]);
    assert_eq!(i.config.volumes, vec!["/data"]);
    assert_eq!(i.config.labels.get("org.example.team").map(String::as_str), Some("core"));
    assert_eq!(i.config.stop_signal, "SIGTERM");

    assert_eq!(i.layers.len(), 2);
    for (info, digest) in i.layers.iter().zip(&built.layers) {
        assert_eq!(info.digest, digest.to_string());
        assert_eq!(info.diff_id, digest.to_string());
        assert_eq!(info.media_type, "application/vnd.docker.image.rootfs.diff.tar");
        assert_eq!(info.size, t.engine.inner().content.size(digest).unwrap());
    }
    let history: Vec<(&str, bool, u64)> =
        i.history.iter().map(|h| (h.created_by.as_str(), h.empty_layer, h.size)).collect();
    assert_eq!(
        history,
        vec![
            ("ADD app", false, i.layers[0].size),
            ("ENV MODE=prod", true, 0),
            ("COPY conf", false, i.layers[1].size)
        ]
    );
    let snapshots = &t.engine.inner().snapshots;
    assert_eq!(i.size, built.layers.iter().map(|l| snapshots.layer_size(l).unwrap()).sum::<u64>());
}

#[tokio::test]
async fn unknown_images_are_reported_in_dockers_words() {
    let t = engine();
    ImageSpec::new(vec![]).tags(&["present:1"]).build(&t);
    let unknown_id = format!("sha256:{}", "f".repeat(64));
    for name in ["nope", "nope:1", "present:2", "0123abc", unknown_id.as_str()] {
        let e = t.engine.inspect_image(name).await.unwrap_err();
        assert_eq!(e.to_string(), format!("No such image: {name}"));
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e = t.engine.remove_image(name, false).await.unwrap_err();
        assert_eq!(e.to_string(), format!("No such image: {name}"));
        let e = t.engine.remove_image(name, true).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        let e = t.engine.tag_image(name, "target:1").await.unwrap_err();
        assert_eq!(e.to_string(), format!("No such image: {name}"));
    }
    let e = t.engine.inspect_image("Bad:Name").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().starts_with("invalid reference format"), "{e}");
    assert_eq!(ids(&t).len(), 1);
}

#[tokio::test]
async fn tag_adds_latest_moves_tags_and_refuses_digests() {
    let t = engine();
    let a = ImageSpec::new(vec![layer(&[("a", "a")])]).tags(&["app:v1"]).build(&t);
    let b = ImageSpec::new(vec![layer(&[("b", "b")])]).build(&t);
    let images = &t.engine.inner().images;

    t.engine.tag_image("app:v1", "localhost:5000/app").await.unwrap();
    assert_eq!(images.tags(&a.record.id), vec!["docker.io/library/app:v1", "localhost:5000/app:latest"]);

    // Moving both tags to b leaves a dangling: still there, with no tags.
    t.engine.tag_image(b.record.id.as_ref(), "app:v1").await.unwrap();
    t.engine.tag_image(&b.record.id.digest()[..12], "localhost:5000/app:latest").await.unwrap();
    assert!(images.tags(&a.record.id).is_empty());
    assert_eq!(images.tags(&b.record.id), vec!["docker.io/library/app:v1", "localhost:5000/app:latest"]);
    let list = t.engine.list_images().await.unwrap();
    let dangling = list.iter().find(|s| s.id == a.record.id.to_string()).unwrap();
    assert!(dangling.repo_tags.is_empty());

    let digest_target = format!("app@{}", a.record.manifest);
    let e = t.engine.tag_image("app:v1", &digest_target).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("refusing to create a tag with a digest reference"), "{e}");
    let e = t.engine.tag_image("app:v1", "App:v2").await.unwrap_err();
    assert_eq!(e.to_string(), "invalid reference format: repository name (library/App) must be lowercase");
    let e = t.engine.tag_image("app:v1", "app:").await.unwrap_err();
    assert!(matches!(e, Error::InvalidReference(_)), "{e}");
    assert_eq!(images.tags(&b.record.id).len(), 2);
}

#[tokio::test]
async fn rmi_by_tag_untags_until_the_last_tag_then_deletes() {
    let t = engine();
    let base = layer(&[("base", "shared")]);
    let img = ImageSpec::new(vec![base.clone(), layer(&[("own", "only here")])])
        .tags(&["app:v1", "app:v2"])
        .build(&t);
    let other = ImageSpec::new(vec![base]).tags(&["other:1"]).build(&t);
    let id = img.record.id.clone();

    let items = t.engine.remove_image("app:v1", false).await.unwrap();
    assert_eq!(items, vec![Untagged("app:v1".into())]);
    assert!(ids(&t).contains(&id));
    assert!(blobs(&t).contains(&img.layers[1]));

    let items = t.engine.remove_image("docker.io/library/app:v2", false).await.unwrap();
    assert_eq!(
        items,
        vec![Untagged("app:v2".into()), Deleted(id.to_string()), Deleted(img.layers[1].to_string())]
    );
    assert!(!ids(&t).contains(&id));
    // The image's own blobs and layer are gone; the shared base stays for `other`.
    let blobs = blobs(&t);
    for gone in [&id, &img.record.manifest, &img.layers[1]] {
        assert!(!blobs.contains(gone), "{gone} still stored");
    }
    assert!(blobs.contains(&img.layers[0]));
    assert_eq!(unpacked(&t), HashSet::from([other.layers[0].clone()]));
    assert!(t.engine.inspect_image("other:1").await.is_ok());
}

#[tokio::test]
async fn rmi_by_id_or_prefix_deletes_the_image_with_its_tag() {
    let t = engine();
    let a = ImageSpec::new(vec![layer(&[("a", "a")])]).tags(&["a:1"]).build(&t);
    let b = ImageSpec::new(vec![layer(&[("b", "b")])]).build(&t);
    let c = ImageSpec::new(vec![layer(&[("c", "c")])]).tags(&["c:1"]).build(&t);

    let items = t.engine.remove_image(a.record.id.as_ref(), false).await.unwrap();
    assert_eq!(
        items,
        vec![Untagged("a:1".into()), Deleted(a.record.id.to_string()), Deleted(a.layers[0].to_string())]
    );
    // A dangling image by a prefix of its ID.
    let items = t.engine.remove_image(&b.record.id.digest()[..8], false).await.unwrap();
    assert_eq!(items, vec![Deleted(b.record.id.to_string()), Deleted(b.layers[0].to_string())]);
    // A digest reference names the image by content, like an ID.
    let items = t.engine.remove_image(&format!("c@{}", c.record.manifest), false).await.unwrap();
    assert_eq!(items[..2], [Untagged("c:1".into()), Deleted(c.record.id.to_string())]);
    assert!(ids(&t).is_empty());
    assert!(blobs(&t).is_empty());
    assert!(unpacked(&t).is_empty());
}

#[tokio::test]
async fn ambiguous_id_prefix_is_refused() {
    let t = engine();
    // Among 17 images two IDs share their first hex digit.
    let mut seen: std::collections::HashMap<char, Digest> = Default::default();
    let (first, second) = (0..17)
        .find_map(|i| {
            let b = ImageSpec::new(vec![]).config(json!({"Labels": {"n": i.to_string()}})).build(&t);
            let c = b.record.id.digest().chars().next().unwrap();
            seen.insert(c, b.record.id.clone()).map(|prev| (prev, b.record.id))
        })
        .unwrap();
    let common: String = first
        .digest()
        .chars()
        .zip(second.digest().chars())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a)
        .collect();
    let before = ids(&t).len();
    for result in [
        t.engine.remove_image(&common, true).await.map(|_| ()),
        t.engine.inspect_image(&common).await.map(|_| ()),
        t.engine.tag_image(&common, "x:1").await,
    ] {
        let e = result.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("ambiguous"), "{e}");
    }
    assert_eq!(ids(&t).len(), before);
    // One more digit settles it.
    let longer = &first.digest()[..common.len() + 1];
    assert_eq!(t.engine.inspect_image(longer).await.unwrap().id, first.to_string());
}

#[tokio::test]
async fn rmi_by_id_of_an_image_in_several_repositories_needs_force() {
    let t = engine();
    let img = ImageSpec::new(vec![layer(&[("x", "x")])]).tags(&["one:1", "two:1"]).build(&t);
    let id = img.record.id.clone();

    let e = t.engine.remove_image(&id.digest()[..12], false).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert_eq!(
        e.to_string(),
        format!(
            "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
            short(&id)
        )
    );
    assert_eq!(t.engine.inner().images.tags(&id).len(), 2);
    assert!(blobs(&t).contains(&img.layers[0]));

    let items = t.engine.remove_image(id.as_ref(), true).await.unwrap();
    assert_eq!(
        items,
        vec![
            Untagged("one:1".into()),
            Untagged("two:1".into()),
            Deleted(id.to_string()),
            Deleted(img.layers[0].to_string())
        ]
    );
    assert!(ids(&t).is_empty());
}

#[tokio::test]
async fn prune_removes_dangling_images_or_with_all_every_image() {
    let t = engine();
    let shared = layer(&[("shared", "s")]);
    let tagged = ImageSpec::new(vec![shared.clone(), layer(&[("t", "t")])]).tags(&["keep:1"]).build(&t);
    let dangling = ImageSpec::new(vec![shared, layer(&[("d", "dd")])]).build(&t);
    let empty_dangling = ImageSpec::new(vec![]).config(json!({"Labels": {"empty": "yes"}})).build(&t);

    let freed = footprint(
        &t,
        &[
            &dangling.record.id,
            &dangling.record.manifest,
            &dangling.layers[1],
            &empty_dangling.record.id,
            &empty_dangling.record.manifest,
        ],
        &[&dangling.layers[1]],
    );
    let report = t.engine.prune_images(false).await.unwrap();
    let mut deleted: Vec<ImageDeleteItem> = report.images_deleted.clone();
    deleted.sort_by_key(|i| format!("{i:?}"));
    let mut want = vec![
        Deleted(dangling.record.id.to_string()),
        Deleted(dangling.layers[1].to_string()),
        Deleted(empty_dangling.record.id.to_string()),
    ];
    want.sort_by_key(|i| format!("{i:?}"));
    assert_eq!(deleted, want);
    assert_eq!(report.space_reclaimed, freed);
    assert_eq!(ids(&t), vec![tagged.record.id.clone()]);
    assert_eq!(unpacked(&t), tagged.layers.iter().cloned().collect());

    // Nothing dangling is left: a second prune does nothing.
    let report = t.engine.prune_images(false).await.unwrap();
    assert!(report.images_deleted.is_empty());
    assert_eq!(report.space_reclaimed, 0);

    let freed = footprint(
        &t,
        &[&tagged.record.id, &tagged.record.manifest, &tagged.layers[0], &tagged.layers[1]],
        &[&tagged.layers[0], &tagged.layers[1]],
    );
    let report = t.engine.prune_images(true).await.unwrap();
    assert_eq!(
        report.images_deleted,
        vec![
            Untagged("keep:1".into()),
            Deleted(tagged.record.id.to_string()),
            Deleted(tagged.layers[1].to_string()),
            Deleted(tagged.layers[0].to_string()),
        ]
    );
    assert_eq!(report.space_reclaimed, freed);
    assert!(ids(&t).is_empty() && blobs(&t).is_empty() && unpacked(&t).is_empty());
}

#[tokio::test]
async fn gc_keeps_what_images_use_and_removes_the_rest() {
    let t = engine();
    let inner = t.engine.inner();
    let base = layer(&[("base", "base")]);
    let a = ImageSpec::new(vec![base.clone(), layer(&[("a", "a")])]).tags(&["a:1"]).build(&t);
    let b = ImageSpec::new(vec![base, layer(&[("b", "b")])]).tags(&["b:1"]).build(&t);

    // Nothing to collect while both images exist.
    let report = t.engine.collect_garbage().await.unwrap();
    assert_eq!((report.blobs_removed, report.layers_removed, report.space_reclaimed), (0, 0, 0));

    // Leftovers no image references: a blob and an unpacked layer.
    let stray_blob = inner.content.write_bytes(b"left behind by an interrupted pull").unwrap();
    let stray_tar = layer(&[("stray", "stray")]);
    let stray_layer = inner.snapshots.unpack_layer(&stray_tar[..], Compression::None, None).unwrap();
    let freed = footprint(&t, &[&stray_blob], &[&stray_layer]);
    let report = t.engine.collect_garbage().await.unwrap();
    assert_eq!((report.blobs_removed, report.layers_removed), (1, 1));
    assert_eq!(report.space_reclaimed, freed);
    assert!(!blobs(&t).contains(&stray_blob));
    assert!(!unpacked(&t).contains(&stray_layer));

    // Removing a drops what only a used, and keeps the base b stands on.
    t.engine.remove_image("a:1", false).await.unwrap();
    let want_blobs: HashSet<Digest> =
        [&b.record.id, &b.record.manifest, &b.layers[0], &b.layers[1]].into_iter().cloned().collect();
    assert_eq!(blobs(&t), want_blobs);
    assert_eq!(unpacked(&t), b.layers.iter().cloned().collect());
    assert_eq!(a.layers[0], b.layers[0]);
    assert_eq!(t.engine.inspect_image("b:1").await.unwrap().layers.len(), 2);
}

#[tokio::test]
async fn gc_sweeps_nothing_while_an_image_cannot_be_read() {
    let t = engine();
    let inner = t.engine.inner();
    let good = ImageSpec::new(vec![layer(&[("g", "g")])]).tags(&["good:1"]).build(&t);
    let broken = ImageSpec::new(vec![layer(&[("x", "x")])]).tags(&["broken:1"]).build(&t);
    std::fs::remove_file(inner.content.path(&broken.record.manifest)).unwrap();
    let stray = inner.content.write_bytes(b"garbage").unwrap();

    let e = t.engine.collect_garbage().await.unwrap_err();
    assert!(e.to_string().contains("garbage collection stopped"), "{e}");
    assert!(blobs(&t).contains(&stray));
    // The broken image is still listed, so that it can be seen and removed.
    let list = t.engine.list_images().await.unwrap();
    assert_eq!(list.len(), 2);
    assert!(t.engine.inspect_image("broken:1").await.is_err());

    let items = t.engine.remove_image("broken:1", false).await.unwrap();
    assert_eq!(items[..2], [Untagged("broken:1".into()), Deleted(broken.record.id.to_string())]);
    assert!(!blobs(&t).contains(&stray));
    assert!(!blobs(&t).contains(&broken.layers[0]));
    assert_eq!(unpacked(&t), HashSet::from([good.layers[0].clone()]));
}
