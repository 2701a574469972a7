//! A full disk: the daemon's root on a small tmpfs the test mounts (unmounted with the daemon's
//! directory however the test ends). With the disk full, pull, load, import, build, a container's writes
//! (its root file system and a volume), a new container and a chatty container's log fail with
//! `no space left on device`; the daemon keeps answering reads; nothing is left half-written
//! (`system check` is clean); and once space is freed the same operations succeed, and the log
//! says how many of its lines were lost.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use berth_tests::registry::Registry;
use berth_tests::{big_rootfs_tar, Daemon, Output};

const FS_SIZE: &str = "size=96m";

/// Moves the daemon's root onto a tmpfs of [`FS_SIZE`] (the daemon is stopped meanwhile).
fn root_on_small_fs(daemon: &mut Daemon) {
    daemon.stop();
    let root = daemon.root();
    let seed = daemon.dir().join("root.seed");
    std::fs::rename(&root, &seed).unwrap();
    std::fs::create_dir(&root).unwrap();
    nix::mount::mount(Some("tmpfs"), &root, Some("tmpfs"), nix::mount::MsFlags::empty(), Some(FS_SIZE))
        .expect("mounting a tmpfs");
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", seed.display()))
        .arg(&root)
        .status()
        .unwrap();
    assert!(copied.success());
    daemon.start_again();
}

/// Writes zeros to `path` until the file system is full; returns the bytes written.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 1 << 20];
    let mut written = 0;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("filling: {e}"),
        }
    }
    // The last partial blocks too.
    for size in [65536, 4096, 512, 1] {
        while f.write(&chunk[..size]).is_ok_and(|n| n > 0) {}
    }
    written
}

#[track_caller]
fn fails_with_no_space(out: Output, what: &str) {
    assert_ne!(out.code, 0, "{what} succeeded on a full disk: {}", out.stdout);
    let text = format!("{}{}", out.stdout, out.stderr).to_lowercase();
    assert!(text.contains("no space left on device"), "{what}: {}\n{}", out.stdout, out.stderr);
}

/// `system check` found nothing (cgroups aside: they are the host's, shared with other tests).
#[track_caller]
fn assert_clean(daemon: &Daemon) {
    let out = daemon.berth(&["system", "check"]);
    let found: Vec<&str> =
        out.stdout.lines().filter(|l| l.contains('\t') && !l.starts_with("cgroup\t")).collect();
    assert!(found.is_empty(), "{}\n{}", out.stdout, out.stderr);
}

#[test]
fn a_full_disk_fails_clearly_leaves_nothing_half_written_and_recovers() {
    let mut daemon = Daemon::start();
    root_on_small_fs(&mut daemon);
    daemon.import_busybox("busybox:latest");
    daemon.berth(&["volume", "create", "vol"]).ok();
    // Made before the disk fills: a container that writes to its root file system and to a
    // volume, and a chatty one.
    let writes = "dd if=/dev/zero of=/big bs=1M count=8 && dd if=/dev/zero of=/data/big bs=1M count=8 && rm /big /data/big";
    daemon.berth(&["create", "--name", "writer", "-v", "vol:/data", "busybox", "sh", "-c", writes]).ok();
    daemon
        .berth(&[
            "run",
            "-d",
            "--name",
            "chatty",
            "busybox",
            "sh",
            "-c",
            "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.01; done",
        ])
        .ok();
    let import_tar = daemon.dir().join("big.tar");
    std::fs::write(&import_tar, big_rootfs_tar(4 << 20)).unwrap();
    let context = daemon.dir().join("context");
    std::fs::create_dir(&context).unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        "FROM busybox\nRUN dd if=/dev/urandom of=/blob bs=1M count=4\n",
    )
    .unwrap();

    // An image to pull (in the registry, not in the store) and one to load (saved, then removed).
    let registry = Registry::start();
    let pulled = format!("{}/full/pulled:1", registry.host());
    let pull_tar = daemon.dir().join("pull.tar");
    std::fs::write(&pull_tar, big_rootfs_tar(4 << 20)).unwrap();
    daemon.berth(&["import", pull_tar.to_str().unwrap(), &pulled]).ok();
    daemon.berth(&["push", &pulled]).ok();
    let saved = daemon.dir().join("saved.tar");
    daemon.berth(&["save", "-o", saved.to_str().unwrap(), &pulled]).ok();
    daemon.berth(&["rmi", &pulled]).ok();

    let filler = daemon.root().join("filler");
    let filled = fill(&filler);
    assert!(filled > 0);

    fails_with_no_space(daemon.berth(&["pull", &pulled]), "pull");
    fails_with_no_space(daemon.berth(&["load", "-i", saved.to_str().unwrap()]), "load");
    fails_with_no_space(daemon.berth(&["import", import_tar.to_str().unwrap(), "big:1"]), "import");
    fails_with_no_space(daemon.berth(&["build", "-t", "built:1", context.to_str().unwrap()]), "build");
    fails_with_no_space(daemon.berth(&["start", "-a", "writer"]), "container writes");
    fails_with_no_space(daemon.berth(&["run", "--name", "new", "busybox", "true"]), "a new container");
    fails_with_no_space(daemon.berth(&["volume", "create", "another"]), "volume create");
    // The chatty container goes on; its lines are lost meanwhile.
    std::thread::sleep(Duration::from_millis(500));

    // Reads are still served.
    let images = daemon.berth(&["images", "--format", "{{.Repository}}"]).ok();
    assert_eq!(images.lines(), ["busybox"], "{}", images.stdout);
    daemon.berth(&["ps", "-a"]).ok();
    daemon.berth(&["volume", "ls"]).ok();
    daemon.berth(&["logs", "--tail", "1", "chatty"]).ok();
    // Nothing half-written.
    assert_clean(&daemon);

    std::fs::remove_file(&filler).unwrap();
    daemon.berth(&["load", "-i", saved.to_str().unwrap()]).ok();
    daemon.berth(&["rmi", &pulled]).ok();
    daemon.berth(&["pull", &pulled]).ok();
    daemon.berth(&["import", import_tar.to_str().unwrap(), "big:1"]).ok();
    daemon.berth(&["build", "-t", "built:1", context.to_str().unwrap()]).ok();
    daemon.berth(&["rm", "-f", "writer"]).ok();
    daemon.berth(&["run", "--name", "writer", "-v", "vol:/data", "busybox", "sh", "-c", writes]).ok();
    daemon.berth(&["run", "--rm", "busybox", "true"]).ok();
    daemon.berth(&["volume", "create", "another"]).ok();
    // The log says what it lost, once it can write again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logs = daemon.berth(&["logs", "chatty"]).ok();
        if logs.stderr.contains("log lines lost: writing the log: no space left on device") {
            break;
        }
        assert!(Instant::now() < deadline, "no note of the lost lines:\n{}", logs.stderr);
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_clean(&daemon);
}
