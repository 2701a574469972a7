//! User namespaces: `berth serve --userns-remap default` (as dockerd's): root in a container is
//! the first id of the `berth` user's subordinate range on the host; `--userns=host` opts out;
//! volumes belong to the remapped root, binds keep their host owners.
//!
//! `default` makes the system user `berth` and its ranges in /etc/subuid and /etc/subgid when
//! they are missing, and keeps them (as dockerd keeps `dockremap`): they are the daemon's
//! configuration, not the test's.

use std::os::unix::fs::MetadataExt;

use berth_tests::Daemon;

/// The first host id of `user`'s range in a subordinate id file.
fn range_start(file: &str, user: &str) -> u32 {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            (f.next() == Some(user)).then(|| f.next().unwrap().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no range of {user} in {file}"))
}

#[test]
fn root_in_a_container_is_an_unprivileged_host_id() {
    let daemon = Daemon::start_with_args(&["--userns-remap", "default"]);
    daemon.import_busybox("busybox:latest");
    let uid = range_start("/etc/subuid", "berth");
    let gid = range_start("/etc/subgid", "berth");

    // Inside: root, mapped to the range.
    let out = daemon
        .berth(&["run", "--rm", "busybox", "sh", "-c", "id -u; cat /proc/self/uid_map /proc/self/gid_map"])
        .ok();
    let words: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(words, ["0", "0", &uid.to_string(), "65536", "0", &gid.to_string(), "65536"], "{out:?}");

    // The container's root files on the host: the remapped ids. A named volume is the remapped
    // root's, and what the container writes in it too.
    let out = daemon
        .berth(&[
            "run",
            "--rm",
            "-v",
            "userns-data:/data",
            "busybox",
            "sh",
            "-c",
            "touch /data/made && ls -ln /data",
        ])
        .ok();
    assert!(out.stdout.contains(" 0 "), "{out:?}");
    let mountpoint = daemon
        .berth(&["volume", "inspect", "-f", "{{.Mountpoint}}", "userns-data"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let made = std::fs::metadata(format!("{mountpoint}/made")).unwrap();
    assert_eq!((made.uid(), made.gid()), (uid, gid));
    let dir = std::fs::metadata(&mountpoint).unwrap();
    assert_eq!((dir.uid(), dir.gid()), (uid, gid));

    // The image's files are root's in the container (idmapped layers), and writable by it.
    let out = daemon
        .berth(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "stat -c %u:%g /bin/busybox / && echo x > /etc/made && rm /bin/ls",
        ])
        .ok();
    assert_eq!(out.stdout.split_whitespace().collect::<Vec<_>>(), ["0:0", "0:0"], "{out:?}");

    // A bind keeps its host owner: the host's root is no one in the container.
    let host_dir = tempfile::tempdir().unwrap();
    std::fs::write(host_dir.path().join("hostfile"), "x").unwrap();
    let bind = format!("{}:/b", host_dir.path().display());
    let out = daemon.berth(&["run", "--rm", "-v", &bind, "busybox", "stat", "-c", "%u", "/b/hostfile"]).ok();
    assert_eq!(out.stdout.trim(), "65534", "{out:?}");
    let out = daemon.berth(&["run", "--rm", "-v", &bind, "busybox", "sh", "-c", "echo y > /b/hostfile"]);
    assert_ne!(out.code, 0, "the remapped root wrote a file of the host's root: {out:?}");

    // exec joins the same namespace.
    daemon.berth(&["run", "-d", "--name", "userns-exec", "busybox", "sleep", "60"]).ok();
    let out = daemon.berth(&["exec", "userns-exec", "sh", "-c", "id -u; cat /proc/self/uid_map"]).ok();
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["0", "0", &uid.to_string(), "65536"],
        "{out:?}"
    );
    let pid =
        daemon.berth(&["inspect", "-f", "{{.State.Pid}}", "userns-exec"]).ok().stdout.trim().to_string();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let host_uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap().split_whitespace().nth(1).unwrap();
    assert_eq!(host_uid, uid.to_string(), "the container's process on the host");
    daemon.berth(&["rm", "-f", "userns-exec"]).ok();

    // --userns=host opts out; --privileged needs it, as dockerd says.
    let out = daemon.berth(&["run", "--rm", "--userns=host", "busybox", "cat", "/proc/self/uid_map"]).ok();
    assert_eq!(out.stdout.split_whitespace().collect::<Vec<_>>(), ["0", "0", "4294967295"], "{out:?}");
    daemon
        .berth(&["run", "--rm", "--privileged", "busybox", "true"])
        .fails_with("privileged mode is incompatible with user namespaces");
    daemon.berth(&["run", "--rm", "--privileged", "--userns=host", "busybox", "true"]).ok();
    daemon
        .berth(&["run", "--rm", "--userns=bogus", "busybox", "true"])
        .fails_with("invalid USER mode: bogus");
    daemon.berth(&["volume", "rm", "userns-data"]).ok();
}

#[test]
fn a_remap_of_a_user_without_ranges_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(berth_tests::berth_binary())
        .args(["serve", "--userns-remap", "nobody", "--root"])
        .arg(dir.path().join("root"))
        .arg("--run-dir")
        .arg(dir.path().join("run"))
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("No subuid ranges found for user \"nobody\""),
        "{stderr}"
    );
}
