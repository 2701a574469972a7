//! Health checks end to end through the CLI against a real daemon: `--health-*` and an image's
//! HEALTHCHECK run in the container by its monitor; starting / healthy / unhealthy in inspect,
//! `ps` (its status column and `--filter health=`) and the event log; timeouts, the start
//! period and its interval, `--no-healthcheck`, a restart that starts over, checks that go on
//! while the daemon is down, and bad flag values.

use std::time::{Duration, Instant};

use berth_tests::Daemon;
use serde_json::Value;

/// The container's `State` from `inspect`.
fn state(daemon: &Daemon, name: &str) -> Value {
    let out = daemon.berth(&["container", "inspect", name]).ok();
    let all: Value = serde_json::from_str(&out.stdout).expect("inspect prints JSON");
    all[0]["state"].clone()
}

/// `State.Health.Status`, or `none` without health.
fn health_status(daemon: &Daemon, name: &str) -> String {
    state(daemon, name)["health"]["status"].as_str().unwrap_or("none").to_string()
}

/// Waits (at most `within`) until the container's health is `want`; returns its `State`.
/// Panics, showing the last state, when it does not get there.
#[track_caller]
fn wait_health(daemon: &Daemon, name: &str, want: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let s = state(daemon, name);
        if s["health"]["status"] == want {
            return s;
        }
        assert!(Instant::now() < deadline, "{name} not {want} after {within:?}: {s:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Names `ps` lists with these extra arguments.
fn ps_names(daemon: &Daemon, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["ps", "--format", "{{.Names}}"];
    args.extend_from_slice(extra);
    daemon.berth(&args).ok().lines().iter().map(|s| s.to_string()).collect()
}

/// The `ps -a` status column of one container.
fn ps_status(daemon: &Daemon, name: &str) -> String {
    let filter = format!("name=^{name}$");
    daemon.berth(&["ps", "-a", "--filter", &filter, "--format", "{{.Status}}"]).ok().stdout.trim().to_string()
}

/// Actions of the container's events in the daemon's event log, oldest first.
fn event_actions(daemon: &Daemon, name: &str) -> Vec<String> {
    let events = daemon.http("GET", "/api/v1/events?limit=1000", &[], b"").json();
    let mut actions: Vec<String> = events
        .as_array()
        .expect("a list of events")
        .iter()
        .filter(|e| e["type"] == "container" && e["subject"] == name)
        .map(|e| e["action"].as_str().unwrap_or_default().to_string())
        .collect();
    actions.reverse();
    actions
}

#[test]
fn a_passing_check_makes_it_healthy_and_a_restart_starts_over() {
    let daemon = Daemon::with_busybox();
    daemon
        .berth(&[
            "run",
            "-d",
            "--name",
            "web",
            "--health-cmd",
            "test -f /tmp/ready && echo ready",
            "--health-interval",
            "200ms",
            "--health-retries",
            "100",
            "busybox",
            "sleep",
            "600",
        ])
        .ok();
    daemon.berth(&["run", "-d", "--name", "plain", "busybox", "sleep", "600"]).ok();

    // Starting until the first success; the failures so far are in the log.
    let s = state(&daemon, "web");
    assert_eq!(s["health"]["status"], "starting", "{s:#}");
    assert!(ps_status(&daemon, "web").ends_with("(health: starting)"), "{}", ps_status(&daemon, "web"));
    assert_eq!(ps_names(&daemon, &["--filter", "health=starting"]), ["web"]);
    assert_eq!(ps_names(&daemon, &["--filter", "health=none"]), ["plain"]);
    let failed = {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = state(&daemon, "web");
            let log = s["health"]["log"].as_array().cloned().unwrap_or_default();
            if let Some(failure) = log.iter().find(|p| p["exit_code"] == 1) {
                break failure.clone();
            }
            assert!(Instant::now() < deadline, "no failed probe logged: {s:#}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    assert_eq!(failed["output"], "");
    assert_eq!(state(&daemon, "web")["health"]["status"], "starting");
    // Ready: the next probe succeeds.
    daemon.berth(&["exec", "web", "touch", "/tmp/ready"]).ok();
    let s = wait_health(&daemon, "web", "healthy", Duration::from_secs(20));
    assert_eq!(s["health"]["failing_streak"], 0);
    let log = s["health"]["log"].as_array().unwrap();
    assert!(!log.is_empty() && log.len() <= 5, "{log:?}");
    let last = log.last().unwrap();
    assert_eq!(last["exit_code"], 0);
    assert_eq!(last["output"], "ready\n");
    assert!(last["start"].as_str().unwrap() <= last["end"].as_str().unwrap());
    let status = ps_status(&daemon, "web");
    assert!(status.starts_with("Up ") && status.ends_with(" (healthy)"), "{status}");
    assert_eq!(ps_names(&daemon, &["--filter", "health=healthy"]), ["web"]);
    assert!(ps_names(&daemon, &["--filter", "health=unhealthy"]).is_empty());
    assert!(ps_names(&daemon, &["--filter", "health=starting"]).is_empty());
    // Several values of one key match either.
    let mut both = ps_names(&daemon, &["--filter", "health=healthy", "--filter", "health=none"]);
    both.sort();
    assert_eq!(both, ["plain", "web"]);
    // Probes go on, once per interval: the log keeps only the last five.
    std::thread::sleep(Duration::from_millis(1600));
    let log = state(&daemon, "web")["health"]["log"].as_array().unwrap().clone();
    assert_eq!(log.len(), 5, "{log:?}");
    assert!(log.iter().all(|p| p["exit_code"] == 0), "{log:?}");

    let actions = event_actions(&daemon, "web");
    assert_eq!(actions.iter().filter(|a| *a == "health_status: healthy").count(), 1, "{actions:?}");
    assert!(!actions.iter().any(|a| a.starts_with("health_status: unhealthy")), "{actions:?}");

    // Stopped: no health in inspect or ps.
    daemon.berth(&["stop", "-t", "1", "web"]).ok();
    assert_eq!(state(&daemon, "web")["health"], Value::Null);
    assert!(ps_status(&daemon, "web").starts_with("Exited"), "{}", ps_status(&daemon, "web"));
    assert!(ps_names(&daemon, &["-a", "--filter", "health=none"]).contains(&"web".to_string()));

    // Started again: the health starts over (its log has only probes of the new run).
    daemon.berth(&["start", "web"]).ok();
    let s = state(&daemon, "web");
    let started_at = s["started_at"].as_str().unwrap().to_string();
    assert!(s["health"].is_object(), "{s:#}");
    let s = wait_health(&daemon, "web", "healthy", Duration::from_secs(20));
    for probe in s["health"]["log"].as_array().unwrap() {
        assert!(probe["start"].as_str().unwrap() >= started_at.as_str(), "{probe} before {started_at}");
    }
    daemon.remove_all_containers();
}

#[test]
fn a_failing_check_makes_it_unhealthy_after_the_retries() {
    let daemon = Daemon::with_busybox();
    daemon
        .berth(&[
            "run",
            "-d",
            "--name",
            "sick",
            "--health-cmd",
            "echo checking; echo missing >&2; test -f /nope",
            "--health-interval",
            "200ms",
            "--health-retries",
            "3",
            "busybox",
            "sleep",
            "600",
        ])
        .ok();
    // Fewer than three failures: still starting.
    let deadline = Instant::now() + Duration::from_secs(20);
    let s = loop {
        let s = state(&daemon, "sick");
        let streak = s["health"]["failing_streak"].as_u64().unwrap_or(0);
        let status = s["health"]["status"].as_str().unwrap_or("none").to_string();
        if streak < 3 {
            assert_eq!(status, "starting", "{s:#}");
        } else {
            assert_eq!(status, "unhealthy", "{s:#}");
            break s;
        }
        assert!(Instant::now() < deadline, "never unhealthy: {s:#}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = s["health"]["log"].as_array().unwrap();
    assert!(log.len() >= 3, "{log:?}");
    for probe in log {
        assert_eq!(probe["exit_code"], 1, "{probe}");
        // stdout and stderr, both.
        assert_eq!(probe["output"], "checking\nmissing\n", "{probe}");
    }
    let status = ps_status(&daemon, "sick");
    assert!(status.ends_with(" (unhealthy)"), "{status}");
    assert_eq!(ps_names(&daemon, &["--filter", "health=unhealthy"]), ["sick"]);
    let actions = event_actions(&daemon, "sick");
    assert!(actions.contains(&"health_status: unhealthy".to_string()), "{actions:?}");
    assert!(!actions.contains(&"health_status: healthy".to_string()), "{actions:?}");
    // The container runs on: an unhealthy container is not restarted or stopped.
    assert_eq!(state(&daemon, "sick")["status"], "running");
    daemon.remove_all_containers();
}

#[test]
fn a_probe_past_its_timeout_is_killed_and_fails() {
    let daemon = Daemon::with_busybox();
    daemon
        .berth(&[
            "run",
            "-d",
            "--name",
            "slow",
            "--health-cmd",
            // Not `exec`ed by sh: the probe has a child.
            "sleep 30; true",
            "--health-timeout",
            "300ms",
            "--health-interval",
            "200ms",
            "--health-retries",
            "1",
            "busybox",
            "sleep",
            "600",
        ])
        .ok();
    let s = wait_health(&daemon, "slow", "unhealthy", Duration::from_secs(20));
    let probe = &s["health"]["log"][0];
    assert_eq!(probe["exit_code"], -1, "{probe}");
    assert_eq!(probe["output"], "Health check exceeded timeout (300ms)", "{probe}");
    let start = probe["start"].as_str().unwrap();
    let end = probe["end"].as_str().unwrap();
    let time = |t: &str| berth_types::format::parse_time(t).unwrap_or_else(|| panic!("not a time: {t}"));
    let took = (time(end) - time(start)).num_milliseconds();
    assert!((300..5000).contains(&took), "the probe took {took} ms");
    // Killed with what it started: after several timeouts at most the current probe's sleep
    // runs in the container.
    let deadline = Instant::now() + Duration::from_secs(20);
    while state(&daemon, "slow")["health"]["log"].as_array().map_or(0, Vec::len) < 4 {
        assert!(Instant::now() < deadline, "fewer than four probes");
        std::thread::sleep(Duration::from_millis(100));
    }
    let top = daemon.berth(&["top", "slow"]).ok().stdout;
    let sleeps = top.lines().filter(|l| l.ends_with("sleep 30")).count();
    assert!(sleeps <= 1, "{top}");
    daemon.remove_all_containers();
}

#[test]
fn failures_in_the_start_period_do_not_count_and_the_start_interval_applies() {
    let daemon = Daemon::with_busybox();
    daemon
        .berth(&[
            "run",
            "-d",
            "--name",
            "boot",
            "--health-cmd",
            "test -f /tmp/ready",
            // Without the start interval the first probe would come after a minute.
            "--health-interval",
            "60s",
            "--health-start-period",
            "30s",
            "--health-start-interval",
            "100ms",
            "--health-retries",
            "1",
            "busybox",
            "sh",
            "-c",
            "sleep 1; touch /tmp/ready; exec sleep 600",
        ])
        .ok();
    let deadline = Instant::now() + Duration::from_secs(20);
    let s = loop {
        let s = state(&daemon, "boot");
        match s["health"]["status"].as_str() {
            Some("healthy") => break s,
            // Failures with retries 1, but in the start period: not unhealthy, no streak.
            Some("starting") => assert_eq!(s["health"]["failing_streak"], 0, "{s:#}"),
            _ => panic!("unexpected health: {s:#}"),
        }
        assert!(Instant::now() < deadline, "never healthy: {s:#}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = s["health"]["log"].as_array().unwrap();
    assert!(log.iter().any(|p| p["exit_code"] == 1), "failures were probed and logged: {log:?}");
    // Healthy now, the interval (a minute) applies: no more probes for a while.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(state(&daemon, "boot")["health"]["log"].as_array().unwrap().len(), log.len());
    daemon.remove_all_containers();
}

#[test]
fn the_images_healthcheck_runs_unless_disabled_and_merges_with_the_flags() {
    let daemon = Daemon::with_busybox();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nHEALTHCHECK --interval=200ms --retries=1 CMD [\"test\", \"-f\", \"/etc/passwd\"]\n",
    )
    .unwrap();
    daemon.berth(&["build", "-q", "-t", "checked", ctx.path().to_str().unwrap()]).ok();

    // The image's check.
    daemon.berth(&["run", "-d", "--name", "img", "checked", "sleep", "600"]).ok();
    let s = wait_health(&daemon, "img", "healthy", Duration::from_secs(20));
    assert_eq!(s["health"]["log"][0]["exit_code"], 0);
    let out = daemon.berth(&["container", "inspect", "img"]).ok();
    let inspect: Value = serde_json::from_str(&out.stdout).unwrap();
    let config = &inspect[0]["config"]["healthcheck"];
    assert_eq!(config["test"], serde_json::json!(["CMD", "test", "-f", "/etc/passwd"]), "{config}");
    assert_eq!(config["interval"], 200_000_000u64);

    // --no-healthcheck: none runs.
    daemon.berth(&["run", "-d", "--name", "off", "--no-healthcheck", "checked", "sleep", "600"]).ok();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(health_status(&daemon, "off"), "none");
    let status = ps_status(&daemon, "off");
    assert!(status.starts_with("Up ") && !status.contains('('), "{status}");
    assert!(ps_names(&daemon, &["--filter", "health=none"]).contains(&"off".to_string()));

    // --health-cmd replaces the image's command; its interval and retries stay.
    daemon.berth(&["run", "-d", "--name", "mine", "--health-cmd", "exit 3", "checked", "sleep", "600"]).ok();
    let s = wait_health(&daemon, "mine", "unhealthy", Duration::from_secs(20));
    assert_eq!(s["health"]["log"][0]["exit_code"], 3);
    daemon.remove_all_containers();
}

#[test]
fn checks_go_on_while_the_daemon_is_down() {
    let mut daemon = Daemon::with_busybox();
    daemon
        .berth(&[
            "run",
            "-d",
            "--name",
            "alone",
            "--health-cmd",
            "test -f /tmp/ready",
            "--health-interval",
            "200ms",
            "--health-retries",
            "100",
            "busybox",
            "sh",
            "-c",
            "sleep 1; touch /tmp/ready; exec sleep 600",
        ])
        .ok();
    assert_eq!(health_status(&daemon, "alone"), "starting");
    daemon.stop();
    std::thread::sleep(Duration::from_secs(3));
    daemon.start_again();
    // Healthy at once: the monitor probed while no daemon ran.
    assert_eq!(health_status(&daemon, "alone"), "healthy");
    daemon.remove_all_containers();
}

#[test]
fn bad_health_flags_are_refused() {
    let daemon = Daemon::with_busybox();
    let refused = |args: &[&str], message: &str| {
        let mut all = vec!["run", "-d"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["busybox", "sleep", "600"]);
        let out = daemon.berth(&all);
        assert_eq!(out.code, 125, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(message), "{args:?}: {}", out.stderr);
    };
    refused(
        &["--health-interval", "often"],
        "invalid argument \"often\" for \"--health-interval\" flag: time: invalid duration \"often\"",
    );
    refused(&["--health-timeout", "-2s"], "--health-timeout cannot be negative");
    refused(&["--health-retries", "-1"], "--health-retries cannot be negative");
    refused(&["--health-start-period", "10"], "invalid duration \"10\"");
    refused(
        &["--no-healthcheck", "--health-cmd", "true"],
        "--no-healthcheck conflicts with --health-* options",
    );
    // The daemon's own checks (Docker's wording).
    refused(
        &["--health-cmd", "true", "--health-interval", "500us"],
        "Interval in Healthcheck cannot be less than 1ms",
    );
    refused(&["--health-timeout", "10ns"], "Timeout in Healthcheck cannot be less than 1ms");
    // Nothing was created.
    assert!(daemon.berth(&["ps", "-a", "-q"]).ok().stdout.is_empty());
    // The API refuses unknown test types.
    let body = br#"{"image":"busybox","healthcheck":{"test":["RUN","true"]}}"#;
    let r = daemon.http("POST", "/api/v1/containers", &[("Content-Type", "application/json")], body);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("unknown type"), "{}", r.text());
    daemon.berth(&["ps", "--filter", "health=sick"]).fails_with("Unrecognised filter value for health: sick");
}

#[test]
fn checks_run_under_runc_too() {
    // runc (installed by scripts/setup.sh --test) starts the probe with `runc exec -d`; the
    // monitor, its subreaper, reaps it.
    let daemon = Daemon::with_busybox();
    daemon
        .berth(&[
            "run",
            "-d",
            "--name",
            "peer",
            "--runtime",
            "runc",
            "--health-cmd",
            "echo ok from $HOSTNAME",
            "--health-interval",
            "200ms",
            "--hostname",
            "inside",
            "busybox",
            "sleep",
            "600",
        ])
        .ok();
    let s = wait_health(&daemon, "peer", "healthy", Duration::from_secs(20));
    // The probe ran in the container, with its environment.
    assert_eq!(s["health"]["log"][0]["output"], "ok from inside\n");
    daemon.remove_all_containers();
}
