//! The `berth` CLI against a real daemon: every image command, their output, their failures, both
//! transports, and the HTTP surface the dashboard and scripts use.

use berth_tests::{berth_at, busybox_rootfs, Daemon};
use serde_json::Value;

/// Imports the busybox rootfs as `busybox:latest` with a CMD and an ENV; returns the image ID.
fn import_busybox(daemon: &Daemon) -> String {
    let rootfs = busybox_rootfs(daemon.dir());
    let out = daemon
        .berth(&[
            "import",
            "--change",
            r#"CMD ["sh"]"#,
            "-c",
            r#"ENV GREETING="hello world""#,
            "--message",
            "busybox for the tests",
            rootfs.to_str().unwrap(),
            "busybox:latest",
        ])
        .ok();
    let id = out.stdout.trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "import prints the image ID: {id:?}");
    id
}

fn short(id: &str) -> &str {
    &id["sha256:".len().."sha256:".len() + 12]
}

#[test]
fn import_then_list_and_inspect() {
    let daemon = Daemon::start();
    assert_eq!(daemon.berth(&["images"]).ok().stdout, "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n");
    let id = import_busybox(&daemon);

    // The table, aligned like Docker's.
    let table = daemon.berth(&["images"]).ok();
    let lines = table.lines();
    assert_eq!(lines.len(), 2, "{}", table.stdout);
    assert!(lines[0].starts_with("REPOSITORY   TAG       IMAGE ID       CREATED"), "{}", lines[0]);
    let cells: Vec<&str> = lines[1].split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
    assert_eq!(cells[0], "busybox");
    assert_eq!(cells[1], "latest");
    assert_eq!(cells[2], short(&id));
    assert!(cells[3].ends_with(" ago"), "CREATED: {}", cells[3]);
    assert!(cells[4].ends_with("MB") || cells[4].ends_with("kB"), "SIZE: {}", cells[4]);
    // Columns line up: each header starts where its cells start.
    let col = |line: &str, text: &str| line.find(text).unwrap();
    assert_eq!(col(lines[0], "IMAGE ID"), col(lines[1], short(&id)));
    assert_eq!(col(lines[0], "TAG"), col(lines[1], "latest"));

    // `image ls` is the same command; -q and --no-trunc.
    assert_eq!(daemon.berth(&["image", "ls"]).ok().stdout, daemon.berth(&["images"]).ok().stdout);
    assert_eq!(daemon.berth(&["images", "-q"]).ok().stdout, format!("{}\n", short(&id)));
    assert_eq!(daemon.berth(&["images", "-q", "--no-trunc"]).ok().stdout, format!("{id}\n"));
    assert_eq!(daemon.berth(&["images", "-a", "--format", "table"]).ok().stdout, table.stdout);

    // --format json: one object per line, Docker's keys.
    let json = daemon.berth(&["images", "--format", "json"]).ok();
    let rows: Vec<Value> = json.lines().iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["Repository"], "busybox");
    assert_eq!(rows[0]["Tag"], "latest");
    assert_eq!(rows[0]["ID"], short(&id));
    assert!(rows[0]["CreatedSince"].as_str().unwrap().ends_with(" ago"));
    assert!(rows[0]["CreatedAt"].as_str().unwrap().ends_with("+0000 UTC"));
    // Docker's precisions: "2.14MB" and "2.14MB", or "1.99MB" and "1.987MB".
    let (size, virtual_size) = (rows[0]["Size"].as_str().unwrap(), rows[0]["VirtualSize"].as_str().unwrap());
    assert!(size.ends_with('B') && virtual_size[..3] == size[..3], "{size} {virtual_size}");
    // Templates, as Docker users write them.
    assert_eq!(daemon.berth(&["images", "--format", "{{.ID}}"]).ok().stdout, format!("{}\n", short(&id)));
    let out = daemon.berth(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.Size}}"]).ok();
    assert!(out.stdout.starts_with("busybox:latest ") && out.lines().len() == 1, "{}", out.stdout);
    let out = daemon.berth(&["images", "--format", r"table {{.Tag}}\t{{.Repository}}"]).ok();
    assert_eq!(out.stdout, "TAG       REPOSITORY\nlatest    busybox\n");
    assert_eq!(daemon.berth(&["images", "--format", "{{json .}}"]).ok().stdout, json.stdout);
    daemon.berth(&["images", "--format", "{{.Nope}}"]).fails_with("unsupported action {{.Nope}}");
    // The REPOSITORY[:TAG] filter.
    for (filter, rows) in [("busybox", 2), ("busy*", 2), ("busybox:latest", 2), ("busybox:1", 1), ("nope", 1)]
    {
        assert_eq!(daemon.berth(&["images", filter]).ok().lines().len(), rows, "images {filter}");
    }

    // inspect: a JSON array with the changes and the message applied.
    let inspect = daemon.berth(&["image", "inspect", "busybox"]).ok();
    let images: Vec<Value> = serde_json::from_str(&inspect.stdout).unwrap();
    assert_eq!(images.len(), 1);
    let image = &images[0];
    assert_eq!(image["id"], id.as_str());
    assert_eq!(image["repo_tags"], serde_json::json!(["docker.io/library/busybox:latest"]));
    assert_eq!(image["config"]["cmd"], serde_json::json!(["sh"]));
    assert!(image["config"]["env"].as_array().unwrap().contains(&Value::from("GREETING=hello world")));
    assert_eq!(image["layers"].as_array().unwrap().len(), 1);
    assert_eq!(image["history"][0]["comment"], "busybox for the tests");
    assert!(image["size"].as_u64().unwrap() > 100_000);
    // By ID, by ID prefix, by full name: the same image; several names give several entries.
    for name in [id.as_str(), short(&id), "docker.io/library/busybox:latest"] {
        let again: Vec<Value> =
            serde_json::from_str(&daemon.berth(&["image", "inspect", name]).ok().stdout).unwrap();
        assert_eq!(again[0]["id"], id.as_str(), "inspect {name}");
    }
    let two: Vec<Value> =
        serde_json::from_str(&daemon.berth(&["image", "inspect", "busybox", &id]).ok().stdout).unwrap();
    assert_eq!(two.len(), 2);

    // The same over TCP.
    assert_eq!(daemon.berth_tcp(&["images", "-q"]).ok().stdout, format!("{}\n", short(&id)));
    let info = daemon.berth_tcp(&["info"]).ok();
    assert!(info.stdout.contains("Images: 1"), "{}", info.stdout);
    let version = daemon.berth_tcp(&["version"]).ok();
    assert!(version.stdout.contains("Client:") && version.stdout.contains("Server:"), "{}", version.stdout);
}

#[test]
fn import_from_stdin_without_a_name_is_dangling() {
    let daemon = Daemon::start();
    let rootfs = std::fs::read(busybox_rootfs(daemon.dir())).unwrap();
    let id = daemon.berth_stdin(&["import", "-"], &rootfs).ok().stdout.trim().to_string();
    assert!(id.starts_with("sha256:"), "{id}");
    let table = daemon.berth(&["images"]).ok();
    assert!(table.lines()[1].starts_with("<none>       <none>    "), "{}", table.stdout);
    let json = daemon.berth(&["images", "--format", "json"]).ok();
    let row: Value = serde_json::from_str(json.lines()[0]).unwrap();
    assert_eq!(row["Repository"], "<none>");
    assert_eq!(row["Tag"], "<none>");
}

#[test]
fn tag_and_rmi() {
    let daemon = Daemon::start();
    let id = import_busybox(&daemon);
    daemon.berth(&["tag", "busybox", "localhost:5000/tools/busybox:1"]).ok();
    daemon.berth(&["image", "tag", short(&id), "extra"]).ok();
    let table = daemon.berth(&["images"]).ok();
    assert_eq!(table.lines().len(), 4, "{}", table.stdout);
    assert!(table.stdout.contains("localhost:5000/tools/busybox   1 "), "{}", table.stdout);
    assert!(table.stdout.contains("\nextra "), "{}", table.stdout);
    assert_eq!(daemon.berth(&["images", "-q"]).ok().lines(), vec![short(&id); 3]);

    // A tag of an image with other tags: only untagged.
    let out = daemon.berth(&["rmi", "localhost:5000/tools/busybox:1"]).ok();
    assert_eq!(out.stdout, "Untagged: localhost:5000/tools/busybox:1\n");
    // By ID while two tags remain: refused, as Docker does, and nothing changes.
    daemon.berth(&["rmi", short(&id)]).fails_with("Error response from daemon: conflict: unable to delete");
    assert_eq!(daemon.berth(&["images", "-q"]).ok().lines().len(), 2);
    daemon.berth(&["image", "rm", "extra"]).ok();
    // The last tag: untagged and deleted, with the blobs.
    let out = daemon.berth(&["rmi", "busybox"]).ok();
    assert!(out.stdout.starts_with("Untagged: busybox:latest\n"), "{}", out.stdout);
    assert!(out.stdout.contains(&format!("Deleted: {id}\n")), "{}", out.stdout);
    assert_eq!(daemon.berth(&["images", "-q"]).ok().stdout, "");
    assert_eq!(daemon.verify_blobs(), 0, "rmi of the only image leaves no blob behind");

    // By ID with several tags and -f: everything goes at once.
    let id = import_busybox(&daemon);
    daemon.berth(&["tag", "busybox", "other:2"]).ok();
    let out = daemon.berth(&["rmi", "-f", &id]).ok();
    assert!(out.stdout.contains(&format!("Deleted: {id}")), "{}", out.stdout);
    assert_eq!(daemon.berth(&["images", "-q"]).ok().stdout, "");

    // rmi of several names: the unknown one is reported, the others removed, exit 1.
    import_busybox(&daemon);
    daemon.berth(&["tag", "busybox", "second"]).ok();
    let out = daemon
        .berth(&["rmi", "nope", "second"])
        .fails_with("Error response from daemon: No such image: nope");
    assert_eq!(out.stdout, "Untagged: second:latest\n");

    // Every mutation is in the history, newest first.
    let events = daemon.http("GET", "/api/v1/events?limit=1000", &[], b"").json();
    let events = events.as_array().unwrap();
    let has = |action: &str, subject: &str, outcome: &str| {
        events.iter().any(|e| e["action"] == action && e["subject"] == subject && e["outcome"] == outcome)
    };
    assert!(has("tag", "localhost:5000/tools/busybox:1", "success"), "{events:?}");
    assert!(has("untag", "localhost:5000/tools/busybox:1", "success"), "{events:?}");
    assert!(has("delete", short(&id), "failure") || events.iter().any(|e| e["outcome"] == "failure"));
    assert!(has("delete", "nope", "failure"), "{events:?}");
    assert!(events.iter().all(|e| e["type"] == "image"));
    let ids: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
}

#[test]
fn prune_dangling_and_all() {
    let daemon = Daemon::start();
    let tagged = import_busybox(&daemon);
    // The same rootfs under a different CMD gives a second image; without a name it dangles.
    let rootfs = busybox_rootfs(daemon.dir());
    let dangling = daemon.berth(&["import", "-c", "CMD [\"true\"]", rootfs.to_str().unwrap()]).ok();
    let dangling = dangling.stdout.trim().to_string();
    assert_ne!(dangling, tagged);

    // Without -f it asks; anything but y keeps everything.
    let out = daemon.berth_stdin(&["image", "prune"], b"n\n").ok();
    assert!(out.stdout.starts_with(
        "WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] "
    ));
    assert_eq!(daemon.berth(&["images", "-q"]).ok().lines().len(), 2);

    let out = daemon.berth_stdin(&["image", "prune"], b"y\n").ok();
    assert!(out.stdout.contains(&format!("Deleted Images:\ndeleted: {dangling}\n")), "{}", out.stdout);
    assert!(out.stdout.contains("Total reclaimed space: "), "{}", out.stdout);
    assert_eq!(daemon.berth(&["images", "-q", "--no-trunc"]).ok().stdout, format!("{tagged}\n"));
    // Nothing dangling left: nothing to do.
    assert_eq!(daemon.berth(&["image", "prune", "-f"]).ok().stdout, "Total reclaimed space: 0B\n");

    // -a takes the tagged image too.
    let out = daemon.berth(&["image", "prune", "-a", "-f"]).ok();
    assert!(out.stdout.contains("untagged: busybox:latest"), "{}", out.stdout);
    assert!(out.stdout.contains(&format!("deleted: {tagged}")), "{}", out.stdout);
    assert_eq!(daemon.berth(&["images", "-q"]).ok().stdout, "");
    assert_eq!(daemon.verify_blobs(), 0);
}

#[test]
fn save_then_load_file_dir_and_stdin() {
    let daemon = Daemon::start();
    let id = import_busybox(&daemon);
    let tar = daemon.dir().join("busybox.tar");
    let layout = daemon.dir().join("layout");
    daemon.berth(&["save", "-o", tar.to_str().unwrap(), "busybox"]).ok();
    daemon.berth(&["image", "save", "-o", &format!("{}/", layout.display()), "busybox"]).ok();
    assert!(layout.join("oci-layout").is_file() && layout.join("index.json").is_file());
    assert!(tar.metadata().unwrap().len() > 100_000);
    // No temporary file is left beside the output.
    let leftovers: Vec<_> = std::fs::read_dir(daemon.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("berth-save"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // To stdout when it is not a terminal.
    let streamed = std::process::Command::new(berth_tests::berth_binary())
        .args(["save", "busybox"])
        .env("BERTH_HOST", daemon.unix_host())
        .output()
        .unwrap();
    assert!(streamed.status.success());
    assert_eq!(streamed.stdout.len() as u64, tar.metadata().unwrap().len());

    for (how, args, stdin) in [
        ("file", vec!["load", "-i", tar.to_str().unwrap()], None),
        ("dir", vec!["image", "load", "-i", layout.to_str().unwrap()], None),
        ("stdin", vec!["load", "-q"], Some(streamed.stdout.clone())),
    ] {
        daemon.berth(&["rmi", "busybox"]).ok();
        assert_eq!(daemon.berth(&["images", "-q"]).ok().stdout, "", "{how}");
        let out = match stdin {
            Some(bytes) => daemon.berth_stdin(&args, &bytes),
            None => daemon.berth(&args),
        }
        .ok();
        assert_eq!(out.stdout, "Loaded image: busybox:latest\n", "load from {how}");
        assert_eq!(daemon.berth(&["images", "-q", "--no-trunc"]).ok().stdout, format!("{id}\n"), "{how}");
        let image: Vec<Value> =
            serde_json::from_str(&daemon.berth(&["image", "inspect", "busybox"]).ok().stdout).unwrap();
        assert_eq!(image[0]["config"]["cmd"], serde_json::json!(["sh"]), "{how}");
    }
    daemon.verify_blobs();

    // Saving by ID names no tag in the archive: it loads back untagged.
    let by_id = daemon.dir().join("by-id.tar");
    daemon.berth(&["save", "-o", by_id.to_str().unwrap(), &id]).ok();
    daemon.berth(&["rmi", "busybox"]).ok();
    let out = daemon.berth(&["load", "-i", by_id.to_str().unwrap()]).ok();
    assert_eq!(out.stdout, format!("Loaded image ID: {id}\n"));
}

#[test]
fn save_refuses_a_terminal() {
    let daemon = Daemon::start();
    import_busybox(&daemon);
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let out = std::process::Command::new(berth_tests::berth_binary())
        .args(["save", "busybox"])
        .env("BERTH_HOST", daemon.unix_host())
        .stdout(std::process::Stdio::from(pty.slave))
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "cowardly refusing to save to a terminal. Use the -o flag or redirect\n"
    );
}

#[test]
fn version_and_info_take_docker_templates() {
    let daemon = Daemon::start();
    import_busybox(&daemon);
    let version =
        daemon.berth(&["version", "--format", "{{.Client.Version}} {{.Server.Version}} {{.Server.Os}}"]).ok();
    let own = env!("CARGO_PKG_VERSION");
    assert_eq!(version.stdout, format!("{own} {own} linux\n"));
    let json = daemon.berth(&["version", "-f", "{{json .Server}}"]).ok();
    let server: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(server["version"], own);
    let info = daemon.berth(&["info", "--format", "{{.ServerVersion}} {{.Images}} {{.Driver}}"]).ok();
    assert!(
        info.stdout == format!("{own} 1 overlay\n") || info.stdout == format!("{own} 1 copy\n"),
        "{}",
        info.stdout
    );
    assert_eq!(daemon.berth(&["system", "info", "-f", "{{.Images}}"]).ok().stdout, "1\n");
    // A field that does not exist, or what is not a template, is a usage error.
    daemon.berth(&["info", "--format", "{{.Nope}}"]).fails_with("template: can't evaluate field Nope");
    daemon.berth(&["version", "--format", "{{Server}}"]).fails_with("unsupported action {{Server}}");
}

/// Cells of a table row: the text between runs of two or more spaces.
fn cells(line: &str) -> Vec<&str> {
    line.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect()
}

#[test]
fn stats_takes_docker_formats() {
    let daemon = Daemon::start();
    import_busybox(&daemon);
    let id = daemon
        .berth(&["run", "-d", "--name", "web", "busybox", "sleep", "600"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let short_id = &id[..12];
    let stats = |args: &[&str]| daemon.berth(&[&["stats", "--no-stream"], args].concat());

    // Docker's default table; `table` alone is the same (two samples: compared but their figures).
    let table = stats(&[]).ok();
    let same = stats(&["--format", "table"]).ok();
    assert_eq!(cells(same.lines()[0]), cells(table.lines()[0]));
    assert_eq!(cells(same.lines()[1])[..2], cells(table.lines()[1])[..2]);
    assert_eq!(
        cells(table.lines()[0]),
        ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"]
    );
    // json: one object per line, Docker's keys, every value a string.
    let json = stats(&["--format", "json"]).ok();
    let row: Value = serde_json::from_str(json.lines()[0]).unwrap();
    let keys: Vec<&str> = row.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["BlockIO", "CPUPerc", "Container", "ID", "MemPerc", "MemUsage", "Name", "NetIO", "PIDs"]
    );
    assert_eq!(row["Container"], short_id);
    assert_eq!(row["ID"], short_id);
    assert_eq!(row["Name"], "web");
    assert_eq!(row["PIDs"], "1");
    assert!(row["CPUPerc"].as_str().unwrap().ends_with('%'), "{row}");
    assert!(row["MemUsage"].as_str().unwrap().contains(" / "), "{row}");
    assert_eq!(stats(&["--format", "{{json .}}"]).ok().stdout.lines().count(), 1);
    // Templates: .Container is the name the user gave, .ID the (untruncated with --no-trunc) ID.
    assert_eq!(
        stats(&["--format", "{{.Container}} {{.Name}} {{.ID}}", "web"]).ok().stdout,
        format!("web web {short_id}\n")
    );
    assert_eq!(stats(&["--no-trunc", "--format", "{{.ID}}"]).ok().stdout, format!("{id}\n"));
    // `table` gives Docker's headers.
    let t = stats(&["--format", r"table {{.Container}}\t{{.ID}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"]).ok();
    assert_eq!(cells(t.lines()[0]), ["CONTAINER", "CONTAINER ID", "NET I/O", "BLOCK I/O", "PIDS"]);
    let row = cells(t.lines()[1]);
    assert_eq!([row[0], row[1], row[4]], [short_id, short_id, "1"], "{}", t.stdout);
    assert!(row[2].contains(" / ") && row[3].contains(" / "), "{}", t.stdout);
    stats(&["--format", "{{.Nope}}"]).fails_with("unsupported action {{.Nope}}");
    daemon.berth(&["rm", "-f", "web"]).ok();
}

/// NET I/O and BLOCK I/O are the container's own: its interfaces' counters (not the loopback's)
/// and its cgroup's bytes read and written.
#[test]
fn stats_counts_the_containers_network_and_block_io() {
    let daemon = Daemon::start_in_netns();
    import_busybox(&daemon);
    // Pings to the bridge's address (in the test's own namespace), then 4 MiB written and synced.
    let script = "ping -c 3 -W 1 $(ip route | awk '/default/ {print $3}') >/dev/null; \
                  dd if=/dev/zero of=/data bs=64k count=64 conv=fsync 2>/dev/null; echo done; sleep 600";
    daemon.berth(&["run", "-d", "--name", "io", "busybox", "sh", "-c", script]).ok();
    wait_for_done(&daemon, "io");
    let row =
        daemon.berth(&["stats", "--no-stream", "--format", "{{.ID}}|{{.NetIO}}|{{.BlockIO}}", "io"]).ok();
    let [id, net, block] = row.stdout.trim().splitn(3, '|').collect::<Vec<_>>()[..] else {
        panic!("{}", row.stdout)
    };
    let (rx, tx) = net.split_once(" / ").unwrap();
    assert!(rx != "0B" && tx != "0B", "NET I/O {net}");
    // What the kernel counted: cgroup v2 counts every write; v1 counts only on devices with a
    // throttling rule (kernels since 6.2), so 0 there, which is also what Docker shows.
    let id = daemon.berth(&["inspect", "-f", "{{.Id}}", id]).ok().stdout.trim().to_string();
    let (_, written) = block.split_once(" / ").unwrap();
    match std::fs::read_to_string(format!("/sys/fs/cgroup/berth/{id}/io.stat")) {
        Ok(_) => assert!(written.ends_with("MB"), "BLOCK I/O {block}"),
        Err(_) => {
            let v1 = format!("/sys/fs/cgroup/blkio/berth/{id}/blkio.throttle.io_service_bytes_recursive");
            let counted = std::fs::read_to_string(&v1).unwrap();
            let total: u64 = counted
                .lines()
                .filter(|l| l.starts_with("Total "))
                .map(|l| l[6..].parse::<u64>().unwrap())
                .sum();
            assert_eq!(total == 0, block == "0B / 0B", "BLOCK I/O {block}, the kernel's count: {counted}");
        }
    }
    // `--network none`: no interface of its own, so nothing counted.
    daemon.berth(&["run", "-d", "--name", "quiet", "--network", "none", "busybox", "sleep", "600"]).ok();
    let row = daemon.berth(&["stats", "--no-stream", "--format", "{{.NetIO}}", "quiet"]).ok();
    assert_eq!(row.stdout, "0B / 0B\n");
    // The docker CLI reads the same counters through the Docker API.
    let host = daemon.docker_host();
    let docker = |name| {
        let args = ["stats", "--no-stream", "--format", "{{.NetIO}}", name];
        berth_tests::dockerd::docker_with(&host, &args, None, &[]).ok().stdout
    };
    assert!(!docker("io").starts_with("0B / "), "docker stats: {}", docker("io"));
    assert_eq!(docker("quiet"), "0B / 0B\n");
    daemon.berth(&["rm", "-f", "io", "quiet"]).ok();
}

/// MEM USAGE leaves out the page cache not used lately, as the docker CLI computes it: a file
/// the container wrote stays in its memory cgroup's usage, not in what `stats` shows.
#[test]
fn stats_leaves_the_inactive_page_cache_out_of_memory_use() {
    let daemon = Daemon::start();
    import_busybox(&daemon);
    let script = "dd if=/dev/zero of=/tmp/cache bs=1M count=64 2>/dev/null; echo done; sleep 600";
    let id = daemon
        .berth(&["run", "-d", "--name", "cache", "busybox", "sh", "-c", script])
        .ok()
        .stdout
        .trim()
        .to_string();
    wait_for_done(&daemon, "cache");
    let raw = [
        format!("/sys/fs/cgroup/berth/{id}/memory.current"),
        format!("/sys/fs/cgroup/memory/berth/{id}/memory.usage_in_bytes"),
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok())
    .and_then(|v| v.trim().parse::<u64>().ok())
    .expect("the container's memory cgroup");
    assert!(raw > 60 << 20, "the written file is in the cgroup's usage: {raw}");
    let shown = daemon.berth(&["stats", "--no-stream", "--format", "{{.MemUsage}}", "cache"]).ok().stdout;
    let in_use = binary_size(shown.split(" / ").next().unwrap());
    assert!(in_use + (32 << 20) < raw, "stats shows {shown} with {raw} bytes in the cgroup");
    // The docker CLI computes the same from the Docker API's usage and inactive_file.
    let args = ["stats", "--no-stream", "--format", "{{.MemUsage}}", "cache"];
    let docker = berth_tests::dockerd::docker_with(&daemon.docker_host(), &args, None, &[]).ok().stdout;
    let by_docker = binary_size(docker.split(" / ").next().unwrap());
    assert!(by_docker.abs_diff(in_use) < 4 << 20, "docker stats {docker}, berth stats {shown}");
    daemon.berth(&["rm", "-f", "cache"]).ok();
}

/// Waits until container `name` has logged `done` (its script's work before it sleeps).
fn wait_for_done(daemon: &Daemon, name: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !daemon.berth(&["logs", name]).ok().stdout.contains("done") {
        assert!(std::time::Instant::now() < deadline, "{name} did not log done");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Docker's `units.BytesSize` text (`1.5MiB`) back to bytes.
fn binary_size(text: &str) -> u64 {
    let at = text.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(text.len());
    let unit = match &text[at..] {
        "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => panic!("unit {other} in {text}"),
    };
    (text[..at].parse::<f64>().unwrap() * unit as f64) as u64
}

#[test]
fn history_takes_docker_formats() {
    let daemon = Daemon::start();
    let id = import_busybox(&daemon);
    let history = |args: &[&str]| daemon.berth(&[&["history"], args, &["busybox"]].concat());

    let table = history(&[]).ok();
    assert_eq!(history(&["--format", "table"]).ok().stdout, table.stdout);
    assert_eq!(cells(table.lines()[0]), ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]);
    let json = history(&["--format", "json"]).ok();
    assert_eq!(json.lines().len(), 1, "{}", json.stdout);
    let row: Value = serde_json::from_str(json.lines()[0]).unwrap();
    let keys: Vec<&str> = row.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["Comment", "CreatedAt", "CreatedBy", "CreatedSince", "ID", "Size"]);
    assert_eq!(row["ID"], short(&id));
    assert_eq!(row["Comment"], "busybox for the tests");
    assert!(row["CreatedSince"].as_str().unwrap().ends_with(" ago"), "{row}");
    // Docker's `time.RFC3339`: to the second.
    let created_at = row["CreatedAt"].as_str().unwrap().to_string();
    assert!(created_at.len() == 20 && created_at.ends_with('Z'), "{created_at}");
    assert!(row["Size"].as_str().unwrap().ends_with("MB"), "{row}");
    // Without --human, sizes in bytes and dates as CreatedAt; --no-trunc gives the full ID.
    let raw =
        history(&["--human=false", "--no-trunc", "--format", "{{.ID}} {{.Size}} {{.CreatedSince}}"]).ok();
    let raw: Vec<&str> = raw.stdout.split_whitespace().collect();
    assert_eq!(raw[0], id);
    assert!(raw[1].parse::<u64>().unwrap() > 100_000, "{raw:?}");
    assert_eq!(raw[2], created_at);
    let t = history(&["--format", r"table {{.ID}}\t{{.CreatedAt}}\t{{.Comment}}"]).ok();
    assert_eq!(cells(t.lines()[0]), ["IMAGE", "CREATED AT", "COMMENT"]);
    assert_eq!(cells(t.lines()[1]), [short(&id), created_at.as_str(), "busybox for the tests"]);
    // As with Docker, a --format wins over -q.
    assert_eq!(history(&["-q", "--format", "{{.Comment}}"]).ok().stdout, "busybox for the tests\n");
    assert_eq!(history(&["-q"]).ok().stdout, format!("{}\n", short(&id)));
    history(&["--format", "{{.Nope}}"]).fails_with("unsupported action {{.Nope}}");
}

#[test]
fn system_df_takes_docker_formats() {
    let daemon = Daemon::start();
    import_busybox(&daemon);
    daemon.berth(&["volume", "create", "data"]).ok();
    let df = |args: &[&str]| daemon.berth(&[&["system", "df"], args].concat());

    let table = df(&[]).ok();
    assert_eq!(df(&["--format", "table"]).ok().stdout, table.stdout);
    assert_eq!(cells(table.lines()[0]), ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]);
    // Docker's reclaimable share is shown only when there is a size to take it of.
    assert_eq!(cells(table.lines()[2]), ["Containers", "0", "0", "0B", "0B"]);
    let json = df(&["--format", "json"]).ok();
    let rows: Vec<Value> = json.lines().iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 3, "{}", json.stdout);
    let keys: Vec<&str> = rows[0].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["Active", "Reclaimable", "Size", "TotalCount", "Type"]);
    assert_eq!(rows[0]["Type"], "Images");
    assert_eq!(rows[0]["TotalCount"], "1");
    assert_eq!(rows[2]["Type"], "Local Volumes");
    assert_eq!(rows[2]["Active"], "0");
    let out = df(&["--format", "{{.Type}}: {{.TotalCount}} {{.Active}}"]).ok();
    assert_eq!(out.stdout, "Images: 1 0\nContainers: 0 0\nLocal Volumes: 1 0\n");
    let t = df(&["--format", r"table {{.Type}}\t{{.TotalCount}}"]).ok();
    assert_eq!(t.stdout, "TYPE            TOTAL\nImages          1\nContainers      0\nLocal Volumes   1\n");
    df(&["--format", "{{.Nope}}"]).fails_with("unsupported action {{.Nope}}");
    assert!(df(&["-v"]).ok().stdout.contains("Images space usage:"));
    // -v with a format: one object holding every image, container and volume, as Docker's.
    let verbose: Value = serde_json::from_str(&df(&["-v", "--format", "json"]).ok().stdout).unwrap();
    assert_eq!(verbose["Images"][0]["Repository"], "busybox");
    assert_eq!(verbose["Images"][0]["Containers"], "0");
    assert!(verbose["Images"][0]["ID"].as_str().unwrap().starts_with("sha256:"), "{verbose}");
    assert_eq!(verbose["Containers"], serde_json::json!([]));
    assert_eq!(verbose["Volumes"][0]["Name"], "data");
    assert_eq!(verbose["Volumes"][0]["Links"], "0");
    assert_eq!(verbose["BuildCache"], serde_json::json!([]));
    assert_eq!(df(&["-v", "--format", "{{json .Volumes}}"]).ok().stdout, format!("{}\n", verbose["Volumes"]));
    df(&["-v", "--format", "{{.Type}}"]).fails_with("can't evaluate field Type");
}

#[test]
fn bad_input_fails_with_clear_messages() {
    let daemon = Daemon::start();
    import_busybox(&daemon);
    daemon.berth(&["image", "inspect", "nope"]).fails_with("Error response from daemon: No such image: nope");
    let out = daemon.berth(&["image", "inspect", "busybox", "nope"]).fails_with("No such image: nope");
    assert_eq!(
        serde_json::from_str::<Vec<Value>>(&out.stdout).unwrap().len(),
        1,
        "found ones are still printed"
    );
    // `--format` as `docker image inspect -f`.
    let id = serde_json::from_str::<Vec<Value>>(&out.stdout).unwrap()[0]["id"].as_str().unwrap().to_string();
    let formatted = daemon.berth(&["image", "inspect", "-f", "{{.Id}} {{.Os}}", "busybox"]).ok();
    assert_eq!(formatted.stdout, format!("{id} linux\n"));
    daemon.berth(&["image", "inspect", "-f", "{{.Id", "busybox"]).fails_with("unclosed action");
    daemon.berth(&["rmi", "nope:1"]).fails_with("Error response from daemon: No such image: nope:1");
    daemon.berth(&["tag", "nope", "x"]).fails_with("No such image: nope");
    daemon
        .berth(&["tag", "busybox", "Busybox:Upper"])
        .fails_with("Error response from daemon: invalid reference format");
    daemon.berth(&["image", "inspect", "UPPER"]).fails_with("Error response from daemon:");
    let out = daemon.berth(&["save", "-o", daemon.dir().join("x.tar").to_str().unwrap(), "nope"]);
    out.fails_with("No such image: nope");
    assert!(!daemon.dir().join("x.tar").exists(), "a failed save leaves no file");

    // Malformed import: not a tar, an empty body, a bad --change, an upper-case name.
    let junk = daemon.dir().join("junk.tar");
    std::fs::write(&junk, vec![0x5au8; 64 * 1024]).unwrap();
    daemon.berth(&["import", junk.to_str().unwrap(), "junk"]).fails_with("not a tar archive");
    let empty = daemon.dir().join("empty.tar");
    std::fs::write(&empty, b"").unwrap();
    daemon
        .berth(&["import", empty.to_str().unwrap()])
        .fails_with("Error response from daemon: the tarball is empty");
    let rootfs = busybox_rootfs(daemon.dir());
    daemon
        .berth(&["import", "-c", "FROB x", rootfs.to_str().unwrap()])
        .fails_with("Error response from daemon: frob is not a valid change command");
    daemon.berth(&["import", rootfs.to_str().unwrap(), "Upper:Case"]).fails_with("invalid reference format");
    daemon.berth(&["import", "/nonexistent/rootfs.tar"]).fails_with("open /nonexistent/rootfs.tar");
    daemon.berth(&["load", "-i", junk.to_str().unwrap()]).fails_with("Error response from daemon:");
    daemon.berth_stdin(&["load"], b"").fails_with("Error response from daemon:");
    assert_eq!(daemon.berth(&["images", "-q"]).ok().lines().len(), 1, "failed commands changed nothing");
    daemon.verify_blobs();

    // Failures are recorded too.
    let events = daemon.http("GET", "/api/v1/events", &[], b"").json();
    assert!(events.as_array().unwrap().iter().any(|e| e["action"] == "import" && e["outcome"] == "failure"));

    // Hosts: malformed, or nobody listening.
    let out = berth_at("foo://x", &["images"], None).fails_with("invalid host \"foo://x\"");
    assert_eq!(out.code, 1);
    let missing = daemon.dir().join("missing.sock");
    let host = format!("unix://{}", missing.display());
    let out = berth_at(&host, &["images"], None);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        format!("Cannot connect to the berth daemon at {host}. Is the berth daemon running?\n")
    );
    let port = berth_tests::free_port();
    berth_at(&format!("tcp://127.0.0.1:{port}"), &["images"], None)
        .fails_with("Cannot connect to the berth daemon");
    // -H wins over BERTH_HOST.
    berth_at("foo://x", &["-H", &daemon.tcp_host(), "images", "-q"], None).ok();
    // Usage errors are clap's (exit 2).
    assert_eq!(daemon.berth(&["rmi"]).code, 2);
    assert_eq!(daemon.berth(&["images", "--bogus"]).code, 2);
}

#[test]
fn http_api_and_dashboard() {
    let daemon = Daemon::start();
    let ping = daemon.http("GET", "/_ping", &[], b"");
    assert_eq!((ping.status, ping.text().as_str()), (200, "OK"));

    // The dashboard, and the app's own routes answered by its index page.
    for path in ["/", "/images", "/some/app/route"] {
        let page = daemon.http("GET", path, &[], b"");
        assert_eq!(page.status, 200, "{path}");
        assert!(page.header("content-type").unwrap().starts_with("text/html"), "{path}");
        assert!(page.text().to_lowercase().contains("<html"), "{path}");
    }

    let version = daemon.http("GET", "/api/v1/version", &[], b"").json();
    assert_eq!(version["api_version"], "v1");
    let info = daemon.http("GET", "/api/v1/info", &[], b"").json();
    assert_eq!(info["images"], 0);
    assert_eq!(info["root"], daemon.root().display().to_string());
    assert!(info["snapshotter"] == "overlay" || info["snapshotter"] == "copy");
    assert_eq!(daemon.http("GET", "/api/v1/images", &[], b"").json(), serde_json::json!([]));

    // Errors: JSON bodies with the engine's classification.
    let missing = daemon.http("GET", "/api/v1/images/nope", &[], b"");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["message"], "No such image: nope");
    let unknown = daemon.http("GET", "/api/v1/nothing-here", &[], b"");
    assert_eq!(unknown.status, 404);
    assert!(unknown.json()["message"].is_string());
    let bad_query = daemon.http("DELETE", "/api/v1/images/x?forse=true", &[], b"");
    assert_eq!(bad_query.status, 400);
    assert!(bad_query.json()["message"].as_str().unwrap().contains("forse"));
    let save_none = daemon.http("GET", "/api/v1/images/save", &[], b"");
    assert_eq!(save_none.status, 400);
    let save_unknown = daemon.http("GET", "/api/v1/images/save?name=nope", &[], b"");
    assert_eq!(save_unknown.status, 404, "refused before streaming");

    // JSON bodies: unknown fields refused, over 1 MiB refused with 413.
    let json = [("content-type", "application/json")];
    let tag = daemon.http("POST", "/api/v1/images/x/tag", &json, br#"{"target":"y","extra":1}"#);
    assert_eq!(tag.status, 400);
    assert!(tag.json()["message"].as_str().unwrap().contains("extra"), "{}", tag.text());
    let huge = format!(r#"{{"target":"{}"}}"#, "a".repeat(1024 * 1024 + 10));
    let tag = daemon.http("POST", "/api/v1/images/x/tag", &json, huge.as_bytes());
    assert_eq!(tag.status, 413);
    assert!(tag.json()["message"].is_string());
    let tag = daemon.http("POST", "/api/v1/images/x/tag", &json, br#"{"target":"y"}"#);
    assert_eq!(tag.status, 404);

    // Names with `/`, `:` and `@` travel as one percent-encoded segment; a name equal to a
    // fixed path (`save`) still reaches the image route when encoded.
    import_busybox(&daemon);
    daemon.berth(&["tag", "busybox", "localhost:5000/a/save:1"]).ok();
    daemon.berth(&["tag", "busybox", "save"]).ok();
    let inspect = daemon.http("GET", "/api/v1/images/localhost%3A5000%2Fa%2Fsave%3A1", &[], b"");
    assert_eq!(inspect.status, 200, "{}", inspect.text());
    daemon.berth(&["image", "inspect", "save"]).ok();
    daemon.berth(&["rmi", "save"]).ok();

    // Events page back with before=.
    let all = daemon.http("GET", "/api/v1/events?limit=1000", &[], b"").json();
    let all = all.as_array().unwrap();
    assert!(all.len() >= 4, "{all:?}");
    let first_two = daemon.http("GET", "/api/v1/events?limit=2", &[], b"").json();
    assert_eq!(first_two.as_array().unwrap().len(), 2);
    assert_eq!(first_two[0], all[0]);
    let before = first_two[1]["id"].as_i64().unwrap();
    let next = daemon.http("GET", &format!("/api/v1/events?limit=2&before={before}"), &[], b"").json();
    assert_eq!(next[0], all[2]);
    assert_eq!(daemon.http("GET", "/api/v1/events?limit=0", &[], b"").status, 400);
    assert_eq!(daemon.http("GET", "/api/v1/events?before=x", &[], b"").status, 400);
}

#[test]
fn one_daemon_per_run_dir_and_clean_stop() {
    let mut daemon = Daemon::start();
    let port = berth_tests::free_port();
    let (code, stderr) = daemon.serve_once(&daemon.root(), &daemon.run_dir(), port);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("another berth daemon is already running on"), "{stderr}");
    assert!(stderr.contains(&format!("(pid {})", daemon.pid().unwrap())), "{stderr}");
    // Another run directory does not make a second daemon on the same store acceptable.
    let (code, stderr) = daemon.serve_once(&daemon.root(), &daemon.dir().join("run2"), port);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("another berth daemon is already using the root"), "{stderr}");
    assert!(!daemon.dir().join("run2/berth.sock").exists());
    // A TCP address in use is reported as such.
    let (code, stderr) =
        daemon.serve_once(&daemon.dir().join("root3"), &daemon.dir().join("run3"), daemon.port());
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains(&format!("listening on 127.0.0.1:{}", daemon.port())), "{stderr}");
    // The first daemon is unharmed.
    daemon.berth(&["images"]).ok();

    // SIGTERM: exit 0, socket removed.
    assert_eq!(daemon.stop(), Some(0));
    assert!(!daemon.socket().exists(), "the socket is removed on stop");
    let host = daemon.unix_host();
    berth_at(&host, &["images"], None).fails_with("Cannot connect to the berth daemon");

    // A socket left by a daemon that died is replaced.
    daemon.start_again();
    daemon.kill9();
    assert!(daemon.socket().exists());
    daemon.start_again();
    daemon.berth(&["images"]).ok();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(daemon.socket()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
}

#[test]
fn copy_snapshotter_is_selectable() {
    let daemon = Daemon::start_with_args(&["--snapshotter", "copy"]);
    assert!(daemon.berth(&["info"]).ok().stdout.contains("Storage Driver: copy\n"));
    let id = import_busybox(&daemon);
    assert_eq!(daemon.berth(&["images", "-q", "--no-trunc"]).ok().stdout, format!("{id}\n"));
    assert!(daemon.http("GET", "/api/v1/info", &[], b"").json()["layers_size"].as_u64().unwrap() > 100_000);
}
