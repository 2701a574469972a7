//! A container's files and resources through the `berth` CLI against a real daemon: `cp` both
//! ways (and a link in the container that points at the host, which must not be written
//! through), `diff`, `commit` then `run` of the committed image, `export`, and `update` of a
//! memory limit seen in the container's cgroup (also one given after the start was prepared).

use std::fs;
use std::path::{Path, PathBuf};

use berth_tests::Daemon;

fn container_id(daemon: &Daemon, name: &str) -> String {
    daemon.berth(&["inspect", "-f", "{{.Id}}", name]).ok().stdout.trim().to_string()
}

fn tar_names(tar: &[u8]) -> Vec<String> {
    let mut archive = tar::Archive::new(tar);
    archive
        .entries()
        .unwrap()
        .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
        .collect()
}

#[test]
fn cp_copies_both_ways_and_never_outside_the_container() {
    let daemon = Daemon::with_busybox();
    let local = tempfile::tempdir().unwrap();
    let outside = local.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let src = local.path().join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("a.txt"), "alpha\n").unwrap();
    fs::write(src.join("sub/b.txt"), "beta\n").unwrap();
    let p = |path: &Path| path.to_str().unwrap().to_string();
    daemon.berth(&["run", "-d", "--name", "files", "busybox", "sleep", "1d"]).ok();

    // In: a directory to a new name, then back out to a new name.
    daemon.berth(&["cp", &p(&src), "files:/tmp/copied"]).ok();
    let out = daemon.berth(&["exec", "files", "cat", "/tmp/copied/a.txt", "/tmp/copied/sub/b.txt"]).ok();
    assert_eq!(out.stdout, "alpha\nbeta\n");
    let back = local.path().join("back");
    daemon.berth(&["cp", "files:/tmp/copied", &p(&back)]).ok();
    assert_eq!(fs::read_to_string(back.join("sub/b.txt")).unwrap(), "beta\n");
    // A file into an existing directory keeps its name; `-` is a tar on stdout.
    daemon.berth(&["cp", "files:/etc/passwd", &p(local.path())]).ok();
    assert!(fs::read_to_string(local.path().join("passwd")).unwrap().starts_with("root:"));
    let tar = std::process::Command::new(berth_tests::berth_binary())
        .env("BERTH_HOST", daemon.unix_host())
        .args(["cp", "files:/tmp/copied", "-"])
        .output()
        .unwrap();
    assert!(tar.status.success());
    assert_eq!(tar_names(&tar.stdout), ["copied/", "copied/a.txt", "copied/sub/", "copied/sub/b.txt"]);

    // Docker's refusals.
    daemon
        .berth(&["cp", "files:/nope", &p(local.path())])
        .fails_with("Could not find the file /nope in container files");
    daemon
        .berth(&["cp", "files:/etc", &p(&src.join("a.txt"))])
        .fails_with("cannot copy a directory to a file");
    daemon.berth(&["cp", &p(&src), "files:/etc/passwd"]).fails_with("cannot copy a directory to a file");

    // A link in the container to a host directory is followed inside the container: the copy
    // fails there (no such directory in the container) and nothing lands on the host.
    daemon.berth(&["exec", "files", "ln", "-s", &p(&outside), "/escape"]).ok();
    let _ = daemon.berth(&["cp", &p(&src.join("a.txt")), "files:/escape/"]);
    let _ = daemon.berth(&["cp", &p(&src.join("a.txt")), "files:/escape/planted"]);
    assert!(fs::read_dir(&outside).unwrap().next().is_none(), "a file was written outside the container");
}

#[test]
fn diff_commit_export_and_update() {
    let daemon = Daemon::with_busybox();
    daemon.berth(&["run", "-d", "--name", "changer", "-m", "64m", "busybox", "sleep", "1d"]).ok();
    daemon
        .berth(&["exec", "changer", "sh", "-c", "echo new > /tmp/new; rm /bin/vi; echo more >> /etc/group"])
        .ok();
    let diff = daemon.berth(&["diff", "changer"]).ok();
    for line in ["C /bin", "D /bin/vi", "C /etc/group", "C /tmp", "A /tmp/new"] {
        assert!(diff.lines().contains(&line), "{line} in:\n{}", diff.stdout);
    }

    let id = daemon
        .berth(&["commit", "-m", "a test", "-c", r#"CMD ["cat", "/tmp/new"]"#, "changer", "committed:1"])
        .ok();
    assert!(id.stdout.starts_with("sha256:"), "{}", id.stdout);
    assert_eq!(daemon.berth(&["run", "--rm", "committed:1"]).ok().stdout, "new\n");
    daemon.berth(&["run", "--rm", "committed:1", "ls", "/bin/vi"]).fails_with("No such file");

    let out_dir = tempfile::tempdir().unwrap();
    let file = out_dir.path().join("changer.tar");
    daemon.berth(&["export", "-o", file.to_str().unwrap(), "changer"]).ok();
    let names = tar_names(&fs::read(&file).unwrap());
    assert!(names.iter().any(|n| n == "tmp/new") && names.iter().any(|n| n == "bin/sh"), "{names:?}");
    assert!(!names.iter().any(|n| n == "bin/vi"));

    let id = container_id(&daemon, "changer");
    daemon.berth(&["update", "--memory", "96m", "changer"]).ok();
    assert_eq!(memory_limit(&id), Some(96 << 20));
    daemon.berth(&["update", "--memory", "1m", "changer"]).fails_with("Minimum memory limit allowed is 6MB");
    let inspect = daemon.berth(&["inspect", "-f", "{{.Config.Resources.Memory}}", "changer"]).ok();
    assert_eq!(inspect.stdout.trim(), (96u64 << 20).to_string());
}

/// The memory limit in the container's cgroup (v2, or v1's memory hierarchy).
fn memory_limit(id: &str) -> Option<u64> {
    let candidates = [
        PathBuf::from(format!("/sys/fs/cgroup/berth/{id}/memory.max")),
        PathBuf::from(format!("/sys/fs/cgroup/memory/berth/{id}/memory.limit_in_bytes")),
    ];
    candidates.iter().find_map(|p| fs::read_to_string(p).ok()).and_then(|v| v.trim().parse().ok())
}

/// A `--rm` container's start is prepared (its cgroup made) while it waits to be started: an
/// update in between is what the container gets, and a removal without a start leaves no cgroup.
#[test]
fn a_prepared_start_takes_an_update_and_a_removal_clears_it() {
    let daemon = Daemon::with_busybox();
    let script =
        "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes";
    let created = daemon.berth(&["create", "--rm", "--memory", "64m", "busybox", "sh", "-c", script]).ok();
    let id = created.stdout.trim().to_string();
    wait_for_memory_limit(&id, Some(64 << 20));
    daemon.berth(&["update", "--memory", "32m", &id]).ok();
    assert_eq!(daemon.berth(&["start", "-a", &id]).ok().stdout.trim(), (32u64 << 20).to_string());

    let created = daemon.berth(&["create", "--rm", "--memory", "64m", "busybox", "true"]).ok();
    let id = created.stdout.trim().to_string();
    wait_for_memory_limit(&id, Some(64 << 20));
    daemon.berth(&["rm", &id]).ok();
    wait_for_memory_limit(&id, None);
}

fn wait_for_memory_limit(id: &str, limit: Option<u64>) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while memory_limit(id) != limit {
        assert!(
            std::time::Instant::now() < deadline,
            "memory limit of {id}: {:?}, not {limit:?}",
            memory_limit(id)
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
