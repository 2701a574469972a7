//! The dashboard in a real browser: Debian's chromium driven by playwright-core (npm) through
//! tests/browser/dashboard.mjs, against a `berth serve` this test starts on a temporary root.
//! The networking pages run against a daemon in a network namespace of its own, with node and
//! chromium started inside it (published ports and bridges never touch the host's network).
//! Screenshots of every main page, and the containers page figure, go to
//! target/browser-artifacts/.
//!
//! Needs what `scripts/setup.sh --test` installs (chromium, node, `npm ci`) and the dashboard
//! built into dist/ (`trunk build --release --offline`; scripts/test.sh does it first).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_tests::registry::Registry;
use berth_tests::{big_rootfs_tar, busybox_rootfs, Daemon, ADMIN_PASSWORD};

const CHROMIUM: &str = "/usr/bin/chromium";
const VIEWER: (&str, &str) = ("viewer1", "viewer-password-1");
/// The password of the team test's users.
const TEAM_PASSWORD: &str = "team-password-1";
/// Containers on the page whose load time is measured.
const PERF_CONTAINERS: usize = 200;

/// The checkout this test was built from (the dashboard, the script and node_modules are there).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

fn artifacts() -> PathBuf {
    repo_root().join("target/browser-artifacts")
}

/// Runs the browser script for `phase`; its output is printed, and a failure fails the test
/// with it. Killed (by its PID) after `limit`.
fn run_script(daemon: &Daemon, phase: &str, env: &[(&str, String)], limit: Duration) -> String {
    let root = repo_root();
    let mut child = Command::new("node")
        .arg(root.join("tests/browser/dashboard.mjs"))
        .arg(phase)
        .current_dir(&root)
        .env("BERTH_URL", format!("http://127.0.0.1:{}", daemon.port()))
        .env("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("BERTH_VIEWER_USER", VIEWER.0)
        .env("BERTH_VIEWER_PASSWORD", VIEWER.1)
        .env("ARTIFACTS", artifacts())
        .env("CHROMIUM", CHROMIUM)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running node (scripts/setup.sh installs it)");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for node") {
            break Some(status);
        }
        if started.elapsed() > limit {
            // The script's chromium is its child and dies with it (its pipe closes).
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let output = child.wait_with_output().expect("reading the script's output");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    println!("--- dashboard.mjs {phase} ---\n{stdout}{stderr}");
    match status {
        Some(s) if s.success() => stdout,
        Some(s) => panic!(
            "the browser test ({phase}) failed ({s}); screenshots in {}\n{stdout}{stderr}\ndaemon log:\n{}",
            artifacts().display(),
            tail(&daemon.log(), 60)
        ),
        None => panic!("the browser test ({phase}) took longer than {limit:?}\n{stdout}{stderr}"),
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn require(path: &Path, what: &str) {
    assert!(path.exists(), "{} is missing: {what}", path.display());
}

#[test]
fn dashboard_in_chromium() {
    let root = repo_root();
    require(Path::new(CHROMIUM), "run scripts/setup.sh --test (Debian package chromium)");
    require(&root.join("node_modules/playwright-core"), "run npm ci (scripts/setup.sh does)");
    require(&root.join("node_modules/@xterm/xterm/lib/xterm.js"), "run npm ci (scripts/setup.sh does)");
    require(&root.join("dist/index.html"), "build the dashboard first: trunk build --release --offline");
    std::fs::create_dir_all(artifacts()).expect("artifacts directory");

    let daemon = Daemon::start();
    let rootfs = busybox_rootfs(daemon.dir());
    daemon.berth(&["import", "-c", "CMD [\"sh\"]", rootfs.to_str().unwrap(), "busybox:latest"]).ok();
    let viewer = format!(r#"{{"name":"{}","role":"viewer","password":"{}"}}"#, VIEWER.0, VIEWER.1);
    let response =
        daemon.http("POST", "/api/v1/users", &[("Content-Type", "application/json")], viewer.as_bytes());
    assert_eq!(response.status, 201, "creating the viewer: {}", response.text());

    // An image in a local registry whose layer the daemon does not have, for the pull with
    // progress: imported, pushed, then removed here.
    let registry = Registry::start();
    let big = daemon.dir().join("big.tar");
    std::fs::write(&big, big_rootfs_tar(8 << 20)).unwrap();
    let reference = format!("{}/browser/big:1", registry.host());
    daemon.berth(&["import", "-c", "CMD [\"sh\"]", big.to_str().unwrap(), &reference]).ok();
    daemon.berth(&["push", &reference]).ok();
    daemon.berth(&["rmi", &reference]).ok();

    let out = run_script(&daemon, "main", &[("BERTH_PULL_REFERENCE", reference)], Duration::from_secs(300));
    for needle in [
        "logs stream live",
        "terminal: echo hello printed hello",
        "ended the terminal session with a message",
        "pulled with a progress bar per layer",
        "a viewer cannot see the run button",
    ] {
        assert!(out.contains(needle), "the script did not get to {needle:?}");
    }
    for shot in [
        "overview",
        "container-logs",
        "container-terminal",
        "images",
        "history",
        "admin",
        "containers-viewer",
    ] {
        require(&artifacts().join(format!("{shot}.png")), "the script should have saved it");
    }

    // The containers page with 200 containers: created (not started) through the API.
    for i in 0..PERF_CONTAINERS {
        let body = format!(r#"{{"image":"busybox","name":"perf-{i:03}","cmd":["true"]}}"#);
        let response = daemon.http(
            "POST",
            "/api/v1/containers",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        );
        assert_eq!(response.status, 201, "creating perf-{i:03}: {}", response.text());
    }
    let out = run_script(
        &daemon,
        "perf",
        &[("BERTH_PERF_CONTAINERS", PERF_CONTAINERS.to_string())],
        Duration::from_secs(180),
    );
    let figure = out.lines().find(|l| l.starts_with("figure:")).expect("the perf phase prints its figure");
    println!("{figure}");
    assert!(out.contains("bulk remove of 200 selected containers"), "the bulk remove did not finish");
    // What the bulk remove in the browser did, as the API sees it.
    let left = daemon.http("GET", "/api/v1/containers?all=1", &[], b"").json();
    assert_eq!(left.as_array().map(Vec::len), Some(0), "containers left after the bulk remove: {left}");
}

/// Volumes, networks, a container with a published port, a volume, a network and a health check
/// run from the form, and a compose stack, against a daemon with networking in its own network
/// namespace (the browser runs there too).
#[test]
fn dashboard_networks_volumes_stacks_in_chromium() {
    let root = repo_root();
    require(Path::new(CHROMIUM), "run scripts/setup.sh --test (Debian package chromium)");
    require(&root.join("node_modules/playwright-core"), "run npm ci (scripts/setup.sh does)");
    require(&root.join("dist/index.html"), "build the dashboard first: trunk build --release --offline");
    std::fs::create_dir_all(artifacts()).expect("artifacts directory");

    let daemon = Daemon::start_in_netns();
    daemon.import_busybox("busybox:latest");
    let viewer = format!(r#"{{"name":"{}","role":"viewer","password":"{}"}}"#, VIEWER.0, VIEWER.1);
    let response = daemon.in_netns(|| {
        daemon.http("POST", "/api/v1/users", &[("Content-Type", "application/json")], viewer.as_bytes())
    });
    assert_eq!(response.status, 201, "creating the viewer: {}", response.text());

    // The node figures the overview shows, from the REST route (a viewer may read them); a
    // parameter the route does not take is refused.
    let viewer_login = format!(r#"{{"username":"{}","password":"{}"}}"#, VIEWER.0, VIEWER.1);
    let (node, bad, as_viewer) = daemon.in_netns(|| {
        let login = daemon.http(
            "POST",
            "/api/v1/auth/login",
            &[("Content-Type", "application/json"), ("Authorization", "none")],
            viewer_login.as_bytes(),
        );
        assert_eq!(login.status, 200, "viewer login: {}", login.text());
        let cookie = login
            .header("set-cookie")
            .and_then(|c| c.split(';').next().map(str::to_owned))
            .expect("a session cookie");
        (
            daemon.http("GET", "/api/v1/node", &[], b"").json(),
            daemon.http("GET", "/api/v1/node?interval=1", &[], b""),
            daemon.http("GET", "/api/v1/node", &[("Authorization", "none"), ("Cookie", &cookie)], b"").status,
        )
    });
    assert!(node["cpus"].as_u64().is_some_and(|n| n >= 1), "node: {node}");
    assert!(node["memory_total"].as_u64().is_some_and(|n| n > 0), "node: {node}");
    assert!(node["disk_total"].as_u64().is_some_and(|n| n > 0), "node: {node}");
    let cpu = node["cpu_percent"].as_f64().expect("cpu_percent");
    assert!((0.0..=100.0).contains(&cpu), "node: {node}");
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert_eq!(as_viewer, 200, "a viewer reads the node's figures");

    // An operator in two teams and a viewer in each, for the run form's team choice: what op1
    // runs for the team it picks is that team's, and the other team's viewer does not see it.
    daemon.in_netns(|| {
        let json = [("Content-Type", "application/json")];
        for (method, path, body) in [
            ("POST", "/api/v1/teams", r#"{"name":"red"}"#.to_owned()),
            ("POST", "/api/v1/teams", r#"{"name":"blue"}"#.to_owned()),
            (
                "POST",
                "/api/v1/users",
                format!(r#"{{"name":"op1","role":"operator","password":"{TEAM_PASSWORD}"}}"#),
            ),
            (
                "POST",
                "/api/v1/users",
                format!(r#"{{"name":"bluev","role":"viewer","password":"{TEAM_PASSWORD}"}}"#),
            ),
            (
                "POST",
                "/api/v1/users",
                format!(r#"{{"name":"redv","role":"viewer","password":"{TEAM_PASSWORD}"}}"#),
            ),
            ("PUT", "/api/v1/teams/red/members/op1", String::new()),
            ("PUT", "/api/v1/teams/blue/members/op1", String::new()),
            ("PUT", "/api/v1/teams/blue/members/bluev", String::new()),
            ("PUT", "/api/v1/teams/red/members/redv", String::new()),
        ] {
            let response = daemon.http(method, path, &json, body.as_bytes());
            assert!(response.status < 300, "{method} {path}: {} {}", response.status, response.text());
        }
    });

    let env = [("BERTH_TEAM_USER", "op1".to_owned()), ("BERTH_TEAM_PASSWORD", TEAM_PASSWORD.to_owned())];
    let out = daemon.in_netns(|| run_script(&daemon, "network", &env, Duration::from_secs(420)));
    for needle in [
        "overview shows node CPU, memory and disk",
        "created volume webdata",
        "created network backend with subnet",
        "refuses a bad port, a relative mount path and a bad interval",
        "answered through the published port",
        "container page: port, volume mount, network address and healthy status",
        "a port in use: the daemon's refusal is shown under the ports",
        "containers list: ports column and health badge",
        "stack logs from both services arrive live",
        "stack down removed it",
        "a viewer sees networks, volumes, stacks and node load but no mutating buttons",
        "an operator of two teams ran team-pick for the team picked",
    ] {
        assert!(out.contains(needle), "the script did not get to {needle:?}");
    }
    for shot in [
        "overview-node",
        "networks",
        "network-detail",
        "volumes",
        "volume-detail",
        "container-details",
        "containers-ports",
        "stacks",
        "stack-detail",
        "networks-viewer",
    ] {
        require(&artifacts().join(format!("{shot}.png")), "the script should have saved it");
    }
    // What the browser did, as the daemon sees it: the volume and the network it made are
    // still there and in use by web2; the stack is gone.
    let (volume, network, stacks) = daemon.in_netns(|| {
        (
            daemon.http("GET", "/api/v1/volumes/webdata", &[], b"").json(),
            daemon.http("GET", "/api/v1/networks/backend", &[], b"").json(),
            daemon.http("GET", "/api/v1/stacks", &[], b"").json(),
        )
    });
    assert_eq!(volume["used_by"].as_array().map(Vec::len), Some(1), "webdata: {volume}");
    assert_eq!(network["subnet"], "172.31.5.0/24", "backend: {network}");
    assert_eq!(stacks.as_array().map(Vec::len), Some(0), "stacks left: {stacks}");
    let picked = out
        .lines()
        .find_map(|l| l.strip_prefix("picked team: "))
        .expect("the script names the team it picked")
        .to_owned();
    let sees_team_pick = |user: &str| {
        daemon.in_netns(|| {
            let body = format!(r#"{{"username":"{user}","password":"{TEAM_PASSWORD}"}}"#);
            let login = daemon.http(
                "POST",
                "/api/v1/auth/login",
                &[("Content-Type", "application/json"), ("Authorization", "none")],
                body.as_bytes(),
            );
            assert_eq!(login.status, 200, "{user} login: {}", login.text());
            let cookie =
                login.header("set-cookie").and_then(|c| c.split(';').next()).expect("a cookie").to_owned();
            let list = daemon
                .http(
                    "GET",
                    "/api/v1/containers?all=1",
                    &[("Authorization", "none"), ("Cookie", &cookie)],
                    b"",
                )
                .json();
            list.as_array().expect("a list").iter().any(|c| c["name"] == "team-pick")
        })
    };
    let (mine, other) = if picked == "blue" { ("bluev", "redv") } else { ("redv", "bluev") };
    assert!(sees_team_pick(mine), "{mine} sees what op1 ran for {picked}");
    assert!(!sees_team_pick(other), "{other} does not see what op1 ran for {picked}");
}
