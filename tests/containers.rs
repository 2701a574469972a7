//! Containers through the `berth` CLI against a real daemon, built-in runtime and monitors:
//! run and its exit codes, the lifecycle commands and their output, logs, exec with and without
//! a tty, an interactive shell on a real pseudo-terminal, restart policies, a daemon killed with
//! SIGKILL, and bad input that must leave nothing behind.

use std::time::{Duration, Instant};

use berth_tests::{Daemon, Output};
use serde_json::Value;

/// `inspect NAME` as JSON.
fn inspect(daemon: &Daemon, name: &str) -> Value {
    let out = daemon.berth(&["inspect", "--type", "container", name]).ok();
    let all: Value = serde_json::from_str(&out.stdout).expect("inspect prints JSON");
    all[0].clone()
}

/// Polls `check` every 100 ms until it returns `Some`, for at most `timeout`.
#[track_caller]
fn eventually<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Container IDs `ps -a -q --no-trunc` lists.
fn all_ids(daemon: &Daemon) -> Vec<String> {
    daemon.berth(&["ps", "-a", "-q", "--no-trunc"]).ok().lines().iter().map(|s| s.to_string()).collect()
}

/// One HTTP request over the daemon's unix socket (no token needed there).
fn unix_http(daemon: &Daemon, method: &str, path: &str, json: Option<&[u8]>) -> berth_tests::HttpResponse {
    berth_tests::unix_request(&daemon.socket(), method, path, json)
}

#[track_caller]
fn exits(out: Output, code: i32) -> Output {
    assert_eq!(out.code, code, "exit code; stdout: {}\nstderr: {}", out.stdout, out.stderr);
    out
}

#[test]
fn run_returns_output_and_docker_exit_codes() {
    let daemon = Daemon::with_busybox();

    let out = daemon.berth(&["run", "--rm", "busybox", "echo", "hello"]).ok();
    assert_eq!(out.stdout, "hello\n");
    // stdout and stderr stay apart; the container's exit code is run's.
    let out =
        exits(daemon.berth(&["run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"]), 3);
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\n");
    // Flags after the image belong to the command.
    let out = daemon.berth(&["run", "--rm", "busybox", "ls", "-d", "/etc"]).ok();
    assert_eq!(out.stdout, "/etc\n");
    // Options reach the process.
    let out = daemon
        .berth(&[
            "run",
            "--rm",
            "-e",
            "A=from-flag",
            "-w",
            "/tmp",
            "-u",
            "1000:1001",
            "--hostname",
            "box1",
            "busybox",
            "sh",
            "-c",
            "echo $A $(pwd) $(id -u):$(id -g) $(hostname)",
        ])
        .ok();
    assert_eq!(out.stdout, "from-flag /tmp 1000:1001 box1\n");
    let env_file = daemon.dir().join("env.list");
    std::fs::write(&env_file, "# comment\nFROM_FILE=yes\nA=file\n").unwrap();
    let out = daemon
        .berth(&[
            "run",
            "--rm",
            "--env-file",
            env_file.to_str().unwrap(),
            "-e",
            "A=flag",
            "busybox",
            "sh",
            "-c",
            "echo $FROM_FILE $A",
        ])
        .ok();
    assert_eq!(out.stdout, "yes flag\n");
    let out = daemon.berth(&["run", "--rm", "--entrypoint", "echo", "busybox", "via", "entrypoint"]).ok();
    assert_eq!(out.stdout, "via entrypoint\n");
    // -i without a tty: piped stdin reaches the process, and its end is an end of file.
    let out = daemon.berth_stdin(&["run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo done"], b"piped\n");
    assert_eq!(exits(out, 0).stdout, "piped\ndone\n");

    // 127: not found, 126: not executable, both with Docker's message.
    let out = exits(daemon.berth(&["run", "--rm", "busybox", "nope"]), 127);
    assert!(out.stderr.contains(r#"exec: "nope": executable file not found in $PATH"#), "{}", out.stderr);
    let out = exits(daemon.berth(&["run", "--rm", "busybox", "/etc"]), 126);
    assert!(out.stderr.contains("permission denied"), "{}", out.stderr);
    // 125: the daemon refused, or the flags are bad.
    let out = exits(daemon.berth(&["run", "--rm", "nosuchimage"]), 125);
    assert!(out.stderr.contains("No such image"), "{}", out.stderr);
    let out = exits(daemon.berth(&["run", "-m", "lots", "busybox"]), 125);
    assert!(out.stderr.contains("invalid size: 'lots'"), "{}", out.stderr);
    exits(daemon.berth(&["run", "--bogus", "busybox"]), 125);
    exits(daemon.berth(&["run", "--restart", "sometimes", "busybox"]), 125);
    exits(daemon.berth(&["run", "--rm", "--restart", "always", "busybox"]), 125);
    exits(daemon.berth(&["run"]), 125);
    // Every --rm container is gone, and so are the failed ones.
    assert_eq!(all_ids(&daemon), Vec::<String>::new());

    // Without --rm the container stays, exited with its code.
    daemon.berth(&["run", "--name", "kept", "busybox", "sh", "-c", "exit 7"]);
    let ps = daemon.berth(&["ps", "-a"]).ok();
    assert!(ps.stdout.contains("Exited (7)") && ps.stdout.contains("kept"), "{}", ps.stdout);
    assert_eq!(inspect(&daemon, "kept")["state"]["exit_code"], 7);
}

#[test]
fn detached_container_lifecycle() {
    let daemon = Daemon::with_busybox();
    let script = "echo started; echo oops >&2; trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done";
    let out =
        daemon.berth(&["run", "-d", "--name", "web", "-l", "app=shop", "busybox", "sh", "-c", script]).ok();
    let id = out.stdout.trim().to_string();
    assert!(id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit()), "run -d prints the ID: {id:?}");
    let short = &id[..12];

    // ps: Docker's table, -q, --no-trunc, --format and filters.
    let ps = daemon.berth(&["ps"]).ok();
    let lines = ps.lines();
    assert_eq!(lines.len(), 2, "{}", ps.stdout);
    // Docker's columns: the cells are at most 22 wide in COMMAND, padded by 3.
    assert!(
        lines[0].starts_with(&format!("CONTAINER ID   IMAGE     COMMAND{}CREATED", " ".repeat(18))),
        "header: {}",
        lines[0]
    );
    for cell in [short, "busybox", "\"sh -c ", "…\"", "Up ", "web"] {
        assert!(lines[1].contains(cell), "{cell:?} missing in {}", lines[1]);
    }
    assert_eq!(daemon.berth(&["ps", "-q"]).ok().stdout, format!("{short}\n"));
    assert_eq!(daemon.berth(&["ps", "-q", "--no-trunc"]).ok().stdout, format!("{id}\n"));
    assert_eq!(
        daemon.berth(&["ps", "--format", "{{.Names}} {{.State}} {{.Labels}}"]).ok().stdout,
        "web running app=shop\n"
    );
    let json: Value =
        serde_json::from_str(daemon.berth(&["ps", "--format", "json"]).ok().lines()[0]).unwrap();
    assert_eq!(json["Names"], "web");
    for (filter, hit) in [
        ("label=app=shop", true),
        ("label=app=other", false),
        ("label=app", true),
        ("name=we", true),
        ("name=^/web$", true),
        ("name=nope", false),
        ("status=running", true),
        ("status=exited", false),
        ("ancestor=busybox", true),
        ("ancestor=busybox:latest", true),
    ] {
        let out = daemon.berth(&["ps", "-q", "--filter", filter]).ok();
        assert_eq!(out.stdout.trim() == short, hit, "--filter {filter}: {}", out.stdout);
    }
    daemon.berth(&["ps", "--filter", "status=bogus"]).fails_with("status=bogus");

    // inspect, with Docker-style templates.
    assert_eq!(
        daemon.berth(&["inspect", "-f", "{{.State.Status}} {{.Name}}", "web"]).ok().stdout,
        "running /web\n"
    );
    let details = inspect(&daemon, "web");
    assert_eq!(details["id"], id.as_str());
    assert_eq!(details["config"]["labels"]["app"], "shop");
    assert!(details["state"]["pid"].as_i64().unwrap() > 0);
    // `inspect` finds images too, and names what it cannot find.
    let out = daemon.berth(&["inspect", "-f", "{{.Id}}", "busybox"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    daemon.berth(&["inspect", "nothing-by-that-name"]).fails_with("No such object: nothing-by-that-name");

    // logs: stdout and stderr apart, timestamps, tail.
    eventually(Duration::from_secs(10), "the first log lines", || {
        let out = daemon.berth(&["logs", "web"]);
        (out.stdout == "started\n" && out.stderr == "oops\n").then_some(())
    });
    let out = daemon.berth(&["logs", "-t", "web"]).ok();
    let (time, line) = out.stdout.split_once(' ').unwrap();
    assert_eq!(line, "started\n");
    assert!(time.len() == 30 && time.ends_with('Z'), "RFC 3339 with nanoseconds: {time}");
    assert_eq!(daemon.berth(&["logs", "--tail", "0", "web"]).ok().stdout, "");
    assert_eq!(daemon.berth(&["logs", "--since", "1h", "web"]).ok().stdout, "started\n");
    assert_eq!(daemon.berth(&["logs", "--until", "1h", "web"]).ok().stdout, "");
    daemon.berth(&["logs", "--since", "yesterday", "web"]).fails_with("invalid value for --since");

    // top and stats.
    let top = daemon.berth(&["top", "web"]).ok();
    assert!(top.lines().len() >= 2 && top.lines()[0].contains("PID"), "{}", top.stdout);
    assert!(top.stdout.contains("sleep") || top.stdout.contains("sh"), "{}", top.stdout);
    let stats = daemon.berth(&["stats", "--no-stream", "web"]).ok();
    assert!(stats.lines()[0].starts_with("CONTAINER ID   NAME"), "{}", stats.stdout);
    assert!(stats.lines()[1].starts_with(short) && stats.lines()[1].contains("web"), "{}", stats.stdout);

    // pause / unpause.
    assert_eq!(daemon.berth(&["pause", "web"]).ok().stdout, "web\n");
    let ps = daemon.berth(&["ps", "--format", "{{.Status}} {{.State}}"]).ok();
    assert!(ps.stdout.contains("(Paused) paused"), "{}", ps.stdout);
    assert_eq!(daemon.berth(&["unpause", "web"]).ok().stdout, "web\n");
    assert_eq!(daemon.berth(&["inspect", "-f", "{{.State.Status}}", "web"]).ok().stdout, "running\n");

    // rename; the old name is free again.
    daemon.berth(&["rename", "web", "web2"]).ok();
    assert_eq!(daemon.berth(&["ps", "--format", "{{.Names}}"]).ok().stdout, "web2\n");
    daemon.berth(&["inspect", "--type", "container", "web"]).fails_with("No such container: web");

    // stop: SIGTERM, which the trap answers with exit 0; wait reports it.
    assert_eq!(daemon.berth(&["stop", "-t", "10", "web2"]).ok().stdout, "web2\n");
    assert_eq!(daemon.berth(&["wait", "web2"]).ok().stdout, "0\n");
    let ps = daemon.berth(&["ps", "-a", "--format", "{{.Status}}"]).ok();
    assert!(ps.stdout.starts_with("Exited (0) "), "{}", ps.stdout);
    assert_eq!(daemon.berth(&["ps", "-q"]).ok().stdout, "");
    assert!(daemon.berth(&["logs", "web2"]).ok().stdout.ends_with("bye\n"));

    // start again, then kill: 128 + SIGKILL.
    assert_eq!(daemon.berth(&["start", "web2"]).ok().stdout, "web2\n");
    assert_eq!(daemon.berth(&["inspect", "-f", "{{.State.Status}}", "web2"]).ok().stdout, "running\n");
    assert_eq!(daemon.berth(&["kill", "web2"]).ok().stdout, "web2\n");
    assert_eq!(daemon.berth(&["wait", "web2"]).ok().stdout, "137\n");
    // A restart brings it back up.
    daemon.berth(&["restart", "-t", "1", "web2"]).ok();
    assert_eq!(daemon.berth(&["inspect", "-f", "{{.State.Status}}", "web2"]).ok().stdout, "running\n");

    // rm refuses a running container without -f; with -f it goes.
    daemon.berth(&["rm", "web2"]).fails_with("running container");
    assert_eq!(daemon.berth(&["rm", "-f", "web2"]).ok().stdout, "web2\n");
    daemon.berth(&["rm", "web2"]).fails_with("No such container: web2");
    assert_eq!(all_ids(&daemon), Vec::<String>::new());

    // prune removes the stopped ones only.
    daemon.berth(&["run", "--name", "done", "busybox", "true"]).ok();
    daemon.berth(&["run", "-d", "--name", "alive", "busybox", "sleep", "1000"]).ok();
    let out = daemon.berth(&["container", "prune", "-f"]).ok();
    assert!(out.stdout.starts_with("Deleted Containers:\n") && out.stdout.contains("Total reclaimed space:"));
    assert_eq!(daemon.berth(&["ps", "-a", "--format", "{{.Names}}"]).ok().stdout, "alive\n");
}

#[test]
fn interactive_shell_on_a_real_terminal() {
    let daemon = Daemon::with_busybox();
    let mut term = daemon.berth_pty(&["run", "-it", "--rm", "busybox", "sh"]);
    let at = term.expect_after(0, "# ", Duration::from_secs(30));
    term.send("echo hello\r");
    // The terminal echoes the typed line; the output is the next line.
    let at = term.expect_after(at, "\nhello\r\n", Duration::from_secs(10));
    // The container's terminal has the local terminal's size.
    term.send("stty size\r");
    let at = term.expect_after(at, "\n24 80\r\n", Duration::from_secs(10));
    // ^C goes to the container (raw mode), not to the CLI.
    term.send("sleep 100\r");
    std::thread::sleep(Duration::from_millis(300));
    term.send("\x03");
    let at = term.expect_after(at, "# ", Duration::from_secs(10));
    term.send("exit 3\r");
    let _ = at;
    assert_eq!(term.wait(Duration::from_secs(30)), 3, "screen:\n{}", term.screen());
    // The terminal is back in cooked mode.
    let flags = term.local_flags();
    assert!(flags.contains(nix::sys::termios::LocalFlags::ICANON | nix::sys::termios::LocalFlags::ECHO));
    assert_eq!(all_ids(&daemon), Vec::<String>::new());
}

#[test]
fn exec_with_and_without_a_tty() {
    let daemon = Daemon::with_busybox();
    daemon.berth(&["run", "-d", "--name", "box", "busybox", "sleep", "1000"]).ok();

    assert_eq!(daemon.berth(&["exec", "box", "echo", "hi"]).ok().stdout, "hi\n");
    let out = exits(daemon.berth(&["exec", "box", "sh", "-c", "echo out; echo err >&2; exit 5"]), 5);
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("out\n", "err\n"));
    let out = daemon.berth(&[
        "exec",
        "-e",
        "X=1",
        "-w",
        "/tmp",
        "-u",
        "1000",
        "box",
        "sh",
        "-c",
        "echo $X $(pwd) $(id -u)",
    ]);
    assert_eq!(exits(out, 0).stdout, "1 /tmp 1000\n");
    let out = daemon.berth_stdin(&["exec", "-i", "box", "cat"], b"through stdin");
    assert_eq!(exits(out, 0).stdout, "through stdin");
    // -t without -i: output through a pty in the container.
    let out = exits(daemon.berth(&["exec", "-t", "box", "tty"]), 0);
    assert!(out.stdout.starts_with("/dev/pts/"), "{}", out.stdout);
    let out = exits(daemon.berth(&["exec", "box", "nope"]), 127);
    assert!(out.stderr.contains("executable file not found"), "{}", out.stderr);
    // The same process tree: the exec sees the container's first process as PID 1.
    assert_eq!(daemon.berth(&["exec", "box", "cat", "/proc/1/cmdline"]).ok().stdout, "sleep\x001000\x00");

    // An interactive exec on a real terminal.
    let mut term = daemon.berth_pty(&["exec", "-it", "box", "sh"]);
    let at = term.expect_after(0, "# ", Duration::from_secs(30));
    term.send("echo $((6*7))\r");
    term.expect_after(at, "\n42\r\n", Duration::from_secs(10));
    term.send("exit 4\r");
    assert_eq!(term.wait(Duration::from_secs(30)), 4, "screen:\n{}", term.screen());

    // exec -d returns at once; the process runs on.
    exits(daemon.berth(&["exec", "-d", "box", "sh", "-c", "sleep 0.5; touch /tmp/detached"]), 0);
    eventually(Duration::from_secs(10), "the detached exec", || {
        (daemon.berth(&["exec", "box", "ls", "/tmp/detached"]).code == 0).then_some(())
    });

    // Not into a stopped or unknown container.
    daemon.berth(&["kill", "box"]).ok();
    daemon.berth(&["wait", "box"]).ok();
    let out = daemon.berth(&["exec", "box", "true"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("is not running"), "{}", out.stderr);
    daemon.berth(&["exec", "nobox", "true"]).fails_with("No such container: nobox");
}

#[test]
fn restart_policies_show_in_ps() {
    let daemon = Daemon::with_busybox();
    daemon
        .berth(&[
            "run",
            "-d",
            "--name",
            "flaky",
            "--restart",
            "on-failure:2",
            "busybox",
            "sh",
            "-c",
            "exit 1",
        ])
        .ok();
    eventually(Duration::from_secs(30), "two restarts, then exited", || {
        let state = &inspect(&daemon, "flaky")["state"];
        (state["status"] == "exited" && state["restart_count"] == 2).then_some(())
    });
    // No third try.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(inspect(&daemon, "flaky")["state"]["restart_count"], 2);
    let ps = daemon.berth(&["ps", "-a", "--filter", "name=flaky", "--format", "{{.Status}}"]).ok();
    assert!(ps.stdout.starts_with("Exited (1) "), "{}", ps.stdout);

    daemon
        .berth(&[
            "run",
            "-d",
            "--name",
            "forever",
            "--restart",
            "always",
            "busybox",
            "sh",
            "-c",
            "sleep 0.3; exit 1",
        ])
        .ok();
    eventually(Duration::from_secs(30), "restarts of an always container", || {
        (inspect(&daemon, "forever")["state"]["restart_count"].as_u64().unwrap_or(0) >= 2).then_some(())
    });
    let ps = daemon.berth(&["ps", "--filter", "name=forever", "--format", "{{.Status}}"]).ok();
    assert!(ps.stdout.starts_with("Up ") || ps.stdout.starts_with("Restarting (1) "), "{}", ps.stdout);
    // A stop ends it for good.
    daemon.berth(&["stop", "-t", "1", "forever"]).ok();
    let count = inspect(&daemon, "forever")["state"]["restart_count"].clone();
    std::thread::sleep(Duration::from_secs(2));
    let after = inspect(&daemon, "forever");
    assert_eq!(after["state"]["status"], "exited");
    assert_eq!(after["state"]["restart_count"], count);
}

#[test]
fn containers_survive_a_daemon_killed_with_sigkill() {
    let mut daemon = Daemon::with_busybox();
    let ticker = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done";
    daemon.berth(&["run", "-d", "--name", "ticker", "busybox", "sh", "-c", ticker]).ok();
    daemon
        .berth(&[
            "run",
            "-d",
            "--name",
            "phoenix",
            "--restart",
            "always",
            "busybox",
            "sh",
            "-c",
            "sleep 0.5; exit 1",
        ])
        .ok();
    eventually(Duration::from_secs(10), "ticks in the log", || {
        daemon.berth(&["logs", "ticker"]).stdout.contains("tick 2\n").then_some(())
    });
    let pid = inspect(&daemon, "ticker")["state"]["pid"].as_i64().unwrap() as i32;

    daemon.kill9();
    // Without a daemon the container goes on.
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok(),
        "the container died with the daemon"
    );
    daemon.start_again();

    let ps = daemon.berth(&["ps", "--format", "{{.Names}} {{.State}}"]).ok();
    assert!(ps.stdout.contains("ticker running"), "{}", ps.stdout);
    let details = inspect(&daemon, "ticker");
    assert_eq!(details["state"]["pid"], pid);
    // The log has everything from before and goes on growing.
    let before = daemon.berth(&["logs", "ticker"]).ok().stdout;
    assert!(before.starts_with("tick 0\ntick 1\ntick 2\n"), "{before}");
    eventually(Duration::from_secs(10), "new ticks after the restart of the daemon", || {
        (daemon.berth(&["logs", "ticker"]).stdout.len() > before.len()).then_some(())
    });
    // The restart policy kept working across the daemon's death.
    let restarts = inspect(&daemon, "phoenix")["state"]["restart_count"].as_u64().unwrap();
    eventually(Duration::from_secs(20), "more restarts after the daemon came back", || {
        (inspect(&daemon, "phoenix")["state"]["restart_count"].as_u64().unwrap() > restarts).then_some(())
    });
    // And the new daemon controls them.
    daemon.berth(&["stop", "-t", "1", "ticker"]).ok();
    assert_eq!(daemon.berth(&["inspect", "-f", "{{.State.Status}}", "ticker"]).ok().stdout, "exited\n");
}

#[test]
fn bad_input_leaves_nothing_behind() {
    let daemon = Daemon::with_busybox();
    daemon.berth(&["run", "-d", "--name", "dup", "busybox", "sleep", "1000"]).ok();
    let before = all_ids(&daemon);
    let containers_dir = daemon.root().join("containers");
    let entries = || std::fs::read_dir(&containers_dir).map(|d| d.count()).unwrap_or(0);
    let dirs_before = entries();

    let out = exits(daemon.berth(&["run", "-d", "--name", "dup", "busybox", "true"]), 125);
    assert!(out.stderr.contains("already in use"), "{}", out.stderr);
    let out = exits(daemon.berth(&["create", "--name", "bad name!", "busybox"]), 125);
    assert!(out.stderr.contains("Invalid container name"), "{}", out.stderr);
    let out = exits(daemon.berth(&["run", "--rm", "-m", "1k", "busybox", "true"]), 125);
    assert!(out.stderr.contains("Minimum memory limit"), "{}", out.stderr);
    let out = exits(daemon.berth(&["run", "--rm", "--cpus", "100000", "busybox", "true"]), 125);
    assert!(out.stderr.contains("CPUs"), "{}", out.stderr);
    let out = exits(daemon.berth(&["run", "--rm", "-u", "nobody-here", "busybox", "true"]), 125);
    assert!(out.stderr.contains("unable to find user nobody-here"), "{}", out.stderr);
    let out = exits(daemon.berth(&["run", "--rm", "--runtime", "docker", "busybox", "true"]), 125);
    assert!(out.stderr.contains("runtime"), "{}", out.stderr);
    exits(daemon.berth(&["create", "no/such:image"]), 125);

    assert_eq!(all_ids(&daemon), before);
    assert_eq!(entries(), dirs_before, "a refused create left a directory behind");

    // The API's own answers: 404 with a message, 400 for bad parameters.
    let r = unix_http(&daemon, "GET", "/api/v1/containers/nope", None);
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], "No such container: nope");
    let r = unix_http(&daemon, "POST", "/api/v1/containers/dup/stop?t=soon", None);
    assert_eq!(r.status, 400, "{}", r.text());
    let r = unix_http(&daemon, "GET", "/api/v1/containers?filter=colour=red", None);
    assert_eq!(r.status, 400, "{}", r.text());
    let r = unix_http(&daemon, "POST", "/api/v1/containers", Some(br#"{"image":"busybox","bogus":1}"#));
    assert_eq!(r.status, 400, "{}", r.text());

    // The event log has the container's story, failures included.
    let events = unix_http(&daemon, "GET", "/api/v1/events?limit=1000", None).json();
    let seen: Vec<(String, String)> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "container")
        .map(|e| (e["action"].as_str().unwrap().to_string(), e["outcome"].as_str().unwrap().to_string()))
        .collect();
    for want in [("create", "success"), ("start", "success"), ("create", "failure")] {
        assert!(seen.contains(&(want.0.into(), want.1.into())), "{want:?} not in {seen:?}");
    }
}

#[test]
fn attached_run_forwards_signals_to_the_container() {
    let daemon = Daemon::with_busybox();
    let script = "trap 'echo got INT; exit 9' INT; echo ready; while true; do sleep 0.1; done";
    let mut cli = std::process::Command::new(berth_tests::berth_binary())
        .args(["run", "--name", "trapper", "busybox", "sh", "-c", script])
        .env("BERTH_HOST", daemon.unix_host())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawning berth run");
    eventually(Duration::from_secs(20), "the container to be ready", || {
        daemon.berth(&["logs", "trapper"]).stdout.contains("ready").then_some(())
    });
    // ^C on the CLI goes to the container, whose trap answers; run returns its exit code.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(cli.id() as i32), nix::sys::signal::SIGINT).unwrap();
    let status = eventually(Duration::from_secs(20), "berth run to exit", || cli.try_wait().unwrap());
    let mut stdout = String::new();
    std::io::Read::read_to_string(cli.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    assert_eq!(status.code(), Some(9), "stdout: {stdout}");
    assert_eq!(stdout, "ready\ngot INT\n");
}
