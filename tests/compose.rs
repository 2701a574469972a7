//! `berth compose` against a real daemon: a stack comes up in dependency order, scales, has a
//! crashed replica restarted, changes only what the file changed, and goes down leaving nothing
//! behind; bad files and interpolation give Compose's errors. Stacks with networks run with the
//! daemon in a network namespace of the test's own.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use berth_tests::{berth_binary, repo_root, Daemon, Output};
use serde_json::Value;

/// A copy of the example stack `tests/compose/<name>` in a temporary directory (tests edit it).
fn example(name: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("berth-compose-").tempdir().expect("temp dir");
    let source = repo_root().join("tests/compose").join(name);
    for entry in std::fs::read_dir(&source).expect("example stack").flatten() {
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).expect("copying the example");
    }
    dir
}

fn compose(daemon: &Daemon, dir: &Path, args: &[&str]) -> Output {
    let file = dir.join("compose.yaml");
    let mut all = vec!["compose", "-f", file.to_str().unwrap()];
    all.extend_from_slice(args);
    daemon.berth(&all)
}

/// The stack's containers as the API lists them, by name.
fn containers(daemon: &Daemon, project: &str) -> Vec<Value> {
    let filter = format!("label=com.docker.compose.project={project}");
    let out = daemon.berth(&["ps", "-a", "--no-trunc", "--filter", &filter, "--format", "json"]).ok();
    let mut rows: Vec<Value> =
        out.lines().iter().map(|l| serde_json::from_str(l).expect("ps json")).collect();
    rows.sort_by_key(|r| r["Names"].as_str().unwrap_or_default().to_string());
    rows
}

fn inspect(daemon: &Daemon, name: &str) -> Value {
    let out = daemon.berth(&["inspect", name]).ok();
    let v: Value = serde_json::from_str(&out.stdout).expect("inspect json");
    v[0].clone()
}

fn names(rows: &[Value]) -> Vec<String> {
    rows.iter().map(|r| r["Names"].as_str().unwrap_or_default().to_string()).collect()
}

fn ids(daemon: &Daemon, project: &str) -> Vec<(String, String)> {
    containers(daemon, project)
        .iter()
        .map(|r| (r["Names"].as_str().unwrap().to_string(), r["ID"].as_str().unwrap().to_string()))
        .collect()
}

/// Polls `check` until it holds (or panics after `within`).
fn eventually(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What a stack may leave behind: interfaces in the daemon's namespace besides `lo` and the
/// default bridge, mounts under the daemon's directories, container cgroups, processes that
/// serve a container (monitors, port proxies) or that were the containers'.
fn leftovers(daemon: &Daemon, container_ids: &[String], pids: &[i32]) -> Vec<String> {
    let mut left = Vec::new();
    let net_dev = std::fs::read_to_string(format!("/proc/{}/net/dev", daemon.pid().unwrap())).unwrap();
    for line in net_dev.lines().skip(2) {
        let name = line.split(':').next().unwrap_or_default().trim();
        if name != "lo" && name != "berth0" {
            left.push(format!("interface {name}"));
        }
    }
    let dir = daemon.dir().display().to_string();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for line in mountinfo.lines().filter(|l| l.contains(&dir)) {
        left.push(format!("mount {line}"));
    }
    for cgroup in ["/sys/fs/cgroup", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified"]
    {
        for id in container_ids {
            let path = Path::new(cgroup).join("berth").join(id);
            if path.exists() {
                left.push(format!("cgroup {}", path.display()));
            }
        }
    }
    for pid in pids {
        if Path::new(&format!("/proc/{pid}")).exists() {
            left.push(format!("container process {pid}"));
        }
    }
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        if Some(pid) == daemon.pid() {
            continue;
        }
        let cmdline =
            String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default())
                .into_owned();
        // The daemon's own helpers (a monitor zygote) stay; what served a container must not.
        let of_a_container = cmdline.contains(&format!("{dir}/root/containers/"))
            || container_ids.iter().any(|id| cmdline.contains(id.as_str()));
        if of_a_container {
            left.push(format!("process {pid}: {}", cmdline.replace('\0', " ")));
        }
    }
    left
}

#[test]
fn a_stack_comes_up_scales_heals_updates_and_goes_down_clean() {
    let daemon = Daemon::start_in_netns();
    daemon.import_busybox("busybox:latest");
    let dir = example("web-client");

    // Up: the network, the server, then (once it is healthy) three clients.
    let up = compose(&daemon, dir.path(), &["up", "-d"]).ok();
    let lines = up.lines();
    let at = |needle: &str| {
        lines.iter().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("no {needle:?} in {lines:?}"))
    };
    assert!(at("Network webclient_default  Created") < at("Container webclient-web-1  Started"));
    assert!(at("Container webclient-web-1  Healthy") < at("Container webclient-client-1  Started"));
    for n in 1..=3 {
        at(&format!("Container webclient-client-{n}  Started"));
    }
    let rows = containers(&daemon, "webclient");
    assert_eq!(
        names(&rows),
        ["webclient-client-1", "webclient-client-2", "webclient-client-3", "webclient-web-1"]
    );
    let web = inspect(&daemon, "webclient-web-1");
    assert_eq!(web["config"]["labels"]["com.docker.compose.service"], "web");
    assert_eq!(web["config"]["resources"]["memory"], 64 << 20);
    assert_eq!(web["config"]["resources"]["pids_limit"], 64);

    // The clients reach the server by its service name; the page came from .env.
    eventually("the clients' fetches", Duration::from_secs(30), || {
        let logs = compose(&daemon, dir.path(), &["logs", "client"]).ok();
        ["client-1", "client-2", "client-3"]
            .iter()
            .all(|c| logs.stdout.lines().any(|l| l.starts_with(c) && l.ends_with("| hello-from-compose")))
    });

    // ps: the stack's containers with their services.
    let ps = compose(&daemon, dir.path(), &["ps"]).ok();
    assert!(ps.stdout.starts_with("NAME"), "{}", ps.stdout);
    assert!(ps.stdout.contains("SERVICE"));
    assert_eq!(ps.lines().len(), 5, "{}", ps.stdout);
    assert!(ps.lines().iter().any(|l| l.starts_with("webclient-web-1") && l.contains(" web ")));
    let ls = daemon.berth(&["compose", "ls"]).ok();
    assert!(ls.stdout.contains("webclient") && ls.stdout.contains("running(4)"), "{}", ls.stdout);

    // Up again: nothing changes.
    let before = ids(&daemon, "webclient");
    let again = compose(&daemon, dir.path(), &["up", "-d"]).ok();
    assert!(!again.stdout.contains("Created") && !again.stdout.contains("Recreate"), "{}", again.stdout);
    assert_eq!(again.stdout.matches("  Running").count(), 4, "{}", again.stdout);
    assert_eq!(ids(&daemon, "webclient"), before);

    // Scale up and down.
    let scaled = compose(&daemon, dir.path(), &["up", "-d", "--scale", "client=4"]).ok();
    assert!(scaled.stdout.contains("Container webclient-client-4  Started"), "{}", scaled.stdout);
    assert_eq!(containers(&daemon, "webclient").len(), 5);
    let down_to_two = compose(&daemon, dir.path(), &["scale", "client=2"]).ok();
    assert!(down_to_two.stdout.contains("Container webclient-client-4  Removed"), "{}", down_to_two.stdout);
    assert!(down_to_two.stdout.contains("Container webclient-client-3  Removed"), "{}", down_to_two.stdout);
    assert_eq!(
        names(&containers(&daemon, "webclient")),
        ["webclient-client-1", "webclient-client-2", "webclient-web-1"]
    );
    compose(&daemon, dir.path(), &["up", "-d"]).ok();
    assert_eq!(containers(&daemon, "webclient").len(), 4);

    // A crashed replica comes back through its restart policy (restart: always).
    let client1 = inspect(&daemon, "webclient-client-1");
    let pid = client1["state"]["pid"].as_i64().unwrap() as i32;
    assert!(pid > 0);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    eventually("the crashed replica's restart", Duration::from_secs(30), || {
        let state = &inspect(&daemon, "webclient-client-1")["state"];
        state["status"] == "running" && state["pid"].as_i64() != Some(pid as i64)
    });
    assert!(inspect(&daemon, "webclient-client-1")["restart_count"].as_u64().unwrap() >= 1);

    // A changed service is recreated alone.
    let before = ids(&daemon, "webclient");
    let file = dir.path().join("compose.yaml");
    let text = std::fs::read_to_string(&file).unwrap().replace("ROLE: ${ROLE-client}", "ROLE: changed");
    std::fs::write(&file, text).unwrap();
    let changed = compose(&daemon, dir.path(), &["up", "-d"]).ok();
    assert!(changed.stdout.contains("Container webclient-web-1  Running"), "{}", changed.stdout);
    for n in 1..=3 {
        assert!(
            changed.stdout.contains(&format!("Container webclient-client-{n}  Recreated")),
            "{}",
            changed.stdout
        );
    }
    let after = ids(&daemon, "webclient");
    assert_eq!(
        after.iter().find(|(n, _)| n == "webclient-web-1"),
        before.iter().find(|(n, _)| n == "webclient-web-1")
    );
    for (name, id) in after.iter().filter(|(n, _)| n.starts_with("webclient-client")) {
        assert!(!before.contains(&(name.clone(), id.clone())), "{name} was not recreated");
    }
    assert!(inspect(&daemon, "webclient-client-2")["config"]["env"]
        .as_array()
        .unwrap()
        .contains(&Value::from("ROLE=changed")));

    // Down: nothing is left.
    let rows = containers(&daemon, "webclient");
    let container_ids: Vec<String> = rows.iter().map(|r| r["ID"].as_str().unwrap().to_string()).collect();
    let pids: Vec<i32> = rows
        .iter()
        .map(|r| inspect(&daemon, r["Names"].as_str().unwrap())["state"]["pid"].as_i64().unwrap() as i32)
        .collect();
    let down = compose(&daemon, dir.path(), &["down", "-t", "1"]).ok();
    assert!(down.stdout.contains("Container webclient-web-1  Removed"), "{}", down.stdout);
    assert!(down.stdout.contains("Network webclient_default  Removed"), "{}", down.stdout);
    assert!(containers(&daemon, "webclient").is_empty());
    assert!(!daemon.berth(&["network", "ls"]).ok().stdout.contains("webclient_default"));
    let left = leftovers(&daemon, &container_ids, &pids);
    assert!(left.is_empty(), "left behind: {left:#?}");
    let ls = daemon.berth(&["compose", "ls", "-a"]).ok();
    assert!(!ls.stdout.contains("webclient"), "{}", ls.stdout);
}

#[test]
fn a_job_must_complete_before_its_dependents_and_down_v_removes_volumes() {
    let daemon = Daemon::with_busybox();
    let dir = example("oneshot");
    let project = dir.path().file_name().unwrap().to_string_lossy().to_lowercase().replace('.', "");

    let up = compose(&daemon, dir.path(), &["up", "-d"]).ok();
    assert!(up.stdout.contains(&format!("Volume {project}_data  Created")), "{}", up.stdout);
    assert!(up.stdout.contains(&format!("Container {project}-setup-1  Exited")), "{}", up.stdout);
    assert!(up.stdout.contains(&format!("Container {project}-app-1  Started")), "{}", up.stdout);
    eventually("the app's output", Duration::from_secs(10), || {
        compose(&daemon, dir.path(), &["logs", "app"]).ok().stdout.contains("| ready")
    });
    let volumes = daemon.berth(&["volume", "ls", "-q"]).ok();
    assert!(volumes.stdout.contains(&format!("{project}_data")));

    // stop / start / restart by service.
    let stop = compose(&daemon, dir.path(), &["stop", "app"]).ok();
    assert!(stop.stdout.contains(&format!("Container {project}-app-1  Stopped")), "{}", stop.stdout);
    assert!(compose(&daemon, dir.path(), &["ps"]).ok().lines().len() == 1);
    compose(&daemon, dir.path(), &["start", "app"]).ok();
    assert_eq!(compose(&daemon, dir.path(), &["ps", "-q"]).ok().lines().len(), 1);
    compose(&daemon, dir.path(), &["restart", "-t", "1"]).ok();

    // Down keeps named volumes unless -v.
    compose(&daemon, dir.path(), &["down"]).ok();
    assert!(daemon.berth(&["volume", "ls", "-q"]).ok().stdout.contains(&format!("{project}_data")));
    compose(&daemon, dir.path(), &["up", "-d"]).ok();
    let down = compose(&daemon, dir.path(), &["down", "-v"]).ok();
    assert!(down.stdout.contains(&format!("Volume {project}_data  Removed")), "{}", down.stdout);
    assert!(!daemon.berth(&["volume", "ls", "-q"]).ok().stdout.contains(&format!("{project}_data")));

    // A job that fails stops the dependents from starting, with Compose's message.
    std::fs::write(dir.path().join("failing.env"), "SETUP_EXIT=3\n").unwrap();
    let file = dir.path().join("compose.yaml");
    let env_file = dir.path().join("failing.env");
    let failed = daemon.berth(&[
        "compose",
        "-f",
        file.to_str().unwrap(),
        "--env-file",
        env_file.to_str().unwrap(),
        "up",
        "-d",
    ]);
    failed.fails_with("service \"setup\" didn't complete successfully: exit 3");
    let rows = containers(&daemon, &project);
    assert_eq!(names(&rows), [format!("{project}-setup-1")], "the app was not created");
    compose(&daemon, dir.path(), &["down", "-v"]).ok();
    assert!(containers(&daemon, &project).is_empty());
}

/// Runs `berth compose` in `dir` with the extra environment, against no daemon (for what is
/// checked before anything is sent).
fn offline(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(berth_binary());
    cmd.current_dir(dir).args(["-H", "unix:///nonexistent/berth.sock", "compose"]).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("running berth");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn config_interpolates_and_bad_files_are_refused_with_composes_words() {
    let dir = example("web-client");
    // .env, then the environment over it.
    let config = offline(dir.path(), &[], &["config"]).ok();
    assert!(config.stdout.contains("name: webclient"), "{}", config.stdout);
    assert!(config.stdout.contains("hello-from-compose"), "{}", config.stdout);
    assert!(config.stdout.contains("ROLE: client"), "{}", config.stdout);
    let config = offline(dir.path(), &[("GREETING", "from-shell"), ("ROLE", "")], &["config"]).ok();
    assert!(config.stdout.contains("from-shell") && !config.stdout.contains("hello-from-compose"));
    assert!(config.stdout.contains("ROLE: ''"), "{}", config.stdout);
    let services = offline(dir.path(), &[], &["config", "--services"]).ok();
    assert_eq!(services.lines(), ["web", "client"]);
    // -p wins over `name:`; a bad name is refused.
    offline(dir.path(), &[], &["-p", "other", "config"]).ok().stdout.contains("name: other");
    offline(dir.path(), &[], &["-p", "Bad Name", "config"]).fails_with("invalid project name \"Bad Name\"");

    // A required variable.
    std::fs::write(dir.path().join(".env"), "# no greeting\n").unwrap();
    offline(dir.path(), &[], &["config"])
        .fails_with("required variable GREETING is missing a value: set GREETING in .env");

    // No file at all.
    let empty = tempfile::tempdir().unwrap();
    offline(empty.path(), &[], &["up", "-d"]).fails_with("no configuration file provided: not found");
    offline(empty.path(), &[], &["-f", "nope.yaml", "config"])
        .fails_with("nope.yaml: no such file or directory");

    let cases: &[(&str, &str)] = &[
        ("services:\n  web:\n    image: busybox\n    depends_on: [db]\n", "service \"web\" depends on undefined service \"db\": invalid compose project"),
        ("services:\n  web:\n    image: \"busybox:${TAG\"\n", "Invalid template: \"busybox:${TAG\""),
        ("services:\n  web:\n    image: busybox\n    volumes: [\"data:/data\"]\n", "service \"web\" refers to undefined volume data: invalid compose project"),
        ("services:\n  web:\n    image: busybox\n    ports: [\"eighty\"]\n", "invalid port \"eighty\""),
        ("services:\n  web: {image: busybox, depends_on: [api]}\n  api: {image: busybox, depends_on: [web]}\n", "dependency cycle detected"),
        ("services: {web: {image: busybox, bogus: 1}}\n", "services.web Additional property bogus is not allowed"),
        ("services: [\n", "yaml: "),
    ];
    for (text, want) in cases {
        std::fs::write(empty.path().join("compose.yaml"), text).unwrap();
        offline(empty.path(), &[], &["config"]).fails_with(want);
    }
}

#[test]
fn the_api_refuses_bad_stacks_before_streaming() {
    let daemon = Daemon::with_busybox();
    let body = |file: &str| {
        serde_json::json!({"compose_file": file, "working_dir": "/tmp", "environment": {}}).to_string()
    };
    let auth = format!("Bearer {}", berth_tests::ADMIN_TOKEN);
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    let bad = daemon.http(
        "POST",
        "/api/v1/stacks/demo/up",
        &headers,
        body("services: {web: {image: busybox, depends_on: [db]}}").as_bytes(),
    );
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert!(bad.text().contains("depends on undefined service"));
    let bad_name = daemon.http("POST", "/api/v1/stacks/Demo/up", &headers, body("services: {}").as_bytes());
    assert_eq!(bad_name.status, 400);
    let missing = daemon.http("GET", "/api/v1/stacks/nothing", &headers, b"");
    assert_eq!(missing.status, 404, "{}", missing.text());
    let missing = daemon.http("POST", "/api/v1/stacks/nothing/stop", &headers, b"");
    assert_eq!(missing.status, 404, "{}", missing.text());

    // A good one streams its progress as JSON lines and shows up in the list.
    let file =
        "services:\n  sleeper:\n    image: busybox\n    network_mode: none\n    command: [sleep, '300']\n";
    let up = daemon.http("POST", "/api/v1/stacks/demo/up", &headers, body(file).as_bytes());
    assert_eq!(up.status, 200, "{}", up.text());
    let lines: Vec<Value> = up.text().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.last().unwrap()["action"], "Done", "{lines:?}");
    assert!(lines.iter().any(|l| l["name"] == "demo-sleeper-1" && l["action"] == "Started"));
    let list = daemon.http("GET", "/api/v1/stacks", &headers, b"").json();
    assert_eq!(list[0]["name"], "demo");
    assert_eq!(list[0]["containers"], 1);
    let stack = daemon.http("GET", "/api/v1/stacks/demo", &headers, b"").json();
    assert_eq!(stack["services"][0]["name"], "sleeper");
    assert_eq!(stack["services"][0]["replicas"], 1);
    assert_eq!(stack["services"][0]["containers"].as_array().unwrap().len(), 1);
    let down = daemon.http("POST", "/api/v1/stacks/demo/down", &headers, br#"{"timeout": 1}"#);
    assert!(down.text().contains("\"Done\""), "{}", down.text());
    assert!(daemon.http("GET", "/api/v1/stacks", &headers, b"").json().as_array().unwrap().is_empty());
}

#[test]
fn up_without_detach_follows_the_logs_and_ctrl_c_stops_the_stack() {
    use std::io::BufRead;
    let daemon = Daemon::with_busybox();
    let dir = example("oneshot");
    let file = dir.path().join("compose.yaml");
    let mut child = Command::new(berth_binary())
        .args(["compose", "-f", file.to_str().unwrap(), "up"])
        .env("BERTH_HOST", daemon.unix_host())
        .env("BERTH_TOKEN", berth_tests::ADMIN_TOKEN)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawning berth compose up");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The progress, then the services' output with Compose's prefixes.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.starts_with("app-1") && l.ends_with("| ready")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no log line from app within 60 s: {seen:#?}");
            }
        }
    }
    assert!(seen.iter().any(|l| l.ends_with("app-1  Started")), "{seen:#?}");
    assert!(seen.iter().any(|l| l == "Attaching to app-1"), "{seen:#?}");

    // exec into the running service.
    let exec = compose(&daemon, dir.path(), &["exec", "-T", "app", "cat", "/data/flag"]).ok();
    assert_eq!(exec.stdout.trim(), "ready");
    compose(&daemon, dir.path(), &["exec", "-T", "nope", "true"])
        .fails_with("service \"nope\" is not running");

    // Ctrl-C stops the stack (without removing it) and ends `up`.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::SIGINT).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("compose up did not end after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("Gracefully stopping..."), "{stderr}");
    assert!(compose(&daemon, dir.path(), &["ps", "-q"]).ok().stdout.trim().is_empty());
    assert_eq!(compose(&daemon, dir.path(), &["ps", "-a", "-q"]).ok().lines().len(), 2);
    compose(&daemon, dir.path(), &["down", "-v"]).ok();
}

#[test]
fn a_service_is_built_from_its_context() {
    let daemon = Daemon::with_busybox();
    let dir = example("build");
    let project = dir.path().file_name().unwrap().to_string_lossy().to_lowercase().replace('.', "");
    let up = compose(&daemon, dir.path(), &["up", "-d"]).ok();
    assert!(up.stdout.contains(&format!("Image {project}-app  Built")), "{}", up.stdout);
    eventually("the built file's content", Duration::from_secs(20), || {
        compose(&daemon, dir.path(), &["logs", "app"]).ok().stdout.contains("| built-by-compose")
    });
    // Present now: `up` again does not build; `build` does, through the build command.
    let again = compose(&daemon, dir.path(), &["up", "-d"]).ok();
    assert!(!again.stdout.contains("Building"), "{}", again.stdout);
    compose(&daemon, dir.path(), &["build"]).ok();
    assert!(daemon.berth(&["images"]).ok().stdout.contains(&format!("{project}-app")));
    // A rebuilt image recreates the service's container on the next up.
    let file = dir.path().join("compose.yaml");
    std::fs::write(&file, std::fs::read_to_string(&file).unwrap().replace("built-by-compose", "rebuilt"))
        .unwrap();
    compose(&daemon, dir.path(), &["build", "app"]).ok();
    let again = compose(&daemon, dir.path(), &["up", "-d"]).ok();
    assert!(again.stdout.contains(&format!("Container {project}-app-1  Recreated")), "{}", again.stdout);
    eventually("the rebuilt file's content", Duration::from_secs(20), || {
        compose(&daemon, dir.path(), &["logs", "app"]).ok().stdout.contains("| rebuilt")
    });

    // A service removed from the file leaves an orphan: a warning, then --remove-orphans.
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("services:\n  app:", "services:\n  other:")).unwrap();
    let orphaned = compose(&daemon, dir.path(), &["up", "-d"]).ok();
    assert!(
        orphaned.stderr.contains(&format!("Found orphan containers ([{project}-app-1]) for this project")),
        "{}",
        orphaned.stderr
    );
    let cleaned = compose(&daemon, dir.path(), &["up", "-d", "--remove-orphans"]).ok();
    assert!(cleaned.stdout.contains(&format!("Container {project}-app-1  Removed")), "{}", cleaned.stdout);
    assert_eq!(names(&containers(&daemon, &project)), [format!("{project}-other-1")]);
    compose(&daemon, dir.path(), &["down"]).ok();
    assert!(containers(&daemon, &project).is_empty());
}

#[test]
fn an_unhealthy_or_uncheckable_dependency_stops_up() {
    let daemon = Daemon::with_busybox();
    let dir = tempfile::Builder::new().prefix("berth-compose-").tempdir().unwrap();
    let file = |check: &str| {
        format!(
            "name: sick\nservices:\n  db:\n    image: busybox\n    network_mode: none\n    command: [sleep, '300']\n    \
             stop_grace_period: 1s\n{check}  app:\n    image: busybox\n    network_mode: none\n    command: [sleep, '300']\n    \
             depends_on:\n      db: {{condition: service_healthy}}\n"
        )
    };
    let failing = "    healthcheck: {test: [CMD, 'false'], interval: 500ms, retries: 2}\n";
    std::fs::write(dir.path().join("compose.yaml"), file(failing)).unwrap();
    compose(&daemon, dir.path(), &["up", "-d"])
        .fails_with("dependency failed to start: container sick-db-1 is unhealthy");
    assert_eq!(names(&containers(&daemon, "sick")), ["sick-db-1"], "app must not be created");

    std::fs::write(dir.path().join("compose.yaml"), file("")).unwrap();
    compose(&daemon, dir.path(), &["up", "-d"])
        .fails_with("dependency failed to start: container sick-db-1 has no healthcheck configured");
    compose(&daemon, dir.path(), &["down", "-t", "1"]).ok();
    assert!(containers(&daemon, "sick").is_empty());
}

#[test]
fn services_on_several_networks_reach_what_they_share_and_nothing_else() {
    let daemon = Daemon::start_in_netns();
    daemon.import_busybox("busybox:latest");
    let dir = example("networks");
    let up = compose(&daemon, dir.path(), &["up", "-d"]).ok();
    for network in ["tiers_front", "tiers_back"] {
        assert!(up.stdout.contains(&format!("Network {network}  Created")), "{}", up.stdout);
    }
    let fetch = |from: &str, url: &str| {
        let script = format!("timeout 5 wget -q -O - {url}");
        compose(&daemon, dir.path(), &["exec", "-T", from, "sh", "-c", &script])
    };
    // The servers may still be starting.
    eventually("web → api by its alias", Duration::from_secs(20), || {
        fetch("web", "http://backend-api/").stdout.contains("api-page")
    });
    assert!(fetch("web", "http://api/").ok().stdout.contains("api-page"));
    // api's second network, connected after create. (By address: the embedded DNS answers on
    // the first network's gateway with that network's names only, for now.)
    let db = inspect(&daemon, "tiers-db-1");
    let db_ip =
        db["network_settings"]["networks"]["tiers_back"]["ipv4_address"].as_str().unwrap().to_string();
    let db_ip = db_ip.split('/').next().unwrap().to_string();
    eventually("api → db on back", Duration::from_secs(20), || {
        fetch("api", &format!("http://{db_ip}/")).stdout.contains("db-page")
    });
    // web and db share no network: no name, no route.
    let isolated = fetch("web", "http://db/");
    assert_ne!(isolated.code, 0, "web reached db: {}", isolated.stdout);
    let isolated = fetch("web", &format!("http://{db_ip}/"));
    assert_ne!(isolated.code, 0, "web reached db: {}", isolated.stdout);
    let networks: Vec<String> = daemon
        .berth(&["network", "ls", "--format", "{{.Name}}"])
        .ok()
        .lines()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert!(networks.contains(&"tiers_front".to_string()) && networks.contains(&"tiers_back".to_string()));

    let down = compose(&daemon, dir.path(), &["down"]).ok();
    assert!(down.stdout.contains("Network tiers_back  Removed"), "{}", down.stdout);
    let after = daemon.berth(&["network", "ls"]).ok().stdout;
    assert!(!after.contains("tiers_"), "{after}");
}

#[test]
fn missing_images_are_pulled_by_up_and_by_pull() {
    let registry = berth_tests::registry::Registry::start();
    let daemon = Daemon::with_busybox();
    let image = format!("{}/berth/busybox:1", registry.host());
    daemon.berth(&["tag", "busybox", &image]).ok();
    daemon.berth(&["push", &image]).ok();
    daemon.berth(&["rmi", &image]).ok();
    let dir = tempfile::Builder::new().prefix("berth-compose-").tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), format!("IMAGE={image}\n")).unwrap();
    let text = "name: pulled\nservices:\n  app:\n    image: ${IMAGE}\n    network_mode: none\n    command: [sleep, '300']\n    stop_grace_period: 1s\n";
    std::fs::write(dir.path().join("compose.yaml"), text).unwrap();

    let pull = compose(&daemon, dir.path(), &["pull"]).ok();
    assert!(pull.stdout.contains(&format!("Image {image}  Pulled")), "{}", pull.stdout);
    assert!(daemon.berth(&["images"]).ok().stdout.contains(&format!("{}/berth/busybox", registry.host())));
    daemon.berth(&["rmi", &image]).ok();

    let up = compose(&daemon, dir.path(), &["up", "-d"]).ok();
    let pulling = up.stdout.find(&format!("Image {image}  Pulling")).expect("pulling");
    let pulled = up.stdout.find(&format!("Image {image}  Pulled")).expect("pulled");
    let started = up.stdout.find("Container pulled-app-1  Started").expect("started");
    assert!(pulling < pulled && pulled < started, "{}", up.stdout);
    compose(&daemon, dir.path(), &["down"]).ok();

    // An image that is nowhere: the pull's error.
    std::fs::write(dir.path().join(".env"), format!("IMAGE={}/berth/nothing:1\n", registry.host())).unwrap();
    let failed = compose(&daemon, dir.path(), &["up", "-d"]);
    assert_ne!(failed.code, 0);
    assert!(failed.stderr.contains("nothing"), "{}", failed.stderr);
    assert!(containers(&daemon, "pulled").is_empty());
}

#[test]
fn teams_see_and_manage_only_their_own_stacks() {
    use berth_tests::api::wait_for;
    let daemon = Daemon::with_busybox();
    let alice = daemon.user_with_token("alice", "operator", Some("red"));
    let bob = daemon.user_with_token("bob", "operator", Some("blue"));
    let carol = daemon.user_with_token("carol", "viewer", Some("red"));
    let file = "services:\n  app:\n    image: busybox\n    network_mode: none\n    command: [sh, -c, 'echo hi-from-red; exec sleep 300']\n    stop_grace_period: 1s\n";
    let body = serde_json::json!({"compose_file": file, "working_dir": "/tmp"});

    let up = daemon.call(Some(&alice), "POST", "/api/v1/stacks/redapp/up", Some(body.clone()));
    assert_eq!(up.status, 200, "{}", up.text());
    assert!(up.text().trim_end().ends_with(r#""action":"Done","message":""}"#), "{}", up.text());
    // The containers it made are alice's team's.
    assert_eq!(daemon.call(Some(&alice), "GET", "/api/v1/containers/redapp-app-1", None).status, 200);
    assert_eq!(daemon.call(Some(&bob), "GET", "/api/v1/containers/redapp-app-1", None).status, 404);
    let listed = daemon.call(Some(&alice), "GET", "/api/v1/stacks", None).json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(daemon.call(Some(&carol), "GET", "/api/v1/stacks/redapp", None).status, 200);

    // Another team sees nothing and can do nothing.
    assert_eq!(daemon.call(Some(&bob), "GET", "/api/v1/stacks", None).json(), serde_json::json!([]));
    for (method, path) in [
        ("GET", "/api/v1/stacks/redapp"),
        ("POST", "/api/v1/stacks/redapp/stop"),
        ("POST", "/api/v1/stacks/redapp/restart"),
    ] {
        let refused = daemon.call(Some(&bob), method, path, None);
        assert_eq!(refused.status, 404, "{method} {path}: {}", refused.text());
        assert!(refused.text().contains("no such stack: redapp"), "{}", refused.text());
    }
    let refused = daemon.call(Some(&bob), "POST", "/api/v1/stacks/redapp/down", Some(serde_json::json!({})));
    assert_eq!(refused.status, 404);
    let refused = daemon.call(Some(&bob), "POST", "/api/v1/stacks/redapp/up", Some(body.clone()));
    assert_eq!(refused.status, 404);
    // A viewer reads but does not run.
    assert_eq!(daemon.call(Some(&carol), "POST", "/api/v1/stacks/redapp/stop", None).status, 403);

    // The aggregated logs over the WebSocket, each line with its container.
    let mut socket = daemon.ws_as(&alice, "/api/v1/ws/stacks/redapp/logs?tail=all&follow=1");
    let logs = wait_for(&mut socket, Duration::from_secs(20), |m| m["type"] == "logs");
    assert_eq!(logs["entries"][0]["container"], "redapp-app-1");
    assert_eq!(logs["entries"][0]["service"], "app");
    assert_eq!(logs["entries"][0]["line"], "hi-from-red\n");
    drop(socket);
    assert!(daemon
        .ws("/api/v1/ws/stacks/redapp/logs", &[("Authorization", &format!("Bearer {bob}"))])
        .is_err());

    let down = daemon.call(
        Some(&alice),
        "POST",
        "/api/v1/stacks/redapp/down",
        Some(serde_json::json!({"timeout": 1})),
    );
    assert!(down.text().contains("\"Done\""), "{}", down.text());
    assert_eq!(daemon.call(Some(&alice), "GET", "/api/v1/stacks", None).json(), serde_json::json!([]));
}
