//! The other Docker clients against berth, with Docker Engine 20.10 as the reference: a docker-py
//! program (tests/docker_clients/docker_py.py), a two-service docker-compose 1.29 project whose
//! client reaches its web service by name, and a testcontainers (Python) container with an exec.
//! Each runs against a private dockerd and against berth (tests/support/docker_diff.rs), and
//! what they report must be the same.
//!
//! The Python clients live in the virtual environment `scripts/setup.sh --test` makes; Compose is
//! Debian's docker-compose (the Python Compose 1.29, which drives the API directly).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use berth_tests::docker_diff::{normalise, Comparison, Side};
use berth_tests::{repo_root, run_command, Output};

/// Checks whose routes are still being built: their differences are printed, not failed. Take a
/// name off as its route lands (the test prints the names that pass already).
const NOT_YET: &[&str] = &[];

/// The Python of `scripts/setup.sh --test`'s virtual environment (docker-py, testcontainers).
const VENV_PYTHON: &str = "/opt/berth-test-venv/bin/python";

fn clients_dir() -> PathBuf {
    repo_root().join("tests/docker_clients")
}

/// Runs a client program against `side` (DOCKER_HOST) with the user's Docker configuration out
/// of the way, at most 5 minutes.
fn client(side: &Side, program: &str, args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(cwd)
        .env("DOCKER_HOST", &side.host)
        .env("DOCKER_CONFIG", std::env::temp_dir().join("berth-tests-docker-config"))
        .env_remove("DOCKER_API_VERSION")
        .env_remove("DOCKER_CONTEXT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_command(cmd, None, Duration::from_secs(300))
}

/// The `name<TAB>json` lines a client script printed, by name.
fn results(out: &Output) -> Vec<(String, String)> {
    out.stdout
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(name, value)| (name.to_string(), normalise(value)))
        .collect()
}

/// Runs a script that reports `name<TAB>json` lines on both sides and compares every result;
/// `expected` pins what dockerd reports for the named ones.
fn compare_script(d: &mut Comparison, script: &[&str], env: &[(&str, &str)], expected: &[(&str, &str)]) {
    let dir = clients_dir();
    let reference = client(&d.reference, VENV_PYTHON, script, &dir, env);
    let berth = client(&d.berth, VENV_PYTHON, script, &dir, env);
    let reference_results = results(&reference);
    let berth_results = results(&berth);
    d.compare_shown(
        &format!("{}: exit code", script[0]),
        Some("exit 0"),
        &format!("exit {}", reference.code),
        &format!("exit {}", berth.code),
    );
    assert!(
        !reference_results.is_empty(),
        "{} reported nothing against dockerd:\n{}\n{}",
        script[0],
        reference.stdout,
        reference.stderr
    );
    for (name, value) in &reference_results {
        let on_berth = berth_results
            .iter()
            .find(|(n, _)| n == name)
            .map_or_else(|| format!("(not reported; stderr: {})", berth.stderr.trim()), |(_, v)| v.clone());
        let pinned = expected.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
        d.compare_shown(name, pinned, value, &on_berth);
    }
}

#[test]
fn docker_py() {
    let Some(mut d) = Comparison::start(NOT_YET) else { return };
    let build = clients_dir().join("build");
    compare_script(
        &mut d,
        &["docker_py.py", build.to_str().unwrap()],
        &[],
        &[
            ("version: API >= 1.41", "true"),
            ("ping", "true"),
            ("run with output", "\"hello\\n\""),
            ("run with a failing command", "[\"ContainerError\", 3]"),
            (
                "detach, logs stream, exec_run, wait",
                "{\"exec_run\": [3, \"exec-out\\nbar\\n/tmp\\n\"], \"labels\": {\"from\": \"docker-py\"}, \
                 \"listed\": [\"pydetached\"], \"logs_stream\": \"line1\\nline2\\nline3\\n\", \
                 \"status\": [\"running\", \"exited\"], \"wait\": 137}",
            ),
            (
                "build from a path",
                "{\"run\": \"hello from the context\\nbuilt by docker-py\\n\", \"says_built\": true, \"tags\": [\"pybuilt:v1\"]}",
            ),
            (
                "volumes",
                "{\"driver\": \"local\", \"listed\": [\"pyvolume\"], \"name\": \"pyvolume\", \"read\": \"kept\\n\"}",
            ),
            (
                "networks",
                "{\"after_disconnect\": [\"pyother\"], \"members\": [\"peer\", \"srv\"], \"reached\": [\"hello-from-srv\"]}",
            ),
            (
                "exec socket with stdin",
                "{\"exit_code\": 0, \"frames\": {\"stderr\": \"done\\n\", \"stdout\": \"through the socket\\n\", \
                 \"trailing\": 0}, \"running\": false}",
            ),
            (
                "errors",
                "{\"conflict\": 409, \"get\": [404, \"No such container: nosuch\"], \"image\": [404, true]}",
            ),
        ],
    );
    d.finish();
}

#[test]
fn testcontainers() {
    let Some(mut d) = Comparison::start(NOT_YET) else { return };
    compare_script(
        &mut d,
        &["testcontainers_check.py"],
        &[("TESTCONTAINERS_RYUK_DISABLED", "true")],
        &[(
            "testcontainers: a container with an exec",
            "{\"exit_code\": 2, \"labels\": [\"org.testcontainers\", \"org.testcontainers.lang\", \
             \"org.testcontainers.session-id\", \"org.testcontainers.version\"], \"left\": [], \
             \"output\": \"hi from testcontainers\\n\", \"status\": \"running\"}",
        )],
    );
    d.finish();
}

/// `docker-compose` (1.29) in the project directory against `side`.
fn compose(side: &Side, args: &[&str]) -> Output {
    let mut all = vec!["--project-name", "berthpair", "--no-ansi"];
    all.extend_from_slice(args);
    client(side, "docker-compose", &all, &clients_dir().join("compose"), &[])
}

#[test]
fn docker_compose_two_services() {
    let Some(mut d) = Comparison::start(NOT_YET) else { return };

    d.expect("compose up -d", "exit 0", |s| format!("exit {}", compose(s, &["up", "-d"]).code));
    d.expect("compose ps", "exit 0\nberthpair_client_1 Up\nberthpair_web_1 Up", |s| {
        let o = compose(s, &["ps"]);
        // NAME and STATE columns; the command column is truncated differently by width.
        let mut rows: Vec<String> = o
            .stdout
            .lines()
            .filter(|l| l.starts_with("berthpair_"))
            .map(|l| {
                let fields: Vec<&str> = l.split_whitespace().collect();
                let state = fields.iter().find(|f| ["Up", "Exit", "Restarting"].contains(f)).unwrap_or(&"?");
                format!("{} {state}", fields[0])
            })
            .collect();
        rows.sort();
        format!("exit {}\n{}", o.code, rows.join("\n"))
    });
    d.expect("compose logs: the client reached web by name", "exit 0\nhello-from-web", |s| {
        let mut last = String::new();
        for _ in 0..40 {
            let o = compose(s, &["logs", "--no-color", "client"]);
            if o.stdout.contains("hello-from-web") {
                return format!("exit {}\nhello-from-web", o.code);
            }
            last = format!("exit {}\n{}{}", o.code, o.stdout, o.stderr);
            std::thread::sleep(Duration::from_millis(500));
        }
        last
    });
    d.expect(
        "compose: containers carry the project labels",
        "exit 0\nberthpair client\nberthpair web",
        |s| {
            let o = s.docker(&[
                "ps",
                "--format",
                r#"{{.Label "com.docker.compose.project"}} {{.Label "com.docker.compose.service"}}"#,
            ]);
            let mut rows: Vec<&str> = o.stdout.lines().collect();
            rows.sort();
            format!("exit {}\n{}", o.code, rows.join("\n"))
        },
    );
    d.expect("compose down", "exit 0", |s| format!("exit {}", compose(s, &["down", "--timeout", "1"]).code));
    d.expect("compose down: nothing left", "exit 0\n\n", |s| {
        let containers = s.docker(&["ps", "-a", "-q"]);
        let networks = s.docker(&["network", "ls", "-q", "--filter", "name=berthpair"]);
        format!(
            "exit {}\n{}\n{}",
            containers.code.max(networks.code),
            containers.stdout.trim(),
            networks.stdout.trim()
        )
    });

    d.finish();
}
