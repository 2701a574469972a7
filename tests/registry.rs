//! Pull and push against a real registry (Debian's docker-registry, distribution 2.8) on
//! 127.0.0.1: interop both ways with skopeo, only missing blobs moving, Basic and Bearer token
//! authentication, broken connections, and the API's progress stream.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use berth_tests::registry::{AfterCut, CuttingProxy, Registry, RegistryAuth};
use berth_tests::{big_rootfs_tar, Daemon};

/// Imports a one-layer image of `size` incompressible bytes as `name`; returns the tar.
fn import_big(daemon: &Daemon, name: &str, size: usize, cmd: &str) -> Vec<u8> {
    let tar = big_rootfs_tar(size);
    let path = daemon.dir().join(format!("big-{size}.tar"));
    std::fs::write(&path, &tar).unwrap();
    daemon.berth(&["import", "-c", &format!("CMD [\"{cmd}\"]"), path.to_str().unwrap(), name]).ok();
    tar
}

fn inspect(daemon: &Daemon, name: &str) -> serde_json::Value {
    let out = daemon.berth(&["image", "inspect", name]).ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    v[0].clone()
}

fn blob(daemon: &Daemon, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").unwrap();
    std::fs::read(daemon.root().join("blobs/sha256").join(hex)).unwrap()
}

fn skopeo(args: &[&str]) {
    let out = Command::new("skopeo").args(args).output().expect("running skopeo");
    assert!(
        out.status.success(),
        "skopeo {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Files of a skopeo `dir:` copy: name → bytes.
fn dir_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect()
}

/// Nothing half-done is left in the store: no ingest file, no unpack in progress. A `run --rm`
/// container's writable layer is removed after its removal is reported (through
/// `snapshots/tmp`), so that directory is given a few seconds to empty.
fn assert_no_leftovers(daemon: &Daemon) {
    let ingest: Vec<_> = std::fs::read_dir(daemon.root().join("ingest")).unwrap().collect();
    assert!(ingest.is_empty(), "ingest/ is not empty: {ingest:?}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let tmp: Vec<_> = std::fs::read_dir(daemon.root().join("snapshots/tmp")).unwrap().flatten().collect();
        if tmp.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "snapshots/tmp is not empty: {tmp:?}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    daemon.verify_blobs();
}

#[test]
fn push_is_copied_back_byte_identical_by_skopeo_and_a_repush_moves_no_blob() {
    let registry = Registry::start();
    let daemon = Daemon::start();
    daemon.import_busybox("busybox:latest");
    let reference = format!("{}/berth/busybox:1", registry.host());
    daemon.berth(&["tag", "busybox", &reference]).ok();

    let out = daemon.berth(&["push", &reference]).ok();
    assert!(out
        .stdout
        .contains(&format!("The push refers to repository [{}/berth/busybox]", registry.host())));
    assert_eq!(out.stdout.matches(": Pushed").count(), 2, "config and layer uploaded:\n{}", out.stdout);
    let image = inspect(&daemon, &reference);
    let manifest_digest = image["manifest_digest"].as_str().unwrap().to_string();
    assert!(out.stdout.contains(&format!("1: digest: {manifest_digest} size: ")), "{}", out.stdout);

    // skopeo reads back exactly the manifest and blobs berth has.
    let copy = tempfile::tempdir().unwrap();
    let target = format!("dir:{}", copy.path().join("img").display());
    skopeo(&["copy", "--src-tls-verify=false", &format!("docker://{reference}"), &target]);
    let files = dir_files(&copy.path().join("img"));
    assert_eq!(files["manifest.json"], blob(&daemon, &manifest_digest), "manifest bytes differ");
    let mut blobs = 0;
    for (name, bytes) in &files {
        if name.len() == 64 {
            assert_eq!(bytes, &blob(&daemon, &format!("sha256:{name}")), "blob {name} differs");
            blobs += 1;
        }
    }
    assert_eq!(blobs, 2, "config and one layer: {:?}", files.keys().collect::<Vec<_>>());

    // Again: every blob is there, so only HEADs and the manifest go out.
    let uploads_before = registry.requests("POST", "/blobs/uploads/");
    let puts_before = registry.requests("PUT", "/blobs/uploads/");
    let out = daemon.berth(&["push", &reference]).ok();
    assert_eq!(out.stdout.matches(": Layer already exists").count(), 2, "{}", out.stdout);
    assert!(!out.stdout.contains("Pushed"), "{}", out.stdout);
    assert_eq!(registry.requests("POST", "/blobs/uploads/"), uploads_before, "an upload was started");
    assert_eq!(registry.requests("PUT", "/blobs/uploads/"), puts_before, "a blob was uploaded");

    // By digest, and into another repository of the same registry: mounted, not uploaded.
    let by_digest = format!("{}/berth/busybox@{manifest_digest}", registry.host());
    daemon.berth(&["push", &by_digest]).ok();
    let other = format!("{}/other/busybox:2", registry.host());
    daemon.berth(&["tag", "busybox", &other]).ok();
    let out = daemon.berth(&["push", &other]).ok();
    assert_eq!(out.stdout.matches("Mounted from").count(), 2, "{}", out.stdout);
    assert_eq!(registry.requests("PUT", "/blobs/uploads/"), puts_before, "a blob was uploaded, not mounted");
    skopeo(&["inspect", "--tls-verify=false", &format!("docker://{other}")]);
}

#[test]
fn what_skopeo_pushes_berth_pulls_in_docker_and_oci_zstd_forms() {
    let registry = Registry::start();
    let source = Daemon::start();
    source.import_busybox("busybox:latest");
    let archive = source.dir().join("busybox.tar");
    source.berth(&["save", "-o", archive.to_str().unwrap(), "busybox"]).ok();
    let docker_ref = format!("{}/skopeo/docker:v2s2", registry.host());
    // skopeo compresses the layer itself: zstd for OCI, gzip for Docker schema 2. A registry of
    // its own for each, or skopeo reuses the blob it pushed first instead of compressing again.
    let zstd_registry = Registry::start();
    let zstd_ref = format!("{}/skopeo/zstd:1", zstd_registry.host());
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--format",
        "oci",
        "--dest-compress-format",
        "zstd",
        &format!("docker-archive:{}", archive.display()),
        &format!("docker://{zstd_ref}"),
    ]);
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--format",
        "v2s2",
        &format!("docker-archive:{}", archive.display()),
        &format!("docker://{docker_ref}"),
    ]);

    let daemon = Daemon::start();
    let out = daemon.berth(&["pull", &zstd_ref]).ok();
    assert!(out.stdout.contains("Pull complete"), "{}", out.stdout);
    assert!(out.stdout.contains(&format!("Status: Downloaded newer image for {zstd_ref}")), "{}", out.stdout);
    let image = inspect(&daemon, &zstd_ref);
    assert_eq!(image["manifest_media_type"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(image["layers"][0]["media_type"], "application/vnd.oci.image.layer.v1.tar+zstd");
    // Same content as the image it came from (skopeo rewrites the config for OCI, so the IDs
    // differ; the layer's diff ID does not).
    assert_eq!(image["layers"][0]["diff_id"], inspect(&source, "busybox")["layers"][0]["diff_id"]);
    let layer_dir = daemon.root().join("snapshots/layers");
    assert_eq!(std::fs::read_dir(&layer_dir).unwrap().count(), 1);

    // The gzip blob is new, its diff ID is not: the blob is fetched, the layer is not unpacked
    // a second time.
    let out = daemon.berth(&["pull", &docker_ref]).ok();
    assert!(out.stdout.contains("Pull complete"), "{}", out.stdout);
    let image = inspect(&daemon, &docker_ref);
    assert_eq!(image["manifest_media_type"], "application/vnd.docker.distribution.manifest.v2+json");
    assert_eq!(image["layers"][0]["media_type"], "application/vnd.docker.image.rootfs.diff.tar.gzip");
    assert_eq!(std::fs::read_dir(&layer_dir).unwrap().count(), 1);
    // Schema 2 keeps Docker's config as it was: the same image ID.
    assert_eq!(image["id"], inspect(&source, "busybox")["id"]);
    // And what was pulled runs.
    for reference in [&docker_ref, &zstd_ref] {
        let out = daemon.berth(&["run", "--rm", reference, "echo", "hello from a pulled image"]).ok();
        assert_eq!(out.stdout, "hello from a pulled image\n");
    }
    assert_no_leftovers(&daemon);
}

#[test]
fn layers_in_the_store_are_not_downloaded_and_concurrent_pulls_share_one_download() {
    let registry = Registry::start();
    let source = Daemon::start();
    // Two images on one 24 MB layer (same tar, different configs): large enough that the
    // concurrent pulls overlap, and pushed in PATCH chunks.
    import_big(&source, "big:a", 24 << 20, "a");
    import_big(&source, "big:b", 24 << 20, "b");
    let a = format!("{}/big/a:1", registry.host());
    let b = format!("{}/big/b:1", registry.host());
    let c = format!("{}/big/c:1", registry.host());
    for (local, remote) in [("big:a", &a), ("big:b", &b)] {
        source.berth(&["tag", local, remote]).ok();
        source.berth(&["push", remote]).ok();
    }
    assert!(registry.requests("PATCH", "/blobs/uploads/") >= 2, "the big layer went up in chunks");
    let layer = inspect(&source, "big:a")["layers"][0]["digest"].as_str().unwrap().to_string();

    // Two pulls at once of images sharing the layer: it is downloaded once.
    let daemon = Daemon::start();
    let gets_before = registry.requests("GET", &format!("/blobs/{layer}"));
    std::thread::scope(|s| {
        let pulls: Vec<_> = [&a, &b].iter().map(|r| s.spawn(|| daemon.berth(&["pull", r]))).collect();
        for p in pulls {
            p.join().unwrap().ok();
        }
    });
    assert_eq!(
        registry.requests("GET", &format!("/blobs/{layer}")) - gets_before,
        1,
        "layer downloaded twice"
    );

    // A third image on the same layer: nothing but its config moves.
    import_big(&source, "big:c", 24 << 20, "c");
    source.berth(&["tag", "big:c", &c]).ok();
    source.berth(&["push", &c]).ok();
    let out = daemon.berth(&["pull", &c]).ok();
    assert!(out.stdout.contains(": Already exists"), "{}", out.stdout);
    assert!(!out.stdout.contains("Pull complete"), "{}", out.stdout);
    assert_eq!(registry.requests("GET", &format!("/blobs/{layer}")) - gets_before, 1);
    // Pulling again what is there says so; by digest too.
    let out = daemon.berth(&["pull", &a]).ok();
    assert!(out.stdout.contains(&format!("Status: Image is up to date for {a}")), "{}", out.stdout);
    let digest = inspect(&daemon, &a)["manifest_digest"].as_str().unwrap().to_string();
    let by_digest = format!("{}/big/a@{digest}", registry.host());
    let out = daemon.berth(&["pull", &by_digest]).ok();
    assert!(out.stdout.contains("Status: Image is up to date"), "{}", out.stdout);
    assert_no_leftovers(&daemon);
}

#[test]
fn unknown_manifests_and_repositories_are_clear_errors() {
    let registry = Registry::start();
    let daemon = Daemon::start();
    let missing = format!("{}/no/such:tag", registry.host());
    let out = daemon.berth(&["pull", &missing]).fails_with("manifest unknown");
    assert!(out.stderr.contains(&format!("manifest for {missing} not found")), "{}", out.stderr);
    daemon
        .berth(&["pull", &format!("{}/x@sha256:{}", registry.host(), "0".repeat(64))])
        .fails_with("not found");
    daemon.berth(&["pull", "a/B"]).fails_with("invalid reference format");
    daemon.berth(&["pull", "--platform", "linux", &missing]).fails_with("invalid platform");
    daemon.berth(&["push", &format!("{}/not/here:1", registry.host())]).fails_with("No such image");
    // Nothing listens there: the error names the registry.
    let port = berth_tests::free_port();
    daemon.berth(&["pull", &format!("127.0.0.1:{port}/a:1")]).fails_with(&format!("127.0.0.1:{port}"));
    assert_no_leftovers(&daemon);
}

#[test]
fn basic_auth_login_push_pull_and_logout() {
    let registry =
        Registry::start_with(RegistryAuth::Basic { user: "alice".into(), password: "wonder-land".into() });
    let daemon = Daemon::start();
    daemon.import_busybox("busybox:latest");
    let reference = format!("{}/private/busybox:1", registry.host());
    daemon.berth(&["tag", "busybox", &reference]).ok();

    daemon.berth(&["push", &reference]).fails_with("unauthorized");
    daemon
        .berth_stdin(&["login", "-u", "alice", "--password-stdin", &registry.host()], b"wrong\n")
        .fails_with("failed with status: 401 Unauthorized");
    let out = daemon
        .berth_stdin(&["login", "-u", "alice", "--password-stdin", &registry.host()], b"wonder-land\n")
        .ok();
    assert_eq!(out.stdout.trim(), "Login Succeeded");

    // The credentials file is root's alone, and the password appears in no log.
    let auth_file = daemon.root().join("registry/auth.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&auth_file).unwrap().permissions().mode() & 0o777, 0o600);

    daemon.berth(&["push", &reference]).ok();
    daemon.berth(&["rmi", "busybox", &reference]).ok();
    daemon.berth(&["pull", &reference]).ok();
    assert!(!daemon.log().contains("wonder-land"), "the password was logged");

    let out = daemon.berth(&["logout", &registry.host()]).ok();
    assert_eq!(out.stdout.trim(), format!("Removing login credentials for {}", registry.host()));
    let out = daemon.berth(&["logout", &registry.host()]).ok();
    assert_eq!(out.stdout.trim(), format!("Not logged in to {}", registry.host()));
    daemon.berth(&["rmi", &reference]).ok();
    daemon.berth(&["pull", &reference]).fails_with("unauthorized");
}

#[test]
fn bearer_token_flow_against_a_token_service() {
    let registry =
        Registry::start_with(RegistryAuth::Token { user: "bob".into(), password: "token-secret".into() });
    let daemon = Daemon::start();
    daemon.import_busybox("busybox:latest");
    let reference = format!("{}/team/busybox:1", registry.host());
    daemon.berth(&["tag", "busybox", &reference]).ok();

    // Anonymous: the token grants nothing, the registry refuses.
    daemon.berth(&["push", &reference]).fails_with("unauthorized");
    daemon
        .berth_stdin(&["login", "-u", "bob", "--password-stdin", &registry.host()], b"nope")
        .fails_with("incorrect username or password");
    daemon.berth_stdin(&["login", "-u", "bob", "--password-stdin", &registry.host()], b"token-secret").ok();
    daemon.berth(&["push", &reference]).ok();
    daemon.berth(&["rmi", "busybox", &reference]).ok();
    daemon.berth(&["pull", &reference]).ok();

    let requests = registry.token_requests();
    assert!(
        requests.iter().any(|q| q.contains("scope=repository%3Ateam%2Fbusybox%3Apull%2Cpush")),
        "no push token was asked for: {requests:?}"
    );
    assert!(requests.iter().all(|q| q.contains("service=berth-test-registry")), "{requests:?}");
    // Tokens are cached per scope: far fewer token requests than registry requests.
    let registry_requests =
        registry.log().lines().filter(|l| l.contains("\"HEAD ") || l.contains("\"GET ")).count();
    assert!(requests.len() < registry_requests, "{} token requests for {registry_requests}", requests.len());
    assert!(!daemon.log().contains("token-secret"), "the password was logged");
}

#[test]
fn a_cut_layer_download_resumes_with_range() {
    let registry = Registry::start();
    let source = Daemon::start();
    import_big(&source, "big:1", 8 << 20, "x");
    let pushed = format!("{}/cut/big:1", registry.host());
    source.berth(&["tag", "big:1", &pushed]).ok();
    source.berth(&["push", &pushed]).ok();
    let layer = inspect(&source, "big:1")["layers"][0]["digest"].as_str().unwrap().to_string();

    let proxy = CuttingProxy::start(registry.port(), &layer, 3 << 20, AfterCut::PassThrough);
    let daemon = Daemon::start();
    let through_proxy = format!("{}/cut/big:1", proxy.host());
    daemon.berth(&["pull", &through_proxy]).ok();
    assert_eq!(proxy.cuts(), 1);
    let gets = proxy.blob_gets.lock().unwrap().clone();
    assert_eq!(gets.len(), 2, "{gets:?}");
    let range = gets[1].clone().expect("the second request asks for a range");
    assert!(range.starts_with("bytes=") && range.ends_with('-') && range != "bytes=0-", "{range}");
    assert!(daemon.log().contains("resuming a layer download"));
    assert_eq!(inspect(&daemon, &through_proxy)["id"], inspect(&source, "big:1")["id"]);
    assert_no_leftovers(&daemon);
}

#[test]
fn a_layer_download_that_cannot_resume_fails_and_leaves_nothing() {
    let registry = Registry::start();
    let source = Daemon::start();
    import_big(&source, "big:1", 8 << 20, "x");
    let pushed = format!("{}/cut/big:1", registry.host());
    source.berth(&["tag", "big:1", &pushed]).ok();
    source.berth(&["push", &pushed]).ok();
    let layer = inspect(&source, "big:1")["layers"][0]["digest"].as_str().unwrap().to_string();

    let proxy = CuttingProxy::start(registry.port(), &layer, 3 << 20, AfterCut::CutAll);
    let daemon = Daemon::start();
    let through_proxy = format!("{}/cut/big:1", proxy.host());
    let out = daemon.berth(&["pull", &through_proxy]).fails_with(&format!("fetching layer {layer}"));
    assert!(out.stderr.contains("could not be resumed"), "{}", out.stderr);
    assert!(proxy.cuts() > 1);
    // No image, no layer blob, no unpacked layer, nothing in progress.
    assert!(berth_tests::image_ids(&daemon).is_empty());
    let hex = layer.strip_prefix("sha256:").unwrap();
    assert!(!daemon.root().join("blobs/sha256").join(hex).exists());
    assert_eq!(std::fs::read_dir(daemon.root().join("snapshots/layers")).unwrap().count(), 0);
    assert_no_leftovers(&daemon);
}

#[test]
fn the_api_streams_pull_and_push_progress_as_json_lines() {
    let registry = Registry::start();
    let daemon = Daemon::start();
    daemon.import_busybox("busybox:latest");
    let reference = format!("{}/api/busybox:1", registry.host());
    daemon.berth(&["tag", "busybox", &reference]).ok();

    let body = serde_json::json!({ "reference": reference }).to_string();
    let answer =
        daemon.http("POST", "/api/v1/images/push", &[("Content-Type", "application/json")], body.as_bytes());
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("content-type"), Some("application/x-ndjson"));
    let lines: Vec<serde_json::Value> =
        answer.text().lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert_eq!(lines[0]["event"], "resolving");
    assert!(lines.iter().any(|l| l["event"] == "layer" && l["status"] == "uploading"));
    let last = lines.last().unwrap();
    assert_eq!(last["event"], "pushed", "{last}");
    assert_eq!(last["blobs_uploaded"], 2);

    daemon.berth(&["rmi", "busybox", &reference]).ok();
    let answer =
        daemon.http("POST", "/api/v1/images/pull", &[("Content-Type", "application/json")], body.as_bytes());
    let lines: Vec<serde_json::Value> =
        answer.text().lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    let statuses: Vec<&str> = lines.iter().filter_map(|l| l["status"].as_str()).collect();
    for s in ["waiting", "downloading", "verifying", "done"] {
        assert!(statuses.contains(&s), "no {s} in {statuses:?}");
    }
    let resolved = lines.iter().find(|l| l["event"] == "resolved").expect("resolved line");
    assert!(resolved["total_bytes"].as_u64().unwrap() > 0);
    let last = lines.last().unwrap();
    assert_eq!(last["event"], "pulled", "{last}");
    assert_eq!(last["layers_downloaded"], 1);

    // A failure is the last line, with the message.
    let body = serde_json::json!({ "reference": format!("{}/api/none:1", registry.host()) }).to_string();
    let answer =
        daemon.http("POST", "/api/v1/images/pull", &[("Content-Type", "application/json")], body.as_bytes());
    let last: serde_json::Value = serde_json::from_str(answer.text().lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "error");
    assert!(last["message"].as_str().unwrap().contains("manifest unknown"), "{last}");
    // A malformed reference is refused before any stream.
    let body = serde_json::json!({ "reference": "a/B" }).to_string();
    let answer =
        daemon.http("POST", "/api/v1/images/pull", &[("Content-Type", "application/json")], body.as_bytes());
    assert_eq!(answer.status, 400);
}

#[test]
fn a_corrupt_layer_is_refused_by_name_and_nothing_of_it_is_kept() {
    let registry = Registry::start();
    let source = Daemon::start();
    import_big(&source, "big:1", 4 << 20, "x");
    let pushed = format!("{}/bad/big:1", registry.host());
    source.berth(&["tag", "big:1", &pushed]).ok();
    source.berth(&["push", &pushed]).ok();
    let layer = inspect(&source, "big:1")["layers"][0]["digest"].as_str().unwrap().to_string();

    // One byte of file content flipped: the tar still parses, the digests do not match.
    let proxy = CuttingProxy::corrupting(registry.port(), &layer, 2 << 20);
    let daemon = Daemon::start();
    let out = daemon.berth(&["pull", &format!("{}/bad/big:1", proxy.host())]).fails_with("digest mismatch");
    assert!(
        out.stderr.contains(&format!("layer {layer}")),
        "the error does not name the layer: {}",
        out.stderr
    );
    assert!(berth_tests::image_ids(&daemon).is_empty());
    let hex = layer.strip_prefix("sha256:").unwrap();
    assert!(!daemon.root().join("blobs/sha256").join(hex).exists());
    assert_eq!(std::fs::read_dir(daemon.root().join("snapshots/layers")).unwrap().count(), 0);
    assert_no_leftovers(&daemon);
}

/// Writes `bytes` as a blob of the OCI layout `dir`; returns its digest.
fn layout_blob(dir: &Path, bytes: &[u8]) -> String {
    use sha2::Digest;
    let hex = hex::encode(sha2::Sha256::digest(bytes));
    std::fs::write(dir.join("blobs/sha256").join(&hex), bytes).unwrap();
    format!("sha256:{hex}")
}

#[test]
fn an_image_index_gives_this_platform_or_the_one_asked_for() {
    let registry = Registry::start();
    let source = Daemon::start();
    source.import_busybox("busybox:latest");
    // An OCI layout of busybox, with an index listing its manifest for two platforms.
    let layout = source.dir().join("layout");
    source.berth(&["save", "-o", &format!("{}/", layout.display()), "busybox"]).ok();
    let top: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest = &top["manifests"][0];
    let entry = |arch: &str| {
        serde_json::json!({
            "mediaType": manifest["mediaType"], "digest": manifest["digest"], "size": manifest["size"],
            "platform": {"os": "linux", "architecture": arch},
        })
    };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry("arm64"), entry("amd64")],
    });
    let index_bytes = serde_json::to_vec(&index).unwrap();
    let index_digest = layout_blob(&layout, &index_bytes);
    let new_top = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json", "digest": index_digest,
            "size": index_bytes.len(), "annotations": {"org.opencontainers.image.ref.name": "multi"},
        }],
    });
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&new_top).unwrap()).unwrap();
    let reference = format!("{}/multi/busybox:1", registry.host());
    skopeo(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:multi", layout.display()),
        &format!("docker://{reference}"),
    ]);

    // skopeo compresses the layer on the way, so the registry's index and manifest are its own.
    let raw = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", &format!("docker://{reference}")])
        .output()
        .unwrap();
    let pushed_index: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    let pushed_index_digest = {
        use sha2::Digest;
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(&raw.stdout)))
    };
    assert_eq!(pushed_index["manifests"].as_array().unwrap().len(), 2);

    let daemon = Daemon::start();
    let out = daemon.berth(&["pull", &reference]).ok();
    assert!(out.stdout.contains(&format!("Digest: {pushed_index_digest}")), "{}", out.stdout);
    let image = inspect(&daemon, &reference);
    assert_eq!(image["manifest_digest"], pushed_index["manifests"][1]["digest"], "not the amd64 entry");
    assert_eq!(image["id"], inspect(&source, "busybox")["id"]);
    daemon.berth(&["pull", "--platform", "linux/arm64", &reference]).ok();
    daemon
        .berth(&["pull", "--platform", "linux/s390x", &reference])
        .fails_with("no matching manifest for linux/s390x");
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// An image whose config claims a layer the store already has (busybox's diff ID) while its
/// blob holds other bytes: trusting the claim would give the image busybox's files (or, across
/// teams, another team's private layer). The pull is refused with a digest mismatch and the
/// image does not appear; busybox still runs.
#[test]
fn a_config_claiming_a_layer_the_store_has_is_refused() {
    let registry = Registry::start();
    let daemon = Daemon::start();
    daemon.import_busybox("busybox:latest");
    let busybox = inspect(&daemon, "busybox");
    let claimed = busybox["layers"][0]["diff_id"].as_str().expect("busybox's diff ID").to_string();

    // The image, as a skopeo `dir:` layout: one uncompressed layer of other bytes.
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(5);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, "other", &b"other"[..]).unwrap();
    let layer = builder.into_inner().unwrap();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": busybox["architecture"],
        "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [claimed]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": format!("sha256:{}", sha256_hex(&config)),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": format!("sha256:{}", sha256_hex(&layer)),
            "size": layer.len(),
        }],
    }))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("version"), "Directory Transport Version: 1.1\n").unwrap();
    std::fs::write(dir.path().join("manifest.json"), &manifest).unwrap();
    std::fs::write(dir.path().join(sha256_hex(&config)), &config).unwrap();
    std::fs::write(dir.path().join(sha256_hex(&layer)), &layer).unwrap();
    let reference = format!("{}/claims/busybox:1", registry.host());
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--preserve-digests",
        &format!("dir:{}", dir.path().display()),
        &format!("docker://{reference}"),
    ]);

    daemon.berth(&["pull", &reference]).fails_with("digest");
    assert_ne!(daemon.berth(&["image", "inspect", &reference]).code, 0, "the image appeared");
    daemon.berth(&["run", "--rm", "busybox", "true"]).ok();
    // The layer was not given to the image, nor changed: busybox's files are busybox's.
    let ls = daemon.berth(&["run", "--rm", "busybox", "ls", "/"]).ok();
    assert!(!ls.stdout.contains("other"), "{}", ls.stdout);
}
