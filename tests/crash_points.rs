//! Crash points: for each operation (import, build, tag, create, run, stop, rm, volume and
//! network create and rm, pull and push), the daemon kills itself (SIGKILL, `BERTH_CRASH_AT`, see
//! engine/src/crash_point.rs) at every crash point the operation passes, in turn. After each
//! crash and a restart the store is consistent (every blob hashes to its name, no temporary file
//! is left, the lists answer), and the operation — done or not at the crash — can be completed:
//! if its effect is missing, running it again succeeds.

use std::path::{Path, PathBuf};

use berth_tests::registry::Registry;
use berth_tests::{check_findings, read_response, Daemon};

/// One operation of the sweep.
struct Op {
    name: &'static str,
    /// Brings the daemon to the operation's starting point (nothing armed; must succeed).
    before: Vec<Vec<String>>,
    /// The operation itself.
    run: Vec<String>,
    /// Whether the operation's effect is there.
    done: Box<dyn Fn(&Daemon) -> bool>,
    /// After a crash that left the effect missing: what may stand in the way of running the
    /// operation again (these may fail).
    tidy: Vec<Vec<String>>,
    /// Undoes the operation for the next crash point (must succeed).
    after: Vec<Vec<String>>,
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn succeeds(daemon: &Daemon, list: &[&str]) -> bool {
    daemon.berth(list).code == 0
}

fn field(daemon: &Daemon, list: &[&str]) -> String {
    daemon.berth(list).stdout.trim().to_string()
}

/// A small root filesystem tar whose layer no image has yet (a random file), so that importing
/// it writes a new blob every time.
fn fresh_rootfs(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join(format!("fresh-{n}.tar"));
    let mut builder = tar::Builder::new(std::fs::File::create(&path).expect("tar file"));
    let data: Vec<u8> = (0..4096).map(|_| rand_byte()).collect();
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, "random.bin", data.as_slice()).expect("tar entry");
    builder.finish().expect("tar end");
    path
}

/// New content for the import's tar and the build's context file.
fn refresh(dir: &Path) {
    fresh_rootfs(dir, 0);
    let data: String = (0..64).map(|_| char::from(b'a' + rand_byte() % 26)).collect();
    std::fs::create_dir_all(dir.join("context")).expect("build context");
    std::fs::write(dir.join("context/data"), data).expect("context file");
}

fn rand_byte() -> u8 {
    use std::cell::Cell;
    thread_local!(static STATE: Cell<u64> = Cell::new(std::process::id() as u64 ^ 0x9E37_79B9_7F4A_7C15 ^ std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64));
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x >> 24) as u8
    })
}

/// Files the engine writes through a temporary name (`.NAME.tmp-N`, blobs' `ingest/`) that a
/// crash may leave behind; a consistent store has none after its start-up.
fn leftover_temporaries(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(kind) = entry.file_type() else { continue };
            // Containers' and volumes' own data are the user's, not the engine's.
            if kind.is_dir()
                && !matches!(
                    name.as_str(),
                    "fs" | "upper"
                        | "work"
                        | "lower"
                        | "merged"
                        | "mountpoint"
                        | "rootfs"
                        | "_data"
                        | "diff"
                        | "blobs"
                )
            {
                stack.push(path);
            } else if kind.is_file() && name.starts_with('.') && name.contains(".tmp-") {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

fn run_all(daemon: &Daemon, what: &str, list: &[Vec<String>]) {
    for command in list {
        let refs: Vec<&str> = command.iter().map(String::as_str).collect();
        let out = daemon.berth(&refs);
        assert_eq!(out.code, 0, "{what}: berth {}: {}{}", command.join(" "), out.stdout, out.stderr);
    }
}

fn wait_until_exited(daemon: &mut Daemon) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if daemon.has_exited() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}

fn ops(dir: &Path) -> Vec<Op> {
    let fresh = fresh_rootfs(dir, 0).display().to_string();
    let context = dir.join("context");
    std::fs::create_dir_all(&context).expect("build context");
    std::fs::write(context.join("Dockerfile"), "FROM busybox\nCOPY data /data\nRUN cat /data > /copy\n")
        .expect("Dockerfile");
    std::fs::write(context.join("data"), "data\n").expect("context file");
    let context = context.display().to_string();
    vec![
        Op {
            name: "import",
            before: vec![],
            run: args(&["import", &fresh, "crash:import"]),
            done: Box::new(|d| succeeds(d, &["image", "inspect", "crash:import"])),
            tidy: vec![],
            after: vec![args(&["rmi", "crash:import"])],
        },
        Op {
            name: "build",
            before: vec![],
            run: args(&["build", "--no-cache", "-t", "crash:build", &context]),
            done: Box::new(|d| succeeds(d, &["image", "inspect", "crash:build"])),
            tidy: vec![],
            after: vec![args(&["rmi", "crash:build"])],
        },
        Op {
            name: "tag",
            before: vec![],
            run: args(&["tag", "busybox", "crash:tag"]),
            done: Box::new(|d| succeeds(d, &["image", "inspect", "crash:tag"])),
            tidy: vec![],
            after: vec![args(&["rmi", "crash:tag"])],
        },
        Op {
            name: "create",
            before: vec![],
            run: args(&["create", "--name", "c1", "busybox", "true"]),
            done: Box::new(|d| succeeds(d, &["inspect", "c1"])),
            tidy: vec![],
            after: vec![args(&["rm", "c1"])],
        },
        Op {
            name: "run -d",
            before: vec![],
            run: args(&["run", "-d", "--name", "r1", "busybox", "sleep", "60"]),
            done: Box::new(|d| field(d, &["inspect", "-f", "{{.state.status}}", "r1"]) == "running"),
            tidy: vec![args(&["rm", "-f", "r1"])],
            after: vec![args(&["rm", "-f", "r1"])],
        },
        Op {
            name: "stop",
            before: vec![args(&["run", "-d", "--name", "s1", "busybox", "sleep", "60"])],
            run: args(&["stop", "-t", "1", "s1"]),
            done: Box::new(|d| field(d, &["inspect", "-f", "{{.state.status}}", "s1"]) == "exited"),
            tidy: vec![],
            after: vec![args(&["rm", "s1"])],
        },
        Op {
            name: "rm",
            before: vec![args(&["create", "--name", "d1", "busybox", "true"])],
            run: args(&["rm", "d1"]),
            done: Box::new(|d| !succeeds(d, &["inspect", "d1"])),
            tidy: vec![],
            after: vec![],
        },
        Op {
            name: "volume create",
            before: vec![],
            run: args(&["volume", "create", "v1"]),
            done: Box::new(|d| succeeds(d, &["volume", "inspect", "v1"])),
            tidy: vec![],
            after: vec![args(&["volume", "rm", "v1"])],
        },
        Op {
            name: "volume rm",
            before: vec![args(&["volume", "create", "v2"])],
            run: args(&["volume", "rm", "v2"]),
            done: Box::new(|d| !succeeds(d, &["volume", "inspect", "v2"])),
            tidy: vec![],
            after: vec![],
        },
        Op {
            name: "network create",
            before: vec![],
            run: args(&["network", "create", "n1"]),
            done: Box::new(|d| succeeds(d, &["network", "inspect", "n1"])),
            tidy: vec![args(&["network", "rm", "n1"])],
            after: vec![args(&["network", "rm", "n1"])],
        },
        Op {
            name: "network rm",
            before: vec![args(&["network", "create", "n2"])],
            run: args(&["network", "rm", "n2"]),
            done: Box::new(|d| !succeeds(d, &["network", "inspect", "n2"])),
            tidy: vec![],
            after: vec![],
        },
    ]
}

/// The store after a restart: `system check` finds nothing, blobs intact, no temporary file
/// left, every list answers.
fn check_consistent(daemon: &Daemon, at: &str) {
    let check = daemon.berth(&["system", "check"]);
    let found = check_findings(&check.stdout, None);
    assert!(
        found.is_empty(),
        "{at}: system check after the restart: {found:?}\n{}{}",
        check.stdout,
        check.stderr
    );
    daemon.verify_blobs();
    let left = leftover_temporaries(&daemon.root());
    assert!(left.is_empty(), "{at}: temporary files left after the restart: {left:?}");
    for list in [&["images"][..], &["ps", "-a"], &["volume", "ls"], &["network", "ls"]] {
        let out = daemon.berth(list);
        assert_eq!(out.code, 0, "{at}: berth {}: {}", list.join(" "), out.stderr);
    }
}

/// What a sweep covered: crashes, the points each operation passed, the points' names.
#[derive(Default)]
struct Covered {
    crashes: usize,
    per_op: Vec<String>,
    names: std::collections::BTreeSet<String>,
}

/// Runs each operation once to learn the crash points it passes, then crashes the daemon at
/// each of them in turn, restarts it, checks the store and completes the operation.
fn sweep(daemon: &mut Daemon, work: &Path, ops: Vec<Op>) -> Covered {
    let log = work.join("crash-points.log");
    let mut covered = Covered::default();
    for op in ops {
        run_all(daemon, op.name, &op.before);
        refresh(work);
        // Which points does the operation pass?
        daemon.stop();
        daemon.set_env(&[("BERTH_CRASH_LOG", log.to_str().unwrap())]);
        daemon.start_again();
        let _ = std::fs::remove_file(&log);
        let refs: Vec<&str> = op.run.iter().map(String::as_str).collect();
        let out = daemon.berth(&refs);
        assert_eq!(out.code, 0, "{}: {}", op.name, out.stderr);
        let passed: Vec<String> =
            std::fs::read_to_string(&log).unwrap_or_default().lines().map(str::to_string).collect();
        assert!(!passed.is_empty(), "{}: the operation passed no crash point", op.name);
        run_all(daemon, op.name, &op.after);

        for (k, point) in passed.iter().enumerate() {
            let at = format!("{} at crash point {} ({point})", op.name, k + 1);
            run_all(daemon, &at, &op.before);
            // New layers each time: an import or build of bytes the store has would write less.
            refresh(work);
            daemon.stop();
            daemon.set_env(&[("BERTH_CRASH_AT", &(k + 1).to_string())]);
            daemon.start_again();
            let _ = daemon.berth(&refs);
            assert!(wait_until_exited(daemon), "{at}: the daemon did not die at the crash point");
            daemon.set_env(&[]);
            daemon.start_again();
            check_consistent(daemon, &at);
            if !(op.done)(daemon) {
                for command in &op.tidy {
                    let refs: Vec<&str> = command.iter().map(String::as_str).collect();
                    let _ = daemon.berth(&refs);
                }
                let again = daemon.berth(&refs);
                assert_eq!(again.code, 0, "{at}: running the operation again failed: {}", again.stderr);
            }
            assert!((op.done)(daemon), "{at}: the operation's effect is missing after running it again");
            run_all(daemon, &at, &op.after);
            covered.crashes += 1;
            covered.names.insert(point.clone());
        }
        covered.per_op.push(format!("{} {}", op.name, passed.len()));
    }
    eprintln!(
        "crash points covered: {} crashes ({}), points {:?}",
        covered.crashes,
        covered.per_op.join(", "),
        covered.names
    );
    covered
}

#[test]
fn a_crash_at_any_write_leaves_a_store_that_recovers() {
    let mut daemon = Daemon::start_in_netns();
    daemon.import_busybox("busybox:latest");
    let work = tempfile::tempdir().expect("work dir");
    let ops = ops(work.path());
    let covered = sweep(&mut daemon, work.path(), ops);
    assert!(covered.crashes > 0);
}

/// The config digest of the manifest `registry` serves for `repository:tag` (None when it has
/// none): what a push must have put there.
fn served_config(registry: &str, repository: &str, tag: &str) -> Option<String> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(registry).expect("connecting to the registry");
    let request = format!(
        "GET /v2/{repository}/manifests/{tag} HTTP/1.0\r\nHost: {registry}\r\nAccept: \
         application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).expect("sending the request");
    let answer = read_response(&mut stream);
    if answer.status != 200 {
        return None;
    }
    answer.json()["config"]["digest"].as_str().map(str::to_string)
}

/// Pull and push: a crash at any point of a pull (each blob, each layer's unpack and its marker,
/// the image record and tag) or of a push (its history row) leaves a store that recovers, and
/// the pull or push can be run again.
#[test]
fn a_crash_during_pull_or_push_leaves_a_store_that_recovers() {
    let registry = Registry::start();
    // In the host's network namespace: the registry listens on its loopback.
    let mut daemon = Daemon::start();
    daemon.import_busybox("busybox:latest");
    let work = tempfile::tempdir().expect("work dir");
    let fresh = fresh_rootfs(work.path(), 0).display().to_string();
    let host = registry.host();
    let pulled = format!("{host}/crash/pull:1");
    let pushed = format!("{host}/crash/push:1");
    let ops = vec![
        Op {
            name: "pull",
            // New layers in the registry, none of them in the store.
            before: vec![
                args(&["import", &fresh, &pulled]),
                args(&["push", &pulled]),
                args(&["rmi", &pulled]),
            ],
            run: args(&["pull", &pulled]),
            done: Box::new({
                let pulled = pulled.clone();
                move |d| succeeds(d, &["image", "inspect", &pulled])
            }),
            tidy: vec![],
            after: vec![args(&["rmi", &pulled])],
        },
        Op {
            name: "push",
            before: vec![args(&["import", &fresh, &pushed])],
            run: args(&["push", &pushed]),
            done: Box::new({
                let (host, pushed) = (host.clone(), pushed.clone());
                move |d| {
                    let inspect: serde_json::Value =
                        serde_json::from_str(&field(d, &["image", "inspect", &pushed]))
                            .expect("inspect JSON");
                    let local = inspect[0]["id"].as_str().expect("an image ID").to_string();
                    served_config(&host, "crash/push", "1").is_some_and(|served| served == local)
                }
            }),
            tidy: vec![],
            after: vec![args(&["rmi", &pushed])],
        },
    ];
    let covered = sweep(&mut daemon, work.path(), ops);
    for name in ["blob.after_rename", "file.after_rename"] {
        assert!(covered.names.contains(name), "the pull passed no {name}: {:?}", covered.names);
    }
}

/// The config digest of what berth's registry at `host` serves for `reference` (skopeo, with
/// `creds`), None when it serves nothing there.
fn served_config_with(host: &str, creds: &str, reference: &str) -> Option<String> {
    let out = std::process::Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", "--creds", creds])
        .arg(format!("docker://{host}/{reference}"))
        .output()
        .expect("running skopeo");
    if !out.status.success() {
        return None;
    }
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    manifest["config"]["digest"].as_str().map(str::to_string)
}

/// A push into the daemon's own registry server answers its manifest before the layers are
/// unpacked into the local image. A crash at any point from the stored manifest to the local
/// image's tag leaves a store that recovers: after the restart the tag is served at once, and
/// the unpack resumes, so that the local image appears whole (never half-unpacked).
#[test]
fn a_crash_while_a_pushed_image_unpacks_leaves_a_store_that_recovers() {
    let host = format!("127.0.0.1:{}", berth_tests::free_port());
    let serve = ["--registry-listen", host.as_str()];
    let mut daemon = Daemon::start_with_args(&serve);
    let work = tempfile::tempdir().expect("work dir");
    let creds = format!("admin:{}", berth_tests::ADMIN_PASSWORD);
    let archive = work.path().join("fresh.tar").display().to_string();
    let target = format!("docker://{host}/crash/unpack:1");
    // A docker archive of an image with a new layer that the daemon then forgets (its layer and
    // blobs): the push brings all of it, and the layer has to be unpacked.
    let prepare = |daemon: &Daemon| {
        let fresh = fresh_rootfs(work.path(), 0).display().to_string();
        let _ = std::fs::remove_file(&archive);
        run_all(
            daemon,
            "prepare",
            &[
                args(&["import", &fresh, "crash/source:1"]),
                args(&["save", "-o", &archive, "crash/source:1"]),
                args(&["rmi", "crash/source:1"]),
            ],
        );
    };
    let push = || {
        std::process::Command::new("skopeo")
            .args(["copy", "--dest-tls-verify=false", "--dest-creds", &creds])
            .arg(format!("docker-archive:{archive}"))
            .arg(&target)
            .output()
            .expect("running skopeo")
    };
    let local_id = |daemon: &Daemon| {
        let out = daemon.berth(&["image", "inspect", "crash/unpack:1"]);
        (out.code == 0).then(|| {
            let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("inspect JSON");
            v[0]["id"].as_str().expect("an image ID").to_string()
        })
    };

    // A first push makes the repository (its first push writes more than the next ones).
    prepare(&daemon);
    let out = push();
    assert!(out.status.success(), "skopeo push: {}", String::from_utf8_lossy(&out.stderr));
    assert!(local_id(&daemon).is_some(), "the pushed image is not a local image");
    run_all(&daemon, "after", &[args(&["rmi", "crash/unpack:1"])]);
    // Which points does a push pass, up to the local image?
    let log = work.path().join("crash-points.log");
    prepare(&daemon);
    daemon.stop();
    daemon.set_env(&[("BERTH_CRASH_LOG", log.to_str().unwrap())]);
    daemon.restart_with_args(&serve);
    let out = push();
    assert!(out.status.success(), "skopeo push: {}", String::from_utf8_lossy(&out.stderr));
    // `image inspect` waits for the unpack (the points passed up to there are the push's).
    assert!(local_id(&daemon).is_some(), "the pushed image is not a local image");
    let passed: Vec<String> =
        std::fs::read_to_string(&log).unwrap_or_default().lines().map(str::to_string).collect();
    run_all(&daemon, "after", &[args(&["rmi", "crash/unpack:1"])]);
    let stored = passed
        .iter()
        .position(|p| p == "distribution.manifest_stored")
        .unwrap_or_else(|| panic!("the push stored no manifest for an unpack: {passed:?}"));
    assert!(passed.contains(&"distribution.unpacked".to_string()), "{passed:?}");

    let mut crashes = 0;
    for k in stored..passed.len() {
        let at = format!("pushed image unpack at crash point {} ({})", k + 1, passed[k]);
        prepare(&daemon);
        daemon.stop();
        daemon.set_env(&[("BERTH_CRASH_AT", &(k + 1).to_string())]);
        daemon.restart_with_args(&serve);
        let _ = push();
        assert!(wait_until_exited(&mut daemon), "{at}: the daemon did not die at the crash point");
        daemon.set_env(&[]);
        daemon.restart_with_args(&serve);
        // The check holds the collection lock, so it also waits for the resumed unpack.
        check_consistent(&daemon, &at);
        // The manifest was stored before the crash: the tag is served, and the local image is
        // the served one (the unpack resumed at the start).
        let served = served_config_with(&host, &creds, "crash/unpack:1");
        assert!(
            served.is_some(),
            "{at}: the stored manifest is not served after the restart (points {passed:?})"
        );
        assert_eq!(local_id(&daemon), served, "{at}: the local image is not the served one");
        // And whole: the check of the image's layers.
        check_consistent(&daemon, &at);
        run_all(&daemon, &at, &[args(&["rmi", "crash/unpack:1"])]);
        crashes += 1;
    }
    eprintln!("pushed image unpack: {crashes} crashes at {:?}", &passed[stored..]);
    assert!(crashes > 0);
}
