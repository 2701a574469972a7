//! Volumes and mounts through the `berth` CLI against a real daemon: named volumes that outlive
//! their containers, read-only mounts, bind mounts both ways, tmpfs with a size limit,
//! anonymous volumes from an image's VOLUME (copy-up, `rm -v`, `--rm`), removal of a volume in
//! use, prune, bad specs that leave nothing behind, and no mount left after `rm`.

use std::path::Path;

use berth_tests::{Daemon, Output};
use serde_json::Value;

#[track_caller]
fn exits(out: Output, code: i32) -> Output {
    assert_eq!(out.code, code, "exit code; stdout: {}\nstderr: {}", out.stdout, out.stderr);
    out
}

/// `inspect NAME` of a container as JSON.
fn inspect(daemon: &Daemon, name: &str) -> Value {
    let out = daemon.berth(&["inspect", "--type", "container", name]).ok();
    let all: Value = serde_json::from_str(&out.stdout).expect("inspect prints JSON");
    all[0].clone()
}

/// `volume ls -q`, sorted.
fn volume_names(daemon: &Daemon) -> Vec<String> {
    let mut names: Vec<String> =
        daemon.berth(&["volume", "ls", "-q"]).ok().lines().iter().map(|s| s.to_string()).collect();
    names.sort();
    names
}

/// Mount points under `dir` that the host (this test's mount namespace) sees.
fn mounts_under(dir: &Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("reading mountinfo");
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| Path::new(p).starts_with(dir))
        .map(str::to_string)
        .collect()
}

/// Removes every container, then checks that nothing the daemon mounted is left.
#[track_caller]
fn assert_no_mounts_left(daemon: &Daemon) {
    daemon.remove_all_containers();
    let left = mounts_under(daemon.dir());
    assert!(left.is_empty(), "mounts left behind: {left:?}");
}

#[test]
fn named_volume_outlives_its_container_and_is_seen_by_the_next() {
    let daemon = Daemon::with_busybox();
    assert_eq!(daemon.berth(&["volume", "create", "data"]).ok().stdout, "data\n");
    // Creating it again returns the same volume, as Docker.
    assert_eq!(daemon.berth(&["volume", "create", "data"]).ok().stdout, "data\n");

    daemon
        .berth(&["run", "--name", "writer", "-v", "data:/data", "busybox", "sh", "-c", "echo kept > /data/f"])
        .ok();
    daemon.berth(&["rm", "writer"]).ok();
    let out = daemon.berth(&["run", "--rm", "-v", "data:/srv/data", "busybox", "cat", "/srv/data/f"]).ok();
    assert_eq!(out.stdout, "kept\n");

    // The data lives in the volume's mountpoint on the host.
    let out = daemon.berth(&["volume", "inspect", "data"]).ok();
    let inspected: Value = serde_json::from_str(&out.stdout).unwrap();
    let mountpoint = inspected[0]["Mountpoint"].as_str().unwrap().to_string();
    assert!(mountpoint.starts_with(daemon.root().to_str().unwrap()), "{mountpoint}");
    assert_eq!(std::fs::read_to_string(Path::new(&mountpoint).join("f")).unwrap(), "kept\n");
    assert_eq!(inspected[0]["Driver"], "local");
    assert_eq!(
        daemon.berth(&["volume", "inspect", "-f", "{{.Name}} {{.Driver}}", "data"]).ok().stdout,
        "data local\n"
    );

    // The generic inspect finds volumes too (after containers and images, as Docker's).
    let generic: Value = serde_json::from_str(&daemon.berth(&["inspect", "data"]).ok().stdout).unwrap();
    assert_eq!(generic[0]["Mountpoint"], mountpoint.as_str());
    exits(daemon.berth(&["inspect", "--type", "volume", "busybox"]), 1)
        .fails_with("Error: No such volume: busybox");

    // A volume named by -v that does not exist is made on demand.
    daemon.berth(&["run", "--rm", "-v", "ondemand:/x", "busybox", "true"]).ok();
    assert_eq!(volume_names(&daemon), ["data", "ondemand"]);
    let table = daemon.berth(&["volume", "ls"]).ok();
    assert_eq!(table.lines()[0].split_whitespace().collect::<Vec<_>>(), ["DRIVER", "VOLUME", "NAME"]);
    assert!(table.stdout.contains("local     data\n"), "{}", table.stdout);

    // In use by a container (even one that does not run): refused, with Docker's wording.
    let id = daemon
        .berth(&["create", "--name", "holder", "-v", "data:/data", "busybox"])
        .ok()
        .stdout
        .trim()
        .to_string();
    exits(daemon.berth(&["volume", "rm", "data"]), 1)
        .fails_with(&format!("Error response from daemon: remove data: volume is in use - [{id}]"));
    let used: Value =
        serde_json::from_str(daemon.berth(&["volume", "ls", "--format", "json"]).ok().lines()[0]).unwrap();
    assert_eq!(used["Name"], "data");
    assert_eq!(used["Links"], "1");
    assert_eq!(daemon.berth(&["volume", "ls", "-q", "--filter", "dangling=true"]).ok().stdout, "ondemand\n");
    // The container's inspect shows the mount.
    let mounts = inspect(&daemon, "holder")["mounts"].clone();
    assert_eq!(mounts[0]["type"], "volume");
    assert_eq!(mounts[0]["name"], "data");
    assert_eq!(mounts[0]["destination"], "/data");
    assert_eq!(mounts[0]["source"], mountpoint.as_str());
    daemon.berth(&["rm", "holder"]).ok();
    assert_eq!(daemon.berth(&["volume", "rm", "data"]).ok().stdout, "data\n");
    assert!(!Path::new(&mountpoint).exists());

    exits(daemon.berth(&["volume", "rm", "nope"]), 1).fails_with("Error: No such volume: nope");
    exits(daemon.berth(&["volume", "inspect", "nope"]), 1).fails_with("Error: No such volume: nope");
    // -f: a volume that does not exist is no error.
    daemon.berth(&["volume", "rm", "-f", "nope"]).ok();
    assert_no_mounts_left(&daemon);
}

#[test]
fn read_only_mounts_refuse_writes() {
    let daemon = Daemon::with_busybox();
    let host = tempfile::tempdir().unwrap();
    let out =
        exits(daemon.berth(&["run", "--rm", "-v", "ro-vol:/data:ro", "busybox", "touch", "/data/x"]), 1);
    assert!(out.stderr.contains("Read-only file system"), "{}", out.stderr);
    let bind = format!("type=bind,source={},target=/b,readonly", host.path().display());
    let out =
        exits(daemon.berth(&["run", "--rm", "--mount", &bind, "busybox", "sh", "-c", "echo x > /b/x"]), 1);
    assert!(out.stderr.contains("Read-only file system"), "{}", out.stderr);
    assert!(!host.path().join("x").exists());
    // The same volume mounted read-write takes the write.
    daemon.berth(&["run", "--rm", "-v", "ro-vol:/data:rw", "busybox", "touch", "/data/x"]).ok();
    // runc reads the same spec: the volume, a read-only one and a sized tmpfs.
    let out = exits(
        daemon.berth(&[
            "run",
            "--rm",
            "--runtime",
            "runc",
            "-v",
            "ro-vol:/data",
            "-v",
            "ro-vol:/ro:ro",
            "--tmpfs",
            "/t:size=1m",
            "busybox",
            "sh",
            "-c",
            "ls /data; grep ' /t ' /proc/mounts; touch /ro/y",
        ]),
        1,
    );
    assert!(out.stdout.starts_with("x\ntmpfs /t tmpfs "), "{}", out.stdout);
    assert!(out.stdout.contains("size=1024k"), "{}", out.stdout);
    assert!(out.stderr.contains("Read-only file system"), "{}", out.stderr);
    assert_no_mounts_left(&daemon);
}

#[test]
fn bind_mounts_work_both_ways() {
    let daemon = Daemon::with_busybox();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("from-host"), "hello from the host\n").unwrap();
    let spec = format!("{}:/mnt/host", host.path().display());
    let out = daemon
        .berth(&[
            "run",
            "--rm",
            "-v",
            &spec,
            "busybox",
            "sh",
            "-c",
            "cat /mnt/host/from-host; echo back > /mnt/host/from-container",
        ])
        .ok();
    assert_eq!(out.stdout, "hello from the host\n");
    assert_eq!(std::fs::read_to_string(host.path().join("from-container")).unwrap(), "back\n");

    // -v makes a missing host path (a directory), as Docker.
    let missing = host.path().join("made/by/run");
    let spec = format!("{}:/m", missing.display());
    daemon.berth(&["run", "--rm", "-v", &spec, "busybox", "touch", "/m/ok"]).ok();
    assert!(missing.join("ok").is_file());

    // A target that does not exist in the image is made inside the container's root, even
    // through a symlink that points at an absolute host path.
    let spec = format!("{}:/new/deep/dir", host.path().display());
    let out = daemon.berth(&["run", "--rm", "-v", &spec, "busybox", "cat", "/new/deep/dir/from-host"]).ok();
    assert_eq!(out.stdout, "hello from the host\n");
    // A symlink in the image that points at an absolute host path resolves inside the
    // container's root: the target is made there, never on the host.
    let outside = tempfile::tempdir().unwrap();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM busybox\nRUN ln -s {} /link\n", outside.path().display()),
    )
    .unwrap();
    daemon.berth(&["build", "-q", "-t", "linky", ctx.path().to_str().unwrap()]).ok();
    let spec = format!("{}:/link/escape", host.path().display());
    let out = daemon.berth(&["run", "--rm", "-v", &spec, "linky", "ls", "/link/escape"]).ok();
    assert!(out.stdout.contains("from-host"), "{}", out.stdout);
    assert!(!outside.path().join("escape").exists(), "the mount target was made on the host");

    // --mount does not make a missing source: Docker's error, nothing created.
    let bad = "type=bind,source=/surely/not/here,target=/x";
    exits(daemon.berth(&["run", "--rm", "--mount", bad, "busybox", "true"]), 125).fails_with(
        "invalid mount config for type \"bind\": bind source path does not exist: /surely/not/here",
    );
    assert!(!Path::new("/surely/not/here").exists());
    assert!(daemon.berth(&["ps", "-a", "-q"]).ok().stdout.is_empty());
    assert_no_mounts_left(&daemon);
}

#[test]
fn tmpfs_mounts_have_their_size_limit() {
    let daemon = Daemon::with_busybox();
    let script = "grep ' /t ' /proc/mounts; dd if=/dev/zero of=/t/fill bs=1024 count=2048";
    let out =
        exits(daemon.berth(&["run", "--rm", "--tmpfs", "/t:size=1m", "busybox", "sh", "-c", script]), 1);
    assert!(out.stdout.starts_with("tmpfs /t tmpfs "), "{}", out.stdout);
    assert!(out.stdout.contains("size=1024k"), "{}", out.stdout);
    assert!(out.stdout.contains("noexec"), "{}", out.stdout);
    assert!(out.stderr.contains("No space left on device"), "{}", out.stderr);
    // --mount type=tmpfs, and a write that fits.
    let out = daemon
        .berth(&[
            "run",
            "--rm",
            "--mount",
            "type=tmpfs,target=/u,tmpfs-size=2m",
            "busybox",
            "sh",
            "-c",
            "dd if=/dev/zero of=/u/f bs=1024 count=1024 2>/dev/null && grep ' /u ' /proc/mounts",
        ])
        .ok();
    assert!(out.stdout.contains("size=2048k"), "{}", out.stdout);
    // A tmpfs starts empty in each run of the container.
    daemon.berth(&["run", "--name", "tmp", "--tmpfs", "/t", "busybox", "sh", "-c", "ls /t; touch /t/x"]).ok();
    let out = daemon.berth(&["start", "-a", "tmp"]).ok();
    assert_eq!(out.stdout, "");
    assert_no_mounts_left(&daemon);
}

#[test]
fn anonymous_volumes_from_an_image_get_its_content_and_go_with_rm_v() {
    let daemon = Daemon::with_busybox();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nRUN mkdir -p /data/sub && echo from-image > /data/sub/seed && chmod 0750 /data\nVOLUME /data\n",
    )
    .unwrap();
    daemon.berth(&["build", "-q", "-t", "withvol", ctx.path().to_str().unwrap()]).ok();

    // Copy-up: the new volume has what the image has at /data (and its mode).
    let out = daemon
        .berth(&["run", "--name", "c1", "withvol", "sh", "-c", "cat /data/sub/seed; stat -c %a /data"])
        .ok();
    assert_eq!(out.stdout, "from-image\n750\n");
    let mounts = inspect(&daemon, "c1")["mounts"].clone();
    let anon = mounts[0]["name"].as_str().unwrap().to_string();
    assert_eq!(anon.len(), 64, "an anonymous volume has a generated name: {anon}");
    assert_eq!(mounts[0]["destination"], "/data");
    assert_eq!(volume_names(&daemon), std::slice::from_ref(&anon));
    let out = daemon.berth(&["volume", "inspect", "-f", "{{.Labels}}", &anon]).ok();
    assert!(out.stdout.contains("com.docker.volume.anonymous"), "{}", out.stdout);

    // rm -v takes it along.
    daemon.berth(&["rm", "-v", "c1"]).ok();
    assert!(volume_names(&daemon).is_empty());

    // --rm does too.
    daemon.berth(&["run", "--rm", "withvol", "true"]).ok();
    assert!(volume_names(&daemon).is_empty());

    // -v over the image's VOLUME path uses the named volume instead (and copies up into it).
    daemon.berth(&["run", "--rm", "-v", "named:/data", "withvol", "true"]).ok();
    assert_eq!(volume_names(&daemon), ["named"]);
    let out = daemon.berth(&["run", "--rm", "-v", "named:/x", "busybox", "cat", "/x/sub/seed"]).ok();
    assert_eq!(out.stdout, "from-image\n");

    // rm without -v leaves the anonymous volume; prune removes unused anonymous volumes only,
    // prune -a every unused one.
    daemon.berth(&["run", "--name", "c2", "withvol", "true"]).ok();
    daemon.berth(&["create", "--name", "c3", "-v", "kept:/k", "busybox"]).ok();
    daemon.berth(&["rm", "c2"]).ok();
    assert_eq!(volume_names(&daemon).len(), 3);
    let out = daemon.berth(&["volume", "prune", "-f"]).ok();
    assert!(out.stdout.starts_with("Deleted Volumes:\n"), "{}", out.stdout);
    assert!(out.stdout.contains("Total reclaimed space:"), "{}", out.stdout);
    assert_eq!(volume_names(&daemon), ["kept", "named"]);
    let out = daemon.berth(&["volume", "prune", "-a", "-f"]).ok();
    assert_eq!(out.stdout.lines().nth(1), Some("named"), "{}", out.stdout);
    assert_eq!(volume_names(&daemon), ["kept"], "a volume in use is never pruned");
    daemon.berth(&["rm", "c3"]).ok();
    assert_no_mounts_left(&daemon);
}

#[test]
fn bad_mount_specs_are_refused_clearly_and_create_nothing() {
    let daemon = Daemon::with_busybox();
    let cases: &[(&[&str], &str)] = &[
        (&["-v", "a:/b:ro:x"], "invalid volume specification: 'a:/b:ro:x'"),
        (&["-v", "data:relative"], "invalid mount path: 'relative' mount path must be absolute"),
        (&["-v", "/tmp:/y:bogus"], "invalid mode: bogus"),
        (&["-v", "v1:/data", "-v", "v2:/data/"], "Duplicate mount point: /data"),
        (&["-v", "bad/name:/x"], "includes invalid characters for a local volume name"),
        (&["-v", "/tmp:/"], "destination can't be '/'"),
        (&["--mount", "type=nfs,target=/x"], "invalid mount config for type \"nfs\": mount type unknown"),
        (&["--mount", "type=volume,source=v3"], "field Target must not be empty"),
        (&["--mount", "type=bind,target=/x,foo=1"], "unexpected key 'foo' in 'foo=1'"),
        (&["--tmpfs", "/t:size=lots"], "invalid tmpfs size lots"),
        (&["--tmpfs", "rel"], "invalid mount path: 'rel' mount path must be absolute"),
    ];
    for (flags, message) in cases {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["busybox", "true"]);
        let out = exits(daemon.berth(&args), 125);
        assert!(out.stderr.contains(message), "{flags:?}: expected {message:?} in {:?}", out.stderr);
    }
    assert!(daemon.berth(&["ps", "-a", "-q"]).ok().stdout.is_empty());
    assert!(volume_names(&daemon).is_empty(), "a refused run made volumes: {:?}", volume_names(&daemon));
    // The API refuses the same with 400.
    let response = daemon.http(
        "POST",
        "/api/v1/containers",
        &[("Content-Type", "application/json")],
        br#"{"image":"busybox","mounts":[{"type":"bind","source":"relative","target":"/x"}]}"#,
    );
    assert_eq!(response.status, 400, "{}", response.text());
    assert!(response.text().contains("mount path must be absolute"), "{}", response.text());
    let response =
        daemon.http("POST", "/api/v1/volumes", &[("Content-Type", "application/json")], br#"{"name":"a"}"#);
    assert_eq!(response.status, 400, "{}", response.text());
    let response = daemon.http("DELETE", "/api/v1/volumes/nope", &[], b"");
    assert_eq!(response.status, 404, "{}", response.text());
    assert!(volume_names(&daemon).is_empty());
}

#[test]
fn copy_up_works_with_the_copy_snapshotter_and_an_imported_image_volume() {
    let daemon = Daemon::start_with_args(&["--snapshotter", "copy"]);
    let rootfs = berth_tests::busybox_rootfs(daemon.dir());
    daemon
        .berth(&[
            "import",
            "-c",
            r#"CMD ["sh"]"#,
            "-c",
            r#"VOLUME ["/etc"]"#,
            rootfs.to_str().unwrap(),
            "etcvol",
        ])
        .ok();
    // /etc is an anonymous volume filled from the image: its files are there, and what the
    // container writes there is in the volume, not in the container's layer.
    let out = daemon
        .berth(&[
            "run",
            "--name",
            "etc-user",
            "etcvol",
            "sh",
            "-c",
            "grep -c ^root: /etc/passwd; echo new > /etc/added",
        ])
        .ok();
    assert_eq!(out.stdout, "1\n");
    let anon = inspect(&daemon, "etc-user")["mounts"][0]["name"].as_str().unwrap().to_string();
    let mountpoint = daemon.berth(&["volume", "inspect", "-f", "{{.Mountpoint}}", &anon]).ok().stdout;
    let data = Path::new(mountpoint.trim());
    assert_eq!(std::fs::read_to_string(data.join("added")).unwrap(), "new\n");
    assert!(data.join("passwd").is_file());
    daemon.berth(&["rm", "-v", "etc-user"]).ok();
    assert!(volume_names(&daemon).is_empty());
    assert!(!data.exists());
    assert_no_mounts_left(&daemon);
}
