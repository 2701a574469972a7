//! `berth build` end to end: the test Dockerfiles built by berth and by buildah give the same
//! root filesystems and configs; the cache, its invalidation, errors with line numbers, a
//! failing RUN that leaves nothing behind, `--target`, `--build-arg`, `--label`, `history`.

use std::path::Path;

use berth_tests::build::{
    berth_rootfs, comparable_config, describe_tree, prepare_context, tree_differences,
    without_buildah_mountpoints, Buildah,
};
use berth_tests::{busybox_rootfs, Daemon};

fn build(daemon: &Daemon, ctx: &Path, args: &[&str]) -> berth_tests::Output {
    let mut all = vec!["build"];
    all.extend_from_slice(args);
    all.push(ctx.to_str().unwrap());
    daemon.berth(&all)
}

/// Builds `case` with both builders and compares root filesystems and configs.
fn compare_with_buildah(case: &str, berth_args: &[&str], buildah_args: &[&str]) {
    let daemon = Daemon::with_busybox();
    let peer = Buildah::with_busybox(&daemon);
    let work = tempfile::tempdir().unwrap();
    let ctx = prepare_context(case, work.path());
    let tag = format!("cmp-{case}:latest");
    let mut args = vec!["-t", tag.as_str()];
    args.extend_from_slice(berth_args);
    build(&daemon, &ctx, &args).ok();
    peer.build(&ctx, &tag, buildah_args);

    let base = describe_tree(&berth_rootfs(&daemon, "busybox:latest", &tempdir_in(work.path(), "base")));
    let ours = describe_tree(&berth_rootfs(&daemon, &tag, &tempdir_in(work.path(), "berth")));
    let theirs = without_buildah_mountpoints(
        describe_tree(&peer.rootfs(&format!("localhost/{tag}"), &tempdir_in(work.path(), "buildah"))),
        &base,
    );
    let diffs = tree_differences(&ours, &theirs);
    assert!(diffs.is_empty(), "{case}: root filesystems differ:\n{}", diffs.join("\n"));

    let inspect = daemon.berth(&["image", "inspect", &tag]).ok();
    let ours: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    let ours = comparable_config(&ours[0]["config"]);
    let theirs = comparable_config(&peer.config(&format!("localhost/{tag}")));
    assert_eq!(ours, theirs, "{case}: configs differ (left berth, right buildah)");
}

fn tempdir_in(parent: &Path, name: &str) -> std::path::PathBuf {
    let p = parent.join(name);
    std::fs::create_dir(&p).unwrap();
    p
}

#[test]
fn every_instruction_matches_buildah() {
    compare_with_buildah("instructions", &[], &[]);
}

#[test]
fn copy_and_add_match_buildah() {
    compare_with_buildah("copy", &[], &[]);
}

#[test]
fn deletions_across_layers_match_buildah() {
    compare_with_buildah("deletions", &[], &[]);
}

#[test]
fn multi_stage_with_args_before_from_matches_buildah() {
    compare_with_buildah("multistage", &["--build-arg", "GREETING=hi"], &["--build-arg", "GREETING=hi"]);
}

#[test]
fn escape_directive_matches_buildah() {
    compare_with_buildah("escape", &[], &[]);
}

#[test]
fn escape_directive_applies_to_env_and_label_words_as_docker_documents() {
    let daemon = Daemon::with_busybox();
    let work = tempfile::tempdir().unwrap();
    let ctx = work.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    let text = "# escape=`\nFROM busybox\nENV WINPATH=C:\\app\\bin GREETING=\"say `\"hi`\"\"\nLABEL quoted=\"a `\"quoted`\" word\" `\n      path=C:\\app\n";
    std::fs::write(ctx.join("Dockerfile"), text).unwrap();
    build(&daemon, &ctx, &["-t", "esc:1"]).ok();
    let inspect = daemon.berth(&["image", "inspect", "esc:1"]).ok();
    let v: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    let env = v[0]["config"]["env"].as_array().unwrap();
    assert!(env.contains(&serde_json::json!("WINPATH=C:\\app\\bin")), "{env:?}");
    assert!(env.contains(&serde_json::json!("GREETING=say \"hi\"")), "{env:?}");
    assert_eq!(v[0]["config"]["labels"]["quoted"], "a \"quoted\" word");
    assert_eq!(v[0]["config"]["labels"]["path"], "C:\\app");
}

#[test]
fn from_scratch_matches_buildah() {
    compare_with_buildah("scratch", &[], &[]);
}

#[test]
fn deletions_build_the_same_with_the_copy_snapshotter() {
    // The copy snapshotter finds a step's changes by comparing trees, not from overlay's upper
    // directory: its image must hold the same files.
    let overlay = Daemon::with_busybox();
    let copy = Daemon::start_with_args(&["--snapshotter", "copy"]);
    let tar = busybox_rootfs(copy.dir());
    copy.berth(&["import", "-c", "CMD [\"sh\"]", tar.to_str().unwrap(), "busybox:latest"]).ok();
    let work = tempfile::tempdir().unwrap();
    let ctx = prepare_context("deletions", work.path());
    build(&overlay, &ctx, &["-t", "del:1"]).ok();
    build(&copy, &ctx, &["-t", "del:1"]).ok();
    let a = describe_tree(&berth_rootfs(&overlay, "del:1", &tempdir_in(work.path(), "a")));
    let b = describe_tree(&berth_rootfs(&copy, "del:1", &tempdir_in(work.path(), "b")));
    let diffs = tree_differences(&a, &b);
    assert!(diffs.is_empty(), "overlay and copy snapshotters differ:\n{}", diffs.join("\n"));
}

#[test]
fn a_rebuild_is_fully_cached_and_gives_the_same_image() {
    let daemon = Daemon::with_busybox();
    let work = tempfile::tempdir().unwrap();
    let ctx = prepare_context("copy", work.path());
    let first = build(&daemon, &ctx, &["-q", "-t", "c:1"]).ok();
    let again = build(&daemon, &ctx, &["-t", "c:2"]).ok();
    let steps = again.stderr.lines().filter(|l| l.contains("] ")).count();
    let cached = again.stderr.lines().filter(|l| l.ends_with(" CACHED")).count();
    // Every step but FROM comes from the cache.
    assert_eq!(cached, steps - 1, "{}", again.stderr);
    let id1 = first.stdout.trim().to_string();
    let inspect = daemon.berth(&["image", "inspect", "c:2"]).ok();
    assert!(inspect.stdout.contains(&id1), "the cached rebuild made another image:\n{}", inspect.stdout);

    // --no-cache runs everything again.
    let fresh = build(&daemon, &ctx, &["--no-cache", "-t", "c:3"]).ok();
    assert!(!fresh.stderr.contains("CACHED"), "{}", fresh.stderr);
}

#[test]
fn changing_a_copied_file_invalidates_that_step_and_the_ones_after() {
    let daemon = Daemon::with_busybox();
    let work = tempfile::tempdir().unwrap();
    let ctx = work.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN echo first > /first\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\n",
    )
    .unwrap();
    std::fs::write(ctx.join("a.txt"), "one\n").unwrap();
    std::fs::write(ctx.join("unused.txt"), "x\n").unwrap();
    build(&daemon, &ctx, &["-t", "inv:1"]).ok();

    // A file no COPY uses changes nothing.
    std::fs::write(ctx.join("unused.txt"), "y\n").unwrap();
    let same = build(&daemon, &ctx, &["-t", "inv:2"]).ok();
    assert_eq!(same.stderr.matches(" CACHED").count(), 3, "{}", same.stderr);

    std::fs::write(ctx.join("a.txt"), "two\n").unwrap();
    let out = build(&daemon, &ctx, &["-t", "inv:3"]).ok();
    assert_eq!(out.stderr.matches(" CACHED").count(), 1, "only the first RUN is cached:\n{}", out.stderr);
    let run = daemon.berth(&["run", "--rm", "inv:3", "cat", "/b.txt"]).ok();
    assert_eq!(run.stdout, "two\n");
}

#[test]
fn bad_dockerfiles_fail_with_file_line_and_problem_and_tag_nothing() {
    let daemon = Daemon::with_busybox();
    let work = tempfile::tempdir().unwrap();
    let cases = [
        ("FROM busybox\nRUN true\nFROOM x\n", "Dockerfile:3: unknown instruction"),
        ("FROM busybox\nCOPY missing.txt /x\n", "Dockerfile:2: COPY failed: file not found in build context"),
        ("FROM busybox\n\nCOPY --bogus=1 a /b\n", "Dockerfile:3: unknown flag: --bogus"),
        ("RUN true\n", "Dockerfile"),
        ("FROM busybox\nENV A=${B\n", "Dockerfile:2: missing '}'"),
        // Not local, so it is pulled; nothing listens on port 1 (tests never leave the machine).
        ("FROM 127.0.0.1:1/nosuchimage\n", "Dockerfile:1: "),
        (
            "FROM busybox\nADD https://example.com/x /x\n",
            "Dockerfile:2: ADD from a remote URL is not supported",
        ),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let ctx = work.path().join(format!("bad{i}"));
        std::fs::create_dir(&ctx).unwrap();
        std::fs::write(ctx.join("Dockerfile"), text).unwrap();
        let out = build(&daemon, &ctx, &["-t", "bad:latest"]);
        assert_ne!(out.code, 0, "{text:?} built");
        assert!(out.stderr.contains(expected), "{text:?}: want {expected:?} in:\n{}", out.stderr);
    }
    let images = daemon.berth(&["images", "--format", "{{.Repository}}"]).ok();
    assert!(!images.stdout.contains("bad"), "a failed build tagged an image:\n{}", images.stdout);
    let missing = daemon.berth(&["build", work.path().join("nope").to_str().unwrap()]);
    assert_ne!(missing.code, 0);
}

#[test]
fn a_failing_run_shows_its_output_and_exit_code_and_leaves_nothing() {
    let daemon = Daemon::with_busybox();
    let work = tempfile::tempdir().unwrap();
    let ctx = work.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN echo made > /made\nRUN echo to-stdout; echo to-stderr >&2; exit 3\n",
    )
    .unwrap();
    let out = build(&daemon, &ctx, &["-t", "fails:latest"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("to-stdout") && out.stderr.contains("to-stderr"), "{}", out.stderr);
    assert!(
        out.stderr.contains("Dockerfile:3: process \"/bin/sh -c echo to-stdout; echo to-stderr >&2; exit 3\" did not complete successfully: exit code: 3"),
        "{}",
        out.stderr
    );
    assert!(daemon.berth(&["images", "-q", "fails"]).ok().stdout.trim().is_empty());
    // No writable layer, no mount, no temporary directory, no container is left.
    let writables = std::fs::read_dir(daemon.root().join("snapshots/containers")).unwrap().count();
    assert_eq!(writables, 0, "a build writable layer was left behind");
    let tmp = std::fs::read_dir(daemon.root().join("build/tmp")).unwrap().count();
    assert_eq!(tmp, 0, "build temporary files were left behind");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(daemon.root().to_str().unwrap()), "a build mount was left behind");
    assert!(daemon.berth(&["ps", "-a", "-q"]).ok().stdout.trim().is_empty());
    // The step before the failure was recorded: the next build starts from the cache.
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN echo made > /made\nRUN true\n").unwrap();
    let next = build(&daemon, &ctx, &["-t", "fails:latest"]).ok();
    assert_eq!(next.stderr.matches(" CACHED").count(), 1, "{}", next.stderr);
}

#[test]
fn target_build_args_labels_and_history() {
    let daemon = Daemon::with_busybox();
    let work = tempfile::tempdir().unwrap();
    let ctx = prepare_context("multistage", work.path());
    // --target builds the named stage only (and what it needs).
    let out = build(
        &daemon,
        &ctx,
        &["--target", "builder", "-t", "t:builder", "--build-arg", "GREETING=hey", "--build-arg", "UNUSED=1"],
    )
    .ok();
    assert!(
        out.stderr.contains("[Warning] One or more build-args [UNUSED] were not consumed"),
        "{}",
        out.stderr
    );
    let run = daemon.berth(&["run", "--rm", "t:builder", "cat", "/out/greeting"]).ok();
    assert_eq!(run.stdout, "hey from the builder\n");
    assert!(!out.stderr.contains("/all/"), "--target built later stages:\n{}", out.stderr);

    // Several tags and --label.
    build(&daemon, &ctx, &["-t", "t:one", "-t", "t:two", "--label", "team=infra"]).ok();
    let a = daemon.berth(&["image", "inspect", "t:one"]).ok();
    let v: serde_json::Value = serde_json::from_str(&a.stdout).unwrap();
    assert_eq!(v[0]["config"]["labels"]["team"], "infra");
    assert!(v[0]["repo_tags"].as_array().unwrap().len() == 2, "{}", a.stdout);
    let run = daemon.berth(&["run", "--rm", "t:one"]).ok();
    assert_eq!(run.stdout, "hello from the builder\n");
    // Rebuilt: every step but the FROMs is cached, COPY --from included.
    let again = build(&daemon, &ctx, &["-t", "t:one", "-t", "t:two", "--label", "team=infra"]).ok();
    let steps = again.stderr.lines().filter(|l| l.contains("] ")).count();
    let froms = again.stderr.lines().filter(|l| l.contains("] FROM ")).count();
    assert_eq!(again.stderr.matches(" CACHED").count(), steps - froms, "{}", again.stderr);

    let history = daemon.berth(&["history", "t:one"]).ok();
    let lines = history.lines();
    assert!(lines[0].starts_with("IMAGE"), "{}", history.stdout);
    assert!(history.stdout.contains("COPY --from=builder"), "{}", history.stdout);
    assert!(history.stdout.contains("<missing>"), "{}", history.stdout);
    let api = daemon.http("GET", "/api/v1/images/t:one/history", &[], b"");
    assert_eq!(api.status, 200, "{}", api.text());
    assert!(api.json().as_array().unwrap().len() >= 4);
}

#[test]
fn the_api_streams_build_events_as_json_lines() {
    let daemon = Daemon::with_busybox();
    let mut builder = tar::Builder::new(Vec::new());
    let text = b"FROM busybox\nRUN echo streamed\n";
    let mut h = tar::Header::new_gnu();
    h.set_size(text.len() as u64);
    h.set_mode(0o644);
    builder.append_data(&mut h, "Dockerfile", &text[..]).unwrap();
    let body = builder.into_inner().unwrap();
    let resp =
        daemon.http("POST", "/api/v1/build?t=api:latest", &[("Content-Type", "application/x-tar")], &body);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let events: Vec<serde_json::Value> = resp
        .text()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(events.iter().any(|e| e["type"] == "output" && e["text"] == "streamed\n"), "{events:?}");
    assert_eq!(events.last().unwrap()["type"], "built", "{events:?}");
    let bad = daemon.http("POST", "/api/v1/build?t=Bad:Tag", &[], &body);
    assert_eq!(bad.status, 400, "{}", bad.text());
}

#[test]
fn run_steps_have_no_network_unless_host_is_asked() {
    let daemon = Daemon::with_busybox();
    let work = tempfile::tempdir().unwrap();
    let ctx = work.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' > /ifaces\n",
    )
    .unwrap();
    build(&daemon, &ctx, &["-t", "net:none"]).ok();
    let none = daemon.berth(&["run", "--rm", "net:none", "cat", "/ifaces"]).ok();
    assert_eq!(none.stdout, "lo\n", "a RUN step saw network interfaces");
    build(&daemon, &ctx, &["--no-cache", "--network", "host", "-t", "net:host"]).ok();
    let host = daemon.berth(&["run", "--rm", "net:host", "cat", "/ifaces"]).ok();
    let host_ifaces = std::fs::read_to_string("/proc/net/dev").unwrap();
    let first_host_iface =
        host_ifaces.lines().skip(2).map(|l| l.split(':').next().unwrap().trim()).find(|i| *i != "lo");
    if let Some(iface) = first_host_iface {
        assert!(
            host.stdout.lines().any(|l| l == iface),
            "--network host did not show {iface}: {}",
            host.stdout
        );
    }
    let bad = build(&daemon, &ctx, &["--network", "bridge2"]);
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("network mode"), "{}", bad.stderr);
}

#[test]
fn a_from_image_missing_locally_is_pulled_from_its_registry() {
    let registry = berth_tests::registry::Registry::start();
    let daemon = Daemon::with_busybox();
    let remote = format!("{}/base/busybox:1", registry.host());
    daemon.berth(&["tag", "busybox", &remote]).ok();
    daemon.berth(&["push", &remote]).ok();
    daemon.berth(&["rmi", &remote]).ok();
    daemon.berth(&["rmi", "busybox"]).ok();

    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("Dockerfile"), format!("FROM {remote}\nRUN echo built > /built\n"))
        .unwrap();
    let out = build(&daemon, work.path(), &["-t", "pulled-base:1"]).ok();
    assert!(out.stderr.contains(&format!("pulling {remote}")), "{}", out.stderr);
    let run = daemon.berth(&["run", "--rm", "pulled-base:1", "cat", "/built"]).ok();
    assert_eq!(run.stdout, "built\n");
    // The base is now a local image of its own.
    daemon.berth(&["image", "inspect", &remote]).ok();
}
