//! Log rotation end to end: `--log-opt max-size/max-file` as Docker's json-file driver, the
//! default limit, `logs` and `logs -f` across rotated files without loss or duplication (CLI,
//! API, WebSocket followers and the Docker API face), and bad options refused by name.

use berth_tests::api::next_json;
use berth_tests::{Daemon, HttpResponse, ADMIN_TOKEN};

/// One request to the daemon's Docker API socket.
fn docker_http(daemon: &Daemon, method: &str, path: &str, json: Option<&[u8]>) -> HttpResponse {
    berth_tests::unix_request(&daemon.docker_socket(), method, path, json)
}

/// The container's log files (`container.log` and its rotated `container.log.N`).
fn log_files(daemon: &Daemon, name: &str) -> Vec<(String, u64)> {
    let id = daemon.berth(&["inspect", "--format", "{{.Id}}", name]).ok().stdout.trim().to_string();
    let dir = daemon.root().join("containers").join(&id);
    let mut files: Vec<(String, u64)> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.metadata().unwrap().len()))
        .filter(|(n, _)| n.starts_with("container.log"))
        .collect();
    files.sort();
    files
}

fn numbers(text: &str) -> Vec<u64> {
    text.lines().map(|l| l.trim().parse().unwrap_or_else(|_| panic!("not a number: {l:?}"))).collect()
}

#[test]
fn a_chatty_container_is_rotated_and_read_whole_across_its_files() {
    let daemon = Daemon::with_busybox();
    // 4000 numbered lines of ~75 bytes of JSON each: ~300 kB through 10 kB files, of which
    // 20 are kept (the oldest are dropped as Docker's driver drops them).
    daemon
        .berth(&[
            "run",
            "--name",
            "chatty",
            "--log-opt",
            "max-size=10k",
            "--log-opt",
            "max-file=20",
            "busybox",
            "sh",
            "-c",
            "i=0; while [ $i -lt 4000 ]; do echo $i; i=$((i+1)); done",
        ])
        .ok();
    let files = log_files(&daemon, "chatty");
    assert_eq!(files.len(), 20, "{files:?}");
    assert!(files.iter().all(|(_, size)| *size <= 10_000), "{files:?}");
    let logs = daemon.berth(&["logs", "chatty"]).ok();
    let got = numbers(&logs.stdout);
    // Whatever is kept is a contiguous run ending with the last line: nothing lost in between,
    // nothing twice.
    let first = got[0];
    assert_eq!(got, (first..4000).collect::<Vec<_>>());
    assert!(first > 0, "the oldest lines were rotated out");
    let tail = daemon.berth(&["logs", "--tail", "5", "chatty"]).ok();
    assert_eq!(numbers(&tail.stdout), (3995..4000).collect::<Vec<_>>());
    // The Docker face reads the same files (8-byte frame headers before each line).
    let docker = docker_http(&daemon, "GET", "/containers/chatty/logs?stdout=1&tail=3", None);
    assert_eq!(docker.status, 200, "{}", docker.text());
    assert!(
        docker.text().ends_with("3997\n\u{1}\0\0\0\0\0\0\u{5}3998\n\u{1}\0\0\0\0\0\0\u{5}3999\n"),
        "{:?}",
        docker.text()
    );
    let inspect = docker_http(&daemon, "GET", "/containers/chatty/json", None).json();
    assert_eq!(inspect["HostConfig"]["LogConfig"]["Config"]["max-size"], "10k", "{inspect:#}");
}

#[test]
fn follow_reads_across_rotations_without_loss_or_duplication() {
    let daemon = Daemon::with_busybox();
    // Started first, followed while it writes: every rotation happens under the follower.
    daemon
        .berth(&[
            "run",
            "-d",
            "--name",
            "follow",
            "--log-opt",
            "max-size=4k",
            "--log-opt",
            "max-file=1000",
            "busybox",
            "sh",
            "-c",
            "sleep 0.5; i=0; while [ $i -lt 2000 ]; do echo $i; i=$((i+1)); done",
        ])
        .ok();
    let followed = daemon.berth(&["logs", "-f", "follow"]).ok();
    assert_eq!(numbers(&followed.stdout), (0..2000).collect::<Vec<_>>());
    assert!(log_files(&daemon, "follow").len() > 10, "rotated many times");
    // And the API's stream, after the fact.
    let body = daemon.http("GET", "/api/v1/containers/follow/logs?follow=true", &[], b"").text();
    assert_eq!(body.lines().count(), 2000, "{}", &body[..body.len().min(300)]);
}

/// The lines a WebSocket log follower receives until the stream's end message.
fn follow_over_websocket(mut socket: berth_tests::api::Socket) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let m = next_json(&mut socket).expect("the log stream ends with an end message");
        match m["type"].as_str().unwrap_or_default() {
            "logs" => {
                for e in m["entries"].as_array().expect("entries") {
                    lines.push(e["line"].as_str().expect("a line").trim_end().to_string());
                }
            }
            "end" => return lines,
            other => panic!("unexpected message {other}: {m}"),
        }
    }
}

#[test]
fn websocket_followers_of_a_container_writing_at_full_speed_get_every_line_once() {
    let daemon = Daemon::with_busybox();
    // As fast as the shell writes, through 64 kB files: the followers read across rotations.
    let lines = 30_000;
    daemon
        .berth(&[
            "create",
            "--name",
            "fast",
            "--log-opt",
            "max-size=64k",
            "--log-opt",
            "max-file=1000",
            "busybox",
            "sh",
            "-c",
            &format!("sleep 1; i=0; while [ $i -lt {lines} ]; do echo $i; i=$((i+1)); done"),
        ])
        .ok();
    // Started first (a follow of a container that is not running ends at once); the writing
    // starts a second later, under the followers.
    daemon.berth(&["start", "fast"]).ok();
    let followers: Vec<_> = (0..4)
        .map(|_| daemon.ws_as(ADMIN_TOKEN, "/api/v1/ws/containers/fast/logs?follow=1&tail=all"))
        .map(|socket| std::thread::spawn(move || follow_over_websocket(socket)))
        .collect();
    let expected: Vec<String> = (0..lines).map(|i| i.to_string()).collect();
    for (n, follower) in followers.into_iter().enumerate() {
        let got = follower.join().expect("follower thread");
        assert_eq!(got.len(), expected.len(), "follower {n}: lines lost or repeated");
        assert!(got == expected, "follower {n}: lines out of order or changed");
    }
    assert!(log_files(&daemon, "fast").len() > 5, "rotated while followed");
}

#[test]
fn the_default_limit_and_bad_options() {
    let daemon = Daemon::with_busybox();
    daemon.berth(&["create", "--name", "plain", "busybox", "true"]).ok();
    let docker = docker_http(&daemon, "GET", "/containers/plain/json", None).json();
    assert_eq!(docker["HostConfig"]["LogConfig"]["Type"], "json-file");
    for (opt, message) in [
        ("max-size=ten", "invalid max-size"),
        ("max-file=0", "max-file cannot be less than 1"),
        ("max-sise=1m", "unknown log opt 'max-sise' for json-file log driver"),
        ("compress=true", "compress=true is not supported"),
        ("nonsense", "invalid key value pair format in logging opts"),
    ] {
        daemon.berth(&["create", "--log-opt", opt, "busybox", "true"]).fails_with(message);
    }
    daemon
        .berth(&["create", "--log-driver", "syslog", "busybox", "true"])
        .fails_with("\"syslog\" is not supported");
    // Over Docker's API: other drivers refused by name, options applied.
    let refused = docker_http(
        &daemon,
        "POST",
        "/containers/create",
        Some(br#"{"Image":"busybox","HostConfig":{"LogConfig":{"Type":"syslog","Config":{}}}}"#),
    );
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(refused.text().contains("syslog"), "{}", refused.text());
    let bad = docker_http(
        &daemon,
        "POST",
        "/containers/create",
        Some(br#"{"Image":"busybox","HostConfig":{"LogConfig":{"Type":"json-file","Config":{"max-file":"0"}}}}"#),
    );
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert!(bad.text().contains("max-file cannot be less than 1"), "{}", bad.text());
    let made = docker_http(
        &daemon,
        "POST",
        "/containers/create?name=limited",
        Some(br#"{"Image":"busybox","HostConfig":{"LogConfig":{"Type":"local","Config":{"max-size":"1m","max-file":"2"}}}}"#),
    );
    assert_eq!(made.status, 201, "{}", made.text());
}
