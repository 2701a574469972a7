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

/// A daemon remapping with `default`, busybox imported. With `copies`, it is told (debug builds
/// only) to act as on a kernel without idmapped mounts: its remapped containers stand on
/// chowned copies of the layers.
fn remapped_daemon(copies: bool) -> Daemon {
    let mut daemon = Daemon::start_with_args(&["--userns-remap", "default"]);
    if copies {
        daemon.set_env(&[("BERTH_NO_IDMAPPED_MOUNTS", "1")]);
        daemon.restart_with_args(&["--userns-remap", "default"]);
    }
    daemon.import_busybox("busybox:latest");
    daemon
}

#[test]
fn root_in_a_container_is_an_unprivileged_host_id() {
    root_is_unprivileged(&remapped_daemon(false));
}

#[test]
fn a_remapped_containers_files_leave_and_enter_with_the_containers_ids() {
    ids_leave_and_enter_as_the_containers(&remapped_daemon(false));
}

/// Without idmapped mounts: one chowned copy of each layer per mapping, shared by the
/// containers; everything else as with idmapped mounts.
#[test]
fn without_idmapped_mounts_the_layers_are_chowned_copies() {
    let daemon = remapped_daemon(true);
    root_is_unprivileged(&daemon);
    ids_leave_and_enter_as_the_containers(&daemon);
    let uid = range_start("/etc/subuid", "berth");
    let gid = range_start("/etc/subgid", "berth");
    let copies = daemon.root().join(format!("snapshots/shifted/{uid}.{gid}"));
    let layers: Vec<_> = std::fs::read_dir(&copies).unwrap().flatten().map(|e| e.path()).collect();
    assert!(!layers.is_empty(), "no layer copies in {}", copies.display());
    for layer in &layers {
        let busybox = std::fs::symlink_metadata(layer.join("bin/busybox"));
        if let Ok(meta) = busybox {
            assert_eq!((meta.uid(), meta.gid()), (uid, gid), "{}", layer.display());
            // The shared layer itself is untouched.
            let name = layer.file_name().unwrap();
            let shared = daemon.root().join("snapshots/layers").join(name).join("fs/bin/busybox");
            let shared = std::fs::symlink_metadata(shared).unwrap();
            assert_eq!((shared.uid(), shared.gid()), (0, 0));
        }
    }
    assert!(daemon.log().contains("chowned copies of their layers"), "the daemon says which it used");
    // The image's removal takes its copies along.
    let before = layers.len();
    daemon.berth(&["rmi", "busybox:latest"]).ok();
    let after = std::fs::read_dir(&copies).map(|d| d.count()).unwrap_or(0);
    assert!(after < before, "copies left after rmi: {after} of {before}");
}

fn root_is_unprivileged(daemon: &Daemon) {
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

    // runc runs remapped containers too (the daemon's directories let the mapped root through).
    let out = daemon
        .berth(&[
            "run",
            "--rm",
            "--runtime",
            "runc",
            "busybox",
            "sh",
            "-c",
            "id -u; cat /proc/self/uid_map; stat -c %u:%g /bin/busybox; echo x > /etc/made",
        ])
        .ok();
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["0", "0", &uid.to_string(), "65536", "0:0"],
        "{out:?}"
    );
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

/// The (uid, gid) of each entry of the tar at `path`, by name (without a leading `/` or `./`).
fn tar_owners(path: &std::path::Path) -> std::collections::BTreeMap<String, (u64, u64)> {
    let mut archive = tar::Archive::new(std::fs::File::open(path).unwrap());
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_start_matches("./")
                .trim_start_matches('/')
                .trim_end_matches('/')
                .to_string();
            (name, (e.header().uid().unwrap(), e.header().gid().unwrap()))
        })
        .collect()
}

/// What leaves a remapped container (commit, export, cp out) holds the container's ids, not the
/// host's 100000+: the image is the same as one committed without remapping. What goes in (cp)
/// gets the host ids of the mapping. runc runs the remapped containers as the built-in runtime.
fn ids_leave_and_enter_as_the_containers(daemon: &Daemon) {
    let uid = range_start("/etc/subuid", "berth");
    let dir = tempfile::tempdir().unwrap();

    for runtime in ["berth", "runc"] {
        let name = format!("shifted-{runtime}");
        let out = daemon
            .berth(&[
                "run",
                "--runtime",
                runtime,
                "--name",
                &name,
                "busybox",
                "sh",
                "-c",
                "echo x > /made && mkdir /d && chown 1:2 /d && id -u && cat /proc/self/uid_map",
            ])
            .ok();
        assert_eq!(
            out.stdout.split_whitespace().collect::<Vec<_>>(),
            ["0", "0", &uid.to_string(), "65536"],
            "{runtime}: {out:?}"
        );

        // commit: the new layer holds the container's ids; run without remapping, it shows them.
        let image = format!("shifted-{runtime}:1");
        daemon.berth(&["commit", &name, &image]).ok();
        let out = daemon
            .berth(&[
                "run",
                "--rm",
                "--userns=host",
                &image,
                "stat",
                "-c",
                "%n %u:%g",
                "/made",
                "/d",
                "/bin/busybox",
            ])
            .ok();
        assert_eq!(out.stdout.trim(), "/made 0:0\n/d 1:2\n/bin/busybox 0:0", "{runtime}: {out:?}");
        let saved = dir.path().join(format!("{runtime}-image.tar"));
        daemon.berth(&["save", "-o", saved.to_str().unwrap(), &image]).ok();
        let mut saved_archive = tar::Archive::new(std::fs::File::open(&saved).unwrap());
        let mut layers_seen = 0;
        for entry in saved_archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let layer_name = entry.path().unwrap().to_string_lossy().into_owned();
            if !(layer_name.ends_with("layer.tar") || layer_name.starts_with("blobs/")) {
                continue;
            }
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
            if bytes.starts_with(&[0x1f, 0x8b]) {
                let mut plain = Vec::new();
                std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut plain)
                    .unwrap();
                bytes = plain;
            }
            let mut layer = tar::Archive::new(&bytes[..]);
            let Ok(entries) = layer.entries() else { continue };
            for e in entries.flatten() {
                layers_seen += 1;
                let (u, g) = (e.header().uid().unwrap(), e.header().gid().unwrap());
                assert!(u < 65536 && g < 65536, "{runtime}: {layer_name}: {:?} is {u}:{g}", e.path());
            }
        }

        assert!(layers_seen > 0, "{runtime}: no layer entries found in the saved image");

        // export: the whole root file system with the container's ids.
        let exported = dir.path().join(format!("{runtime}-export.tar"));
        daemon.berth(&["export", "-o", exported.to_str().unwrap(), &name]).ok();
        let owners = tar_owners(&exported);
        assert_eq!(owners.get("made"), Some(&(0, 0)), "{runtime}");
        assert_eq!(owners.get("d"), Some(&(1, 2)), "{runtime}");
        assert_eq!(owners.get("bin/busybox"), Some(&(0, 0)), "{runtime}");
        assert!(owners.values().all(|&(u, g)| u < 65536 && g < 65536), "{runtime}: {owners:?}");

        // cp out and in.
        let out_dir = dir.path().join(format!("{runtime}-cp"));
        std::fs::create_dir(&out_dir).unwrap();
        // (An empty directory: its tar is text, which the output holds as it is.)
        let out = daemon.berth(&["cp", &format!("{name}:/d"), "-"]).ok();
        let tarred = out_dir.join("d.tar");
        std::fs::write(&tarred, out.stdout.as_bytes()).unwrap();
        assert_eq!(tar_owners(&tarred).get("d"), Some(&(1, 2)), "{runtime}: cp out");
        let host_file = dir.path().join(format!("{runtime}-in"));
        std::fs::write(&host_file, "in").unwrap();
        daemon.berth(&["cp", host_file.to_str().unwrap(), &format!("{name}:/in")]).ok();
        daemon.berth(&["commit", &name, &format!("{image}-in")]).ok();
        let out = daemon
            .berth(&["run", "--rm", "--userns=host", &format!("{image}-in"), "stat", "-c", "%u:%g", "/in"])
            .ok();
        assert_eq!(
            out.stdout.trim(),
            "0:0",
            "{runtime}: a file copied in is the container's root's: {out:?}"
        );
        daemon.berth(&["rm", "-f", &name]).ok();
        daemon.berth(&["rmi", &image, &format!("{image}-in")]).ok();
    }
}
