//! import, load and save against the real formats and the real peers: what berth saves passes
//! `umoci` and `oci-image-tool` validation and is read by `skopeo`; what skopeo writes, berth
//! loads back with the same image ID. Each test runs in its own temporary root and directories,
//! removed when it ends, passed or not.
//!
//! The peers come from Debian packages that `scripts/setup.sh --test` installs; a missing peer
//! fails the test with a message saying so (nothing is skipped silently).

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use berth_engine::archive::{pack_dir, unpack_into_dir};
use berth_engine::digest::sha256_of;
use berth_engine::{Engine, EngineConfig, Error, ErrorKind};
use serde_json::{json, Value};

/// An engine in its own temporary root, and a scratch directory, both removed on drop.
struct Env {
    engine: Engine,
    _root: tempfile::TempDir,
    scratch: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let root = tempfile::tempdir().unwrap();
        let engine = Engine::open_blocking(EngineConfig::new(root.path(), root.path().join("run"))).unwrap();
        Env { engine, _root: root, scratch: tempfile::tempdir().unwrap() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.scratch.path().join(name)
    }

    /// The store's image config, parsed, by reference or ID.
    fn config(&self, name: &str) -> Value {
        let inner = self.engine.inner();
        let record = inner.images.resolve(name).unwrap();
        serde_json::from_slice(&inner.content.read(&record.id).unwrap()).unwrap()
    }

    fn manifest(&self, name: &str) -> Value {
        let inner = self.engine.inner();
        let record = inner.images.resolve(name).unwrap();
        serde_json::from_slice(&inner.content.read(&record.manifest).unwrap()).unwrap()
    }

    /// Nothing in the store: no image, no blob, no unpacked layer, no unfinished write.
    fn assert_empty(&self) {
        let inner = self.engine.inner();
        assert!(inner.images.list().is_empty(), "images left: {:?}", inner.images.list());
        assert!(inner.content.list().unwrap().is_empty(), "blobs left: {:?}", inner.content.list().unwrap());
        assert!(inner.snapshots.list_layers().unwrap().is_empty(), "layers left");
        let ingest = self.engine.root().join("ingest");
        assert_eq!(
            fs::read_dir(&ingest).unwrap().count(),
            0,
            "unfinished blob writes left in {}",
            ingest.display()
        );
    }

    async fn import(
        &self,
        tarball: &Path,
        reference: Option<&str>,
        changes: &[&str],
    ) -> berth_types::ImportReport {
        let body = tokio::fs::File::open(tarball).await.unwrap();
        self.engine
            .import_image(
                body,
                reference.map(str::to_string),
                changes.iter().map(|s| s.to_string()).collect(),
                None,
            )
            .await
            .unwrap()
    }

    async fn save(&self, names: &[&str], out: &Path) {
        let file = tokio::fs::File::create(out).await.unwrap();
        self.engine.save_images(names.iter().map(|s| s.to_string()).collect(), file).await.unwrap();
    }

    async fn load(&self, archive: &Path) -> berth_engine::Result<berth_types::LoadReport> {
        self.engine.load_images(tokio::fs::File::open(archive).await.unwrap()).await
    }
}

/// The busybox root filesystem tarball, built by the project's script (reproducible).
fn busybox_tar(dir: &Path) -> PathBuf {
    let out = dir.join("busybox.tar");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/busybox-rootfs.sh");
    run(Command::new("bash").arg(script).arg(&out));
    out
}

/// Fails, naming the fix, when a peer tool is not installed.
fn require(tool: &str) {
    let found =
        Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().unwrap().status.success();
    assert!(found, "{tool} is not installed: run scripts/setup.sh --test");
}

/// Runs a command; panics with its output unless it succeeds. Returns stdout.
fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn gzip(src: &Path, dst: &Path) {
    let mut gz = flate2::write::GzEncoder::new(fs::File::create(dst).unwrap(), flate2::Compression::fast());
    std::io::copy(&mut fs::File::open(src).unwrap(), &mut gz).unwrap();
    gz.finish().unwrap();
}

fn file_digest(path: &Path) -> String {
    sha256_of(&fs::read(path).unwrap()).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_applies_changes_to_the_config() {
    let env = Env::new();
    let tar = busybox_tar(env.scratch.path());
    let body = tokio::fs::File::open(&tar).await.unwrap();
    let changes = [
        "CMD [\"/bin/sh\", \"-c\", \"echo hi\"]",
        "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin GREETING=\"hello world\"",
        "EXPOSE 8080 53/udp",
        "LABEL org.example.team=berth",
        "USER nobody",
        "WORKDIR /srv",
        "VOLUME /data",
        "STOPSIGNAL SIGINT",
        "ENTRYPOINT /bin/busybox",
    ];
    let report = env
        .engine
        .import_image(
            body,
            Some("berth-test/bb:v1".into()),
            changes.iter().map(|s| s.to_string()).collect(),
            Some("made by a test".into()),
        )
        .await
        .unwrap();
    assert_eq!(report.reference.as_deref(), Some("docker.io/berth-test/bb:v1"));

    let config = env.config("berth-test/bb:v1");
    assert_eq!(report.id, env.engine.inner().images.resolve("berth-test/bb:v1").unwrap().id.to_string());
    assert_eq!(config["os"], "linux");
    assert_eq!(config["architecture"], if cfg!(target_arch = "x86_64") { "amd64" } else { "arm64" });
    // A plain tar: the blob is the tar, so the diff ID is the file's digest.
    assert_eq!(config["rootfs"], json!({"type": "layers", "diff_ids": [file_digest(&tar)]}));
    assert_eq!(config["history"][0]["comment"], "made by a test");
    assert!(config["created"].as_str().unwrap().starts_with("20"), "{config}");
    let c = &config["config"];
    assert_eq!(c["Cmd"], json!(["/bin/sh", "-c", "echo hi"]), "CMD given before ENTRYPOINT survives it");
    assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c", "/bin/busybox"]));
    assert_eq!(c["Env"], json!(["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=hello world"]));
    assert_eq!(c["ExposedPorts"], json!({"8080/tcp": {}, "53/udp": {}}));
    assert_eq!(c["Labels"], json!({"org.example.team": "berth"}));
    assert_eq!(c["User"], "nobody");
    assert_eq!(c["WorkingDir"], "/srv");
    assert_eq!(c["Volumes"], json!({"/data": {}}));
    assert_eq!(c["StopSignal"], "SIGINT");

    let manifest = env.manifest("berth-test/bb:v1");
    assert_eq!(manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(manifest["config"]["digest"], report.id);
    assert_eq!(manifest["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar");
    assert_eq!(manifest["layers"][0]["digest"], file_digest(&tar));
    assert_eq!(manifest["layers"][0]["size"], fs::metadata(&tar).unwrap().len());

    // The image is usable by the rest of the engine: inspect sees the same config.
    let inspect = env.engine.inspect_image("berth-test/bb:v1").await.unwrap();
    assert_eq!(inspect.config.cmd, ["/bin/sh", "-c", "echo hi"]);
    assert_eq!(inspect.config.working_dir, "/srv");
    let diff_id = berth_engine::digest::parse_sha256(&file_digest(&tar)).unwrap();
    assert!(env.engine.inner().snapshots.has_layer(&diff_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_keeps_gzip_and_zstd_blobs_as_given() {
    let env = Env::new();
    let tar = busybox_tar(env.scratch.path());
    let gz = env.path("busybox.tar.gz");
    gzip(&tar, &gz);
    let zst = env.path("busybox.tar.zst");
    fs::write(&zst, zstd::encode_all(fs::File::open(&tar).unwrap(), 3).unwrap()).unwrap();

    let plain = env.import(&tar, Some("plain"), &[]).await;
    let g = env.import(&gz, Some("gz"), &[]).await;
    let z = env.import(&zst, None, &[]).await;
    assert_eq!(z.reference, None);
    for (name, file, media_type) in [
        ("gz", &gz, "application/vnd.oci.image.layer.v1.tar+gzip"),
        (z.id.as_str(), &zst, "application/vnd.oci.image.layer.v1.tar+zstd"),
        ("plain", &tar, "application/vnd.oci.image.layer.v1.tar"),
    ] {
        let manifest = env.manifest(name);
        assert_eq!(manifest["layers"][0]["mediaType"], media_type, "{name}");
        assert_eq!(manifest["layers"][0]["digest"], file_digest(file), "{name}");
        // Same tar inside, so the same diff ID, and the layer is unpacked once.
        assert_eq!(env.config(name)["rootfs"]["diff_ids"][0], file_digest(&tar), "{name}");
        assert_eq!(env.config(name)["history"][0]["comment"], "Imported from -");
    }
    assert_eq!(env.engine.inner().snapshots.list_layers().unwrap().len(), 1);
    assert_ne!(plain.id, g.id, "created differs");
}

/// An AsyncRead that notes whether anyone read it.
struct Watched {
    inner: tokio::fs::File,
    read: Arc<AtomicBool>,
}

impl tokio::io::AsyncRead for Watched {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.read.store(true, Ordering::SeqCst);
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_refuses_bad_changes_and_references_before_reading_the_body() {
    let env = Env::new();
    let tar = busybox_tar(env.scratch.path());
    for (reference, change, expected) in [
        (None, "RUN echo hi", "run is not a valid change command"),
        (None, "EXPOSE http", "invalid containerPort: http"),
        (None, "ENV", "ENV requires at least one argument"),
        (Some("Upper/Case"), "CMD x", "invalid reference format"),
        (Some(format!("bb@sha256:{}", "a".repeat(64)).as_str()), "CMD x", "cannot import digest reference"),
    ] {
        let read = Arc::new(AtomicBool::new(false));
        let body = Watched { inner: tokio::fs::File::open(&tar).await.unwrap(), read: read.clone() };
        let err = env
            .engine
            .import_image(body, reference.map(str::to_string), vec![change.to_string()], None)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains(expected), "{change}: {err}");
        assert!(!read.load(Ordering::SeqCst), "{change}: the body was read");
    }
    env.assert_empty();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_of_a_bad_tarball_fails_and_leaves_nothing() {
    let env = Env::new();
    let tar = busybox_tar(env.scratch.path());
    let junk = env.path("junk");
    fs::write(&junk, "this is not a tarball\n".repeat(100)).unwrap();
    let junk_gz = env.path("junk.gz");
    gzip(&junk, &junk_gz);
    // A real tar cut off in the middle of a file.
    let truncated = env.path("truncated.tar");
    fs::write(&truncated, &fs::read(&tar).unwrap()[..700_000]).unwrap();
    let empty = env.path("empty");
    fs::write(&empty, b"").unwrap();

    for (file, expected) in [
        (&junk, "not a tar archive"),
        (&junk_gz, "gzip-compressed input is not a tar archive"),
        (&empty, "empty"),
        (&truncated, ""),
    ] {
        let body = tokio::fs::File::open(file).await.unwrap();
        let err = env.engine.import_image(body, Some("bad:1".into()), vec![], None).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{}: {err}", file.display());
        assert!(err.to_string().contains(expected), "{}: {err}", file.display());
        env.assert_empty();
    }
    assert!(matches!(env.engine.inner().images.resolve("bad:1"), Err(Error::ImageNotFound(_))));
}

/// Imports busybox as `bb:v1` (plain) and `bbgz:v2` (gzip) with a CMD, saves both into one
/// archive and returns the env, the archive and the two image IDs.
async fn saved_busybox() -> (Env, PathBuf, String, String) {
    let env = Env::new();
    let tar = busybox_tar(env.scratch.path());
    let gz = env.path("busybox.tar.gz");
    gzip(&tar, &gz);
    let a = env.import(&tar, Some("bb:v1"), &["CMD [\"/bin/sh\"]"]).await;
    let b = env.import(&gz, Some("localhost:5000/team/bbgz:v2"), &["ENV A=1"]).await;
    let archive = env.path("saved.tar");
    env.save(&["bb:v1", "localhost:5000/team/bbgz:v2"], &archive).await;
    (env, archive, a.id, b.id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_archive_is_a_valid_oci_layout_for_umoci_and_oci_image_tool() {
    require("umoci");
    require("oci-image-tool");
    let (env, archive, id, _) = saved_busybox().await;
    let layout = env.path("layout");
    unpack_into_dir(fs::File::open(&archive).unwrap(), &layout).unwrap();

    let index: Value = serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let first = &index["manifests"][0];
    assert_eq!(first["annotations"]["org.opencontainers.image.ref.name"], "v1");
    assert_eq!(first["annotations"]["io.containerd.image.name"], "docker.io/library/bb:v1");
    let docker: Value = serde_json::from_slice(&fs::read(layout.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(docker[0]["RepoTags"], json!(["bb:v1"]));
    assert_eq!(docker[0]["Config"], format!("blobs/sha256/{}", id.trim_start_matches("sha256:")));
    assert_eq!(docker[1]["RepoTags"], json!(["localhost:5000/team/bbgz:v2"]));

    for tag in ["v1", "v2"] {
        run(Command::new("oci-image-tool")
            .args(["validate", "--type", "image", "--ref"])
            .arg(format!("name={tag}"))
            .arg(&layout));
        let stat =
            run(Command::new("umoci").arg("stat").arg("--image").arg(format!("{}:{tag}", layout.display())));
        assert!(stat.contains("Imported from -"), "umoci stat {tag}: {stat}");
    }
    let bundle = env.path("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:v1", layout.display()))
        .arg(&bundle));
    assert!(bundle.join("rootfs/bin/busybox").is_file());
    let runtime: Value = serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(runtime["process"]["args"], json!(["/bin/sh"]));

    // The same layout, packed again by the CLI's helper, loads as it was.
    let repacked = env.path("repacked.tar");
    pack_dir(&layout, fs::File::create(&repacked).unwrap()).unwrap();
    let fresh = Env::new();
    let report = fresh.load(&repacked).await.unwrap();
    assert_eq!(report.loaded[0].id, id);
    // And so does GNU tar's `tar -C DIR -cf FILE .`, whose paths start with `./`.
    let gnu = env.path("gnu.tar");
    run(Command::new("tar").arg("-C").arg(&layout).arg("-cf").arg(&gnu).arg("."));
    let fresh = Env::new();
    let report = fresh.load(&gnu).await.unwrap();
    assert_eq!(report.loaded[0].id, id);
    assert_eq!(report.loaded[0].reference.as_deref(), Some("docker.io/library/bb:v1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_reads_the_saved_archive_both_ways() {
    require("skopeo");
    let (env, archive, id, gz_id) = saved_busybox().await;
    let hex = |id: &str| id.trim_start_matches("sha256:").to_string();

    let oci_dir = env.path("from-oci");
    run(Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci-archive:{}:v1", archive.display()))
        .arg(format!("dir:{}", oci_dir.display())));
    // dir: stores each blob under its hex; the config arrives with its bytes, so its digest
    // is still the image ID.
    assert!(oci_dir.join(hex(&id)).is_file(), "config {id} missing in skopeo's copy");

    let docker_dir = env.path("from-docker");
    run(Command::new("skopeo")
        .arg("copy")
        .arg(format!("docker-archive:{}:localhost:5000/team/bbgz:v2", archive.display()))
        .arg(format!("dir:{}", docker_dir.display())));
    assert!(docker_dir.join(hex(&gz_id)).is_file(), "config {gz_id} missing in skopeo's copy");
    let manifest: Value =
        serde_json::from_slice(&fs::read(docker_dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["config"]["digest"], gz_id);

    // A one-image archive needs no reference; saved by ID it carries no name at all.
    let single = env.path("single.tar");
    env.save(&[&id], &single).await;
    for (n, source) in
        [format!("docker-archive:{}", single.display()), format!("oci-archive:{}", single.display())]
            .into_iter()
            .enumerate()
    {
        let dir = env.path(&format!("single-{n}"));
        run(Command::new("skopeo").arg("copy").arg(&source).arg(format!("dir:{}", dir.display())));
        assert!(dir.join(hex(&id)).is_file(), "{source}: config {id} missing in skopeo's copy");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_written_archives_load_back_with_the_same_id_and_config() {
    require("skopeo");
    let (env, archive, id, gz_id) = saved_busybox().await;
    let config =
        fs::read(env.engine.inner().content.path(&berth_engine::digest::parse_sha256(&id).unwrap())).unwrap();

    let skopeo = |src: String, dst: String| {
        run(Command::new("skopeo").arg("copy").arg(src).arg(dst));
    };
    let oci = env.path("skopeo-oci.tar");
    skopeo(
        format!("oci-archive:{}:v1", archive.display()),
        format!("oci-archive:{}:copied:v9", oci.display()),
    );
    let bare = env.path("skopeo-bare.tar");
    skopeo(format!("oci-archive:{}:v1", archive.display()), format!("oci-archive:{}:latest", bare.display()));
    let docker = env.path("skopeo-docker.tar");
    skopeo(
        format!("oci-archive:{}:v1", archive.display()),
        format!("docker-archive:{}:bb:from-docker", docker.display()),
    );
    let docker_gz = env.path("skopeo-docker-gz.tar");
    skopeo(
        format!("oci-archive:{}:v2", archive.display()),
        format!("docker-archive:{}:bbgz:from-docker", docker_gz.display()),
    );

    let fresh = Env::new();
    let r = fresh.load(&oci).await.unwrap();
    assert_eq!(r.loaded.len(), 1);
    assert_eq!(r.loaded[0].id, id);
    assert_eq!(r.loaded[0].reference.as_deref(), Some("docker.io/library/copied:v9"));
    let stored =
        fresh.engine.inner().content.read(&berth_engine::digest::parse_sha256(&id).unwrap()).unwrap();
    assert_eq!(stored, config, "config bytes kept");

    // A bare tag in ref.name names no repository: the image loads untagged.
    let r = fresh.load(&bare).await.unwrap();
    assert_eq!(r.loaded, vec![berth_types::LoadedImage { id: id.clone(), reference: None }]);

    let r = fresh.load(&docker).await.unwrap();
    assert_eq!(r.loaded[0].id, id);
    assert_eq!(r.loaded[0].reference.as_deref(), Some("docker.io/library/bb:from-docker"));
    let r = fresh.load(&docker_gz).await.unwrap();
    assert_eq!(r.loaded[0].id, gz_id);
    assert_eq!(fresh.config("bbgz:from-docker")["config"]["Env"], json!(["A=1"]));
    assert_eq!(fresh.config("bb:from-docker")["config"]["Cmd"], json!(["/bin/sh"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_then_load_keeps_ids_tags_and_manifests() {
    let (env, archive, id, gz_id) = saved_busybox().await;
    // Compressed archives load too.
    let archive_gz = env.path("saved.tar.gz");
    gzip(&archive, &archive_gz);
    for file in [&archive, &archive_gz] {
        let fresh = Env::new();
        let report = fresh.load(file).await.unwrap();
        assert_eq!(
            report.loaded,
            vec![
                berth_types::LoadedImage {
                    id: id.clone(),
                    reference: Some("docker.io/library/bb:v1".into())
                },
                berth_types::LoadedImage {
                    id: gz_id.clone(),
                    reference: Some("localhost:5000/team/bbgz:v2".into())
                },
            ]
        );
        for name in ["bb:v1", "localhost:5000/team/bbgz:v2"] {
            let before = env.engine.inner().images.resolve(name).unwrap();
            let after = fresh.engine.inner().images.resolve(name).unwrap();
            assert_eq!((after.id, after.manifest), (before.id, before.manifest), "{name}");
        }
        let inspect = fresh.engine.inspect_image("bb:v1").await.unwrap();
        assert_eq!(inspect.config.cmd, ["/bin/sh"]);
        // Both images share one tar, so one unpacked layer.
        assert_eq!(fresh.engine.inner().snapshots.list_layers().unwrap().len(), 1);
    }

    // Saved by ID: no name in the archive, so it loads untagged.
    let by_id = env.path("by-id.tar");
    env.save(&[&id[7..19]], &by_id).await;
    let fresh = Env::new();
    let report = fresh.load(&by_id).await.unwrap();
    assert_eq!(report.loaded, vec![berth_types::LoadedImage { id: id.clone(), reference: None }]);
    // Loading again is harmless and gives the same answer.
    assert_eq!(fresh.load(&by_id).await.unwrap(), report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_of_an_unknown_image_fails_before_writing() {
    let (env, _, _, _) = saved_busybox().await;
    let err = env.engine.prepare_save(vec!["bb:v1".into(), "nope:1".into()]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("nope:1"), "{err}");
    let err = env.engine.prepare_save(vec![]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

/// Rewrites a tar, passing each entry through `edit(path, bytes)`.
fn rewrite_tar(src: &Path, dst: &Path, mut edit: impl FnMut(&str, &mut Vec<u8>)) {
    let mut input = tar::Archive::new(fs::File::open(src).unwrap());
    let mut out = tar::Builder::new(fs::File::create(dst).unwrap());
    for entry in input.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        edit(&path, &mut data);
        let mut header = entry.header().clone();
        header.set_size(data.len() as u64);
        out.append_data(&mut header, &path, &data[..]).unwrap();
    }
    out.into_inner().unwrap().flush().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_blob_fails_the_load_naming_it_and_leaves_no_image() {
    let (env, archive, id, _) = saved_busybox().await;
    let layer = env.manifest("bb:v1")["layers"][0]["digest"].as_str().unwrap().to_string();
    let tampered = env.path("tampered.tar");
    let blob_path = format!("blobs/sha256/{}", layer.trim_start_matches("sha256:"));
    rewrite_tar(&archive, &tampered, |path, data| {
        if path == blob_path {
            let last = data.len() - 2000;
            data[last] ^= 0x20; // inside the tar's end padding: still a valid tar, other digest
        }
    });
    let fresh = Env::new();
    let err = fresh.load(&tampered).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains(&blob_path), "{err}");
    assert!(fresh.engine.inner().images.list().is_empty());
    assert!(matches!(fresh.engine.inner().images.resolve(&id), Err(Error::ImageNotFound(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_refuses_what_is_not_an_image_archive() {
    let env = Env::new();
    let junk = env.path("junk");
    fs::write(&junk, "not an archive\n".repeat(100)).unwrap();
    let err = env.load(&junk).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    // A tar, but of a root filesystem rather than images.
    let rootfs = busybox_tar(env.scratch.path());
    let err = env.load(&rootfs).await.unwrap_err();
    assert!(err.to_string().contains("neither index.json nor manifest.json"), "{err}");
    assert!(env.engine.inner().images.list().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_of_a_legacy_docker_save_archive_with_linked_layers() {
    // The layout `docker save` wrote before Docker 25: <id>/layer.tar, <id>.json, manifest.json,
    // repositories; a layer two images share is a symlink to the first copy.
    let env = Env::new();
    let rootfs = fs::read(busybox_tar(env.scratch.path())).unwrap();
    let diff_id = sha256_of(&rootfs).to_string();
    let config = |cmd: &str| {
        serde_json::to_vec(&json!({
            "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
            "config": {"Cmd": [cmd]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }))
        .unwrap()
    };
    let (c1, c2) = (config("one"), config("two"));
    let (id1, id2) = (sha256_of(&c1), sha256_of(&c2));
    let manifest = json!([
        {"Config": format!("{}.json", id1.digest()), "RepoTags": ["legacy:one"], "Layers": ["aaaa/layer.tar"]},
        {"Config": format!("{}.json", id2.digest()), "RepoTags": ["legacy:two", "other/legacy:latest"], "Layers": ["bbbb/layer.tar"]},
    ]);
    let archive = env.path("legacy.tar");
    let mut b = tar::Builder::new(fs::File::create(&archive).unwrap());
    let mut add = |path: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, path, data).unwrap();
    };
    add("aaaa/VERSION", b"1.0");
    add("aaaa/layer.tar", &rootfs);
    add(&format!("{}.json", id1.digest()), &c1);
    add(&format!("{}.json", id2.digest()), &c2);
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    add("repositories", br#"{"legacy":{"one":"aaaa"}}"#);
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "bbbb/layer.tar", "../aaaa/layer.tar").unwrap();
    b.into_inner().unwrap();

    let report = env.load(&archive).await.unwrap();
    let got: Vec<(String, Option<String>)> = report.loaded.into_iter().map(|l| (l.id, l.reference)).collect();
    assert_eq!(
        got,
        vec![
            (id1.to_string(), Some("docker.io/library/legacy:one".into())),
            (id2.to_string(), Some("docker.io/library/legacy:two".into())),
            (id2.to_string(), Some("docker.io/other/legacy:latest".into())),
        ]
    );
    assert_eq!(env.config("legacy:two")["config"]["Cmd"], json!(["two"]));
    let manifest = env.manifest("legacy:one");
    assert_eq!(manifest["layers"][0]["digest"], diff_id);
    assert_eq!(manifest["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar");
    assert_eq!(env.engine.inner().snapshots.list_layers().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_picks_this_platform_from_a_nested_index() {
    let (env, archive, id, _) = saved_busybox().await;
    let manifest = env.engine.inner().images.resolve("bb:v1").unwrap().manifest;
    let manifest_size = env.engine.inner().content.size(&manifest).unwrap();
    let arch = if cfg!(target_arch = "x86_64") { "amd64" } else { "arm64" };
    let other = if arch == "amd64" { "arm64" } else { "amd64" };
    // A manifest list whose other platform's blobs are not in the archive (as when one platform
    // of a multi-platform image was saved).
    let nested = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha256_of(b"elsewhere").to_string(),
             "size": 9, "platform": {"os": "linux", "architecture": other}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest.to_string(),
             "size": manifest_size, "platform": {"os": "linux", "architecture": arch}},
        ],
    }))
    .unwrap();
    let nested_digest = sha256_of(&nested);
    let top = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": nested_digest.to_string(),
                       "size": nested.len(), "annotations": {"org.opencontainers.image.ref.name": "multi:1"}}],
    }))
    .unwrap();
    let out = env.path("multi.tar");
    let mut b = tar::Builder::new(fs::File::create(&out).unwrap());
    let mut input = tar::Archive::new(fs::File::open(&archive).unwrap());
    for entry in input.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        if path == "index.json" || path == "manifest.json" {
            continue; // replaced below: an OCI layout only
        }
        let mut header = entry.header().clone();
        b.append_data(&mut header, &path, &mut entry).unwrap();
    }
    for (path, data) in
        [(format!("blobs/sha256/{}", nested_digest.digest()), &nested), ("index.json".into(), &top)]
    {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, path, &data[..]).unwrap();
    }
    b.into_inner().unwrap();

    let fresh = Env::new();
    let report = fresh.load(&out).await.unwrap();
    assert_eq!(
        report.loaded,
        vec![berth_types::LoadedImage { id, reference: Some("docker.io/library/multi:1".into()) }]
    );
    assert_eq!(fresh.engine.inner().images.resolve("multi:1").unwrap().manifest, manifest);
}

/// Set in the child process of [`kill_9_during_import_leaves_a_store_that_works`]: the root to
/// import into.
const CHILD_ROOT_ENV: &str = "BERTH_OCI_INTEROP_KILL_CHILD_ROOT";

/// A body that yields the first `limit` bytes of a file, then never anything again.
struct Stalling {
    data: Vec<u8>,
    at: usize,
}

impl tokio::io::AsyncRead for Stalling {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.at == self.data.len() {
            return std::task::Poll::Pending; // stalls for good; the parent kills us
        }
        let n = buf.remaining().min(self.data.len() - self.at).min(64 << 10);
        let at = self.at;
        buf.put_slice(&self.data[at..at + n]);
        self.at += n;
        std::task::Poll::Ready(Ok(()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_import_leaves_a_store_that_works() {
    if let Ok(root) = std::env::var(CHILD_ROOT_ENV) {
        // The child: import a body that stops in the middle of the busybox binary, and hang.
        let engine =
            Engine::open_blocking(EngineConfig::new(&root, std::path::Path::new(&root).join("run"))).unwrap();
        let tar = std::env::var("BERTH_OCI_INTEROP_TAR").unwrap();
        let data = fs::read(tar).unwrap();
        let body = Stalling { data: data[..1_600_000].to_vec(), at: 0 };
        let result = engine.import_image(body, Some("half:1".into()), vec![], None).await;
        panic!("the import was meant to hang until killed, but returned {result:?}");
    }

    let env = Env::new();
    let tar = busybox_tar(env.scratch.path());
    let root = env.path("root");
    // Re-run this very test, as the child, in another process.
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "kill_9_during_import_leaves_a_store_that_works", "--nocapture"])
        .env(CHILD_ROOT_ENV, &root)
        .env("BERTH_OCI_INTEROP_TAR", &tar)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the child has written part of the blob (the 1 MiB write buffer is flushed).
    let ingest = root.join("ingest");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let partial = loop {
        let written: u64 = fs::read_dir(&ingest)
            .map(|d| d.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
            .unwrap_or(0);
        if written > 0 {
            break written;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the importing child exited early: {status}");
        }
        assert!(std::time::Instant::now() < deadline, "the child never started writing the blob");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    // Let the unpack get going too, then kill -9.
    std::thread::sleep(std::time::Duration::from_millis(300));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGKILL)
        .unwrap();
    child.wait().unwrap();
    assert!(partial > 0);

    // Reopened, the store holds nothing half-done and works.
    let engine = Engine::open_blocking(EngineConfig::new(root.clone(), root.join("run"))).unwrap();
    let inner = engine.inner();
    assert!(inner.images.list().is_empty());
    assert!(inner.content.list().unwrap().is_empty(), "a half-written blob is visible");
    assert_eq!(fs::read_dir(&ingest).unwrap().count(), 0);
    assert!(inner.snapshots.list_layers().unwrap().is_empty(), "a half-unpacked layer is visible");
    let report = engine
        .import_image(tokio::fs::File::open(&tar).await.unwrap(), Some("whole:1".into()), vec![], None)
        .await
        .unwrap();
    assert_eq!(inner.images.resolve("whole:1").unwrap().id.to_string(), report.id);
    let diff_id = berth_engine::digest::parse_sha256(&file_digest(&tar)).unwrap();
    assert!(inner.snapshots.has_layer(&diff_id));
}
