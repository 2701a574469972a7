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
    let mut all = vec!["--project-name", "berthpair", "--ansi", "never"];
    all.extend_from_slice(args);
    client(side, "docker-compose", &all, &clients_dir().join("compose"), &[])
}

/// The exit code, and what the command printed on stderr when it failed (Compose prints its
/// progress there too, so only a failure's is shown).
fn failure_shown(o: &Output) -> String {
    if o.code == 0 {
        "exit 0".to_string()
    } else {
        format!("exit {}\n{}", o.code, o.stderr.trim())
    }
}

#[test]
fn docker_compose_two_services() {
    let Some(mut d) = Comparison::start(NOT_YET) else { return };

    d.expect("compose up -d", "exit 0", |s| failure_shown(&compose(s, &["up", "-d"])));
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
    d.expect("compose down", "exit 0", |s| failure_shown(&compose(s, &["down", "--timeout", "1"])));
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

/// Raw HTTP requests no client sends: Docker's status codes and messages for bad input, never a
/// 500.
#[test]
fn raw_api_bad_requests() {
    let Some(mut d) = Comparison::start(NOT_YET) else { return };
    let create = |s: &Side, query: &str, body: &str| {
        s.http_shown("POST", &format!("/containers/create{query}"), Some(body))
    };

    d.expect("create: no image", "status 400\nConfig cannot be empty in order to create a container", |s| {
        create(s, "", "{}")
    });
    d.expect(
        "create: a bad name",
        "status 400\nInvalid container name (bad/name), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
        |s| create(s, "?name=bad/name", r#"{"Image":"busybox"}"#),
    );
    d.expect("create: unknown image", "status 404\nNo such image: nosuch:latest", |s| {
        create(s, "", r#"{"Image":"nosuch"}"#)
    });
    d.expect("create: name conflict", "status 409\nConflict. The container name \"/k1\" is already in use by container \"<id>\". You have to remove (or rename) that container to be able to reuse that name.", |s| {
        create(s, "?name=k1", r#"{"Image":"busybox","Cmd":["sleep","300"]}"#);
        create(s, "?name=k1", r#"{"Image":"busybox"}"#)
    });
    d.expect("kill: a bad signal", "status 400\nInvalid signal: BOGUS", |s| {
        s.http_shown("POST", "/containers/k1/kill?signal=BOGUS", None)
    });
    d.expect(
        "logs: no stream chosen",
        "status 400\nBad parameters: you must choose at least one stream",
        |s| s.http_shown("GET", "/containers/k1/logs", None),
    );
    d.expect("pause: not running", "status 409\nContainer <id> is not running", |s| {
        s.http_shown("POST", "/containers/k1/pause", None)
    });
    d.expect("start twice: 304", "status 304\n(no JSON message: \"\")", |s| {
        s.http_shown("POST", "/containers/k1/start", None);
        s.http_shown("POST", "/containers/k1/start", None)
    });
    d.expect("stop twice: 304", "status 304\n(no JSON message: \"\")", |s| {
        s.http_shown("POST", "/containers/k1/stop?t=0", None);
        s.http_shown("POST", "/containers/k1/stop?t=0", None)
    });
    d.expect("start: no such container", "status 404\nNo such container: nosuch", |s| {
        s.http_shown("POST", "/containers/nosuch/start", None)
    });
    d.expect("inspect: no such container", "status 404\nNo such container: nosuch", |s| {
        s.http_shown("GET", "/containers/nosuch/json", None)
    });
    d.expect("list: a bad status filter", "status 400\nInvalid filter 'status=bogus'", |s| {
        s.http_shown("GET", "/containers/json?filters=%7B%22status%22%3A%5B%22bogus%22%5D%7D", None)
    });
    d.expect("images: an unknown filter", "status 400\nInvalid filter 'bogus'", |s| {
        s.http_shown("GET", "/images/json?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D", None)
    });
    d.expect("image delete: no such image", "status 404\nNo such image: nosuch:latest", |s| {
        s.http_shown("DELETE", "/images/nosuch", None)
    });
    d.expect("volume: no such volume", "status 404\nget nosuch: no such volume", |s| {
        s.http_shown("GET", "/volumes/nosuch", None)
    });
    d.same("volume create: a bad name", |s| {
        s.http_shown("POST", "/volumes/create", Some(r#"{"Name":"bad/name"}"#))
    });
    d.expect("network delete: no such network", "status 404\nnetwork nosuch not found", |s| {
        s.http_shown("DELETE", "/networks/nosuch", None)
    });
    d.expect("an unknown path", "status 404\npage not found", |s| s.http_shown("GET", "/nonexistent", None));
    // The maximum differs by design (20.10 speaks 1.41): the refusal and its wording are compared.
    d.expect(
        "a version too new",
        "status 400\nclient version 9.99 is too new. Maximum supported API version is",
        |s| {
            let shown = s.http_shown("GET", "/v9.99/version", None);
            shown.rsplit_once(' ').map_or(shown.clone(), |(head, _)| head.to_string())
        },
    );

    // Engine 20.10 answers these with 500 (Engine 23 and later with 400); a bad request is the
    // client's error, never a 500, and the message must say what is wrong.
    let status_and_mention = |s: &Side, query: &str, body: &str, word: &str| {
        let shown = create(s, query, body);
        let status = shown.lines().next().unwrap_or("").to_string();
        format!("{status}\nmentions {word}: {}", shown.contains(word))
    };
    d.berth_only("create: malformed JSON is 400", "status 400\nmentions JSON: true", |s| {
        let shown = create(s, "", "{bad json");
        let status = shown.lines().next().unwrap_or("").to_string();
        format!("{status}\nmentions JSON: {}", shown.to_ascii_lowercase().contains("json"))
    });
    d.berth_only("create: a wrong type is 400 naming the field", "status 400\nmentions Image: true", |s| {
        status_and_mention(s, "", r#"{"Image": 5}"#, "Image")
    });
    d.berth_only(
        "create: a wrong nested type is 400 naming the field",
        "status 400\nmentions Memory: true",
        |s| status_and_mention(s, "", r#"{"Image":"busybox","HostConfig":{"Memory":"lots"}}"#, "Memory"),
    );
    d.berth_only("create: PidMode is refused, named", "status 400\nmentions PidMode: true", |s| {
        status_and_mention(
            s,
            "?name=pidhost",
            r#"{"Image":"busybox","HostConfig":{"PidMode":"host"}}"#,
            "PidMode",
        )
    });
    d.berth_only("list: filters that are not JSON is 400", "status 400", |s| {
        let shown = s.http_shown("GET", "/containers/json?filters=notjson", None);
        shown.lines().next().unwrap_or("").to_string()
    });
    d.berth_only("network create: an empty name is 400", "status 400", |s| {
        let shown = s.http_shown("POST", "/networks/create", Some(r#"{"Name":""}"#));
        shown.lines().next().unwrap_or("").to_string()
    });

    d.finish();
}
